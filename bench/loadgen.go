package main

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// loadConfig is one run's load, the same for orderd and the baseline.
type loadConfig struct {
	clients        int           // closed loop: concurrent clients, each with one request in flight
	rate           float64       // open loop when > 0: requests per second on a fixed schedule
	maxOutstanding int           // open loop: requests in flight at most
	duration       time.Duration // 0: until orders are done
	orders         int64         // 0: until the duration is over
	warmup         time.Duration // excluded from throughput and latency
	mix            mix
	seed           uint64
	idPrefix       string
}

func (c loadConfig) openLoop() bool { return c.rate > 0 }

// sender sends one step of an order; the client and the tests' fakes
// implement it.
type sender interface {
	do(s step, id string) response
}

// runResult is what one run produced.
type runResult struct {
	start       time.Time
	loadAvg     float64 // the machine's 1-minute load average at the start
	measureFrom time.Time
	end         time.Time // the last measured completion, or start if none
	rec         *recorder
	tracks      []*orderTrack // every order whose create was sent
	// Open loop only: requests due before the end, and those sent. The rest
	// were never sent because the generator had fallen behind.
	due, sent   int64
	interrupted bool
}

// window is the measured duration.
func (r *runResult) window() time.Duration {
	if r.end.Before(r.measureFrom) {
		return 0
	}
	return r.end.Sub(r.measureFrom)
}

// load is one run in progress.
type load struct {
	cfg      loadConfig
	send     []sender // one per URL
	judge    bool     // false for the baseline, whose canned answers mean nothing
	rec      *recorder
	start    time.Time
	stopAt   time.Time // zero without a duration
	orderSeq atomic.Int64
}

// lane is the way of client (or open-loop slot) i to the server: URL
// i mod n, so the clients are spread round-robin over the URLs.
type lane struct {
	send sender
	url  int // index of the URL, for its stats
}

func (l *load) lane(i int) lane {
	k := i % len(l.send)
	return lane{send: l.send[k], url: k}
}

// runLoad drives cfg's load through send (one sender per URL) until the duration is over, the
// order budget is spent or ctx ends, whichever comes first. Requests in
// flight at the end are completed, never abandoned: an abandoned write would
// leave its outcome unknown and weaken the final verification.
func runLoad(ctx context.Context, cfg loadConfig, send []sender, judge bool) *runResult {
	start := time.Now()
	l := &load{cfg: cfg, send: send, judge: judge, start: start, rec: newRecorder(start.Add(cfg.warmup), len(send))}
	if cfg.duration > 0 {
		l.stopAt = start.Add(cfg.duration)
	}
	res := &runResult{start: start, loadAvg: loadAverage(), measureFrom: l.rec.measureFrom, rec: l.rec}
	if cfg.openLoop() {
		res.tracks, res.due, res.sent = l.runOpen(ctx)
	} else {
		res.tracks = l.runClosed(ctx)
	}
	res.end = l.rec.lastDone
	if res.end.IsZero() {
		res.end = res.measureFrom
	}
	res.interrupted = ctx.Err() != nil
	return res
}

// stopping reports whether no new request may be sent.
func (l *load) stopping(ctx context.Context, now time.Time) bool {
	return ctx.Err() != nil || (!l.stopAt.IsZero() && !now.Before(l.stopAt))
}

// newOrder starts the next order, or returns nil when the budget is spent.
func (l *load) newOrder(rng *rand.Rand) *orderTrack {
	n := l.orderSeq.Add(1)
	if l.cfg.orders > 0 && n > l.cfg.orders {
		return nil
	}
	return newOrderTrack(l.cfg.idPrefix+strconv.FormatInt(n, 10), l.cfg.mix.plan(rng))
}

// exec sends t's next step through ln, judges the answer and records it.
func (l *load) exec(ln lane, t *orderTrack, s step, intended time.Time) {
	sent := time.Now()
	resp := ln.send.do(s, t.id)
	done := time.Now()
	var (
		oc     outcome
		detail string
	)
	if l.judge {
		oc, detail = t.observe(resp)
	} else {
		oc = t.observeBlind(resp)
	}
	l.rec.add(sample{url: ln.url, kind: s.kind, intended: intended, sent: sent, done: done, status: resp.status, outcome: oc, detail: detail})
}

// runClosed runs cfg.clients clients, each driving one order at a time
// through its whole plan, each request sent as soon as the previous answer
// is in. A client sends every request through its own lane, so each order
// stays on one URL.
func (l *load) runClosed(ctx context.Context) []*orderTrack {
	perClient := make([][]*orderTrack, l.cfg.clients)
	var wg sync.WaitGroup
	for c := range l.cfg.clients {
		wg.Go(func() {
			ln := l.lane(c)
			rng := rand.New(rand.NewPCG(l.cfg.seed, uint64(c)))
			for !l.stopping(ctx, time.Now()) {
				t := l.newOrder(rng)
				if t == nil {
					return
				}
				for s, ok := t.nextStep(); ok; s, ok = t.nextStep() {
					now := time.Now()
					if l.stopping(ctx, now) {
						break
					}
					l.exec(ln, t, s, now)
				}
				if t.next > 0 { // its create was sent: verify it
					perClient[c] = append(perClient[c], t)
				}
			}
		})
	}
	wg.Wait()
	var all []*orderTrack
	for _, ts := range perClient {
		all = append(all, ts...)
	}
	return all
}

// openJob is one scheduled request.
type openJob struct {
	t        *orderTrack
	s        step
	intended time.Time
}

// runOpen sends requests on a fixed schedule, the i-th due at
// start + i/rate whatever happened to earlier ones. Each request goes to an
// order with nothing in flight (so every order's requests stay in sequence),
// or to a new order when none is idle. At most cfg.maxOutstanding requests
// are in flight; when all are busy the due requests wait in the scheduler and
// are sent as soon as a slot frees, still measured from the time they were
// due. So a server that stalls shows the stall in every request it delayed,
// not just in the one it held (what wrk2 calls coordinated omission), and the
// backlog costs no memory: it is a count of due times, not a queue. Each
// slot sends through its own lane, so an order's requests may go to
// different URLs: with a cluster, any node answers for any order.
func (l *load) runOpen(ctx context.Context) (tracks []*orderTrack, due, sent int64) {
	jobs := make(chan openJob)
	// Workers hand orders back here after each request; the scheduler drains
	// it whenever it waits, so workers never block on it for long.
	back := make(chan *orderTrack, l.cfg.maxOutstanding)
	var wg sync.WaitGroup
	for slot := range l.cfg.maxOutstanding {
		wg.Go(func() {
			ln := l.lane(slot)
			for j := range jobs {
				l.exec(ln, j.t, j.s, j.intended)
				back <- j.t
			}
		})
	}
	go func() {
		wg.Wait()
		close(back)
	}()

	var stopTimer <-chan time.Time
	if !l.stopAt.IsZero() {
		tm := time.NewTimer(time.Until(l.stopAt))
		defer tm.Stop()
		stopTimer = tm.C
	}
	sch := scheduler{back: back}
	rng := rand.New(rand.NewPCG(l.cfg.seed, 0))
	interval := float64(time.Second) / l.cfg.rate
	// One timer for every wait: at 10,000 requests/s a timer per request
	// would be garbage the generator does not need to make.
	pace := time.NewTimer(time.Hour)
	defer pace.Stop()
	budgetSpent := false
loop:
	for i := int64(0); ; i++ {
		intended := l.start.Add(time.Duration(float64(i) * interval))
		if !l.stopAt.IsZero() && !intended.Before(l.stopAt) {
			break
		}
		if wait := time.Until(intended); wait > 0 {
			pace.Reset(wait)
			select {
			case <-pace.C:
			case <-ctx.Done():
				break loop
			}
		}
		var (
			t     *orderTrack
			fresh bool // t is new: verify it once its create is sent
		)
		for t == nil {
			sch.drain()
			if t = sch.pop(); t != nil {
				break
			}
			if !budgetSpent {
				if t = l.newOrder(rng); t != nil {
					fresh = true
					sch.active++
					break
				}
				budgetSpent = true
			}
			if sch.active == 0 {
				break loop // every order of the budget is done
			}
			// Every live order has a request in flight: wait for one.
			select {
			case b := <-back:
				sch.accept(b)
			case <-stopTimer:
				break loop
			case <-ctx.Done():
				break loop
			}
		}
		s, _ := t.nextStep() // queued orders always have a next step
		for dispatched := false; !dispatched; {
			select {
			case jobs <- openJob{t: t, s: s, intended: intended}:
				dispatched = true
				sent++
				if fresh {
					tracks = append(tracks, t)
				}
			case b := <-back:
				sch.accept(b)
			case <-stopTimer:
				break loop
			case <-ctx.Done():
				break loop
			}
		}
	}
	close(jobs)
	for range back { // until every worker is done
	}
	if !l.stopAt.IsZero() && !budgetSpent {
		due = int64(float64(l.stopAt.Sub(l.start)) / interval)
		if float64(due)*interval < float64(l.stopAt.Sub(l.start)) {
			due++ // i = 0 is due at the start
		}
	} else {
		due = sent
	}
	return tracks, due, sent
}

// scheduler holds the orders that have no request in flight and a next step
// to send, oldest first. Only the scheduling goroutine touches it.
type scheduler struct {
	back   <-chan *orderTrack
	idle   []*orderTrack
	active int // orders started and not finished
}

// accept takes an order back from a worker.
func (s *scheduler) accept(t *orderTrack) {
	if _, ok := t.nextStep(); ok {
		s.idle = append(s.idle, t)
		return
	}
	s.active--
}

// drain accepts every order already handed back.
func (s *scheduler) drain() {
	for {
		select {
		case t, ok := <-s.back:
			if !ok {
				return
			}
			s.accept(t)
		default:
			return
		}
	}
}

func (s *scheduler) pop() *orderTrack {
	if len(s.idle) == 0 {
		return nil
	}
	t := s.idle[0]
	s.idle = s.idle[1:]
	return t
}
