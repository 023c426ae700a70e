package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Target names, as they appear in the report.
const (
	targetOrderd   = "orderd"
	targetBaseline = "fiber-baseline"
)

// targetResult is one target's run, as reported.
type targetResult struct {
	Target         string  `json:"target"`
	URL            string  `json:"url"`         // comma-separated when the load was spread over several
	Started        string  `json:"started"`     // local time with zone: the machine is shared, so the time of day matters
	LoadAvg1       float64 `json:"load_avg_1m"` // the machine's load average when the run started
	Loop           string  `json:"loop"`        // "closed" or "open"
	Clients        int     `json:"clients,omitempty"`
	Rate           float64 `json:"rate,omitempty"`
	MaxOutstanding int     `json:"max_outstanding,omitempty"`

	Seconds           float64 `json:"seconds"` // the measured window
	Requests          int64   `json:"requests"`
	Transitions       int64   `json:"transitions"` // acknowledged creates and valid transitions: records in the log
	RequestsPerSec    float64 `json:"requests_per_sec"`
	TransitionsPerSec float64 `json:"transitions_per_sec"`

	// Latency is from the intended send time (the same as the actual one in
	// the closed loop); ServiceTime from the actual send.
	Latency     latencySummary            `json:"latency"`
	ServiceTime latencySummary            `json:"service_time"`
	ByKind      map[string]latencySummary `json:"latency_by_kind"`

	// Counts over the whole run, warm-up included: every answer is judged.
	RequestsTotal    int64            `json:"requests_total"`
	TransitionsTotal int64            `json:"transitions_total"`
	Statuses         map[string]int64 `json:"statuses"` // "transport" for no HTTP answer
	Outcomes         map[string]int64 `json:"outcomes"`
	Errors           int64            `json:"errors"` // answers other than the expected one
	ErrorRate        float64          `json:"error_rate"`
	FailureSamples   []string         `json:"failure_samples,omitempty"`

	Scheduled int64 `json:"scheduled,omitempty"` // open loop: requests due before the end
	Sent      int64 `json:"sent,omitempty"`
	Missed    int64 `json:"missed,omitempty"` // due but never sent: the generator fell behind

	Server        *procUsage    `json:"server,omitempty"`
	Generator     *procUsage    `json:"generator,omitempty"`
	ServerProblem string        `json:"server_problem,omitempty"`
	Verify        *verifyResult `json:"verify,omitempty"`
	Interrupted   bool          `json:"interrupted,omitempty"`

	Restart *restartResult `json:"restart,omitempty"` // --restart

	// ByURL is each URL's share, in --url order, when there are several;
	// its counts and rates add up to the totals above.
	ByURL []urlResult `json:"by_url,omitempty"`
}

// urlResult is one URL's share of a run spread over several.
type urlResult struct {
	URL               string         `json:"url"`
	Requests          int64          `json:"requests"` // in the measured window
	Transitions       int64          `json:"transitions"`
	RequestsPerSec    float64        `json:"requests_per_sec"`
	TransitionsPerSec float64        `json:"transitions_per_sec"`
	Latency           latencySummary `json:"latency"`        // from the intended send time
	RequestsTotal     int64          `json:"requests_total"` // warm-up included
	Errors            int64          `json:"errors"`
	ErrorRate         float64        `json:"error_rate"`
}

func newURLResult(url string, u *urlStats, seconds float64) urlResult {
	r := urlResult{
		URL:           url,
		Requests:      u.measuredRequests,
		Transitions:   u.measuredTransitions,
		Latency:       u.latency.summary(),
		RequestsTotal: u.requests,
		Errors:        u.errors,
	}
	if seconds > 0 {
		r.RequestsPerSec = float64(r.Requests) / seconds
		r.TransitionsPerSec = float64(r.Transitions) / seconds
	}
	if r.RequestsTotal > 0 {
		r.ErrorRate = float64(r.Errors) / float64(r.RequestsTotal)
	}
	return r
}

func newTargetResult(target string, urls []string, cfg loadConfig, res *runResult) targetResult {
	rec := res.rec
	r := targetResult{
		Target:           target,
		URL:              strings.Join(urls, ","),
		Started:          res.start.Format(time.RFC3339),
		LoadAvg1:         res.loadAvg,
		Seconds:          res.window().Seconds(),
		Requests:         rec.measuredRequests,
		Transitions:      rec.measuredTransitions,
		Latency:          rec.latency.summary(),
		ServiceTime:      rec.service.summary(),
		ByKind:           make(map[string]latencySummary, len(rec.byKind)),
		RequestsTotal:    rec.requests,
		TransitionsTotal: rec.transitions,
		Statuses:         make(map[string]int64, len(rec.statuses)),
		Outcomes:         make(map[string]int64, len(rec.outcomes)),
		Errors:           rec.failures.count,
		FailureSamples:   rec.failures.samples,
		Interrupted:      res.interrupted,
	}
	if cfg.openLoop() {
		r.Loop, r.Rate, r.MaxOutstanding = "open", cfg.rate, cfg.maxOutstanding
		r.Scheduled, r.Sent, r.Missed = res.due, res.sent, max(0, res.due-res.sent)
	} else {
		r.Loop, r.Clients = "closed", cfg.clients
	}
	if r.Seconds > 0 {
		r.RequestsPerSec = float64(r.Requests) / r.Seconds
		r.TransitionsPerSec = float64(r.Transitions) / r.Seconds
	}
	if r.RequestsTotal > 0 {
		r.ErrorRate = float64(r.Errors) / float64(r.RequestsTotal)
	}
	for k, h := range rec.byKind {
		if h.count() > 0 {
			r.ByKind[k.String()] = h.summary()
		}
	}
	for s, n := range rec.statuses {
		r.Statuses[statusName(s)] = n
	}
	for o, n := range rec.outcomes {
		r.Outcomes[o.String()] = n
	}
	if len(urls) > 1 {
		for i, u := range urls {
			r.ByURL = append(r.ByURL, newURLResult(u, rec.byURL[i], r.Seconds))
		}
	}
	return r
}

func statusName(s int) string {
	if s == 0 {
		return "transport"
	}
	return strconv.Itoa(s)
}

// correctnessFailures are reasons to fail whether or not --check was given:
// a server that answers wrongly, loses or invents state, or dies, is broken
// at any speed.
func (r targetResult) correctnessFailures() []string {
	var f []string
	if n := r.Outcomes[outcomeUnexpectedStatus.String()]; n > 0 {
		f = append(f, fmt.Sprintf("%s: %d answers with an unexpected status", r.Target, n))
	}
	if n := r.Outcomes[outcomeBodyMismatch.String()]; n > 0 {
		f = append(f, fmt.Sprintf("%s: %d answers whose body contradicts the acknowledged history", r.Target, n))
	}
	if v := r.Verify; v != nil && !v.ok() {
		f = append(f, fmt.Sprintf("%s: final verification: %d of %d orders checked, %d wrong or unreadable", r.Target, v.Checked, v.Orders, v.Mismatches))
	}
	if r.ServerProblem != "" {
		f = append(f, fmt.Sprintf("%s: %s", r.Target, firstLine(r.ServerProblem)))
	}
	if v := r.Restart.verified(); v != nil && !v.ok() {
		f = append(f, fmt.Sprintf("%s: verification after the restart: %d of %d orders checked, %d wrong or unreadable", r.Target, v.Checked, v.Orders, v.Mismatches))
	}
	return f
}

// thresholds are --check's limits.
type thresholds struct {
	MinTPS       float64 `json:"min_transitions_per_sec"`
	MaxP99Ms     float64 `json:"max_p99_ms"`
	MaxErrorRate float64 `json:"max_error_rate"`
}

// thresholdFailures says which of --check's limits r misses.
func (r targetResult) thresholdFailures(t thresholds) []string {
	var f []string
	if r.Interrupted {
		f = append(f, fmt.Sprintf("%s: the run was interrupted", r.Target))
	}
	if r.TransitionsPerSec < t.MinTPS {
		f = append(f, fmt.Sprintf("%s: %.0f transitions/s, want at least %.0f", r.Target, r.TransitionsPerSec, t.MinTPS))
	}
	if r.Latency.P99Ms > t.MaxP99Ms {
		f = append(f, fmt.Sprintf("%s: p99 %.2f ms, want at most %.2f ms", r.Target, r.Latency.P99Ms, t.MaxP99Ms))
	}
	if r.ErrorRate > t.MaxErrorRate {
		f = append(f, fmt.Sprintf("%s: %d of %d requests failed or were answered wrongly (%.3f%%), want at most %.3f%%",
			r.Target, r.Errors, r.RequestsTotal, 100*r.ErrorRate, 100*t.MaxErrorRate))
	}
	if r.Loop == "open" && r.Scheduled > 0 && float64(r.Missed) > openLoopMissedMax*float64(r.Scheduled) {
		f = append(f, fmt.Sprintf("%s: did not keep up with %.0f requests/s: %d of %d scheduled requests never sent", r.Target, r.Rate, r.Missed, r.Scheduled))
	}
	return f
}

// summaryLine is the one line a run prints per target.
func (r targetResult) summaryLine() string {
	var b strings.Builder
	started, _ := time.Parse(time.RFC3339, r.Started)
	fmt.Fprintf(&b, "%s load %.2f %s ", started.Format("2006-01-02 15:04:05 MST"), r.LoadAvg1, r.Target)
	if r.Loop == "open" {
		fmt.Fprintf(&b, "open rate=%.0f/s (sent %d of %d due)", r.Rate, r.Sent, r.Scheduled)
	} else {
		fmt.Fprintf(&b, "closed clients=%d", r.Clients)
	}
	fmt.Fprintf(&b, " %.1fs: %.0f transitions/s (%.0f req/s); latency ms p50 %s p90 %s p99 %s p99.9 %s max %s;",
		r.Seconds, r.TransitionsPerSec, r.RequestsPerSec,
		fmtMs(r.Latency.P50Ms), fmtMs(r.Latency.P90Ms), fmtMs(r.Latency.P99Ms), fmtMs(r.Latency.P999Ms), fmtMs(r.Latency.MaxMs))
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
			verdict = fmt.Sprintf("FAILED (%d wrong or unreadable)", v.Mismatches)
		}
		fmt.Fprintf(&b, "; verified %d of %d orders: %s", v.Checked, v.Orders, verdict)
	}
	if r.Interrupted {
		b.WriteString("; INTERRUPTED")
	}
	if r.Restart != nil {
		b.WriteString("; " + r.Restart.summary())
	}
	return b.String()
}

// urlLines are the lines that follow the summary line when the load was
// spread over several URLs: each URL's share of the total it gives.
func (r targetResult) urlLines() []string {
	lines := make([]string, 0, len(r.ByURL))
	for _, u := range r.ByURL {
		lines = append(lines, fmt.Sprintf("  %s %s: %.0f transitions/s (%.0f req/s); latency ms p50 %s p99 %s; requests %d (%d measured); errors %d",
			r.Target, u.URL, u.TransitionsPerSec, u.RequestsPerSec, fmtMs(u.Latency.P50Ms), fmtMs(u.Latency.P99Ms), u.RequestsTotal, u.Requests, u.Errors))
	}
	return lines
}

func perRequestNote(u *procUsage) string {
	if u.CPUMicrosPerRequest <= 0 {
		return ""
	}
	return fmt.Sprintf(" (%.1f µs/req)", u.CPUMicrosPerRequest)
}

// cpuBoundLine says how far CPU alone lets orderd go against the baseline:
// with the server and the generator on the same cores, each request costs
// the machine both processes' CPU, so cpus cores serve at most cpus / (that
// cost) requests per second. Its share of the baseline's measured rate is
// the ratio orderd could reach at its present cost per request, however
// short its latency; ok is false without the CPU readings of both runs.
func cpuBoundLine(orderd, baseline targetResult, cpus int) (string, bool) {
	cost := func(r targetResult) (server, generator float64, ok bool) {
		if r.Server == nil || r.Generator == nil || r.Server.CPUMicrosPerRequest <= 0 || r.Generator.CPUMicrosPerRequest <= 0 {
			return 0, 0, false
		}
		return r.Server.CPUMicrosPerRequest, r.Generator.CPUMicrosPerRequest, true
	}
	orderdServer, orderdGen, ok1 := cost(orderd)
	baseServer, baseGen, ok2 := cost(baseline)
	if !ok1 || !ok2 || baseline.RequestsPerSec <= 0 || cpus < 1 {
		return "", false
	}
	ceiling := float64(cpus) * 1e6 / (orderdServer + orderdGen)
	return fmt.Sprintf("CPU per request (server + generator): orderd %.1f + %.1f µs, %s %.1f + %.1f µs; "+
		"with all %d cores busy at that cost orderd could serve at most %.0f req/s, %.2f of the baseline's %.0f",
		orderdServer, orderdGen, targetBaseline, baseServer, baseGen, cpus, ceiling, ceiling/baseline.RequestsPerSec, baseline.RequestsPerSec), true
}

// fmtMs prints a latency with three significant digits, the histogram's
// precision, and never in exponent form (4800, not 4.8e+03).
func fmtMs(v float64) string {
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// report is the whole run, as --json writes it.
type report struct {
	Started   string          `json:"started"`
	Machine   machineInfo     `json:"machine"`
	Seed      uint64          `json:"seed"`
	Mix       *mixReport      `json:"mix,omitempty"` // the lifecycle load's; none with --checkout
	Results   []targetResult  `json:"results"`
	Checkout  *checkoutResult `json:"checkout,omitempty"`                 // --checkout
	Ratio     *float64        `json:"ratio_orderd_to_baseline,omitempty"` // transitions/s, orderd over the baseline
	Check     *thresholds     `json:"check,omitempty"`
	Failures  []string        `json:"failures,omitempty"`
	Pass      bool            `json:"pass"`
	ExitCode  int             `json:"exit_code"`
	GoVersion string          `json:"go_version"`
}

type machineInfo struct {
	CPUs     int    `json:"cpus"`
	Hostname string `json:"hostname"`
	OS       string `json:"os"`
}

type mixReport struct {
	Cancel     float64 `json:"cancel"`
	Return     float64 `json:"return"`
	Invalid    float64 `json:"invalid"`
	Read       float64 `json:"read"`
	CreateOnly bool    `json:"create_only,omitempty"`
}

func newReport(started time.Time, cfg config) *report {
	host, _ := os.Hostname()
	r := &report{
		Started:   started.Format(time.RFC3339),
		Machine:   machineInfo{CPUs: runtime.NumCPU(), Hostname: host, OS: runtime.GOOS + "/" + runtime.GOARCH},
		Seed:      cfg.load.seed,
		GoVersion: runtime.Version(),
	}
	if !cfg.checkout.enabled {
		m := cfg.load.mix
		r.Mix = &mixReport{Cancel: m.cancel, Return: m.ret, Invalid: m.invalid, Read: m.read, CreateOnly: m.createOnly}
	}
	return r
}

func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
