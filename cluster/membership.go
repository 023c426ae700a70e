package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

const (
	// DefaultSessionTimeout is how long the group waits for a silent member
	// before it hands its partitions on: with a 1 s heartbeat and the
	// rebalance after it, a dead node's partitions move within ~10 s.
	DefaultSessionTimeout = 6 * time.Second
	// DefaultHeartbeatInterval lets a member miss several heartbeats
	// within DefaultSessionTimeout before it is dropped.
	DefaultHeartbeatInterval = time.Second
	// defaultDialTimeout bounds each connection attempt to a broker.
	defaultDialTimeout = 10 * time.Second
	// requestTimeout bounds each DescribeGroups and metadata read.
	requestTimeout = 10 * time.Second
	// sessionTimeoutParts: a heartbeat (and leave) may take a third of the
	// session timeout. A node cut off from the broker then sees its
	// heartbeat fail, ends its generation and calls Revoked within a
	// heartbeat interval plus a third of the session, well before the group
	// gives its partitions to others at the session timeout. (Joins wait
	// for the rebalance on top of it; kafka-go adds that itself.)
	sessionTimeoutParts = 3
	// rebalanceTimeout is how long the group waits for every member to
	// re-join, which includes its Revoked returning: a node that takes
	// longer is dropped from the group.
	rebalanceTimeout = 30 * time.Second
	// joinBackoff is the pause after a failed join; kafka-go's 5 s default
	// would add itself to every failover after a broker error.
	joinBackoff = time.Second
	// ownerRefreshInterval is how often the owner table is read again
	// while it is incomplete or the group is between generations.
	ownerRefreshInterval = time.Second
)

// Config configures a node's membership.
type Config struct {
	Brokers []string
	// Topic is the audit topic whose partitions are owned.
	Topic string
	// Group is the consumer group every node of the cluster joins.
	Group string
	// AdvertiseURL is this node's URL, carried in its group metadata so that
	// every node learns where each partition's owner is.
	AdvertiseURL string
	// SessionTimeout: DefaultSessionTimeout if zero.
	SessionTimeout time.Duration
	// HeartbeatInterval: DefaultHeartbeatInterval if zero.
	HeartbeatInterval time.Duration
	// Dialer connects to the brokers (TLS, SASL); nil: a plain dialer with
	// a timeout.
	Dialer *kafka.Dialer
	// Logger: slog.Default() if nil.
	Logger *slog.Logger
	// Assigned is called with each new generation's partitions for this
	// node, sorted and possibly empty, before Owner reflects that generation.
	Assigned func(generation int32, partitions []int)
	// Revoked is called when a generation ends, with the partitions
	// Assigned gave for it. The group cannot complete its next rebalance
	// until Revoked returns: stop writing to them before returning. It
	// is not called if the process dies. A node cut off from the broker
	// calls it when its heartbeat times out (a third of the session
	// timeout), before the group moves on without it at the session
	// timeout; a Revoked slower than the difference overlaps with the next
	// owner.
	Revoked func(partitions []int)
}

// owner is one partition's owner in the group's latest assignment.
type owner struct {
	memberID string
	url      string
}

// Membership is a node's place in the group. Its methods are safe for
// concurrent use.
type Membership struct {
	cfg      Config
	log      *slog.Logger
	cg       *kafka.ConsumerGroup
	client   *kafka.Client
	balancer *stickyBalancer
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	refresh  chan struct{} // asks the refresher to read the group now

	mu         sync.Mutex
	memberID   string        // this node's ID in its latest generation
	owners     map[int]owner // from the latest read of the group
	ownersDone chan struct{} // closed, and replaced, when owners changes
	closed     bool
}

// Join joins the group and returns once this node has its first generation
// (Assigned has returned), or ctx ends. Close must be called to leave.
func Join(ctx context.Context, cfg Config) (*Membership, error) {
	if len(cfg.Brokers) == 0 || cfg.Topic == "" || cfg.Group == "" || cfg.AdvertiseURL == "" {
		return nil, errors.New("cluster: brokers, topic, group and advertise URL are required")
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.HeartbeatInterval >= cfg.SessionTimeout/sessionTimeoutParts {
		return nil, fmt.Errorf("cluster: heartbeat interval %s must be under a third of the session timeout %s",
			cfg.HeartbeatInterval, cfg.SessionTimeout)
	}
	if cfg.Dialer == nil {
		cfg.Dialer = &kafka.Dialer{Timeout: defaultDialTimeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Assigned == nil {
		cfg.Assigned = func(int32, []int) {}
	}
	if cfg.Revoked == nil {
		cfg.Revoked = func([]int) {}
	}
	m := &Membership{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "cluster", "group", cfg.Group),
		balancer:   &stickyBalancer{topic: cfg.Topic, url: cfg.AdvertiseURL},
		refresh:    make(chan struct{}, 1),
		owners:     map[int]owner{},
		ownersDone: make(chan struct{}),
	}
	m.client = &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: requestTimeout, Transport: transportFor(cfg.Dialer)}
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                cfg.Group,
		Brokers:           cfg.Brokers,
		Dialer:            cfg.Dialer,
		Topics:            []string{cfg.Topic},
		GroupBalancers:    []kafka.GroupBalancer{m.balancer},
		HeartbeatInterval: cfg.HeartbeatInterval,
		SessionTimeout:    cfg.SessionTimeout,
		RebalanceTimeout:  rebalanceTimeout,
		JoinGroupBackoff:  joinBackoff,
		// The partition count is fixed for a topic's life: orderd's key
		// routing depends on it.
		WatchPartitionChanges: false,
		Timeout:               cfg.SessionTimeout / sessionTimeoutParts,
		ErrorLogger:           kafka.LoggerFunc(func(f string, a ...any) { m.log.Warn(fmt.Sprintf(f, a...)) }),
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	m.cg = cg
	runCtx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	first := make(chan struct{})
	m.wg.Go(func() { m.follow(runCtx, first) })
	m.wg.Go(func() { m.refreshOwners(runCtx) })
	select {
	case <-first:
		return m, nil
	case <-ctx.Done():
		_ = m.Close()
		return nil, fmt.Errorf("cluster: joining group %q: %w", cfg.Group, ctx.Err())
	}
}

// transportFor carries the dialer's connection settings over to the
// client that reads the group, so both reach the brokers the same way.
func transportFor(d *kafka.Dialer) *kafka.Transport {
	t := &kafka.Transport{DialTimeout: d.Timeout, ClientID: d.ClientID, TLS: d.TLS, SASL: d.SASLMechanism}
	if d.DialFunc != nil {
		t.Dial = d.DialFunc
	}
	return t
}

// follow takes each generation the group gives this node until ctx ends.
func (m *Membership) follow(ctx context.Context, first chan<- struct{}) {
	for {
		gen, err := m.cg.Next(ctx)
		switch {
		case ctx.Err() != nil, errors.Is(err, kafka.ErrGroupClosed):
			return
		case err != nil:
			// kafka-go joins again by itself after joinBackoff, and
			// has told its ErrorLogger already.
			m.log.Debug("cluster: joining the group", "err", err)
			continue
		}
		// Start first: the generation waits at its end only for what
		// was started in it, and Revoked must run before the next.
		// kafka-go leaves a window of a few instructions between Next
		// and Start: a generation that ends inside it (its heartbeat
		// failed right then) does not wait for this Revoked.
		assigned := make(chan struct{})
		partitions := assignedPartitions(gen, m.cfg.Topic)
		gen.Start(func(gctx context.Context) {
			<-assigned
			<-gctx.Done()
			// Not a member until the next generation: Owner must not
			// answer self for partitions being revoked.
			m.mu.Lock()
			m.memberID = ""
			m.mu.Unlock()
			m.cfg.Revoked(partitions)
		})
		m.balancer.setOwned(partitions)
		m.mu.Lock()
		m.memberID = gen.MemberID
		m.mu.Unlock()
		m.log.Info("cluster: new generation", "generation", gen.ID, "partitions", partitions)
		m.cfg.Assigned(gen.ID, partitions)
		close(assigned)
		if first != nil {
			close(first)
			first = nil
		}
		m.askRefresh()
	}
}

func assignedPartitions(gen *kafka.Generation, topic string) []int {
	ps := []int{}
	for _, a := range gen.Assignments[topic] {
		ps = append(ps, a.ID)
	}
	slices.Sort(ps)
	return ps
}

func (m *Membership) askRefresh() {
	select {
	case m.refresh <- struct{}{}:
	default: // one is pending already
	}
}

// refreshOwners reads the group after each generation, and again every
// ownerRefreshInterval until the read shows a settled group that owns every
// partition: members sync at slightly different times.
func (m *Membership) refreshOwners(ctx context.Context) {
	ticker := time.NewTicker(ownerRefreshInterval)
	defer ticker.Stop()
	settled := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.refresh:
		case <-ticker.C:
			if settled {
				continue
			}
		}
		owners, ok, err := m.readOwners(ctx)
		if err != nil {
			if ctx.Err() == nil {
				m.log.Warn("cluster: reading the group's owners", "err", err)
			}
			settled = false
			continue
		}
		m.setOwners(owners)
		settled = ok
	}
}

// readOwners reads the group's members and assignments; ok says the group
// is stable and every partition of the topic has an owner.
func (m *Membership) readOwners(ctx context.Context) (map[int]owner, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := m.client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{m.cfg.Group}})
	if err != nil {
		return nil, false, err
	}
	if len(resp.Groups) != 1 {
		return nil, false, fmt.Errorf("described %d groups, want 1", len(resp.Groups))
	}
	g := resp.Groups[0]
	if g.Error != nil {
		return nil, false, g.Error
	}
	owners := map[int]owner{}
	stable := g.GroupState == "Stable"
	for _, mem := range g.Members {
		if len(mem.MemberMetadata.UserData) == 0 {
			// Seen while the group is between generations: read again.
			stable = false
			continue
		}
		var d memberData
		if err := json.Unmarshal(mem.MemberMetadata.UserData, &d); err != nil {
			// Not an orderd node (or a newer format): it owns nothing here.
			m.log.Warn("cluster: unreadable member metadata", "member", mem.MemberID, "err", err)
			continue
		}
		for _, t := range mem.MemberAssignments.Topics {
			if t.Topic != m.cfg.Topic {
				continue
			}
			for _, p := range t.Partitions {
				owners[p] = owner{memberID: mem.MemberID, url: d.URL}
			}
		}
	}
	meta, err := m.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{m.cfg.Topic}})
	if err != nil {
		return owners, false, err
	}
	complete := len(meta.Topics) == 1 && meta.Topics[0].Error == nil && len(meta.Topics[0].Partitions) > 0
	if complete {
		for _, p := range meta.Topics[0].Partitions {
			if _, has := owners[p.ID]; !has {
				complete = false
			}
		}
	}
	return owners, complete && stable, nil
}

func (m *Membership) setOwners(owners map[int]owner) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.owners = owners
	close(m.ownersDone)
	m.ownersDone = make(chan struct{})
}

// Owner answers from the latest read of the group: the URL of partition's
// owner, whether that is this node, and ok false if no owner is known. The
// answer can be out of date by a rebalance: it routes requests, it does not
// decide who may write (Assigned and Revoked do).
func (m *Membership) Owner(partition int) (url string, self bool, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.owners[partition]
	return o.url, ok && o.memberID == m.memberID, ok
}

// WaitOwner is Owner that waits while no owner is known, until ctx ends.
func (m *Membership) WaitOwner(ctx context.Context, partition int) (url string, self bool, err error) {
	for {
		m.mu.Lock()
		o, ok := m.owners[partition]
		self, changed := ok && o.memberID == m.memberID, m.ownersDone
		m.mu.Unlock()
		if ok {
			return o.url, self, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", false, fmt.Errorf("cluster: waiting for partition %d's owner: %w", partition, ctx.Err())
		}
	}
}

// Close leaves the group, after Revoked has returned, so that the others
// take this node's partitions without waiting for its session to time out;
// it waits for the membership's goroutines. Safe to call more than once.
func (m *Membership) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	// The group first: its Close ends the generation (Revoked), then
	// leaves; cancelling before would only stop follow sooner.
	err := m.cg.Close()
	m.cancel()
	m.wg.Wait()
	if t, ok := m.client.Transport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
	return err
}
