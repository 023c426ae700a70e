package persistence

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderd/orderd/order"
)

// Limits of reading the log.
const (
	// replayReadersMax is how many partitions a replay reads and decodes
	// at once. Decoding is most of a replay's CPU, and this machine class
	// has two cores; more readers only hold more memory.
	replayReadersMax = 4
	// replayChunksBuffered is how many decoded fetch responses may wait for
	// fn: enough to keep the readers busy while fn runs, and with
	// fetchBytesMax a bound on replay memory.
	replayChunksBuffered = 8
	// emptyFetchesMax bounds fetches in a row that return nothing below the
	// end offset (a log truncated under us, or control records only)
	// before a read gives up instead of looping.
	emptyFetchesMax = 8
	// undecodableLogMax bounds the log lines about skipped records, so
	// that a topic full of foreign records cannot flood the log.
	undecodableLogMax = 100
)

// Replay implements order.Journal. It measures every partition's end offset
// first and reads nothing beyond it. Several partitions are fetched and
// decoded at once; fn runs on the caller's goroutine, in log order within each
// partition.
func (j *KafkaJournal) Replay(ctx context.Context, fn func(order.Event) error) (order.ReplayStats, error) {
	var stats order.ReplayStats
	ctx, done, err := j.beginRead(ctx)
	if err != nil {
		return stats, err
	}
	defer done()
	all := make([]int, j.partitions)
	for p := range all {
		all[p] = p
	}
	start := time.Now()
	first, end, err := j.offsets(ctx, all)
	if err != nil {
		return stats, err
	}
	j.cfg.Metrics.replayStarted(first, end)
	progress := newReplayProgress(j.log, first, end, time.Now)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readers := j.startReaders(ctx, cancel, first, end)
	var fnErr error
	for c := range readers.chunks {
		if fnErr != nil || readers.err() != nil {
			continue // drain, so the readers can finish
		}
		stats.Undecodable += c.undecodable
		stats.Records += c.undecodable
		j.cfg.Metrics.replayRead(len(c.events) + c.undecodable)
		for _, ev := range c.events {
			stats.Records++
			if fnErr = fn(ev); fnErr != nil {
				cancel() // stop the readers
				break
			}
		}
		readers.recycle(c.events)
		progress.observe(stats.Records)
	}
	if fnErr != nil {
		return stats, fnErr
	}
	if err := readers.err(); err != nil {
		return stats, fmt.Errorf("persistence: replay: %w", err)
	}
	// Every record below end went to fn: the writers take it from there
	// (foreign_writes.go).
	for p, w := range j.writers {
		w.learnEnd(end[p])
	}
	if n, why := readers.fallbacks(); n > 0 {
		j.log.Info("replay read some partitions with kafka-go, the slower path", "partitions", n, "first_reason", why)
	}
	elapsed := time.Since(start)
	// Debug: the caller reports the replay with what it made of it.
	j.log.Debug("replayed the journal", "records", stats.Records, "undecodable", stats.Undecodable,
		"elapsed", elapsed, "records_per_s", int(float64(stats.Records)/max(elapsed.Seconds(), 1e-9)))
	return stats, nil
}

// replayChunk is the decoded part of one fetch response of one partition.
type replayChunk struct {
	events      []order.Event
	undecodable int
}

// replayReaders are the goroutines of one replay. chunks closes once they
// have all ended; err is then the first error one of them met.
type replayReaders struct {
	chunks chan replayChunk
	// free holds event slices fn is done with, for the readers to fill
	// again: a chunk's slice is about a megabyte that would otherwise be
	// garbage after every fetch.
	free   chan []order.Event
	cancel context.CancelFunc // stops the other readers after a failure

	mu            sync.Mutex
	firstErr      error
	fallbackCount int   // partitions read partly with kafka-go
	fallbackWhy   error // the first one's reason
}

// recycle gives back a chunk's events once fn has seen them all. They are
// cleared so that the strings fn did not keep can be collected.
func (r *replayReaders) recycle(events []order.Event) {
	clear(events)
	select {
	case r.free <- events[:0]:
	default:
	}
}

// eventsToFill returns a recycled slice, or nil to start a new one.
func (r *replayReaders) eventsToFill() []order.Event {
	select {
	case events := <-r.free:
		return events
	default:
		return nil
	}
}

func (r *replayReaders) fellBack(why error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fallbackCount++; r.fallbackWhy == nil {
		r.fallbackWhy = why
	}
}

func (r *replayReaders) fallbacks() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fallbackCount, r.fallbackWhy
}

func (r *replayReaders) fail(err error) {
	r.mu.Lock()
	if r.firstErr == nil {
		r.firstErr = err
	}
	r.mu.Unlock()
	r.cancel()
}

func (r *replayReaders) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.firstErr
}

// startReaders reads the partitions that have records between first and end
// on up to replayReadersMax goroutines, which end when ctx does. The first
// reader to fail cancels ctx, which stops the others.
func (j *KafkaJournal) startReaders(ctx context.Context, cancel context.CancelFunc, first, end []int64) *replayReaders {
	work := make(chan int, len(first))
	for p := range first {
		if first[p] < end[p] {
			work <- p
		}
	}
	close(work)
	r := &replayReaders{
		chunks: make(chan replayChunk, replayChunksBuffered),
		// Every slice that can be out at once: the buffered chunks,
		// one being filled per reader and the one fn is reading.
		free:   make(chan []order.Event, replayChunksBuffered+replayReadersMax+1),
		cancel: cancel,
	}
	var wg sync.WaitGroup
	for range min(replayReadersMax, len(work)) {
		wg.Go(func() {
			for p := range work {
				if err := j.replayPartition(ctx, p, first[p], end[p], r); err != nil {
					r.fail(err)
					return
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(r.chunks)
	}()
	return r
}

// replayPartition decodes one partition's records from first to end and
// sends them as one chunk per fetch response.
func (j *KafkaJournal) replayPartition(ctx context.Context, p int, first, end int64, readers *replayReaders) error {
	chunk := replayChunk{events: readers.eventsToFill()}
	read := &partitionRead{p: p, first: first, end: end}
	read.visit = func(offset int64, key, value []byte) error {
		ev, err := DecodeEvent(key, value)
		if err != nil {
			chunk.undecodable++
			j.logUndecodable(p, offset, err)
			return nil
		}
		chunk.events = append(chunk.events, ev)
		return nil
	}
	read.corrupt = func(offset int64, err error) {
		chunk.undecodable++ // a batch counts as one: what it held is unknown
		j.logUndecodable(p, offset, err)
	}
	read.afterFetch = func() error {
		if len(chunk.events) == 0 && chunk.undecodable == 0 {
			return nil
		}
		select {
		case readers.chunks <- chunk:
			chunk = replayChunk{events: readers.eventsToFill()}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := j.readPartition(ctx, read)
	if read.fallback != nil {
		readers.fellBack(read.fallback)
	}
	return err
}

// logUndecodable warns of a record, or a corrupt batch, that a read skips.
func (j *KafkaJournal) logUndecodable(partition int, offset int64, err error) {
	what := "skipping undecodable record"
	if errors.Is(err, errBatchCorrupt) {
		what = "skipping corrupt record batch"
	}
	if n := j.undecodableLogged.Add(1); n <= undecodableLogMax {
		j.log.Warn(what, "partition", partition, "offset", offset, "err", err,
			"note", fmt.Sprintf("only the first %d are logged", undecodableLogMax))
	}
}

// Load implements order.Journal. It first waits until the produce request on
// the order's partition, if one is out, has its outcome (success, error or its
// own deadline), then measures the partition's end and reads the partition up
// to it. So every append that returned before Load was called is in the result
// or was never sent, except a request the broker received but handled only
// after the client's deadline had passed: kafka-go has no idempotent producer
// to fence such a straggler, and it would show up in a later read. If the
// order has moved on by then, order.Apply skips it as a duplicate.
//
// Load reads the whole partition, so it costs as much as the partition is
// long: it is for settling unknown outcomes, not for serving reads.
func (j *KafkaJournal) Load(ctx context.Context, orderID string) ([]order.Event, error) {
	if err := order.ValidateID(orderID); err != nil {
		return nil, err
	}
	ctx, done, err := j.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	p := j.PartitionOf(orderID)
	if err := j.writers[p].settle(ctx); err != nil {
		return nil, fmt.Errorf("persistence: load %s: waiting for the request in flight: %w", orderID, err)
	}
	first, end, err := j.offsets(ctx, []int{p})
	if err != nil {
		return nil, fmt.Errorf("persistence: load %s: %w", orderID, err)
	}
	var events []order.Event
	err = j.readPartition(ctx, &partitionRead{p: p, first: first[0], end: end[0],
		visit: func(offset int64, key, value []byte) error {
			if string(key) != orderID {
				return nil
			}
			ev, err := DecodeEvent(key, value)
			if err != nil {
				j.logUndecodable(p, offset, err)
				return nil
			}
			events = append(events, ev)
			return nil
		},
		corrupt: func(offset int64, err error) { j.logUndecodable(p, offset, err) },
	})
	if err != nil {
		return nil, fmt.Errorf("persistence: load %s: %w", orderID, err)
	}
	return events, nil
}

// offsets returns the first and end offsets of the partitions, in their
// order. They take two requests: Kafka refuses a ListOffsets request that
// names a partition twice.
func (j *KafkaJournal) offsets(ctx context.Context, partitions []int) (first, end []int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, offsetsTimeout)
	defer cancel()
	if first, err = j.listOffsets(ctx, partitions, kafka.FirstOffsetOf); err != nil {
		return nil, nil, err
	}
	if end, err = j.listOffsets(ctx, partitions, kafka.LastOffsetOf); err != nil {
		return nil, nil, err
	}
	return first, end, nil
}

func (j *KafkaJournal) listOffsets(ctx context.Context, partitions []int, which func(int) kafka.OffsetRequest) ([]int64, error) {
	reqs := make([]kafka.OffsetRequest, len(partitions))
	for i, p := range partitions {
		reqs[i] = which(p)
	}
	resp, err := j.reader.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{j.cfg.Topic: reqs},
		// Committed and uncommitted alike: orderd writes no transactions.
		IsolationLevel: kafka.ReadUncommitted,
	})
	if err != nil {
		return nil, fmt.Errorf("listing offsets: %w", err)
	}
	got := make(map[int]kafka.PartitionOffsets, len(partitions))
	for _, po := range resp.Topics[j.cfg.Topic] {
		got[po.Partition] = po
	}
	out := make([]int64, len(partitions))
	for i, p := range partitions {
		po, ok := got[p]
		switch {
		case !ok:
			return nil, fmt.Errorf("listing offsets: no answer for partition %d", p)
		case po.Error != nil:
			return nil, fmt.Errorf("listing offsets of partition %d: %w", p, po.Error)
		case reqs[i].Timestamp == kafka.FirstOffset:
			out[i] = po.FirstOffset
		default:
			out[i] = po.LastOffset
		}
	}
	return out, nil
}

// partitionRead is one read of partition p from offset first up to end
// (exclusive).
type partitionRead struct {
	p          int
	first, end int64
	// visit is called for every record, in order. key and value are
	// valid only during the call; a null one is empty.
	visit func(offset int64, key, value []byte) error
	// afterFetch, if not nil, runs after each fetch response.
	afterFetch func() error
	// corrupt, if not nil, is told of each corrupt batch the read skips
	// (batch.go); without it, one ends the read with an error.
	corrupt func(offset int64, err error)
	// fallback is why the read left the fast path (fetch_raw.go) for
	// kafka-go; nil if it did not.
	fallback error
}

// readPartition reads r.p from r.first to r.end. It fetches on the fast path
// (its own connection to the leader, batches read in place) until that meets
// something it does not handle: then it reads the rest of the partition with
// kafka-go, from the first record it has not visited, as every read did before
// the fast path existed.
func (j *KafkaJournal) readPartition(ctx context.Context, r *partitionRead) error {
	if r.first >= r.end {
		return nil // nothing to read: no connection to open
	}
	raw, err := j.openRawFetcher(ctx, r.p)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		j.noteFallback(r, r.first, err)
	}
	defer func() { raw.close() }()
	empty := 0
	for offset := r.first; offset < r.end; {
		var next int64
		var reachedEnd, fellBack bool
		if raw != nil {
			next, reachedEnd, err = r.readRaw(ctx, raw, offset)
			if errors.Is(err, errRawFallback) || errors.Is(err, errBatchUnreadable) {
				j.noteFallback(r, next, err)
				raw.close()
				raw, err, fellBack = nil, nil, true
			}
		} else {
			next, reachedEnd, err = j.readFetch(ctx, r, offset)
		}
		if err != nil {
			return err
		}
		if r.afterFetch != nil {
			if err := r.afterFetch(); err != nil {
				return err
			}
		}
		switch {
		case reachedEnd:
			return nil
		case next == offset && fellBack:
			continue // not an empty fetch: kafka-go reads it again
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

// noteFallback records why r goes on with kafka-go. Debug only: Replay
// reports fallbacks once, in its summary.
func (j *KafkaJournal) noteFallback(r *partitionRead, offset int64, why error) {
	r.fallback = why
	j.log.Debug("reading the partition with kafka-go", "partition", r.p, "offset", offset, "reason", why)
}

// readRaw fetches from offset on the fast path and visits what the response
// holds below r.end. It returns the offset to fetch next, and whether the
// read is done. An error matching errRawFallback or errBatchUnreadable means
// kafka-go must go on from next.
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
	past, err := readBatches(batches, func(o int64, key, value []byte) error {
		// A response starts at its batch's first offset, which may be
		// before the one asked for.
		if o < next {
			return nil
		}
		if o >= r.end { // past a gap (compaction) to beyond the end
			reachedEnd = true
			return errStopBatches
		}
		if err := r.visit(o, key, value); err != nil {
			return err
		}
		next = o + 1
		return nil
	}, skip)
	switch {
	case errors.Is(err, errStopBatches):
		return next, true, nil
	case errors.Is(err, errBatchCorrupt):
		return next, false, fmt.Errorf("partition %d: %w", r.p, err)
	case err != nil:
		return next, false, err
	}
	// Move on past batches whose records were compacted away and past
	// transaction markers, which kafka-go could not see.
	next = max(next, past)
	return next, next >= r.end, nil
}

// readFetch is readRaw on kafka-go.
func (j *KafkaJournal) readFetch(ctx context.Context, r *partitionRead, offset int64) (next int64, reachedEnd bool, err error) {
	records, err := j.fetch(ctx, r.p, offset)
	if err != nil {
		return offset, false, err
	}
	var key, value []byte
	next = offset
	for {
		rec, err := records.ReadRecord()
		if errors.Is(err, io.EOF) {
			return next, reachedEnd, nil
		}
		if err != nil {
			return next, false, fmt.Errorf("reading partition %d at offset %d: %w", r.p, next, err)
		}
		// A response starts at its batch's first offset, which may be
		// before the one asked for. Records beyond the end are read
		// only to be released.
		if rec.Offset < next || reachedEnd {
			closeRecord(rec)
			continue
		}
		if rec.Offset >= r.end { // past a gap (compaction) to beyond the end
			closeRecord(rec)
			reachedEnd = true
			continue
		}
		key, err = readBytes(key, rec.Key)
		if err == nil {
			value, err = readBytes(value, rec.Value)
		}
		closeRecord(rec)
		if err != nil {
			return next, false, fmt.Errorf("reading partition %d at offset %d: %w", r.p, rec.Offset, err)
		}
		if err := r.visit(rec.Offset, key, value); err != nil {
			return next, false, err
		}
		next = rec.Offset + 1
	}
}

func (j *KafkaJournal) fetch(ctx context.Context, p int, offset int64) (kafka.RecordReader, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel() // the response is read in full before Fetch returns
	resp, err := j.reader.Fetch(ctx, &kafka.FetchRequest{
		Topic:     j.cfg.Topic,
		Partition: p,
		Offset:    offset,
		MinBytes:  1,
		MaxBytes:  int64(j.fetchBytes),
		MaxWait:   fetchWaitMax,
		// Committed and uncommitted alike: orderd writes no
		// transactions, and kafka-go's ReadCommitted is broken (#1332).
		IsolationLevel: kafka.ReadUncommitted,
	})
	if err != nil {
		return nil, fmt.Errorf("fetching partition %d at offset %d: %w", p, offset, err)
	}
	if errors.Is(resp.Error, kafka.InvalidMessage) {
		// From the sanitizing connection (sanitize.go), or a broker.
		return nil, fmt.Errorf("fetching partition %d at offset %d: %w (the next record batch has a wrong CRC, a damaged log, or offsets no broker assigns; it is not read)", p, offset, resp.Error)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("fetching partition %d at offset %d: %w", p, offset, resp.Error)
	}
	return resp.Records, nil
}

// readBytes copies b into dst's storage; a null b reads as empty. A value
// larger than any record we write is not copied: it reads as empty, which no
// decoder accepts.
func readBytes(dst []byte, b kafka.Bytes) ([]byte, error) {
	if b == nil || b.Len() > RecordValueBytesMax {
		return dst[:0], nil
	}
	dst = slices.Grow(dst[:0], b.Len())[:b.Len()]
	_, err := io.ReadFull(b, dst)
	return dst, err
}

// closeRecord releases the response buffers the record refers to.
func closeRecord(rec *kafka.Record) {
	if rec.Key != nil {
		rec.Key.Close()
	}
	if rec.Value != nil {
		rec.Value.Close()
	}
}
