package main

import (
	"errors"
	"testing"
)

func ok201(id string) response {
	return response{status: 201, decoded: true, id: id, state: stateCreated, version: 1}
}

func ok200(id, state string, version uint64) response {
	return response{status: 200, decoded: true, id: id, state: state, version: version}
}

// trackAt returns a track for plan that has been acknowledged up to (but
// not including) step next, as an honest server would have answered.
func trackAt(t *testing.T, plan []step, next int) *orderTrack {
	t.Helper()
	tr := newOrderTrack("o1", plan)
	for i := 0; i < next; i++ {
		var resp response
		switch s := plan[i]; s.kind {
		case opCreate:
			resp = ok201("o1")
		case opTransition:
			resp = ok200("o1", s.to, tr.version+1)
		case opInvalid:
			resp = response{status: 409, currentState: tr.state}
		case opRead:
			resp = ok200("o1", tr.state, tr.version)
		}
		if oc, detail := tr.observe(resp); oc != outcomeOK {
			t.Fatalf("setup step %d: %v %s", i, oc, detail)
		}
	}
	return tr
}

var lifecycle = []step{
	{kind: opCreate},
	{kind: opTransition, to: statePaid},
	{kind: opInvalid, to: stateDelivered},
	{kind: opRead},
	{kind: opTransition, to: stateShipped},
}

func TestObserveJudgesEachAnswer(t *testing.T) {
	for _, c := range []struct {
		name      string
		next      int // the step answered
		resp      response
		want      outcome
		wantState string // acknowledged state afterwards
		wantVer   uint64
		stopped   bool
		uncertain bool
	}{
		{"create ok", 0, ok201("o1"), outcomeOK, stateCreated, 1, false, false},
		{"create answered 200", 0, ok200("o1", stateCreated, 1), outcomeUnexpectedStatus, stateCreated, 1, true, false},
		{"create refused", 0, response{status: 409}, outcomeUnexpectedStatus, "", 0, true, false},
		{"create with another id", 0, ok200("o2", stateCreated, 1), outcomeUnexpectedStatus, stateCreated, 1, true, false},
		{"create body wrong", 0, response{status: 201, decoded: true, id: "o1", state: statePaid, version: 1}, outcomeBodyMismatch, stateCreated, 1, true, false},
		{"create transport error", 0, response{err: errors.New("reset")}, outcomeTransportError, "", 0, true, true},
		{"create 503", 0, response{status: 503}, outcomeServerError, "", 0, true, true},
		{"pay ok", 1, ok200("o1", statePaid, 2), outcomeOK, statePaid, 2, false, false},
		{"pay wrong version", 1, ok200("o1", statePaid, 7), outcomeBodyMismatch, statePaid, 2, true, false},
		{"pay refused", 1, response{status: 409, currentState: stateCreated}, outcomeUnexpectedStatus, stateCreated, 1, true, false},
		{"pay timed out", 1, response{err: errors.New("timeout")}, outcomeTransportError, stateCreated, 1, true, true},
		{"invalid refused", 2, response{status: 409, currentState: statePaid}, outcomeOK, statePaid, 2, false, false},
		{"invalid refused naming the wrong state", 2, response{status: 409, currentState: stateCreated}, outcomeBodyMismatch, statePaid, 2, true, false},
		{"invalid accepted", 2, ok200("o1", stateDelivered, 3), outcomeUnexpectedStatus, stateDelivered, 3, true, false},
		{"invalid answered 400", 2, response{status: 400}, outcomeUnexpectedStatus, statePaid, 2, true, false},
		{"invalid 503 leaves no doubt", 2, response{status: 503}, outcomeServerError, statePaid, 2, true, false},
		{"read ok", 3, ok200("o1", statePaid, 2), outcomeOK, statePaid, 2, false, false},
		{"read stale", 3, ok200("o1", stateCreated, 1), outcomeBodyMismatch, statePaid, 2, false, false},
		{"read 404", 3, response{status: 404}, outcomeUnexpectedStatus, statePaid, 2, false, false},
		{"last step ok ends the plan", 4, ok200("o1", stateShipped, 3), outcomeOK, stateShipped, 3, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := trackAt(t, lifecycle, c.next)
			got, detail := tr.observe(c.resp)
			if got != c.want || tr.state != c.wantState || tr.version != c.wantVer || tr.stopped != c.stopped || tr.uncertain != c.uncertain {
				t.Fatalf("got %v (%s), state %q v%d stopped %v uncertain %v; want %v, %q v%d stopped %v uncertain %v",
					got, detail, tr.state, tr.version, tr.stopped, tr.uncertain, c.want, c.wantState, c.wantVer, c.stopped, c.uncertain)
			}
			if (got == outcomeOK) != (detail == "") {
				t.Fatalf("outcome %v with detail %q", got, detail)
			}
		})
	}
}

func TestVerifyFinalAllowsOnlyWhatTheAnswersImply(t *testing.T) {
	paid := trackAt(t, lifecycle, 2) // acknowledged: Paid v2
	doubtful := trackAt(t, lifecycle, 4)
	doubtful.observe(response{status: 503}) // Shipped v3 in doubt
	neverCreated := newOrderTrack("o1", lifecycle)
	neverCreated.observe(response{status: 409})
	createInDoubt := newOrderTrack("o1", lifecycle)
	createInDoubt.observe(response{err: errors.New("reset")})

	for _, c := range []struct {
		name string
		tr   *orderTrack
		resp response
		ok   bool
	}{
		{"acknowledged state", paid, ok200("o1", statePaid, 2), true},
		{"older state", paid, ok200("o1", stateCreated, 1), false},
		{"right state, wrong version", paid, ok200("o1", statePaid, 3), false},
		{"a state never acknowledged", paid, ok200("o1", stateShipped, 3), false},
		{"gone", paid, response{status: 404}, false},
		{"another order", paid, ok200("o2", statePaid, 2), false},
		{"unreadable", paid, response{err: errors.New("refused")}, false},
		{"doubtful write not applied", doubtful, ok200("o1", statePaid, 2), true},
		{"doubtful write applied", doubtful, ok200("o1", stateShipped, 3), true},
		{"doubtful write applied twice", doubtful, ok200("o1", stateShipped, 4), false},
		{"refused create: absent", neverCreated, response{status: 404}, true},
		{"refused create: present", neverCreated, ok200("o1", stateCreated, 1), false},
		{"create in doubt: absent", createInDoubt, response{status: 404}, true},
		{"create in doubt: present", createInDoubt, ok200("o1", stateCreated, 1), true},
		{"create in doubt: further along", createInDoubt, ok200("o1", statePaid, 2), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			problem := c.tr.verifyFinal(c.resp)
			if (problem == "") != c.ok {
				t.Fatalf("verifyFinal = %q, want ok=%v", problem, c.ok)
			}
		})
	}
}

// The baseline's answers are canned: the plan goes on whatever they say, so
// it gets exactly the request mix orderd gets.
func TestObserveBlindFollowsThePlan(t *testing.T) {
	tr := newOrderTrack("o1", lifecycle)
	for range lifecycle {
		if oc := tr.observeBlind(ok200("canned", statePaid, 2)); oc != outcomeOK {
			t.Fatalf("outcome %v", oc)
		}
	}
	if _, more := tr.nextStep(); more {
		t.Fatal("plan not finished")
	}
}
