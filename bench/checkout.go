package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// --checkout drives POST /v1/checkouts in a closed loop. Each checkout
// buys 1 to checkoutSKUsMax distinct SKUs, 1 to checkoutQuantityMax units
// each; the harness knows what every basket took, which is what lets it
// check after the run that the stock was conserved.
const (
	checkoutSKUsMax     = 3
	checkoutQuantityMax = 2
	// A unit price in minor units, drawn once per SKU: the price plays no
	// part in the saga, but a real basket has one.
	unitPriceMin = 100
	unitPriceMax = 9_999
)

// How long the harness waits for one checkout's end. A 503 (busy, not
// ready, journal unavailable, outcome unknown) is asked again with the same
// Idempotency-Key after its Retry-After, and a 202 is polled, until the
// checkout ends or checkoutPatience has passed: above orderd's 5 s request
// deadline plus a payment gateway's timeout, several times over. Past it
// the checkout's outcome is unknown, and the stock verification allows for
// it either way.
const (
	checkoutPatience = 60 * time.Second
	// checkoutTriesMax bounds the POSTs of one checkout: a server that
	// answers 503 to everything must not hold a client for the whole patience.
	checkoutTriesMax = 10
	// retryPauseMin is the pause when Retry-After is absent or 0;
	// retryPauseMax caps what a Retry-After may make a client wait.
	retryPauseMin = 20 * time.Millisecond
	retryPauseMax = 10 * time.Second
	// Polls of a 202 start quickly (most sagas end just after the request
	// deadline) and back off to pollPauseMax.
	pollPauseMin = 10 * time.Millisecond
	pollPauseMax = 500 * time.Millisecond
)

// checkoutItem is one line of a basket.
type checkoutItem struct {
	sku       string
	quantity  int64
	unitPrice int64
}

// checkoutWorkload is the SKUs of a run and how its baskets are drawn.
type checkoutWorkload struct {
	prefix      string
	skus        []string
	prices      []int64
	stock       int64
	declineRate float64
}

// newCheckoutWorkload names cfg's SKUs with the run's ID prefix, so that
// no two runs against one server share a SKU, and prices them.
func newCheckoutWorkload(cfg config) *checkoutWorkload {
	w := &checkoutWorkload{prefix: cfg.load.idPrefix, stock: cfg.checkout.stock, declineRate: cfg.checkout.declineRate}
	rng := rand.New(rand.NewPCG(cfg.load.seed, 1<<32)) // a stream no client uses
	for i := range cfg.checkout.skus {
		w.skus = append(w.skus, cfg.load.idPrefix+"sku-"+strconv.Itoa(i+1))
		w.prices = append(w.prices, unitPriceMin+rng.Int64N(unitPriceMax-unitPriceMin+1))
	}
	return w
}

// newTrack draws checkout n, sent by client through URL lane.
func (w *checkoutWorkload) newTrack(n int64, client, lane int, rng *rand.Rand) *checkoutTrack {
	count := 1 + rng.IntN(min(checkoutSKUsMax, len(w.skus)))
	t := &checkoutTrack{
		key:      w.prefix + "co-" + strconv.FormatInt(n, 10),
		customer: w.prefix + "cust-" + strconv.Itoa(client),
		declined: rng.Float64() < w.declineRate,
		lane:     lane,
	}
	for _, i := range rng.Perm(len(w.skus))[:count] {
		t.items = append(t.items, checkoutItem{sku: w.skus[i], quantity: 1 + rng.Int64N(checkoutQuantityMax), unitPrice: w.prices[i]})
	}
	return t
}

// checkoutEnd is how a checkout ended, as far as the harness knows.
type checkoutEnd uint8

const (
	endCompleted   checkoutEnd = iota + 1 // status completed: its units stay reserved
	endCompensated                        // status compensated (declined, or a step failed): nothing held
	endOutOfStock                         // 409 out-of-stock: compensated at the reservation
	endRefused                            // another 4xx: nothing was done (and the harness sent a valid request)
	endUnknown                            // no final answer: its units may or may not be held
)

func (e checkoutEnd) String() string {
	switch e {
	case endCompleted:
		return "completed"
	case endCompensated:
		return "compensated"
	case endOutOfStock:
		return "out_of_stock"
	case endRefused:
		return "refused"
	case endUnknown:
		return "unknown"
	}
	return "none"
}

// final reports whether the server gave the checkout an end.
func (e checkoutEnd) final() bool {
	return e == endCompleted || e == endCompensated || e == endOutOfStock
}

// checkoutTrack is one checkout: what was asked, and what the answers said.
// One client sends it and fills it in; the verification reads it after.
type checkoutTrack struct {
	key      string // its Idempotency-Key, the same on every retry
	customer string
	items    []checkoutItem
	declined bool // paid with tokenDeclined
	lane     int  // index of its URL

	end     checkoutEnd
	id      string         // the checkout's ID, once an answer named it
	status  checkoutStatus // completed or compensated, as answered (also for a 409)
	orderID string
	tries   int  // POSTs sent
	polled  bool // answered 202, then read until it ended
	// problem says what was wrong, if anything; wrong marks an answer
	// that contradicts the contract (not merely a failing server).
	problem string
	wrong   bool
}

func (t *checkoutTrack) token() string {
	if t.declined {
		return tokenDeclined
	}
	return tokenApproved
}

func (t *checkoutTrack) hasSKU(sku string) bool {
	return slices.ContainsFunc(t.items, func(it checkoutItem) bool { return it.sku == sku })
}

// checkoutSender is a client's way to the server.
type checkoutSender interface {
	postCheckout(key string, body []byte) checkoutAnswer
	getCheckout(path string) checkoutAnswer
}

var _ checkoutSender = (*apiClient)(nil)

// checkoutLoad is one checkout run in progress.
type checkoutLoad struct {
	cfg    loadConfig
	w      *checkoutWorkload
	send   []checkoutSender // one per URL
	rec    *checkoutRecorder
	stopAt time.Time // zero without a duration
	seq    atomic.Int64
}

// checkoutRun is what a checkout run produced.
type checkoutRun struct {
	start       time.Time
	loadAvg     float64
	measureFrom time.Time
	end         time.Time
	rec         *checkoutRecorder
	tracks      []*checkoutTrack // every checkout sent
	interrupted bool
}

func (r *checkoutRun) window() time.Duration {
	if r.end.Before(r.measureFrom) {
		return 0
	}
	return r.end.Sub(r.measureFrom)
}

// runCheckoutLoad runs cfg.clients clients, each sending one checkout at a
// time through URL i mod n and waiting for its end (retries and polls
// included) before the next, until the duration is over, cfg.orders
// checkouts are sent or ctx ends. A checkout in progress at the end is
// finished, never abandoned: its end is what the verification needs.
func runCheckoutLoad(ctx context.Context, cfg loadConfig, w *checkoutWorkload, send []checkoutSender) *checkoutRun {
	start := time.Now()
	l := &checkoutLoad{cfg: cfg, w: w, send: send, rec: newCheckoutRecorder(start.Add(cfg.warmup), len(send))}
	if cfg.duration > 0 {
		l.stopAt = start.Add(cfg.duration)
	}
	res := &checkoutRun{start: start, loadAvg: loadAverage(), measureFrom: l.rec.measureFrom, rec: l.rec}
	perClient := make([][]*checkoutTrack, cfg.clients)
	var wg sync.WaitGroup
	for c := range cfg.clients {
		wg.Go(func() {
			lane := c % len(send)
			rng := rand.New(rand.NewPCG(cfg.seed, uint64(c)))
			for ctx.Err() == nil && (l.stopAt.IsZero() || time.Now().Before(l.stopAt)) {
				n := l.seq.Add(1)
				if cfg.orders > 0 && n > cfg.orders {
					return
				}
				t := w.newTrack(n, c, lane, rng)
				l.exec(ctx, t)
				perClient[c] = append(perClient[c], t)
			}
		})
	}
	wg.Wait()
	for _, ts := range perClient {
		res.tracks = append(res.tracks, ts...)
	}
	res.end = l.rec.lastDone
	if res.end.IsZero() {
		res.end = res.measureFrom
	}
	res.interrupted = ctx.Err() != nil
	return res
}

// exec sends checkout t until it ends (or patience runs out), judges the
// end and records it.
func (l *checkoutLoad) exec(ctx context.Context, t *checkoutTrack) {
	began := time.Now()
	deadline := began.Add(checkoutPatience)
	send := l.send[t.lane]
	body := checkoutRequestBody(t.customer, t.items, t.token())
	var statuses []int
	var a checkoutAnswer
	for {
		a = send.postCheckout(t.key, body)
		t.tries++
		statuses = append(statuses, a.status)
		if !retryable(a.status) || t.tries == checkoutTriesMax || !pause(ctx, deadline, retryPause(a.retryAfter)) {
			break
		}
	}
	gaveUp := false
	if a.status == http.StatusAccepted {
		t.polled = true
		a, gaveUp = l.poll(ctx, send, t, a, deadline, &statuses)
	}
	t.judge(a, gaveUp)
	l.rec.add(t, began, time.Now(), statuses)
}

// poll reads a checkout answered 202 until it ends; gaveUp is true when
// patience or ctx ran out first.
func (l *checkoutLoad) poll(ctx context.Context, send checkoutSender, t *checkoutTrack, accepted checkoutAnswer, deadline time.Time, statuses *[]int) (checkoutAnswer, bool) {
	t.id = accepted.body.ID
	path := pollPath(accepted)
	if path == "" {
		return accepted, false // judged: a 202 must say where to look
	}
	wait := pollPauseMin
	for {
		if !pause(ctx, deadline, wait) {
			return accepted, true
		}
		a := send.getCheckout(path)
		*statuses = append(*statuses, a.status)
		switch {
		case a.status == http.StatusOK && a.decoded && !isFinished(a.body.Status):
			wait = min(2*wait, pollPauseMax)
		case retryable(a.status):
			wait = retryPause(a.retryAfter)
		default:
			return a, false
		}
	}
}

// pollPath is where a 202's checkout is read: its Location (a path, or an
// absolute URL whose path is taken), else the collection and its ID.
func pollPath(a checkoutAnswer) string {
	if loc := a.location; loc != "" {
		if strings.HasPrefix(loc, "/") {
			return loc
		}
		if u, err := url.Parse(loc); err == nil && u.Path != "" {
			return u.RequestURI()
		}
	}
	if a.decoded && a.body.ID != "" {
		return checkoutsPath + "/" + url.PathEscape(a.body.ID)
	}
	return ""
}

// retryable: the contract's "ask again with the same Idempotency-Key"
// answers. 429 too: a rate-limited request was not served at all.
func retryable(status int) bool {
	return status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests
}

func retryPause(retryAfter time.Duration) time.Duration {
	return min(max(retryAfter, retryPauseMin), retryPauseMax)
}

// pause waits d unless that would pass deadline or ctx ends first; it
// reports whether the caller may go on.
func pause(ctx context.Context, deadline time.Time, d time.Duration) bool {
	if time.Now().Add(d).After(deadline) {
		return false
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func isFinished(status checkoutStatus) bool {
	return status == checkoutCompleted || status == checkoutCompensated
}

// judge sets how t ended from a, its last answer (to the POST, or to the
// last poll of a 202).
func (t *checkoutTrack) judge(a checkoutAnswer, gaveUp bool) {
	switch {
	case gaveUp:
		t.end = endUnknown
		t.problem = fmt.Sprintf("checkout %s (%s): still not ended after polling for %v", t.key, t.id, checkoutPatience)
	case a.status == 0:
		t.end = endUnknown
		t.problem = fmt.Sprintf("checkout %s: %v", t.key, a.err)
	case retryable(a.status) || a.status >= 500:
		t.end = endUnknown
		t.problem = fmt.Sprintf("checkout %s: status %d after %d tries", t.key, a.status, t.tries)
	case a.status == http.StatusConflict:
		t.judgeOutOfStock(a)
	case a.status == http.StatusCreated && !t.polled, a.status == http.StatusOK && t.polled:
		t.judgeEnded(a)
	case a.status == http.StatusAccepted:
		t.end = endUnknown
		t.fail(true, "checkout %s: 202 with neither a Location nor an id to poll", t.key)
	default:
		t.end = endRefused
		t.fail(true, "checkout %s: status %d, want 201, 202 or 409", t.key, a.status)
	}
}

func (t *checkoutTrack) fail(wrong bool, format string, args ...any) {
	t.problem, t.wrong = fmt.Sprintf(format, args...), wrong
}

// judgeOutOfStock checks a 409: the out-of-stock problem, naming the
// checkout and SKUs of this basket.
func (t *checkoutTrack) judgeOutOfStock(a checkoutAnswer) {
	b := a.body
	t.end, t.id, t.status = endOutOfStock, b.CheckoutID, checkoutCompensated
	switch {
	case !a.decoded || b.Type != problemOutOfStock:
		t.end = endRefused
		t.fail(true, "checkout %s: 409 of type %q, want %s", t.key, b.Type, problemOutOfStock)
	case b.CheckoutID == "":
		t.fail(true, "checkout %s: 409 out-of-stock without checkout_id", t.key)
	case len(b.OutOfStock) == 0:
		t.fail(true, "checkout %s: 409 out-of-stock naming no SKU", t.key)
	default:
		for _, sku := range b.OutOfStock {
			if !t.hasSKU(sku) {
				t.fail(true, "checkout %s: 409 out-of-stock names %q, which it did not buy", t.key, sku)
			}
		}
	}
}

// judgeEnded checks a checkout that ended (201, or 200 to a poll).
func (t *checkoutTrack) judgeEnded(a checkoutAnswer) {
	b := a.body
	if !a.decoded || b.ID == "" || !isFinished(b.Status) || (t.id != "" && b.ID != t.id) {
		t.end = endUnknown
		t.fail(true, "checkout %s: answered %d with id %q status %q, want a completed or compensated checkout", t.key, a.status, b.ID, b.Status)
		return
	}
	t.id, t.status, t.orderID = b.ID, b.Status, b.OrderID
	if b.Status == checkoutCompensated {
		t.end = endCompensated
		if !t.declined {
			// Not a lie: some step failed and was undone, but the
			// approved token and the stock should have made it complete.
			t.fail(false, "checkout %s: compensated though paid with %s", t.key, tokenApproved)
		}
		return
	}
	t.end = endCompleted
	switch {
	case t.declined:
		t.fail(true, "checkout %s: completed though paid with %s", t.key, tokenDeclined)
	case b.OrderID == "":
		t.fail(true, "checkout %s: completed without an order_id", t.key)
	}
}

// checkoutRecorder collects what every checkout did; one mutex, as in
// recorder: a checkout is tens of microseconds at least, so it never
// contends.
type checkoutRecorder struct {
	mu          sync.Mutex
	measureFrom time.Time
	lastDone    time.Time

	// latency is of whole checkouts with a final answer, from the first
	// POST to the answer that ended it (retries and polls included).
	latency          *latencyHist
	measuredEnded    int64 // checkouts with a final answer, in the window
	measuredComplete int64
	measuredRequests int64 // HTTP requests of the checkouts in the window

	checkouts int64 // every checkout, warm-up included
	requests  int64
	ends      map[checkoutEnd]int64
	declined  int64 // compensated checkouts paid with tokenDeclined
	polled    int64
	retried   int64 // POSTs asked again after a 503 or 429
	statuses  map[int]int64
	wrong     int64
	failures  failureLog

	byURL []*checkoutURLStats
}

type checkoutURLStats struct {
	checkouts     int64 // warm-up included
	measuredEnded int64
	errors        int64
	latency       *latencyHist
}

func newCheckoutRecorder(measureFrom time.Time, urls int) *checkoutRecorder {
	r := &checkoutRecorder{measureFrom: measureFrom, latency: newLatencyHist(),
		ends: make(map[checkoutEnd]int64), statuses: make(map[int]int64)}
	for range urls {
		r.byURL = append(r.byURL, &checkoutURLStats{latency: newLatencyHist()})
	}
	return r
}

// add records checkout t, sent at began and ended at done, whose requests
// were answered with statuses (0: no answer).
func (r *checkoutRecorder) add(t *checkoutTrack, began, done time.Time, statuses []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.byURL[t.lane]
	r.checkouts++
	u.checkouts++
	r.requests += int64(len(statuses))
	r.retried += int64(t.tries - 1)
	for _, s := range statuses {
		r.statuses[s]++
	}
	r.ends[t.end]++
	if t.end == endCompensated && t.declined {
		r.declined++
	}
	if t.polled {
		r.polled++
	}
	if t.wrong {
		r.wrong++
	}
	if t.problem != "" {
		r.failures.add(t.problem)
		u.errors++
	}
	if began.Before(r.measureFrom) {
		return
	}
	r.measuredRequests += int64(len(statuses))
	if !t.end.final() {
		return
	}
	r.measuredEnded++
	u.measuredEnded++
	if t.end == endCompleted {
		r.measuredComplete++
	}
	r.latency.record(done.Sub(began))
	u.latency.record(done.Sub(began))
	if done.After(r.lastDone) {
		r.lastDone = done
	}
}
