package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderd/orderd/order"
)

// Payment deadlines (order/deadline.go) fire from one structure outside the
// actors: a min-heap of (due, order ID, version) served by one goroutine. No
// OS timer or goroutine exists per order, an order needs no live actor to be
// cancelled on time (recovered orders get one only when their deadline fires),
// and the cost of a pending deadline is one heap element.
//
// Firing is the same write path as a client's request: Execute with a cancel
// command pinned to the version the deadline was set at (ExpectedVersion) and
// keyed by it (Idempotency-Key "payment-timeout:<version>"). So a pay that
// wins the race makes the firing a 412 that changes nothing, a firing that
// wins makes the pay a 409, and a second firing of the same deadline is an
// idempotent replay: at least once, effect exactly once.
const (
	// PrincipalTimer is who the log names as the author of a timeout.
	PrincipalTimer = "system:timer"
	// ReasonPaymentTimeout is the reason a timeout's cancellation carries.
	ReasonPaymentTimeout = "payment-timeout"

	// timerFireConcurrency bounds the cancellations in flight at once, so
	// that a burst of expiring orders (a restart after a long outage) is
	// written in group commits without flooding the journal's queue or
	// crowding out clients.
	timerFireConcurrency = 16
	// timerBatchMax bounds the deadlines taken off the heap per round, so
	// that a round's memory is bounded however many are due.
	timerBatchMax = 1024
	// timerTickMax is the longest the loop sleeps without reading the clock
	// again: a clock stepped forward (NTP, a test's fake clock) is noticed
	// within it. It is the "fires within" of the README's guarantee, plus
	// the time to write the cancellation.
	timerTickMax = time.Second
	// timerRetryDelay is when a firing that failed for a passing reason
	// (busy order, unwritable journal, unknown outcome) is first tried
	// again. Each round in which firings fail and none succeeds doubles it,
	// up to timerRetryDelayMax, and a success brings it back: a long
	// outage is not retried (and logged) every second for every deadline
	// that came due during it.
	timerRetryDelay    = time.Second
	timerRetryDelayMax = time.Minute
	// timerFireTimeout bounds one cancellation like a client's request.
	timerFireTimeout = 5 * time.Second
)

// deadline is one pending payment deadline: 32 bytes, the ID sharing its
// bytes with the registry's copy.
type deadline struct {
	due     int64 // Unix nanoseconds
	version uint64
	id      string
}

// timers is the min-heap by due time. Entries are never removed early: an
// order that is paid, cancelled or rescheduled leaves its entry to be
// dropped when it comes due, found stale by its version (a check against the
// published snapshot, with no actor involved). Stale entries are bounded by
// the deadlines set within PaymentTimeoutMax.
type timers struct {
	mu   sync.Mutex
	heap []deadline

	wake    chan struct{} // capacity 1: a new earliest deadline
	stop    chan struct{}
	done    chan struct{}
	started sync.Once
	stopped sync.Once

	// fireMu makes rounds of firing one at a time, so that a caller of
	// FireDueDeadlines returns only once every due deadline, including
	// those the loop took first, has been carried out.
	fireMu sync.Mutex
	// retryDelay is the wait before failed firings are tried again
	// (timerRetryDelay). Guarded by fireMu.
	retryDelay time.Duration
	// scannedUntil is the due time (Unix nanoseconds) up to which the state
	// store's deadlines are in the heap (store.go); 0 before the first scan.
	scannedUntil atomic.Int64
}

func newTimers() *timers {
	return &timers{wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// poke wakes the loop for a round now.
func (t *timers) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

func (t *timers) push(d deadline) {
	t.mu.Lock()
	t.heap = append(t.heap, d)
	i := len(t.heap) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if t.heap[parent].due <= t.heap[i].due {
			break
		}
		t.heap[parent], t.heap[i] = t.heap[i], t.heap[parent]
		i = parent
	}
	earliest := i == 0
	t.mu.Unlock()
	if earliest {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// pushAll adds many deadlines at once: appended and heapified in O(n),
// where pushing a million recovered deadlines one by one in the registry's
// random order cost a sift-up each.
func (t *timers) pushAll(ds []deadline) {
	if len(ds) == 0 {
		return
	}
	t.mu.Lock()
	t.heap = append(t.heap, ds...)
	for i := len(t.heap)/2 - 1; i >= 0; i-- {
		t.siftDown(i)
	}
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// popDue takes up to max deadlines due at now, earliest first, and returns
// the next due time left (0 when the heap is empty).
func (t *timers) popDue(now int64, max int) ([]deadline, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var due []deadline
	for len(t.heap) > 0 && t.heap[0].due <= now && len(due) < max {
		due = append(due, t.heap[0])
		last := len(t.heap) - 1
		t.heap[0] = t.heap[last]
		t.heap[last] = deadline{} // drop the ID reference
		t.heap = t.heap[:last]
		t.siftDown(0)
	}
	if len(t.heap) == 0 {
		// Let a heap that once held a burst shrink back.
		t.heap = nil
		return due, 0
	}
	return due, t.heap[0].due
}

func (t *timers) siftDown(i int) {
	n := len(t.heap)
	for {
		least, l, r := i, 2*i+1, 2*i+2
		if l < n && t.heap[l].due < t.heap[least].due {
			least = l
		}
		if r < n && t.heap[r].due < t.heap[least].due {
			least = r
		}
		if least == i {
			return
		}
		t.heap[i], t.heap[least] = t.heap[least], t.heap[i]
		i = least
	}
}

func (t *timers) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.heap)
}

// scheduleDeadline registers o's payment deadline, if it waits for payment.
func (s *System) scheduleDeadline(o order.Order) {
	if d, ok := deadlineOf(o); ok && s.heapTakes(d) {
		s.timers.push(d)
	}
}

func deadlineOf(o order.Order) (deadline, bool) {
	if o.State != order.InitialState || o.PaymentDueAt.IsZero() {
		return deadline{}, false
	}
	return deadline{due: o.PaymentDueAt.UnixNano(), version: o.Version, id: o.ID}, true
}

// scheduleRecovered registers the deadline of every recovered order still in
// Created; one that passed while the server was down fires in the loop's
// first round.
func (s *System) scheduleRecovered() {
	var due []deadline
	for _, sh := range s.shards {
		sh.mu.RLock()
		for _, e := range sh.orders {
			if d, ok := e.published.Load().deadline(); ok {
				due = append(due, d)
			}
		}
		sh.mu.RUnlock()
	}
	s.timers.pushAll(due)
}

// startTimers starts the loop once; Close stops it.
func (s *System) startTimers() {
	s.timers.started.Do(func() { go s.runTimers() })
}

// stopTimers stops the loop, if it runs, and waits for its round to end.
func (s *System) stopTimers() {
	s.timers.stopped.Do(func() { close(s.timers.stop) })
	started := true
	s.timers.started.Do(func() { started = false })
	if started {
		<-s.timers.done
	}
}

// runTimers sleeps until the earliest deadline (at most timerTickMax), fires
// what is due, and again, until stopped.
func (s *System) runTimers() {
	defer close(s.timers.done)
	sleep := time.NewTimer(0)
	defer sleep.Stop()
	for {
		select {
		case <-s.timers.stop:
			return
		case <-s.timers.wake:
		case <-sleep.C:
		}
		next := s.fireDue()
		wait := timerTickMax
		if next != 0 {
			wait = min(max(time.Duration(next-s.now().UnixNano()), 0), timerTickMax)
		}
		sleep.Reset(wait)
	}
}

// FireDueDeadlines carries out every deadline due at the System's clock and
// returns once they are written; the loop does the same on its own. Tests
// with a fake clock call it after moving the clock. It returns how many
// orders it cancelled.
func (s *System) FireDueDeadlines() int {
	s.timers.fireMu.Lock()
	n := s.fireRounds()
	s.timers.fireMu.Unlock()
	return n
}

// fireDue is the loop's round; it returns the next due time (0: none).
func (s *System) fireDue() int64 {
	s.timers.fireMu.Lock()
	defer s.timers.fireMu.Unlock()
	s.fireRounds()
	_, next := s.timers.popDue(0, 0)
	return next
}

// fireRounds fires due deadlines, a bounded batch at a time, with at most
// timerFireConcurrency in flight, until none is due or the System closes.
func (s *System) fireRounds() int {
	cancelled := 0
	s.scanDeadlines(s.now())
	for {
		batch, _ := s.timers.popDue(s.now().UnixNano(), timerBatchMax)
		if len(batch) == 0 {
			return cancelled
		}
		var (
			wg          sync.WaitGroup
			mu          sync.Mutex
			work        = make(chan deadline)
			inRound     int
			failed      []deadline
			firstFailed error
		)
		for range min(timerFireConcurrency, len(batch)) {
			wg.Go(func() {
				for d := range work {
					done, err := s.fire(d)
					mu.Lock()
					if done {
						inRound++
					}
					if err != nil {
						if len(failed) == 0 {
							firstFailed = err
						}
						failed = append(failed, d)
					}
					mu.Unlock()
				}
			})
		}
		for _, d := range batch {
			work <- d
		}
		close(work)
		wg.Wait()
		cancelled += inRound
		s.retryLater(failed, inRound > 0, firstFailed)
		if s.closing.Load() {
			return cancelled
		}
	}
}

// retryLater schedules a round's failed firings again, after
// timers.retryDelay: the first failure after a success waits timerRetryDelay,
// and each round that only fails doubles the wait. fireMu must be held.
func (s *System) retryLater(failed []deadline, anySucceeded bool, firstErr error) {
	t := s.timers
	switch {
	case anySucceeded || t.retryDelay == 0:
		t.retryDelay = timerRetryDelay
	case len(failed) > 0:
		t.retryDelay = min(2*t.retryDelay, timerRetryDelayMax)
	}
	if len(failed) == 0 {
		return
	}
	due := s.now().Add(t.retryDelay).UnixNano()
	for _, d := range failed {
		d.due = due
		t.push(d)
	}
	// One line a round, not one per deadline: in an outage every
	// deadline that comes due fails alike.
	s.log.Warn("payment deadlines: cancellations failed, will retry", "failed", len(failed),
		"order_id", failed[0].id, "retry_in", t.retryDelay, "err", firstErr)
}

// fire cancels d's order if it is still in Created at the deadline's version,
// and reports whether it did. It returns the error of a failure that may pass
// (the caller schedules d again); a verdict (already paid, rescheduled, gone)
// drops the deadline.
func (s *System) fire(d deadline) (cancelled bool, retry error) {
	ctx, cancel := context.WithTimeout(context.Background(), timerFireTimeout)
	defer cancel()
	if !s.serves(s.shardFor(d.id)) {
		return false, nil // the partition's owner fires it (it scans its store when it takes it over)
	}
	e, err := s.lookupOrLoad(ctx, d.id)
	if err != nil {
		return false, err
	}
	if e == nil {
		return false, nil
	}
	var o order.Order
	if snap := e.published.Load(); snap != nil {
		o = snap.current()
	}
	if o.State != order.InitialState || o.Version != d.version {
		return false, nil // stale: the order moved on; a newer deadline has its own entry
	}
	_, err = s.Execute(ctx, order.Command{
		Kind:            order.CommandTransition,
		OrderID:         d.id,
		To:              order.Cancelled,
		ExpectedVersion: d.version,
		IdempotencyKey:  fmt.Sprintf("%s:%d", ReasonPaymentTimeout, d.version),
		Principal:       PrincipalTimer,
		Reason:          ReasonPaymentTimeout,
	})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, order.ErrVersionMismatch), errors.Is(err, order.ErrInvalidTransition),
		errors.Is(err, order.ErrOrderNotFound), errors.Is(err, order.ErrIdempotencyKeyReused),
		errors.Is(err, order.ErrWriteConflict):
		// A client's request, or another writer's record, won the race:
		// nothing to do. (The actor re-read the order from the log, and
		// armed whatever deadline the log holds.)
		return false, nil
	case errors.Is(err, ErrNotReady):
		return false, nil // shutting down, or the partition moved to another node (which fires it): recovery schedules it again at the next start
	}
	s.log.Debug("payment deadline: cancellation failed", "order_id", d.id, "version", d.version, "err", err)
	return false, err
}

// PendingDeadlines returns how many deadlines the heap holds, stale ones not
// yet dropped included.
func (s *System) PendingDeadlines() int { return s.timers.len() }
