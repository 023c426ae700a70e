package main

import (
	"sync"
	"time"
)

// failureSamplesMax bounds the failures kept word for word: enough to see
// what went wrong, not enough to flood the report when everything does.
const failureSamplesMax = 20

// recorder collects what every request did. One mutex guards it: a record
// is a few counter bumps and histogram increments, so at the tens of
// thousands of requests per second this machine allows, contention is
// negligible, and one histogram set (instead of one per worker) keeps memory
// flat however many requests are outstanding.
type recorder struct {
	mu sync.Mutex

	// measureFrom starts the measured window: requests intended before it
	// (the warm-up) are judged and counted by status, but are not part of
	// throughput or latency.
	measureFrom time.Time
	lastDone    time.Time // latest completion of a measured request

	// latency is from the intended send time: in the open loop a request that
	// waited for the generator (because the server was slow to answer
	// earlier ones) carries that wait, so a stall is not hidden. service is
	// from the actual send time; in the closed loop the two are the same.
	latency *latencyHist
	service *latencyHist
	byKind  map[opKind]*latencyHist

	measuredRequests    int64
	measuredTransitions int64 // acknowledged creates and valid transitions

	requests    int64 // every request, warm-up included
	transitions int64
	statuses    map[int]int64 // 0: transport error
	outcomes    map[outcome]int64
	failures    failureLog

	byURL []*urlStats // one per URL, indexed like the URLs
}

// urlStats are one URL's share of the counts and latency above.
type urlStats struct {
	measuredRequests    int64
	measuredTransitions int64
	requests            int64 // warm-up included
	errors              int64 // outcomes other than ok, warm-up included
	latency             *latencyHist
}

// newRecorder returns a recorder for a load over urls URLs.
func newRecorder(measureFrom time.Time, urls int) *recorder {
	r := &recorder{
		measureFrom: measureFrom,
		latency:     newLatencyHist(),
		service:     newLatencyHist(),
		byKind:      make(map[opKind]*latencyHist, len(opKinds)),
		statuses:    make(map[int]int64),
		outcomes:    make(map[outcome]int64, len(outcomes)),
	}
	for _, k := range opKinds {
		r.byKind[k] = newLatencyHist()
	}
	for range urls {
		r.byURL = append(r.byURL, &urlStats{latency: newLatencyHist()})
	}
	return r
}

// sample is one finished request.
type sample struct {
	url      int // index of the URL it was sent to
	kind     opKind
	intended time.Time // when it was due: the schedule's time (open loop) or the send time (closed loop)
	sent     time.Time
	done     time.Time
	status   int
	outcome  outcome
	detail   string // what was wrong, when outcome is not ok
}

func (r *recorder) add(s sample) {
	acked := s.kind.writes() && s.status >= 200 && s.status <= 299
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.byURL[s.url]
	r.requests++
	u.requests++
	if acked {
		r.transitions++
	}
	r.statuses[s.status]++
	r.outcomes[s.outcome]++
	if s.outcome != outcomeOK {
		r.failures.add(s.detail)
		u.errors++
	}
	if s.intended.Before(r.measureFrom) {
		return
	}
	r.measuredRequests++
	u.measuredRequests++
	if acked {
		r.measuredTransitions++
		u.measuredTransitions++
	}
	latency := s.done.Sub(s.intended)
	r.latency.record(latency)
	u.latency.record(latency)
	r.service.record(s.done.Sub(s.sent))
	r.byKind[s.kind].record(latency)
	if s.done.After(r.lastDone) {
		r.lastDone = s.done
	}
}

// failureLog counts failures and keeps the first few descriptions.
type failureLog struct {
	count   int64
	samples []string
}

func (f *failureLog) add(detail string) {
	f.count++
	if len(f.samples) < failureSamplesMax {
		f.samples = append(f.samples, detail)
	}
}
