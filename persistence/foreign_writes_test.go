package persistence

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderd/orderd/order"
)

// foreignSeen collects what a journal reports as another writer's records.
type foreignSeen struct {
	mu     sync.Mutex
	events []order.Event
}

func (f *foreignSeen) add(ev order.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, ev)
}

func (f *foreignSeen) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, len(f.events))
	for i, ev := range f.events {
		ids[i] = ev.EventID
	}
	return ids
}

// TestKafkaReportsAnotherWritersRecordsBeforeAnswering: two journals on one
// partition, as two orderd on one topic. Before the first answers an append
// that the log placed after the second's records, it has reported those
// records, in log order; its own appends are never reported; and while it
// writes alone it reads nothing back.
func TestKafkaReportsAnotherWritersRecordsBeforeAnswering(t *testing.T) {
	e := startTestBroker(t)
	reg := prometheus.NewRegistry()
	metrics := NewMetrics(reg)
	mine := openTestJournal(t, e, KafkaConfig{Partitions: 1, Metrics: metrics})
	other := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	ctx := testContext(t)
	require.NoError(t, mine.Append(ctx, lifecycleEvent("before-replay", 1)))
	var seen foreignSeen
	mine.NotifyForeign(seen.add)
	_, stats := replayAll(t, mine)
	require.Equal(t, 1, stats.Records)

	var fetches atomic.Int64
	e.cluster.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		e.cluster.KeepControl()
		fetches.Add(1)
		return nil, nil, false
	})
	for i := 1; i <= 3; i++ {
		require.NoError(t, mine.Append(ctx, lifecycleEvent("alone", i)))
	}
	assert.Zero(t, fetches.Load(), "a writer alone on its partition reads nothing back")
	assert.Empty(t, seen.ids())

	theirs := []order.Event{lifecycleEvent("shared", 1), lifecycleEvent("theirs", 1), lifecycleEvent("shared", 2)}
	for _, ev := range theirs {
		require.NoError(t, other.Append(ctx, ev))
	}
	require.NoError(t, mine.Append(ctx, lifecycleEvent("alone", 4)))
	assert.Equal(t, []string{theirs[0].EventID, theirs[1].EventID, theirs[2].EventID}, seen.ids(),
		"every foreign record, in log order, reported before the append after them returned")
	assert.Positive(t, fetches.Load(), "the gap was read")
	assert.Equal(t, 3.0, counterOf(t, metrics.foreignRecords))

	// Contiguous again: nothing more is read or reported.
	fetchesBefore := fetches.Load()
	require.NoError(t, mine.Append(ctx, lifecycleEvent("alone", 5)))
	assert.Equal(t, fetchesBefore, fetches.Load())
	assert.Len(t, seen.ids(), 3)
}

// Records of an append whose outcome was unknown are this writer's own: found
// later in a gap, they are not reported as another writer's.
func TestKafkaOwnUnsettledRecordsAreNotForeign(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	var seen foreignSeen
	j.NotifyForeign(seen.add)
	replayAll(t, j)
	w := j.writers[0]
	ev := lifecycleEvent("unsettled", 1)
	// As if its produce had timed out: written, but the writer did not
	// learn where.
	p, err := newPendingAppend(ev)
	require.NoError(t, err)
	w.rememberUnsettled([]*pendingAppend{p})
	other := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	require.NoError(t, other.Append(testContext(t), ev))
	require.NoError(t, other.Append(testContext(t), lifecycleEvent("foreign", 1)))
	require.NoError(t, j.Append(testContext(t), lifecycleEvent("next", 1)))
	assert.Equal(t, []string{lifecycleEvent("foreign", 1).EventID}, seen.ids())
}

// TestKafkaForeignCheckoutRecords: another writer's checkout records are
// counted as foreign, read without being taken for garbage, and not
// reported as orders' records.
func TestKafkaForeignCheckoutRecords(t *testing.T) {
	e := startTestBroker(t)
	reg := prometheus.NewRegistry()
	metrics := NewMetrics(reg)
	mine := openTestJournal(t, e, KafkaConfig{Partitions: 1, Metrics: metrics})
	other := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	ctx := testContext(t)
	var seen foreignSeen
	mine.NotifyForeign(seen.add)
	require.NoError(t, mine.Append(ctx, lifecycleEvent("alone", 1)))
	theirs := lifecycleEvent("theirs", 1)
	require.NoError(t, other.AppendCheckout(ctx, checkoutEvents()["Start"]))
	require.NoError(t, other.Append(ctx, theirs))
	require.NoError(t, mine.Append(ctx, lifecycleEvent("alone", 2)))
	assert.Equal(t, []string{theirs.EventID}, seen.ids())
	assert.Equal(t, 2.0, counterOf(t, metrics.foreignRecords))
	assert.Zero(t, mine.undecodableLogged.Load(), "nothing was taken for garbage")
}
