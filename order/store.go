package order

import (
	"context"
	"errors"
	"time"
)

// StateStore is a node's local copy of the log, arranged by order: a cache of
// the log that can always be rebuilt from it, so that memory holds only the
// orders in use and a restart reads only the log's tail (persistence/store).
// The log stays the only source of truth: nothing is acknowledged on the
// store's word alone.
//
// Contract, for every implementation:
//   - It is complete up to its checkpoints, one per partition: it holds every
//     record below a partition's checkpoint that the apply rule (Apply)
//     accepted, in log order, and nothing the rule skipped. Whoever feeds it
//     keeps that true; readers see a state that was complete at some
//     checkpoint, never half of one batch.
//   - Events returns the order's accepted events, oldest first, field for
//     field as the log holds them; ErrOrderNotFound when it has none.
//   - Version returns the version of the order's last accepted event, and 0
//     when it has none. It is cheap: it does not decode the events.
//   - PendingDeadlines calls fn for every order that waits for payment (its
//     last event leaves it in Created with a deadline) and whose deadline is
//     before the given time, in the order of their deadlines. An error from
//     fn stops it and is returned.
//   - CreatedBy returns the order that a create carrying the idempotency
//     key made, and when, for the principal; ErrOrderNotFound if the store
//     knows of none.
//   - All methods are safe from many goroutines at once.
type StateStore interface {
	Events(ctx context.Context, orderID string) ([]Event, error)
	Version(ctx context.Context, orderID string) (uint64, error)
	PendingDeadlines(ctx context.Context, before time.Time, fn func(PendingDeadline) error) error
	CreatedBy(ctx context.Context, principal, idempotencyKey string) (orderID string, at time.Time, err error)
}

// PendingDeadline is a payment deadline as the store indexes it: the order,
// the version whose event set it (the order's current one), and when it is due.
type PendingDeadline struct {
	OrderID string
	Version uint64
	Due     time.Time
}

// ErrStoreUnusable matches the errors of a store that cannot be trusted: it
// is damaged, from another topic, or ahead of the log. The store is then
// rebuilt from the log; nothing else is lost.
var ErrStoreUnusable = errors.New("state store unusable")

// ErrStoreBehind matches the error of a read from the state store that
// waited too long for the store to apply records it must reflect (a
// listing waits for what this process acknowledged): nothing is wrong but
// time; the client retries shortly.
var ErrStoreBehind = errors.New("state store behind the log")
