package actors

import (
	"encoding/binary"
	"maps"
	"slices"
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
	// contents: text also holds what the event orders and its metadata
	// (packContents). It sits in what would be padding: an event without
	// them costs what it did before they existed.
	contents bool
	// text holds the text fields (see compactEvent), each as a uvarint
	// length and its bytes.
	text string
}

// compactEvent packs ev; the text fields go in the order event reads them.
func compactEvent(ev order.Event) pastEvent {
	fields := [...]string{ev.EventID, ev.RequestID, ev.Principal, ev.IdempotencyKey, ev.RequestDigest, ev.Reason}
	contents := hasContents(ev)
	size := 0
	for _, f := range fields {
		size += len(f) + uvarintLen(len(f))
	}
	if contents {
		size += contentsSize(ev)
	}
	var text strings.Builder // its String does not copy: one allocation
	text.Grow(size)
	var length [binary.MaxVarintLen64]byte
	for _, f := range fields {
		text.Write(binary.AppendUvarint(length[:0], uint64(len(f))))
		text.WriteString(f)
	}
	if contents {
		packContents(&text, ev)
	}
	return pastEvent{
		atSec: ev.At.Unix(), atNsec: uint32(ev.At.Nanosecond()),
		dueSec: ev.PaymentDueAt.Unix(), dueNsec: uint32(ev.PaymentDueAt.Nanosecond()),
		version: ev.Version, from: ev.From, to: ev.To, contents: contents,
		text: text.String(),
	}
}

func hasContents(ev order.Event) bool {
	return ev.CustomerID != "" || ev.Currency != "" || ev.Items != nil || ev.Total != 0 || ev.Metadata != nil
}

// contentsSize is what packContents writes, near enough (numbers are
// counted at their widest).
func contentsSize(ev order.Event) int {
	n := len(ev.CustomerID) + len(ev.Currency) + 4*binary.MaxVarintLen64
	for _, it := range ev.Items {
		n += len(it.SKU) + 3*binary.MaxVarintLen64
	}
	for k, v := range ev.Metadata {
		n += len(k) + len(v) + 2*binary.MaxVarintLen64
	}
	return n
}

// packContents appends what ev orders and its metadata after the text
// fields: customer and currency as text fields, then the item count (+1,
// so that nil items stay nil) and each item, the total, then the metadata
// count (+1 likewise) and each pair, keys sorted.
func packContents(text *strings.Builder, ev order.Event) {
	var buf [binary.MaxVarintLen64]byte
	putText := func(s string) {
		text.Write(binary.AppendUvarint(buf[:0], uint64(len(s))))
		text.WriteString(s)
	}
	putUint := func(v uint64) { text.Write(binary.AppendUvarint(buf[:0], v)) }
	putText(ev.CustomerID)
	putText(ev.Currency)
	putUint(countOf(ev.Items != nil, len(ev.Items)))
	for _, it := range ev.Items {
		putText(it.SKU)
		putUint(uint64(it.Quantity)) // not negative: the event was valid
		putUint(uint64(it.UnitPrice))
	}
	putUint(uint64(ev.Total))
	putUint(countOf(ev.Metadata != nil, len(ev.Metadata)))
	for _, k := range slices.Sorted(maps.Keys(ev.Metadata)) {
		putText(k)
		putText(ev.Metadata[k])
	}
}

func countOf(present bool, n int) uint64 {
	if !present {
		return 0
	}
	return uint64(n) + 1
}

// event expands p back into the event it was made from (orderID is the
// order's). Its strings share p's text: expanding allocates nothing.
func (p pastEvent) event(orderID string) order.Event {
	r := textReader{p.text}
	ev := order.Event{
		OrderID: orderID, Version: p.version, From: p.from, To: p.to,
		At: unixUTC(p.atSec, p.atNsec), PaymentDueAt: unixUTC(p.dueSec, p.dueNsec),
		EventID: r.next(), RequestID: r.next(), Principal: r.next(),
		IdempotencyKey: r.next(), RequestDigest: r.next(), Reason: r.next(),
	}
	if p.contents {
		r.contents(&ev)
	}
	return ev
}

// contents reads what packContents wrote. Items and metadata are new
// memory; their strings share the text.
func (r *textReader) contents(ev *order.Event) {
	ev.CustomerID, ev.Currency = r.next(), r.next()
	if n := r.uint(); n > 0 {
		ev.Items = make([]order.Item, n-1)
		for i := range ev.Items {
			ev.Items[i] = order.Item{SKU: r.next(), Quantity: int64(r.uint()), UnitPrice: int64(r.uint())}
		}
	}
	ev.Total = int64(r.uint())
	if n := r.uint(); n > 0 {
		ev.Metadata = make(map[string]string, n-1)
		for range n - 1 {
			k := r.next()
			ev.Metadata[k] = r.next()
		}
	}
}

// textReader reads the fields of a pastEvent's text one after another
// (struct literal fields are evaluated in order).
type textReader struct{ rest string }

func (r *textReader) next() string {
	n := r.uint()
	if len(r.rest) < n {
		panic("actors: corrupt history entry") // compactEvent wrote it: a bug
	}
	f := r.rest[:n]
	r.rest = r.rest[n:]
	return f
}

func (r *textReader) uint() int {
	n, w := uvarintString(r.rest)
	if w == 0 {
		panic("actors: corrupt history entry") // compactEvent wrote it: a bug
	}
	r.rest = r.rest[w:]
	return n
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
