package actors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/orderd/orderd/order"
)

// With a state store (Config.Store), memory holds only the orders in use.
// The store is the node's copy of the log by order, fed from the log by
// persistence and complete up to its checkpoints; the log stays the only
// source of truth. So:
//   - Recover reads nothing: the caller has brought the store up to the
//     log's end (persistence's CatchUp) before it, and orders are loaded
//     from the store the first time a command or read names them (a cold
//     load), with the rule replay uses (applyRecovered).
//   - An order untouched for EvictAfter, whose actor has stopped and whose
//     every event the store already holds, leaves memory (evictIdle).
//   - Payment deadlines wait in the store; only those due within
//     deadlineHorizon are in the timer heap (scanDeadlines).
//
// Without a store every order stays in memory and Recover replays the
// whole log, as before.
const (
	// EvictAfterDefault: an order untouched this long leaves memory. A
	// client's retries and its next step (paying right after checkout)
	// come within a minute or two, and a cold load costs one read of the
	// local store (well under a millisecond) while a hot order costs
	// ~0.5–2 KB: at the seeds' 250 new orders/s, two minutes keep about
	// 30,000 orders (tens of MB) in memory, whatever the log holds.
	EvictAfterDefault = 2 * time.Minute
	// evictSweepIntervalMax bounds the wait between eviction sweeps; a
	// sweep walks the orders in memory, so it runs a few times per
	// EvictAfter, not every passivation tick.
	evictSweepIntervalMax = 30 * time.Second
	// coldLoadAttempts bounds how often a cold load starts over because the
	// store moved on while it read (the order was loaded, changed and evicted
	// meanwhile, or another writer's record arrived): a second attempt
	// nearly always settles it.
	coldLoadAttempts = 8
	// deadlineHorizon: payment deadlines due within it are kept in the
	// timer heap; later ones wait in the store, which the timer scans
	// again every deadlineScanInterval. A deadline set at run time for
	// later than twice the horizon is left to the scan: the store must
	// hold it within one horizon (the feeder's lag is seconds).
	deadlineHorizon      = 10 * time.Minute
	deadlineScanInterval = deadlineHorizon / 4
	// storeReadTimeout bounds a store read made outside a request (the
	// sweeper's, the timer's); a request's own deadline bounds its reads.
	storeReadTimeout = 30 * time.Second
)

// loadCold returns the entry of an order that is not in memory, built from
// the store; nil if the store does not know the order. The caller holds no
// lock.
func (s *System) loadCold(ctx context.Context, id string) (*entry, error) {
	sh := s.shardFor(id)
	for range coldLoadAttempts {
		loaded, err := s.store.Version(ctx, id)
		if err != nil {
			return nil, s.storeFailed(ctx, id, err)
		} else if loaded == 0 {
			return nil, nil
		}
		events, err := s.store.Events(ctx, id)
		if errors.Is(err, order.ErrOrderNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, s.storeFailed(ctx, id, err)
		}
		e := &entry{id: id}
		now := s.now()
		for _, ev := range events {
			s.applyRecovered(e, ev, now)
		}
		snap := e.published.Load()
		if snap == nil || !snap.exists() {
			return nil, nil // the store held nothing the rule accepts
		}
		built := snap.history[len(snap.history)-1].version
		e.lastUsed.Store(time.Now().UnixNano())
		sh.mu.Lock()
		if cur := sh.orders[id]; cur != nil {
			sh.mu.Unlock()
			return cur, nil // loaded by another request meanwhile
		}
		// Meanwhile this order may have been loaded, changed and evicted
		// again (evict removes it only once the store holds its newest
		// version): then the store is ahead of what was read, and the load
		// starts over. Checked under the lock evict takes to remove it.
		if v, err := s.store.Version(ctx, id); err != nil || v != built {
			sh.mu.Unlock()
			if err != nil {
				return nil, s.storeFailed(ctx, id, err)
			}
			continue
		}
		sh.orders[id] = e
		sh.mu.Unlock()
		s.metrics.coldLoaded()
		s.coldLoads.Add(1)
		return e, nil
	}
	return nil, fmt.Errorf("%w: order %s was evicted while being loaded, %d times", ErrBusy, id, coldLoadAttempts)
}

// storeFailed is the error of a failed cold load: the request's deadline
// passed (nothing was done, as when it waits in a mailbox), or the store
// could not be read (the server cannot answer for the order until it can).
func (s *System) storeFailed(ctx context.Context, id string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: deadline passed while loading the order: %w", ErrBusy, ctx.Err())
	}
	return fmt.Errorf("%w: reading order %s from the state store: %w", ErrNotReady, id, err)
}

// lookupOrLoad is lookup for a command or a read: in memory, or else from
// the store when there is one; nil if the order is known to neither.
func (s *System) lookupOrLoad(ctx context.Context, id string) (*entry, error) {
	if e := s.lookup(id, false); e != nil || s.store == nil {
		return e, nil
	}
	return s.loadCold(ctx, id)
}

// evictIdle removes from memory the orders untouched since before cutoff
// whose actor has stopped and whose every event the store holds, so that
// memory follows the orders in use rather than the log. It returns how many
// it removed.
func (s *System) evictIdle(cutoff time.Time) int {
	evicted := 0
	limit := cutoff.UnixNano()
	for _, sh := range s.shards {
		sh.mu.RLock()
		var idle []*entry
		for _, e := range sh.orders {
			if e.lastUsed.Load() < limit && e.pending.Load() == 0 {
				idle = append(idle, e)
			}
		}
		sh.mu.RUnlock()
		for _, e := range idle {
			if s.evict(sh, e, limit) {
				evicted++
			}
		}
	}
	if evicted > 0 {
		s.metrics.evicted(evicted)
		s.evictions.Add(int64(evicted))
	}
	return evicted
}

// evict removes e if it is still idle and the store has caught up with it.
func (s *System) evict(sh *shard, e *entry, limit int64) bool {
	snap := e.published.Load()
	if snap == nil || !snap.exists() {
		return false // a create under way, or one refused: forget's to handle
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeReadTimeout)
	defer cancel()
	// The store may lag the log by a few records; an order it does not
	// yet hold at this version stays, and the next sweep looks again.
	if v, err := s.store.Version(ctx, e.id); err != nil || v < snap.history[len(snap.history)-1].version {
		return false
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e.spawnMu.Lock()
	defer e.spawnMu.Unlock()
	if sh.orders[e.id] != e || e.pid != nil || e.pending.Load() != 0 ||
		e.lastUsed.Load() >= limit || e.published.Load() != snap {
		return false
	}
	delete(sh.orders, e.id)
	return true
}

// runEvictions sweeps for idle orders until stop is closed.
func (s *System) runEvictions(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	ticker := time.NewTicker(min(s.evictAfter/4, evictSweepIntervalMax))
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
			s.evictIdle(time.Now().Add(-s.evictAfter))
		}
	}
}

// scanDeadlines moves the store's deadlines due before now+deadlineHorizon,
// and not yet scanned, into the timer heap. It runs in the timer's rounds
// (fireMu held), once per deadlineScanInterval of the System's clock.
func (s *System) scanDeadlines(now time.Time) {
	if s.store == nil {
		return
	}
	t := s.timers
	before := now.Add(deadlineHorizon).UnixNano()
	from := t.scannedUntil.Load()
	if from != 0 && before-from < int64(deadlineScanInterval) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeReadTimeout)
	defer cancel()
	var found []deadline
	err := s.store.PendingDeadlines(ctx, time.Unix(0, before), func(d order.PendingDeadline) error {
		if due := d.Due.UnixNano(); due >= from {
			found = append(found, deadline{due: due, version: d.Version, id: d.OrderID})
		}
		return nil
	})
	if err != nil {
		s.log.Warn("payment deadlines: reading the state store failed, will retry", "err", err)
		return
	}
	t.pushAll(found)
	t.scannedUntil.Store(before)
}

// heapTakes tells whether a deadline set at run time goes into the heap now
// or is left for a later scan of the store to find.
func (s *System) heapTakes(d deadline) bool {
	if s.store == nil {
		return true
	}
	// Before the first scan everything goes in: the store may not yet hold
	// a deadline set in the moment between ready and that scan.
	scanned := s.timers.scannedUntil.Load()
	return scanned == 0 || d.due < scanned+int64(deadlineHorizon)
}

// createdByStore asks the store which order a keyed create made, for a key
// the in-memory index no longer (or not yet, after a restart) holds, and
// records the answer there.
func (s *System) createdByStore(ctx context.Context, k clientKey, now time.Time) error {
	if s.store == nil {
		return nil
	}
	if _, ok := s.creates.recorded(k, now); ok {
		return nil
	}
	id, at, err := s.store.CreatedBy(ctx, k.principal, k.key)
	switch {
	case errors.Is(err, order.ErrOrderNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("%w: reading idempotency key %q from the state store: %w", ErrNotReady, k.key, err)
	}
	s.creates.record(k, id, at, now)
	return nil
}

// StoreStats reports the orders in memory, and the cold loads and evictions
// since start.
func (s *System) StoreStats() (inMemory int, coldLoads, evictions int64) {
	for _, sh := range s.shards {
		sh.mu.RLock()
		inMemory += len(sh.orders)
		sh.mu.RUnlock()
	}
	return inMemory, s.coldLoads.Load(), s.evictions.Load()
}

// claimOrLoad is claim, loading the order from the store first when it is
// not in memory (unless fresh: an ID the server just generated). A create
// registers the order when neither holds it.
func (s *System) claimOrLoad(ctx context.Context, id string, create, fresh bool) (*entry, int32, error) {
	if s.store == nil || fresh {
		e, depth := s.claim(id, create)
		return e, depth, nil
	}
	for range coldLoadAttempts {
		if e, depth := s.claim(id, false); e != nil {
			return e, depth, nil
		}
		loaded, err := s.loadCold(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		if loaded == nil {
			e, depth := s.claim(id, create)
			return e, depth, nil
		}
		// Loaded: claim it on the next turn (an eviction in between,
		// possible only with a tiny EvictAfter, loads it again).
	}
	return nil, 0, fmt.Errorf("%w: order %s was evicted while being loaded, %d times", ErrBusy, id, coldLoadAttempts)
}
