package order

import "context"

// CheckoutJournal is implemented by a journal that also records checkout
// events, in the same log as orders (persistence: the same topic, key
// CheckoutKey(id)), in the partition of the checkout's order (whose ID is
// the checkout's), so that a checkout's records are ordered like an
// order's and share its order's claims, owner and state store.
// actors.CheckoutJournal, what the saga's orchestrator needs, is this
// method set.
//
// Contract, beside Journal's:
//   - AppendCheckout returns nil only once the event is durable, with the
//     errors of Append (ErrJournalUnavailable: not written;
//     ErrOutcomeUnknown or any other: maybe written).
//   - LoadCheckout returns the checkout's events in log order, read up to
//     the log's end at the call, and settles unknown outcomes as Load does
//     (every append that returned before the call is in the result or
//     never will be). It leaves out the records ApplyCheckout skips
//     (duplicates, forks), so that folding the result from the zero
//     Checkout applies every event. A checkout with no records is no
//     events and no error; an ID that ValidateID refuses is an error
//     matching ErrInvalidID.
//   - Journal.Replay does not pass checkout records to its function and
//     does not count them as undecodable (ReplayStats.Checkout).
type CheckoutJournal interface {
	AppendCheckout(ctx context.Context, ev CheckoutEvent) error
	LoadCheckout(ctx context.Context, checkoutID string) ([]CheckoutEvent, error)
}

// CheckoutStore is implemented by a state store that keeps checkouts,
// complete up to the store's checkpoints like everything else in it.
//
// Contract:
//   - UnfinishedCheckouts calls fn with the ID of every checkout that has
//     started and is not finished (CheckoutStatus.Finished) as of the
//     store's last applied records, in ID order, from one consistent
//     view; an error from fn stops it and is returned. A node resumes
//     these after a restart or a takeover.
//   - It is safe from many goroutines at once.
type CheckoutStore interface {
	UnfinishedCheckouts(fn func(id string) error) error
}
