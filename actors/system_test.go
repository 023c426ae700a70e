package actors

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

const testShards = 4

func shardOf(id string) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % testShards)
}

// startSystem starts a recovered, ready System on cfg, closed when the test
// ends; without a ShardOf it takes the tests' own sharding.
func startSystem(t *testing.T, cfg Config) *System {
	t.Helper()
	if cfg.ShardOf == nil {
		cfg.Shards, cfg.ShardOf = testShards, shardOf
	}
	s, err := New(cfg)
	require.NoError(t, err)
	_, err = s.Recover(context.Background())
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// newSystem starts a recovered, ready System on j.
func newSystem(t *testing.T, j order.Journal) *System {
	t.Helper()
	return startSystem(t, Config{Journal: j})
}

// mustExecute runs a command that sets the scene for a test, not one the
// test is about.
func mustExecute(t *testing.T, s *System, cmd order.Command) order.Order {
	t.Helper()
	o, err := s.Execute(ctxFor(t), cmd)
	require.NoError(t, err)
	return o
}

// goExecute runs cmd on its own goroutine, for a command the test holds up;
// the channel receives its error.
func goExecute(ctx context.Context, s *System, cmd order.Command) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := s.Execute(ctx, cmd)
		done <- err
	}()
	return done
}

// payHeld creates id and starts paying for it while j holds appends: the
// payment stays in flight, its error on the channel, until j.release.
func payHeld(t *testing.T, s *System, j *heldJournal, id string) <-chan error {
	t.Helper()
	mustExecute(t, s, create(id))
	j.hold(t)
	return goExecute(ctxFor(t), s, move(id, order.Paid))
}

// waitPending waits until id has want requests queued or being handled.
func waitPending(t *testing.T, s *System, id string, want int32) {
	t.Helper()
	require.Eventually(t, func() bool { return s.lookup(id, false).pending.Load() == want }, roomyTimeout, time.Millisecond)
}

func create(id string) order.Command {
	return order.Command{Kind: order.CommandCreate, OrderID: id, Principal: "test"}
}

func move(id string, to order.State) order.Command {
	return order.Command{Kind: order.CommandTransition, OrderID: id, To: to, Principal: "test"}
}

// roomyTimeout bounds every wait in these tests (a request's context, a
// condition awaited), so that a bug fails with a message instead of hanging,
// and is far beyond what any step takes on a calm machine: CI machines are
// shared, and with two runs of the suite at once under -race on two cores
// steps took many times longer (docs/testing.md, "On a busy machine").
const roomyTimeout = 2 * time.Minute

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), roomyTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestLifecycleThroughActors(t *testing.T) {
	j := &fakeJournal{}
	s := newSystem(t, j)
	ctx := ctxFor(t)

	o, err := s.Execute(ctx, create("o-1"))
	require.NoError(t, err)
	assert.Equal(t, order.Created, o.State)
	assert.Equal(t, uint64(1), o.Version)

	for i, to := range []order.State{order.Paid, order.Shipped, order.Delivered, order.Returned} {
		o, err = s.Execute(ctx, move("o-1", to))
		require.NoError(t, err)
		assert.Equal(t, to, o.State)
		assert.Equal(t, uint64(i+2), o.Version)
	}
	got, err := s.Get(ctx, "o-1")
	require.NoError(t, err)
	assert.Equal(t, o, got)

	history, err := s.History(ctx, "o-1")
	require.NoError(t, err)
	assert.Equal(t, j.of("o-1"), history, "history is what the journal recorded")
	require.Len(t, history, 5)
	for i, ev := range history {
		assert.Equal(t, uint64(i+1), ev.Version)
		assert.NotEmpty(t, ev.EventID)
		assert.Equal(t, "test", ev.Principal)
	}
}

func TestRejectionsAppendNothing(t *testing.T) {
	j := &fakeJournal{}
	s := newSystem(t, j)
	ctx := ctxFor(t)
	mustExecute(t, s, create("o-1"))

	_, err := s.Execute(ctx, create("o-1"))
	assert.ErrorIs(t, err, order.ErrOrderExists)
	_, err = s.Execute(ctx, move("o-1", order.Delivered))
	assert.ErrorIs(t, err, order.ErrInvalidTransition)
	stale := move("o-1", order.Paid)
	stale.ExpectedVersion = 7
	_, err = s.Execute(ctx, stale)
	assert.ErrorIs(t, err, order.ErrVersionMismatch)
	_, err = s.Execute(ctx, move("missing", order.Paid))
	assert.ErrorIs(t, err, order.ErrOrderNotFound)
	_, err = s.Get(ctx, "missing")
	assert.ErrorIs(t, err, order.ErrOrderNotFound)
	_, err = s.Execute(ctx, move("bad/id", order.Paid))
	assert.ErrorIs(t, err, order.ErrInvalidID)

	assert.Len(t, j.all(), 1, "only the creation was recorded")
}

// TestConcurrentConflictsOneWinner: many clients race to pay, cancel or ship
// one order; its mailbox lets exactly one of the two first steps win.
func TestConcurrentConflictsOneWinner(t *testing.T) {
	j := &fakeJournal{}
	s := newSystem(t, j)
	ctx := ctxFor(t)
	mustExecute(t, s, create("hot"))

	const clients = 48 // within the mailbox limit, so nobody is turned away
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := move("hot", []order.State{order.Paid, order.Cancelled}[i%2])
			cmd.ExpectedVersion = 1
			_, err := s.Execute(ctx, cmd)
			if err == nil {
				wins.Add(1)
				return
			}
			assert.ErrorIs(t, err, order.ErrVersionMismatch)
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(1), wins.Load())
	assert.Len(t, j.of("hot"), 2)
}

// TestFullMailboxIsBusy holds the journal so that requests queue behind one
// order, and checks that beyond the limit callers hear ErrBusy at once.
func TestFullMailboxIsBusy(t *testing.T) {
	j := newHeldJournal()
	s := startSystem(t, Config{Journal: j, MailboxLimit: 4})
	ctx := ctxFor(t)
	mustExecute(t, s, create("o-1"))

	j.hold(t)
	var results []<-chan error
	for range 4 {
		results = append(results, goExecute(ctx, s, move("o-1", order.Paid)))
	}
	waitPending(t, s, "o-1", 4)

	_, err := s.Execute(ctx, move("o-1", order.Paid))
	assert.ErrorIs(t, err, ErrBusy)

	j.release()
	var ok, invalid int
	for _, result := range results {
		err := <-result
		switch {
		case err == nil:
			ok++
		case errors.Is(err, order.ErrInvalidTransition):
			invalid++
		default:
			t.Errorf("unexpected error %v", err)
		}
	}
	assert.Equal(t, 1, ok)
	assert.Equal(t, 3, invalid)
	assert.Equal(t, int32(0), s.lookup("o-1", false).pending.Load())
}

// A request stops counting against its order's mailbox bound when it is
// answered: a client that sends its next request on the answer to its last
// one is never refused as busy, even with room for one request only.
func TestAnsweredRequestsNoLongerCountAsQueued(t *testing.T) {
	s := startSystem(t, Config{Journal: &fakeJournal{}, MailboxLimit: 1})
	ctx := ctxFor(t)
	for i := range 200 {
		id := fmt.Sprintf("o-%d", i)
		for _, cmd := range []order.Command{create(id), move(id, order.Paid), move(id, order.Shipped), move(id, order.Delivered)} {
			_, err := s.Execute(ctx, cmd)
			require.NoError(t, err, "%s to %s", id, cmd.To)
		}
	}
}

// TestReadersNeverSeeAheadOfTheLog: while an append waits for its
// acknowledgement, readers still see the previous state (invariant 6).
func TestReadersNeverSeeAheadOfTheLog(t *testing.T) {
	j := newHeldJournal()
	s := newSystem(t, j)
	ctx := ctxFor(t)
	done := payHeld(t, s, j, "o-1")
	j.awaitHeld(t)
	o, err := s.Get(ctx, "o-1")
	require.NoError(t, err)
	assert.Equal(t, order.Created, o.State, "not yet acknowledged, so not visible")
	j.release()
	require.NoError(t, <-done)
	o, err = s.Get(ctx, "o-1")
	require.NoError(t, err)
	assert.Equal(t, order.Paid, o.State)
}

func TestJournalUnavailableAppliesNothing(t *testing.T) {
	j := &fakeJournal{}
	s := newSystem(t, j)
	ctx := ctxFor(t)
	mustExecute(t, s, create("o-1"))

	fail := failAppends(j)
	_, err := s.Execute(ctx, move("o-1", order.Paid))
	assert.ErrorIs(t, err, order.ErrJournalUnavailable)
	o, err := s.Get(ctx, "o-1")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), o.Version)

	fail.Store(false)
	o, err = s.Execute(ctx, move("o-1", order.Paid))
	require.NoError(t, err)
	assert.Equal(t, uint64(2), o.Version)
	assert.Zero(t, j.loads, "a certain failure needs no re-read")
}

// TestUnknownOutcomeFencesUntilSettled covers both kinds of unknown outcome:
// the record landed but the acknowledgement was lost, and the record never
// landed. Either way memory is unchanged until the actor has re-read the log.
func TestUnknownOutcomeFencesUntilSettled(t *testing.T) {
	eachUnknownOutcome(t, func(t *testing.T, landed bool) {
		j := &fakeJournal{}
		s := newSystem(t, j)
		ctx := ctxFor(t)
		mustExecute(t, s, create("o-1"))

		nextAppendOutcomeUnknown(j, landed)
		_, err := s.Execute(ctx, move("o-1", order.Paid))
		assert.ErrorIs(t, err, order.ErrOutcomeUnknown)
		o, err := s.Get(ctx, "o-1")
		require.NoError(t, err)
		assert.Equal(t, order.Created, o.State, "memory does not guess")

		// The next command settles first, then decides on what the log holds.
		_, err = s.Execute(ctx, move("o-1", order.Paid))
		if landed {
			assert.ErrorIs(t, err, order.ErrInvalidTransition, "the first Paid is in the log")
		} else {
			assert.NoError(t, err)
		}
		assert.Equal(t, 1, j.loads)
		o, err = s.Get(ctx, "o-1")
		require.NoError(t, err)
		assert.Equal(t, order.Paid, o.State)
		assert.Equal(t, uint64(2), o.Version)
		history, err := s.History(ctx, "o-1")
		require.NoError(t, err)
		assert.Equal(t, j.of("o-1"), history)
	})
}

func TestDeadlineWhileQueuedIsBusyAndAppliesNothing(t *testing.T) {
	j := newHeldJournal()
	s := newSystem(t, j)
	ctx := ctxFor(t)
	first := payHeld(t, s, j, "o-1")
	j.awaitHeld(t) // the cancel must queue behind the payment, not overtake it
	waitPending(t, s, "o-1", 1)

	short, cancel := context.WithCancel(ctx)
	cancel()
	_, err := s.Execute(short, move("o-1", order.Cancelled))
	assert.ErrorIs(t, err, ErrBusy)

	j.release()
	require.NoError(t, <-first)
	waitPending(t, s, "o-1", 0)
	o, err := s.Get(ctx, "o-1")
	require.NoError(t, err)
	assert.Equal(t, order.Paid, o.State, "the abandoned cancel was never carried out")
	assert.Len(t, j.of("o-1"), 2)
}

func TestNotReadyUntilRecovered(t *testing.T) {
	j := &fakeJournal{}
	s, err := New(Config{Journal: j, Shards: testShards, ShardOf: shardOf})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	ctx := ctxFor(t)
	assert.ErrorIs(t, s.Ready(), ErrNotReady)
	_, err = s.Execute(ctx, create("o-1"))
	assert.ErrorIs(t, err, ErrNotReady)
	_, err = s.Get(ctx, "o-1")
	assert.ErrorIs(t, err, ErrNotReady)

	_, err = s.Recover(ctx)
	require.NoError(t, err)
	assert.NoError(t, s.Ready())
	s.Close()
	assert.ErrorIs(t, s.Ready(), ErrNotReady)
	_, err = s.Execute(ctx, create("o-2"))
	assert.ErrorIs(t, err, ErrNotReady)
}

// TestRecoverRebuildsAndSkipsBadRecords: recovery applies the valid path of
// each order and counts, but never applies, duplicates and forks.
func TestRecoverRebuildsAndSkipsBadRecords(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	ev := func(id string, v uint64, from, to order.State) order.Event {
		return order.Event{EventID: fmt.Sprintf("%s-%d", id, v), OrderID: id, Version: v, From: from, To: to, At: at}
	}
	j := &fakeJournal{events: []order.Event{
		ev("a", 1, 0, order.Created),
		ev("b", 1, 0, order.Created),
		ev("a", 2, order.Created, order.Paid),
		ev("a", 2, order.Created, order.Paid),      // duplicate
		ev("a", 3, order.Created, order.Cancelled), // fork: a is Paid
		ev("b", 3, order.Paid, order.Shipped),      // gap
		ev("a", 3, order.Paid, order.Shipped),
	}}
	s, err := New(Config{Journal: j, Shards: testShards, ShardOf: shardOf})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	stats, err := s.Recover(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 7, stats.Records)
	assert.Equal(t, 4, stats.Applied)
	assert.Equal(t, 3, stats.Skipped)
	assert.Equal(t, 2, stats.Orders)

	ctx := ctxFor(t)
	a, err := s.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, order.Order{ID: "a", State: order.Shipped, Version: 3, CreatedAt: at, UpdatedAt: at}, a)
	history, err := s.History(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, []string{"a-1", "a-2", "a-3"}, []string{history[0].EventID, history[1].EventID, history[2].EventID})

	// A recovered order takes commands on top of its recovered state.
	next, err := s.Execute(ctx, move("a", order.Delivered))
	require.NoError(t, err)
	assert.Equal(t, uint64(4), next.Version)
}
