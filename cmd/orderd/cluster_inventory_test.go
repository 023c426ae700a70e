package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/order"
)

// TestClusterInventoryAcrossNodes: two orderd nodes (in this process, so
// that the test can call node A's inventory as its saga will) on one
// `orderd broker`, with API keys and a node key. A reserve through node A of
// a SKU node B serves goes to B over the hold route and holds the stock
// (GET on either node shows it reserved), out of stock comes back typed,
// and a release gives the stock back.
func TestClusterInventoryAcrossNodes(t *testing.T) {
	c := startKeyedPair(t, "inventory-test")
	a, b, urlA, urlB, alice := c.a, c.b, c.urlA, c.urlB, c.auth
	// A SKU whose partition B serves, as A sees it, once the group has
	// settled on both nodes.
	sku := servedBy(t, b, a, urlB, order.InventoryKey, func(k int) string { return fmt.Sprintf("sku-%d", k) })
	require.Equal(t, 200, e2eDo(t, "PUT", urlA+"/v1/inventory/"+sku, `{"on_hand":5}`, alice...).status)

	inv := a.clusterInventory()
	defer inv.(*routedInventory).close()
	ctx := context.Background()
	ref := actors.HoldRef{SKU: sku, OrderID: "o-1", OrderVersion: 1, Principal: "alice", RequestID: "checkout-1"}
	res := untilNotPassing(t, func() (actors.InventoryResult, error) { return inv.Reserve(ctx, ref, 3) })
	assert.True(t, res.Applied)
	assert.Equal(t, order.Stock{SKU: sku, OnHand: 5, Reserved: 3, Version: 2}, res.Stock)
	assert.Equal(t, order.HoldHeld, res.Hold.Status)
	for _, url := range []string{urlA, urlB} {
		assert.Equal(t, int64(3), stockAt(t, url, sku, alice).Reserved, "GET on %s", url)
	}

	_, err := inv.Reserve(ctx, actors.HoldRef{SKU: sku, OrderID: "o-2", Principal: "alice"}, 4)
	var oos *order.OutOfStockError
	require.ErrorAs(t, err, &oos)
	assert.Equal(t, &order.OutOfStockError{SKU: sku, Requested: 4, Available: 2}, oos)

	res = untilNotPassing(t, func() (actors.InventoryResult, error) { return inv.Release(ctx, ref) })
	assert.True(t, res.Applied)
	assert.Equal(t, order.HoldReleased, res.Hold.Status)
	for _, url := range []string{urlA, urlB} {
		assert.Equal(t, int64(0), stockAt(t, url, sku, alice).Reserved, "GET on %s", url)
	}
	assert.Positive(t, holdRequestsServed(t, urlB, alice), "B served the hold route")
	assert.Zero(t, holdRequestsServed(t, urlA, alice), "A sent its calls straight to B")
}

// ownerSeenBy is the URL m's router gives for p, "" for this node or none.
func ownerSeenBy(m *Main, p int) string {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	url, local, err := m.router.Owner(ctx, p)
	if err != nil || local {
		return ""
	}
	return url
}

// untilNotPassing calls f until it fails for a reason other than a passing
// one (a rebalance still settling), as the saga retries.
func untilNotPassing(t *testing.T, f func() (actors.InventoryResult, error)) actors.InventoryResult {
	t.Helper()
	deadline := time.Now().Add(roomyTimeout)
	for {
		res, err := f()
		if err == nil {
			return res
		}
		require.True(t, isPassing(err) && time.Now().Before(deadline), "%v", err)
		time.Sleep(probePause)
	}
}

func stockAt(t *testing.T, url, sku string, auth []string) stockView {
	t.Helper()
	r := e2eDo(t, "GET", url+"/v1/inventory/"+sku, "", auth...)
	require.Equal(t, 200, r.status, "%s", r.body)
	var st stockView
	require.NoError(t, json.Unmarshal(r.body, &st))
	return st
}

// holdRequestsServed adds up a node's orderd_http_requests_total of the
// hold route.
func holdRequestsServed(t *testing.T, url string, auth []string) int {
	t.Helper()
	r := e2eDo(t, "GET", url+"/metrics", "", auth...)
	require.Equal(t, 200, r.status)
	n := 0
	for _, line := range strings.Split(string(r.body), "\n") {
		if strings.HasPrefix(line, "orderd_http_requests_total{") && strings.Contains(line, "/holds/") {
			var v float64
			_, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			require.NoError(t, err)
			n += int(v)
		}
	}
	return n
}
