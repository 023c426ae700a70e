package main

import (
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// orderLine is the readable form of an order: `ID  STATE  vN  TIME`.
var orderLine = regexp.MustCompile(`^(\S+)  (\S+)  v(\d+)  (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\n$`)

func TestLifecycleReadable(t *testing.T) {
	s := startServer(t)

	out := s.must(t, "create", "--id", "o-1")
	require.Regexp(t, orderLine, out)
	assert.True(t, strings.HasPrefix(out, "o-1  Created  v1  "), out)

	// Flags after the positional arguments, a lower-case state, and a
	// bare version in --if-match are all fine.
	out = s.must(t, "transition", "o-1", "paid", "--if-match", "1")
	assert.True(t, strings.HasPrefix(out, "o-1  Paid  v2  "), out)

	out = s.must(t, "transition", "--reason", "DHL 00340434", "o-1", "Shipped")
	assert.True(t, strings.HasPrefix(out, "o-1  Shipped  v3  "), out)

	out = s.must(t, "get", "o-1")
	assert.True(t, strings.HasPrefix(out, "o-1  Shipped  v3  "), out)

	out = s.must(t, "history", "o-1")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 4, out)
	assert.Regexp(t, `^VERSION\s+AT\s+FROM\s+TO\s+BY\s+REASON$`, lines[0])
	assert.Regexp(t, `^1\s+\S+Z\s+-\s+Created\s+anonymous$`, lines[1])
	assert.Regexp(t, `^2\s+\S+Z\s+Created\s+Paid\s+anonymous$`, lines[2])
	assert.Regexp(t, `^3\s+\S+Z\s+Paid\s+Shipped\s+anonymous\s+DHL 00340434$`, lines[3])
}

func TestLifecycleJSON(t *testing.T) {
	s := startServer(t)

	// A create without --id: the server chooses the ID.
	var created orderView
	require.NoError(t, json.Unmarshal([]byte(s.must(t, "--json", "create")), &created))
	require.NotEmpty(t, created.ID)
	assert.Equal(t, "Created", created.State)
	assert.Equal(t, uint64(1), created.Version)
	out := s.must(t, "create")
	require.Regexp(t, orderLine, out)
	assert.NotContains(t, out, created.ID, "each create makes a new order")

	var paid orderView
	require.NoError(t, json.Unmarshal([]byte(s.must(t, "transition", created.ID, "Paid", "--json")), &paid))
	assert.Equal(t, orderView{ID: created.ID, State: "Paid", Version: 2, CreatedAt: created.CreatedAt, UpdatedAt: paid.UpdatedAt}, paid)

	var got orderView
	require.NoError(t, json.Unmarshal([]byte(s.must(t, "get", created.ID, "--json")), &got))
	assert.Equal(t, paid, got)

	var h historyView
	require.NoError(t, json.Unmarshal([]byte(s.must(t, "history", "--json", created.ID)), &h))
	require.Len(t, h.Transitions, 2)
	assert.Nil(t, h.Transitions[0].From)
	assert.Equal(t, "Created", *h.Transitions[1].From)
	assert.Equal(t, "Paid", h.Transitions[1].To)
	assert.Equal(t, uint64(2), h.Transitions[1].Version)
	assert.NotEmpty(t, h.Transitions[1].EventID)
}

func TestRejectedTransition(t *testing.T) {
	s := startServer(t)
	s.must(t, "create", "--id", "o-1")
	s.must(t, "transition", "o-1", "Paid")

	r := s.ctl(t, "transition", "o-1", "Delivered")
	assert.Equal(t, exitRefused, r.code)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, "Invalid transition: cannot move from Paid to Delivered")
	assert.Contains(t, r.stderr, "current state: Paid; allowed next: Shipped, Cancelled")
	assert.Contains(t, r.stderr, "request id: ")

	// From a terminal state nothing is allowed.
	s.must(t, "transition", "o-1", "Cancelled")
	r = s.ctl(t, "transition", "o-1", "Paid")
	assert.Equal(t, exitRefused, r.code)
	assert.Contains(t, r.stderr, "allowed next: none (a terminal state)")

	// With --json the problem document is on stdout for scripts.
	r = s.ctl(t, "transition", "o-1", "Paid", "--json")
	assert.Equal(t, exitRefused, r.code)
	var p problem
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &p), r.stdout)
	assert.Equal(t, "urn:orderd:problem:invalid-transition", p.Type)
	assert.Equal(t, 409, p.Status)
	assert.Equal(t, "Cancelled", p.CurrentState)
	assert.Empty(t, p.Allowed)
	assert.Contains(t, r.stderr, "Invalid transition")

	// Creating an existing order is refused too.
	r = s.ctl(t, "create", "--id", "o-1")
	assert.Equal(t, exitRefused, r.code)
	assert.Contains(t, r.stderr, "Order exists")
}

func TestIfMatch(t *testing.T) {
	s := startServer(t)
	s.must(t, "create", "--id", "o-1")
	s.must(t, "transition", "o-1", "Paid", "--if-match", `"1"`)

	// A stale version is refused before the table is looked at.
	r := s.ctl(t, "transition", "o-1", "Shipped", "--if-match", "1")
	assert.Equal(t, exitRefused, r.code)
	assert.Contains(t, r.stderr, "Version mismatch")
	assert.Contains(t, r.stderr, "current version: 2")
	r = s.ctl(t, "transition", "o-1", "Shipped", "--if-match", "1", "--json")
	var p problem
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &p), r.stdout)
	require.NotNil(t, p.CurrentVersion)
	assert.Equal(t, uint64(2), *p.CurrentVersion)

	assert.True(t, strings.HasPrefix(s.must(t, "transition", "o-1", "Shipped", "--if-match", "*"), "o-1  Shipped  v3"))
	assert.True(t, strings.HasPrefix(s.must(t, "transition", "o-1", "Delivered", "--if-match", "3"), "o-1  Delivered  v4"))
	assert.True(t, strings.HasPrefix(s.must(t, "get", "o-1"), "o-1  Delivered  v4"))
}

func TestIdempotencyKey(t *testing.T) {
	s := startServer(t)
	first := s.must(t, "create", "--idempotency-key", "create-1", "--json")
	again := s.must(t, "create", "--idempotency-key", "create-1", "--json")
	assert.JSONEq(t, first, again, "a retried create answers with the order the first attempt made")
	var o orderView
	require.NoError(t, json.Unmarshal([]byte(first), &o))

	paid := s.must(t, "transition", o.ID, "Paid", "--idempotency-key", "pay-1")
	assert.Equal(t, paid, s.must(t, "transition", o.ID, "Paid", "--idempotency-key", "pay-1"))
	assert.True(t, strings.HasPrefix(s.must(t, "get", o.ID), o.ID+"  Paid  v2"), "the retry appended nothing")

	r := s.ctl(t, "transition", o.ID, "Cancelled", "--idempotency-key", "pay-1")
	assert.Equal(t, exitRefused, r.code)
	assert.Contains(t, r.stderr, "Idempotency key reused")
}

func TestNotFound(t *testing.T) {
	s := startServer(t)
	for _, args := range [][]string{
		{"get", "nope"},
		{"history", "nope"},
		{"transition", "nope", "Paid"},
	} {
		r := s.ctl(t, args...)
		assert.Equal(t, exitNotFound, r.code, "%q: %s", args, r.stderr)
		assert.Contains(t, r.stderr, "Order not found", "%q", args)
		assert.Empty(t, r.stdout, "%q", args)
	}
}

func TestMachine(t *testing.T) {
	s := startServer(t)
	text := s.must(t, "machine")
	assert.Regexp(t, `(?m)^Created\s+-> Paid, Cancelled  \(initial\)$`, text)
	assert.Regexp(t, `(?m)^Shipped\s+-> Delivered$`, text)
	assert.Regexp(t, `(?m)^Returned\s+\(terminal\)$`, text)

	assert.True(t, strings.HasPrefix(s.must(t, "machine", "--format", "mermaid"), "stateDiagram-v2\n"))
	assert.Contains(t, s.must(t, "machine", "--format", "mermaid"), "Created --> Paid")
	assert.True(t, strings.HasPrefix(s.must(t, "machine", "--format", "dot"), "digraph"))

	for _, args := range [][]string{{"machine", "--format", "json"}, {"machine", "--json"}} {
		var m machineView
		require.NoError(t, json.Unmarshal([]byte(s.must(t, args...)), &m), "%q", args)
		assert.Equal(t, []string{"Created", "Paid", "Shipped", "Delivered", "Cancelled", "Returned"}, m.States)
		assert.Equal(t, "Created", m.Initial)
		assert.Equal(t, []string{"Shipped", "Cancelled"}, m.Transitions["Paid"])
	}
}

func TestUsageErrors(t *testing.T) {
	// Nothing listens here: a usage error must not even try to connect
	// (which would be exit 3).
	env := map[string]string{envURL: "http://" + closedAddr(t)}
	tests := []struct {
		args   []string
		stderr string
	}{
		{nil, "no command given"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"--bogus", "get", "x"}, "flag provided but not defined: -bogus"},
		{[]string{"get"}, "want 1 argument(s), got 0"},
		{[]string{"get", "a", "b"}, "want 1 argument(s), got 2"},
		{[]string{"get", "a/b"}, "ID: "},
		{[]string{"transition", "o-1"}, "want 2 argument(s), got 1"},
		{[]string{"transition", "o-1", "Lost"}, `"Lost" is not a state (Created, Paid, Shipped, Delivered, Cancelled, Returned)`},
		{[]string{"transition", "o-1", "Paid", "--if-match", "latest"}, `--if-match "latest": want a version`},
		{[]string{"transition", "o-1", "Paid", "--if-match", "0"}, `--if-match "0"`},
		{[]string{"transition", "o-1", "Paid", "--idempotency-key", "has space"}, "only visible ASCII"},
		{[]string{"transition", "o-1", "Paid", "--reason", strings.Repeat("x", 1025)}, "--reason is 1025 bytes"},
		{[]string{"transition", "o-1", "Paid", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"create", "extra"}, "want 0 argument(s), got 1"},
		{[]string{"create", "--id", strings.Repeat("x", 129)}, "--id: "},
		{[]string{"create", "--item", "mug:2"}, "want SKU:QUANTITY:UNIT_PRICE"},
		{[]string{"create", "--item", "mug:two:5"}, "is not an integer"},
		{[]string{"create", "--item", "mug:2:5"}, "--currency: currency: required with items"},
		{[]string{"create", "--currency", "EUR"}, "--item: items: required with currency"},
		{[]string{"create", "--currency", "EUR", "--item", "a:1:5", "--item", "b:0:5"}, "--item: items[1].quantity"},
		{[]string{"create", "--currency", "eur", "--item", "a:1:5"}, "--currency: currency"},
		{[]string{"create", "--customer", "a b"}, "--customer: customer_id"},
		{[]string{"create", "--meta", "novalue"}, "want KEY=VALUE"},
		{[]string{"transition", "o-1", "Shipped", "--meta", "a b=c"}, "--meta: metadata"},
		{[]string{"machine", "--format", "svg"}, `--format "svg"`},
		{[]string{"get", "o-1", "--url", "ftp://example.com"}, "want an http:// or https:// URL"},
		{[]string{"get", "o-1", "--url", "http://"}, "no host"},
		{[]string{"get", "o-1", "--timeout", "0s"}, "--timeout 0s"},
		{[]string{"get", "o-1", "--timeout", "soon"}, "invalid value"},
		{[]string{"tail"}, "--brokers is required"},
		{[]string{"tail", "--brokers", "127.0.0.1:1", "--group", "g", "--from-beginning"}, "exclude each other"},
		{[]string{"tail", "--brokers", "127.0.0.1:1", "--order", "a b"}, "--order: "},
		{[]string{"tail", "--brokers", "127.0.0.1:1", "extra"}, "want 0 argument(s), got 1"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := ctl(t, env, tt.args...)
			assert.Equal(t, exitUsage, r.code, "stderr: %s", r.stderr)
			assert.Contains(t, r.stderr, tt.stderr)
			assert.Contains(t, r.stderr, "usage: orderctl")
			assert.Empty(t, r.stdout)
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		r := ctl(t, nil, args...)
		assert.Equal(t, exitOK, r.code, "%q", args)
		assert.Contains(t, r.stdout, "Exit codes:")
		assert.Contains(t, r.stdout, "5  outcome unknown")
		assert.Contains(t, r.stdout, "ORDERD_TOKEN")
		assert.Empty(t, r.stderr)
	}
	r := ctl(t, nil, "transition", "-h")
	assert.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stdout, "orderctl transition ID STATE")
	assert.Contains(t, r.stdout, "-if-match")
	r = ctl(t, nil, "tail", "--help")
	assert.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stdout, "-until-end")
}

func TestServerDown(t *testing.T) {
	url := "http://" + closedAddr(t)
	for _, args := range [][]string{
		{"get", "o-1"},
		{"create", "--id", "o-1"}, // refused before anything was sent: nothing applied
		{"transition", "o-1", "Paid"},
		{"machine"},
	} {
		r := ctl(t, nil, append(args, "--url", url)...)
		assert.Equal(t, exitUnavailable, r.code, "%q: %s", args, r.stderr)
		assert.Contains(t, r.stderr, "cannot reach orderd at "+url)
		assert.Contains(t, r.stderr, "connection refused")
	}

	// The URL also comes from ORDERD_URL, and --url wins over it.
	r := ctl(t, map[string]string{envURL: url}, "get", "o-1")
	assert.Equal(t, exitUnavailable, r.code)
	assert.Contains(t, r.stderr, url)
	s := startServer(t)
	r = ctl(t, map[string]string{envURL: url}, "machine", "--url", s.url)
	assert.Equal(t, exitOK, r.code, r.stderr)
}

// TestNoAnswer: a server that accepts the connection and never answers. A
// write's outcome is then unknown (exit 5, with the key to retry with); a
// read is just unavailable (exit 3).
func TestNoAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-accepting
		for _, c := range conns {
			c.Close()
		}
	})
	env := map[string]string{envURL: "http://" + ln.Addr().String()}

	start := time.Now()
	r := ctl(t, env, "transition", "o-1", "Paid", "--timeout", "300ms", "--idempotency-key", "k-123")
	assert.Equal(t, exitOutcomeUnknown, r.code, r.stderr)
	assert.Contains(t, r.stderr, "may or may not have been applied")
	assert.Contains(t, r.stderr, "retry with --idempotency-key k-123")
	assert.Less(t, time.Since(start), 300*time.Millisecond+roomySlack, "--timeout bounds the request")

	r = ctl(t, env, "create", "--timeout", "300ms")
	assert.Equal(t, exitOutcomeUnknown, r.code, r.stderr)
	assert.Regexp(t, `retry with --idempotency-key [A-Z2-7]{26} `, r.stderr, "a generated key is printed")

	r = ctl(t, env, "get", "o-1", "--timeout", "300ms")
	assert.Equal(t, exitUnavailable, r.code, r.stderr)
	assert.Contains(t, r.stderr, "no answer from")
}

func TestAPIToken(t *testing.T) {
	const token = "secret-token-0123456789abcdef"
	s := startServer(t, "ORDERD_API_KEYS=ci="+token)

	r := s.ctl(t, "create", "--id", "o-1")
	assert.Equal(t, exitRefused, r.code)
	assert.Contains(t, r.stderr, "Unauthorized")
	assert.Contains(t, r.stderr, "set ORDERD_TOKEN")

	env := map[string]string{envURL: s.url, envToken: token}
	for _, args := range [][]string{
		{"create", "--id", "o-1"},
		{"transition", "o-1", "Paid"},
		{"get", "o-1", "--json"},
		{"history", "o-1"},
	} {
		r := ctl(t, env, args...)
		assert.Equal(t, exitOK, r.code, "%q: %s", args, r.stderr)
		assert.NotContains(t, r.stdout+r.stderr, token, "the token is never printed")
	}
	assert.Contains(t, ctl(t, env, "history", "o-1").stdout, " ci")

	r = ctl(t, map[string]string{envURL: s.url, envToken: "wrong-token-0123456789abcdef"}, "get", "o-1")
	assert.Equal(t, exitRefused, r.code)
	assert.NotContains(t, r.stdout+r.stderr, "wrong-token")
}

// Items, customer, currency and metadata go from flags to the server, and
// back with --json.
func TestCreateWithContents(t *testing.T) {
	s := startServer(t)
	out := s.must(t, "create", "--id", "basket", "--customer", "cus-42", "--currency", "EUR",
		"--item", "mug-blue:2:1250", "--item", "tea:3:499", "--meta", "channel=web")
	assert.True(t, strings.HasPrefix(out, "basket  Created  v1  "), out)
	// The readable form lists them under the order's line.
	assert.Contains(t, out, "\n  customer  cus-42\n"+
		"  item      mug-blue × 2 at 1250\n"+
		"  item      tea × 3 at 499\n"+
		"  total     3997 EUR (minor units)\n"+
		"  metadata  channel=web\n", out)
	s.must(t, "transition", "basket", "Paid")
	s.must(t, "transition", "basket", "Shipped", "--meta", "tracking_number=00340434", "--meta", "carrier=DHL")
	var o struct {
		CustomerID string            `json:"customer_id"`
		Currency   string            `json:"currency"`
		Items      []itemBody        `json:"items"`
		Total      int64             `json:"total"`
		Metadata   map[string]string `json:"metadata"`
	}
	require.NoError(t, json.Unmarshal([]byte(s.must(t, "get", "basket", "--json")), &o))
	assert.Equal(t, "cus-42", o.CustomerID)
	assert.Equal(t, "EUR", o.Currency)
	assert.Equal(t, []itemBody{{"mug-blue", 2, 1250}, {"tea", 3, 499}}, o.Items)
	assert.Equal(t, int64(3997), o.Total)
	assert.Equal(t, map[string]string{"channel": "web", "tracking_number": "00340434", "carrier": "DHL"}, o.Metadata)

	// tail shows what each record carries.
	out = s.must(t, "tail", "--brokers", s.broker, "--from-beginning", "--until-end", "--order", "basket", "--json", "--no-progress")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 3, out)
	var created, shipped tailLine
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &created))
	require.NoError(t, json.Unmarshal([]byte(lines[2]), &shipped))
	assert.Equal(t, int64(3997), *created.Total)
	assert.Equal(t, []itemBody{{"mug-blue", 2, 1250}, {"tea", 3, 499}}, created.Items)
	assert.Equal(t, map[string]string{"tracking_number": "00340434", "carrier": "DHL"}, shipped.Metadata)
}
