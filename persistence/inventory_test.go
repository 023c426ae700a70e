package persistence

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// inventoryHistory decides and applies a SKU's changes with the core, as
// its actor would, and returns the events and the stock and holds they make.
type inventoryHistory struct {
	sku    string
	stock  order.Stock
	holds  map[string]order.Hold
	events []order.InventoryEvent
}

func newInventoryHistory(sku string) *inventoryHistory {
	return &inventoryHistory{sku: sku, holds: map[string]order.Hold{}}
}

func (h *inventoryHistory) do(t *testing.T, cmd order.InventoryCommand) order.InventoryEvent {
	t.Helper()
	cmd.SKU, cmd.EventID = h.sku, fmt.Sprintf("%s-%d", h.sku, len(h.events)+1)
	ev, changed, err := order.DecideInventory(h.stock, h.holds[cmd.OrderID], cmd, invAt)
	require.NoError(t, err)
	require.True(t, changed)
	next, hold, err := order.ApplyInventory(h.stock, h.holds[cmd.OrderID], ev)
	require.NoError(t, err)
	h.stock = next
	if cmd.OrderID != "" {
		h.holds[cmd.OrderID] = hold
	}
	h.events = append(h.events, ev)
	return ev
}

// script is a SKU's life: a count, holds for three orders, one shipped and
// returned, one released, one still held.
func (h *inventoryHistory) script(t *testing.T) []order.InventoryEvent {
	h.do(t, order.InventoryCommand{Change: order.StockSet, OnHand: 10})
	h.do(t, order.InventoryCommand{Change: order.StockReserve, OrderID: "a", Quantity: 2})
	h.do(t, order.InventoryCommand{Change: order.StockReserve, OrderID: "b", Quantity: 3})
	h.do(t, order.InventoryCommand{Change: order.StockConsume, OrderID: "a"})
	h.do(t, order.InventoryCommand{Change: order.StockRelease, OrderID: "b"})
	h.do(t, order.InventoryCommand{Change: order.StockReserve, OrderID: "c", Quantity: 1})
	h.do(t, order.InventoryCommand{Change: order.StockRestock, OrderID: "a"})
	return h.events
}

func (h *inventoryHistory) load() order.InventoryLoad {
	return order.InventoryLoad{Stock: h.stock, Holds: h.holds}
}

// testInventoryConformance is the inventory part of the journal contract.
func testInventoryConformance(t *testing.T, open func(t *testing.T) order.Journal) {
	t.Run("InventoryLoadFoldsAndReplaySkips", func(t *testing.T) {
		t.Parallel()
		j := open(t)
		inv := j.(order.InventoryJournal)
		ctx := testContext(t)
		orderEvents := lifecycle("order-1", len(lifecyclePath))
		h := newInventoryHistory("mug")
		for i, ev := range h.script(t) {
			require.NoError(t, inv.AppendInventory(ctx, ev))
			if i < len(orderEvents) {
				require.NoError(t, j.Append(ctx, orderEvents[i]))
			}
		}
		got, err := inv.LoadInventory(ctx, "mug")
		require.NoError(t, err)
		assert.Equal(t, h.load(), got)
		assert.Equal(t, order.Stock{SKU: "mug", OnHand: 10, Reserved: 1, Version: 7}, got.Stock)

		// A repeated record (a producer retry) is skipped by the rule.
		require.NoError(t, inv.AppendInventory(ctx, h.events[2]))
		got, err = inv.LoadInventory(ctx, "mug")
		require.NoError(t, err)
		assert.Equal(t, h.stock, got.Stock)
		assert.Equal(t, 1, got.Skipped)

		events, stats := replayAll(t, j)
		assert.Equal(t, orderEvents, events, "replay passes only order records")
		assert.Equal(t, order.ReplayStats{Records: len(orderEvents) + 8, Inventory: 8}, stats, "and does not count inventory as garbage")

		none, err := inv.LoadInventory(ctx, "tea")
		require.NoError(t, err)
		assert.Zero(t, none.Stock)
		_, err = inv.LoadInventory(ctx, "no/such")
		assert.ErrorIs(t, err, order.ErrInvalidInventory)
	})

	t.Run("InventoryConcurrentSKUs", func(t *testing.T) {
		t.Parallel()
		j := open(t)
		inv := j.(order.InventoryJournal)
		const skus = 16
		histories := make([]*inventoryHistory, skus)
		var wg sync.WaitGroup
		for i := range histories {
			histories[i] = newInventoryHistory(fmt.Sprintf("sku-%d", i))
			events := histories[i].script(t)
			wg.Go(func() {
				for _, ev := range events {
					ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
					err := inv.AppendInventory(ctx, ev)
					cancel()
					if err != nil {
						t.Errorf("AppendInventory(%s v%d): %v", ev.SKU, ev.Version, err)
						return
					}
				}
			})
		}
		wg.Wait()
		for _, h := range histories {
			got, err := inv.LoadInventory(testContext(t), h.sku)
			require.NoError(t, err)
			assert.Equal(t, h.load(), got, h.sku)
		}
	})

	t.Run("InventoryInvalidEventIsRefused", func(t *testing.T) {
		t.Parallel()
		j := open(t)
		inv := j.(order.InventoryJournal)
		ev := inventoryEvents()["Reserve"]
		ev.Reserved = ev.OnHand + 1
		err := inv.AppendInventory(testContext(t), ev)
		assert.ErrorIs(t, err, order.ErrJournalUnavailable)
		assert.ErrorIs(t, err, ErrInvalidRecord)
	})
}

func TestMemoryJournalInventory(t *testing.T) {
	testInventoryConformance(t, func(t *testing.T) order.Journal {
		j := NewMemoryJournal()
		t.Cleanup(func() { _ = j.Close() })
		return j
	})
}

func TestKafkaJournalInventory(t *testing.T) {
	testInventoryConformance(t, func(t *testing.T) order.Journal {
		return openTestJournal(t, startTestBroker(t), KafkaConfig{Partitions: 4})
	})
}

// TestMemoryJournalInventoryFaults: an unknown outcome that wrote the record
// is found by the next load; one that did not is not.
func TestMemoryJournalInventoryFaults(t *testing.T) {
	j := NewMemoryJournal()
	ctx := testContext(t)
	h := newInventoryHistory("mug")
	events := h.script(t)
	j.FailNext(1, FaultUnknownWritten)
	require.ErrorIs(t, j.AppendInventory(ctx, events[0]), order.ErrOutcomeUnknown)
	j.FailNext(1, FaultUnknownNotWritten)
	require.ErrorIs(t, j.AppendInventory(ctx, events[1]), order.ErrOutcomeUnknown)
	got, err := j.LoadInventory(ctx, "mug")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), got.Stock.Version)
	assert.Empty(t, got.Holds)
}

// TestInventoryThroughTheStore: the feeder applies inventory records to the
// state store by the one rule, and LoadInventory from the store and the
// log's tail gives what a load of the whole partition gives.
func TestInventoryThroughTheStore(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 2})
	ctx := testContext(t)
	st, _, err := OpenStore(ctx, t.TempDir(), j, testLogger(t))
	require.NoError(t, err)
	defer st.Close()
	h := newInventoryHistory("mug")
	events := h.script(t)
	for _, ev := range events[:4] {
		require.NoError(t, j.AppendInventory(ctx, ev))
	}
	require.NoError(t, j.Append(ctx, lifecycleEvent("order-1", 1)))
	stats, err := j.CatchUp(ctx, st)
	require.NoError(t, err)
	assert.Equal(t, 5, stats.Applied)
	assert.Zero(t, stats.Undecodable)
	for _, ev := range events[4:] {
		require.NoError(t, j.AppendInventory(ctx, ev))
	}
	require.NoError(t, j.AppendInventory(ctx, events[1])) // a duplicate in the tail

	stored, err := st.Stock(ctx, "mug")
	require.NoError(t, err)
	assert.Equal(t, uint64(4), stored.Version, "the store holds what it was fed")

	j.LoadFromStore(st)
	fromStore, err := j.LoadInventory(ctx, "mug")
	require.NoError(t, err)
	j.LoadFromStore(nil)
	full, err := j.LoadInventory(ctx, "mug")
	require.NoError(t, err)
	assert.Equal(t, h.stock, fromStore.Stock)
	assert.Equal(t, full.Stock, fromStore.Stock)
	// From the store, only the tail's holds come from the log; every hold
	// agrees with the store's where the tail does not name it.
	for id, want := range h.holds {
		got, ok := fromStore.Holds[id]
		if !ok {
			got, err = st.Hold(ctx, "mug", id)
			require.NoError(t, err)
		}
		assert.Equal(t, want, got, id)
	}

	_, err = j.CatchUp(ctx, st)
	require.NoError(t, err)
	stored, err = st.Stock(ctx, "mug")
	require.NoError(t, err)
	assert.Equal(t, h.stock, stored)
	for id, want := range h.holds {
		got, err := st.Hold(ctx, "mug", id)
		require.NoError(t, err)
		assert.Equal(t, want, got, id)
	}
}
