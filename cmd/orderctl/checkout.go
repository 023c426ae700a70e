package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/orderd/orderd/order"
)

// checkoutsPath is the API's collection of checkouts (README, "Checkout and
// inventory").
const checkoutsPath = "/v1/checkouts"

// checkoutPollInterval spaces the reads of a checkout answered 202 (still
// running), until it ends or --timeout passes.
const checkoutPollInterval = 200 * time.Millisecond

// checkoutView is a checkout as the API returns it.
type checkoutView struct {
	ID         string     `json:"id"`
	Status     string     `json:"status"`
	OrderID    string     `json:"order_id"`
	Currency   string     `json:"currency"`
	Items      []itemBody `json:"items"`
	Total      int64      `json:"total"`
	UpdatedAt  string     `json:"updated_at"`
	OutOfStock []string   `json:"out_of_stock"`
	Steps      []struct {
		Step    string `json:"step"`
		Outcome string `json:"outcome"`
		At      string `json:"at"`
		Detail  string `json:"detail"`
	} `json:"steps"`
}

func (c checkoutView) finished() bool { return c.Status == "completed" || c.Status == "compensated" }

// cmdCheckout is `checkout ...` (start one) and `checkout get ID`.
func cmdCheckout(ctx context.Context, a *app, args []string) int {
	if len(args) > 0 && args[0] == "get" {
		return cmdCheckoutGet(ctx, a, args[1:])
	}
	const synopsis = "checkout --customer C --currency CUR --item SKU:QTY:PRICE... --token T [--id ID] [--idempotency-key K]"
	fs := a.flagSet("checkout")
	id := fs.String("id", "", "the checkout's ID, also its order's (default: named by the idempotency key)")
	key := fs.String("idempotency-key", "", "Idempotency-Key: a retry with the same key is the same checkout (default: a random key)")
	customer := fs.String("customer", "", "the customer's ID (required)")
	currency := fs.String("currency", "", "ISO 4217 code of the item prices (required)")
	token := fs.String("token", "", "the payment token (required; the simulated gateway declines tok_decline and never answers tok_timeout)")
	var items itemFlags
	fs.Var(&items, "item", "an item as SKU:QUANTITY:UNIT_PRICE, the price in minor units; repeatable, one per SKU")
	if _, code, done := a.parseCommand(fs, synopsis, args, 0); done {
		return code
	}
	if err := order.CheckCheckoutRequest(order.CheckoutRequest{CustomerID: *customer, Currency: *currency, Items: items, PaymentToken: *token}); err != nil {
		return a.commandUsageError(fs, synopsis, "%v", flagError(err))
	}
	body := map[string]any{}
	if *id != "" {
		if err := order.ValidateID(*id); err != nil {
			return a.commandUsageError(fs, synopsis, "--id: %v", err)
		}
		body["id"] = *id
	}
	if err := contentsBody(body, *customer, *currency, items); err != nil {
		return a.commandUsageError(fs, synopsis, "%v", err)
	}
	body["payment"] = map[string]string{"token": *token}
	k, err := idempotencyKey(*key)
	if err != nil {
		return a.commandUsageError(fs, synopsis, "%v", err)
	}
	req := request{method: http.MethodPost, path: checkoutsPath, body: body, write: true,
		header: map[string]string{"Idempotency-Key": k}, idempotencyKey: k}
	resp, code := a.do(ctx, req)
	if code != exitOK {
		return code
	}
	switch resp.status {
	case http.StatusCreated:
		return a.printCheckout(resp)
	case http.StatusAccepted:
		var c checkoutView
		if err := json.Unmarshal(resp.body, &c); err != nil {
			return a.unexpected(resp, err)
		}
		return a.pollCheckout(ctx, c.ID, k)
	}
	return a.failed(req, resp)
}

// pollCheckout reads a running checkout until it ends, within --timeout.
func (a *app) pollCheckout(ctx context.Context, id, key string) int {
	deadline := time.Now().Add(a.g.timeout)
	for {
		resp, code := a.do(ctx, request{method: http.MethodGet, path: checkoutPath(id)})
		if code != exitOK {
			return code
		}
		if resp.status != http.StatusOK {
			return a.failed(request{method: http.MethodGet, path: checkoutPath(id)}, resp)
		}
		var c checkoutView
		if err := json.Unmarshal(resp.body, &c); err != nil {
			return a.unexpected(resp, err)
		}
		if c.finished() || time.Now().After(deadline) {
			code := a.printCheckout(resp)
			if !c.finished() {
				a.errorf("checkout %s is still %s: see it with 'orderctl checkout get %s' (it is the same checkout with --idempotency-key %s)", id, c.Status, id, key)
				return exitOutcomeUnknown
			}
			return code
		}
		select {
		case <-ctx.Done():
			// Interrupted: the checkout goes on without us.
			a.errorf("checkout %s is still %s: see it with 'orderctl checkout get %s'", id, c.Status, id)
			return exitOutcomeUnknown
		case <-time.After(checkoutPollInterval):
		}
	}
}

func cmdCheckoutGet(ctx context.Context, a *app, args []string) int {
	const synopsis = "checkout get ID"
	fs := a.flagSet("checkout get")
	pos, code, done := a.parseCommand(fs, synopsis, args, 1)
	if done {
		return code
	}
	if err := order.ValidateID(pos[0]); err != nil {
		return a.commandUsageError(fs, synopsis, "ID: %v", err)
	}
	req := request{method: http.MethodGet, path: checkoutPath(pos[0])}
	resp, code := a.do(ctx, req)
	if code != exitOK {
		return code
	}
	if resp.status != http.StatusOK {
		return a.failed(req, resp)
	}
	return a.printCheckout(resp)
}

// printCheckout prints a checkout; a compensated one exits 1: nothing was bought.
func (a *app) printCheckout(resp response) int {
	var c checkoutView
	if err := json.Unmarshal(resp.body, &c); err != nil {
		return a.unexpected(resp, err)
	}
	if a.g.json {
		writeLine(a.stdout, resp.body)
	} else {
		fmt.Fprintln(a.stdout, formatCheckout(c))
	}
	if c.Status == "compensated" {
		return exitRefused
	}
	return exitOK
}

// formatCheckout is the readable form: `co-1  completed  order co-1  1000 EUR`,
// then a line per step.
func formatCheckout(c checkoutView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %s  order %s  %d %s (minor units)", c.ID, c.Status, c.OrderID, c.Total, printable(c.Currency))
	for _, s := range c.Steps {
		fmt.Fprintf(&b, "\n  %-17s  %-9s  %s", s.Step, s.Outcome, shortTime(s.At))
		if s.Detail != "" {
			fmt.Fprintf(&b, "  %s", printable(s.Detail))
		}
	}
	return b.String()
}

func checkoutPath(id string) string { return checkoutsPath + "/" + url.PathEscape(id) }
