package http

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/order"
)

type holdBody struct {
	OrderID      string `json:"order_id"`
	Status       string `json:"status"`
	Quantity     int64  `json:"quantity"`
	OrderVersion uint64 `json:"order_version"`
	Version      uint64 `json:"version"`
}

type holdResultBody struct {
	Applied bool      `json:"applied"`
	Stock   stockBody `json:"stock"`
	Hold    holdBody  `json:"hold"`
}

func holdResultOf(t *testing.T, r reply) holdResultBody {
	t.Helper()
	require.Equal(t, 200, r.status, string(r.body))
	var res holdResultBody
	require.NoError(t, json.Unmarshal(r.body, &res), string(r.body))
	return res
}

// TestHoldsHTTP: the ledger through POST /v1/inventory/{sku}/holds/{order_id}
// on a real actor system: every change, its no-ops, both refusals with
// their members, and every answer checked against the OpenAPI document.
func TestHoldsHTTP(t *testing.T) {
	h, _, j := newInventoryHarness(t)
	require.Equal(t, 200, h.do("PUT", "/v1/inventory/mug", `{"on_hand":5}`).status)

	res := holdResultOf(t, h.do("POST", "/v1/inventory/mug/holds/o-1", `{"change":"reserve","quantity":3,"order_version":1}`))
	assert.Equal(t, holdResultBody{Applied: true, Stock: stockBody{SKU: "mug", OnHand: 5, Reserved: 3, Available: 2, Version: 2},
		Hold: holdBody{OrderID: "o-1", Status: "held", Quantity: 3, OrderVersion: 1, Version: 2}}, res)
	r := h.do("POST", "/v1/inventory/mug/holds/o-1", `{"change":"reserve","quantity":3}`)
	assert.Equal(t, `"2"`, r.header.Get("ETag"))
	res = holdResultOf(t, r)
	assert.False(t, res.Applied, "a retry holds nothing more")
	assert.Equal(t, int64(3), res.Stock.Reserved)

	r = h.do("POST", "/v1/inventory/mug/holds/o-1", `{"change":"reserve","quantity":2}`)
	p := requireProblem(t, r, 409, "hold-conflict")
	assert.Equal(t, map[string]any{"order_id": "o-1", "status": "held", "quantity": float64(3), "order_version": float64(1), "version": float64(2)}, p["hold"])

	r = h.do("POST", "/v1/inventory/mug/holds/o-2", `{"change":"reserve","quantity":4}`)
	p = requireProblem(t, r, 409, "out-of-stock")
	assert.Equal(t, []any{"mug"}, p["out_of_stock"])
	assert.Equal(t, float64(2), p["available"])
	assert.Contains(t, p["detail"], "sku mug: 4 requested, 2 available")
	r = h.do("POST", "/v1/inventory/ghost/holds/o-2", `{"change":"reserve","quantity":1}`)
	p = requireProblem(t, r, 409, "out-of-stock")
	assert.Equal(t, []any{"ghost"}, p["out_of_stock"], "a SKU never counted has nothing available")

	r = h.do("POST", "/v1/inventory/mug/holds/o-4", `{"change":"consume"}`)
	p = requireProblem(t, r, 409, "hold-conflict")
	assert.Equal(t, "none", p["hold"].(map[string]any)["status"])
	r = h.do("POST", "/v1/inventory/mug/holds/o-1", `{"change":"restock"}`)
	requireProblem(t, r, 409, "hold-conflict")

	res = holdResultOf(t, h.do("POST", "/v1/inventory/mug/holds/o-1", `{"change":"consume","order_version":3}`))
	assert.Equal(t, stockBody{SKU: "mug", OnHand: 2, Reserved: 0, Available: 2, Version: 3}, res.Stock)
	assert.Equal(t, holdBody{OrderID: "o-1", Status: "consumed", Quantity: 3, OrderVersion: 3, Version: 3}, res.Hold)
	res = holdResultOf(t, h.do("POST", "/v1/inventory/mug/holds/o-1", `{"change":"restock","order_version":5}`))
	assert.Equal(t, int64(5), res.Stock.OnHand)
	assert.Equal(t, "restocked", res.Hold.Status)
	res = holdResultOf(t, h.do("POST", "/v1/inventory/mug/holds/o-1", `{"change":"release"}`))
	assert.False(t, res.Applied, "a release after the restock changes nothing")

	res = holdResultOf(t, h.do("POST", "/v1/inventory/mug/holds/o-3", `{"change":"release"}`))
	assert.True(t, res.Applied)
	assert.Equal(t, holdBody{OrderID: "o-3", Status: "released", Version: 5}, res.Hold)
	res = holdResultOf(t, h.do("POST", "/v1/inventory/mug/holds/o-3", `{"change":"reserve","quantity":1}`))
	assert.False(t, res.Applied, "a reserve after its release holds nothing")
	assert.Equal(t, "released", res.Hold.Status)

	before := j.Len()
	for _, tt := range []struct{ path, body, field string }{
		{"/v1/inventory/mug/holds/o-9", `{}`, "change"},
		{"/v1/inventory/mug/holds/o-9", ``, "change"},
		{"/v1/inventory/mug/holds/o-9", `{"change":"set"}`, "change"},
		{"/v1/inventory/mug/holds/o-9", `{"change":"Reserve","quantity":1}`, "change"},
		{"/v1/inventory/mug/holds/o-9", `{"change":3}`, "change"},
		{"/v1/inventory/mug/holds/o-9", `{"change":"reserve"}`, "quantity"},
		{"/v1/inventory/mug/holds/o-9", `{"change":"reserve","quantity":0}`, "quantity"},
		{"/v1/inventory/mug/holds/o-9", `{"change":"reserve","quantity":10001}`, "quantity"},
		{"/v1/inventory/mug/holds/o-9", `{"change":"reserve","quantity":"1"}`, "quantity"},
		{"/v1/inventory/mug/holds/o-9", `{"change":"release","quantity":1}`, "quantity"},
		{"/v1/inventory/mug/holds/o-9", `{"change":"release","order_version":-1}`, "order_version"},
		{"/v1/inventory/mug/holds/o-9", `{"change":"release","order_version":1.5}`, "order_version"},
		{"/v1/inventory/mug/holds/o-9", `{"change":"release","sku":"mug"}`, "sku"},
		{"/v1/inventory/mug/holds/o-9", `{"change":"release","change":"release"}`, "change"},
		{"/v1/inventory/a:b/holds/o-9", `{"change":"release"}`, "sku"},
		{"/v1/inventory/mug/holds/" + strings.Repeat("o", 129), `{"change":"release"}`, "order_id"},
		{"/v1/inventory/mug/holds/o:9", `{"change":"release"}`, "order_id"},
	} {
		r := h.do("POST", tt.path, tt.body)
		assert.Equal(t, 400, r.status, "%s %s: %s", tt.path, tt.body, r.body)
		assert.Equal(t, tt.field, problemOf(t, r)["field"], "%s %s", tt.path, tt.body)
	}
	assert.Equal(t, 415, h.do("POST", "/v1/inventory/mug/holds/o-9", `{"change":"release"}`, "Content-Type", "text/plain").status)
	r = h.do("GET", "/v1/inventory/mug/holds/o-1", "")
	assert.Equal(t, 405, r.status)
	assert.Equal(t, "POST", r.header.Get("Allow"))
	assert.Equal(t, before, j.Len(), "nothing refused is in the log")
}

// refRecorder records the HoldRefs of the hold commands it passes on.
type refRecorder struct {
	invService
	mu   sync.Mutex
	refs []actors.HoldRef
}

func (r *refRecorder) record(ref actors.HoldRef) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refs = append(r.refs, ref)
}

func (r *refRecorder) last() actors.HoldRef {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refs[len(r.refs)-1]
}

func (r *refRecorder) Reserve(ctx context.Context, ref actors.HoldRef, q int64) (actors.InventoryResult, error) {
	r.record(ref)
	return r.invService.Reserve(ctx, ref, q)
}

func (r *refRecorder) Release(ctx context.Context, ref actors.HoldRef) (actors.InventoryResult, error) {
	r.record(ref)
	return r.invService.Release(ctx, ref)
}

// TestHoldsOnBehalfOf: a hold's record names the authenticated principal,
// or the one the node key names in X-Orderd-On-Behalf-Of; any other key
// naming one is refused, and so is a malformed name.
func TestHoldsOnBehalfOf(t *testing.T) {
	const clientToken, nodeToken = "0123456789abcdef-client", "0123456789abcdef-node"
	inv, _, j := newInventoryHarness(t)
	rec := &refRecorder{invService: inv.srv.svc.(invService)}
	// A stopped clock: the buckets never refill, so the client's burst of 3
	// is all it has.
	h := newHarnessFor(t, rec, Config{NodePrincipal: "node", RatePerPrincipal: 1, BurstPerPrincipal: 3, Now: func() time.Time { return t0 },
		APIKeys: []APIKey{{Principal: "alice", Token: clientToken}, {Principal: "node", Token: nodeToken}}})
	client := []string{"Authorization", "Bearer " + clientToken}
	nodeAuth := []string{"Authorization", "Bearer " + nodeToken}
	with := func(auth []string, headers ...string) []string {
		return append(append([]string{}, auth...), headers...)
	}

	require.Equal(t, 200, h.do("PUT", "/v1/inventory/mug", `{"on_hand":5}`, client...).status)
	before := j.Len()
	r := h.do("POST", "/v1/inventory/mug/holds/o-1", `{"change":"reserve","quantity":1}`, with(client, "X-Orderd-On-Behalf-Of", "bob")...)
	requireProblem(t, r, 403, "forbidden")
	r = h.do("PUT", "/v1/inventory/mug", `{"on_hand":6}`, with(client, "X-Orderd-On-Behalf-Of", "bob")...)
	requireProblem(t, r, 403, "forbidden")
	assert.Equal(t, before, j.Len())
	require.Equal(t, 200, h.do("PUT", "/v1/inventory/mug", `{"on_hand":5}`, with(nodeAuth, "X-Orderd-On-Behalf-Of", "bob")...).status)

	holdResultOf(t, h.do("POST", "/v1/inventory/mug/holds/o-1", `{"change":"reserve","quantity":1}`,
		with(nodeAuth, "X-Orderd-On-Behalf-Of", "bob", "X-Request-ID", "checkout-7")...))
	assert.Equal(t, actors.HoldRef{SKU: "mug", OrderID: "o-1", Principal: "bob", RequestID: "checkout-7"}, rec.last())
	holdResultOf(t, h.do("POST", "/v1/inventory/mug/holds/o-1", `{"change":"release"}`, nodeAuth...))
	assert.Equal(t, "node", rec.last().Principal, "without the header the node acts as itself")

	r = h.do("POST", "/v1/inventory/mug/holds/o-2", `{"change":"release"}`, with(nodeAuth, "X-Orderd-On-Behalf-Of", "b\u00f6b")...)
	assert.Equal(t, "X-Orderd-On-Behalf-Of", requireProblem(t, r, 400, "bad-request")["field"])
	r = h.do("POST", "/v1/inventory/mug/holds/o-2", `{"change":"release"}`, with(nodeAuth, "X-Orderd-On-Behalf-Of", strings.Repeat("b", 65))...)
	assert.Equal(t, 400, r.status)

	// The client's three are spent; the node is not limited: its calls were
	// limited where they entered the cluster.
	for i := range 5 {
		holdResultOf(t, h.do("POST", fmt.Sprintf("/v1/inventory/mug/holds/n-%d", i), `{"change":"release"}`, nodeAuth...))
	}
	r = h.do("POST", "/v1/inventory/mug/holds/o-3", `{"change":"release"}`, client...)
	requireProblem(t, r, 429, "rate-limited")
}

// TestHoldsWithoutKeys: with no API keys there are no identities to
// protect, so the header is honoured from anyone (a cluster's nodes then
// carry the checkout's principal too).
func TestHoldsWithoutKeys(t *testing.T) {
	inv, _, _ := newInventoryHarness(t)
	rec := &refRecorder{invService: inv.srv.svc.(invService)}
	h := newHarnessFor(t, rec, Config{})
	holdResultOf(t, h.do("POST", "/v1/inventory/mug/holds/o-1", `{"change":"release"}`, "X-Orderd-On-Behalf-Of", "bob"))
	assert.Equal(t, "bob", rec.last().Principal)
	holdResultOf(t, h.do("POST", "/v1/inventory/mug/holds/o-2", `{"change":"release"}`))
	assert.Equal(t, "anonymous", rec.last().Principal)
}

// TestHoldsForwardedToOwner: in a cluster a hold request is served by the
// owner of the SKU's record key's partition, with the principal it acts for.
func TestHoldsForwardedToOwner(t *testing.T) {
	fc := &fakeCluster{}
	entry := newNode(t, fc, 1, Config{NodePrincipal: "ops"})
	fc.ownAll(entry.url)

	inv, _, _ := newInventoryHarness(t)
	rec := &refRecorder{invService: inv.srv.svc.(invService)}
	router := &fakeRouter{cluster: fc}
	router.self.Store(new(string))
	owner := newHarnessFor(t, rec, Config{Router: router, NodePrincipal: "ops", APIKeys: []APIKey{{Principal: "ops", Token: clusterToken}}})
	router.self.Store(&owner.url)
	p := partitionOfKey(order.InventoryKey("mug"))
	fc.own(owner.url, p)

	r := entry.do("POST", "/v1/inventory/mug/holds/o-1", `{"change":"release"}`, withAuth("X-Orderd-On-Behalf-Of", "bob")...)
	res := holdResultOf(t, r)
	assert.Equal(t, "released", res.Hold.Status)
	assert.Equal(t, "bob", rec.last().Principal)
	assert.True(t, entry.router.wasAsked(p), "routed by the record key's partition")
	r = entry.do("POST", "/v1/inventory/mug/holds/o:1", `{"change":"release"}`, clusterAuth...)
	assert.Equal(t, "order_id", requireProblem(t, r, 400, "bad-request")["field"], "refused before any hop")
	requireForwards(t, entry, "ok", 1)
}
