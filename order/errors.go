package order

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error the core returns matches exactly one of these
// with errors.Is, so adapters map them to their own codes in one table.
var (
	ErrOrderNotFound      = errors.New("order not found")
	ErrOrderExists        = errors.New("order already exists")
	ErrInvalidTransition  = errors.New("invalid transition")
	ErrVersionMismatch    = errors.New("version mismatch")
	ErrUnknownState       = errors.New("unknown state")
	ErrInvalidID          = errors.New("invalid order id")
	ErrInvalidCommand     = errors.New("invalid command")
	ErrJournalUnavailable = errors.New("journal unavailable")
	ErrOutcomeUnknown     = errors.New("journal write outcome unknown")

	// ErrIdempotencyKeyReused: the command's idempotency key is remembered
	// for an earlier, different request by the same principal: on the same
	// order, or, for a create, the creation of another order. Nothing was
	// applied.
	ErrIdempotencyKeyReused = errors.New("idempotency key reused for a different request")

	// ErrWriteConflict: another writer appended a record of the order first,
	// so the apply rule skips the command's own record, which is in the log
	// but changes nothing. Nothing was applied.
	ErrWriteConflict = errors.New("another writer changed the order first")

	// ErrRecordDuplicate and ErrRecordFork are Apply's verdicts on records
	// that must be skipped: a version at or below the current one, or a step
	// that does not continue the order's path.
	ErrRecordDuplicate = errors.New("duplicate record")
	ErrRecordFork      = errors.New("record does not continue the order's path")
)

// InvalidTransitionError says which step was refused and what was allowed.
type InvalidTransitionError struct {
	From    State
	To      State
	Allowed []State
}

func (e *InvalidTransitionError) Error() string {
	if len(e.Allowed) == 0 {
		return fmt.Sprintf("cannot move from %v to %v: %v is terminal", e.From, e.To, e.From)
	}
	names := make([]string, len(e.Allowed))
	for i, s := range e.Allowed {
		names[i] = s.String()
	}
	return fmt.Sprintf("cannot move from %v to %v; allowed next: %s", e.From, e.To, strings.Join(names, ", "))
}

func (e *InvalidTransitionError) Is(target error) bool { return target == ErrInvalidTransition }

// VersionMismatchError says which version the client expected and which the order has.
type VersionMismatchError struct {
	Expected uint64
	Current  uint64
}

func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("expected version %d, order is at version %d", e.Expected, e.Current)
}

func (e *VersionMismatchError) Is(target error) bool { return target == ErrVersionMismatch }

// WriteConflictError says which version another writer took first, and
// where the order is now.
type WriteConflictError struct {
	OrderID string
	Version uint64 // the version the lost record carried
	Current uint64 // the order's version, as the log made it
	State   State  // the order's state, as the log made it
}

func (e *WriteConflictError) Error() string {
	return fmt.Sprintf("order %s: another writer's record of version %d came first, so this request's record is in the log but skipped; the order is at version %d (%v); nothing was applied",
		e.OrderID, e.Version, e.Current, e.State)
}

func (e *WriteConflictError) Is(target error) bool { return target == ErrWriteConflict }

// UnknownStateError names the string that is not a state.
type UnknownStateError struct{ Name string }

func (e *UnknownStateError) Error() string {
	return fmt.Sprintf("unknown state %q (states are case-sensitive: %s)", e.Name, stateList())
}

func (e *UnknownStateError) Is(target error) bool { return target == ErrUnknownState }

func stateList() string {
	names := make([]string, 0, len(stateNames))
	for _, s := range States() {
		names = append(names, s.String())
	}
	return strings.Join(names, ", ")
}
