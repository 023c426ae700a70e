package persistence

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence/kfaketest"
)

// histogramOf reads a histogram's count and sum.
func histogramOf(t *testing.T, h prometheus.Histogram) (count uint64, sum float64) {
	t.Helper()
	var m dto.Metric
	require.NoError(t, h.Write(&m))
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

func counterOf(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

func gaugeOf(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, g.Write(&m))
	return m.GetGauge().GetValue()
}

// TestKafkaJournalMetrics: appends, produce requests, their failures by
// class and a replay all show in the metrics, by exactly what happened.
func TestKafkaJournalMetrics(t *testing.T) {
	t.Parallel()
	e := startTestBroker(t)
	metrics := NewMetrics(prometheus.NewRegistry())
	j := openTestJournal(t, e, KafkaConfig{Partitions: 2, Metrics: metrics})
	ctx := testContext(t)

	for v := 1; v <= 3; v++ {
		require.NoError(t, j.Append(ctx, lifecycleEvent("metered", v)))
	}
	kfaketest.AnswerNextProduce(e.cluster, kerr.NotLeaderForPartition.Code)
	require.ErrorIs(t, j.Append(ctx, lifecycleEvent("refused", 1)), order.ErrJournalUnavailable)
	kfaketest.AnswerNextProduce(e.cluster, kerr.UnknownServerError.Code)
	require.ErrorIs(t, j.Append(ctx, lifecycleEvent("unknown", 1)), order.ErrOutcomeUnknown)

	appends, _ := histogramOf(t, metrics.appendSeconds)
	assert.Equal(t, uint64(5), appends)
	// One append at a time: one produce request each.
	requests, _ := histogramOf(t, metrics.produceSeconds)
	assert.Equal(t, uint64(5), requests)
	batches, records := histogramOf(t, metrics.batchRecords)
	assert.Equal(t, uint64(5), batches)
	assert.Equal(t, 5.0, records)
	assert.Equal(t, 1.0, counterOf(t, metrics.failUnavailable))
	assert.Equal(t, 1.0, counterOf(t, metrics.failUnknown))

	_, err := j.Replay(ctx, func(order.Event) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, 3.0, gaugeOf(t, metrics.replayTarget), "the three appended records; the refused ones were never written")
	assert.Equal(t, 3.0, counterOf(t, metrics.replayRecords))
}

// TestNilMetricsRecordNothing: a journal without metrics works, so tools
// and tests need not build a registry.
func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.appended(time.Time{})
	m.produced(1, time.Time{}, order.ErrOutcomeUnknown)
	m.replayStarted([]int64{0}, []int64{1})
	m.replayRead(1)
}
