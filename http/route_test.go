package http

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	nethttp "net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/order"
)

// clusterPartitions is the fake cluster's partition count.
const clusterPartitions = 6

// fakeCluster is the ownership every node's fakeRouter reads: partition to
// owner's base URL, "" for none (Owner then waits for the deadline).
type fakeCluster struct {
	mu     sync.Mutex
	owners [clusterPartitions]string
}

func (fc *fakeCluster) own(url string, partitions ...int) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	for _, p := range partitions {
		fc.owners[p] = url
	}
}

func (fc *fakeCluster) ownAll(url string) {
	for p := range clusterPartitions {
		fc.own(url, p)
	}
}

// fakeRouter is one node's view of a fakeCluster.
type fakeRouter struct {
	cluster *fakeCluster
	self    atomic.Pointer[string] // this node's URL, set once it listens
	asked   sync.Map               // partitions Owner was asked about
}

var _ Router = (*fakeRouter)(nil)

func (r *fakeRouter) PartitionOf(key string) int { return partitionOfKey(key) }

func partitionOfKey(key string) int {
	h := fnv.New32a()
	_, _ = io.WriteString(h, key)
	return int(h.Sum32() % clusterPartitions)
}

func (r *fakeRouter) Owner(ctx context.Context, p int) (string, bool, error) {
	r.asked.Store(p, true)
	r.cluster.mu.Lock()
	url := r.cluster.owners[p]
	r.cluster.mu.Unlock()
	if url == "" {
		<-ctx.Done()
		return "", false, fmt.Errorf("%w: partition %d has no owner: %w", actors.ErrNotReady, p, ctx.Err())
	}
	return url, url == *r.self.Load(), nil
}

func (r *fakeRouter) LocalPartition() (int, bool) {
	r.cluster.mu.Lock()
	defer r.cluster.mu.Unlock()
	for p, url := range r.cluster.owners {
		if url == *r.self.Load() {
			return p, true
		}
	}
	return 0, false
}

func (r *fakeRouter) wasAsked(p int) bool {
	_, ok := r.asked.Load(p)
	return ok
}

// clusterToken is the API key every node of the test clusters shares.
const clusterToken = "0123456789abcdef-cluster"

var clusterAuth = []string{"Authorization", "Bearer " + clusterToken}

// node is one server of a test cluster, with its own fake service that
// records what it executed and read.
type node struct {
	*harness
	router *fakeRouter
	reads  atomic.Int32
}

// newNode starts a node of fc. Its reads answer an order whose version is
// the node's number, so the ETag shows which node answered; setup may
// change its service before it serves.
func newNode(t *testing.T, fc *fakeCluster, number uint64, cfg Config, setup ...func(*fakeService)) *node {
	t.Helper()
	n := &node{router: &fakeRouter{cluster: fc}}
	n.router.self.Store(new(string))
	svc := &fakeService{
		GetFn: func(_ context.Context, id string) (order.Order, error) {
			n.reads.Add(1)
			return order.Order{ID: id, State: order.Created, Version: number, CreatedAt: t0, UpdatedAt: t0}, nil
		},
		HistoryFn: func(_ context.Context, id string) ([]order.Event, error) {
			n.reads.Add(1)
			return []order.Event{{EventID: "e1", OrderID: id, Version: 1, To: order.Created, At: t0, Principal: "ops", RequestID: "r1"}}, nil
		},
	}
	for _, f := range setup {
		f(svc)
	}
	cfg.Router = n.router
	cfg.APIKeys = []APIKey{{Principal: "ops", Token: clusterToken}}
	n.harness = newHarness(t, svc, cfg)
	n.router.self.Store(&n.url)
	return n
}

// requireUntouched: the node neither executed nor read anything.
func (n *node) requireUntouched() {
	n.t.Helper()
	require.Empty(n.t, n.svc.received(), "a command executed on a node that does not serve the order")
	require.Zero(n.t, n.reads.Load(), "a read served by a node that does not serve the order")
}

func withAuth(headers ...string) []string {
	return append(append([]string{}, clusterAuth...), headers...)
}

// TestForwardToOwner: requests at a node that does not serve the order are
// answered by the one that does, with the client's headers and the owner's.
func TestForwardToOwner(t *testing.T) {
	t.Parallel()
	fc := &fakeCluster{}
	entry, owner := newNode(t, fc, 1, Config{}), newNode(t, fc, 2, Config{})
	fc.ownAll(owner.url)

	r := entry.do("POST", "/v1/orders/o-1/transitions", `{"to":"Paid"}`, withAuth(
		"If-Match", `"4"`, "Idempotency-Key", "k-1", "X-Request-ID", "req-fwd-1")...)
	require.Equal(t, nethttp.StatusOK, r.status, "body: %s", r.body)
	assert.Equal(t, `"5"`, r.header.Get("ETag"))
	assert.Equal(t, "req-fwd-1", r.header.Get("X-Request-ID"))
	cmds := owner.svc.received()
	require.Len(t, cmds, 1)
	assert.Equal(t, order.Command{Kind: order.CommandTransition, OrderID: "o-1", To: order.Paid, ExpectedVersion: 4,
		IdempotencyKey: "k-1", Principal: "ops", RequestID: "req-fwd-1"}, cmds[0])

	// A request ID the entry node made up is the one the owner records.
	r = entry.do("POST", "/v1/orders", `{"id":"o-2"}`, clusterAuth...)
	require.Equal(t, nethttp.StatusCreated, r.status, "body: %s", r.body)
	assert.Equal(t, "/v1/orders/o-2", r.header.Get("Location"))
	assert.Equal(t, `"1"`, r.header.Get("ETag"))
	cmds = owner.svc.received()
	require.Len(t, cmds, 2)
	assert.Equal(t, "o-2", cmds[1].OrderID)
	assert.Equal(t, r.header.Get("X-Request-ID"), cmds[1].RequestID)

	r = entry.do("GET", "/v1/orders/o-1", "", clusterAuth...)
	require.Equal(t, nethttp.StatusOK, r.status, "body: %s", r.body)
	assert.Equal(t, `"2"`, r.header.Get("ETag"), "the owner (version 2) answered")
	r = entry.do("HEAD", "/v1/orders/o-1", "", clusterAuth...)
	require.Equal(t, nethttp.StatusOK, r.status)
	assert.Equal(t, `"2"`, r.header.Get("ETag"))
	r = entry.do("GET", "/v1/orders/o-1/history", "", clusterAuth...)
	require.Equal(t, nethttp.StatusOK, r.status, "body: %s", r.body)
	assert.Equal(t, int32(3), owner.reads.Load())
	entry.requireUntouched()
	requireForwards(t, entry, "ok", 5)
}

// TestForwardFromNodeNotReady: a node still catching up with the log
// forwards what other nodes serve, and refuses only what it serves itself.
func TestForwardFromNodeNotReady(t *testing.T) {
	t.Parallel()
	fc := &fakeCluster{}
	entry := newNode(t, fc, 1, Config{}, func(svc *fakeService) {
		svc.ReadyFn = func() error { return fmt.Errorf("%w: replaying", actors.ErrNotReady) }
	})
	owner := newNode(t, fc, 2, Config{})
	fc.ownAll(owner.url)

	r := entry.do("POST", "/v1/orders", "", clusterAuth...)
	require.Equal(t, nethttp.StatusCreated, r.status, "body: %s", r.body)
	r = entry.do("POST", "/v1/orders", `{"id":"o-1"}`, clusterAuth...)
	require.Equal(t, nethttp.StatusCreated, r.status, "body: %s", r.body)
	r = entry.do("GET", "/v1/orders/o-1", "", clusterAuth...)
	require.Equal(t, nethttp.StatusOK, r.status, "body: %s", r.body)
	require.Len(t, owner.svc.received(), 2)

	fc.ownAll(entry.url)
	r = entry.do("POST", "/v1/orders", `{"id":"o-2"}`, clusterAuth...)
	requireNotReady(t, r)
	r = entry.do("GET", "/v1/orders/o-2", "", clusterAuth...)
	requireNotReady(t, r)
	entry.requireUntouched()
}

// TestForwardRefusesBadTokensFirst: a request without a valid key is refused
// by the node it reaches, and reaches no other.
func TestForwardRefusesBadTokensFirst(t *testing.T) {
	t.Parallel()
	fc := &fakeCluster{}
	entry, owner := newNode(t, fc, 1, Config{}), newNode(t, fc, 2, Config{})
	fc.ownAll(owner.url)

	for _, auth := range [][]string{nil, {"Authorization", "Bearer not-the-cluster-token"}} {
		r := entry.do("POST", "/v1/orders/o-1/transitions", `{"to":"Paid"}`, auth...)
		requireProblem(t, r, nethttp.StatusUnauthorized, "unauthorized")
		r = entry.do("GET", "/v1/orders/o-1", "", auth...)
		requireProblem(t, r, nethttp.StatusUnauthorized, "unauthorized")
	}
	owner.requireUntouched()
	entry.requireUntouched()
	requireForwards(t, entry, "ok", 0)
}

// TestForwardedRequestsAreServedWhereTheyArrive: a request another node
// forwarded is never forwarded again, whatever the Router says.
func TestForwardedRequestsAreServedWhereTheyArrive(t *testing.T) {
	t.Parallel()
	fc := &fakeCluster{}
	a, b := newNode(t, fc, 1, Config{}), newNode(t, fc, 2, Config{})
	fc.ownAll(b.url)

	r := a.do("POST", "/v1/orders/o-1/transitions", `{"to":"Paid"}`, withAuth(headerForwarded, "1")...)
	require.Equal(t, nethttp.StatusOK, r.status, "body: %s", r.body)
	r = a.do("GET", "/v1/orders/o-1", "", withAuth(headerForwarded, "1")...)
	require.Equal(t, nethttp.StatusOK, r.status, "body: %s", r.body)
	assert.Equal(t, `"1"`, r.header.Get("ETag"), "a answered")
	require.Len(t, a.svc.received(), 1)
	b.requireUntouched()
	requireForwards(t, a, "ok", 0)
}

// TestCreateWithoutIDInChosenPartition: a create without an ID or key stays
// on the entry node when it serves a partition, and its ID falls there.
// Otherwise it goes to the owner of the partition the entry node chose, in
// X-Orderd-Partition, and the owner generates the ID in that partition.
func TestCreateWithoutIDInChosenPartition(t *testing.T) {
	t.Parallel()
	fc := &fakeCluster{}
	a, b := newNode(t, fc, 1, Config{}), newNode(t, fc, 2, Config{})
	fc.ownAll(b.url)
	fc.own(a.url, 3)

	r := a.do("POST", "/v1/orders", "", clusterAuth...)
	require.Equal(t, nethttp.StatusCreated, r.status, "body: %s", r.body)
	require.Len(t, a.svc.received(), 1)
	assert.Equal(t, 3, partitionOfKey(a.svc.received()[0].OrderID))
	assert.True(t, a.svc.received()[0].IDGenerated)

	fc.ownAll(b.url)   // a serves none now: each create picks any partition
	const creates = 20 // b ignoring the header would match each by chance 1 in 6
	for i := range creates {
		r := a.do("POST", "/v1/orders", "", clusterAuth...)
		require.Equal(t, nethttp.StatusCreated, r.status, "body: %s", r.body)
		cmds := b.svc.received()
		require.Len(t, cmds, i+1)
		p := partitionOfKey(cmds[i].OrderID)
		assert.True(t, a.router.wasAsked(p), "partition %d of %s was not the one a chose", p, cmds[i].OrderID)
		assert.Equal(t, "/v1/orders/"+cmds[i].OrderID, r.header.Get("Location"))
	}
	require.Len(t, a.svc.received(), 1)
}

// TestPartitionHeader: the owner generates the ID in the partition
// X-Orderd-Partition names, only on forwarded requests, and refuses a bad one.
func TestPartitionHeader(t *testing.T) {
	t.Parallel()
	fc := &fakeCluster{}
	a := newNode(t, fc, 1, Config{})
	fc.ownAll(a.url)

	for p := range clusterPartitions {
		r := a.do("POST", "/v1/orders", "", withAuth(headerForwarded, "1", headerPartition, fmt.Sprint(p))...)
		require.Equal(t, nethttp.StatusCreated, r.status, "body: %s", r.body)
		cmds := a.svc.received()
		assert.Equal(t, p, partitionOfKey(cmds[len(cmds)-1].OrderID))
	}
	for _, bad := range []string{"x", "-1", "1024", "99999999999999999999", "+1", "01"} {
		r := a.do("POST", "/v1/orders", "", withAuth(headerForwarded, "1", headerPartition, bad)...)
		p := requireProblem(t, r, nethttp.StatusBadRequest, "bad-request")
		assert.Equal(t, headerPartition, p["field"], "value %q", bad)
	}
	// With an ID, or when not forwarded, the header means nothing.
	r := a.do("POST", "/v1/orders", `{"id":"o-9"}`, withAuth(headerForwarded, "1", headerPartition, "x")...)
	require.Equal(t, nethttp.StatusCreated, r.status, "body: %s", r.body)
	r = a.do("POST", "/v1/orders", "", withAuth(headerPartition, "x")...)
	require.Equal(t, nethttp.StatusCreated, r.status, "body: %s", r.body)
}

// TestPartitionNeverDrawn: a partition no ID falls in (here one past the
// topic's end) ends the drawing at its bound with an internal error.
func TestPartitionNeverDrawn(t *testing.T) {
	t.Parallel()
	fc := &fakeCluster{}
	a := newNode(t, fc, 1, Config{})
	fc.ownAll(a.url)

	r := a.do("POST", "/v1/orders", "", withAuth(headerForwarded, "1", headerPartition, fmt.Sprint(clusterPartitions))...)
	requireProblem(t, r, nethttp.StatusInternalServerError, "internal-error")
	a.requireUntouched()
	assert.Contains(t, a.logs.String(), fmt.Sprintf("none of %d IDs drawn falls in partition %d", idDrawsMax, clusterPartitions))
}

// TestKeyedCreatesMeetAtOneOwner: retries of a keyed create without an ID
// reach the same owner from any entry node, so its actors see the key.
func TestKeyedCreatesMeetAtOneOwner(t *testing.T) {
	t.Parallel()
	fc := &fakeCluster{}
	nodes := []*node{newNode(t, fc, 1, Config{}), newNode(t, fc, 2, Config{}), newNode(t, fc, 3, Config{})}
	for p := range clusterPartitions {
		fc.own(nodes[p%len(nodes)].url, p)
	}
	const key = "checkout-77"
	p := partitionOfKey("ops\x00" + key)
	owner := nodes[p%len(nodes)]

	for _, entry := range nodes {
		r := entry.do("POST", "/v1/orders", `{"customer_id":"c-1"}`, withAuth("Idempotency-Key", key)...)
		require.Equal(t, nethttp.StatusCreated, r.status, "body: %s", r.body)
	}
	cmds := owner.svc.received()
	require.Len(t, cmds, len(nodes))
	for _, cmd := range cmds {
		assert.Equal(t, key, cmd.IdempotencyKey)
		assert.Equal(t, p, partitionOfKey(cmd.OrderID))
	}
	for _, n := range nodes {
		if n != owner {
			n.requireUntouched()
		}
	}
}

// TestForwardToUnreachableOwner: nothing reached the owner, so even a
// command is "not ready, retry", never "outcome unknown".
func TestForwardToUnreachableOwner(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	fc := &fakeCluster{}
	entry := newNode(t, fc, 1, Config{})
	fc.ownAll(closed)

	r := entry.do("POST", "/v1/orders/o-1/transitions", `{"to":"Paid"}`, clusterAuth...)
	requireNotReady(t, r)
	r = entry.do("GET", "/v1/orders/o-1", "", clusterAuth...)
	requireNotReady(t, r)
	r = entry.do("POST", "/v1/orders", "", clusterAuth...)
	requireNotReady(t, r)
	entry.requireUntouched()
	requireForwards(t, entry, "unreachable", 3)
}

// TestForwardToSilentOwner: an owner that takes a command and never answers
// leaves its outcome unknown; a read that goes unanswered changed nothing.
func TestForwardToSilentOwner(t *testing.T) {
	t.Parallel()
	silent := silentPeer(t)
	fc := &fakeCluster{}
	entry := newNode(t, fc, 1, Config{RequestTimeout: 300 * time.Millisecond})
	fc.ownAll(silent)

	r := entry.do("POST", "/v1/orders/o-1/transitions", `{"to":"Paid"}`, withAuth("Idempotency-Key", "k-1")...)
	p := requireProblem(t, r, nethttp.StatusServiceUnavailable, "outcome-unknown")
	assert.Contains(t, p["detail"], "Idempotency-Key")
	assert.NotEmpty(t, r.header.Get("Retry-After"))
	r = entry.do("GET", "/v1/orders/o-1/history", "", clusterAuth...)
	requireNotReady(t, r)
	requireForwards(t, entry, "no_answer", 2)
}

// TestForwardWithoutOwner: while a partition has no owner, its requests wait
// for one until the deadline and are then told to retry.
func TestForwardWithoutOwner(t *testing.T) {
	t.Parallel()
	fc := &fakeCluster{} // nobody owns anything
	entry := newNode(t, fc, 1, Config{RequestTimeout: 200 * time.Millisecond})

	r := entry.do("POST", "/v1/orders/o-1/transitions", `{"to":"Paid"}`, clusterAuth...)
	requireNotReady(t, r)
	r = entry.do("GET", "/v1/orders/o-1", "", clusterAuth...)
	requireNotReady(t, r)
	entry.requireUntouched()
	requireForwards(t, entry, "no_owner", 2)
}

func requireNotReady(t *testing.T, r reply) {
	t.Helper()
	requireProblem(t, r, nethttp.StatusServiceUnavailable, "not-ready")
	assert.Equal(t, "5", r.header.Get("Retry-After"))
}

// requireForwards checks a node's count of forwards with an outcome.
func requireForwards(t *testing.T, n *node, outcome string, want int) {
	t.Helper()
	r := n.do("GET", "/metrics", "", clusterAuth...)
	require.Equal(t, nethttp.StatusOK, r.status)
	line := fmt.Sprintf("orderd_forwarded_requests_total{outcome=%q} %d\n", outcome, want)
	assert.Contains(t, string(r.body), line)
}

// silentPeer accepts connections and reads from them but never answers,
// until the test ends; it returns its base URL.
func silentPeer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(io.Discard, conn) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

// TestCheckoutWithoutIDInChosenPartition: a checkout with neither an ID
// nor an Idempotency-Key, sent to a node that serves no partition, is
// forwarded with the partition the node chose, and the owner draws its ID
// there (it drew one anywhere, so the checkout could live in a partition
// no node that served it owned).
func TestCheckoutWithoutIDInChosenPartition(t *testing.T) {
	t.Parallel()
	fc := &fakeCluster{}
	done := func(st actors.CheckoutStart) (order.Checkout, error) {
		return finishedCheckout(st, order.CheckoutCompleted), nil
	}
	fa, fb := &fakeCheckouts{end: done}, &fakeCheckouts{end: done}
	a, b := newNode(t, fc, 1, Config{Checkouts: fa}), newNode(t, fc, 2, Config{Checkouts: fb})
	fc.ownAll(b.url)

	const checkouts = 20 // b drawing anywhere would match each by chance 1 in 6
	for i := range checkouts {
		r := a.do("POST", checkoutsPath, checkoutBody1, clusterAuth...)
		require.Equal(t, nethttp.StatusCreated, r.status, "body: %s", r.body)
		starts := fb.started()
		require.Len(t, starts, i+1)
		p := partitionOfKey(starts[i].ID)
		assert.True(t, a.router.wasAsked(p), "partition %d of %s was not the one a chose", p, starts[i].ID)
		assert.Equal(t, checkoutsPath+"/"+starts[i].ID, r.header.Get("Location"))
	}
	assert.Empty(t, fa.started())
}
