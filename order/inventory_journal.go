package order

import "context"

// InventoryJournal is implemented by a journal that also records inventory
// events, in the same log as orders (persistence: the same topic, key
// InventoryKey(sku)), so that a SKU's records are ordered and partitioned
// like an order's and share its claims and its state store.
//
// Contract, beside Journal's:
//   - AppendInventory returns nil only once the event is durable, with the
//     errors of Append (ErrJournalUnavailable: not written;
//     ErrOutcomeUnknown or any other: maybe written).
//   - LoadInventory returns the SKU as the log makes it, read up to the
//     log's end at the call, by ApplyInventory: it settles unknown outcomes
//     as Load does (every append that returned before the call is in the
//     result or never will be). Holds lists the holds of the orders whose
//     records it applied from the log itself; a hold not among them is as
//     the state store holds it (InventoryStore), or none without a store.
//     A SKU with no records is the zero Stock, not an error.
//   - Journal.Replay does not pass inventory records to its function and
//     does not count them as undecodable.
type InventoryJournal interface {
	AppendInventory(ctx context.Context, ev InventoryEvent) error
	LoadInventory(ctx context.Context, sku string) (InventoryLoad, error)
}

// InventoryLoad is what LoadInventory read.
type InventoryLoad struct {
	Stock   Stock
	Holds   map[string]Hold // by order ID: the holds the records read from the log changed
	Skipped int             // records the apply rule skipped (duplicates, forks)
}

// InventoryStore is implemented by a state store that keeps inventory: each
// SKU's stock and its ledger of holds, complete up to the store's
// checkpoints like everything else in it.
//
// Contract:
//   - Stock returns the SKU as of the store's last applied record; the zero
//     Stock (version 0) when it has none.
//   - Hold returns the order's hold on the SKU; the zero Hold when it has none.
//   - Both are safe from many goroutines at once, and each is one
//     consistent read.
type InventoryStore interface {
	Stock(ctx context.Context, sku string) (Stock, error)
	Hold(ctx context.Context, sku, orderID string) (Hold, error)
}

// ForeignInventoryNotifier is ForeignRecordNotifier for inventory: a journal
// that notices another writer's inventory records says which SKU they
// touched, before it answers any append the log placed after them, so that
// the SKU's actor reads the SKU from the log before it trusts memory or
// acknowledges its own record. fn runs on the journal's goroutines, must
// return quickly and must not call the journal.
type ForeignInventoryNotifier interface {
	NotifyForeignInventory(fn func(sku string))
}
