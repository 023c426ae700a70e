package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func healthcheck(t *testing.T, vars map[string]string, args ...string) (int, string) {
	t.Helper()
	var stderr bytes.Buffer
	code := runHealthcheck(context.Background(), args, env(vars), &stderr)
	return code, stderr.String()
}

// readyzServer answers /readyz with status; anything else with 404.
func readyzServer(t *testing.T, status int) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"title":"Not ready"}`))
	}))
	t.Cleanup(s.Close)
	return s
}

func TestHealthcheckExitCodes(t *testing.T) {
	ready := readyzServer(t, http.StatusOK)
	code, stderr := healthcheck(t, nil, "--url", ready.URL)
	assert.Equal(t, 0, code, stderr)
	assert.Empty(t, stderr)

	// The address alone, as the image's HEALTHCHECK finds it in ORDERD_ADDR.
	code, stderr = healthcheck(t, map[string]string{"ORDERD_ADDR": ready.Listener.Addr().String()})
	assert.Equal(t, 0, code, stderr)

	code, stderr = healthcheck(t, nil, "--url", readyzServer(t, http.StatusServiceUnavailable).URL)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "503 Service Unavailable")
	assert.Contains(t, stderr, "Not ready", "the answer's body is quoted")

	// A redirect is not readiness.
	code, _ = healthcheck(t, nil, "--url", readyzServer(t, http.StatusFound).URL)
	assert.Equal(t, 1, code)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	require.NoError(t, ln.Close())
	code, stderr = healthcheck(t, map[string]string{"ORDERD_ADDR": closed})
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "connection refused")

	code, _ = healthcheck(t, nil, "--timeout", "0s")
	assert.Equal(t, 2, code)
	code, _ = healthcheck(t, nil, "stray")
	assert.Equal(t, 2, code)
	code, _ = healthcheck(t, map[string]string{"ORDERD_ADDR": "no-port"})
	assert.Equal(t, 2, code)
}

// A server that accepts the connection and never answers fails the check
// within its --timeout, not Docker's.
func TestHealthcheckTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	const timeout = 200 * time.Millisecond
	start := time.Now()
	code, stderr := healthcheck(t, nil, "--url", "http://"+ln.Addr().String(), "--timeout", timeout.String())
	took := time.Since(start)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "deadline exceeded")
	assert.GreaterOrEqual(t, took, timeout)
	assert.Less(t, took, healthcheckTimeoutDefault, "gave up at its own timeout")
}

func TestHealthcheckLocalURL(t *testing.T) {
	for addr, want := range map[string]string{
		"0.0.0.0:8080":   "http://127.0.0.1:8080",
		":8080":          "http://127.0.0.1:8080",
		"[::]:8080":      "http://[::1]:8080",
		"127.0.0.1:9000": "http://127.0.0.1:9000",
		"[::1]:9000":     "http://[::1]:9000",
		"orderd:8080":    "http://orderd:8080",
	} {
		got, err := localURL(addr)
		require.NoError(t, err, addr)
		assert.Equal(t, want, got, addr)
	}
}
