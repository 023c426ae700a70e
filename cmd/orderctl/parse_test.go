package main

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/orderd/orderd/order"
)

func TestOrderTracker(t *testing.T) {
	ev := func(id string, version uint64, from, to order.State, eventID string) order.Event {
		return order.Event{OrderID: id, Version: version, From: from, To: to, EventID: eventID, At: time.Unix(0, 0)}
	}
	steps := []struct {
		ev   order.Event
		want verdict
	}{
		{ev("a", 1, 0, order.Created, "a1"), apply},
		{ev("a", 1, 0, order.Created, "a1"), duplicate},
		{ev("a", 2, order.Created, order.Paid, "a2"), apply},
		{ev("a", 2, order.Created, order.Paid, "a2"), duplicate},
		{ev("a", 1, 0, order.Created, "a1"), stale},
		{ev("a", 2, order.Created, order.Cancelled, "a2x"), stale},
		{ev("a", 3, order.Created, order.Cancelled, "a3x"), fork},  // from is not Paid
		{ev("a", 3, order.Paid, order.Returned, "a3y"), fork},      // not in the table
		{ev("a", 4, order.Shipped, order.Delivered, "a4x"), gap},   // version 3 missing
		{ev("b", 4, order.Shipped, order.Delivered, "b4"), apply},  // first seen: taken as given
		{ev("a", 3, order.Paid, order.Shipped, "a3"), apply},       // the skipped ones left no trace
		{ev("b", 5, order.Delivered, order.Returned, "b5"), apply}, //
		{ev("b", 6, order.Returned, order.Cancelled, "b6x"), fork}, // Returned is terminal
		{ev("a", 4, order.Shipped, order.Delivered, "a4"), apply},  //
		{ev("a", 3, order.Paid, order.Shipped, "a3"), stale},       // an older redelivery
		{ev("a", 5, order.Delivered, order.Returned, "a5"), apply}, //
		{ev("a", 5, order.Delivered, order.Returned, "a5"), duplicate},
	}
	tr := newOrderTracker()
	for i, s := range steps {
		assert.Equal(t, s.want, tr.observe(s.ev), "step %d: %s v%d %s", i, s.ev.OrderID, s.ev.Version, s.ev.EventID)
	}
	assert.Equal(t, applied{version: 5, state: order.Returned, eventID: "a5"}, tr.orders["a"])
	assert.Equal(t, applied{version: 5, state: order.Returned, eventID: "b5"}, tr.orders["b"])
}

func TestParseIfMatch(t *testing.T) {
	for in, want := range map[string]string{"1": `"1"`, `"42"`: `"42"`, "*": "*", "007": `"7"`} {
		got, err := parseIfMatch(in)
		assert.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "0", "-1", "v1", "1.5", `W/"1"`, "**", "18446744073709551616"} {
		_, err := parseIfMatch(in)
		assert.Error(t, err, in)
	}
}

func TestParseStateFold(t *testing.T) {
	for in, want := range map[string]order.State{"Paid": order.Paid, "paid": order.Paid, "SHIPPED": order.Shipped, "cancelled": order.Cancelled} {
		got, ok := parseStateFold(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "Lost", "Canceled", " Paid"} {
		_, ok := parseStateFold(in)
		assert.False(t, ok, in)
	}
}

// TestParseCommand: flags and positional arguments may be interleaved, global
// flags are accepted after the command, and `--` ends the flags (for an ID
// that starts with a dash).
func TestParseCommand(t *testing.T) {
	a := &app{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }, g: globals{url: urlDefault, timeout: timeoutDefault}}
	fs := a.flagSet("transition")
	reason := fs.String("reason", "", "")
	pos, code, done := a.parseCommand(fs, "transition ID STATE", []string{"o-1", "--reason", "r", "Paid", "--json", "--timeout", "3s"}, 2)
	assert.False(t, done, code)
	assert.Equal(t, []string{"o-1", "Paid"}, pos)
	assert.Equal(t, "r", *reason)
	assert.True(t, a.g.json)
	assert.Equal(t, 3*time.Second, a.g.timeout)

	fs = a.flagSet("get")
	pos, _, done = a.parseCommand(fs, "get ID", []string{"--", "-odd"}, 1)
	assert.False(t, done)
	assert.Equal(t, []string{"-odd"}, pos)
}
