package persistence

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// testTimeout bounds every blocking call in a test, so that a bug fails the
// test with a message instead of hanging until go test's own timeout. It is
// a bound against hangs, not a speed target: with two runs of the suite on
// two cores, the conformance suite's 1,280 appends from 64 goroutines (lz4, -race) took
// more than 30 s.
const testTimeout = 2 * time.Minute

// testSlack is how much longer than its own deadline an operation that must
// end at that deadline may take in a test: far below testTimeout, so that a
// hang still fails, and far above scheduling delays on a busy machine.
const testSlack = testTimeout / 4

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond; tests wait for conditions, never for time to pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, testTimeout, time.Millisecond, "waiting for %s", what)
}

var testEpoch = time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC)

// testDigest is a well-formed request digest. The journal treats digests as
// opaque text; only its shape matters here.
const testDigest = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// lifecyclePath is the longest path through the table: every event of an
// order that is created, paid, shipped, delivered and returned.
var lifecyclePath = []order.State{order.Created, order.Paid, order.Shipped, order.Delivered, order.Returned}

// lifecycleEvent returns the event of version v (1-based) of an order that
// follows lifecyclePath, with text fields that exercise the codec's escaping.
func lifecycleEvent(orderID string, v int) order.Event {
	ev := order.Event{
		EventID:        fmt.Sprintf("%s-ev%d", orderID, v),
		OrderID:        orderID,
		Version:        uint64(v),
		To:             lifecyclePath[v-1],
		At:             testEpoch.Add(time.Duration(v) * time.Millisecond),
		IdempotencyKey: fmt.Sprintf("key \"%d\" \\ é", v),
		RequestDigest:  testDigest,
		Principal:      "alice",
		RequestID:      fmt.Sprintf("req-%s-%d", orderID, v),
		Reason:         "line one\nline two\t✓ \u2028 ☃",
	}
	if v > 1 {
		ev.From = lifecyclePath[v-2]
	}
	return ev
}

func lifecycle(orderID string, n int) []order.Event {
	events := make([]order.Event, n)
	for v := 1; v <= n; v++ {
		events[v-1] = lifecycleEvent(orderID, v)
	}
	return events
}
