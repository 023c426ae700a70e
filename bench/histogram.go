package main

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds: a loopback round trip is tens of
// microseconds, so milliseconds would lose the fast end entirely.
const (
	// latencyMin is the smallest latency told apart from zero.
	latencyMin = time.Microsecond
	// latencyMax is the largest latency recorded as itself; anything longer
	// is recorded as latencyMax and counted in clamped. It is above any
	// sensible --timeout so that only a pathological stall reaches it.
	latencyMax = 5 * time.Minute
	// latencySigFigs keeps every recorded value within 0.1% of the truth,
	// HdrHistogram's usual precision for latency reports.
	latencySigFigs = 3
)

// latencyHist is an HDR histogram of request latencies. It is not safe for
// concurrent use: the recorder serialises access.
type latencyHist struct {
	h       *hdrhistogram.Histogram
	clamped int64 // values above latencyMax, recorded as latencyMax
}

func newLatencyHist() *latencyHist {
	return &latencyHist{h: hdrhistogram.New(latencyMin.Microseconds(), latencyMax.Microseconds(), latencySigFigs)}
}

// record adds one latency. Values below latencyMin count as latencyMin: the
// histogram cannot hold zero-width buckets, and sub-microsecond answers over
// a socket do not happen.
func (l *latencyHist) record(d time.Duration) {
	us := d.Microseconds()
	if us < latencyMin.Microseconds() {
		us = latencyMin.Microseconds()
	}
	if us > latencyMax.Microseconds() {
		us = latencyMax.Microseconds()
		l.clamped++
	}
	// Cannot fail: the value was brought into the trackable range above.
	_ = l.h.RecordValue(us)
}

// merge adds every value of other to l.
func (l *latencyHist) merge(other *latencyHist) {
	l.h.Merge(other.h)
	l.clamped += other.clamped
}

func (l *latencyHist) count() int64 { return l.h.TotalCount() }

// quantile returns the latency at or below which q percent (0–100) of the
// values lie, as HdrHistogram reports it: the highest value equivalent to
// the bucket the quantile falls in, so it never understates.
func (l *latencyHist) quantile(q float64) time.Duration {
	if l.h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(l.h.ValueAtQuantile(q)) * time.Microsecond
}

func (l *latencyHist) max() time.Duration {
	if l.h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(l.h.Max()) * time.Microsecond
}

func (l *latencyHist) mean() time.Duration {
	if l.h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(l.h.Mean() * float64(time.Microsecond))
}

// countAtLeast is how many recorded values are at least d (to the
// histogram's precision). Tests use it to see a stall in the distribution.
func (l *latencyHist) countAtLeast(d time.Duration) int64 {
	us := d.Microseconds()
	var n int64
	for _, b := range l.h.Distribution() {
		if b.From >= us {
			n += b.Count
		}
	}
	return n
}

// latencySummary is a histogram as the report shows it.
type latencySummary struct {
	Count   int64   `json:"count"`
	MeanMs  float64 `json:"mean_ms"`
	P50Ms   float64 `json:"p50_ms"`
	P90Ms   float64 `json:"p90_ms"`
	P99Ms   float64 `json:"p99_ms"`
	P999Ms  float64 `json:"p99_9_ms"`
	MaxMs   float64 `json:"max_ms"`
	Clamped int64   `json:"clamped,omitempty"`
}

func (l *latencyHist) summary() latencySummary {
	return latencySummary{
		Count:   l.count(),
		MeanMs:  ms(l.mean()),
		P50Ms:   ms(l.quantile(50)),
		P90Ms:   ms(l.quantile(90)),
		P99Ms:   ms(l.quantile(99)),
		P999Ms:  ms(l.quantile(99.9)),
		MaxMs:   ms(l.max()),
		Clamped: l.clamped,
	}
}

// ms converts to fractional milliseconds, the unit of every latency in the
// report.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
