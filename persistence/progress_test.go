package persistence

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestReplayProgressEstimates(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	var buf bytes.Buffer
	p := newReplayProgress(slog.New(slog.NewTextHandler(&buf, nil)), []int64{0, 10}, []int64{600, 410}, clock)
	assert.Equal(t, int64(1000), p.total)

	now = now.Add(time.Second)
	p.observe(100)
	assert.Empty(t, buf.String(), "nothing before an interval has passed")

	now = now.Add(time.Second) // 2 s in, 250 records/s
	p.observe(500)
	assert.Contains(t, buf.String(), "records=500 of=1000 percent=50 records_per_s=250 time_left=2s")

	rate, percent, left := p.estimate(1000, now)
	assert.Equal(t, 500.0, rate)
	assert.Equal(t, 100, percent)
	assert.Zero(t, left)
}
