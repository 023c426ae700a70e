package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/persistence"
)

const (
	testTopic      = "orders.transitions"
	testPartitions = 6
	// testTimeout is generous: CI machines are shared and a rebalance
	// waits for heartbeats.
	testTimeout = 30 * time.Second
	testPoll    = 20 * time.Millisecond
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startBroker starts an embedded broker with the audit topic.
func startBroker(t *testing.T) string {
	t.Helper()
	e, err := persistence.StartEmbedded(persistence.EmbeddedConfig{DataDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(e.Close)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(e.Addr())}
	resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: testTopic, NumPartitions: testPartitions, ReplicationFactor: 1}}})
	require.NoError(t, err)
	require.NoError(t, resp.Errors[testTopic])
	return e.Addr()
}

// event is one callback, in the order all nodes' callbacks happened.
type event struct {
	node       string
	revoked    bool
	partitions []int
}

type eventLog struct {
	mu     sync.Mutex
	events []event
}

func (l *eventLog) add(e event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) snapshot() []event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// holders replays the log: which node holds each partition (Assigned
// and not yet Revoked). It fails if a partition is Assigned to a node
// while another still holds it.
func (l *eventLog) holders() (map[int]string, error) {
	held := map[int]string{}
	for i, e := range l.snapshot() {
		for _, p := range e.partitions {
			switch {
			case e.revoked && held[p] != e.node:
				return nil, fmt.Errorf("event %d: %s revoked %d held by %q", i, e.node, p, held[p])
			case e.revoked:
				delete(held, p)
			case held[p] != "":
				return nil, fmt.Errorf("event %d: %s assigned %d still held by %q", i, e.node, p, held[p])
			default:
				held[p] = e.node
			}
		}
	}
	return held, nil
}

// mustHold is holders in the test goroutine.
func (l *eventLog) mustHold(t *testing.T) map[int]string {
	t.Helper()
	held, err := l.holders()
	require.NoError(t, err)
	return held
}

type testNode struct {
	name, url string
	m         *Membership
}

func joinNode(t *testing.T, addr, group, name string, log *eventLog) *testNode {
	t.Helper()
	return joinNodeWith(t, addr, group, name, log, nodeOptions{})
}

// revokeHold is how long a slow node's Revoked takes: several heartbeats,
// so that the others would have rebalanced without it if they could.
const revokeHold = 3 * time.Second

type nodeOptions struct {
	revokeHold time.Duration // how long Revoked takes
	dialer     *kafka.Dialer
}

func joinNodeWith(t *testing.T, addr, group, name string, log *eventLog, opts nodeOptions) *testNode {
	t.Helper()
	n := &testNode{name: name, url: "http://" + name + ".test:8080"}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	m, err := Join(ctx, Config{
		Brokers:      []string{addr},
		Topic:        testTopic,
		Group:        group,
		AdvertiseURL: n.url,
		Dialer:       opts.dialer,
		Logger:       testLogger(t),
		Assigned: func(_ int32, ps []int) {
			log.add(event{node: name, partitions: ps})
		},
		Revoked: func(ps []int) {
			time.Sleep(opts.revokeHold) // injected slowness, not a wait for a condition
			log.add(event{node: name, revoked: true, partitions: ps})
		},
	})
	require.NoError(t, err)
	n.m = m
	t.Cleanup(func() { _ = m.Close() })
	return n
}

// settled reports whether every node's owner table names, for every
// partition, the node that holds it according to the callbacks.
func settled(nodes []*testNode, log *eventLog) bool {
	held, err := log.holders()
	if err != nil {
		return true // stop waiting: the caller's mustHold reports it
	}
	if len(held) != testPartitions {
		return false
	}
	byName := map[string]*testNode{}
	for _, n := range nodes {
		byName[n.name] = n
	}
	for _, n := range nodes {
		for p := range testPartitions {
			holder, ok := byName[held[p]]
			if !ok {
				return false // held by a node that has left
			}
			url, self, ok := n.m.Owner(p)
			if !ok || url != holder.url || self != (holder == n) {
				return false
			}
		}
	}
	return true
}

func startNodes(t *testing.T, count int) ([]*testNode, *eventLog) {
	addr := startBroker(t)
	group := "orderd-" + strings.ReplaceAll(t.Name(), "/", "-")
	log := &eventLog{}
	var nodes []*testNode
	for i := range count {
		nodes = append(nodes, joinNode(t, addr, group, fmt.Sprintf("n%d", i), log))
	}
	require.Eventually(t, func() bool { return settled(nodes, log) }, testTimeout, testPoll,
		"every partition owned once, every node's table agreeing")
	log.mustHold(t)
	return nodes, log
}

func TestThreeNodesOwnEveryPartitionOnce(t *testing.T) {
	nodes, log := startNodes(t, 3)
	held := log.mustHold(t)
	perNode := map[string]int{}
	for _, name := range held {
		perNode[name]++
	}
	assert.Equal(t, map[string]int{"n0": 2, "n1": 2, "n2": 2}, perNode)
	for p := range testPartitions {
		url, _, ok := nodes[0].m.Owner(p)
		require.True(t, ok)
		assert.Equal(t, "http://"+held[p]+".test:8080", url)
	}
}

func TestClosedNodesPartitionsMoveAndOthersStay(t *testing.T) {
	nodes, log := startNodes(t, 3)
	before := log.mustHold(t)
	leaving := nodes[1]
	start := time.Now()
	require.NoError(t, leaving.m.Close())
	survivors := []*testNode{nodes[0], nodes[2]}
	require.Eventually(t, func() bool { return settled(survivors, log) }, testTimeout, testPoll,
		"the survivors own all partitions")
	log.mustHold(t)
	t.Logf("hand-over after a graceful leave: %s", time.Since(start))

	after := log.mustHold(t)
	for p, was := range before {
		if was != leaving.name {
			assert.Equal(t, was, after[p], "partition %d moved though its owner stayed", p)
		}
	}
	// The leaver's Revoked came before anyone else's Assigned of its
	// partitions: holders checked that for every event; make sure the
	// leaver did revoke them.
	var revokedByLeaver []int
	for _, e := range log.snapshot() {
		if e.node == leaving.name && e.revoked {
			revokedByLeaver = e.partitions
		}
	}
	var leaverHad []int
	for p, was := range before {
		if was == leaving.name {
			leaverHad = append(leaverHad, p)
		}
	}
	slices.Sort(leaverHad)
	assert.Equal(t, leaverHad, revokedByLeaver)
}

func TestRevokedReturnsBeforeAnotherIsAssigned(t *testing.T) {
	addr := startBroker(t)
	log := &eventLog{}
	// first's Revoked holds its partitions for a while (the injected
	// slowness of a node finishing its writes): second's first generation
	// must wait for it.
	first := joinNodeWith(t, addr, "revoke-order", "first", log, nodeOptions{revokeHold: revokeHold})
	require.Eventually(t, func() bool { return settled([]*testNode{first}, log) }, testTimeout, testPoll)

	start := time.Now()
	second := joinNode(t, addr, "revoke-order", "second", log)
	assert.GreaterOrEqual(t, time.Since(start), revokeHold, "second joined while first was still revoking")
	nodes := []*testNode{first, second}
	require.Eventually(t, func() bool { return settled(nodes, log) }, testTimeout, testPoll)

	// holders fails if any Assigned came while another node held the
	// partition; check the revocation is in the log before second's first
	// Assigned.
	events := log.snapshot()
	revokedAt := slices.IndexFunc(events, func(e event) bool { return e.node == "first" && e.revoked })
	assignedAt := slices.IndexFunc(events, func(e event) bool { return e.node == "second" && !e.revoked })
	require.NotEqual(t, -1, revokedAt)
	assert.Less(t, revokedAt, assignedAt)
	log.mustHold(t)
}

func TestWaitOwnerEndsWithItsContext(t *testing.T) {
	m := &Membership{owners: map[int]owner{}, ownersDone: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err := m.WaitOwner(ctx, 3)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// An owner that appears wakes a waiting WaitOwner.
	got := make(chan string, 1)
	go func() {
		url, _, err := m.WaitOwner(context.Background(), 3)
		assert.NoError(t, err)
		got <- url
	}()
	m.setOwners(map[int]owner{3: {memberID: "x", url: "http://x"}})
	select {
	case url := <-got:
		assert.Equal(t, "http://x", url)
	case <-time.After(testTimeout):
		t.Fatal("WaitOwner did not wake")
	}
}

// blackHole dials real connections until cut; then everything written on
// them is swallowed and no new connection succeeds: to the broker, the node
// has gone silent, as if killed or cut off by the network.
type blackHole struct {
	mu    sync.Mutex
	cut   bool
	conns []*silencedConn
}

type silencedConn struct {
	net.Conn
	silent *atomic.Bool
}

func (c *silencedConn) Write(p []byte) (int, error) {
	if c.silent.Load() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (b *blackHole) dial(ctx context.Context, network, address string) (net.Conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cut {
		return nil, errors.New("test: network cut")
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	sc := &silencedConn{Conn: conn, silent: &atomic.Bool{}}
	b.conns = append(b.conns, sc)
	return sc, nil
}

func (b *blackHole) cutAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cut = true
	for _, c := range b.conns {
		c.silent.Store(true)
	}
}

// TestSilentNodesPartitionsMoveAfterTheSessionTimeout: a node that stops
// answering (crash, network cut) loses its partitions after the session
// timeout, without any Revoked from it: the others must not wait for it.
func TestSilentNodesPartitionsMoveAfterTheSessionTimeout(t *testing.T) {
	addr := startBroker(t)
	const group = "silent-node"
	log := &eventLog{}
	a := joinNode(t, addr, group, "a", log)
	b := joinNode(t, addr, group, "b", log)
	// Its heartbeat times out (a third of the session timeout) before the
	// group moves on without it: its Revoked must still come first, which
	// holders checks.
	hole := &blackHole{}
	silent := joinNodeWith(t, addr, group, "silent", log,
		nodeOptions{dialer: &kafka.Dialer{Timeout: testTimeout, DialFunc: hole.dial}})
	nodes := []*testNode{a, b, silent}
	require.Eventually(t, func() bool { return settled(nodes, log) }, testTimeout, testPoll,
		"each node owns its share")
	before := log.mustHold(t)

	start := time.Now()
	hole.cutAll()
	survivors := []*testNode{a, b}
	require.Eventually(t, func() bool { return settled(survivors, log) }, testTimeout, testPoll,
		"the others own all partitions")
	t.Logf("hand-over after a node went silent (session timeout %s): %s", DefaultSessionTimeout, time.Since(start))
	after := log.mustHold(t)
	for p, was := range before {
		if was != silent.name {
			assert.Equal(t, was, after[p], "partition %d moved though its owner stayed", p)
		}
	}
}
