package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"sort"
	"strconv"
	"strings"
)

// The json.Decoder token walk that read request bodies before decodeObject,
// kept as the oracle decodeObject must agree with (FuzzDecodeObject): it
// refuses unknown, mis-cased and repeated members, which json.Unmarshal on
// a struct would let through, and leaves the rest to encoding/json.

// decodeObjectOracle reads one JSON object whose members are exactly the
// keys of fields into the pointers they map to. A blank body is an empty
// object.
func decodeObjectOracle(body []byte, fields map[string]any) error {
	if isBlank(body) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil {
		return oracleSyntaxError(err)
	} else if tok != json.Delim('{') {
		return badInput(fieldBody, "must be a JSON object")
	}
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return oracleSyntaxError(err)
		}
		name, _ := tok.(string) // inside an object the decoder only yields string keys
		dst, known := fields[name]
		if !known {
			return badInput(name, "unknown member (allowed: %s)", oracleMemberList(fields))
		}
		if seen[name] {
			return badInput(name, "member appears more than once")
		}
		seen[name] = true
		if raw, ok := dst.(*oracleRaw); ok {
			if err := raw.decode(dec, name); err != nil {
				return err
			}
			continue
		}
		if err := dec.Decode(dst); err != nil {
			return oracleValueError(name, err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return oracleSyntaxError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badInput(fieldBody, "unexpected data after the JSON object")
	}
	return nil
}

func oracleSyntaxError(err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return badInput(fieldBody, "malformed JSON at byte %d: %v", se.Offset, se)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return badInput(fieldBody, "truncated JSON")
	default:
		return badInput(fieldBody, "malformed JSON")
	}
}

func oracleValueError(name string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return badInput(name, "must be a string, not %s", te.Value)
	}
	return oracleSyntaxError(err)
}

func oracleMemberList(fields map[string]any) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, strconv.Quote(name))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// oracleRaw is a member read whole as JSON text (items, metadata), whose
// type must be want or null.
type oracleRaw struct {
	want string
	raw  json.RawMessage
}

func (r *oracleRaw) decode(dec *json.Decoder, name string) error {
	if err := dec.Decode(&r.raw); err != nil {
		return oracleSyntaxError(err)
	}
	r.raw = bytes.TrimSpace(r.raw)
	kind := map[byte]string{'[': "array", '{': "object", '"': "string", 'n': "null", 't': "bool", 'f': "bool"}[r.raw[0]]
	if kind == "" {
		kind = "number"
	}
	if kind != r.want && kind != "null" {
		return badInput(name, "must be %s, not %s", withArticle(r.want), kind)
	}
	return nil
}
