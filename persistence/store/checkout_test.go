package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
	"github.com/orderd/orderd/persistence/store"
)

func coStart(id string) order.CheckoutEvent {
	return order.CheckoutEvent{EventID: id + "-1", CheckoutID: id, Version: 1, At: testEpoch, OrderID: id,
		CustomerID: "cus-1", Currency: "EUR", Items: []order.Item{{SKU: "mug", Quantity: 1, UnitPrice: 5}}, Total: 5}
}

func coStep(id string, version uint64, step order.CheckoutStep, outcome order.StepOutcome) order.CheckoutEvent {
	return order.CheckoutEvent{EventID: id + "-step", CheckoutID: id, Version: version, At: testEpoch, Step: step, Outcome: outcome}
}

// applyCheckouts applies events to partition p's batch, commits at next,
// and returns each event's error.
func applyCheckouts(t *testing.T, st *store.Store, p int, next int64, events ...order.CheckoutEvent) []error {
	t.Helper()
	b := st.NewBatch(p)
	defer b.Close()
	var errs []error
	for _, ev := range events {
		rec, err := persistence.EncodeCheckout(ev)
		require.NoError(t, err)
		errs = append(errs, b.ApplyCheckout(ev, rec.Value))
	}
	require.NoError(t, b.Commit(next))
	return errs
}

func unfinished(t *testing.T, st *store.Store) []string {
	t.Helper()
	var ids []string
	require.NoError(t, st.UnfinishedCheckouts(func(id string) error {
		ids = append(ids, id)
		return nil
	}))
	return ids
}

// TestStoreCheckouts: a checkout's records follow the one rule, skipped
// ones change nothing; a checkout is in the unfinished index from its start
// to its end, completed or compensated, and the index survives a reopen.
func TestStoreCheckouts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := open(t, dir, testID)
	errs := applyCheckouts(t, st, 1, 4, coStart("co-a"), coStart("co-b"), coStart("co-c"),
		coStep("co-a", 2, order.StepReserve, order.StepSucceeded))
	assert.Equal(t, []error{nil, nil, nil, nil}, errs)
	assert.Equal(t, []string{"co-a", "co-b", "co-c"}, unfinished(t, st), "unfinished from the start")

	errs = applyCheckouts(t, st, 1, 12,
		coStep("co-a", 2, order.StepReserve, order.StepSucceeded), // a producer retry
		coStep("co-a", 3, order.StepCreateOrder, order.StepSucceeded),
		coStep("co-a", 4, order.StepAuthorize, order.StepSucceeded),
		coStep("co-a", 5, order.StepCancelOrder, order.StepSucceeded), // not the saga's next step
		coStep("co-a", 5, order.StepPay, order.StepSucceeded),
		coStep("co-b", 2, order.StepReserve, order.StepFailed),
		coStep("co-b", 3, order.StepRelease, order.StepSucceeded),
		coStep("co-c", 2, order.StepReserve, order.StepSucceeded),
	)
	require.Len(t, errs, 8)
	assert.ErrorIs(t, errs[0], order.ErrRecordDuplicate)
	assert.ErrorIs(t, errs[3], order.ErrRecordFork)
	assert.NoError(t, errors.Join(errs[1], errs[2], errs[4], errs[5], errs[6], errs[7]))
	assert.Equal(t, []string{"co-c"}, unfinished(t, st), "completed and compensated checkouts leave the index")

	events, cp, err := st.CheckoutEventsAndCheckpoint(ctx, "co-a", 1)
	require.NoError(t, err)
	assert.Equal(t, int64(12), cp)
	require.Len(t, events, 5, "only what the rule accepted")
	assert.Equal(t, coStart("co-a"), events[0])
	assert.Equal(t, order.StepPay, events[4].Step)
	none, cp, err := st.CheckoutEventsAndCheckpoint(ctx, "co-z", 0)
	require.NoError(t, err)
	assert.Empty(t, none)
	assert.Zero(t, cp)

	require.NoError(t, st.Close())
	st = open(t, dir, testID)
	defer st.Close()
	assert.Equal(t, []string{"co-c"}, unfinished(t, st), "the index survives a reopen")
	// The next record is judged against the checkout as stored.
	errs = applyCheckouts(t, st, 1, 13, coStep("co-c", 3, order.StepPay, order.StepSucceeded),
		coStep("co-c", 3, order.StepCreateOrder, order.StepFailed))
	assert.ErrorIs(t, errs[0], order.ErrRecordFork)
	assert.NoError(t, errs[1])
	assert.Equal(t, []string{"co-c"}, unfinished(t, st), "compensating is not finished")
	require.NoError(t, st.Verify(ctx))

	stop := errors.New("stop")
	assert.ErrorIs(t, st.UnfinishedCheckouts(func(string) error { return stop }), stop)
}
