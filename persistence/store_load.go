package persistence

import (
	"context"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence/store"
)

// LoadFromStore makes Load read an order's events below the checkpoint of
// st, which must be kept fed (CatchUp, then Follow), and only the partition's
// tail after it from the log; nil makes Load read whole partitions again. It
// waits for the Loads still reading the store it replaces, so that the caller
// may close that store once it returns.
func (j *KafkaJournal) LoadFromStore(st *store.Store) {
	j.loadStoreMu.Lock()
	defer j.loadStoreMu.Unlock()
	j.loadStore = st
}

// storedEvents returns what the state store holds of the order below its
// checkpoint in partition p, and that checkpoint: no events and 0 when there
// is no store or it cannot answer (it is a cache; the log can).
func (j *KafkaJournal) storedEvents(ctx context.Context, orderID string, p int) ([]order.Event, int64) {
	j.loadStoreMu.RLock()
	defer j.loadStoreMu.RUnlock()
	if j.loadStore == nil {
		return nil, 0
	}
	events, cp, err := j.loadStore.EventsAndCheckpoint(ctx, orderID, p)
	if err != nil {
		j.log.Warn("load: the state store failed; reading the whole partition", "order", orderID, "err", err)
		return nil, 0
	}
	return events, cp
}
