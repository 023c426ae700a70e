package main

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The garbage collector's pace. With GOGC's default a collection starts each
// time the heap has grown by the live heap, which for orderd is small until it
// holds many orders, while every request makes garbage on both sides of the
// embedded broker. Collections then come several times a second, and each
// one's mark phase takes CPU from the goroutines on the write path (a runtime
// trace showed the broker's request loop slowed inside produce requests).
// So orderd raises GOGC while the live heap is small, in two modes:
//
//   - Recovering: a restart reads the whole log at once (kfake alone
//     allocated ~2.7 KB per record served) while the live heap grows from
//     nothing; with GOGC's default the collector was over half of a million
//     records' restart. Up to recoveryGarbageBytes of garbage may pile up
//     between cycles, at most recoveryGCPercentMax of the live heap.
//   - Serving: at least --gc-headroom-mib of garbage between cycles (an
//     open-loop 10,000 requests/s: p99 8.7–11.1 ms with it, 12.8–21.6 ms
//     without, in three pairs of runs). A live heap large enough that GOGC
//     alone allows more (128 MiB of headroom: above 128 MiB live with
//     GOGC=100) is left to GOGC: a million orders cost no more than before.
//
// The percentage never goes below the process's own GOGC, GOGC=off is left
// alone, a GOMEMLIMIT still bounds the heap throughout, and Close puts the
// process's own setting back.
const (
	recoveryGarbageBytes = 512 << 20
	// recoveryGCPercentMax caps the percentage for small heaps, so that a
	// small server's restart (whose collections cost little anyway) peaks
	// at five times its live heap, not at recoveryGarbageBytes more.
	recoveryGCPercentMax = 400
	// gcRetune is how often the percentage follows the live heap: the
	// live heap changes between collections, which come every few hundred
	// milliseconds under load.
	gcRetune       = 100 * time.Millisecond
	liveHeapMetric = "/gc/heap/live:bytes"
	// liveAssumedBytes stands in for the live heap before the first
	// collection has measured it.
	liveAssumedBytes = 64 << 20

	gcHeadroomMiBDefault = 128
	// gcHeadroomMiBMax bounds the flag: more garbage than this between
	// collections is a mistake, not a tuning.
	gcHeadroomMiBMax = 64 << 10
)

// gcPercentFor is the GOGC that lets garbageBytes of garbage accumulate over
// a live heap of liveBytes (0: not measured yet, taken as liveAssumedBytes),
// at most percentMax (0: no cap), and never less than base.
func gcPercentFor(base int, liveBytes uint64, garbageBytes int64, percentMax int) int {
	if liveBytes == 0 {
		liveBytes = liveAssumedBytes
	}
	p := int(uint64(garbageBytes) * 100 / liveBytes)
	if percentMax > 0 {
		p = min(p, percentMax)
	}
	return max(base, p)
}

// processGCPercent is the GOGC the process was started with, read from the
// environment the way the runtime reads it. Read once: it is what every
// tuner restores, whatever other tuners (tests run several servers in one
// process) have set meanwhile.
var processGCPercent = sync.OnceValue(func() int {
	switch v := os.Getenv("GOGC"); {
	case v == "off":
		return -1
	case v == "":
		return 100
	default:
		if p, err := strconv.Atoi(v); err == nil {
			return p
		}
		return 100
	}
})

// gcTuner sets GOGC from the live heap until closed. Its goroutine is started
// by startGCTuner and ended by close.
type gcTuner struct {
	base          int
	headroomBytes int64
	recovered     atomic.Bool

	closeOnce  sync.Once
	stop, done chan struct{}
}

// startGCTuner starts in the recovering mode; recoveryDone switches to
// serving with headroomBytes of garbage at least (0: the process's own GOGC).
func startGCTuner(base int, headroomBytes int64) *gcTuner {
	g := &gcTuner{base: base, headroomBytes: headroomBytes, stop: make(chan struct{}), done: make(chan struct{})}
	if base < 0 { // GOGC=off stays off
		close(g.done)
		return g
	}
	go g.run()
	return g
}

func (g *gcTuner) run() {
	defer close(g.done)
	tick := time.NewTicker(gcRetune)
	defer tick.Stop()
	sample := []metrics.Sample{{Name: liveHeapMetric}}
	for {
		metrics.Read(sample)
		var live uint64 // 0: not measured (yet)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			live = sample[0].Value.Uint64()
		}
		debug.SetGCPercent(g.percent(live))
		select {
		case <-tick.C:
		case <-g.stop:
			return
		}
	}
}

func (g *gcTuner) percent(live uint64) int {
	if !g.recovered.Load() {
		return gcPercentFor(g.base, live, recoveryGarbageBytes, recoveryGCPercentMax)
	}
	return gcPercentFor(g.base, live, g.headroomBytes, 0)
}

// recoveryDone switches to the serving mode (from the next retune on) and,
// as the heap then holds up to recoveryGarbageBytes of garbage that the
// runtime would hand back only gradually, collects it and returns its memory
// to the system at once.
func (g *gcTuner) recoveryDone() {
	g.recovered.Store(true)
	debug.FreeOSMemory()
}

// close stops tuning and restores the process's own GOGC. It is safe to
// call more than once.
func (g *gcTuner) close() {
	g.closeOnce.Do(func() {
		if g.base < 0 {
			return
		}
		close(g.stop)
		<-g.done
		debug.SetGCPercent(g.base)
	})
}
