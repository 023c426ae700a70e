package persistence

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"time"

	"github.com/segmentio/kafka-go"
)

// Reading the log: the one reader of the audit topic. Replay, Load, the
// two-writer check (foreign_writes.go) and orderctl tail all read through
// readPartition: Fetch requests on a connection of its own to the
// partition's leader (fetch_raw.go), record batches read in place
// (batch.go), corrupt batches skipped and counted, damaged ones refused.
// docs/reading-the-log.md says why it is ours and not a library's: the
// measurement is in docs/read-path-candidates.md.

// Limits of a partition read.
const (
	// readRetryBackoffMin and readRetryBackoffMax space the attempts to
	// fetch again after a failed fetch (a leader that moved, a broken
	// connection): doubling from the first to the second.
	readRetryBackoffMin = 100 * time.Millisecond
	readRetryBackoffMax = 2 * time.Second
	// readAttemptsMax bounds the fetches in a row that fail before a
	// bounded read (replay, Load) gives up and reports the error: with the
	// backoff, about 4 s of a broker that does not serve the partition.
	// Replay's caller retries the whole replay with its own backoff.
	readAttemptsMax = 5
)

// followEnd is the end offset of a read that follows the partition until
// its context ends.
const followEnd = math.MaxInt64

// logSource is where reads fetch from: one topic, its brokers' metadata, and
// how to connect to them.
type logSource struct {
	topic      string
	meta       *kafka.Client // partition leaders
	dial       func(ctx context.Context, network, address string) (net.Conn, error)
	security   *Security // TLS (beneath dial's connections) and SASL; nil: neither
	clientID   string
	fetchBytes int
	// claims, if not nil, filters every read by the claim rule
	// (claims.go): the journal's reads do; orderctl tail's show all.
	claims *claimTable
}

// partitionRead is one read of partition p from offset first up to end
// (exclusive; followEnd: until ctx ends).
type partitionRead struct {
	p          int
	first, end int64
	// visit is called for every record, in order. The record is valid
	// only during the call.
	visit func(LogRecord) error
	// afterFetch, if not nil, runs after each fetch response, with the
	// offset the read goes on from (every record below it was visited or
	// skipped) and the partition's high watermark the response carried.
	afterFetch func(next, highWatermark int64) error
	// corrupt, if not nil, is told of each corrupt batch the read skips
	// (batch.go); without it, one ends the read with an error.
	corrupt func(offset int64, err error)
	// retry, if not nil, is told of each failed fetch before the read
	// connects again, with the number of failures in a row; a non-nil
	// return ends the read with that error. nil: up to readAttemptsMax.
	retry func(err error, failures int) error
}

// readPartition reads r.p from r.first to r.end. A failed fetch (errFetch)
// is tried again on a new connection to the leader, from the first record
// not yet visited, as r.retry allows; a damaged batch (ErrBatchDamaged) ends
// the read.
func (src *logSource) readPartition(ctx context.Context, r *partitionRead) error {
	if src.claims != nil {
		filtered := *r
		filtered.visit = src.claims.filter(r.p, r.visit)
		r = &filtered
	}
	var raw *rawFetcher
	defer func() { raw.close() }()
	failures, empty := 0, 0
	backoff := readRetryBackoffMin
	for offset := r.first; offset < r.end; {
		var next int64
		var reachedEnd bool
		var err error
		if raw == nil {
			raw, err = src.openRawFetcher(ctx, r.p)
		}
		if err == nil {
			next, reachedEnd, err = r.readRaw(ctx, raw, offset)
		}
		if err != nil && errors.Is(err, errFetch) && ctx.Err() == nil {
			raw.close()
			raw = nil
			failures++
			if err := r.allowRetry(err, failures); err != nil {
				return err
			}
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return ctx.Err()
			}
			backoff = min(2*backoff, readRetryBackoffMax)
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		failures, backoff = 0, readRetryBackoffMin
		if r.afterFetch != nil {
			done := next
			if reachedEnd {
				done = r.end // what lies beyond it was not visited
			}
			if err := r.afterFetch(done, raw.highWatermark); err != nil {
				return err
			}
		}
		switch {
		case reachedEnd:
			return nil
		case next == offset && r.end == followEnd:
			continue // nothing new yet: the broker held the fetch for fetchWaitMax
		case next == offset:
			if empty++; empty >= emptyFetchesMax {
				return fmt.Errorf("partition %d: %d fetches at offset %d returned nothing below end offset %d", r.p, empty, offset, r.end)
			}
			continue
		}
		empty = 0
		offset = next
	}
	return nil
}

// allowRetry asks r.retry whether to fetch again after failures failed
// fetches in a row.
func (r *partitionRead) allowRetry(err error, failures int) error {
	if r.retry != nil {
		return r.retry(err, failures)
	}
	if failures >= readAttemptsMax {
		return fmt.Errorf("partition %d: %d fetches failed in a row: %w", r.p, failures, err)
	}
	return nil
}

// readRaw fetches from offset and visits what the response holds below
// r.end. It returns the offset to fetch next, and whether the read is done.
func (r *partitionRead) readRaw(ctx context.Context, raw *rawFetcher, offset int64) (next int64, reachedEnd bool, err error) {
	batches, err := raw.fetch(ctx, offset)
	if err != nil {
		return offset, false, err
	}
	// Ask for what follows before reading this response: the broker
	// prepares it meanwhile, on the other core.
	if ahead := batchesEnd(batches); ahead > offset && ahead < r.end {
		if err := raw.prefetch(ctx, ahead); err != nil {
			return offset, false, err
		}
	}
	var skip func(o int64, err error) error
	if r.corrupt != nil {
		skip = func(o int64, err error) error {
			if o >= r.end {
				reachedEnd = true
				return errStopBatches
			}
			r.corrupt(o, err)
			return nil
		}
	}
	next = offset
	past, err := readBatches(batches, func(rec LogRecord) error {
		// A response starts at its batch's first offset, which may be
		// before the one asked for.
		if rec.Offset < next {
			return nil
		}
		if rec.Offset >= r.end { // past a gap (compaction) to beyond the end
			reachedEnd = true
			return errStopBatches
		}
		if err := r.visit(rec); err != nil {
			return err
		}
		next = rec.Offset + 1
		return nil
	}, skip)
	switch {
	case errors.Is(err, errStopBatches):
		return next, true, nil
	case errors.Is(err, errBatchCorrupt), errors.Is(err, ErrBatchDamaged):
		return next, false, fmt.Errorf("partition %d: %w", r.p, err)
	case err != nil:
		return next, false, err
	}
	// Move on past batches whose records were compacted away and past
	// transaction markers.
	next = max(next, past)
	return next, next >= r.end, nil
}

// LogReaderConfig is what a LogReader needs: the topic, a kafka-go client
// of its brokers (for the partitions' leaders), and how connections are
// secured.
type LogReaderConfig struct {
	Topic    string
	Client   *kafka.Client
	Security *Security // nil: plaintext, no SASL
	// ClientID names the reader in the brokers' logs and quotas.
	ClientID string
}

// LogReader reads the audit topic's partitions the way orderd's replay does:
// for consumers such as orderctl tail, which must read what orderd reads and
// skip what it skips. It is safe for concurrent use; each ReadPartition has
// its own connection.
type LogReader struct {
	src logSource
}

// NewLogReader returns a reader of cfg.Topic.
func NewLogReader(cfg LogReaderConfig) *LogReader {
	return &LogReader{src: logSource{
		topic:      cfg.Topic,
		meta:       cfg.Client,
		security:   cfg.Security,
		clientID:   cmp.Or(cfg.ClientID, clientID),
		fetchBytes: fetchBytesMax,
	}}
}

// PartitionVisitor is told what a ReadPartition meets.
type PartitionVisitor struct {
	// Record is called for every record, in offset order. The record
	// and its bytes are valid only during the call. An error ends the
	// read with it.
	Record func(LogRecord) error
	// Corrupt is told of each record batch that is skipped because its
	// records cannot be read (offset is the batch's first). Required.
	Corrupt func(offset int64, err error)
	// Skipped, if not nil, is told of each record that is not handed to
	// Record because orderd skips it too: claims, and records fenced by
	// a later claim (claims.go).
	Skipped func(rec LogRecord, why string)
	// Retry is told of each failed fetch, before the read connects again
	// after a pause; failures counts them in a row. A non-nil return ends
	// the read with it. nil: give up after a few failures.
	Retry func(err error, failures int) error
}

// ReadPartition reads partition p from offset from up to end (exclusive),
// or, with end < 0, until ctx ends. A batch whose CRC is wrong ends the read
// with an error matching ErrBatchDamaged: reading it again would give the
// same answer.
func (lr *LogReader) ReadPartition(ctx context.Context, p int, from, end int64, v PartitionVisitor) error {
	if end < 0 {
		end = followEnd
	}
	corrupt := v.Corrupt
	if corrupt == nil {
		corrupt = func(int64, error) {}
	}
	// Each read learns the claims it meets as orderd's own reads do. One
	// that starts past a claim does not know it: only a read from the
	// partition's start skips exactly what orderd skips.
	claims := newClaimTable()
	if v.Skipped != nil {
		claims.skipped = func(_ int, rec LogRecord, why string) { v.Skipped(rec, why) }
	}
	src := lr.src
	src.claims = claims
	err := src.readPartition(ctx, &partitionRead{p: p, first: from, end: end, visit: v.Record, corrupt: corrupt, retry: v.Retry})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
