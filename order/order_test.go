package order

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// orderIn builds an order that is in state s at some version.
func orderIn(s State) Order {
	return Order{ID: "o-1", State: s, Version: 3, CreatedAt: t0, UpdatedAt: t0}
}

func transition(to State) Command {
	return Command{Kind: CommandTransition, OrderID: "o-1", To: to, EventID: "e-1"}
}

// TestDecideMatrix covers every (state, target) pair: the accepted ones are
// exactly the table's, the rejected ones name the allowed next states.
func TestDecideMatrix(t *testing.T) {
	accepted := map[[2]State]bool{
		{Created, Paid}: true, {Created, Cancelled}: true,
		{Paid, Shipped}: true, {Paid, Cancelled}: true,
		{Shipped, Delivered}:  true,
		{Delivered, Returned}: true,
	}
	seen := 0
	for _, from := range States() {
		for _, to := range States() {
			t.Run(from.String()+"->"+to.String(), func(t *testing.T) {
				ev, err := Decide(orderIn(from), transition(to), t0)
				if !accepted[[2]State{from, to}] {
					var invalid *InvalidTransitionError
					require.ErrorAs(t, err, &invalid)
					assert.ErrorIs(t, err, ErrInvalidTransition)
					assert.Equal(t, from, invalid.From)
					assert.Equal(t, to, invalid.To)
					assert.Equal(t, AllowedNext(from), invalid.Allowed)
					return
				}
				seen++
				require.NoError(t, err)
				assert.Equal(t, Event{EventID: "e-1", OrderID: "o-1", Version: 4, From: from, To: to, At: t0}, ev)
			})
		}
	}
	assert.Equal(t, len(accepted), seen)
}

func TestDecideCreate(t *testing.T) {
	cmd := Command{Kind: CommandCreate, OrderID: "o-1", EventID: "e-1", Principal: "alice", RequestID: "r-1", IdempotencyKey: "k", Reason: "why"}
	ev, err := Decide(Order{}, cmd, t0.In(time.FixedZone("x", 3600)))
	require.NoError(t, err)
	assert.Equal(t, Event{EventID: "e-1", OrderID: "o-1", Version: 1, To: Created, At: t0,
		Principal: "alice", RequestID: "r-1", IdempotencyKey: "k", RequestDigest: RequestDigest(cmd), Reason: "why"}, ev)
	assert.Equal(t, time.UTC, ev.At.Location(), "events are recorded in UTC")

	_, err = Decide(orderIn(Paid), cmd, t0)
	assert.ErrorIs(t, err, ErrOrderExists)
}

func TestDecideRejections(t *testing.T) {
	tests := []struct {
		name string
		o    Order
		cmd  Command
		want error
	}{
		{"transition of a missing order", Order{}, transition(Paid), ErrOrderNotFound},
		{"stale expected version", orderIn(Created), Command{Kind: CommandTransition, OrderID: "o-1", To: Paid, ExpectedVersion: 2}, ErrVersionMismatch},
		{"stale version beats invalid step", orderIn(Cancelled), Command{Kind: CommandTransition, OrderID: "o-1", To: Paid, ExpectedVersion: 9}, ErrVersionMismatch},
		{"zero target", orderIn(Created), transition(0), ErrUnknownState},
		{"out of range target", orderIn(Created), transition(State(99)), ErrUnknownState},
		{"empty id", Order{}, Command{Kind: CommandCreate}, ErrInvalidID},
		{"id of another order", orderIn(Created), Command{Kind: CommandTransition, OrderID: "o-2", To: Paid}, ErrInvalidCommand},
		{"unknown kind", orderIn(Created), Command{OrderID: "o-1"}, ErrInvalidCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decide(tt.o, tt.cmd, t0)
			assert.ErrorIs(t, err, tt.want)
		})
	}
}

func TestDecideMatchingVersionAccepted(t *testing.T) {
	cmd := transition(Paid)
	cmd.ExpectedVersion = 3
	ev, err := Decide(orderIn(Created), cmd, t0)
	require.NoError(t, err)
	assert.Equal(t, uint64(4), ev.Version)
}

func TestVersionMismatchReportsCurrent(t *testing.T) {
	cmd := transition(Paid)
	cmd.ExpectedVersion = 1
	_, err := Decide(orderIn(Created), cmd, t0)
	var mismatch *VersionMismatchError
	require.ErrorAs(t, err, &mismatch)
	assert.Equal(t, VersionMismatchError{Expected: 1, Current: 3}, *mismatch)
}

func TestApplyCreatesAndAdvances(t *testing.T) {
	o, err := Apply(Order{}, Event{OrderID: "o-1", Version: 1, To: Created, At: t0})
	require.NoError(t, err)
	assert.Equal(t, Order{ID: "o-1", State: Created, Version: 1, CreatedAt: t0, UpdatedAt: t0}, o)

	later := t0.Add(time.Minute)
	o, err = Apply(o, Event{OrderID: "o-1", Version: 2, From: Created, To: Paid, At: later})
	require.NoError(t, err)
	assert.Equal(t, Order{ID: "o-1", State: Paid, Version: 2, CreatedAt: t0, UpdatedAt: later}, o)
}

// TestApplySkips: every record that does not continue the order's path is
// refused with the right verdict and leaves the order unchanged.
func TestApplySkips(t *testing.T) {
	paid := Order{ID: "o-1", State: Paid, Version: 2, CreatedAt: t0, UpdatedAt: t0}
	tests := []struct {
		name string
		o    Order
		ev   Event
		want error
	}{
		{"same version again", paid, Event{OrderID: "o-1", Version: 2, From: Created, To: Paid}, ErrRecordDuplicate},
		{"older version", paid, Event{OrderID: "o-1", Version: 1, To: Created}, ErrRecordDuplicate},
		{"gap", paid, Event{OrderID: "o-1", Version: 4, From: Paid, To: Shipped}, ErrRecordFork},
		{"step not in table", paid, Event{OrderID: "o-1", Version: 3, From: Paid, To: Delivered}, ErrRecordFork},
		{"from disagrees with state", paid, Event{OrderID: "o-1", Version: 3, From: Created, To: Cancelled}, ErrRecordFork},
		{"another order's record", paid, Event{OrderID: "o-2", Version: 3, From: Paid, To: Shipped}, ErrRecordFork},
		{"creation into another state", Order{}, Event{OrderID: "o-1", Version: 1, To: Paid}, ErrRecordFork},
		{"creation with a from", Order{}, Event{OrderID: "o-1", Version: 1, From: Created, To: Created}, ErrRecordFork},
		{"first record is not a creation", Order{}, Event{OrderID: "o-1", Version: 2, From: Created, To: Paid}, ErrRecordFork},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Apply(tt.o, tt.ev)
			assert.ErrorIs(t, err, tt.want)
			assert.Equal(t, tt.o, got)
		})
	}
}

// TestReplayEqualsLive drives random command sequences through Decide and
// Apply, records the accepted events, and checks that replaying the record
// (with duplicates and forks mixed in, as a log may hold them) rebuilds the
// very same orders. The seed is printed so a failure can be replayed.
func TestReplayEqualsLive(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	const orders, commands = 50, 5000
	live := map[string]Order{}
	var log []Event
	now := t0
	for i := range commands {
		id := "o-" + string(rune('a'+rng.IntN(orders%26))) + strings.Repeat("x", rng.IntN(2))
		cmd := Command{Kind: CommandTransition, OrderID: id, To: State(rng.IntN(8)), EventID: "e"}
		if rng.IntN(5) == 0 {
			cmd.Kind = CommandCreate
		}
		if rng.IntN(4) == 0 {
			cmd.ExpectedVersion = uint64(rng.IntN(6))
		}
		now = now.Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
		ev, err := Decide(live[id], cmd, now)
		if err != nil {
			continue
		}
		next, err := Apply(live[id], ev)
		require.NoError(t, err, "seed %d command %d: Decide accepted what Apply refused", seed, i)
		live[id] = next
		log = append(log, ev)
		if rng.IntN(10) == 0 { // a duplicate delivery of the same record
			log = append(log, ev)
		}
	}
	require.NotEmpty(t, log)

	rebuilt := map[string]Order{}
	skipped := 0
	for _, ev := range log {
		next, err := Apply(rebuilt[ev.OrderID], ev)
		if err != nil {
			require.ErrorIs(t, err, ErrRecordDuplicate, "seed %d", seed)
			skipped++
			continue
		}
		rebuilt[ev.OrderID] = next
	}
	assert.Equal(t, live, rebuilt, "seed %d", seed)
	assert.Positive(t, skipped, "seed %d: the log had duplicates to skip", seed)
}

func TestErrorsMatchOnlyTheirSentinel(t *testing.T) {
	errs := []error{
		&InvalidTransitionError{From: Shipped, To: Paid, Allowed: []State{Delivered}},
		&VersionMismatchError{Expected: 1, Current: 2},
		&UnknownStateError{Name: "paid"},
	}
	sentinels := []error{ErrInvalidTransition, ErrVersionMismatch, ErrUnknownState}
	for i, err := range errs {
		for j, s := range sentinels {
			assert.Equal(t, i == j, errors.Is(err, s), "%v vs %v", err, s)
		}
	}
	assert.Contains(t, errs[0].Error(), "allowed next: Delivered")
	assert.Contains(t, (&InvalidTransitionError{From: Returned, To: Paid}).Error(), "terminal")
	assert.Contains(t, errs[2].Error(), `"paid"`)
}
