package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeOrderdArg, as the first argument after the test flags, makes the test
// binary run TestFakeOrderdProcess as a stand-in for orderd: a process the
// harness can stop, kill and start again, as --restart does.
const fakeOrderdArg = "fake-orderd"

// fakeTailRecords is what the fake says its start read of the log when it
// was not stopped gracefully: a kill leaves a tail to read.
const fakeTailRecords = 5

// TestFakeOrderdProcess is not a test: run as a child process (see
// startFakeOrderd), it logs orderd's listening and ready lines, answers
// /readyz and every GET of an order with Created v1, and on SIGTERM leaves
// a marker in its directory and exits 0, so that its next start reads
// nothing of the "log"; after a SIGKILL the next start reads a tail.
func TestFakeOrderdProcess(t *testing.T) {
	if flag.Arg(0) != fakeOrderdArg {
		t.Skip("a helper process, started by TestRestart")
	}
	dir := flag.Arg(1)
	clean := filepath.Join(dir, "clean")
	records := fakeTailRecords
	if err := os.Remove(clean); err == nil {
		records = 0
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() {
		<-term
		_ = os.WriteFile(clean, nil, 0o644)
		os.Exit(0)
	}()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /v1/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, orderJSON(r.PathValue("id"), stateCreated, 1))
	})
	fmt.Fprintf(os.Stderr, "level=INFO msg=listening addr=%s\n", ln.Addr())
	fmt.Fprintf(os.Stderr, "level=INFO msg=ready orders=0 records=%d applied=%d skipped=0 undecodable=0 took=2ms store_mib=0 rebuilt=false\n", records, records)
	err = http.Serve(ln, mux)
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// startFakeOrderd starts TestFakeOrderdProcess as a child server, with the
// temporary directory the harness removes when it stops the server.
func startFakeOrderd(t *testing.T) *childServer {
	t.Helper()
	tmp, err := os.MkdirTemp("", "bench-fake-orderd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	cmd := exec.Command(os.Args[0], "-test.run=^TestFakeOrderdProcess$", fakeOrderdArg, tmp)
	srv, err := startChild(t.Context(), "orderd", cmd, "")
	if err != nil {
		t.Fatal(err)
	}
	srv.tmpDir = tmp
	return srv
}

// createdTracks are orders whose create was acknowledged and nothing since.
func createdTracks(n int) []*orderTrack {
	tracks := make([]*orderTrack, n)
	for i := range tracks {
		tracks[i] = &orderTrack{id: fmt.Sprintf("t-%d", i), created: true, state: stateCreated, version: 1, stopped: true}
	}
	return tracks
}

// --restart stops the server gracefully or kills it, starts it again, and
// reports what its start read, its memory once ready and after the
// verification, and the latency of every verification read.
func TestRestart(t *testing.T) {
	for _, c := range []struct {
		kill        bool
		signal      string
		records     int64
		description string
	}{
		{false, restartSignalTerm, 0, "restart (graceful): read 0 records"},
		{true, restartSignalKill, fakeTailRecords, "restart (after SIGKILL): read 5 records"},
	} {
		t.Run(c.signal, func(t *testing.T) {
			srv := startFakeOrderd(t)
			cfg := config{restartKill: c.kill, timeout: testRequestTimeout, restartSettle: 10 * time.Millisecond}
			cfg.load.clients = 4
			tracks := createdTracks(50)
			next, res, err := restartOrderd(t.Context(), srv, tracks, cfg, io.Discard)
			if next != nil {
				defer func() {
					if err := next.stop(); err != nil {
						t.Error(err)
					}
				}()
			}
			if err != nil {
				t.Fatal(err)
			}
			if next.pid() == srv.pid() || srv.running() {
				t.Fatalf("the old server (%d) is still running or was not replaced (%d)", srv.pid(), next.pid())
			}
			if res.Signal != c.signal || res.Records != c.records || res.Rebuilt == nil || *res.Rebuilt {
				t.Fatalf("result %+v", res)
			}
			if res.RSSBytes <= 0 || res.RSSPeakBytes < res.RSSBytes || res.RSSSettledBytes <= 0 || res.RSSAfterVerifyBytes <= 0 || res.SettleSeconds != 0.01 {
				t.Fatalf("memory: %+v", res)
			}
			v := res.Verify
			if v == nil || !v.ok() || v.Latency.Count != 50 || v.Latency.MaxMs <= 0 || v.Workers != 4 {
				t.Fatalf("verification %+v", v)
			}
			line := res.summary()
			for _, want := range []string{c.description, "cold GETs (50, up to 4 in flight) ms p50", "verified 50 of 50 orders after it: ok"} {
				if !strings.Contains(line, want) {
					t.Errorf("summary %q lacks %q", line, want)
				}
			}
		})
	}
}

// A server that died before the restart is an error, and nothing is left
// running.
func TestRestartOfADeadServer(t *testing.T) {
	for _, kill := range []bool{false, true} {
		srv := startFakeOrderd(t)
		srv.kill()
		next, _, err := restartOrderd(t.Context(), srv, nil, config{restartKill: kill}, io.Discard)
		if err == nil || next != nil || !strings.Contains(err.Error(), "exited") {
			t.Errorf("kill %v: server %v, err %v", kill, next, err)
		}
	}
}
