package persistence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence/store"
)

// Feeding the state store (persistence/store) from the log: CatchUp at start,
// Follow afterwards. Both read through the one reader (readPartition) and
// apply records by the one rule (order.Apply, inside store.Batch.Apply), so
// the store holds exactly what a Replay folded with order.Apply would.

// Limits of following the log into the store.
const (
	// followRetryPauseMin and followRetryPauseMax space the restarts of a
	// partition's follower after a read ended with an error the reader does
	// not retry itself (a damaged batch, a broker that answered nonsense):
	// doubling, so that a lasting fault costs a fetch every half minute.
	followRetryPauseMin = time.Second
	followRetryPauseMax = 30 * time.Second
	// storeSizeInterval is how often Follow measures the store's size for
	// its gauge: Pebble sums its files' sizes under a lock.
	storeSizeInterval = 10 * time.Second
)

// CatchUpStats counts what a CatchUp read. From and To are, per partition,
// the offsets it read from and up to (the store's checkpoints before and
// after it).
type CatchUpStats struct {
	Records     int // read, skipped ones included; a corrupt batch counts as one
	Applied     int
	Skipped     int // not applied: duplicates, forks, undecodable records, corrupt batches
	Undecodable int // of Skipped: undecodable records and corrupt batches
	From, To    []int64
}

func (s *CatchUpStats) add(c feedCounts) {
	s.Records += c.applied + c.skipped
	s.Applied += c.applied
	s.Skipped += c.skipped
	s.Undecodable += c.undecodable
}

// feedCounts counts one fetch chunk of one partition.
type feedCounts struct {
	applied, skipped, undecodable int
}

// storeError marks an error of the store (not of the log), which reading
// the log again cannot cure.
type storeError struct{ err error }

func (e storeError) Error() string { return e.err.Error() }
func (e storeError) Unwrap() error { return e.err }

// OpenStore opens the state store in dir for this journal's topic and
// checks its checkpoints against the log's offsets. A store that cannot be
// trusted (order.ErrStoreUnusable: damaged, of another topic or partition
// count, ahead of the log) is logged with its reason and rebuilt
// (RebuildStore); rebuilt then says so, and the CatchUp that follows reads the
// whole log into it.
//
// Damage inside the store's tables shows only when they are read: CatchUp,
// Follow and the store's reads then return an error matching
// order.ErrStoreUnusable, and the caller closes the store and calls
// RebuildStore.
func OpenStore(ctx context.Context, dir string, j *KafkaJournal, log *slog.Logger) (st *store.Store, rebuilt bool, err error) {
	log = orDiscard(log)
	st, err = j.openCheckedStore(ctx, dir, log)
	if !errors.Is(err, order.ErrStoreUnusable) {
		return st, false, err
	}
	log.Warn("the state store cannot be trusted; rebuilding it from the log", "dir", dir, "reason", err)
	st, err = RebuildStore(ctx, dir, j, log)
	return st, err == nil, err
}

// RebuildStore destroys the state store in dir, which must be closed, and
// creates an empty one in its place, for CatchUp to fill from the log.
func RebuildStore(ctx context.Context, dir string, j *KafkaJournal, log *slog.Logger) (*store.Store, error) {
	if err := store.Destroy(dir); err != nil {
		return nil, err
	}
	return j.openCheckedStore(ctx, dir, orDiscard(log))
}

func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

func (j *KafkaJournal) openCheckedStore(ctx context.Context, dir string, log *slog.Logger) (*store.Store, error) {
	st, err := store.Open(dir, store.Identity{Topic: j.cfg.Topic, Partitions: j.partitions}, store.Options{
		Decode:         decodeStored,
		DecodeCheckout: decodeStoredCheckout,
		Logger:         log.With("store", dir),
	})
	if err != nil {
		return nil, err
	}
	ctx, done, err := j.beginRead(ctx)
	if err == nil {
		defer done()
		_, _, err = j.storeStart(ctx, st)
	}
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return st, nil
}

// decodeStored decodes an event value the store holds: with the log's own
// codec, since the store keeps the log's bytes.
func decodeStored(orderID string, value []byte) (order.Event, error) {
	return DecodeEvent([]byte(orderID), value)
}

// decodeStoredCheckout is decodeStored for a checkout's records.
func decodeStoredCheckout(checkoutID string, value []byte) (order.CheckoutEvent, error) {
	return DecodeCheckout([]byte(order.CheckoutKey(checkoutID)), value)
}

// storeStart checks st against the log and returns, per partition, the
// offset a CatchUp reads from, and the log's end offsets.
func (j *KafkaJournal) storeStart(ctx context.Context, st *store.Store) (from, end []int64, err error) {
	if err := j.checkIdentity(st); err != nil {
		return nil, nil, err
	}
	first, end, err := j.offsets(ctx, j.allPartitions())
	if err != nil {
		return nil, nil, err
	}
	from, err = checkCheckpoints(st.Checkpoints(), first, end)
	return from, end, err
}

func (j *KafkaJournal) checkIdentity(st *store.Store) error {
	if id := st.Identity(); id.Topic != j.cfg.Topic || id.Partitions != j.partitions {
		return fmt.Errorf("%w: the store is a copy of %q with %d partitions, the journal is on %q with %d",
			order.ErrStoreUnusable, id.Topic, id.Partitions, j.cfg.Topic, j.partitions)
	}
	return nil
}

// checkCheckpoints refuses checkpoints the log cannot have given: beyond its
// end (the log was recreated, or the store belongs to another cluster), or
// below its first offset (the log lost records the store never saw; a new
// store, at 0, simply starts at the first offset).
func checkCheckpoints(cps, first, end []int64) ([]int64, error) {
	from := make([]int64, len(cps))
	for p, cp := range cps {
		switch {
		case cp > end[p]:
			return nil, fmt.Errorf("%w: partition %d: checkpoint %d is ahead of the log's end offset %d", order.ErrStoreUnusable, p, cp, end[p])
		case cp > 0 && cp < first[p]:
			return nil, fmt.Errorf("%w: partition %d: checkpoint %d is below the log's first offset %d", order.ErrStoreUnusable, p, cp, first[p])
		}
		from[p] = max(cp, first[p])
	}
	return from, nil
}

func (j *KafkaJournal) allPartitions() []int {
	all := make([]int, j.partitions)
	for p := range all {
		all[p] = p
	}
	return all
}

// CatchUp brings st up to the end offsets the log has at the call: every
// partition from its checkpoint, several at once, one store batch per fetch
// response with the partition's new checkpoint. Records are applied by the
// one rule; the ones it skips, and undecodable records and corrupt batches,
// are counted and not stored. An error matching order.ErrStoreUnusable means
// st must be rebuilt (OpenStore).
func (j *KafkaJournal) CatchUp(ctx context.Context, st *store.Store) (CatchUpStats, error) {
	var stats CatchUpStats
	ctx, done, err := j.beginRead(ctx)
	if err != nil {
		return stats, err
	}
	defer done()
	start := time.Now()
	from, end, err := j.storeStart(ctx, st)
	if err != nil {
		return stats, fmt.Errorf("persistence: catching up the state store: %w", err)
	}
	stats.From = from
	// Reads from the checkpoints on must know the claims below them.
	if err := j.learnStoredClaims(st); err != nil {
		return stats, fmt.Errorf("persistence: reading the state store's claims: %w", err)
	}
	if err := skipLost(st, from); err != nil {
		return stats, fmt.Errorf("persistence: catching up the state store: %w", err)
	}
	j.cfg.Metrics.replayStarted(from, end)
	progress := newReplayProgress(j.log, from, end, time.Now)
	var mu sync.Mutex // guards stats and progress
	err = j.feedAll(ctx, st, from, end, func(_ int, c feedCounts) {
		mu.Lock()
		defer mu.Unlock()
		stats.add(c)
		j.cfg.Metrics.replayRead(c.applied + c.skipped)
		progress.observe(stats.Records)
	})
	stats.To = st.Checkpoints()
	if err != nil {
		return stats, fmt.Errorf("persistence: catching up the state store: %w", err)
	}
	// Every record below end is in the store: the writers take it from
	// there, as after a replay (foreign_writes.go).
	for p, w := range j.writers {
		w.learnEnd(end[p])
	}
	j.cfg.Metrics.storeSize(st)
	j.log.Info("caught up the state store", "records", stats.Records, "applied", stats.Applied,
		"skipped", stats.Skipped, "undecodable", stats.Undecodable, "elapsed", time.Since(start))
	return stats, nil
}

// skipLost moves the checkpoint of a store that has nothing of a partition
// to where the log now starts (its records below were deleted before the
// store saw them), so that Follow starts from an offset the log has.
func skipLost(st *store.Store, from []int64) error {
	for p, cp := range st.Checkpoints() {
		if from[p] > cp {
			b := st.NewBatch(p)
			err := b.Commit(from[p])
			b.Close()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// feedAll feeds the partitions with records between from and end on up to
// replayReadersMax goroutines; the first failure stops the others.
func (j *KafkaJournal) feedAll(ctx context.Context, st *store.Store, from, end []int64, counted func(int, feedCounts)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan int, len(from))
	for p := range from {
		if from[p] < end[p] {
			work <- p
		}
	}
	close(work)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range min(replayReadersMax, len(work)) {
		wg.Go(func() {
			for p := range work {
				err := j.feedPartition(ctx, st, &partitionRead{p: p, first: from[p], end: end[p]}, counted)
				if err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// feedPartition reads what read names into st. It fills in read's visit,
// corrupt and afterFetch; counted is told of every chunk committed.
func (j *KafkaJournal) feedPartition(ctx context.Context, st *store.Store, read *partitionRead, counted func(int, feedCounts)) error {
	p := read.p
	b := st.NewBatch(p)
	defer b.Close()
	var chunk feedCounts
	read.visit = func(rec LogRecord) error {
		if IsInventoryKey(rec.Key) {
			return feedInventory(j, b, p, rec, &chunk)
		}
		if IsCheckoutKey(rec.Key) {
			return feedCheckout(j, b, p, rec, &chunk)
		}
		ev, err := DecodeEvent(rec.Key, rec.Value)
		if err != nil {
			chunk.skipped++
			chunk.undecodable++
			j.logUndecodable(p, rec.Offset, err)
			return nil
		}
		switch err := b.Apply(ev, rec.Value); {
		case err == nil:
			chunk.applied++
		case errors.Is(err, order.ErrRecordDuplicate), errors.Is(err, order.ErrRecordFork):
			chunk.skipped++
		default:
			return storeError{err}
		}
		return nil
	}
	read.corrupt = func(offset int64, err error) {
		chunk.skipped++ // a batch counts as one: what it held is unknown
		chunk.undecodable++
		j.logUndecodable(p, offset, err)
	}
	committed := read.first
	afterFetch := read.afterFetch // Follow's, for the lag
	read.afterFetch = func(next, highWatermark int64) error {
		if next != committed {
			// The claims read since the last commit go with it: the next
			// start reads on from this checkpoint, past them.
			for _, o := range j.claims.claimsIn(p, committed, next) {
				if err := b.Claim(o); err != nil {
					return storeError{err}
				}
			}
			if err := b.Commit(next); err != nil {
				return storeError{err}
			}
			committed = next
			j.cfg.Metrics.storeFed(chunk)
			counted(p, chunk)
			chunk = feedCounts{}
		}
		if afterFetch != nil {
			return afterFetch(next, highWatermark)
		}
		return nil
	}
	return j.src.readPartition(ctx, read)
}

// Follow keeps st fed from its checkpoints on, one goroutine per partition,
// until ctx ends or the journal closes; it returns once they all have
// stopped. Failed fetches are retried after pauses, as a consumer does, and
// logged once per streak. Follow returns early only when the store fails (an
// error matching order.ErrStoreUnusable, or a write that failed): then st
// must be rebuilt. Run it after CatchUp.
func (j *KafkaJournal) Follow(ctx context.Context, st *store.Store) error {
	ctx, done, err := j.beginRead(ctx)
	if err != nil {
		return err
	}
	defer done()
	// The checkpoints alone say where to start: Follow needs no broker
	// to begin, and waits out one that is down like any fetch.
	if err := j.checkIdentity(st); err != nil {
		return fmt.Errorf("persistence: following the log into the state store: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for p := range j.partitions {
		wg.Go(func() {
			if err := j.followPartition(ctx, st, p); err != nil {
				mu.Lock()
				firstErr = cmpErr(firstErr, err)
				mu.Unlock()
				cancel()
			}
		})
	}
	wg.Go(func() { j.measureStore(ctx, st) })
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("persistence: following the log into the state store: %w", firstErr)
	}
	return nil
}

// followPartition feeds partition p into st until ctx ends. Reads that end
// with an error of the log start again from the checkpoint after a pause;
// an error of the store is returned.
func (j *KafkaJournal) followPartition(ctx context.Context, st *store.Store, p int) error {
	pause := followRetryPauseMin
	streak := false // a failure streak is being reported
	for ctx.Err() == nil {
		read := &partitionRead{p: p, first: st.Checkpoints()[p], end: followEnd}
		read.retry = func(err error, failures int) error {
			if !streak {
				streak = true
				j.log.Warn("following the log into the state store: fetch failed; retrying", "partition", p, "err", err)
			}
			return nil
		}
		read.afterFetch = func(next, highWatermark int64) error {
			if streak {
				streak = false
				j.log.Info("following the log into the state store again", "partition", p)
			}
			pause = followRetryPauseMin
			j.cfg.Metrics.storeLag(p, highWatermark-next)
			return nil
		}
		err := j.feedPartition(ctx, st, read, func(int, feedCounts) {})
		var se storeError
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &se):
			return fmt.Errorf("partition %d: %w", p, se.err)
		}
		if !streak {
			streak = true
			j.log.Warn("following the log into the state store: read failed; retrying", "partition", p, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
		pause = min(2*pause, followRetryPauseMax)
	}
	return nil
}

// measureStore keeps the store size gauge current until ctx ends.
func (j *KafkaJournal) measureStore(ctx context.Context, st *store.Store) {
	if j.cfg.Metrics == nil {
		return
	}
	t := time.NewTicker(storeSizeInterval)
	defer t.Stop()
	for {
		j.cfg.Metrics.storeSize(st)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// cmpErr returns err if it is not nil, else otherwise.
func cmpErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// feedInventory is feedPartition's visit for an inventory record: the same
// rule, counted the same way.
func feedInventory(j *KafkaJournal, b *store.Batch, p int, rec LogRecord, chunk *feedCounts) error {
	ev, err := DecodeInventory(rec.Key, rec.Value)
	if err != nil {
		chunk.skipped++
		chunk.undecodable++
		j.logUndecodable(p, rec.Offset, err)
		return nil
	}
	switch err := b.ApplyInventory(ev); {
	case err == nil:
		chunk.applied++
	case errors.Is(err, order.ErrRecordDuplicate), errors.Is(err, order.ErrRecordFork):
		chunk.skipped++
	default:
		return storeError{err}
	}
	return nil
}

// feedCheckout is feedPartition's visit for a checkout record: the same
// rule, counted the same way.
func feedCheckout(j *KafkaJournal, b *store.Batch, p int, rec LogRecord, chunk *feedCounts) error {
	ev, err := DecodeCheckout(rec.Key, rec.Value)
	if err != nil {
		chunk.skipped++
		chunk.undecodable++
		j.logUndecodable(p, rec.Offset, err)
		return nil
	}
	switch err := b.ApplyCheckout(ev, rec.Value); {
	case err == nil:
		chunk.applied++
	case errors.Is(err, order.ErrRecordDuplicate), errors.Is(err, order.ErrRecordFork):
		chunk.skipped++
	default:
		return storeError{err}
	}
	return nil
}
