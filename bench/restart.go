package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// readyLine is the line orderd logs when it is ready, e.g.
// `msg=ready orders=0 records=0 applied=0 skipped=0 undecodable=0 took=151ms store_mib=512 rebuilt=false`.
// Since the state store, records= is what the start read of the log (the
// tail after the store's checkpoints) and orders= is 0 (orders are loaded
// when asked for); before it, a replay of the whole log and the orders it
// rebuilt. rebuilt= (whether the store had to be rebuilt from the whole
// log) is absent from the older line.
var (
	readyLine        = regexp.MustCompile(`msg=ready orders=(\d+) records=(\d+) .*took=(\S+)`)
	readyLineRebuilt = regexp.MustCompile(` rebuilt=(true|false)\b`)
)

// restartResult is what --restart measured: what orderd read of the log to
// be ready again, how long that took, its memory, and whether every order
// came back as it was.
type restartResult struct {
	// Signal is how orderd was stopped: "term" (graceful) or "kill".
	Signal  string `json:"signal"`
	Orders  int64  `json:"orders"`  // orders the server rebuilt at start (0 with the state store)
	Records int64  `json:"records"` // records the start read of the log
	// Rebuilt is the ready line's rebuilt=: the state store was rebuilt
	// from the whole log. Nil when the line does not say.
	Rebuilt *bool `json:"rebuilt,omitempty"`
	// RecoverySeconds is the server's own measure of its start's reading
	// of the log (took=); ReadySeconds is from starting the process to
	// /readyz 200, the embedded broker's start-up included.
	RecoverySeconds float64 `json:"recovery_seconds"`
	ReadySeconds    float64 `json:"ready_seconds"`
	RecordsPerSec   float64 `json:"records_per_sec"` // Records / RecoverySeconds
	// RSSBytes and RSSPeakBytes (VmHWM: the start's peak) are read once
	// the server is ready, before the verification reads anything;
	// RSSAfterVerifyBytes after it, with every order read once (and so
	// loaded into memory, until evicted).
	RSSBytes     int64 `json:"rss_bytes"`
	RSSPeakBytes int64 `json:"rss_peak_bytes"`
	// RSSSettledBytes is read restartSettle after RSSBytes: orderd hands
	// the start's garbage back to the system just after it is ready, so
	// the first reading may or may not include it.
	RSSSettledBytes     int64         `json:"rss_settled_bytes"`
	SettleSeconds       float64       `json:"settle_seconds"`
	RSSAfterVerifyBytes int64         `json:"rss_after_verify_bytes,omitempty"`
	Verify              *verifyResult `json:"verify,omitempty"`
}

// restartOrderd stops srv (gracefully, or with SIGKILL with
// --restart-signal kill), starts the same binary with the same arguments
// on the same data directory, measures its start and, when tracks are
// given, verifies every order again, timing each read: every order is out
// of memory after a restart, so those are cold reads. It returns the new
// server, which the caller stops; on error no server is left running.
func restartOrderd(ctx context.Context, srv *childServer, tracks []*orderTrack, cfg config, stderr io.Writer) (*childServer, *restartResult, error) {
	tmp := srv.tmpDir
	srv.tmpDir = "" // kept for the restarted server, which removes it
	res := &restartResult{Signal: restartSignalTerm}
	if cfg.restartKill {
		res.Signal = restartSignalKill
		fmt.Fprintln(stderr, "bench: killing orderd (SIGKILL) and restarting it on the same data directory")
		if !srv.running() {
			os.RemoveAll(tmp)
			return nil, nil, fmt.Errorf("orderd had exited before the restart (%v):\n%s", srv.err, srv.logTail())
		}
		srv.kill()
	} else {
		fmt.Fprintln(stderr, "bench: restarting orderd on the same data directory")
		if err := srv.stop(); err != nil {
			os.RemoveAll(tmp)
			return nil, nil, fmt.Errorf("stopping orderd for the restart: %w", err)
		}
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
	res.ReadySeconds = time.Since(began).Seconds()
	line, err := next.readyLine(ctx)
	if err == nil {
		err = res.parseReady(line)
	}
	if err != nil {
		return next, nil, err
	}
	if s, err := readProc(next.pid()); err == nil {
		res.RSSBytes, res.RSSPeakBytes = s.rssBytes, s.hwmBytes
	}
	select {
	case <-time.After(cfg.restartSettle):
	case <-ctx.Done():
		return next, nil, ctx.Err()
	}
	res.SettleSeconds = cfg.restartSettle.Seconds()
	if s, err := readProc(next.pid()); err == nil {
		res.RSSSettledBytes = s.rssBytes
	}
	if tracks != nil {
		readers := cfg.verifyReaders(cfg.load.clients)
		client, err := newAPIClient(next.url, readers, cfg.timeout)
		if err != nil {
			return next, nil, err
		}
		defer client.closeIdle()
		fmt.Fprintf(stderr, "bench: verifying the final state of %d orders after the restart\n", len(tracks))
		v := verifyFinal(ctx, []getter{client}, tracks, readers)
		res.Verify = &v
		if s, err := readProc(next.pid()); err == nil {
			res.RSSAfterVerifyBytes = s.rssBytes
		}
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
	if m := readyLineRebuilt.FindStringSubmatch(line); m != nil {
		rebuilt := m[1] == "true"
		r.Rebuilt = &rebuilt
	}
	if r.RecoverySeconds > 0 {
		r.RecordsPerSec = float64(r.Records) / r.RecoverySeconds
	}
	return nil
}

func (r *restartResult) summary() string {
	how := "graceful"
	if r.Signal == restartSignalKill {
		how = "after SIGKILL"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "restart (%s): read %d records of the log in %.2f s", how, r.Records, r.RecoverySeconds)
	if r.Orders > 0 {
		fmt.Fprintf(&b, " (%d orders, %.0f records/s)", r.Orders, r.RecordsPerSec)
	}
	if r.Rebuilt != nil && *r.Rebuilt {
		b.WriteString(", state store REBUILT from the log")
	}
	fmt.Fprintf(&b, ", ready %.2f s after start, rss %s (peak %s), %s %.0f s later",
		r.ReadySeconds, mib(r.RSSBytes), mib(r.RSSPeakBytes), mib(r.RSSSettledBytes), r.SettleSeconds)
	if v := r.Verify; v != nil {
		verdict := "ok"
		if !v.ok() {
			verdict = fmt.Sprintf("FAILED (%d wrong or unreadable)", v.Mismatches)
		}
		l := v.Latency
		fmt.Fprintf(&b, "; verified %d of %d orders after it: %s; cold GETs (%d, up to %d in flight) ms p50 %s p99 %s max %s; rss after them %s",
			v.Checked, v.Orders, verdict, l.Count, v.Workers, fmtMs(l.P50Ms), fmtMs(l.P99Ms), fmtMs(l.MaxMs), mib(r.RSSAfterVerifyBytes))
	}
	return b.String()
}

// verified is the verification after the restart, nil if there was none.
func (r *restartResult) verified() *verifyResult {
	if r == nil {
		return nil
	}
	return r.Verify
}
