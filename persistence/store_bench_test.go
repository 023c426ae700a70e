package persistence

import (
	"testing"

	"github.com/segmentio/kafka-go/compress"

	"github.com/orderd/orderd/persistence/store"
)

// BenchmarkStoreCatchUp measures building the state store from a whole log
// (what a first start or a rebuild costs, against BenchmarkKafkaReplay's
// replay of the same log) and the store's size per order, and a catch-up
// of a store that is already current (what a restart costs):
//
//	go test -run='^$' -bench=StoreCatchUp -benchtime 3x ./persistence/
func BenchmarkStoreCatchUp(b *testing.B) {
	e := startTestBroker(b)
	j := openTestJournal(b, e, KafkaConfig{Partitions: 1})
	fillLog(b, e, j, replayBenchRecords, replayBenchBatchRecords, compress.Lz4)
	orders := replayBenchRecords / len(lifecyclePath)
	ctx := testContext(b)
	b.Run("rebuild", func(b *testing.B) {
		var size int64
		for b.Loop() {
			b.StopTimer()
			dir := b.TempDir()
			st, _, err := OpenStore(ctx, dir, j, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			stats, err := j.CatchUp(ctx, st)
			if err != nil || stats.Applied != replayBenchRecords {
				b.Fatalf("caught up %+v: %v", stats, err)
			}
			b.StopTimer()
			size = flushedSize(b, st)
			b.StartTimer()
		}
		b.ReportMetric(float64(replayBenchRecords*b.N)/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(float64(size)/float64(orders), "store-bytes/order")
	})
	b.Run("current", func(b *testing.B) {
		dir := b.TempDir()
		st, _, err := OpenStore(ctx, dir, j, nil)
		if err == nil {
			_, err = j.CatchUp(ctx, st)
		}
		if err == nil {
			err = st.Close()
		}
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for b.Loop() {
			st, _, err := OpenStore(ctx, dir, j, nil)
			if err != nil {
				b.Fatal(err)
			}
			if stats, err := j.CatchUp(ctx, st); err != nil || stats.Records != 0 {
				b.Fatalf("caught up %+v: %v", stats, err)
			}
			if err := st.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func flushedSize(b *testing.B, st *store.Store) int64 {
	if err := st.Flush(); err != nil {
		b.Fatal(err)
	}
	size := st.SizeBytes()
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	return size
}
