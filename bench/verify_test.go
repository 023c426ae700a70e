package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// smallLoad is a closed-loop load of a fixed number of orders with every
// kind of step in the mix: fast, and bounded by count, not time.
func smallLoad(orders int64) loadConfig {
	return loadConfig{
		clients:  4,
		orders:   orders,
		mix:      mix{cancel: 0.2, ret: 0.3, invalid: 0.3, read: 0.5},
		seed:     1,
		idPrefix: "t-",
	}
}

func TestHonestServerPasses(t *testing.T) {
	f := newFakeOrderd(t, nil)
	c := f.client(t, 4)
	res := runLoad(context.Background(), smallLoad(200), []sender{c}, true)

	if len(res.tracks) != 200 {
		t.Fatalf("drove %d orders, want 200", len(res.tracks))
	}
	if res.rec.failures.count != 0 {
		t.Fatalf("%d failures against an honest server: %q", res.rec.failures.count, res.rec.failures.samples)
	}
	v := verifyFinal(context.Background(), []getter{c}, res.tracks, 4)
	if !v.ok() || v.Checked != 200 {
		t.Fatalf("verification of an honest server: %+v", v)
	}
	// Every order was created and driven to the end of its plan, so the
	// transitions are the creates plus the valid steps of every plan.
	var wantTransitions int64
	for _, tr := range res.tracks {
		for _, s := range tr.plan {
			if s.kind.writes() {
				wantTransitions++
			}
		}
	}
	if res.rec.transitions != wantTransitions {
		t.Fatalf("counted %d transitions, want %d", res.rec.transitions, wantTransitions)
	}
	if res.rec.statuses[409] == 0 || res.rec.statuses[201] != 200 {
		t.Fatalf("statuses %v: want 200 creates and some refused invalid steps", res.rec.statuses)
	}
}

// The core promise: a server that answers quickly but shows a state its
// acknowledged answers do not imply fails, even when nothing during the run
// looked wrong (no reads in the mix).
func TestVerificationCatchesALyingFinalState(t *testing.T) {
	f := newFakeOrderd(t, func(f *fakeOrderd) {
		f.lieOnGet = func(id, state string, version uint64) (string, uint64) {
			if id == "t-7" {
				return stateCancelled, version // a state it never reached
			}
			return state, version
		}
	})
	c := f.client(t, 4)
	cfg := smallLoad(50)
	cfg.mix = mix{ret: 0.5} // no cancels: t-7 ends Delivered or Returned
	res := runLoad(context.Background(), cfg, []sender{c}, true)
	if res.rec.failures.count != 0 {
		t.Fatalf("the lie should be invisible during the run: %q", res.rec.failures.samples)
	}
	v := verifyFinal(context.Background(), []getter{c}, res.tracks, 4)
	if v.Mismatches != 1 || len(v.Samples) != 1 || !strings.Contains(v.Samples[0], "t-7") {
		t.Fatalf("want exactly the lie about t-7 reported, got %+v", v)
	}
}

// A server that acknowledges a write without keeping it is caught by the
// final read.
func TestVerificationCatchesALostWrite(t *testing.T) {
	f := newFakeOrderd(t, func(f *fakeOrderd) {
		f.dropWrite = func(id, to string) bool { return id == "t-3" && to == stateShipped }
	})
	c := f.client(t, 4)
	cfg := smallLoad(20)
	cfg.mix = mix{} // every order: create, pay, ship, deliver
	res := runLoad(context.Background(), cfg, []sender{c}, true)
	v := verifyFinal(context.Background(), []getter{c}, res.tracks, 4)
	if v.Mismatches != 1 || !strings.Contains(v.Samples[0], "t-3") {
		t.Fatalf("want the lost write to t-3 reported, got %+v (run failures %q)", v, res.rec.failures.samples)
	}
}

// A server that accepts a transition the table forbids fails at once.
func TestRunCatchesAnAcceptedInvalidTransition(t *testing.T) {
	f := newFakeOrderd(t, func(f *fakeOrderd) { f.acceptInvalid = true })
	c := f.client(t, 4)
	cfg := smallLoad(20)
	cfg.mix = mix{invalid: 1}
	res := runLoad(context.Background(), cfg, []sender{c}, true)
	if res.rec.outcomes[outcomeUnexpectedStatus] == 0 {
		t.Fatalf("accepted invalid transitions went unnoticed: outcomes %v", res.rec.outcomes)
	}
	// What the server acknowledged is what it must show, so the final
	// verification agrees with it: the failure is the status, not a lost state.
	if v := verifyFinal(context.Background(), []getter{c}, res.tracks, 4); !v.ok() {
		t.Fatalf("verification: %+v", v)
	}
}

// Reads during the run must show the reader's own acknowledged write.
func TestRunCatchesAStaleRead(t *testing.T) {
	f := newFakeOrderd(t, func(f *fakeOrderd) {
		f.lieOnGet = func(id, state string, version uint64) (string, uint64) {
			if state == statePaid {
				return stateCreated, version - 1 // as if the write were not visible yet
			}
			return state, version
		}
	})
	c := f.client(t, 4)
	cfg := smallLoad(20)
	cfg.mix = mix{read: 1}
	res := runLoad(context.Background(), cfg, []sender{c}, true)
	if got := res.rec.outcomes[outcomeBodyMismatch]; got != 20 {
		t.Fatalf("want all 20 stale reads of Paid orders caught, got %d (outcomes %v)", got, res.rec.outcomes)
	}
}

// The command as a whole: a lying server makes it exit 1 and say why, on
// stdout and in the JSON.
func TestRunExitsNonZeroOnAMismatch(t *testing.T) {
	f := newFakeOrderd(t, func(f *fakeOrderd) {
		f.lieOnGet = func(id, state string, version uint64) (string, uint64) {
			if id == "t-1" {
				return state, version + 1
			}
			return state, version
		}
	})
	jsonPath := filepath.Join(t.TempDir(), "out.json")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{
		"--url", f.srv.URL, "--orders", "10", "--duration", "0", "--clients", "2",
		"--read", "0", "--id-prefix", "t-", "--json", jsonPath,
	}, &stdout, &stderr)
	if code != exitFail {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitFail, &stdout, &stderr)
	}
	if !strings.Contains(stdout.String(), "FAIL: orderd: final verification") {
		t.Fatalf("stdout does not report the verification failure:\n%s", &stdout)
	}
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Pass || rep.ExitCode != exitFail || len(rep.Results) != 1 || rep.Results[0].Verify.Mismatches != 1 {
		t.Fatalf("JSON report does not show the failure: %s", raw)
	}
}

// And an honest server passes the check mode end to end.
func TestRunCheckPassesAnHonestServer(t *testing.T) {
	f := newFakeOrderd(t, nil)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{
		"--url", f.srv.URL, "--orders", "100", "--duration", "0", "--clients", "4",
		"--check", "--min-tps", "1", "--max-p99", "10s",
	}, &stdout, &stderr)
	if code != exitOK || !strings.Contains(stdout.String(), "check: pass") {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
}

// rateLimitedGetter answers 429 to the first reads of every order, then 200.
type rateLimitedGetter struct {
	mu      sync.Mutex
	refused map[string]int
	limited int
	state   string
	version uint64
}

func (g *rateLimitedGetter) get(id string) response {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refused[id] < g.limited {
		g.refused[id]++
		return response{status: 429}
	}
	return response{status: 200, decoded: true, id: id, state: g.state, version: g.version}
}

// A rate-limited read-back is asked again, not counted as a wrong order.
func TestVerifyRetriesRateLimitedReads(t *testing.T) {
	f := newFakeOrderd(t, nil)
	c := f.client(t, 4)
	res := runLoad(context.Background(), smallLoad(5), []sender{c}, true)
	g := &patientCheck{inner: c, refused: map[string]int{}}
	v := verifyFinal(context.Background(), []getter{g}, res.tracks, 2)
	if !v.ok() || v.Checked != 5 {
		t.Fatalf("verification with two 429s per order: %+v", v)
	}
	if len(g.refused) != 5 {
		t.Fatalf("429 answered for %d orders, want 5", len(g.refused))
	}

	stubborn := &rateLimitedGetter{refused: map[string]int{}, limited: verifyRateLimitedTries}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if resp := getPatiently(ctx, stubborn, "x"); resp.status != 429 {
		t.Fatalf("a server that keeps refusing: got status %d, want the 429", resp.status)
	}
}

// patientCheck refuses the first two reads of each order with 429, then asks
// the real client.
type patientCheck struct {
	inner   getter
	mu      sync.Mutex
	refused map[string]int
}

func (p *patientCheck) get(id string) response {
	p.mu.Lock()
	if p.refused[id] < 2 {
		p.refused[id]++
		p.mu.Unlock()
		return response{status: 429}
	}
	p.mu.Unlock()
	return p.inner.get(id)
}

// Every read of the verification is timed: after a restart they are the
// cold reads, so their latency is reported.
func TestVerifyTimesEveryRead(t *testing.T) {
	const readDelay = 2 * time.Millisecond
	var slow atomic.Bool // only the reads of the verification
	f := newFakeOrderd(t, func(f *fakeOrderd) {
		f.delay = func(int64) time.Duration {
			if slow.Load() {
				return readDelay
			}
			return 0
		}
	})
	c := f.client(t, 4)
	res := runLoad(context.Background(), smallLoad(40), []sender{c}, true)
	slow.Store(true)
	v := verifyFinal(context.Background(), []getter{c}, res.tracks, 4)
	if !v.ok() || v.Workers != 4 {
		t.Fatalf("verification: %+v", v)
	}
	if v.Latency.Count != 40 || v.Latency.P50Ms < ms(readDelay) || v.Latency.MaxMs < v.Latency.P99Ms {
		t.Fatalf("latency %+v: want 40 reads, each at least %v", v.Latency, readDelay)
	}

	// A read asked again after a 429 is timed each time.
	g := &patientCheck{inner: c, refused: map[string]int{}}
	v = verifyFinal(context.Background(), []getter{g}, res.tracks[:5], 2)
	if !v.ok() || v.Latency.Count != 15 {
		t.Fatalf("with two 429s per order: %+v", v)
	}
}
