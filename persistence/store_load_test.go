package persistence

import (
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderd/orderd/order"
)

// fold applies events by the one rule and returns the order and the events
// it accepted.
func fold(events []order.Event) (order.Order, []order.Event) {
	var o order.Order
	var accepted []order.Event
	for _, ev := range events {
		next, err := order.Apply(o, ev)
		if err == nil {
			o, accepted = next, append(accepted, ev)
		}
	}
	return o, accepted
}

// TestLoadFromStoreFoldsLikeAFullLoad: with a state store behind the log
// (caught up, then more records written), Load reads the store and the
// partition's tail, in fewer fetches, and what it returns folds with
// order.Apply into the same order and accepted events as a Load of the whole
// partition. A store ahead of the log is not used.
func TestLoadFromStoreFoldsLikeAFullLoad(t *testing.T) {
	seed := storeSeeds(t)[0]
	t.Logf("seed %d (ORDERD_STORE_SEED repeats it)", seed)
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: storeTestPartitions})
	j.src.fetchBytes = 1 << 10 // a whole partition takes many fetches
	g := newHistoryGen(seed, j)
	ctx := testContext(t)
	st, _, err := OpenStore(ctx, t.TempDir(), j, testLogger(t))
	require.NoError(t, err)
	defer st.Close()
	g.write(t, e, 300)
	_, err = j.CatchUp(ctx, st)
	require.NoError(t, err)
	g.write(t, e, 30)

	var fetches atomic.Int64
	e.cluster.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		e.cluster.KeepControl()
		fetches.Add(1)
		return nil, nil, false
	})
	load := func(id string) ([]order.Event, int64) {
		before := fetches.Load()
		events, err := j.Load(ctx, id)
		require.NoError(t, err)
		return events, fetches.Load() - before
	}
	var fullFetches, storeFetches int64
	for _, id := range g.orders {
		j.LoadFromStore(nil)
		full, n := load(id)
		fullFetches += n
		j.LoadFromStore(st)
		fromStore, n := load(id)
		storeFetches += n
		wantOrder, wantAccepted := fold(full)
		gotOrder, gotAccepted := fold(fromStore)
		require.Equal(t, wantOrder, gotOrder, id)
		require.Equal(t, wantAccepted, gotAccepted, id)
	}
	require.Less(t, storeFetches, fullFetches, "with the store, Load reads only the tail")

	// A checkpoint beyond the log's end: the store is not what the log
	// says, and Load reads the whole partition instead.
	id := g.orders[0]
	p := j.PartitionOf(id)
	b := st.NewBatch(p)
	require.NoError(t, b.Commit(st.Checkpoints()[p]+1000))
	b.Close()
	j.LoadFromStore(nil)
	full, _ := load(id)
	j.LoadFromStore(st)
	ahead, _ := load(id)
	require.Equal(t, full, ahead)
}
