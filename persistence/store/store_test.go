package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
	"github.com/orderd/orderd/persistence/store"
)

var (
	testID    = store.Identity{Topic: "orders.transitions", Partitions: 2}
	testEpoch = time.Date(2026, 12, 5, 12, 0, 0, 123456789, time.UTC)
)

func decode(orderID string, v []byte) (order.Event, error) {
	return persistence.DecodeEvent([]byte(orderID), v)
}

func decodeCheckout(id string, v []byte) (order.CheckoutEvent, error) {
	return persistence.DecodeCheckout([]byte(order.CheckoutKey(id)), v)
}

func open(t *testing.T, dir string, id store.Identity) *store.Store {
	t.Helper()
	st, err := store.Open(dir, id, store.Options{Decode: decode, DecodeCheckout: decodeCheckout})
	require.NoError(t, err)
	return st
}

// apply applies events to partition p's batch and commits at next.
func apply(t *testing.T, st *store.Store, p int, next int64, events ...order.Event) []error {
	t.Helper()
	b := st.NewBatch(p)
	defer b.Close()
	var errs []error
	for _, ev := range events {
		rec, err := persistence.EncodeEvent(ev)
		require.NoError(t, err)
		errs = append(errs, b.Apply(ev, rec.Value))
	}
	require.NoError(t, b.Commit(next))
	return errs
}

func created(id string, version uint64, due time.Time) order.Event {
	ev := order.Event{EventID: id + "-ev", OrderID: id, Version: version, To: order.Created,
		At: testEpoch.Add(time.Duration(version) * time.Second), Principal: "alice", PaymentDueAt: due}
	if version > 1 {
		ev.From = order.Created
	}
	return ev
}

func paid(id string, version uint64) order.Event {
	return order.Event{EventID: id + "-paid", OrderID: id, Version: version, From: order.Created, To: order.Paid,
		At: testEpoch.Add(time.Duration(version) * time.Second)}
}

func pending(t *testing.T, st *store.Store, before time.Time) []order.PendingDeadline {
	t.Helper()
	var out []order.PendingDeadline
	require.NoError(t, st.PendingDeadlines(context.Background(), before, func(d order.PendingDeadline) error {
		out = append(out, d)
		return nil
	}))
	return out
}

func TestStoreSurvivesCloseAndReopen(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, testID)
	keyed := created("a", 1, testEpoch.Add(time.Hour))
	keyed.IdempotencyKey = "k1"
	errs := apply(t, st, 0, 7, keyed, paid("a", 2), created("b", 1, testEpoch.Add(2*time.Hour)),
		created("b", 2, testEpoch.Add(30*time.Minute)), paid("b", 2))
	require.NoError(t, errors.Join(errs[:4]...))
	require.ErrorIs(t, errs[4], order.ErrRecordDuplicate)
	require.NoError(t, st.Close())

	st = open(t, dir, testID)
	defer st.Close()
	ctx := context.Background()
	require.Equal(t, []int64{7, 0}, st.Checkpoints())
	events, err := st.Events(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, []order.Event{keyed, paid("a", 2)}, events)
	v, err := st.Version(ctx, "b")
	require.NoError(t, err)
	require.Equal(t, uint64(2), v)
	v, err = st.Version(ctx, "nobody")
	require.NoError(t, err)
	require.Zero(t, v)
	_, err = st.Events(ctx, "nobody")
	require.ErrorIs(t, err, order.ErrOrderNotFound)
	require.Equal(t, []order.PendingDeadline{{OrderID: "b", Version: 2, Due: testEpoch.Add(30 * time.Minute)}},
		pending(t, st, testEpoch.Add(24*time.Hour)))
	require.Empty(t, pending(t, st, testEpoch.Add(30*time.Minute)), "before is exclusive")
	id, at, err := st.CreatedBy(ctx, "alice", "k1")
	require.NoError(t, err)
	require.Equal(t, "a", id)
	require.True(t, at.Equal(keyed.At))
	_, _, err = st.CreatedBy(ctx, "bob", "k1")
	require.ErrorIs(t, err, order.ErrOrderNotFound)
	require.Positive(t, st.SizeBytes())
}

func TestStoreRefusesAnotherIdentity(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, testID)
	require.NoError(t, st.Close())
	for _, id := range []store.Identity{{Topic: "other", Partitions: 2}, {Topic: testID.Topic, Partitions: 3}} {
		_, err := store.Open(dir, id, store.Options{Decode: decode, DecodeCheckout: decodeCheckout})
		require.ErrorIs(t, err, order.ErrStoreUnusable, "%+v", id)
	}
}

func TestStoreRefusesForeignDirectory(t *testing.T) {
	// A directory of another Pebble database, or of garbage, is not a store.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "CURRENT"), []byte("nonsense\n"), 0o644))
	_, err := store.Open(dir, testID, store.Options{Decode: decode, DecodeCheckout: decodeCheckout})
	require.ErrorIs(t, err, order.ErrStoreUnusable)
	require.NoError(t, store.Destroy(dir))
	st := open(t, dir, testID)
	require.NoError(t, st.Close())
}

// The latest keyed create wins whichever partition's batch commits first.
func TestStoreKeyedCreateLatestWinsInAnyCommitOrder(t *testing.T) {
	older, newer := created("old", 1, time.Time{}), created("new", 1, time.Time{})
	older.IdempotencyKey, newer.IdempotencyKey = "k", "k"
	newer.At = older.At.Add(time.Minute)
	for name, first := range map[string]int{"older first": 0, "newer first": 1} {
		t.Run(name, func(t *testing.T) {
			st := open(t, t.TempDir(), testID)
			defer st.Close()
			batches := [][]order.Event{{older}, {newer}}
			apply(t, st, first, 1, batches[first]...)
			apply(t, st, 1-first, 1, batches[1-first]...)
			id, at, err := st.CreatedBy(context.Background(), "alice", "k")
			require.NoError(t, err)
			require.Equal(t, "new", id)
			require.True(t, at.Equal(newer.At))
			require.NoError(t, st.Flush()) // and once merged into a table
			id, _, err = st.CreatedBy(context.Background(), "alice", "k")
			require.NoError(t, err)
			require.Equal(t, "new", id)
			require.NoError(t, st.Verify(context.Background()))
		})
	}
}

// A store another process (or Open) holds is in use, not damaged: it must
// not be destroyed and rebuilt under its owner.
func TestStoreInUseIsNotUnusable(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, testID)
	defer st.Close()
	_, err := store.Open(dir, testID, store.Options{Decode: decode, DecodeCheckout: decodeCheckout})
	require.Error(t, err)
	require.NotErrorIs(t, err, order.ErrStoreUnusable)
}
