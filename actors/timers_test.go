package actors

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// newTimedSystem starts a recovered System on j with a fake clock, logging
// to log if one is given.
func newTimedSystem(t *testing.T, j order.Journal, clock *fakeClock, log ...*slog.Logger) *System {
	t.Helper()
	cfg := Config{Journal: j, Now: clock.now}
	if len(log) > 0 {
		cfg.Logger = log[0]
	}
	return startSystem(t, cfg)
}

// stateOf reads an order's state. Tests assert states, not what
// FireDueDeadlines counted: the System's own loop may fire a due deadline
// first, and FireDueDeadlines returns only after that round is written.
func stateOf(t *testing.T, s *System, id string) order.State {
	t.Helper()
	o, err := s.Get(context.Background(), id)
	require.NoError(t, err)
	return o.State
}

func requireTimerCancel(t *testing.T, ev order.Event, version uint64) {
	t.Helper()
	assert.Equal(t, order.Cancelled, ev.To)
	assert.Equal(t, order.Created, ev.From)
	assert.Equal(t, PrincipalTimer, ev.Principal)
	assert.Equal(t, ReasonPaymentTimeout, ev.Reason)
	assert.Equal(t, version+1, ev.Version)
	assert.Equal(t, fmt.Sprintf("payment-timeout:%d", version), ev.IdempotencyKey)
	assert.True(t, ev.PaymentDueAt.IsZero())
}

// A new order carries the default deadline in its creation record; nothing
// fires before it; at it, the order is cancelled by a logged transition
// through its actor; firing again changes nothing.
func TestPaymentDeadlineFires(t *testing.T) {
	clock, j := newFakeClock(), &fakeJournal{}
	s := newTimedSystem(t, j, clock)
	ctx := ctxFor(t)
	t0 := clock.now()

	o, err := s.Execute(ctx, create("o-1"))
	require.NoError(t, err)
	assert.Equal(t, t0.Add(order.PaymentTimeoutDefault), o.PaymentDueAt)
	assert.Equal(t, t0.Add(order.PaymentTimeoutDefault), j.of("o-1")[0].PaymentDueAt, "the deadline is in the creation record")
	custom := create("o-2")
	custom.PaymentTimeout = 15 * time.Minute
	mustExecute(t, s, custom)

	clock.advance(15*time.Minute - time.Nanosecond)
	s.FireDueDeadlines()
	assert.Equal(t, order.Created, stateOf(t, s, "o-2"), "nothing is due yet")
	clock.advance(time.Nanosecond)
	s.FireDueDeadlines()
	assert.Equal(t, order.Cancelled, stateOf(t, s, "o-2"), "o-2's 15 minutes are up")
	assert.Equal(t, order.Created, stateOf(t, s, "o-1"))
	clock.advance(15 * time.Minute)
	s.FireDueDeadlines()

	for _, id := range []string{"o-1", "o-2"} {
		got, err := s.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, order.Cancelled, got.State)
		assert.True(t, got.PaymentDueAt.IsZero(), "a cancelled order has no deadline")
		events := j.of(id)
		require.Len(t, events, 2)
		requireTimerCancel(t, events[1], 1)
	}
	// At least once, effect exactly once: the same deadline firing again
	// is answered from the idempotency window and appends nothing.
	s.timers.push(deadline{due: clock.now().UnixNano(), version: 1, id: "o-1"})
	assert.Equal(t, 0, s.FireDueDeadlines())
	assert.Len(t, j.all(), 4)
	assert.Equal(t, 0, s.PendingDeadlines())
}

// A paid order is never cancelled: its deadline is dropped when it comes due.
func TestPaidOrderDeadlineIsDropped(t *testing.T) {
	clock, j := newFakeClock(), &fakeJournal{}
	s := newTimedSystem(t, j, clock)
	ctx := ctxFor(t)
	mustExecute(t, s, create("o-1"))
	paid, err := s.Execute(ctx, move("o-1", order.Paid))
	require.NoError(t, err)
	assert.True(t, paid.PaymentDueAt.IsZero())
	clock.advance(order.PaymentTimeoutMax)
	assert.Equal(t, 0, s.FireDueDeadlines())
	assert.Len(t, j.of("o-1"), 2)
	assert.Equal(t, 0, s.PendingDeadlines())
}

// Deadlines are rebuilt from the log: one that passed while the server was
// down fires as soon as the next one is ready, by the timer loop alone (the
// test only polls), for orders that have no actor since the restart.
func TestPaymentDeadlineFiresAfterRestart(t *testing.T) {
	clock, j := newFakeClock(), &fakeJournal{}
	first := newTimedSystem(t, j, clock)
	ctx := ctxFor(t)
	for _, id := range []string{"o-due", "o-paid", "o-later"} {
		cmd := create(id)
		if id == "o-later" {
			cmd.PaymentTimeout = 2 * time.Hour
		}
		mustExecute(t, first, cmd)
	}
	mustExecute(t, first, move("o-paid", order.Paid))
	first.Close()

	clock.advance(time.Hour) // the server is down past o-due's deadline
	second := newTimedSystem(t, j, clock)
	require.Eventually(t, func() bool {
		o, err := second.Get(ctx, "o-due")
		return err == nil && o.State == order.Cancelled
	}, roomyTimeout, time.Millisecond, "the loop fires a deadline that passed while down")
	requireTimerCancel(t, j.of("o-due")[1], 1)

	second.FireDueDeadlines()
	for id, want := range map[string]order.State{"o-paid": order.Paid, "o-later": order.Created} {
		o, err := second.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, want, o.State, id)
	}
	later := second.lookup("o-later", false)
	later.spawnMu.Lock()
	assert.Nil(t, later.pid, "a recovered order has no actor until a command arrives")
	later.spawnMu.Unlock()
	clock.advance(time.Hour)
	second.FireDueDeadlines()
	assert.Equal(t, order.Cancelled, stateOf(t, second, "o-later"), "o-later's rebuilt deadline fires on time, actor or not")
}

// A deadline and a client's pay at the same moment: whichever the actor takes
// first wins, the other changes nothing, and the log holds exactly one of the
// two transitions for every order.
func TestPaymentDeadlineRacesWithPay(t *testing.T) {
	const orders = 64
	clock, j := newFakeClock(), &fakeJournal{}
	s := newTimedSystem(t, j, clock)
	ctx := ctxFor(t)
	for i := range orders {
		mustExecute(t, s, create(fmt.Sprintf("o-%d", i)))
	}
	clock.advance(order.PaymentTimeoutDefault)

	var wg sync.WaitGroup
	paid := make([]error, orders)
	start := make(chan struct{})
	for i := range orders {
		wg.Go(func() {
			<-start
			_, paid[i] = s.Execute(ctx, move(fmt.Sprintf("o-%d", i), order.Paid))
		})
	}
	wg.Go(func() {
		<-start
		s.FireDueDeadlines()
	})
	close(start)
	wg.Wait()

	cancelled := 0
	for i := range orders {
		id := fmt.Sprintf("o-%d", i)
		events := j.of(id)
		require.Len(t, events, 2, "%s: exactly one transition after the creation", id)
		o, err := s.Get(ctx, id)
		require.NoError(t, err)
		switch o.State {
		case order.Paid:
			assert.NoError(t, paid[i], id)
		case order.Cancelled:
			cancelled++
			assert.ErrorIs(t, paid[i], order.ErrInvalidTransition, id)
			requireTimerCancel(t, events[1], 1)
		default:
			t.Fatalf("%s is %v", id, o.State)
		}
	}
	s.FireDueDeadlines()
	assert.Len(t, j.all(), 2*orders, "nothing fires twice")
	t.Logf("%d of %d orders were cancelled before their pay", cancelled, orders)
}

// Rescheduling is a logged event (Created -> Created with the new deadline)
// that adds one to the version; the old deadline no longer fires, the new one
// does; bounds and state are checked.
func TestRescheduleDeadline(t *testing.T) {
	clock, j := newFakeClock(), &fakeJournal{}
	s := newTimedSystem(t, j, clock)
	ctx := ctxFor(t)
	t0 := clock.now()
	mustExecute(t, s, create("o-1"))

	extend := order.Command{Kind: order.CommandReschedulePayment, OrderID: "o-1", Principal: "test", PaymentExtend: 10 * time.Minute}
	o, err := s.Execute(ctx, withKey(extend, "k-extend"))
	require.NoError(t, err)
	assert.Equal(t, uint64(2), o.Version)
	assert.Equal(t, t0.Add(40*time.Minute), o.PaymentDueAt)
	_, err = s.Execute(ctx, withKey(extend, "k-extend"))
	require.NoError(t, err, "a retry is answered from the window")
	change := j.of("o-1")
	require.Len(t, change, 2, "the retry appended nothing")
	assert.Equal(t, order.Created, change[1].From)
	assert.Equal(t, order.Created, change[1].To)
	assert.Equal(t, t0.Add(40*time.Minute), change[1].PaymentDueAt)

	tooFar := extend
	tooFar.PaymentExtend = order.PaymentTimeoutMax
	_, err = s.Execute(ctx, tooFar)
	assert.ErrorIs(t, err, order.ErrDeadlineOutOfBounds)
	stale := extend
	stale.ExpectedVersion = 1
	_, err = s.Execute(ctx, stale)
	assert.ErrorIs(t, err, order.ErrVersionMismatch)

	clock.advance(30 * time.Minute)
	s.FireDueDeadlines()
	assert.Equal(t, order.Created, stateOf(t, s, "o-1"), "the old deadline was moved")
	clock.advance(10 * time.Minute)
	s.FireDueDeadlines()
	assert.Equal(t, order.Cancelled, stateOf(t, s, "o-1"), "the new deadline fires")
	events := j.of("o-1")
	require.Len(t, events, 3)
	requireTimerCancel(t, events[2], 2)

	_, err = s.Execute(ctx, extend)
	assert.ErrorIs(t, err, order.ErrInvalidTransition, "no deadline to move once the order left Created")

	// The moved deadline survives a restart.
	mustExecute(t, s, create("o-2"))
	at := order.Command{Kind: order.CommandReschedulePayment, OrderID: "o-2", Principal: "test", PaymentDueAt: clock.now().Add(3 * time.Hour)}
	mustExecute(t, s, at)
	s.Close()
	again := newTimedSystem(t, j, clock)
	o, err = again.Get(ctx, "o-2")
	require.NoError(t, err)
	assert.Equal(t, clock.now().Add(3*time.Hour), o.PaymentDueAt)
	clock.advance(3*time.Hour - time.Nanosecond)
	again.FireDueDeadlines()
	assert.Equal(t, order.Created, stateOf(t, again, "o-2"))
	clock.advance(time.Nanosecond)
	again.FireDueDeadlines()
	assert.Equal(t, order.Cancelled, stateOf(t, again, "o-2"))
}

// A firing that fails for a passing reason (the journal is down) is retried
// until it lands.
func TestPaymentDeadlineRetriesWhenTheJournalFails(t *testing.T) {
	clock, j := newFakeClock(), &fakeJournal{}
	s := newTimedSystem(t, j, clock)
	mustExecute(t, s, create("o-1"))
	down := failAppends(j)
	clock.advance(order.PaymentTimeoutDefault)
	s.FireDueDeadlines()
	assert.Equal(t, order.Created, stateOf(t, s, "o-1"))
	assert.Equal(t, 1, s.PendingDeadlines(), "kept for a retry")
	down.Store(false)
	clock.advance(timerRetryDelay)
	s.FireDueDeadlines()
	assert.Equal(t, order.Cancelled, stateOf(t, s, "o-1"))
	assert.Len(t, j.of("o-1"), 2)
}

// warnings records the messages and retry delays of the warnings logged.
type warnings struct {
	mu      sync.Mutex
	retryIn []time.Duration
	failed  []int64
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler           { return w }
func (w *warnings) WithGroup(string) slog.Handler                { return w }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "retry_in":
			w.retryIn = append(w.retryIn, a.Value.Duration())
		case "failed":
			w.failed = append(w.failed, a.Value.Int64())
		}
		return true
	})
	return nil
}

func (w *warnings) seen() ([]time.Duration, []int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.retryIn), slices.Clone(w.failed)
}

// In an outage every deadline that comes due fails alike: the retries back
// off round by round, up to timerRetryDelayMax, with one warning a round,
// not one per deadline, and the first success brings the delay back.
func TestPaymentDeadlineRetriesBackOffAndWarnOncePerRound(t *testing.T) {
	const orders = 40
	clock, j := newFakeClock(), &fakeJournal{}
	logged := &warnings{}
	s := newTimedSystem(t, j, clock, slog.New(logged))
	for i := range orders {
		mustExecute(t, s, create(fmt.Sprintf("o-%d", i)))
	}
	down := failAppends(j)

	clock.advance(order.PaymentTimeoutDefault)
	s.FireDueDeadlines()
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 32 * time.Second, timerRetryDelayMax, timerRetryDelayMax}
	for _, delay := range want[:len(want)-1] {
		clock.advance(delay - time.Millisecond)
		s.FireDueDeadlines()
		retryIn, _ := logged.seen()
		require.Len(t, retryIn, slices.Index(want, delay)+1, "nothing retried before its delay")
		clock.advance(time.Millisecond)
		s.FireDueDeadlines()
	}
	retryIn, failed := logged.seen()
	assert.Equal(t, want, retryIn, "each failing round doubles the delay, up to the cap")
	assert.Equal(t, slices.Repeat([]int64{orders}, len(want)), failed, "one warning a round, for all of its deadlines")
	assert.Equal(t, order.Created, stateOf(t, s, "o-0"))
	assert.Equal(t, orders, s.PendingDeadlines(), "all kept for a retry")

	down.Store(false)
	clock.advance(timerRetryDelayMax)
	s.FireDueDeadlines()
	for i := range orders {
		assert.Equal(t, order.Cancelled, stateOf(t, s, fmt.Sprintf("o-%d", i)))
	}
	s.timers.fireMu.Lock()
	assert.Equal(t, timerRetryDelay, s.timers.retryDelay, "a success brings the delay back")
	s.timers.fireMu.Unlock()
}

// The heap keeps its entries in due order whatever order they arrive in.
func TestTimerHeapOrder(t *testing.T) {
	h := newTimers()
	for _, due := range []int64{5, 3, 9, 1, 7, 3, 8} {
		h.push(deadline{due: due, id: fmt.Sprint(due)})
	}
	got, next := h.popDue(7, timerBatchMax)
	var dues []int64
	for _, d := range got {
		dues = append(dues, d.due)
	}
	assert.Equal(t, []int64{1, 3, 3, 5, 7}, dues)
	assert.Equal(t, int64(8), next)
	got, _ = h.popDue(100, 1)
	assert.Len(t, got, 1, "a round takes at most max")
}

// pushAll (recovery) keeps the same order as pushing one by one, also
// on top of deadlines already pending.
func TestTimerHeapPushAll(t *testing.T) {
	h := newTimers()
	h.push(deadline{due: 4, id: "4"})
	var batch []deadline
	for _, due := range []int64{9, 2, 6, 1, 8, 3, 7, 5, 2} {
		batch = append(batch, deadline{due: due, id: fmt.Sprint(due)})
	}
	h.pushAll(batch)
	got, next := h.popDue(100, timerBatchMax)
	var dues []int64
	for _, d := range got {
		dues = append(dues, d.due)
	}
	assert.Equal(t, []int64{1, 2, 2, 3, 4, 5, 6, 7, 8, 9}, dues)
	assert.Zero(t, next, "nothing left")
}

// deadlineHeapBytes measures the heap growth of n pending deadlines, the
// order IDs excluded (they are the registry's strings, shared).
func deadlineHeapBytes(n int) float64 {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("01JDXQ6Z8M3V5T2K9R%08d", i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	h := newTimers()
	base := time.Now().UnixNano()
	for i, id := range ids {
		h.push(deadline{due: base + int64((i*7919)%n), version: 1, id: id})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(h)
	runtime.KeepAlive(ids)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// TestPendingDeadlineMemory keeps the per-deadline cost in check cheaply;
// BenchmarkMillionPendingDeadlines measures it at scale.
func TestPendingDeadlineMemory(t *testing.T) {
	perDeadline := deadlineHeapBytes(100_000)
	t.Logf("%.1f bytes per pending deadline", perDeadline)
	// 32 bytes an entry, up to twice that while the slice has spare room.
	assert.LessOrEqual(t, perDeadline, 80.0)
}

func BenchmarkMillionPendingDeadlines(b *testing.B) {
	for b.Loop() {
		b.ReportMetric(deadlineHeapBytes(1_000_000), "bytes/deadline")
	}
}

// A passivated order (its actor stopped for idleness, kept as its published
// state) still fires on time: the timer lives outside the actors, and the
// firing starts the order's actor again like any request.
func TestPassivatedOrderDeadlineFires(t *testing.T) {
	clock, j := newFakeClock(), &fakeJournal{}
	s := newTimedSystem(t, j, clock)
	mustExecute(t, s, create("o-1"))
	e := s.lookup("o-1", false)
	hasActor := func() bool {
		e.spawnMu.Lock()
		defer e.spawnMu.Unlock()
		return e.pid != nil
	}
	require.True(t, hasActor())
	// The sweeper reads the real clock; sweep as if the timeout had passed.
	s.sweep(time.Now().Add(2 * s.idleActorTimeout))
	require.Eventually(t, func() bool { return !hasActor() }, roomyTimeout, time.Millisecond, "the idle actor is passivated")

	clock.advance(order.PaymentTimeoutDefault)
	s.FireDueDeadlines()
	assert.Equal(t, order.Cancelled, stateOf(t, s, "o-1"))
	events := j.of("o-1")
	require.Len(t, events, 2)
	requireTimerCancel(t, events[1], 1)
}
