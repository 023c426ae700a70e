package http

import (
	"context"
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/order"
)

// listedOrders are what the fake lister holds: every kind of order GET can
// show (a deadline, items, metadata, none of them), in ID order.
var listedOrders = []order.Order{
	{ID: "a-1", State: order.Created, Version: 1, CreatedAt: t0, UpdatedAt: t0, PaymentDueAt: t0.Add(time.Hour),
		Contents: &order.Contents{CustomerID: "cust-1", Currency: "EUR", Items: []order.Item{{SKU: "sku-1", Quantity: 2, UnitPrice: 150}}, Total: 300}},
	{ID: "b-2", State: order.Paid, Version: 2, CreatedAt: t0, UpdatedAt: t0.Add(time.Second)},
	{ID: "c-3", State: order.Shipped, Version: 3, CreatedAt: t0, UpdatedAt: t0.Add(2 * time.Second),
		Contents: &order.Contents{CustomerID: "cust-1", Metadata: map[string]string{"tracking_number": "0034", "note": "<&> \u2028"}}},
	{ID: "d-4", State: order.Paid, Version: 2, CreatedAt: t0, UpdatedAt: t0.Add(time.Second),
		Contents: &order.Contents{CustomerID: "cust-2"}},
}

// listingService answers List from listedOrders, as the store would, and
// GET from the same orders; it records the queries it was asked.
func listingService() (*fakeService, func() []order.ListQuery) {
	var mu sync.Mutex
	var asked []order.ListQuery
	svc := &fakeService{
		ListFn: func(_ context.Context, q order.ListQuery) (order.ListPage, error) {
			mu.Lock()
			asked = append(asked, q)
			mu.Unlock()
			page := order.ListPage{Orders: []order.Order{}}
			for _, o := range listedOrders {
				customer := ""
				if o.Contents != nil {
					customer = o.Contents.CustomerID
				}
				if o.ID <= q.After || (q.State != 0 && o.State != q.State) || (q.CustomerID != "" && customer != q.CustomerID) {
					continue
				}
				if len(page.Orders) == q.Limit {
					page.More = true
					break
				}
				page.Orders = append(page.Orders, o)
			}
			return page, nil
		},
		GetFn: func(_ context.Context, id string) (order.Order, error) {
			for _, o := range listedOrders {
				if o.ID == id {
					return o, nil
				}
			}
			return order.Order{}, order.ErrOrderNotFound
		},
	}
	return svc, func() []order.ListQuery {
		mu.Lock()
		defer mu.Unlock()
		return append([]order.ListQuery(nil), asked...)
	}
}

type listBody struct {
	Orders     []json.RawMessage `json:"orders"`
	NextCursor *string           `json:"next_cursor"`
}

// pageThrough lists with query until the last page, and returns the IDs
// and the pages' sizes.
func pageThrough(t *testing.T, h *harness, query string) (ids []string, pages []int) {
	t.Helper()
	target := "/v1/orders?" + query
	for range 10 {
		r := h.do("GET", target, "")
		require.Equal(t, nethttp.StatusOK, r.status, "body: %s", r.body)
		require.Equal(t, "application/json", r.header.Get("Content-Type"))
		var body listBody
		require.NoError(t, json.Unmarshal(r.body, &body))
		require.NotNil(t, body.Orders, "orders is [] on an empty page, never null: %s", r.body)
		for _, raw := range body.Orders {
			var o struct{ ID string }
			require.NoError(t, json.Unmarshal(raw, &o))
			// Each order exactly as GET shows it, byte for byte.
			got := h.do("GET", "/v1/orders/"+o.ID, "")
			require.Equal(t, string(got.body), string(raw))
			ids = append(ids, o.ID)
		}
		pages = append(pages, len(body.Orders))
		if body.NextCursor == nil {
			return ids, pages
		}
		require.NotEmpty(t, body.Orders)
		target = "/v1/orders?" + query + "&cursor=" + url.QueryEscape(*body.NextCursor)
	}
	t.Fatal("more pages than orders")
	return nil, nil
}

func TestListOrdersPagesAndFilters(t *testing.T) {
	t.Parallel()
	svc, asked := listingService()
	h := newHarness(t, svc, Config{})

	ids, pages := pageThrough(t, h, "limit=1")
	assert.Equal(t, []string{"a-1", "b-2", "c-3", "d-4"}, ids)
	assert.Equal(t, []int{1, 1, 1, 1}, pages, "next_cursor is absent on the last page")
	ids, pages = pageThrough(t, h, "limit=4")
	assert.Equal(t, []string{"a-1", "b-2", "c-3", "d-4"}, ids)
	assert.Equal(t, []int{4}, pages)
	ids, _ = pageThrough(t, h, "state=Paid&limit=1")
	assert.Equal(t, []string{"b-2", "d-4"}, ids)
	ids, _ = pageThrough(t, h, "customer_id=cust-1&limit=1")
	assert.Equal(t, []string{"a-1", "c-3"}, ids)
	ids, _ = pageThrough(t, h, "customer_id=cust-1&state=Shipped")
	assert.Equal(t, []string{"c-3"}, ids)
	ids, pages = pageThrough(t, h, "state=Returned")
	assert.Empty(t, ids)
	assert.Equal(t, []int{0}, pages)

	queries := asked()
	assert.Equal(t, order.ListQuery{Limit: 1}, queries[0])
	assert.Equal(t, order.ListQuery{Limit: 1, After: "a-1"}, queries[1])
	r := h.do("GET", "/v1/orders", "")
	require.Equal(t, nethttp.StatusOK, r.status)
	assert.Equal(t, order.ListQuery{Limit: order.ListLimitDefault}, asked()[len(asked())-1], "limit defaults to 100")
	r = h.do("GET", "/v1/orders?limit=1000&state=Cancelled&customer_id=x", "")
	require.Equal(t, nethttp.StatusOK, r.status)
	assert.Equal(t, order.ListQuery{Limit: order.ListLimitMax, State: order.Cancelled, CustomerID: "x"}, asked()[len(asked())-1])
	r = h.do("HEAD", "/v1/orders?state=Paid", "")
	require.Equal(t, nethttp.StatusOK, r.status)
}

func TestListOrdersRefusesBadParameters(t *testing.T) {
	t.Parallel()
	svc, asked := listingService()
	h := newHarness(t, svc, Config{})
	paid := encodeCursor(cursor{state: order.Paid, after: "b-2"})
	cases := []struct{ query, field string }{
		{"state=paid", "state"},
		{"state=", "state"},
		{"state=Paid&state=Paid", "state"},
		{"limit=0", "limit"},
		{"limit=-1", "limit"},
		{"limit=1001", "limit"},
		{"limit=abc", "limit"},
		{"limit=01", "limit"},
		{"limit=1.5", "limit"},
		{"limit=", "limit"},
		{"limit=99999999999999999999999", "limit"},
		{"customer_id=", "customer_id"},
		{"customer_id=a%20b", "customer_id"},
		{"customer_id=" + strings.Repeat("c", order.CustomerIDLenMax+1), "customer_id"},
		{"cursor=", "cursor"},
		{"cursor=not-a-cursor", "cursor"},
		{"cursor=" + paid + "%3D", "cursor"},
		{"cursor=" + strings.Repeat("A", cursorLenMax+1), "cursor"},
		{"cursor=" + paid, "cursor"}, // made for state=Paid
		{"state=Shipped&cursor=" + paid, "cursor"},
		{"state=Paid&customer_id=c&cursor=" + paid, "cursor"},
		{"status=Paid", "status"},
		{"state=Paid&Limit=5", "Limit"},
	}
	for _, c := range cases {
		r := h.do("GET", "/v1/orders?"+c.query, "")
		p := requireProblem(t, r, nethttp.StatusBadRequest, "bad-request")
		assert.Equal(t, c.field, p["field"], "%s: %s", c.query, r.body)
	}
	assert.Empty(t, asked(), "a refused listing reads nothing")
	r := h.do("GET", "/v1/orders?state=Paid&cursor="+paid, "")
	require.Equal(t, nethttp.StatusOK, r.status, "the cursor with its own filter: %s", r.body)
	assert.Equal(t, []order.ListQuery{{State: order.Paid, After: "b-2", Limit: order.ListLimitDefault}}, asked())
}

func TestListOrdersErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err        error
		status     int
		code       string
		retryAfter string
	}{
		{fmt.Errorf("waited: %w", order.ErrStoreBehind), 503, "store-behind", "1"},
		{fmt.Errorf("%w: listing orders needs the state store", actors.ErrNotReady), 503, "not-ready", "5"},
		{fmt.Errorf("waiting: %w", context.DeadlineExceeded), 503, "busy", "1"},
		{fmt.Errorf("%w: damaged", order.ErrStoreUnusable), 500, "internal-error", ""},
	}
	for _, c := range cases {
		h := newHarness(t, &fakeService{ListFn: func(context.Context, order.ListQuery) (order.ListPage, error) {
			return order.ListPage{}, c.err
		}}, Config{})
		r := h.do("GET", "/v1/orders", "")
		requireProblem(t, r, c.status, c.code)
		assert.Equal(t, c.retryAfter, r.header.Get("Retry-After"), c.code)
	}
	h := newHarness(t, &fakeService{ReadyFn: func() error { return actors.ErrNotReady }}, Config{})
	requireProblem(t, h.do("GET", "/v1/orders", ""), 503, "not-ready")
}

// TestListOrdersIsNotForwarded: in a cluster every node lists from its own
// store, which follows every partition, so a listing is answered where it
// arrives even when another node serves every partition.
func TestListOrdersIsNotForwarded(t *testing.T) {
	t.Parallel()
	fc := &fakeCluster{}
	var listed sync.Map
	setup := func(name string) func(*fakeService) {
		return func(svc *fakeService) {
			svc.ListFn = func(_ context.Context, q order.ListQuery) (order.ListPage, error) {
				listed.Store(name, true)
				return order.ListPage{Orders: []order.Order{{ID: "o-" + name, State: order.Paid, Version: 2, CreatedAt: t0, UpdatedAt: t0}}}, nil
			}
		}
	}
	entry, owner := newNode(t, fc, 1, Config{}, setup("entry")), newNode(t, fc, 2, Config{}, setup("owner"))
	fc.ownAll(owner.url)

	r := entry.do("GET", "/v1/orders?state=Paid", "", clusterAuth...)
	require.Equal(t, nethttp.StatusOK, r.status, "body: %s", r.body)
	assert.Contains(t, string(r.body), `"id":"o-entry"`)
	_, ownerListed := listed.Load("owner")
	assert.False(t, ownerListed, "the listing was forwarded")
	for p := range clusterPartitions {
		assert.False(t, entry.router.wasAsked(p), "the listing asked who owns partition %d", p)
	}
	requireForwards(t, entry, "ok", 0)
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range []cursor{
		{after: "a"},
		{state: order.Returned, after: "01M844TMKNF7B9WX3ME2C0XM4V"},
		{customerID: strings.Repeat("~", order.CustomerIDLenMax), state: order.Paid, after: strings.Repeat("z", order.IDLenMax)},
	} {
		s := encodeCursor(c)
		assert.LessOrEqual(t, len(s), cursorLenMax)
		got, ok := decodeCursor(s)
		require.True(t, ok, "%+v", c)
		assert.Equal(t, c, got)
	}
}

// FuzzDecodeCursor: a cursor from a client is read without panicking or
// looking beyond it, and one that is accepted is the one that makes it.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(cursor{after: "order-1"}))
	f.Add(encodeCursor(cursor{state: order.Paid, customerID: "cust-1", after: "01M844TMKNF7B9WX3ME2C0XM4V"}))
	f.Add("AQIAAA")
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := decodeCursor(s)
		if !ok {
			return
		}
		require.Equal(t, s, encodeCursor(c), "one cursor, one spelling")
		require.NoError(t, order.ValidateID(c.after))
	})
}
