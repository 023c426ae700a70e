package main

import (
	"math"
	"testing"
	"time"
)

// within checks got against want to the histogram's precision: 3
// significant digits means within 0.1%, plus one microsecond (the unit).
func within(t *testing.T, name string, got, want time.Duration) {
	t.Helper()
	tol := time.Duration(float64(want)*0.001) + time.Microsecond
	if d := got - want; d < -tol || d > tol {
		t.Errorf("%s = %v, want %v ± %v", name, got, want, tol)
	}
}

func TestQuantilesOfAUniformDistribution(t *testing.T) {
	h := newLatencyHist()
	// 1 ms, 2 ms, ..., 10,000 ms: the q-th percentile is q% of 10 s.
	for i := 1; i <= 10_000; i++ {
		h.record(time.Duration(i) * time.Millisecond)
	}
	if h.count() != 10_000 {
		t.Fatalf("count %d", h.count())
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{
		{50, 5 * time.Second},
		{90, 9 * time.Second},
		{99, 9900 * time.Millisecond},
		{99.9, 9990 * time.Millisecond},
		{100, 10 * time.Second},
	} {
		within(t, "quantile", h.quantile(c.q), c.want)
	}
	within(t, "max", h.max(), 10*time.Second)
	within(t, "mean", h.mean(), 5000500*time.Microsecond)
}

// The tail is what a load test is for: one slow request in a thousand must
// move p99.9 and max but not p99.
func TestOneOutlierInAThousand(t *testing.T) {
	h := newLatencyHist()
	for range 999 {
		h.record(2 * time.Millisecond)
	}
	h.record(800 * time.Millisecond)
	within(t, "p50", h.quantile(50), 2*time.Millisecond)
	within(t, "p99", h.quantile(99), 2*time.Millisecond)
	within(t, "p99.9", h.quantile(99.9), 2*time.Millisecond)
	within(t, "p99.99", h.quantile(99.99), 800*time.Millisecond)
	within(t, "max", h.max(), 800*time.Millisecond)
	if n := h.countAtLeast(100 * time.Millisecond); n != 1 {
		t.Fatalf("countAtLeast(100ms) = %d, want 1", n)
	}
}

// Values keep three significant digits across the whole range, from
// microseconds to minutes.
func TestPrecisionAcrossTheRange(t *testing.T) {
	for _, d := range []time.Duration{
		7 * time.Microsecond, 123 * time.Microsecond, 4567 * time.Microsecond,
		89 * time.Millisecond, 1234 * time.Millisecond, 71 * time.Second,
	} {
		h := newLatencyHist()
		h.record(d)
		within(t, d.String(), h.max(), d)
	}
}

func TestOutOfRangeValuesAreClampedAndCounted(t *testing.T) {
	h := newLatencyHist()
	h.record(0)
	h.record(-time.Second) // a clock step backwards must not panic
	h.record(time.Hour)
	if h.count() != 3 || h.clamped != 1 {
		t.Fatalf("count %d clamped %d, want 3 and 1", h.count(), h.clamped)
	}
	within(t, "min", h.quantile(0), latencyMin)
	within(t, "max", h.max(), latencyMax)
}

func TestMergeAddsDistributions(t *testing.T) {
	a, b := newLatencyHist(), newLatencyHist()
	for range 900 {
		a.record(time.Millisecond)
	}
	for range 100 {
		b.record(50 * time.Millisecond)
	}
	b.record(time.Hour)
	a.merge(b)
	if a.count() != 1001 || a.clamped != 1 {
		t.Fatalf("count %d clamped %d", a.count(), a.clamped)
	}
	within(t, "p50", a.quantile(50), time.Millisecond)
	within(t, "p95", a.quantile(95), 50*time.Millisecond)
}

func TestEmptyHistogramReportsZeros(t *testing.T) {
	s := newLatencyHist().summary()
	if s != (latencySummary{}) {
		t.Fatalf("summary of nothing: %+v", s)
	}
}

func TestSummaryIsInMilliseconds(t *testing.T) {
	h := newLatencyHist()
	h.record(1500 * time.Microsecond)
	s := h.summary()
	if math.Abs(s.P50Ms-1.5) > 0.002 || math.Abs(s.MaxMs-1.5) > 0.002 || s.Count != 1 {
		t.Fatalf("summary %+v, want 1.5 ms", s)
	}
}
