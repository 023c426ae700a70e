package actors

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderd/orderd/order"
)

// nullJournal acknowledges every append at once, so the benchmarks measure
// the actors alone.
type nullJournal struct{}

func (nullJournal) Append(context.Context, order.Event) error { return nil }
func (nullJournal) Replay(context.Context, func(order.Event) error) (order.ReplayStats, error) {
	return order.ReplayStats{}, nil
}
func (nullJournal) Load(context.Context, string) ([]order.Event, error) { return nil, nil }
func (nullJournal) Close() error                                        { return nil }

func benchSystem(b *testing.B) *System {
	s, err := New(Config{Journal: nullJournal{}, Shards: testShards, ShardOf: shardOf})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Recover(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	return s
}

// BenchmarkActorRoundTrip is one command's trip through the registry, the
// order's mailbox and actor, and back, with a journal that costs nothing:
// each iteration creates an order and moves it through its lifecycle
// (4 commands), from as many goroutines as GOMAXPROCS.
func BenchmarkActorRoundTrip(b *testing.B) {
	s := benchSystem(b)
	ctx := context.Background()
	var n atomicCounter
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("rt-%d", n.next())
			for _, cmd := range []order.Command{create(id), move(id, order.Paid), move(id, order.Shipped), move(id, order.Delivered)} {
				if _, err := s.Execute(ctx, cmd); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.ReportMetric(float64(b.N*4)/b.Elapsed().Seconds(), "commands/s")
}

// BenchmarkBytesPerIdleOrder measures the heap an order costs once it is
// idle: created and paid through its actor (so the actor exists), then left
// alone. It reports bytes per order; RSS is higher by the runtime's overhead.
func BenchmarkBytesPerIdleOrder(b *testing.B) {
	const orders = 20000
	for b.Loop() {
		s := benchSystem(b)
		ctx := context.Background()
		before := heapInUse()
		for i := range orders {
			id := fmt.Sprintf("idle-%d", i)
			if _, err := s.Execute(ctx, create(id)); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Execute(ctx, move(id, order.Paid)); err != nil {
				b.Fatal(err)
			}
		}
		after := heapInUse()
		b.ReportMetric(float64(after-before)/orders, "bytes/order")
		runtime.KeepAlive(s)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

type atomicCounter struct{ v atomic.Int64 }

func (c *atomicCounter) next() int64 { return c.v.Add(1) }

// sliceJournal replays a prepared slice of events.
type sliceJournal struct {
	nullJournal
	events []order.Event
}

func (j sliceJournal) Replay(_ context.Context, fn func(order.Event) error) (order.ReplayStats, error) {
	for _, ev := range j.events {
		if err := fn(ev); err != nil {
			return order.ReplayStats{}, err
		}
	}
	return order.ReplayStats{Records: len(j.events)}, nil
}

// BenchmarkRecover is the actors' side of a restart: applying replayed
// records to rebuild orders (4 records per order, as a full lifecycle),
// without the broker. It reports records/s.
func BenchmarkRecover(b *testing.B) {
	const orders = 50000
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var events []order.Event
	path := []order.State{order.Created, order.Paid, order.Shipped, order.Delivered}
	for i := range orders {
		id := fmt.Sprintf("rec-%d", i)
		for v, to := range path {
			ev := order.Event{EventID: fmt.Sprintf("%s-%d", id, v), OrderID: id, Version: uint64(v + 1), To: to, At: at, Principal: "p", RequestID: "r"}
			if v > 0 {
				ev.From = path[v-1]
			}
			events = append(events, ev)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		s, err := New(Config{Journal: sliceJournal{events: events}, Shards: testShards, ShardOf: shardOf})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Recover(context.Background()); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
	b.ReportMetric(float64(len(events)*b.N)/b.Elapsed().Seconds(), "records/s")
}

// generatedJournal replays orders full lifecycles (records of the first
// `records` steps of Created, Paid, Shipped, Delivered per order), making each
// record's strings afresh as a decoder would, so that what the System keeps
// is all that stays on the heap.
type generatedJournal struct {
	nullJournal
	orders, records int
}

func (j generatedJournal) Replay(_ context.Context, fn func(order.Event) error) (order.ReplayStats, error) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	path := []order.State{order.Created, order.Paid, order.Shipped, order.Delivered}
	var stats order.ReplayStats
	for i := range j.orders {
		for v := range j.records {
			ev := order.Event{
				// IDs of the lengths the server makes (ULIDs, 26 characters).
				EventID: fmt.Sprintf("01KAEVENT%017d", i*4+v), OrderID: fmt.Sprintf("01KAORDER%017d", i),
				RequestID: fmt.Sprintf("01KAREQST%017d", i*4+v), Principal: string([]byte("anonymous")),
				Version: uint64(v + 1), To: path[v], At: at,
			}
			if v > 0 {
				ev.From = path[v-1]
			} else {
				ev.PaymentDueAt = at.Add(order.PaymentTimeoutDefault)
			}
			if err := fn(ev); err != nil {
				return stats, err
			}
			stats.Records++
		}
	}
	return stats, nil
}

// BenchmarkBytesPerRecoveredOrder measures the heap an order costs once the
// server holds it without an actor (after a restart, or once passivated):
// the state of a million orders must fit the memory target. records is how
// many records each order has.
func BenchmarkBytesPerRecoveredOrder(b *testing.B) {
	const orders = 100000
	for _, records := range []int{1, 4} {
		b.Run(fmt.Sprintf("records=%d", records), func(b *testing.B) {
			for b.Loop() {
				before := heapInUse()
				s, err := New(Config{Journal: generatedJournal{orders: orders, records: records}, Shards: testShards, ShardOf: shardOf})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Recover(context.Background()); err != nil {
					b.Fatal(err)
				}
				after := heapInUse()
				b.ReportMetric(float64(after-before)/orders, "bytes/order")
				runtime.KeepAlive(s)
				s.Close()
			}
		})
	}
}
