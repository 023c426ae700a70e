package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Bounds of the end-to-end tests: everything a test waits for has one, far
// beyond what it takes on a calm machine, because CI machines are shared:
// with two runs of the suite at once under -race on two cores, steps took
// many times longer (docs/testing.md, "On a busy machine"). A test that is
// about a deadline sets its own, short one.
const (
	// roomyTimeout is orderctl's --timeout in tests (ctlArgs), and bounds
	// a server's start and stop.
	roomyTimeout     = 2 * time.Minute
	serverStartLimit = roomyTimeout
	serverStopLimit  = roomyTimeout
	// ctlRunLimit bounds one run of orderctl, which makes a few requests,
	// each within --timeout, and any other wait of a test.
	ctlRunLimit = 2 * roomyTimeout
	// roomySlack is how much longer than its own deadline a run that must
	// end at that deadline may take: far below the roomy --timeout it
	// would otherwise run into.
	roomySlack = roomyTimeout / 4
	// buildTimeout bounds building orderd: about a minute from a cold
	// cache on a calm machine, several when two runs build side by side.
	buildTimeout = 15 * time.Minute
	// orderd's --request-timeout, --produce-timeout and
	// --shutdown-timeout in tests: the journal answers before the
	// request's deadline, the request before orderctl's --timeout, and a
	// graceful stop (requests, then produce requests) ends within
	// serverStopLimit.
	roomyRequestTimeout  = roomyTimeout / 2
	roomyProduceTimeout  = roomyRequestTimeout / 2
	roomyShutdownTimeout = roomyRequestTimeout + roomyProduceTimeout
)

// ctlArgs gives orderctl the roomy --timeout (10 s by default); a test's own
// --timeout comes after it and wins.
func ctlArgs(args ...string) []string {
	return append([]string{"--timeout", roomyTimeout.String()}, args...)
}

// orderdBinary is orderd, built once by TestMain.
var orderdBinary string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "orderctl-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	orderdBinary = filepath.Join(dir, "orderd")
	if err := buildOrderd(orderdBinary); err != nil {
		fmt.Fprintln(os.Stderr, "building orderd:", err)
		return 1
	}
	return m.Run()
}

// buildOrderd builds ./cmd/orderd of this module into out.
func buildOrderd(out string) error {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	build := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/orderd")
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("%w\n%s", err, b)
	}
	return nil
}

// server is orderd running as a child process on its embedded broker.
type server struct {
	url    string // http://127.0.0.1:PORT
	broker string // the embedded broker, 127.0.0.1:PORT
	cmd    *exec.Cmd
	exited chan error
	logs   *syncBuffer
}

var (
	listeningLine = regexp.MustCompile(`msg=listening addr=(\S+)`)
	brokerLine    = regexp.MustCompile(`msg="using Kafka" mode=embedded broker=(\S+)`)
)

// startServer runs orderd on 127.0.0.1:0 with a fresh data directory and
// three partitions (so that tail reads several), and waits until it is ready.
// env adds to orderd's environment, from which every ORDERD_* variable of
// the test's own environment is removed.
func startServer(t *testing.T, env ...string) *server {
	t.Helper()
	return startServerFlags(t, nil, env...)
}

// startServerFlags is startServer with more flags for orderd; a flag given
// here wins over startServer's own (the last of a repeated flag counts).
func startServerFlags(t *testing.T, flags []string, env ...string) *server {
	t.Helper()
	args := []string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--partitions", "3",
		"--request-timeout", roomyRequestTimeout.String(), "--produce-timeout", roomyProduceTimeout.String(),
		"--shutdown-timeout", roomyShutdownTimeout.String()}
	cmd := exec.Command(orderdBinary, append(args, flags...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ORDERD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	dieWithParent(cmd)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	s := &server{cmd: cmd, exited: make(chan error, 1), logs: &syncBuffer{}}
	found := make(chan [2]string, 1)
	go func() {
		var addr, broker string
		scanner := bufio.NewScanner(stderr)
		for scanner.Scan() {
			line := scanner.Text()
			s.logs.WriteString(line + "\n")
			if m := brokerLine.FindStringSubmatch(line); m != nil {
				broker = m[1]
			}
			if m := listeningLine.FindStringSubmatch(line); m != nil {
				addr = m[1]
				found <- [2]string{addr, broker}
			}
		}
		s.exited <- cmd.Wait()
	}()
	t.Cleanup(func() { s.stop(t) })
	select {
	case f := <-found:
		s.url, s.broker = "http://"+f[0], f[1]
	case err := <-s.exited:
		s.exited <- err
		t.Fatalf("orderd exited before listening: %v\n%s", err, s.logs.String())
	case <-time.After(serverStartLimit):
		t.Fatalf("orderd did not listen within %v\n%s", serverStartLimit, s.logs.String())
	}
	require.NotEmpty(t, s.broker, "no embedded broker address in orderd's log:\n%s", s.logs.String())
	require.Eventually(t, func() bool {
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, serverStartLimit, 20*time.Millisecond, "orderd never became ready:\n%s", s.logs.String())
	return s
}

// stop ends orderd gracefully (SIGTERM), or kills it if it hangs.
func (s *server) stop(t *testing.T) {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(serverStopLimit):
		_ = s.cmd.Process.Kill()
		<-s.exited
		t.Errorf("orderd did not stop within %v", serverStopLimit)
	}
	if t.Failed() {
		t.Logf("orderd logs:\n%s", s.logs.String())
	}
}

// result is one run of orderctl.
type result struct {
	code           int
	stdout, stderr string
}

// ctl runs orderctl in process with env as its whole environment.
func ctl(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ctlRunLimit)
	defer cancel()
	return ctlContext(t, ctx, env, args...)
}

// ctlContext runs orderctl until it returns or ctx ends (which it obeys).
func ctlContext(t *testing.T, ctx context.Context, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- runContext(ctx, ctlArgs(args...), &stdout, &stderr, func(k string) string { return env[k] })
	}()
	select {
	case c := <-code:
		return result{code: c, stdout: stdout.String(), stderr: stderr.String()}
	case <-time.After(ctlRunLimit + 10*time.Second):
		t.Fatalf("orderctl %q did not return\nstdout: %s\nstderr: %s", args, stdout.String(), stderr.String())
		return result{}
	}
}

// ctl runs orderctl against s, found through ORDERD_URL.
func (s *server) ctl(t *testing.T, args ...string) result {
	t.Helper()
	return ctl(t, map[string]string{envURL: s.url}, args...)
}

// must runs orderctl against s and requires exit 0.
func (s *server) must(t *testing.T, args ...string) string {
	t.Helper()
	r := s.ctl(t, args...)
	require.Equal(t, exitOK, r.code, "orderctl %q\nstdout: %s\nstderr: %s", args, r.stdout, r.stderr)
	return r.stdout
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// syncBuffer is a buffer that one goroutine writes while another reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
