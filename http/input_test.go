package http

import (
	nethttp "net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestBadInput: every malformed request is a 400 whose problem names the
// offending field, and none reaches the actors.
func TestBadInput(t *testing.T) {
	t.Parallel()

	longID := strings.Repeat("a", 129) // order.IDLenMax + 1
	tests := []struct {
		name    string
		path    string
		body    string
		headers []string
		field   string
	}{
		// Transition bodies.
		{"empty body", "/v1/orders/o/transitions", "", nil, "to"},
		{"blank body", "/v1/orders/o/transitions", " \n", nil, "to"},
		{"empty object", "/v1/orders/o/transitions", `{}`, nil, "to"},
		{"not JSON", "/v1/orders/o/transitions", `to=Paid`, nil, "body"},
		{"truncated", "/v1/orders/o/transitions", `{"to":"Paid"`, nil, "body"},
		{"open brace", "/v1/orders/o/transitions", `{`, nil, "body"},
		{"trailing comma", "/v1/orders/o/transitions", `{"to":"Paid",}`, nil, "body"},
		{"missing colon", "/v1/orders/o/transitions", `{"to" "Paid"}`, nil, "body"},
		{"array", "/v1/orders/o/transitions", `[{"to":"Paid"}]`, nil, "body"},
		{"string", "/v1/orders/o/transitions", `"Paid"`, nil, "body"},
		{"null", "/v1/orders/o/transitions", `null`, nil, "body"},
		{"trailing object", "/v1/orders/o/transitions", `{"to":"Paid"} {}`, nil, "body"},
		{"trailing garbage", "/v1/orders/o/transitions", `{"to":"Paid"}x`, nil, "body"},
		{"lower-case state", "/v1/orders/o/transitions", `{"to":"paid"}`, nil, "to"},
		{"upper-case state", "/v1/orders/o/transitions", `{"to":"PAID"}`, nil, "to"},
		{"unknown state", "/v1/orders/o/transitions", `{"to":"Lost"}`, nil, "to"},
		{"empty state", "/v1/orders/o/transitions", `{"to":""}`, nil, "to"},
		{"null state", "/v1/orders/o/transitions", `{"to":null}`, nil, "to"},
		{"numeric state", "/v1/orders/o/transitions", `{"to":2}`, nil, "to"},
		{"array state", "/v1/orders/o/transitions", `{"to":["Paid"]}`, nil, "to"},
		{"object state", "/v1/orders/o/transitions", `{"to":{"name":"Paid"}}`, nil, "to"},
		{"unknown member", "/v1/orders/o/transitions", `{"to":"Paid","priority":1}`, nil, "priority"},
		{"mis-cased member", "/v1/orders/o/transitions", `{"To":"Paid"}`, nil, "To"},
		{"duplicate member", "/v1/orders/o/transitions", `{"to":"Paid","to":"Cancelled"}`, nil, "to"},
		{"numeric reason", "/v1/orders/o/transitions", `{"to":"Paid","reason":5}`, nil, "reason"},
		{"oversize reason", "/v1/orders/o/transitions",
			`{"to":"Paid","reason":"` + strings.Repeat("r", reasonLenMax+1) + `"}`, nil, "reason"},
		// Path IDs.
		{"oversize path id", "/v1/orders/" + longID + "/transitions", `{"to":"Paid"}`, nil, "id"},
		{"escaped space in path id", "/v1/orders/a%20b/transitions", `{"to":"Paid"}`, nil, "id"},
		{"sub-delimiter in path id", "/v1/orders/a$b/transitions", `{"to":"Paid"}`, nil, "id"},
		{"escaped slash in path id", "/v1/orders/a%2Fb/transitions", `{"to":"Paid"}`, nil, "id"},
		// Headers.
		{"unquoted If-Match", "/v1/orders/o/transitions", `{"to":"Paid"}`, []string{"If-Match", "1"}, "If-Match"},
		{"non-numeric If-Match", "/v1/orders/o/transitions", `{"to":"Paid"}`, []string{"If-Match", `"abc"`}, "If-Match"},
		{"weak If-Match", "/v1/orders/o/transitions", `{"to":"Paid"}`, []string{"If-Match", `W/"1"`}, "If-Match"},
		{"If-Match list", "/v1/orders/o/transitions", `{"to":"Paid"}`, []string{"If-Match", `"1", "2"`}, "If-Match"},
		{"If-Match zero", "/v1/orders/o/transitions", `{"to":"Paid"}`, []string{"If-Match", `"0"`}, "If-Match"},
		{"If-Match leading zero", "/v1/orders/o/transitions", `{"to":"Paid"}`, []string{"If-Match", `"01"`}, "If-Match"},
		{"If-Match negative", "/v1/orders/o/transitions", `{"to":"Paid"}`, []string{"If-Match", `"-1"`}, "If-Match"},
		{"If-Match overflow", "/v1/orders/o/transitions", `{"to":"Paid"}`,
			[]string{"If-Match", `"18446744073709551616"`}, "If-Match"},
		{"If-Match empty tag", "/v1/orders/o/transitions", `{"to":"Paid"}`, []string{"If-Match", `""`}, "If-Match"},
		{"oversize Idempotency-Key", "/v1/orders/o/transitions", `{"to":"Paid"}`,
			[]string{"Idempotency-Key", strings.Repeat("k", idempotencyKeyLenMax+1)}, "Idempotency-Key"},
		{"Idempotency-Key with a space", "/v1/orders/o/transitions", `{"to":"Paid"}`,
			[]string{"Idempotency-Key", "pay order"}, "Idempotency-Key"},
		{"non-ASCII Idempotency-Key", "/v1/orders/o/transitions", `{"to":"Paid"}`,
			[]string{"Idempotency-Key", "zahlung-ä"}, "Idempotency-Key"},
		// Create bodies.
		{"empty id", "/v1/orders", `{"id":""}`, nil, "id"},
		{"oversize id", "/v1/orders", `{"id":"` + longID + `"}`, nil, "id"},
		{"slash in id", "/v1/orders", `{"id":"a/b"}`, nil, "id"},
		{"space in id", "/v1/orders", `{"id":"a b"}`, nil, "id"},
		{"non-ASCII id", "/v1/orders", `{"id":"bestellung-ä"}`, nil, "id"},
		{"NUL in id", "/v1/orders", `{"id":"a\u0000b"}`, nil, "id"},
		{"numeric id", "/v1/orders", `{"id":42}`, nil, "id"},
		{"state on create", "/v1/orders", `{"id":"o","to":"Paid"}`, nil, "to"},
		{"mis-cased id member", "/v1/orders", `{"ID":"o"}`, nil, "ID"},
		{"create array", "/v1/orders", `[]`, nil, "body"},
		{"create malformed", "/v1/orders", `{"id":`, nil, "body"},
		{"If-Match on create", "/v1/orders", `{"id":"o"}`, []string{"If-Match", `"1"`}, "If-Match"},
		{"oversize Idempotency-Key on create", "/v1/orders", "",
			[]string{"Idempotency-Key", strings.Repeat("k", idempotencyKeyLenMax+1)}, "Idempotency-Key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, &fakeService{}, Config{})

			r := h.do("POST", tt.path, tt.body, tt.headers...)

			p := requireProblem(t, r, nethttp.StatusBadRequest, "bad-request")
			assert.Equal(t, tt.field, p["field"])
			assert.True(t, strings.HasPrefix(p["detail"].(string), tt.field+": "), "detail %q names the field", p["detail"])
			h.requireNothingApplied()
		})
	}
}

// Reads validate the path ID too.
func TestBadPathIDOnReads(t *testing.T) {
	t.Parallel()

	h := newHarness(t, &fakeService{}, Config{})
	for _, path := range []string{"/v1/orders/a%20b", "/v1/orders/" + strings.Repeat("a", 129) + "/history"} {
		p := requireProblem(t, h.do("GET", path, ""), nethttp.StatusBadRequest, "bad-request")
		assert.Equal(t, "id", p["field"], path)
	}
}

// The limits are inclusive: exactly at each bound is accepted.
func TestInputAtTheLimits(t *testing.T) {
	t.Parallel()

	h := newHarness(t, &fakeService{}, Config{})
	maxID := strings.Repeat("a", 128)

	r := h.do("POST", "/v1/orders/"+maxID+"/transitions",
		`{"to":"Paid","reason":"`+strings.Repeat("r", reasonLenMax)+`"}`,
		"Idempotency-Key", strings.Repeat("k", idempotencyKeyLenMax))
	assert.Equal(t, nethttp.StatusOK, r.status, "body: %s", r.body)

	r = h.do("POST", "/v1/orders", `{"id":"`+maxID+`"}`)
	assert.Equal(t, nethttp.StatusCreated, r.status, "body: %s", r.body)

	r = h.do("POST", "/v1/orders", `{"id":"Az09-._~"}`)
	assert.Equal(t, nethttp.StatusCreated, r.status, "body: %s", r.body)
}
