package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

func invEvent(version uint64, change order.StockChange, orderID string, q, onHand, reserved int64) order.InventoryEvent {
	return order.InventoryEvent{EventID: "e", SKU: "mug", Version: version, Change: change, Quantity: q,
		OnHand: onHand, Reserved: reserved, OrderID: orderID, At: testEpoch}
}

// TestStoreInventory: the stock and the holds follow the records by the one
// rule, skipped records change nothing, and both survive a reopen; a view
// sees one moment.
func TestStoreInventory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := open(t, dir, testID)
	b := st.NewBatch(1)
	for i, ev := range []order.InventoryEvent{
		invEvent(1, order.StockSet, "", 0, 5, 0),
		invEvent(2, order.StockReserve, "o-1", 2, 5, 2),
		invEvent(3, order.StockReserve, "o-2", 1, 5, 3),
		invEvent(4, order.StockConsume, "o-1", 2, 3, 1),
	} {
		require.NoError(t, b.ApplyInventory(ev), "record %d", i)
	}
	// Within the batch too, the rule sees what the batch did.
	require.ErrorIs(t, b.ApplyInventory(invEvent(4, order.StockRelease, "o-2", 1, 3, 0)), order.ErrRecordDuplicate)
	require.ErrorIs(t, b.ApplyInventory(invEvent(5, order.StockRelease, "o-1", 2, 3, -1)), order.ErrRecordFork)
	require.NoError(t, b.Commit(9))
	b.Close()

	view, err := st.InventoryView(1)
	require.NoError(t, err)
	b = st.NewBatch(1)
	require.NoError(t, b.ApplyInventory(invEvent(5, order.StockRelease, "o-2", 1, 3, 0)))
	require.NoError(t, b.Commit(10))
	b.Close()
	assert.Equal(t, int64(9), view.Checkpoint)
	s, err := view.Stock("mug")
	require.NoError(t, err)
	assert.Equal(t, order.Stock{SKU: "mug", OnHand: 3, Reserved: 1, Version: 4}, s, "the view is of its moment")
	h, err := view.Hold("mug", "o-2")
	require.NoError(t, err)
	assert.Equal(t, order.HoldHeld, h.Status)
	require.NoError(t, view.Close())

	require.NoError(t, st.Close())
	st = open(t, dir, testID)
	defer st.Close()
	s, err = st.Stock(ctx, "mug")
	require.NoError(t, err)
	assert.Equal(t, order.Stock{SKU: "mug", OnHand: 3, Reserved: 0, Version: 5}, s)
	h, err = st.Hold(ctx, "mug", "o-1")
	require.NoError(t, err)
	assert.Equal(t, order.Hold{Status: order.HoldConsumed, Quantity: 2, Version: 4}, h)
	h, err = st.Hold(ctx, "mug", "o-2")
	require.NoError(t, err)
	assert.Equal(t, order.Hold{Status: order.HoldReleased, Quantity: 1, Version: 5}, h)
	h, err = st.Hold(ctx, "mug", "o-3")
	require.NoError(t, err)
	assert.Zero(t, h)
	s, err = st.Stock(ctx, "tea")
	require.NoError(t, err)
	assert.Zero(t, s)
	require.NoError(t, st.Verify(ctx))
}
