package persistence

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// The frame the strict decoders of the records beside orders' (inventory,
// checkouts) share: bounds and UTF-8 first, then the parse, then the key
// must be the one the event names, then the event's own validation. Every
// error matches ErrInvalidRecord. Order records have their own, faster
// parser (codec_parse.go).
func decodeStrict[T any](key, value []byte, parse func([]byte) (T, error), keyOf func(T) string, validate func(T) error) (T, error) {
	var zero T
	if len(value) > RecordValueBytesMax {
		return zero, fmt.Errorf("%w: value is %d bytes, at most %d allowed", ErrInvalidRecord, len(value), RecordValueBytesMax)
	}
	if !utf8.Valid(value) {
		return zero, fmt.Errorf("%w: value is not valid UTF-8", ErrInvalidRecord)
	}
	ev, err := parse(value)
	if err != nil {
		return zero, fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	if want := keyOf(ev); string(key) != want {
		return zero, fmt.Errorf("%w: key %q is not the record's own, %q", ErrInvalidRecord, key, want)
	}
	if err := validate(ev); err != nil {
		return zero, err
	}
	return ev, nil
}

// object reads the whole input as one JSON object whose member names are
// among names, each at most once, handing each value to member(i) for
// names[i]; it returns the members seen, bit i for names[i] (at most 32).
func (p *parser) object(names []string, member func(i int) error) (seen uint32, err error) {
	p.skipSpace()
	if !p.consume('{') {
		return 0, errors.New("value is not a JSON object")
	}
	for first := true; ; first = false {
		p.skipSpace()
		if first && p.consume('}') {
			return 0, errors.New("value is an empty object")
		}
		name, err := p.string()
		if err != nil {
			return 0, fmt.Errorf("member name: %w", err)
		}
		i := memberIndex(names, name)
		if i < 0 {
			return 0, fmt.Errorf("unknown member %q", string(name))
		}
		if seen&(1<<i) != 0 {
			return 0, fmt.Errorf("member %q appears twice", names[i])
		}
		seen |= 1 << i
		p.skipSpace()
		if !p.consume(':') {
			return 0, fmt.Errorf("no ':' after member %q at byte %d", names[i], p.i)
		}
		p.skipSpace()
		if err := member(i); err != nil {
			return 0, err
		}
		p.skipSpace()
		if p.consume(',') {
			continue
		}
		if p.consume('}') {
			break
		}
		return 0, fmt.Errorf("want ',' or '}' at byte %d", p.i)
	}
	p.skipSpace()
	if p.i != len(p.b) {
		return 0, fmt.Errorf("data after the object at byte %d", p.i)
	}
	return seen, nil
}

func memberIndex(names []string, name []byte) int {
	for i, m := range names {
		if m == string(name) {
			return i
		}
	}
	return -1
}
