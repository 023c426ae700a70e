package main

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/order"
)

// lateService is the actors.Service the HTTP server is built with before the
// journal is reachable: it answers ErrNotReady until the actor system is set.
// Healthy reports the journal's health, which /readyz adds to readiness, so a
// load balancer hears the truth while the broker is down.
type lateService struct {
	system  atomic.Pointer[actors.System]
	healthy atomic.Pointer[func() error]
	waiting atomic.Pointer[string] // why there is no system yet
}

var _ actors.Service = (*lateService)(nil)

func (l *lateService) set(s *actors.System, healthy func() error) {
	l.healthy.Store(&healthy)
	l.system.Store(s)
}

func (l *lateService) wait(reason string) { l.waiting.Store(&reason) }

func (l *lateService) get() (*actors.System, error) {
	if s := l.system.Load(); s != nil {
		return s, nil
	}
	reason := "starting"
	if r := l.waiting.Load(); r != nil {
		reason = *r
	}
	return nil, fmt.Errorf("%w: %s", actors.ErrNotReady, reason)
}

func (l *lateService) Execute(ctx context.Context, cmd order.Command) (order.Order, error) {
	s, err := l.get()
	if err != nil {
		return order.Order{}, err
	}
	return s.Execute(ctx, cmd)
}

func (l *lateService) Get(ctx context.Context, id string) (order.Order, error) {
	s, err := l.get()
	if err != nil {
		return order.Order{}, err
	}
	return s.Get(ctx, id)
}

func (l *lateService) History(ctx context.Context, id string) ([]order.Event, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.History(ctx, id)
}

func (l *lateService) List(ctx context.Context, q order.ListQuery) (order.ListPage, error) {
	s, err := l.get()
	if err != nil {
		return order.ListPage{}, err
	}
	return s.List(ctx, q)
}

func (l *lateService) Ready() error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.Ready()
}

// Healthy returns the journal's health once there is a journal.
func (l *lateService) Healthy() error {
	if _, err := l.get(); err != nil {
		return err
	}
	return (*l.healthy.Load())()
}

var _ actors.InventoryService = (*lateService)(nil)

func (l *lateService) GetStock(ctx context.Context, sku string) (order.Stock, error) {
	s, err := l.get()
	if err != nil {
		return order.Stock{}, err
	}
	return s.GetStock(ctx, sku)
}

func (l *lateService) SetStock(ctx context.Context, set actors.StockSet) (order.Stock, error) {
	s, err := l.get()
	if err != nil {
		return order.Stock{}, err
	}
	return s.SetStock(ctx, set)
}

func (l *lateService) Reserve(ctx context.Context, ref actors.HoldRef, quantity int64) (actors.InventoryResult, error) {
	s, err := l.get()
	if err != nil {
		return actors.InventoryResult{}, err
	}
	return s.Reserve(ctx, ref, quantity)
}

func (l *lateService) Release(ctx context.Context, ref actors.HoldRef) (actors.InventoryResult, error) {
	s, err := l.get()
	if err != nil {
		return actors.InventoryResult{}, err
	}
	return s.Release(ctx, ref)
}

func (l *lateService) Consume(ctx context.Context, ref actors.HoldRef) (actors.InventoryResult, error) {
	s, err := l.get()
	if err != nil {
		return actors.InventoryResult{}, err
	}
	return s.Consume(ctx, ref)
}

func (l *lateService) Restock(ctx context.Context, ref actors.HoldRef) (actors.InventoryResult, error) {
	s, err := l.get()
	if err != nil {
		return actors.InventoryResult{}, err
	}
	return s.Restock(ctx, ref)
}
