// Command bench is orderd's load-test harness: it drives order lifecycles
// over HTTP in a closed or open loop, reports throughput and latency (HDR
// histogram) with the server's CPU and memory, and reads every order back
// at the end to prove the server kept exactly what it acknowledged. Run
// `go run ./bench -h` for the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == baselineCommand {
		os.Exit(serveBaseline(os.Args[2:], os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	if cfg.load.seed == 0 {
		cfg.load.seed = uint64(time.Now().UnixNano())
	}
	fmt.Fprintf(stderr, "bench: seed %d (--seed repeats the plans)\n", cfg.load.seed)
	rep := newReport(time.Now(), cfg)
	measure := runLifecycles
	if cfg.checkout.enabled {
		measure = runCheckouts
	}
	if err := measure(ctx, cfg, rep, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return exitSetup
	}

	for _, r := range rep.Results {
		rep.Failures = append(rep.Failures, r.correctnessFailures()...)
	}
	if rep.Checkout != nil {
		rep.Failures = append(rep.Failures, rep.Checkout.correctnessFailures()...)
	}
	if cfg.check && !cfg.baselineOnly && len(rep.Results) > 0 {
		t := thresholds{MinTPS: cfg.minTPS, MaxP99Ms: ms(cfg.maxP99), MaxErrorRate: cfg.maxErrorRate}
		rep.Check = &t
		rep.Failures = append(rep.Failures, rep.Results[0].thresholdFailures(t)...)
	}
	rep.Pass = len(rep.Failures) == 0
	rep.ExitCode = exitOK
	if !rep.Pass {
		rep.ExitCode = exitFail
	}
	switch {
	case !rep.Pass:
		fmt.Fprintf(stdout, "FAIL: %s\n", strings.Join(rep.Failures, "; "))
	case rep.Check != nil:
		fmt.Fprintf(stdout, "check: pass (at least %.0f transitions/s, p99 at most %v, errors at most %.2f%%, final states verified)\n",
			cfg.minTPS, cfg.maxP99, 100*cfg.maxErrorRate)
	}
	if cfg.jsonFile != "" {
		if err := rep.writeJSON(cfg.jsonFile); err != nil {
			fmt.Fprintf(stderr, "bench: --json: %v\n", err)
			return exitSetup
		}
	}
	return rep.ExitCode
}

// runLifecycles drives order lifecycles against orderd, then the baseline
// when asked, and prints each result; an error means a run could not happen.
func runLifecycles(ctx context.Context, cfg config, rep *report, stdout, stderr io.Writer) error {
	var targets []string
	if !cfg.baselineOnly {
		targets = append(targets, targetOrderd)
	}
	if cfg.baseline || cfg.baselineOnly {
		targets = append(targets, targetBaseline)
	}
	// One target at a time, each server stopped before the next starts:
	// on two cores, anything left running would take from the next one.
	for _, target := range targets {
		if ctx.Err() != nil {
			break // interrupted: report what was measured, start nothing new
		}
		res, err := runTarget(ctx, cfg, target, stderr)
		if err != nil {
			return fmt.Errorf("%s: %w", target, err)
		}
		rep.Results = append(rep.Results, res)
		fmt.Fprintln(stdout, res.summaryLine())
		for _, line := range res.urlLines() {
			fmt.Fprintln(stdout, line)
		}
		for _, s := range res.FailureSamples {
			fmt.Fprintf(stderr, "  %s: %s\n", target, s)
		}
		if res.Verify != nil {
			for _, s := range res.Verify.Samples {
				fmt.Fprintf(stderr, "  %s: verify: %s\n", target, s)
			}
		}
	}
	if len(rep.Results) == 2 && rep.Results[1].TransitionsPerSec > 0 {
		ratio := rep.Results[0].TransitionsPerSec / rep.Results[1].TransitionsPerSec
		rep.Ratio = &ratio
		fmt.Fprintf(stdout, "ratio orderd/%s: %.2f (%.0f / %.0f transitions/s)\n",
			targetBaseline, ratio, rep.Results[0].TransitionsPerSec, rep.Results[1].TransitionsPerSec)
		if line, ok := cpuBoundLine(rep.Results[0], rep.Results[1], runtime.NumCPU()); ok {
			fmt.Fprintln(stdout, line)
		}
	}
	return nil
}

// runTarget starts the target's server if the harness owns it, runs the
// load against it, verifies, stops the server and returns the result. An
// error means the run could not happen at all.
func runTarget(ctx context.Context, cfg config, target string, stderr io.Writer) (targetResult, error) {
	var (
		srv *childServer
		err error
	)
	urls, pid := cfg.urls, cfg.serverPID
	switch {
	case target == targetBaseline:
		fmt.Fprintln(stderr, "bench: starting the bare Fiber baseline")
		srv, err = startBaseline(ctx)
	case cfg.startServer:
		fmt.Fprintln(stderr, "bench: starting orderd on the embedded broker")
		srv, err = startOrderd(ctx, cfg.serverBin, cfg.serverArgs, cfg.serverLog)
	}
	if err != nil {
		return targetResult{}, err
	}
	if srv != nil {
		urls, pid = []string{srv.url}, srv.pid()
	}
	res, tracks, err := loadTarget(ctx, cfg, target, urls, pid, stderr)
	if err == nil && srv != nil && cfg.restart && target == targetOrderd {
		var restarted *childServer
		restarted, res.Restart, err = restartOrderd(ctx, srv, tracks, cfg, stderr)
		srv = restarted // nil if it did not come back: nothing left to stop
	}
	if srv != nil {
		if stopErr := srv.stop(); stopErr != nil {
			if err != nil {
				return targetResult{}, errors.Join(err, stopErr)
			}
			res.ServerProblem = stopErr.Error()
		}
	}
	return res, err
}

// loadTarget runs the load against the server at urls (several: the nodes
// of one cluster, the clients spread over them round-robin; pid, when
// known, is the server's process, for CPU and memory) and verifies the
// result. It returns the orders it drove, for a verification after a
// restart (nil when the result is not judged).
func loadTarget(ctx context.Context, cfg config, target string, urls []string, pid int, stderr io.Writer) (targetResult, []*orderTrack, error) {
	conns := cfg.load.clients
	if cfg.load.openLoop() {
		conns = cfg.load.maxOutstanding
	}
	// Connections for the load and for the verification after it, whose
	// --verify-workers may exceed the load's: beyond MaxConns fasthttp
	// fails a request at once (ErrNoFreeConns) instead of waiting.
	clients, err := newAPIClients(urls, max(conns, cfg.verifyReaders(conns)), cfg.timeout)
	if err != nil {
		return targetResult{}, nil, err
	}
	defer clients.closeIdle()
	if err := clients.checkReady(urls); err != nil {
		return targetResult{}, nil, err
	}

	fmt.Fprintf(stderr, "bench: %s at %s: %s for %v\n", target, strings.Join(urls, ", "), describeLoad(cfg.load), describeBound(cfg.load))
	serverWatch := watchProc(pid, cfg.load.warmup)
	genWatch := watchProc(os.Getpid(), cfg.load.warmup)
	judge := target == targetOrderd
	res := runLoad(ctx, cfg.load, clients.senders(), judge)
	out := newTargetResult(target, urls, cfg.load, res)
	out.Server = serverWatch.finish()
	out.Generator = genWatch.finish()
	out.Server.perRequest(out.RequestsPerSec)
	out.Generator.perRequest(out.RequestsPerSec)

	if !judge || !cfg.verify {
		return out, nil, nil
	}
	fmt.Fprintf(stderr, "bench: verifying the final state of %d orders\n", len(res.tracks))
	v := verifyFinal(ctx, clients.getters(), res.tracks, cfg.verifyReaders(conns))
	out.Verify = &v
	return out, res.tracks, nil
}

// checkReady asks every URL's /readyz.
func (cs apiClients) checkReady(urls []string) error {
	for i, c := range cs {
		if status, err := c.getStatus("/readyz"); err != nil || status != 200 {
			return fmt.Errorf("%s/readyz: status %d, %v: is the server running and ready?", urls[i], status, err)
		}
	}
	return nil
}

func describeLoad(l loadConfig) string {
	if l.openLoop() {
		return fmt.Sprintf("open loop at %.0f requests/s (at most %d outstanding)", l.rate, l.maxOutstanding)
	}
	return fmt.Sprintf("closed loop with %d clients", l.clients)
}

func describeBound(l loadConfig) string {
	switch {
	case l.duration > 0 && l.orders > 0:
		return fmt.Sprintf("%v or %d orders", l.duration, l.orders)
	case l.duration > 0:
		return l.duration.String()
	}
	return fmt.Sprintf("%d orders", l.orders)
}

// procWatch measures a process's CPU over the measured window: it samples
// once when the warm-up ends and once at finish.
type procWatch struct {
	pid   int
	mu    sync.Mutex
	first *procSample
	timer *time.Timer
}

// watchProc starts watching pid (0: nothing to watch) after warmup.
func watchProc(pid int, warmup time.Duration) *procWatch {
	w := &procWatch{pid: pid}
	if pid == 0 {
		return w
	}
	if warmup <= 0 {
		w.sample()
		return w
	}
	w.timer = time.AfterFunc(warmup, w.sample)
	return w
}

func (w *procWatch) sample() {
	s, err := readProc(w.pid)
	if err != nil {
		return // not on Linux, or the process is gone: nothing to report
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.first == nil {
		w.first = &s
	}
}

// finish returns the use since the first sample, or nil when there is none.
func (w *procWatch) finish() *procUsage {
	if w.pid == 0 {
		return nil
	}
	if w.timer != nil {
		w.timer.Stop()
	}
	last, err := readProc(w.pid)
	if err != nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.first == nil {
		// The run ended before the warm-up did: nothing was measured.
		return nil
	}
	u := usageBetween(w.pid, *w.first, last)
	return &u
}
