package http

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	nethttp "net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/order"
)

// t0 is the fake's clock: nanoseconds included, so that the tests see them
// survive formatting.
var t0 = time.Date(2026, 11, 5, 10, 0, 0, 123456789, time.UTC)

// fakeService is a function-field fake of actors.Service. It records every
// command it receives, so that tests of refused requests can assert that
// nothing reached the actors.
type fakeService struct {
	ExecuteFn func(ctx context.Context, cmd order.Command) (order.Order, error)
	GetFn     func(ctx context.Context, id string) (order.Order, error)
	HistoryFn func(ctx context.Context, id string) ([]order.Event, error)
	ListFn    func(ctx context.Context, q order.ListQuery) (order.ListPage, error)
	ReadyFn   func() error

	mu       sync.Mutex
	commands []order.Command
}

var _ actors.Service = (*fakeService)(nil)

func (f *fakeService) Execute(ctx context.Context, cmd order.Command) (order.Order, error) {
	f.mu.Lock()
	f.commands = append(f.commands, cmd)
	f.mu.Unlock()
	if f.ExecuteFn != nil {
		return f.ExecuteFn(ctx, cmd)
	}
	return applied(cmd), nil
}

func (f *fakeService) Get(ctx context.Context, id string) (order.Order, error) {
	if f.GetFn != nil {
		return f.GetFn(ctx, id)
	}
	return order.Order{}, order.ErrOrderNotFound
}

func (f *fakeService) History(ctx context.Context, id string) ([]order.Event, error) {
	if f.HistoryFn != nil {
		return f.HistoryFn(ctx, id)
	}
	return nil, order.ErrOrderNotFound
}

func (f *fakeService) List(ctx context.Context, q order.ListQuery) (order.ListPage, error) {
	if f.ListFn != nil {
		return f.ListFn(ctx, q)
	}
	return order.ListPage{Orders: []order.Order{}}, nil
}

func (f *fakeService) Ready() error {
	if f.ReadyFn != nil {
		return f.ReadyFn()
	}
	return nil
}

func (f *fakeService) received() []order.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]order.Command(nil), f.commands...)
}

// applied is the order a successful command would leave behind: a create is
// version 1, a transition one past If-Match (or version 2 without it).
func applied(cmd order.Command) order.Order {
	if cmd.Kind == order.CommandCreate {
		return order.Order{ID: cmd.OrderID, State: order.Created, Version: 1, CreatedAt: t0, UpdatedAt: t0}
	}
	version := max(cmd.ExpectedVersion, 1)
	if version < math.MaxUint64 { // If-Match may name the last version there is
		version++
	}
	return order.Order{ID: cmd.OrderID, State: cmd.To, Version: version, CreatedAt: t0, UpdatedAt: t0.Add(time.Second)}
}

// syncBuffer collects the server's log for assertions.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harness is a real server on 127.0.0.1:0 and a net/http client: the HTTP
// contract is what the tests check, so they speak it over a socket.
type harness struct {
	t      *testing.T
	svc    *fakeService
	srv    *Server
	url    string
	client *nethttp.Client
	logs   *syncBuffer
}

// roomyTimeout bounds every wait in these tests, so that a bug fails with a
// message instead of hanging, and is far beyond what any step takes on a
// calm machine: CI machines are shared, and with two runs of the suite at
// once under -race on two cores steps took many times longer
// (docs/testing.md, "On a busy machine").
const roomyTimeout = 2 * time.Minute

func newHarness(t *testing.T, svc *fakeService, cfg Config) *harness {
	t.Helper()
	h := newHarnessFor(t, svc, cfg)
	h.svc = svc
	return h
}

// newHarnessFor serves any Service; h.svc is left nil.
func newHarnessFor(t *testing.T, svc actors.Service, cfg Config) *harness {
	t.Helper()
	logs := &syncBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	// Generous network timeouts and request deadline: a loaded machine
	// running the race detector must not turn a slow read into a 408, or
	// a slow call into the service into a 503, and a failed test. Tests
	// of those deadlines set their own.
	cfg.ReadTimeout = cmp.Or(cfg.ReadTimeout, roomyTimeout)
	cfg.WriteTimeout = cmp.Or(cfg.WriteTimeout, roomyTimeout)
	cfg.RequestTimeout = cmp.Or(cfg.RequestTimeout, roomyTimeout)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := New(svc, cfg)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), roomyTimeout)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
		require.NoError(t, <-served)
	})
	client := &nethttp.Client{Transport: &nethttp.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(client.CloseIdleConnections) // runs first: Cleanup is LIFO
	return &harness{t: t, srv: srv, url: "http://" + ln.Addr().String(), client: client, logs: logs}
}

type reply struct {
	status int
	header nethttp.Header
	body   []byte
}

// do sends one request. headers are name, value pairs; a body is sent as
// application/json unless a Content-Type pair says otherwise (an empty
// value: no Content-Type at all).
func (h *harness) do(method, path, body string, headers ...string) reply {
	h.t.Helper()
	r, err := h.try(method, path, body, headers...)
	require.NoError(h.t, err)
	return r
}

// try is do for goroutines other than the test's, which must not FailNow.
func (h *harness) try(method, path, body string, headers ...string) (reply, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := nethttp.NewRequest(method, h.url+path, rd)
	if err != nil {
		return reply{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	r := reply{status: resp.StatusCode, header: resp.Header, body: raw}
	// Every response the HTTP tests see must match the API description.
	return r, checkAgainstSpec(method, path, r)
}

// raw writes bytes to a fresh TCP connection and reads one response, for
// requests net/http will not send as they are.
func (h *harness) raw(request string) reply {
	h.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	require.NoError(h.t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, request)
	require.NoError(h.t, err)
	return readReply(h.t, conn)
}

func readReply(t *testing.T, conn net.Conn) reply {
	t.Helper()
	resp, err := nethttp.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{status: resp.StatusCode, header: resp.Header, body: body}
}

// serveOnPipe hands one raw request to the server's connection loop over an
// in-memory pipe. It is for requests the server refuses before reading all
// of them: over TCP, closing a socket with unread input makes the kernel send
// RST, which can destroy the response before the client has read it.
func serveOnPipe(t *testing.T, srv *Server, request string) reply {
	t.Helper()
	srv.App().Handler() // builds the router, as Serve does
	client, server := net.Pipe()
	served, written := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.App().Server().ServeConn(server) // the refusal is its error
	}()
	go func() {
		defer close(written)
		_, _ = io.WriteString(client, request) // cut short when the server hangs up
	}()
	r := readReply(t, client)
	client.Close()
	<-served
	<-written
	return r
}

// requireProblem checks the RFC 9457 shape common to every error and
// returns the document for the caller's own checks.
func requireProblem(t *testing.T, r reply, status int, code string) map[string]any {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.body)
	require.Equal(t, problemContentType, r.header.Get("Content-Type"))
	var p map[string]any
	require.NoError(t, json.Unmarshal(r.body, &p), "body: %s", r.body)
	require.Equal(t, "urn:orderd:problem:"+code, p["type"], "body: %s", r.body)
	require.Equal(t, float64(status), p["status"])
	require.NotEmpty(t, p["title"])
	require.NotEmpty(t, p["detail"])
	require.NotEmpty(t, r.header.Get("X-Request-ID"))
	require.Equal(t, r.header.Get("X-Request-ID"), p["request_id"])
	return p
}

// requireNothingApplied is the check every refused request ends with.
func (h *harness) requireNothingApplied() {
	h.t.Helper()
	require.Empty(h.t, h.svc.received(), "a refused request reached Execute")
}

// sendConcurrently calls send(i) for each i below requests from workers
// goroutines, so that many requests go through a few keep-alive connections
// and the buffers Fiber reuses for them.
func sendConcurrently(requests, workers int, send func(i int)) {
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				send(i)
			}
		})
	}
	for i := range requests {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
}

// orderNumber reads back the number a test's request put in an order ID,
// to check the command's other values against it.
func orderNumber(t *testing.T, id, format string) int {
	t.Helper()
	var i int
	_, err := fmt.Sscanf(id, format, &i)
	require.NoError(t, err, "order ID %q", id)
	return i
}

// counterEntropy makes distinct, reproducible IDs.
func counterEntropy() func() [order.IDEntropyLen]byte {
	var mu sync.Mutex
	var n byte
	return func() (b [order.IDEntropyLen]byte) {
		mu.Lock()
		defer mu.Unlock()
		n++
		b[order.IDEntropyLen-1] = n
		return b
	}
}
