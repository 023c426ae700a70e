package persistence

import (
	"log/slog"
	"time"
)

// replayProgressInterval is how often a long replay logs how far it is, so an
// operator waiting for /readyz after a restart sees it move and how long it
// has left. A replay shorter than this logs nothing until its summary.
const replayProgressInterval = 2 * time.Second

// replayProgress tracks a replay against the end offsets it measured.
type replayProgress struct {
	log      *slog.Logger
	total    int64 // records between the first and end offsets
	start    time.Time
	lastLog  time.Time
	now      func() time.Time
	interval time.Duration
}

func newReplayProgress(log *slog.Logger, first, end []int64, now func() time.Time) *replayProgress {
	var total int64
	for p := range first {
		total += max(0, end[p]-first[p])
	}
	t := now()
	return &replayProgress{log: log, total: total, start: t, lastLog: t, now: now, interval: replayProgressInterval}
}

// observe logs progress when an interval has passed since the last line.
func (p *replayProgress) observe(read int) {
	t := p.now()
	if t.Sub(p.lastLog) < p.interval {
		return
	}
	p.lastLog = t
	rate, percent, left := p.estimate(read, t)
	p.log.Info("replaying the journal", "records", read, "of", p.total,
		"percent", percent, "records_per_s", int(rate), "time_left", left.Round(time.Second))
}

// estimate returns the rate so far, the share done and the time left at it.
func (p *replayProgress) estimate(read int, t time.Time) (ratePerSecond float64, percent int, left time.Duration) {
	elapsed := t.Sub(p.start).Seconds()
	if elapsed > 0 {
		ratePerSecond = float64(read) / elapsed
	}
	if p.total > 0 {
		percent = int(min(100, 100*int64(read)/p.total))
	}
	if ratePerSecond > 0 && int64(read) < p.total {
		left = time.Duration(float64(p.total-int64(read)) / ratePerSecond * float64(time.Second))
	}
	return ratePerSecond, percent, left
}
