package order

import (
	"errors"
	"fmt"
	"time"
)

// Payment deadlines. Every order waits in Created for payment until its
// deadline; when it passes, the server cancels the order (actors/timers.go).
//
// The deadline is data in the log: the creation event carries it, and moving
// it is an event of its own, a "deadline change" whose From and To are both
// Created and which carries the new PaymentDueAt. It adds 1 to the version
// like every accepted event, so versions stay 1, 2, 3... and If-Match,
// idempotency and the one Apply rule treat it like any other record; it is
// accepted only while the order is in Created (Follows).

// Bounds on a payment deadline, measured from the moment it is set.
const (
	// PaymentTimeoutMin keeps a deadline from firing before a client could
	// reasonably pay (and a typo like "1s" from cancelling at once).
	PaymentTimeoutMin = time.Minute
	// PaymentTimeoutMax bounds how long an unpaid order may hold stock: a
	// week covers invoices paid by bank transfer, and keeps the set of
	// pending deadlines from growing with orders nobody will ever pay.
	PaymentTimeoutMax = 7 * 24 * time.Hour
	// PaymentTimeoutDefault is the server-wide default (--payment-timeout).
	PaymentTimeoutDefault = 30 * time.Minute
)

// Request fields a DeadlineError can name, spelled as clients send them.
const (
	FieldPaymentTimeout = "payment_timeout"
	FieldPaymentDueAt   = "payment_due_at"
	FieldExtend         = "extend"
)

// ErrDeadlineOutOfBounds matches every DeadlineError.
var ErrDeadlineOutOfBounds = errors.New("payment deadline out of bounds")

// DeadlineError is a requested payment deadline outside
// [PaymentTimeoutMin, PaymentTimeoutMax] from now; Field names the request
// member that asked for it.
type DeadlineError struct {
	Field  string
	Detail string
}

func (e *DeadlineError) Error() string {
	return fmt.Sprintf("%s: %s: %s", ErrDeadlineOutOfBounds, e.Field, e.Detail)
}

func (e *DeadlineError) Is(target error) bool { return target == ErrDeadlineOutOfBounds }

func checkPaymentTimeout(field string, d time.Duration) error {
	if d < PaymentTimeoutMin || d > PaymentTimeoutMax {
		return &DeadlineError{Field: field, Detail: fmt.Sprintf("%v from now is outside %v..%v", d, PaymentTimeoutMin, PaymentTimeoutMax)}
	}
	return nil
}

// CheckPaymentTimeout reports whether d is an acceptable payment timeout,
// so that front ends can refuse a request before it reaches an order.
func CheckPaymentTimeout(field string, d time.Duration) error { return checkPaymentTimeout(field, d) }

// IsDeadlineChange reports whether ev moves the payment deadline rather than
// the state.
func IsDeadlineChange(ev Event) bool {
	return ev.From == InitialState && ev.To == InitialState && ev.Version > 1
}

// Follows reports whether ev, a record after the first, is a step the
// lifecycle allows from state: a transition in the table, or a deadline
// change of an order in Created that names its new deadline. Every reader
// of the log (Apply, consumers of the audit topic) uses it.
func Follows(state State, ev Event) bool {
	if IsDeadlineChange(ev) {
		return state == InitialState && !ev.PaymentDueAt.IsZero()
	}
	return ev.From == state && CanTransition(state, ev.To)
}

// decideReschedule decides a deadline change; ev holds the fields every
// event carries.
func decideReschedule(o Order, cmd Command, ev Event) (Event, error) {
	if !o.Exists() {
		return Event{}, ErrOrderNotFound
	}
	if cmd.ExpectedVersion != 0 && cmd.ExpectedVersion != o.Version {
		return Event{}, &VersionMismatchError{Expected: cmd.ExpectedVersion, Current: o.Version}
	}
	if o.State != InitialState {
		// Only an order waiting for payment has a deadline to move: the
		// same 409 as any step the table does not allow from here.
		return Event{}, &InvalidTransitionError{From: o.State, To: InitialState, Allowed: AllowedNext(o.State)}
	}
	var due time.Time
	switch {
	case !cmd.PaymentDueAt.IsZero() && cmd.PaymentExtend == 0:
		due = cmd.PaymentDueAt.UTC()
		if err := checkPaymentTimeout(FieldPaymentDueAt, due.Sub(ev.At)); err != nil {
			return Event{}, err
		}
	case cmd.PaymentDueAt.IsZero() && cmd.PaymentExtend != 0:
		if cmd.PaymentExtend < 0 {
			return Event{}, &DeadlineError{Field: FieldExtend, Detail: "must be positive"}
		}
		base := o.PaymentDueAt
		if base.IsZero() || base.Before(ev.At) {
			// No deadline, or one already passed and not yet fired:
			// extending counts from now, never from the past.
			base = ev.At
		}
		due = base.Add(cmd.PaymentExtend)
		if err := checkPaymentTimeout(FieldExtend, due.Sub(ev.At)); err != nil {
			return Event{}, err
		}
	default:
		return Event{}, fmt.Errorf("%w: a reschedule names exactly one of a deadline and an extension", ErrInvalidCommand)
	}
	ev.Version, ev.From, ev.To, ev.PaymentDueAt = o.Version+1, InitialState, InitialState, due
	return ev, nil
}
