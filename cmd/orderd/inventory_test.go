package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/order"
)

type stockView struct {
	SKU       string `json:"sku"`
	OnHand    int64  `json:"on_hand"`
	Reserved  int64  `json:"reserved"`
	Available int64  `json:"available"`
	Version   uint64 `json:"version"`
}

// TestInventorySurvivesRestart: on the real server (embedded broker, state
// store, HTTP on port 0), a SKU's stock, version and ledger of holds come
// back after a restart: from the store, with the log's tail. A reserve
// retried after the restart holds nothing more, a release gives back what
// was held, a consume of a consumed hold is a no-op.
func TestInventorySurvivesRestart(t *testing.T) {
	dataDir := t.TempDir()
	m, url := e2eStartMain(t, dataDir)
	r := e2eDo(t, "PUT", url+"/v1/inventory/mug", `{"on_hand":10}`)
	require.Equal(t, 200, r.status, r.body)
	ctx := context.Background()
	ref := func(id string) actors.HoldRef { return actors.HoldRef{SKU: "mug", OrderID: id, OrderVersion: 1} }
	_, err := m.system.Reserve(ctx, ref("a"), 3)
	require.NoError(t, err)
	_, err = m.system.Reserve(ctx, ref("b"), 2)
	require.NoError(t, err)
	_, err = m.system.Consume(ctx, ref("b"))
	require.NoError(t, err)
	want := stockView{SKU: "mug", OnHand: 8, Reserved: 3, Available: 5, Version: 4}
	r = e2eDo(t, "GET", url+"/v1/inventory/mug", "")
	require.Equal(t, 200, r.status, r.body)
	var got stockView
	require.NoError(t, json.Unmarshal([]byte(r.body), &got))
	assert.Equal(t, want, got)
	require.NoError(t, m.Close())

	m, url = e2eStartMain(t, dataDir)
	r = e2eDo(t, "GET", url+"/v1/inventory/mug", "")
	require.Equal(t, 200, r.status, r.body)
	require.NoError(t, json.Unmarshal([]byte(r.body), &got))
	assert.Equal(t, want, got, "after the restart")
	res, err := m.system.Reserve(ctx, ref("a"), 3)
	require.NoError(t, err)
	assert.False(t, res.Applied, "a's hold came back")
	res, err = m.system.Consume(ctx, ref("b"))
	require.NoError(t, err)
	assert.False(t, res.Applied, "b's consumption came back")
	assert.Equal(t, order.HoldConsumed, res.Hold.Status)
	res, err = m.system.Release(ctx, ref("a"))
	require.NoError(t, err)
	assert.True(t, res.Applied)
	assert.Equal(t, order.Stock{SKU: "mug", OnHand: 8, Reserved: 0, Version: 5}, res.Stock)
	r = e2eDo(t, "GET", url+"/v1/inventory/ghost", "")
	assert.Equal(t, 404, r.status, r.body)
}
