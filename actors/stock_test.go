package actors

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
)

// TestStockAdapters: the saga's and the actions' views of a real SKU
// actor. The saga's release of nothing is recorded (a late reserve must
// find it); an action on an order that holds nothing records nothing and
// says so as ErrHoldConflict (consume) or success (release), which the
// actions take as nothing to do.
func TestStockAdapters(t *testing.T) {
	j := persistence.NewMemoryJournal()
	s := newSystem(t, j)
	ctx := ctxFor(t)
	setStock(t, s, 3)
	saga, acts := CheckoutStock(s), ActionStock(s)

	require.NoError(t, saga.Reserve(ctx, "mug", "co-1", 2))
	var oos *order.OutOfStockError
	require.ErrorAs(t, saga.Reserve(ctx, "mug", "co-2", 2), &oos)
	require.NoError(t, saga.Release(ctx, "mug", "co-2"), "the saga releases what it may have held")
	assert.Equal(t, 3, j.Len(), "set, reserve, and the release of nothing that stops a late reserve")

	require.NoError(t, acts.Release(ctx, "mug", "plain", 2), "an order created without a checkout")
	assert.ErrorIs(t, acts.Consume(ctx, "mug", "plain", 3), order.ErrHoldConflict)
	assert.Equal(t, 3, j.Len(), "an action on an order without a hold records nothing")

	require.NoError(t, acts.Consume(ctx, "mug", "co-1", 3))
	require.NoError(t, acts.Restock(ctx, "mug", "co-1", 5))
	st, err := s.GetStock(ctx, "mug")
	require.NoError(t, err)
	assert.Equal(t, order.Stock{SKU: "mug", OnHand: 3, Reserved: 0, Version: 5}, st)
	load, err := j.LoadInventory(ctx, "mug")
	require.NoError(t, err)
	assert.Equal(t, order.Hold{Status: order.HoldRestocked, Quantity: 2, OrderVersion: 5, Version: 5}, load.Holds["co-1"])
}
