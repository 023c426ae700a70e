package persistence

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// TestStoreListerSeesItsOwnWrites: a listing begun after an append returned
// lists the order, without the client polling: the lister waits until the
// store has applied what the journal acknowledged.
func TestStoreListerSeesItsOwnWrites(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: storeTestPartitions})
	ctx := testContext(t)
	st, _, err := OpenStore(ctx, t.TempDir(), j, testLogger(t))
	require.NoError(t, err)
	defer func() { _ = st.Close() }()
	_, err = j.CatchUp(ctx, st)
	require.NoError(t, err)
	lister := NewStoreLister(j, st)

	// Without a feeder the store never catches up: the listing gives up
	// after listWaitMax, saying why.
	require.NoError(t, j.Append(ctx, lifecycleEvent("early", 1)))
	_, err = lister.List(ctx, order.ListQuery{Limit: 10})
	require.ErrorIs(t, err, order.ErrStoreBehind)

	followCtx, stop := context.WithCancel(ctx)
	followed := make(chan error, 1)
	go func() { followed <- j.Follow(followCtx, st) }()
	defer func() {
		stop()
		require.NoError(t, <-followed)
	}()
	for i := range 30 {
		id := fmt.Sprintf("own-%02d", i)
		require.NoError(t, j.Append(ctx, lifecycleEvent(id, 1)))
		page, err := lister.List(ctx, order.ListQuery{After: fmt.Sprintf("own-%02d", i-1), Limit: 10})
		require.NoError(t, err)
		require.NotEmpty(t, page.Orders, "order %s acknowledged before the listing began", id)
		require.Equal(t, id, page.Orders[0].ID)
	}
	page, err := lister.List(ctx, order.ListQuery{State: order.Created, Limit: order.ListLimitMax})
	require.NoError(t, err)
	require.Len(t, page.Orders, 31)
}
