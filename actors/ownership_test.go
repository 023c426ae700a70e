package actors

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// clusterSystem is a clustered System on j and st that owns no partition yet.
func clusterSystem(t *testing.T, j order.Journal, st *fakeStore, clock *fakeClock) *System {
	t.Helper()
	cfg := Config{Journal: j, Store: st, EvictAfter: time.Hour, Clustered: true}
	if clock != nil {
		cfg.Now = clock.now
	}
	return startSystem(t, cfg)
}

func TestClusteredSystemNeedsAStore(t *testing.T) {
	_, err := New(Config{Journal: &fakeJournal{}, Shards: testShards, ShardOf: shardOf, Clustered: true})
	assert.ErrorContains(t, err, "needs a Store")
}

// TestNodeServesOnlyWhatItOwns: commands and reads of a partition the node
// does not own are refused as not ready (nothing applied, nothing read), and
// served once it owns it.
func TestNodeServesOnlyWhatItOwns(t *testing.T) {
	j := &fakeJournal{}
	s := clusterSystem(t, j, newFakeStore(), nil)
	p := shardOf("o-1")

	_, err := s.Execute(ctxFor(t), create("o-1"))
	require.ErrorIs(t, err, ErrNotOwner)
	require.ErrorIs(t, err, ErrNotReady, "the HTTP layer answers 503 with Retry-After")
	_, err = s.Get(ctxFor(t), "o-1")
	require.ErrorIs(t, err, ErrNotOwner)
	assert.Empty(t, j.all())
	assert.Empty(t, s.Owned())

	require.NoError(t, s.Own(p))
	assert.Equal(t, []int{p}, s.Owned())
	mustExecute(t, s, create("o-1"))
	o, err := s.Get(ctxFor(t), "o-1")
	require.NoError(t, err)
	assert.Equal(t, order.Created, o.State)

	require.NoError(t, s.Disown(p))
	_, err = s.Execute(ctxFor(t), move("o-1", order.Paid))
	require.ErrorIs(t, err, ErrNotOwner)
	_, err = s.History(ctxFor(t), "o-1")
	require.ErrorIs(t, err, ErrNotOwner)
	assert.Equal(t, 0, inMemory(s), "a partition given up leaves memory")
	assert.Len(t, j.all(), 1)

	// Each time the node starts to serve the partition is an epoch of its own.
	epoch, ok := s.Serving(p)
	assert.Equal(t, uint64(1), epoch)
	assert.False(t, ok)
	require.NoError(t, s.Own(p))
	epoch, ok = s.Serving(p)
	assert.Equal(t, uint64(2), epoch)
	assert.True(t, ok)
}

// TestDisownWaitsForCommandsUnderWay: Disown returns only once the command
// being written has been answered, and nothing starts after it.
func TestDisownWaitsForCommandsUnderWay(t *testing.T) {
	j := newHeldJournal()
	st := newFakeStore()
	s := clusterSystem(t, j, st, nil)
	p := shardOf("o-1")
	require.NoError(t, s.Own(p))
	j.hold(t)
	answered := make(chan error, 1)
	go func() {
		_, err := s.Execute(context.Background(), create("o-1"))
		answered <- err
	}()
	j.awaitHeld(t)

	var disowned atomic.Bool
	go func() {
		_ = s.Disown(p)
		disowned.Store(true)
	}()
	// Disown is blocked behind the held append; a command on the same
	// partition that arrives meanwhile waits and is then refused.
	other := sameShard(t, "o-1")
	gate := &s.shards[p].gate.mu
	require.Eventually(t, func() bool { // a waiting writer makes TryRLock fail
		if gate.TryRLock() {
			gate.RUnlock()
			return false
		}
		return true
	}, roomyTimeout, time.Millisecond, "Disown waits for the gate")
	late := make(chan error, 1)
	go func() {
		_, err := s.Execute(ctxFor(t), create(other))
		late <- err
	}()
	assert.False(t, disowned.Load())
	j.release()
	require.NoError(t, <-answered, "the command under way is answered normally")
	require.Eventually(t, disowned.Load, roomyTimeout, time.Millisecond)
	assert.ErrorIs(t, <-late, ErrNotOwner)
	assert.Len(t, j.all(), 1)
}

// TestTakeOverReadsTheStore: orders another node changed while this node did
// not own the partition are read from the store when it owns it again, not
// from the stale memory it had.
func TestTakeOverReadsTheStore(t *testing.T) {
	j := &fakeJournal{}
	st := newFakeStore()
	a := clusterSystem(t, j, st, nil)
	b := clusterSystem(t, j, newFakeStore(), nil)
	p := shardOf("o-1")

	require.NoError(t, a.Own(p))
	mustExecute(t, a, create("o-1"))
	require.NoError(t, a.Disown(p))

	// b owns it meanwhile (its store caught up first) and moves it on.
	b.store.(*fakeStore).catchUp(j)
	require.NoError(t, b.Own(p))
	mustExecute(t, b, move("o-1", order.Paid))
	require.NoError(t, b.Disown(p))

	st.catchUp(j)
	require.NoError(t, a.Own(p))
	o, err := a.Get(ctxFor(t), "o-1")
	require.NoError(t, err)
	assert.Equal(t, order.Paid, o.State)
	o = mustExecute(t, a, move("o-1", order.Shipped))
	assert.Equal(t, uint64(3), o.Version)
}

// TestDeadlinesFireOnlyOnTheOwner: a deadline of a partition the node does
// not own is left to its owner; once the node owns it, the store's
// deadlines are scanned again and fire here.
func TestDeadlinesFireOnlyOnTheOwner(t *testing.T) {
	clock := newFakeClock()
	j := &fakeJournal{}
	st := newFakeStore()
	owner := clusterSystem(t, j, newFakeStore(), clock)
	other := clusterSystem(t, j, st, clock)
	p := shardOf("o-1")
	require.NoError(t, owner.Own(p))
	c := create("o-1")
	c.PaymentTimeout = time.Minute
	mustExecute(t, owner, c)
	require.NoError(t, owner.Disown(p))
	st.catchUp(j)

	clock.advance(2 * time.Minute)
	assert.Zero(t, other.FireDueDeadlines(), "not its partition")
	require.NoError(t, other.Own(p))
	assert.Equal(t, 1, other.FireDueDeadlines())
	o, err := other.Get(ctxFor(t), "o-1")
	require.NoError(t, err)
	assert.Equal(t, order.Cancelled, o.State)
}

// TestPausedNodeRefusesUntilItKnows: after a gap in its own ticks (the
// process did not run), a clustered System refuses reads and commands of
// the partitions it owns for the hold, then serves them again.
func TestPausedNodeRefusesUntilItKnows(t *testing.T) {
	j := &fakeJournal{}
	s := startSystem(t, Config{Journal: j, Store: newFakeStore(), EvictAfter: time.Hour, Clustered: true, PauseHold: 3 * time.Second})
	p := shardOf("o-1")
	require.NoError(t, s.Own(p))
	mustExecute(t, s, create("o-1"))

	// As the process sees it on waking: its last tick long ago.
	s.pause.lastTick.Store(s.pause.now() - int64(time.Minute))
	_, err := s.Get(ctxFor(t), "o-1")
	require.ErrorIs(t, err, ErrNotOwner)
	_, err = s.Execute(ctxFor(t), move("o-1", order.Paid))
	require.ErrorIs(t, err, ErrNotOwner)

	// The ticker sees the gap and holds; after the hold it serves again.
	require.Eventually(t, func() bool {
		_, err := s.Get(ctxFor(t), "o-1")
		return err == nil
	}, roomyTimeout, 10*time.Millisecond)
	mustExecute(t, s, move("o-1", order.Paid))
	assert.Len(t, j.all(), 2, "nothing was written while it held")
}

// sameShard returns another order ID in id's shard.
func sameShard(t *testing.T, id string) string {
	t.Helper()
	for k := range 10_000 {
		if other := fmt.Sprintf("o-%d", k+2); shardOf(other) == shardOf(id) && other != id {
			return other
		}
	}
	t.Fatalf("no other ID in the shard of %s", id)
	return ""
}
