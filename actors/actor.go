package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/orderd/orderd/order"
)

// executeRequest carries one command to an order's actor. The reply channel
// has room for the one reply, so the actor never blocks on a caller that has
// gone away.
type executeRequest struct {
	ctx   context.Context
	cmd   order.Command
	reply chan executeReply
	claim atomic.Int32 // 0 open, requestTaken by the actor, requestAbandoned by the caller
}

const (
	requestTaken int32 = iota + 1
	requestAbandoned
)

type executeReply struct {
	order order.Order
	err   error
}

// requestPool recycles requests with their reply channels: three
// allocations fewer on every command.
var requestPool = sync.Pool{New: func() any { return &executeRequest{reply: make(chan executeReply, 1)} }}

func newExecuteRequest(ctx context.Context, cmd order.Command) *executeRequest {
	req := requestPool.Get().(*executeRequest)
	req.ctx, req.cmd = ctx, cmd
	req.claim.Store(0)
	return req
}

// recycle returns a request whose reply the caller has received: the reply
// is the actor's last touch of it. A request the caller gave up on is left
// to the garbage collector, as the actor may still hold it.
func (r *executeRequest) recycle() {
	r.ctx, r.cmd = nil, order.Command{}
	requestPool.Put(r)
}

// take is the actor's claim on a request; false means the caller gave up
// first and the request must not be carried out.
func (r *executeRequest) take() bool { return r.claim.CompareAndSwap(0, requestTaken) }

// abandon is the caller's claim; false means the actor has already taken it.
func (r *executeRequest) abandon() bool { return r.claim.CompareAndSwap(0, requestAbandoned) }

// orderActor owns one order. Its mailbox serialises the order's commands, so
// its fields need no lock: only Receive touches them.
type orderActor struct {
	sys   *System
	entry *entry

	state   order.Order
	history []pastEvent
	keys    order.KeyWindow // recent idempotency keys and what each event left behind

	// marks are the foreign-write marks of the order's shard (foreign.go),
	// looked up once: the hot path checks them twice per command.
	marks *foreignMarks

	// fenced is set when an append's outcome is unknown, or when the actor
	// restarted after a panic: memory may disagree with the log, so the
	// next command first re-reads the order from the journal (DESIGN §5.4).
	fenced bool
}

func (s *System) newOrderActor(e *entry) actor.Actor {
	// The producer also runs when the supervisor restarts a crashed actor;
	// that actor cannot trust memory and re-reads the log first.
	restarted := e.spawns.Add(1) > 1
	a := &orderActor{sys: s, entry: e, fenced: restarted, marks: &s.shardFor(e.id).foreign}
	if snap := e.published.Load(); snap != nil {
		a.state, a.history = snap.current(), snap.history
	}
	if keys := e.recoveredKeys.Swap(nil); keys != nil && !restarted {
		a.keys = *keys
	}
	return a
}

func (a *orderActor) Receive(ctx actor.Context) {
	if p, ok := ctx.Message().(*passivateRequest); ok {
		a.passivate(ctx, p)
		return
	}
	req, ok := ctx.Message().(*executeRequest)
	if !ok {
		return // lifecycle messages (Started, Stopping, ...) need nothing
	}
	// The request counts against the mailbox bound until it is answered,
	// and no longer: a client's next request, sent on this answer, must
	// not find its own last one still counted (and be refused as busy).
	answered := false
	defer func() {
		if !answered { // taken by its caller's deadline, or a panic
			a.entry.pending.Add(-1)
		}
	}()
	if !req.take() {
		return
	}
	from, version := a.state.State, a.state.Version
	o, err := a.execute(req.ctx, req.cmd)
	// A success that left the version alone was answered from the
	// idempotency window.
	a.sys.metrics.commanded(from, req.cmd, a.state.Version != version, err)
	answered = true
	a.entry.pending.Add(-1)
	req.reply <- executeReply{order: o, err: err}
}

// execute is the write path of DESIGN §5: decide, append and await the
// acknowledgement, then apply, publish and reply.
func (a *orderActor) execute(ctx context.Context, cmd order.Command) (order.Order, error) {
	if err := ctx.Err(); err != nil {
		return order.Order{}, fmt.Errorf("%w: deadline passed while waiting for the order: %w", ErrBusy, err)
	}
	if a.fenced || a.foreignGeneration() != 0 {
		if err := a.settle(ctx); err != nil {
			return order.Order{}, err
		}
	}
	// Idempotency comes first, before If-Match and the table: a retry of a
	// request that succeeded must get its first answer, not the 412 or
	// 409 its own success would now cause. Only once the order is settled
	// does the window hold every key the log does.
	if o, replay, err := a.keys.Lookup(cmd, a.sys.keyLimits, a.sys.now()); err != nil || replay {
		return o, err
	}
	cmd.EventID = a.sys.newEventID()
	ev, err := order.Decide(a.state, cmd, a.sys.now())
	if err != nil {
		return order.Order{}, err
	}
	if err := a.sys.journal.Append(ctx, ev); err != nil {
		if !errors.Is(err, order.ErrJournalUnavailable) {
			a.fenced = true
			if !errors.Is(err, order.ErrOutcomeUnknown) {
				err = fmt.Errorf("%w: %w", order.ErrOutcomeUnknown, err)
			}
		}
		return order.Order{}, err
	}
	if a.foreignGeneration() != 0 {
		// Another writer's record may have come before this one.
		return a.settleWritten(ctx, ev)
	}
	next, err := order.Apply(a.state, ev)
	if err != nil {
		// Decide accepted what Apply refuses: a bug. The record is in the
		// log, so crash and let the restarted actor rebuild from it.
		panic(fmt.Sprintf("actors: order %s: apply after append: %v", ev.OrderID, err))
	}
	a.state = next
	a.history = append(a.history, compactEvent(ev))
	a.sys.remember(&a.keys, ev, next, a.sys.now())
	a.publish()
	if !ev.PaymentDueAt.IsZero() { // a creation or a deadline change: arm it, now that it is durable
		a.sys.scheduleDeadline(next)
	}
	if a.sys.applied != nil {
		a.sys.applied(next, ev)
	}
	return next, nil
}

// settle re-reads the order from the journal after an unknown outcome, or
// after another writer appended to it (foreign.go), and rebuilds memory from
// what the log holds, with the same Apply rule as replay: state, history and
// idempotency keys. So a retry of the command whose outcome was unknown finds
// its key if, and only if, its record landed.
func (a *orderActor) settle(ctx context.Context) error {
	if _, _, err := a.settleFromLog(ctx, ""); err != nil {
		return fmt.Errorf("%w: re-reading order %s from the log: %w", order.ErrJournalUnavailable, a.entry.id, err)
	}
	return nil
}

// settleFromLog is settle's work. It also reports whether the event with ID
// watch was applied, and the order as that event left it.
func (a *orderActor) settleFromLog(ctx context.Context, watch string) (after order.Order, applied bool, err error) {
	generation := a.marks.generation(a.entry.id) // read before the log, so a later mark survives
	events, err := a.sys.journal.Load(ctx, a.entry.id)
	if err != nil {
		return order.Order{}, false, err
	}
	var state order.Order
	var history []pastEvent
	var keys order.KeyWindow
	now := a.sys.now()
	for _, ev := range events {
		next, err := order.Apply(state, ev)
		if err != nil {
			a.sys.skipped.Add(1)
			continue
		}
		state, history = next, append(history, compactEvent(ev))
		a.sys.remember(&keys, ev, next, now)
		if watch != "" && ev.EventID == watch {
			after, applied = next, true
		}
	}
	a.state, a.history, a.keys, a.fenced = state, history, keys, false
	a.marks.clear(a.entry.id, generation)
	a.publish()
	// The log may hold a creation or deadline change whose append looked
	// failed; an extra entry for a deadline already armed is harmless.
	a.sys.scheduleDeadline(state)
	return after, applied, nil
}

func (a *orderActor) publish() {
	a.entry.published.Store(newSnapshot(a.state, a.history))
}
