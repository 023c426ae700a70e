package actors

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
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
