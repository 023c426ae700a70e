package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/actors"
	orderhttp "github.com/orderd/orderd/http"
	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
)

// Helpers for the in-process tests of the concurrency contract (If-Match,
// Idempotency-Key, unknown outcomes, linearizability): orderd runs inside
// the test binary, on 127.0.0.1:0, so the tests can also reach its journal.

// e2eTimeout bounds every wait in these tests, so that a bug fails with a
// message instead of hanging until go test's own timeout (roomyTimeout).
const e2eTimeout = roomyTimeout

// e2eLogger sends the server's warnings to the test's output, shown only
// when it fails.
func e2eLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(e2eLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type e2eLogWriter struct{ t testing.TB }

func (w e2eLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// e2eStartMain runs orderd in-process with the given flags (on top of a
// loopback port and dataDir) and waits until it is ready. The server is
// closed when the test ends unless the caller closes it first.
func e2eStartMain(t *testing.T, dataDir string, flags ...string) (*Main, string) {
	t.Helper()
	args := append(append([]string{"--addr", "127.0.0.1:0", "--data-dir", dataDir}, roomyFlags()...), flags...)
	cfg, err := ParseConfig(args, func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	m := NewMain(cfg, e2eLogger(t))
	require.NoError(t, m.Start(context.Background()))
	t.Cleanup(func() { _ = m.Close() })
	url := "http://" + m.Addr()
	e2eWaitReady(t, url)
	return m, url
}

func e2eWaitReady(t *testing.T, url string) {
	t.Helper()
	require.Eventually(t, func() bool {
		return e2eDo(t, "GET", url+"/readyz", "").status == http.StatusOK
	}, e2eTimeout, 5*time.Millisecond, "orderd never became ready")
}

// e2eMemoryStack serves the real actors and HTTP layer over a
// MemoryJournal, whose faults the test controls.
func e2eMemoryStack(t *testing.T, j *persistence.MemoryJournal) string {
	t.Helper()
	sys, err := actors.New(actors.Config{Journal: j, Shards: 1, ShardOf: func(string) int { return 0 }, Logger: e2eLogger(t)})
	require.NoError(t, err)
	_, err = sys.Recover(context.Background())
	require.NoError(t, err)
	return e2eServe(t, sys, sys.Close)
}

// e2eServe serves svc over HTTP on a loopback port until the test ends.
func e2eServe(t *testing.T, svc actors.Service, closeSvc func()) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := orderhttp.New(svc, orderhttp.Config{Logger: e2eLogger(t), RequestTimeout: roomyRequestTimeout})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
		require.NoError(t, <-served)
		closeSvc()
	})
	return "http://" + ln.Addr().String()
}

var e2eClient = &http.Client{Timeout: e2eTimeout}

type e2eReply struct {
	status int
	header http.Header
	body   []byte
}

// e2eDo sends one request; headers are name, value pairs. A transport error
// is status 0 with the error as the body.
func e2eDo(t testing.TB, method, url, body string, headers ...string) e2eReply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e2eClient.Do(req)
	if err != nil {
		return e2eReply{body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return e2eReply{body: []byte(err.Error())}
	}
	return e2eReply{status: resp.StatusCode, header: resp.Header, body: b}
}

// e2eRequireStatus checks the status and returns the body decoded as a JSON
// object (an order or a problem document).
func e2eRequireStatus(t *testing.T, r e2eReply, status int) map[string]any {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.body)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(r.body, &doc), "body: %s", r.body)
	return doc
}

// e2eRequireProblem checks a problem document's status and code.
func e2eRequireProblem(t *testing.T, r e2eReply, status int, code string) map[string]any {
	t.Helper()
	p := e2eRequireStatus(t, r, status)
	require.Equal(t, "urn:orderd:problem:"+code, p["type"], "body: %s", r.body)
	return p
}

// e2eReadLog replays the whole audit log on the broker at addr, as any
// consumer could, and returns every event grouped by order.
func e2eReadLog(t *testing.T, addr string) map[string][]order.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	j, err := persistence.OpenKafka(ctx, persistence.KafkaConfig{Brokers: []string{addr}, Topic: topicDefault})
	require.NoError(t, err)
	defer j.Close()
	byOrder := map[string][]order.Event{}
	stats, err := j.Replay(ctx, func(ev order.Event) error {
		byOrder[ev.OrderID] = append(byOrder[ev.OrderID], ev)
		return nil
	})
	require.NoError(t, err)
	require.Zero(t, stats.Undecodable)
	return byOrder
}

// e2eReadLogInDir reads the log an embedded broker left in dataDir, once the
// server that used it has closed.
func e2eReadLogInDir(t *testing.T, dataDir string) map[string][]order.Event {
	t.Helper()
	broker, err := persistence.StartEmbedded(persistence.EmbeddedConfig{DataDir: dataDir})
	require.NoError(t, err)
	defer broker.Close()
	return e2eReadLog(t, broker.Addr())
}

// e2eMemoryLog decodes everything a MemoryJournal holds, grouped by order.
func e2eMemoryLog(t *testing.T, j *persistence.MemoryJournal) map[string][]order.Event {
	t.Helper()
	byOrder := map[string][]order.Event{}
	_, err := j.Replay(context.Background(), func(ev order.Event) error {
		byOrder[ev.OrderID] = append(byOrder[ev.OrderID], ev)
		return nil
	})
	require.NoError(t, err)
	return byOrder
}
