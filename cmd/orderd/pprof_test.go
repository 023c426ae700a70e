package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPprofServedWhenSet: --pprof-addr serves the profile index on its own
// listener, and Close stops it.
func TestPprofServedWhenSet(t *testing.T) {
	c, err := ParseConfig([]string{"--addr", "127.0.0.1:0", "--pprof-addr", "127.0.0.1:0",
		"--data-dir", t.TempDir()}, env(nil), io.Discard)
	require.NoError(t, err)
	m := NewMain(c, slog.New(slog.DiscardHandler))
	require.NoError(t, m.Start(context.Background()))
	url := "http://" + m.pprof.Addr() + "/debug/pprof/"
	resp, err := http.Get(url)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), "goroutine")
	require.NoError(t, m.Close())
	_, err = http.Get(url)
	assert.Error(t, err, "pprof still served after Close")
}

// TestPprofOffByDefaultAndLoopbackOnly: no listener unless asked, and never
// on an address other machines can reach.
func TestPprofOffByDefaultAndLoopbackOnly(t *testing.T) {
	c, err := ParseConfig(nil, env(nil), io.Discard)
	require.NoError(t, err)
	assert.Empty(t, c.PprofAddr)

	_, err = ParseConfig([]string{"--pprof-addr", "0.0.0.0:6060"}, env(nil), io.Discard)
	assert.ErrorContains(t, err, "--pprof-addr")
	_, err = ParseConfig(nil, env(map[string]string{"ORDERD_PPROF_ADDR": "192.0.2.1:6060"}), io.Discard)
	assert.ErrorContains(t, err, "--pprof-addr")

	c, err = ParseConfig([]string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, env(nil), io.Discard)
	require.NoError(t, err)
	c.PprofAddr = "0.0.0.0:0" // past validation: Start refuses it too
	m := NewMain(c, slog.New(slog.DiscardHandler))
	assert.ErrorContains(t, m.Start(context.Background()), "only loopback")
	assert.NoError(t, m.Close())
}
