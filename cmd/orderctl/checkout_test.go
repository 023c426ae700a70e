package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkoutArgs are the arguments of a checkout of one SKU by cus-1 in EUR.
func checkoutArgs(item, token string, more ...string) []string {
	return append([]string{"checkout", "--customer", "cus-1", "--currency", "EUR", "--item", item, "--token", token}, more...)
}

// stepLines are the steps of a readable checkout: step and outcome.
func stepLines(out string) []string {
	var steps []string
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); strings.HasPrefix(line, "  ") && len(f) >= 2 {
			steps = append(steps, f[0]+" "+f[1])
		}
	}
	return steps
}

var (
	completedSteps   = []string{"reserve-stock succeeded", "create-order succeeded", "authorize-payment succeeded", "mark-paid succeeded"}
	compensatedSteps = []string{"reserve-stock succeeded", "create-order succeeded", "authorize-payment failed",
		"void-payment succeeded", "cancel-order succeeded", "release-stock succeeded"}
)

// TestCheckout: on a real orderd (simulated gateway): a completed
// checkout, readable and --json; a retry with the same key; a declined
// payment (compensated, exit 1); out of stock (exit 1, the SKU named);
// checkout get, and an ID nobody used (exit 4).
func TestCheckout(t *testing.T) {
	s := startServer(t)
	s.must(t, "inventory", "set", "mug", "5")

	out := s.must(t, checkoutArgs("mug:2:1250", "tok_visa", "--id", "co-ok")...)
	assert.True(t, strings.HasPrefix(out, "co-ok  completed  order co-ok  2500 EUR (minor units)\n"), out)
	assert.Equal(t, completedSteps, stepLines(out))
	assert.Regexp(t, `(?m)^  reserve-stock\s+succeeded\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  1 SKUs reserved$`, out)
	assert.Equal(t, out, s.must(t, "checkout", "get", "co-ok"), "get prints the checkout as the start did")
	assert.Equal(t, "mug  on_hand 5  reserved 2  available 3  v2\n", s.must(t, "inventory", "get", "mug"))

	var co checkoutView
	require.NoError(t, json.Unmarshal([]byte(s.must(t, append(checkoutArgs("mug:1:1250", "tok_visa"), "--json", "--idempotency-key", "k-1")...)), &co))
	assert.Equal(t, "completed", co.Status)
	assert.Equal(t, co.ID, co.OrderID)
	assert.EqualValues(t, 1250, co.Total)
	assert.Len(t, co.Steps, len(completedSteps))
	again := s.must(t, append(checkoutArgs("mug:1:1250", "tok_visa"), "--idempotency-key", "k-1")...)
	assert.True(t, strings.HasPrefix(again, co.ID+"  completed  "), "the same key is the same checkout: %s", again)
	assert.Equal(t, "mug  on_hand 5  reserved 3  available 2  v3\n", s.must(t, "inventory", "get", "mug"))

	r := s.ctl(t, checkoutArgs("mug:1:1250", "tok_decline", "--id", "co-declined")...)
	assert.Equal(t, exitRefused, r.code, "a compensated checkout bought nothing: %s", r.stderr)
	assert.True(t, strings.HasPrefix(r.stdout, "co-declined  compensated  order co-declined  "), r.stdout)
	assert.Equal(t, compensatedSteps, stepLines(r.stdout))
	r = s.ctl(t, "checkout", "get", "co-declined")
	assert.Equal(t, exitRefused, r.code, r.stderr)
	assert.Contains(t, r.stdout, "co-declined  compensated")

	r = s.ctl(t, checkoutArgs("mug:3:1250", "tok_visa", "--id", "co-big")...)
	assert.Equal(t, exitRefused, r.code, r.stderr)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, "Out of stock: checkout co-big was compensated: not enough stock of mug")
	r = s.ctl(t, append(checkoutArgs("mug:3:1250", "tok_visa", "--id", "co-big"), "--json")...)
	assert.Equal(t, exitRefused, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"out_of_stock":["mug"]`, "--json: the problem document")
	r = s.ctl(t, "checkout", "get", "co-big")
	assert.Equal(t, exitRefused, r.code, r.stderr)
	assert.Regexp(t, `(?m)^  reserve-stock\s+failed\s+\S+  out of stock: mug$`, r.stdout)
	assert.Regexp(t, `^mug  on_hand 5  reserved 3  available 2  v\d+\n$`, s.must(t, "inventory", "get", "mug"))

	r = s.ctl(t, "checkout", "get", "co-none")
	assert.Equal(t, exitNotFound, r.code, r.stderr)
	assert.Contains(t, r.stderr, "Checkout not found")
	r = s.ctl(t, checkoutArgs("mug:1:1250", "tok_visa", "--id", "co-ok")...)
	assert.Equal(t, exitRefused, r.code, "another request with a used ID: %s", r.stderr)
	assert.Contains(t, r.stderr, "Checkout exists")
}

// TestCheckoutPolled: a checkout still running at the server's request
// deadline is answered 202; orderctl reads it until it ends, or until its
// --timeout, when it says how to see it later (exit 5). The gateway never
// answers tok_timeout, so its checkout runs for the gateway's deadline.
func TestCheckoutPolled(t *testing.T) {
	const gatewayTimeout = 4 * time.Second
	s := startServerFlags(t, []string{"--request-timeout", "1s", "--payment-gateway-timeout", gatewayTimeout.String()})
	s.must(t, "inventory", "set", "mug", "5")

	r := s.ctl(t, checkoutArgs("mug:1:1250", "tok_timeout", "--id", "co-slow")...)
	assert.Equal(t, exitRefused, r.code, "voided after the gateway's deadline: %s", r.stderr)
	assert.True(t, strings.HasPrefix(r.stdout, "co-slow  compensated  "), r.stdout)
	assert.Equal(t, compensatedSteps, stepLines(r.stdout))

	// orderctl gives up at its own deadline, far before the gateway's.
	r = s.ctl(t, append(checkoutArgs("mug:1:1250", "tok_timeout", "--id", "co-later"), "--timeout", "1500ms")...)
	assert.Equal(t, exitOutcomeUnknown, r.code, r.stderr)
	assert.Contains(t, r.stdout, "co-later  running  ")
	assert.Contains(t, r.stderr, "checkout co-later is still running: see it with 'orderctl checkout get co-later'")
	require.Eventually(t, func() bool {
		return strings.HasPrefix(s.ctl(t, "checkout", "get", "co-later").stdout, "co-later  compensated  ")
	}, ctlRunLimit, 100*time.Millisecond)

	// No answer at all within --timeout (the server waits longer to
	// answer 202): the outcome is unknown, and the key finds the checkout.
	r = s.ctl(t, append(checkoutArgs("mug:1:1250", "tok_timeout"), "--timeout", "300ms", "--idempotency-key", "k-lost")...)
	assert.Equal(t, exitOutcomeUnknown, r.code, r.stderr)
	assert.Contains(t, r.stderr, "the checkout may or may not have been applied")
	assert.Contains(t, r.stderr, "retry with --idempotency-key k-lost")
	r = s.ctl(t, append(checkoutArgs("mug:1:1250", "tok_timeout"), "--idempotency-key", "k-lost")...)
	assert.Equal(t, exitRefused, r.code, r.stderr)
	assert.Regexp(t, `^co-[0-9a-f]{32}  compensated  `, r.stdout)
	assert.Regexp(t, `^mug  on_hand 5  reserved 0  available 5  v\d+\n$`, s.must(t, "inventory", "get", "mug"))
}

func TestCheckoutUsageErrors(t *testing.T) {
	env := map[string]string{envURL: "http://" + closedAddr(t)}
	for _, tt := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"checkout"}, "--customer: customer_id: required"},
		{[]string{"checkout", "--customer", "c", "--currency", "EUR", "--token", "t"}, "--item: items: required"},
		{[]string{"checkout", "--customer", "c", "--item", "mug:1:1", "--token", "t"}, "--currency: currency: required"},
		{checkoutArgs("mug:1:1", "")[:7], "--token: payment.token: required"},
		{checkoutArgs("mug:1:1", "tok visa"), "--token: payment.token: character ' '"},
		{checkoutArgs("mug:one:1", "t"), `quantity "one" is not an integer`},
		{checkoutArgs("mug:0:1", "t"), "--item: items[0].quantity"},
		{checkoutArgs("mug:1:1", "t", "--item", "mug:2:1"), `--item: items[1].sku: "mug" is already items[0]`},
		{checkoutArgs("mug:1:1", "t", "--id", "a/b"), "--id: "},
		{checkoutArgs("mug:1:1", "t", "extra"), "want 0 argument(s), got 1"},
		{[]string{"checkout", "get"}, "want 1 argument(s), got 0"},
		{[]string{"checkout", "get", "a", "b"}, "want 1 argument(s), got 2"},
		{[]string{"checkout", "get", "a/b"}, "ID: "},
		{[]string{"checkout", "get", "a", "--timeout", "0s"}, "--timeout 0s"},
	} {
		r := ctl(t, env, tt.args...)
		assert.Equal(t, exitUsage, r.code, "%q: %s", tt.args, r.stderr)
		assert.Contains(t, r.stderr, tt.stderr, "%q", tt.args)
	}
}
