package persistence

// Candidate readers of the audit topic built on franz-go, measured against
// today's Replay (kafka_read.go, fetch_raw.go, batch.go) by
// BenchmarkReplayCandidates. They are test code only: the measurement that
// decides the read path (docs/read-path-candidates.md), not a replacement.
// Both read every partition from its first offset up to the end offset
// measured at start, decode each record with DecodeEvent, and hand the events
// to fn in log order, as Replay does.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go/compress"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence/kfaketest"
)

// candidateStats is what a candidate read: records decoded, and records it
// could not decode (skipped, as Replay skips them).
type candidateStats struct {
	records, undecodable int
}

// candidateReplay reads the whole topic from the broker at addr, over dial
// (TCP if nil), and calls fn for every event.
type candidateReplay func(ctx context.Context, addr string, dial func(context.Context, string, string) (net.Conn, error), fn func(order.Event) error) (candidateStats, error)

// franzClientOpts are the options both candidates share: the bounds of
// today's read path, set explicitly.
func franzClientOpts(addr string, dial func(context.Context, string, string) (net.Conn, error)) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ClientID(clientID),
		// A response is at most a fetch plus the one oversized batch a
		// broker may return whole, as rawFetcher.receive allows;
		// franz-go's default is 100 MiB.
		kgo.BrokerMaxReadBytes(fetchBytesMax + rawFetchSlackBytes),
		// Today's fetch size (franz-go's default: 50 MiB, which it
		// refuses above BrokerMaxReadBytes even for a client that
		// sends its own fetches).
		kgo.FetchMaxBytes(fetchBytesMax),
	}
	if dial != nil {
		opts = append(opts, kgo.Dialer(dial))
	}
	return opts
}

// franzTopic is where the topic's partitions are and what they hold.
type franzTopic struct {
	id         [16]byte // for Fetch v13 on, which names topics by ID
	leaders    []int32  // by partition
	first, end []int64  // by partition
}

// readFranzTopic measures the topic with Metadata and two ListOffsets
// requests (Kafka refuses one that names a partition twice).
func readFranzTopic(ctx context.Context, cl *kgo.Client, topic string) (franzTopic, error) {
	var t franzTopic
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	mreq.Topics = append(mreq.Topics, mt)
	mresp, err := mreq.RequestWith(ctx, cl)
	if err != nil {
		return t, fmt.Errorf("metadata: %w", err)
	}
	if len(mresp.Topics) != 1 {
		return t, fmt.Errorf("metadata: %d topics", len(mresp.Topics))
	}
	rt := mresp.Topics[0]
	if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
		return t, fmt.Errorf("metadata: %w", err)
	}
	t.id = rt.TopicID
	t.leaders = make([]int32, len(rt.Partitions))
	for _, p := range rt.Partitions {
		if p.Partition < 0 || int(p.Partition) >= len(t.leaders) {
			return t, fmt.Errorf("metadata: partition %d of %d", p.Partition, len(t.leaders))
		}
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			return t, fmt.Errorf("metadata of partition %d: %w", p.Partition, err)
		}
		t.leaders[p.Partition] = p.Leader
	}
	if t.first, err = listFranzOffsets(ctx, cl, topic, len(t.leaders), -2); err != nil {
		return t, err
	}
	if t.end, err = listFranzOffsets(ctx, cl, topic, len(t.leaders), -1); err != nil {
		return t, err
	}
	return t, nil
}

// listFranzOffsets asks for every partition's earliest (-2) or end (-1)
// offset.
func listFranzOffsets(ctx context.Context, cl *kgo.Client, topic string, partitions int, timestamp int64) ([]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = int32(p)
		rp.Timestamp = timestamp
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl) // kgo splits it by leader and merges the answers
	if err != nil {
		return nil, fmt.Errorf("listing offsets: %w", err)
	}
	out := make([]int64, partitions)
	seen := 0
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("listing offsets of partition %d: %w", p.Partition, err)
			}
			if p.Partition < 0 || int(p.Partition) >= partitions {
				return nil, fmt.Errorf("listing offsets: partition %d of %d", p.Partition, partitions)
			}
			out[p.Partition] = p.Offset
			seen++
		}
	}
	if seen != partitions {
		return nil, fmt.Errorf("listing offsets: %d answers for %d partitions", seen, partitions)
	}
	return out, nil
}

// decodeCandidateRecord decodes one record for fn, counting what it cannot
// decode.
func decodeCandidateRecord(stats *candidateStats, key, value []byte, fn func(order.Event) error) error {
	ev, err := DecodeEvent(key, value)
	if err != nil {
		stats.undecodable++
		return nil
	}
	stats.records++
	return fn(ev)
}

// replayWithKgo is candidate a: franz-go's consumer (kgo.ConsumePartitions
// from each partition's first offset), polled until every partition has
// handed out the record before its end offset.
//
// It ends only when it has seen that record: a partition whose last offsets
// hold no data record (a transaction marker, a compacted tail) would keep it
// polling until ctx ends. orderd writes neither, and this is a measurement.
func replayWithKgo(ctx context.Context, addr string, dial func(context.Context, string, string) (net.Conn, error), fn func(order.Event) error) (candidateStats, error) {
	var stats candidateStats
	opts := append(franzClientOpts(addr, dial),
		// Today's fetch size for one partition too (franz-go's
		// default: 1 MiB).
		kgo.FetchMaxPartitionBytes(fetchBytesMax),
		kgo.FetchMaxWait(fetchWaitMax),
		// What one batch may expand to, as batchDecompressedBytesMax
		// bounds today's codecs (franz-go's default: 1 GiB).
		kgo.MaxDecompressBatchBytes(batchDecompressedBytesMax),
		// Committed and uncommitted alike, as today: orderd writes no
		// transactions.
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return stats, err
	}
	defer cl.Close()
	t, err := readFranzTopic(ctx, cl, DefaultTopic)
	if err != nil {
		return stats, err
	}
	start := make(map[int32]kgo.Offset)
	for p := range t.first {
		if t.first[p] < t.end[p] {
			start[int32(p)] = kgo.NewOffset().At(t.first[p])
		}
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{DefaultTopic: start})
	left := len(start)
	done := make([]bool, len(t.end))
	for left > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return stats, err
		}
		for _, fe := range fetches.Errors() {
			return stats, fmt.Errorf("partition %d: %w", fe.Partition, fe.Err)
		}
		var fnErr error
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			p := fp.Partition
			for _, r := range fp.Records {
				if fnErr != nil || done[p] || r.Offset >= t.end[p] {
					return
				}
				if fnErr = decodeCandidateRecord(&stats, r.Key, r.Value, fn); fnErr != nil {
					return
				}
				if r.Offset == t.end[p]-1 {
					done[p] = true
					left--
				}
			}
		})
		if fnErr != nil {
			return stats, fnErr
		}
	}
	return stats, nil
}

// replayWithKmsg is candidate b: Fetch requests of our own, sent through a
// kgo.Client to each partition's leader, each partition's response handed to
// kgo.ProcessFetchPartition (CRCs checked). The next fetch goes out before
// the records of the current one are decoded, as today's fast path does.
// Partitions are read one after another: the benchmark's log has one.
func replayWithKmsg(ctx context.Context, addr string, dial func(context.Context, string, string) (net.Conn, error), fn func(order.Event) error) (candidateStats, error) {
	var stats candidateStats
	cl, err := kgo.NewClient(franzClientOpts(addr, dial)...)
	if err != nil {
		return stats, err
	}
	defer cl.Close()
	t, err := readFranzTopic(ctx, cl, DefaultTopic)
	if err != nil {
		return stats, err
	}
	for p := range t.first {
		if err := readPartitionWithKmsg(ctx, cl, t, int32(p), &stats, fn); err != nil {
			return stats, err
		}
	}
	return stats, nil
}

// kmsgFetched is the outcome of one fetch request.
type kmsgFetched struct {
	resp *kmsg.FetchResponse
	err  error
}

func readPartitionWithKmsg(ctx context.Context, cl *kgo.Client, t franzTopic, p int32, stats *candidateStats, fn func(order.Event) error) error {
	first, end := t.first[p], t.end[p]
	if first >= end {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // a prefetch still out ends with the read
	broker := cl.Broker(int(t.leaders[p]))
	send := func(offset int64) <-chan kmsgFetched {
		ch := make(chan kmsgFetched, 1)
		go func() {
			resp, err := newKmsgFetch(t.id, p, offset).RequestWith(ctx, broker)
			ch <- kmsgFetched{resp, err}
		}()
		return ch
	}
	dec := &pooledDecompressor{}
	pending := send(first)
	empty := 0
	for offset := first; offset < end; {
		got := <-pending
		if got.err != nil {
			return fmt.Errorf("fetching partition %d at offset %d: %w", p, offset, got.err)
		}
		rp, err := fetchedPartition(got.resp, p)
		if err != nil {
			return fmt.Errorf("fetching partition %d at offset %d: %w", p, offset, err)
		}
		fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
			Offset:         offset,
			IsolationLevel: kgo.ReadUncommitted(),
			Topic:          DefaultTopic,
			Partition:      p,
			// DisableCRCValidation stays false: every batch's
			// CRC is checked.
		}, rp, dec, nil)
		if next > offset && next < end {
			pending = send(next)
		}
		var fnErr error
		for _, r := range fp.Records {
			if r.Offset >= end {
				break
			}
			if fnErr = decodeCandidateRecord(stats, r.Key, r.Value, fn); fnErr != nil {
				break
			}
		}
		dec.release() // the records' keys and values point into it
		switch {
		case fnErr != nil:
			return fnErr
		case fp.Err != nil:
			return fmt.Errorf("partition %d at offset %d: %w", p, offset, fp.Err)
		case next <= offset:
			if empty++; empty >= emptyFetchesMax {
				return fmt.Errorf("partition %d: %d fetches at offset %d returned nothing below end offset %d", p, empty, offset, end)
			}
			pending = send(offset)
			continue
		}
		empty = 0
		offset = next
	}
	return nil
}

// newKmsgFetch asks for one partition from offset, as rawFetcher does, with
// the topic named both ways: kgo picks the newest Fetch version both sides
// speak, and from v13 on the topic goes by ID.
func newKmsgFetch(topicID [16]byte, p int32, offset int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(fetchWaitMax / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = fetchBytesMax
	req.IsolationLevel = 0
	req.SessionID, req.SessionEpoch = 0, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = DefaultTopic, topicID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = p
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = fetchBytesMax
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// fetchedPartition finds partition p in a fetch response of one topic.
func fetchedPartition(resp *kmsg.FetchResponse, p int32) (*kmsg.FetchResponseTopicPartition, error) {
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			rp := &resp.Topics[i].Partitions[j]
			if rp.Partition != p {
				continue
			}
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return nil, err
			}
			return rp, nil
		}
	}
	return nil, errors.New("response without the partition")
}

// pooledDecompressor is a kgo.Decompressor that expands a batch with the
// bounded codecs every read of this process uses (codecs.go: at most
// batchDecompressedBytesMax a batch) into pooled buffers, kept until
// release. kgo.DefaultDecompressor, the other choice for
// ProcessFetchPartition, is bounded at 2 GiB a batch and copies each
// expanded lz4 batch out of its pool.
type pooledDecompressor struct {
	held []*bytes.Buffer
}

var _ kgo.Decompressor = (*pooledDecompressor)(nil)

func (d *pooledDecompressor) Decompress(src []byte, codec kgo.CompressionCodecType) ([]byte, error) {
	c := compress.Compression(codec) // Kafka's codes: kgo and kafka-go agree
	if codec <= 0 || c.Codec() == nil {
		return nil, fmt.Errorf("unknown compression codec %d", codec)
	}
	buf, err := decompressRecords(c, src)
	if err != nil {
		return nil, err
	}
	d.held = append(d.held, buf)
	return buf.Bytes(), nil
}

// release hands back every buffer given out since the last release.
func (d *pooledDecompressor) release() {
	for _, buf := range d.held {
		recycleDecompressed(buf)
	}
	clear(d.held)
	d.held = d.held[:0]
}

// replayBenchRecordsEnv, if set, is the number of records of both logs of
// BenchmarkReplayCandidates, for runs at the size of a real log (4,000,000
// records: the target; choose the shape with -bench).
const replayBenchRecordsEnv = "ORDERD_BENCH_REPLAY_RECORDS"

// BenchmarkReplayCandidates replays one lz4 log, filled once per log shape,
// with today's Replay (reached in-process, as orderd does by default, and
// over TCP) and with the two franz-go candidates (over TCP, and in-process
// for comparison). fn does nothing. Run the readers interleaved, in a loop:
//
//	go test -c -o /tmp/cand.test ./persistence/
//	for i in 1 2 3 4 5; do (cd persistence && /tmp/cand.test -test.run '^$' \
//	  -test.bench ReplayCandidates -test.benchtime 10x); done
//
// The broker runs in this process, so the allocations reported include its
// own (the same broker work for every reader).
func BenchmarkReplayCandidates(b *testing.B) {
	large, small := replayBenchRecords, replayBenchSmallBatchLog
	if s := os.Getenv(replayBenchRecordsEnv); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(b, err, replayBenchRecordsEnv)
		large, small = n, n
	}
	for _, shape := range []struct{ perBatch, records int }{
		{replayBenchBatchRecords, large},
		{replayBenchSmallBatchRecords, small},
	} {
		b.Run(fmt.Sprintf("batch=%d/records=%d", shape.perBatch, shape.records), func(b *testing.B) {
			e := startTestBroker(b)
			fillStart := time.Now()
			fillLog(b, e, openTestJournal(b, e, KafkaConfig{Partitions: 1}), shape.records, shape.perBatch, compress.Lz4)
			b.Logf("filled %d records in %d-record lz4 batches in %v", shape.records, shape.perBatch, time.Since(fillStart).Round(time.Millisecond))
			for _, r := range []struct {
				name   string
				dial   func(context.Context, string, string) (net.Conn, error)
				replay candidateReplay
			}{
				{"reader=today/transport=in-process", e.Dial, todaysReplay(b, e, e.Dial)},
				{"reader=today/transport=tcp", dialTCP, todaysReplay(b, e, dialTCP)},
				{"reader=kgo/transport=tcp", dialTCP, replayWithKgo},
				{"reader=kmsg/transport=tcp", dialTCP, replayWithKmsg},
				{"reader=kgo/transport=in-process", e.Dial, replayWithKgo},
				{"reader=kmsg/transport=in-process", e.Dial, replayWithKmsg},
			} {
				b.Run(r.name, func(b *testing.B) {
					benchmarkCandidate(b, e, r.dial, r.replay, shape.records)
				})
			}
		})
	}
}

// todaysReplay is Replay as a candidateReplay, on a journal opened once
// (as orderd opens it before replaying) over dial.
func todaysReplay(b *testing.B, e *Embedded, dial func(context.Context, string, string) (net.Conn, error)) candidateReplay {
	var j *KafkaJournal
	return func(ctx context.Context, _ string, _ func(context.Context, string, string) (net.Conn, error), fn func(order.Event) error) (candidateStats, error) {
		if j == nil {
			j = openTestJournal(b, e, KafkaConfig{Partitions: 1, Dial: dial})
		}
		stats, err := j.Replay(ctx, fn)
		return candidateStats{records: stats.Records - stats.Undecodable, undecodable: stats.Undecodable}, err
	}
}

func benchmarkCandidate(b *testing.B, e *Embedded, dial func(context.Context, string, string) (net.Conn, error), replay candidateReplay, records int) {
	ctx := testContext(b)
	if _, err := replay(ctx, e.Addr(), dial, func(order.Event) error { return nil }); err != nil {
		b.Fatal(err) // opens the journal outside the timed loop
	}
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for b.Loop() {
		stats, err := replay(ctx, e.Addr(), dial, func(order.Event) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		if stats.records != records || stats.undecodable != 0 {
			b.Fatalf("replayed %d records (%d undecodable), want %d", stats.records, stats.undecodable, records)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	n := float64(records * b.N)
	b.ReportMetric(n/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/record")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/n, "B/record")
}

// Both candidates read what today's Replay reads, from a log of several
// batches, plain and compressed, on two partitions.
func TestReplayCandidatesReadTheLog(t *testing.T) {
	for _, codec := range []compress.Compression{compress.None, compress.Lz4} {
		t.Run(codec.String(), func(t *testing.T) {
			e := startTestBroker(t)
			j := openTestJournal(t, e, KafkaConfig{Partitions: 2})
			const records = 300
			fillLog(t, e, j, records, 16, codec)
			want, _ := replayAll(t, j)
			require.Len(t, want, records)
			for name, replay := range map[string]candidateReplay{"kgo": replayWithKgo, "kmsg": replayWithKmsg} {
				var got []order.Event
				stats, err := replay(testContext(t), e.Addr(), nil, func(ev order.Event) error {
					got = append(got, ev)
					return nil
				})
				require.NoError(t, err, name)
				assert.Equal(t, candidateStats{records: records}, stats, name)
				assert.ElementsMatch(t, want, got, name)
			}
		})
	}
}

// The candidates, fed each hostile batch between two of orderd's records
// (codecs_test.go), allocate nothing near what the batch claims and do not
// crash. They do not do what today's Replay does, though, which skips every
// one of them and counts it as one undecodable record
// (TestKafkaReadsSkipBatchesThatLieAboutTheirSize): both stop at the snappy
// batch with an error, as franz-go reports it and gives no offset to go on
// from, and both pass over the batch of no records and the record claiming
// a billion headers without a word.
func TestReplayCandidatesOnHostileBatches(t *testing.T) {
	outcomes := map[string]struct {
		events      int // of the two around the batch, in order
		undecodable int
		stops       bool // with an error, at the batch
	}{
		// franz-go hands out the one record the batch holds, which
		// DecodeEvent refuses.
		"a batch claiming 200 million records": {events: 2, undecodable: 1},
		"a snappy chunk claiming 4 GiB":        {events: 1, stops: true},
		"a batch claiming no records":          {events: 2},
		"a record claiming a billion headers":  {events: 2},
	}
	for _, hostile := range hostileBatches(t) {
		want, ok := outcomes[hostile.name]
		require.True(t, ok, "an outcome for %q", hostile.name)
		for _, c := range []struct {
			name   string
			replay candidateReplay
		}{{"kgo", replayWithKgo}, {"kmsg", replayWithKmsg}} {
			t.Run(hostile.name+"/"+c.name, func(t *testing.T) {
				e, _, events := journalAround(t, hostile.batch)
				var got []order.Event
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				stats, err := c.replay(testContext(t), e.Addr(), nil, func(ev order.Event) error {
					got = append(got, ev)
					return nil
				})
				runtime.ReadMemStats(&after)
				assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(decodeAllocMax), "bytes allocated")
				assert.Equal(t, events[:want.events], got)
				assert.Equal(t, want.undecodable, stats.undecodable)
				if want.stops {
					assert.Error(t, err)
				} else {
					assert.NoError(t, err)
				}
			})
		}
	}
}

// Both candidates refuse a batch whose CRC is wrong, as today's Replay does
// (TestKafkaGoIsRefusedBatchesItCannotPlaceOrTrust): the read stops at it.
func TestReplayCandidatesRefuseAWrongCRC(t *testing.T) {
	badCRC := encodeTestBatch(t, 0, testBatchOpts{}, testRecord{0, []byte("k"), []byte("v"), nil})
	badCRC[len(badCRC)-1] ^= 1
	for _, c := range []struct {
		name   string
		replay candidateReplay
	}{{"kgo", replayWithKgo}, {"kmsg", replayWithKmsg}} {
		t.Run(c.name, func(t *testing.T) {
			e := startTestBroker(t)
			j := openTestJournal(t, e, KafkaConfig{Partitions: 1})
			require.NoError(t, j.Append(testContext(t), lifecycle("o-1", 1)[0]))
			kfaketest.AnswerFetches(e.cluster, func(p *kmsg.FetchResponseTopicPartition) {
				p.HighWatermark, p.LastStableOffset, p.RecordBatches = 1, 1, badCRC
			})
			calls := 0
			_, err := c.replay(testContext(t), e.Addr(), nil, func(order.Event) error { calls++; return nil })
			assert.ErrorContains(t, err, "crc")
			assert.Zero(t, calls)
		})
	}
}
