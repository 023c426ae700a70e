package main

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// verifyWorkersMax bounds the concurrent reads of the final verification:
// enough to read tens of thousands of orders in a few seconds here, few
// enough not to be a load test of its own.
const verifyWorkersMax = 32

// The read-back is not part of the measurement: a read refused with 429
// (orderd's per-principal rate limit, 20,000/s by default, which a fast
// read-back of 80,000+ orders right after a run exceeds) is asked again after
// a pause, up to verifyRateLimitedTries times, instead of counting the order
// as unreadable.
const (
	verifyRateLimitedTries = 20
	verifyRateLimitedPause = 50 * time.Millisecond
)

// getter reads one order.
type getter interface {
	get(id string) response
}

// verifyResult is the outcome of reading back every order.
type verifyResult struct {
	Orders     int      `json:"orders"`     // orders whose create was sent
	Checked    int64    `json:"checked"`    // read back and judged
	Mismatches int64    `json:"mismatches"` // final state not what the acknowledged answers imply, or unreadable
	Samples    []string `json:"samples,omitempty"`
	Seconds    float64  `json:"seconds"`
	Workers    int      `json:"workers"` // reads in flight at most
	// Latency is that of every read, each timed on its own (a read asked
	// again after a 429 counts each time). After a restart every order is
	// out of memory, so these are cold loads; the reads run with up to
	// verifyWorkersMax in flight, so the latency includes their queueing.
	Latency  latencySummary `json:"latency"`
	failures failureLog     // guarded by mu during the run
}

// ok reports whether every order was read back and matched.
func (v verifyResult) ok() bool { return v.Mismatches == 0 && v.Checked == int64(v.Orders) }

// verifyFinal reads every order after the load and checks its state and
// version against what the acknowledged answers imply (orderTrack.verifyFinal).
// Reader i reads through gs[i mod len(gs)], one getter per URL.
// A server that acknowledged writes it did not keep, kept writes it refused,
// or answered reads with invented states fails here however fast it was.
func verifyFinal(ctx context.Context, gs []getter, tracks []*orderTrack, workers int) verifyResult {
	began := time.Now()
	res := verifyResult{Orders: len(tracks)}
	workers = max(1, min(workers, verifyWorkersMax, len(tracks)))
	res.Workers = workers
	var (
		next    atomic.Int64
		checked atomic.Int64
		mu      sync.Mutex
		wg      sync.WaitGroup
		latency = newLatencyHist() // guarded by mu
	)
	for w := range workers {
		wg.Go(func() {
			// Each worker keeps its own histogram and merges it once at
			// the end: no lock per read.
			own := newLatencyHist()
			timed := timedGetter{inner: gs[w%len(gs)], hist: own}
			defer func() {
				mu.Lock()
				latency.merge(own)
				mu.Unlock()
			}()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(tracks)) {
					return
				}
				t := tracks[i]
				problem := t.verifyFinal(getPatiently(ctx, timed, t.id))
				checked.Add(1)
				if problem != "" {
					mu.Lock()
					res.failures.add(problem)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	res.Latency = latency.summary()
	res.Checked = checked.Load()
	res.Mismatches = res.failures.count
	res.Samples = res.failures.samples
	res.Seconds = time.Since(began).Seconds()
	return res
}

// timedGetter records the latency of every read it passes on. Not safe for
// concurrent use: one per worker.
type timedGetter struct {
	inner getter
	hist  *latencyHist
}

func (t timedGetter) get(id string) response {
	began := time.Now()
	resp := t.inner.get(id)
	t.hist.record(time.Since(began))
	return resp
}

// getPatiently reads one order, asking again after a pause while the server
// answers 429 (rate limited) and ctx allows.
func getPatiently(ctx context.Context, g getter, id string) response {
	pause := verifyRateLimitedPause
	for try := 1; ; try++ {
		resp := g.get(id)
		if resp.status != http.StatusTooManyRequests || try == verifyRateLimitedTries {
			return resp
		}
		select {
		case <-ctx.Done():
			return resp
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}
