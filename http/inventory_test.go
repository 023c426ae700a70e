package http

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
)

// invService is fakeService for orders and a real actor system on an
// in-memory journal for inventory.
type invService struct {
	*fakeService
	sys *actors.System
}

var _ actors.InventoryService = invService{}

func (s invService) GetStock(ctx context.Context, sku string) (order.Stock, error) {
	return s.sys.GetStock(ctx, sku)
}
func (s invService) SetStock(ctx context.Context, set actors.StockSet) (order.Stock, error) {
	return s.sys.SetStock(ctx, set)
}
func (s invService) Reserve(ctx context.Context, r actors.HoldRef, q int64) (actors.InventoryResult, error) {
	return s.sys.Reserve(ctx, r, q)
}
func (s invService) Release(ctx context.Context, r actors.HoldRef) (actors.InventoryResult, error) {
	return s.sys.Release(ctx, r)
}
func (s invService) Consume(ctx context.Context, r actors.HoldRef) (actors.InventoryResult, error) {
	return s.sys.Consume(ctx, r)
}
func (s invService) Restock(ctx context.Context, r actors.HoldRef) (actors.InventoryResult, error) {
	return s.sys.Restock(ctx, r)
}

func newInventoryHarness(t *testing.T) (*harness, *actors.System, *persistence.MemoryJournal) {
	j := persistence.NewMemoryJournal()
	sys, err := actors.New(actors.Config{Journal: j, Shards: 4, ShardOf: func(k string) int {
		h := fnv.New32a()
		h.Write([]byte(k))
		return int(h.Sum32() % 4)
	}})
	require.NoError(t, err)
	_, err = sys.Recover(context.Background())
	require.NoError(t, err)
	t.Cleanup(sys.Close)
	return newHarnessFor(t, invService{fakeService: &fakeService{}, sys: sys}, Config{}), sys, j
}

type stockBody struct {
	SKU       string `json:"sku"`
	OnHand    int64  `json:"on_hand"`
	Reserved  int64  `json:"reserved"`
	Available int64  `json:"available"`
	Version   uint64 `json:"version"`
}

func problemOf(t *testing.T, r reply) map[string]any {
	t.Helper()
	var p map[string]any
	require.NoError(t, json.Unmarshal(r.body, &p), string(r.body))
	return p
}

// TestInventoryHTTP: the contract of PUT and GET /v1/inventory/{sku}, every
// answer checked against the OpenAPI document by the harness.
func TestInventoryHTTP(t *testing.T) {
	h, sys, j := newInventoryHarness(t)

	r := h.do("GET", "/v1/inventory/mug", "")
	assert.Equal(t, 404, r.status)
	assert.Equal(t, "urn:orderd:problem:sku-not-found", problemOf(t, r)["type"])

	r = h.do("PUT", "/v1/inventory/mug", `{"on_hand": 5}`, "Idempotency-Key", "count-1")
	require.Equal(t, 200, r.status, string(r.body))
	assert.Equal(t, `"1"`, r.header.Get("ETag"))
	var st stockBody
	require.NoError(t, json.Unmarshal(r.body, &st))
	assert.Equal(t, stockBody{SKU: "mug", OnHand: 5, Available: 5, Version: 1}, st)

	_, err := sys.Reserve(context.Background(), actors.HoldRef{SKU: "mug", OrderID: "o-1"}, 2)
	require.NoError(t, err)
	r = h.do("GET", "/v1/inventory/mug", "")
	require.Equal(t, 200, r.status)
	assert.Equal(t, `"2"`, r.header.Get("ETag"))
	require.NoError(t, json.Unmarshal(r.body, &st))
	assert.Equal(t, stockBody{SKU: "mug", OnHand: 5, Reserved: 2, Available: 3, Version: 2}, st)
	assert.Equal(t, 200, h.do("HEAD", "/v1/inventory/mug", "").status)

	r = h.do("PUT", "/v1/inventory/mug", `{"on_hand": 1}`)
	assert.Equal(t, 409, r.status)
	p := problemOf(t, r)
	assert.Equal(t, "urn:orderd:problem:stock-reserved", p["type"])
	assert.Contains(t, p["detail"], "2 units are reserved")

	r = h.do("PUT", "/v1/inventory/mug", `{"on_hand": 7}`, "If-Match", `"1"`)
	assert.Equal(t, 412, r.status)
	assert.Equal(t, float64(2), problemOf(t, r)["current_version"])
	r = h.do("PUT", "/v1/inventory/mug", `{"on_hand": 7}`, "If-Match", `"2"`)
	assert.Equal(t, 200, r.status)

	for _, tt := range []struct{ body, field string }{
		{`{}`, "on_hand"},
		{``, "on_hand"},
		{`{"On_hand": 3}`, "On_hand"},
		{`{"on_hand": 3, "on_hand": 4}`, "on_hand"},
		{`{"on_hand": 3, "sku": "mug"}`, "sku"},
		{`{"on_hand": -1}`, "on_hand"},
		{`{"on_hand": 1000000001}`, "on_hand"},
		{`{"on_hand": "3"}`, "on_hand"},
		{`{"on_hand": 3.5}`, "on_hand"},
		{`{"on_hand": 3} {}`, "body"},
	} {
		r := h.do("PUT", "/v1/inventory/mug", tt.body)
		assert.Equal(t, 400, r.status, "%s: %s", tt.body, r.body)
		assert.Equal(t, tt.field, problemOf(t, r)["field"], tt.body)
	}
	for _, path := range []string{"/v1/inventory/a:b", "/v1/inventory/" + string(make([]byte, 0)) + "x%2Fy", fmt.Sprintf("/v1/inventory/%065d", 0)} {
		r := h.do("GET", path, "")
		assert.Equal(t, 400, r.status, "%s: %s", path, r.body)
		assert.Equal(t, "sku", problemOf(t, r)["field"], path)
	}
	assert.Equal(t, 415, h.do("PUT", "/v1/inventory/mug", `{"on_hand": 3}`, "Content-Type", "text/plain").status)
	r = h.do("DELETE", "/v1/inventory/mug", "")
	assert.Equal(t, 405, r.status)
	assert.Equal(t, "GET, HEAD, PUT", r.header.Get("Allow"))
	assert.Equal(t, 3, j.Len(), "only the accepted sets and the reserve are in the log")
}

// TestInventoryHTTPWithoutInventory: a service that keeps no inventory
// answers its routes 404.
func TestInventoryHTTPWithoutInventory(t *testing.T) {
	h := newHarness(t, &fakeService{}, Config{})
	r := h.do("GET", "/v1/inventory/mug", "")
	assert.Equal(t, 404, r.status)
	assert.Equal(t, "urn:orderd:problem:not-found", problemOf(t, r)["type"])
}

// TestInventoryForwardedToOwner: in a cluster, a SKU's requests are served
// by the owner of the partition of the SKU's record key ("inventory:mug"),
// not of the SKU itself.
func TestInventoryForwardedToOwner(t *testing.T) {
	fc := &fakeCluster{}
	entry := newNode(t, fc, 1, Config{})
	fc.ownAll(entry.url)

	inv, _, _ := newInventoryHarness(t) // for its system only
	router := &fakeRouter{cluster: fc}
	router.self.Store(new(string))
	owner := newHarnessFor(t, inv.srv.svc, Config{Router: router, APIKeys: []APIKey{{Principal: "ops", Token: clusterToken}}})
	router.self.Store(&owner.url)
	p := partitionOfKey(order.InventoryKey("mug"))
	fc.own(owner.url, p)
	require.NotEqual(t, p, partitionOfKey("mug"), "the test needs the SKU and its key in different partitions")

	r := entry.do("PUT", "/v1/inventory/mug", `{"on_hand":3}`, clusterAuth...)
	require.Equal(t, 200, r.status, string(r.body))
	r = entry.do("GET", "/v1/inventory/mug", "", clusterAuth...)
	require.Equal(t, 200, r.status, string(r.body))
	assert.Equal(t, `"1"`, r.header.Get("ETag"))
	assert.True(t, entry.router.wasAsked(p), "routed by the record key's partition")
	requireForwards(t, entry, "ok", 2)
}
