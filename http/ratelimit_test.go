package http

import (
	"encoding/json"
	nethttp "net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestRateLimitPerPrincipal: each principal has its own bucket; beyond it
// requests are 429 with Retry-After and reach nothing; time refills it.
func TestRateLimitPerPrincipal(t *testing.T) {
	clock := &fakeClock{now: t0}
	svc := &fakeService{}
	h := newHarness(t, svc, Config{APIKeys: testKeys, RatePerPrincipal: 2, BurstPerPrincipal: 3, Now: clock.Now})
	shop := []string{"Authorization", "Bearer shop-token-0123456789"}
	warehouse := []string{"Authorization", "Bearer warehouse-token-0123456789"}

	for range 3 {
		assert.Equal(t, nethttp.StatusCreated, h.do("POST", "/v1/orders", "", shop...).status)
	}
	resp := h.do("POST", "/v1/orders", "", shop...)
	require.Equal(t, nethttp.StatusTooManyRequests, resp.status)
	assert.Equal(t, "1", resp.header.Get("Retry-After"))
	var p map[string]any
	require.NoError(t, json.Unmarshal(resp.body, &p))
	assert.Equal(t, "urn:orderd:problem:rate-limited", p["type"])
	assert.Len(t, svc.received(), 3, "the limited request reached nothing")

	assert.Equal(t, nethttp.StatusCreated, h.do("POST", "/v1/orders", "", warehouse...).status, "another principal has its own bucket")
	assert.Equal(t, nethttp.StatusOK, h.do("GET", "/healthz", "").status, "probes are never limited")

	clock.advance(time.Second) // two tokens back
	assert.Equal(t, nethttp.StatusCreated, h.do("POST", "/v1/orders", "", shop...).status)
	assert.Equal(t, nethttp.StatusCreated, h.do("POST", "/v1/orders", "", shop...).status)
	assert.Equal(t, nethttp.StatusTooManyRequests, h.do("POST", "/v1/orders", "", shop...).status)
}

func TestRateLimitCanBeTurnedOff(t *testing.T) {
	svc := &fakeService{}
	h := newHarness(t, svc, Config{RatePerPrincipal: -1})
	for range 50 {
		require.Equal(t, nethttp.StatusCreated, h.do("POST", "/v1/orders", "").status)
	}
}
