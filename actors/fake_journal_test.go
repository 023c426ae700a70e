package actors

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderd/orderd/order"
)

// fakeJournal is an in-memory journal whose Append can be intercepted by a
// function field: small enough to see exactly what each fault does.
type fakeJournal struct {
	mu     sync.Mutex
	events []order.Event
	loads  int

	// beforeAppend, when set, runs before the event is stored. Returning
	// written=false leaves the event out of the log; err is Append's result.
	beforeAppend func(ctx context.Context, ev order.Event) (written bool, err error)
}

var _ order.Journal = (*fakeJournal)(nil)

func (j *fakeJournal) Append(ctx context.Context, ev order.Event) error {
	written, err := true, error(nil)
	if j.beforeAppend != nil {
		written, err = j.beforeAppend(ctx, ev)
	}
	if written {
		j.mu.Lock()
		j.events = append(j.events, ev)
		j.mu.Unlock()
	}
	return err
}

func (j *fakeJournal) Replay(_ context.Context, fn func(order.Event) error) (order.ReplayStats, error) {
	events := j.all()
	for _, ev := range events {
		if err := fn(ev); err != nil {
			return order.ReplayStats{Records: len(events)}, err
		}
	}
	return order.ReplayStats{Records: len(events)}, nil
}

func (j *fakeJournal) Load(_ context.Context, id string) ([]order.Event, error) {
	j.mu.Lock()
	j.loads++
	j.mu.Unlock()
	var out []order.Event
	for _, ev := range j.all() {
		if ev.OrderID == id {
			out = append(out, ev)
		}
	}
	return out, nil
}

func (j *fakeJournal) Close() error { return nil }

func (j *fakeJournal) all() []order.Event {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.events)
}

func (j *fakeJournal) of(id string) []order.Event {
	return slices.DeleteFunc(j.all(), func(ev order.Event) bool { return ev.OrderID != id })
}

// failAppends makes j refuse every append (ErrJournalUnavailable) until the
// returned switch is cleared.
func failAppends(j *fakeJournal) *atomic.Bool {
	down := new(atomic.Bool)
	down.Store(true)
	j.beforeAppend = func(context.Context, order.Event) (bool, error) {
		if down.Load() {
			return false, order.ErrJournalUnavailable
		}
		return true, nil
	}
	return down
}

// nextAppendOutcomeUnknown makes j's next append end in ErrOutcomeUnknown,
// with the event written if landed: a lost acknowledgement, or a lost send.
func nextAppendOutcomeUnknown(j *fakeJournal, landed bool) {
	var spent atomic.Bool
	j.beforeAppend = func(context.Context, order.Event) (bool, error) {
		if spent.CompareAndSwap(false, true) {
			return landed, fmt.Errorf("%w: connection reset after send", order.ErrOutcomeUnknown)
		}
		return true, nil
	}
}

// eachUnknownOutcome runs test as a subtest for an unknown outcome whose
// record landed and for one whose record did not: callers must handle both.
func eachUnknownOutcome(t *testing.T, test func(t *testing.T, landed bool)) {
	for _, landed := range []bool{true, false} {
		t.Run(fmt.Sprintf("landed=%v", landed), func(t *testing.T) { test(t, landed) })
	}
}

// heldJournal is a fakeJournal that can hold appends mid-write, so that a
// test can look at the System while a command waits for its acknowledgement.
type heldJournal struct {
	fakeJournal
	holding     atomic.Bool
	arrived     chan struct{} // signalled when an append starts being held
	released    chan struct{}
	releaseOnce sync.Once
}

func newHeldJournal() *heldJournal {
	j := &heldJournal{arrived: make(chan struct{}, 1), released: make(chan struct{})}
	j.beforeAppend = func(context.Context, order.Event) (bool, error) {
		if j.holding.Load() {
			select {
			case j.arrived <- struct{}{}:
			default: // one signal is enough for awaitHeld
			}
			<-j.released
		}
		return true, nil
	}
	return j
}

// hold makes every append from now on wait for release. The test's end
// releases them too, so that a test failing first does not hang in
// System.Close, which waits for the held appends.
func (j *heldJournal) hold(t *testing.T) {
	j.holding.Store(true)
	t.Cleanup(j.release)
}

// release lets the held appends, and all later ones, through.
func (j *heldJournal) release() {
	j.releaseOnce.Do(func() {
		j.holding.Store(false)
		close(j.released)
	})
}

// awaitHeld waits until an append is being held.
func (j *heldJournal) awaitHeld(t *testing.T) {
	t.Helper()
	select {
	case <-j.arrived:
	case <-time.After(roomyTimeout):
		t.Fatal("no append was held")
	}
}
