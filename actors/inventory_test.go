package actors

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
)

func ref(orderID string) HoldRef {
	return HoldRef{SKU: "mug", OrderID: orderID, OrderVersion: 1, Principal: "saga"}
}

func setStock(t *testing.T, s *System, n int64) order.Stock {
	t.Helper()
	st, err := s.SetStock(ctxFor(t), StockSet{SKU: "mug", OnHand: n, Principal: "admin"})
	require.NoError(t, err)
	return st
}

// TestInventoryThroughActors: every command once and again; the second of
// each is a no-op that appends nothing; the log holds exactly the changes.
func TestInventoryThroughActors(t *testing.T) {
	j := persistence.NewMemoryJournal()
	s := newSystem(t, j)
	ctx := ctxFor(t)

	_, err := s.GetStock(ctx, "mug")
	require.ErrorIs(t, err, order.ErrSKUNotFound)
	assert.Equal(t, order.Stock{SKU: "mug", OnHand: 5, Version: 1}, setStock(t, s, 5))

	steps := []struct {
		name    string
		do      func() (InventoryResult, error)
		applied bool
		stock   order.Stock
	}{
		{"reserve a", func() (InventoryResult, error) { return s.Reserve(ctx, ref("a"), 2) }, true, order.Stock{SKU: "mug", OnHand: 5, Reserved: 2, Version: 2}},
		{"reserve a again", func() (InventoryResult, error) { return s.Reserve(ctx, ref("a"), 2) }, false, order.Stock{SKU: "mug", OnHand: 5, Reserved: 2, Version: 2}},
		{"reserve b", func() (InventoryResult, error) { return s.Reserve(ctx, ref("b"), 3) }, true, order.Stock{SKU: "mug", OnHand: 5, Reserved: 5, Version: 3}},
		{"consume a", func() (InventoryResult, error) { return s.Consume(ctx, ref("a")) }, true, order.Stock{SKU: "mug", OnHand: 3, Reserved: 3, Version: 4}},
		{"consume a again", func() (InventoryResult, error) { return s.Consume(ctx, ref("a")) }, false, order.Stock{SKU: "mug", OnHand: 3, Reserved: 3, Version: 4}},
		{"release a after consume", func() (InventoryResult, error) { return s.Release(ctx, ref("a")) }, false, order.Stock{SKU: "mug", OnHand: 3, Reserved: 3, Version: 4}},
		{"release b", func() (InventoryResult, error) { return s.Release(ctx, ref("b")) }, true, order.Stock{SKU: "mug", OnHand: 3, Reserved: 0, Version: 5}},
		{"late reserve b", func() (InventoryResult, error) { return s.Reserve(ctx, ref("b"), 3) }, false, order.Stock{SKU: "mug", OnHand: 3, Reserved: 0, Version: 5}},
		{"restock a", func() (InventoryResult, error) { return s.Restock(ctx, ref("a")) }, true, order.Stock{SKU: "mug", OnHand: 5, Reserved: 0, Version: 6}},
		{"restock a again", func() (InventoryResult, error) { return s.Restock(ctx, ref("a")) }, false, order.Stock{SKU: "mug", OnHand: 5, Reserved: 0, Version: 6}},
	}
	for _, st := range steps {
		r, err := st.do()
		require.NoError(t, err, st.name)
		assert.Equal(t, st.applied, r.Applied, st.name)
		assert.Equal(t, st.stock, r.Stock, st.name)
	}
	assert.Equal(t, 6, j.Len(), "one record per change, none for the no-ops")
	got, err := s.GetStock(ctx, "mug")
	require.NoError(t, err)
	assert.Equal(t, order.Stock{SKU: "mug", OnHand: 5, Version: 6}, got)

	_, err = s.Consume(ctx, ref("never"))
	assert.ErrorIs(t, err, order.ErrHoldConflict)
	_, err = s.Reserve(ctx, ref("c"), 6)
	var oos *order.OutOfStockError
	require.ErrorAs(t, err, &oos)
	assert.Equal(t, int64(5), oos.Available)
	_, err = s.SetStock(ctx, StockSet{SKU: "mug", OnHand: 1, ExpectedVersion: 3})
	assert.ErrorIs(t, err, order.ErrVersionMismatch)
	_, err = s.GetStock(ctx, "no/such")
	assert.ErrorIs(t, err, order.ErrInvalidInventory)
	assert.Equal(t, 6, j.Len(), "nothing refused was written")
}

// TestLastUnitOneWinner: 64 orders reserve the last unit at once: exactly
// one holds it, the rest are out of stock, and the log agrees.
func TestLastUnitOneWinner(t *testing.T) {
	j := persistence.NewMemoryJournal()
	s := newSystem(t, j)
	setStock(t, s, 1)
	const buyers = 64
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		won, lost int
	)
	for i := range buyers {
		wg.Go(func() {
			_, err := s.Reserve(ctxFor(t), ref(fmt.Sprintf("o-%d", i)), 1)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case assert.ErrorIs(t, err, order.ErrOutOfStock):
				lost++
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 1, won)
	assert.Equal(t, buyers-1, lost)
	load, err := j.LoadInventory(ctxFor(t), "mug")
	require.NoError(t, err)
	assert.Equal(t, order.Stock{SKU: "mug", OnHand: 1, Reserved: 1, Version: 2}, load.Stock)
	assert.Len(t, load.Holds, 1)
}

// TestInventoryUnknownOutcomeSettles: after an append whose outcome is
// unknown, the SKU reads the log before its next command, so the retry is
// a no-op if the record landed and is applied now if it did not: once
// either way.
func TestInventoryUnknownOutcomeSettles(t *testing.T) {
	for _, tt := range []struct {
		fault   persistence.Fault
		applied bool // the retry's
	}{
		{persistence.FaultUnknownWritten, false},
		{persistence.FaultUnknownNotWritten, true},
	} {
		t.Run(tt.fault.String(), func(t *testing.T) {
			j := persistence.NewMemoryJournal()
			s := newSystem(t, j)
			setStock(t, s, 4)
			j.FailNext(1, tt.fault)
			_, err := s.Reserve(ctxFor(t), ref("a"), 3)
			require.ErrorIs(t, err, order.ErrOutcomeUnknown)
			r, err := s.Reserve(ctxFor(t), ref("a"), 3)
			require.NoError(t, err)
			assert.Equal(t, tt.applied, r.Applied)
			assert.Equal(t, order.Stock{SKU: "mug", OnHand: 4, Reserved: 3, Version: 2}, r.Stock)
			assert.Equal(t, order.HoldHeld, r.Hold.Status)
			assert.Equal(t, 2, j.Len())
		})
	}
}

func TestInventoryJournalUnavailableAppliesNothing(t *testing.T) {
	j := persistence.NewMemoryJournal()
	s := newSystem(t, j)
	setStock(t, s, 4)
	j.FailNext(1, persistence.FaultUnavailable)
	_, err := s.Reserve(ctxFor(t), ref("a"), 3)
	require.ErrorIs(t, err, order.ErrJournalUnavailable)
	got, err := s.GetStock(ctxFor(t), "mug")
	require.NoError(t, err)
	assert.Equal(t, int64(0), got.Reserved)
}

// TestInventoryRecovers: a new System on the same log has every SKU's stock,
// version and holds: a release after the restart gives back what was held.
func TestInventoryRecovers(t *testing.T) {
	j := persistence.NewMemoryJournal()
	s := newSystem(t, j)
	setStock(t, s, 9)
	_, err := s.Reserve(ctxFor(t), ref("a"), 4)
	require.NoError(t, err)
	_, err = s.Reserve(ctxFor(t), ref("b"), 2)
	require.NoError(t, err)
	s.Close()

	s = newSystem(t, j)
	got, err := s.GetStock(ctxFor(t), "mug")
	require.NoError(t, err)
	assert.Equal(t, order.Stock{SKU: "mug", OnHand: 9, Reserved: 6, Version: 3}, got)
	r, err := s.Release(ctxFor(t), ref("a"))
	require.NoError(t, err)
	assert.True(t, r.Applied)
	assert.Equal(t, int64(2), r.Stock.Reserved)
	r, err = s.Reserve(ctxFor(t), ref("b"), 2)
	require.NoError(t, err)
	assert.False(t, r.Applied, "b's hold survived the restart")
}

// TestSKUPassivation: an idle SKU's actor stops and its next command finds
// what it knew; a SKU nothing was recorded for leaves nothing behind.
func TestSKUPassivation(t *testing.T) {
	j := persistence.NewMemoryJournal()
	s := startSystem(t, Config{Journal: j, IdleActorTimeout: 20 * time.Millisecond})
	setStock(t, s, 3)
	_, err := s.Reserve(ctxFor(t), ref("a"), 1)
	require.NoError(t, err)
	_, err = s.Reserve(ctxFor(t), HoldRef{SKU: "ghost", OrderID: "a"}, 1)
	require.ErrorIs(t, err, order.ErrOutOfStock)
	sh := s.shardFor(order.InventoryKey("mug"))
	ghost := s.shardFor(order.InventoryKey("ghost"))
	require.Eventually(t, func() bool {
		e := s.skuEntry(sh, "mug", false)
		e.spawnMu.Lock()
		defer e.spawnMu.Unlock()
		return e.pid == nil && s.skuEntry(ghost, "ghost", false) == nil
	}, roomyTimeout, 10*time.Millisecond)
	r, err := s.Reserve(ctxFor(t), ref("a"), 1)
	require.NoError(t, err)
	assert.False(t, r.Applied)
	assert.Equal(t, 2, j.Len())
}

// TestInventoryNeedsItsJournal: a journal without inventory refuses, and
// nothing else breaks.
func TestInventoryNeedsItsJournal(t *testing.T) {
	s := newSystem(t, &fakeJournal{})
	_, err := s.SetStock(context.Background(), StockSet{SKU: "mug", OnHand: 1})
	assert.ErrorIs(t, err, order.ErrJournalUnavailable)
}
