package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderd/orderd/actors"
	orderhttp "github.com/orderd/orderd/http"
	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
	"github.com/orderd/orderd/persistence/store"
)

// The checkout saga and the transition actions (issue 16, DESIGN §10),
// wired to the actors, the journal and the state store. A checkout's
// records and its order share a partition (the order's ID is the
// checkout's), so the node that drives a checkout serves its order too;
// only inventory may live on another node.
const (
	// reconcileInterval is how often the actions' reconciliation runs
	// after the first, at start: it finds what a full queue or a long
	// inventory outage left undone, reading only the holds still held.
	reconcileInterval = time.Minute
	// reconcileRetryFirst is the pause after a failed reconciliation,
	// doubling up to reconcileInterval: in a cluster it fails while a
	// SKU's partition changes hands, and what it owes is due once the new
	// owner serves it (seconds), not a minute later.
	reconcileRetryFirst = time.Second
	// unfinishedScanTimeout bounds one listing of the unfinished
	// checkouts to resume (store reads).
	unfinishedScanTimeout = time.Minute
)

// lateCheckouts is the orchestrator the HTTP server is built with before
// recovery: it answers ErrNotReady until the saga is set.
type lateCheckouts struct {
	saga atomic.Pointer[actors.Checkouts]
}

var _ orderhttp.CheckoutService = (*lateCheckouts)(nil)

func (l *lateCheckouts) get() (*actors.Checkouts, error) {
	if s := l.saga.Load(); s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("%w: checkouts start once the log is recovered", actors.ErrNotReady)
}

func (l *lateCheckouts) Start(ctx context.Context, st actors.CheckoutStart) (order.Checkout, error) {
	s, err := l.get()
	if err != nil {
		return order.Checkout{}, err
	}
	return s.Start(ctx, st)
}

func (l *lateCheckouts) Wait(ctx context.Context, id string) (order.Checkout, error) {
	s, err := l.get()
	if err != nil {
		return order.Checkout{}, err
	}
	return s.Wait(ctx, id)
}

func (l *lateCheckouts) Get(ctx context.Context, id string) (order.Checkout, error) {
	s, err := l.get()
	if err != nil {
		return order.Checkout{}, err
	}
	return s.Get(ctx, id)
}

// lateActions passes the order actors' applied transitions to the actions,
// once there are actions: the actors are made first, the actions need them.
type lateActions struct {
	actions atomic.Pointer[actors.Actions]
}

func (l *lateActions) applied(o order.Order, ev order.Event) {
	if a := l.actions.Load(); a != nil {
		a.Applied(o, ev)
	}
}

// sagaParts are what connectOnce starts for checkouts, stopped by stop.
type sagaParts struct {
	saga     *actors.Checkouts
	actions  *actors.Actions
	stopBg   context.CancelFunc
	bgDone   chan struct{}
	closeInv func()
	// reconcileNow asks the reconciliation loop for a run now (one
	// pending request at most): a cluster node asks on each takeover.
	reconcileNow chan struct{}
}

// reconcileSoon asks for a reconciliation now. In a cluster the one at
// start runs before the node serves anything, and an order's actions are
// its owner's: on a takeover its new owner owes the actions its old one
// queued and never ran (killed, or the SKU's node gone), and every
// survivor owes those that failed while a dead node's SKUs had no owner.
// Without this they waited for the next minute's run.
func (p *sagaParts) reconcileSoon() {
	select {
	case p.reconcileNow <- struct{}{}:
	default: // one is pending already
	}
}

// startSaga makes the actions and the orchestrator over the recovered
// system, and starts the reconciliation loop. inv is the inventory the
// saga and the actions use: the local system's, or in a cluster one that
// reaches every SKU's owner.
func (m *Main) startSaga(journal *persistence.KafkaJournal, st *store.Store, system *actors.System) *sagaParts {
	log := m.log.With("component", "checkout")
	inv, closeInv := m.inventoryFor(system)
	owns := func(id string) (uint64, bool) { return system.Serving(journal.PartitionOf(id)) }
	serves := func(id string) bool { return system.Serves(journal.PartitionOf(id)) }
	p := &sagaParts{
		actions: actors.NewActions(actors.ActionStock(inv), log),
		saga: actors.NewCheckouts(actors.CheckoutConfig{
			Journal: journal, Orders: system, Stock: actors.CheckoutStock(inv), Payments: m.payments,
			PaymentTimeout: m.cfg.PaymentGatewayTimeout, Logger: log, Owns: owns,
		}),
		bgDone:       make(chan struct{}),
		closeInv:     closeInv,
		reconcileNow: make(chan struct{}, 1),
	}
	m.lateActions.actions.Store(p.actions)
	m.checkouts.saga.Store(p.saga)
	ctx, stop := context.WithCancel(context.Background())
	p.stopBg = stop
	go func() {
		defer close(p.bgDone)
		reconcileLoop(ctx, log, p.actions, servedHolds{st, serves}, system, p.reconcileNow, m.metrics.reconciled)
	}()
	return p
}

// stop ends the reconciliation, the sagas (each after its step under way:
// the next start resumes them) and the actions (what is queued is left to
// the next start's reconciliation).
func (p *sagaParts) stop() {
	p.stopBg()
	<-p.bgDone
	p.saga.Close()
	p.actions.Close()
	p.closeInv()
}

// reconcileLoop runs the actions' reconciliation at once, then every
// reconcileInterval, sooner after a failure (reconcileRetryFirst,
// doubling), and whenever now asks, until ctx ends.
func reconcileLoop(ctx context.Context, log *slog.Logger, a *actors.Actions, holds actors.OpenHolds, orders actors.Service,
	now <-chan struct{}, ranTotal prometheus.Counter) {
	retry := reconcileRetryFirst
	for {
		ran, err := a.Reconcile(ctx, holds, orders)
		ranTotal.Add(float64(ran))
		wait := reconcileInterval
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			wait, retry = retry, min(2*retry, reconcileInterval)
			log.Warn("reconciling the transition actions failed; trying again later", "err", err, "ran", ran, "retry_in", wait)
		default:
			retry = reconcileRetryFirst
			if ran > 0 {
				log.Info("transition actions reconciled", "ran", ran)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-now:
		case <-time.After(wait):
		}
	}
}

// servedHolds are the open holds of the orders this node serves: an
// order's actions are its owner's to run.
type servedHolds struct {
	st    *store.Store
	serve func(orderID string) bool
}

func (h servedHolds) OpenHolds(ctx context.Context, fn func(sku, orderID string, hold order.Hold) error) error {
	return h.st.OpenHolds(ctx, func(sku, orderID string, hold order.Hold) error {
		if !h.serve(orderID) {
			return nil
		}
		return fn(sku, orderID, hold)
	})
}

// resumeCheckouts resumes every unfinished checkout whose partition is
// among those wanted returns true for: all of them on a single node, a
// partition's on its takeover in a cluster.
func (m *Main) resumeCheckouts(saga *actors.Checkouts, st *store.Store, journal *persistence.KafkaJournal, wanted func(p int) bool) {
	ctx, cancel := context.WithTimeout(context.Background(), unfinishedScanTimeout)
	defer cancel()
	var ids []string
	err := st.UnfinishedCheckouts(func(id string) error {
		if wanted(journal.PartitionOf(id)) {
			ids = append(ids, id)
		}
		return ctx.Err()
	})
	for _, id := range ids {
		if rerr := saga.Resume(ctx, id); rerr != nil {
			err = errors.Join(err, fmt.Errorf("checkout %s: %w", id, rerr))
		}
	}
	if err != nil {
		m.log.Warn("resuming unfinished checkouts failed; the next start or takeover tries again", "err", err)
	}
	if len(ids) > 0 {
		m.log.Info("unfinished checkouts resumed", "checkouts", len(ids))
	}
}

// inventoryFor is the inventory the saga and the actions use: the local
// system's on a single node; in a cluster one that reaches each SKU's
// owner (routed_inventory.go), closed with the saga.
func (m *Main) inventoryFor(system *actors.System) (actors.InventoryService, func()) {
	if m.router == nil {
		return system, func() {}
	}
	r := newRoutedInventory(system, m.router, m.nodeKey.Token, m.cfg.RequestTimeout)
	return r, r.close
}
