package persistence

import (
	"context"
	"errors"
	"fmt"
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
		stats.Inventory += c.inventory
		stats.Checkout += c.checkout
		stats.Records += c.undecodable + c.inventory + c.checkout
		j.cfg.Metrics.replayRead(len(c.events) + c.undecodable + c.inventory + c.checkout)
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
	inventory   int // inventory records, which are no order's
	checkout    int // checkout records, which are no order's either
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

	mu       sync.Mutex
	firstErr error
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
	read.visit = func(rec LogRecord) error {
		if IsInventoryKey(rec.Key) {
			chunk.inventory++
			return nil
		}
		if IsCheckoutKey(rec.Key) {
			chunk.checkout++
			return nil
		}
		ev, err := DecodeEvent(rec.Key, rec.Value)
		if err != nil {
			chunk.undecodable++
			j.logUndecodable(p, rec.Offset, err)
			return nil
		}
		chunk.events = append(chunk.events, ev)
		return nil
	}
	read.corrupt = func(offset int64, err error) {
		chunk.undecodable++ // a batch counts as one: what it held is unknown
		j.logUndecodable(p, offset, err)
	}
	read.afterFetch = func(int64, int64) error {
		if len(chunk.events) == 0 && chunk.undecodable == 0 && chunk.inventory == 0 && chunk.checkout == 0 {
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
	return j.src.readPartition(ctx, read)
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
// Without a state store (LoadFromStore), Load reads the whole partition, so
// it costs as much as the partition is long: it is for settling unknown
// outcomes, not for serving reads. With one, it returns the order's events the
// store holds below its checkpoint and reads only the partition's tail from
// there. The store holds only the records the apply rule accepted, so the
// records it skipped below the checkpoint are then missing from the result:
// folding the result with order.Apply gives the same order either way.
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
	// The store before the log's end: its checkpoint is then at most
	// the end, unless the log lost records (and the store is not used).
	events, checkpoint := j.storedEvents(ctx, orderID, p)
	first, end, err := j.offsets(ctx, []int{p})
	if err != nil {
		return nil, fmt.Errorf("persistence: load %s: %w", orderID, err)
	}
	from := max(first[0], checkpoint)
	if checkpoint > end[0] {
		events, from = nil, first[0]
	}
	err = j.src.readPartition(ctx, &partitionRead{p: p, first: from, end: end[0],
		visit: func(rec LogRecord) error {
			if string(rec.Key) != orderID {
				return nil
			}
			ev, err := DecodeEvent(rec.Key, rec.Value)
			if err != nil {
				j.logUndecodable(p, rec.Offset, err)
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
	resp, err := j.src.meta.ListOffsets(ctx, &kafka.ListOffsetsRequest{
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
