package order

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func keyed(cmd Command, key string) Command {
	cmd.IdempotencyKey = key
	return cmd
}

func payCmd() Command {
	return Command{Kind: CommandTransition, OrderID: "o-1", To: Paid, Reason: "card", Principal: "alice",
		IdempotencyKey: "k-1", EventID: "e-1", RequestID: "r-1"}
}

func TestRequestDigestCoversTheRequest(t *testing.T) {
	base := payCmd()
	want := RequestDigest(base)
	assert.Regexp(t, regexp.MustCompile(`^[0-9a-f]{64}$`), want)
	assert.Len(t, want, RequestDigestLen)

	// Pinned: digests are kept in the log, and a retry after an upgrade
	// must still match the digest its first attempt recorded. The value was
	// computed apart from this code (Python's hashlib over the documented
	// form: uvarint length + bytes of "orderd/request/v1", "transition",
	// "o-1", "Paid", "card", "alice").
	assert.Equal(t, "8b00ce73e1b78238a34f75979c6948d0939e79f8769215454cb7f494cff130d9", want)

	for name, mutate := range map[string]func(*Command){
		"kind":      func(c *Command) { c.Kind = CommandCreate },
		"order":     func(c *Command) { c.OrderID = "o-2" },
		"target":    func(c *Command) { c.To = Cancelled },
		"reason":    func(c *Command) { c.Reason = "cash" },
		"principal": func(c *Command) { c.Principal = "bob" },
		// Length prefixes: moving a byte from one part to the next is
		// another request.
		"boundary": func(c *Command) { c.Reason, c.Principal = "car", "dalice" },
		"customer": func(c *Command) { c.CustomerID = "c-1" },
		"currency": func(c *Command) { c.Currency = "EUR" },
		"items":    func(c *Command) { c.Items = []Item{{SKU: "s", Quantity: 1, UnitPrice: 5}} },
		"metadata": func(c *Command) { c.Metadata = map[string]string{"k": "v"} },
	} {
		c := base
		mutate(&c)
		assert.NotEqual(t, want, RequestDigest(c), "a different %s is a different request", name)
	}
	for name, mutate := range map[string]func(*Command){
		"If-Match":   func(c *Command) { c.ExpectedVersion = 7 },
		"event ID":   func(c *Command) { c.EventID = "e-2" },
		"request ID": func(c *Command) { c.RequestID = "r-2" },
		"key":        func(c *Command) { c.IdempotencyKey = "k-2" },
	} {
		c := base
		mutate(&c)
		assert.Equal(t, want, RequestDigest(c), "%s is not part of the request", name)
	}
}

func TestRequestDigestOfGeneratedIDs(t *testing.T) {
	first := Command{Kind: CommandCreate, OrderID: "01GENERATED1", IDGenerated: true, Principal: "alice"}
	retry := first
	retry.OrderID = "01GENERATED2"
	assert.Equal(t, RequestDigest(first), RequestDigest(retry), "each retry gets another generated ID")
	named := first
	named.IDGenerated = false
	assert.NotEqual(t, RequestDigest(first), RequestDigest(named), "naming the ID is another request")
}

func TestDecideRecordsTheDigestWithTheKey(t *testing.T) {
	ev, err := Decide(orderIn(Created), payCmd(), t0)
	require.NoError(t, err)
	assert.Equal(t, RequestDigest(payCmd()), ev.RequestDigest)
	assert.Equal(t, "k-1", ev.IdempotencyKey)

	ev, err = Decide(orderIn(Created), keyed(payCmd(), ""), t0)
	require.NoError(t, err)
	assert.Empty(t, ev.RequestDigest, "no key, nothing to compare a retry with")
}

var testLimits = KeyLimits{PerOrder: 3, Age: time.Hour}

// remembered builds a window holding the events of an order paid with key
// k-1 by alice.
func remembered(t *testing.T) (KeyWindow, Order) {
	t.Helper()
	var w KeyWindow
	create, err := Decide(Order{}, Command{Kind: CommandCreate, OrderID: "o-1", EventID: "e-0", Principal: "alice"}, t0)
	require.NoError(t, err)
	created, err := Apply(Order{}, create)
	require.NoError(t, err)
	w.Remember(create, created, testLimits, t0)
	pay, err := Decide(created, payCmd(), t0.Add(time.Second))
	require.NoError(t, err)
	paid, err := Apply(created, pay)
	require.NoError(t, err)
	w.Remember(pay, paid, testLimits, t0.Add(time.Second))
	require.Equal(t, 1, w.Len(), "only keyed events are remembered")
	return w, paid
}

func TestKeyWindowLookup(t *testing.T) {
	w, paid := remembered(t)
	now := t0.Add(time.Minute)
	tests := []struct {
		name    string
		cmd     Command
		now     time.Time
		replay  bool
		wantErr error
	}{
		{"same request", payCmd(), now, true, nil},
		{"same request, other If-Match", func() Command { c := payCmd(); c.ExpectedVersion = 2; return c }(), now, true, nil},
		{"same key, other target", func() Command { c := payCmd(); c.To = Cancelled; return c }(), now, false, ErrIdempotencyKeyReused},
		{"same key, other reason", func() Command { c := payCmd(); c.Reason = "cash"; return c }(), now, false, ErrIdempotencyKeyReused},
		{"same key, a create", func() Command { c := payCmd(); c.Kind = CommandCreate; return c }(), now, false, ErrIdempotencyKeyReused},
		{"same key, other principal", func() Command { c := payCmd(); c.Principal = "bob"; return c }(), now, false, nil},
		{"other key", keyed(payCmd(), "k-2"), now, false, nil},
		{"no key", keyed(payCmd(), ""), now, false, nil},
		{"at the window's edge", payCmd(), t0.Add(time.Second + time.Hour), true, nil},
		{"past the window", payCmd(), t0.Add(time.Second + time.Hour + 1), false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, replay, err := w.Lookup(tt.cmd, testLimits, tt.now)
			assert.ErrorIs(t, err, tt.wantErr)
			assert.Equal(t, tt.replay, replay)
			if tt.replay {
				assert.Equal(t, paid, o, "the order as the first attempt left it")
			}
		})
	}
}

func TestKeyWindowIsBounded(t *testing.T) {
	var w KeyWindow
	o := orderIn(Created)
	for i := range 5 {
		ev := Event{OrderID: "o-1", Version: uint64(i + 1), IdempotencyKey: fmt.Sprintf("k-%d", i),
			Principal: "alice", At: t0.Add(time.Duration(i) * time.Second)}
		ev.RequestDigest = RequestDigest(Command{Kind: CommandTransition, OrderID: "o-1", To: Paid, Principal: "alice"})
		w.Remember(ev, o, testLimits, ev.At)
	}
	assert.Equal(t, testLimits.PerOrder, w.Len())
	lookup := func(key string, now time.Time) bool {
		_, replay, err := w.Lookup(Command{Kind: CommandTransition, OrderID: "o-1", To: Paid, Principal: "alice", IdempotencyKey: key}, testLimits, now)
		require.NoError(t, err)
		return replay
	}
	now := t0.Add(10 * time.Second)
	assert.False(t, lookup("k-0", now), "beyond the count: forgotten")
	assert.False(t, lookup("k-1", now))
	assert.True(t, lookup("k-2", now))
	assert.True(t, lookup("k-4", now))

	// Remembering drops what has aged out, however few keys there are.
	late := Event{OrderID: "o-1", Version: 6, IdempotencyKey: "k-late", Principal: "alice", At: t0.Add(2 * time.Hour)}
	w.Remember(late, o, testLimits, late.At)
	assert.Equal(t, 1, w.Len())

	// An event already older than the window is not remembered at all
	// (recovery replays events of any age).
	var fresh KeyWindow
	fresh.Remember(Event{IdempotencyKey: "old", At: t0}, o, testLimits, t0.Add(2*time.Hour))
	assert.Zero(t, fresh.Len())
}

// TestKeyWindowLegacyRecords: records written before digests were recorded
// carry a key and no digest; a retry matches them by key alone rather than
// being refused.
func TestKeyWindowLegacyRecords(t *testing.T) {
	var w KeyWindow
	paid := orderIn(Paid)
	w.Remember(Event{OrderID: "o-1", Version: 3, IdempotencyKey: "k-1", Principal: "alice", At: t0}, paid, testLimits, t0)
	o, replay, err := w.Lookup(payCmd(), testLimits, t0)
	require.NoError(t, err)
	assert.True(t, replay)
	assert.Equal(t, paid, o)
}
