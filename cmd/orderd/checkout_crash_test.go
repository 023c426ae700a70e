package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	neturl "net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The checkout saga under kill -9 (issue 16): clients check out baskets
// (some declined, some never answered by the gateway) and move the orders
// that completed on (shipped, delivered, returned, or cancelled), while
// orderd is killed at seeded moments. After each restart, with the load
// paused, every checkout ends completed or compensated, and every SKU's
// stock is what the orders' states say it must be.
const (
	checkoutCrashCycles  = 5
	checkoutCrashClients = 6
	checkoutStockInitial = 60
	// Each cycle runs the load this long before the kill: a checkout
	// takes tens of milliseconds, a restart a second or two under -race.
	checkoutRunMin = time.Second
	checkoutRunMax = 3 * time.Second
)

var checkoutCrashSKUs = []string{"sku-a", "sku-b", "sku-c"}

type checkoutView struct {
	ID         string   `json:"id"`
	Status     string   `json:"status"`
	OrderID    string   `json:"order_id"`
	OutOfStock []string `json:"out_of_stock"`
	Steps      []struct {
		Step    string `json:"step"`
		Outcome string `json:"outcome"`
	} `json:"steps"`
}

type stockedOrder struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Items []struct {
		SKU      string `json:"sku"`
		Quantity int64  `json:"quantity"`
	} `json:"items"`
}

// checkoutLoad is the clients' record of the checkouts they sent.
type checkoutLoad struct {
	stock    int64        // each SKU's on_hand before the load
	gate     sync.RWMutex // clients hold it for reading per request; verify takes it
	mu       sync.Mutex
	sent     []string // checkout IDs, in the order they were first sent
	statuses map[int]int
	n        atomic.Int64
}

func (l *checkoutLoad) client(t *testing.T, urlOf func() string, rng *rand.Rand, c int, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		id := fmt.Sprintf("co-%d-%d", c, l.n.Add(1))
		l.mu.Lock()
		l.sent = append(l.sent, id)
		l.mu.Unlock()
		token := "tok_visa"
		switch rng.IntN(10) {
		case 0:
			token = "tok_decline"
		case 1:
			token = "tok_timeout"
		}
		var items []string
		for _, sku := range checkoutCrashSKUs {
			if rng.IntN(2) == 0 || len(items) == 0 && sku == checkoutCrashSKUs[len(checkoutCrashSKUs)-1] {
				items = append(items, fmt.Sprintf(`{"sku":%q,"quantity":%d,"unit_price":250}`, sku, 1+rng.IntN(3)))
			}
		}
		body := fmt.Sprintf(`{"id":%q,"customer_id":"cus-%d","currency":"EUR","items":[%s],"payment":{"token":%q}}`,
			id, c, strings.Join(items, ","), token)
		// A client that hears nothing retries the same checkout (the same
		// ID and body): across a crash, it gets the checkout as it ended.
		for {
			url := urlOf()
			l.gate.RLock()
			status, resp := call(t, "POST", url+"/v1/checkouts", body, nil)
			l.gate.RUnlock()
			l.mu.Lock()
			l.statuses[status]++
			l.mu.Unlock()
			if status == 0 || status >= 500 {
				if pause(stop); stopped(stop) {
					return
				}
				continue
			}
			if status == http.StatusCreated && decode[checkoutView](t, resp).Status == "completed" {
				l.moveOn(t, url, id, rng)
			}
			break
		}
	}
}

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// moveOn takes a completed checkout's order along one of its paths.
func (l *checkoutLoad) moveOn(t *testing.T, url, id string, rng *rand.Rand) {
	paths := [][]string{{}, {"Cancelled"}, {"Shipped"}, {"Shipped", "Delivered"}, {"Shipped", "Delivered", "Returned"}}
	for _, to := range paths[rng.IntN(len(paths))] {
		l.gate.RLock()
		status, _ := call(t, "POST", url+"/v1/orders/"+id+"/transitions", fmt.Sprintf(`{"to":%q}`, to), nil)
		l.gate.RUnlock()
		if status != http.StatusOK {
			return // the server went away: the order stays where the log has it
		}
	}
}

// verify waits for every checkout sent to end, then for every SKU's stock
// to be what the orders' states say. It returns the checkouts by status.
func (l *checkoutLoad) verify(t *testing.T, url string) map[string]int {
	t.Helper()
	l.mu.Lock()
	ids := append([]string(nil), l.sent...)
	l.mu.Unlock()
	byStatus := map[string]int{}
	for _, id := range ids {
		var co checkoutView
		require.Eventually(t, func() bool {
			status, body := call(t, "GET", url+"/v1/checkouts/"+id, "", nil)
			switch status {
			case http.StatusNotFound: // its first record never reached the log
				co = checkoutView{Status: "never started"}
				return true
			case http.StatusOK:
				co = checkoutView{}
				return json.Unmarshal(body, &co) == nil && (co.Status == "completed" || co.Status == "compensated")
			}
			return false
		}, roomyTimeout, 10*time.Millisecond, "checkout %s never ended: %+v", id, co)
		byStatus[co.Status]++
	}
	var last string
	require.Eventually(t, func() bool {
		want, ok := expectedStock(t, url, l.stock)
		if !ok {
			return false
		}
		got := map[string]stockView{}
		for _, sku := range checkoutCrashSKUs {
			status, body := call(t, "GET", url+"/v1/inventory/"+sku, "", nil)
			var v stockView
			if status != http.StatusOK || json.Unmarshal(body, &v) != nil {
				return false
			}
			got[sku] = stockView{OnHand: v.OnHand, Reserved: v.Reserved}
		}
		last = fmt.Sprintf("stock %v, the orders' states say %v", got, want)
		return assert.ObjectsAreEqual(want, got)
	}, roomyTimeout, 20*time.Millisecond, "stock not conserved: %s", &last)
	return byStatus
}

// expectedStock is each SKU's on_hand and reserved as the orders' states
// require: initial − shipped + returned on hand, and reserved what orders
// in Created or Paid hold. ok is false if the orders could not be listed.
func expectedStock(t *testing.T, url string, initial int64) (want map[string]stockView, ok bool) {
	want = map[string]stockView{}
	for _, sku := range checkoutCrashSKUs {
		want[sku] = stockView{OnHand: initial}
	}
	orders, ok := listStocked(t, url)
	for _, o := range orders {
		for _, it := range o.Items {
			v := want[it.SKU]
			switch o.State {
			case "Created", "Paid":
				v.Reserved += it.Quantity
			case "Shipped", "Delivered":
				v.OnHand -= it.Quantity
			}
			want[it.SKU] = v
		}
	}
	return want, ok
}

// listStocked reads every order, with its items, through the listing; ok is false if a page
// could not be read (it may be called from a poll's goroutine).
func listStocked(t *testing.T, url string) (all []stockedOrder, ok bool) {
	cursor := ""
	for {
		q := "?limit=1000"
		if cursor != "" {
			q += "&cursor=" + neturl.QueryEscape(cursor)
		}
		status, body := call(t, "GET", url+"/v1/orders"+q, "", nil)
		var page struct {
			Orders     []stockedOrder `json:"orders"`
			NextCursor string         `json:"next_cursor"`
		}
		if status != http.StatusOK || json.Unmarshal(body, &page) != nil {
			return nil, false
		}
		all = append(all, page.Orders...)
		if page.NextCursor == "" {
			return all, true
		}
		cursor = page.NextCursor
	}
}

func TestKillNineUnderCheckoutLoad(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 16))
	dataDir := t.TempDir()
	// A gateway that never answers costs a checkout this long.
	flags := []string{"--payment-gateway-timeout", "300ms"}
	srv := startServer(t, dataDir, flags...)
	for _, sku := range checkoutCrashSKUs {
		status, body := call(t, "PUT", srv.url+"/v1/inventory/"+sku, fmt.Sprintf(`{"on_hand":%d}`, checkoutStockInitial), nil)
		require.Equal(t, http.StatusOK, status, "%s", body)
	}
	load := &checkoutLoad{stock: checkoutStockInitial, statuses: map[int]int{}}
	var url atomic.Pointer[string]
	url.Store(&srv.url)
	stop := make(chan struct{})
	var clients sync.WaitGroup
	for c := range checkoutCrashClients {
		clients.Go(func() {
			load.client(t, func() string { return *url.Load() }, rand.New(rand.NewPCG(seed, uint64(c))), c, stop)
		})
	}
	for cycle := range checkoutCrashCycles {
		time.Sleep(checkoutRunMin + time.Duration(rng.Int64N(int64(checkoutRunMax-checkoutRunMin))))
		srv.stop(t, syscall.SIGKILL)
		srv = startServer(t, dataDir, flags...)
		url.Store(&srv.url)
		load.gate.Lock()
		byStatus := load.verify(t, srv.url)
		load.gate.Unlock()
		t.Logf("cycle %d: checkouts %v; stock conserved", cycle+1, byStatus)
	}
	close(stop)
	clients.Wait()
	byStatus := load.verify(t, srv.url)
	srv.stop(t, syscall.SIGTERM)
	require.Positive(t, byStatus["completed"])
	t.Logf("%d kill -9 cycles; checkouts %v; answers %v", checkoutCrashCycles, byStatus, load.statuses)
}
