package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
	"github.com/orderd/orderd/persistence/store"
)

// step is the event that moves o (as the store holds it, version v) to
// state to, carrying metadata so that contents change too.
func step(id string, v uint64, from, to order.State) order.Event {
	return order.Event{EventID: fmt.Sprintf("%s-%d", id, v+1), OrderID: id, Version: v + 1, From: from, To: to,
		At: testEpoch.Add(time.Duration(v+1) * time.Second), Metadata: map[string]string{"step": to.String()}}
}

// creation is an order's first event, for customer (none if empty), with
// one item.
func creation(id, customer string) order.Event {
	ev := order.Event{EventID: id + "-1", OrderID: id, Version: 1, To: order.Created, At: testEpoch,
		Principal: "alice", PaymentDueAt: testEpoch.Add(time.Hour), CustomerID: customer}
	if customer != "" {
		ev.Currency, ev.Items, ev.Total = "EUR", []order.Item{{SKU: "sku-1", Quantity: 2, UnitPrice: 150}}, 300
	}
	return ev
}

func list(t *testing.T, st *store.Store, q order.ListQuery) order.ListPage {
	t.Helper()
	if q.Limit == 0 {
		q.Limit = order.ListLimitMax
	}
	page, err := st.List(context.Background(), q)
	require.NoError(t, err)
	return page
}

func ids(page order.ListPage) []string {
	out := make([]string, len(page.Orders))
	for i, o := range page.Orders {
		out[i] = o.ID
	}
	return out
}

// requireListedOnlyIn checks that the store's only order is listed under
// its state and no other, with and without its customer.
func requireListedOnlyIn(t *testing.T, st *store.Store, id, customer string, state order.State) {
	t.Helper()
	require.Equal(t, []string{id}, ids(list(t, st, order.ListQuery{})), "all orders")
	for _, s := range order.States() {
		want := []string(nil)
		if s == state {
			want = []string{id}
		}
		require.Equal(t, want, nilIfEmpty(ids(list(t, st, order.ListQuery{State: s}))), "state %v", s)
		if customer != "" {
			require.Equal(t, want, nilIfEmpty(ids(list(t, st, order.ListQuery{State: s, CustomerID: customer}))), "customer and state %v", s)
		}
	}
	if customer != "" {
		require.Equal(t, []string{id}, ids(list(t, st, order.ListQuery{CustomerID: customer})))
	}
	require.Empty(t, list(t, st, order.ListQuery{CustomerID: "someone-else"}).Orders)
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// TestIndexFollowsEveryTransition drives one order over every step of the
// table (and a deadline change), with and without a customer, and after
// each checks that the order is listed under its state and no other, as
// GET would show it.
func TestIndexFollowsEveryTransition(t *testing.T) {
	for _, customer := range []string{"", "cust-7"} {
		for _, from := range order.States() {
			for _, to := range order.AllowedNext(from) {
				t.Run(fmt.Sprintf("%q %v to %v", customer, from, to), func(t *testing.T) {
					st := open(t, t.TempDir(), testID)
					defer st.Close()
					id := "order-1"
					evs := []order.Event{creation(id, customer)}
					evs = append(evs, step(id, 1, order.Created, order.Created)) // a deadline change
					evs[1].PaymentDueAt = testEpoch.Add(2 * time.Hour)
					for _, s := range pathTo(from)[1:] {
						last := evs[len(evs)-1]
						evs = append(evs, step(id, last.Version, last.To, s))
					}
					last := evs[len(evs)-1]
					evs = append(evs, step(id, last.Version, last.To, to))
					for i, ev := range evs {
						require.NoError(t, apply(t, st, 0, int64(i+1), ev)[0])
						requireListedOnlyIn(t, st, id, customer, ev.To)
					}
					want, err := foldEvents(evs)
					require.NoError(t, err)
					require.Equal(t, []order.Order{want}, list(t, st, order.ListQuery{}).Orders, "as GET shows it, contents included")
					require.NoError(t, st.Verify(context.Background()))
				})
			}
		}
	}
}

// pathTo is a shortest path of states from Created to s.
func pathTo(s order.State) []order.State {
	paths := map[order.State][]order.State{order.Created: {order.Created}}
	queue := []order.State{order.Created}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, next := range order.AllowedNext(cur) {
			if _, seen := paths[next]; !seen {
				paths[next] = append(slices.Clone(paths[cur]), next)
				queue = append(queue, next)
			}
		}
	}
	return paths[s]
}

func foldEvents(evs []order.Event) (order.Order, error) {
	var o order.Order
	for _, ev := range evs {
		var err error
		if o, err = order.Apply(o, ev); err != nil {
			return o, err
		}
	}
	return o, nil
}

// Records the apply rule skips move nothing in the indexes.
func TestIndexIgnoresSkippedRecords(t *testing.T) {
	st := open(t, t.TempDir(), testID)
	defer st.Close()
	c := creation("x", "cust")
	errs := apply(t, st, 0, 3, c, step("x", 1, order.Created, order.Paid),
		step("x", 1, order.Created, order.Cancelled), // a fork: version 2 again
		step("x", 3, order.Shipped, order.Delivered)) // a gap
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.ErrorIs(t, errs[2], order.ErrRecordDuplicate)
	require.ErrorIs(t, errs[3], order.ErrRecordFork)
	requireListedOnlyIn(t, st, "x", "cust", order.Paid)
}

// model is what a listing should answer: the orders a test wrote, by ID.
type model map[string]order.Order

func (m model) page(q order.ListQuery) order.ListPage {
	page := order.ListPage{Orders: []order.Order{}}
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for id := range m {
			if !yield(id) {
				return
			}
		}
	}) {
		o := m[id]
		if id <= q.After || (q.State != 0 && o.State != q.State) || (q.CustomerID != "" && (o.Contents == nil || o.Contents.CustomerID != q.CustomerID)) {
			continue
		}
		if len(page.Orders) == q.Limit {
			page.More = true
			break
		}
		page.Orders = append(page.Orders, o)
	}
	return page
}

// fill writes n orders over both partitions in a seeded mix of states and
// customers, and returns them as the model holds them.
func fill(t *testing.T, st *store.Store, seed uint64, n int) model {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	m := model{}
	var batches [2][]order.Event
	for i := range n {
		id := fmt.Sprintf("o-%05d", rng.IntN(10*n))
		if _, dup := m[id]; dup {
			continue
		}
		customer := ""
		if i%5 != 0 {
			customer = fmt.Sprintf("c%d", rng.IntN(4))
		}
		evs := []order.Event{creation(id, customer)}
		path := pathTo(order.States()[rng.IntN(len(order.States()))])
		for _, s := range path[1:] {
			last := evs[len(evs)-1]
			evs = append(evs, step(id, last.Version, last.To, s))
		}
		o, err := foldEvents(evs)
		require.NoError(t, err)
		m[id] = o
		p := shardOf(id)
		batches[p] = append(batches[p], evs...)
	}
	for p, evs := range batches {
		for i, err := range apply(t, st, p, int64(len(evs)), evs...) {
			require.NoError(t, err, "event %d", i)
		}
	}
	return m
}

func TestListFiltersAndPagesLikeTheModel(t *testing.T) {
	seed := rand.Uint64()
	st := open(t, t.TempDir(), testID)
	defer st.Close()
	m := fill(t, st, seed, 400)
	queries := []order.ListQuery{{}, {CustomerID: "c1"}, {CustomerID: "nobody"}}
	for _, s := range order.States() {
		queries = append(queries, order.ListQuery{State: s}, order.ListQuery{State: s, CustomerID: "c2"})
	}
	for _, q := range queries {
		for _, limit := range []int{1, 7, 100, order.ListLimitMax} {
			q.Limit, q.After = limit, ""
			var all []string
			for range len(m) + 2 {
				got, want := list(t, st, q), m.page(q)
				require.Equal(t, want, got, "seed %d query %+v", seed, q)
				all = append(all, ids(got)...)
				if !got.More {
					break
				}
				q.After = got.Orders[len(got.Orders)-1].ID
			}
			q.After = ""
			require.Equal(t, nilIfEmpty(ids(m.page(order.ListQuery{State: q.State, CustomerID: q.CustomerID, Limit: len(m) + 1}))), all,
				"seed %d: paging through %+v", seed, q)
		}
	}
	// A cursor need not name a listed order: the page starts after it.
	got := list(t, st, order.ListQuery{After: "o-", Limit: 3})
	require.Equal(t, m.page(order.ListQuery{After: "o-", Limit: 3}), got)
}

func TestListRefusesBadQueries(t *testing.T) {
	st := open(t, t.TempDir(), testID)
	defer st.Close()
	for _, q := range []order.ListQuery{{Limit: 0}, {Limit: -1}, {Limit: order.ListLimitMax + 1}, {Limit: 1, State: 99}} {
		_, err := st.List(context.Background(), q)
		require.Error(t, err, "%+v", q)
	}
}

// The indexes are in the store's files: a reopened store lists the same.
func TestListSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, testID)
	m := fill(t, st, 7, 100)
	require.NoError(t, st.Flush())
	require.NoError(t, st.Close())
	st = open(t, dir, testID)
	defer st.Close()
	require.Equal(t, m.page(order.ListQuery{Limit: 1000}), list(t, st, order.ListQuery{}))
	require.Equal(t, m.page(order.ListQuery{State: order.Paid, CustomerID: "c3", Limit: 1000}),
		list(t, st, order.ListQuery{State: order.Paid, CustomerID: "c3"}))
	require.NoError(t, st.Verify(context.Background()))
}

// TestListPagesAreStableAndCompleteUnderConcurrentWrites: while writers
// create orders and move them through their lifecycle on both partitions,
// paging through every order returns each order that existed before the
// paging began exactly once, in ID order.
func TestListPagesAreStableAndCompleteUnderConcurrentWrites(t *testing.T) {
	seed := rand.Uint64()
	st := open(t, t.TempDir(), testID)
	defer st.Close()
	before := fill(t, st, seed, 300)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var written atomic.Int64
	errs := make(chan error, 2)
	for p := range 2 {
		wg.Go(func() { errs <- writeUntil(ctx, st, p, seed, before, &written) })
	}
	for round := range 5 {
		seen := map[string]bool{}
		last := ""
		q := order.ListQuery{Limit: 1 + round*3}
		for {
			page := list(t, st, q)
			for _, o := range page.Orders {
				require.Greater(t, o.ID, last, "seed %d: IDs ascend across pages", seed)
				require.False(t, seen[o.ID], "seed %d: %s listed twice", seed, o.ID)
				seen[o.ID], last = true, o.ID
			}
			if !page.More {
				break
			}
			q.After = last
		}
		for id := range before {
			require.True(t, seen[id], "seed %d: %s existed before the listing and was not listed", seed, id)
		}
	}
	require.Eventually(t, func() bool { return written.Load() > 0 }, time.Minute, time.Millisecond)
	cancel()
	wg.Wait()
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
}

// writeUntil creates orders on partition p and moves the existing ones of
// its partition (one writer per order, as in the log) until ctx ends, one
// small batch at a time, counting the batches in written.
func writeUntil(ctx context.Context, st *store.Store, p int, seed uint64, before model, written *atomic.Int64) error {
	rng := rand.New(rand.NewPCG(seed, uint64(p)+2))
	orders := map[string]order.Order{}
	var mine []string
	for id, o := range before {
		if shardOf(id) == p {
			orders[id], mine = o, append(mine, id)
		}
	}
	slices.Sort(mine)
	for next := int64(1 << 20); ctx.Err() == nil; next++ {
		b := st.NewBatch(p)
		err := applyOne(b, orders, creation(fmt.Sprintf("n-%06d%d", rng.IntN(1_000_000), p), "c1"))
		if old := mine[rng.IntN(len(mine))]; err == nil {
			o := orders[old]
			if nexts := order.AllowedNext(o.State); len(nexts) > 0 {
				err = applyOne(b, orders, step(old, o.Version, o.State, nexts[rng.IntN(len(nexts))]))
			}
		}
		if err == nil {
			err = b.Commit(next)
		}
		b.Close()
		if err != nil {
			return err
		}
		written.Add(1)
	}
	return nil
}

// shardOf places an order on one of testID's two partitions.
func shardOf(id string) int { return int(id[len(id)-1]) % 2 }

// applyOne applies ev in b unless orders says it is a duplicate (a
// creation drawn twice), and keeps orders up to date.
func applyOne(b *store.Batch, orders map[string]order.Order, ev order.Event) error {
	o := orders[ev.OrderID]
	if ev.Version == 1 && o.Exists() {
		return nil
	}
	rec, err := persistence.EncodeEvent(ev)
	if err != nil {
		return err
	}
	if err := b.Apply(ev, rec.Value); err != nil {
		return err
	}
	orders[ev.OrderID], err = order.Apply(o, ev)
	return err
}

func TestWaitAppliedWaitsForTheFeeder(t *testing.T) {
	st := open(t, t.TempDir(), testID)
	defer st.Close()
	ctx := context.Background()
	require.NoError(t, st.WaitApplied(ctx, []int64{0, 0}))
	done := make(chan error, 1)
	go func() { done <- st.WaitApplied(ctx, []int64{2, 1}) }()
	apply(t, st, 0, 2, creation("a", ""))
	select {
	case err := <-done:
		t.Fatalf("returned with partition 1 behind: %v", err)
	default:
	}
	apply(t, st, 1, 1, creation("b", ""))
	require.NoError(t, <-done)
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	require.ErrorIs(t, st.WaitApplied(short, []int64{3, 0}), context.DeadlineExceeded)
}
