package persistence

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence/kfaketest"
)

// checkoutHistory makes a checkout's records with the core, as the saga's
// orchestrator would: each applies to the checkout the ones before made.
type checkoutHistory struct {
	c      order.Checkout
	events []order.CheckoutEvent
}

func (h *checkoutHistory) add(t *testing.T, ev order.CheckoutEvent) {
	t.Helper()
	ev.EventID = fmt.Sprintf("%s-%d", ev.CheckoutID, len(h.events)+1)
	ev.Version, ev.At = h.c.Version+1, invAt
	next, err := order.ApplyCheckout(h.c, ev)
	require.NoError(t, err)
	h.c = next
	h.events = append(h.events, ev)
}

// completedCheckout runs a checkout to its end: paid, or, with lacking, out
// of stock and compensated.
func completedCheckout(t *testing.T, id string, lacking bool) *checkoutHistory {
	h := &checkoutHistory{}
	h.add(t, order.CheckoutEvent{CheckoutID: id, OrderID: "order-" + id, CustomerID: "cus-1", Currency: "EUR",
		Items: []order.Item{{SKU: "mug", Quantity: 2, UnitPrice: 500}}, Total: 1000, Principal: "alice"})
	step := func(s order.CheckoutStep, o order.StepOutcome) order.CheckoutEvent {
		return order.CheckoutEvent{CheckoutID: id, Step: s, Outcome: o}
	}
	if lacking {
		ev := step(order.StepReserve, order.StepFailed)
		ev.OutOfStock = []string{"mug"}
		h.add(t, ev)
		h.add(t, step(order.StepRelease, order.StepSucceeded))
		require.Equal(t, order.CheckoutCompensated, h.c.Status)
		return h
	}
	h.add(t, step(order.StepReserve, order.StepSucceeded))
	h.add(t, step(order.StepCreateOrder, order.StepSucceeded))
	auth := step(order.StepAuthorize, order.StepSucceeded)
	auth.AuthorizationID = "au_" + id
	h.add(t, auth)
	h.add(t, step(order.StepPay, order.StepSucceeded))
	require.Equal(t, order.CheckoutCompleted, h.c.Status)
	return h
}

// unknownNext makes the journal's next append end with an unknown outcome,
// having written the record or not.
type unknownNext func(written bool)

// testCheckoutConformance is the checkout part of the journal contract
// (order.CheckoutJournal).
func testCheckoutConformance(t *testing.T, open func(t *testing.T) (order.Journal, unknownNext)) {
	t.Run("CheckoutAppendLoadAndReplaySkips", func(t *testing.T) {
		t.Parallel()
		j, _ := open(t)
		co := j.(order.CheckoutJournal)
		ctx := testContext(t)
		orderEvents := lifecycle("order-1", len(lifecyclePath))
		h := completedCheckout(t, "co-1", false)
		for i, ev := range h.events {
			require.NoError(t, co.AppendCheckout(ctx, ev))
			if i < len(orderEvents) {
				require.NoError(t, j.Append(ctx, orderEvents[i]))
			}
		}
		got, err := co.LoadCheckout(ctx, "co-1")
		require.NoError(t, err)
		assert.Equal(t, h.events, got)

		// A repeated record (a producer retry) and a fork are left out.
		require.NoError(t, co.AppendCheckout(ctx, h.events[2]))
		fork := h.events[4]
		fork.EventID, fork.Step, fork.AuthorizationID = "fork", order.StepVoid, ""
		fork.Version = 6
		require.NoError(t, co.AppendCheckout(ctx, fork))
		got, err = co.LoadCheckout(ctx, "co-1")
		require.NoError(t, err)
		assert.Equal(t, h.events, got)

		events, stats := replayAll(t, j)
		assert.Equal(t, orderEvents, events, "replay passes only order records")
		assert.Equal(t, order.ReplayStats{Records: len(orderEvents) + 7, Checkout: 7}, stats, "and does not count checkouts as garbage")

		none, err := co.LoadCheckout(ctx, "co-none")
		require.NoError(t, err)
		assert.Empty(t, none, "a checkout with no records is none, not an error")
		_, err = co.LoadCheckout(ctx, "no:such")
		assert.ErrorIs(t, err, order.ErrInvalidID)
	})

	t.Run("CheckoutUnknownOutcomeSettles", func(t *testing.T) {
		t.Parallel()
		j, unknown := open(t)
		co := j.(order.CheckoutJournal)
		ctx := testContext(t)
		h := completedCheckout(t, "co-u", false)
		require.NoError(t, co.AppendCheckout(ctx, h.events[0]))
		unknown(false)
		require.ErrorIs(t, co.AppendCheckout(ctx, h.events[1]), order.ErrOutcomeUnknown)
		got, err := co.LoadCheckout(ctx, "co-u")
		require.NoError(t, err)
		assert.Equal(t, h.events[:1], got, "not written, and never will be")
		unknown(true)
		require.ErrorIs(t, co.AppendCheckout(ctx, h.events[1]), order.ErrOutcomeUnknown)
		got, err = co.LoadCheckout(ctx, "co-u")
		require.NoError(t, err)
		assert.Equal(t, h.events[:2], got, "written, and found by the load")
	})

	t.Run("CheckoutConcurrentCheckouts", func(t *testing.T) {
		t.Parallel()
		j, _ := open(t)
		co := j.(order.CheckoutJournal)
		const checkouts = 16
		histories := make([]*checkoutHistory, checkouts)
		var wg sync.WaitGroup
		for i := range histories {
			histories[i] = completedCheckout(t, fmt.Sprintf("co-%d", i), i%2 == 0)
			wg.Go(func() {
				for _, ev := range histories[i].events {
					ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
					err := co.AppendCheckout(ctx, ev)
					cancel()
					if err != nil {
						t.Errorf("AppendCheckout(%s v%d): %v", ev.CheckoutID, ev.Version, err)
						return
					}
				}
			})
		}
		wg.Wait()
		for _, h := range histories {
			got, err := co.LoadCheckout(testContext(t), h.c.ID)
			require.NoError(t, err)
			assert.Equal(t, h.events, got, h.c.ID)
		}
	})

	t.Run("CheckoutInvalidEventIsRefused", func(t *testing.T) {
		t.Parallel()
		j, _ := open(t)
		ev := checkoutEvents()["Start"]
		ev.Total++
		err := j.(order.CheckoutJournal).AppendCheckout(testContext(t), ev)
		assert.ErrorIs(t, err, order.ErrJournalUnavailable)
		assert.ErrorIs(t, err, ErrInvalidRecord)
	})
}

func TestMemoryJournalCheckout(t *testing.T) {
	testCheckoutConformance(t, func(t *testing.T) (order.Journal, unknownNext) {
		j := NewMemoryJournal()
		t.Cleanup(func() { _ = j.Close() })
		return j, func(written bool) {
			if written {
				j.FailNext(1, FaultUnknownWritten)
			} else {
				j.FailNext(1, FaultUnknownNotWritten)
			}
		}
	})
}

func TestKafkaJournalCheckout(t *testing.T) {
	testCheckoutConformance(t, func(t *testing.T) (order.Journal, unknownNext) {
		e := startTestBroker(t)
		return openTestJournal(t, e, KafkaConfig{Partitions: 4}), func(written bool) {
			if written { // kfake's faults append first, then answer
				e.cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.RequestTimedOut})
			} else {
				kfaketest.AnswerNextProduce(e.cluster, kerr.RequestTimedOut.Code)
			}
		}
	})
}

// TestCheckoutThroughTheStore: the feeder applies checkout records to the
// state store by the one rule and keeps the unfinished index, and
// LoadCheckout from the store and the log's tail gives what a load of the
// whole partition gives.
func TestCheckoutThroughTheStore(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 2})
	ctx := testContext(t)
	st, _, err := OpenStore(ctx, t.TempDir(), j, testLogger(t))
	require.NoError(t, err)
	defer st.Close()
	h := completedCheckout(t, "co-s", false)
	for _, ev := range h.events[:3] {
		require.NoError(t, j.AppendCheckout(ctx, ev))
	}
	require.NoError(t, j.AppendCheckout(ctx, h.events[1])) // a duplicate below the checkpoint
	require.NoError(t, j.Append(ctx, lifecycleEvent("order-1", 1)))
	stats, err := j.CatchUp(ctx, st)
	require.NoError(t, err)
	assert.Equal(t, 4, stats.Applied)
	assert.Zero(t, stats.Undecodable)
	assert.Equal(t, []string{"co-s"}, unfinishedIDs(t, st))

	for _, ev := range h.events[3:] {
		require.NoError(t, j.AppendCheckout(ctx, ev))
	}
	require.NoError(t, j.AppendCheckout(ctx, h.events[4])) // a duplicate in the tail
	j.LoadFromStore(st)
	fromStore, err := j.LoadCheckout(ctx, "co-s")
	require.NoError(t, err)
	j.LoadFromStore(nil)
	full, err := j.LoadCheckout(ctx, "co-s")
	require.NoError(t, err)
	assert.Equal(t, h.events, fromStore)
	assert.Equal(t, h.events, full)

	_, err = j.CatchUp(ctx, st)
	require.NoError(t, err)
	assert.Empty(t, unfinishedIDs(t, st), "a completed checkout leaves the index")
}

func unfinishedIDs(t *testing.T, st interface {
	UnfinishedCheckouts(func(string) error) error
}) []string {
	t.Helper()
	var ids []string
	require.NoError(t, st.UnfinishedCheckouts(func(id string) error {
		ids = append(ids, id)
		return nil
	}))
	return ids
}
