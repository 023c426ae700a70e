package actors

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/orderd/orderd/order"
)

// Transition actions (DESIGN §10, seed 002): the lifecycle drives
// inventory. When an order that holds stock is cancelled its hold is
// released, when it ships the hold is consumed (the stock leaves on_hand),
// when it is returned the stock comes back. Each action runs after its
// transition is in the log, at least once: Applied queues it as the
// transition is applied, and Reconcile finds what a full queue or a crash
// left undone. Its effect is exactly once: inventory keeps each order's
// hold per SKU, and names the order and version that changed it, so an
// action that finds the hold already moved on changes nothing.

// StockActions is what the actions need of inventory. Each call is
// idempotent by (sku, order): an order that holds nothing on the SKU, or
// whose hold is already past the change, is a success that changes
// nothing. orderVersion is the order's version whose transition asks for
// the change, recorded with it.
type StockActions interface {
	Release(ctx context.Context, sku, orderID string, orderVersion uint64) error
	Consume(ctx context.Context, sku, orderID string, orderVersion uint64) error
	Restock(ctx context.Context, sku, orderID string, orderVersion uint64) error
}

// Bounds and pacing of the actions.
const (
	// actionsQueued bounds the actions waiting for a worker; beyond it an
	// action is left to Reconcile (counted), so that a slow inventory
	// never holds up the order actors that queue them.
	actionsQueued = 8192
	// actionWorkers run the queued actions; a few suffice, each call
	// being one SKU actor's turn.
	actionWorkers = 4
	// actionAttemptsMax bounds the attempts of one queued action while
	// inventory fails for a passing reason; after that Reconcile does it.
	actionAttemptsMax = 6
	// actionRetryMin doubles between attempts.
	actionRetryMin = 100 * time.Millisecond
	// actionCallTimeout bounds one call to a SKU.
	actionCallTimeout = 5 * time.Second
)

// stockChangeFor says what a transition to state to asks of the stock an
// order holds; ok is false for a transition that asks nothing.
func stockChangeFor(to order.State) (order.StockChange, bool) {
	switch to {
	case order.Cancelled:
		return order.StockRelease, true
	case order.Shipped:
		return order.StockConsume, true
	case order.Returned:
		return order.StockRestock, true
	}
	return 0, false
}

// action is one transition's effect on the stock of one order's items.
type action struct {
	orderID string
	version uint64
	change  order.StockChange
	skus    []string
}

// Actions runs the transition actions.
type Actions struct {
	stock   StockActions
	logger  *slog.Logger
	queue   chan action
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	dropped sync.Mutex // guards droppedCount
	// droppedCount counts actions left to Reconcile.
	droppedCount int
}

// NewActions starts the workers; Close stops them.
func NewActions(stock StockActions, logger *slog.Logger) *Actions {
	if logger == nil {
		logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &Actions{stock: stock, logger: logger, queue: make(chan action, actionsQueued), ctx: ctx, cancel: cancel}
	for range actionWorkers {
		a.wg.Add(1)
		go a.work()
	}
	return a
}

// Close stops the workers after the calls under way; what is queued is
// left to the next start's Reconcile.
func (a *Actions) Close() {
	a.cancel()
	a.wg.Wait()
}

// Applied is called with every transition an order actor applied after
// its record was acknowledged. It never blocks.
func (a *Actions) Applied(o order.Order, ev order.Event) {
	act, ok := actionFor(o, ev)
	if !ok {
		return
	}
	select {
	case a.queue <- act:
	default:
		a.dropped.Lock()
		a.droppedCount++
		a.dropped.Unlock()
	}
}

// actionFor is the action a transition asks for, if any: only for an order
// with items, since only such an order can hold stock.
func actionFor(o order.Order, ev order.Event) (action, bool) {
	change, ok := stockChangeFor(ev.To)
	if !ok || ev.From == ev.To || o.Contents == nil || len(o.Contents.Items) == 0 {
		return action{}, false
	}
	skus := make([]string, len(o.Contents.Items))
	for i, it := range o.Contents.Items {
		skus[i] = it.SKU
	}
	return action{orderID: o.ID, version: ev.Version, change: change, skus: skus}, true
}

// Dropped counts the actions a full queue or a failing inventory left to
// Reconcile.
func (a *Actions) Dropped() int {
	a.dropped.Lock()
	defer a.dropped.Unlock()
	return a.droppedCount
}

func (a *Actions) work() {
	defer a.wg.Done()
	for {
		select {
		case <-a.ctx.Done():
			return
		case act := <-a.queue:
			if err := a.run(act); err != nil && a.ctx.Err() == nil {
				a.logger.Warn("transition action left to reconciliation", "order", act.orderID,
					"version", act.version, "change", act.change.String(), "err", err)
				a.dropped.Lock()
				a.droppedCount++
				a.dropped.Unlock()
			}
		}
	}
}

// run carries an action out on every SKU, retrying a SKU while it fails.
func (a *Actions) run(act action) error {
	for _, sku := range act.skus {
		var err error
		for attempt, wait := 0, actionRetryMin; attempt < actionAttemptsMax; attempt, wait = attempt+1, 2*wait {
			if err = a.apply(act, sku); err == nil || !passing(err) {
				break
			}
			select {
			case <-a.ctx.Done():
				return a.ctx.Err()
			case <-time.After(wait):
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (a *Actions) apply(act action, sku string) error {
	ctx, cancel := context.WithTimeout(a.ctx, actionCallTimeout)
	defer cancel()
	var err error
	switch act.change {
	case order.StockRelease:
		err = a.stock.Release(ctx, sku, act.orderID, act.version)
	case order.StockConsume:
		err = a.stock.Consume(ctx, sku, act.orderID, act.version)
	case order.StockRestock:
		err = a.stock.Restock(ctx, sku, act.orderID, act.version)
	}
	if errors.Is(err, order.ErrSKUNotFound) || errors.Is(err, order.ErrHoldConflict) {
		// A SKU never stocked, or an order that holds nothing on it
		// (created without a checkout), has nothing to change. A hold
		// not yet consumed when its restock comes is still held, so
		// Reconcile sees it and consumes and restocks it in turn.
		return nil
	}
	return err
}

// OpenHolds lists the holds that may still have an action to come: held or
// consumed (released and restocked are final). The state store implements
// it.
type OpenHolds interface {
	OpenHolds(ctx context.Context, fn func(sku, orderID string, h order.Hold) error) error
}

// Reconcile runs every action the orders' states ask for and the holds do
// not show yet: the at-least-once half of the actions, for what a crash, a
// full queue or a long inventory outage left undone. It returns how many
// actions it ran.
func (a *Actions) Reconcile(ctx context.Context, holds OpenHolds, orders Service) (int, error) {
	ran := 0
	err := holds.OpenHolds(ctx, func(sku, orderID string, h order.Hold) error {
		o, err := orders.Get(ctx, orderID)
		switch {
		case errors.Is(err, order.ErrOrderNotFound) || (err == nil && !o.Exists()):
			return nil // a checkout under way holds it for an order to come
		case err != nil:
			return err
		}
		for _, change := range changesOwed(h.Status, o.State) {
			if err := a.apply(action{orderID: orderID, version: o.Version, change: change}, sku); err != nil {
				return err
			}
			ran++
		}
		return nil
	})
	return ran, err
}

// changesOwed lists the changes a hold in status h still owes an order in
// state s, in the order they are due.
func changesOwed(h order.HoldStatus, s order.State) []order.StockChange {
	shipped := s == order.Shipped || s == order.Delivered || s == order.Returned
	switch {
	case h == order.HoldHeld && s == order.Cancelled:
		return []order.StockChange{order.StockRelease}
	case h == order.HoldHeld && s == order.Returned:
		return []order.StockChange{order.StockConsume, order.StockRestock}
	case h == order.HoldHeld && shipped:
		return []order.StockChange{order.StockConsume}
	case h == order.HoldConsumed && s == order.Returned:
		return []order.StockChange{order.StockRestock}
	}
	return nil
}
