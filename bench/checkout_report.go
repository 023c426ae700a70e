package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// checkoutResult is a --checkout run, as reported.
type checkoutResult struct {
	Target   string  `json:"target"`
	URL      string  `json:"url"` // comma-separated when the load was spread over several
	Started  string  `json:"started"`
	LoadAvg1 float64 `json:"load_avg_1m"`
	Loop     string  `json:"loop"` // always "closed"
	Clients  int     `json:"clients"`

	SKUs        int     `json:"skus"`
	Stock       int64   `json:"stock"` // units on hand per SKU at the start
	DeclineRate float64 `json:"decline_rate"`

	// In the measured window: checkouts that ended (completed, compensated
	// or out of stock), per second, and their latency from the first POST
	// to the answer that ended them, retries and polls included.
	Seconds         float64        `json:"seconds"`
	Checkouts       int64          `json:"checkouts"`
	CheckoutsPerSec float64        `json:"checkouts_per_sec"`
	CompletedPerSec float64        `json:"completed_per_sec"`
	Latency         latencySummary `json:"latency"`
	Requests        int64          `json:"requests"` // HTTP requests of the window's checkouts: POSTs, retries, polls
	RequestsPerSec  float64        `json:"requests_per_sec"`

	// Counts over the whole run, warm-up included.
	CheckoutsTotal int64            `json:"checkouts_total"`
	Completed      int64            `json:"completed"`
	Compensated    int64            `json:"compensated"` // answered 201 compensated
	Declined       int64            `json:"declined"`    // of Compensated: paid with tok_decline
	OutOfStock     int64            `json:"out_of_stock"`
	Refused        int64            `json:"refused,omitempty"` // other 4xx
	Unknown        int64            `json:"unknown"`           // no end learned: transport errors, 5xx past the retries, polls past the patience
	Polled         int64            `json:"polled"`            // answered 202, then polled
	Retried        int64            `json:"retried"`           // POSTs asked again after a 503 or 429
	Statuses       map[string]int64 `json:"statuses"`          // of every request; "transport" for no answer
	// Errors is the checkouts with a problem: no end, a wrong answer, or
	// compensated though the token was approved; Wrong those whose
	// answer contradicts the contract.
	Errors         int64    `json:"errors"`
	ErrorRate      float64  `json:"error_rate"`
	Wrong          int64    `json:"wrong"`
	FailureSamples []string `json:"failure_samples,omitempty"`

	Server        *procUsage      `json:"server,omitempty"`
	Generator     *procUsage      `json:"generator,omitempty"`
	ServerProblem string          `json:"server_problem,omitempty"`
	Verify        *checkoutVerify `json:"verify,omitempty"`
	Interrupted   bool            `json:"interrupted,omitempty"`

	ByURL []checkoutURLResult `json:"by_url,omitempty"`
}

// checkoutURLResult is one URL's share of a checkout run over several.
type checkoutURLResult struct {
	URL             string         `json:"url"`
	Checkouts       int64          `json:"checkouts"` // ended, in the window
	CheckoutsPerSec float64        `json:"checkouts_per_sec"`
	Latency         latencySummary `json:"latency"`
	CheckoutsTotal  int64          `json:"checkouts_total"`
	Errors          int64          `json:"errors"`
}

func newCheckoutResult(urls []string, cfg config, run *checkoutRun) checkoutResult {
	rec := run.rec
	r := checkoutResult{
		Target: targetOrderd, URL: strings.Join(urls, ","), Started: run.start.Format(time.RFC3339), LoadAvg1: run.loadAvg,
		Loop: "closed", Clients: cfg.load.clients,
		SKUs: cfg.checkout.skus, Stock: cfg.checkout.stock, DeclineRate: cfg.checkout.declineRate,
		Seconds: run.window().Seconds(), Checkouts: rec.measuredEnded, Latency: rec.latency.summary(), Requests: rec.measuredRequests,
		CheckoutsTotal: rec.checkouts, Completed: rec.ends[endCompleted], Compensated: rec.ends[endCompensated], Declined: rec.declined,
		OutOfStock: rec.ends[endOutOfStock], Refused: rec.ends[endRefused], Unknown: rec.ends[endUnknown],
		Polled: rec.polled, Retried: rec.retried, Statuses: make(map[string]int64, len(rec.statuses)),
		Errors: rec.failures.count, Wrong: rec.wrong, FailureSamples: rec.failures.samples, Interrupted: run.interrupted,
	}
	if r.Seconds > 0 {
		r.CheckoutsPerSec = float64(r.Checkouts) / r.Seconds
		r.CompletedPerSec = float64(rec.measuredComplete) / r.Seconds
		r.RequestsPerSec = float64(r.Requests) / r.Seconds
	}
	if r.CheckoutsTotal > 0 {
		r.ErrorRate = float64(r.Errors) / float64(r.CheckoutsTotal)
	}
	for s, n := range rec.statuses {
		r.Statuses[statusName(s)] = n
	}
	if len(urls) > 1 {
		for i, u := range urls {
			s := rec.byURL[i]
			ur := checkoutURLResult{URL: u, Checkouts: s.measuredEnded, Latency: s.latency.summary(), CheckoutsTotal: s.checkouts, Errors: s.errors}
			if r.Seconds > 0 {
				ur.CheckoutsPerSec = float64(ur.Checkouts) / r.Seconds
			}
			r.ByURL = append(r.ByURL, ur)
		}
	}
	return r
}

// summaryLine is the line a checkout run prints.
func (r checkoutResult) summaryLine() string {
	var b strings.Builder
	started, _ := time.Parse(time.RFC3339, r.Started)
	fmt.Fprintf(&b, "%s load %.2f %s checkout closed clients=%d skus=%d", started.Format("2006-01-02 15:04:05 MST"), r.LoadAvg1, r.Target, r.Clients, r.SKUs)
	fmt.Fprintf(&b, " %.1fs: %.0f checkouts/s (%.0f completed/s, %.0f req/s); latency ms p50 %s p90 %s p99 %s p99.9 %s max %s;",
		r.Seconds, r.CheckoutsPerSec, r.CompletedPerSec, r.RequestsPerSec,
		fmtMs(r.Latency.P50Ms), fmtMs(r.Latency.P90Ms), fmtMs(r.Latency.P99Ms), fmtMs(r.Latency.P999Ms), fmtMs(r.Latency.MaxMs))
	fmt.Fprintf(&b, " completed=%d compensated=%d (declined %d) out_of_stock=%d unknown=%d", r.Completed, r.Compensated, r.Declined, r.OutOfStock, r.Unknown)
	if r.Refused > 0 {
		fmt.Fprintf(&b, " refused=%d", r.Refused)
	}
	fmt.Fprintf(&b, "; polled %d, retried %d;", r.Polled, r.Retried)
	statuses := make([]string, 0, len(r.Statuses))
	for s := range r.Statuses {
		statuses = append(statuses, s)
	}
	slices.Sort(statuses)
	for _, s := range statuses {
		fmt.Fprintf(&b, " %s=%d", s, r.Statuses[s])
	}
	fmt.Fprintf(&b, "; errors %d", r.Errors)
	if s := r.Server; s != nil {
		fmt.Fprintf(&b, "; server %.2f cores%s, rss %s (peak %s)", s.CPUCores, perRequestNote(s), mib(s.RSSBytes), mib(s.RSSPeakBytes))
	}
	if g := r.Generator; g != nil {
		fmt.Fprintf(&b, "; generator %.2f cores%s", g.CPUCores, perRequestNote(g))
	}
	if v := r.Verify; v != nil {
		verdict := "ok"
		if !v.ok() {
			verdict = fmt.Sprintf("FAILED (%d checkouts and %d SKUs wrong or unreadable)", v.CheckoutMismatches, v.StockMismatches)
		}
		fmt.Fprintf(&b, "; verified %d of %d checkouts, stock of %d of %d SKUs", v.CheckoutsChecked, v.Checkouts, v.SKUsChecked, v.SKUs)
		if v.InDoubt > 0 {
			fmt.Fprintf(&b, " (%d checkouts in doubt)", v.InDoubt)
		}
		b.WriteString(": " + verdict)
	}
	if r.Interrupted {
		b.WriteString("; INTERRUPTED")
	}
	return b.String()
}

// urlLines follow the summary when the load was spread over several URLs.
func (r checkoutResult) urlLines() []string {
	lines := make([]string, 0, len(r.ByURL))
	for _, u := range r.ByURL {
		lines = append(lines, fmt.Sprintf("  %s %s: %.0f checkouts/s; latency ms p50 %s p99 %s; checkouts %d (%d ended in the window); errors %d",
			r.Target, u.URL, u.CheckoutsPerSec, fmtMs(u.Latency.P50Ms), fmtMs(u.Latency.P99Ms), u.CheckoutsTotal, u.Checkouts, u.Errors))
	}
	return lines
}

// correctnessFailures fail the run: answers that contradict the contract,
// stock not conserved, checkouts that read back otherwise than answered,
// a server that died. Checkouts without an end are errors, not failures,
// as 5xx are in the lifecycle load.
func (r checkoutResult) correctnessFailures() []string {
	var f []string
	if r.Wrong > 0 {
		f = append(f, fmt.Sprintf("%s: %d checkouts answered against the contract", r.Target, r.Wrong))
	}
	if v := r.Verify; v != nil && !v.ok() {
		f = append(f, fmt.Sprintf("%s: checkout verification: %d of %d checkouts read back, %d wrong or unreadable; stock of %d of %d SKUs read, %d not conserved or unreadable",
			r.Target, v.CheckoutsChecked, v.Checkouts, v.CheckoutMismatches, v.SKUsChecked, v.SKUs, v.StockMismatches))
	}
	if r.ServerProblem != "" {
		f = append(f, fmt.Sprintf("%s: %s", r.Target, firstLine(r.ServerProblem)))
	}
	return f
}

// runCheckouts is --checkout: start the server if the harness owns it, run
// the checkouts against it, verify, stop it, and print the result.
func runCheckouts(ctx context.Context, cfg config, rep *report, stdout, stderr io.Writer) error {
	res, err := runCheckoutTarget(ctx, cfg, stderr)
	if err != nil {
		return fmt.Errorf("%s: %w", targetOrderd, err)
	}
	rep.Checkout = &res
	fmt.Fprintln(stdout, res.summaryLine())
	for _, line := range res.urlLines() {
		fmt.Fprintln(stdout, line)
	}
	for _, s := range res.FailureSamples {
		fmt.Fprintf(stderr, "  %s: %s\n", res.Target, s)
	}
	if res.Verify != nil {
		for _, s := range res.Verify.Samples {
			fmt.Fprintf(stderr, "  %s: verify: %s\n", res.Target, s)
		}
	}
	return nil
}

// runCheckoutTarget starts orderd if the harness owns it, runs the
// checkouts and their verification, and stops it.
func runCheckoutTarget(ctx context.Context, cfg config, stderr io.Writer) (checkoutResult, error) {
	var (
		srv *childServer
		err error
	)
	urls, pid := cfg.urls, cfg.serverPID
	if cfg.startServer {
		fmt.Fprintln(stderr, "bench: starting orderd on the embedded broker")
		if srv, err = startOrderd(ctx, cfg.serverBin, cfg.serverArgs, cfg.serverLog); err != nil {
			return checkoutResult{}, err
		}
		urls, pid = []string{srv.url}, srv.pid()
	}
	res, err := loadCheckouts(ctx, cfg, urls, pid, stderr)
	if srv != nil {
		if stopErr := srv.stop(); stopErr != nil {
			if err != nil {
				return checkoutResult{}, errors.Join(err, stopErr)
			}
			res.ServerProblem = stopErr.Error()
		}
	}
	return res, err
}

// loadCheckouts stocks the SKUs, runs the checkouts against urls and
// verifies what they left.
func loadCheckouts(ctx context.Context, cfg config, urls []string, pid int, stderr io.Writer) (checkoutResult, error) {
	conns := cfg.load.clients
	readers := cfg.verifyReaders(conns)
	clients, err := newAPIClients(urls, max(conns, readers), cfg.timeout)
	if err != nil {
		return checkoutResult{}, err
	}
	defer clients.closeIdle()
	if err := clients.checkReady(urls); err != nil {
		return checkoutResult{}, err
	}
	senders := make([]checkoutSender, len(clients))
	stockers := make([]stockClient, len(clients))
	for i, c := range clients {
		senders[i], stockers[i] = c, c
	}
	w := newCheckoutWorkload(cfg)
	fmt.Fprintf(stderr, "bench: stocking %d SKUs (%s...) with %d units each\n", len(w.skus), w.skus[0], w.stock)
	if err := setupStock(ctx, stockers, w, readers); err != nil {
		return checkoutResult{}, fmt.Errorf("stocking the SKUs: %w", err)
	}

	fmt.Fprintf(stderr, "bench: %s checkouts at %s: %s for %v\n", targetOrderd, strings.Join(urls, ", "), describeLoad(cfg.load), describeCheckoutBound(cfg.load))
	serverWatch := watchProc(pid, cfg.load.warmup)
	genWatch := watchProc(os.Getpid(), cfg.load.warmup)
	run := runCheckoutLoad(ctx, cfg.load, w, senders)
	out := newCheckoutResult(urls, cfg, run)
	out.Server = serverWatch.finish()
	out.Generator = genWatch.finish()
	out.Server.perRequest(out.RequestsPerSec)
	out.Generator.perRequest(out.RequestsPerSec)
	if !cfg.verify {
		return out, nil
	}
	fmt.Fprintf(stderr, "bench: verifying %d checkouts and the stock of %d SKUs\n", len(run.tracks), len(w.skus))
	v := verifyCheckouts(ctx, stockers, w, run.tracks, readers)
	out.Verify = &v
	return out, nil
}

func describeCheckoutBound(l loadConfig) string {
	switch {
	case l.duration > 0 && l.orders > 0:
		return fmt.Sprintf("%v or %d checkouts", l.duration, l.orders)
	case l.duration > 0:
		return l.duration.String()
	}
	return fmt.Sprintf("%d checkouts", l.orders)
}
