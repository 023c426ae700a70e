package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// readyLine is the line orderd logs when recovery is done, e.g.
// `msg=ready orders=1000000 records=1000000 applied=1000000 skipped=0 undecodable=0 took=6.009s`.
var readyLine = regexp.MustCompile(`msg=ready orders=(\d+) records=(\d+) .*took=(\S+)`)

// restartResult is what --restart measured: how fast orderd rebuilt itself
// from the log, and whether every order came back as it was.
type restartResult struct {
	Orders  int64 `json:"orders"`  // orders the server rebuilt
	Records int64 `json:"records"` // records it read from the log
	// RecoverySeconds is the server's own measure of its replay (log to
	// ready); ReadySeconds is from starting the process to /readyz 200,
	// the embedded broker's start-up included.
	RecoverySeconds float64       `json:"recovery_seconds"`
	ReadySeconds    float64       `json:"ready_seconds"`
	RecordsPerSec   float64       `json:"records_per_sec"` // Records / RecoverySeconds
	RSSBytes        int64         `json:"rss_bytes"`       // once ready
	Verify          *verifyResult `json:"verify,omitempty"`
}

// restartOrderd stops srv gracefully, starts the same binary with the same
// arguments on the same data directory, measures its recovery and, when
// tracks are given, verifies every order again. It returns the new server,
// which the caller stops; on error no server is left running.
func restartOrderd(ctx context.Context, srv *childServer, tracks []*orderTrack, cfg config, stderr io.Writer) (*childServer, *restartResult, error) {
	tmp := srv.tmpDir
	srv.tmpDir = "" // kept for the restarted server, which removes it
	fmt.Fprintln(stderr, "bench: restarting orderd on the same data directory")
	if err := srv.stop(); err != nil {
		os.RemoveAll(tmp)
		return nil, nil, fmt.Errorf("stopping orderd for the restart: %w", err)
	}
	logFile := cfg.serverLog
	if logFile != "" {
		logFile += ".restart"
	}
	began := time.Now()
	next, err := startChild(ctx, "orderd", exec.Command(srv.cmd.Path, srv.cmd.Args[1:]...), logFile)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, nil, fmt.Errorf("restarting orderd: %w", err)
	}
	next.tmpDir = tmp
	res := &restartResult{ReadySeconds: time.Since(began).Seconds()}
	line, err := next.readyLine(ctx)
	if err == nil {
		err = res.parseReady(line)
	}
	if err != nil {
		return next, nil, err
	}
	if s, err := readProc(next.pid()); err == nil {
		res.RSSBytes = s.rssBytes
	}
	if tracks != nil {
		client, err := newAPIClient(next.url, cfg.load.clients, cfg.timeout)
		if err != nil {
			return next, nil, err
		}
		defer client.closeIdle()
		fmt.Fprintf(stderr, "bench: verifying the final state of %d orders after the restart\n", len(tracks))
		v := verifyFinal(ctx, client, tracks, cfg.load.clients)
		res.Verify = &v
	}
	return next, res, nil
}

func (r *restartResult) parseReady(line string) error {
	m := readyLine.FindStringSubmatch(line)
	if m == nil {
		return fmt.Errorf("orderd was ready but logged no recovery line (%q)", line)
	}
	r.Orders, _ = strconv.ParseInt(m[1], 10, 64)
	r.Records, _ = strconv.ParseInt(m[2], 10, 64)
	took, err := time.ParseDuration(m[3])
	if err != nil {
		return fmt.Errorf("orderd's recovery line: took=%q: %w", m[3], err)
	}
	r.RecoverySeconds = took.Seconds()
	if r.RecoverySeconds > 0 {
		r.RecordsPerSec = float64(r.Records) / r.RecoverySeconds
	}
	return nil
}

func (r *restartResult) summary() string {
	s := fmt.Sprintf("restart: %d records (%d orders) recovered in %.2f s (%.0f records/s), ready %.2f s after start, rss %s",
		r.Records, r.Orders, r.RecoverySeconds, r.RecordsPerSec, r.ReadySeconds, mib(r.RSSBytes))
	if v := r.Verify; v != nil {
		verdict := "ok"
		if !v.ok() {
			verdict = fmt.Sprintf("FAILED (%d wrong or unreadable)", v.Mismatches)
		}
		s += fmt.Sprintf("; verified %d of %d orders after it: %s", v.Checked, v.Orders, verdict)
	}
	return s
}

// verified is the verification after the restart, nil if there was none.
func (r *restartResult) verified() *verifyResult {
	if r == nil {
		return nil
	}
	return r.Verify
}
