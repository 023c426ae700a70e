package main

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
)

// deadlineClock is the fake clock of the payment-deadline tests: nanoseconds
// included, so that the wire format is seen to keep them.
type deadlineClock struct{ ns atomic.Int64 }

func (c *deadlineClock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *deadlineClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// deadlineStack serves real actors on j with clock, over HTTP on loopback.
func deadlineStack(t *testing.T, j *persistence.MemoryJournal, clock *deadlineClock) (*actors.System, string) {
	t.Helper()
	sys, err := actors.New(actors.Config{Journal: j, Shards: 1, ShardOf: func(string) int { return 0 },
		Now: clock.now, Logger: e2eLogger(t)})
	require.NoError(t, err)
	_, err = sys.Recover(context.Background())
	require.NoError(t, err)
	return sys, e2eServe(t, sys, sys.Close)
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// The payment deadline over a real listening server: set on create (default
// and per order, bounds are 400 naming the field), shown on GET, moved by
// POST .../payment-deadline (logged, idempotent, bounded), fired by the
// timer as a logged system:timer cancellation, then 409 for both the
// reschedule and a late pay; and a deadline that passes while the server is
// down fires after the restart.
func TestPaymentDeadlineOverHTTP(t *testing.T) {
	clock := &deadlineClock{}
	clock.ns.Store(time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC).UnixNano())
	t0 := clock.now()
	j := persistence.NewMemoryJournal()
	sys, url := deadlineStack(t, j, clock)

	o := e2eRequireStatus(t, e2eDo(t, "POST", url+"/v1/orders", `{"id":"o-1","payment_timeout":"15m"}`), http.StatusCreated)
	assert.Equal(t, rfc3339(t0.Add(15*time.Minute)), o["payment_due_at"])
	o = e2eRequireStatus(t, e2eDo(t, "POST", url+"/v1/orders", `{"id":"o-default"}`), http.StatusCreated)
	assert.Equal(t, rfc3339(t0.Add(order.PaymentTimeoutDefault)), o["payment_due_at"])
	for _, body := range []string{`{"payment_timeout":"59s"}`, `{"payment_timeout":"169h"}`, `{"payment_timeout":"soon"}`, `{"payment_timeout":15}`} {
		p := e2eRequireProblem(t, e2eDo(t, "POST", url+"/v1/orders", body), http.StatusBadRequest, "bad-request")
		assert.Equal(t, "payment_timeout", p["field"], body)
	}

	got := e2eRequireStatus(t, e2eDo(t, "GET", url+"/v1/orders/o-1", ""), http.StatusOK)
	assert.Equal(t, rfc3339(t0.Add(15*time.Minute)), got["payment_due_at"])

	deadlineURL := url + "/v1/orders/o-1/payment-deadline"
	for body, field := range map[string]string{
		`{"payment_due_at":"` + rfc3339(t0.Add(8*24*time.Hour)) + `"}`: "payment_due_at",
		`{"payment_due_at":"` + rfc3339(t0.Add(-time.Minute)) + `"}`:   "payment_due_at",
		`{"payment_due_at":"tomorrow"}`:                                "payment_due_at",
		`{"extend":"-5m"}`:                                             "extend",
		`{"extend":"168h"}`:                                            "extend",
		`{"extend":"10m","payment_due_at":"` + rfc3339(t0) + `"}`:      "body",
		`{}`: "body",
	} {
		p := e2eRequireProblem(t, e2eDo(t, "POST", deadlineURL, body), http.StatusBadRequest, "bad-request")
		assert.Equal(t, field, p["field"], body)
	}
	e2eRequireProblem(t, e2eDo(t, "POST", deadlineURL, `{"extend":"10m"}`, "If-Match", `"7"`), http.StatusPreconditionFailed, "version-mismatch")

	for range 2 { // the retry is answered from the window
		r := e2eDo(t, "POST", deadlineURL, `{"extend":"10m"}`, "Idempotency-Key", "k-extend", "If-Match", `"1"`)
		o = e2eRequireStatus(t, r, http.StatusOK)
		assert.Equal(t, `"2"`, r.header.Get("ETag"))
		assert.Equal(t, rfc3339(t0.Add(25*time.Minute)), o["payment_due_at"])
		assert.Equal(t, "Created", o["state"])
	}
	h := e2eRequireStatus(t, e2eDo(t, "GET", url+"/v1/orders/o-1/history", ""), http.StatusOK)
	steps := h["transitions"].([]any)
	require.Len(t, steps, 2)
	change := steps[1].(map[string]any)
	assert.Equal(t, "Created", change["from"])
	assert.Equal(t, "Created", change["to"])
	assert.Equal(t, rfc3339(t0.Add(25*time.Minute)), change["payment_due_at"])

	clock.advance(25 * time.Minute)
	sys.FireDueDeadlines()
	got = e2eRequireStatus(t, e2eDo(t, "GET", url+"/v1/orders/o-1", ""), http.StatusOK)
	assert.Equal(t, "Cancelled", got["state"])
	assert.NotContains(t, got, "payment_due_at", "dropped when the order leaves Created")
	h = e2eRequireStatus(t, e2eDo(t, "GET", url+"/v1/orders/o-1/history", ""), http.StatusOK)
	steps = h["transitions"].([]any)
	require.Len(t, steps, 3)
	fired := steps[2].(map[string]any)
	assert.Equal(t, "Cancelled", fired["to"])
	assert.Equal(t, actors.PrincipalTimer, fired["principal"])
	assert.Equal(t, actors.ReasonPaymentTimeout, fired["reason"])

	p := e2eRequireProblem(t, e2eDo(t, "POST", deadlineURL, `{"extend":"10m"}`), http.StatusConflict, "invalid-transition")
	assert.Equal(t, "Cancelled", p["current_state"])
	e2eRequireProblem(t, e2eDo(t, "POST", url+"/v1/orders/o-1/transitions", `{"to":"Paid"}`), http.StatusConflict, "invalid-transition")

	// o-default's deadline passes while no server runs; the next one
	// cancels it as soon as it is ready, on its own.
	sys.Close()
	clock.advance(time.Hour)
	_, url = deadlineStack(t, j, clock)
	require.Eventually(t, func() bool {
		r := e2eDo(t, "GET", url+"/v1/orders/o-default", "")
		return r.status == http.StatusOK && e2eRequireStatus(t, r, http.StatusOK)["state"] == "Cancelled"
	}, e2eTimeout, time.Millisecond)
	log := e2eMemoryLog(t, j)
	require.Len(t, log["o-default"], 2)
	assert.Equal(t, actors.PrincipalTimer, log["o-default"][1].Principal)
	assert.Equal(t, t0.Add(order.PaymentTimeoutDefault), log["o-default"][0].PaymentDueAt, "the deadline is in the creation record")
}

func TestPaymentTimeoutConfig(t *testing.T) {
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	c, err := ParseConfig(nil, env(nil), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, order.PaymentTimeoutDefault, c.PaymentTimeout)
	c, err = ParseConfig(nil, env(map[string]string{"ORDERD_PAYMENT_TIMEOUT": "45m"}), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 45*time.Minute, c.PaymentTimeout)
	c, err = ParseConfig([]string{"--payment-timeout", "2h"}, env(map[string]string{"ORDERD_PAYMENT_TIMEOUT": "45m"}), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 2*time.Hour, c.PaymentTimeout, "the flag wins")
	for _, bad := range []string{"30s", "8d", "200h"} {
		_, err = ParseConfig([]string{"--payment-timeout", bad}, env(nil), io.Discard)
		assert.Error(t, err, bad)
	}
}
