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
}

func newProcessMetrics() *processMetrics {
	reg := prometheus.NewRegistry()
	// The runtime's and the process's own: goroutines, GC, heap, RSS,
	// open file descriptors, CPU seconds.
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &processMetrics{registry: reg, actors: actors.NewMetrics(reg), journal: persistence.NewMetrics(reg),
		cluster: newClusterMetrics(reg)}
}
