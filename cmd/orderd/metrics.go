package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/persistence"
)

// processMetrics is the one registry of a server process, served at GET
// /metrics, and the parts' metrics registered in it. It is made once per
// Main, not per connection attempt, because a metric registers only once;
// and it is not Prometheus' global default registry, so that tests can run
// several servers in one process.
type processMetrics struct {
	registry *prometheus.Registry
	actors   *actors.Metrics
	journal  *persistence.Metrics
	cluster  *clusterMetrics
	// reconciled counts the transition actions the reconciliation ran
	// (what the queue had lost).
	reconciled prometheus.Counter
}

func newProcessMetrics() *processMetrics {
	reg := prometheus.NewRegistry()
	// The runtime's and the process's own: goroutines, GC, heap, RSS,
	// open file descriptors, CPU seconds.
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reconciled := prometheus.NewCounter(prometheus.CounterOpts{Name: "orderd_transition_actions_reconciled_total",
		Help: "Transition actions the reconciliation ran: what the queue had lost."})
	reg.MustRegister(reconciled)
	return &processMetrics{registry: reg, actors: actors.NewMetrics(reg), journal: persistence.NewMetrics(reg),
		cluster: newClusterMetrics(reg), reconciled: reconciled}
}

// registerCheckoutMetrics registers the saga's and the actions' metrics,
// read from the orchestrator and actions the server runs (none before
// recovery: zero).
func (m *Main) registerCheckoutMetrics() {
	reg := m.metrics.registry
	counts := func() actors.CheckoutCounts {
		if s := m.checkouts.saga.Load(); s != nil {
			return s.Counts()
		}
		return actors.CheckoutCounts{}
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "orderd_checkouts_running",
			Help: "Checkout sagas under way on this node."}, func() float64 { return float64(counts().Running) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "orderd_checkouts_finished_total",
			Help: "Checkout sagas this node ended since it started, by status.", ConstLabels: prometheus.Labels{"status": "completed"}},
			func() float64 { return float64(counts().Completed) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "orderd_checkouts_finished_total",
			Help: "Checkout sagas this node ended since it started, by status.", ConstLabels: prometheus.Labels{"status": "compensated"}},
			func() float64 { return float64(counts().Compensated) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "orderd_transition_actions_left_total",
			Help: "Transition actions the queue left to the reconciliation (a full queue, inventory failing)."},
			func() float64 {
				if a := m.lateActions.actions.Load(); a != nil {
					return float64(a.Dropped())
				}
				return 0
			}),
	)
}
