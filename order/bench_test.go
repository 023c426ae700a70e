package order

import (
	"testing"
	"time"
)

// BenchmarkDecideApply is the core's share of one transition: decide and
// apply a step of a live order.
func BenchmarkDecideApply(b *testing.B) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	created := Order{ID: "bench-order", State: Created, Version: 1, CreatedAt: now, UpdatedAt: now}
	cmd := Command{Kind: CommandTransition, OrderID: "bench-order", To: Paid, EventID: "e", Principal: "p", IdempotencyKey: "k"}
	b.ReportAllocs()
	for b.Loop() {
		ev, err := Decide(created, cmd, now)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Apply(created, ev); err != nil {
			b.Fatal(err)
		}
	}
}
