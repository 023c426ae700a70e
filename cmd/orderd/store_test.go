package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tailWorkloadOrders is smaller than the recovery test's workload: the point
// here is what a start reads, not volume.
const tailWorkloadOrders = 300

// readyRecords is the records= of the "ready" line: what the start read of
// the log to bring the state store up to its end.
var readyRecords = regexp.MustCompile(`msg=ready orders=\d+ records=(\d+) `)

func recordsReadAtStart(t *testing.T, p *serverProcess) int {
	t.Helper()
	// /readyz answers 200 a moment before the line is logged: wait for it.
	var m []string
	require.Eventually(t, func() bool {
		m = readyRecords.FindStringSubmatch(p.logs.String())
		return m != nil
	}, roomyTimeout, 10*time.Millisecond, "no ready line in\n%s", p.logs.String())
	n, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return n
}

// TestRestartReadsOnlyTheTail: a restart reads only what the state store does
// not hold yet, nothing after a graceful stop and at most the records since
// the last start after kill -9, and every order comes back as it was, loaded
// from the store when named.
func TestRestartReadsOnlyTheTail(t *testing.T) {
	seed := testSeed(t)
	dataDir := t.TempDir()
	w := newWorkload(seed, tailWorkloadOrders)
	first := startServer(t, dataDir)
	w.run(t, first.url)
	require.False(t, t.Failed(), "seed %d", seed)
	before := snapshotOrders(t, first.url, w.ids)
	first.stop(t, syscall.SIGTERM)
	logged := len(w.acks)

	second := startServer(t, dataDir)
	assert.Zero(t, recordsReadAtStart(t, second), "after a graceful stop the store holds the whole log")
	assert.Equal(t, before, snapshotOrders(t, second.url, w.ids), "state and history after a graceful restart")
	advanced := w.advance(t, second.url)
	require.Positive(t, advanced)
	beforeCrash := snapshotOrders(t, second.url, w.ids)
	second.stop(t, syscall.SIGKILL)

	third := startServer(t, dataDir)
	read := recordsReadAtStart(t, third)
	assert.LessOrEqual(t, read, advanced, "after kill -9 a start reads at most the records since the store last caught up")
	t.Logf("%d records in the log; the start after a graceful stop read 0, the one after kill -9 read %d", logged+advanced, read)
	assert.Equal(t, beforeCrash, snapshotOrders(t, third.url, w.ids), "state and history after kill -9")
	w.checkAgainstAcks(t, third.url)
	third.stop(t, syscall.SIGTERM)
	checkLog(t, dataDir, w)
}

// TestAStoreThatCannotBeTrustedIsRebuilt: a state store deleted, damaged, or
// left by another topic is noticed at start and rebuilt from the log, and
// every order comes back as it was.
func TestAStoreThatCannotBeTrustedIsRebuilt(t *testing.T) {
	seed := testSeed(t)
	dataDir := t.TempDir()
	stateDir := filepath.Join(dataDir, stateDirName)
	w := newWorkload(seed, 200)
	first := startServer(t, dataDir)
	w.run(t, first.url)
	want := snapshotOrders(t, first.url, w.ids)
	first.stop(t, syscall.SIGTERM)

	damages := []struct {
		name   string
		damage func(t *testing.T)
		// noticed is what the log says about the store at the start.
		noticed string
	}{
		{"deleted", func(t *testing.T) { require.NoError(t, os.RemoveAll(stateDir)) }, "caught up the state store"},
		{"every file garbled", func(t *testing.T) { garbleFiles(t, stateDir) }, "cannot be trusted"},
		{"from another topic", func(t *testing.T) {
			other := startServer(t, dataDir, "--topic", "orders.elsewhere")
			other.stop(t, syscall.SIGTERM)
		}, "cannot be trusted"},
	}
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			d.damage(t)
			srv := startServer(t, dataDir)
			assert.Contains(t, srv.logs.String(), d.noticed)
			assert.Equal(t, len(w.acks), recordsReadAtStart(t, srv), "the whole log is read again")
			assert.Equal(t, want, snapshotOrders(t, srv.url, w.ids))
			srv.stop(t, syscall.SIGTERM)
		})
	}
}

// garbleFiles overwrites the middle of every file under dir with bytes no
// store writes.
func garbleFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	garbled := 0
	for _, e := range entries {
		if e.IsDir() || e.Name() == "LOCK" {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		if len(data) == 0 {
			continue
		}
		for i := len(data) / 4; i < len(data)*3/4+1 && i < len(data); i++ {
			data[i] ^= 0x5a
		}
		require.NoError(t, os.WriteFile(path, data, 0o600))
		garbled++
	}
	require.Positive(t, garbled)
}
