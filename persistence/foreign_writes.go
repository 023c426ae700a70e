package persistence

import (
	"context"
	"fmt"
	"time"

	"github.com/orderd/orderd/order"
)

// Another writer on the same partition (a second orderd on the topic, by
// mistake or behind a load balancer) appends records that this orderd's
// actors never see: an actor would then decide from a stale order, and the
// log would skip its record as a duplicate or fork after it was acknowledged.
//
// Each partition writer therefore knows where the log ended after its own
// last batch (or after the replay). A produce answered at that offset means
// nobody else wrote in between, the common case, checked for free. A produce
// placed further on means another writer came in between: before answering
// any append of the batch, the writer reads the records in the gap and hands
// them to the ForeignRecordNotifier's function, so that the actors of the
// orders they touch re-read them from the log and settle by the apply rule
// what their own records came to.

// Retrying the read of a gap: the batch's appends wait for it (they are
// written; their answer depends on what the gap holds), so a failed read is
// tried again until it succeeds or the journal closes.
const (
	foreignReadBackoffFirst = 100 * time.Millisecond
	foreignReadBackoffMax   = 5 * time.Second
)

// logEndUnknown: the writer has not learned where the partition ends (no
// replay, no batch yet), so it cannot tell a gap and checks nothing.
const logEndUnknown = -1

// NotifyForeign implements order.ForeignRecordNotifier.
func (j *KafkaJournal) NotifyForeign(fn func(order.Event)) { j.foreign.Store(&fn) }

var _ order.ForeignRecordNotifier = (*KafkaJournal)(nil)

func (j *KafkaJournal) notifyForeign(ev order.Event) {
	if fn := j.foreign.Load(); fn != nil {
		(*fn)(ev)
	}
}

// learnEnd tells the writer that the log up to end has been read (by a
// replay whose records all went to its caller).
func (w *partitionWriter) learnEnd(end int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.logEnd = max(w.logEnd, end)
}

// checkPlacement is run for every acknowledged batch, before its appends are
// answered: base is where the broker placed it. It returns nil, or the
// outcome the batch's appends get instead of success.
func (w *partitionWriter) checkPlacement(base int64, batch []*pendingAppend) error {
	w.mu.Lock()
	known := w.logEnd
	w.logEnd = base + int64(len(batch))
	w.mu.Unlock()
	switch {
	case known == logEndUnknown || base == known:
		return nil
	case base < known:
		// The log lost records this writer saw acknowledged (an unclean
		// leader election, a topic deleted and made again): the actors'
		// memory is ahead of the log. Nothing here can repair that.
		w.j.log.Error("the broker placed a batch before the end of the log this orderd had written: the log lost acknowledged records",
			"partition", w.partition, "base_offset", base, "known_end", known)
		return fmt.Errorf("%w: the log placed the batch at offset %d, before its known end %d", order.ErrOutcomeUnknown, base, known)
	}
	if err := w.readForeign(known, base); err != nil {
		// Only when the journal closes: the appends are written, and what
		// they came to is for the next start's replay to decide.
		return fmt.Errorf("%w: another writer appended to partition %d, and reading what it wrote failed: %w", order.ErrOutcomeUnknown, w.partition, err)
	}
	return nil
}

// readForeign reads the partition from first to end, another writer's
// records, and hands each to the notifier, retrying until it has read them
// all or the journal closes. Records of this writer's own appends whose
// outcome was unknown are not foreign: their actors re-read the log anyway.
func (w *partitionWriter) readForeign(first, end int64) error {
	backoff := foreignReadBackoffFirst
	for {
		foreign, err := w.readForeignOnce(w.j.readsCtx, first, end)
		if err == nil {
			w.unsettled = nil
			w.j.cfg.Metrics.foreignFound(foreign)
			if foreign > 0 {
				w.j.log.Error("another writer appended to a partition this orderd writes; the orders it touched are read from the log again before they are written",
					"partition", w.partition, "from_offset", first, "to_offset", end, "foreign_records", foreign,
					"note", "run one orderd per topic: with two, every order they share is re-read from the log before each write")
			}
			return nil
		}
		w.j.log.Warn("reading another writer's records failed; retrying", "partition", w.partition,
			"from_offset", first, "to_offset", end, "retry_in", backoff, "err", err)
		select {
		case <-w.j.readsCtx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, foreignReadBackoffMax)
	}
}

func (w *partitionWriter) readForeignOnce(ctx context.Context, first, end int64) (foreign int, err error) {
	p := w.partition
	err = w.j.src.readPartition(ctx, &partitionRead{p: p, first: first, end: end,
		visit: func(rec LogRecord) error {
			if IsInventoryKey(rec.Key) {
				if w.foreignInventory(p, rec) {
					foreign++
				}
				return nil
			}
			if IsCheckoutKey(rec.Key) {
				if w.foreignCheckout(p, rec) {
					foreign++
				}
				return nil
			}
			ev, err := DecodeEvent(rec.Key, rec.Value)
			if err != nil {
				w.j.logUndecodable(p, rec.Offset, err) // changes no order, here or at replay
				return nil
			}
			if _, ours := w.unsettled[ev.EventID]; ours {
				return nil
			}
			foreign++
			w.j.notifyForeign(ev)
			return nil
		},
		corrupt: func(offset int64, err error) { w.j.logUndecodable(p, offset, err) },
	})
	return foreign, err
}

// unsettledMax bounds the event IDs remembered from batches whose outcome
// was unknown: beyond it they are forgotten, and such a record found later
// counts as foreign, which costs its order one more read of the log.
const unsettledMax = 4 * DefaultBatchRecordsMax

// rememberUnsettled notes the event IDs of a batch whose outcome is unknown,
// so that finding them later in a gap is not taken for another writer.
func (w *partitionWriter) rememberUnsettled(batch []*pendingAppend) {
	if w.unsettled == nil {
		w.unsettled = make(map[string]struct{}, len(batch))
	}
	for _, p := range batch {
		if len(w.unsettled) >= unsettledMax {
			return
		}
		w.unsettled[p.eventID()] = struct{}{}
	}
}

// foreignInventory is readForeignOnce for an inventory record: another
// writer's is reported to the ForeignInventoryNotifier's function, so that
// the SKU's actor reads the SKU from the log before it writes again.
func (w *partitionWriter) foreignInventory(p int, rec LogRecord) bool {
	ev, err := DecodeInventory(rec.Key, rec.Value)
	if err != nil {
		w.j.logUndecodable(p, rec.Offset, err)
		return false
	}
	if _, ours := w.unsettled[ev.EventID]; ours {
		return false
	}
	if fn := w.j.foreignInventory.Load(); fn != nil {
		(*fn)(ev.SKU)
	}
	return true
}

// NotifyForeignInventory implements order.ForeignInventoryNotifier.
func (j *KafkaJournal) NotifyForeignInventory(fn func(sku string)) { j.foreignInventory.Store(&fn) }

var _ order.ForeignInventoryNotifier = (*KafkaJournal)(nil)

// foreignCheckout is readForeignOnce for a checkout record: another
// writer's is counted and logged with the rest, and reported to no one. A
// saga writes its checkout's records from one goroutine and reads the log
// again after an unknown outcome; a record another writer slipped in makes
// its next record one the apply rule skips when the checkout is loaded.
func (w *partitionWriter) foreignCheckout(p int, rec LogRecord) bool {
	ev, err := DecodeCheckout(rec.Key, rec.Value)
	if err != nil {
		w.j.logUndecodable(p, rec.Offset, err)
		return false
	}
	_, ours := w.unsettled[ev.EventID]
	return !ours
}
