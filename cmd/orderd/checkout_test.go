package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkoutBody is a POST /v1/checkouts body for one SKU.
func checkoutBody(id, sku string, quantity int, token string) string {
	return fmt.Sprintf(`{"id":%q,"customer_id":"cus-1","currency":"EUR","items":[{"sku":%q,"quantity":%d,"unit_price":1250}],"payment":{"token":%q}}`,
		id, sku, quantity, token)
}

func stockOf(t *testing.T, url, sku string) stockView {
	t.Helper()
	r := e2eDo(t, "GET", url+"/v1/inventory/"+sku, "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var v stockView
	require.NoError(t, json.Unmarshal(r.body, &v))
	return v
}

func requireStock(t *testing.T, url, sku string, onHand, reserved int64) {
	t.Helper()
	require.Eventually(t, func() bool {
		v := stockOf(t, url, sku)
		return v.OnHand == onHand && v.Reserved == reserved
	}, e2eTimeout, 5*time.Millisecond, "%s: want on_hand %d reserved %d, have %+v", sku, onHand, reserved, stockOf(t, url, sku))
}

func stepNames(co checkoutView) []string {
	var out []string
	for _, s := range co.Steps {
		out = append(out, s.Step+" "+s.Outcome)
	}
	return out
}

// TestCheckoutOverHTTP: on the real server (embedded broker, state store,
// simulated gateway, HTTP on port 0): a completed checkout, a retry of it,
// a declined payment and a gateway that never answers (each compensated in
// reverse, in the answer and in the log), out of stock (409 naming the
// SKU), and the lifecycle moving the stock: shipped consumes it, returned
// puts it back, cancelled releases it. The checkouts and the stock are the
// same after a restart.
func TestCheckoutOverHTTP(t *testing.T) {
	dataDir := t.TempDir()
	flags := []string{"--payment-gateway-timeout", "200ms"}
	m, url := e2eStartMain(t, dataDir, flags...)
	e2eRequireStatus(t, e2eDo(t, "PUT", url+"/v1/inventory/mug", `{"on_hand":5}`), http.StatusOK)

	r := e2eDo(t, "POST", url+"/v1/checkouts", checkoutBody("co-ok", "mug", 2, "tok_visa"), "Idempotency-Key", "k-ok")
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	assert.Equal(t, "/v1/checkouts/co-ok", r.header.Get("Location"))
	co := decode[checkoutView](t, r.body)
	assert.Equal(t, "completed", co.Status)
	assert.Equal(t, []string{"reserve-stock succeeded", "create-order succeeded", "authorize-payment succeeded", "mark-paid succeeded"}, stepNames(co))
	o := e2eRequireStatus(t, e2eDo(t, "GET", url+"/v1/orders/co-ok", ""), http.StatusOK)
	assert.Equal(t, "Paid", o["state"])
	assert.EqualValues(t, 2500, o["total"])
	requireStock(t, url, "mug", 5, 2)
	again := e2eDo(t, "POST", url+"/v1/checkouts", checkoutBody("co-ok", "mug", 2, "tok_visa"), "Idempotency-Key", "k-ok")
	require.Equal(t, http.StatusCreated, again.status, "%s", again.body)
	assert.Equal(t, co, decode[checkoutView](t, again.body), "a retry gets the same checkout")
	e2eRequireProblem(t, e2eDo(t, "POST", url+"/v1/checkouts", checkoutBody("co-ok", "mug", 3, "tok_visa")), http.StatusConflict, "checkout-exists")

	compensated := []string{"reserve-stock succeeded", "create-order succeeded", "authorize-payment failed",
		"void-payment succeeded", "cancel-order succeeded", "release-stock succeeded"}
	for _, token := range []string{"tok_decline", "tok_timeout"} {
		id := "co-" + token
		r = e2eDo(t, "POST", url+"/v1/checkouts", checkoutBody(id, "mug", 1, token))
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		co = decode[checkoutView](t, r.body)
		assert.Equal(t, "compensated", co.Status, token)
		assert.Equal(t, compensated, stepNames(co), token)
		h := e2eRequireStatus(t, e2eDo(t, "GET", url+"/v1/orders/"+id+"/history", ""), http.StatusOK)
		steps := h["transitions"].([]any)
		require.Len(t, steps, 2, token)
		cancel := steps[1].(map[string]any)
		assert.Equal(t, "Cancelled", cancel["to"], token)
		assert.Contains(t, cancel["reason"], "checkout-failed: ", token)
		requireStock(t, url, "mug", 5, 2)
	}
	// In the log: the steps in the order they were taken.
	evs, err := m.journal.LoadCheckout(context.Background(), "co-tok_decline")
	require.NoError(t, err)
	var logged []string
	for _, ev := range evs[1:] {
		logged = append(logged, ev.Step.String()+" "+ev.Outcome.String())
	}
	assert.Equal(t, compensated, logged)

	p := e2eRequireProblem(t, e2eDo(t, "POST", url+"/v1/checkouts", checkoutBody("co-big", "mug", 4, "tok_visa")), http.StatusConflict, "out-of-stock")
	assert.Equal(t, []any{"mug"}, p["out_of_stock"])
	e2eRequireStatus(t, e2eDo(t, "GET", url+"/v1/checkouts/co-big", ""), http.StatusOK)
	e2eRequireProblem(t, e2eDo(t, "GET", url+"/v1/checkouts/co-none", ""), http.StatusNotFound, "checkout-not-found")
	requireStock(t, url, "mug", 5, 2)

	// The lifecycle drives the stock.
	for _, to := range []string{"Shipped", "Delivered"} {
		e2eRequireStatus(t, e2eDo(t, "POST", url+"/v1/orders/co-ok/transitions", fmt.Sprintf(`{"to":%q}`, to)), http.StatusOK)
	}
	requireStock(t, url, "mug", 3, 0)
	e2eRequireStatus(t, e2eDo(t, "POST", url+"/v1/orders/co-ok/transitions", `{"to":"Returned"}`), http.StatusOK)
	requireStock(t, url, "mug", 5, 0)
	r = e2eDo(t, "POST", url+"/v1/checkouts", checkoutBody("co-2", "mug", 3, "tok_visa"))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	requireStock(t, url, "mug", 5, 3)
	e2eRequireStatus(t, e2eDo(t, "POST", url+"/v1/orders/co-2/transitions", `{"to":"Cancelled"}`), http.StatusOK)
	requireStock(t, url, "mug", 5, 0)

	metrics := scrape(t, url)
	assert.Equal(t, 2.0, sample(t, metrics, "orderd_checkouts_finished_total", "status", "completed"))
	assert.Equal(t, 3.0, sample(t, metrics, "orderd_checkouts_finished_total", "status", "compensated"))
	assert.Zero(t, sample(t, metrics, "orderd_checkouts_running"))
	assert.Zero(t, sample(t, metrics, "orderd_transition_actions_left_total"))
	sample(t, metrics, "orderd_transition_actions_reconciled_total")

	require.NoError(t, m.Close())
	_, url = e2eStartMain(t, dataDir, flags...)
	requireStock(t, url, "mug", 5, 0)
	r = e2eDo(t, "GET", url+"/v1/checkouts/co-ok", "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, "completed", decode[checkoutView](t, r.body).Status)
}

// TestCheckoutsForTheLastUnit: 64 clients check out the last unit of a SKU
// at once; exactly one completes, the others are compensated and answered
// 409 out-of-stock, and the stock holds exactly the one reservation.
func TestCheckoutsForTheLastUnit(t *testing.T) {
	_, url := e2eStartMain(t, t.TempDir())
	e2eRequireStatus(t, e2eDo(t, "PUT", url+"/v1/inventory/last", `{"on_hand":1}`), http.StatusOK)
	const clients = 64
	statuses := make([]int, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			r := e2eDo(t, "POST", url+"/v1/checkouts", checkoutBody(fmt.Sprintf("co-last-%d", i), "last", 1, "tok_visa"))
			statuses[i] = r.status
		})
	}
	wg.Wait()
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	assert.Equal(t, map[int]int{http.StatusCreated: 1, http.StatusConflict: clients - 1}, count)
	requireStock(t, url, "last", 1, 1)
}
