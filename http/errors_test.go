package http

import (
	"context"
	"errors"
	"fmt"
	nethttp "net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/order"
)

// TestErrorTable drives every row of the error table through a transition:
// the service fails with the error, the client sees the problem.
func TestErrorTable(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter string
		members    map[string]any
	}{
		{"not found", order.ErrOrderNotFound, 404, "order-not-found", "", nil},
		{"exists", fmt.Errorf("actor: %w", order.ErrOrderExists), 409, "order-exists", "", nil},
		{"invalid transition",
			&order.InvalidTransitionError{From: order.Shipped, To: order.Paid, Allowed: []order.State{order.Delivered}},
			409, "invalid-transition", "", map[string]any{"current_state": "Shipped", "allowed": []any{"Delivered"}}},
		{"invalid transition from a terminal state",
			&order.InvalidTransitionError{From: order.Cancelled, To: order.Paid},
			409, "invalid-transition", "", map[string]any{"current_state": "Cancelled", "allowed": []any{}}},
		{"write conflict", &order.WriteConflictError{OrderID: "o", Version: 2, Current: 2, State: order.Paid},
			409, "write-conflict", "", map[string]any{"current_version": float64(2)}},
		{"version mismatch", &order.VersionMismatchError{Expected: 1, Current: 3},
			412, "version-mismatch", "", map[string]any{"current_version": float64(3)}},
		{"idempotency key reused", fmt.Errorf("%w: key \"k\" was used for another request", order.ErrIdempotencyKeyReused),
			422, "idempotency-key-reused", "", nil},
		{"unknown state", &order.UnknownStateError{Name: "Lost"}, 400, "bad-request", "", map[string]any{"field": "to"}},
		{"invalid id", fmt.Errorf("%w: empty", order.ErrInvalidID), 400, "bad-request", "", map[string]any{"field": "id"}},
		{"journal unavailable", fmt.Errorf("broker 10.1.2.3:9092: %w", order.ErrJournalUnavailable),
			503, "journal-unavailable", "5", nil},
		{"outcome unknown", order.ErrOutcomeUnknown, 503, "outcome-unknown", "1", nil},
		{"busy", actors.ErrBusy, 503, "busy", "1", nil},
		{"busy after its deadline", fmt.Errorf("%w: %w", actors.ErrBusy, context.DeadlineExceeded), 503, "busy", "1", nil},
		{"not ready", actors.ErrNotReady, 503, "not-ready", "5", nil},
		{"partition moving", fmt.Errorf("%w: order o", actors.ErrNotOwner), 503, "not-ready", "5", map[string]any{
			"detail": "the order's partition is moving between the cluster's nodes; nothing was applied, retry shortly"}},
		{"deadline", fmt.Errorf("waiting for ack: %w", context.DeadlineExceeded), 503, "outcome-unknown", "1", nil},
		{"invalid command", fmt.Errorf("%w: wrong actor 10.1.2.3", order.ErrInvalidCommand), 500, "internal-error", "", nil},
		{"unmapped", errors.New("pool 10.1.2.3 exhausted"), 500, "internal-error", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			svc := &fakeService{ExecuteFn: func(context.Context, order.Command) (order.Order, error) {
				return order.Order{}, tt.err
			}}
			h := newHarness(t, svc, Config{})

			r := h.do("POST", "/v1/orders/order-1/transitions", `{"to":"Paid"}`)

			p := requireProblem(t, r, tt.status, tt.code)
			assert.Equal(t, tt.retryAfter, r.header.Get("Retry-After"))
			for k, v := range tt.members {
				assert.Equal(t, v, p[k], k)
			}
			assert.NotContains(t, p["detail"], "10.1.2.3", "internals leaked")
			assert.Empty(t, r.header.Get("ETag"))
		})
	}
}

func TestOutcomeUnknownSaysHowToLearnIt(t *testing.T) {
	t.Parallel()

	svc := &fakeService{ExecuteFn: func(context.Context, order.Command) (order.Order, error) {
		return order.Order{}, order.ErrOutcomeUnknown
	}}
	h := newHarness(t, svc, Config{})

	p := requireProblem(t, h.do("POST", "/v1/orders", ""), 503, "outcome-unknown")
	assert.Contains(t, p["detail"], "Idempotency-Key")
}

func TestInternalErrorIsLoggedNotShown(t *testing.T) {
	t.Parallel()

	svc := &fakeService{ExecuteFn: func(context.Context, order.Command) (order.Order, error) {
		return order.Order{}, errors.New("pool 10.1.2.3 exhausted")
	}}
	h := newHarness(t, svc, Config{})

	r := h.do("POST", "/v1/orders", "", "X-Request-ID", "req-500")

	p := requireProblem(t, r, 500, "internal-error")
	assert.NotContains(t, string(r.body), "10.1.2.3")
	assert.Equal(t, "req-500", p["request_id"])
	assert.Contains(t, h.logs.String(), "pool 10.1.2.3 exhausted")
	assert.Contains(t, h.logs.String(), "req-500")
}

func TestPanicIsInternalError(t *testing.T) {
	t.Parallel()

	svc := &fakeService{ExecuteFn: func(context.Context, order.Command) (order.Order, error) {
		panic("nil map somewhere")
	}}
	h := newHarness(t, svc, Config{})

	requireProblem(t, h.do("POST", "/v1/orders", ""), 500, "internal-error")
	assert.Contains(t, h.logs.String(), "nil map somewhere")

	r := h.do("GET", "/healthz", "") // the process survived
	assert.Equal(t, nethttp.StatusOK, r.status)
}

func TestServiceAnsweringWithoutAnOrderIsInternalError(t *testing.T) {
	t.Parallel()

	svc := &fakeService{ExecuteFn: func(context.Context, order.Command) (order.Order, error) {
		return order.Order{}, nil
	}}
	h := newHarness(t, svc, Config{})

	requireProblem(t, h.do("POST", "/v1/orders", ""), 500, "internal-error")
}

// The service gets a deadline; a command that outlives it may still be
// recorded, so the client is told the outcome is unknown.
func TestCommandDeadlineIsOutcomeUnknown(t *testing.T) {
	t.Parallel()

	svc := &fakeService{ExecuteFn: func(ctx context.Context, _ order.Command) (order.Order, error) {
		<-ctx.Done()
		return order.Order{}, ctx.Err()
	}}
	h := newHarness(t, svc, Config{RequestTimeout: 1}) // 1 ns: already past when the service looks

	r := h.do("POST", "/v1/orders/order-1/transitions", `{"to":"Paid"}`)

	requireProblem(t, r, 503, "outcome-unknown")
	assert.Equal(t, "1", r.header.Get("Retry-After"))
}

// A read that outlives its deadline changed nothing: busy, retry.
func TestReadDeadlineIsBusy(t *testing.T) {
	t.Parallel()

	svc := &fakeService{
		GetFn: func(ctx context.Context, _ string) (order.Order, error) {
			<-ctx.Done()
			return order.Order{}, ctx.Err()
		},
		HistoryFn: func(ctx context.Context, _ string) ([]order.Event, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
	}
	h := newHarness(t, svc, Config{RequestTimeout: 1})

	for _, path := range []string{"/v1/orders/order-1", "/v1/orders/order-1/history"} {
		r := h.do("GET", path, "")
		requireProblem(t, r, 503, "busy")
		assert.Equal(t, "1", r.header.Get("Retry-After"), path)
	}
}

func TestReadErrorsUseTheTable(t *testing.T) {
	t.Parallel()

	svc := &fakeService{
		GetFn:     func(context.Context, string) (order.Order, error) { return order.Order{}, order.ErrJournalUnavailable },
		HistoryFn: func(context.Context, string) ([]order.Event, error) { return nil, order.ErrOrderNotFound },
	}
	h := newHarness(t, svc, Config{})

	requireProblem(t, h.do("GET", "/v1/orders/order-1", ""), 503, "journal-unavailable")
	requireProblem(t, h.do("GET", "/v1/orders/order-1/history", ""), 404, "order-not-found")
}

func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()

	tests := []struct {
		method, path, allow string
	}{
		{"DELETE", "/v1/orders", "POST, GET, HEAD"},
		{"PUT", "/v1/orders", "POST, GET, HEAD"},
		{"PUT", "/v1/orders/order-1", "GET, HEAD"},
		{"POST", "/v1/orders/order-1", "GET, HEAD"},
		{"GET", "/v1/orders/order-1/transitions", "POST"},
		{"PATCH", "/v1/orders/order-1/history", "GET, HEAD"},
		{"POST", "/v1/machine", "GET, HEAD"},
		{"DELETE", "/healthz", "GET, HEAD"},
		{"POST", "/readyz", "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, &fakeService{}, Config{})

			r := h.do(tt.method, tt.path, "")

			requireProblem(t, r, nethttp.StatusMethodNotAllowed, "method-not-allowed")
			assert.Equal(t, tt.allow, r.header.Get("Allow"))
			h.requireNothingApplied()
		})
	}
}

func TestUnknownRoute(t *testing.T) {
	t.Parallel()

	h := newHarness(t, &fakeService{}, Config{})
	for _, path := range []string{"/", "/v2/orders", "/v1/orders/a/b/c", "/V1/ORDERS", "/v1/orders//transitions"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			requireProblem(t, h.do("POST", path, `{}`), nethttp.StatusNotFound, "not-found")
		})
	}
	h.requireNothingApplied()
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()

	h := newHarness(t, &fakeService{}, Config{})
	body := `{"to":"Paid"}`

	// Exactly at the limit (padded with JSON whitespace) is accepted...
	r := h.do("POST", "/v1/orders/order-1/transitions", body+strings.Repeat(" ", DefaultBodyLimit-len(body)))
	require.Equal(t, nethttp.StatusOK, r.status, "body: %s", r.body)

	// ...one byte more is refused from Content-Length alone, before the
	// body is sent (so the test sends none: see serveOnPipe for why).
	r = h.raw(fmt.Sprintf("POST /v1/orders/order-2/transitions HTTP/1.1\r\nHost: orderd\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\nX-Request-ID: req-big\r\n\r\n", DefaultBodyLimit+1))
	p := requireProblem(t, r, nethttp.StatusRequestEntityTooLarge, "payload-too-large")
	assert.Contains(t, p["detail"], strconv.Itoa(DefaultBodyLimit))
	assert.Equal(t, "req-big", r.header.Get("X-Request-ID"))
	require.Len(t, h.svc.received(), 1, "the oversize request reached Execute")
}

// A chunked body has no Content-Length to check up front; it is cut off
// once it passes the limit.
func TestBodyLimitChunked(t *testing.T) {
	t.Parallel()
	svc := &fakeService{}
	srv := New(svc, Config{})
	chunk := strings.Repeat(" ", 4096)
	var req strings.Builder
	req.WriteString("POST /v1/orders/order-1/transitions HTTP/1.1\r\nHost: orderd\r\n" +
		"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
	for range DefaultBodyLimit/len(chunk) + 1 {
		fmt.Fprintf(&req, "%x\r\n%s\r\n", len(chunk), chunk)
	}
	req.WriteString("0\r\n\r\n")

	requireProblem(t, serveOnPipe(t, srv, req.String()), nethttp.StatusRequestEntityTooLarge, "payload-too-large")
	require.Empty(t, svc.received())
}

func TestUnsupportedMediaType(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		path    string
		headers []string
	}{
		{"text/plain", "/v1/orders/order-1/transitions", []string{"Content-Type", "text/plain"}},
		{"no Content-Type", "/v1/orders/order-1/transitions", []string{"Content-Type", ""}},
		{"form", "/v1/orders", []string{"Content-Type", "application/x-www-form-urlencoded"}},
		{"latin1", "/v1/orders", []string{"Content-Type", "application/json; charset=iso-8859-1"}},
		{"other parameter", "/v1/orders", []string{"Content-Type", "application/json; version=2"}},
		{"malformed", "/v1/orders", []string{"Content-Type", "application/json;;"}},
		{"gzip", "/v1/orders/order-1/transitions", []string{"Content-Encoding", "gzip"}},
		{"gzip on empty create", "/v1/orders", []string{"Content-Encoding", "gzip"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, &fakeService{}, Config{})
			body := `{"to":"Paid"}`
			if tt.path == "/v1/orders" {
				body = `{"id":"order-1"}`
			}
			if tt.name == "gzip on empty create" {
				body = ""
			}

			requireProblem(t, h.do("POST", tt.path, body, tt.headers...), nethttp.StatusUnsupportedMediaType,
				"unsupported-media-type")
			h.requireNothingApplied()
		})
	}
}

func TestAcceptedMediaTypes(t *testing.T) {
	t.Parallel()

	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON; Charset=UTF-8"} {
		t.Run(ct, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, &fakeService{}, Config{})

			r := h.do("POST", "/v1/orders/order-1/transitions", `{"to":"Paid"}`, "Content-Type", ct,
				"Content-Encoding", "identity")

			require.Equal(t, nethttp.StatusOK, r.status, "body: %s", r.body)
		})
	}
}

// An empty create needs no Content-Type: there is nothing to interpret.
func TestEmptyCreateNeedsNoContentType(t *testing.T) {
	t.Parallel()

	h := newHarness(t, &fakeService{}, Config{})

	r := h.do("POST", "/v1/orders", "", "Content-Type", "text/plain")

	require.Equal(t, nethttp.StatusCreated, r.status, "body: %s", r.body)
}

func TestRequestID(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name, sent string
		echoed     bool
	}{
		{"echoed", "req-abc.123", true},
		{"uuid", "0b8f4e8a-6c1d-4f0e-9a3b-2f7d9c1e5a40", true},
		{"at the limit", strings.Repeat("r", requestIDLenMax), true},
		{"absent", "", false},
		{"too long", strings.Repeat("r", requestIDLenMax+1), false},
		{"space", "req 1", false},
		{"not ASCII", "zäpfchen", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, &fakeService{}, Config{})

			r := h.do("POST", "/v1/orders", "", "X-Request-ID", tt.sent)

			require.Equal(t, nethttp.StatusCreated, r.status)
			got := r.header.Get("X-Request-ID")
			cmds := h.svc.received()
			require.Len(t, cmds, 1)
			assert.Equal(t, got, cmds[0].RequestID)
			if tt.echoed {
				assert.Equal(t, tt.sent, got)
			} else {
				assert.NoError(t, order.ValidateID(got))
				assert.Len(t, got, 26, "a generated ULID")
			}
		})
	}
}

func TestRequestIDOnErrors(t *testing.T) {
	t.Parallel()

	h := newHarness(t, &fakeService{}, Config{})

	for _, path := range []string{"/nowhere", "/v1/orders/order-1"} {
		r := h.do("GET", path, "", "X-Request-ID", "req-err")
		assert.Equal(t, "req-err", r.header.Get("X-Request-ID"), path)
	}
}

// While the service recovers, order routes answer 503 not-ready and nothing
// reaches the actors; the machine and liveness stay up.
func TestReadinessGate(t *testing.T) {
	t.Parallel()

	var recovered atomic.Bool
	svc := &fakeService{
		ReadyFn: func() error {
			if recovered.Load() {
				return nil
			}
			return fmt.Errorf("%w: replayed 10 of 20 records", actors.ErrNotReady)
		},
		GetFn: func(_ context.Context, id string) (order.Order, error) {
			return order.Order{ID: id, State: order.Created, Version: 1, CreatedAt: t0, UpdatedAt: t0}, nil
		},
	}
	h := newHarness(t, svc, Config{})

	gated := []struct{ method, path, body string }{
		{"POST", "/v1/orders", `{"id":"order-1"}`},
		{"GET", "/v1/orders/order-1", ""},
		{"POST", "/v1/orders/order-1/transitions", `{"to":"Paid"}`},
		{"GET", "/v1/orders/order-1/history", ""},
	}
	for _, g := range gated {
		r := h.do(g.method, g.path, g.body)
		p := requireProblem(t, r, nethttp.StatusServiceUnavailable, "not-ready")
		assert.Equal(t, "5", r.header.Get("Retry-After"), g.path)
		assert.NotContains(t, p["detail"], "replayed", "internal reason leaked")
	}
	for _, path := range []string{"/healthz", "/v1/machine"} {
		assert.Equal(t, nethttp.StatusOK, h.do("GET", path, "").status, path)
	}
	h.requireNothingApplied()

	recovered.Store(true)
	assert.Equal(t, nethttp.StatusOK, h.do("GET", "/v1/orders/order-1", "").status)
	assert.Equal(t, nethttp.StatusCreated, h.do("POST", "/v1/orders", `{"id":"order-1"}`).status)
}

// Headers beyond fasthttp's read buffer are refused before routing, still
// as a problem document.
func TestHeadersTooLarge(t *testing.T) {
	t.Parallel()
	svc := &fakeService{}
	srv := New(svc, Config{})

	r := serveOnPipe(t, srv, "POST /v1/orders HTTP/1.1\r\nHost: orderd\r\nX-Padding: "+
		strings.Repeat("p", 8<<10)+"\r\n\r\n")

	requireProblem(t, r, nethttp.StatusRequestHeaderFieldsTooLarge, "request-header-fields-too-large")
	require.Empty(t, svc.received())
}
