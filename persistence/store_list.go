package persistence

import (
	"context"
	"fmt"
	"time"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence/store"
)

// listWaitMax bounds how long a listing waits for the state store to take
// the records this process had acknowledged when the listing began. The
// feeder commits a fetch within milliseconds of a write; two seconds ride
// out a disk stall of a few hundred milliseconds (FACTS.md) and keep a
// listing well inside the request deadline. Beyond it the store is not
// keeping up, and the client is told to retry (order.ErrStoreBehind).
const listWaitMax = 2 * time.Second

// AcknowledgedEnds returns, per partition, the offset after the last record
// this journal knows the log holds: its own last acknowledged batch, or the
// end a replay, a catch-up or a takeover read to (0 before any). A reader of
// a store that has reached these ends sees every write this process has
// acknowledged so far.
func (j *KafkaJournal) AcknowledgedEnds() []int64 {
	ends := make([]int64, len(j.writers))
	for p, w := range j.writers {
		w.mu.Lock()
		ends[p] = max(0, w.logEnd)
		w.mu.Unlock()
	}
	return ends
}

// StoreLister lists orders from the state store, so that a listing covers
// every order in the log (those evicted from memory, and in a cluster those
// of every node: the store follows every partition). A listing reflects
// every write this process acknowledged before it began: it first waits,
// up to listWaitMax, until the store has applied the log up to the
// journal's AcknowledgedEnds at that moment. Writes of other processes (the
// other nodes of a cluster) are listed once the store's feeder has read
// them, without a wait.
type StoreLister struct {
	j  *KafkaJournal
	st *store.Store
}

var _ order.Lister = (*StoreLister)(nil)

// NewStoreLister lists from st, which Follow keeps fed from j's log.
func NewStoreLister(j *KafkaJournal, st *store.Store) *StoreLister {
	return &StoreLister{j: j, st: st}
}

// List implements order.Lister. Waiting longer than listWaitMax is an error
// matching order.ErrStoreBehind.
func (l *StoreLister) List(ctx context.Context, q order.ListQuery) (order.ListPage, error) {
	ends := l.j.AcknowledgedEnds()
	waitCtx, cancel := context.WithTimeout(ctx, listWaitMax)
	err := l.st.WaitApplied(waitCtx, ends)
	cancel()
	switch {
	case err != nil && ctx.Err() != nil:
		return order.ListPage{}, err // the request's own deadline or cancellation
	case err != nil:
		return order.ListPage{}, fmt.Errorf("%w: %w", order.ErrStoreBehind, err)
	}
	return l.st.List(ctx, q)
}
