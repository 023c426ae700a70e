package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
)

// Checkout records share the audit topic (key "checkout:<id>", ce_type
// orderd.checkout.stepped). tail prints each checkout's records in version
// order and skips what is out of sequence (a version at or below the last
// printed, a gap), as for inventory; it does not check that a step is the
// one the saga names next, which only a reader from the checkout's start
// can.

// checkoutLine is one checkout record in --json output: the members of its
// form (the start's or a step's), and where it is in the topic.
type checkoutLine struct {
	EventID    string `json:"event_id"`
	CheckoutID string `json:"checkout_id"`
	Version    uint64 `json:"version"`
	At         string `json:"at"`
	// A step's.
	Step            string   `json:"step,omitempty"`
	Outcome         string   `json:"outcome,omitempty"`
	Detail          string   `json:"detail,omitempty"`
	AuthorizationID string   `json:"authorization_id,omitempty"`
	OutOfStock      []string `json:"out_of_stock,omitempty"`
	// The start's.
	OrderID        string     `json:"order_id,omitempty"`
	CustomerID     string     `json:"customer_id,omitempty"`
	Currency       string     `json:"currency,omitempty"`
	Items          []itemBody `json:"items,omitempty"`
	Total          *int64     `json:"total,omitempty"`
	IdempotencyKey string     `json:"idempotency_key,omitempty"`
	Principal      string     `json:"principal,omitempty"`
	RequestID      string     `json:"request_id,omitempty"`
	Partition      int        `json:"partition"`
	Offset         int64      `json:"offset"`
}

func (t *tailer) handleCheckout(r tailRecord) error {
	ev, ok := decodeTyped(t, r, ceTypeCheckout, persistence.DecodeCheckout, func(ev order.CheckoutEvent) string { return ev.EventID })
	if !ok {
		return nil
	}
	if t.checkouts == nil {
		t.checkouts = map[string]uint64{}
	}
	if why := inSequence(t.checkouts, ev.CheckoutID, ev.Version); why != "" {
		t.note("skipping checkout %s v%d (event %s) at partition %d offset %d: %s", ev.CheckoutID, ev.Version, ev.EventID, r.partition, r.offset, why)
		return nil
	}
	t.printed++
	t.bar.beforeOutput()
	if t.a.g.json {
		return t.printCheckoutJSON(r, ev)
	}
	return t.printCheckout(ev)
}

// printCheckout writes one record as
// `2026-12-06T10:30:00Z  checkout:co-1  v1  start  order o-1  customer cus-1  2 items  total 1000 EUR`
// or `2026-12-06T10:30:00Z  checkout:co-1  v2  reserve-stock failed  detail="out of stock: mug"`.
func (t *tailer) printCheckout(ev order.CheckoutEvent) error {
	what := fmt.Sprintf("%v %v", ev.Step, ev.Outcome)
	if ev.Version == 1 {
		what = fmt.Sprintf("start  order %s  customer %s  %d items  total %d %s",
			printable(ev.OrderID), printable(ev.CustomerID), len(ev.Items), ev.Total, printable(ev.Currency))
	}
	_, err := fmt.Fprintf(t.out, "%s  %s  v%d  %s", ev.At.UTC().Format(time.RFC3339), printable(order.CheckoutKey(ev.CheckoutID)), ev.Version, what)
	if err == nil && ev.Detail != "" {
		_, err = fmt.Fprintf(t.out, "  detail=%s", strconv.Quote(ev.Detail))
	}
	if err == nil {
		_, err = t.out.WriteString("\n")
	}
	return err
}

func (t *tailer) printCheckoutJSON(r tailRecord, ev order.CheckoutEvent) error {
	line := checkoutLine{EventID: ev.EventID, CheckoutID: ev.CheckoutID, Version: ev.Version, At: ev.At.UTC().Format(time.RFC3339Nano),
		Detail: ev.Detail, AuthorizationID: ev.AuthorizationID, OutOfStock: ev.OutOfStock,
		OrderID: ev.OrderID, CustomerID: ev.CustomerID, Currency: ev.Currency, IdempotencyKey: ev.IdempotencyKey,
		Principal: ev.Principal, RequestID: ev.RequestID, Partition: r.partition, Offset: r.offset}
	if ev.Version == 1 {
		for _, it := range ev.Items {
			line.Items = append(line.Items, itemBody(it))
		}
		line.Total = &ev.Total
	} else {
		line.Step, line.Outcome = ev.Step.String(), ev.Outcome.String()
	}
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	_, err = t.out.Write(append(b, '\n'))
	return err
}
