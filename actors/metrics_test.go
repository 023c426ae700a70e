package actors

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// valueOf reads a counter or gauge.
func valueOf(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

func newMeteredSystem(t *testing.T, j order.Journal) (*System, *Metrics) {
	t.Helper()
	m := NewMetrics(prometheus.NewRegistry())
	return startSystem(t, Config{Journal: j, Metrics: m}), m
}

// TestMetricsCountEveryOutcome: each kind of answer lands in its own
// series, once, including the failures of the journal.
func TestMetricsCountEveryOutcome(t *testing.T) {
	j := &fakeJournal{}
	s, m := newMeteredSystem(t, j)
	ctx := ctxFor(t)

	mustExecute(t, s, create("o-1"))
	_, err := s.Execute(ctx, create("o-1"))
	require.ErrorIs(t, err, order.ErrOrderExists)
	_, err = s.Execute(ctx, move("o-1", order.Delivered))
	require.ErrorIs(t, err, order.ErrInvalidTransition)
	_, err = s.Execute(ctx, move("nobody", order.Paid))
	require.ErrorIs(t, err, order.ErrOrderNotFound)
	failAppends(j)
	_, err = s.Execute(ctx, move("o-1", order.Paid))
	require.ErrorIs(t, err, order.ErrJournalUnavailable)
	nextAppendOutcomeUnknown(j, true)
	_, err = s.Execute(ctx, move("o-1", order.Paid))
	require.ErrorIs(t, err, order.ErrOutcomeUnknown)
	keyed := move("o-1", order.Shipped)
	keyed.IdempotencyKey = "ship-1"
	for range 2 {
		_, err = s.Execute(ctx, keyed)
		require.NoError(t, err)
	}

	count := func(from, to, outcome string) float64 {
		return valueOf(t, m.transitions.WithLabelValues(from, to, outcome))
	}
	assert.Equal(t, 1.0, count("none", "Created", outcomeAccepted))
	assert.Equal(t, 1.0, count("Created", "Created", outcomeOrderExists))
	assert.Equal(t, 1.0, count("Created", "Delivered", outcomeRejectedInvalid))
	assert.Equal(t, 1.0, count("none", "Paid", outcomeNotFound))
	assert.Equal(t, 1.0, count("Created", "Paid", outcomeJournalUnavailable))
	assert.Equal(t, 1.0, count("Created", "Paid", outcomeOutcomeUnknown))
	// The unknown outcome's record landed: the next command settles first.
	assert.Equal(t, 1.0, count("Created", "Shipped", outcomeAccepted))
	assert.Equal(t, 1.0, count("Shipped", "Shipped", outcomeKeyReplayed))
	series := make(chan prometheus.Metric, 100)
	m.transitions.Collect(series)
	assert.Len(t, series, 8, "one series per distinct answer")
	assert.Equal(t, 1.0, valueOf(t, m.ordersKnown))
	assert.Equal(t, 1.0, valueOf(t, m.actorsLive))
}

// TestMetricsCountBusy: a command refused because the mailbox is full is
// counted as busy, without reaching the actor.
func TestMetricsCountBusy(t *testing.T) {
	j := newHeldJournal()
	s, m := newMeteredSystem(t, j)
	ctx := ctxFor(t)
	done := payHeld(t, s, j, "hot")
	j.awaitHeld(t)
	s.lookup("hot", false).pending.Add(s.mailboxLimit) // the mailbox is full
	_, err := s.Execute(ctx, move("hot", order.Cancelled))
	require.ErrorIs(t, err, ErrBusy)
	s.lookup("hot", false).pending.Add(-s.mailboxLimit)
	j.release()
	require.NoError(t, <-done)

	assert.Equal(t, 1.0, valueOf(t, m.transitions.WithLabelValues("none", "Cancelled", outcomeBusy)))
	assert.Equal(t, 1.0, valueOf(t, m.transitions.WithLabelValues("Created", "Paid", outcomeAccepted)))
}

// BenchmarkCommandedMetrics is the cost the metrics add to each command.
func BenchmarkCommandedMetrics(b *testing.B) {
	m := NewMetrics(prometheus.NewRegistry())
	cmd := move("o-1", order.Paid)
	b.ReportAllocs()
	for b.Loop() {
		m.enqueued(1)
		m.commanded(order.Created, cmd, true, nil)
	}
}
