package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/orderd/orderd/order"
)

// A payment deadline change (Created -> Created with a new payment_due_at)
// continues an order's path for the reference consumer exactly as it does
// for orderd's own Apply rule; the same step from any other state, or
// without a deadline, is a fork.
func TestOrderTrackerDeadlineChange(t *testing.T) {
	due := time.Unix(3600, 0)
	ev := func(version uint64, from, to order.State, eventID string, due time.Time) order.Event {
		return order.Event{OrderID: "a", Version: version, From: from, To: to, EventID: eventID, At: time.Unix(0, 0), PaymentDueAt: due}
	}
	steps := []struct {
		ev   order.Event
		want verdict
	}{
		{ev(1, 0, order.Created, "a1", due), apply},
		{ev(2, order.Created, order.Created, "a2x", time.Time{}), fork}, // a change must name its deadline
		{ev(2, order.Created, order.Created, "a2", due.Add(time.Hour)), apply},
		{ev(3, order.Created, order.Paid, "a3", time.Time{}), apply},
		{ev(4, order.Paid, order.Paid, "a4x", due), fork},
	}
	tr := newOrderTracker()
	for i, s := range steps {
		assert.Equal(t, s.want, tr.observe(s.ev), "step %d: %s", i, s.ev.EventID)
	}
}
