package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// asServerEnv makes the test binary run orderd's main instead of the tests,
// so that tests can start, stop and kill -9 real orderd processes.
const asServerEnv = "ORDERD_TEST_AS_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(asServerEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Room for a busy machine. Every wait in these tests is bounded, so that a
// bug fails with a message instead of hanging until go test's own timeout,
// and every bound is far beyond what its step takes on a calm machine: CI
// machines are shared, and with two runs of the suite at once under -race on
// two cores, steps took many times longer (docs/testing.md, "On a busy
// machine"). A test that is about a deadline sets its own, short one.
const (
	// roomyTimeout bounds a wait: a server starting or stopping, an HTTP
	// call, a condition awaited, a read of the whole log.
	roomyTimeout       = 2 * time.Minute
	serverStartTimeout = roomyTimeout
	serverStopTimeout  = roomyTimeout
	// roomyRequestTimeout, roomyProduceTimeout and roomyShutdownTimeout
	// are orderd's --request-timeout, --produce-timeout and
	// --shutdown-timeout in tests (roomyFlags): the journal's answer comes
	// before the request's deadline, and the request's answer before the
	// client's (roomyTimeout); a graceful stop, which waits for requests
	// and then for produce requests, ends before the test stops waiting
	// for it (serverStopTimeout).
	roomyRequestTimeout  = roomyTimeout / 2
	roomyProduceTimeout  = roomyRequestTimeout / 2
	roomyShutdownTimeout = roomyRequestTimeout + roomyProduceTimeout
)

// roomyFlags are the deadlines every orderd in these tests starts with
// (by default a request's 5 s, a produce request's 5 s, a graceful stop's
// 20 s); a test's own flags come after them and win.
func roomyFlags() []string {
	return []string{
		"--request-timeout", roomyRequestTimeout.String(),
		"--produce-timeout", roomyProduceTimeout.String(),
		"--shutdown-timeout", roomyShutdownTimeout.String(),
	}
}

// serverProcess is orderd running as a child process.
type serverProcess struct {
	cmd    *exec.Cmd
	url    string
	exited chan error
	logs   *syncBuffer
}

var listeningLine = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startServer runs orderd on its embedded broker with dataDir, on a free
// loopback port, and waits until it reports ready.
func startServer(t *testing.T, dataDir string, extraArgs ...string) *serverProcess {
	t.Helper()
	p := startServerNotReady(t, dataDir, extraArgs...)
	require.Eventually(t, func() bool {
		status, _ := call(t, "GET", p.url+"/readyz", "", nil)
		return status == http.StatusOK
	}, serverStartTimeout, 20*time.Millisecond, "orderd never became ready")
	return p
}

// startServerNotReady starts orderd and returns once it listens.
func startServerNotReady(t *testing.T, dataDir string, extraArgs ...string) *serverProcess {
	t.Helper()
	args := append(append([]string{"--addr", "127.0.0.1:0", "--data-dir", dataDir}, roomyFlags()...), extraArgs...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), asServerEnv+"=1")
	return startProcess(t, cmd)
}

// startProcess starts cmd, an orderd server, and returns once it has logged
// the address it listens on. It is killed when the test ends, if it still
// runs, and its log is shown if the test failed.
func startProcess(t *testing.T, cmd *exec.Cmd) *serverProcess {
	t.Helper()
	dieWithParent(cmd)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &serverProcess{cmd: cmd, exited: make(chan error, 1), logs: &syncBuffer{}}
	addrFound := make(chan string, 1)
	go func() {
		scanner := bufio.NewScanner(stderr)
		for scanner.Scan() {
			line := scanner.Text()
			p.logs.WriteString(line + "\n")
			if m := listeningLine.FindStringSubmatch(line); m != nil {
				select {
				case addrFound <- m[1]:
				default:
				}
			}
		}
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("orderd logs:\n%s", p.logs.String())
		}
	})
	select {
	case addr := <-addrFound:
		p.url = "http://" + addr
	case err := <-p.exited:
		t.Fatalf("orderd exited before listening: %v\n%s", err, p.logs.String())
	case <-time.After(serverStartTimeout):
		t.Fatalf("orderd did not listen within %v\n%s", serverStartTimeout, p.logs.String())
	}
	return p
}

// stop sends sig (SIGTERM for a graceful stop, SIGKILL for a crash) and waits.
func (p *serverProcess) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig))
	select {
	case err := <-p.exited:
		if sig == syscall.SIGTERM {
			require.NoError(t, err, "graceful stop must exit 0\n%s", p.logs.String())
		}
	case <-time.After(serverStopTimeout):
		t.Fatalf("orderd did not exit within %v after %v", serverStopTimeout, sig)
	}
}

var httpClient = &http.Client{Timeout: roomyTimeout}

// call sends one request and returns the status and body; transport errors
// are status 0.
func call(t *testing.T, method, url, body string, header map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, []byte(err.Error())
	}
	return resp.StatusCode, b
}

type orderView struct {
	ID        string `json:"id"`
	State     string `json:"state"`
	Version   uint64 `json:"version"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

type historyView struct {
	ID          string `json:"id"`
	Transitions []struct {
		EventID   string  `json:"event_id"`
		Version   uint64  `json:"version"`
		From      *string `json:"from"`
		To        string  `json:"to"`
		At        string  `json:"at"`
		RequestID string  `json:"request_id"`
	} `json:"transitions"`
}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(body, &v), "body %s", body)
	return v
}

// snapshotOrders reads every order's state and history through the API.
func snapshotOrders(t *testing.T, url string, ids []string) map[string]string {
	t.Helper()
	out := make(map[string]string, len(ids))
	for _, id := range ids {
		status, state := call(t, "GET", url+"/v1/orders/"+id, "", nil)
		require.Equal(t, http.StatusOK, status, "GET %s: %s", id, state)
		status, history := call(t, "GET", url+"/v1/orders/"+id+"/history", "", nil)
		require.Equal(t, http.StatusOK, status, "GET %s history: %s", id, history)
		out[id] = fmt.Sprintf("%s\n%s", state, history)
	}
	return out
}

// syncBuffer collects a child's log lines from one goroutine while a test
// may read them from another.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
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
