package persistence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/orderd/orderd/order"
)

// The value parser. It reads exactly the JSON that DESIGN §4 describes: one
// flat object of known members, strings, one unsigned integer and one
// nullable string. It is hand-written because it sits on the replay path
// (every record of the log goes through it at start) and because
// encoding/json is lenient where the log must not be: it matches member names
// case-insensitively, lets a repeated member win silently and replaces invalid
// UTF-8.

// member is one bit per value member, to find duplicates and missing ones.
type member uint32

const (
	memberEventID member = 1 << iota
	memberOrderID
	memberVersion
	memberFrom
	memberTo
	memberAt
	memberIdempotencyKey
	memberPrincipal
	memberRequestID
	memberReason
	// memberRequestDigest is optional: records written before digests
	// were recorded do not have it.
	memberRequestDigest
	// memberPaymentDueAt is optional: only events that set a payment
	// deadline carry it, and records written before deadlines lack it.
	memberPaymentDueAt
	// What a creation orders, and the metadata of any event: optional,
	// written only when present (records written before they existed lack
	// them all).
	memberCustomerID
	memberCurrency
	memberItems
	memberTotal
	memberMetadata
	memberRequired = memberReason<<1 - 1
)

var members = [...]struct {
	name string
	bit  member
}{
	{"event_id", memberEventID},
	{"order_id", memberOrderID},
	{"version", memberVersion},
	{"from", memberFrom},
	{"to", memberTo},
	{"at", memberAt},
	{"idempotency_key", memberIdempotencyKey},
	{"principal", memberPrincipal},
	{"request_id", memberRequestID},
	{"reason", memberReason},
	{"request_digest", memberRequestDigest},
	{"payment_due_at", memberPaymentDueAt},
	{"customer_id", memberCustomerID},
	{"currency", memberCurrency},
	{"items", memberItems},
	{"total", memberTotal},
	{"metadata", memberMetadata},
}

// lookupMember is a switch rather than a walk over members: the compiler
// dispatches on the length first, and every record looks up eleven names.
func lookupMember(name []byte) member {
	switch string(name) {
	case "event_id":
		return memberEventID
	case "order_id":
		return memberOrderID
	case "version":
		return memberVersion
	case "from":
		return memberFrom
	case "to":
		return memberTo
	case "at":
		return memberAt
	case "idempotency_key":
		return memberIdempotencyKey
	case "principal":
		return memberPrincipal
	case "request_id":
		return memberRequestID
	case "reason":
		return memberReason
	case "request_digest":
		return memberRequestDigest
	case "payment_due_at":
		return memberPaymentDueAt
	}
	return lookupContentsMember(name)
}

// lookupContentsMember is lookupMember for the members only some records
// have, in a switch of their own so that a record without them compares
// its names with no more cases than before they existed.
func lookupContentsMember(name []byte) member {
	switch string(name) {
	case "customer_id":
		return memberCustomerID
	case "currency":
		return memberCurrency
	case "items":
		return memberItems
	case "total":
		return memberTotal
	case "metadata":
		return memberMetadata
	}
	return 0
}

// knownStates is read once: order.States allocates on every call.
var knownStates = order.States()

func lookupState(name []byte) (order.State, error) {
	for _, s := range knownStates {
		if s.String() == string(name) {
			return s, nil
		}
	}
	return 0, fmt.Errorf("unknown state %q", string(name))
}

// The text members, as indexes of parser.text.
type textMember uint8

const (
	textEventID textMember = iota
	textOrderID
	textIdempotencyKey
	textRequestDigest
	textPrincipal
	textRequestID
	textReason
	textMembers
)

// textGroups are the text members that share one string (one allocation)
// in a decoded event, grouped by how long a server keeps them, so that what
// a caller keeps of an event does not pin much else in memory: the order ID
// lives as long as the order; the principal, idempotency key and digest as
// long as the key is remembered; the rest only until the event is applied
// (the server's history packs its own copy). Three allocations instead of
// seven matter on the replay path, which decodes every record of the log.
var textGroups = [...][]textMember{
	{textOrderID},
	{textPrincipal, textIdempotencyKey, textRequestDigest},
	{textEventID, textRequestID, textReason},
}

// span is where a text member's text is: in the value when it has no
// escapes, in parser.scratch when it had to be unescaped.
type span struct {
	lo, hi  int
	escaped bool
}

// Scratch space for unescaping is taken from a pool when a value has an
// escape (most have none) and given back when it is decoded: replay decodes
// every record of the log, on several goroutines.
const (
	// scratchBytesInitial covers the escaped text of a typical record.
	scratchBytesInitial = 512
	// scratchPooledBytesMax keeps a hostile or unusual value from leaving
	// a large buffer in the pool: room for a reason at ReasonLenMax.
	scratchPooledBytesMax = 8 << 10
)

var scratchPool = sync.Pool{New: func() any {
	b := make([]byte, 0, scratchBytesInitial)
	return &b
}}

// parser reads one value.
type parser struct {
	b       []byte
	i       int
	scratch *[]byte // unescaped text of the strings that had escapes; nil until one has
	text    [textMembers]span
}

var errTruncated = errors.New("value ends before the object does")

func parseEvent(b []byte) (order.Event, error) {
	p := parser{b: b}
	defer p.releaseScratch()
	var ev order.Event
	p.skipSpace()
	if !p.consume('{') {
		return ev, errors.New("value is not a JSON object")
	}
	var seen member
	p.skipSpace()
	if p.consume('}') {
		return ev, errors.New("value is an empty object")
	}
	for {
		p.skipSpace()
		name, err := p.string()
		if err != nil {
			return ev, fmt.Errorf("member name: %w", err)
		}
		bit := lookupMember(name)
		if bit == 0 {
			return ev, fmt.Errorf("unknown member %q", string(name))
		}
		if seen&bit != 0 {
			return ev, fmt.Errorf("member %q appears twice", string(name))
		}
		seen |= bit
		p.skipSpace()
		if !p.consume(':') {
			return ev, fmt.Errorf("no ':' after member %q at byte %d", string(name), p.i)
		}
		p.skipSpace()
		if err := p.member(bit, &ev); err != nil {
			return ev, err
		}
		p.skipSpace()
		if p.consume(',') {
			continue
		}
		if p.consume('}') {
			break
		}
		return ev, fmt.Errorf("want ',' or '}' at byte %d", p.i)
	}
	p.skipSpace()
	if p.i != len(p.b) {
		return ev, fmt.Errorf("data after the object at byte %d", p.i)
	}
	if seen&memberRequired != memberRequired {
		for _, m := range members {
			if memberRequired&m.bit != 0 && seen&m.bit == 0 {
				return ev, fmt.Errorf("member %q is missing", m.name)
			}
		}
	}
	p.setText(&ev)
	return ev, nil
}

// setText copies the text members into ev, one string per textGroups entry.
// The strings are copies: an event must not pin the fetch response it was
// read from.
func (p *parser) setText(ev *order.Event) {
	fields := [textMembers]*string{
		textEventID: &ev.EventID, textOrderID: &ev.OrderID, textIdempotencyKey: &ev.IdempotencyKey,
		textRequestDigest: &ev.RequestDigest, textPrincipal: &ev.Principal, textRequestID: &ev.RequestID,
		textReason: &ev.Reason,
	}
	for _, group := range textGroups {
		n := 0
		for _, m := range group {
			n += len(p.textOf(m))
		}
		if n == 0 {
			continue
		}
		var all strings.Builder // its String does not copy
		all.Grow(n)
		for _, m := range group {
			all.Write(p.textOf(m))
		}
		s := all.String()
		for _, m := range group {
			n := len(p.textOf(m))
			if n > 0 {
				*fields[m] = s[:n]
			}
			s = s[n:]
		}
	}
}

func (p *parser) textOf(m textMember) []byte {
	return p.spanText(p.text[m])
}

func (p *parser) spanText(s span) []byte {
	if s.escaped {
		return (*p.scratch)[s.lo:s.hi]
	}
	return p.b[s.lo:s.hi]
}

func (p *parser) releaseScratch() {
	if p.scratch != nil && cap(*p.scratch) <= scratchPooledBytesMax {
		*p.scratch = (*p.scratch)[:0]
		scratchPool.Put(p.scratch)
	}
	p.scratch = nil
}

// member reads the value of one member into ev.
func (p *parser) member(bit member, ev *order.Event) error {
	if bit == memberVersion {
		v, err := p.uint64("version")
		ev.Version = v
		return err
	}
	if bit == memberFrom && p.literal("null") {
		ev.From = 0
		return nil
	}
	if m, ok := textMemberOf(bit); ok {
		s, err := p.stringSpan()
		if err != nil {
			return fmt.Errorf("member %s: %w", memberName(bit), err)
		}
		p.text[m] = s
		return nil
	}
	if bit >= memberCustomerID { // the members declared after it: codec_contents.go
		return p.contentsMember(bit, ev)
	}
	s, err := p.string()
	if err != nil {
		return fmt.Errorf("member %s: %w", memberName(bit), err)
	}
	switch bit {
	case memberFrom:
		ev.From, err = lookupState(s)
	case memberTo:
		ev.To, err = lookupState(s)
	case memberAt:
		ev.At, err = parseTime(s)
	case memberPaymentDueAt:
		ev.PaymentDueAt, err = parseTime(s)
	}
	if err != nil {
		return fmt.Errorf("member %s: %w", memberName(bit), err)
	}
	return nil
}

func textMemberOf(bit member) (textMember, bool) {
	switch bit {
	case memberEventID:
		return textEventID, true
	case memberOrderID:
		return textOrderID, true
	case memberIdempotencyKey:
		return textIdempotencyKey, true
	case memberRequestDigest:
		return textRequestDigest, true
	case memberPrincipal:
		return textPrincipal, true
	case memberRequestID:
		return textRequestID, true
	case memberReason:
		return textReason, true
	}
	return 0, false
}

func memberName(bit member) string {
	for _, m := range members {
		if m.bit == bit {
			return m.name
		}
	}
	return "?"
}

// parseTime accepts RFC 3339 in UTC ("Z") only, as the encoder writes it, so
// that a decoded time is always in UTC and compares equal to what was written.
func parseTime(s []byte) (time.Time, error) {
	if len(s) == 0 || s[len(s)-1] != 'Z' {
		return time.Time{}, fmt.Errorf("time %q is not RFC 3339 in UTC", string(s))
	}
	if t, ok := parseTimeText(s); ok {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, string(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: %w", string(s), err)
	}
	return t.UTC(), nil
}

func (p *parser) skipSpace() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) consume(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) literal(lit string) bool {
	if len(p.b)-p.i >= len(lit) && string(p.b[p.i:p.i+len(lit)]) == lit {
		p.i += len(lit)
		return true
	}
	return false
}

// uint64 reads a JSON number that must be a non-negative integer without
// fraction or exponent, and fit in 64 bits; name is the member's, for errors.
func (p *parser) uint64(name string) (uint64, error) {
	start := p.i
	var v uint64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		d := uint64(p.b[p.i] - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, fmt.Errorf("member %s: number does not fit in 64 bits", name)
		}
		v = v*10 + d
		p.i++
	}
	switch {
	case p.i == start:
		return 0, fmt.Errorf("member %s: want an unsigned integer at byte %d", name, start)
	case p.b[start] == '0' && p.i-start > 1:
		return 0, fmt.Errorf("member %s: number has a leading zero", name)
	case p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E'):
		return 0, fmt.Errorf("member %s: want an integer, got a fraction or exponent", name)
	}
	return v, nil
}

// string reads a JSON string and returns its text, which stays valid only
// until the next call. Without escapes it is a slice of the input, which is
// valid UTF-8 (checked by DecodeEvent); escapes are decoded into p.scratch.
func (p *parser) string() ([]byte, error) {
	s, err := p.stringSpan()
	if err != nil {
		return nil, err
	}
	return p.spanText(s), nil
}

// stringSpan reads a JSON string and returns where its text is.
func (p *parser) stringSpan() (span, error) {
	if !p.consume('"') {
		return span{}, fmt.Errorf("want a string at byte %d", p.i)
	}
	start := p.i
	p.skipPlain()
	if p.i >= len(p.b) {
		return span{}, errTruncated
	}
	switch p.b[p.i] {
	case '"':
		p.i++
		return span{lo: start, hi: p.i - 1}, nil
	case '\\':
		if p.scratch == nil {
			p.scratch = scratchPool.Get().(*[]byte)
		}
		lo := len(*p.scratch)
		text, err := p.escapedString(start, *p.scratch)
		*p.scratch = text
		if err != nil {
			return span{}, err
		}
		return span{lo: lo, hi: len(text), escaped: true}, nil
	default:
		return span{}, fmt.Errorf("control character in string at byte %d", p.i)
	}
}

// skipPlain moves past the bytes a string holds as they are: all but the
// quote, the backslash and control characters. It tests eight bytes at a
// time, as most of a record's bytes are such text.
func (p *parser) skipPlain() {
	b, i := p.b, p.i
	for ; len(b)-i >= 8; i += 8 {
		if hasStringSpecial(binary.LittleEndian.Uint64(b[i:])) {
			break
		}
	}
	for i < len(b) && b[i] >= 0x20 && b[i] != '"' && b[i] != '\\' {
		i++
	}
	p.i = i
}

// hasStringSpecial reports whether any of the eight bytes in x is a quote,
// a backslash or below 0x20 (the classic "has a zero byte" and "has a byte
// less than n" tests, which are exact about whether there is one).
func hasStringSpecial(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote := x ^ (ones * '"')
	backslash := x ^ (ones * '\\')
	return ((x-ones*0x20)&^x|(quote-ones)&^quote|(backslash-ones)&^backslash)&highs != 0
}

// escapedString continues a string from its first backslash, appending its
// text to dst.
func (p *parser) escapedString(start int, dst []byte) ([]byte, error) {
	dst = append(dst, p.b[start:p.i]...)
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			p.i++
			return dst, nil
		case c < 0x20:
			return dst, fmt.Errorf("control character in string at byte %d", p.i)
		case c != '\\':
			run := p.i
			p.skipPlain()
			dst = append(dst, p.b[run:p.i]...)
			continue
		}
		if p.i+1 >= len(p.b) {
			return dst, errTruncated
		}
		esc := p.b[p.i+1]
		p.i += 2
		switch esc {
		case '"', '\\', '/':
			dst = append(dst, esc)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, err := p.escapedRune()
			if err != nil {
				return dst, err
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, fmt.Errorf("unknown escape \\%c at byte %d", esc, p.i-2)
		}
	}
	return dst, errTruncated
}

// escapedRune reads the XXXX of \uXXXX (p.i is just past the 'u'), and a
// second \uXXXX when the first is a high surrogate. A lone surrogate is an
// error: it is no character, and accepting it would not read back the same.
func (p *parser) escapedRune() (rune, error) {
	r, ok := p.hex4()
	if !ok {
		return 0, fmt.Errorf("bad \\u escape at byte %d", p.i)
	}
	switch {
	case r >= 0xDC00 && r <= 0xDFFF:
		return 0, fmt.Errorf("lone low surrogate \\u%04X", r)
	case r < 0xD800 || r > 0xDBFF:
		return r, nil
	}
	if !p.literal(`\u`) {
		return 0, fmt.Errorf("high surrogate \\u%04X without its pair", r)
	}
	lo, ok := p.hex4()
	if !ok || lo < 0xDC00 || lo > 0xDFFF {
		return 0, fmt.Errorf("high surrogate \\u%04X without its pair", r)
	}
	return 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00), nil
}

func (p *parser) hex4() (rune, bool) {
	if len(p.b)-p.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	p.i += 4
	return r, true
}

// parseTimeText reads the form appendTime writes,
// "2006-01-02T15:04:05.000000000Z", without time.Parse's allocation and
// general layout machinery. It reports false for anything else, out-of-range
// fields included, which parseTime then leaves to time.Parse: so the set of
// accepted times and their values are exactly time.Parse's.
func parseTimeText(s []byte) (time.Time, bool) {
	if len(s) != timeTextLen || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
		s[16] != ':' || s[19] != '.' || s[29] != 'Z' {
		return time.Time{}, false
	}
	year, ok1 := decimal(s[0:4])
	month, ok2 := decimal(s[5:7])
	day, ok3 := decimal(s[8:10])
	hour, ok4 := decimal(s[11:13])
	minute, ok5 := decimal(s[14:16])
	sec, ok6 := decimal(s[17:19])
	nsec, ok7 := decimal(s[20:29])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || year < 1 || month < 1 || month > 12 ||
		day < 1 || day > daysIn(time.Month(month), year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}

// decimal reads s, which is all ASCII digits (at most nine), as a number.
func decimal(s []byte) (int, bool) {
	v := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// daysIn is the length of month m in year (proleptic Gregorian, as time
// uses).
func daysIn(m time.Month, year int) int {
	if m == time.February {
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	}
	return 31 - int((m-1)%7%2)
}
