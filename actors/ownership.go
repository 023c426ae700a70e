package actors

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
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
	return sh.gate.mu.RUnlock, nil
}

// serves reports whether reads of sh are answered here.
func (s *System) serves(sh *shard) bool { return !s.clustered || sh.gate.owned.Load() }

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
	sh.liveMu.Lock()
	sh.live = map[*entry]struct{}{}
	sh.liveMu.Unlock()
	sh.foreign.reset()
}
