package actors

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/orderd/orderd/order"
)

// Records another writer appended (order.ForeignRecordNotifier) make an
// order's memory stale: its actor would decide from an old version, and the
// apply rule would skip its record even though Kafka acknowledged it. So the
// journal reports them before it answers any append placed after them, and
// the System marks their orders. A marked order's actor reads the order from
// the log before its next decision, and an append that returns while its
// order is marked is answered by what the log made of it: success if the
// apply rule applied the record, ErrWriteConflict if another writer's record
// came first.

// foreignMarks holds a shard's marked orders, each with a count of the marks
// it received, so that clearing a mark after a read of the log keeps any
// mark that arrived during that read. With one writer it stays empty, and
// the hot path reads one atomic counter.
type foreignMarks struct {
	n  atomic.Int32 // len(by), read without the lock
	mu sync.Mutex
	by map[string]uint64
}

func (f *foreignMarks) mark(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.by == nil {
		f.by = map[string]uint64{}
	}
	f.by[id]++
	f.n.Store(int32(len(f.by)))
}

// generation is the order's mark count, 0 if unmarked.
func (f *foreignMarks) generation(id string) uint64 {
	if f.n.Load() == 0 {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.by[id]
}

// reset forgets every mark: the shard's orders are read from the store again.
func (f *foreignMarks) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.by = nil
	f.n.Store(0)
}

func (f *foreignMarks) marked(id string) bool { return f.generation(id) != 0 }

// clear removes the order's mark if no mark arrived since generation g was
// read: the read of the log that followed saw every record marked up to g.
func (f *foreignMarks) clear(id string, g uint64) {
	if g == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.by[id] == g {
		delete(f.by, id)
		f.n.Store(int32(len(f.by)))
	}
}

// foreignRecord is the journal's report of another writer's record.
func (s *System) foreignRecord(ev order.Event) {
	if order.ValidateID(ev.OrderID) != nil {
		return // no command can name it, and replay skips it
	}
	s.shardFor(ev.OrderID).foreign.mark(ev.OrderID)
}

// foreignGeneration is the actor's order's mark count, 0 if unmarked.
func (a *orderActor) foreignGeneration() uint64 { return a.marks.generation(a.entry.id) }

// settleWritten answers an append that succeeded while its order was marked:
// the record is in the log, and the apply rule, over what the log holds,
// decides whether it counts. Memory is rebuilt from the log either way.
func (a *orderActor) settleWritten(ctx context.Context, ev order.Event) (order.Order, error) {
	after, applied, err := a.settleFromLog(ctx, ev.EventID)
	switch {
	case err != nil:
		a.fenced = true
		return order.Order{}, fmt.Errorf("%w: order %s: the record was written, and another writer's records could not be read to learn whether it counts: %w",
			order.ErrOutcomeUnknown, ev.OrderID, err)
	case !applied:
		return order.Order{}, &order.WriteConflictError{OrderID: ev.OrderID, Version: ev.Version, Current: a.state.Version, State: a.state.State}
	}
	return after, nil
}
