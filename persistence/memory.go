package persistence

import (
	"context"
	"fmt"
	"sync"

	"github.com/orderd/orderd/order"
)

// Fault is what MemoryJournal does with one append instead of writing it
// normally: the failures a Kafka journal can return, on demand.
type Fault uint8

const (
	// FaultNone writes the event and returns nil.
	FaultNone Fault = iota
	// FaultUnavailable writes nothing and returns ErrJournalUnavailable,
	// like a broker that refused the request.
	FaultUnavailable
	// FaultUnknownWritten writes the event and returns ErrOutcomeUnknown,
	// like an acknowledgement lost on the way back.
	FaultUnknownWritten
	// FaultUnknownNotWritten writes nothing and returns ErrOutcomeUnknown,
	// like a request lost on the way to the broker.
	FaultUnknownNotWritten
)

func (f Fault) String() string {
	switch f {
	case FaultNone:
		return "none"
	case FaultUnavailable:
		return "unavailable"
	case FaultUnknownWritten:
		return "unknown-written"
	case FaultUnknownNotWritten:
		return "unknown-not-written"
	default:
		return fmt.Sprintf("Fault(%d)", uint8(f))
	}
}

// MemoryJournal is an order.Journal in memory, for tests. It keeps the
// records encoded exactly as the Kafka journal writes them and decodes them
// on every read, so it returns what the Kafka journal would, field for field,
// and rejects the events the Kafka journal would reject. Faults make chosen
// appends fail: FailNext queues faults for the next appends, and a hook set
// with SetFaultHook chooses one per event after the queue is empty.
//
// It holds one log in append order, which keeps every order's events in
// order. It passes the same conformance suite as KafkaJournal.
type MemoryJournal struct {
	mu      sync.Mutex
	records []Record
	faults  []Fault
	hook    func(order.Event) Fault
	closed  bool
}

var (
	_ order.Journal          = (*MemoryJournal)(nil)
	_ order.InventoryJournal = (*MemoryJournal)(nil)
)

// NewMemoryJournal returns an empty journal.
func NewMemoryJournal() *MemoryJournal { return &MemoryJournal{} }

// FailNext makes the next n appends fail with f, after any faults queued
// before.
func (m *MemoryJournal) FailNext(n int, f Fault) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for range n {
		m.faults = append(m.faults, f)
	}
}

// SetFaultHook sets a function that chooses the fault of every append that
// no FailNext fault is queued for; nil removes it. It is called with the
// journal locked: it must not call the journal.
func (m *MemoryJournal) SetFaultHook(hook func(order.Event) Fault) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hook = hook
}

// InjectRecord appends a raw record, decodable or not, as another writer to
// the topic could: for tests of how readers count and skip bad records.
func (m *MemoryJournal) InjectRecord(key, value []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records = append(m.records, Record{Key: append([]byte(nil), key...), Value: append([]byte(nil), value...)})
}

// Len returns the number of records in the log, undecodable ones included.
func (m *MemoryJournal) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.records)
}

// Append implements order.Journal.
func (m *MemoryJournal) Append(ctx context.Context, ev order.Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w (the event was not written)", order.ErrJournalUnavailable, err)
	}
	rec, err := EncodeEvent(ev)
	if err != nil {
		return fmt.Errorf("%w: %w", order.ErrJournalUnavailable, err)
	}
	return m.append(rec, func() Fault {
		if m.hook != nil {
			return m.hook(ev)
		}
		return FaultNone
	})
}

// AppendInventory implements order.InventoryJournal, with the faults of
// Append: FailNext's queue applies to inventory appends too (the hook set
// with SetFaultHook sees order events only).
func (m *MemoryJournal) AppendInventory(ctx context.Context, ev order.InventoryEvent) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w (the event was not written)", order.ErrJournalUnavailable, err)
	}
	rec, err := EncodeInventory(ev)
	if err != nil {
		return fmt.Errorf("%w: %w", order.ErrJournalUnavailable, err)
	}
	return m.append(rec, func() Fault { return FaultNone })
}

// append writes rec, or fails it with the next queued fault, or else with
// hook's.
func (m *MemoryJournal) append(rec Record, hook func() Fault) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	fault := FaultNone
	if len(m.faults) > 0 {
		fault, m.faults = m.faults[0], m.faults[1:]
	} else {
		fault = hook()
	}
	switch fault {
	case FaultNone:
		m.records = append(m.records, rec)
		return nil
	case FaultUnavailable:
		return fmt.Errorf("%w: injected fault", order.ErrJournalUnavailable)
	case FaultUnknownWritten:
		m.records = append(m.records, rec)
		return fmt.Errorf("%w: injected fault (the event was written)", order.ErrOutcomeUnknown)
	default:
		return fmt.Errorf("%w: injected fault (the event was not written)", order.ErrOutcomeUnknown)
	}
}

// snapshot returns the records written so far. Records are never changed
// once appended, so the caller may read them without the lock.
func (m *MemoryJournal) snapshot() ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	return m.records[:len(m.records):len(m.records)], nil
}

// Replay implements order.Journal. fn runs on the caller's goroutine without
// the journal locked, so it may append (what it appends is not replayed).
func (m *MemoryJournal) Replay(ctx context.Context, fn func(order.Event) error) (order.ReplayStats, error) {
	var stats order.ReplayStats
	records, err := m.snapshot()
	if err != nil {
		return stats, err
	}
	for _, rec := range records {
		if err := ctx.Err(); err != nil {
			return stats, err
		}
		stats.Records++
		if IsInventoryKey(rec.Key) {
			stats.Inventory++
			continue
		}
		if IsCheckoutKey(rec.Key) {
			stats.Checkout++
			continue
		}
		ev, err := DecodeEvent(rec.Key, rec.Value)
		if err != nil {
			stats.Undecodable++
			continue
		}
		if err := fn(ev); err != nil {
			return stats, err
		}
	}
	return stats, nil
}

// Load implements order.Journal. An append has either happened or not by the
// time it returns, so there is nothing to settle.
func (m *MemoryJournal) Load(ctx context.Context, orderID string) ([]order.Event, error) {
	if err := order.ValidateID(orderID); err != nil {
		return nil, err
	}
	records, err := m.snapshot()
	if err != nil {
		return nil, err
	}
	var events []order.Event
	for _, rec := range records {
		if string(rec.Key) != orderID {
			continue
		}
		if ev, err := DecodeEvent(rec.Key, rec.Value); err == nil {
			events = append(events, ev)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return events, nil
}

// Close implements order.Journal. Appends after it fail with
// ErrJournalUnavailable; so do reads.
func (m *MemoryJournal) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// LoadInventory implements order.InventoryJournal: the SKU's records, all of
// them, folded by the one rule.
func (m *MemoryJournal) LoadInventory(ctx context.Context, sku string) (order.InventoryLoad, error) {
	if err := order.ValidateSKU(sku); err != nil {
		return order.InventoryLoad{}, err
	}
	records, err := m.snapshot()
	if err != nil {
		return order.InventoryLoad{}, err
	}
	fold := newInventoryFold(nil)
	key := order.InventoryKey(sku)
	for _, rec := range records {
		if string(rec.Key) != key {
			continue
		}
		if ev, err := DecodeInventory(rec.Key, rec.Value); err == nil {
			_ = fold.apply(ev) // no view, so no error
		}
	}
	if err := ctx.Err(); err != nil {
		return order.InventoryLoad{}, err
	}
	return fold.load, nil
}
