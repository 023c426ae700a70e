package actors

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
)

// recordingStock records the actions' calls as "change sku order@version".
type recordingStock struct {
	mu    sync.Mutex
	calls []string
}

func (r *recordingStock) record(change, sku, orderID string, v uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf("%s %s %s@%d", change, sku, orderID, v))
	return nil
}

func (r *recordingStock) Release(_ context.Context, sku, orderID string, v uint64) error {
	return r.record("release", sku, orderID, v)
}

func (r *recordingStock) Consume(_ context.Context, sku, orderID string, v uint64) error {
	return r.record("consume", sku, orderID, v)
}

func (r *recordingStock) Restock(_ context.Context, sku, orderID string, v uint64) error {
	return r.record("restock", sku, orderID, v)
}

func (r *recordingStock) recorded() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.calls)
	slices.Sort(out)
	return out
}

func withItems(id string, skus ...string) order.Command {
	cmd := create(id)
	cmd.CustomerID, cmd.Currency = "cus-1", "EUR"
	for _, sku := range skus {
		cmd.Items = append(cmd.Items, order.Item{SKU: sku, Quantity: 1, UnitPrice: 100})
	}
	return cmd
}

func TestTransitionsDriveTheStock(t *testing.T) {
	stock := &recordingStock{}
	actions := NewActions(stock, nil)
	t.Cleanup(actions.Close)
	s := startSystem(t, Config{Journal: &fakeJournal{}, Applied: actions.Applied})

	mustExecute(t, s, withItems("cancelled", "mug", "tea"))
	mustExecute(t, s, move("cancelled", order.Paid))
	mustExecute(t, s, move("cancelled", order.Cancelled))
	mustExecute(t, s, withItems("returned", "mug"))
	for _, to := range []order.State{order.Paid, order.Shipped, order.Delivered, order.Returned} {
		mustExecute(t, s, move("returned", to))
	}
	mustExecute(t, s, create("no-items"))
	mustExecute(t, s, move("no-items", order.Cancelled))

	want := []string{"consume mug returned@3", "release mug cancelled@3", "release tea cancelled@3", "restock mug returned@5"}
	require.Eventually(t, func() bool { return len(stock.recorded()) >= len(want) }, 30*time.Second, 5*time.Millisecond)
	assert.Equal(t, want, stock.recorded())
	assert.Zero(t, actions.Dropped())
}

// fakeHolds lists holds as a state store would.
type fakeHolds []struct {
	sku, orderID string
	status       order.HoldStatus
}

func (f fakeHolds) OpenHolds(_ context.Context, fn func(sku, orderID string, h order.Hold) error) error {
	for _, h := range f {
		if err := fn(h.sku, h.orderID, order.Hold{Status: h.status, Quantity: 1}); err != nil {
			return err
		}
	}
	return nil
}

func TestReconcileRunsWhatTheStatesOwe(t *testing.T) {
	stock := &recordingStock{}
	actions := NewActions(stock, nil)
	t.Cleanup(actions.Close)
	s := newSystem(t, &fakeJournal{}) // no Applied: every action is left to Reconcile
	path := map[string][]order.State{
		"cancelled": {order.Cancelled},
		"delivered": {order.Paid, order.Shipped, order.Delivered},
		"returned":  {order.Paid, order.Shipped, order.Delivered, order.Returned},
		"paid":      {order.Paid},
	}
	for id, states := range path {
		mustExecute(t, s, withItems(id, "mug"))
		for _, to := range states {
			mustExecute(t, s, move(id, to))
		}
	}
	holds := fakeHolds{
		{"mug", "cancelled", order.HoldHeld},
		{"mug", "delivered", order.HoldHeld},
		{"mug", "returned", order.HoldHeld},
		{"tea", "returned", order.HoldConsumed},
		{"mug", "paid", order.HoldHeld},
		{"mug", "not-created-yet", order.HoldHeld},
	}
	ran, err := actions.Reconcile(ctxFor(t), holds, s)
	require.NoError(t, err)
	assert.Equal(t, 5, ran)
	assert.Equal(t, []string{"consume mug delivered@4", "consume mug returned@5", "release mug cancelled@2",
		"restock mug returned@5", "restock tea returned@5"}, stock.recorded())
}

// TestPaymentTimeoutReleasesTheStock: on real actors and a real SKU actor,
// an order that holds stock and is cancelled by its payment timer gives
// the stock back, once, through the actions.
func TestPaymentTimeoutReleasesTheStock(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	var late lateApplied
	s := startSystem(t, Config{Journal: persistence.NewMemoryJournal(), Now: now, Applied: late.applied})
	actions := NewActions(ActionStock(s), nil)
	t.Cleanup(actions.Close)
	late.set(actions)
	ctx := ctxFor(t)
	_, err := s.SetStock(ctx, StockSet{SKU: "mug", OnHand: 2})
	require.NoError(t, err)
	require.NoError(t, CheckoutStock(s).Reserve(ctx, "mug", "o-1", 2))
	cmd := withItems("o-1", "mug")
	cmd.Items[0].Quantity = 2
	mustExecute(t, s, cmd)

	clock.Add(int64(order.PaymentTimeoutDefault + time.Second))
	s.FireDueDeadlines()
	o, err := s.Get(ctx, "o-1")
	require.NoError(t, err)
	require.Equal(t, order.Cancelled, o.State)
	require.Eventually(t, func() bool {
		st, err := s.GetStock(ctx, "mug")
		return err == nil && st.Reserved == 0
	}, 30*time.Second, 5*time.Millisecond, "the timer's cancellation released the hold")
	st, err := s.GetStock(ctx, "mug")
	require.NoError(t, err)
	assert.Equal(t, order.Stock{SKU: "mug", OnHand: 2, Reserved: 0, Version: 3}, st, "set, reserve, release: once")
	assert.Zero(t, actions.Dropped())
}

// lateApplied hands applied transitions to actions made after the system.
type lateApplied struct{ a atomic.Pointer[Actions] }

func (l *lateApplied) set(a *Actions) { l.a.Store(a) }

func (l *lateApplied) applied(o order.Order, ev order.Event) {
	if a := l.a.Load(); a != nil {
		a.Applied(o, ev)
	}
}
