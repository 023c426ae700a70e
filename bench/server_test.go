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

// The line orderd logs once it is ready (cmd/orderd: "ready"), before the
// state store (a replay of the whole log) and with it (the log's tail).
func TestReadyLine(t *testing.T) {
	line := `time=2026-11-23T13:51:33.032Z level=INFO msg=ready orders=1000000 records=4000000 applied=4000000 skipped=0 undecodable=0 took=12.5s`
	var r restartResult
	if err := r.parseReady(line); err != nil {
		t.Fatal(err)
	}
	if r.Orders != 1_000_000 || r.Records != 4_000_000 || r.RecoverySeconds != 12.5 || r.RecordsPerSec != 320_000 || r.Rebuilt != nil {
		t.Fatalf("parsed %+v", r)
	}
	if err := r.parseReady(`level=INFO msg="recovering from the audit log" partitions=1`); err == nil {
		t.Fatal("a line that is not the recovery line was accepted")
	}

	for _, c := range []struct {
		line    string
		records int64
		took    float64
		rebuilt bool
	}{
		{`time=2026-12-05T12:01:02.003Z level=INFO msg=ready orders=0 records=37 applied=37 skipped=0 undecodable=0 took=151ms store_mib=512 rebuilt=false`, 37, 0.151, false},
		{`time=2026-12-05T12:01:02.003Z level=INFO msg=ready orders=0 records=1000000 applied=1000000 skipped=0 undecodable=0 took=12.001s store_mib=0 rebuilt=true`, 1_000_000, 12.001, true},
	} {
		var r restartResult
		if err := r.parseReady(c.line); err != nil {
			t.Fatal(err)
		}
		if r.Orders != 0 || r.Records != c.records || r.RecoverySeconds != c.took || r.Rebuilt == nil || *r.Rebuilt != c.rebuilt {
			t.Errorf("%s: parsed %+v (rebuilt %v)", c.line, r, r.Rebuilt)
		}
	}
}
