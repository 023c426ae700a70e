package http

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// memberSets are the bodies the API reads: create, transition, reschedule.
var memberSets = [][]string{
	{fieldID, order.FieldPaymentTimeout, order.FieldCustomerID, order.FieldCurrency, order.FieldItems, order.FieldMetadata},
	{fieldTo, fieldReason, order.FieldMetadata},
	{order.FieldPaymentDueAt, order.FieldExtend},
}

// memberKinds are the members that are not strings, read whole as JSON
// text for a parser of their own (contents.go).
var memberKinds = map[string]string{order.FieldItems: "array", order.FieldMetadata: "object"}

// decodeResult is what a decoder made of a body: the problem's field and
// detail, or the members given as strings (null and absent are left out).
type decodeResult struct {
	failed bool
	field  string
	detail string
	values map[string]string
}

func decodeWith(body string, names []string) decodeResult {
	members := make([]bodyMember, len(names))
	for i, name := range names {
		members[i].name, members[i].want = name, memberKinds[name]
	}
	err := decodeObject([]byte(body), members)
	if err != nil {
		return resultOf(err)
	}
	r := decodeResult{values: map[string]string{}}
	for _, m := range members {
		if v := m.optional(); v.ok {
			r.values[m.name] = v.value
		}
	}
	return r
}

// decodeWithOracle decodes into *string members: null leaves them nil, which
// is how the API's optional members read, and a string sets them, which is
// all the required ones could tell apart.
func decodeWithOracle(body string, names []string) decodeResult {
	ptrs := make([]*string, len(names))
	raws := make([]oracleRaw, len(names))
	fields := map[string]any{}
	for i, name := range names {
		if kind, ok := memberKinds[name]; ok {
			raws[i].want = kind
			fields[name] = &raws[i]
			continue
		}
		fields[name] = &ptrs[i]
	}
	if err := decodeObjectOracle([]byte(body), fields); err != nil {
		return resultOf(err)
	}
	r := decodeResult{values: map[string]string{}}
	for i, name := range names {
		if ptrs[i] != nil {
			r.values[name] = *ptrs[i]
		}
		if raw := raws[i].raw; raw != nil && string(raw) != "null" {
			r.values[name] = string(raw)
		}
	}
	return r
}

func resultOf(err error) decodeResult {
	var ie *inputError
	if !errors.As(err, &ie) {
		return decodeResult{failed: true, field: "not an input error", detail: err.Error()}
	}
	return decodeResult{failed: true, field: ie.field, detail: ie.Error()}
}

// requireSameAsOracle: decodeObject accepts what encoding/json's token walk
// accepted, with the same values, and refuses what it refused, naming the
// same field. Problems about a member say the same; problems about the body
// as a whole may word the syntax error differently (byte offsets, which of
// "truncated" and "malformed"), which no client can rely on.
func requireSameAsOracle(t *testing.T, body string) {
	t.Helper()
	for _, names := range memberSets {
		got, want := decodeWith(body, names), decodeWithOracle(body, names)
		require.Equal(t, want.failed, got.failed, "body %q, members %q: oracle %+v, got %+v", body, names, want, got)
		require.Equal(t, want.field, got.field, "body %q, members %q: oracle %+v, got %+v", body, names, want, got)
		if want.field != fieldBody {
			require.Equal(t, want.detail, got.detail, "body %q, members %q", body, names)
		}
		require.Equal(t, want.values, got.values, "body %q, members %q", body, names)
	}
}

// decodeCases are bodies with the edge cases of JSON that a hand-written
// decoder could get wrong; each is also a seed of FuzzDecodeObject.
var decodeCases = []string{
	``, ` `, "\t\r\n", `{}`, ` { } `, `{"to":"Paid"}`, `{"to":"Paid","reason":"card accepted"}`,
	`{"reason":"r","to":"Shipped"}`, `{"id":null}`, `{"id":""}`, `{"to":null}`, `{"to":null,"reason":null}`,
	`{"id":"o-1","payment_timeout":"15m"}`, `{"payment_due_at":"2026-11-23T12:30:00Z"}`, `{"extend":null}`,
	// Members that are not strings: read whole, their type checked.
	`{"items":[{"sku":"a","quantity":1,"unit_price":5}],"currency":"EUR","customer_id":"c"}`, `{"items":null}`,
	`{"items":{}}`, `{"items":"a"}`, `{"items":[1,]}`, `{"items": [ ] }`, `{"metadata":{"k":"v"}}`, `{"metadata":[]}`,
	`{"to":"Paid","metadata":{"k":"v","k":"w"}}`, `{"metadata":{"k":1}}`, `{"metadata":null,"metadata":{}}`,
	`{"metadata":{"a":`, `{"Metadata":{}}`, `{"items":[],"to":1}`, `{"items":5,"bogus":1}`,
	// Escapes and UTF-8.
	`{"to":"P\u0061id"}`, `{"t\u006f":"Paid"}`, `{"to":"\"\\\/\b\f\n\r\t"}`, `{"reason":"\u00e4\u20ac\ud83d\ude00"}`,
	`{"reason":"\ud800"}`, `{"reason":"\udc00\ud800"}`, `{"reason":"\ud800\u0041"}`, `{"reason":"\ud83d\ude00\ud83d"}`,
	`{"reason":"\ud800x"}`, `{"reason":"` + "\xff\xfe" + `"}`, `{"reason":"a` + "\xe2\x82" + `"}`, `{"reason":"` + "\xed\xa0\x80" + `"}`,
	`{"reason":"ä€😀"}`, `{"` + "\xff" + `":1}`, `{"reason":"\U0041"}`, `{"reason":"\u00G0"}`, `{"reason":"\x"}`,
	`{"reason":"\u12"}`, `{"reason":"\u12`, `{"reason":"\`, `{"reason":"a` + "\x00" + `b"}`, `{"reason":"a` + "\x1f" + `"}`,
	`{"reason":"a` + "\x7f" + `"}`, `{"reason":"\u0000"}`, `{"reason":"\'"}`,
	// Whitespace wherever JSON allows it, and where it does not.
	" {\"to\" : \"Paid\" , \"reason\" :\t\"\" } \n", "{\n\"id\"\r:\n null\t}", `{"to": [ 1 , { "a" : 2 } ] }`,
	`{"to":"Paid"  ,  "reason"  :  "x"  }`, "{\"to\":\"Paid\"\v}", "{\"to\":\u00a0\"Paid\"}",
	// Members.
	`{"To":"Paid"}`, `{"TO":"Paid"}`, `{"to ":"Paid"}`, `{"":1}`, `{"to":"Paid","to":"Paid"}`, `{"to":null,"to":"Paid"}`,
	`{"priority":1}`, `{"priority":`, `{"priority"`, `{"to":"Paid","extra":true}`, `{"id":"a","id":`,
	// Types.
	`{"to":1}`, `{"to":-1.5e+10}`, `{"to":true}`, `{"to":false}`, `{"to":[]}`, `{"to":["Paid"]}`, `{"to":{}}`,
	`{"to":{"a":[1,{"b":null}]}}`, `{"reason":5}`, `{"id":42}`, `{"to":01}`, `{"to":1x}`, `{"to":truex}`, `{"to":nullx}`,
	`{"to":0}`, `{"to":-0.0E-0}`, `{"to":1`, `{"to":true`, `{"to":null`, `{"to":"Paid"`,
	// Malformed.
	`{`, `{"to"`, `{"to":`, `{"to" "Paid"}`, `{"to"::"Paid"}`, `{"to":}`, `{"to":"Paid",}`, `{,}`, `{"to":"Paid" "reason":"x"}`,
	`{"to":tru}`, `{"to":tr`, `{"to":nul}`, `{"to":fals`, `{"to":-}`, `{"to":-`, `{"to":1.}`, `{"to":1.`, `{"to":1e}`,
	`{"to":1e+}`, `{"to":1e`, `{"to":+1}`, `{"to":.5}`, `{"to":[1,]}`, `{"to":[1 2]}`, `{"to":[,]}`, `{"to":{"a"}}`,
	`{"to":{"a":}}`, `{"to":{1:2}}`, `{"to":{"a":1,}}`, `{"to":[`, `{"to":{`, `{"to":{"a":1`, `{"to":{"a"`, `{"to":[1`,
	`{"to":'Paid'}`, `{'to':"Paid"}`, `{to:"Paid"}`, `{"to":"Paid"}}`, `{"to":"Paid"}x`, `{"to":"Paid"} {}`,
	`{"to":"Paid"}` + "\x00", `{"to":"Paid"}` + " \n", "\ufeff{}", `{"to":"Paid"` + "\x00",
	// Not an object.
	`[]`, `[{"to":"Paid"}]`, `[`, `"Paid"`, `"Paid`, `null`, `nul`, `true`, `1`, `1x`, `-`, `-x`, `]`, `}`, `,`, `:`,
	`to=Paid`, `"\x"`, `123abc`, `"a"x`,
	// Nesting at and beyond encoding/json's limit.
	`{"to":` + strings.Repeat("[", jsonNestingDepthMax) + strings.Repeat("]", jsonNestingDepthMax) + `}`,
	`{"to":` + strings.Repeat("[", jsonNestingDepthMax+1) + strings.Repeat("]", jsonNestingDepthMax+1) + `}`,
	`{"to":` + strings.Repeat(`{"a":`, jsonNestingDepthMax) + `1` + strings.Repeat("}", jsonNestingDepthMax) + `}`,
	`{"to":` + strings.Repeat(`{"a":`, jsonNestingDepthMax+1) + `1` + strings.Repeat("}", jsonNestingDepthMax+1) + `}`,
}

func TestDecodeObjectAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, body := range decodeCases {
		requireSameAsOracle(t, body)
	}
}

// TestDecodeObject pins what decodeObject makes of the cases that matter to
// clients, whatever the oracle says.
func TestDecodeObject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body   string
		want   map[string]string
		field  string // "" when accepted
		detail string // prefix
	}{
		{body: `{"to":"P\u0061id","reason":"\u00e4 \ud83d\ude00"}`, want: map[string]string{"to": "Paid", "reason": "ä 😀"}},
		{body: `{"to":"Paid","reason":"\ud800"}`, want: map[string]string{"to": "Paid", "reason": "\ufffd"}},
		{body: `{"to":"Paid","reason":"\ud800\u0041"}`, want: map[string]string{"to": "Paid", "reason": "\ufffdA"}},
		{body: `{"to":"Paid","reason":"` + "a\xffb" + `"}`, want: map[string]string{"to": "Paid", "reason": "a\ufffdb"}},
		{body: `{"to":null,"reason":"r"}`, want: map[string]string{"reason": "r"}},
		{body: ` {"to" : "Paid" , "reason" : "" } ` + "\n", want: map[string]string{"to": "Paid", "reason": ""}},
		{body: `{"To":"Paid"}`, field: "To", detail: `To: unknown member (allowed: "reason", "to")`},
		{body: `{"":1}`, field: "", detail: `: unknown member`},
		{body: `{"to":"Paid","to":"Paid"}`, field: "to", detail: "to: member appears more than once"},
		{body: `{"to":null,"to":"Paid"}`, field: "to", detail: "to: member appears more than once"},
		{body: `{"to":2}`, field: "to", detail: "to: must be a string, not number"},
		{body: `{"to":1x}`, field: "to", detail: "to: must be a string, not number"},
		{body: `{"to":false}`, field: "to", detail: "to: must be a string, not bool"},
		{body: `{"to":["Paid"]}`, field: "to", detail: "to: must be a string, not array"},
		{body: `{"to":{"a":[]}}`, field: "to", detail: "to: must be a string, not object"},
		{body: `{"to":"Paid"`, field: "body", detail: "body: truncated JSON"},
		{body: `{"to":"Pa`, field: "body", detail: "body: truncated JSON"},
		{body: `{"to":[1,]}`, field: "body", detail: `body: malformed JSON at byte 9: invalid character ']' looking for beginning of value`},
		{body: `{"to" "Paid"}`, field: "body", detail: "body: malformed JSON at byte 6: expected colon after object key"},
		{body: `{"to":tru}`, field: "body", detail: `body: malformed JSON at byte 9: invalid character '}' in literal true (expecting 'e')`},
		{body: `{"to":"a` + "\n" + `"}`, field: "body", detail: `body: malformed JSON at byte 8: invalid character '\n' in string literal`},
		{body: `{"to":"\x"}`, field: "body", detail: `body: malformed JSON at byte 8: invalid character 'x' in string escape code`},
		{body: `{"to":"Paid"}x`, field: "body", detail: "body: unexpected data after the JSON object"},
		{body: `[{"to":"Paid"}]`, field: "body", detail: "body: must be a JSON object"},
		{body: `to=Paid`, field: "body", detail: "body: malformed JSON at byte 1: invalid character 'o' in literal true (expecting 'r')"},
		{body: `{"to":` + strings.Repeat("[", jsonNestingDepthMax+1), field: "body", detail: "body: malformed JSON at byte 10006: invalid character '[' exceeded max depth"},
	}
	for _, tt := range tests {
		got := decodeWith(tt.body, []string{fieldTo, fieldReason})
		if tt.field == "" && tt.detail == "" {
			require.False(t, got.failed, "body %q: %s", tt.body, got.detail)
			assert.Equal(t, tt.want, got.values, "body %q", tt.body)
			continue
		}
		require.True(t, got.failed, "body %q", tt.body)
		assert.Equal(t, tt.field, got.field, "body %q", tt.body)
		assert.True(t, strings.HasPrefix(got.detail, tt.detail), "body %q: detail %q, want %q", tt.body, got.detail, tt.detail)
	}
}

// TestDecodeObjectKeepsNothing: a value without escapes is read in place,
// and optional copies it out of the body, which Fiber reuses.
func TestDecodeObjectKeepsNothing(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"order-1"}`)
	members := []bodyMember{{name: fieldID}, {name: order.FieldPaymentTimeout}}
	require.NoError(t, decodeObject(body, members))
	id := members[0].optional()
	copy(body, strings.Repeat("x", len(body)))
	assert.Equal(t, optString{value: "order-1", ok: true}, id)
}

func TestDecodeObjectAllocations(t *testing.T) {
	body := []byte(`{"to":"Paid","reason":"card accepted"}`)
	allocs := testing.AllocsPerRun(100, func() {
		members := [...]bodyMember{{name: fieldTo}, {name: fieldReason}}
		if err := decodeObject(body, members[:]); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs, "a body without escapes is read in place")
}

// FuzzDecodeObject compares decodeObject with the encoding/json token walk
// it replaced, on every body the fuzzer makes.
func FuzzDecodeObject(f *testing.F) {
	for _, body := range decodeCases {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		requireSameAsOracle(t, body)
	})
}
