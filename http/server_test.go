package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	nethttp "net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// Fiber reuses its request buffers once a handler returns, while commands
// live on in actors and the log. Many requests over a few keep-alive
// connections, each with its own ID, key and request ID: every command the
// service kept must still read as the request that sent it.
func TestCommandsSurviveBufferReuse(t *testing.T) {
	t.Parallel()

	const (
		requests = 400
		workers  = 8
	)
	h := newHarness(t, &fakeService{}, Config{})

	sendConcurrently(requests, workers, func(i int) {
		r, err := h.try("POST", fmt.Sprintf("/v1/orders/order-%04d/transitions", i),
			fmt.Sprintf(`{"to":"Paid","reason":"reason-%04d"}`, i),
			"Idempotency-Key", fmt.Sprintf("key-%04d", i), "X-Request-ID", fmt.Sprintf("req-%04d", i))
		assert.NoError(t, err)
		var body orderBody
		assert.NoError(t, json.Unmarshal(r.body, &body))
		assert.Equal(t, fmt.Sprintf("order-%04d", i), body.ID)
	})

	cmds := h.svc.received()
	require.Len(t, cmds, requests)
	seen := map[string]bool{}
	for _, cmd := range cmds {
		i := orderNumber(t, cmd.OrderID, "order-%04d")
		assert.Equal(t, fmt.Sprintf("key-%04d", i), cmd.IdempotencyKey)
		assert.Equal(t, fmt.Sprintf("req-%04d", i), cmd.RequestID)
		assert.Equal(t, fmt.Sprintf("reason-%04d", i), cmd.Reason)
		assert.Equal(t, "anonymous", cmd.Principal)
		seen[cmd.OrderID] = true
	}
	assert.Len(t, seen, requests)
}

// Concurrent creates with client-chosen IDs: the same check on the body path.
func TestCreatesSurviveBufferReuse(t *testing.T) {
	t.Parallel()

	const (
		requests = 200
		workers  = 8
	)
	h := newHarness(t, &fakeService{}, Config{})

	sendConcurrently(requests, workers, func(i int) {
		r, err := h.try("POST", "/v1/orders", fmt.Sprintf(`{"id":"order-%04d"}`, i),
			"Idempotency-Key", fmt.Sprintf("key-%04d", i))
		assert.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("/v1/orders/order-%04d", i), r.header.Get("Location"), "%d %s", r.status, r.body)
	})

	cmds := h.svc.received()
	require.Len(t, cmds, requests)
	seen := map[string]bool{}
	for _, cmd := range cmds {
		i := orderNumber(t, cmd.OrderID, "order-%04d")
		assert.Equal(t, fmt.Sprintf("key-%04d", i), cmd.IdempotencyKey)
		seen[cmd.OrderID] = true
	}
	assert.Len(t, seen, requests)
}

// Shutdown lets a request already with the actors finish and be answered.
func TestShutdownFinishesRequestsInFlight(t *testing.T) {
	t.Parallel()

	entered, release := make(chan struct{}), make(chan struct{})
	svc := &fakeService{ExecuteFn: func(_ context.Context, cmd order.Command) (order.Order, error) {
		close(entered)
		<-release
		return applied(cmd), nil
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := New(svc, Config{})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	url := "http://" + ln.Addr().String()

	answered := make(chan int, 1)
	go func() {
		resp, err := nethttp.Post(url+"/v1/orders", "application/json", nil)
		if !assert.NoError(t, err) {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	<-entered

	stopped := make(chan error, 1)
	go func() { stopped <- srv.Shutdown(context.Background()) }()
	// Poll until the listener is closed: only then is Shutdown under way.
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	}, roomyTimeout, time.Millisecond)

	close(release)
	assert.Equal(t, nethttp.StatusCreated, <-answered)
	require.NoError(t, <-stopped)
	require.NoError(t, <-served)
}

// A Shutdown that comes before Serve still wins: Serve refuses to start
// rather than serving forever.
func TestShutdownBeforeServe(t *testing.T) {
	t.Parallel()

	srv := New(&fakeService{}, Config{})
	require.NoError(t, srv.Shutdown(context.Background()))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.ErrorIs(t, srv.Serve(ln), ErrServerClosed)
	_, err = net.Dial("tcp", ln.Addr().String())
	require.Error(t, err, "the listener is still open")
}

// healthyFake is a fakeService that also reports its dependencies' health.
type healthyFake struct {
	*fakeService
	healthy func() error
}

func (h healthyFake) Healthy() error { return h.healthy() }

// TestReadyzReportsHealthButRoutesStayOpen: an unhealthy journal makes
// /readyz 503 while reads are still answered.
func TestReadyzReportsHealthButRoutesStayOpen(t *testing.T) {
	var failing atomic.Bool
	svc := &fakeService{GetFn: func(context.Context, string) (order.Order, error) {
		return order.Order{ID: "o-1", State: order.Paid, Version: 2, CreatedAt: t0, UpdatedAt: t0}, nil
	}}
	fake := healthyFake{fakeService: svc, healthy: func() error {
		if failing.Load() {
			return errors.New("broker down")
		}
		return nil
	}}
	h := newHarnessFor(t, fake, Config{})
	assert.Equal(t, nethttp.StatusOK, h.do("GET", "/readyz", "").status)
	failing.Store(true)
	resp := h.do("GET", "/readyz", "")
	assert.Equal(t, nethttp.StatusServiceUnavailable, resp.status)
	assert.NotEmpty(t, resp.header.Get("Retry-After"))
	assert.Equal(t, nethttp.StatusOK, h.do("GET", "/v1/orders/o-1", "").status, "reads keep working")
}
