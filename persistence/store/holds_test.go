package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence/store"
)

func openHolds(t *testing.T, st *store.Store) []string {
	t.Helper()
	var got []string
	require.NoError(t, st.OpenHolds(context.Background(), func(sku, orderID string, h order.Hold) error {
		got = append(got, sku+"/"+orderID+"/"+h.Status.String())
		return nil
	}))
	return got
}

// TestOpenHolds: the held index follows each hold in the batch that moves
// it, survives a reopen, and a consumed hold is open only once its order
// is returned.
func TestOpenHolds(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, testID)
	invRec := func(p int, next int64, evs ...order.InventoryEvent) {
		b := st.NewBatch(p)
		defer b.Close()
		for _, ev := range evs {
			require.NoError(t, b.ApplyInventory(ev))
		}
		require.NoError(t, b.Commit(next))
	}
	invRec(1, 5,
		invEvent(1, order.StockSet, "", 0, 5, 0),
		invEvent(2, order.StockReserve, "o-1", 2, 5, 2),
		invEvent(3, order.StockReserve, "o-2", 1, 5, 3))
	assert.Equal(t, []string{"mug/o-1/held", "mug/o-2/held"}, openHolds(t, st))

	invRec(1, 6, invEvent(4, order.StockConsume, "o-1", 2, 3, 1), invEvent(5, order.StockRelease, "o-2", 1, 3, 0))
	assert.Empty(t, openHolds(t, st), "consumed by an order not returned, and released")

	// o-1 returned: its consumed hold owes a restock.
	created := creation("o-1", "cus")
	created.Items = []order.Item{{SKU: "mug", Quantity: 2, UnitPrice: 100}}
	created.Total = 200
	evs := []order.Event{created}
	for v, s := range []order.State{order.Paid, order.Shipped, order.Delivered, order.Returned} {
		evs = append(evs, step("o-1", uint64(v+1), evs[len(evs)-1].To, s))
	}
	for _, err := range apply(t, st, 0, 5, evs...) {
		require.NoError(t, err)
	}
	require.NoError(t, st.Close())
	st = open(t, dir, testID)
	defer st.Close()
	assert.Equal(t, []string{"mug/o-1/consumed"}, openHolds(t, st))

	invRec(1, 7, invEvent(6, order.StockRestock, "o-1", 2, 5, 0))
	assert.Empty(t, openHolds(t, st))
}
