package http

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/order"
)

// benchService is the cheapest Service there is: it answers every command
// as applied and every read with one order, recording nothing, so that the
// benchmarks below measure the HTTP layer alone (fakeService keeps every
// command it receives, which would grow without bound under b.N).
type benchService struct {
	executeErr error
}

var _ actors.Service = (*benchService)(nil)

func (s *benchService) Execute(_ context.Context, cmd order.Command) (order.Order, error) {
	if s.executeErr != nil {
		return order.Order{}, s.executeErr
	}
	if cmd.Kind == order.CommandCreate {
		return order.Order{ID: cmd.OrderID, State: order.Created, Version: 1, CreatedAt: t0, UpdatedAt: t0}, nil
	}
	return order.Order{ID: cmd.OrderID, State: cmd.To, Version: 2, CreatedAt: t0, UpdatedAt: t0.Add(time.Second)}, nil
}

func (s *benchService) Get(_ context.Context, id string) (order.Order, error) {
	return order.Order{ID: id, State: order.Paid, Version: 2, CreatedAt: t0, UpdatedAt: t0.Add(time.Second)}, nil
}

func (s *benchService) History(context.Context, string) ([]order.Event, error) {
	return nil, order.ErrOrderNotFound
}

func (s *benchService) List(context.Context, order.ListQuery) (order.ListPage, error) {
	return order.ListPage{}, nil
}

func (s *benchService) Ready() error { return nil }

// benchRequest is one request as bench/'s load generator sends it: no
// X-Request-ID, no Idempotency-Key, no If-Match unless headers say so.
type benchRequest struct {
	method, uri, body string
	headers           []string // name, value pairs
}

// benchmarkHandler runs req through the server's whole middleware chain and
// router by calling the fasthttp handler Serve would call, on a RequestCtx
// reused the way fasthttp's connection loop reuses it: the response and the
// user values (Fiber's Locals) are reset between requests, the parsed
// request is kept (parsing it is fasthttp's cost, not ours).
func benchmarkHandler(b *testing.B, svc actors.Service, req benchRequest, wantStatus int) {
	// No rate limit: at b.N's pace the default one would soon answer 429.
	srv := New(svc, Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RatePerPrincipal: -1})
	handler := srv.App().Handler()

	var r fasthttp.Request
	r.Header.SetMethod(req.method)
	r.SetRequestURI(req.uri)
	if req.body != "" {
		r.Header.SetContentType("application/json")
		r.SetBodyString(req.body)
	}
	for i := 0; i+1 < len(req.headers); i += 2 {
		r.Header.Set(req.headers[i], req.headers[i+1])
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&r, nil, nil)

	run := func() {
		ctx.Response.Reset()
		ctx.ResetUserValues()
		handler(&ctx)
	}
	run()
	if got := ctx.Response.StatusCode(); got != wantStatus {
		b.Fatalf("status %d, want %d; body: %s", got, wantStatus, ctx.Response.Body())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		run()
	}
	b.StopTimer()
	if got := ctx.Response.StatusCode(); got != wantStatus {
		b.Fatalf("status %d at the end, want %d; body: %s", got, wantStatus, ctx.Response.Body())
	}
}

func BenchmarkCreate(b *testing.B) {
	benchmarkHandler(b, &benchService{}, benchRequest{method: "POST", uri: "/v1/orders",
		body: `{"id":"01JC4ZK4Y0ABCDEFGHJKMNPQRS"}`}, 201)
}

func BenchmarkCreateGeneratedID(b *testing.B) {
	benchmarkHandler(b, &benchService{}, benchRequest{method: "POST", uri: "/v1/orders"}, 201)
}

func BenchmarkTransition(b *testing.B) {
	benchmarkHandler(b, &benchService{}, benchRequest{method: "POST",
		uri: "/v1/orders/01JC4ZK4Y0ABCDEFGHJKMNPQRS/transitions", body: `{"to":"Paid"}`}, 200)
}

// BenchmarkTransitionWithHeaders: a careful client's transition, with the
// headers DESIGN §3 offers.
func BenchmarkTransitionWithHeaders(b *testing.B) {
	benchmarkHandler(b, &benchService{}, benchRequest{method: "POST",
		uri: "/v1/orders/01JC4ZK4Y0ABCDEFGHJKMNPQRS/transitions", body: `{"to":"Paid","reason":"card accepted"}`,
		headers: []string{"If-Match", `"1"`, "Idempotency-Key", "pay-01JC4ZK4Y0ABCDEFGHJKMNPQRS",
			"X-Request-ID", "0b8f4e8a-6c1d-4f0e-9a3b-2f7d9c1e5a40"}}, 200)
}

// BenchmarkTransitionInvalid: the 409 the load generator's invalid steps get.
func BenchmarkTransitionInvalid(b *testing.B) {
	svc := &benchService{executeErr: &order.InvalidTransitionError{From: order.Delivered, To: order.Paid,
		Allowed: []order.State{order.Returned}}}
	benchmarkHandler(b, svc, benchRequest{method: "POST",
		uri: "/v1/orders/01JC4ZK4Y0ABCDEFGHJKMNPQRS/transitions", body: `{"to":"Paid"}`}, 409)
}

// BenchmarkTransitionBadRequest: a body the decoder refuses.
func BenchmarkTransitionBadRequest(b *testing.B) {
	benchmarkHandler(b, &benchService{}, benchRequest{method: "POST",
		uri: "/v1/orders/01JC4ZK4Y0ABCDEFGHJKMNPQRS/transitions", body: `{"to":"Paid","priority":1}`}, 400)
}

func BenchmarkGet(b *testing.B) {
	benchmarkHandler(b, &benchService{}, benchRequest{method: "GET", uri: "/v1/orders/01JC4ZK4Y0ABCDEFGHJKMNPQRS"}, 200)
}
