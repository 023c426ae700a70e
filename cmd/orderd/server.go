package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderd/orderd/actors"
	orderhttp "github.com/orderd/orderd/http"
	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
	"github.com/orderd/orderd/persistence/store"
)

// Connecting to Kafka at start: each attempt is bounded, and attempts are
// spaced with a doubling pause up to connectBackoffMax, so a broker that is
// down at start means "not ready yet", not a crash loop.
const (
	journalOpenTimeout  = 10 * time.Second
	connectBackoffFirst = 250 * time.Millisecond
	connectBackoffMax   = 10 * time.Second
	// storeSettleTimeout bounds how long a graceful stop waits for the
	// state store to take the log's last records (milliseconds, normally);
	// what it misses, the next start reads.
	storeSettleTimeout = 5 * time.Second
)

// Main is one orderd server: Start wires and starts every part, Close stops
// them in reverse order. Tests boot it on port 0.
type Main struct {
	cfg Config
	log *slog.Logger

	broker   *persistence.Embedded // nil with external brokers
	security *persistence.Security // nil: plaintext, no SASL
	svc      *lateService
	router   *clusterRouter   // in cluster mode; its node is set once joined
	nodeKey  orderhttp.APIKey // this node's own key for its calls to peers; zero without one (node_key.go)
	metrics  *processMetrics  // one registry for every connection attempt
	server   *orderhttp.Server
	ln       net.Listener
	pprof    *pprofServer // nil unless --pprof-addr

	// payments is the gateway the checkout saga authorises and voids
	// with; set by Start.
	payments      actors.PaymentGateway
	closePayments func()
	// checkouts is the saga the HTTP server is built with, and
	// lateActions the actors' Applied hook: both are empty until
	// connectOnce has recovered (checkout.go).
	checkouts   lateCheckouts
	lateActions lateActions

	// Set by the background connect loop; read by Close after it ended.
	journal *persistence.KafkaJournal
	system  *actors.System
	store   *store.Store
	saga    *sagaParts
	// stopFollow ends the feeding of the store from the log, and
	// followDone is closed once it has ended.
	stopFollow context.CancelFunc
	followDone chan struct{}
	// storeErr holds the error that stopped the store's feeding, for
	// /readyz; nil while it is fed.
	storeErr atomic.Pointer[error]

	// failed receives the error that ends the server on its own (the
	// listener dying).
	failed   chan error
	stopBg   context.CancelFunc
	bg       sync.WaitGroup
	gc       *gcTuner // paces the garbage collector from the start to Close
	closeErr error
	once     sync.Once
}

// NewMain returns a server that has not started yet.
func NewMain(cfg Config, log *slog.Logger) *Main {
	m := &Main{cfg: cfg, log: log, failed: make(chan error, 1), svc: &lateService{},
		metrics: newProcessMetrics()}
	if cfg.ClusterGroup != "" {
		m.router = &clusterRouter{}
	}
	m.registerCheckoutMetrics()
	return m
}

// Run starts the server, serves until ctx ends or the server fails, then
// shuts down gracefully.
func (m *Main) Run(ctx context.Context) error {
	if err := m.Start(ctx); err != nil {
		return errors.Join(err, m.Close())
	}
	var runErr error
	select {
	case <-ctx.Done():
		m.log.Info("shutting down", "cause", context.Cause(ctx))
	case runErr = <-m.failed:
	}
	return errors.Join(runErr, m.Close())
}

// Start starts the embedded broker if no brokers are configured, starts
// listening, and then, in the background, connects to Kafka (retrying until
// it answers) and recovers. /healthz answers at once; /readyz and the order
// routes once recovery has caught up with the log.
func (m *Main) Start(ctx context.Context) error {
	keys, err := m.cfg.APIKeys()
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		if !loopbackOnly(m.cfg.Addr) && !m.cfg.AllowUnauthenticated {
			return fmt.Errorf("refusing to listen on %s without API keys: with no keys anyone who can reach orderd may change orders, so it listens on loopback only; give --api-keys-file or ORDERD_API_KEYS, listen on 127.0.0.1, or pass --allow-unauthenticated", m.cfg.Addr)
		}
		m.log.Warn("no API keys configured: the API is open to every client that reaches it", "addr", m.cfg.Addr)
	} else {
		m.log.Info("API keys loaded", "principals", len(keys))
	}
	if m.nodeKey, err = m.cfg.NodeKey(keys); err != nil {
		return err
	}
	if m.router != nil && len(keys) > 0 && m.nodeKey.Token == "" {
		return fmt.Errorf("a cluster node with API keys needs its own token for its calls to the others (a checkout's stock on another node): give --node-token-file or %s, naming one of the API keys", envNodeToken)
	}
	if m.payments, m.closePayments, err = newPaymentGateway(m.cfg, m.log.With("component", "payments")); err != nil {
		return err
	}
	if m.cfg.PprofAddr != "" {
		if m.pprof, err = startPprof(m.cfg.PprofAddr); err != nil {
			return err
		}
		m.log.Info("serving pprof", "addr", m.pprof.Addr())
	}
	brokers := m.cfg.KafkaBrokers
	if m.cfg.Embedded() {
		if err := m.startEmbedded(); err != nil {
			return err
		}
		brokers = []string{m.broker.Addr()}
	} else {
		if m.security, err = m.cfg.KafkaSecurity.Load(); err != nil {
			return err
		}
		m.log.Info("using Kafka", "mode", "external", "brokers", brokers, "topic", m.cfg.Topic, "security", m.security.String())
	}
	httpCfg := orderhttp.Config{
		RequestTimeout:    m.cfg.RequestTimeout,
		APIKeys:           keys,
		NodePrincipal:     m.nodeKey.Principal,
		RatePerPrincipal:  m.cfg.RatePerPrincipal,
		BurstPerPrincipal: m.cfg.BurstPerPrincipal,
		Logger:            m.log.With("component", "http"),
		Metrics:           m.metrics.registry,
		Checkouts:         &m.checkouts,
	}
	if m.router != nil { // a nil *clusterRouter would be a non-nil Router
		httpCfg.Router = m.router
	}
	m.server = orderhttp.New(m.svc, httpCfg)
	if m.ln, err = net.Listen("tcp", m.cfg.Addr); err != nil {
		return fmt.Errorf("listening on %s: %w", m.cfg.Addr, err)
	}
	m.log.Info("listening", "addr", m.ln.Addr().String())

	m.gc = startGCTuner(processGCPercent(), int64(m.cfg.GCHeadroomMiB)<<20)
	bgCtx, stopBg := context.WithCancel(context.Background())
	m.stopBg = stopBg
	m.bg.Add(2)
	go func() {
		defer m.bg.Done()
		if err := m.server.Serve(m.ln); err != nil {
			m.failed <- fmt.Errorf("serving HTTP: %w", err)
		}
	}()
	go func() {
		defer m.bg.Done()
		m.connectAndRecover(bgCtx, brokers)
	}()
	return nil
}

func (m *Main) startEmbedded() error {
	dir, err := filepath.Abs(m.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("data directory %q: %w", m.cfg.DataDir, err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("creating the data directory: %w", err)
	}
	m.broker, err = persistence.StartEmbedded(persistence.EmbeddedConfig{DataDir: dir, Addr: m.cfg.EmbeddedKafkaAddr})
	if err != nil {
		return err
	}
	m.log.Info("using Kafka", "mode", "embedded", "broker", m.broker.Addr(), "journal_connection", "in-process", "data_dir", dir,
		"topic", m.cfg.Topic, "note", "single-broker convenience with fsynced writes, not a replicated cluster")
	return nil
}

// connectAndRecover opens the journal and recovers, retrying both until they
// succeed or ctx ends. A failed recovery starts again from a fresh journal
// and actor system: nothing of a half-done replay is kept.
func (m *Main) connectAndRecover(ctx context.Context, brokers []string) {
	backoff := connectBackoffFirst
	for attempt := 1; ; attempt++ {
		err := m.connectOnce(ctx, brokers)
		if err == nil || ctx.Err() != nil {
			return
		}
		m.svc.wait(fmt.Sprintf("connecting to Kafka (attempt %d failed)", attempt))
		m.log.Warn("Kafka not usable yet; retrying", "attempt", attempt, "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, connectBackoffMax)
	}
}

func (m *Main) connectOnce(ctx context.Context, brokers []string) error {
	openCtx, cancel := context.WithTimeout(ctx, journalOpenTimeout)
	defer cancel()
	var dial func(context.Context, string, string) (net.Conn, error)
	if m.broker != nil {
		// The journal reaches the broker in this process without TCP.
		dial = m.broker.Dial
	}
	journal, err := persistence.OpenKafka(openCtx, persistence.KafkaConfig{
		Brokers:           brokers,
		Dial:              dial,
		Security:          m.security,
		Compression:       m.cfg.Compression,
		ProduceTimeout:    m.cfg.ProduceTimeout,
		Topic:             m.cfg.Topic,
		Partitions:        m.cfg.Partitions,
		ReplicationFactor: m.cfg.ReplicationFactor,
		// The embedded broker is orderd's own: a topic an older orderd
		// made there with Kafka's 7-day retention is set right. On any
		// other cluster an unsafe topic is refused (topic_config.go).
		RepairTopicConfig: m.broker != nil,
		Clustered:         m.cfg.ClusterGroup != "",
		Logger:            m.log.With("component", "journal"),
		Metrics:           m.metrics.journal,
	})
	if err != nil {
		return fmt.Errorf("opening the audit log: %w", err)
	}
	st, caughtUp, err := m.openStore(ctx, journal)
	if err != nil {
		return errors.Join(err, journal.Close())
	}
	system, err := actors.New(actors.Config{
		Store:      st,
		EvictAfter: m.cfg.EvictAfter,
		Journal:    journal,
		Shards:     journal.Partitions(),
		ShardOf:    journal.PartitionOf,
		Logger:     m.log.With("component", "actors"),
		Metrics:    m.metrics.actors,

		// Listings are answered from the store (every order, and in a
		// cluster every node's), after it has applied this node's
		// acknowledged writes.
		Lister: persistence.NewStoreLister(journal, st),

		IdempotencyKeysPerOrder: m.cfg.IdempotencyKeysPerOrder,
		IdempotencyWindow:       m.cfg.IdempotencyWindow,
		PaymentTimeout:          m.cfg.PaymentTimeout,
		IdleActorTimeout:        m.cfg.IdleActorTimeout,
		LiveActorsMax:           m.cfg.LiveActorsMax,
		Clustered:               m.cfg.ClusterGroup != "",
		// A heartbeat interval and a heartbeat's deadline (a third of
		// the session, cluster/), with a second of room.
		PauseHold: m.cfg.ClusterSessionTimeout/3 + 2*time.Second,
		// Cancelled, Shipped and Returned move the stock an order holds.
		Applied: m.lateActions.applied,
	})
	if err != nil {
		return errors.Join(err, st.Close(), journal.Close())
	}
	// Settling an unknown outcome reads the order from the store and only
	// the log's tail after its checkpoint, not the whole partition.
	journal.LoadFromStore(st)
	if _, err := system.Recover(ctx); err != nil {
		system.Close()
		journal.LoadFromStore(nil)
		return errors.Join(err, st.Close(), journal.Close())
	}
	m.journal, m.system, m.store = journal, system, st
	m.metrics.actors.CaughtUp(caughtUp.Applied, caughtUp.Skipped, caughtUp.Duration)
	m.follow(journal, st)
	m.saga = m.startSaga(journal, st, system)
	if m.router != nil && !m.joinUntilMember(ctx, journal, system, st) {
		return nil // closing: Close stops what was started
	}
	m.svc.set(system, m.healthy)
	if m.router == nil { // a cluster node resumes a partition's checkouts as it takes it over
		m.bg.Add(1)
		go func() {
			defer m.bg.Done()
			m.resumeCheckouts(m.saga.saga, st, journal, func(int) bool { return true })
		}()
	}
	m.log.Info("ready", "orders", 0, "records", caughtUp.Records, "applied", caughtUp.Applied,
		"skipped", caughtUp.Skipped, "undecodable", caughtUp.Undecodable, "took", caughtUp.Duration.Round(time.Millisecond),
		"store_mib", st.SizeBytes()>>20, "rebuilt", caughtUp.Rebuilt)
	// Serving already: hand the recovery's garbage back to the system now
	// rather than over the next minutes, and pace the collector for serving
	// (gc.go).
	m.gc.recoveryDone()
	return nil
}

// caughtUp is what bringing the state store up to the log's end read.
type caughtUp struct {
	persistence.CatchUpStats
	Duration time.Duration
	Rebuilt  bool // the store could not be trusted and was rebuilt from the log
}

// openStore opens the state store under the data directory and brings it up
// to the log's end, so that orders can be loaded from it. A store that cannot
// be trusted, found on opening it or while catching up, is rebuilt from the
// log (the log is the truth; the store only saves re-reading it).
func (m *Main) openStore(ctx context.Context, journal *persistence.KafkaJournal) (*store.Store, caughtUp, error) {
	dir := filepath.Join(m.cfg.DataDir, stateDirName)
	log := m.log.With("component", "store")
	began := time.Now()
	st, rebuilt, err := persistence.OpenStore(ctx, dir, journal, log)
	if err != nil {
		return nil, caughtUp{}, fmt.Errorf("opening the state store: %w", err)
	}
	log.Info("catching up with the audit log", "dir", dir, "topic", m.cfg.Topic, "partitions", journal.Partitions(), "rebuilding", rebuilt)
	stats, err := journal.CatchUp(ctx, st)
	if errors.Is(err, order.ErrStoreUnusable) {
		log.Warn("the state store cannot be trusted; rebuilding it from the log", "dir", dir, "reason", err)
		if err = st.Close(); err == nil {
			st, err = persistence.RebuildStore(ctx, dir, journal, log)
		}
		if err != nil {
			return nil, caughtUp{}, fmt.Errorf("rebuilding the state store: %w", err)
		}
		rebuilt = true
		stats, err = journal.CatchUp(ctx, st)
	}
	if err != nil {
		return nil, caughtUp{}, errors.Join(fmt.Errorf("catching up with the audit log: %w", err), st.Close())
	}
	return st, caughtUp{CatchUpStats: stats, Duration: time.Since(began), Rebuilt: rebuilt}, nil
}

// follow keeps the store fed from the log until Close. If feeding stops on
// an error of the store, orderd stays correct (orders the store does not
// hold stay in memory, and nothing is acknowledged on the store's word) but
// reports not ready: a restart rebuilds the store.
func (m *Main) follow(journal *persistence.KafkaJournal, st *store.Store) {
	ctx, stop := context.WithCancel(context.Background())
	m.stopFollow, m.followDone = stop, make(chan struct{})
	go func() {
		defer close(m.followDone)
		err := journal.Follow(ctx, st)
		if err == nil || ctx.Err() != nil {
			return
		}
		err = fmt.Errorf("%w: the state store is no longer fed from the log (restart orderd to rebuild it): %w", actors.ErrNotReady, err)
		m.storeErr.Store(&err)
		m.log.Error("state store failed", "err", err)
	}()
}

// healthy is /readyz's verdict once recovered: the journal's, and the store's.
func (m *Main) healthy() error {
	if err := m.storeErr.Load(); err != nil {
		return *err
	}
	return m.journal.Healthy()
}

// Addr is the address the HTTP server listens on, once started.
func (m *Main) Addr() string { return m.ln.Addr().String() }

// Close shuts down in reverse order of start: stop taking requests and finish
// those in flight, stop connecting, stop the actors, flush and close the
// journal, then the embedded broker. It is safe to call more than once.
func (m *Main) Close() error {
	m.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.ShutdownTimeout)
		defer cancel()
		var errs []error
		if m.router != nil {
			// Leave the group first, while still serving: the others
			// take the partitions over at once, and requests for them
			// that arrive here meanwhile are forwarded to the new owners.
			if node := m.router.take(); node != nil {
				errs = append(errs, node.close())
			}
		}
		if m.server != nil {
			errs = append(errs, m.server.Shutdown(ctx))
		}
		if m.stopBg != nil {
			m.stopBg()
		}
		m.bg.Wait()
		if m.gc != nil {
			m.gc.close()
		}
		if m.saga != nil {
			m.saga.stop() // before the actors it drives
		}
		if m.system != nil {
			m.system.Close()
		}
		if m.stopFollow != nil {
			// Every append has been answered: let the store take the
			// last of them, so that the next start reads nothing.
			settleCtx, cancel := context.WithTimeout(ctx, storeSettleTimeout)
			if err := m.journal.SettleStore(settleCtx, m.store); err != nil {
				m.log.Warn("stopping before the state store holds the whole log; the next start reads the rest", "err", err)
			}
			cancel()
			m.stopFollow()
			<-m.followDone
		}
		if m.store != nil {
			m.journal.LoadFromStore(nil)
			// Flushed, the next start need not replay Pebble's write-ahead
			// log (about a second for a million orders' worth of writes).
			errs = append(errs, m.store.Flush(), m.store.Close())
		}
		if m.journal != nil {
			errs = append(errs, m.journal.Close())
		}
		if m.broker != nil {
			m.broker.Close()
		}
		if m.pprof != nil {
			errs = append(errs, m.pprof.Close())
		}
		if m.closePayments != nil {
			m.closePayments()
		}
		m.closeErr = errors.Join(errs...)
		m.log.Info("stopped", "err", m.closeErr)
	})
	return m.closeErr
}
