package persistence

import (
	"context"
	"fmt"
	"time"

	"github.com/orderd/orderd/persistence/store"
)

// storeSettlePoll is how often SettleStore looks at the store's checkpoints:
// Follow commits a batch per fetch, within milliseconds of the write.
const storeSettlePoll = 10 * time.Millisecond

// SettleStore waits until st holds every record the log had when it was
// called (each checkpoint has reached its partition's end offset), while
// Follow feeds it, or until ctx ends. A graceful stop calls it after the last
// append and before it stops Follow, so that the next start has nothing of
// the log left to read.
func (j *KafkaJournal) SettleStore(ctx context.Context, st *store.Store) error {
	ctx, done, err := j.beginRead(ctx)
	if err != nil {
		return err
	}
	defer done()
	_, end, err := j.offsets(ctx, j.allPartitions())
	if err != nil {
		return fmt.Errorf("persistence: settling the state store: %w", err)
	}
	tick := time.NewTicker(storeSettlePoll)
	defer tick.Stop()
	for {
		behind := int64(0)
		for p, next := range st.Checkpoints() {
			behind += max(0, end[p]-next)
		}
		if behind == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("persistence: settling the state store: %d records not yet in it: %w", behind, ctx.Err())
		case <-tick.C:
		}
	}
}
