package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderd/orderd/order"
)

// Checkouts in the store (order/checkout.go): each checkout's records, and
// an index of the checkouts a node must resume.
//
//	x <len><checkout id> <version u64> → the record's value, byte for byte as the log holds it
//	u <len><checkout id>               → nothing: the checkout has started and not finished
//
// Like an order's events, a checkout's records are kept as the log's bytes
// (decoded by Options.DecodeCheckout, the log's codec) and only those the
// apply rule (order.ApplyCheckout) accepted: a checkout has a handful (a
// start, four forward steps, three compensations at most), so its state is
// folded from them whenever it is needed, and no second encoding of it
// exists. The feeder writes both kinds in the batch of the record, with the
// partition's checkpoint. formatVersion went to 4 with these keys: a store
// of format 3 may have been fed past checkout records by an orderd that did
// not know them.
const (
	prefixCheckoutEvent = 'x'
	prefixUnfinished    = 'u'
)

func checkoutEventPrefix(id string) []byte { return appendPart([]byte{prefixCheckoutEvent}, id) }

func checkoutEventKey(id string, version uint64) []byte {
	return binary.BigEndian.AppendUint64(checkoutEventPrefix(id), version)
}

func unfinishedKey(id string) []byte { return appendPart([]byte{prefixUnfinished}, id) }

// decodeCheckoutEventKey returns the checkout and version a key names.
func decodeCheckoutEventKey(k []byte) (id string, version uint64, err error) {
	if len(k) == 0 || k[0] != prefixCheckoutEvent {
		return "", 0, fmt.Errorf("%w: not a checkout event key", errFormat)
	}
	id, rest, err := readPart(k[1:])
	if err != nil {
		return "", 0, err
	}
	if len(rest) != 8 || id == "" || binary.BigEndian.Uint64(rest) == 0 {
		return "", 0, fmt.Errorf("%w: bad checkout event key", errFormat)
	}
	return id, binary.BigEndian.Uint64(rest), nil
}

func decodeUnfinishedKey(k []byte) (string, error) {
	if len(k) == 0 || k[0] != prefixUnfinished {
		return "", fmt.Errorf("%w: not an unfinished-checkout key", errFormat)
	}
	id, rest, err := readPart(k[1:])
	if err != nil || len(rest) != 0 || id == "" {
		return "", fmt.Errorf("%w: bad unfinished-checkout key", errFormat)
	}
	return id, nil
}

// ApplyCheckout applies ev, decoded from a checkout record whose value is
// value, by the one rule (order.ApplyCheckout) against the checkout as the
// store and this batch hold it, and keeps the unfinished index in step. A
// record the rule skips changes nothing and its error (order.ErrRecordDuplicate
// or order.ErrRecordFork) is returned.
func (b *Batch) ApplyCheckout(ev order.CheckoutEvent, value []byte) error {
	prev, ok := b.checkouts[ev.CheckoutID]
	if !ok {
		var err error
		if prev, err = b.s.checkoutIn(context.Background(), b.s.db, ev.CheckoutID); err != nil {
			return err
		}
	}
	next, err := order.ApplyCheckout(prev, ev)
	if err != nil {
		return err
	}
	b.checkouts[ev.CheckoutID] = next
	if err := b.b.Set(checkoutEventKey(ev.CheckoutID, ev.Version), value, nil); err != nil {
		return err
	}
	switch {
	case next.Status.Finished():
		return b.b.Delete(unfinishedKey(ev.CheckoutID), nil)
	case !prev.Exists():
		return b.b.Set(unfinishedKey(ev.CheckoutID), nil, nil)
	}
	return nil
}

// checkoutIn folds the checkout's stored records; the zero Checkout when
// there are none.
func (s *Store) checkoutIn(ctx context.Context, r pebble.Reader, id string) (order.Checkout, error) {
	events, err := s.checkoutEventsIn(ctx, r, id)
	if err != nil {
		return order.Checkout{}, err
	}
	var c order.Checkout
	for _, ev := range events {
		if c, err = order.ApplyCheckout(c, ev); err != nil {
			// Only what the rule accepted is stored.
			return order.Checkout{}, fmt.Errorf("%w: checkout %s: %w", order.ErrStoreUnusable, id, err)
		}
	}
	return c, nil
}

// checkoutEventsIn reads the checkout's records from r, oldest first,
// checking that each is the one its key and its place say.
func (s *Store) checkoutEventsIn(ctx context.Context, r pebble.Reader, id string) ([]order.CheckoutEvent, error) {
	return scanVersions(ctx, s, r, checkoutEventPrefix(id), func(k, v []byte, want uint64) (order.CheckoutEvent, error) {
		return s.decodeCheckoutEvent(id, k, v, want)
	})
}

func (s *Store) decodeCheckoutEvent(id string, k, v []byte, want uint64) (order.CheckoutEvent, error) {
	_, version, err := decodeCheckoutEventKey(k)
	if err != nil {
		return order.CheckoutEvent{}, fmt.Errorf("%w: %w", order.ErrStoreUnusable, err)
	}
	ev, err := s.decodeCheckout(id, v)
	if err != nil {
		return order.CheckoutEvent{}, fmt.Errorf("%w: checkout %s/%d: %w", order.ErrStoreUnusable, id, version, err)
	}
	if version != want || ev.Version != version {
		return order.CheckoutEvent{}, fmt.Errorf("%w: checkout %s/%d holds version %d, want %d", order.ErrStoreUnusable, id, version, ev.Version, want)
	}
	return ev, nil
}

// CheckoutEventsAndCheckpoint returns the checkout's records and partition
// p's checkpoint read from one snapshot, so that the records are exactly
// the checkout's accepted records below that checkpoint: a reader of the
// log's tail from there misses nothing and sees nothing twice. No records
// is not an error.
func (s *Store) CheckoutEventsAndCheckpoint(ctx context.Context, id string, p int) ([]order.CheckoutEvent, int64, error) {
	if p < 0 || p >= s.id.Partitions {
		return nil, 0, fmt.Errorf("store: partition %d of %d", p, s.id.Partitions)
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	cp, err := s.checkpointIn(snap, p)
	if err != nil {
		return nil, 0, err
	}
	events, err := s.checkoutEventsIn(ctx, snap, id)
	return events, cp, err
}

// UnfinishedCheckouts implements order.CheckoutStore.
func (s *Store) UnfinishedCheckouts(fn func(id string) error) error {
	prefix := []byte{prefixUnfinished}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return s.readErr(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		id, err := decodeUnfinishedKey(it.Key())
		if err == nil {
			err = fn(id)
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

var _ order.CheckoutStore = (*Store)(nil)

// checkpointIn reads partition p's checkpoint from r; 0 when it has none.
func (s *Store) checkpointIn(r pebble.Reader, p int) (int64, error) {
	v, err := getIn(s, r, checkpointKey(p))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, err
	}
	cp, err := decodeCheckpoint(v)
	if err != nil {
		return 0, fmt.Errorf("%w: partition %d: %w", order.ErrStoreUnusable, p, err)
	}
	return cp, nil
}
