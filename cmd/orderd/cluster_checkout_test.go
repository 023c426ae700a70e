package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// Checkout across the nodes of a cluster (issue 16): a checkout and its
// order live in the checkout's partition, its stock in the SKU's, and the
// two may be served by different nodes.

// keyedPair is two orderd nodes in this process, one cluster on one `orderd
// broker`, with API keys and the nodes' own key.
type keyedPair struct {
	a, b       *Main
	urlA, urlB string
	auth       []string // alice's Authorization header, as e2eDo takes it
}

const (
	pairAliceToken = "0123456789abcdef-alice"
	pairNodeToken  = "0123456789abcdef-node"
)

func startKeyedPair(t *testing.T, group string, flags ...string) *keyedPair {
	t.Helper()
	brokerAddr := freeLoopbackAddr(t)
	startBroker(t, brokerAddr, t.TempDir())
	dir := t.TempDir()
	keysFile, tokenFile := filepath.Join(dir, "keys"), filepath.Join(dir, "node-token")
	require.NoError(t, os.WriteFile(keysFile, []byte("alice="+pairAliceToken+"\nnode="+pairNodeToken+"\n"), 0o600))
	require.NoError(t, os.WriteFile(tokenFile, []byte(pairNodeToken+"\n"), 0o600))
	start := func() (*Main, string) {
		addr := freeLoopbackAddr(t)
		return e2eStartMain(t, t.TempDir(), append([]string{"--addr", addr, "--kafka-brokers", brokerAddr,
			"--partitions", fmt.Sprint(clusterPartitions), "--replication-factor", "1",
			"--cluster-group", group, "--advertise-url", "http://" + addr, "--compression", "none",
			"--api-keys-file", keysFile, "--node-token-file", tokenFile}, flags...)...)
	}
	pair := &keyedPair{auth: []string{"Authorization", "Bearer " + pairAliceToken}}
	pair.a, pair.urlA = start()
	pair.b, pair.urlB = start()
	return pair
}

// servedBy waits until the group has settled with a partition that
// `owner` serves and `other` sees it serve, and returns the first key
// made by keyOf(k) that falls in such a partition (as placed by place).
func servedBy(t *testing.T, owner, other *Main, ownerURL string, place func(key string) string, keyOf func(k int) string) string {
	t.Helper()
	var key string
	require.Eventually(t, func() bool {
		for k := range 16 * clusterPartitions {
			candidate := keyOf(k)
			p := owner.router.PartitionOf(place(candidate))
			if owner.system.Serves(p) && !other.system.Serves(p) && ownerSeenBy(other, p) == ownerURL {
				key = candidate
				return true
			}
		}
		return false
	}, roomyTimeout, probePause, "no partition served by %s as the other node sees it", ownerURL)
	return key
}

func samePlace(key string) string { return key }

// TestClusterCheckoutAcrossNodes: a SKU node B serves, and checkouts sent
// to node A: one whose ID A serves (the saga on A reserves on B over the
// hold route), one whose ID B serves (forwarded to B, where it runs). Each
// completes, its order Paid, and the checkout, the order and the stock
// read the same on both nodes. A declined payment is compensated (the
// hold on B released), a basket larger than the stock is 409 naming the
// SKU, shipping an order of A's consumes its stock on B (the action
// crosses nodes), shipping B's consumes it locally, and cancelling a
// completed checkout's order on A releases its hold on B.
func TestClusterCheckoutAcrossNodes(t *testing.T) {
	c := startKeyedPair(t, "checkout-test")
	sku := servedBy(t, c.b, c.a, c.urlB, order.InventoryKey, func(k int) string { return fmt.Sprintf("sku-%d", k) })
	onA := func(name string) string {
		return servedBy(t, c.a, c.b, c.urlA, samePlace, func(k int) string { return fmt.Sprintf("co-%s-%d", name, k) })
	}
	onB := func(name string) string {
		return servedBy(t, c.b, c.a, c.urlB, samePlace, func(k int) string { return fmt.Sprintf("co-%s-%d", name, k) })
	}
	do := func(method, url, body string, headers ...string) e2eReply {
		return e2eDo(t, method, url, body, append(headers, c.auth...)...)
	}
	e2eRequireStatus(t, do("PUT", c.urlA+"/v1/inventory/"+sku, `{"on_hand":5}`), http.StatusOK)
	bothRead := func(path string) map[string]any {
		t.Helper()
		fromA := e2eRequireStatus(t, do("GET", c.urlA+path, ""), http.StatusOK)
		fromB := e2eRequireStatus(t, do("GET", c.urlB+path, ""), http.StatusOK)
		require.Equal(t, fromA, fromB, "GET %s on A and on B", path)
		return fromA
	}
	requireBothStock := func(onHand, reserved int64) {
		t.Helper()
		require.Eventually(t, func() bool {
			a, b := stockAt(t, c.urlA, sku, c.auth), stockAt(t, c.urlB, sku, c.auth)
			return a == b && a.OnHand == onHand && a.Reserved == reserved
		}, roomyTimeout, probePause, "want on_hand %d reserved %d on both nodes; A %+v, B %+v",
			onHand, reserved, stockAt(t, c.urlA, sku, c.auth), stockAt(t, c.urlB, sku, c.auth))
	}
	checkout := func(id string, quantity int, token string) checkoutView {
		t.Helper()
		r := do("POST", c.urlA+"/v1/checkouts", checkoutBody(id, sku, quantity, token))
		require.Equal(t, http.StatusCreated, r.status, "checkout %s: %s", id, r.body)
		return decode[checkoutView](t, r.body)
	}
	completed := []string{"reserve-stock succeeded", "create-order succeeded", "authorize-payment succeeded", "mark-paid succeeded"}

	idA, idB := onA("a"), onB("b")
	for i, id := range []string{idA, idB} {
		co := checkout(id, 2-i, "tok_visa")
		assert.Equal(t, "completed", co.Status, id)
		assert.Equal(t, completed, stepNames(co), id)
		assert.Equal(t, "Paid", bothRead("/v1/orders/" + id)["state"], id)
		assert.Equal(t, "completed", bothRead("/v1/checkouts/" + id)["status"], id)
	}
	requireBothStock(5, 3)

	declined := onA("declined")
	co := checkout(declined, 1, "tok_decline")
	assert.Equal(t, "compensated", co.Status)
	assert.Equal(t, []string{"reserve-stock succeeded", "create-order succeeded", "authorize-payment failed",
		"void-payment succeeded", "cancel-order succeeded", "release-stock succeeded"}, stepNames(co))
	assert.Equal(t, "Cancelled", bothRead("/v1/orders/" + declined)["state"])
	bothRead("/v1/checkouts/" + declined)
	requireBothStock(5, 3)

	big := onA("big")
	p := e2eRequireProblem(t, do("POST", c.urlA+"/v1/checkouts", checkoutBody(big, sku, 3, "tok_visa")), http.StatusConflict, "out-of-stock")
	assert.Equal(t, []any{sku}, p["out_of_stock"])
	assert.Equal(t, "compensated", bothRead("/v1/checkouts/" + big)["status"])
	requireBothStock(5, 3)

	// Shipping A's order through B: the order moves on A, its hold is
	// consumed on B. B's, through A: both on B.
	e2eRequireStatus(t, do("POST", c.urlB+"/v1/orders/"+idA+"/transitions", `{"to":"Shipped"}`), http.StatusOK)
	requireBothStock(3, 1)
	e2eRequireStatus(t, do("POST", c.urlA+"/v1/orders/"+idB+"/transitions", `{"to":"Shipped"}`), http.StatusOK)
	requireBothStock(2, 0)

	// A completed checkout on A whose order is cancelled: its hold on B
	// is released.
	cancelled := onA("cancel")
	assert.Equal(t, "completed", checkout(cancelled, 2, "tok_visa").Status)
	requireBothStock(2, 2)
	e2eRequireStatus(t, do("POST", c.urlB+"/v1/orders/"+cancelled+"/transitions", `{"to":"Cancelled"}`), http.StatusOK)
	requireBothStock(2, 0)

	assert.Positive(t, holdRequestsServed(t, c.urlB, c.auth), "B served A's sagas and actions over the hold route")
	assert.Zero(t, holdRequestsServed(t, c.urlA, c.auth), "A serves no stock")
	var view stockView
	require.NoError(t, json.Unmarshal(do("GET", c.urlA+"/v1/inventory/"+sku, "").body, &view))
	t.Logf("stock of %s (served by B) after the checkouts: %+v", sku, view)
}

// clusterCheckoutStock is each SKU's stock: enough that most checkouts
// run their whole saga rather than stop short at out of stock.
const clusterCheckoutStock = 1000

// TestClusterCheckoutSurvivesANodeLeaving: three orderd processes of one
// cluster (no API keys: the checkout load of checkout_crash_test.go),
// clients checking out baskets of three SKUs on any node and moving the
// completed orders on, while a gateway that never answers keeps some
// sagas under way for a while. One node leaves gracefully (SIGTERM), and
// later another is killed (SIGKILL): the others take their partitions
// over, checkouts, orders and SKUs alike, and resume the checkouts they
// find unfinished. After each, with the load paused, every checkout sent
// ends completed or compensated, and every SKU's stock is what the
// orders' states say (expectedStock).
func TestClusterCheckoutSurvivesANodeLeaving(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 3))
	c := startCluster(t, seed, "--payment-gateway-timeout", "300ms")
	for _, sku := range checkoutCrashSKUs {
		c.untilAnswered(func(url string) bool {
			status, _ := call(t, "PUT", url+"/v1/inventory/"+sku, fmt.Sprintf(`{"on_hand":%d}`, clusterCheckoutStock), nil)
			return status == http.StatusOK
		})
	}
	load := &checkoutLoad{stock: clusterCheckoutStock, statuses: map[int]int{}}
	stop := make(chan struct{})
	var clients sync.WaitGroup
	for i := range checkoutCrashClients {
		clients.Go(func() { load.client(t, c.url, rand.New(rand.NewPCG(seed, uint64(i))), i, stop) })
	}
	stopLoad := sync.OnceFunc(func() {
		close(stop)
		clients.Wait()
	})
	t.Cleanup(stopLoad) // before the processes are stopped, if the test ends early

	leave := func(i int, sig syscall.Signal, how string) {
		time.Sleep(checkoutRunMin + time.Duration(rng.Int64N(int64(checkoutRunMax-checkoutRunMin))))
		began := time.Now()
		c.stop(i, sig)
		served := c.waitAllServed(began)
		load.gate.Lock()
		byStatus := load.verify(t, c.url())
		load.gate.Unlock()
		t.Logf("node %d %s; every partition served by the others %v later, every checkout ended %v later: %v; stock conserved",
			i+1, how, served.Round(time.Millisecond), time.Since(began).Round(time.Millisecond), byStatus)
	}
	graceful, killed := rng.IntN(clusterNodes), rng.IntN(clusterNodes)
	leave(graceful, syscall.SIGTERM, "stopped gracefully (SIGTERM)")
	c.start(graceful) // a rebalance under the load too
	leave(killed, syscall.SIGKILL, "killed (SIGKILL)")
	stopLoad()
	byStatus := load.verify(t, c.url())
	require.Positive(t, byStatus["completed"])
	require.Positive(t, byStatus["compensated"])
	t.Logf("checkouts %v; answers %v; checkouts the nodes running now resumed on their takeovers: %d",
		byStatus, load.statuses, c.logSum(resumedLine))
}

var resumedLine = regexp.MustCompile(`msg="unfinished checkouts resumed" checkouts=(\d+)`)

// logSum adds up the number re's first group matches in the live nodes' logs.
func (c *testCluster) logSum(re *regexp.Regexp) int {
	c.mu.Lock()
	nodes := slices.Clone(c.nodes)
	c.mu.Unlock()
	sum := 0
	for _, p := range nodes {
		if p == nil {
			continue
		}
		for _, m := range re.FindAllStringSubmatch(p.logs.String(), -1) {
			n, err := strconv.Atoi(m[1])
			require.NoError(c.t, err)
			sum += n
		}
	}
	return sum
}
