package http

import (
	"log/slog"
	nethttp "net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAccessLogCarriesTheRequestID: at Debug level every request is logged
// with its route pattern, status and the request ID the client sent.
func TestAccessLogCarriesTheRequestID(t *testing.T) {
	logs := &syncBuffer{}
	h := newHarness(t, &fakeService{}, Config{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	resp := h.do("POST", "/v1/orders", `{"id":"o-1"}`, "X-Request-ID", "trace-me-42")
	require.Equal(t, nethttp.StatusCreated, resp.status)
	assert.Equal(t, "trace-me-42", resp.header.Get("X-Request-ID"))
	assert.Contains(t, logs.String(), "msg=request method=POST route=/v1/orders status=201")
	assert.Contains(t, logs.String(), "request_id=trace-me-42 principal=anonymous")
}

func TestNoAccessLogAtInfo(t *testing.T) {
	logs := &syncBuffer{}
	h := newHarness(t, &fakeService{}, Config{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.Equal(t, nethttp.StatusCreated, h.do("POST", "/v1/orders", `{"id":"o-1"}`).status)
	assert.NotContains(t, logs.String(), "msg=request")
}
