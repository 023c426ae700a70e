package persistence

import (
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderd/orderd/order"
)

// Metrics is what the journal reports to Prometheus. A nil *Metrics records
// nothing, so tests and tools that do not scrape need not build one.
//
// Every method is one or two atomic updates on the hot path (a produce
// request, an append): no labels are built from data, and the label values
// are fixed strings, so nothing is allocated per call.
type Metrics struct {
	appendSeconds   prometheus.Histogram
	produceSeconds  prometheus.Histogram
	batchRecords    prometheus.Histogram
	produceFailures *prometheus.CounterVec
	failUnavailable prometheus.Counter
	failUnknown     prometheus.Counter
	replayRecords   prometheus.Counter
	replayTarget    prometheus.Gauge
	foreignRecords  prometheus.Counter
	fencedRecords   prometheus.Counter

	// The state store's feeder (store_feed.go).
	storeApplied  prometheus.Counter
	storeSkipped  prometheus.Counter
	storeLagVec   *prometheus.GaugeVec
	storeLags     []prometheus.Gauge // storeLagVec's children by partition, made as they are first needed
	storeLagsMu   sync.Mutex
	storeSizeByte prometheus.Gauge
}

// Classes of failed produce requests: the two outcomes a caller can learn
// (DESIGN §5), a bounded label set.
const (
	produceClassUnavailable = "journal-unavailable"
	produceClassUnknown     = "outcome-unknown"
)

// latencyBuckets spans a calm fsync (~0.3 ms) to a disk stall of several
// hundred milliseconds and the produce deadline (FACTS.md, kfake).
var latencyBuckets = []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// batchBuckets: powers of two up to DefaultBatchRecordsMax, the cap of one request.
var batchBuckets = prometheus.ExponentialBuckets(1, 2, 11)

// NewMetrics registers the journal's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		appendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "orderd_journal_append_seconds",
			Help:    "Time one Append waited, from its call to the broker's acknowledgement or failure.",
			Buckets: latencyBuckets,
		}),
		produceSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "orderd_journal_produce_seconds",
			Help:    "Round trip of one produce request (one batch of one partition).",
			Buckets: latencyBuckets,
		}),
		batchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "orderd_journal_batch_records",
			Help:    "Records carried by one produce request (group commit).",
			Buckets: batchBuckets,
		}),
		produceFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orderd_journal_produce_failures_total",
			Help: "Produce requests that failed, by class: journal-unavailable (certainly not written) or outcome-unknown (maybe written).",
		}, []string{"class"}),
		replayRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orderd_journal_replay_records_total",
			Help: "Records read by start-up replays, undecodable ones included.",
		}),
		replayTarget: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orderd_journal_replay_target_records",
			Help: "Records between the first and the end offsets the latest replay measured at its start: what it has to read.",
		}),
		foreignRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orderd_journal_foreign_records_total",
			Help: "Records another writer appended to a partition this orderd writes, found between two of its own batches. Not 0 means a second writer on the topic (foreign_writes.go).",
		}),
		fencedRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orderd_journal_fenced_records_total",
			Help: "Records read and skipped because a later claim came before them: what a cluster node wrote after another had taken its partition over (claims.go). Each read counts what it skips, so a record may count more than once.",
		}),
	}
	m.storeApplied = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "orderd_store_records_applied_total",
		Help: "Records the state store's feeder (catch-up and follow) applied to the store.",
	})
	m.storeSkipped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "orderd_store_records_skipped_total",
		Help: "Records the state store's feeder skipped: duplicates, forks, undecodable records and corrupt batches.",
	})
	m.storeLagVec = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "orderd_store_checkpoint_lag_records",
		Help: "Per partition, the log's end offset as the latest fetch reported it minus the state store's checkpoint: records the store has yet to read.",
	}, []string{"partition"})
	m.storeSizeByte = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "orderd_store_size_bytes",
		Help: "Space the state store's files take on disk, measured every few seconds while it is followed.",
	})
	reg.MustRegister(m.storeApplied, m.storeSkipped, m.storeLagVec, m.storeSizeByte)
	m.failUnavailable = m.produceFailures.WithLabelValues(produceClassUnavailable)
	m.failUnknown = m.produceFailures.WithLabelValues(produceClassUnknown)
	reg.MustRegister(m.appendSeconds, m.produceSeconds, m.batchRecords, m.produceFailures, m.replayRecords, m.replayTarget, m.foreignRecords, m.fencedRecords)
	return m
}

// appended records one Append's wait.
func (m *Metrics) appended(start time.Time) {
	if m == nil {
		return
	}
	m.appendSeconds.Observe(time.Since(start).Seconds())
}

// produced records one produce request: its size, its round trip and, if
// it failed, the class of its failure.
func (m *Metrics) produced(records int, start time.Time, result error) {
	if m == nil {
		return
	}
	m.produceSeconds.Observe(time.Since(start).Seconds())
	m.batchRecords.Observe(float64(records))
	switch {
	case result == nil:
	case errors.Is(result, order.ErrJournalUnavailable):
		m.failUnavailable.Inc()
	default:
		m.failUnknown.Inc()
	}
}

// replayStarted records what a replay has to read.
func (m *Metrics) replayStarted(first, end []int64) {
	if m == nil {
		return
	}
	var total int64
	for p := range end {
		total += end[p] - first[p]
	}
	m.replayTarget.Set(float64(total))
}

// replayRead records records read by a replay.
func (m *Metrics) replayRead(records int) {
	if m == nil || records == 0 {
		return
	}
	m.replayRecords.Add(float64(records))
}

// foreignFound counts records another writer appended.
func (m *Metrics) foreignFound(records int) {
	if m == nil {
		return
	}
	m.foreignRecords.Add(float64(records))
}

// fenced counts a record skipped under the claim rule.
func (m *Metrics) fenced() {
	if m == nil {
		return
	}
	m.fencedRecords.Inc()
}

// storeFed counts one chunk the state store's feeder committed.
func (m *Metrics) storeFed(c feedCounts) {
	if m == nil {
		return
	}
	m.storeApplied.Add(float64(c.applied))
	m.storeSkipped.Add(float64(c.skipped))
}

// storeLag records how far partition p's checkpoint is behind the log's end.
func (m *Metrics) storeLag(p int, records int64) {
	if m == nil {
		return
	}
	m.storeLagsMu.Lock()
	for len(m.storeLags) <= p {
		m.storeLags = append(m.storeLags, m.storeLagVec.WithLabelValues(strconv.Itoa(len(m.storeLags))))
	}
	g := m.storeLags[p]
	m.storeLagsMu.Unlock()
	g.Set(float64(max(0, records)))
}

// storeSize records the state store's size on disk.
func (m *Metrics) storeSize(st interface{ SizeBytes() int64 }) {
	if m == nil {
		return
	}
	m.storeSizeByte.Set(float64(st.SizeBytes()))
}
