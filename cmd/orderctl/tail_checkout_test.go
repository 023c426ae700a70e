package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
)

// TestTailPrintsCheckouts: checkout records on the topic are printed as
// such, beside the orders', a repeated one is skipped, and --order leaves
// them out. orderd does not serve checkouts yet, so they are written
// through its journal, as its saga will.
func TestTailPrintsCheckouts(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), ctlRunLimit)
	defer cancel()
	j, err := persistence.OpenKafka(ctx, persistence.KafkaConfig{Brokers: []string{s.broker}, Partitions: 3,
		ProduceTimeout: roomyProduceTimeout})
	require.NoError(t, err)
	defer j.Close()
	at := time.Date(2026, 12, 6, 10, 30, 0, 0, time.UTC)
	start := order.CheckoutEvent{EventID: "e1", CheckoutID: "co-1", Version: 1, At: at, OrderID: "co-1", CustomerID: "cus-1",
		Currency: "EUR", Items: []order.Item{{SKU: "mug", Quantity: 2, UnitPrice: 500}}, Total: 1000, Principal: "alice"}
	lacking := order.CheckoutEvent{EventID: "e2", CheckoutID: "co-1", Version: 2, At: at, Step: order.StepReserve,
		Outcome: order.StepFailed, Detail: "out of stock: mug", OutOfStock: []string{"mug"}}
	for _, ev := range []order.CheckoutEvent{start, lacking, lacking} {
		require.NoError(t, j.AppendCheckout(ctx, ev))
	}
	s.must(t, "create", "--id", "o-1")

	r := ctl(t, nil, "tail", "--brokers", s.broker, "--from-beginning", "--until-end")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "2026-12-06T10:30:00Z  checkout:co-1  v1  start  order co-1  customer cus-1  1 items  total 1000 EUR\n")
	assert.Contains(t, r.stdout, "2026-12-06T10:30:00Z  checkout:co-1  v2  reserve-stock failed  detail=\"out of stock: mug\"\n")
	assert.Contains(t, r.stdout, "  o-1  v1  -> Created\n")
	assert.Contains(t, r.stderr, "skipping checkout co-1 v2 (event e2)")

	r = ctl(t, nil, "tail", "--brokers", s.broker, "--from-beginning", "--until-end", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, `{"event_id":"e1","checkout_id":"co-1","version":1,"at":"2026-12-06T10:30:00Z","order_id":"co-1","customer_id":"cus-1",`+
		`"currency":"EUR","items":[{"sku":"mug","quantity":2,"unit_price":500}],"total":1000,"principal":"alice",`)
	assert.Contains(t, r.stdout, `{"event_id":"e2","checkout_id":"co-1","version":2,"at":"2026-12-06T10:30:00Z","step":"reserve-stock",`+
		`"outcome":"failed","detail":"out of stock: mug","out_of_stock":["mug"],`)

	r = ctl(t, nil, "tail", "--brokers", s.broker, "--from-beginning", "--until-end", "--order", "o-1")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.NotContains(t, r.stdout, "checkout")
}
