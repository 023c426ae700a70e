package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProgressComputation(t *testing.T) {
	tests := []struct {
		name          string
		p             progress
		fraction      float64
		rate          float64
		remaining     time.Duration
		remainingKnow bool
		render        string
	}{
		{
			name: "start", p: progress{read: 0, total: 10_000, elapsed: 0},
			fraction: 0, rate: 0, remainingKnow: false,
			render: "[........................]   0%  0/10,000 records  0 rec/s",
		},
		{
			name: "under way", p: progress{read: 4_200, total: 10_000, elapsed: 2 * time.Second},
			fraction: 0.42, rate: 2_100, remaining: 3 * time.Second, remainingKnow: true,
			render: "[##########..............]  42%  4,200/10,000 records  2,100 rec/s  3s left",
		},
		{
			name: "rounds the time left", p: progress{read: 1_000, total: 1_234_567, elapsed: 500 * time.Millisecond},
			fraction: 1_000.0 / 1_234_567, rate: 2_000, remaining: 617 * time.Second, remainingKnow: true,
			render: "[........................]   0%  1,000/1,234,567 records  2,000 rec/s  10m17s left",
		},
		{
			name: "done", p: progress{read: 500, total: 500, elapsed: time.Second},
			fraction: 1, rate: 500, remaining: 0, remainingKnow: true,
			render: "[########################] 100%  500/500 records  500 rec/s  0s left",
		},
		{
			// Records arrive beyond the end offsets while following.
			name: "past the end", p: progress{read: 600, total: 500, elapsed: 2 * time.Second},
			fraction: 1, rate: 300, remaining: 0, remainingKnow: true,
			render: "[########################] 100%  600/500 records  300 rec/s  0s left",
		},
		{
			name: "empty", p: progress{read: 0, total: 0, elapsed: time.Second},
			fraction: 1, rate: 0, remaining: 0, remainingKnow: true,
			render: "[########################] 100%  0/0 records  0 rec/s  0s left",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.InDelta(t, tt.fraction, tt.p.fraction(), 1e-9)
			assert.InDelta(t, tt.rate, tt.p.rate(), 1e-9)
			d, ok := tt.p.remaining()
			assert.Equal(t, tt.remainingKnow, ok)
			assert.Equal(t, tt.remaining, d)
			assert.Equal(t, tt.render, tt.p.render())
		})
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 12345: "12,345",
		1234567: "1,234,567", -1234: "-1,234"} {
		assert.Equal(t, want, thousands(n), "%d", n)
	}
}

// TestProgressBar checks when the bar is drawn: not before progressDelay,
// at most every progressRedrawEvery, taken off before output that shares
// the screen, and gone once the end offsets are reached.
func TestProgressBar(t *testing.T) {
	var w strings.Builder
	start := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	b := &progressBar{w: &w, start: start, total: 1000, sharesScreen: true}

	b.add(100, start.Add(100*time.Millisecond))
	assert.Empty(t, w.String(), "nothing before the delay: small reads show no bar")

	b.add(100, start.Add(progressDelay))
	require.Equal(t, eraseLine+"[####....................]  20%  200/1,000 records  400 rec/s  2s left", w.String())
	w.Reset()

	b.add(100, start.Add(progressDelay+100*time.Millisecond))
	assert.Empty(t, w.String(), "redraws are throttled")

	b.beforeOutput()
	assert.Equal(t, eraseLine, w.String(), "taken off before a line is printed")
	w.Reset()
	b.tick(start.Add(progressDelay + progressRedrawEvery + 2*time.Millisecond))
	assert.True(t, strings.HasPrefix(w.String(), eraseLine+"[#######"), w.String())
	w.Reset()

	b.add(700, start.Add(2*time.Second))
	assert.Equal(t, eraseLine, w.String(), "the bar is removed at the end")
	w.Reset()
	b.add(10, start.Add(3*time.Second))
	b.tick(start.Add(4 * time.Second))
	assert.Empty(t, w.String(), "and stays away")

	// Output to a file does not clear the bar.
	b = &progressBar{w: &w, start: start, total: 1000}
	b.tick(start.Add(time.Second))
	w.Reset()
	b.beforeOutput()
	assert.Empty(t, w.String())

	// A nil bar (no terminal) is inert.
	var none *progressBar
	none.add(1, start)
	none.tick(start)
	none.beforeOutput()
	none.finish()
}

func TestProgressBarOnlyOnTerminals(t *testing.T) {
	getenv := func(string) string { return "" }
	var w strings.Builder
	assert.Nil(t, newProgressBar(&w, &w, 1000, getenv, time.Now()), "not a file")

	f, err := os.CreateTemp(t.TempDir(), "stderr")
	require.NoError(t, err)
	defer f.Close()
	assert.Nil(t, newProgressBar(f, f, 1000, getenv, time.Now()), "a regular file is not a terminal")

	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		assert.NotNil(t, newProgressBar(tty, f, 1000, getenv, time.Now()))
		assert.Nil(t, newProgressBar(tty, f, 0, getenv, time.Now()), "nothing to read")
		assert.Nil(t, newProgressBar(tty, f, 1000, func(string) string { return "dumb" }, time.Now()))
	}
}
