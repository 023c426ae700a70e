package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// serverReadyTimeout bounds start-up: listening, then /readyz. An empty
	// data directory recovers at once; the bound is for a broken build.
	serverReadyTimeout = 60 * time.Second
	// serverStopTimeout is how long a SIGTERM may take before SIGKILL; above
	// orderd's own graceful shutdown default (20 s).
	serverStopTimeout = 30 * time.Second
	// readyPollInterval paces the /readyz probes.
	readyPollInterval = 20 * time.Millisecond
	// serverLogTailLines is how much of a child's log is kept to explain a
	// failure; the rest is dropped (or written to --server-log).
	serverLogTailLines = 50
	// buildTimeout bounds `go build ./cmd/orderd`.
	buildTimeout = 5 * time.Minute
)

// listeningLine is the start-up line orderd (and the baseline child) logs
// once it listens; with --addr 127.0.0.1:0 it is the only way to learn the port.
var listeningLine = regexp.MustCompile(`msg=listening addr=(\S+)`)

// childServer is a server the harness started and must stop.
type childServer struct {
	name   string
	cmd    *exec.Cmd
	url    string
	exited chan struct{} // closed once the process has been waited for
	err    error         // the process's exit error, valid after exited
	tmpDir string        // removed by stop, if set

	mu   sync.Mutex
	tail []string // the last serverLogTailLines log lines

	ready     string        // orderd's recovery line (readyLine), once logged
	readySeen chan struct{} // closed when ready is set
}

// readyLogWait bounds the wait for orderd's recovery line after /readyz
// answered 200: the two happen together, in either order.
const readyLogWait = 5 * time.Second

// readyLine returns orderd's recovery line.
func (s *childServer) readyLine(ctx context.Context) (string, error) {
	select {
	case <-s.readySeen:
	case <-time.After(readyLogWait):
		return "", fmt.Errorf("%s logged no recovery line within %v of being ready", s.name, readyLogWait)
	case <-ctx.Done():
		return "", ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready, nil
}

// repoRoot finds the orderd module's root from the working directory, the
// way the go command does.
func repoRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module: run from the orderd repository, or give --url")
	}
	root := filepath.Dir(gomod)
	if _, err := os.Stat(filepath.Join(root, "cmd", "orderd")); err != nil {
		return "", fmt.Errorf("%s has no cmd/orderd: run from the orderd repository, or give --url", root)
	}
	return root, nil
}

// buildOrderd builds ./cmd/orderd once into dir and returns the binary's
// path. A built binary (not `go run`) is what gets measured, so that the
// go command's own process is not part of the server's CPU and memory.
func buildOrderd(ctx context.Context, root, dir string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	bin := filepath.Join(dir, "orderd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/orderd")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/orderd: %w\n%s", err, out)
	}
	return bin, nil
}

// startOrderd builds orderd (unless bin names a binary already built) and
// runs it on the embedded broker with a fresh data directory on a free
// loopback port, and waits until it is ready.
func startOrderd(ctx context.Context, bin string, extraArgs []string, logFile string) (*childServer, error) {
	tmp, err := os.MkdirTemp("", "orderd-bench-")
	if err != nil {
		return nil, err
	}
	if bin == "" {
		root, err := repoRoot(ctx)
		if err == nil {
			bin, err = buildOrderd(ctx, root, tmp)
		}
		if err != nil {
			os.RemoveAll(tmp)
			return nil, err
		}
	}
	// The harness sends everything as one principal, so orderd's
	// per-principal rate limit would cap the measurement, not the server;
	// it is off unless --server-arg sets it (a later flag wins).
	args := append([]string{"--addr", "127.0.0.1:0", "--data-dir", filepath.Join(tmp, "data"), "--rate-limit=-1"}, extraArgs...)
	s, err := startChild(ctx, "orderd", exec.Command(bin, args...), logFile)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	s.tmpDir = tmp
	return s, nil
}

// startChild starts cmd, learns its address from its log and waits for
// /readyz. On error the process has already been stopped.
func startChild(ctx context.Context, name string, cmd *exec.Cmd, logFile string) (*childServer, error) {
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = nil // both servers log to stderr only
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group: a Ctrl-C at the terminal reaches only the
		// harness, which then stops the server itself after reporting,
		// instead of the server dying mid-run.
		Setpgid: true,
		// If the harness dies without stopping it, the server goes too,
		// rather than holding its port and data directory forever.
		Pdeathsig: syscall.SIGTERM,
	}
	var logw io.WriteCloser
	if logFile != "" {
		f, err := os.Create(logFile)
		if err != nil {
			return nil, fmt.Errorf("--server-log: %w", err)
		}
		logw = f
	}
	if err := cmd.Start(); err != nil {
		if logw != nil {
			logw.Close()
		}
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	s := &childServer{name: name, cmd: cmd, exited: make(chan struct{}), readySeen: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		// Keep reading until the process ends, or it would block on a
		// full pipe the first time it logs a lot.
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.remember(line)
			if logw != nil {
				fmt.Fprintln(logw, line)
			}
			if readyLine.MatchString(line) {
				s.mu.Lock()
				if s.ready == "" {
					s.ready = line
					close(s.readySeen)
				}
				s.mu.Unlock()
			}
			if m := listeningLine.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		if logw != nil {
			logw.Close()
		}
		s.err = cmd.Wait()
		close(s.exited)
	}()

	deadline := time.NewTimer(serverReadyTimeout)
	defer deadline.Stop()
	select {
	case a := <-addr:
		s.url = "http://" + a
	case <-s.exited:
		return nil, fmt.Errorf("%s exited before listening (%v):\n%s", name, s.err, s.logTail())
	case <-deadline.C:
		return nil, s.failStart(fmt.Errorf("%s did not listen within %v", name, serverReadyTimeout))
	case <-ctx.Done():
		return nil, s.failStart(ctx.Err())
	}
	if err := s.waitReady(ctx, deadline.C); err != nil {
		return nil, s.failStart(err)
	}
	return s, nil
}

// failStart stops a server that did not come up and adds its log to err.
func (s *childServer) failStart(err error) error {
	s.kill()
	return fmt.Errorf("%w:\n%s", err, s.logTail())
}

func (s *childServer) waitReady(ctx context.Context, deadline <-chan time.Time) error {
	probe := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(readyPollInterval)
	defer tick.Stop()
	for {
		resp, err := probe.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-tick.C:
		case <-s.exited:
			return fmt.Errorf("%s exited before it was ready (%v)", s.name, s.err)
		case <-deadline:
			return fmt.Errorf("%s was not ready within %v", s.name, serverReadyTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *childServer) remember(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tail) == serverLogTailLines {
		s.tail = s.tail[1:]
	}
	s.tail = append(s.tail, line)
}

func (s *childServer) logTail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.tail, "\n")
}

func (s *childServer) pid() int { return s.cmd.Process.Pid }

// running reports whether the process has not exited.
func (s *childServer) running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// stop ends the server gracefully (SIGTERM, then SIGKILL after
// serverStopTimeout) and removes its temporary files. It returns an error
// if the server had already died, or did not exit cleanly.
func (s *childServer) stop() error {
	defer func() {
		if s.tmpDir != "" {
			os.RemoveAll(s.tmpDir)
		}
	}()
	if !s.running() {
		return fmt.Errorf("%s had exited before the end of the run (%v):\n%s", s.name, s.err, s.logTail())
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(serverStopTimeout):
		s.kill()
		return fmt.Errorf("%s did not exit within %v of SIGTERM; killed", s.name, serverStopTimeout)
	}
	if s.err != nil {
		return fmt.Errorf("%s exited with %v after SIGTERM:\n%s", s.name, s.err, s.logTail())
	}
	return nil
}

// kill ends the process at once and waits for it.
func (s *childServer) kill() {
	if s.running() {
		_ = s.cmd.Process.Kill()
	}
	<-s.exited
}
