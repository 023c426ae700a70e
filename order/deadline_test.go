package order

import (
	"errors"
	"testing"
	"time"
)

var deadlineT0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func mustDecideApply(t *testing.T, o Order, cmd Command, now time.Time) (Order, Event) {
	t.Helper()
	cmd.EventID = "e"
	ev, err := Decide(o, cmd, now)
	if err != nil {
		t.Fatalf("Decide(%+v): %v", cmd, err)
	}
	next, err := Apply(o, ev)
	if err != nil {
		t.Fatalf("Apply(%+v): %v", ev, err)
	}
	return next, ev
}

// The creation carries the deadline; a deadline change moves it and adds one
// to the version; leaving Created drops it; replay rebuilds the same order.
func TestPaymentDeadlineLifecycle(t *testing.T) {
	o, ev := mustDecideApply(t, Order{}, Command{Kind: CommandCreate, OrderID: "o", PaymentTimeout: 15 * time.Minute}, deadlineT0)
	if want := deadlineT0.Add(15 * time.Minute); !ev.PaymentDueAt.Equal(want) || !o.PaymentDueAt.Equal(want) {
		t.Fatalf("creation due %v, order due %v, want %v", ev.PaymentDueAt, o.PaymentDueAt, want)
	}
	events := []Event{ev}
	o, ev = mustDecideApply(t, o, Command{Kind: CommandReschedulePayment, OrderID: "o", PaymentExtend: 10 * time.Minute}, deadlineT0.Add(time.Minute))
	if want := deadlineT0.Add(25 * time.Minute); o.Version != 2 || o.State != Created || !o.PaymentDueAt.Equal(want) || !IsDeadlineChange(ev) {
		t.Fatalf("after extend: %+v (event %+v), want due %v", o, ev, want)
	}
	events = append(events, ev)
	due := deadlineT0.Add(2 * time.Hour)
	o, ev = mustDecideApply(t, o, Command{Kind: CommandReschedulePayment, OrderID: "o", PaymentDueAt: due}, deadlineT0.Add(time.Minute))
	if o.Version != 3 || !o.PaymentDueAt.Equal(due) {
		t.Fatalf("after absolute reschedule: %+v", o)
	}
	events = append(events, ev)
	o, ev = mustDecideApply(t, o, Command{Kind: CommandTransition, OrderID: "o", To: Paid}, deadlineT0.Add(2*time.Minute))
	if !o.PaymentDueAt.IsZero() {
		t.Fatalf("a paid order keeps a deadline: %+v", o)
	}
	events = append(events, ev)
	var rebuilt Order
	for _, ev := range events {
		var err error
		if rebuilt, err = Apply(rebuilt, ev); err != nil {
			t.Fatal(err)
		}
	}
	if rebuilt != o {
		t.Fatalf("replay %+v, live %+v", rebuilt, o)
	}
	_, err := Decide(o, Command{Kind: CommandReschedulePayment, OrderID: "o", PaymentExtend: time.Hour}, deadlineT0)
	var invalid *InvalidTransitionError
	if !errors.As(err, &invalid) || invalid.From != Paid {
		t.Fatalf("reschedule after payment: %v, want an invalid transition from Paid", err)
	}
}

func TestPaymentDeadlineBounds(t *testing.T) {
	created, _ := mustDecideApply(t, Order{}, Command{Kind: CommandCreate, OrderID: "o", PaymentTimeout: time.Hour}, deadlineT0)
	cases := map[string]struct {
		o     Order
		cmd   Command
		field string
	}{
		"CreateTooShort": {Order{}, Command{Kind: CommandCreate, OrderID: "o", PaymentTimeout: PaymentTimeoutMin - 1}, FieldPaymentTimeout},
		"CreateTooLong":  {Order{}, Command{Kind: CommandCreate, OrderID: "o", PaymentTimeout: PaymentTimeoutMax + 1}, FieldPaymentTimeout},
		"DueInThePast":   {created, Command{Kind: CommandReschedulePayment, OrderID: "o", PaymentDueAt: deadlineT0.Add(-time.Minute)}, FieldPaymentDueAt},
		"DueTooFar":      {created, Command{Kind: CommandReschedulePayment, OrderID: "o", PaymentDueAt: deadlineT0.Add(PaymentTimeoutMax + 1)}, FieldPaymentDueAt},
		"ExtendNegative": {created, Command{Kind: CommandReschedulePayment, OrderID: "o", PaymentExtend: -time.Minute}, FieldExtend},
		"ExtendTooFar":   {created, Command{Kind: CommandReschedulePayment, OrderID: "o", PaymentExtend: PaymentTimeoutMax}, FieldExtend},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Decide(tc.o, tc.cmd, deadlineT0)
			var de *DeadlineError
			if !errors.As(err, &de) || de.Field != tc.field || !errors.Is(err, ErrDeadlineOutOfBounds) {
				t.Fatalf("got %v, want a DeadlineError naming %s", err, tc.field)
			}
		})
	}
}

// Apply accepts a deadline change only in Created and only with a deadline.
func TestDeadlineChangeFollowsOnlyCreated(t *testing.T) {
	change := Event{EventID: "e", OrderID: "o", Version: 2, From: Created, To: Created, At: deadlineT0, PaymentDueAt: deadlineT0.Add(time.Hour)}
	created := Order{ID: "o", State: Created, Version: 1}
	if _, err := Apply(created, change); err != nil {
		t.Fatalf("a deadline change of a Created order: %v", err)
	}
	noDue := change
	noDue.PaymentDueAt = time.Time{}
	if _, err := Apply(created, noDue); !errors.Is(err, ErrRecordFork) {
		t.Fatalf("a deadline change without a deadline: %v, want a fork", err)
	}
	paid := Order{ID: "o", State: Paid, Version: 1}
	if _, err := Apply(paid, change); !errors.Is(err, ErrRecordFork) {
		t.Fatalf("a deadline change of a Paid order: %v, want a fork", err)
	}
	for _, s := range States() {
		if s != Created && Follows(s, Event{Version: 2, From: s, To: s, PaymentDueAt: deadlineT0}) {
			t.Fatalf("%v -> %v follows", s, s)
		}
	}
}
