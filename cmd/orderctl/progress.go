package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"
)

// Progress bar settings.
const (
	// progressDelay: the bar appears only if reading up to the end offsets
	// takes longer than this, so that a small topic prints no flicker.
	progressDelay = 500 * time.Millisecond
	// progressRedrawEvery throttles redraws: a terminal that redraws on
	// every record slows the read down.
	progressRedrawEvery = 200 * time.Millisecond
	// progressBarWidth is the bar's width in cells, leaving room on an
	// 80-column terminal for the numbers.
	progressBarWidth = 24
)

// eraseLine returns the cursor to the start of the line and clears it.
const eraseLine = "\r\033[K"

// progress is how far a read from the beginning has come towards the end
// offsets captured at its start.
type progress struct {
	read    int64         // records read so far
	total   int64         // records between the start and the end offsets
	elapsed time.Duration // since the read started
}

// fraction is read/total in [0, 1]; an empty read is complete.
func (p progress) fraction() float64 {
	if p.total <= 0 {
		return 1
	}
	return math.Min(1, math.Max(0, float64(p.read)/float64(p.total)))
}

// rate is records per second since the start, 0 before any time has passed.
func (p progress) rate() float64 {
	if p.elapsed <= 0 {
		return 0
	}
	return float64(p.read) / p.elapsed.Seconds()
}

// remaining estimates the time left at the rate so far; ok is false while
// there is no rate to estimate from.
func (p progress) remaining() (d time.Duration, ok bool) {
	left := p.total - p.read
	if left <= 0 {
		return 0, true
	}
	r := p.rate()
	if r <= 0 {
		return 0, false
	}
	return time.Duration(float64(left) / r * float64(time.Second)).Round(time.Second), true
}

// render draws the bar, e.g.
//
//	[##########..............]  42%  4,200/10,000 records  3,150 rec/s  2s left
func (p progress) render() string {
	f := p.fraction()
	filled := int(f * progressBarWidth)
	var b strings.Builder
	b.WriteByte('[')
	b.WriteString(strings.Repeat("#", filled))
	b.WriteString(strings.Repeat(".", progressBarWidth-filled))
	fmt.Fprintf(&b, "] %3d%%  %s/%s records  %s rec/s", int(f*100), thousands(p.read), thousands(p.total), thousands(int64(math.Round(p.rate()))))
	if d, ok := p.remaining(); ok {
		fmt.Fprintf(&b, "  %v left", d)
	}
	return b.String()
}

// thousands writes n with comma separators: 12,345.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// progressBar draws progress on a terminal. It is used from one goroutine
// (tail's loop); a nil *progressBar draws nothing.
type progressBar struct {
	w       io.Writer
	start   time.Time
	total   int64
	read    int64
	drawnAt time.Time
	shown   bool // the bar is on screen
	done    bool
	// sharesScreen: stdout is a terminal too, so printed lines and the
	// bar share the screen.
	sharesScreen bool
}

// newProgressBar returns a bar on w (stderr) for a read of total records, or
// nil when w is not a terminal or there is nothing to read. out is stdout.
func newProgressBar(w, out io.Writer, total int64, getenv func(string) string, now time.Time) *progressBar {
	if total <= 0 || !isTerminal(w, getenv) {
		return nil
	}
	return &progressBar{w: w, start: now, total: total, sharesScreen: isTerminal(out, getenv)}
}

// isTerminal reports whether w is a terminal that understands the escape
// sequences the bar uses. A character device is taken for a terminal: the
// standard library has no isatty, and no other dependency is worth it.
func isTerminal(w io.Writer, getenv func(string) string) bool {
	f, ok := w.(*os.File)
	if !ok || getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// add counts n records read and redraws if it is time.
func (b *progressBar) add(n int64, now time.Time) {
	if b == nil || b.done {
		return
	}
	b.read += n
	if b.read >= b.total {
		b.finish()
		return
	}
	b.tick(now)
}

// tick redraws the bar if it is due: after progressDelay, then at most every
// progressRedrawEvery (also after a clear, so that lines printed in a burst
// do not redraw it each time).
func (b *progressBar) tick(now time.Time) {
	if b == nil || b.done || now.Sub(b.start) < progressDelay || now.Sub(b.drawnAt) < progressRedrawEvery {
		return
	}
	p := progress{read: b.read, total: b.total, elapsed: now.Sub(b.start)}
	fmt.Fprint(b.w, eraseLine+p.render())
	b.shown, b.drawnAt = true, now
}

// beforeOutput takes the bar off the screen before a line is printed to
// stdout, when stdout is the same terminal, so that the line does not land
// inside the bar; a later tick draws it again.
func (b *progressBar) beforeOutput() {
	if b != nil && b.sharesScreen {
		b.clear()
	}
}

// clear takes the bar off the screen.
func (b *progressBar) clear() {
	if b == nil || !b.shown {
		return
	}
	fmt.Fprint(b.w, eraseLine)
	b.shown = false
}

// finish removes the bar for good: the end offsets have been reached.
func (b *progressBar) finish() {
	if b == nil || b.done {
		return
	}
	b.clear()
	b.done = true
}
