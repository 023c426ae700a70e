package persistence

import (
	"errors"
	"fmt"
	"math"
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
type member uint16

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
}

func lookupMember(name []byte) member {
	for _, m := range members {
		if m.name == string(name) {
			return m.bit
		}
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
	return 0, fmt.Errorf("unknown state %q", name)
}

// parser reads one value. Each text member becomes its own string, so that
// what a caller keeps of an event (an idempotency key, say) does not pin the
// rest of the record in memory; that costs an allocation per member.
type parser struct {
	b       []byte
	i       int
	scratch []byte // unescaped text of the last string that had escapes
}

var errTruncated = errors.New("value ends before the object does")

func parseEvent(b []byte) (order.Event, error) {
	p := parser{b: b}
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
			return ev, fmt.Errorf("unknown member %q", name)
		}
		if seen&bit != 0 {
			return ev, fmt.Errorf("member %q appears twice", name)
		}
		seen |= bit
		p.skipSpace()
		if !p.consume(':') {
			return ev, fmt.Errorf("no ':' after member %q at byte %d", name, p.i)
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
	return ev, nil
}

// member reads the value of one member into ev.
func (p *parser) member(bit member, ev *order.Event) error {
	if bit == memberVersion {
		v, err := p.uint64()
		ev.Version = v
		return err
	}
	if bit == memberFrom && p.literal("null") {
		ev.From = 0
		return nil
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
	case memberEventID:
		ev.EventID = string(s)
	case memberOrderID:
		ev.OrderID = string(s)
	case memberIdempotencyKey:
		ev.IdempotencyKey = string(s)
	case memberRequestDigest:
		ev.RequestDigest = string(s)
	case memberPrincipal:
		ev.Principal = string(s)
	case memberRequestID:
		ev.RequestID = string(s)
	case memberReason:
		ev.Reason = string(s)
	}
	if err != nil {
		return fmt.Errorf("member %s: %w", memberName(bit), err)
	}
	return nil
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
		return time.Time{}, fmt.Errorf("time %q is not RFC 3339 in UTC", s)
	}
	t, err := time.Parse(time.RFC3339Nano, string(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: %w", s, err)
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
// fraction or exponent, and fit in 64 bits.
func (p *parser) uint64() (uint64, error) {
	start := p.i
	var v uint64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		d := uint64(p.b[p.i] - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, errors.New("member version: number does not fit in 64 bits")
		}
		v = v*10 + d
		p.i++
	}
	switch {
	case p.i == start:
		return 0, fmt.Errorf("member version: want an unsigned integer at byte %d", start)
	case p.b[start] == '0' && p.i-start > 1:
		return 0, errors.New("member version: number has a leading zero")
	case p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E'):
		return 0, errors.New("member version: want an integer, got a fraction or exponent")
	}
	return v, nil
}

// string reads a JSON string and returns its text, which stays valid only
// until the next call. Without escapes it is a slice of the input, which is
// valid UTF-8 (checked by DecodeEvent); escapes are decoded into p.scratch.
func (p *parser) string() ([]byte, error) {
	if !p.consume('"') {
		return nil, fmt.Errorf("want a string at byte %d", p.i)
	}
	start := p.i
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, nil
		case c == '\\':
			return p.escapedString(start)
		case c < 0x20:
			return nil, fmt.Errorf("control character in string at byte %d", p.i)
		default:
			p.i++
		}
	}
	return nil, errTruncated
}

// escapedString continues a string from its first backslash.
func (p *parser) escapedString(start int) ([]byte, error) {
	p.scratch = append(p.scratch[:0], p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return p.scratch, nil
		case c < 0x20:
			return nil, fmt.Errorf("control character in string at byte %d", p.i)
		case c != '\\':
			p.scratch = append(p.scratch, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.b) {
			return nil, errTruncated
		}
		esc := p.b[p.i+1]
		p.i += 2
		switch esc {
		case '"', '\\', '/':
			p.scratch = append(p.scratch, esc)
		case 'b':
			p.scratch = append(p.scratch, '\b')
		case 'f':
			p.scratch = append(p.scratch, '\f')
		case 'n':
			p.scratch = append(p.scratch, '\n')
		case 'r':
			p.scratch = append(p.scratch, '\r')
		case 't':
			p.scratch = append(p.scratch, '\t')
		case 'u':
			r, err := p.escapedRune()
			if err != nil {
				return nil, err
			}
			p.scratch = utf8.AppendRune(p.scratch, r)
		default:
			return nil, fmt.Errorf("unknown escape \\%c at byte %d", esc, p.i-2)
		}
	}
	return nil, errTruncated
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
