package main

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// TestOrderContentsEndToEnd: what a create orders and the metadata of every
// event go through the real server and the embedded broker: GET shows the
// order with its total and merged metadata, the history each event's own,
// the same Idempotency-Key with other items is 422, and all of it is in the
// log and back after a restart.
func TestOrderContentsEndToEnd(t *testing.T) {
	dataDir := t.TempDir()
	m, url := e2eStartMain(t, dataDir)
	orders := url + "/v1/orders"
	const create = `{"id":"basket-1","customer_id":"cus-42","currency":"EUR",
		"items":[{"sku":"mug-blue","quantity":2,"unit_price":1250},{"sku":"tea","quantity":3,"unit_price":499}],
		"metadata":{"channel":"web","tracking_number":"none yet"}}`
	first := e2eDo(t, "POST", orders, create, "Idempotency-Key", "basket-key")
	o := e2eRequireStatus(t, first, http.StatusCreated)
	assert.Equal(t, float64(2*1250+3*499), o["total"])

	r := e2eDo(t, "POST", orders, create, "Idempotency-Key", "basket-key")
	e2eRequireStatus(t, r, http.StatusCreated)
	assert.Equal(t, string(first.body), string(r.body), "a retry gets the first answer, contents included")
	other := `{"id":"basket-1","customer_id":"cus-42","currency":"EUR","items":[{"sku":"mug-blue","quantity":1,"unit_price":1250}]}`
	e2eRequireProblem(t, e2eDo(t, "POST", orders, other, "Idempotency-Key", "basket-key"), http.StatusUnprocessableEntity, "idempotency-key-reused")

	e2eRequireStatus(t, e2eDo(t, "POST", orders+"/basket-1/transitions", `{"to":"Paid"}`), http.StatusOK)
	shipped := e2eRequireStatus(t, e2eDo(t, "POST", orders+"/basket-1/transitions",
		`{"to":"Shipped","metadata":{"tracking_number":"00340434","carrier":"DHL"}}`), http.StatusOK)
	wantMetadata := map[string]any{"channel": "web", "tracking_number": "00340434", "carrier": "DHL"}
	assert.Equal(t, wantMetadata, shipped["metadata"], "merged, later keys winning")
	p := e2eRequireProblem(t, e2eDo(t, "POST", orders+"/basket-1/transitions", `{"to":"Delivered","metadata":{"a b":"c"}}`),
		http.StatusBadRequest, "bad-request")
	assert.Equal(t, "metadata", p["field"])

	check := func(t *testing.T, url string) {
		got := e2eRequireStatus(t, e2eDo(t, "GET", url+"/v1/orders/basket-1", ""), http.StatusOK)
		assert.Equal(t, "Shipped", got["state"])
		assert.Equal(t, "cus-42", got["customer_id"])
		assert.Equal(t, "EUR", got["currency"])
		assert.Equal(t, float64(3997), got["total"])
		assert.Len(t, got["items"], 2)
		assert.Equal(t, wantMetadata, got["metadata"])
		history := e2eRequireStatus(t, e2eDo(t, "GET", url+"/v1/orders/basket-1/history", ""), http.StatusOK)
		transitions := history["transitions"].([]any)
		require.Len(t, transitions, 3, "nothing refused was applied")
		creation, paid, ship := transitions[0].(map[string]any), transitions[1].(map[string]any), transitions[2].(map[string]any)
		assert.Equal(t, float64(3997), creation["total"])
		assert.Equal(t, map[string]any{"channel": "web", "tracking_number": "none yet"}, creation["metadata"])
		assert.NotContains(t, paid, "metadata")
		assert.Equal(t, map[string]any{"tracking_number": "00340434", "carrier": "DHL"}, ship["metadata"])
	}
	check(t, url)
	require.NoError(t, m.Close())
	m, url = e2eStartMain(t, dataDir)
	t.Run("AfterRestart", func(t *testing.T) { check(t, url) })
	e2eRequireStatus(t, e2eDo(t, "POST", url+"/v1/orders", create, "Idempotency-Key", "basket-key"), http.StatusCreated)
	require.NoError(t, m.Close())

	events := e2eReadLogInDir(t, dataDir)["basket-1"]
	require.Len(t, events, 3)
	assert.Equal(t, "cus-42", events[0].CustomerID)
	assert.Equal(t, []order.Item{{SKU: "mug-blue", Quantity: 2, UnitPrice: 1250}, {SKU: "tea", Quantity: 3, UnitPrice: 499}}, events[0].Items)
	assert.Equal(t, int64(3997), events[0].Total)
	assert.Nil(t, events[1].Metadata)
	assert.Equal(t, map[string]string{"tracking_number": "00340434", "carrier": "DHL"}, events[2].Metadata)
}
