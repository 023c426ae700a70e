package actors

import (
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

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
		{"creation with contents", order.Event{
			EventID: "e", OrderID: "o-1", Version: 1, To: order.Created, At: at, CustomerID: "cus-1", Currency: "EUR",
			Items: []order.Item{{SKU: "a", Quantity: 2, UnitPrice: 5}, {SKU: strings.Repeat("s", order.SKULenMax), Quantity: order.QuantityMax, UnitPrice: order.UnitPriceMax}},
			Total: 10 + order.QuantityMax*order.UnitPriceMax, Metadata: map[string]string{"b": "", "a": "é"},
		}},
		{"free items only", order.Event{
			EventID: "e", OrderID: "o-1", Version: 1, To: order.Created, At: at, Currency: "JPY",
			Items: []order.Item{{SKU: "a", Quantity: 1, UnitPrice: 0}},
		}},
		{"customer only", order.Event{EventID: "e", OrderID: "o-1", Version: 1, To: order.Created, At: at, CustomerID: "c"}},
		{"transition with metadata", order.Event{
			EventID: "e", OrderID: "o-1", Version: 3, From: order.Paid, To: order.Shipped, At: at, Reason: "r",
			Metadata: map[string]string{"tracking_number": "00340434"},
		}},
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
	events := []order.Event{{ // a deadline change: every field of the lifecycle
		EventID: "01JEVERYFIELD", OrderID: "o-every", Version: 2, From: order.Created, To: order.Created, At: at,
		IdempotencyKey: "key-every", RequestDigest: "digest", Principal: "alice", RequestID: "req-every",
		Reason: "every field", PaymentDueAt: at.Add(time.Hour), Metadata: map[string]string{"k": "v"},
	}, { // a creation: what was ordered, which only a creation carries
		EventID: "01JEVERYFIELD1", OrderID: "o-every", Version: 1, To: order.Created, At: at,
		IdempotencyKey: "key-every", RequestDigest: "digest", Principal: "alice", RequestID: "req-every",
		Reason: "every field", PaymentDueAt: at.Add(time.Hour), CustomerID: "cus-1", Currency: "EUR",
		Items: []order.Item{{SKU: "s", Quantity: 3, UnitPrice: 5}}, Total: 15, Metadata: map[string]string{"k": "v"},
	}}
	typ := reflect.TypeOf(order.Event{})
	for i := range typ.NumField() {
		set := false
		for _, ev := range events {
			set = set || !reflect.ValueOf(ev).Field(i).IsZero()
		}
		assert.True(t, set, "order.Event.%s is zero in every test event: set it", typ.Field(i).Name)
	}
	for _, ev := range events {
		assert.Equal(t, ev, compactEvent(ev).event(ev.OrderID))
	}
}

func TestCompactEventIsSmall(t *testing.T) {
	ev := order.Event{EventID: "01JEVENT", OrderID: "o-1", Version: 1, To: order.Created, Principal: "alice", RequestID: "req-1"}
	allocs := testing.AllocsPerRun(100, func() { _ = compactEvent(ev) })
	assert.Equal(t, 1.0, allocs, "one allocation for all the text")
	p := compactEvent(ev)
	allocs = testing.AllocsPerRun(100, func() { _ = p.event("o-1") })
	assert.Equal(t, 0.0, allocs, "expanding shares the text")

	// What an order without contents costs did not change when contents
	// came: the entry's size, its text's, and its snapshot's.
	assert.Equal(t, uintptr(56), unsafe.Sizeof(pastEvent{}))
	assert.Equal(t, uintptr(56), unsafe.Sizeof(snapshot{}))
	assert.Len(t, p.text, 6+len("01JEVENT")+len("req-1")+len("alice"), "six lengths and the text")
	assert.False(t, p.contents)
	snap := newSnapshot(order.Order{ID: "o-1", State: order.Created, Version: 1}, []pastEvent{p})
	allocs = testing.AllocsPerRun(100, func() { _ = snap.current() })
	assert.Equal(t, 0.0, allocs, "an order without contents is read without allocating")
	assert.Nil(t, snap.current().Contents)
}

// A snapshot's contents are the ones Apply gives its order.
func TestSnapshotContentsAgreeWithTheOrder(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 5, time.UTC)
	events := []order.Event{
		{EventID: "e1", OrderID: "o", Version: 1, To: order.Created, At: at, CustomerID: "c", Currency: "EUR",
			Items: []order.Item{{SKU: "a", Quantity: 2, UnitPrice: 5}}, Total: 10, Metadata: map[string]string{"a": "1", "b": "1"}},
		{EventID: "e2", OrderID: "o", Version: 2, From: order.Created, To: order.Paid, At: at},
		{EventID: "e3", OrderID: "o", Version: 3, From: order.Paid, To: order.Shipped, At: at, Metadata: map[string]string{"b": "2"}},
	}
	var o order.Order
	var history []pastEvent
	for _, ev := range events {
		var err error
		o, err = order.Apply(o, ev)
		if err != nil {
			t.Fatal(err)
		}
		history = append(history, compactEvent(ev))
		assert.Equal(t, o, newSnapshot(o, history).current())
	}
	assert.Equal(t, map[string]string{"a": "1", "b": "2"}, o.Contents.Metadata)
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
