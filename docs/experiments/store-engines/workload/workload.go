// Package workload makes the state store's access pattern of issue 18:
// per order a ~30-byte summary, one key per event holding the log record's
// JSON value (250–450 bytes), a deadline index and a checkpoint, fed in
// batches of 1,000 records. Everything is a pure function of the record's
// index, so a reader can check what a store holds without the log.
package workload

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// EventsPerOrder is the number of events every order gets.
const EventsPerOrder = 4

// Chunk is the number of orders whose events are interleaved: record i is
// event k of order o, where the 4,000 records of a chunk hold event 0 of its
// 1,000 orders, then event 1, and so on. A 1,000-record batch therefore
// touches 1,000 different orders, and an order's events are 1,000 records
// apart, as when orders are created and paid a little later.
const Chunk = 1000

// Tables (pebble: key prefixes; bbolt: buckets).
const (
	TSummary    = 's'
	TEvent      = 'e'
	TDeadline   = 'd'
	TCheckpoint = 'c'
)

// Record returns the order number and event number (0-based) of record i.
func Record(i uint64) (order uint64, k int) {
	c := i / (Chunk * EventsPerOrder)
	r := i % (Chunk * EventsPerOrder)
	return c*Chunk + r%Chunk, int(r / Chunk)
}

// RecordIndex is Record's inverse.
func RecordIndex(order uint64, k int) uint64 {
	c := order / Chunk
	return c*Chunk*EventsPerOrder + uint64(k)*Chunk + order%Chunk
}

const (
	mix    = 0x9E3779B97F4A7C15 // odd, so invertible mod 2^64
	mixInv = 0xF1DE83E19937733D
)

// OrderID is the order's 16-hex-digit ID: random-looking, so the keys of
// consecutive orders are scattered over the key space like UUIDs.
func OrderID(order uint64) []byte {
	var b [16]byte
	v := order * mix
	const hex = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		b[i] = hex[v&15]
		v >>= 4
	}
	return b[:]
}

// OrderNumber is OrderID's inverse.
func OrderNumber(id []byte) (uint64, error) {
	v, err := strconv.ParseUint(string(id), 16, 64)
	if err != nil {
		return 0, err
	}
	return v * mixInv, nil
}

var states = [...]string{"OrderCreated", "OrderPaid", "OrderShipped", "OrderDelivered"}

// Deadline is the payment deadline of an order (unix seconds).
func Deadline(order uint64) uint64 { return 1_796_000_000 + order%86_400 }

// Summary is the order's summary after event k: version, state, payment due
// and a few bytes of padding (30 bytes).
func Summary(order uint64, k int) []byte {
	b := make([]byte, 30)
	binary.BigEndian.PutUint64(b[0:], uint64(k+1))
	b[8] = byte(k)
	if k == 0 {
		binary.BigEndian.PutUint64(b[9:], Deadline(order))
	}
	binary.BigEndian.PutUint64(b[17:], order)
	return b
}

// Event is the JSON value of event k of the order: 250–450 bytes.
func Event(order uint64, k int) []byte {
	id := OrderID(order)
	h := order*31 + uint64(k)*7
	b := make([]byte, 0, 480)
	b = fmt.Appendf(b, `{"type":%q,"order_id":"%s","version":%d,"at":"2026-12-05T12:%02d:%02d.%06dZ","principal":"tenant-%d","idempotency_key":"%016x"`,
		states[k], id, k+1, h%60, (h/60)%60, h%1_000_000, order%97, h*mix)
	switch k {
	case 0:
		b = fmt.Appendf(b, `,"payment_due":"2026-12-06T12:00:00Z","items":[`)
		n := 1 + int(h%3)
		for j := 0; j < n; j++ {
			if j > 0 {
				b = append(b, ',')
			}
			b = fmt.Appendf(b, `{"sku":"SKU-%06d","qty":%d,"price_cents":%d}`, (h+uint64(j))%1_000_000, 1+j, 100+h%9900)
		}
		b = append(b, ']')
	case 1:
		b = fmt.Appendf(b, `,"payment":{"provider":"card","reference":"pay_%016x","amount_cents":%d}`, h*mixInv, 100+h%99900)
	case 2:
		b = fmt.Appendf(b, `,"shipment":{"carrier":"dhl","tracking":"TRK%012d"}`, h%1_000_000_000_000)
	}
	// metadata pads to a size between 250 and 450 bytes
	target := 250 + int(h%201)
	b = append(b, `,"metadata":{"note":"`...)
	for len(b) < target-3 {
		b = append(b, "abcdefghijklmnopqrstuvwxyz"[(len(b)+int(h))%26])
	}
	b = append(b, `"}}`...)
	return b
}

// EventKey is the event's key within the event table: the order ID, '/',
// and the version big-endian, so that an order's events are one prefix.
func EventKey(order uint64, k int) []byte {
	b := append(OrderID(order), '/')
	return binary.BigEndian.AppendUint64(b, uint64(k+1))
}

// EventPrefix is the prefix of all the order's event keys.
func EventPrefix(order uint64) []byte { return append(OrderID(order), '/') }

// DeadlineKey is the deadline index's key: due time, then the order ID.
func DeadlineKey(order uint64) []byte {
	b := binary.BigEndian.AppendUint64(nil, Deadline(order))
	return append(b, OrderID(order)...)
}

// CheckpointKey is the key of partition p's checkpoint.
func CheckpointKey(p int) []byte { return []byte{byte(p >> 8), byte(p)} }

// Writer is an engine's view of one atomic batch.
type Writer interface {
	// Get reads a committed value (nil if absent); the value is only valid
	// until the next call.
	Get(table byte, key []byte) ([]byte, error)
	Put(table byte, key, value []byte) error
	Delete(table byte, key []byte) error
}

// Engine is what the experiment asks of a store.
type Engine interface {
	// Update runs fn and commits everything it wrote atomically.
	Update(fn func(w Writer) error) error
	// Get reads a committed value, copied.
	Get(table byte, key []byte) ([]byte, error)
	// Scan calls fn for every key with the prefix, in order; k and v are
	// only valid during the call.
	Scan(table byte, prefix []byte, fn func(k, v []byte) error) error
	Close() error
}

// ApplyBatch writes records [from, to) and the checkpoint to in one batch,
// reading each order's summary first as the apply rule would.
func ApplyBatch(w Writer, from, to uint64) error {
	for i := from; i < to; i++ {
		o, k := Record(i)
		id := OrderID(o)
		cur, err := w.Get(TSummary, id)
		if err != nil {
			return err
		}
		var have uint64
		if len(cur) >= 8 {
			have = binary.BigEndian.Uint64(cur)
		}
		if have != uint64(k) {
			return fmt.Errorf("record %d: order %s at version %d, event %d", i, id, have, k+1)
		}
		if err := w.Put(TEvent, EventKey(o, k), Event(o, k)); err != nil {
			return err
		}
		if err := w.Put(TSummary, id, Summary(o, k)); err != nil {
			return err
		}
		switch k {
		case 0:
			err = w.Put(TDeadline, DeadlineKey(o), []byte{})
		case 1:
			err = w.Delete(TDeadline, DeadlineKey(o))
		}
		if err != nil {
			return err
		}
	}
	return w.Put(TCheckpoint, CheckpointKey(0), binary.BigEndian.AppendUint64(nil, to))
}

// Checkpoint reads partition 0's checkpoint (0 when there is none).
func Checkpoint(e Engine) (uint64, error) {
	v, err := e.Get(TCheckpoint, CheckpointKey(0))
	if err != nil || v == nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(v), nil
}
