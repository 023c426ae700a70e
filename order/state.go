// Package order is the pure core of orderd: the order lifecycle as data, the
// decision of whether a command is allowed, and the one rule by which events
// change an order. It does no I/O and reads no clock: callers pass the time,
// the randomness and the journal in.
package order

import (
	"fmt"
	"slices"
)

// State is a step of the order lifecycle. The zero value is not a state, so a
// forgotten assignment is caught instead of silently meaning Created.
type State uint8

const (
	_ State = iota // no state: an order that does not exist yet
	Created
	Paid
	Shipped
	Delivered
	Cancelled
	Returned
)

// stateNames spells the states exactly as they appear on the wire and in the log.
var stateNames = [...]string{
	Created:   "Created",
	Paid:      "Paid",
	Shipped:   "Shipped",
	Delivered: "Delivered",
	Cancelled: "Cancelled",
	Returned:  "Returned",
}

// transitionTable is the lifecycle: for each state, the states it may move to,
// in the order they are listed to clients. Everything else (Decide, Apply,
// error messages, diagrams) reads this table and nothing else.
var transitionTable = map[State][]State{
	Created:   {Paid, Cancelled},
	Paid:      {Shipped, Cancelled},
	Shipped:   {Delivered},
	Delivered: {Returned},
	Cancelled: nil,
	Returned:  nil,
}

// InitialState is the state every order is created in.
const InitialState = Created

// States lists every state in lifecycle order.
func States() []State {
	return []State{Created, Paid, Shipped, Delivered, Cancelled, Returned}
}

// Valid reports whether s is one of the six states.
func (s State) Valid() bool { return s >= Created && s <= Returned }

func (s State) String() string {
	if !s.Valid() {
		return fmt.Sprintf("State(%d)", uint8(s))
	}
	return stateNames[s]
}

// AllowedNext returns the states s may move to; a terminal state has none.
// The result is a copy the caller may keep.
func AllowedNext(s State) []State { return slices.Clone(transitionTable[s]) }

// CanTransition reports whether the table allows the step from -> to.
func CanTransition(from, to State) bool {
	return slices.Contains(transitionTable[from], to)
}

// Terminal reports whether no transition leaves s.
func (s State) Terminal() bool { return s.Valid() && len(transitionTable[s]) == 0 }

// ParseState reads a state name. Names are case-sensitive: "paid" is not a
// state, so that the log never holds two spellings of one state.
func ParseState(name string) (State, error) {
	for _, s := range States() {
		if stateNames[s] == name {
			return s, nil
		}
	}
	return 0, &UnknownStateError{Name: name}
}

// MarshalText writes the wire spelling; an invalid state is an error rather
// than a string that could never be read back.
func (s State) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("order: cannot encode invalid %v", s)
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText reads the wire spelling.
func (s *State) UnmarshalText(b []byte) error {
	parsed, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = parsed
	return nil
}
