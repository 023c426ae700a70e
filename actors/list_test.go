package actors

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// listerFunc is a function-field order.Lister.
type listerFunc func(context.Context, order.ListQuery) (order.ListPage, error)

func (f listerFunc) List(ctx context.Context, q order.ListQuery) (order.ListPage, error) {
	return f(ctx, q)
}

func TestListAsksTheLister(t *testing.T) {
	want := order.ListPage{Orders: []order.Order{{ID: "a", State: order.Paid, Version: 2}}, More: true}
	var asked order.ListQuery
	s := startSystem(t, Config{Journal: &fakeJournal{}, Lister: listerFunc(func(_ context.Context, q order.ListQuery) (order.ListPage, error) {
		asked = q
		return want, nil
	})})
	q := order.ListQuery{State: order.Paid, CustomerID: "c", After: "0", Limit: 5}
	got, err := s.List(ctxFor(t), q)
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Equal(t, q, asked)
}

func TestListNeedsALister(t *testing.T) {
	s := newSystem(t, &fakeJournal{})
	_, err := s.List(ctxFor(t), order.ListQuery{Limit: 1})
	require.ErrorIs(t, err, ErrNotReady)
}
