package order

import (
	"fmt"
	"time"
)

// Order is the state of one order as the log has made it. The zero Order is
// an order that does not exist yet (version 0).
type Order struct {
	ID        string
	State     State
	Version   uint64
	CreatedAt time.Time
	UpdatedAt time.Time
	// PaymentDueAt is when an unpaid order is cancelled (deadline.go); zero
	// when the order is not in Created or was created without a deadline.
	PaymentDueAt time.Time
	// Contents is what was ordered and the metadata (contents.go); nil for
	// an order that has neither, so that such an order costs one word.
	Contents *Contents
}

// Exists reports whether the order has been created.
func (o Order) Exists() bool { return o.Version > 0 }

// Event is one accepted transition, the creation included (version 1, From
// zero). It is what the journal records and what Apply consumes.
type Event struct {
	EventID        string
	OrderID        string
	Version        uint64
	From           State // zero on creation
	To             State
	At             time.Time
	IdempotencyKey string
	// RequestDigest is RequestDigest(cmd) of the command that carried
	// IdempotencyKey, so that a retry with the same key can be told apart
	// from another request reusing it. Empty when there is no key, and in
	// records written before digests were recorded.
	RequestDigest string
	Principal     string
	RequestID     string
	Reason        string
	// PaymentDueAt is the payment deadline a creation sets, or the new one
	// a deadline change (From == To == Created, deadline.go) sets; zero on
	// every other event and on creations recorded before deadlines existed.
	PaymentDueAt time.Time

	// What was ordered (contents.go): only a creation carries CustomerID,
	// Currency, Items and Total (computed by Decide), and only if the
	// client sent them; Metadata is what this event adds (nil: nothing).
	// Records written before they existed lack them all.
	CustomerID string
	Currency   string
	Items      []Item
	Total      int64
	Metadata   map[string]string
}

// CommandKind says what a command asks for.
type CommandKind uint8

const (
	_ CommandKind = iota
	CommandCreate
	CommandTransition
	// CommandReschedulePayment moves the payment deadline of an order in
	// Created (deadline.go).
	CommandReschedulePayment
)

// Command is a request to change one order. The fields other than Kind,
// OrderID and To are carried into the event for the audit log.
type Command struct {
	Kind    CommandKind
	OrderID string
	To      State // ignored for CommandCreate, which always goes to Created

	// ExpectedVersion, when not zero, must equal the order's version
	// (If-Match); it is checked before the transition table (RFC 9110 §13.2.2).
	ExpectedVersion uint64

	// IDGenerated says that the server chose OrderID for a create because
	// the client named none. A retry of such a create carries another
	// generated ID, so its idempotency key, not its ID, finds the order it
	// created; and the ID is left out of its RequestDigest.
	IDGenerated bool

	// EventID is the ID the new event will carry. The caller chooses it so
	// that Decide stays deterministic.
	EventID        string
	IdempotencyKey string
	Principal      string
	RequestID      string
	Reason         string

	// Payment deadline (deadline.go). PaymentTimeout: on a create, the
	// deadline is now + PaymentTimeout (zero: no deadline). On a
	// reschedule exactly one of PaymentDueAt (absolute) and PaymentExtend
	// (added to the current deadline) is set.
	PaymentTimeout time.Duration
	PaymentDueAt   time.Time
	PaymentExtend  time.Duration

	// What a create orders (contents.go): checked by Decide, which
	// computes the total. Metadata: pairs a create or a transition adds.
	CustomerID string
	Currency   string
	Items      []Item
	Metadata   map[string]string
}

// Decide checks cmd against the order o and returns the event that would
// carry it out. It changes nothing: the caller records the event and then
// calls Apply.
func Decide(o Order, cmd Command, now time.Time) (Event, error) {
	if err := ValidateID(cmd.OrderID); err != nil {
		return Event{}, err
	}
	if o.Exists() && o.ID != cmd.OrderID {
		return Event{}, fmt.Errorf("%w: command for %q sent to order %q", ErrInvalidCommand, cmd.OrderID, o.ID)
	}
	ev := Event{
		EventID:        cmd.EventID,
		OrderID:        cmd.OrderID,
		At:             now.UTC(),
		IdempotencyKey: cmd.IdempotencyKey,
		Principal:      cmd.Principal,
		RequestID:      cmd.RequestID,
		Reason:         cmd.Reason,
	}
	if cmd.IdempotencyKey != "" {
		ev.RequestDigest = RequestDigest(cmd)
	}
	if err := CheckMetadata(cmd.Metadata); err != nil {
		return Event{}, err
	}
	if len(cmd.Metadata) > 0 {
		ev.Metadata = cmd.Metadata
	}
	switch cmd.Kind {
	case CommandCreate:
		if o.Exists() {
			return Event{}, ErrOrderExists
		}
		ev.Version, ev.To = 1, InitialState
		if err := decideContents(cmd, &ev); err != nil {
			return Event{}, err
		}
		if cmd.PaymentTimeout != 0 {
			if err := checkPaymentTimeout(FieldPaymentTimeout, cmd.PaymentTimeout); err != nil {
				return Event{}, err
			}
			ev.PaymentDueAt = ev.At.Add(cmd.PaymentTimeout)
		}
		return ev, nil
	case CommandTransition:
		if !o.Exists() {
			return Event{}, ErrOrderNotFound
		}
		if cmd.ExpectedVersion != 0 && cmd.ExpectedVersion != o.Version {
			return Event{}, &VersionMismatchError{Expected: cmd.ExpectedVersion, Current: o.Version}
		}
		if !cmd.To.Valid() {
			return Event{}, &UnknownStateError{Name: cmd.To.String()}
		}
		if !CanTransition(o.State, cmd.To) {
			return Event{}, &InvalidTransitionError{From: o.State, To: cmd.To, Allowed: AllowedNext(o.State)}
		}
		ev.Version, ev.From, ev.To = o.Version+1, o.State, cmd.To
		return ev, nil
	case CommandReschedulePayment:
		return decideReschedule(o, cmd, ev)
	default:
		return Event{}, fmt.Errorf("%w: unknown command kind %d", ErrInvalidCommand, cmd.Kind)
	}
}

// Apply is the one rule by which a recorded event changes an order, used at
// run time and at replay alike. An event is applied only if it is the next
// version and a step in the table; otherwise Apply returns o unchanged and an
// error matching ErrRecordDuplicate or ErrRecordFork, and the caller counts
// and skips the record.
func Apply(o Order, ev Event) (Order, error) {
	if err := checkContinues(o, ev); err != nil {
		return o, err
	}
	next := o
	if ev.Version == 1 {
		next = Order{ID: ev.OrderID, CreatedAt: ev.At}
	}
	next.State, next.Version, next.UpdatedAt = ev.To, ev.Version, ev.At
	// The deadline lives only while the order waits for payment: a
	// creation or a deadline change sets it, leaving Created drops it.
	next.PaymentDueAt = time.Time{}
	if next.State == InitialState {
		next.PaymentDueAt = o.PaymentDueAt
		if !ev.PaymentDueAt.IsZero() {
			next.PaymentDueAt = ev.PaymentDueAt
		}
	}
	next.Contents = NextContents(o.Contents, ev)
	assertInvariants(o, next)
	return next, nil
}

// decideContents checks what a create orders and computes its total.
func decideContents(cmd Command, ev *Event) error {
	if err := CheckOrderContents(cmd.CustomerID, cmd.Currency, cmd.Items); err != nil {
		return err
	}
	total, err := Total(cmd.Items)
	if err != nil {
		return err
	}
	ev.CustomerID, ev.Currency, ev.Items, ev.Total = cmd.CustomerID, cmd.Currency, cmd.Items, total
	return nil
}

func checkContinues(o Order, ev Event) error {
	switch {
	case o.Exists() && ev.OrderID != o.ID:
		return fmt.Errorf("%w: event for %q applied to %q", ErrRecordFork, ev.OrderID, o.ID)
	case ev.Version <= o.Version:
		return fmt.Errorf("%w: %s version %d, order is at %d", ErrRecordDuplicate, ev.OrderID, ev.Version, o.Version)
	case ev.Version != o.Version+1:
		return fmt.Errorf("%w: %s version %d after %d leaves a gap", ErrRecordFork, ev.OrderID, ev.Version, o.Version)
	case ev.Version == 1 && (ev.From.Valid() || ev.To != InitialState):
		return fmt.Errorf("%w: %s first event %v -> %v is not a creation", ErrRecordFork, ev.OrderID, ev.From, ev.To)
	case ev.Version > 1 && (ev.From != o.State || !Follows(o.State, ev)):
		return fmt.Errorf("%w: %s version %d %v -> %v does not follow %v", ErrRecordFork, ev.OrderID, ev.Version, ev.From, ev.To, o.State)
	}
	return nil
}

// assertInvariants panics if Apply produced an impossible order: that is a
// bug in this package, and the actor that called it restarts from the log.
func assertInvariants(before, after Order) {
	if after.Version != before.Version+1 || !after.State.Valid() || after.ID == "" {
		panic(fmt.Sprintf("order: apply broke an invariant: %+v -> %+v", before, after))
	}
}
