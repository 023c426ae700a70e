// Package actors runs every order as a protoactor-go actor whose mailbox
// serialises its transitions, found through a registry sharded by order ID.
package actors

import (
	"context"
	"errors"

	"github.com/orderd/orderd/order"
)

// Service is what the HTTP layer (or any other front end) needs from the
// actors. Every method is safe for concurrent use.
type Service interface {
	// Execute runs a create or transition command through the order's actor:
	// decide, append to the journal and wait for its acknowledgement, apply,
	// reply. It returns the order as it is after the event. The caller fills
	// every field of cmd except EventID, which the actor chooses.
	//
	// A command whose idempotency key the order remembers (same principal,
	// within the window) is not carried out again: if it is the same
	// request, Execute returns the order as the first attempt left it and
	// appends nothing; if not, an error matching order.ErrIdempotencyKeyReused.
	// A create with IDGenerated and a key is routed to the order an earlier
	// attempt with that key was routed to, so the returned order's ID may
	// differ from cmd.OrderID.
	//
	// Errors match the order package's sentinels, ErrBusy or ErrNotReady.
	Execute(ctx context.Context, cmd order.Command) (order.Order, error)

	// Get returns the order as last published by its actor: only state that
	// is already durable in the journal is ever visible.
	Get(ctx context.Context, id string) (order.Order, error)

	// History returns the order's accepted events, oldest first.
	History(ctx context.Context, id string) ([]order.Event, error)

	// List returns a page of orders as order.Lister's contract says,
	// each as Get would show it, the orders not in memory included. It
	// reflects at least every command this node had answered with
	// success when List was called. Errors: ErrNotReady (recovering, or
	// no listing without a state store), order.ErrStoreBehind.
	List(ctx context.Context, q order.ListQuery) (order.ListPage, error)

	// Ready returns nil once recovery has caught up with the log, and an
	// error matching ErrNotReady saying why not before that.
	Ready() error
}

var (
	// ErrBusy: the order's mailbox is full, or the request's deadline passed
	// while it waited its turn. Nothing was applied; retry after a moment.
	ErrBusy = errors.New("order busy")
	// ErrNotReady: recovery has not caught up with the log yet, or the
	// server is shutting down. Nothing was applied.
	ErrNotReady = errors.New("not ready")
)
