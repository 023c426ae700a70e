// Package store is orderd's local state store: a copy of the audit log on
// the node's disk, arranged by order, in Pebble. It implements
// order.StateStore. The log stays the only source of truth: the store can
// always be deleted and rebuilt from it (persistence.OpenStore and
// KafkaJournal.CatchUp do that), so nothing here is ever the only copy.
//
// Key layout. Every key starts with one byte that names its kind; variable
// parts (order IDs, principals, idempotency keys) are written with their
// length in front (a uvarint), so no choice of them can make two keys equal
// or one kind's key a prefix of another's; integers are big-endian so that
// keys sort by them.
//
//	m                                → format version, topic, partition count (Identity)
//	c <partition u32>                → next offset to read in the partition (the checkpoint)
//	o <len><order id>                → summary: state, version, created/updated at, payment due, customer
//	e <len><order id> <version u64>  → the record's value, byte for byte as the log holds it
//	d <due u64> <len><order id>      → version whose event set the deadline (pending payments)
//	k <len><principal> <len><key>    → order id and time of the latest keyed create (merge.go)
//	a, s, b, q ... <order id>        → the listing indexes, by ID: all, by state, by customer,
//	                                   by customer and state (index.go)
//	i <len><sku>                     → inventory: the SKU's stock (inventory.go)
//	r <len><sku> <len><order id>     → inventory: the order's hold on the SKU (inventory.go)
//	x <len><checkout id> <version>   → a checkout's record, the log's bytes (checkout.go)
//	u <len><checkout id>             → a checkout started and not finished (checkout.go)
//
// The due time in d keys is Unix nanoseconds with the sign bit flipped, so
// that the keys sort by time. A feeder writes one Pebble batch per fetch of
// one partition, the partition's new checkpoint included: the store is
// always complete up to its checkpoints, never half a fetch.
//
// The event values are the log's own bytes: this package does not decode
// them. Options.Decode does, with persistence's record codec; persistence
// imports this package, so the codec is passed in rather than imported, and
// there is still one codec.
package store

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/orderd/orderd/order"
)

// Limits and sizes.
const (
	// BlockCacheBytesDefault bounds Pebble's block cache. The memory target
	// is an RSS of at most 150 MiB with a million orders in the log; the
	// store's reads are mostly one order at a time, which a small cache
	// serves as well as a large one.
	BlockCacheBytesDefault = 32 << 20
	// memTableBytes is Pebble's write buffer: each fetch chunk is at most
	// a few MiB of values (persistence's fetchBytesMax), so 16 MiB holds a
	// few of them and keeps two memtables well within the memory target.
	memTableBytes = 16 << 20
	// partitionsMax matches persistence.PartitionsMax: an identity claiming
	// more is not one orderd wrote.
	partitionsMax = 1024
)

// Identity says which log a store is a copy of. It is written when the store
// is created and compared on every later open.
type Identity struct {
	Topic      string
	Partitions int
}

// Options configure Open.
type Options struct {
	// Decode turns an event's stored value, the log record's value, back
	// into the event (persistence.DecodeEvent). Required.
	Decode func(orderID string, value []byte) (order.Event, error)
	// DecodeCheckout is Decode for a checkout's records
	// (persistence.DecodeCheckout). Required.
	DecodeCheckout func(checkoutID string, value []byte) (order.CheckoutEvent, error)
	// Logger receives Pebble's messages: its info at Debug, its errors at
	// Warn. nil discards them.
	Logger *slog.Logger
	// BlockCacheBytes: BlockCacheBytesDefault if zero.
	BlockCacheBytes int64
}

// Store is a state store opened on a directory. Its methods are safe from
// many goroutines at once; writes go through Batch, one writer per partition.
type Store struct {
	db     *pebble.DB
	lock   *pebble.Lock // the directory's, held from before Open to after Close
	id     Identity
	decode func(string, []byte) (order.Event, error)

	decodeCheckout func(string, []byte) (order.CheckoutEvent, error)

	mu          sync.Mutex // guards checkpoints and advanced
	checkpoints []int64
	// advanced is closed, and replaced, by every commit that moves a
	// checkpoint: WaitApplied's waiters wake on it.
	advanced chan struct{}
}

var _ order.StateStore = (*Store)(nil)

// Open opens the store in dir, creating it if dir holds none. A store that
// cannot be trusted (another identity or layout, damaged files) is refused
// with an error matching order.ErrStoreUnusable; the caller destroys it and
// builds a new one.
func Open(dir string, id Identity, opts Options) (*Store, error) {
	if opts.Decode == nil || opts.DecodeCheckout == nil {
		return nil, errors.New("store: Options.Decode and Options.DecodeCheckout are required")
	}
	if id.Topic == "" || id.Partitions < 1 || id.Partitions > partitionsMax {
		return nil, fmt.Errorf("store: bad identity %+v", id)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	cache := pebble.NewCache(cmpOr(opts.BlockCacheBytes, BlockCacheBytesDefault))
	defer cache.Unref() // the DB holds its own reference
	popts := pebbleOptions(cache, opts.Logger)
	popts.Lock = lock
	db, err := pebble.Open(dir, popts)
	if err != nil {
		_ = lock.Close()
		return nil, classifyOpen(dir, err)
	}
	s := &Store{db: db, lock: lock, id: id, decode: opts.Decode, decodeCheckout: opts.DecodeCheckout, advanced: make(chan struct{})}
	if err := s.checkIdentity(); err != nil {
		_ = s.Close()
		return nil, err
	}
	if s.checkpoints, err = s.readCheckpoints(); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// lockDir takes the store's directory lock before Pebble looks at its files,
// so that a store in use (by another process, or already open in this one) is
// told apart from a damaged one: it must never be destroyed under its owner.
func lockDir(dir string) (*pebble.Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	lock, err := pebble.LockDirectory(dir, vfs.Default)
	if err != nil {
		return nil, fmt.Errorf("store: %s is in use: %w", dir, err)
	}
	return lock, nil
}

// pebbleOptions sets what matters explicitly.
func pebbleOptions(cache *pebble.Cache, log *slog.Logger) *pebble.Options {
	log = orDiscard(log)
	opts := &pebble.Options{
		Cache:        cache,
		MemTableSize: memTableBytes,
		// Two memtables at most: one being filled, one being flushed.
		MemTableStopWritesThreshold: 2,
		Logger:                      pebbleLogger{log: log},
		// Pebble's default answer to a damaged file is Logger.Fatalf.
		// The store is a cache: the read that met the damage returns
		// an error matching order.ErrStoreUnusable, and the store is
		// rebuilt from the log.
		EventListener: &pebble.EventListener{DataCorruption: func(info pebble.DataCorruptionInfo) {
			log.Warn("pebble: a store file is damaged", "path", info.Path, "err", info.Details)
		}},
		Merger: keyedMerger,
		// The WAL stays on, but batches are committed without an fsync
		// (Batch.Commit): each batch is atomic and carries its
		// checkpoint, so a crash can only take the store back to an
		// earlier checkpoint, and the feeder reads the log again from
		// there. Syncing would buy nothing but latency.
		DisableWAL: false,
		// A new store in the newest on-disk format this Pebble writes
		// (an older store is moved up to it on open). A store written by
		// a newer Pebble fails to open and is rebuilt from the log.
		FormatMajorVersion: pebble.FormatNewest,
	}
	opts.EnsureDefaults()
	return opts
}

// classifyOpen tells a damaged store (unusable: rebuild it) from one that
// could not be opened for a reason rebuilding would not cure: the
// directory's permissions (its lock is taken before, by lockDir). Every other
// failure to open the files Pebble wrote (a missing or truncated MANIFEST, a
// missing table, garbage) means they are not what Pebble left.
func classifyOpen(dir string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("store: opening %s: %w", dir, err)
	}
	return fmt.Errorf("%w: opening %s: %w", order.ErrStoreUnusable, dir, err)
}

// checkIdentity writes the identity into a new store and compares it with an
// existing store's.
func (s *Store) checkIdentity() error {
	v, err := s.get(metaKey())
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if empty, err := s.isEmpty(); err != nil || !empty {
			return cmpErr(err, fmt.Errorf("%w: the store has data but no identity", order.ErrStoreUnusable))
		}
		return s.db.Set(metaKey(), encodeMeta(s.id), pebble.Sync)
	case err != nil:
		return err
	}
	got, err := decodeMeta(v)
	if err != nil {
		return fmt.Errorf("%w: identity: %w", order.ErrStoreUnusable, err)
	}
	if got != s.id {
		return fmt.Errorf("%w: the store is a copy of topic %q with %d partitions, not of %q with %d",
			order.ErrStoreUnusable, got.Topic, got.Partitions, s.id.Topic, s.id.Partitions)
	}
	return nil
}

func (s *Store) isEmpty() (bool, error) {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return false, s.readErr(err)
	}
	empty := !it.First()
	return empty, s.readErr(errors.Join(it.Error(), it.Close()))
}

func (s *Store) readCheckpoints() ([]int64, error) {
	out := make([]int64, s.id.Partitions)
	for p := range out {
		v, err := s.get(checkpointKey(p))
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if out[p], err = decodeCheckpoint(v); err != nil {
			return nil, fmt.Errorf("%w: partition %d: %w", order.ErrStoreUnusable, p, err)
		}
	}
	return out, nil
}

// get returns a copy of key's value; pebble.ErrNotFound if there is none.
func (s *Store) get(key []byte) ([]byte, error) {
	v, closer, err := s.db.Get(key)
	if err != nil {
		if errors.Is(err, pebble.ErrNotFound) {
			return nil, err
		}
		return nil, s.readErr(err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

// readErr marks Pebble's corruption errors as the store being unusable.
func (s *Store) readErr(err error) error {
	if err != nil && pebble.IsCorruptionError(err) {
		return fmt.Errorf("%w: %w", order.ErrStoreUnusable, err)
	}
	return err
}

// Identity returns the identity the store was opened with.
func (s *Store) Identity() Identity { return s.id }

// Checkpoints returns, per partition, the offset the store is complete up
// to (exclusive): where a feeder reads next.
func (s *Store) Checkpoints() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.checkpoints...)
}

// SizeBytes returns the space the store's files take on disk.
func (s *Store) SizeBytes() int64 { return int64(s.db.Metrics().DiskSpaceUsage()) }

// Flush writes what the store holds in memory to its tables, so that the
// next open has no write-ahead log to replay: before a planned stop, or in a
// test that damages tables.
func (s *Store) Flush() error { return s.db.Flush() }

// Close closes the store. Batches not committed are lost, which their
// checkpoints allow for. Nothing may use the store during or after Close
// (stop Follow first): Pebble panics on a closed database.
func (s *Store) Close() error { return errors.Join(s.db.Close(), s.lock.Close()) }

// Destroy removes the store in dir, and dir itself. It must not be open.
func Destroy(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("store: destroying %s: %w", dir, err)
	}
	return nil
}

// pebbleLogger routes Pebble's messages into slog, quietly: Pebble logs
// every flush and compaction at info.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Warn("pebble: " + fmt.Sprintf(format, args...))
}

// Fatalf is Pebble's report of a broken invariant, after which it must not
// go on: the store is a cache, so a panic loses nothing the log lacks.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := "pebble: " + fmt.Sprintf(format, args...)
	l.log.Error(msg)
	panic(msg)
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

func cmpOr(v, def int64) int64 {
	if v == 0 {
		return def
	}
	return v
}

// cmpErr returns err if it is not nil, else otherwise.
func cmpErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}
