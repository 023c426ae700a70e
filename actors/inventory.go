package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/orderd/orderd/order"
)

// Inventory: one actor per SKU (DESIGN §10), on the orders' log and under
// the same rules as an order's actor: its mailbox serialises the SKU's
// commands; each is decided by order.DecideInventory, appended and
// acknowledged before order.ApplyInventory changes memory; an append whose
// outcome is unknown fences the SKU until it has read the SKU from the log
// again (InventoryJournal.LoadInventory: the state store's view and the log's
// tail). Its shard is the partition of the SKU's record key, so in a cluster
// it is served by that partition's owner, and dropped with the partition.
//
// Memory per SKU: the stock, and the holds written at versions the state
// store may not hold yet; every other hold is read from the store when a
// command names its order (order.InventoryStore.Hold). The store runs
// milliseconds behind the log, so the holds kept are those of the last few
// milliseconds' changes plus whatever changed since the last prune
// (holdsKeptMin). Without a store every hold stays in memory.

// holdsKeptMin: an actor prunes the holds the store already has once it
// keeps this many, and then again at twice what it kept after the prune: an
// amortised point read of the store per holdsKeptMin commands.
const holdsKeptMin = 64

// InventoryService is what the checkout saga, the lifecycle's transition
// actions and the HTTP layer need of inventory. Every method is safe for
// concurrent use.
//
// Contract:
//   - Every change is in the log, acknowledged, before it is applied and
//     answered: a nil error means durable.
//   - Reserve, Release, Consume and Restock name the order; each takes
//     effect at most once per order and SKU, whatever the number of calls
//     (the SKU's ledger of holds, order/inventory.go). A call the order's
//     hold has moved past, a retry or a late one, is a success that
//     appends nothing: InventoryResult.Applied is false, and Hold says
//     where the hold is (a Reserve after a Release holds nothing: check
//     Hold.Status). So a caller that runs every step at least once gets
//     each effect exactly once.
//   - Errors match order.ErrOutOfStock (*order.OutOfStockError),
//     order.ErrHoldConflict, order.ErrStockReserved,
//     order.ErrVersionMismatch, order.ErrInvalidInventory,
//     order.ErrSKUNotFound (GetStock), ErrBusy, ErrNotReady (ErrNotOwner
//     in a cluster), order.ErrJournalUnavailable (nothing was written) or
//     order.ErrOutcomeUnknown (maybe written: call again; the ledger makes
//     the retry safe).
type InventoryService interface {
	// GetStock returns the SKU as last applied; order.ErrSKUNotFound for a
	// SKU nothing was ever recorded for.
	GetStock(ctx context.Context, sku string) (order.Stock, error)
	// SetStock sets the units on hand (an administrative count). Refused
	// below what is reserved (order.ErrStockReserved).
	SetStock(ctx context.Context, set StockSet) (order.Stock, error)
	// Reserve holds quantity units for the order, if that many are
	// available (else *order.OutOfStockError); again for the same order
	// and quantity, it holds nothing more.
	Reserve(ctx context.Context, ref HoldRef, quantity int64) (InventoryResult, error)
	// Release gives the order's held units back (a cancelled order). With
	// no hold it records the order as released, so that a reserve arriving
	// later holds nothing.
	Release(ctx context.Context, ref HoldRef) (InventoryResult, error)
	// Consume takes the order's held units out of stock (a shipped order):
	// on_hand and reserved both go down. order.ErrHoldConflict if the order
	// holds nothing.
	Consume(ctx context.Context, ref HoldRef) (InventoryResult, error)
	// Restock puts the order's consumed units back on hand (a returned
	// order). order.ErrHoldConflict if nothing was consumed yet.
	Restock(ctx context.Context, ref HoldRef) (InventoryResult, error)
}

// HoldRef names an order's hold on a SKU, what caused the change, and who
// asks.
type HoldRef struct {
	SKU          string
	OrderID      string
	OrderVersion uint64 // the order's version whose transition causes the change; 0: none
	Principal    string
	RequestID    string
}

// StockSet is a SetStock request.
type StockSet struct {
	SKU             string
	OnHand          int64
	ExpectedVersion uint64 // If-Match; 0: any
	Principal       string
	RequestID       string
	IdempotencyKey  string // recorded in the log
}

// InventoryResult is a hold command's answer.
type InventoryResult struct {
	Stock   order.Stock
	Hold    order.Hold // the order's hold after the command
	Applied bool       // false: a no-op, nothing was appended
}

var _ InventoryService = (*System)(nil)

// GetStock implements InventoryService. A SKU in memory answers from its
// published stock; any other from the state store, which is complete up to
// everything this node or a partition's earlier owner wrote (or, without a
// store, from the log).
func (s *System) GetStock(ctx context.Context, sku string) (order.Stock, error) {
	if err := s.Ready(); err != nil {
		return order.Stock{}, err
	}
	if err := order.ValidateSKU(sku); err != nil {
		return order.Stock{}, err
	}
	sh := s.shardFor(order.InventoryKey(sku))
	if err := s.checkRead(sh, sku); err != nil {
		return order.Stock{}, err
	}
	var st order.Stock
	if e := s.skuEntry(sh, sku, false); e != nil && e.published.Load() != nil {
		e.lastUsed.Store(time.Now().UnixNano())
		st = *e.published.Load()
	} else {
		var err error
		if st, err = s.coldStock(ctx, sku); err != nil {
			return order.Stock{}, err
		}
	}
	if !st.Exists() {
		return order.Stock{}, fmt.Errorf("%w: %s", order.ErrSKUNotFound, sku)
	}
	return st, nil
}

func (s *System) coldStock(ctx context.Context, sku string) (order.Stock, error) {
	if s.invStore != nil {
		st, err := s.invStore.Stock(ctx, sku)
		if err != nil {
			return order.Stock{}, fmt.Errorf("%w: reading sku %s from the state store: %w", order.ErrJournalUnavailable, sku, err)
		}
		return st, nil
	}
	if s.invJournal == nil {
		return order.Stock{}, errNoInventoryJournal
	}
	load, err := s.invJournal.LoadInventory(ctx, sku)
	if err != nil {
		return order.Stock{}, fmt.Errorf("%w: reading sku %s from the log: %w", order.ErrJournalUnavailable, sku, err)
	}
	return load.Stock, nil
}

// SetStock implements InventoryService.
func (s *System) SetStock(ctx context.Context, set StockSet) (order.Stock, error) {
	r, err := s.executeInventory(ctx, order.InventoryCommand{Change: order.StockSet, SKU: set.SKU, OnHand: set.OnHand,
		ExpectedVersion: set.ExpectedVersion, Principal: set.Principal, RequestID: set.RequestID, IdempotencyKey: set.IdempotencyKey})
	return r.Stock, err
}

// Reserve implements InventoryService.
func (s *System) Reserve(ctx context.Context, ref HoldRef, quantity int64) (InventoryResult, error) {
	cmd := holdCommand(order.StockReserve, ref)
	cmd.Quantity = quantity
	return s.executeInventory(ctx, cmd)
}

// Release implements InventoryService.
func (s *System) Release(ctx context.Context, ref HoldRef) (InventoryResult, error) {
	return s.executeInventory(ctx, holdCommand(order.StockRelease, ref))
}

// Consume implements InventoryService.
func (s *System) Consume(ctx context.Context, ref HoldRef) (InventoryResult, error) {
	return s.executeInventory(ctx, holdCommand(order.StockConsume, ref))
}

// Restock implements InventoryService.
func (s *System) Restock(ctx context.Context, ref HoldRef) (InventoryResult, error) {
	return s.executeInventory(ctx, holdCommand(order.StockRestock, ref))
}

func holdCommand(c order.StockChange, ref HoldRef) order.InventoryCommand {
	return order.InventoryCommand{Change: c, SKU: ref.SKU, OrderID: ref.OrderID, OrderVersion: ref.OrderVersion,
		Principal: ref.Principal, RequestID: ref.RequestID}
}

var errNoInventoryJournal = fmt.Errorf("%w: the journal does not record inventory", order.ErrJournalUnavailable)

// executeInventory runs cmd through the SKU's actor, as Execute does for an
// order: admitted by the partition's gate, bounded by the mailbox limit,
// abandoned at the caller's deadline if the actor has not taken it yet.
func (s *System) executeInventory(ctx context.Context, cmd order.InventoryCommand) (r InventoryResult, err error) {
	defer func() { s.metrics.inventoryCommanded(cmd.Change, r.Applied, err) }()
	s.inFlight.RLock()
	defer s.inFlight.RUnlock()
	if err := s.Ready(); err != nil {
		return InventoryResult{}, err
	}
	if s.invJournal == nil {
		return InventoryResult{}, errNoInventoryJournal
	}
	if err := order.ValidateSKU(cmd.SKU); err != nil {
		return InventoryResult{}, err
	}
	sh := s.shardFor(order.InventoryKey(cmd.SKU))
	leave, err := s.enter(sh, cmd.SKU)
	if err != nil {
		return InventoryResult{}, err
	}
	defer leave()
	e := s.skuEntry(sh, cmd.SKU, true)
	if depth := e.pending.Add(1); depth > s.mailboxLimit {
		e.pending.Add(-1)
		return InventoryResult{}, fmt.Errorf("%w: %d requests already queued for sku %s", ErrBusy, s.mailboxLimit, cmd.SKU)
	}
	e.lastUsed.Store(time.Now().UnixNano())
	pid := s.skuPID(e)
	req := &inventoryRequest{ctx: ctx, cmd: cmd, reply: make(chan inventoryReply, 1)}
	s.actors.Root.Send(pid, req)
	select {
	case rep := <-req.reply:
		return rep.result, rep.err
	case <-ctx.Done():
		if req.claim.CompareAndSwap(0, requestAbandoned) {
			return InventoryResult{}, fmt.Errorf("%w: deadline passed while waiting for the sku: %w", ErrBusy, ctx.Err())
		}
		return InventoryResult{}, fmt.Errorf("%w: deadline passed while the sku was being written: %w", order.ErrOutcomeUnknown, ctx.Err())
	}
}

// skuEntry is the registry's handle on one SKU, in its partition's shard.
type skuEntry struct {
	sku       string
	published atomic.Pointer[order.Stock] // the stock as last applied; nil until loaded
	pending   atomic.Int32                // requests sent and not yet answered
	lastUsed  atomic.Int64                // Unix nanoseconds of the last command or read
	foreign   atomic.Bool                 // another writer appended to the SKU since it was last read

	spawnMu sync.Mutex
	pid     *actor.PID // nil while no actor runs; guarded by spawnMu
	parked  *skuMemory // what a passivated actor left; guarded by spawnMu
}

// skuMemory is what a SKU's actor knows, kept across passivation.
type skuMemory struct {
	loaded  bool
	stock   order.Stock
	holds   map[string]order.Hold
	pruneAt int
}

func (s *System) skuEntry(sh *shard, sku string, create bool) *skuEntry {
	sh.mu.RLock()
	e := sh.skus[sku]
	sh.mu.RUnlock()
	if e != nil || !create {
		return e
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e = sh.skus[sku]; e == nil {
		e = &skuEntry{sku: sku}
		sh.skus[sku] = e
		s.metrics.skuLoaded(1)
	}
	return e
}

// skuPID starts the SKU's actor on first use, and again after passivation.
// SKUs are a catalogue, not a stream like orders: they have no cap of their
// own beyond the mailbox bound.
func (s *System) skuPID(e *skuEntry) *actor.PID {
	e.spawnMu.Lock()
	defer e.spawnMu.Unlock()
	if e.pid == nil {
		mem := e.parked
		e.parked = nil
		if mem == nil {
			mem = &skuMemory{}
		}
		e.pid = s.actors.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
			// A restart after a panic cannot trust memory: it reads the
			// SKU from the log again.
			a := &skuActor{sys: s, e: e, skuMemory: *mem}
			mem = &skuMemory{}
			return a
		}, actor.WithMailbox(actor.Unbounded()), actor.WithDispatcher(s.dispatcher)))
	}
	return e.pid
}

// inventoryRequest carries one command to a SKU's actor.
type inventoryRequest struct {
	ctx   context.Context
	cmd   order.InventoryCommand
	reply chan inventoryReply // room for the one reply
	claim atomic.Int32        // 0 open, requestTaken by the actor, requestAbandoned by the caller
}

type inventoryReply struct {
	result InventoryResult
	err    error
}

// skuActor owns one SKU. Only Receive touches its fields.
type skuActor struct {
	sys *System
	e   *skuEntry
	skuMemory
	// fenced: an append's outcome is unknown, so memory may disagree
	// with the log; the next command reads the SKU again first.
	fenced bool
}

func (a *skuActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *passivateRequest:
		a.passivate(ctx, m)
	case *inventoryRequest:
		if !m.claim.CompareAndSwap(0, requestTaken) {
			a.e.pending.Add(-1)
			return
		}
		var r InventoryResult
		var err error
		func() {
			// Counted until answered, and no longer: a caller's next
			// request, sent on this answer, must not find this one counted.
			// A panic leaves the deferred count to the restart.
			defer func() {
				if v := recover(); v != nil {
					a.e.pending.Add(-1)
					panic(v)
				}
			}()
			r, err = a.execute(m.ctx, m.cmd)
		}()
		a.e.pending.Add(-1)
		m.reply <- inventoryReply{result: r, err: err}
	}
}

// execute is the write path of DESIGN §5 for a SKU.
func (a *skuActor) execute(ctx context.Context, cmd order.InventoryCommand) (InventoryResult, error) {
	if err := ctx.Err(); err != nil {
		return InventoryResult{}, fmt.Errorf("%w: deadline passed while waiting for the sku: %w", ErrBusy, err)
	}
	if !a.loaded || a.fenced || a.e.foreign.Load() {
		if err := a.load(ctx); err != nil {
			return InventoryResult{}, err
		}
	}
	hold, err := a.hold(ctx, cmd)
	if err != nil {
		return InventoryResult{}, err
	}
	cmd.EventID = a.sys.newEventID()
	ev, changed, err := order.DecideInventory(a.stock, hold, cmd, a.sys.now())
	if err != nil || !changed {
		return InventoryResult{Stock: a.stock, Hold: hold}, err
	}
	if err := a.sys.invJournal.AppendInventory(ctx, ev); err != nil {
		if !errors.Is(err, order.ErrJournalUnavailable) {
			a.fenced = true
			if !errors.Is(err, order.ErrOutcomeUnknown) {
				err = fmt.Errorf("%w: %w", order.ErrOutcomeUnknown, err)
			}
		}
		return InventoryResult{}, err
	}
	if a.e.foreign.Load() {
		// Another writer's record may have come before this one, which
		// the log then skips. Every hold command is idempotent by the
		// ledger, so the caller's retry learns, after a re-read, whether
		// this one counted.
		a.fenced = true
		return InventoryResult{}, fmt.Errorf("%w: another writer appended to sku %s's partition; retry to learn whether this change counts", order.ErrOutcomeUnknown, cmd.SKU)
	}
	next, nextHold, err := order.ApplyInventory(a.stock, hold, ev)
	if err != nil {
		// Decide accepted what Apply refuses: a bug. The record is in the
		// log; the restarted actor rebuilds from it.
		panic(fmt.Sprintf("actors: sku %s: apply after append: %v", cmd.SKU, err))
	}
	a.stock = next
	if cmd.Change != order.StockSet {
		a.holds[cmd.OrderID] = nextHold
	}
	a.publish()
	a.prune(ctx)
	return InventoryResult{Stock: next, Hold: nextHold, Applied: true}, nil
}

// load reads the SKU from the log (the store's view and the tail), settling
// any unknown outcome. The foreign mark is cleared before the read, so a
// record reported during it is read again next time.
func (a *skuActor) load(ctx context.Context) error {
	a.e.foreign.Store(false)
	l, err := a.sys.invJournal.LoadInventory(ctx, a.e.sku)
	if err != nil {
		if a.fenced || !a.loaded {
			a.e.foreign.Store(true) // read again next time
		}
		return fmt.Errorf("%w: reading sku %s from the log: %w", order.ErrJournalUnavailable, a.e.sku, err)
	}
	a.sys.skipped.Add(int64(l.Skipped))
	a.stock, a.holds, a.fenced, a.loaded = l.Stock, l.Holds, false, true
	if a.holds == nil {
		a.holds = map[string]order.Hold{}
	}
	a.pruneAt = max(holdsKeptMin, 2*len(a.holds))
	a.publish()
	return nil
}

// hold is the order's hold: kept in memory if it changed lately, else the
// store's (else none).
func (a *skuActor) hold(ctx context.Context, cmd order.InventoryCommand) (order.Hold, error) {
	if cmd.Change == order.StockSet || order.ValidateID(cmd.OrderID) != nil {
		return order.Hold{}, nil // Decide refuses a bad order ID
	}
	if h, ok := a.holds[cmd.OrderID]; ok || a.sys.invStore == nil {
		return h, nil
	}
	h, err := a.sys.invStore.Hold(ctx, cmd.SKU, cmd.OrderID)
	if err != nil {
		return order.Hold{}, fmt.Errorf("%w: reading the hold of order %s on sku %s: %w", order.ErrJournalUnavailable, cmd.OrderID, cmd.SKU, err)
	}
	return h, nil
}

// prune forgets the holds the state store already holds (it has applied
// the SKU up to their versions), once enough are kept.
func (a *skuActor) prune(ctx context.Context) {
	if a.sys.invStore == nil || len(a.holds) < a.pruneAt {
		return
	}
	stored, err := a.sys.invStore.Stock(ctx, a.e.sku)
	if err == nil {
		for id, h := range a.holds {
			if h.Version <= stored.Version {
				delete(a.holds, id)
			}
		}
	}
	a.pruneAt = max(holdsKeptMin, 2*len(a.holds))
}

func (a *skuActor) publish() {
	st := a.stock
	a.e.published.Store(&st)
}

// passivate stops an idle actor, parking what it knows in its entry; the
// entry of a SKU nothing was recorded for goes too.
func (a *skuActor) passivate(ctx actor.Context, req *passivateRequest) {
	if a.stopIfIdle(ctx, req) && !a.stock.Exists() && len(a.holds) == 0 {
		a.sys.forgetSKU(a.e) // after spawnMu: the shard's lock comes first
	}
}

func (a *skuActor) stopIfIdle(ctx actor.Context, req *passivateRequest) bool {
	e := a.e
	e.spawnMu.Lock()
	defer e.spawnMu.Unlock()
	if a.fenced || e.pending.Load() > 0 || e.lastUsed.Load() != req.idleSince || e.pid == nil {
		return false
	}
	mem := a.skuMemory
	e.parked, e.pid = &mem, nil
	ctx.Stop(ctx.Self())
	return true
}

// forgetSKU removes the entry of a SKU nothing was recorded for, once idle,
// so that commands naming SKUs that do not exist leave nothing behind.
func (s *System) forgetSKU(e *skuEntry) {
	sh := s.shardFor(order.InventoryKey(e.sku))
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e.spawnMu.Lock()
	defer e.spawnMu.Unlock()
	if sh.skus[e.sku] != e || e.pid != nil || e.pending.Load() != 0 {
		return
	}
	if p := e.published.Load(); p != nil && p.Exists() {
		return
	}
	delete(sh.skus, e.sku)
	s.metrics.skuLoaded(-1)
}

// sweepSKUs asks the actors of SKUs idle since before cutoff to stop.
func (s *System) sweepSKUs(cutoff int64) {
	for _, sh := range s.shards {
		sh.mu.RLock()
		var idle []*skuEntry
		for _, e := range sh.skus {
			if used := e.lastUsed.Load(); used != 0 && used < cutoff {
				idle = append(idle, e)
			}
		}
		sh.mu.RUnlock()
		for _, e := range idle {
			e.spawnMu.Lock()
			pid := e.pid
			e.spawnMu.Unlock()
			if pid != nil {
				s.actors.Root.Send(pid, &passivateRequest{idleSince: e.lastUsed.Load()})
			}
		}
	}
}

// foreignInventory is the ForeignInventoryNotifier's function: the SKU, if
// in memory, reads itself from the log before its next command.
func (s *System) foreignInventory(sku string) {
	if order.ValidateSKU(sku) != nil {
		return
	}
	if e := s.skuEntry(s.shardFor(order.InventoryKey(sku)), sku, false); e != nil {
		e.foreign.Store(true)
	}
}

// dropSKUs stops the shard's SKU actors and forgets its SKUs (ownership.go).
// sh.mu is held.
func (s *System) dropSKUs(sh *shard) {
	for _, e := range sh.skus {
		e.spawnMu.Lock()
		if e.pid != nil {
			s.actors.Root.Stop(e.pid)
			e.pid = nil
		}
		e.parked = nil
		e.spawnMu.Unlock()
	}
	s.metrics.skuLoaded(-len(sh.skus))
	sh.skus = map[string]*skuEntry{}
}
