package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderd/orderd/order"
)

// The holds that may still owe a transition action (actors.Actions'
// Reconcile): a hold still held (its order may have been cancelled or
// shipped while the action was lost), and a consumed hold of a returned
// order (its restock may have been lost). Scanning every hold would cost
// the whole history of orders at every start, so held holds have an index
// of their own, kept in the batch that moves the hold:
//
//	h <len><sku> <len><order> → (empty)   the hold is held
//
// It holds as many entries as there are orders between their checkout and
// their cancellation or shipping. The consumed holds of returned orders
// are found from the listing's state index instead: returns are a small
// part of the orders, and each costs a read per SKU.
const prefixHeld = 'h'

func heldKey(sku, orderID string) []byte {
	return appendPart(appendPart([]byte{prefixHeld}, sku), orderID)
}

// moveHeld keeps the held index in step with a hold moving from prev to next.
func (b *Batch) moveHeld(sku, orderID string, prev, next order.Hold) error {
	switch {
	case next.Status == order.HoldHeld && prev.Status != order.HoldHeld:
		return b.b.Set(heldKey(sku, orderID), nil, nil)
	case next.Status != order.HoldHeld && prev.Status == order.HoldHeld:
		return b.b.Delete(heldKey(sku, orderID), nil)
	}
	return nil
}

// holdsPage bounds the held holds read from one iterator: fn may take its
// time (it calls actors), and an iterator left open pins what it reads.
const holdsPage = 256

// OpenHolds calls fn with every hold that may owe an action: every held
// hold, then the consumed holds of returned orders. It implements
// actors.OpenHolds. Holds that move meanwhile may be passed as they were
// or as they are; the actions are idempotent.
func (s *Store) OpenHolds(ctx context.Context, fn func(sku, orderID string, h order.Hold) error) error {
	if err := s.heldHolds(ctx, fn); err != nil {
		return err
	}
	return s.returnedHolds(ctx, fn)
}

func (s *Store) heldHolds(ctx context.Context, fn func(sku, orderID string, h order.Hold) error) error {
	lower, upper := []byte{prefixHeld}, []byte{prefixHeld + 1}
	for {
		keys, err := s.keysFrom(ctx, lower, upper, holdsPage)
		if err != nil || len(keys) == 0 {
			return err
		}
		for _, k := range keys {
			sku, orderID, err := decodeHoldKey(append([]byte{prefixHold}, k[1:]...))
			if err != nil {
				return fmt.Errorf("%w: held index: %w", order.ErrStoreUnusable, err)
			}
			h, err := s.Hold(ctx, sku, orderID)
			if err != nil {
				return err
			}
			if h.Status != order.HoldHeld { // moved on since the page was read
				continue
			}
			if err := fn(sku, orderID, h); err != nil {
				return err
			}
		}
		lower = append(keys[len(keys)-1], 0)
	}
}

// keysFrom returns up to n keys in [lower, upper), copied.
func (s *Store) keysFrom(ctx context.Context, lower, upper []byte, n int) ([][]byte, error) {
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, s.readErr(err)
	}
	var keys [][]byte
	for ok := it.First(); ok && len(keys) < n; ok = it.Next() {
		keys = append(keys, append([]byte(nil), it.Key()...))
	}
	return keys, s.readErr(errors.Join(it.Error(), it.Close()))
}

func (s *Store) returnedHolds(ctx context.Context, fn func(sku, orderID string, h order.Hold) error) error {
	q := order.ListQuery{State: order.Returned, Limit: order.ListLimitMax}
	for {
		page, err := s.List(ctx, q)
		if err != nil {
			return err
		}
		for _, o := range page.Orders {
			if o.Contents == nil {
				continue
			}
			for _, it := range o.Contents.Items {
				h, err := s.Hold(ctx, it.SKU, o.ID)
				if err != nil {
					return err
				}
				if h.Status != order.HoldConsumed {
					continue
				}
				if err := fn(it.SKU, o.ID, h); err != nil {
					return err
				}
			}
		}
		if !page.More || len(page.Orders) == 0 {
			return nil
		}
		q.After = page.Orders[len(page.Orders)-1].ID
	}
}
