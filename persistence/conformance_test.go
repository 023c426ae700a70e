package persistence

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// The contract of order.Journal, checked against every implementation.
const (
	conformanceWriters         = 64 // goroutines appending at once
	conformanceOrdersPerWriter = 4  // orders each goroutine interleaves
	conformanceLoadEvery       = 32 // LoadReturnsOneOrderInOrder loads every this many orders
)

func testJournalConformance(t *testing.T, open func(t *testing.T) order.Journal) {
	t.Run("AppendThenReplayFieldForField", func(t *testing.T) {
		t.Parallel()
		j := open(t)
		ctx := testContext(t)
		want := lifecycle("order-1", len(lifecyclePath))
		for _, ev := range want {
			require.NoError(t, j.Append(ctx, ev))
		}
		got, stats := replayAll(t, j)
		assert.Equal(t, want, got)
		assert.Equal(t, order.ReplayStats{Records: len(want)}, stats)
	})

	t.Run("ConcurrentAppendsKeepEachOrdersOrder", func(t *testing.T) {
		t.Parallel()
		j := open(t)
		want := appendConcurrently(t, j)
		got, stats := replayAll(t, j)
		assert.Equal(t, conformanceWriters*conformanceOrdersPerWriter*len(lifecyclePath), stats.Records)
		assert.Zero(t, stats.Undecodable)
		assert.Equal(t, want, byOrder(got), "every order's events, in the order appended")
	})

	t.Run("LoadReturnsOneOrderInOrder", func(t *testing.T) {
		t.Parallel()
		j := open(t)
		want := appendConcurrently(t, j)
		// A sample: on Kafka every Load reads a whole partition. Under
		// -race with lz4 (the in-process subtest) a Load takes ~0.65 s,
		// against ~20 ms without: each batch read takes a 4 MiB block
		// buffer from pierrec/lz4's sync.Pool, which drops a quarter of
		// what is put back under the race detector (1.1 GB allocated
		// here, against 20 MB without). Every 8th order took 20–25 s,
		// near the deadline when one context covered them all; each Load
		// now has its own.
		ids := slices.Sorted(maps.Keys(want))
		for i := 0; i < len(ids); i += conformanceLoadEvery {
			got, err := j.Load(testContext(t), ids[i])
			require.NoError(t, err)
			require.Equal(t, want[ids[i]], got, "Load(%s)", ids[i])
		}
		got, err := j.Load(testContext(t), "no-such-order")
		require.NoError(t, err)
		assert.Empty(t, got)
		_, err = j.Load(testContext(t), "not a valid id")
		assert.ErrorIs(t, err, order.ErrInvalidID)
	})

	t.Run("ReplaySeesOnlyWhatExistedAtItsStart", func(t *testing.T) {
		t.Parallel()
		j := open(t)
		ctx := testContext(t)
		before := lifecycle("before", 3)
		for _, ev := range before {
			require.NoError(t, j.Append(ctx, ev))
		}
		late := lifecycleEvent("late", 1)
		var seen []order.Event
		stats, err := j.Replay(ctx, func(ev order.Event) error {
			if len(seen) == 0 {
				require.NoError(t, j.Append(ctx, late), "appending during a replay")
			}
			seen = append(seen, ev)
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, before, seen)
		assert.Equal(t, len(before), stats.Records)
		again, _ := replayAll(t, j)
		assert.Equal(t, byOrder(append(before, late)), byOrder(again), "the next replay sees the late event")
	})

	t.Run("ReplayStopsAtTheCallbacksError", func(t *testing.T) {
		t.Parallel()
		j := open(t)
		ctx := testContext(t)
		for _, ev := range lifecycle("order-1", 4) {
			require.NoError(t, j.Append(ctx, ev))
		}
		stop := errors.New("stop here")
		calls := 0
		_, err := j.Replay(ctx, func(order.Event) error {
			calls++
			if calls == 2 {
				return stop
			}
			return nil
		})
		assert.ErrorIs(t, err, stop)
		assert.Equal(t, 2, calls, "fn is not called after it failed")
	})

	t.Run("LoneAppendsComplete", func(t *testing.T) {
		t.Parallel()
		j := open(t)
		ctx := testContext(t)
		// One at a time, nothing else in flight: each must complete on
		// its own, without company to fill a batch.
		want := lifecycle("lonely", len(lifecyclePath))
		for _, ev := range want {
			require.NoError(t, j.Append(ctx, ev))
		}
		got, err := j.Load(ctx, "lonely")
		require.NoError(t, err)
		assert.Equal(t, want, got)
	})

	t.Run("EndedContextWritesNothing", func(t *testing.T) {
		t.Parallel()
		j := open(t)
		ctx, cancel := context.WithCancel(testContext(t))
		cancel()
		err := j.Append(ctx, lifecycleEvent("cancelled", 1))
		assert.ErrorIs(t, err, order.ErrJournalUnavailable)
		assert.ErrorIs(t, err, context.Canceled)
		got, err := j.Load(testContext(t), "cancelled")
		require.NoError(t, err)
		assert.Empty(t, got)
	})

	t.Run("InvalidEventIsRefusedUnwritten", func(t *testing.T) {
		t.Parallel()
		j := open(t)
		ctx := testContext(t)
		bad := lifecycleEvent("invalid", 2)
		bad.From = 0 // a version 2 must say where it came from
		err := j.Append(ctx, bad)
		assert.ErrorIs(t, err, order.ErrJournalUnavailable)
		assert.ErrorIs(t, err, ErrInvalidRecord)
		got, stats := replayAll(t, j)
		assert.Empty(t, got)
		assert.Zero(t, stats.Records)
	})

	t.Run("CloseThenAppendFailsCleanly", func(t *testing.T) {
		t.Parallel()
		j := open(t)
		ctx := testContext(t)
		require.NoError(t, j.Append(ctx, lifecycleEvent("closing", 1)))
		require.NoError(t, j.Close())
		err := j.Append(ctx, lifecycleEvent("closing", 2))
		assert.ErrorIs(t, err, order.ErrJournalUnavailable)
		assert.ErrorIs(t, err, ErrClosed)
		_, err = j.Replay(ctx, func(order.Event) error { return nil })
		assert.ErrorIs(t, err, ErrClosed)
		_, err = j.Load(ctx, "closing")
		assert.ErrorIs(t, err, ErrClosed)
		assert.NoError(t, j.Close(), "a second Close")
	})
}

// appendConcurrently has conformanceWriters goroutines each append the
// lifecycles of its orders, interleaving them, one append at a time per
// goroutine as an order's actor would. It returns the events by order.
// Each append has its own deadline (testTimeout) rather than one for all
// 1,280: with two runs of the suite on two cores, appending them and
// replaying them took 46–48 s in-process (lz4, -race), a good part of one.
func appendConcurrently(t *testing.T, j order.Journal) map[string][]order.Event {
	want := make(map[string][]order.Event)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range conformanceWriters {
		wg.Go(func() {
			for v := 1; v <= len(lifecyclePath); v++ {
				for o := range conformanceOrdersPerWriter {
					ev := lifecycleEvent(fmt.Sprintf("w%d-o%d", w, o), v)
					ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
					err := j.Append(ctx, ev)
					cancel()
					if err != nil {
						t.Errorf("Append(%s v%d): %v", ev.OrderID, v, err)
						return
					}
					mu.Lock()
					want[ev.OrderID] = append(want[ev.OrderID], ev)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	require.False(t, t.Failed())
	return want
}

func replayAll(t *testing.T, j order.Journal) ([]order.Event, order.ReplayStats) {
	t.Helper()
	var got []order.Event
	stats, err := j.Replay(testContext(t), func(ev order.Event) error {
		got = append(got, ev)
		return nil
	})
	require.NoError(t, err)
	return got, stats
}

func byOrder(events []order.Event) map[string][]order.Event {
	m := make(map[string][]order.Event)
	for _, ev := range events {
		m[ev.OrderID] = append(m[ev.OrderID], ev)
	}
	return m
}

func TestMemoryJournalConformance(t *testing.T) {
	testJournalConformance(t, func(t *testing.T) order.Journal {
		j := NewMemoryJournal()
		t.Cleanup(func() { _ = j.Close() })
		return j
	})
}

// TestKafkaJournalConformance runs the suite over both ways of reaching
// the broker: in-process, as orderd reaches its embedded broker, and TCP, as
// it reaches any other.
func TestKafkaJournalConformance(t *testing.T) {
	t.Run("InProcess", func(t *testing.T) {
		testJournalConformance(t, func(t *testing.T) order.Journal {
			e := startTestBroker(t)
			j := openTestJournal(t, e, KafkaConfig{Partitions: 4})
			t.Cleanup(func() { assert.Positive(t, e.InProcessConns(), "the journal never connected in-process") })
			return j
		})
	})
	t.Run("TCP", func(t *testing.T) {
		testJournalConformance(t, func(t *testing.T) order.Journal {
			e := startTestBroker(t)
			// Uncompressed here, lz4 (the default) in-process.
			j := openTestJournal(t, e, KafkaConfig{Partitions: 4, Dial: dialTCP, Compression: "none"})
			t.Cleanup(func() { assert.Zero(t, e.InProcessConns(), "the journal connected in-process") })
			return j
		})
	})
}
