package main

import (
	"os"
	"path/filepath"
	"testing"
)

// The line orderd's slog text handler writes once it listens.
func TestListeningLine(t *testing.T) {
	line := `time=2026-11-23T12:00:00.000Z level=INFO msg=listening addr=127.0.0.1:40123`
	m := listeningLine.FindStringSubmatch(line)
	if m == nil || m[1] != "127.0.0.1:40123" {
		t.Fatalf("match %q", m)
	}
	if listeningLine.MatchString(`level=INFO msg="using Kafka" mode=embedded broker=127.0.0.1:9092`) {
		t.Fatal("the broker's address line is not the HTTP address")
	}
}

func TestRepoRootFromThePackageDirectory(t *testing.T) {
	root, err := repoRoot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "orderd")); err != nil {
		t.Fatalf("root %s: %v", root, err)
	}
	wd, _ := os.Getwd()
	if filepath.Dir(wd) != root {
		t.Fatalf("root %s, but the package is in %s", root, wd)
	}
}

// The line orderd logs once it has recovered (cmd/orderd: "ready").
func TestReadyLine(t *testing.T) {
	line := `time=2026-11-23T13:51:33.032Z level=INFO msg=ready orders=1000000 records=4000000 applied=4000000 skipped=0 undecodable=0 took=12.5s`
	var r restartResult
	if err := r.parseReady(line); err != nil {
		t.Fatal(err)
	}
	if r.Orders != 1_000_000 || r.Records != 4_000_000 || r.RecoverySeconds != 12.5 || r.RecordsPerSec != 320_000 {
		t.Fatalf("parsed %+v", r)
	}
	if err := r.parseReady(`level=INFO msg="recovering from the audit log" partitions=1`); err == nil {
		t.Fatal("a line that is not the recovery line was accepted")
	}
}
