package persistence

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderd/orderd/order"
)

// Append implements order.Journal. It returns nil once the broker has
// acknowledged the event from all in-sync replicas. If ctx ends while the
// event is still queued, the event is withdrawn and never sent
// (ErrJournalUnavailable); if it ends after the event was sent, Append returns
// ErrOutcomeUnknown at once and the request runs on to its own deadline.
func (j *KafkaJournal) Append(ctx context.Context, ev order.Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w (the event was not sent)", order.ErrJournalUnavailable, err)
	}
	defer j.cfg.Metrics.appended(time.Now())
	// Encoded here, on the caller's goroutine: many callers encode in
	// parallel while the previous request is in flight, and the writer's
	// path from one acknowledgement to the next request stays short.
	p, err := newPendingAppend(ev)
	if err != nil {
		return fmt.Errorf("%w: %w", order.ErrJournalUnavailable, err)
	}
	return j.appendPending(ctx, p, j.PartitionOf(ev.OrderID))
}

// AppendInventory implements order.InventoryJournal: the same writers, the
// same group commit, claims and outcomes as Append, for a record keyed by
// order.InventoryKey(ev.SKU) and placed by that key.
func (j *KafkaJournal) AppendInventory(ctx context.Context, ev order.InventoryEvent) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w (the event was not sent)", order.ErrJournalUnavailable, err)
	}
	defer j.cfg.Metrics.appended(time.Now())
	p, err := newPendingInventory(ev)
	if err != nil {
		return fmt.Errorf("%w: %w", order.ErrJournalUnavailable, err)
	}
	return j.appendPending(ctx, p, j.PartitionOf(order.InventoryKey(ev.SKU)))
}

// appendPending queues p on partition's writer and waits for its outcome.
func (j *KafkaJournal) appendPending(ctx context.Context, p *pendingAppend, partition int) error {
	if n := j.pending.Add(1); n > int64(j.cfg.QueueLenMax) {
		j.pending.Add(-1)
		p.recycle()
		return fmt.Errorf("%w: journal queue full (%d appends queued or in flight)", order.ErrJournalUnavailable, j.cfg.QueueLenMax)
	}
	// The partition is chosen here, by the Java client's murmur2, and the
	// request goes straight to it: no kafka-go Balancer is involved (of
	// those, only Murmur2Balancer{Consistent: true} agrees with other
	// clients, FACTS.md).
	w := j.writers[partition]
	if !w.enqueue(p) {
		j.pending.Add(-1)
		p.recycle()
		return errClosed
	}
	select {
	case err := <-p.done:
		return p.finish(err)
	case <-ctx.Done():
	}
	if w.withdraw(p) {
		j.pending.Add(-1)
		p.recycle()
		return fmt.Errorf("%w: %w (the event was withdrawn before it was sent)", order.ErrJournalUnavailable, ctx.Err())
	}
	select {
	case err := <-p.done: // the outcome arrived as ctx ended
		return p.finish(err)
	default:
		// The writer still holds p and will complete it: p is not ours
		// to recycle.
		return fmt.Errorf("%w: %w (the event was sent; its acknowledgement had not arrived)", order.ErrOutcomeUnknown, ctx.Err())
	}
}

// partitionWriter owns one partition's queue and the goroutine that sends
// it, one produce request at a time. Its goroutine is started by OpenKafka
// and ends, after sending everything queued, once close has been called.
type partitionWriter struct {
	j         *KafkaJournal
	partition int
	wake      chan struct{} // capacity 1: the queue or closed changed

	mu     sync.Mutex
	queue  []*pendingAppend
	closed bool
	// spare is the slice of the last batch that succeeded, emptied: the
	// next take reuses it rather than allocating. Only the writer's
	// goroutine uses it.
	spare []*pendingAppend
	// fence is the last request's fencedRecords, kept for the next
	// request once kafka-go is done with it. Only the writer's goroutine
	// uses it.
	fence *fencedRecords
	// sending is set while a request is on the wire. settled is made by
	// the first settle that waits for that request, and closed once it
	// has its outcome: only Loads after an unknown outcome wait, so the
	// common request makes no channel.
	sending  bool
	settled  chan struct{}
	settling atomic.Int32 // Loads waiting for settled, for tests
	// failedClosing is set when a request fails after close: the broker
	// is unreachable, so the rest of the queue fails without being sent
	// rather than holding Close for a deadline per batch.
	failedClosing bool

	// logEnd is the offset after the last record this writer knows the
	// partition holds: its own last batch's, or the replay's end;
	// logEndUnknown before either (foreign_writes.go).
	logEnd int64
	// claim is the offset of the claim this writer writes under in a
	// cluster (claims.go); noClaim while the node does not own the
	// partition. Guarded by mu.
	claim int64
	// unsettled holds the event IDs of batches whose outcome was unknown
	// until the next read of a gap (foreign_writes.go). Only the writer's
	// goroutine uses it.
	unsettled map[string]struct{}
}

func newPartitionWriter(j *KafkaJournal, partition int) *partitionWriter {
	return &partitionWriter{j: j, partition: partition, wake: make(chan struct{}, 1), logEnd: logEndUnknown, claim: noClaim}
}

func (w *partitionWriter) signal() {
	select {
	case w.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

func (w *partitionWriter) enqueue(p *pendingAppend) bool {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return false
	}
	w.queue = append(w.queue, p)
	w.mu.Unlock()
	w.signal()
	return true
}

// withdraw removes p from the queue unless the writer already took it.
func (w *partitionWriter) withdraw(p *pendingAppend) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p.sent {
		return false
	}
	if i := slices.Index(w.queue, p); i >= 0 {
		w.queue = slices.Delete(w.queue, i, i+1)
	}
	return true
}

// close stops enqueueing; the goroutine sends what is queued and ends.
func (w *partitionWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.signal()
}

// settle waits until the request on the wire, if any, has its outcome, so
// that every append that has returned is either in the log or never will be
// (within what the produce deadline can promise; see Load).
func (w *partitionWriter) settle(ctx context.Context) error {
	w.mu.Lock()
	if !w.sending {
		w.mu.Unlock()
		return nil
	}
	if w.settled == nil {
		w.settled = make(chan struct{})
	}
	inflight := w.settled
	w.mu.Unlock()
	w.settling.Add(1)
	defer w.settling.Add(-1)
	select {
	case <-inflight:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *partitionWriter) queueLen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue)
}

func (w *partitionWriter) run() {
	defer w.j.writersDone.Done()
	for {
		batch := w.next()
		if batch == nil {
			return
		}
		w.send(batch)
	}
}

// next waits until appends are queued and takes the next batch: everything
// queued, up to the batch limits. It returns nil once closed and drained.
func (w *partitionWriter) next() []*pendingAppend {
	for {
		w.mu.Lock()
		switch {
		case len(w.queue) > 0 && w.failedClosing:
			batch := w.take(len(w.queue), int(^uint(0)>>1))
			w.mu.Unlock()
			w.complete(batch, fmt.Errorf("%w: %w: not sent after a failed request", order.ErrJournalUnavailable, ErrClosed))
			continue
		case len(w.queue) > 0:
			batch := w.take(w.j.cfg.BatchRecordsMax, w.j.cfg.BatchBytesMax)
			w.sending = true
			w.mu.Unlock()
			return batch
		}
		closed := w.closed
		w.mu.Unlock()
		if closed {
			return nil
		}
		<-w.wake
	}
}

// take removes the first appends from the queue, at least one and at most
// recordsMax and bytesMax. w.mu must be held.
func (w *partitionWriter) take(recordsMax, bytesMax int) []*pendingAppend {
	n, size := 0, 0
	for n < len(w.queue) && n < recordsMax {
		s := w.queue[n].size
		if n > 0 && size+s > bytesMax {
			break
		}
		size += s
		n++
	}
	for _, p := range w.queue[:n] {
		p.sent = true
	}
	if n == len(w.queue) {
		// The usual case, everything queued: the queue becomes the batch
		// and the spare becomes the queue, with nothing copied.
		batch := w.queue
		w.queue, w.spare = w.spare, nil
		return batch
	}
	batch := append(w.spare, w.queue[:n]...)
	w.spare = nil
	rest := copy(w.queue, w.queue[n:])
	clear(w.queue[rest:])
	w.queue = w.queue[:rest]
	return batch
}

// send writes one batch in one produce request and completes its appends.
func (w *partitionWriter) send(batch []*pendingAppend) {
	claim, err := w.stamp()
	if err != nil {
		w.refuse(batch, err)
		return
	}
	stampBatch(batch, claim)
	fence := w.fence
	w.fence = nil
	if fence == nil {
		fence = new(fencedRecords)
	}
	fence.reset(batch)
	start := time.Now()
	// The request's own deadline is the producer's Timeout (ProduceTimeout),
	// independent of every caller's: a caller that leaves does not cut the
	// request short (kafka-go would send it anyway, and we would know
	// less), and Close lets it finish.
	resp, err := w.j.producer.Produce(context.Background(), &kafka.ProduceRequest{
		Topic:     w.j.cfg.Topic,
		Partition: w.partition,
		// All in-sync replicas, at least min.insync.replicas of them:
		// what makes an acknowledged transition durable (DESIGN §4).
		RequiredAcks: kafka.RequireAll,
		Records:      fence,
		// DefaultCompression says why; consumers expand it as they
		// read, and replay reads compressed batches in place too.
		Compression: w.j.codec,
	})
	result := classifyProduce(resp, err, fence)
	w.j.noteProduce(result)
	w.j.cfg.Metrics.produced(len(batch), start, result)
	switch {
	case result == nil:
		result = w.checkPlacement(resp.BaseOffset, batch)
		if result == nil {
			result = w.checkClaim(resp.BaseOffset, claim)
		}
	case errors.Is(result, order.ErrOutcomeUnknown):
		w.rememberUnsettled(batch)
	}
	if result != nil {
		w.j.log.Warn("produce request failed", "partition", w.partition, "records", len(batch), "err", result)
	}
	w.endSending(result != nil)
	w.complete(batch, result)
	if err == nil {
		// Produce returned an answer, so kafka-go has read every record
		// and holds neither the fence nor the batch any more. After an
		// error it may still be encoding the request: both are left to
		// the garbage collector, and so are the appends (finish).
		clear(batch)
		w.fence, w.spare = fence, batch[:0]
	}
}

// endSending marks the request done for settle; failed says it failed, which
// after close fails the rest of the queue unsent (failedClosing).
func (w *partitionWriter) endSending(failed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sending = false
	if w.settled != nil {
		close(w.settled)
		w.settled = nil
	}
	if failed && w.closed {
		w.failedClosing = true
	}
}

// refuse completes a batch that is not sent at all: kafka-go never saw it,
// so its slice is reused at once.
func (w *partitionWriter) refuse(batch []*pendingAppend, err error) {
	w.endSending(false)
	w.complete(batch, err)
	clear(batch)
	w.spare = batch[:0]
}

// checkClaim is run after checkPlacement has read any gap before the batch
// (and so learned the claims in it): a batch placed after a later claim than
// its own counts for nobody (claims.go).
func (w *partitionWriter) checkClaim(base, claim int64) error {
	if !w.j.claims.fencedAt(w.partition, base, claim) {
		return nil
	}
	w.j.log.Warn("another node claimed the partition: this node's write counts for nobody, and it writes there no more until it takes the partition over again",
		"partition", w.partition, "base_offset", base, "own_claim", claim, "latest_claim", w.j.claims.latest(w.partition))
	return fmt.Errorf("%w: partition %d was claimed by another node before offset %d", ErrNotOwner, w.partition, base)
}

// complete hands every append of batch its outcome, oldest first. After the
// send, p belongs to its caller again, who may recycle it at once: complete
// must not touch it.
func (w *partitionWriter) complete(batch []*pendingAppend, result error) {
	for _, p := range batch {
		p.done <- result
	}
	w.j.pending.Add(-int64(len(batch)))
}

// fencedRecords hands a batch to kafka-go and tells afterwards whether it can
// have been sent. kafka-go reads the records only while encoding the request,
// right before writing it to a connection, so a batch never read was never
// sent. abandon makes sure it never will be: a read after it finds no
// records, and kafka-go then fails the request (ErrNoRecord) before writing a
// byte. That separates "dial refused, no leader known" (not written) from
// "written to a connection that then broke" (unknown) without guessing from
// error types.
type fencedRecords struct {
	state   atomic.Int32
	appends []*pendingAppend
	next    int // only the encoding goroutine touches it
}

const (
	fenceUnread int32 = iota
	fenceRead
	fenceAbandoned
)

func (f *fencedRecords) ReadRecord() (*kafka.Record, error) {
	if f.next == 0 && !f.state.CompareAndSwap(fenceUnread, fenceRead) && f.state.Load() == fenceAbandoned {
		return nil, io.EOF
	}
	if f.next >= len(f.appends) {
		return nil, io.EOF
	}
	f.next++
	return &f.appends[f.next-1].rec, nil
}

// reset readies f for a new batch. Only once kafka-go is done with it.
func (f *fencedRecords) reset(batch []*pendingAppend) {
	f.state.Store(fenceUnread)
	f.appends = batch
	f.next = 0
}

// abandon reports whether the batch was never read, and makes sure it
// never will be.
func (f *fencedRecords) abandon() bool {
	return f.state.CompareAndSwap(fenceUnread, fenceAbandoned)
}

// notWritten are the broker's answers to a produce request that mean the
// batch was not appended: the request was refused before the append (wrong
// leader, too few in-sync replicas, invalid or oversized batch, no
// permission). Any other error code, REQUEST_TIMED_OUT and
// NOT_ENOUGH_REPLICAS_AFTER_APPEND among them, leaves the outcome unknown.
var notWritten = map[kafka.Error]bool{
	kafka.InvalidMessage:              true,
	kafka.UnknownTopicOrPartition:     true,
	kafka.InvalidMessageSize:          true,
	kafka.LeaderNotAvailable:          true,
	kafka.NotLeaderForPartition:       true,
	kafka.MessageSizeTooLarge:         true,
	kafka.InvalidTopic:                true,
	kafka.RecordListTooLarge:          true,
	kafka.NotEnoughReplicas:           true,
	kafka.InvalidRequiredAcks:         true,
	kafka.TopicAuthorizationFailed:    true,
	kafka.ClusterAuthorizationFailed:  true,
	kafka.InvalidTimestamp:            true,
	kafka.UnsupportedVersion:          true,
	kafka.InvalidRequest:              true,
	kafka.UnsupportedForMessageFormat: true,
	kafka.PolicyViolation:             true,
	kafka.FencedLeaderEpoch:           true,
	kafka.UnknownLeaderEpoch:          true,
	kafka.UnsupportedCompressionType:  true,
	kafka.InvalidRecord:               true,
	kafka.UnknownTopicID:              true,
}

// classifyProduce turns a produce outcome into nil, ErrJournalUnavailable
// (certainly not written) or ErrOutcomeUnknown (maybe written).
func classifyProduce(resp *kafka.ProduceResponse, err error, fence *fencedRecords) error {
	switch {
	case err != nil && fence.abandon():
		return fmt.Errorf("%w: produce request not sent: %w", order.ErrJournalUnavailable, err)
	case err != nil:
		return fmt.Errorf("%w: produce request sent, no answer: %w", order.ErrOutcomeUnknown, err)
	case resp == nil:
		return fmt.Errorf("%w: produce request answered with nothing", order.ErrOutcomeUnknown)
	case resp.Error == nil:
		return nil
	}
	var code kafka.Error
	if errors.As(resp.Error, &code) && notWritten[code] {
		return fmt.Errorf("%w: broker refused the produce request: %w", order.ErrJournalUnavailable, resp.Error)
	}
	return fmt.Errorf("%w: broker answered: %w", order.ErrOutcomeUnknown, resp.Error)
}
