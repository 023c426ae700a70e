package persistence

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// appendBenchGoroutinesPerProc makes b.RunParallel run 32 goroutines per
// GOMAXPROCS (64 on two cores), each appending one event at a time like an
// order's actor: the concurrency group commit exists for.
const appendBenchGoroutinesPerProc = 32

// BenchmarkKafkaAppend measures appends against the embedded broker with
// synced writes, reached in-process as orderd reaches it by default, and over
// TCP as any other broker. Compare runs with benchstat:
//
//	go test -run='^$' -bench=KafkaAppend -count=6 ./persistence/ | tee new.txt
func BenchmarkKafkaAppend(b *testing.B) {
	for _, bc := range []struct {
		partitions int
		transport  string
	}{{1, "in-process"}, {1, "tcp"}, {4, "in-process"}, {16, "in-process"}} {
		b.Run(fmt.Sprintf("partitions=%d/transport=%s", bc.partitions, bc.transport), func(b *testing.B) {
			e := startTestBroker(b)
			cfg := KafkaConfig{Partitions: bc.partitions}
			if bc.transport == "tcp" {
				cfg.Dial = dialTCP
			}
			j := openTestJournal(b, e, cfg)
			var orders atomic.Int64
			var mu sync.Mutex
			var latencies []time.Duration
			b.SetParallelism(appendBenchGoroutinesPerProc)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				var mine []time.Duration
				id, v := "", len(lifecyclePath)
				for pb.Next() {
					if v == len(lifecyclePath) {
						id, v = fmt.Sprintf("bench-%d", orders.Add(1)), 0
					}
					v++
					ev := lifecycleEvent(id, v)
					start := time.Now()
					if err := j.Append(ctx, ev); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(start))
				}
				mu.Lock()
				latencies = append(latencies, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			if len(latencies) > 0 {
				slices.Sort(latencies)
				b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds()), "p99-µs")
			}
		})
	}
}

// replayBenchRecords is the log a replay benchmark reads: large enough that
// fixed costs (connections, offsets) do not dominate.
const replayBenchRecords = 200_000

// Records per batch in the replay benchmarks' logs. A log written by bulk
// loading has large batches; one written by the server's group commit has
// about as many records per batch as there were concurrent appends, which
// puts the per-batch costs (the broker's reads, CRC checks) in view.
const (
	replayBenchBatchRecords      = 1000
	replayBenchSmallBatchRecords = 16
	// replayBenchSmallBatchLog is smaller: every batch is a synced
	// produce request, and filling must not take minutes.
	replayBenchSmallBatchLog = 50_000
)

// replayBenchRecordsEnv, if set, is the number of records of one more log
// of BenchmarkKafkaReplay: lz4 in 1,000-record batches, orderd's codec, for
// runs at the size of a real log (4,000,000 records is the target of the
// issue "Simpler for the next engineer").
const replayBenchRecordsEnv = "ORDERD_BENCH_REPLAY_RECORDS"

// BenchmarkKafkaReplay measures Replay with a callback that does nothing, on
// one partition (the embedded default) and four, and on a log of small
// batches. Compare runs with benchstat:
//
//	go test -run='^$' -bench=KafkaReplay -benchmem -count=6 ./persistence/ | tee new.txt
//
// At the size of a real log, in-process, as orderd reads its embedded broker:
//
//	ORDERD_BENCH_REPLAY_RECORDS=4000000 go test -run='^$' -timeout 30m \
//	  -bench='KafkaReplay/partitions=1/batch=1000/codec=lz4/records=' -benchtime 3x ./persistence/
func BenchmarkKafkaReplay(b *testing.B) {
	if s := os.Getenv(replayBenchRecordsEnv); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(b, err, replayBenchRecordsEnv)
		b.Run(fmt.Sprintf("partitions=1/batch=%d/codec=lz4/records=%d", replayBenchBatchRecords, n), func(b *testing.B) {
			benchmarkReplay(b, 1, replayBenchBatchRecords, n, nil, compress.Lz4)
		})
	}
	for _, partitions := range []int{1, 4} {
		b.Run(fmt.Sprintf("partitions=%d", partitions), func(b *testing.B) {
			benchmarkReplay(b, partitions, replayBenchBatchRecords, replayBenchRecords, nil, compress.None)
		})
	}
	b.Run("partitions=1/transport=tcp", func(b *testing.B) {
		benchmarkReplay(b, 1, replayBenchBatchRecords, replayBenchRecords, dialTCP, compress.None)
	})
	b.Run(fmt.Sprintf("partitions=1/batch=%d", replayBenchSmallBatchRecords), func(b *testing.B) {
		benchmarkReplay(b, 1, replayBenchSmallBatchRecords, replayBenchSmallBatchLog, nil, compress.None)
	})
	b.Run(fmt.Sprintf("partitions=1/batch=%d/codec=lz4", replayBenchSmallBatchRecords), func(b *testing.B) {
		benchmarkReplay(b, 1, replayBenchSmallBatchRecords, replayBenchSmallBatchLog, nil, compress.Lz4)
	})
}

// benchmarkReplay replays over dial, or in-process as orderd does if nil, a
// log written with codec.
func benchmarkReplay(b *testing.B, partitions, perBatch, records int, dial func(context.Context, string, string) (net.Conn, error), codec compress.Compression) {
	e := startTestBroker(b)
	j := openTestJournal(b, e, KafkaConfig{Partitions: partitions, Dial: dial})
	fillLog(b, e, j, records, perBatch, codec)
	ctx := testContext(b)
	b.ResetTimer()
	for b.Loop() {
		stats, err := j.Replay(ctx, func(order.Event) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		if stats.Records != records {
			b.Fatalf("replayed %d records, want %d", stats.Records, records)
		}
	}
	b.ReportMetric(float64(records*b.N)/b.Elapsed().Seconds(), "records/s")
}

// fillLog writes n lifecycle events straight to the topic, perRequest
// records per produce request (one batch each), much faster than appends one
// at a time.
func fillLog(b testing.TB, e *Embedded, j *KafkaJournal, n, perRequest int, codec compress.Compression) {
	byPartition := make([][]kafka.Record, j.Partitions())
	c := rawClient(b, e)
	flush := func(p int) {
		resp, err := c.Produce(testContext(b), &kafka.ProduceRequest{
			Topic: DefaultTopic, Partition: p, RequiredAcks: kafka.RequireAll, Compression: codec,
			Records: kafka.NewRecordReader(byPartition[p]...),
		})
		if err == nil {
			err = resp.Error
		}
		if err != nil {
			b.Fatal(err)
		}
		byPartition[p] = byPartition[p][:0]
	}
	for i := range n {
		ev := lifecycleEvent(fmt.Sprintf("replay-%d", i/len(lifecyclePath)), i%len(lifecyclePath)+1)
		rec, err := EncodeEvent(ev)
		if err != nil {
			b.Fatal(err)
		}
		p := j.PartitionOf(ev.OrderID)
		byPartition[p] = append(byPartition[p], kafka.Record{Key: kafka.NewBytes(rec.Key), Value: kafka.NewBytes(rec.Value), Headers: rec.Headers})
		if len(byPartition[p]) == perRequest {
			flush(p)
		}
	}
	for p := range byPartition {
		if len(byPartition[p]) > 0 {
			flush(p)
		}
	}
}
