package persistence

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/produce"

	"github.com/orderd/orderd/order"
)

// Shape of BenchmarkWritePath.
const (
	// writeBenchAckDelay stands in for the broker's synced writes (two
	// fsyncs of ~0.3 ms when the disk is calm, FACTS.md; time.Sleep does
	// not wake sooner than ~1 ms on this machine anyway). It is what lets
	// batches form, as they do against the real broker.
	writeBenchAckDelay = time.Millisecond
	// writeBenchOrders is how many distinct orders the benchmark cycles
	// through: enough to spread over every partition.
	writeBenchOrders = 1024
	// writeBenchProduceVersion is the Produce API version the requests
	// are encoded with (record batches v2, as kfake negotiates).
	writeBenchProduceVersion = 7
)

// BenchmarkWritePath measures the journal's own cost per append — encoding,
// queueing, building and encoding the produce request, completing the
// waiters — without the broker's: produce requests go to a RoundTripper that
// encodes them as kafka-go does for the wire and acknowledges each after
// writeBenchAckDelay. The events are built before the timer starts, so
// allocs/op and B/op are the journal's alone. cpu-ns/op is the process's
// CPU time (user and system) per append, which on a busy machine is steadier
// than ns/op. Compare runs with benchstat:
//
//	go test -run='^$' -bench=WritePath -benchmem -count=6 ./persistence/ | tee new.txt
func BenchmarkWritePath(b *testing.B) {
	events := make([]order.Event, 0, writeBenchOrders*len(lifecyclePath))
	for i := range writeBenchOrders {
		events = append(events, lifecycle(fmt.Sprintf("01JDXQ6Z8M3V5T2K9R4W%06d", i), len(lifecyclePath))...)
	}
	for _, partitions := range []int{1, 4} {
		b.Run(fmt.Sprintf("partitions=%d", partitions), func(b *testing.B) {
			e := startTestBroker(b)
			j := openTestJournal(b, e, KafkaConfig{Partitions: partitions})
			// Before the first append, so every writer sees it.
			j.producer = &kafka.Client{Addr: j.producer.Addr, Timeout: j.cfg.ProduceTimeout, Transport: newAckingTransport()}
			var next atomic.Int64
			b.SetParallelism(appendBenchGoroutinesPerProc)
			b.ReportAllocs()
			cpu := processCPU(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				i := int(next.Add(1)) * 7919 // a prime: goroutines start far apart
				for pb.Next() {
					i++
					if err := j.Append(ctx, events[i%len(events)]); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// processCPU is the CPU time the process has used, in nanoseconds.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// ackingTransport answers produce requests as a healthy broker would, after
// encoding them as kafka-go's own transport does before writing them to a
// connection (which is when the records are read). Like a broker, it places
// each batch right after the partition's last one, so the journal finds no
// other writer in between (foreign_writes.go).
type ackingTransport struct {
	mu   sync.Mutex
	next map[int32]int64 // by partition: the offset the next batch gets
}

func newAckingTransport() *ackingTransport { return &ackingTransport{next: map[int32]int64{}} }

func (t *ackingTransport) RoundTrip(_ context.Context, _ net.Addr, req kafka.Request) (kafka.Response, error) {
	p, ok := req.(*produce.Request)
	if !ok {
		return nil, fmt.Errorf("ackingTransport: unexpected %T", req)
	}
	rp := &p.Topics[0].Partitions[0]
	records := &countingRecords{RecordReader: rp.RecordSet.Records}
	rp.RecordSet.Records = records
	p.Prepare(writeBenchProduceVersion)
	if err := protocol.WriteRequest(io.Discard, writeBenchProduceVersion, 1, clientID, p); err != nil {
		return nil, err
	}
	time.Sleep(writeBenchAckDelay)
	t.mu.Lock()
	base := t.next[rp.Partition]
	t.next[rp.Partition] = base + int64(records.n)
	t.mu.Unlock()
	return &produce.Response{Topics: []produce.ResponseTopic{{
		Topic:      p.Topics[0].Topic,
		Partitions: []produce.ResponsePartition{{Partition: rp.Partition, BaseOffset: base}},
	}}}, nil
}

// countingRecords counts the records kafka-go reads while it encodes.
type countingRecords struct {
	protocol.RecordReader
	n int
}

func (c *countingRecords) ReadRecord() (*protocol.Record, error) {
	r, err := c.RecordReader.ReadRecord()
	if err == nil {
		c.n++
	}
	return r, err
}
