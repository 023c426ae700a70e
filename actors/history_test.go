package actors

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/orderd/orderd/order"
)

func TestCompactEventRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 23, 14, 5, 6, 123456789, time.UTC)
	tests := []struct {
		name string
		ev   order.Event
	}{
		{"creation with a deadline", order.Event{
			EventID: "01JEVENT", OrderID: "o-1", Version: 1, To: order.Created, At: at,
			Principal: "alice", RequestID: "req-1", PaymentDueAt: at.Add(time.Hour),
		}},
		{"transition with every text field", order.Event{
			EventID: "01JEVENT2", OrderID: "o-1", Version: 2, From: order.Created, To: order.Paid, At: at,
			IdempotencyKey: "key-1", RequestDigest: "digest", Principal: "alice", RequestID: "req-2",
			Reason: "paid by card ✓",
		}},
		{"long reason (two-byte length)", order.Event{
			EventID: "e", OrderID: "o-1", Version: 3, From: order.Paid, To: order.Cancelled, At: at,
			Reason: strings.Repeat("r", 1024),
		}},
		{"empty text fields and zero times", order.Event{OrderID: "o-1", Version: 1, To: order.Created}},
		{"a time before 1970 and after 2262", order.Event{
			OrderID: "o-1", Version: 1, To: order.Created,
			At: time.Date(1900, 1, 2, 3, 4, 5, 6, time.UTC), PaymentDueAt: time.Date(3000, 1, 1, 0, 0, 0, 999, time.UTC),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := compactEvent(tt.ev).event(tt.ev.OrderID)
			assert.Equal(t, tt.ev, got)
		})
	}
}

// TestCompactEventKeepsEveryField is the history's line of the check list
// for adding a member to the audit record (docs/json.md): a new field of
// order.Event fails here until the test event sets it, then until the
// packed history keeps it.
func TestCompactEventKeepsEveryField(t *testing.T) {
	at := time.Date(2026, 11, 23, 14, 5, 6, 123456789, time.UTC)
	ev := order.Event{ // a deadline change: the one event that can carry every field
		EventID: "01JEVERYFIELD", OrderID: "o-every", Version: 2, From: order.Created, To: order.Created, At: at,
		IdempotencyKey: "key-every", RequestDigest: "digest", Principal: "alice", RequestID: "req-every",
		Reason: "every field", PaymentDueAt: at.Add(time.Hour),
	}
	fields := reflect.ValueOf(ev)
	for i := range fields.NumField() {
		assert.False(t, fields.Field(i).IsZero(), "order.Event.%s is zero in this test's event: set it", fields.Type().Field(i).Name)
	}
	assert.Equal(t, ev, compactEvent(ev).event(ev.OrderID))
}

func TestCompactEventIsSmall(t *testing.T) {
	ev := order.Event{EventID: "01JEVENT", OrderID: "o-1", Version: 1, To: order.Created, Principal: "alice", RequestID: "req-1"}
	allocs := testing.AllocsPerRun(100, func() { _ = compactEvent(ev) })
	assert.Equal(t, 1.0, allocs, "one allocation for all the text")
	p := compactEvent(ev)
	allocs = testing.AllocsPerRun(100, func() { _ = p.event("o-1") })
	assert.Equal(t, 0.0, allocs, "expanding shares the text")
}

// A snapshot's deadline is the one its order would give.
func TestSnapshotDeadlineAgreesWithTheOrder(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 5, time.UTC)
	create := order.Event{EventID: "e1", OrderID: "o", Version: 1, To: order.Created, At: at, PaymentDueAt: at.Add(time.Hour)}
	pay := order.Event{EventID: "e2", OrderID: "o", Version: 2, From: order.Created, To: order.Paid, At: at}
	noDeadline := create
	noDeadline.PaymentDueAt = time.Time{}
	for name, events := range map[string][]order.Event{
		"created with a deadline": {create},
		"created without one":     {noDeadline},
		"paid":                    {create, pay},
	} {
		var o order.Order
		var history []pastEvent
		for _, ev := range events {
			var err error
			o, err = order.Apply(o, ev)
			if err != nil {
				t.Fatal(err)
			}
			history = append(history, compactEvent(ev))
		}
		want, wantOK := deadlineOf(o)
		got, ok := newSnapshot(o, history).deadline()
		assert.Equal(t, wantOK, ok, name)
		assert.Equal(t, want, got, name)
	}
	_, ok := (*snapshot)(nil).deadline()
	assert.False(t, ok, "no snapshot, no deadline")
}
