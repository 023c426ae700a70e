package actors

import (
	"context"
	"fmt"

	"github.com/orderd/orderd/order"
)

// List implements Service. A listing is read from the state store, not from
// memory: the store holds every order in the log (memory only those in use)
// and, in a cluster, every node's orders, and its indexes find a page with
// a seek. Config.Lister waits until the store has applied every write this
// node acknowledged (persistence.StoreLister), which is what makes the
// listing as fresh as an order's actor for this node's own answers.
func (s *System) List(ctx context.Context, q order.ListQuery) (order.ListPage, error) {
	if err := s.Ready(); err != nil {
		return order.ListPage{}, err
	}
	if s.lister == nil {
		return order.ListPage{}, fmt.Errorf("%w: listing orders needs the state store", ErrNotReady)
	}
	return s.lister.List(ctx, q)
}
