package main

import (
	"fmt"
	"net/http"
)

// response is what the harness keeps of one HTTP answer.
type response struct {
	status int   // 0 when the request failed below HTTP (transport error)
	err    error // the transport error, when status is 0

	// The order in a 2xx body; decoded is false when the body was not an
	// order document.
	decoded bool
	id      string
	state   string
	version uint64

	// currentState is the current_state member of a 409 problem document.
	currentState string
}

// outcome classifies one answer against what the plan expected.
type outcome uint8

const (
	outcomeOK               outcome = iota + 1
	outcomeUnexpectedStatus         // a 2xx/4xx other than the expected one
	outcomeBodyMismatch             // the expected status, but the body contradicts the acknowledged history
	outcomeServerError              // 5xx: the outcome of a write is unknown
	outcomeTransportError           // no HTTP answer at all
)

var outcomes = []outcome{outcomeOK, outcomeUnexpectedStatus, outcomeBodyMismatch, outcomeServerError, outcomeTransportError}

func (o outcome) String() string {
	switch o {
	case outcomeOK:
		return "ok"
	case outcomeUnexpectedStatus:
		return "unexpected_status"
	case outcomeBodyMismatch:
		return "body_mismatch"
	case outcomeServerError:
		return "server_error"
	case outcomeTransportError:
		return "transport_error"
	}
	return "unknown"
}

// orderTrack is the harness's knowledge of one order: its plan, and the state
// and version its acknowledged (2xx) answers imply. Only one request of an
// order is in flight at a time, so a track is owned by whoever sent that
// request; no lock is needed.
type orderTrack struct {
	id   string
	plan []step
	next int // index in plan of the next request to send

	created bool   // a create was acknowledged
	state   string // acknowledged state; "" before creation
	version uint64 // acknowledged version; 0 before creation

	// A write whose outcome is unknown (5xx, transport error) may or may not
	// have been applied: the final state may then be either the acknowledged
	// one or the one that write would have produced. The harness stops
	// driving such an order, so at most one write is ever in doubt.
	uncertain      bool
	uncertainState string

	stopped bool // the plan finished or was abandoned after a surprise
}

func newOrderTrack(id string, plan []step) *orderTrack {
	return &orderTrack{id: id, plan: plan}
}

// nextStep is the request to send now; ok is false once the order is done.
func (t *orderTrack) nextStep() (step, bool) {
	if t.stopped || t.next >= len(t.plan) {
		return step{}, false
	}
	return t.plan[t.next], true
}

// observeBlind advances the plan whatever the answer, for the baseline
// server whose canned answers mean nothing: the request mix stays exactly
// the one orderd gets.
func (t *orderTrack) observeBlind(resp response) outcome {
	t.next++
	switch {
	case resp.status == 0:
		return outcomeTransportError
	case resp.status >= 500:
		return outcomeServerError
	}
	return outcomeOK
}

// observe judges resp, the answer to the track's next step, updates what the
// acknowledged history implies and advances the plan. On anything but
// outcomeOK the detail says what was wrong and the order is not driven
// further (except after a read, which changes nothing).
func (t *orderTrack) observe(resp response) (outcome, string) {
	s := t.plan[t.next]
	t.next++
	if t.next >= len(t.plan) {
		t.stopped = true
	}
	switch {
	case resp.status == 0:
		t.doubt(s)
		return outcomeTransportError, fmt.Sprintf("%s %s: %v", s.kind, t.id, resp.err)
	case resp.status >= 500:
		t.doubt(s)
		return outcomeServerError, fmt.Sprintf("%s %s: status %d", s.kind, t.id, resp.status)
	}
	switch s.kind {
	case opCreate:
		return t.observeWrite(s, resp, http.StatusCreated, stateCreated)
	case opTransition:
		return t.observeWrite(s, resp, http.StatusOK, s.to)
	case opInvalid:
		return t.observeInvalid(s, resp)
	case opRead:
		return t.observeRead(resp)
	}
	panic(fmt.Sprintf("unknown step kind %d", s.kind))
}

// doubt records that write s may or may not have been applied.
func (t *orderTrack) doubt(s step) {
	t.stopped = true
	switch s.kind {
	case opCreate:
		t.uncertain, t.uncertainState = true, stateCreated
	case opTransition:
		t.uncertain, t.uncertainState = true, s.to
	}
	// An invalid step is never applied by a correct server, whatever its
	// answer, and a read changes nothing: neither leaves any doubt.
}

// acknowledge records a 2xx answer to a write that moved the order to state.
func (t *orderTrack) acknowledge(state string) {
	t.created = true
	t.state = state
	t.version++
}

func (t *orderTrack) observeWrite(s step, resp response, want int, to string) (outcome, string) {
	if resp.status < 200 || resp.status > 299 {
		// 4xx: refused, so nothing was applied; the plan cannot go on.
		t.stopped = true
		return outcomeUnexpectedStatus, fmt.Sprintf("%s %s to %s: status %d, want %d", s.kind, t.id, to, resp.status, want)
	}
	t.acknowledge(to)
	if resp.status != want {
		t.stopped = true
		return outcomeUnexpectedStatus, fmt.Sprintf("%s %s to %s: status %d, want %d", s.kind, t.id, to, resp.status, want)
	}
	if !resp.decoded || resp.id != t.id || resp.state != to || resp.version != t.version {
		t.stopped = true
		return outcomeBodyMismatch, fmt.Sprintf("%s %s to %s: answered %s, want %s", s.kind, t.id, to, bodyString(resp), t.expectString())
	}
	return outcomeOK, ""
}

func (t *orderTrack) observeInvalid(s step, resp response) (outcome, string) {
	switch {
	case resp.status >= 200 && resp.status <= 299:
		// The server claims to have applied a step the table forbids: it is
		// wrong, but what it acknowledged is what it must now show.
		t.acknowledge(s.to)
		t.stopped = true
		return outcomeUnexpectedStatus, fmt.Sprintf("invalid %s %s -> %s: accepted with status %d, want 409", t.id, t.state, s.to, resp.status)
	case resp.status != http.StatusConflict:
		t.stopped = true
		return outcomeUnexpectedStatus, fmt.Sprintf("invalid %s %s -> %s: status %d, want 409", t.id, t.state, s.to, resp.status)
	case resp.currentState != t.state:
		t.stopped = true
		return outcomeBodyMismatch, fmt.Sprintf("invalid %s -> %s: 409 says current_state %q, want %q", t.id, s.to, resp.currentState, t.state)
	}
	return outcomeOK, ""
}

// observeRead checks read-your-writes: the client's previous write was
// acknowledged before this GET was sent, and orderd publishes a state before
// it acknowledges it, so the GET must show exactly that state.
func (t *orderTrack) observeRead(resp response) (outcome, string) {
	if resp.status != http.StatusOK {
		return outcomeUnexpectedStatus, fmt.Sprintf("read %s: status %d, want 200", t.id, resp.status)
	}
	if !resp.decoded || resp.id != t.id || resp.state != t.state || resp.version != t.version {
		return outcomeBodyMismatch, fmt.Sprintf("read %s: got %s, want %s", t.id, bodyString(resp), t.expectString())
	}
	return outcomeOK, ""
}

// verifyFinal judges the answer to the final GET of the order. It returns ""
// when the server's state is one the acknowledged answers allow, else what
// is wrong.
func (t *orderTrack) verifyFinal(resp response) string {
	switch {
	case resp.status == 0:
		return fmt.Sprintf("%s: could not read the final state: %v", t.id, resp.err)
	case !t.created && resp.status == http.StatusNotFound:
		// Never acknowledged: absent is right (and allowed if the create was
		// in doubt too).
		return ""
	case resp.status != http.StatusOK:
		return fmt.Sprintf("%s: final read status %d, want 200 with %s", t.id, resp.status, t.expectString())
	case !resp.decoded || resp.id != t.id:
		return fmt.Sprintf("%s: final read answered %s, want %s", t.id, bodyString(resp), t.expectString())
	case t.created && resp.state == t.state && resp.version == t.version:
		return ""
	case t.uncertain && resp.state == t.uncertainState && resp.version == t.version+1:
		return ""
	}
	return fmt.Sprintf("%s: final state %s, but the acknowledged answers imply %s", t.id, bodyString(resp), t.expectString())
}

// expectString describes the states the acknowledged history allows.
func (t *orderTrack) expectString() string {
	var s string
	if t.created {
		s = fmt.Sprintf("%s v%d", t.state, t.version)
	} else {
		s = "not found"
	}
	if t.uncertain {
		s += fmt.Sprintf(" (or %s v%d: a write's outcome was unknown)", t.uncertainState, t.version+1)
	}
	return s
}

func bodyString(r response) string {
	if !r.decoded {
		return fmt.Sprintf("status %d with no order in the body", r.status)
	}
	return fmt.Sprintf("%s %s v%d", r.id, r.state, r.version)
}
