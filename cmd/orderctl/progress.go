package main

import (
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
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

// progressBar shows how far a read from the beginning has come towards the
// end offsets captured at its start: records read/total, rate and time left,
// drawn by schollz/progressbar, which draws only when called and starts no
// goroutine for a bar of known length. It is used from one goroutine (tail's
// loop); a nil *progressBar draws nothing.
type progressBar struct {
	bar    *progressbar.ProgressBar
	screen *screen
	start  time.Time
	read   int64 // records read so far
	total  int64 // records between the start and the end offsets
	// sharesScreen: stdout is a terminal too, so printed lines and the
	// bar share the screen.
	sharesScreen bool
}

// newProgressBar returns a bar on w (stderr, which tail has found to be a
// terminal) for a read of total records, or nil when there is nothing to read.
func newProgressBar(w io.Writer, total int64, sharesScreen bool, now time.Time) *progressBar {
	if total <= 0 {
		return nil
	}
	s := &screen{w: w}
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(s),
		progressbar.OptionSetWidth(progressBarWidth),
		progressbar.OptionSetTheme(progressbar.ThemeASCII),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("rec"),
		progressbar.OptionSetPredictTime(true), // [elapsed:left]
		progressbar.OptionThrottle(progressRedrawEvery),
		progressbar.OptionClearOnFinish(),
		// Erase with "\033[2K" rather than a line of spaces as wide as
		// the widest bar drawn.
		progressbar.OptionUseANSICodes(true),
	)
	// The rate and the time left count from the start of the read, not
	// from the first draw after progressDelay.
	bar.StartWithoutRender()
	return &progressBar{bar: bar, screen: s, start: now, total: total, sharesScreen: sharesScreen}
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
	if b == nil {
		return
	}
	b.read += n
	b.tick(now)
}

// tick hands the count to the library once progressDelay has passed; it
// redraws at most every progressRedrawEvery, and erases the bar for good
// when the count reaches the total. The count handed over stops at the
// total, as the library refuses more: records past the end offsets arrive
// while following.
// A bar that cannot be drawn is no reason to stop reading: errors are
// dropped, as for any write to stderr.
func (b *progressBar) tick(now time.Time) {
	if b == nil || now.Sub(b.start) < progressDelay || b.bar.IsFinished() {
		return
	}
	_ = b.bar.Set64(min(b.read, b.total))
}

// beforeOutput takes the bar off the screen before a line is printed to
// stdout, when stdout is the same terminal, so that the line does not land
// inside the bar; a later tick draws it again.
func (b *progressBar) beforeOutput() {
	if b != nil && b.sharesScreen {
		b.clear()
	}
}

// clear takes the bar off the screen, if it is there.
func (b *progressBar) clear() {
	if b == nil || !b.screen.drawn || b.bar.IsFinished() {
		return
	}
	_ = b.bar.Clear()
	b.screen.drawn = false
}

// finish removes the bar for good: tail has stopped, at the end offsets or
// before.
func (b *progressBar) finish() {
	if b == nil {
		return
	}
	b.clear()
	_ = b.bar.Exit()
}

// screen is stderr as the bar sees it. It notes whether the bar has written
// since it was last taken off, so that taking it off before each printed line
// writes nothing when it is not there.
type screen struct {
	w     io.Writer
	drawn bool
}

func (s *screen) Write(p []byte) (int, error) {
	s.drawn = true
	return s.w.Write(p)
}
