package actors

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// fakeStore is an order.StateStore kept in memory and fed from a fakeJournal
// only when a test says so (catchUp), so that a test decides how far it lags
// the log. It folds the log with order.Apply, as the real feeder does.
type fakeStore struct {
	mu      sync.Mutex
	fed     int // journal events already read
	orders  map[string][]order.Event
	creates map[clientKey]order.Event
	reads   atomic.Int64
	// duringEvents, when set, runs inside every Events call: a test's way
	// to make something happen while a cold load reads.
	duringEvents func()
}

var _ order.StateStore = (*fakeStore)(nil)

func newFakeStore() *fakeStore {
	return &fakeStore{orders: map[string][]order.Event{}, creates: map[clientKey]order.Event{}}
}

// catchUp feeds the store every event the journal holds.
func (f *fakeStore) catchUp(j *fakeJournal) {
	j.mu.Lock()
	events := slices.Clone(j.events)
	j.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ev := range events[f.fed:] {
		if _, err := order.Apply(f.current(ev.OrderID), ev); err != nil {
			continue
		}
		f.orders[ev.OrderID] = append(f.orders[ev.OrderID], ev)
		if ev.Version == 1 && ev.IdempotencyKey != "" {
			f.creates[clientKey{ev.Principal, ev.IdempotencyKey}] = ev
		}
	}
	f.fed = len(events)
}

// current folds an order's events; f.mu must be held.
func (f *fakeStore) current(id string) order.Order {
	var o order.Order
	for _, ev := range f.orders[id] {
		o, _ = order.Apply(o, ev)
	}
	return o
}

func (f *fakeStore) Events(_ context.Context, id string) ([]order.Event, error) {
	f.reads.Add(1)
	if f.duringEvents != nil {
		f.duringEvents()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	events := f.orders[id]
	if len(events) == 0 {
		return nil, order.ErrOrderNotFound
	}
	return slices.Clone(events), nil
}

func (f *fakeStore) Version(_ context.Context, id string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return uint64(len(f.orders[id])), nil
}

func (f *fakeStore) PendingDeadlines(_ context.Context, before time.Time, fn func(order.PendingDeadline) error) error {
	f.mu.Lock()
	var due []order.PendingDeadline
	for id := range f.orders {
		o := f.current(id)
		if o.State == order.InitialState && !o.PaymentDueAt.IsZero() && o.PaymentDueAt.Before(before) {
			due = append(due, order.PendingDeadline{OrderID: id, Version: o.Version, Due: o.PaymentDueAt})
		}
	}
	f.mu.Unlock()
	sort.Slice(due, func(i, k int) bool { return due[i].Due.Before(due[k].Due) })
	for _, d := range due {
		if err := fn(d); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeStore) CreatedBy(_ context.Context, principal, key string) (string, time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ev, ok := f.creates[clientKey{principal, key}]
	if !ok {
		return "", time.Time{}, order.ErrOrderNotFound
	}
	return ev.OrderID, ev.At, nil
}

// replayCountingJournal fails the test if Recover replays it: with a store
// nothing is read from the log at start.
type replayCountingJournal struct {
	*fakeJournal
	replays atomic.Int64
}

func (j *replayCountingJournal) Replay(ctx context.Context, fn func(order.Event) error) (order.ReplayStats, error) {
	j.replays.Add(1)
	return j.fakeJournal.Replay(ctx, fn)
}

func storeSystem(t *testing.T, j order.Journal, st *fakeStore, clock *fakeClock) *System {
	t.Helper()
	cfg := Config{Journal: j, Store: st, EvictAfter: time.Hour}
	if clock != nil {
		cfg.Now = clock.now
	}
	return startSystem(t, cfg)
}

func inMemory(s *System) int {
	n, _, _ := s.StoreStats()
	return n
}

// evictAll evicts every order the store allows, whatever its age, once
// their actors have stopped (an order with a live actor stays).
func evictAll(t *testing.T, s *System) int {
	t.Helper()
	sweepAll(s)
	waitLive(t, s, 0)
	return s.evictIdle(time.Now().Add(time.Hour))
}

func TestColdOrdersBehaveAsHotOnes(t *testing.T) {
	j := &replayCountingJournal{fakeJournal: &fakeJournal{}}
	st := newFakeStore()
	first := storeSystem(t, j, st, nil)
	mustExecute(t, first, create("o-1"))
	paid := move("o-1", order.Paid)
	paid.IdempotencyKey, paid.Principal = "pay-1", "alice"
	wantPaid := mustExecute(t, first, paid)
	keyed := order.Command{Kind: order.CommandCreate, OrderID: "generated-1", IDGenerated: true, IdempotencyKey: "create-1", Principal: "alice"}
	wantCreated := mustExecute(t, first, keyed)
	wantHistory, err := first.History(ctxFor(t), "o-1")
	require.NoError(t, err)
	first.Close()
	st.catchUp(j.fakeJournal)

	// A restart: nothing is read from the log, and nothing is in memory.
	s := storeSystem(t, j, st, nil)
	assert.Zero(t, j.replays.Load(), "Recover replays nothing when there is a store")
	assert.Zero(t, inMemory(s))

	got, err := s.Get(ctxFor(t), "o-1")
	require.NoError(t, err)
	assert.Equal(t, wantPaid, got)
	history, err := s.History(ctxFor(t), "o-1")
	require.NoError(t, err)
	assert.Equal(t, wantHistory, history)
	_, coldLoads, _ := s.StoreStats()
	assert.EqualValues(t, 1, coldLoads)

	require.Equal(t, 1, evictAll(t, s))
	before := len(j.of("o-1"))
	// The idempotency window came back from the store: the retry is
	// answered, not appended; the same key for another request is refused.
	again, err := s.Execute(ctxFor(t), paid)
	require.NoError(t, err)
	assert.Equal(t, wantPaid, again)
	assert.Len(t, j.of("o-1"), before)
	other := move("o-1", order.Cancelled)
	other.IdempotencyKey, other.Principal = "pay-1", "alice"
	_, err = s.Execute(ctxFor(t), other)
	require.ErrorIs(t, err, order.ErrIdempotencyKeyReused)

	// If-Match against a cold order.
	require.Equal(t, 1, evictAll(t, s))
	stale := move("o-1", order.Shipped)
	stale.ExpectedVersion = 1
	_, err = s.Execute(ctxFor(t), stale)
	require.ErrorIs(t, err, order.ErrVersionMismatch)
	stale.ExpectedVersion = 2
	shipped, err := s.Execute(ctxFor(t), stale)
	require.NoError(t, err)
	assert.Equal(t, order.Shipped, shipped.State)

	// A create of an order the store holds is order-exists, cold or not.
	require.Equal(t, 0, evictAll(t, s), "the store has not seen the shipment yet")
	st.catchUp(j.fakeJournal)
	require.Equal(t, 1, evictAll(t, s))
	_, err = s.Execute(ctxFor(t), create("o-1"))
	require.ErrorIs(t, err, order.ErrOrderExists)

	// A retried create under a server-generated ID finds the order its
	// first attempt made, though no memory of the key survived.
	retry := keyed
	retry.OrderID = "generated-2"
	o, err := s.Execute(ctxFor(t), retry)
	require.NoError(t, err)
	assert.Equal(t, wantCreated, o)
	_, err = s.Get(ctxFor(t), "generated-2")
	require.ErrorIs(t, err, order.ErrOrderNotFound)
}

func TestUnknownOrdersAreNotFoundWithAStore(t *testing.T) {
	j, st := &fakeJournal{}, newFakeStore()
	s := storeSystem(t, j, st, nil)
	_, err := s.Get(ctxFor(t), "nobody")
	require.ErrorIs(t, err, order.ErrOrderNotFound)
	_, err = s.Execute(ctxFor(t), move("nobody", order.Paid))
	require.ErrorIs(t, err, order.ErrOrderNotFound)
	assert.Zero(t, inMemory(s), "a miss leaves nothing in memory")
}

func TestOnlyIdleOrdersTheStoreHoldsAreEvicted(t *testing.T) {
	j, st := &fakeJournal{}, newFakeStore()
	s := storeSystem(t, j, st, nil)
	mustExecute(t, s, create("o-1"))
	mustExecute(t, s, create("o-2"))

	assert.Zero(t, s.evictIdle(time.Now().Add(-time.Hour)), "recently used orders stay")
	assert.Zero(t, evictAll(t, s), "the store has not seen them yet")
	st.catchUp(j)
	mustExecute(t, s, move("o-2", order.Paid))
	assert.Equal(t, 1, evictAll(t, s), "o-2's payment is not in the store yet")
	assert.Equal(t, 1, inMemory(s))
	st.catchUp(j)
	assert.Equal(t, 1, evictAll(t, s))
	assert.Zero(t, inMemory(s))

	got, err := s.Get(ctxFor(t), "o-2")
	require.NoError(t, err)
	assert.Equal(t, order.Paid, got.State)
	assert.EqualValues(t, 2, got.Version)
	_, _, evictions := s.StoreStats()
	assert.EqualValues(t, 2, evictions)
}

func TestDeadlinesOfEvictedOrdersFire(t *testing.T) {
	clock, j, st := newFakeClock(), &fakeJournal{}, newFakeStore()
	s := storeSystem(t, j, st, clock)
	s.FireDueDeadlines() // the first scan of the (empty) store
	short := create("soon")
	short.PaymentTimeout = 2 * time.Minute
	mustExecute(t, s, short)           // due within the horizon: in the heap
	mustExecute(t, s, create("later")) // the default 30 min: left to the store
	assert.Equal(t, 1, s.PendingDeadlines(), "only the deadline due soon is in the heap")
	st.catchUp(j)
	require.Equal(t, 2, evictAll(t, s))

	clock.advance(3 * time.Minute)
	s.FireDueDeadlines()
	assert.Equal(t, order.Cancelled, stateOf(t, s, "soon"))
	assert.Equal(t, order.Created, stateOf(t, s, "later"))

	// Across a restart, from the store alone.
	s.Close()
	st.catchUp(j)
	clock.advance(order.PaymentTimeoutDefault)
	restarted := storeSystem(t, j, st, clock)
	restarted.FireDueDeadlines()
	assert.Equal(t, order.Cancelled, stateOf(t, restarted, "later"))
	events := j.of("later")
	require.Len(t, events, 2)
	requireTimerCancel(t, events[1], 1)
	assert.Len(t, j.of("soon"), 2, "the deadline that fired before the restart fired once")
}

// TestEvictionsRacingCommandsLoseNothing runs clients against orders that
// are evicted and loaded again all the time, with the store catching up
// behind: every acknowledged transition must be the log's, and no record
// the actors wrote may be one the apply rule skips (a command decided on a
// stale cold load would write such a fork).
func TestEvictionsRacingCommandsLoseNothing(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	j, st := &fakeJournal{}, newFakeStore()
	s := storeSystem(t, j, st, nil)
	const orders, clients, rounds = 8, 4, 60
	for i := range orders {
		mustExecute(t, s, create(fmt.Sprintf("o-%d", i)))
	}
	stop := make(chan struct{})
	var background sync.WaitGroup
	background.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			st.catchUp(j)
			sweepAll(s)
			s.evictIdle(time.Now().Add(time.Hour))
		}
	})
	var acked sync.Map // order ID -> highest version acknowledged
	var clientsDone sync.WaitGroup
	for c := range clients {
		rng := rand.New(rand.NewPCG(uint64(seed), uint64(c)))
		clientsDone.Go(func() {
			steps := []order.State{order.Paid, order.Shipped, order.Delivered, order.Returned, order.Cancelled}
			for range rounds {
				id := fmt.Sprintf("o-%d", rng.IntN(orders))
				if rng.IntN(3) == 0 {
					_, _ = s.Get(context.Background(), id)
					continue
				}
				o, err := s.Execute(context.Background(), move(id, steps[rng.IntN(len(steps))]))
				if err == nil {
					acked.Store(fmt.Sprintf("%s@%d", id, o.Version), true)
				}
			}
		})
	}
	clientsDone.Wait()
	close(stop)
	background.Wait()
	_, coldLoads, evictions := s.StoreStats()
	t.Logf("%d evictions, %d cold loads", evictions, coldLoads)

	j.mu.Lock()
	events := slices.Clone(j.events)
	j.mu.Unlock()
	folded := map[string]order.Order{}
	for _, ev := range events {
		next, err := order.Apply(folded[ev.OrderID], ev)
		require.NoError(t, err, "every record the actors wrote continues its order (seed %d)", seed)
		folded[ev.OrderID] = next
	}
	acked.Range(func(k, _ any) bool {
		id, version, _ := strings.Cut(k.(string), "@")
		v, err := strconv.ParseUint(version, 10, 64)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, folded[id].Version, v, "acknowledged %s is in the log", k)
		return true
	})
	for id, want := range folded {
		got, err := s.Get(ctxFor(t), id)
		require.NoError(t, err)
		assert.Equal(t, want.Version, got.Version, "order %s (seed %d)", id, seed)
		assert.Equal(t, want.State, got.State, "order %s (seed %d)", id, seed)
	}
}

// TestColdLoadsAreNotBusyDuringAnEvictionSweep: evictions of other orders
// in the same shard, while an order is read from the store, do not make its
// load start over (a bench run once got 503 busy for thousands of reads while
// a sweep evicted a million orders).
func TestColdLoadsAreNotBusyDuringAnEvictionSweep(t *testing.T) {
	j, st := &fakeJournal{}, newFakeStore()
	s := storeSystem(t, j, st, nil)
	var ids []string
	for i := 0; len(ids) < 40; i++ {
		if id := fmt.Sprintf("o-%d", i); shardOf(id) == shardOf("cold") {
			ids = append(ids, id)
		}
	}
	mustExecute(t, s, create("cold"))
	st.catchUp(j)
	require.Equal(t, 1, evictAll(t, s))
	for _, id := range ids {
		mustExecute(t, s, create(id))
	}
	st.catchUp(j)
	sweepAll(s)
	waitLive(t, s, 0)
	next := 0
	st.duringEvents = func() { // each read of the store sees another eviction
		if next < len(ids) {
			sh := s.shardFor(ids[next])
			s.evict(sh, s.lookup(ids[next], false), time.Now().Add(time.Hour).UnixNano())
			next++
		}
	}
	got, err := s.Get(ctxFor(t), "cold")
	require.NoError(t, err)
	assert.Equal(t, order.Created, got.State)
}
