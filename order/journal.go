package order

import "context"

// Journal is the durable, ordered log of accepted events: the audit log that
// other systems read and the source orderd rebuilds itself from.
//
// Contract, for every implementation (the conformance suite in persistence
// checks it):
//   - Append returns nil only once the event is durable (on Kafka: acknowledged
//     by all in-sync replicas). Appends are safe from many goroutines at once,
//     and concurrent appends may share one write (group commit); a lone append
//     is never held back waiting for company.
//   - Events of one order are kept in the order they were appended, provided
//     the caller appends them one at a time (the order's actor does).
//   - Append errors match ErrJournalUnavailable when the event was certainly
//     not written, and ErrOutcomeUnknown when it may or may not have been
//     (a timeout or a connection broken after sending). Any other error is
//     treated like ErrOutcomeUnknown.
//   - Replay and Load return events exactly as appended, field for field
//     (Load may leave out skipped records, see Load).
type Journal interface {
	Append(ctx context.Context, ev Event) error

	// Replay calls fn for every event in the log, from the beginning up to
	// the end the log had when Replay started. Events of one order arrive in
	// log order. fn is never called from two goroutines at once. Records that
	// cannot be decoded are counted in the stats and skipped. An error from
	// fn stops the replay and is returned.
	Replay(ctx context.Context, fn func(Event) error) (ReplayStats, error)

	// Load returns every event recorded for one order, in log order, read up
	// to the log's end at the time of the call. It settles unknown outcomes:
	// after it returns, every append that returned before it was called is
	// either in the result or will never appear. An implementation backed by
	// a StateStore may leave out records the apply rule skipped below the
	// store's checkpoint (duplicates and forks): folded with Apply, the
	// result gives the same order and the same accepted events.
	Load(ctx context.Context, orderID string) ([]Event, error)

	// Close waits for appends in flight and releases connections.
	Close() error
}

// ForeignRecordNotifier is implemented by a journal that notices records
// another writer (a second orderd on the same topic) appended to the log.
// Such a record can change an order behind the back of the actor that holds
// it in memory, so that the actor's next record is one the apply rule will
// skip; the actor must read the order from the log before it trusts memory
// or acknowledges its own record (actors.System does).
type ForeignRecordNotifier interface {
	// NotifyForeign makes the journal call fn with every decodable record
	// another writer appended, before it answers any append the log placed
	// after that record. fn runs on the journal's goroutines, must return
	// quickly and must not call the journal. A record may be reported more
	// than once.
	NotifyForeign(fn func(Event))
}

// ReplayStats counts what a replay read.
type ReplayStats struct {
	Records     int // records read, including undecodable ones
	Undecodable int // records skipped because they could not be decoded
	Inventory   int // inventory records (InventoryJournal): read, not passed to fn
	Checkout    int // checkout records (CheckoutJournal): read, not passed to fn
}
