package actors

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Passivation: an order's actor costs about 2 KB (BenchmarkBytesPerIdleOrder)
// on top of its published state, so actors of orders nobody has touched for
// a while are stopped, and started again from the published state on their
// next command. A cap on live actors turns a flood of distinct orders into
// 503 busy instead of unbounded memory.
const (
	// IdleActorTimeoutDefault: an order untouched this long loses its actor.
	// Orders are busy in bursts (a retry, a client's next step) and then
	// idle for minutes or days; restarting an actor costs microseconds, while
	// keeping one costs ~2 KB. At 15,000 creates/s every second of timeout
	// keeps 15,000 more actors (30 MB, and twice that in heap the garbage
	// collector lets grow): at 10 s that was a fifth of the memory of a
	// million orders, at 2 s it is a twenty-fifth.
	IdleActorTimeoutDefault = 2 * time.Second
	// LiveActorsMaxDefault bounds live actors: about 1 GB of actors at the
	// measured 2 KB each, below the memory target of a million orders.
	LiveActorsMaxDefault = 500_000
	// passivationSweepsPerTimeout: how often, per idle timeout, the sweeper
	// looks for idle actors; an idle actor lives at most 1+1/n timeouts.
	passivationSweepsPerTimeout = 4
)

// passivateRequest asks an order's actor to stop if it is still idle. It
// travels through the mailbox, so it is handled after every request that
// was queued before it.
type passivateRequest struct{ idleSince int64 }

// spawnActor starts the order's actor unless the live-actor cap is reached.
// e.spawnMu must be held.
func (s *System) spawnActor(e *entry) (*actor.PID, error) {
	if s.live.Add(1) > s.liveActorsMax {
		s.live.Add(-1)
		return nil, fmt.Errorf("%w: %d orders have live actors, the server's limit; retry shortly", ErrBusy, s.liveActorsMax)
	}
	e.pid = s.actors.Root.Spawn(s.props(e))
	sh := s.shardFor(e.id)
	sh.liveMu.Lock()
	sh.live[e] = struct{}{}
	sh.liveMu.Unlock()
	s.metrics.actorStarted()
	return e.pid, nil
}

// passivate is the actor's side: it stops itself if no request has arrived
// since the sweeper saw it idle and none is queued, after handing its
// idempotency keys back to the entry. Holding spawnMu while it checks and
// clears the pid means Execute either queued a request first (pending > 0:
// stay) or finds no pid and starts a fresh actor from the published state.
func (a *orderActor) passivate(ctx actor.Context, req *passivateRequest) {
	if !a.stopIfIdle(ctx, req) {
		return
	}
	// An order whose creation failed (the journal refused it) has nothing
	// to keep: its entry goes too, so failed creates cannot pile up.
	a.sys.forget(a.entry)
}

func (a *orderActor) stopIfIdle(ctx actor.Context, req *passivateRequest) bool {
	e := a.entry
	e.spawnMu.Lock()
	defer e.spawnMu.Unlock()
	if a.fenced || e.pending.Load() > 0 || e.lastUsed.Load() != req.idleSince || e.pid == nil {
		return false
	}
	if a.keys.Len() > 0 { // most orders have no keys: keep nothing for them
		keys := a.keys
		e.recoveredKeys.Store(&keys)
	}
	e.pid = nil
	sh := a.sys.shardFor(e.id)
	sh.liveMu.Lock()
	delete(sh.live, e)
	sh.liveMu.Unlock()
	e.spawns.Store(0) // the next start is a fresh one, not a restart after a crash
	a.sys.live.Add(-1)
	a.sys.passivated.Add(1)
	a.sys.metrics.actorPassivated()
	ctx.Stop(ctx.Self())
	return true
}

// claim looks the order up (registering it when create is set) and counts
// the request into its mailbox depth while holding the shard's lock, so that
// forget, which removes an empty entry only under the same lock and only when
// nothing is counted, can never remove an entry a request is on its way to
// (its order would be invisible, and a later create would fork the log).
func (s *System) claim(id string, create bool) (*entry, int32) {
	sh := s.shardFor(id)
	sh.mu.RLock()
	e := sh.orders[id]
	var depth int32
	if e != nil {
		depth = e.pending.Add(1)
	}
	sh.mu.RUnlock()
	if e != nil || !create {
		return e, depth
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e = sh.orders[id]; e == nil {
		e = &entry{id: id}
		sh.orders[id] = e
	}
	return e, e.pending.Add(1)
}

// forget removes an entry that holds no order — a create refused at the
// live-actor cap, or one the journal refused — unless an actor runs for it
// or a request is on its way (claim counts it under the shard's lock).
func (s *System) forget(e *entry) {
	if snap := e.published.Load(); snap != nil && snap.exists() {
		return
	}
	sh := s.shardFor(e.id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e.spawnMu.Lock()
	defer e.spawnMu.Unlock()
	if sh.orders[e.id] != e || e.pid != nil || e.pending.Load() != 0 {
		return
	}
	if snap := e.published.Load(); snap != nil && snap.exists() {
		return
	}
	delete(sh.orders, e.id)
}

// sweep asks the actors of orders idle longer than the timeout to stop.
func (s *System) sweep(now time.Time) {
	cutoff := now.Add(-s.idleActorTimeout).UnixNano()
	s.sweepSKUs(cutoff)
	for _, sh := range s.shards {
		sh.liveMu.Lock()
		var idle []*entry
		for e := range sh.live {
			if used := e.lastUsed.Load(); used != 0 && used < cutoff {
				idle = append(idle, e)
			}
		}
		sh.liveMu.Unlock()
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

// runSweeper sweeps until stop is closed; Close stops it.
func (s *System) runSweeper(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	ticker := time.NewTicker(s.idleActorTimeout / passivationSweepsPerTimeout)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
			s.sweep(time.Now())
		}
	}
}

// LiveActors reports how many orders have a running actor, and how many
// actors were passivated since start.
func (s *System) LiveActors() (live, passivated int64) {
	return s.live.Load(), s.passivated.Load()
}

func (m *Metrics) actorPassivated() {
	if m == nil {
		return
	}
	m.actorsLive.Dec()
	m.passivated.Inc()
}
