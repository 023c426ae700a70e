package main

import (
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestGCPercentFollowsTheLiveHeap(t *testing.T) {
	const headroom = 128 << 20
	for _, c := range []struct {
		name      string
		base      int
		live      uint64
		garbage   int64
		max, want int
	}{
		{"recovering, not measured yet: as if 64 MiB were live, capped", 100, 0, recoveryGarbageBytes, recoveryGCPercentMax, 400},
		{"recovering, a small heap: at most five times itself", 100, 16 << 20, recoveryGarbageBytes, recoveryGCPercentMax, 400},
		{"recovering, 512 MiB of garbage over 256 MiB live", 100, 256 << 20, recoveryGarbageBytes, recoveryGCPercentMax, 200},
		{"recovering, above 512 MiB live: the process's own", 100, 1 << 30, recoveryGarbageBytes, recoveryGCPercentMax, 100},
		{"never below the process's own", 1000, 256 << 20, recoveryGarbageBytes, recoveryGCPercentMax, 1000},
		{"serving, 128 MiB over 16 MiB live, no cap", 100, 16 << 20, headroom, 0, 800},
		{"serving, 128 MiB over 64 MiB live", 100, 64 << 20, headroom, 0, 200},
		{"serving, above 128 MiB live: the process's own", 100, 400 << 20, headroom, 0, 100},
		{"serving, no headroom: the process's own", 100, 16 << 20, 0, 0, 100},
	} {
		assert.Equal(t, c.want, gcPercentFor(c.base, c.live, c.garbage, c.max), c.name)
	}
}

func TestGCTunerModesAndRestore(t *testing.T) {
	before := debug.SetGCPercent(150)
	defer debug.SetGCPercent(before)

	// A headroom far above the test's live heap: serving raises GOGC
	// beyond what recovering may (recoveryGCPercentMax).
	g := startGCTuner(150, 8<<30)
	assert.Eventually(t, func() bool { return gogc() > 150 }, roomyTimeout, time.Millisecond, "raised while recovering")
	assert.LessOrEqual(t, gogc(), recoveryGCPercentMax, "capped while recovering")
	g.recoveryDone()
	assert.Eventually(t, func() bool { return gogc() > recoveryGCPercentMax }, roomyTimeout, time.Millisecond, "serving follows the headroom")
	g.close()
	assert.Equal(t, 150, gogc(), "the process's own percentage is back")
	g.close() // a second close is harmless

	// No headroom: serving is the process's own setting.
	g = startGCTuner(150, 0)
	g.recoveryDone()
	assert.Eventually(t, func() bool { return gogc() == 150 }, roomyTimeout, time.Millisecond)
	g.close()

	debug.SetGCPercent(-1) // GOGC=off stays off
	g = startGCTuner(-1, 128<<20)
	g.recoveryDone()
	assert.Equal(t, -1, debug.SetGCPercent(-1))
	g.close()
	assert.Equal(t, -1, debug.SetGCPercent(-1))
}

// gogc reads the GC percentage without setting it.
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}
