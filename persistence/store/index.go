package store

import (
	"fmt"

	"github.com/orderd/orderd/order"
)

// The listing indexes (issue 16): one key per order in each index that
// applies to it, with an empty value. Each key ends with the order ID
// written as it is, with no length in front, so that an index's keys sort by
// ID (as bytes) and a page is one seek and a short scan. What comes before
// the ID is fixed by the index's prefix (a kind byte, a state byte, a
// length-prefixed customer ID), so the rest of the key is exactly the ID.
//
//	a <id>                              every order
//	s <state u8> <id>                   orders in a state
//	b <len><customer id> <id>           a customer's orders
//	q <len><customer id> <state u8> <id> a customer's orders in a state
//
// Batch.Apply keeps them in step in the batch that applies the record: a
// creation adds the a and b entries (neither changes afterwards: the
// customer is fixed at creation), and every change of state moves the s and
// q entries, deleting the old state's and setting the new one's, in the same
// atomic commit. A reader never sees an order in two states or in none.
const (
	prefixIndexAll           = 'a'
	prefixIndexState         = 's'
	prefixIndexCustomer      = 'b'
	prefixIndexCustomerState = 'q'
)

// indexPrefix is the start of every key of the index that answers q's
// filters: the IDs follow it.
func indexPrefix(state order.State, customerID string) []byte {
	switch {
	case customerID != "" && state.Valid():
		return append(appendPart([]byte{prefixIndexCustomerState}, customerID), byte(state))
	case customerID != "":
		return appendPart([]byte{prefixIndexCustomer}, customerID)
	case state.Valid():
		return []byte{prefixIndexState, byte(state)}
	}
	return []byte{prefixIndexAll}
}

func indexKey(prefix []byte, orderID string) []byte {
	return append(prefix[:len(prefix):len(prefix)], orderID...)
}

// decodeIndexKey returns the parts of any index key: the state (zero for
// the a and b indexes), the customer ID (empty for a and s) and the order
// ID, which must be a valid one.
func decodeIndexKey(k []byte) (state order.State, customerID, orderID string, err error) {
	if len(k) == 0 {
		return 0, "", "", fmt.Errorf("%w: empty index key", errFormat)
	}
	rest := k[1:]
	switch k[0] {
	case prefixIndexAll:
	case prefixIndexState:
		state, rest, err = readState(rest)
	case prefixIndexCustomer, prefixIndexCustomerState:
		if customerID, rest, err = readPart(rest); err == nil && customerID == "" {
			err = fmt.Errorf("%w: index key with an empty customer", errFormat)
		}
		if err == nil && k[0] == prefixIndexCustomerState {
			state, rest, err = readState(rest)
		}
	default:
		return 0, "", "", fmt.Errorf("%w: not an index key", errFormat)
	}
	if err != nil {
		return 0, "", "", err
	}
	orderID = string(rest)
	if order.ValidateID(orderID) != nil {
		return 0, "", "", fmt.Errorf("%w: index key names no valid order ID", errFormat)
	}
	return state, customerID, orderID, nil
}

func readState(b []byte) (order.State, []byte, error) {
	if len(b) == 0 || !order.State(b[0]).Valid() {
		return 0, nil, fmt.Errorf("%w: index key with a bad state", errFormat)
	}
	return order.State(b[0]), b[1:], nil
}

// customerOf is the customer an order was created for, as the store's
// summaries keep it ("" for none).
func customerOf(o order.Order) string {
	if o.Contents == nil {
		return ""
	}
	return o.Contents.CustomerID
}

// summaryContents is what a summary keeps of an order's contents: only
// the customer, which the indexes need to move its entries; the rest is
// in its events.
func summaryContents(c *order.Contents) *order.Contents {
	if c == nil || c.CustomerID == "" {
		return nil
	}
	if c.Currency == "" && c.Items == nil && c.Metadata == nil {
		return c // already only the customer
	}
	return &order.Contents{CustomerID: c.CustomerID}
}

// moveIndexes keeps the listing indexes in step with the change from prev
// to next (prev is the zero Order on a creation).
func (b *Batch) moveIndexes(prev, next order.Order) error {
	id, customer := next.ID, customerOf(next)
	if !prev.Exists() {
		if err := b.b.Set(indexKey(indexPrefix(0, ""), id), nil, nil); err != nil {
			return err
		}
		if customer != "" {
			if err := b.b.Set(indexKey(indexPrefix(0, customer), id), nil, nil); err != nil {
				return err
			}
		}
	}
	if prev.Exists() && prev.State == next.State {
		return nil // a deadline change, say: nothing listed moves
	}
	if err := b.moveState(prev, next, ""); err != nil {
		return err
	}
	if customer != "" {
		return b.moveState(prev, next, customer)
	}
	return nil
}

// moveState moves the order's entry in the by-state index (customer "")
// or the by-customer-and-state one.
func (b *Batch) moveState(prev, next order.Order, customer string) error {
	if prev.Exists() {
		if err := b.b.Delete(indexKey(indexPrefix(prev.State, customer), prev.ID), nil); err != nil {
			return err
		}
	}
	return b.b.Set(indexKey(indexPrefix(next.State, customer), next.ID), nil, nil)
}
