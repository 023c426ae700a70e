package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
	"github.com/orderd/orderd/persistence/store"
)

// benchOrders is the store BenchmarkListPage lists from (issue 16: a page of
// 100 out of 1,000,000 orders within 50 ms at the 99th percentile);
// ORDERD_BENCH_LIST_ORDERS makes it smaller for a quick look.
const benchOrders = 1_000_000

// benchCustomers: 100 orders per customer on average.
const benchCustomers = 10_000

// BenchmarkListPage lists pages of 100 from a store holding a million orders
// in a mix of states (every state a sixth of them, each order with its
// items, a customer and the metadata of its steps), starting at a random
// order, for each kind of filter, and reports the latency percentiles.
//
//	go test -run '^$' -bench ListPage -benchtime 2000x -timeout 30m ./persistence/store/
func BenchmarkListPage(b *testing.B) {
	n := benchOrders
	if v, err := strconv.Atoi(os.Getenv("ORDERD_BENCH_LIST_ORDERS")); err == nil && v > 0 {
		n = v
	}
	st, ids := benchStore(b, n)
	defer st.Close()
	queries := []struct {
		name string
		q    order.ListQuery
	}{
		{"all", order.ListQuery{}},
		{"state=Paid", order.ListQuery{State: order.Paid}},
		{"customer", order.ListQuery{CustomerID: "c-1"}},
		{"customer,state=Paid", order.ListQuery{CustomerID: "c-1", State: order.Paid}},
	}
	for _, bq := range queries {
		b.Run(bq.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			lat := make([]time.Duration, 0, b.N)
			listed := 0
			for b.Loop() {
				q := bq.q
				q.Limit = order.ListLimitDefault
				if q.CustomerID != "" {
					q.CustomerID = fmt.Sprintf("c-%d", rng.IntN(benchCustomers))
				} else {
					q.After = ids[rng.IntN(len(ids))]
				}
				began := time.Now()
				page, err := st.List(context.Background(), q)
				lat = append(lat, time.Since(began))
				if err != nil {
					b.Fatal(err)
				}
				listed += len(page.Orders)
			}
			slices.Sort(lat)
			b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
			b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
			b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
			b.ReportMetric(float64(listed)/float64(len(lat)), "orders/page")
		})
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// benchStore fills a new store with n orders over 16 partitions, as a
// feeder would (a batch per few thousand records), and flushes it.
func benchStore(b *testing.B, n int) (*store.Store, []string) {
	b.Helper()
	id := store.Identity{Topic: "orders.transitions", Partitions: 16}
	st, err := store.Open(b.TempDir(), id, store.Options{Decode: decode, DecodeCheckout: decodeCheckout})
	if err != nil {
		b.Fatal(err)
	}
	began := time.Now()
	rng := rand.New(rand.NewPCG(3, 4))
	states := order.States()
	ids := make([]string, 0, n)
	batch := st.NewBatch(0)
	records := 0
	for i := range n {
		oid := order.NewID(testEpoch.Add(time.Duration(i)*time.Millisecond), [order.IDEntropyLen]byte{byte(i), byte(i >> 8), byte(i >> 16)})
		ids = append(ids, oid)
		ev := creation(oid, fmt.Sprintf("c-%d", rng.IntN(benchCustomers)))
		ev.Items = append(ev.Items, order.Item{SKU: "sku-" + strconv.Itoa(rng.IntN(1000)), Quantity: 1, UnitPrice: 999})
		ev.Total += 999
		evs := []order.Event{ev}
		for _, s := range pathTo(states[i%len(states)])[1:] {
			last := evs[len(evs)-1]
			evs = append(evs, step(oid, last.Version, last.To, s))
		}
		for _, ev := range evs {
			rec, err := persistence.EncodeEvent(ev)
			if err == nil {
				err = batch.Apply(ev, rec.Value)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		if records += len(evs); i%2000 == 1999 || i == n-1 {
			if err := batch.Commit(int64(records)); err != nil {
				b.Fatal(err)
			}
		}
	}
	batch.Close()
	if err := st.Flush(); err != nil {
		b.Fatal(err)
	}
	b.Logf("filled %d orders (%d records) in %v; %d MiB on disk", n, records, time.Since(began).Round(time.Second), st.SizeBytes()>>20)
	return st, ids
}
