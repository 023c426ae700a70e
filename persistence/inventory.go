package persistence

import (
	"context"
	"fmt"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence/store"
)

var _ order.InventoryJournal = (*KafkaJournal)(nil)

// LoadInventory implements order.InventoryJournal, as Load does for an order:
// it waits for the produce request in flight on the SKU's partition, takes
// the SKU's stock and the partition's checkpoint from one view of the state
// store (when LoadFromStore gave one), measures the partition's end, and
// reads the partition's records of the SKU from the checkpoint to that end,
// folding them with order.ApplyInventory onto the stock, each against the
// order's hold as the view or an earlier record of the tail left it.
// Without a store, or when it cannot answer, it reads the whole partition.
func (j *KafkaJournal) LoadInventory(ctx context.Context, sku string) (order.InventoryLoad, error) {
	if err := order.ValidateSKU(sku); err != nil {
		return order.InventoryLoad{}, err
	}
	ctx, done, err := j.beginRead(ctx)
	if err != nil {
		return order.InventoryLoad{}, err
	}
	defer done()
	key := order.InventoryKey(sku)
	p := j.PartitionOf(key)
	if err := j.writers[p].settle(ctx); err != nil {
		return order.InventoryLoad{}, fmt.Errorf("persistence: load sku %s: waiting for the request in flight: %w", sku, err)
	}
	// The store's view is held to the end: the tail's holds are read from it.
	// LoadFromStore(nil) waits for that.
	j.loadStoreMu.RLock()
	defer j.loadStoreMu.RUnlock()
	fold, checkpoint := j.inventoryBase(sku, p)
	defer fold.close()
	first, end, err := j.offsets(ctx, []int{p})
	if err != nil {
		return order.InventoryLoad{}, fmt.Errorf("persistence: load sku %s: %w", sku, err)
	}
	from := max(first[0], checkpoint)
	if checkpoint > end[0] { // the log lost records the store saw: trust the log
		fold.close()
		fold, from = newInventoryFold(nil), first[0]
	}
	err = j.src.readPartition(ctx, &partitionRead{p: p, first: from, end: end[0],
		visit: func(rec LogRecord) error {
			if string(rec.Key) != key {
				return nil
			}
			ev, err := DecodeInventory(rec.Key, rec.Value)
			if err != nil {
				j.logUndecodable(p, rec.Offset, err)
				return nil
			}
			return fold.apply(ev)
		},
		corrupt: func(offset int64, err error) { j.logUndecodable(p, offset, err) },
	})
	if err != nil {
		return order.InventoryLoad{}, fmt.Errorf("persistence: load sku %s: %w", sku, err)
	}
	return fold.load, nil
}

// inventoryBase starts a fold from the state store's view of partition p,
// and returns the view's checkpoint; from nothing, at 0, without a store or
// when it fails. loadStoreMu is held for reading.
func (j *KafkaJournal) inventoryBase(sku string, p int) (*inventoryFold, int64) {
	if j.loadStore == nil {
		return newInventoryFold(nil), 0
	}
	view, err := j.loadStore.InventoryView(p)
	if err == nil {
		var s order.Stock
		if s, err = view.Stock(sku); err == nil {
			fold := newInventoryFold(view)
			fold.load.Stock = s
			return fold, view.Checkpoint
		}
		_ = view.Close()
	}
	j.log.Warn("load: the state store failed; reading the whole partition", "sku", sku, "err", err)
	return newInventoryFold(nil), 0
}

// inventoryFold folds a SKU's records by the one rule.
type inventoryFold struct {
	view *store.InventoryView // nil: holds start from none
	load order.InventoryLoad
}

func newInventoryFold(view *store.InventoryView) *inventoryFold {
	return &inventoryFold{view: view, load: order.InventoryLoad{Holds: map[string]order.Hold{}}}
}

func (f *inventoryFold) apply(ev order.InventoryEvent) error {
	var hold order.Hold
	if ev.Change != order.StockSet {
		h, ok := f.load.Holds[ev.OrderID]
		if !ok && f.view != nil {
			var err error
			if h, err = f.view.Hold(ev.SKU, ev.OrderID); err != nil {
				return err
			}
		}
		hold = h
	}
	next, nextHold, err := order.ApplyInventory(f.load.Stock, hold, ev)
	if err != nil {
		f.load.Skipped++
		return nil
	}
	f.load.Stock = next
	if ev.Change != order.StockSet {
		f.load.Holds[ev.OrderID] = nextHold
	}
	return nil
}

func (f *inventoryFold) close() {
	if f.view != nil {
		_ = f.view.Close()
		f.view = nil
	}
}
