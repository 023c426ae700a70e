package actors

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/orderd/orderd/order"
)

// MailboxLimitDefault is how many requests for one order may wait their turn
// (DESIGN §5): a burst of a few dozen clients on one hot order queues rather
// than fails, and beyond it callers hear ErrBusy at once instead of piling up
// goroutines and memory behind a single order.
const MailboxLimitDefault = 64

// Config wires a System. Journal and ShardOf are required.
type Config struct {
	Journal order.Journal

	// Shards is the number of registry shards and ShardOf maps an order ID to
	// one of them. Shard = the order's Kafka partition, so that a shard is
	// the unit a cluster node will own (DESIGN §9).
	Shards  int
	ShardOf func(orderID string) int

	// MailboxLimit bounds the requests queued per order; 0 means MailboxLimitDefault.
	MailboxLimit int

	// IdempotencyKeysPerOrder and IdempotencyWindow bound the idempotency
	// keys remembered per order, by count and by age; CreateKeysMax bounds
	// the server-wide index of keyed creates. Zero means the *Default.
	IdempotencyKeysPerOrder int
	IdempotencyWindow       time.Duration
	CreateKeysMax           int

	// IdleActorTimeout and LiveActorsMax: see passivate.go; zero means the
	// *Default.
	IdleActorTimeout time.Duration
	LiveActorsMax    int

	// Store, when set, is the node's state store (store.go): memory then
	// holds only the orders in use, and Recover reads nothing from the
	// journal. The caller must have brought it up to the log's end first.
	Store order.StateStore
	// EvictAfter is how long an order stays in memory untouched when there
	// is a Store; 0 means EvictAfterDefault.
	EvictAfter time.Duration
	// Lister answers List (list.go): with a state store, one that lists
	// from it (persistence.StoreLister). Nil: List refuses, not ready.
	Lister order.Lister

	// PaymentTimeout is the payment deadline of a create that names none
	// (timers.go); 0 means order.PaymentTimeoutDefault, negative none.
	PaymentTimeout time.Duration

	// Now is the clock events are stamped with; nil means time.Now.
	Now func() time.Time

	Logger *slog.Logger

	// Metrics receives the actors' counters; nil records nothing.
	Metrics *Metrics

	// Clustered makes the System one node's of a cluster: it serves a
	// partition only from Own to Disown (ownership.go). It needs a Store.
	Clustered bool
	// Applied, when set, is called with every event an order's actor
	// applies after the journal acknowledged it, on the actor's goroutine:
	// it must return at once (Actions.Applied queues).
	Applied func(order.Order, order.Event)

	// PauseHold is how long a clustered System refuses service after the
	// process was paused (ownership.go): the time the group's heartbeat
	// needs to fail if the node was deposed meanwhile. Zero: 5 s.
	PauseHold time.Duration
}

// System is the Service: a registry of order actors, sharded by order ID.
type System struct {
	journal      order.Journal
	shards       []*shard
	shardOf      func(string) int
	mailboxLimit int32
	keyLimits    order.KeyLimits
	creates      *createIndex
	now          func() time.Time
	log          *slog.Logger
	metrics      *Metrics
	clustered    bool
	pause        *pauseGuard                    // nil outside a cluster
	applied      func(order.Order, order.Event) // Config.Applied; nil: nothing

	actors     *actor.ActorSystem
	props      func(*entry) *actor.Props
	dispatcher *pooledDispatcher

	ready   atomic.Bool
	closing atomic.Bool
	// inFlight is held shared by every Execute call under way, so that Close,
	// taking it exclusively, waits for them all to be answered.
	inFlight  sync.RWMutex
	closeOnce sync.Once

	skipped atomic.Int64 // records that replay refused (duplicates and forks)

	timers         *timers       // pending payment deadlines (timers.go)
	paymentTimeout time.Duration // Config.PaymentTimeout resolved; 0: none

	idleActorTimeout time.Duration
	liveActorsMax    int64
	live             atomic.Int64 // orders with a running actor
	passivated       atomic.Int64 // actors stopped for idleness since start
	stopSweeper      chan struct{}
	sweeperDone      chan struct{}

	// invJournal and invStore are Journal and Store as inventory's
	// (inventory.go); nil when they do not keep inventory.
	invJournal order.InventoryJournal
	invStore   order.InventoryStore

	store       order.StateStore // nil: every order stays in memory (store.go)
	lister      order.Lister     // nil: no listing (list.go)
	evictAfter  time.Duration
	coldLoads   atomic.Int64 // orders loaded from the store since start
	evictions   atomic.Int64 // orders evicted from memory since start
	stopEvictor chan struct{}
	evictorDone chan struct{}
}

var _ Service = (*System)(nil)

// shard holds the orders of one partition. The lock guards only the map: the
// orders themselves are changed by their actors alone.
type shard struct {
	mu     sync.RWMutex
	orders map[string]*entry

	// live holds the entries whose actor runs, for the sweeper: it must
	// not walk every order the shard holds (a million) each round, under
	// the lock creates need.
	liveMu sync.Mutex
	live   map[*entry]struct{}

	// foreign marks the orders another writer appended to since their
	// actor last read them from the log (foreign.go).
	foreign foreignMarks

	// gate is the partition's ownership in a cluster (ownership.go).
	gate partitionGate

	// skus are the SKUs whose records live in this partition
	// (inventory.go); guarded by mu.
	skus map[string]*skuEntry
}

// entry is the registry's handle on one order: its actor, the depth of its
// mailbox, and the last durable state its actor published for readers.
//
// A million orders each have one, so its fields are ordered to leave no
// padding (64 bytes).
type entry struct {
	id        string
	published atomic.Pointer[snapshot]
	pending   atomic.Int32 // requests sent to the actor and not yet taken off its mailbox
	spawns    atomic.Int32 // how often the actor was started, restarts included

	spawnMu sync.Mutex
	pid     *actor.PID // nil until the order first receives a command; guarded by spawnMu
	// lastUsed is when a command last arrived (Unix nanoseconds), for
	// passivation; 0 until the first command.
	lastUsed atomic.Int64

	// recoveredKeys holds the idempotency keys Recover found for the order
	// until its actor first starts and takes them; nil if it had none.
	recoveredKeys atomic.Pointer[order.KeyWindow]
}

// snapshot is an order's durable state as published by its actor: its
// history, from which the rest of the order follows, and the one thing that
// does not follow from the last event alone, the payment deadline. History is
// append-only and shared: an element below len is never written again, so a
// reader may keep the slice while the actor appends beyond it. Every order
// has one, so it holds nothing derivable (56 bytes against the 136 of an
// order.Order and a slice).
type snapshot struct {
	id      string
	history []pastEvent
	dueSec  int64
	dueNsec uint32
}

// newSnapshot publishes o with its history, which must be o's: the pair is
// checked, as the state readers see must be the state the log made.
func newSnapshot(o order.Order, history []pastEvent) *snapshot {
	snap := snapshotOf(o, history)
	return &snap
}

func snapshotOf(o order.Order, history []pastEvent) snapshot {
	if n := len(history); uint64(n) != o.Version || n > 0 && history[n-1].to != o.State {
		panic(fmt.Sprintf("actors: order %s at version %d (%v) published with %d events", o.ID, o.Version, o.State, n))
	}
	return snapshot{id: o.ID, history: history, dueSec: o.PaymentDueAt.Unix(), dueNsec: uint32(o.PaymentDueAt.Nanosecond())}
}

// current is the order as of the snapshot; the zero Order if it has no
// events (a create the journal refused).
func (s *snapshot) current() order.Order {
	n := len(s.history)
	if n == 0 {
		return order.Order{}
	}
	first, last := &s.history[0], &s.history[n-1]
	return order.Order{
		ID: s.id, State: last.to, Version: last.version,
		CreatedAt: unixUTC(first.atSec, first.atNsec), UpdatedAt: unixUTC(last.atSec, last.atNsec),
		PaymentDueAt: unixUTC(s.dueSec, s.dueNsec),
		Contents:     contentsOf(s.id, s.history),
	}
}

// contentsOf rebuilds an order's contents from its history, with the rule
// Apply uses: nil, and no allocation, for an order whose events carry none.
func contentsOf(id string, history []pastEvent) *order.Contents {
	var c *order.Contents
	for i := range history {
		if history[i].contents {
			c = order.NextContents(c, history[i].event(id))
		}
	}
	return c
}

func (s *snapshot) exists() bool { return len(s.history) > 0 }

// deadline is deadlineOf(s.current()) without building the order: recovery
// asks it of every order, and most have no deadline left. A nil s has none.
func (s *snapshot) deadline() (deadline, bool) {
	if s == nil || !s.exists() || s.history[len(s.history)-1].to != order.InitialState {
		return deadline{}, false
	}
	due := unixUTC(s.dueSec, s.dueNsec)
	if due.IsZero() {
		return deadline{}, false
	}
	return deadline{due: due.UnixNano(), version: s.history[len(s.history)-1].version, id: s.id}, true
}

// New builds a System; it is not ready until Recover has run.
func New(cfg Config) (*System, error) {
	if cfg.Journal == nil || cfg.ShardOf == nil || cfg.Shards < 1 {
		return nil, errors.New("actors: Journal, ShardOf and a positive Shards are required")
	}
	if cfg.Clustered && cfg.Store == nil {
		// A node takes a partition over from its store, complete up to
		// the claim; without one it would have to replay the partition.
		return nil, errors.New("actors: a clustered System needs a Store")
	}
	s := &System{
		journal:      cfg.Journal,
		shards:       make([]*shard, cfg.Shards),
		shardOf:      cfg.ShardOf,
		mailboxLimit: int32(cfg.MailboxLimit),
		now:          cfg.Now,
		log:          cfg.Logger,
		metrics:      cfg.Metrics,
		store:        cfg.Store,
		lister:       cfg.Lister,
		clustered:    cfg.Clustered,
		applied:      cfg.Applied,
		evictAfter:   positiveOr(cfg.EvictAfter, EvictAfterDefault),
	}
	if s.mailboxLimit <= 0 {
		s.mailboxLimit = MailboxLimitDefault
	}
	if s.clustered {
		s.pause = startPauseGuard(positiveOr(cfg.PauseHold, pauseHoldDefault))
	}
	s.timers, s.paymentTimeout = newTimers(), positiveOr(cfg.PaymentTimeout, order.PaymentTimeoutDefault)
	if cfg.PaymentTimeout < 0 {
		s.paymentTimeout = 0
	}
	s.idleActorTimeout = positiveOr(cfg.IdleActorTimeout, IdleActorTimeoutDefault)
	s.liveActorsMax = int64(positiveOr(cfg.LiveActorsMax, LiveActorsMaxDefault))
	s.keyLimits = order.KeyLimits{
		PerOrder: positiveOr(cfg.IdempotencyKeysPerOrder, IdempotencyKeysPerOrderDefault),
		Age:      positiveOr(cfg.IdempotencyWindow, IdempotencyWindowDefault),
	}
	s.creates = newCreateIndex(positiveOr(cfg.CreateKeysMax, CreateKeysMaxDefault), s.keyLimits.Age)
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	for i := range s.shards {
		s.shards[i] = &shard{orders: map[string]*entry{}, live: map[*entry]struct{}{}, skus: map[string]*skuEntry{}}
	}
	if n, ok := cfg.Journal.(order.ForeignRecordNotifier); ok {
		n.NotifyForeign(s.foreignRecord)
	}
	s.invJournal, _ = cfg.Journal.(order.InventoryJournal)
	s.invStore, _ = cfg.Store.(order.InventoryStore)
	if n, ok := cfg.Journal.(order.ForeignInventoryNotifier); ok {
		n.NotifyForeignInventory(s.foreignInventory)
	}
	// protoactor logs at Info to stderr by default; its messages belong in
	// the server's log, one level down so they do not drown our own.
	actorLog := slog.New(demoted{s.log.Handler()}).With("component", "protoactor")
	s.dispatcher = newPooledDispatcher()
	s.actors = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return actorLog }))
	s.props = func(e *entry) *actor.Props {
		// Unbounded at protoactor's level because Execute bounds the depth
		// itself (pending): protoactor's bounded mailbox busy-waits the
		// sender when full and preallocates its ring for every order.
		return actor.PropsFromProducer(func() actor.Actor { return s.newOrderActor(e) },
			actor.WithMailbox(actor.Unbounded()), actor.WithDispatcher(s.dispatcher))
	}
	return s, nil
}

func (s *System) shardFor(id string) *shard {
	i := s.shardOf(id)
	if i < 0 || i >= len(s.shards) {
		panic(fmt.Sprintf("actors: ShardOf(%q) = %d, outside 0..%d", id, i, len(s.shards)-1))
	}
	return s.shards[i]
}

// lookup returns the order's entry, creating it when create is set.
func (s *System) lookup(id string, create bool) *entry {
	sh := s.shardFor(id)
	sh.mu.RLock()
	e := sh.orders[id]
	sh.mu.RUnlock()
	if e != nil || !create {
		return e
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e = sh.orders[id]; e == nil {
		e = &entry{id: id}
		sh.orders[id] = e
	}
	return e
}

// pidOf starts the order's actor on first use, so that recovered orders cost
// no actor until somebody changes them.
func (s *System) pidOf(e *entry) (*actor.PID, error) {
	e.spawnMu.Lock()
	defer e.spawnMu.Unlock()
	if e.pid == nil {
		return s.spawnActor(e)
	}
	return e.pid, nil
}

// Ready implements Service.
func (s *System) Ready() error {
	switch {
	case s.closing.Load():
		return fmt.Errorf("%w: shutting down", ErrNotReady)
	case !s.ready.Load():
		return fmt.Errorf("%w: recovering from the journal", ErrNotReady)
	}
	return nil
}

// Execute implements Service.
func (s *System) Execute(ctx context.Context, cmd order.Command) (order.Order, error) {
	s.inFlight.RLock()
	defer s.inFlight.RUnlock()
	if err := s.Ready(); err != nil {
		return order.Order{}, err
	}
	if cmd.Kind == order.CommandCreate && cmd.PaymentTimeout == 0 {
		cmd.PaymentTimeout = s.paymentTimeout
	}
	proposedID := cmd.OrderID
	if s.clustered && order.ValidateID(cmd.OrderID) == nil && !s.serves(s.shardFor(cmd.OrderID)) {
		// Before a keyed create's routing, which would remember the key.
		return order.Order{}, fmt.Errorf("%w: order %s", ErrNotOwner, cmd.OrderID)
	}
	if cmd.Kind == order.CommandCreate && cmd.IdempotencyKey != "" {
		if err := s.routeCreate(ctx, &cmd); err != nil {
			return order.Order{}, err
		}
	}
	if err := order.ValidateID(cmd.OrderID); err != nil {
		return order.Order{}, err
	}
	leave, err := s.enter(s.shardFor(cmd.OrderID), cmd.OrderID)
	if err != nil {
		return order.Order{}, err
	}
	defer leave()
	// A create under an ID the server has just generated cannot name an
	// order the store holds: it skips the store.
	fresh := cmd.Kind == order.CommandCreate && cmd.IDGenerated && cmd.OrderID == proposedID
	e, depth, err := s.claimOrLoad(ctx, cmd.OrderID, cmd.Kind == order.CommandCreate, fresh)
	if err != nil {
		s.metrics.commanded(0, cmd, false, err)
		return order.Order{}, err
	}
	if e == nil && s.shardFor(cmd.OrderID).foreign.marked(cmd.OrderID) {
		// An order only another writer has written is not in memory: its
		// actor reads it from the log (foreign.go) instead of answering 404.
		e, depth = s.claim(cmd.OrderID, true)
	}
	if e == nil {
		s.metrics.commanded(0, cmd, false, order.ErrOrderNotFound)
		return order.Order{}, order.ErrOrderNotFound
	}
	s.metrics.enqueued(depth)
	if depth > s.mailboxLimit {
		e.pending.Add(-1)
		s.metrics.commanded(0, cmd, false, ErrBusy)
		return order.Order{}, fmt.Errorf("%w: %d requests already queued for order %s", ErrBusy, s.mailboxLimit, cmd.OrderID)
	}
	e.lastUsed.Store(time.Now().UnixNano())
	pid, err := s.pidOf(e)
	if err != nil {
		e.pending.Add(-1)
		s.forget(e) // a refused create leaves no empty entry behind
		return order.Order{}, err
	}
	req := newExecuteRequest(ctx, cmd)
	s.actors.Root.Send(pid, req)
	select {
	case r := <-req.reply:
		req.recycle()
		return r.order, r.err
	case <-ctx.Done():
		if req.abandon() {
			s.metrics.commanded(0, cmd, false, ErrBusy)
			return order.Order{}, fmt.Errorf("%w: deadline passed while waiting for the order: %w", ErrBusy, ctx.Err())
		}
		// The actor has taken the request: it may have been recorded.
		return order.Order{}, fmt.Errorf("%w: deadline passed while the order was being written: %w", order.ErrOutcomeUnknown, ctx.Err())
	}
}

// routeCreate finds the order a keyed create belongs to. A retry of a create
// whose ID the server chose carries a new ID: it is sent to the order its
// first attempt was routed to, whose actor answers it from its keys. A create
// that names its ID goes to that order, unless its key already created
// another: then it is another request under a used key.
func (s *System) routeCreate(ctx context.Context, cmd *order.Command) error {
	k := clientKey{cmd.Principal, cmd.IdempotencyKey}
	if err := s.createdByStore(ctx, k, s.now()); err != nil {
		return err
	}
	if cmd.IDGenerated {
		cmd.OrderID = s.creates.claim(k, cmd.OrderID, s.now())
		return nil
	}
	if id, ok := s.creates.recorded(k, s.now()); ok && id != cmd.OrderID {
		return fmt.Errorf("%w: key %q created order %s", order.ErrIdempotencyKeyReused, cmd.IdempotencyKey, id)
	}
	return nil
}

// Get implements Service.
func (s *System) Get(ctx context.Context, id string) (order.Order, error) {
	snap, err := s.snapshotOf(ctx, id)
	if err != nil {
		return order.Order{}, err
	}
	return snap.current(), nil
}

// History implements Service.
func (s *System) History(ctx context.Context, id string) ([]order.Event, error) {
	snap, err := s.snapshotOf(ctx, id)
	if err != nil {
		return nil, err
	}
	return expandHistory(snap.id, snap.history), nil
}

func (s *System) snapshotOf(ctx context.Context, id string) (*snapshot, error) {
	if err := s.Ready(); err != nil {
		return nil, err
	}
	if err := order.ValidateID(id); err != nil {
		return nil, err
	}
	if err := s.checkRead(s.shardFor(id), id); err != nil {
		return nil, err
	}
	e, err := s.lookupOrLoad(ctx, id)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, order.ErrOrderNotFound
	}
	if s.store != nil { // a read keeps the order in memory too
		e.lastUsed.Store(time.Now().UnixNano())
	}
	snap := e.published.Load()
	if snap == nil || !snap.exists() {
		return nil, order.ErrOrderNotFound
	}
	return snap, nil
}

// Recover rebuilds every order from the journal with the same Apply rule as
// run time, then marks the System ready. Records that do not continue their
// order's path are counted and skipped, never applied.
//
// With a Store it reads nothing: the store is already complete up to the
// log's end (the caller's CatchUp), and orders are loaded from it on demand.
func (s *System) Recover(ctx context.Context) (RecoveryStats, error) {
	if s.store != nil {
		s.ready.Store(true)
		s.startBackground()
		return RecoveryStats{}, nil
	}
	start := time.Now()
	s.metrics.recovering()
	now := s.now() // one instant for the whole replay: what is in the key window
	stats := RecoveryStats{}
	replay, err := s.journal.Replay(ctx, func(ev order.Event) error {
		e := s.lookup(ev.OrderID, true)
		applied, created := s.applyRecovered(e, ev, now)
		switch {
		case !applied:
			stats.Skipped++
		case created:
			stats.Orders++
		}
		if applied {
			stats.Applied++
		}
		return nil
	})
	stats.Records, stats.Undecodable, stats.Duration = replay.Records, replay.Undecodable, time.Since(start)
	s.skipped.Add(int64(stats.Skipped))
	if err != nil {
		return stats, fmt.Errorf("actors: recovery: %w", err)
	}
	s.metrics.recovered(stats, stats.Duration)
	s.ready.Store(true)
	s.scheduleRecovered()
	s.startBackground()
	return stats, nil
}

// startBackground starts the goroutines a ready System runs: the timer, the
// passivation sweeper and, with a store, the evictor. Close stops them.
func (s *System) startBackground() {
	s.startTimers()
	s.stopSweeper, s.sweeperDone = make(chan struct{}), make(chan struct{})
	go s.runSweeper(s.stopSweeper, s.sweeperDone)
	if s.store != nil {
		s.stopEvictor, s.evictorDone = make(chan struct{}), make(chan struct{})
		go s.runEvictions(s.stopEvictor, s.evictorDone)
	}
}

// applyRecovered applies one record read from the log (or the state store)
// to e with the rule of run time, and remembers its idempotency key as of
// now. It reports whether the record was applied and whether it created the
// order. Nothing may read e while it runs: recovery runs before the System
// is ready, and a cold load builds its entry before publishing it.
func (s *System) applyRecovered(e *entry, ev order.Event, now time.Time) (applied, created bool) {
	var prev order.Order
	snap := e.published.Load()
	if snap != nil {
		prev = snap.current()
	}
	next, err := order.Apply(prev, ev)
	if err != nil {
		s.log.Warn("replay skipped a record", "order_id", ev.OrderID, "version", ev.Version, "err", err)
		return false, false
	}
	if ev.IdempotencyKey != "" {
		keys := e.recoveredKeys.Load()
		if keys == nil {
			keys = &order.KeyWindow{}
			e.recoveredKeys.Store(keys)
		}
		s.remember(keys, ev, next, now)
	}
	if snap == nil {
		e.published.Store(newSnapshot(next, []pastEvent{compactEvent(ev)}))
	} else {
		// Nothing reads the snapshot yet, so it is extended in place, not
		// replaced for every record.
		*snap = snapshotOf(next, append(snap.history, compactEvent(ev)))
	}
	return true, !prev.Exists()
}

// RecoveryStats reports what Recover read and did.
type RecoveryStats struct {
	Records     int // records read from the journal
	Undecodable int // records the journal could not decode
	Applied     int // records applied
	Skipped     int // duplicates and forks, counted and not applied
	Orders      int // orders rebuilt
	Duration    time.Duration
}

// Close stops taking commands, waits for the ones under way to be answered,
// and stops the actors. It is safe to call more than once. The journal is the caller's to close afterwards.
func (s *System) Close() {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		s.stopTimers() // before waiting for in-flight commands: its own are among them
		s.inFlight.Lock()
		defer s.inFlight.Unlock()
		if s.stopSweeper != nil {
			close(s.stopSweeper)
			<-s.sweeperDone
		}
		if s.stopEvictor != nil {
			close(s.stopEvictor)
			<-s.evictorDone
		}
		s.actors.Shutdown()
		s.dispatcher.close()
		s.pause.close()
		s.metrics.closed()
	})
}

// remember records ev's idempotency key in the order's window and, for a
// creation, in the server-wide create index.
func (s *System) remember(keys *order.KeyWindow, ev order.Event, after order.Order, now time.Time) {
	if ev.IdempotencyKey == "" {
		return
	}
	keys.Remember(ev, after, s.keyLimits, now)
	if ev.Version == 1 {
		s.creates.record(clientKey{ev.Principal, ev.IdempotencyKey}, ev.OrderID, ev.At, now)
	}
}

func positiveOr[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// newEventID makes a sortable unique ID for an event.
func (s *System) newEventID() string {
	var entropy [order.IDEntropyLen]byte
	_, _ = rand.Read(entropy[:]) // crypto/rand.Read never fails (Go 1.24+)
	return order.NewID(s.now(), entropy)
}

// demoted passes records on one level lower (Info becomes Debug), so the
// actor library's chatter stays out of an operator's Info log.
type demoted struct{ slog.Handler }

func (d demoted) Enabled(ctx context.Context, level slog.Level) bool {
	return d.Handler.Enabled(ctx, level-4)
}

func (d demoted) Handle(ctx context.Context, r slog.Record) error {
	r.Level -= 4
	return d.Handler.Handle(ctx, r)
}

func (d demoted) WithAttrs(attrs []slog.Attr) slog.Handler {
	return demoted{d.Handler.WithAttrs(attrs)}
}

func (d demoted) WithGroup(name string) slog.Handler { return demoted{d.Handler.WithGroup(name)} }
