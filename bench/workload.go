package main

import (
	"math/rand/v2"
	"slices"
)

// The lifecycle, spelled as on the wire. The harness keeps its own copy of
// the table (DESIGN §1) instead of importing the server's: a black box that
// shared the server's table could not notice the table being wrong.
const (
	stateCreated   = "Created"
	statePaid      = "Paid"
	stateShipped   = "Shipped"
	stateDelivered = "Delivered"
	stateCancelled = "Cancelled"
	stateReturned  = "Returned"
)

var allStates = []string{stateCreated, statePaid, stateShipped, stateDelivered, stateCancelled, stateReturned}

var allowedNext = map[string][]string{
	stateCreated:   {statePaid, stateCancelled},
	statePaid:      {stateShipped, stateCancelled},
	stateShipped:   {stateDelivered},
	stateDelivered: {stateReturned},
	stateCancelled: nil,
	stateReturned:  nil,
}

func canTransition(from, to string) bool { return slices.Contains(allowedNext[from], to) }

// opKind is what one request does.
type opKind uint8

const (
	opCreate     opKind = iota + 1 // POST /v1/orders, expect 201
	opTransition                   // a step in the table, expect 200
	opInvalid                      // a step not in the table, expect 409
	opRead                         // GET /v1/orders/{id}, expect 200 and the acknowledged state
)

var opKinds = []opKind{opCreate, opTransition, opInvalid, opRead}

func (k opKind) String() string {
	switch k {
	case opCreate:
		return "create"
	case opTransition:
		return "transition"
	case opInvalid:
		return "invalid"
	case opRead:
		return "read"
	}
	return "unknown"
}

// writes reports whether a successful request of this kind appends to the
// log: creations and valid transitions are the "transitions" of the
// throughput figure; reads and refused steps are not.
func (k opKind) writes() bool { return k == opCreate || k == opTransition }

// step is one request of an order's plan.
type step struct {
	kind opKind
	to   string // target state for opTransition and opInvalid
}

// mix is the shape of the workload. Every share is a probability in [0, 1].
type mix struct {
	cancel  float64 // of orders: cancelled (half from Created, half from Paid) instead of shipped
	ret     float64 // of delivered orders: returned afterwards
	invalid float64 // after each successful write: one deliberately invalid transition
	read    float64 // after each successful write: one GET of the order
	// createOnly makes every plan a lone create: for filling a server with
	// many live orders (the scale target) rather than driving lifecycles.
	createOnly bool
}

// planLenMax bounds a plan: 5 writes, each followed by at most one invalid
// step and one read.
const planLenMax = 15

// plan draws one order's requests in the order they are sent. The harness
// knows every expected answer in advance, which is what lets it judge each
// response and the final state.
func (m mix) plan(rng *rand.Rand) []step {
	if m.createOnly {
		return []step{{kind: opCreate}}
	}
	var path []string // the states after creation, in order
	switch {
	case rng.Float64() < m.cancel:
		if rng.IntN(2) == 0 {
			path = []string{stateCancelled}
		} else {
			path = []string{statePaid, stateCancelled}
		}
	default:
		path = []string{statePaid, stateShipped, stateDelivered}
		if rng.Float64() < m.ret {
			path = append(path, stateReturned)
		}
	}
	steps := make([]step, 0, planLenMax)
	current := stateCreated
	steps = m.appendExtras(rng, append(steps, step{kind: opCreate}), current)
	for _, to := range path {
		steps = append(steps, step{kind: opTransition, to: to})
		current = to
		steps = m.appendExtras(rng, steps, current)
	}
	return steps
}

// appendExtras adds the optional invalid attempt and read that may follow a
// write, given the state the write left the order in.
func (m mix) appendExtras(rng *rand.Rand, steps []step, current string) []step {
	if rng.Float64() < m.invalid {
		steps = append(steps, step{kind: opInvalid, to: invalidTarget(rng, current)})
	}
	if rng.Float64() < m.read {
		steps = append(steps, step{kind: opRead})
	}
	return steps
}

// invalidTarget picks a state the table does not allow from current; the
// current state itself qualifies (no self-loops in the table).
func invalidTarget(rng *rand.Rand, current string) string {
	var choices []string
	for _, s := range allStates {
		if !canTransition(current, s) {
			choices = append(choices, s)
		}
	}
	return choices[rng.IntN(len(choices))]
}
