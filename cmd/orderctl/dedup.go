package main

import (
	"github.com/orderd/orderd/order"
)

// verdict is what a consumer does with one record of the audit log.
type verdict uint8

const (
	_ verdict = iota
	// apply: the record continues the order (or is the first one seen of
	// it): act on it.
	apply
	// duplicate: the record at this version was already applied, with the
	// same event_id: a redelivery (the consumer restarted before it
	// committed its offset) or a producer retry that wrote it twice.
	duplicate
	// stale: a record at or below the version already applied, with another
	// event_id: a fork that lost (two writers briefly believed they owned
	// the order) or an older redelivery. orderd skipped it too.
	stale
	// fork: the next version, but not a step from the state applied (a
	// different `from`, or a step the lifecycle does not allow). orderd
	// skipped it.
	fork
	// gap: beyond the next version. Records of one order are contiguous in
	// their partition, so this is a descendant of a skipped fork; orderd
	// skipped it too.
	gap
)

func (v verdict) String() string {
	switch v {
	case apply:
		return "apply"
	case duplicate:
		return "duplicate"
	case stale:
		return "stale"
	case fork:
		return "fork"
	case gap:
		return "gap"
	}
	return "unknown"
}

// applied is what a consumer remembers of an order: the last record it
// applied.
type applied struct {
	version uint64
	state   order.State
	eventID string
}

// orderTracker applies orderd's own rule (DESIGN §4, order.Apply) to the
// records a consumer reads, so that the consumer acts on exactly the
// transitions orderd applied, once each, whatever Kafka redelivers:
//
//   - apply a record only if its version is the last applied version + 1 and
//     its step (from -> to) continues the state applied;
//   - skip anything at or below the last applied version: with the same
//     event_id it is a duplicate, with another a fork that lost.
//
// event_id identifies a record across redeliveries and producer retries.
// Where a consumer's side effect is not naturally idempotent (an e-mail, a row
// in another database), store event_id with it under a unique constraint, or
// store the last applied version per order in the same transaction as the
// side effect: that is the durable form of this tracker.
//
// This tracker lives in memory and starts empty, so the first record it sees
// of an order (after a restart, or when reading from a committed offset) is
// taken as given. It remembers every order it has seen: fine for a
// command-line tool, not for a service reading forever, which should keep
// this state in its own store.
type orderTracker struct {
	orders map[string]applied
}

func newOrderTracker() *orderTracker {
	return &orderTracker{orders: make(map[string]applied)}
}

// observe returns what to do with ev and, if the verdict is apply, remembers
// it as the order's last applied record.
func (t *orderTracker) observe(ev order.Event) verdict {
	last, known := t.orders[ev.OrderID]
	v := apply
	switch {
	case !known:
		// First record of this order we see: nothing to compare with.
	case ev.Version == last.version && ev.EventID == last.eventID:
		v = duplicate
	case ev.Version <= last.version:
		v = stale
	case ev.Version > last.version+1:
		v = gap
	case ev.From != last.state || !order.Follows(last.state, ev):
		v = fork
	}
	if v == apply {
		t.orders[ev.OrderID] = applied{version: ev.Version, state: ev.To, eventID: ev.EventID}
	}
	return v
}
