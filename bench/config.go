package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // a check threshold or the verification failed
	exitUsage = 2 // bad flags
	exitSetup = 3 // could not start or reach a server
)

// Bounds on the flags: a typo should produce an error, not a fork bomb of
// goroutines or a run that never ends.
const (
	clientsMax        = 4096
	outstandingMax    = 4096
	rateMax           = 1_000_000 // requests/s; far above what one machine sends
	requestTimeoutMin = time.Millisecond
	// urlsMax bounds --url: the nodes of a cluster one generator can load
	// from one machine. Below verifyWorkersMax, so the default verification
	// reads through every URL.
	urlsMax = 16
	// skusMax bounds --skus: each SKU's stock is set before the run and
	// read back after it, two logged or read requests apiece.
	skusMax = 10_000
	// stockMax bounds --stock: orderd's own bound on a SKU's units on hand
	// (a billion).
	stockMax = 1_000_000_000
)

// Defaults. The check thresholds are the original requirements: at least
// 1,000 transitions/s sustained with p99 under 100 ms.
const (
	defaultURL            = "http://127.0.0.1:8080"
	defaultClients        = 32
	defaultMaxOutstanding = 256
	defaultDuration       = 10 * time.Second
	defaultRequestTimeout = 10 * time.Second // above orderd's 5 s request deadline, so the server answers first
	defaultMinTPS         = 1000
	defaultMaxP99         = 100 * time.Millisecond
	// defaultMaxErrorRate tolerates a rare 503 from a disk stall (FACTS.md:
	// fsync stalls of 120–300 ms happen here) but not a server that fails
	// requests routinely.
	defaultMaxErrorRate = 0.001
	// openLoopMissedMax is the share of scheduled requests the open loop may
	// fail to send (because every slot was busy until the end) before the
	// check says the server did not keep up with the rate.
	openLoopMissedMax = 0.01
	// defaultSKUs spreads the checkouts thinly enough that two clients
	// rarely want the same SKU at once; --skus 1 measures a hot SKU.
	defaultSKUs = 100
	// defaultStock: a checkout takes 3 units on average (1–3 SKUs, 1–2
	// each), so over 100 SKUs a million units apiece last some 30 million
	// checkouts, far beyond any run here: out of stock only when asked for
	// with a small --stock.
	defaultStock = 1_000_000
)

// config is the whole command line.
type config struct {
	urls        []string // --url, in order: client i loads urls[i mod len(urls)]
	startServer bool
	serverArgs  stringList
	serverBin   string
	serverLog   string
	serverPID   int
	restart     bool
	restartKill bool // --restart-signal kill: SIGKILL instead of a graceful stop
	// restartSettle is how long after ready the restarted server's RSS is
	// read again (restartSettleDefault; tests shorten it).
	restartSettle time.Duration
	baseline      bool
	baselineOnly  bool
	allowRemote   bool

	load    loadConfig
	timeout time.Duration
	verify  bool
	// verifyWorkers is the reads in flight in the verifications (0: one
	// per client, at most verifyWorkersMax).
	verifyWorkers int

	// checkout is --checkout's workload, instead of order lifecycles.
	checkout checkoutConfig

	jsonFile string

	check        bool
	minTPS       float64
	maxP99       time.Duration
	maxErrorRate float64
}

// urlList is --url: repeatable, and each value may be a comma-separated
// list. The first --url replaces the default instead of adding to it.
type urlList struct {
	urls []string
	set  bool
}

func (u *urlList) String() string { return strings.Join(u.urls, ",") }

func (u *urlList) Set(v string) error {
	if !u.set {
		u.urls, u.set = nil, true
	}
	for s := range strings.SplitSeq(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			return fmt.Errorf("%q: an empty URL in the list", v)
		}
		u.urls = append(u.urls, s)
	}
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

const usageHead = `Usage: go run ./bench [flags]

Drives order lifecycles (create, pay, ship, deliver; some cancelled, returned,
read, or sent a deliberately invalid transition) against orderd over HTTP,
reports throughput and latency, then reads every order back and checks that
its state is what the server's acknowledged answers imply.

Target:  --url URL (a running orderd; repeat it, or give a comma-separated
         list, to spread the clients over a cluster's nodes round-robin), or
         --start-server (build ./cmd/orderd, run it on the embedded broker in
         a temp dir on 127.0.0.1:0, stop it after); add --baseline to drive a
         bare Fiber handler with the same load in the same run and report
         orderd's share of its throughput.
Loop:    closed (--clients N, each waiting for its answer) unless --rate R > 0:
         open loop, R requests/s on a fixed schedule, latency measured from the
         time each request was due, at most --max-outstanding in flight.
Checkout: --checkout drives POST /v1/checkouts instead (closed loop only):
         stock --skus SKUs with --stock units each, buy 1–3 of them per
         checkout, report checkouts/s and latency, then verify that the
         stock is conserved and every checkout reads back as answered.
Output:  one summary line per target on stdout (with several URLs, then a
         line per URL with its share); --json FILE for everything.
Exit:    0 ok; 1 verification or --check failed; 2 bad flags; 3 setup failed.

Examples:
  go run ./bench --start-server --check --duration 10s --clients 16
  go run ./bench --start-server --baseline --clients 32 --duration 10s
  go run ./bench --start-server --rate 1000 --duration 20s --json open.json
  go run ./bench --url http://127.0.0.1:8080 --url http://127.0.0.1:8081,http://127.0.0.1:8082
  go run ./bench --url http://127.0.0.1:8080 --checkout --clients 16 --duration 10s --decline-rate 0.05

Flags:
`

// parseConfig reads the command line. Errors have been printed to stderr
// when it returns one; flag.ErrHelp means -h was asked for.
func parseConfig(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fs.PrintDefaults()
	}
	urls := urlList{urls: []string{defaultURL}}
	fs.Var(&urls, "url", fmt.Sprintf("orderd `URL` to load (ignored with --start-server); repeatable or comma-separated, up to %d: client i (or open-loop slot i, or verification reader i) uses URL i mod n, and the report adds each URL's stats", urlsMax))
	fs.BoolVar(&c.startServer, "start-server", false, "build and start orderd on the embedded broker (fsynced) in a temp dir, and stop it at the end")
	fs.Var(&c.serverArgs, "server-arg", "extra argument for the started orderd, e.g. --server-arg=--partitions=4 (repeatable)")
	fs.StringVar(&c.serverBin, "server-bin", "", "with --start-server: run this orderd binary instead of building ./cmd/orderd")
	fs.StringVar(&c.serverLog, "server-log", "", "write the started orderd's log to this file")
	fs.BoolVar(&c.restart, "restart", false, "with --start-server: after the run, restart orderd on its data directory, report the records its start read of the log, its time to ready and its memory, and verify every order again, timing each read (cold loads)")
	restartSignal := fs.String("restart-signal", restartSignalTerm, "with --restart: how to stop orderd before starting it again: term (SIGTERM, a graceful stop) or kill (SIGKILL, as a crash)")
	fs.IntVar(&c.serverPID, "server-pid", 0, "with --url: PID of that orderd on this machine, to report its CPU and memory")
	fs.BoolVar(&c.baseline, "baseline", false, "also drive a bare Fiber handler (canned JSON, own process) with the same load, and report the ratio")
	fs.BoolVar(&c.baselineOnly, "baseline-only", false, "drive only the bare Fiber baseline (measures the generator's ceiling)")
	fs.BoolVar(&c.allowRemote, "allow-remote", false, "allow a --url that is not a loopback address (a load test writes thousands of orders)")

	fs.IntVar(&c.load.clients, "clients", defaultClients, "closed loop: concurrent clients, each with one request in flight")
	fs.Float64Var(&c.load.rate, "rate", 0, "open loop: requests per second on a fixed schedule (0: closed loop)")
	fs.IntVar(&c.load.maxOutstanding, "max-outstanding", defaultMaxOutstanding, "open loop: requests in flight at most; beyond, due requests wait and their wait counts as latency")
	fs.DurationVar(&c.load.duration, "duration", defaultDuration, "how long to send requests (0: until --orders are done)")
	fs.Int64Var(&c.load.orders, "orders", 0, "orders to drive at most, with --checkout checkouts to send at most (0: as many as --duration allows)")
	fs.DurationVar(&c.load.warmup, "warmup", 0, "first part of --duration left out of throughput and latency (still judged and verified)")
	fs.Float64Var(&c.load.mix.cancel, "cancel", 0.10, "share of orders cancelled (half from Created, half from Paid) instead of shipped")
	fs.Float64Var(&c.load.mix.ret, "return", 0.05, "share of delivered orders then returned")
	fs.Float64Var(&c.load.mix.invalid, "invalid", 0.05, "chance, after each write, of a deliberately invalid transition (must be 409)")
	fs.Float64Var(&c.load.mix.read, "read", 0.10, "chance, after each write, of a GET of the order (must show that write)")
	fs.BoolVar(&c.load.mix.createOnly, "create-only", false, "only create orders (no transitions): fills a server with live orders, e.g. --orders 1000000")
	seed := fs.Uint64("seed", 0, "random seed for the plans (0: from the clock; the seed used is reported)")
	fs.StringVar(&c.load.idPrefix, "id-prefix", "", "prefix of the order IDs (default: bench-<time>-, unique per run)")
	fs.DurationVar(&c.timeout, "timeout", defaultRequestTimeout, "per-request timeout")
	fs.BoolVar(&c.verify, "verify", true, "read every order back at the end and check its final state")
	fs.IntVar(&c.verifyWorkers, "verify-workers", 0, fmt.Sprintf("reads in flight in the verification (0: one per client or outstanding request, at most %d); fewer measure the latency of a read (after --restart: a cold one) with less queueing", verifyWorkersMax))

	fs.BoolVar(&c.checkout.enabled, "checkout", false, "drive checkouts (POST /v1/checkouts) instead of order lifecycles: set the stock of --skus SKUs, measure checkouts/s and their latency, then verify stock conservation and every checkout's status")
	fs.IntVar(&c.checkout.skus, "skus", defaultSKUs, fmt.Sprintf("--checkout: SKUs to stock and buy from (1..%d); each checkout buys 1–3 distinct ones, 1–2 units each", skusMax))
	fs.Int64Var(&c.checkout.stock, "stock", defaultStock, "--checkout: units on hand set for each SKU before the run (small values make checkouts run out of stock)")
	fs.Float64Var(&c.checkout.declineRate, "decline-rate", 0, "--checkout: share of checkouts paid with tok_decline, which the simulated gateway declines (compensated)")

	fs.StringVar(&c.jsonFile, "json", "", "write the full results as JSON to this file")
	fs.BoolVar(&c.check, "check", false, "exit 1 unless the thresholds below hold (verification failures always exit 1)")
	fs.Float64Var(&c.minTPS, "min-tps", defaultMinTPS, "--check: transitions (acknowledged creates and transitions) per second at least")
	fs.DurationVar(&c.maxP99, "max-p99", defaultMaxP99, "--check: p99 latency of all requests at most")
	fs.Float64Var(&c.maxErrorRate, "max-error-rate", defaultMaxErrorRate, "--check: share of requests with a wrong or failed answer at most")

	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected arguments: %q", fs.Args())
		fmt.Fprintln(stderr, "bench:", err)
		return c, err
	}
	c.load.seed = *seed
	c.urls = urls.urls
	c.restartKill = *restartSignal == restartSignalKill
	c.restartSettle = restartSettleDefault
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := errors.Join(c.validate(*restartSignal), c.validateCheckout(set)); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return c, err
	}
	return c, nil
}

// restartSettleDefault: orderd returns the start's garbage to the system
// right after it is ready (cmd/orderd gc.go); 3 s is ample for that, as
// the 2026-11-23 measurement "429 MiB three seconds after ready" read it.
const restartSettleDefault = 3 * time.Second

// The values of --restart-signal.
const (
	restartSignalTerm = "term"
	restartSignalKill = "kill"
)

// verifyReaders is the reads in flight in a verification after a load with
// conns clients or outstanding requests.
func (c *config) verifyReaders(conns int) int {
	if c.verifyWorkers > 0 {
		return c.verifyWorkers
	}
	return conns
}

func (c *config) validate(restartSignal string) error {
	l := &c.load
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if l.duration < 0 || l.orders < 0 || l.warmup < 0 {
		bad("--duration, --orders and --warmup must not be negative")
	}
	if l.duration == 0 && l.orders == 0 {
		bad("give --duration or --orders (or both): every run must end by itself")
	}
	if l.duration > 0 && l.warmup >= l.duration {
		bad("--warmup %v leaves nothing of --duration %v to measure", l.warmup, l.duration)
	}
	if l.clients < 1 || l.clients > clientsMax {
		bad("--clients %d: want 1..%d", l.clients, clientsMax)
	}
	if l.rate < 0 || l.rate > rateMax {
		bad("--rate %v: want 0 (closed loop) or up to %d", l.rate, rateMax)
	}
	if l.maxOutstanding < 1 || l.maxOutstanding > outstandingMax {
		bad("--max-outstanding %d: want 1..%d", l.maxOutstanding, outstandingMax)
	}
	for _, s := range []struct {
		name string
		v    float64
	}{{"cancel", l.mix.cancel}, {"return", l.mix.ret}, {"invalid", l.mix.invalid}, {"read", l.mix.read}, {"max-error-rate", c.maxErrorRate}} {
		if s.v < 0 || s.v > 1 {
			bad("--%s %v: want a share between 0 and 1", s.name, s.v)
		}
	}
	if c.verifyWorkers < 0 || c.verifyWorkers > verifyWorkersMax {
		bad("--verify-workers %d: want 0 (one per client) up to %d", c.verifyWorkers, verifyWorkersMax)
	}
	if c.timeout < requestTimeoutMin {
		bad("--timeout %v: want at least %v", c.timeout, requestTimeoutMin)
	}
	if c.baseline && c.baselineOnly {
		bad("--baseline and --baseline-only exclude each other")
	}
	if c.serverBin != "" && !c.startServer {
		bad("--server-bin needs --start-server")
	}
	if c.restart && (!c.startServer || c.baselineOnly) {
		bad("--restart needs --start-server: the harness restarts only a server it started")
	}
	switch restartSignal {
	case restartSignalTerm:
	case restartSignalKill:
		if !c.restart {
			bad("--restart-signal kill needs --restart")
		}
	default:
		bad("--restart-signal %q: want %s or %s", restartSignal, restartSignalTerm, restartSignalKill)
	}
	if c.serverPID != 0 && c.startServer {
		bad("--server-pid is for --url; with --start-server the harness knows the PID")
	}
	errs = append(errs, c.validateURLs()...)
	if l.idPrefix == "" {
		// Unique per run, so repeated runs against one server never collide
		// with orders of an earlier run; base 36 keeps it short.
		l.idPrefix = "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	}
	return errors.Join(errs...)
}

// validateURLs checks --url. With several URLs every one must get at least
// one client, slot and verification reader, and what is measured per server
// (--server-pid) would be one node's share labelled as the whole.
func (c *config) validateURLs() []error {
	n := len(c.urls)
	if n > 1 && (c.startServer || c.baselineOnly) {
		starter := "--start-server"
		if !c.startServer {
			starter = "--baseline-only"
		}
		// Nothing else is checked: the URLs would not be used.
		return []error{fmt.Errorf("%d URLs given, but %s starts one server and loads only it: give one --url (or none), or drop %s to load running nodes", n, starter, starter)}
	}
	if c.startServer || c.baselineOnly {
		return nil
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if n > urlsMax {
		bad("%d URLs: want at most %d", n, urlsMax)
	}
	seen := make(map[string]bool, n)
	for _, u := range c.urls {
		if seen[u] {
			bad("--url %q given twice: its stats would be split over two entries", u)
		}
		seen[u] = true
		if !c.allowRemote {
			if err := requireLoopback(u); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if n < 2 {
		return errs
	}
	if l := c.load; !l.openLoop() && l.clients < n {
		bad("--clients %d leaves some of the %d URLs without a client: want at least one per URL", l.clients, n)
	}
	if l := c.load; l.openLoop() && l.maxOutstanding < n {
		bad("--max-outstanding %d leaves some of the %d URLs without a slot: want at least one per URL", l.maxOutstanding, n)
	}
	if c.verifyWorkers > 0 && c.verifyWorkers < n {
		bad("--verify-workers %d leaves some of the %d URLs unread: want at least one per URL", c.verifyWorkers, n)
	}
	if c.serverPID != 0 {
		bad("--server-pid watches one process: with %d URLs it would report one node's CPU as the cluster's", n)
	}
	return errs
}

// requireLoopback refuses a target off this machine: a load test creates
// thousands of orders, which nobody should do to a real server by accident.
func requireLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("--url %q: %w", raw, err)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--url %q is not a loopback address; add --allow-remote if you mean it", raw)
}

// checkoutConfig is --checkout's workload.
type checkoutConfig struct {
	enabled     bool
	skus        int     // SKUs stocked and bought from
	stock       int64   // units on hand of each SKU at the start
	declineRate float64 // share of checkouts paid with the declined token
}

// validateCheckout checks --checkout and refuses what it cannot be combined
// with; set holds the flags given on the command line, so that a lifecycle
// share left at its default is not taken for a request.
func (c *config) validateCheckout(set map[string]bool) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	ch := c.checkout
	if !ch.enabled {
		for _, name := range []string{"skus", "stock", "decline-rate"} {
			if set[name] {
				bad("--%s needs --checkout", name)
			}
		}
		return errors.Join(errs...)
	}
	if ch.skus < 1 || ch.skus > skusMax {
		bad("--skus %d: want 1..%d", ch.skus, skusMax)
	}
	if ch.stock < 0 || ch.stock > stockMax {
		bad("--stock %d: want 0..%d", ch.stock, stockMax)
	}
	if ch.declineRate < 0 || ch.declineRate > 1 {
		bad("--decline-rate %v: want a share between 0 and 1", ch.declineRate)
	}
	for _, name := range []string{"create-only", "cancel", "return", "invalid", "read"} {
		if set[name] {
			bad("--%s shapes the order lifecycle load: --checkout runs its own workload (--skus, --stock, --decline-rate)", name)
		}
	}
	if c.baseline || c.baselineOnly {
		bad("--baseline and --baseline-only drive a bare Fiber handler that answers no checkouts: not with --checkout")
	}
	if c.restart {
		bad("--restart verifies order lifecycles after a restart: not with --checkout")
	}
	if c.load.rate > 0 {
		bad("--rate (open loop): --checkout runs a closed loop only, with --clients")
	}
	for _, name := range []string{"check", "min-tps", "max-p99", "max-error-rate"} {
		if set[name] {
			bad("--%s: --check's thresholds are for transitions/s; --checkout reports checkouts/s with no thresholds (its verification still exits 1)", name)
		}
	}
	return errors.Join(errs...)
}
