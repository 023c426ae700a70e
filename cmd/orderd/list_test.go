package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listPage is GET /v1/orders's body.
type listPage struct {
	Orders     []json.RawMessage `json:"orders"`
	NextCursor *string           `json:"next_cursor"`
}

type listedOrder struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

// listAll pages through GET /v1/orders?query with next_cursor and returns
// the orders' bodies and IDs in the order they came.
func listAll(t testing.TB, base, query string) (bodies []string, ids []string) {
	t.Helper()
	target := base + "/v1/orders?" + query
	for {
		r := e2eDo(t, "GET", target, "")
		require.Equal(t, http.StatusOK, r.status, "GET %s: %s", target, r.body)
		var page listPage
		require.NoError(t, json.Unmarshal(r.body, &page))
		for _, raw := range page.Orders {
			var o listedOrder
			require.NoError(t, json.Unmarshal(raw, &o))
			bodies, ids = append(bodies, string(raw)), append(ids, o.ID)
		}
		if page.NextCursor == nil {
			return bodies, ids
		}
		target = base + "/v1/orders?" + query + "&cursor=" + url.QueryEscape(*page.NextCursor)
	}
}

// listCustomers are the customers of the orders these tests create.
var listCustomers = []string{"cust-0", "cust-1", "cust-2"}

// createListed creates an order for customer, with an item, and moves it
// along path; it returns the order's final state.
func createListed(t testing.TB, base, id, customer string, path ...string) string {
	t.Helper()
	body := fmt.Sprintf(`{"id":%q,"customer_id":%q,"currency":"EUR","items":[{"sku":"sku-1","quantity":1,"unit_price":250}]}`, id, customer)
	r := e2eDo(t, "POST", base+"/v1/orders", body)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	state := "Created"
	for _, to := range path {
		r = e2eDo(t, "POST", base+"/v1/orders/"+id+"/transitions", fmt.Sprintf(`{"to":%q,"metadata":{"step":%q}}`, to, to))
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		state = to
	}
	return state
}

var listPaths = [][]string{nil, {"Paid"}, {"Paid", "Shipped"}, {"Cancelled"}, {"Paid", "Shipped", "Delivered", "Returned"}}

// TestListingEndToEnd runs orderd in-process with orders leaving memory
// within a fraction of a second: a listing shows a client its own writes at
// once (no polling), lists evicted orders exactly as GET shows them, pages
// stably and completely while writers create and move orders, and lists the
// same after a restart.
func TestListingEndToEnd(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 16))
	dataDir := t.TempDir()
	flags := []string{"--evict-after", "200ms", "--idle-actor-timeout", "100ms"}
	m, base := e2eStartMain(t, dataDir, flags...)

	var ids []string
	for i := range 60 {
		id := fmt.Sprintf("list-%03d", rng.IntN(1000)*1000+i)
		customer := listCustomers[i%len(listCustomers)]
		state := createListed(t, base, id, customer, listPaths[rng.IntN(len(listPaths))]...)
		ids = append(ids, id)
		// Its own write, listed at once under its new state.
		_, got := listAll(t, base, "state="+state+"&customer_id="+customer+"&limit=3")
		require.Contains(t, got, id, "seed %d: a listing begun after the 200 shows the order in %s", seed, state)
	}
	slices.Sort(ids)

	require.Eventually(t, func() bool {
		return sample(t, scrape(t, base), "orderd_orders_evicted_total") >= float64(len(ids))
	}, e2eTimeout, 20*time.Millisecond, "the orders leave memory")
	bodies, listed := listAll(t, base, "limit=7")
	require.Equal(t, ids, listed, "seed %d: every order, evicted ones included, once, in ID order", seed)
	for i, id := range listed {
		r := e2eDo(t, "GET", base+"/v1/orders/"+id, "")
		require.Equal(t, string(r.body), bodies[i], "listed exactly as GET shows it")
	}
	for _, customer := range listCustomers {
		_, got := listAll(t, base, "customer_id="+customer)
		require.Len(t, got, len(ids)/len(listCustomers))
	}

	checkStableUnderWrites(t, base, ids, seed)

	before, _ := listAll(t, base, "limit=1000")
	require.NoError(t, m.Close())
	_, base = e2eStartMain(t, dataDir, flags...)
	after, _ := listAll(t, base, "limit=1000")
	require.Equal(t, before, after, "the listing after a restart")
}

// checkStableUnderWrites pages through every order, a few times, while two
// writers create orders and move existing ones: each order that existed
// before the paging began is listed exactly once, and IDs only ascend.
func checkStableUnderWrites(t *testing.T, base string, existing []string, seed uint64) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	writes := 0
	for w := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// New orders land before and after the cursor; the
				// existing ones change state under the listing.
				id := fmt.Sprintf("list-%03d-w%d-%d", rng.IntN(1000), w, i)
				body := fmt.Sprintf(`{"id":%q,"customer_id":%q}`, id, listCustomers[rng.IntN(len(listCustomers))])
				r := e2eDo(t, "POST", base+"/v1/orders", body)
				assert.Equal(t, http.StatusCreated, r.status, "%s", r.body)
				old := existing[rng.IntN(len(existing))]
				to := []string{"Paid", "Shipped", "Delivered", "Returned", "Cancelled"}[rng.IntN(5)]
				_ = e2eDo(t, "POST", base+"/v1/orders/"+old+"/transitions", fmt.Sprintf(`{"to":%q}`, to))
				mu.Lock()
				writes++
				mu.Unlock()
			}
		})
	}
	for round := range 3 {
		_, got := listAll(t, base, fmt.Sprintf("limit=%d", 2+round*5))
		seen := map[string]int{}
		for i, id := range got {
			if i > 0 {
				require.Less(t, got[i-1], id, "seed %d: IDs ascend across pages", seed)
			}
			seen[id]++
		}
		for _, id := range existing {
			require.Equal(t, 1, seen[id], "seed %d: %s existed before the listing", seed, id)
		}
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return writes > 0
	}, e2eTimeout, 5*time.Millisecond)
	close(stop)
	wg.Wait()
}
