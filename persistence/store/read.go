package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderd/orderd/order"
)

// Each read below sees one consistent view: a single Get, or a single
// iterator (Pebble iterators read from the state at their creation).

// Events implements order.StateStore.
func (s *Store) Events(ctx context.Context, orderID string) ([]order.Event, error) {
	events, err := s.eventsIn(ctx, s.db, orderID)
	if err == nil && len(events) == 0 {
		return nil, order.ErrOrderNotFound
	}
	return events, err
}

// EventsAndCheckpoint returns the order's events and partition p's
// checkpoint read from one snapshot, so that the events are exactly the
// order's accepted records below that checkpoint: a reader of the log's tail
// from there misses nothing and sees nothing twice. No events is not an error.
func (s *Store) EventsAndCheckpoint(ctx context.Context, orderID string, p int) ([]order.Event, int64, error) {
	if p < 0 || p >= s.id.Partitions {
		return nil, 0, fmt.Errorf("store: partition %d of %d", p, s.id.Partitions)
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	cp, err := s.checkpointIn(snap, p)
	if err != nil {
		return nil, 0, err
	}
	events, err := s.eventsIn(ctx, snap, orderID)
	return events, cp, err
}

// eventsIn reads the order's events from r, oldest first.
func (s *Store) eventsIn(ctx context.Context, r pebble.Reader, orderID string) ([]order.Event, error) {
	return scanVersions(ctx, s, r, eventPrefix(orderID), func(k, v []byte, want uint64) (order.Event, error) {
		return s.decodeEvent(orderID, k, v, want)
	})
}

// scanVersions decodes every record under prefix in r, in key order, the
// i-th of which must be version i+1 (decode checks it): an order's events,
// a checkout's records.
func scanVersions[T any](ctx context.Context, s *Store, r pebble.Reader, prefix []byte, decode func(k, v []byte, want uint64) (T, error)) ([]T, error) {
	it, err := r.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, s.readErr(err)
	}
	var out []T
	for ok := it.First(); ok; ok = it.Next() {
		rec, err := decode(it.Key(), it.Value(), uint64(len(out))+1)
		if err != nil {
			_ = it.Close()
			return nil, err
		}
		out = append(out, rec)
	}
	if err := s.readErr(errors.Join(it.Error(), it.Close())); err != nil {
		return nil, err
	}
	return out, nil
}

// decodeEvent decodes a stored event and checks it is the one its key and
// its place say: a store that disagrees with itself is unusable.
func (s *Store) decodeEvent(orderID string, k, v []byte, want uint64) (order.Event, error) {
	_, version, err := decodeEventKey(k)
	if err != nil {
		return order.Event{}, fmt.Errorf("%w: %w", order.ErrStoreUnusable, err)
	}
	ev, err := s.decode(orderID, v)
	if err != nil {
		return order.Event{}, fmt.Errorf("%w: event %s/%d: %w", order.ErrStoreUnusable, orderID, version, err)
	}
	if version != want || ev.Version != version {
		return order.Event{}, fmt.Errorf("%w: event %s/%d holds version %d, want %d", order.ErrStoreUnusable, orderID, version, ev.Version, want)
	}
	return ev, nil
}

// Version implements order.StateStore.
func (s *Store) Version(_ context.Context, orderID string) (uint64, error) {
	o, err := s.summary(orderID)
	if errors.Is(err, order.ErrOrderNotFound) {
		return 0, nil
	}
	return o.Version, err
}

// summary returns the order as the store last applied it, with only the
// customer of its contents; order.ErrOrderNotFound if the store has none.
func (s *Store) summary(orderID string) (order.Order, error) {
	v, err := s.get(summaryKey(orderID))
	if errors.Is(err, pebble.ErrNotFound) {
		return order.Order{}, order.ErrOrderNotFound
	}
	if err != nil {
		return order.Order{}, err
	}
	o, err := decodeSummary(orderID, v)
	if err != nil {
		return order.Order{}, fmt.Errorf("%w: order %s: %w", order.ErrStoreUnusable, orderID, err)
	}
	return o, nil
}

// PendingDeadlines implements order.StateStore.
func (s *Store) PendingDeadlines(ctx context.Context, before time.Time, fn func(order.PendingDeadline) error) error {
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{prefixDeadline}, UpperBound: deadlineBound(before)})
	if err != nil {
		return s.readErr(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		d, err := decodeDeadline(it.Key(), it.Value())
		if err == nil {
			err = fn(d)
		} else {
			err = fmt.Errorf("%w: %w", order.ErrStoreUnusable, err)
		}
		if err != nil {
			_ = it.Close()
			return err
		}
	}
	return s.readErr(errors.Join(it.Error(), it.Close()))
}

// CreatedBy implements order.StateStore.
func (s *Store) CreatedBy(_ context.Context, principal, idempotencyKey string) (string, time.Time, error) {
	v, err := s.get(keyedKey(principal, idempotencyKey))
	if errors.Is(err, pebble.ErrNotFound) {
		return "", time.Time{}, order.ErrOrderNotFound
	}
	if err != nil {
		return "", time.Time{}, err
	}
	c, err := decodeKeyed(v)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%w: keyed create: %w", order.ErrStoreUnusable, err)
	}
	return c.orderID, c.at, nil
}

// prefixEnd is the first key after every key that starts with prefix.
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i]++; end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil // all 0xff: no upper bound
}

// Claims returns the offsets of partition p's claims (takeovers by a
// cluster node) that the store has taken, in order.
func (s *Store) Claims(p int) ([]int64, error) {
	prefix := claimPrefix(p)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, s.readErr(err)
	}
	var out []int64
	for ok := it.First(); ok; ok = it.Next() {
		_, offset, err := decodeClaimKey(it.Key())
		if err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("%w: %w", order.ErrStoreUnusable, err)
		}
		out = append(out, offset)
	}
	return out, s.readErr(errors.Join(it.Error(), it.Close()))
}

// Verify reads the whole store, every block of every table, and checks that
// its own keys and values decode: damage that only a read of the damaged
// block would find otherwise (Pebble checks a block's checksum when it reads
// it). It costs a scan of the store, so a server runs it in the background
// rather than before it is ready. An error matching order.ErrStoreUnusable
// means the store must be rebuilt.
func (s *Store) Verify(ctx context.Context) error {
	it, err := s.db.NewIterWithContext(ctx, nil)
	if err != nil {
		return s.readErr(err)
	}
	for ok := it.First(); ok && ctx.Err() == nil; ok = it.Next() {
		if err := verifyEntry(it.Key(), it.Value()); err != nil {
			_ = it.Close()
			return fmt.Errorf("%w: key %q: %w", order.ErrStoreUnusable, it.Key(), err)
		}
	}
	if err := s.readErr(errors.Join(it.Error(), it.Close())); err != nil {
		return err
	}
	return ctx.Err()
}

// verifyEntry decodes one entry by its kind. Event values are the log's
// bytes: their checksums are Pebble's, their contents are checked when read.
func verifyEntry(k, v []byte) error {
	var err error
	switch k[0] {
	case prefixMeta:
		_, err = decodeMeta(v)
	case prefixCheckpoint:
		_, err = decodeCheckpoint(v)
	case prefixSummary:
		var id string
		if id, _, err = readPart(k[1:]); err == nil {
			_, err = decodeSummary(id, v)
		}
	case prefixEvent:
		_, _, err = decodeEventKey(k)
	case prefixDeadline:
		_, err = decodeDeadline(k, v)
	case prefixKeyed:
		_, err = decodeKeyed(v)
	case prefixClaim:
		_, _, err = decodeClaimKey(k)
	case prefixIndexAll, prefixIndexState, prefixIndexCustomer, prefixIndexCustomerState:
		_, _, _, err = decodeIndexKey(k)
	case prefixStock:
		var sku string
		if sku, _, err = readPart(k[1:]); err == nil {
			_, err = decodeStock(sku, v)
		}
	case prefixHold:
		if _, _, err = decodeHoldKey(k); err == nil {
			_, err = decodeHold(v)
		}
	case prefixCheckoutEvent:
		_, _, err = decodeCheckoutEventKey(k)
	case prefixUnfinished:
		if _, err = decodeUnfinishedKey(k); err == nil && len(v) != 0 {
			err = fmt.Errorf("%w: an unfinished-checkout entry holds %d bytes", errFormat, len(v))
		}
	default:
		err = fmt.Errorf("%w: unknown key kind %q", errFormat, k[0])
	}
	return err
}
