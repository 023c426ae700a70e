package actors

import (
	"encoding/binary"
	"strings"
	"time"

	"github.com/orderd/orderd/order"
)

// pastEvent is one entry of an order's history as memory keeps it. Every
// order holds its whole history for as long as the server runs, so at a
// million orders the history is most of the heap, and the heap (with the
// garbage collector's work on it at recovery) is what bounds a large server:
// an order.Event is 184 bytes plus one allocation per text field, a pastEvent
// 56 bytes plus one. The order ID is left out (the entry has it), times are
// kept as seconds and nanoseconds in UTC, and the text fields are packed into
// one string.
type pastEvent struct {
	atSec, dueSec   int64 // Unix seconds of At and PaymentDueAt
	version         uint64
	atNsec, dueNsec uint32
	from, to        order.State
	// text holds the text fields (see compactEvent), each as a uvarint
	// length and its bytes.
	text string
}

// compactEvent packs ev; the text fields go in the order event reads them.
func compactEvent(ev order.Event) pastEvent {
	fields := [...]string{ev.EventID, ev.RequestID, ev.Principal, ev.IdempotencyKey, ev.RequestDigest, ev.Reason}
	size := 0
	for _, f := range fields {
		size += len(f) + uvarintLen(len(f))
	}
	var text strings.Builder // its String does not copy: one allocation
	text.Grow(size)
	var length [binary.MaxVarintLen64]byte
	for _, f := range fields {
		text.Write(binary.AppendUvarint(length[:0], uint64(len(f))))
		text.WriteString(f)
	}
	return pastEvent{
		atSec: ev.At.Unix(), atNsec: uint32(ev.At.Nanosecond()),
		dueSec: ev.PaymentDueAt.Unix(), dueNsec: uint32(ev.PaymentDueAt.Nanosecond()),
		version: ev.Version, from: ev.From, to: ev.To,
		text: text.String(),
	}
}

// event expands p back into the event it was made from (orderID is the
// order's). Its strings share p's text: expanding allocates nothing.
func (p pastEvent) event(orderID string) order.Event {
	r := textReader{p.text}
	return order.Event{
		OrderID: orderID, Version: p.version, From: p.from, To: p.to,
		At: unixUTC(p.atSec, p.atNsec), PaymentDueAt: unixUTC(p.dueSec, p.dueNsec),
		EventID: r.next(), RequestID: r.next(), Principal: r.next(),
		IdempotencyKey: r.next(), RequestDigest: r.next(), Reason: r.next(),
	}
}

// textReader reads the fields of a pastEvent's text one after another
// (struct literal fields are evaluated in order).
type textReader struct{ rest string }

func (r *textReader) next() string {
	n, w := uvarintString(r.rest)
	if w == 0 || len(r.rest)-w < n {
		panic("actors: corrupt history entry") // compactEvent wrote it: a bug
	}
	f := r.rest[w : w+n]
	r.rest = r.rest[w+n:]
	return f
}

// unixUTC is the inverse of (t.Unix(), t.Nanosecond()) for a UTC t; the zero
// time comes back as the zero time.
func unixUTC(sec int64, nsec uint32) time.Time {
	return time.Unix(sec, int64(nsec)).UTC()
}

// uvarintString reads a uvarint that binary.AppendUvarint wrote for a length
// from the start of s: its value and width, or a width of 0 if s does not
// start with one.
func uvarintString(s string) (n, width int) {
	shift := 0
	for i := 0; i < len(s) && shift < 63; i++ {
		b := s[i]
		n |= int(b&0x7f) << shift
		if b < 0x80 {
			return n, i + 1
		}
		shift += 7
	}
	return 0, 0
}

func uvarintLen(n int) int {
	w := 1
	for ; n >= 0x80; n >>= 7 {
		w++
	}
	return w
}

// expandHistory returns the order's history as events.
func expandHistory(orderID string, past []pastEvent) []order.Event {
	events := make([]order.Event, len(past))
	for i, p := range past {
		events[i] = p.event(orderID)
	}
	return events
}
