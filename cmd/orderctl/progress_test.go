package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// eraseLine is how the library takes the bar off the line.
const eraseLine = "\033[2K\r"

// drawnBar is one drawing of the bar: percentage, bar, records read/total,
// rate, [elapsed:left], and the rest of the line cleared.
var drawnBar = regexp.MustCompile(`^\r +(\d+)% \[=*>?\.*\] \((\d+)/(\d+), \d+ rec/s\) \[[0-9hms.]+:[0-9hms.]+\]\033\[0K$`)

// requireDrawn asserts that out is one drawing of the bar at read of total.
func requireDrawn(t *testing.T, out string, percent, read, total string) {
	t.Helper()
	m := drawnBar.FindStringSubmatch(out)
	require.NotNil(t, m, "%q", out)
	assert.Equal(t, []string{percent, read, total}, m[1:], "%q", out)
}

// TestProgressBar checks when the bar is drawn: not before progressDelay,
// at most every progressRedrawEvery, taken off before output that shares
// the screen, and gone once the end offsets are reached. The delay runs on
// the times given; the library's throttle runs on the clock.
func TestProgressBar(t *testing.T) {
	var w strings.Builder
	start := time.Now()
	b := newProgressBar(&w, 1000, true, start)

	b.add(100, start.Add(100*time.Millisecond))
	assert.Empty(t, w.String(), "nothing before the delay: small reads show no bar")

	b.add(100, start.Add(progressDelay))
	requireDrawn(t, w.String(), "20", "200", "1000")
	w.Reset()

	// However long this loop takes, it cannot draw more often than the
	// throttle allows.
	began := time.Now()
	for range 100 {
		b.add(1, start.Add(progressDelay+time.Millisecond))
	}
	draws := strings.Count(w.String(), "rec/s")
	assert.LessOrEqual(t, draws, 1+int(time.Since(began)/progressRedrawEvery), "redraws are throttled: %q", w.String())
	w.Reset()

	b.beforeOutput()
	assert.Equal(t, eraseLine, w.String(), "taken off before a line is printed")
	w.Reset()
	b.beforeOutput()
	assert.Empty(t, w.String(), "nothing to take off")
	require.Eventually(t, func() bool {
		b.tick(start.Add(time.Second))
		return w.String() != ""
	}, roomyTimeout, 10*time.Millisecond, "a later tick draws it again")
	requireDrawn(t, w.String(), "30", "300", "1000")
	w.Reset()

	b.add(700, start.Add(2*time.Second))
	assert.Equal(t, eraseLine, w.String(), "the bar is removed at the end")
	w.Reset()
	b.add(10, start.Add(3*time.Second))
	b.tick(start.Add(4 * time.Second))
	b.beforeOutput()
	b.finish()
	assert.Empty(t, w.String(), "and stays away")

	// A read that reaches the end before the delay never shows a bar.
	b = newProgressBar(&w, 1000, true, start)
	b.add(1000, start.Add(100*time.Millisecond))
	b.add(10, start.Add(time.Second))
	b.tick(start.Add(2 * time.Second))
	b.beforeOutput()
	b.finish()
	assert.Empty(t, w.String())

	// An interrupted read takes the bar away, for good.
	b = newProgressBar(&w, 1000, true, start)
	b.add(10, start.Add(time.Second))
	require.NotEmpty(t, w.String())
	w.Reset()
	b.finish()
	assert.Equal(t, eraseLine, w.String())
	w.Reset()
	b.add(10, start.Add(2*time.Second))
	b.tick(start.Add(3 * time.Second))
	assert.Empty(t, w.String())

	// Output to a file does not clear the bar.
	b = newProgressBar(&w, 1000, false, start)
	b.tick(start.Add(time.Second))
	require.NotEmpty(t, w.String())
	w.Reset()
	b.beforeOutput()
	assert.Empty(t, w.String())

	// Nothing to read: no bar, and a nil bar is inert.
	none := newProgressBar(&w, 0, true, start)
	assert.Nil(t, none)
	none.add(1, start)
	none.tick(start)
	none.beforeOutput()
	none.finish()
}

func TestIsTerminal(t *testing.T) {
	getenv := func(string) string { return "" }
	var w strings.Builder
	assert.False(t, isTerminal(&w, getenv), "not a file")

	f, err := os.CreateTemp(t.TempDir(), "stderr")
	require.NoError(t, err)
	defer f.Close()
	assert.False(t, isTerminal(f, getenv), "a regular file is not a terminal")

	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		assert.True(t, isTerminal(tty, getenv))
		assert.False(t, isTerminal(tty, func(string) string { return "dumb" }))
	}
}
