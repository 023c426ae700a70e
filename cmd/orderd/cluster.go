package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/cluster"
	orderhttp "github.com/orderd/orderd/http"
	"github.com/orderd/orderd/persistence"
	"github.com/orderd/orderd/persistence/store"
)

// Cluster mode (--cluster-group): the consumer group's assignment is which
// partitions this node serves (DESIGN §9). Assigned starts a takeover of each
// partition: a claim in the log, then a wait until the state store (fed from
// every partition, so each node is a standby of all) holds the log up to the
// claim, then the journal writes under the claim and the actors serve the
// partition. Revoked stops serving, waits for the commands under way, and
// stops the journal's writes, before the group can give the partition to
// another node.
const (
	// joinTimeout bounds joining the group at start: the first
	// generation waits for every member to re-join (rebalanceTimeout in
	// cluster/), and a broker being elected adds seconds.
	joinTimeout = 60 * time.Second
	// takeoverBackoffFirst and takeoverBackoffMax space the attempts of a
	// takeover whose claim failed (the broker is away): doubling.
	takeoverBackoffFirst = 100 * time.Millisecond
	takeoverBackoffMax   = 5 * time.Second
	// storePollInterval is how often a takeover looks whether the state
	// store has reached its claim: the store is fed continuously, so the
	// wait is a few of these.
	storePollInterval = 2 * time.Millisecond
)

// clusterNode is this node's part of the cluster.
type clusterNode struct {
	log        *slog.Logger
	url        string
	journal    *persistence.KafkaJournal
	system     *actors.System
	store      *store.Store
	metrics    *clusterMetrics
	membership *cluster.Membership
	// serving is called once a takeover of a partition is done (the
	// actions its orders owe are reconciled, and the saga's unfinished
	// checkouts there are resumed).
	serving func(p int)

	ctx    context.Context // ends at close: stops takeovers
	cancel context.CancelFunc

	mu        sync.Mutex
	takeovers map[int]*takeover // running or done, per assigned partition
}

// takeover is one partition's, in one generation.
type takeover struct {
	cancel  context.CancelFunc
	done    chan struct{}
	serving bool // set once it succeeded; read after done is closed
}

// joinCluster joins the group; it returns once the node has its first
// generation and has started taking its partitions over.
func (m *Main) joinCluster(ctx context.Context, journal *persistence.KafkaJournal, system *actors.System, st *store.Store) (*clusterNode, error) {
	nodeCtx, cancel := context.WithCancel(context.Background())
	n := &clusterNode{
		log: m.log.With("component", "cluster"), url: m.cfg.AdvertiseURL,
		journal: journal, system: system, store: st, metrics: m.metrics.cluster,
		ctx: nodeCtx, cancel: cancel, takeovers: map[int]*takeover{},
		serving: func(p int) {
			m.saga.reconcileSoon()
			m.resumeCheckouts(m.saga.saga, st, journal, func(q int) bool { return q == p })
		},
	}
	joinCtx, cancelJoin := context.WithTimeout(ctx, joinTimeout)
	defer cancelJoin()
	membership, err := cluster.Join(joinCtx, cluster.Config{
		Brokers: m.cfg.KafkaBrokers, Topic: m.cfg.Topic, Group: m.cfg.ClusterGroup,
		AdvertiseURL: m.cfg.AdvertiseURL, SessionTimeout: m.cfg.ClusterSessionTimeout,
		// TLS beneath, SASL above, as on the journal's connections.
		Dialer: &kafka.Dialer{Timeout: journalOpenTimeout, ClientID: "orderd-cluster",
			DialFunc: m.security.Dial(nil), SASLMechanism: m.security.SASL()},
		Logger:   m.log, // the package adds its component
		Assigned: n.assigned,
		Revoked:  n.revoked,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("joining cluster group %q: %w", m.cfg.ClusterGroup, err)
	}
	n.membership = membership
	return n, nil
}

// assigned starts the takeover of every partition of the new generation.
// kafka-go ends every generation at each rebalance, so a partition the
// sticky balancer leaves here is revoked and taken over again: a new claim,
// and a wait of milliseconds for the store, which follows the log anyway.
func (n *clusterNode) assigned(generation int32, partitions []int) {
	n.metrics.rebalances.Inc()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range partitions {
		ctx, cancel := context.WithCancel(n.ctx)
		t := &takeover{cancel: cancel, done: make(chan struct{})}
		n.takeovers[p] = t
		go func() {
			defer close(t.done)
			t.serving = n.takeOver(ctx, generation, p)
		}()
	}
}

// takeOver claims p, waits for the store to hold the log up to the claim,
// and starts serving p. It retries until it succeeds or ctx ends, and
// reports whether it succeeded.
func (n *clusterNode) takeOver(ctx context.Context, generation int32, p int) bool {
	began := time.Now()
	backoff := takeoverBackoffFirst
	for ctx.Err() == nil {
		err := n.takeOverOnce(ctx, generation, p)
		if err == nil {
			took := time.Since(began)
			n.metrics.takeoverSeconds.Observe(took.Seconds())
			n.metrics.owned.Inc()
			n.log.Info("serving partition", "partition", p, "generation", generation, "took", took.Round(time.Microsecond))
			if n.serving != nil {
				n.serving(p)
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		n.log.Warn("taking a partition over failed; retrying", "partition", p, "generation", generation, "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff + rand.N(backoff/2)):
		}
		backoff = min(2*backoff, takeoverBackoffMax)
	}
	return false
}

func (n *clusterNode) takeOverOnce(ctx context.Context, generation int32, p int) error {
	claim, err := n.journal.Claim(ctx, p, persistence.Claim{Generation: generation, Member: n.url, At: time.Now()})
	if err != nil {
		return err
	}
	// Everything before the claim must be in the store, from which the
	// actors load the partition's orders: what the previous owner wrote
	// up to the claim counts, and what it writes after counts for nobody.
	end, err := n.waitForStore(ctx, p, claim+1)
	if err != nil {
		return err
	}
	n.journal.TakeOver(p, claim, end)
	return n.system.Own(p)
}

// waitForStore waits until the store's checkpoint of p reaches at least
// want, and returns it.
func (n *clusterNode) waitForStore(ctx context.Context, p int, want int64) (int64, error) {
	tick := time.NewTicker(storePollInterval)
	defer tick.Stop()
	for {
		if cp := n.store.Checkpoints()[p]; cp >= want {
			return cp, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-tick.C:
		}
	}
}

// revoked stops serving the partitions, all at once: each waits for its
// commands under way, which the group's rebalance waits for in turn.
func (n *clusterNode) revoked(partitions []int) {
	var wg sync.WaitGroup
	for _, p := range partitions {
		n.mu.Lock()
		t := n.takeovers[p]
		delete(n.takeovers, p)
		n.mu.Unlock()
		wg.Go(func() {
			if t != nil {
				t.cancel()
				<-t.done
			}
			if err := n.system.Disown(p); err != nil {
				n.log.Error("giving a partition up", "partition", p, "err", err)
			}
			n.journal.GiveUp(p)
			if t != nil && t.serving {
				n.metrics.owned.Dec()
			}
		})
	}
	wg.Wait()
	n.log.Info("partitions given up", "partitions", partitions)
}

// close leaves the group: its Revoked hands every partition over before
// close returns, so that the others take them at once rather than after the
// session timeout.
func (n *clusterNode) close() error {
	err := n.membership.Close()
	n.cancel()
	n.mu.Lock()
	left := n.takeovers
	n.takeovers = map[int]*takeover{}
	n.mu.Unlock()
	for _, t := range left {
		<-t.done
	}
	return err
}

// clusterMetrics are a node's: what it owns, how often the group changed,
// how long its takeovers took (claim written to serving).
type clusterMetrics struct {
	owned           prometheus.Gauge
	rebalances      prometheus.Counter
	takeoverSeconds prometheus.Histogram
}

func newClusterMetrics(reg prometheus.Registerer) *clusterMetrics {
	m := &clusterMetrics{
		owned: prometheus.NewGauge(prometheus.GaugeOpts{Name: "orderd_cluster_partitions_owned",
			Help: "Partitions this node serves (cluster mode)."}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{Name: "orderd_cluster_rebalances_total",
			Help: "Generations of the cluster's group this node has joined."}),
		takeoverSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "orderd_cluster_takeover_seconds",
			Help:    "From a partition's assignment to serving it: the claim, and the wait for the state store to reach it.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}),
	}
	reg.MustRegister(m.owned, m.rebalances, m.takeoverSeconds)
	return m
}

// errNoCluster is the router's answer before the node has joined.
var errNoCluster = fmt.Errorf("%w: not yet a member of the cluster", actors.ErrNotReady)

// clusterRouter tells the HTTP layer where each order is served: the group's
// owner table, and for this node's own partitions whether it serves them yet.
// It answers "not ready" until the node has joined.
type clusterRouter struct {
	mu      sync.Mutex
	closing bool
	node    atomic.Pointer[clusterNode]
}

// PartitionOf places a key as the journal does (murmur2, as every Kafka
// client); 0 before the node has joined, when Owner refuses anyway.
func (r *clusterRouter) PartitionOf(key string) int {
	n := r.node.Load()
	if n == nil {
		return 0
	}
	return n.journal.PartitionOf(key)
}

// Owner returns p's owner; for this node's own partition it waits until the
// takeover is done, so that a request is never refused for a partition that
// is about to be served here.
func (r *clusterRouter) Owner(ctx context.Context, p int) (string, bool, error) {
	n := r.node.Load()
	if n == nil {
		return "", false, errNoCluster
	}
	for {
		url, self, err := n.membership.WaitOwner(ctx, p)
		switch {
		case err != nil:
			return "", false, fmt.Errorf("%w: partition %d has no owner (the cluster is rebalancing): %w", actors.ErrNotReady, p, err)
		case !self:
			return url, false, nil
		case n.system.Serves(p):
			return "", true, nil
		}
		select {
		case <-ctx.Done():
			return "", false, fmt.Errorf("%w: partition %d is being taken over here: %w", actors.ErrNotReady, p, ctx.Err())
		case <-time.After(storePollInterval):
		}
	}
}

// LocalPartition picks one of the partitions this node serves.
func (r *clusterRouter) LocalPartition() (int, bool) {
	n := r.node.Load()
	if n == nil {
		return 0, false
	}
	owned := n.system.Owned()
	if len(owned) == 0 {
		return 0, false
	}
	return owned[rand.N(len(owned))], true
}

// set makes n the router's node, unless the server is closing; it reports
// whether it did.
func (r *clusterRouter) set(n *clusterNode) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return false
	}
	r.node.Store(n)
	return true
}

// take stops further sets and returns the node, if any, for Close.
func (r *clusterRouter) take() *clusterNode {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closing = true
	return r.node.Load()
}

// joinUntilMember joins the group, retrying until it succeeds or ctx ends:
// a node that is not yet a member is up but not ready.
func (m *Main) joinUntilMember(ctx context.Context, journal *persistence.KafkaJournal, system *actors.System, st *store.Store) bool {
	backoff := connectBackoffFirst
	for attempt := 1; ctx.Err() == nil; attempt++ {
		m.svc.wait(fmt.Sprintf("joining cluster group %q (attempt %d)", m.cfg.ClusterGroup, attempt))
		node, err := m.joinCluster(ctx, journal, system, st)
		if err == nil {
			if !m.router.set(node) {
				_ = node.close()
				return false
			}
			return true
		}
		m.log.Warn("joining the cluster failed; retrying", "group", m.cfg.ClusterGroup, "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, connectBackoffMax)
	}
	return false
}

var _ orderhttp.Router = (*clusterRouter)(nil)
