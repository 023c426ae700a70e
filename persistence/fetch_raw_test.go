package persistence

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderd/orderd/order"
)

// encodedRecords returns events as kafka-go records, as the journal writes
// them.
func encodedRecords(t testing.TB, events ...order.Event) []kafka.Record {
	records := make([]kafka.Record, len(events))
	for i, ev := range events {
		rec, err := EncodeEvent(ev)
		require.NoError(t, err)
		records[i] = kafka.Record{Key: kafka.NewBytes(rec.Key), Value: kafka.NewBytes(rec.Value), Headers: rec.Headers}
	}
	return records
}

// produceBatch writes records as one batch, compressed with codec unless it
// is 0 (none).
func produceBatch(t testing.TB, e *Embedded, codec kafka.Compression, records ...kafka.Record) {
	t.Helper()
	resp, err := rawClient(t, e).Produce(testContext(t), &kafka.ProduceRequest{
		Topic: DefaultTopic, Partition: 0, RequiredAcks: kafka.RequireAll, Compression: codec,
		Records: kafka.NewRecordReader(records...),
	})
	require.NoError(t, err)
	require.NoError(t, resp.Error)
}

// readOffsets reads partition 0 from first to end and returns the offsets
// visited and the decoded events.
func readOffsets(t *testing.T, j *KafkaJournal, first, end int64) ([]int64, []order.Event) {
	t.Helper()
	var offsets []int64
	var events []order.Event
	r := &partitionRead{p: 0, first: first, end: end, visit: func(rec LogRecord) error {
		offsets = append(offsets, rec.Offset)
		ev, err := DecodeEvent(rec.Key, rec.Value)
		require.NoError(t, err)
		events = append(events, ev)
		return nil
	}}
	require.NoError(t, j.src.readPartition(testContext(t), r))
	return offsets, events
}

func TestKafkaFastReadStartsInsideABatchAndStopsAtTheEnd(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	events := lifecycle("fast-1", 5)
	produceBatch(t, e, 0, encodedRecords(t, events...)...) // offsets 0 to 4, one batch

	offsets, got := readOffsets(t, j, 2, 4)
	assert.Equal(t, []int64{2, 3}, offsets, "the batch starts before the offset asked for and ends beyond the end")
	assert.Equal(t, events[2:4], got)
}

// Batches of every codec, as orderd or any other producer may have written
// them, are read, plain ones between them too.
func TestKafkaFastReadReadsCompressedBatches(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	events := lifecycle("gz", 5)
	events = append(events, lifecycle("plain", 2)...)
	produceBatch(t, e, 0, encodedRecords(t, events[:2]...)...)
	produceBatch(t, e, kafka.Gzip, encodedRecords(t, events[2:3]...)...)
	produceBatch(t, e, kafka.Snappy, encodedRecords(t, events[3:4]...)...)
	produceBatch(t, e, kafka.Zstd, encodedRecords(t, events[4:5]...)...)
	produceBatch(t, e, kafka.Lz4, encodedRecords(t, events[5:]...)...)

	offsets, got := readOffsets(t, j, 0, 7)
	assert.Equal(t, []int64{0, 1, 2, 3, 4, 5, 6}, offsets, "every record once, in order")
	assert.Equal(t, events, got)

	replayed, stats := replayAll(t, j)
	assert.Equal(t, events, replayed)
	assert.Equal(t, order.ReplayStats{Records: 7}, stats)
	loaded, err := j.Load(testContext(t), "gz")
	require.NoError(t, err)
	assert.Equal(t, events[:5], loaded)
}

// A broker may end a fetch response inside a batch; the reader must read
// the batches before it and fetch the cut one again.
func TestKafkaFastReadFetchesACutBatchAgain(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	events := lifecycle("cut", 5)
	produceBatch(t, e, 0, encodedRecords(t, events[:2]...)...)
	produceBatch(t, e, 0, encodedRecords(t, events[2:]...)...)

	// What the broker holds, as one fetch from 0 returns it.
	f, err := j.src.openRawFetcher(testContext(t), 0)
	require.NoError(t, err)
	whole, err := f.fetch(testContext(t), 0)
	require.NoError(t, err)
	whole = append([]byte(nil), whole...)
	f.close()
	firstEnd := 12 + int(int32(uint32(whole[8])<<24|uint32(whole[9])<<16|uint32(whole[10])<<8|uint32(whole[11])))
	require.Less(t, firstEnd, len(whole), "two batches")
	cut := whole[:firstEnd+(len(whole)-firstEnd)/2]

	var fetches atomic.Int64
	e.cluster.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		fetches.Add(1)
		return nil, nil, false
	})
	// Handling a request drops this one: it cuts the first response only.
	e.cluster.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		freq := req.(*kmsg.FetchRequest)
		if freq.Topics[0].Partitions[0].FetchOffset != 0 {
			return nil, nil, false
		}
		resp := freq.ResponseKind().(*kmsg.FetchResponse)
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic = freq.Topics[0].Topic
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.HighWatermark, rp.LastStableOffset, rp.RecordBatches = 5, 5, cut
		rt.Partitions = append(rt.Partitions, rp)
		resp.Topics = append(resp.Topics, rt)
		return resp, nil, true
	})
	offsets, got := readOffsets(t, j, 0, 5)
	assert.Equal(t, []int64{0, 1, 2, 3, 4}, offsets)
	assert.Equal(t, events, got)
	assert.Equal(t, int64(2), fetches.Load(), "the cut response, then the rest")
}

func TestKafkaFastReadEndsWithItsContext(t *testing.T) {
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	for i := range 4 {
		produceBatch(t, e, 0, encodedRecords(t, lifecycle(fmt.Sprintf("ctx-%d", i), 2)...)...)
	}
	j.src.fetchBytes = 1 // a fetch per batch, and one prefetched
	ctx, cancel := context.WithCancel(testContext(t))
	visits := 0
	err := j.src.readPartition(ctx, &partitionRead{p: 0, first: 0, end: 8, visit: func(LogRecord) error {
		visits++
		cancel()
		return nil
	}})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Less(t, visits, 8, "nothing fetched after the cancellation")

	cancel()
	err = j.src.readPartition(ctx, &partitionRead{p: 0, first: 0, end: 8, visit: func(LogRecord) error {
		t.Error("visited after the context ended")
		return nil
	}})
	assert.ErrorIs(t, err, context.Canceled)
}
