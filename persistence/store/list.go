package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderd/orderd/order"
)

var _ order.Lister = (*Store)(nil)

// List implements order.Lister from the listing indexes (index.go): a seek
// in the index that answers the filters, then each listed order folded
// from its events, all read from one snapshot. It waits for nothing: what
// the store holds is what it lists (WaitApplied waits for the feeder).
func (s *Store) List(ctx context.Context, q order.ListQuery) (order.ListPage, error) {
	if q.Limit < 1 || q.Limit > order.ListLimitMax || (q.State != 0 && !q.State.Valid()) {
		return order.ListPage{}, fmt.Errorf("store: bad listing query (limit %d, state %d)", q.Limit, q.State)
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	ids, more, err := s.listIDs(ctx, snap, q)
	if err != nil {
		return order.ListPage{}, err
	}
	page := order.ListPage{Orders: make([]order.Order, 0, len(ids)), More: more}
	it, err := snap.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{prefixEvent}, UpperBound: []byte{prefixEvent + 1}})
	if err != nil {
		return order.ListPage{}, s.readErr(err)
	}
	for _, id := range ids {
		o, err := s.fold(it, id)
		if err == nil && !matches(o, q) {
			err = fmt.Errorf("%w: order %s is listed under state %v and customer %q but is %v of %q",
				order.ErrStoreUnusable, id, q.State, q.CustomerID, o.State, customerOf(o))
		}
		if err != nil {
			_ = it.Close()
			return order.ListPage{}, err
		}
		page.Orders = append(page.Orders, o)
	}
	return page, s.readErr(errors.Join(it.Error(), it.Close()))
}

// listIDs reads up to q.Limit IDs after q.After from the index, and
// whether another follows.
func (s *Store) listIDs(ctx context.Context, r pebble.Reader, q order.ListQuery) ([]string, bool, error) {
	prefix := indexPrefix(q.State, q.CustomerID)
	lower := prefix
	if q.After != "" {
		lower = append(indexKey(prefix, q.After), 0) // the first key after the cursor's
	}
	it, err := r.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, false, s.readErr(err)
	}
	ids := make([]string, 0, q.Limit)
	more := false
	for ok := it.First(); ok; ok = it.Next() {
		if len(ids) == q.Limit {
			more = true
			break
		}
		id := string(it.Key()[len(prefix):])
		if order.ValidateID(id) != nil {
			_ = it.Close()
			return nil, false, fmt.Errorf("%w: index key %q names no valid order ID", order.ErrStoreUnusable, it.Key())
		}
		ids = append(ids, id)
	}
	return ids, more, s.readErr(errors.Join(it.Error(), it.Close()))
}

// fold rebuilds an order from its events with the apply rule, reading them
// through it (an iterator over the event keys, reused for every order).
func (s *Store) fold(it *pebble.Iterator, id string) (order.Order, error) {
	prefix := eventPrefix(id)
	var o order.Order
	for ok := it.SeekGE(prefix); ok && bytes.HasPrefix(it.Key(), prefix); ok = it.Next() {
		ev, err := s.decodeEvent(id, it.Key(), it.Value(), o.Version+1)
		if err != nil {
			return order.Order{}, err
		}
		if o, err = order.Apply(o, ev); err != nil {
			return order.Order{}, fmt.Errorf("%w: stored event %s/%d: %w", order.ErrStoreUnusable, id, ev.Version, err)
		}
	}
	if err := it.Error(); err != nil {
		return order.Order{}, s.readErr(err)
	}
	if !o.Exists() {
		return order.Order{}, fmt.Errorf("%w: order %s is listed but has no events", order.ErrStoreUnusable, id)
	}
	return o, nil
}

// matches is the pair assertion of a listing: the order folded from its
// events is what the index it was found in says.
func matches(o order.Order, q order.ListQuery) bool {
	return (q.State == 0 || o.State == q.State) && (q.CustomerID == "" || customerOf(o) == q.CustomerID)
}

// WaitApplied waits until the store holds every partition's log up to
// ends[p] (each checkpoint at or past it), or until ctx ends. The feeder
// commits a batch within milliseconds of a write, and each commit wakes
// the waiters, so this costs no polling.
func (s *Store) WaitApplied(ctx context.Context, ends []int64) error {
	for {
		s.mu.Lock()
		behind, advanced := int64(0), s.advanced
		for p, end := range ends {
			if p < len(s.checkpoints) {
				behind += max(0, end-s.checkpoints[p])
			}
		}
		s.mu.Unlock()
		if behind == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("store: %d records of the log not yet applied: %w", behind, context.Cause(ctx))
		case <-advanced:
		}
	}
}
