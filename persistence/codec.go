// Package persistence is orderd's journal: the audit log on Kafka (written
// with segmentio/kafka-go), its record codec, the embedded broker used when no
// Kafka cluster is configured, and an in-memory journal with fault injection
// for tests. It implements order.Journal and imports nothing of orderd but the
// order package.
package persistence

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/orderd/orderd/order"
)

// Bounds on what one record may carry. They keep a record far below Kafka's
// default message.max.bytes (1 MiB) even fully escaped, and keep a corrupt or
// hostile record from making the decoder allocate without limit. Callers that
// accept these fields from clients should check the same bounds first so that a
// client error is not reported as a journal failure.
const (
	// EventIDLenMax bounds event IDs: room for a UUID, ULID or any
	// reasonable generated ID.
	EventIDLenMax = 128
	// IdempotencyKeyLenMax is the HTTP API's limit on Idempotency-Key
	// (DESIGN §3: ≤ 255 bytes).
	IdempotencyKeyLenMax = 255
	// PrincipalLenMax bounds the authenticated principal's name.
	PrincipalLenMax = 255
	// RequestIDLenMax bounds request IDs (a UUID is 36 bytes; proxies add
	// their own longer forms).
	RequestIDLenMax = 255
	// ReasonLenMax bounds the free-text reason of a transition.
	ReasonLenMax = 4096
	// RecordValueBytesMax bounds an encoded value. The longest valid event,
	// every string at its limit and every byte escaped as \u00XX, with
	// order.ItemsMax items and metadata at order.MetadataBytesMax, encodes
	// to about 55 KiB (TestLargestRecordFits); anything beyond this is not
	// a record we wrote.
	RecordValueBytesMax = 64 << 10
)

// CloudEvents attributes of every record (Kafka protocol binding, binary
// content mode), so a consumer that knows CloudEvents but not orderd can route
// and read the records.
const (
	ceSpecVersion = "1.0"
	ceSource      = "orderd"
	ceType        = "orderd.order.transitioned"
	contentType   = "application/json"
)

// Header keys in the order they are written.
const (
	headerSpecVersion = "ce_specversion"
	headerID          = "ce_id"
	headerSource      = "ce_source"
	headerType        = "ce_type"
	headerSubject     = "ce_subject"
	headerTime        = "ce_time"
	headerContentType = "content-type"
	headerCount       = 7
)

// Header values shared by every record. kafka-go only reads them.
var (
	specVersionBytes = []byte(ceSpecVersion)
	sourceBytes      = []byte(ceSource)
	typeBytes        = []byte(ceType)
	contentTypeBytes = []byte(contentType)
)

// ErrInvalidRecord matches every error about an event that cannot be written
// or a record that cannot be read back.
var ErrInvalidRecord = errors.New("invalid journal record")

// Record is one event as it is written to Kafka.
type Record struct {
	Key     []byte // the order ID, which also chooses the partition
	Value   []byte // the JSON document of DESIGN §4
	Headers []kafka.Header
}

// recordSize is what a record adds to a produce request, near enough to keep
// batches under the broker's size limit (the few bytes of varint framing per
// field are covered by recordOverheadBytes).
func recordSize(key, value []byte, headers []kafka.Header) int {
	n := len(key) + len(value) + recordOverheadBytes
	for _, h := range headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// recordOverheadBytes covers a record's framing in a v2 batch: length,
// attributes, timestamp and offset deltas, key and value lengths, header count
// and per-header lengths (all varints).
const recordOverheadBytes = 32

// ValidateEvent checks everything the journal requires of an event before it
// is written and again after it is read back: a valid order ID, a non-empty
// event ID, a version of at least 1, a valid target state, a source state
// exactly when the version is above 1, a time that RFC 3339 can carry, UTF-8
// strings within their bounds, a request digest that is empty or well-formed
// and only beside a key. It does not check the transition table: that is
// order.Apply's job, and a record that breaks it is a fork, not garbage.
func ValidateEvent(ev order.Event) error {
	if err := order.ValidateID(ev.OrderID); err != nil {
		return fmt.Errorf("%w: order_id: %w", ErrInvalidRecord, err)
	}
	if ev.EventID == "" {
		return fmt.Errorf("%w: event_id is empty", ErrInvalidRecord)
	}
	if err := checkText("event_id", ev.EventID, EventIDLenMax); err != nil {
		return err
	}
	if ev.Version < 1 {
		return fmt.Errorf("%w: version %d, the first version is 1", ErrInvalidRecord, ev.Version)
	}
	if !ev.To.Valid() {
		return fmt.Errorf("%w: to is %v", ErrInvalidRecord, ev.To)
	}
	switch {
	case ev.Version == 1 && ev.From != 0:
		return fmt.Errorf("%w: version 1 has from %v, want none (creation)", ErrInvalidRecord, ev.From)
	case ev.Version > 1 && !ev.From.Valid():
		return fmt.Errorf("%w: version %d has from %v, want a state", ErrInvalidRecord, ev.Version, ev.From)
	}
	if y := ev.At.UTC().Year(); ev.At.IsZero() || y < 1 || y > 9999 {
		return fmt.Errorf("%w: at %v is zero or outside the years RFC 3339 can write", ErrInvalidRecord, ev.At)
	}
	if err := checkText("idempotency_key", ev.IdempotencyKey, IdempotencyKeyLenMax); err != nil {
		return err
	}
	if err := checkDigest(ev); err != nil {
		return err
	}
	if err := checkText("principal", ev.Principal, PrincipalLenMax); err != nil {
		return err
	}
	if err := checkText("request_id", ev.RequestID, RequestIDLenMax); err != nil {
		return err
	}
	if err := checkText("reason", ev.Reason, ReasonLenMax); err != nil {
		return err
	}
	if err := checkContents(ev); err != nil {
		return err
	}
	return checkPaymentDueAt(ev)
}

// checkPaymentDueAt: a deadline belongs only to an event that leaves the
// order in Created, a deadline change (From == To == Created) must carry
// one, and it must be a time RFC 3339 can write.
func checkPaymentDueAt(ev order.Event) error {
	due := ev.PaymentDueAt
	switch {
	case due.IsZero() && order.IsDeadlineChange(ev):
		return fmt.Errorf("%w: a deadline change (from %v to %v) without payment_due_at", ErrInvalidRecord, ev.From, ev.To)
	case due.IsZero():
		return nil
	case ev.To != order.InitialState:
		return fmt.Errorf("%w: payment_due_at on an event to %v", ErrInvalidRecord, ev.To)
	}
	if y := due.UTC().Year(); y < 1 || y > 9999 {
		return fmt.Errorf("%w: payment_due_at %v is outside the years RFC 3339 can write", ErrInvalidRecord, due)
	}
	return nil
}

// checkDigest requires request_digest to be empty or a digest as
// order.RequestDigest writes it (lowercase hex, so that equal digests are
// equal strings), and empty when there is no idempotency key: a digest
// exists only to compare a keyed request with its retries.
func checkDigest(ev order.Event) error {
	d := ev.RequestDigest
	switch {
	case d == "":
		return nil
	case ev.IdempotencyKey == "":
		return fmt.Errorf("%w: request_digest without an idempotency_key", ErrInvalidRecord)
	case len(d) != order.RequestDigestLen:
		return fmt.Errorf("%w: request_digest is %d characters, want %d", ErrInvalidRecord, len(d), order.RequestDigestLen)
	}
	for i := 0; i < len(d); i++ {
		if !lowerHex[d[i]] {
			return fmt.Errorf("%w: request_digest is not lowercase hex", ErrInvalidRecord)
		}
	}
	return nil
}

// lowerHex marks the bytes a request digest is written with. A table: every
// keyed record checks 64 of them, twice (written and read back).
var lowerHex = func() (t [256]bool) {
	for _, c := range "0123456789abcdef" {
		t[c] = true
	}
	return t
}()

// checkText requires valid UTF-8, so that a string reads back exactly as it
// was written (encoding/json would silently replace invalid bytes).
func checkText(field, s string, lenMax int) error {
	if len(s) > lenMax {
		return fmt.Errorf("%w: %s is %d bytes, at most %d allowed", ErrInvalidRecord, field, len(s), lenMax)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidRecord, field)
	}
	return nil
}

// EncodeEvent validates ev and encodes it as the record of DESIGN §4: the
// order ID as key, the JSON document as value, the CloudEvents headers. The
// record owns its memory. The journal's write path encodes with
// encodedRecord instead, into memory it reuses.
func EncodeEvent(ev order.Event) (Record, error) {
	// One allocation holds the key, the per-record header values and the
	// value (encode), one the headers.
	headers := new([headerCount]kafka.Header)
	key, value, _, err := encodeRecord(nil, headers, ev)
	if err != nil {
		return Record{}, err
	}
	return Record{Key: key, Value: value, Headers: headers[:]}, nil
}

// encodeRecord validates ev and encodes it into buf's memory, growing it if
// it is too small, and fills headers. It returns the key and the value, which
// share buf's memory with the header values, and the buffer to reuse for the
// next record once this one is no longer in use. The key, the event ID and
// the time text are written once: the key is also ce_subject, the time text
// both ce_time and the value's "at".
func encodeRecord(buf []byte, headers *[headerCount]kafka.Header, ev order.Event) (key, value, next []byte, err error) {
	if err := ValidateEvent(ev); err != nil {
		return nil, nil, buf, err
	}
	b := buf[:0]
	if n := len(ev.OrderID) + len(ev.EventID) + timeTextLen + valueSizeHint(ev); cap(b) < n {
		b = make([]byte, 0, n)
	}
	b = append(b, ev.OrderID...)
	b = append(b, ev.EventID...)
	b = appendTime(b, ev.At.UTC())
	// Full slice expressions: appending to one must never write into the
	// next. They stay valid if the value below outgrows b: they keep the
	// old memory alive.
	k, id := len(ev.OrderID), len(ev.OrderID)+len(ev.EventID)
	key = b[:k:k]
	idText := b[k:id:id]
	atText := b[id:len(b):len(b)]

	start := len(b)
	b = appendEventJSON(b, ev, atText)
	value = b[start:len(b):len(b)]
	if len(value) > RecordValueBytesMax {
		return nil, nil, b, fmt.Errorf("%w: value is %d bytes, at most %d allowed", ErrInvalidRecord, len(value), RecordValueBytesMax)
	}
	*headers = cloudEventHeaders(typeBytes, key, idText, atText)
	return key, value, b, nil
}

// cloudEventHeaders are a record's headers, the CloudEvents Kafka binding
// in binary mode, for every kind of record orderd writes: its type, its
// subject (the order, the SKU, the checkout), its event ID and time.
func cloudEventHeaders(typ, subject, id, at []byte) [headerCount]kafka.Header {
	return [headerCount]kafka.Header{
		{Key: headerSpecVersion, Value: specVersionBytes},
		{Key: headerID, Value: id},
		{Key: headerSource, Value: sourceBytes},
		{Key: headerType, Value: typ},
		{Key: headerSubject, Value: subject},
		{Key: headerTime, Value: at},
		{Key: headerContentType, Value: contentTypeBytes},
	}
}

// valueSizeHint is the encoded size when no string needs escaping, so the
// common record is encoded without growing its buffer.
func valueSizeHint(ev order.Event) int {
	const fixed = len(`{"event_id":"","order_id":"","version":,"from":"","to":"","at":"","idempotency_key":"","request_digest":"","principal":"","request_id":"","reason":""}`)
	return fixed + 20 + 2*len("Delivered") + 2*timeTextLen + len(`,"payment_due_at":""`) + len(ev.EventID) + len(ev.OrderID) +
		len(ev.IdempotencyKey) + len(ev.RequestDigest) + len(ev.Principal) + len(ev.RequestID) + len(ev.Reason) +
		contentsSizeHint(ev)
}

// appendEventJSON writes the members in a fixed order. ev must be valid.
func appendEventJSON(b []byte, ev order.Event, atText []byte) []byte {
	b = append(b, `{"event_id":`...)
	b = appendString(b, ev.EventID)
	b = append(b, `,"order_id":`...)
	b = appendString(b, ev.OrderID)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, ev.Version, 10)
	b = append(b, `,"from":`...)
	if ev.From == 0 {
		b = append(b, "null"...)
	} else {
		b = appendString(b, ev.From.String())
	}
	b = append(b, `,"to":`...)
	b = appendString(b, ev.To.String())
	b = append(b, `,"at":"`...)
	b = append(b, atText...)
	b = append(b, `","idempotency_key":`...)
	b = appendString(b, ev.IdempotencyKey)
	// Written even when empty, so that every record this version writes has
	// the same members; only the decoder tolerates its absence.
	b = append(b, `,"request_digest":`...)
	b = appendString(b, ev.RequestDigest)
	b = append(b, `,"principal":`...)
	b = appendString(b, ev.Principal)
	b = append(b, `,"request_id":`...)
	b = appendString(b, ev.RequestID)
	b = append(b, `,"reason":`...)
	b = appendString(b, ev.Reason)
	// Only events that set a deadline carry it, so that every other
	// record reads exactly as before deadlines existed.
	if !ev.PaymentDueAt.IsZero() {
		b = append(b, `,"payment_due_at":"`...)
		b = appendTime(b, ev.PaymentDueAt.UTC())
		b = append(b, '"')
	}
	b = appendContentsJSON(b, ev)
	return append(b, '}')
}

// appendString writes s as a JSON string. s is valid UTF-8 (ValidateEvent),
// so only the quote, the backslash and control characters need escaping.
// Most text needs none: it is scanned a word at a time and copied whole.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		for i+8 <= len(s) && !needsEscape8(load64(s, i)) {
			i += 8
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// load64 reads the eight bytes of s at i as one little-endian word (the
// compiler makes it a single load).
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// needsEscape8 reports whether any of the eight bytes in x is a control
// character, a quote or a backslash. The classic SWAR tests: a byte below n
// (n <= 0x80) is flagged by (x - n*lsb) &^ x & msb, a zero byte by the same
// with n = 1, and a byte equal to c is a zero byte of x ^ c*lsb. They may
// flag the wrong byte of a word but never flag a word wrongly.
func needsEscape8(x uint64) bool {
	const (
		lsb = 0x0101010101010101
		msb = 0x8080808080808080
	)
	control := (x - 0x20*lsb) &^ x
	q := x ^ '"'*lsb
	quote := (q - lsb) &^ q
	bs := x ^ '\\'*lsb
	backslash := (bs - lsb) &^ bs
	return (control|quote|backslash)&msb != 0
}

// timeTextLen is the length of "2006-01-02T15:04:05.000000000Z": always nine
// fractional digits, so the text has one width and sorts as the times do.
const timeTextLen = 30

// appendTime writes t (UTC, year 1..9999) as RFC 3339 with nanoseconds.
func appendTime(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	ns := t.Nanosecond()
	var text [timeTextLen]byte
	putPair(text[0:], year/100)
	putPair(text[2:], year%100)
	text[4] = '-'
	putPair(text[5:], int(month))
	text[7] = '-'
	putPair(text[8:], day)
	text[10] = 'T'
	putPair(text[11:], hour)
	text[13] = ':'
	putPair(text[14:], minute)
	text[16] = ':'
	putPair(text[17:], sec)
	text[19] = '.'
	text[20] = byte('0' + ns/100_000_000)
	ns %= 100_000_000
	putPair(text[21:], ns/1_000_000)
	ns %= 1_000_000
	putPair(text[23:], ns/10_000)
	ns %= 10_000
	putPair(text[25:], ns/100)
	putPair(text[27:], ns%100)
	text[29] = 'Z'
	return append(b, text[:]...)
}

// digitPairs holds "00" to "99": two digits per lookup instead of two
// divisions.
const digitPairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// putPair writes v, 0 to 99, as two digits at the start of b.
func putPair(b []byte, v int) {
	b[0], b[1] = digitPairs[2*v], digitPairs[2*v+1]
}

// DecodeEvent reads a record written by EncodeEvent. It is strict: the value
// must be one JSON object with exactly the ten members of DESIGN §4, each
// once, of the right type, plus request_digest and payment_due_at at most
// once; the key must equal order_id; the event must pass ValidateEvent.
// request_digest and payment_due_at are optional because records written
// before they existed lack them (they decode as empty and zero). Every error matches ErrInvalidRecord. It never
// panics, whatever the input.
func DecodeEvent(key, value []byte) (order.Event, error) {
	if len(value) > RecordValueBytesMax {
		return order.Event{}, fmt.Errorf("%w: value is %d bytes, at most %d allowed", ErrInvalidRecord, len(value), RecordValueBytesMax)
	}
	// JSON text is UTF-8; checking it once here means every string the
	// parser takes without escapes is valid UTF-8 too.
	if !utf8.Valid(value) {
		return order.Event{}, fmt.Errorf("%w: value is not valid UTF-8", ErrInvalidRecord)
	}
	ev, err := parseEvent(value)
	if err != nil {
		return order.Event{}, fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	if string(key) != ev.OrderID {
		return order.Event{}, fmt.Errorf("%w: key %q is not order_id %q", ErrInvalidRecord, key, ev.OrderID)
	}
	if err := ValidateEvent(ev); err != nil {
		return order.Event{}, err
	}
	return ev, nil
}
