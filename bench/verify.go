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
	Orders     int        `json:"orders"`     // orders whose create was sent
	Checked    int64      `json:"checked"`    // read back and judged
	Mismatches int64      `json:"mismatches"` // final state not what the acknowledged answers imply, or unreadable
	Samples    []string   `json:"samples,omitempty"`
	Seconds    float64    `json:"seconds"`
	failures   failureLog // guarded by mu during the run
}

// ok reports whether every order was read back and matched.
func (v verifyResult) ok() bool { return v.Mismatches == 0 && v.Checked == int64(v.Orders) }

// verifyFinal reads every order after the load and checks its state and
// version against what the acknowledged answers imply (orderTrack.verifyFinal).
// A server that acknowledged writes it did not keep, kept writes it refused,
// or answered reads with invented states fails here however fast it was.
func verifyFinal(ctx context.Context, g getter, tracks []*orderTrack, workers int) verifyResult {
	began := time.Now()
	res := verifyResult{Orders: len(tracks)}
	workers = max(1, min(workers, verifyWorkersMax, len(tracks)))
	var (
		next    atomic.Int64
		checked atomic.Int64
		mu      sync.Mutex
		wg      sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(tracks)) {
					return
				}
				t := tracks[i]
				problem := t.verifyFinal(getPatiently(ctx, g, t.id))
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
	res.Checked = checked.Load()
	res.Mismatches = res.failures.count
	res.Samples = res.failures.samples
	res.Seconds = time.Since(began).Seconds()
	return res
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
