package http

import (
	"context"
	"errors"
	nethttp "net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

func TestCreateOrderGeneratesID(t *testing.T) {
	t.Parallel()

	for name, body := range map[string]string{"no body": "", "empty object": "{}", "null id": `{"id":null}`} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			entropy := counterEntropy()
			h := newHarness(t, &fakeService{}, Config{Now: func() time.Time { return t0 }, Entropy: entropy})

			r := h.do("POST", "/v1/orders", body, "X-Request-ID", "req-1")

			// The request ID was given, so the first generated ID is the order's.
			id := order.NewID(t0, counterEntropy()())
			require.Equal(t, nethttp.StatusCreated, r.status, "body: %s", r.body)
			assert.Equal(t, "/v1/orders/"+id, r.header.Get("Location"))
			assert.Equal(t, `"1"`, r.header.Get("ETag"))
			assert.Equal(t, "application/json", r.header.Get("Content-Type"))
			assert.JSONEq(t, `{"id":"`+id+`","state":"Created","version":1,
				"created_at":"2026-11-05T10:00:00.123456789Z","updated_at":"2026-11-05T10:00:00.123456789Z"}`, string(r.body))
			require.Equal(t, []order.Command{{
				Kind: order.CommandCreate, OrderID: id, IDGenerated: true, Principal: "anonymous", RequestID: "req-1",
			}}, h.svc.received())
		})
	}
}

func TestCreateOrderWithID(t *testing.T) {
	t.Parallel()

	h := newHarness(t, &fakeService{}, Config{})

	r := h.do("POST", "/v1/orders", `{"id":"order-1"}`, "Idempotency-Key", "key-1", "X-Request-ID", "req-1")

	require.Equal(t, nethttp.StatusCreated, r.status, "body: %s", r.body)
	assert.Equal(t, "/v1/orders/order-1", r.header.Get("Location"))
	assert.Equal(t, `"1"`, r.header.Get("Etag"))
	assert.Equal(t, "req-1", r.header.Get("X-Request-ID"))
	require.Equal(t, []order.Command{{
		Kind: order.CommandCreate, OrderID: "order-1", IdempotencyKey: "key-1", Principal: "anonymous", RequestID: "req-1",
	}}, h.svc.received())
}

// TestRetriedCreateIsAnsweredWithItsOrder: a retried create without an ID
// gets a new generated ID, and the service answers with the order its first
// attempt made; that order, not the new ID, is what the client is told.
func TestRetriedCreateIsAnsweredWithItsOrder(t *testing.T) {
	t.Parallel()

	first := order.Order{ID: "first-attempt", State: order.Created, Version: 1, CreatedAt: t0, UpdatedAt: t0}
	svc := &fakeService{ExecuteFn: func(_ context.Context, cmd order.Command) (order.Order, error) {
		return first, nil
	}}
	h := newHarness(t, svc, Config{})

	r := h.do("POST", "/v1/orders", "", "Idempotency-Key", "create-1")
	require.Equal(t, nethttp.StatusCreated, r.status, "body: %s", r.body)
	assert.Equal(t, "/v1/orders/first-attempt", r.header.Get("Location"))
	assert.Equal(t, `"1"`, r.header.Get("ETag"))
	assert.Contains(t, string(r.body), `"id":"first-attempt"`)

	// A create that named its ID must be answered with that order.
	requireProblem(t, h.do("POST", "/v1/orders", `{"id":"named"}`, "Idempotency-Key", "create-2"), 500, "internal-error")
}

func TestGetOrder(t *testing.T) {
	t.Parallel()

	paris := time.FixedZone("Paris", 3600)
	svc := &fakeService{GetFn: func(_ context.Context, id string) (order.Order, error) {
		return order.Order{ID: id, State: order.Shipped, Version: 3,
			CreatedAt: t0.In(paris), UpdatedAt: t0.Add(90 * time.Minute).In(paris)}, nil
	}}
	h := newHarness(t, svc, Config{})

	r := h.do("GET", "/v1/orders/order-1", "")

	require.Equal(t, nethttp.StatusOK, r.status, "body: %s", r.body)
	assert.Equal(t, `"3"`, r.header.Get("ETag"))
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	assert.JSONEq(t, `{"id":"order-1","state":"Shipped","version":3,
		"created_at":"2026-11-05T10:00:00.123456789Z","updated_at":"2026-11-05T11:30:00.123456789Z"}`, string(r.body))
	h.requireNothingApplied()
}

func TestHeadOrder(t *testing.T) {
	t.Parallel()

	svc := &fakeService{GetFn: func(_ context.Context, id string) (order.Order, error) {
		return order.Order{ID: id, State: order.Paid, Version: 2, CreatedAt: t0, UpdatedAt: t0}, nil
	}}
	h := newHarness(t, svc, Config{})

	r := h.do("HEAD", "/v1/orders/order-1", "")

	require.Equal(t, nethttp.StatusOK, r.status)
	assert.Equal(t, `"2"`, r.header.Get("ETag"))
	assert.Empty(t, r.body)
}

func TestTransition(t *testing.T) {
	t.Parallel()

	h := newHarness(t, &fakeService{}, Config{})

	r := h.do("POST", "/v1/orders/order-1/transitions", `{"to":"Paid","reason":"card accepted"}`,
		"If-Match", `"1"`, "Idempotency-Key", "pay-order-1", "X-Request-ID", "req-7")

	require.Equal(t, nethttp.StatusOK, r.status, "body: %s", r.body)
	assert.Equal(t, `"2"`, r.header.Get("ETag"))
	assert.Equal(t, "req-7", r.header.Get("X-Request-ID"))
	assert.JSONEq(t, `{"id":"order-1","state":"Paid","version":2,
		"created_at":"2026-11-05T10:00:00.123456789Z","updated_at":"2026-11-05T10:00:01.123456789Z"}`, string(r.body))
	require.Equal(t, []order.Command{{
		Kind: order.CommandTransition, OrderID: "order-1", To: order.Paid, ExpectedVersion: 1,
		IdempotencyKey: "pay-order-1", Principal: "anonymous", RequestID: "req-7", Reason: "card accepted",
	}}, h.svc.received())
}

func TestIfMatch(t *testing.T) {
	t.Parallel()

	tests := []struct {
		header string
		want   uint64
	}{
		{"", 0},
		{"*", 0},
		{`"1"`, 1},
		{`"42"`, 42},
		{`"18446744073709551615"`, 1<<64 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, &fakeService{}, Config{})

			r := h.do("POST", "/v1/orders/o/transitions", `{"to":"Paid"}`, "If-Match", tt.header)

			require.Equal(t, nethttp.StatusOK, r.status, "body: %s", r.body)
			cmds := h.svc.received()
			require.Len(t, cmds, 1)
			assert.Equal(t, tt.want, cmds[0].ExpectedVersion)
		})
	}
}

func TestHistory(t *testing.T) {
	t.Parallel()

	svc := &fakeService{HistoryFn: func(_ context.Context, id string) ([]order.Event, error) {
		return []order.Event{
			{EventID: "ev-1", OrderID: id, Version: 1, To: order.Created, At: t0,
				IdempotencyKey: "k1", Principal: "anonymous", RequestID: "req-1"},
			{EventID: "ev-2", OrderID: id, Version: 2, From: order.Created, To: order.Paid, At: t0.Add(time.Second),
				Principal: "anonymous", RequestID: "req-2", Reason: "card accepted"},
		}, nil
	}}
	h := newHarness(t, svc, Config{})

	r := h.do("GET", "/v1/orders/order-1/history", "")

	require.Equal(t, nethttp.StatusOK, r.status, "body: %s", r.body)
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	assert.JSONEq(t, `{"id":"order-1","transitions":[
		{"event_id":"ev-1","version":1,"from":null,"to":"Created","at":"2026-11-05T10:00:00.123456789Z",
		 "reason":"","principal":"anonymous","request_id":"req-1"},
		{"event_id":"ev-2","version":2,"from":"Created","to":"Paid","at":"2026-11-05T10:00:01.123456789Z",
		 "reason":"card accepted","principal":"anonymous","request_id":"req-2"}]}`, string(r.body))
}

func TestHistoryOfNoEventsIsNotFound(t *testing.T) {
	t.Parallel()

	svc := &fakeService{HistoryFn: func(context.Context, string) ([]order.Event, error) { return nil, nil }}
	h := newHarness(t, svc, Config{})

	requireProblem(t, h.do("GET", "/v1/orders/order-1/history", ""), nethttp.StatusNotFound, "order-not-found")
}

func TestMachine(t *testing.T) {
	t.Parallel()

	h := newHarness(t, &fakeService{}, Config{})
	wantJSON := `{"states":["Created","Paid","Shipped","Delivered","Cancelled","Returned"],
		"initial":"Created","terminal":["Cancelled","Returned"],
		"transitions":{"Created":["Paid","Cancelled"],"Paid":["Shipped","Cancelled"],"Shipped":["Delivered"],
		"Delivered":["Returned"],"Cancelled":[],"Returned":[]}}`

	for _, path := range []string{"/v1/machine", "/v1/machine?format=json"} {
		r := h.do("GET", path, "")
		require.Equal(t, nethttp.StatusOK, r.status, path)
		assert.Equal(t, "application/json", r.header.Get("Content-Type"), path)
		assert.JSONEq(t, wantJSON, string(r.body), path)
	}

	r := h.do("GET", "/v1/machine?format=mermaid", "")
	require.Equal(t, nethttp.StatusOK, r.status)
	assert.Equal(t, "text/plain; charset=utf-8", r.header.Get("Content-Type"))
	assert.Equal(t, order.Mermaid(), string(r.body))

	r = h.do("GET", "/v1/machine?format=dot", "")
	require.Equal(t, nethttp.StatusOK, r.status)
	assert.Equal(t, "text/vnd.graphviz; charset=utf-8", r.header.Get("Content-Type"))
	assert.Equal(t, order.DOT(), string(r.body))

	p := requireProblem(t, h.do("GET", "/v1/machine?format=svg", ""), nethttp.StatusBadRequest, "bad-request")
	assert.Equal(t, "format", p["field"])
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()

	var recovering atomic.Bool // read by the server's goroutines
	h := newHarness(t, &fakeService{ReadyFn: func() error {
		if recovering.Load() {
			return errors.New("replaying partition 3") // not wrapping ErrNotReady: still not-ready
		}
		return nil
	}}, Config{})

	r := h.do("GET", "/healthz", "")
	require.Equal(t, nethttp.StatusOK, r.status)
	assert.JSONEq(t, `{"status":"ok"}`, string(r.body))
	r = h.do("GET", "/readyz", "")
	require.Equal(t, nethttp.StatusOK, r.status)
	assert.JSONEq(t, `{"status":"ready"}`, string(r.body))

	recovering.Store(true)
	r = h.do("GET", "/healthz", "")
	require.Equal(t, nethttp.StatusOK, r.status)
	r = h.do("GET", "/readyz", "")
	requireProblem(t, r, nethttp.StatusServiceUnavailable, "not-ready")
	assert.Equal(t, "5", r.header.Get("Retry-After"))
}
