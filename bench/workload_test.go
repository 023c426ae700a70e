package main

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Every plan is a lifecycle the table allows, with invalid steps that the
// table forbids from the state the order is in when they are sent.
func TestPlansFollowTheTable(t *testing.T) {
	m := mix{cancel: 0.3, ret: 0.3, invalid: 0.5, read: 0.5}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		plan := m.plan(rng)
		if len(plan) > planLenMax {
			t.Fatalf("plan of %d steps, bound is %d: %v", len(plan), planLenMax, plan)
		}
		if plan[0].kind != opCreate {
			t.Fatalf("plan does not start with a create: %v", plan)
		}
		state := stateCreated
		for _, s := range plan[1:] {
			switch s.kind {
			case opCreate:
				t.Fatalf("second create in %v", plan)
			case opTransition:
				if !canTransition(state, s.to) {
					t.Fatalf("%s -> %s is not in the table: %v", state, s.to, plan)
				}
				state = s.to
			case opInvalid:
				if canTransition(state, s.to) {
					t.Fatalf("invalid step %s -> %s is in the table: %v", state, s.to, plan)
				}
			}
		}
		if state != stateDelivered && state != stateReturned && state != stateCancelled {
			t.Fatalf("plan ends in %s, not a lifecycle's end: %v", state, plan)
		}
	}
}

// The shares mean what the flags say, within sampling error.
func TestPlanSharesMatchTheMix(t *testing.T) {
	const n = 20000
	m := mix{cancel: 0.1, ret: 0.2, invalid: 0.05, read: 0.25}
	rng := rand.New(rand.NewPCG(3, 4))
	var cancelled, delivered, returned, writes, invalids, reads float64
	for range n {
		for _, s := range m.plan(rng) {
			switch s.kind {
			case opCreate:
				writes++
			case opTransition:
				writes++
				switch s.to {
				case stateCancelled:
					cancelled++
				case stateDelivered:
					delivered++
				case stateReturned:
					returned++
				}
			case opInvalid:
				invalids++
			case opRead:
				reads++
			}
		}
	}
	near := func(name string, got, want float64) {
		t.Helper()
		// Four standard errors of a proportion over at least 1,000 trials.
		if math.Abs(got-want) > 4*math.Sqrt(want*(1-want)/1000) {
			t.Errorf("%s share %.4f, want %.4f", name, got, want)
		}
	}
	near("cancel", cancelled/n, m.cancel)
	near("return", returned/delivered, m.ret)
	near("invalid", invalids/writes, m.invalid)
	near("read", reads/writes, m.read)
}

func TestCreateOnlyPlans(t *testing.T) {
	plan := mix{createOnly: true, invalid: 1, read: 1}.plan(rand.New(rand.NewPCG(1, 1)))
	if len(plan) != 1 || plan[0].kind != opCreate {
		t.Fatalf("plan %v, want a lone create", plan)
	}
}

// The harness's copy of the table is the one in DESIGN §1.
func TestTheTable(t *testing.T) {
	allowed := map[[2]string]bool{
		{stateCreated, statePaid}: true, {stateCreated, stateCancelled}: true,
		{statePaid, stateShipped}: true, {statePaid, stateCancelled}: true,
		{stateShipped, stateDelivered}: true, {stateDelivered, stateReturned}: true,
	}
	for _, from := range allStates {
		for _, to := range allStates {
			if got := canTransition(from, to); got != allowed[[2]string{from, to}] {
				t.Errorf("canTransition(%s, %s) = %v", from, to, got)
			}
		}
	}
}
