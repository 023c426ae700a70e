package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/orderd/orderd/order"
)

// listView is GET /v1/orders.
type listView struct {
	Orders     []orderView `json:"orders"`
	NextCursor string      `json:"next_cursor"`
}

// listPagesMax bounds the pages --all follows, so that a server that keeps
// answering with a cursor cannot keep orderctl running forever: a billion
// orders at the largest page.
const listPagesMax = 1_000_000

func cmdList(ctx context.Context, a *app, args []string) int {
	const synopsis = "list [--state S] [--customer C] [--limit N] [--all] [--cursor C]"
	fs := a.flagSet("list")
	state := fs.String("state", "", "only the orders in this state (case-insensitive)")
	customer := fs.String("customer", "", "only this customer's orders")
	limit := fs.Int("limit", 0, fmt.Sprintf("orders per page, 1 to %d (default: the server's, %d)", order.ListLimitMax, order.ListLimitDefault))
	all := fs.Bool("all", false, "every page: follow next_cursor to the last one")
	cursor := fs.String("cursor", "", "start at this next_cursor of an earlier page (with the same --state and --customer)")
	if _, code, done := a.parseCommand(fs, synopsis, args, 0); done {
		return code
	}
	query := url.Values{}
	if *state != "" {
		s, ok := parseStateFold(*state)
		if !ok {
			return a.commandUsageError(fs, synopsis, "--state %q is not a state (%s)", *state, stateNames())
		}
		query.Set("state", s.String())
	}
	if *customer != "" {
		if err := order.CheckCustomerID(*customer); err != nil {
			return a.commandUsageError(fs, synopsis, "--customer: %v", err)
		}
		query.Set("customer_id", *customer)
	}
	limitSet := false
	fs.Visit(func(f *flag.Flag) { limitSet = limitSet || f.Name == "limit" })
	if limitSet {
		if *limit < 1 || *limit > order.ListLimitMax {
			return a.commandUsageError(fs, synopsis, "--limit %d: want 1 to %d", *limit, order.ListLimitMax)
		}
		query.Set("limit", strconv.Itoa(*limit))
	}
	next := *cursor
	for range listPagesMax {
		if next != "" {
			query.Set("cursor", next)
		}
		page, code := a.listPage(ctx, query)
		if code != exitOK {
			return code
		}
		if next = page.NextCursor; next == "" {
			return exitOK
		}
		if !*all {
			if !a.g.json {
				fmt.Fprintf(a.stderr, "orderctl: more orders follow: --all, or --cursor %s for the next page\n", next)
			}
			return exitOK
		}
	}
	a.errorf("more than %d pages: stopped", listPagesMax)
	return exitRefused
}

// listPage gets one page and prints it: with --json the server's document
// as one line, else each order as get prints it.
func (a *app) listPage(ctx context.Context, query url.Values) (listView, int) {
	req := request{method: http.MethodGet, path: ordersPath + "?" + query.Encode()}
	resp, code := a.do(ctx, req)
	if code != exitOK {
		return listView{}, code
	}
	if resp.status != http.StatusOK {
		return listView{}, a.failed(req, resp)
	}
	var page listView
	if err := json.Unmarshal(resp.body, &page); err != nil {
		return listView{}, a.unexpected(resp, err)
	}
	if a.g.json {
		writeLine(a.stdout, resp.body)
		return page, exitOK
	}
	for _, o := range page.Orders {
		fmt.Fprintln(a.stdout, formatOrder(o))
	}
	return page, exitOK
}
