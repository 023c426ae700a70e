package main

import (
	"context"
	"testing"
	"time"
)

// A server that stalls once must show the stall in every request that was
// due while it stalled, not only in the one it held. With one request
// allowed in flight, a generator that measured from the actual send time
// would report a single slow request; measured from the intended time,
// every request scheduled during the stall waited for it.
//
// The assertions are lower bounds that a slower machine only makes easier to
// meet (slowness adds latency, never removes it), so the test does not
// depend on timing beyond the stall it injects.
func TestOpenLoopMeasuresFromTheIntendedSendTime(t *testing.T) {
	const (
		stall = 500 * time.Millisecond
		rate  = 200.0 // requests/s: one due every 5 ms
	)
	f := newFakeOrderd(t, func(f *fakeOrderd) {
		f.delay = func(n int64) time.Duration {
			if n == 5 { // early, so the whole stall is inside the run
				return stall
			}
			return 0
		}
	})
	cfg := loadConfig{
		rate:           rate,
		maxOutstanding: 1,
		duration:       1500 * time.Millisecond,
		mix:            mix{},
		seed:           1,
		idPrefix:       "o-",
	}
	res := runLoad(context.Background(), cfg, []sender{f.client(t, 1)}, true)

	if res.rec.failures.count != 0 {
		t.Fatalf("failures: %q", res.rec.failures.samples)
	}
	// The stalled request itself.
	if got := res.rec.latency.max(); got < stall {
		t.Fatalf("max latency %v, want at least the %v stall", got, stall)
	}
	// Requests due in the first half of the stall could not be sent before
	// it ended, so each waited at least half the stall: about
	// (stall/2) * rate of them. Allow for the few the schedule may place
	// around the edges.
	half := stall / 2
	wantAtLeast := int64(half.Seconds()*rate) - 5
	if got := res.rec.latency.countAtLeast(half); got < wantAtLeast {
		t.Fatalf("%d requests measured at least %v from their intended time, want at least %d: the stall is hidden", got, half, wantAtLeast)
	}
	// The actual service time saw the stall in one request only, which is
	// exactly what measuring from the send time would have reported.
	if got := res.rec.service.countAtLeast(half); got < 1 {
		t.Fatalf("service time never saw the stall")
	}
	if res.sent == 0 || res.due < res.sent {
		t.Fatalf("scheduled %d, sent %d", res.due, res.sent)
	}
}

// The open loop never has more requests in flight than allowed, even when
// the server is slow enough that the schedule falls far behind.
func TestOpenLoopBoundsOutstandingRequests(t *testing.T) {
	const outstanding = 3
	f := newFakeOrderd(t, func(f *fakeOrderd) {
		f.delay = func(int64) time.Duration { return 20 * time.Millisecond }
	})
	cfg := loadConfig{
		rate:           2000, // far above what 3 slots of 20 ms allow
		maxOutstanding: outstanding,
		duration:       400 * time.Millisecond,
		mix:            mix{read: 0.5},
		seed:           1,
		idPrefix:       "b-",
	}
	res := runLoad(context.Background(), cfg, []sender{f.client(t, outstanding)}, true)
	if peak := f.peak.Load(); peak > outstanding {
		t.Fatalf("%d requests in flight at once, want at most %d", peak, outstanding)
	}
	if res.due <= res.sent {
		t.Fatalf("a server this slow must leave requests unsent: due %d, sent %d", res.due, res.sent)
	}
	if v := verifyFinal(context.Background(), []getter{f.client(t, 4)}, res.tracks, 4); !v.ok() {
		t.Fatalf("verification after an overloaded open loop: %+v", v)
	}
}

// With an order budget and no duration, the open loop sends every order's
// whole plan and then stops by itself.
func TestOpenLoopStopsWhenTheOrdersAreDone(t *testing.T) {
	f := newFakeOrderd(t, nil)
	cfg := loadConfig{
		rate:           5000,
		maxOutstanding: 8,
		orders:         40,
		mix:            mix{cancel: 0.3, ret: 0.3, invalid: 0.3, read: 0.3},
		seed:           2,
		idPrefix:       "s-",
	}
	res := runLoad(context.Background(), cfg, []sender{f.client(t, 8)}, true)
	if len(res.tracks) != 40 {
		t.Fatalf("drove %d orders, want 40", len(res.tracks))
	}
	var steps int64
	for _, tr := range res.tracks {
		if _, more := tr.nextStep(); more {
			t.Fatalf("order %s stopped before the end of its plan", tr.id)
		}
		steps += int64(len(tr.plan))
	}
	if res.rec.requests != steps || res.sent != steps {
		t.Fatalf("sent %d (recorded %d) requests, want every step of every plan: %d", res.sent, res.rec.requests, steps)
	}
	if res.rec.failures.count != 0 {
		t.Fatalf("failures: %q", res.rec.failures.samples)
	}
}
