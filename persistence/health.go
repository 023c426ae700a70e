package persistence

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/orderd/orderd/order"
)

// healthProbeInterval is how often a journal whose last produce request
// failed asks the broker whether it is back. Readiness follows the journal's
// health, so without the probe a server taken out of rotation for a failing
// broker would get no traffic and never learn that the broker returned.
const healthProbeInterval = time.Second

// journalHealth remembers whether the last produce request failed.
type journalHealth struct {
	mu     sync.Mutex
	err    error
	since  time.Time
	probes atomic.Int64 // probes sent, for tests
}

// noteProduce records a produce request's outcome.
func (j *KafkaJournal) noteProduce(result error) {
	j.health.mu.Lock()
	defer j.health.mu.Unlock()
	switch {
	case result == nil && j.health.err != nil:
		j.log.Info("journal writes succeed again", "failing_for", time.Since(j.health.since).Round(time.Millisecond))
		j.health.err = nil
	case result != nil && j.health.err == nil:
		j.health.err, j.health.since = result, time.Now()
	}
}

// Healthy returns nil unless the journal's last produce request failed and
// the broker has not answered since; the error then matches
// order.ErrJournalUnavailable and says since when.
func (j *KafkaJournal) Healthy() error {
	j.health.mu.Lock()
	defer j.health.mu.Unlock()
	if j.health.err == nil {
		return nil
	}
	return fmt.Errorf("%w: writes failing since %s: %w", order.ErrJournalUnavailable,
		j.health.since.UTC().Format(time.RFC3339), errors.Unwrap(j.health.err))
}

// probeHealth runs until Close. While the journal is unhealthy it asks the
// broker for the end offset of partition 0: an answer means the broker is
// reachable again and the journal is marked healthy (the next produce request
// failing marks it unhealthy again).
func (j *KafkaJournal) probeHealth() {
	defer j.reads.Done()
	ticker := time.NewTicker(healthProbeInterval)
	defer ticker.Stop()
	for {
		select {
		case <-j.readsCtx.Done():
			return
		case <-ticker.C:
		}
		if j.Healthy() == nil {
			continue
		}
		j.health.probes.Add(1)
		ctx, cancel := context.WithTimeout(j.readsCtx, healthProbeInterval)
		_, err := j.listOffsets(ctx, []int{0}, kafka.LastOffsetOf)
		cancel()
		if err == nil {
			j.noteProduce(nil)
		}
	}
}
