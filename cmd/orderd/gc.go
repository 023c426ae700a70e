package main

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// GC during recovery. A restart reads the whole log at once and, with the
// embedded broker in the process, both sides of every fetch make garbage
// (kfake alone allocated ~2.7 KB per record served) while the live heap grows
// from nothing to every order. With GOGC's default the collector then runs
// each time the heap doubles a small live heap: at a million records it was
// over half of the restart's CPU. While recovering, the collector instead
// lets up to recoveryGarbageBytes of garbage pile up between cycles (at most
// four times the live heap), which costs at most that much memory on top of
// the live heap (GOGC alone would allow as much as the live heap once it is
// larger), and the setting the process started with comes back once recovery
// ends. A GOMEMLIMIT, if set, still bounds the heap throughout.
const (
	recoveryGarbageBytes = 512 << 20
	// recoveryGCRetune is how often the percentage follows the live heap.
	recoveryGCRetune = 100 * time.Millisecond
	liveHeapMetric   = "/gc/heap/live:bytes"
	// recoveryLiveAssumed stands in for the live heap before the first
	// collection has measured it.
	recoveryLiveAssumed = 64 << 20
	// recoveryGCPercentMax caps the percentage for small heaps, so that a
	// small server's restart (whose collections cost little anyway) peaks
	// at five times its live heap, not at recoveryGarbageBytes more.
	recoveryGCPercentMax = 400
)

// relaxGCWhileRecovering applies the recovery setting until the returned
// function is called, which restores the process's own. A GOGC of off is
// left alone.
func relaxGCWhileRecovering() (restore func()) {
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	if base < 0 {
		return func() {}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(recoveryGCRetune)
		defer tick.Stop()
		sample := []metrics.Sample{{Name: liveHeapMetric}}
		for {
			metrics.Read(sample)
			var live uint64 // 0: not measured (yet)
			if sample[0].Value.Kind() == metrics.KindUint64 {
				live = sample[0].Value.Uint64()
			}
			debug.SetGCPercent(recoveryGCPercent(base, live))
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		debug.SetGCPercent(base)
	}
}

// recoveryGCPercent is the GOGC that lets recoveryGarbageBytes of garbage
// accumulate over a live heap of liveBytes (0: not measured yet, taken as
// recoveryLiveAssumed), at most recoveryGCPercentMax, and never less than
// base.
func recoveryGCPercent(base int, liveBytes uint64) int {
	if liveBytes == 0 {
		liveBytes = recoveryLiveAssumed
	}
	return max(base, min(recoveryGCPercentMax, int(recoveryGarbageBytes*100/liveBytes)))
}

// returnRecoveryGarbage collects and returns freed memory to the operating
// system at once: after a recovery the heap holds up to
// recoveryGarbageBytes of garbage, which the runtime would otherwise give
// back only gradually, so the RSS a restart leaves would stay at its peak.
func returnRecoveryGarbage() { debug.FreeOSMemory() }
