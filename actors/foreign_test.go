package actors

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// sharedLog is one log that several writers append to, as two orderd on
// one Kafka partition do.
type sharedLog struct {
	mu     sync.Mutex
	events []order.Event
	writer []int // which writer appended each event
}

// writerOn is one writer's journal on a sharedLog. Like the Kafka journal,
// it knows where the log ended after its own last append (or its replay),
// and before it answers an append placed further on, it reports the other
// writers' records in between.
type writerOn struct {
	log     *sharedLog
	id      int
	seen    int // the log's length after this writer's last append or replay
	foreign func(order.Event)
}

var (
	_ order.Journal               = (*writerOn)(nil)
	_ order.ForeignRecordNotifier = (*writerOn)(nil)
)

func (w *writerOn) NotifyForeign(fn func(order.Event)) { w.foreign = fn }

func (w *writerOn) Append(_ context.Context, ev order.Event) error {
	w.log.mu.Lock()
	at := len(w.log.events)
	w.log.events = append(w.log.events, ev)
	w.log.writer = append(w.log.writer, w.id)
	var theirs []order.Event
	for i := w.seen; i < at; i++ {
		if w.log.writer[i] != w.id {
			theirs = append(theirs, w.log.events[i])
		}
	}
	w.seen = at + 1
	w.log.mu.Unlock()
	for _, ev := range theirs {
		w.foreign(ev)
	}
	return nil
}

func (w *writerOn) Replay(_ context.Context, fn func(order.Event) error) (order.ReplayStats, error) {
	w.log.mu.Lock()
	events := append([]order.Event(nil), w.log.events...)
	w.seen = len(events)
	w.log.mu.Unlock()
	for _, ev := range events {
		if err := fn(ev); err != nil {
			return order.ReplayStats{}, err
		}
	}
	return order.ReplayStats{Records: len(events)}, nil
}

func (w *writerOn) Load(_ context.Context, id string) ([]order.Event, error) {
	w.log.mu.Lock()
	defer w.log.mu.Unlock()
	var out []order.Event
	for _, ev := range w.log.events {
		if ev.OrderID == id {
			out = append(out, ev)
		}
	}
	return out, nil
}

func (w *writerOn) Close() error { return nil }

// replayed is what a restart would make of the order: the log through the
// one apply rule.
func (l *sharedLog) replayed(t *testing.T, id string) order.Order {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var o order.Order
	for _, ev := range l.events {
		if ev.OrderID == id {
			if next, err := order.Apply(o, ev); err == nil {
				o = next
			}
		}
	}
	return o
}

// twoWriters starts A, then B once setup has run on A alone.
func twoWriters(t *testing.T, setup func(a *System)) (log *sharedLog, a, b *System) {
	log = &sharedLog{}
	a = newSystem(t, &writerOn{log: log, id: 1})
	if setup != nil {
		setup(a)
	}
	b = newSystem(t, &writerOn{log: log, id: 2})
	return log, a, b
}

// The heart of it: B decides from a stale order, its record lands after A's
// record of the same version, and the log will skip it. B must not answer
// success.
func TestALostRaceIsAWriteConflictNotASuccess(t *testing.T) {
	log, a, b := twoWriters(t, func(a *System) { mustExecute(t, a, create("o")) })
	paid := mustExecute(t, a, move("o", order.Paid))
	require.Equal(t, uint64(2), paid.Version)

	_, err := b.Execute(ctxFor(t), move("o", order.Cancelled))
	var conflict *order.WriteConflictError
	require.ErrorAs(t, err, &conflict)
	assert.Equal(t, order.WriteConflictError{OrderID: "o", Version: 2, Current: 2, State: order.Paid}, *conflict)
	assert.Equal(t, paid, log.replayed(t, "o"), "the log keeps A's record and skips B's")
	got, err := b.Get(ctxFor(t), "o")
	require.NoError(t, err)
	assert.Equal(t, paid, got, "B has read the order from the log")

	// B decides from the log from now on.
	shipped := mustExecute(t, b, move("o", order.Shipped))
	assert.Equal(t, uint64(3), shipped.Version)
	assert.Equal(t, shipped, log.replayed(t, "o"))
}

// A foreign record that B learns of while writing another order marks the
// order: B reads it from the log before deciding, so its next command on it
// is decided right and succeeds.
func TestAMarkedOrderIsReadBeforeItsNextDecision(t *testing.T) {
	log, a, b := twoWriters(t, func(a *System) { mustExecute(t, a, create("o")) })
	mustExecute(t, a, move("o", order.Paid))
	mustExecute(t, b, create("elsewhere")) // B's writer reads past A's record

	cmd := move("o", order.Shipped)
	cmd.ExpectedVersion = 2
	shipped := mustExecute(t, b, cmd)
	assert.Equal(t, order.Shipped, shipped.State)
	assert.Equal(t, shipped, log.replayed(t, "o"))
	assert.Zero(t, b.shardFor("o").foreign.n.Load(), "the mark is cleared once read")
}

// An order only A has written is not in B's memory; once B has seen its
// record, B serves commands for it instead of answering 404, and a create of
// the same ID on B is refused as existing.
func TestAnOrderOnlyTheOtherWriterMadeIsServed(t *testing.T) {
	log, a, b := twoWriters(t, nil)
	mustExecute(t, a, create("theirs"))
	mustExecute(t, b, create("mine")) // B's writer reads past A's record

	_, err := b.Execute(ctxFor(t), create("theirs"))
	require.ErrorIs(t, err, order.ErrOrderExists)
	paid := mustExecute(t, b, move("theirs", order.Paid))
	assert.Equal(t, paid, log.replayed(t, "theirs"))
}

// A create racing a create of the same ID: the second to land is a conflict.
func TestRacingCreatesOneWins(t *testing.T) {
	log, a, b := twoWriters(t, nil)
	first := mustExecute(t, a, create("same"))
	_, err := b.Execute(ctxFor(t), create("same"))
	require.ErrorIs(t, err, order.ErrWriteConflict)
	assert.Equal(t, first, log.replayed(t, "same"))
}

// A foreign record the apply rule skips (a fork) costs B's own record
// nothing: it is applied, so B answers success.
func TestAForeignForkDoesNotCostTheWrite(t *testing.T) {
	log, a, b := twoWriters(t, func(a *System) { mustExecute(t, a, create("o")) })
	fork := order.Event{EventID: "fork", OrderID: "o", Version: 7, From: order.Shipped, To: order.Delivered}
	require.NoError(t, a.journal.Append(ctxFor(t), fork))

	paid := mustExecute(t, b, move("o", order.Paid))
	assert.Equal(t, uint64(2), paid.Version)
	assert.Equal(t, paid, log.replayed(t, "o"))
}
