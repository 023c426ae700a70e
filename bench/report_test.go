package main

import (
	"strings"
	"testing"
)

func passing() targetResult {
	return targetResult{
		Target: targetOrderd, Loop: "closed", Clients: 16, Started: "2026-11-23T12:00:00Z",
		Seconds: 10, Requests: 20000, Transitions: 15000, TransitionsPerSec: 1500, RequestsPerSec: 2000,
		Latency:       latencySummary{P50Ms: 2, P99Ms: 40},
		RequestsTotal: 20000, Statuses: map[string]int64{"200": 19000, "409": 1000},
		Outcomes: map[string]int64{"ok": 20000},
		Verify:   &verifyResult{Orders: 3000, Checked: 3000},
	}
}

var requirements = thresholds{MinTPS: 1000, MaxP99Ms: 100, MaxErrorRate: 0.001}

func TestThresholds(t *testing.T) {
	if f := passing().thresholdFailures(requirements); len(f) != 0 {
		t.Fatalf("failures %q", f)
	}
	for _, c := range []struct {
		name   string
		change func(*targetResult)
		want   string
	}{
		{"slow", func(r *targetResult) { r.TransitionsPerSec = 999 }, "999 transitions/s"},
		{"tail", func(r *targetResult) { r.Latency.P99Ms = 100.5 }, "p99 100.50 ms"},
		{"errors", func(r *targetResult) { r.Errors, r.ErrorRate = 30, 0.0015 }, "30 of 20000"},
		{"interrupted", func(r *targetResult) { r.Interrupted = true }, "interrupted"},
		{"open loop fell behind", func(r *targetResult) {
			r.Loop, r.Rate, r.Scheduled, r.Sent, r.Missed = "open", 1000, 10000, 9800, 200
		}, "did not keep up"},
	} {
		r := passing()
		c.change(&r)
		f := r.thresholdFailures(requirements)
		if len(f) != 1 || !strings.Contains(f[0], c.want) {
			t.Errorf("%s: failures %q, want one mentioning %q", c.name, f, c.want)
		}
	}
}

// Wrong answers fail a run even without --check.
func TestCorrectnessFailures(t *testing.T) {
	if f := passing().correctnessFailures(); len(f) != 0 {
		t.Fatalf("failures %q", f)
	}
	for _, c := range []struct {
		name   string
		change func(*targetResult)
		want   string
	}{
		{"wrong status", func(r *targetResult) { r.Outcomes["unexpected_status"] = 2 }, "unexpected status"},
		{"wrong body", func(r *targetResult) { r.Outcomes["body_mismatch"] = 1 }, "contradicts"},
		{"final state", func(r *targetResult) { r.Verify.Mismatches = 1 }, "final verification"},
		{"not all read back", func(r *targetResult) { r.Verify.Checked = 2999 }, "2999 of 3000"},
		{"server died", func(r *targetResult) { r.ServerProblem = "orderd had exited\nlog..." }, "orderd had exited"},
	} {
		r := passing()
		r.Verify = &verifyResult{Orders: 3000, Checked: 3000}
		r.Outcomes = map[string]int64{"ok": 20000}
		c.change(&r)
		f := r.correctnessFailures()
		if len(f) != 1 || !strings.Contains(f[0], c.want) {
			t.Errorf("%s: failures %q, want one mentioning %q", c.name, f, c.want)
		}
	}
	// Server errors and transport errors are not proof of a wrong server,
	// only of a failing one: they count against --max-error-rate instead.
	r := passing()
	r.Outcomes["server_error"], r.Outcomes["transport_error"] = 5, 5
	if f := r.correctnessFailures(); len(f) != 0 {
		t.Fatalf("failures %q", f)
	}
}

func TestSummaryLine(t *testing.T) {
	r := passing()
	r.Server = &procUsage{CPUCores: 1.1, RSSBytes: 200 << 20, RSSPeakBytes: 210 << 20}
	r.Generator = &procUsage{CPUCores: 0.5}
	r.Server.perRequest(r.RequestsPerSec)
	r.Generator.perRequest(r.RequestsPerSec)
	line := r.summaryLine()
	for _, want := range []string{"2026-11-23 12:00:00 UTC load 0.00 orderd closed clients=16", "1500 transitions/s", "p99 40", "200=19000 409=1000",
		"server 1.10 cores (550.0 µs/req), rss 200 MiB (peak 210 MiB)", "generator 0.50 cores (250.0 µs/req)", "verified 3000 of 3000 orders: ok"} {
		if !strings.Contains(line, want) {
			t.Errorf("summary %q lacks %q", line, want)
		}
	}
	if strings.Contains(line, "\n") {
		t.Errorf("summary spans lines: %q", line)
	}
}

// The CPU bound is the cores over both processes' cost per request: here
// 2 cores / (40 + 20 µs) = 33,333 requests/s, a third of the baseline's
// 100,000. Without CPU readings for both runs there is no line.
func TestCPUBoundLine(t *testing.T) {
	run := func(requestsPerSec, serverCores, generatorCores float64) targetResult {
		r := targetResult{RequestsPerSec: requestsPerSec, Server: &procUsage{CPUCores: serverCores}, Generator: &procUsage{CPUCores: generatorCores}}
		r.Server.perRequest(requestsPerSec)
		r.Generator.perRequest(requestsPerSec)
		return r
	}
	orderd, baseline := run(25000, 1.0, 0.5), run(100000, 1.0, 1.0)
	line, ok := cpuBoundLine(orderd, baseline, 2)
	if !ok {
		t.Fatal("no line")
	}
	for _, want := range []string{"orderd 40.0 + 20.0 µs", "fiber-baseline 10.0 + 10.0 µs", "all 2 cores", "at most 33333 req/s, 0.33 of the baseline's 100000"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	noServer := orderd
	noServer.Server = nil
	if line, ok := cpuBoundLine(noServer, baseline, 2); ok {
		t.Errorf("line without the server's CPU: %q", line)
	}
	idle := run(0, 0, 0)
	if line, ok := cpuBoundLine(orderd, idle, 2); ok {
		t.Errorf("line against a baseline that served nothing: %q", line)
	}
}

func TestFmtMs(t *testing.T) {
	for v, want := range map[float64]string{0.0512: "0.0512", 1.75: "1.75", 71.43: "71.4", 4796.3: "4796", 0: "0"} {
		if got := fmtMs(v); got != want {
			t.Errorf("fmtMs(%v) = %q, want %q", v, got, want)
		}
	}
}
