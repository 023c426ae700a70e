package main

import (
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestRecoveryGCPercentFollowsTheLiveHeap(t *testing.T) {
	for _, c := range []struct {
		base int
		live uint64
		want int
	}{
		{100, 0, 400},           // not measured yet: as if 64 MiB were live, capped
		{100, 16 << 20, 400},    // a small heap: at most five times itself
		{100, 128 << 20, 400},   // 512 MiB of garbage over 128 MiB live
		{100, 256 << 20, 200},   // ... over 256 MiB
		{100, 1 << 30, 100},     // a live heap above 512 MiB: the process's own
		{1000, 256 << 20, 1000}, // never below the process's own
	} {
		assert.Equal(t, c.want, recoveryGCPercent(c.base, c.live), "base %d, live %d", c.base, c.live)
	}
}

func TestRelaxGCWhileRecoveringRestoresTheSetting(t *testing.T) {
	before := debug.SetGCPercent(150)
	defer debug.SetGCPercent(before)
	restore := relaxGCWhileRecovering()
	assert.Eventually(t, func() bool { return gogc() > 150 }, 5*time.Second, time.Millisecond, "relaxed while recovering")
	restore()
	assert.Equal(t, 150, debug.SetGCPercent(150), "the process's own percentage is back")

	debug.SetGCPercent(-1) // GOGC=off stays off
	restore = relaxGCWhileRecovering()
	assert.Equal(t, -1, debug.SetGCPercent(-1))
	restore()
	assert.Equal(t, -1, debug.SetGCPercent(-1))
}

// gogc reads the GC percentage without setting it.
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}
