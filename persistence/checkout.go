package persistence

import (
	"context"
	"fmt"
	"time"

	"github.com/orderd/orderd/order"
)

var (
	_ order.CheckoutJournal = (*KafkaJournal)(nil)
	_ order.CheckoutJournal = (*MemoryJournal)(nil)
)

// AppendCheckout implements order.CheckoutJournal: the same writers, the
// same group commit, claims and outcomes as Append, for a record keyed by
// order.CheckoutKey(ev.CheckoutID) and placed in the partition of its
// order (whose ID is the checkout's), not by its key: so the node that
// serves a checkout in a cluster serves its order too.
func (j *KafkaJournal) AppendCheckout(ctx context.Context, ev order.CheckoutEvent) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w (the event was not sent)", order.ErrJournalUnavailable, err)
	}
	defer j.cfg.Metrics.appended(time.Now())
	p, err := newPendingCheckout(ev)
	if err != nil {
		return fmt.Errorf("%w: %w", order.ErrJournalUnavailable, err)
	}
	return j.appendPending(ctx, p, j.PartitionOf(ev.CheckoutID))
}

// LoadCheckout implements order.CheckoutJournal, as Load does for an order:
// it waits for the produce request in flight on the checkout's partition,
// takes the checkout's records and the partition's checkpoint from one
// snapshot of the state store (when LoadFromStore gave one), measures the
// partition's end, and reads the partition's records of the checkout from
// the checkpoint to that end. Without a store, or when it cannot answer, it
// reads the whole partition. The records the apply rule skips are left out
// (the store never keeps them; those of the tail are dropped here).
func (j *KafkaJournal) LoadCheckout(ctx context.Context, checkoutID string) ([]order.CheckoutEvent, error) {
	if err := order.ValidateID(checkoutID); err != nil {
		return nil, err
	}
	ctx, done, err := j.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	key := order.CheckoutKey(checkoutID)
	p := j.PartitionOf(checkoutID) // its order's (AppendCheckout)
	if err := j.writers[p].settle(ctx); err != nil {
		return nil, fmt.Errorf("persistence: load checkout %s: waiting for the request in flight: %w", checkoutID, err)
	}
	events, checkpoint := j.storedCheckout(ctx, checkoutID, p)
	first, end, err := j.offsets(ctx, []int{p})
	if err != nil {
		return nil, fmt.Errorf("persistence: load checkout %s: %w", checkoutID, err)
	}
	from := max(first[0], checkpoint)
	if checkpoint > end[0] { // the log lost records the store saw: trust the log
		events, from = nil, first[0]
	}
	err = j.src.readPartition(ctx, &partitionRead{p: p, first: from, end: end[0],
		visit: func(rec LogRecord) error {
			if string(rec.Key) != key {
				return nil
			}
			ev, err := DecodeCheckout(rec.Key, rec.Value)
			if err != nil {
				j.logUndecodable(p, rec.Offset, err)
				return nil
			}
			events = append(events, ev)
			return nil
		},
		corrupt: func(offset int64, err error) { j.logUndecodable(p, offset, err) },
	})
	if err != nil {
		return nil, fmt.Errorf("persistence: load checkout %s: %w", checkoutID, err)
	}
	return acceptedCheckout(events), nil
}

// storedCheckout is storedEvents for a checkout.
func (j *KafkaJournal) storedCheckout(ctx context.Context, checkoutID string, p int) ([]order.CheckoutEvent, int64) {
	j.loadStoreMu.RLock()
	defer j.loadStoreMu.RUnlock()
	if j.loadStore == nil {
		return nil, 0
	}
	events, cp, err := j.loadStore.CheckoutEventsAndCheckpoint(ctx, checkoutID, p)
	if err != nil {
		j.log.Warn("load: the state store failed; reading the whole partition", "checkout", checkoutID, "err", err)
		return nil, 0
	}
	return events, cp
}

// acceptedCheckout keeps, in order, the events order.ApplyCheckout applies
// when they are folded from the zero Checkout: duplicates (a producer's
// retry) and forks are dropped, so every journal returns the same events.
func acceptedCheckout(events []order.CheckoutEvent) []order.CheckoutEvent {
	var c order.Checkout
	out := events[:0]
	for _, ev := range events {
		next, err := order.ApplyCheckout(c, ev)
		if err != nil {
			continue
		}
		c = next
		out = append(out, ev)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// AppendCheckout implements order.CheckoutJournal, with the faults of
// Append: FailNext's queue applies to checkout appends too (the hook set
// with SetFaultHook sees order events only).
func (m *MemoryJournal) AppendCheckout(ctx context.Context, ev order.CheckoutEvent) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w (the event was not written)", order.ErrJournalUnavailable, err)
	}
	rec, err := EncodeCheckout(ev)
	if err != nil {
		return fmt.Errorf("%w: %w", order.ErrJournalUnavailable, err)
	}
	return m.append(rec, func() Fault { return FaultNone })
}

// LoadCheckout implements order.CheckoutJournal: the checkout's records,
// all of them, less what the apply rule skips.
func (m *MemoryJournal) LoadCheckout(ctx context.Context, checkoutID string) ([]order.CheckoutEvent, error) {
	if err := order.ValidateID(checkoutID); err != nil {
		return nil, err
	}
	records, err := m.snapshot()
	if err != nil {
		return nil, err
	}
	key := order.CheckoutKey(checkoutID)
	var events []order.CheckoutEvent
	for _, rec := range records {
		if string(rec.Key) != key {
			continue
		}
		if ev, err := DecodeCheckout(rec.Key, rec.Value); err == nil {
			events = append(events, ev)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return acceptedCheckout(events), nil
}
