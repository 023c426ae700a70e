package actors

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderd/orderd/order"
)

// Metrics is what the actors report to Prometheus. A nil *Metrics records
// nothing.
//
// Label values come from closed sets (the states, the outcomes below), never
// from order IDs, so the series count is bounded: at most
// (states+1) × (states+1) × outcomes transition series.
type Metrics struct {
	transitions  *prometheus.CounterVec
	actorsLive   prometheus.Gauge
	passivated   prometheus.Counter
	ordersKnown  prometheus.Gauge
	mailboxDepth prometheus.Histogram
	replayed     *prometheus.CounterVec
	replaySecs   prometheus.Gauge
	coldLoads    prometheus.Counter
	evictions    prometheus.Counter
	inventory    *prometheus.CounterVec
	skusKnown    prometheus.Gauge
}

// Outcomes of a command, the "outcome" label of orderd_transitions_total.
const (
	outcomeAccepted           = "accepted"
	outcomeKeyReplayed        = "key-replayed"
	outcomeRejectedInvalid    = "rejected-invalid"
	outcomeVersionMismatch    = "version-mismatch"
	outcomeKeyReused          = "key-reused"
	outcomeOrderExists        = "order-exists"
	outcomeNotFound           = "not-found"
	outcomeJournalUnavailable = "journal-unavailable"
	outcomeOutcomeUnknown     = "outcome-unknown"
	outcomeBusy               = "busy"
	outcomeWriteConflict      = "write-conflict"
	outcomeError              = "error"
)

// stateNone labels the missing side of a transition: "from" of a creation,
// "to" of a command that named no valid state.
const stateNone = "none"

// outcomeRows maps errors to outcomes; first match wins, as in http's table.
// Busy comes before outcome-unknown because it promises nothing was applied.
var outcomeRows = []struct {
	target  error
	outcome string
}{
	{order.ErrInvalidTransition, outcomeRejectedInvalid},
	{order.ErrVersionMismatch, outcomeVersionMismatch},
	{order.ErrIdempotencyKeyReused, outcomeKeyReused},
	{order.ErrOrderExists, outcomeOrderExists},
	{order.ErrOrderNotFound, outcomeNotFound},
	{order.ErrWriteConflict, outcomeWriteConflict},
	{ErrBusy, outcomeBusy},
	{order.ErrJournalUnavailable, outcomeJournalUnavailable},
	{order.ErrOutcomeUnknown, outcomeOutcomeUnknown},
	{context.DeadlineExceeded, outcomeOutcomeUnknown},
}

// mailboxBuckets span one waiting request to MailboxLimitDefault.
var mailboxBuckets = []float64{1, 2, 4, 8, 16, 32, 64}

// NewMetrics registers the actors' metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orderd_transitions_total",
			Help: "Commands (creations included) by the order's state before, the state asked for, and outcome.",
		}, []string{"from", "to", "outcome"}),
		actorsLive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orderd_actors_live",
			Help: "Orders with a running actor; idle orders are passivated (their actor stopped) and known orders minus this gauge is how many.",
		}),
		passivated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orderd_actors_passivated_total",
			Help: "Actors stopped because their order was idle longer than --idle-actor-timeout.",
		}),
		ordersKnown: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orderd_orders_known",
			Help: "Orders in memory: recovered from the log, created or loaded from the state store since start, less those evicted.",
		}),
		mailboxDepth: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "orderd_mailbox_depth",
			Help:    "Requests queued for an order, this one included, seen as each command was enqueued.",
			Buckets: mailboxBuckets,
		}),
		replayed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orderd_replay_events_total",
			Help: "Events handled by start-up recovery, by result: applied or skipped (duplicates and forks).",
		}, []string{"result"}),
		replaySecs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orderd_replay_duration_seconds",
			Help: "How long the latest completed start-up recovery took.",
		}),
	}
	m.coldLoads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "orderd_orders_cold_loads_total",
		Help: "Orders loaded from the state store because a command or read named an order not in memory.",
	})
	m.evictions = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "orderd_orders_evicted_total",
		Help: "Orders removed from memory after --evict-after untouched (the state store holds them).",
	})
	m.inventory = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orderd_inventory_commands_total",
		Help: "Inventory commands by change (set, reserve, release, consume, restock) and outcome.",
	}, []string{"change", "outcome"})
	m.skusKnown = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "orderd_inventory_skus_known",
		Help: "SKUs in memory: those a command named since start (or since their partition was taken over).",
	})
	reg.MustRegister(m.transitions, m.actorsLive, m.passivated, m.ordersKnown, m.mailboxDepth, m.replayed, m.replaySecs,
		m.coldLoads, m.evictions, m.inventory, m.skusKnown)
	return m
}

// commanded records one command's outcome. from is the order's state when
// its actor took the command (zero for a new order); o and err are what the
// caller was answered; applied tells a command that appended from one that
// was answered from the idempotency window.
func (m *Metrics) commanded(from order.State, cmd order.Command, applied bool, err error) {
	if m == nil {
		return
	}
	to := order.InitialState
	if cmd.Kind != order.CommandCreate {
		to = cmd.To
	}
	outcome := outcomeError
	switch {
	case err == nil && applied:
		outcome = outcomeAccepted
	case err == nil:
		outcome = outcomeKeyReplayed
	default:
		for _, row := range outcomeRows {
			if errors.Is(err, row.target) {
				outcome = row.outcome
				break
			}
		}
	}
	m.transitions.WithLabelValues(stateLabel(from), stateLabel(to), outcome).Inc()
	if err == nil && applied && cmd.Kind == order.CommandCreate {
		m.ordersKnown.Inc()
	}
}

func stateLabel(s order.State) string {
	if !s.Valid() {
		return stateNone
	}
	return s.String()
}

func (m *Metrics) enqueued(depth int32) {
	if m == nil {
		return
	}
	m.mailboxDepth.Observe(float64(depth))
}

func (m *Metrics) actorStarted() {
	if m == nil {
		return
	}
	m.actorsLive.Inc()
}

// recovering resets the gauges a recovery rebuilds: a retried recovery
// starts from an empty System.
func (m *Metrics) recovering() {
	if m == nil {
		return
	}
	m.ordersKnown.Set(0)
	m.actorsLive.Set(0)
}

func (m *Metrics) recovered(stats RecoveryStats, took time.Duration) {
	if m == nil {
		return
	}
	m.ordersKnown.Add(float64(stats.Orders))
	m.replayed.WithLabelValues("applied").Add(float64(stats.Applied))
	m.replayed.WithLabelValues("skipped").Add(float64(stats.Skipped))
	m.replaySecs.Set(took.Seconds())
}

// closed: the System's actors are stopped.
func (m *Metrics) closed() {
	if m == nil {
		return
	}
	m.actorsLive.Set(0)
}

func (m *Metrics) coldLoaded() {
	if m == nil {
		return
	}
	m.coldLoads.Inc()
	m.ordersKnown.Inc()
}

func (m *Metrics) evicted(n int) {
	if m == nil {
		return
	}
	m.evictions.Add(float64(n))
	m.ordersKnown.Sub(float64(n))
}

// CaughtUp records a start that read the log's tail into the state store
// (persistence's CatchUp) instead of replaying it into memory: the records
// it applied and skipped, and how long it took, under the replay's metrics.
func (m *Metrics) CaughtUp(applied, skipped int, took time.Duration) {
	if m == nil {
		return
	}
	m.replayed.WithLabelValues("applied").Add(float64(applied))
	m.replayed.WithLabelValues("skipped").Add(float64(skipped))
	m.replaySecs.Set(took.Seconds())
}

// Outcomes of an inventory command besides those of orders.
const (
	outcomeNoop          = "no-op"
	outcomeOutOfStock    = "out-of-stock"
	outcomeStockReserved = "stock-reserved"
	outcomeHoldConflict  = "hold-conflict"
	outcomeInvalid       = "invalid"
)

var inventoryOutcomeRows = []struct {
	target  error
	outcome string
}{
	{order.ErrOutOfStock, outcomeOutOfStock},
	{order.ErrStockReserved, outcomeStockReserved},
	{order.ErrHoldConflict, outcomeHoldConflict},
	{order.ErrInvalidInventory, outcomeInvalid},
	{order.ErrVersionMismatch, outcomeVersionMismatch},
	{ErrBusy, outcomeBusy},
	{order.ErrJournalUnavailable, outcomeJournalUnavailable},
	{order.ErrOutcomeUnknown, outcomeOutcomeUnknown},
	{context.DeadlineExceeded, outcomeOutcomeUnknown},
}

// inventoryCommanded records one inventory command's outcome.
func (m *Metrics) inventoryCommanded(c order.StockChange, applied bool, err error) {
	if m == nil || !c.Valid() {
		return
	}
	outcome := outcomeAccepted
	switch {
	case err == nil && !applied:
		outcome = outcomeNoop
	case err != nil:
		outcome = outcomeError
		for _, row := range inventoryOutcomeRows {
			if errors.Is(err, row.target) {
				outcome = row.outcome
				break
			}
		}
	}
	m.inventory.WithLabelValues(c.String(), outcome).Inc()
}

func (m *Metrics) skuLoaded(delta int) {
	if m != nil {
		m.skusKnown.Add(float64(delta))
	}
}
