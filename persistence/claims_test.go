package persistence

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// TestClaimFencesTheDeposedOwner: two cluster nodes' journals on one
// partition. The first owner writes under its claim; the second claims the
// partition while the first still believes it owns it. The first's next
// append is placed after the second's claim: it is answered ErrNotOwner, and
// every reader (a replay, a state store fed from the log) skips it, while
// everything written before the claim and by the new owner counts.
func TestClaimFencesTheDeposedOwner(t *testing.T) {
	e := startTestBroker(t)
	ctx := testContext(t)
	first := openTestJournal(t, e, KafkaConfig{Partitions: 1, Clustered: true})
	second := openTestJournal(t, e, KafkaConfig{Partitions: 1, Clustered: true})

	err := first.Append(ctx, lifecycleEvent("early", 1))
	require.ErrorIs(t, err, ErrNotOwner, "a clustered journal writes nothing before it takes the partition over")

	c1, err := first.Claim(ctx, 0, Claim{Generation: 1, Member: "http://first", At: time.Now()})
	require.NoError(t, err)
	first.TakeOver(0, c1, c1+1)
	require.NoError(t, first.Append(ctx, lifecycleEvent("kept", 1)))
	require.NoError(t, first.Append(ctx, lifecycleEvent("kept", 2)))

	// The second node takes over (the group moved the partition), having
	// read the log up to its claim.
	c2, err := second.Claim(ctx, 0, Claim{Generation: 2, Member: "http://second", At: time.Now()})
	require.NoError(t, err)
	require.Greater(t, c2, c1)
	second.TakeOver(0, c2, c2+1)

	// The first wakes up and writes: the log places it after the claim.
	err = first.Append(ctx, lifecycleEvent("kept", 3))
	require.ErrorIs(t, err, ErrNotOwner)
	require.ErrorIs(t, err, order.ErrJournalUnavailable, "nothing was applied: a retry is safe")
	err = first.Append(ctx, lifecycleEvent("deposed", 1))
	require.ErrorIs(t, err, ErrNotOwner, "once it knows of the later claim it sends nothing")

	require.NoError(t, second.Append(ctx, lifecycleEvent("kept", 3)))
	require.NoError(t, second.Append(ctx, lifecycleEvent("new", 1)))

	want := []string{"kept/1", "kept/2", "kept/3", "new/1"}
	reader := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	got, stats := replayAll(t, reader)
	assert.Equal(t, want, eventNames(got), "the deposed owner's record after the claim counts for nobody")
	assert.Equal(t, 4, stats.Records, "claims and fenced records are not handed to replay")
	assert.Equal(t, int64(1), reader.FencedRecords())

	// A consumer reading through LogReader (orderctl tail) skips what
	// orderd skips, and is told why.
	lr := NewLogReader(LogReaderConfig{Topic: reader.cfg.Topic, Client: &kafka.Client{Addr: kafka.TCP(e.Addr())}})
	var visited []int64
	skipped := map[int64]string{}
	require.NoError(t, lr.ReadPartition(ctx, 0, 0, c2+4, PartitionVisitor{
		Record:  func(rec LogRecord) error { visited = append(visited, rec.Offset); return nil },
		Skipped: func(rec LogRecord, why string) { skipped[rec.Offset] = why },
	}))
	assert.Len(t, visited, 4)
	assert.Len(t, skipped, 3, "two claims and the fenced record")
	assert.Contains(t, skipped[c1], "claim")
	assert.Contains(t, skipped[c2+1], "taken from")

	// The state store takes the same records, and keeps the claims: a
	// store that starts past them still skips a deposed owner's writes.
	dir := filepath.Join(t.TempDir(), "state")
	st, _, err := OpenStore(ctx, dir, reader, testLogger(t))
	require.NoError(t, err)
	defer st.Close()
	_, err = reader.CatchUp(ctx, st)
	require.NoError(t, err)
	claims, err := st.Claims(0)
	require.NoError(t, err)
	assert.Equal(t, []int64{c1, c2}, claims)
	ev, err := st.Events(ctx, "kept")
	require.NoError(t, err)
	require.Len(t, ev, 3)
	assert.Equal(t, c2, second.writers[0].claim)
	_, err = st.Events(ctx, "deposed")
	assert.ErrorIs(t, err, order.ErrOrderNotFound, "the deposed owner's order does not exist")

	// A single orderd on the topic afterwards writes under the latest
	// claim it knows: its records count.
	single := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	replayAll(t, single)
	require.NoError(t, single.Append(ctx, lifecycleEvent("new", 2)))
	got, _ = replayAll(t, openTestJournal(t, e, KafkaConfig{Partitions: 1}))
	assert.Equal(t, append(want, "new/2"), eventNames(got))
}

// TestClaimStoredClaimsFenceAfterARestart: a store that has read past a claim
// knows it after a restart, so a deposed owner's record beyond the store's
// checkpoint is still skipped.
func TestClaimStoredClaimsFenceAfterARestart(t *testing.T) {
	e := startTestBroker(t)
	ctx := testContext(t)
	first := openTestJournal(t, e, KafkaConfig{Partitions: 1, Clustered: true})
	second := openTestJournal(t, e, KafkaConfig{Partitions: 1, Clustered: true})
	c1, err := first.Claim(ctx, 0, Claim{Generation: 1, At: time.Now()})
	require.NoError(t, err)
	first.TakeOver(0, c1, c1+1)
	require.NoError(t, first.Append(ctx, lifecycleEvent("a", 1)))
	c2, err := second.Claim(ctx, 0, Claim{Generation: 2, At: time.Now()})
	require.NoError(t, err)
	second.TakeOver(0, c2, c2+1)

	dir := filepath.Join(t.TempDir(), "state")
	reader := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	st, _, err := OpenStore(ctx, dir, reader, testLogger(t))
	require.NoError(t, err)
	_, err = reader.CatchUp(ctx, st)
	require.NoError(t, err)
	require.NoError(t, st.Close())

	// Written after the store's checkpoint, by the deposed owner.
	require.ErrorIs(t, first.Append(ctx, lifecycleEvent("a", 2)), ErrNotOwner)

	restarted := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	st, rebuilt, err := OpenStore(ctx, dir, restarted, testLogger(t))
	require.NoError(t, err)
	require.False(t, rebuilt)
	defer st.Close()
	_, err = restarted.CatchUp(ctx, st)
	require.NoError(t, err)
	v, err := st.Version(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), v, "the record after the stored claim was skipped")
	assert.Equal(t, int64(1), restarted.FencedRecords())
}

func eventNames(events []order.Event) []string {
	out := make([]string, len(events))
	for i, ev := range events {
		out[i] = ev.OrderID + "/" + string(rune('0'+ev.Version))
	}
	return out
}
