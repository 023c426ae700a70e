package actors

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// In a cluster (Config.Clustered) each node serves only the partitions the
// consumer group gave it (DESIGN §9): a shard = a partition is served from
// Own, which the caller makes once it has taken the partition over (its
// claim is in the log and the state store holds everything before it), to
// Disown, which the caller makes when the group takes it away and which
// returns only once no command on it is under way. Memory of a partition is
// dropped at both ends: what this node held of it before another node wrote
// there is stale, and the store, complete up to the claim, has it all.

// ErrNotOwner: in a cluster, this node does not serve the order's partition
// (another node does, or nobody while the group rebalances). Nothing was
// applied; the request belongs to the partition's owner.
var ErrNotOwner = fmt.Errorf("%w: this node does not serve the order's partition", ErrNotReady)

// partitionGate is a shard's ownership in a cluster.
type partitionGate struct {
	// mu is held shared by every command on the shard while it runs, and
	// exclusively by Own and Disown, so that Disown returns only once the
	// commands under way have been answered.
	mu    sync.RWMutex
	owned atomic.Bool
	// epoch counts the times this node started to serve the partition:
	// something that lasts beyond one command (a checkout saga) tells
	// from it that the partition left and came back meanwhile.
	epoch atomic.Uint64
}

// enter admits a command to sh, returning the function that ends it; an error
// matching ErrNotOwner if this node does not serve sh. Outside a cluster
// every shard is served and nothing is held.
func (s *System) enter(sh *shard, id string) (func(), error) {
	if !s.clustered {
		return func() {}, nil
	}
	sh.gate.mu.RLock()
	if !sh.gate.owned.Load() {
		sh.gate.mu.RUnlock()
		return nil, fmt.Errorf("%w: order %s", ErrNotOwner, id)
	}
	if err := s.pause.check(); err != nil {
		sh.gate.mu.RUnlock()
		return nil, err
	}
	return sh.gate.mu.RUnlock, nil
}

// serves reports whether reads of sh are answered here.
func (s *System) serves(sh *shard) bool { return !s.clustered || sh.gate.owned.Load() }

// checkRead returns an error matching ErrNotOwner unless a read of sh is
// answered here now.
func (s *System) checkRead(sh *shard, id string) error {
	if !s.serves(sh) {
		return fmt.Errorf("%w: order %s", ErrNotOwner, id)
	}
	return s.pause.check()
}

// Own starts serving partition p. The caller must have taken it over: the
// journal writes under this node's claim, and the store holds the log up to
// the claim.
func (s *System) Own(p int) error {
	sh, err := s.partition(p)
	if err != nil {
		return err
	}
	sh.gate.mu.Lock()
	defer sh.gate.mu.Unlock()
	s.dropShard(sh)
	sh.gate.epoch.Add(1)
	sh.gate.owned.Store(true)
	// The partition's payment deadlines are this node's now: the next
	// round of the timer reads the store's again.
	s.timers.scannedUntil.Store(0)
	s.timers.poke()
	return nil
}

// Disown stops serving partition p: new commands are refused with
// ErrNotOwner, and Disown returns once those under way have been answered,
// with the partition's orders out of memory.
func (s *System) Disown(p int) error {
	sh, err := s.partition(p)
	if err != nil {
		return err
	}
	sh.gate.mu.Lock()
	defer sh.gate.mu.Unlock()
	sh.gate.owned.Store(false)
	s.dropShard(sh)
	return nil
}

// Serves reports whether this node serves partition p (always, outside a
// cluster).
func (s *System) Serves(p int) bool {
	return p >= 0 && p < len(s.shards) && s.serves(s.shards[p])
}

// Serving reports whether this node serves partition p now, and the
// partition's epoch here (how many times it started to serve it; 0 outside
// a cluster).
func (s *System) Serving(p int) (epoch uint64, ok bool) {
	if p < 0 || p >= len(s.shards) {
		return 0, false
	}
	sh := s.shards[p]
	if !s.clustered {
		return 0, true
	}
	// Both as of one moment: Own and Disown hold the gate exclusively.
	sh.gate.mu.RLock()
	defer sh.gate.mu.RUnlock()
	return sh.gate.epoch.Load(), sh.gate.owned.Load()
}

// Owned lists the partitions this node serves.
func (s *System) Owned() []int {
	var out []int
	for p, sh := range s.shards {
		if s.serves(sh) {
			out = append(out, p)
		}
	}
	return out
}

func (s *System) partition(p int) (*shard, error) {
	if !s.clustered {
		return nil, errors.New("actors: Own and Disown are for a clustered System")
	}
	if p < 0 || p >= len(s.shards) {
		return nil, fmt.Errorf("actors: partition %d of %d", p, len(s.shards))
	}
	return s.shards[p], nil
}

// dropShard stops the shard's actors and forgets its orders. The gate is held
// exclusively: no command runs on the shard. An actor still finishing a
// command its caller gave up on stops after it.
func (s *System) dropShard(sh *shard) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for _, e := range sh.orders {
		e.spawnMu.Lock()
		if e.pid != nil {
			s.actors.Root.Stop(e.pid)
			e.pid = nil
			s.live.Add(-1)
		}
		e.spawnMu.Unlock()
	}
	sh.orders = map[string]*entry{}
	s.dropSKUs(sh)
	sh.liveMu.Lock()
	sh.live = map[*entry]struct{}{}
	sh.liveMu.Unlock()
	sh.foreign.reset()
}

// A node paused past its session (SIGSTOP, a VM frozen, a stop-the-world of
// seconds) wakes up believing it still owns its partitions until its next
// heartbeat fails, which kafka-go learns only after it has run again. Its
// writes are safe (the claims fence them); its reads would answer from
// memory that another owner may have moved past. So a clustered System keeps
// a heartbeat of its own: a ticker every pauseTick. A gap between two ticks
// longer than pauseGapMax means the process did not run, and then reads and
// commands are refused for pauseHold: long enough for the group's heartbeat
// to fail and Revoked to take the partitions, if they are gone.
const (
	pauseTick   = 50 * time.Millisecond
	pauseGapMax = 2 * time.Second
	// pauseHoldDefault covers a heartbeat interval and a heartbeat's
	// request timeout (a third of the default 6 s session) with room.
	pauseHoldDefault = 5 * time.Second
)

// pauseGuard refuses service after the process was paused (see above).
type pauseGuard struct {
	hold time.Duration
	// Times are nanoseconds since base, read from the monotonic clock
	// (which runs on while the process is stopped, and never jumps).
	base      time.Time
	lastTick  atomic.Int64
	heldUntil atomic.Int64 // stored before lastTick, read after it
	stop      chan struct{}
	done      chan struct{}
}

func startPauseGuard(hold time.Duration) *pauseGuard {
	g := &pauseGuard{hold: hold, base: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go g.run()
	return g
}

func (g *pauseGuard) run() {
	defer close(g.done)
	tick := time.NewTicker(pauseTick)
	defer tick.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-tick.C:
			now := g.now()
			last := g.lastTick.Load()
			if now-last > int64(pauseGapMax) {
				g.heldUntil.Store(now + int64(g.hold))
			}
			g.lastTick.CompareAndSwap(last, now)
		}
	}
}

// check returns an error matching ErrNotOwner while the node may have been
// deposed during a pause it has just woken from.
func (g *pauseGuard) check() error {
	if g == nil {
		return nil
	}
	now := g.now()
	if gap := now - g.lastTick.Load(); gap > int64(pauseGapMax) {
		return fmt.Errorf("%w: this node did not run for %v; it waits to learn whether it still owns its partitions", ErrNotOwner, time.Duration(gap).Round(time.Millisecond))
	}
	if until := g.heldUntil.Load(); now < until {
		return fmt.Errorf("%w: this node woke from a pause; it waits %v to learn whether it still owns its partitions", ErrNotOwner, time.Duration(until-now).Round(time.Millisecond))
	}
	return nil
}

func (g *pauseGuard) now() int64 { return int64(time.Since(g.base)) }

func (g *pauseGuard) close() {
	if g != nil {
		close(g.stop)
		<-g.done
	}
}
