package order

import "context"

// Listing orders (issue 16): pages of orders in ID order, optionally only
// those in one state and/or of one customer, each page starting after the
// last ID of the one before (keyset paging), so that a page is found by a
// seek in an index and no order is ever listed twice while a client pages.

// Bounds of a page.
const (
	// ListLimitDefault is the page size when the client names none.
	ListLimitDefault = 100
	// ListLimitMax bounds a page: a thousand orders with the most items
	// is about 12 MB of JSON, read and encoded in one request; beyond
	// that a client pages.
	ListLimitMax = 1000
)

// ListQuery selects a page of orders.
type ListQuery struct {
	// State, when valid, keeps only the orders in that state; the zero
	// State keeps every state.
	State State
	// CustomerID, when not empty, keeps only that customer's orders.
	CustomerID string
	// After, when not empty, starts the page after this order ID (the
	// last ID of the previous page): IDs compare as bytes.
	After string
	// Limit is the most orders the page holds, 1 to ListLimitMax.
	Limit int
}

// ListPage is one page of a listing.
type ListPage struct {
	// Orders are in ascending ID order, each with its contents.
	Orders []Order
	// More says that at least one more order matched after the last one:
	// the next page starts after Orders[len(Orders)-1].ID.
	More bool
}

// Lister lists orders.
//
// Contract, for every implementation:
//   - A page holds the orders whose ID is greater than After and that
//     match the filters, in ascending ID order, at most Limit of them, each
//     as Apply folded its accepted events (contents included).
//   - A page is read from one consistent view: every order in it is as the
//     view holds it, and no order is listed in a state it was not in.
//   - Paging (After = the previous page's last ID) never lists an order
//     twice, whatever happens between pages; an order that existed, and
//     matched the filter, throughout the paging is listed exactly once.
//   - Safe from many goroutines at once.
type Lister interface {
	List(ctx context.Context, q ListQuery) (ListPage, error)
}
