package actors

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// newPassivatingSystem has an idle timeout long enough that only the test's
// own calls to sweep passivate anything.
func newPassivatingSystem(t *testing.T, j order.Journal, liveMax int) *System {
	t.Helper()
	return startSystem(t, Config{Journal: j, IdleActorTimeout: time.Hour, LiveActorsMax: liveMax})
}

// sweepAll asks every actor to passivate as if an hour had passed.
func sweepAll(s *System) { s.sweep(time.Now().Add(2 * time.Hour)) }

func waitLive(t *testing.T, s *System, want int64) {
	t.Helper()
	require.Eventually(t, func() bool { live, _ := s.LiveActors(); return live == want }, roomyTimeout, time.Millisecond)
}

// TestPassivatedOrdersLoseNothing: an idle order's actor is stopped, and the
// order carries on from its published state, keys included.
func TestPassivatedOrdersLoseNothing(t *testing.T) {
	j := &fakeJournal{}
	s := newPassivatingSystem(t, j, 0)
	ctx := ctxFor(t)
	cmd := create("p-1")
	cmd.IdempotencyKey = "k-create"
	first := mustExecute(t, s, cmd)
	mustExecute(t, s, move("p-1", order.Paid))
	waitLive(t, s, 1)

	sweepAll(s)
	waitLive(t, s, 0)
	_, passivated := s.LiveActors()
	assert.Equal(t, int64(1), passivated)

	got, err := s.Get(ctx, "p-1")
	require.NoError(t, err)
	assert.Equal(t, order.Paid, got.State, "reads need no actor")

	again, err := s.Execute(ctx, cmd)
	require.NoError(t, err, "a retried create is answered from the keys the actor handed back")
	assert.Equal(t, first, again)
	assert.Len(t, j.of("p-1"), 2, "the retry appended nothing")

	next, err := s.Execute(ctx, move("p-1", order.Shipped))
	require.NoError(t, err)
	assert.Equal(t, uint64(3), next.Version)
	waitLive(t, s, 1)
	assert.Zero(t, j.loads, "a passivated actor restarts from memory, not by re-reading the log")
	history, err := s.History(ctx, "p-1")
	require.NoError(t, err)
	assert.Equal(t, j.of("p-1"), history)
}

// TestLiveActorCapIsBusy: beyond the cap a command for an order without an
// actor is refused with ErrBusy and appends nothing; passivation frees room.
func TestLiveActorCapIsBusy(t *testing.T) {
	j := &fakeJournal{}
	s := newPassivatingSystem(t, j, 2)
	ctx := ctxFor(t)
	for i := range 2 {
		mustExecute(t, s, create(fmt.Sprintf("cap-%d", i)))
	}
	_, err := s.Execute(ctx, create("cap-2"))
	assert.ErrorIs(t, err, ErrBusy)
	assert.Len(t, j.all(), 2)
	_, err = s.Get(ctx, "cap-2")
	assert.ErrorIs(t, err, order.ErrOrderNotFound)

	sweepAll(s)
	waitLive(t, s, 0)
	_, err = s.Execute(ctx, create("cap-2"))
	require.NoError(t, err)
}

// TestBusyOrFencedActorsStay: an actor with a request queued, or fenced by
// an unknown outcome, is not passivated.
func TestBusyOrFencedActorsStay(t *testing.T) {
	j := &fakeJournal{}
	s := newPassivatingSystem(t, j, 0)
	ctx := ctxFor(t)
	mustExecute(t, s, create("f-1"))
	nextAppendOutcomeUnknown(j, true)
	_, err := s.Execute(ctx, move("f-1", order.Paid))
	require.ErrorIs(t, err, order.ErrOutcomeUnknown)

	sweepAll(s)
	// The passivation request is handled before the next command (one
	// mailbox); that command settles the fence and sees the landed Paid.
	_, err = s.Execute(ctx, move("f-1", order.Paid))
	assert.ErrorIs(t, err, order.ErrInvalidTransition)
	live, passivated := s.LiveActors()
	assert.Equal(t, int64(1), live, "the fenced actor stayed")
	assert.Zero(t, passivated)
	assert.Equal(t, 1, j.loads)
}

// TestSweeperPassivatesIdleActorsByItself: with a short idle timeout the
// sweeper's own ticks stop an idle actor, and a touched one comes back.
func TestSweeperPassivatesIdleActorsByItself(t *testing.T) {
	s := startSystem(t, Config{Journal: &fakeJournal{}, IdleActorTimeout: 40 * time.Millisecond})
	ctx := ctxFor(t)
	mustExecute(t, s, create("s-1"))
	waitLive(t, s, 0)
	o, err := s.Execute(ctx, move("s-1", order.Paid))
	require.NoError(t, err)
	assert.Equal(t, uint64(2), o.Version)
}

// The sweeper visits only orders with a running actor: the shard's live
// set follows starts and passivations, however many orders the shard holds.
func TestSweeperVisitsOnlyLiveActors(t *testing.T) {
	s := startSystem(t, Config{Journal: &fakeJournal{}, Shards: 1, ShardOf: func(string) int { return 0 }, IdleActorTimeout: 40 * time.Millisecond})
	liveInShard := func() int {
		sh := s.shards[0]
		sh.liveMu.Lock()
		defer sh.liveMu.Unlock()
		return len(sh.live)
	}
	ctx := ctxFor(t)
	for i := range 20 {
		mustExecute(t, s, create(fmt.Sprintf("v-%d", i)))
	}
	assert.Equal(t, 20, liveInShard()+int(s.passivated.Load()), "every started actor is in the live set until passivated")
	waitLive(t, s, 0)
	assert.Zero(t, liveInShard(), "passivated actors leave the live set")
	_, err := s.Execute(ctx, move("v-3", order.Paid))
	require.NoError(t, err)
	assert.Equal(t, 1, liveInShard()+int(s.passivated.Load())-20, "a restarted actor is back in it")
}

// TestRefusedCreatesLeaveNoEntries: creates refused at the live-actor cap,
// or by the journal, leave nothing in the registry once their actor is gone,
// so a flood of them cannot grow memory.
func TestRefusedCreatesLeaveNoEntries(t *testing.T) {
	j := &fakeJournal{}
	s := newPassivatingSystem(t, j, 1)
	ctx := ctxFor(t)
	mustExecute(t, s, create("kept"))
	for i := range 100 {
		_, err := s.Execute(ctx, create(fmt.Sprintf("refused-%d", i)))
		require.ErrorIs(t, err, ErrBusy)
	}
	assert.Equal(t, 1, s.entries(), "creates refused at the cap left no entries")

	sweepAll(s)
	waitLive(t, s, 0)
	refuse := failAppends(j)
	_, err := s.Execute(ctx, create("journal-refused"))
	require.ErrorIs(t, err, order.ErrJournalUnavailable)
	assert.Equal(t, 2, s.entries(), "the refused create's actor still runs")
	sweepAll(s)
	require.Eventually(t, func() bool { return s.entries() == 1 }, roomyTimeout, time.Millisecond,
		"passivating its actor removed the entry of an order that never existed")
	_, err = s.Get(ctx, "journal-refused")
	assert.ErrorIs(t, err, order.ErrOrderNotFound)

	refuse.Store(false)
	o, err := s.Execute(ctx, create("journal-refused"))
	require.NoError(t, err, "the ID is free to create again")
	assert.Equal(t, uint64(1), o.Version)
	got, err := s.Get(ctx, "kept")
	require.NoError(t, err)
	assert.Equal(t, order.Created, got.State)
}

// entries counts the registry's entries, for tests.
func (s *System) entries() int {
	n := 0
	for _, sh := range s.shards {
		sh.mu.RLock()
		n += len(sh.orders)
		sh.mu.RUnlock()
	}
	return n
}
