package store

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderd/orderd/order"
)

// Batch collects the records of one partition that a feeder read, for one
// atomic commit together with the partition's new checkpoint. A batch is
// used by one goroutine; the orders of one partition are written by one batch
// at a time (each order lives in one partition), so batches of different
// partitions never touch the same order.
type Batch struct {
	s         *Store
	partition int
	b         *pebble.Batch
	// orders holds the summaries this batch changed: Pebble's batch is not
	// indexed for reads, and the next record of an order must be checked
	// against the order as this batch left it.
	orders map[string]order.Order
	// stocks and holds are the same for inventory (inventory.go).
	stocks map[string]order.Stock
	holds  map[[2]string]order.Hold
	// checkouts is the same for checkouts (checkout.go).
	checkouts map[string]order.Checkout
}

// NewBatch starts a batch for partition p.
func (s *Store) NewBatch(p int) *Batch {
	return &Batch{s: s, partition: p, b: s.db.NewBatch(), orders: map[string]order.Order{},
		stocks: map[string]order.Stock{}, holds: map[[2]string]order.Hold{}, checkouts: map[string]order.Checkout{}}
}

// Apply applies ev, decoded from a record whose value is value, by the one
// apply rule (order.Apply) against the order as the store and this batch
// hold it. A record the rule skips changes nothing and its error (matching
// order.ErrRecordDuplicate or order.ErrRecordFork) is returned.
func (b *Batch) Apply(ev order.Event, value []byte) error {
	prev, err := b.order(ev.OrderID)
	if err != nil {
		return err
	}
	next, err := order.Apply(prev, ev)
	if err != nil {
		return err
	}
	// Of the contents only the customer is kept (the indexes need it);
	// Events has the rest.
	next.Contents = summaryContents(next.Contents)
	b.orders[ev.OrderID] = next
	if err := b.b.Set(eventKey(ev.OrderID, ev.Version), value, nil); err != nil {
		return err
	}
	if err := b.b.Set(summaryKey(ev.OrderID), encodeSummary(next), nil); err != nil {
		return err
	}
	if err := b.moveDeadline(prev, next); err != nil {
		return err
	}
	if err := b.moveIndexes(prev, next); err != nil {
		return err
	}
	if ev.Version == 1 && ev.IdempotencyKey != "" {
		// Merged, not set: the latest create wins whichever partition
		// commits first (merge.go).
		c := keyedCreate{orderID: ev.OrderID, at: ev.At}
		return b.b.Merge(keyedKey(ev.Principal, ev.IdempotencyKey), encodeKeyed(c), nil)
	}
	return nil
}

// moveDeadline keeps the pending-deadline index in step: an order has an
// entry while it waits in Created with a deadline, keyed by that deadline.
func (b *Batch) moveDeadline(prev, next order.Order) error {
	if pending(prev) {
		if err := b.b.Delete(deadlineKey(prev.PaymentDueAt, prev.ID), nil); err != nil {
			return err
		}
	}
	if pending(next) {
		return b.b.Set(deadlineKey(next.PaymentDueAt, next.ID), binaryUvarint(next.Version), nil)
	}
	return nil
}

func pending(o order.Order) bool {
	return o.Exists() && o.State == order.InitialState && !o.PaymentDueAt.IsZero()
}

// order returns the order as this batch, or else the store, holds it; the
// zero Order if neither knows it.
func (b *Batch) order(orderID string) (order.Order, error) {
	if o, ok := b.orders[orderID]; ok {
		return o, nil
	}
	o, err := b.s.summary(orderID)
	if errors.Is(err, order.ErrOrderNotFound) {
		return order.Order{}, nil
	}
	return o, err
}

// Claim records a claim of the batch's partition at offset, committed with
// the records around it: a read that starts from the checkpoint must know
// every claim before it to skip what deposed owners wrote.
func (b *Batch) Claim(offset int64) error {
	return b.b.Set(claimKey(b.partition, offset), nil, nil)
}

// Commit writes what the batch holds and the partition's checkpoint next
// (the offset after the last record read, skipped ones included) in one
// atomic write, without an fsync (pebbleOptions says why), and empties the
// batch for the next chunk.
func (b *Batch) Commit(next int64) error {
	if next < 0 || b.partition < 0 || b.partition >= b.s.id.Partitions {
		return fmt.Errorf("store: checkpoint %d of partition %d of %d", next, b.partition, b.s.id.Partitions)
	}
	if err := b.b.Set(checkpointKey(b.partition), encodeCheckpoint(next), nil); err != nil {
		return err
	}
	if err := b.b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("store: committing partition %d at %d: %w", b.partition, next, err)
	}
	b.b.Reset()
	clear(b.orders)
	clear(b.stocks)
	clear(b.holds)
	clear(b.checkouts)
	b.s.mu.Lock()
	b.s.checkpoints[b.partition] = next
	close(b.s.advanced)
	b.s.advanced = make(chan struct{})
	b.s.mu.Unlock()
	return nil
}

// Close drops what the batch holds and was not committed.
func (b *Batch) Close() { _ = b.b.Close() }
