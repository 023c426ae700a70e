package http

import (
	"context"
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// withContents answers a create as the actors would: the order carries
// what the command ordered, with its total.
func withContents(_ context.Context, cmd order.Command) (order.Order, error) {
	o := applied(cmd)
	if cmd.Kind == order.CommandCreate && (cmd.Items != nil || cmd.CustomerID != "" || cmd.Metadata != nil) {
		total, err := order.Total(cmd.Items)
		if err != nil {
			return order.Order{}, err
		}
		o.Contents = &order.Contents{CustomerID: cmd.CustomerID, Currency: cmd.Currency, Items: cmd.Items, Total: total, Metadata: cmd.Metadata}
	}
	return o, nil
}

func TestCreateWithContents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeService{ExecuteFn: withContents}, Config{})
	body := `{"id":"o-1","customer_id":"cus-42","currency":"EUR",
		"items":[{"sku":"mug-blue","quantity":2,"unit_price":1250},{"unit_price":499,"sku":"tea","quantity":1}],
		"metadata":{"channel":"web","note":"gift \u2713"}}`
	r := h.do("POST", "/v1/orders", body)
	require.Equal(t, nethttp.StatusCreated, r.status, "body: %s", r.body)
	assert.JSONEq(t, `{"id":"o-1","state":"Created","version":1,"created_at":"2026-11-05T10:00:00.123456789Z",
		"updated_at":"2026-11-05T10:00:00.123456789Z","customer_id":"cus-42","currency":"EUR",
		"items":[{"sku":"mug-blue","quantity":2,"unit_price":1250},{"sku":"tea","quantity":1,"unit_price":499}],
		"total":2999,"metadata":{"channel":"web","note":"gift ✓"}}`, string(r.body))

	cmds := h.svc.received()
	require.Len(t, cmds, 1)
	assert.Equal(t, "cus-42", cmds[0].CustomerID)
	assert.Equal(t, "EUR", cmds[0].Currency)
	assert.Equal(t, []order.Item{{SKU: "mug-blue", Quantity: 2, UnitPrice: 1250}, {SKU: "tea", Quantity: 1, UnitPrice: 499}}, cmds[0].Items)
	assert.Equal(t, map[string]string{"channel": "web", "note": "gift ✓"}, cmds[0].Metadata)

	// Null is absent, as for every member; an empty metadata object adds nothing.
	r = h.do("POST", "/v1/orders", `{"id":"o-2","customer_id":null,"currency":null,"items":null,"metadata":{}}`)
	require.Equal(t, nethttp.StatusCreated, r.status, "body: %s", r.body)
	cmd := h.svc.received()[1]
	assert.True(t, cmd.CustomerID == "" && cmd.Currency == "" && cmd.Items == nil && cmd.Metadata == nil, "%+v", cmd)
}

func TestTransitionWithMetadata(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeService{}, Config{})
	r := h.do("POST", "/v1/orders/o-1/transitions", `{"to":"Shipped","metadata":{"tracking_number":"00340434","carrier":"DHL"}}`)
	require.Equal(t, nethttp.StatusOK, r.status, "body: %s", r.body)
	assert.Equal(t, map[string]string{"tracking_number": "00340434", "carrier": "DHL"}, h.svc.received()[0].Metadata)
}

// TestContentsRefused: every bound and every malformed shape is a 400 that
// names the member, and nothing reaches the actors.
func TestContentsRefused(t *testing.T) {
	t.Parallel()
	item := `{"sku":"a","quantity":1,"unit_price":5}`
	items := func(last string) string { return `[` + item + `,` + item + `,` + item + `,` + last + `]` }
	create := func(members string) string { return `{"id":"o-1",` + members + `}` }
	many := strings.TrimSuffix(strings.Repeat(item+",", order.ItemsMax+1), ",")
	keys := func(n, valueLen int) string {
		pairs := make([]string, n)
		for i := range pairs {
			pairs[i] = fmt.Sprintf(`"k%02d":%q`, i, strings.Repeat("v", valueLen))
		}
		return `{` + strings.Join(pairs, ",") + `}`
	}
	tests := []struct {
		name, path, body, field string
	}{
		{"items without currency", "", create(`"items":[` + item + `]`), "currency"},
		{"currency without items", "", create(`"currency":"EUR"`), "items"},
		{"no items", "", create(`"currency":"EUR","items":[]`), "items"},
		{"too many items", "", create(`"currency":"EUR","items":[` + many + `]`), "items"},
		{"items not an array", "", create(`"currency":"EUR","items":{"sku":"a"}`), "items"},
		{"an item not an object", "", create(`"currency":"EUR","items":[` + item + `,"a"]`), "items[1]"},
		{"sku missing", "", create(`"currency":"EUR","items":` + items(`{"quantity":1,"unit_price":5}`)), "items[3].sku"},
		{"quantity missing", "", create(`"currency":"EUR","items":` + items(`{"sku":"a","unit_price":5}`)), "items[3].quantity"},
		{"price missing", "", create(`"currency":"EUR","items":` + items(`{"sku":"a","quantity":1}`)), "items[3].unit_price"},
		{"unknown item member", "", create(`"currency":"EUR","items":` + items(`{"sku":"a","quantity":1,"unit_price":5,"name":"x"}`)), "items[3].name"},
		{"mis-cased item member", "", create(`"currency":"EUR","items":` + items(`{"SKU":"a","quantity":1,"unit_price":5}`)), "items[3].SKU"},
		{"repeated item member", "", create(`"currency":"EUR","items":` + items(`{"sku":"a","sku":"b","quantity":1,"unit_price":5}`)), "items[3].sku"},
		{"empty sku", "", create(`"currency":"EUR","items":` + items(`{"sku":"","quantity":1,"unit_price":5}`)), "items[3].sku"},
		{"long sku", "", create(`"currency":"EUR","items":` + items(`{"sku":"`+strings.Repeat("s", order.SKULenMax+1)+`","quantity":1,"unit_price":5}`)), "items[3].sku"},
		{"sku with a slash", "", create(`"currency":"EUR","items":` + items(`{"sku":"a/b","quantity":1,"unit_price":5}`)), "items[3].sku"},
		{"sku a number", "", create(`"currency":"EUR","items":` + items(`{"sku":7,"quantity":1,"unit_price":5}`)), "items[3].sku"},
		{"quantity 0", "", create(`"currency":"EUR","items":` + items(`{"sku":"a","quantity":0,"unit_price":5}`)), "items[3].quantity"},
		{"quantity negative", "", create(`"currency":"EUR","items":` + items(`{"sku":"a","quantity":-1,"unit_price":5}`)), "items[3].quantity"},
		{"quantity too large", "", create(`"currency":"EUR","items":` + items(`{"sku":"a","quantity":10001,"unit_price":5}`)), "items[3].quantity"},
		{"quantity a fraction", "", create(`"currency":"EUR","items":` + items(`{"sku":"a","quantity":1.5,"unit_price":5}`)), "items[3].quantity"},
		{"quantity an exponent", "", create(`"currency":"EUR","items":` + items(`{"sku":"a","quantity":1e2,"unit_price":5}`)), "items[3].quantity"},
		{"quantity a string", "", create(`"currency":"EUR","items":` + items(`{"sku":"a","quantity":"1","unit_price":5}`)), "items[3].quantity"},
		{"quantity beyond 64 bits", "", create(`"currency":"EUR","items":` + items(`{"sku":"a","quantity":99999999999999999999,"unit_price":5}`)), "items[3].quantity"},
		{"price negative", "", create(`"currency":"EUR","items":` + items(`{"sku":"a","quantity":1,"unit_price":-1}`)), "items[3].unit_price"},
		{"price too large", "", create(`"currency":"EUR","items":` + items(`{"sku":"a","quantity":1,"unit_price":1000000000001}`)), "items[3].unit_price"},
		{"price null", "", create(`"currency":"EUR","items":` + items(`{"sku":"a","quantity":1,"unit_price":null}`)), "items[3].unit_price"},
		{"lowercase currency", "", create(`"currency":"eur","items":[` + item + `]`), "currency"},
		{"two-letter currency", "", create(`"currency":"EU","items":[` + item + `]`), "currency"},
		{"currency a number", "", create(`"currency":978,"items":[` + item + `]`), "currency"},
		{"mis-cased member", "", create(`"Currency":"EUR","items":[` + item + `]`), "Currency"},
		{"repeated member", "", create(`"currency":"EUR","currency":"EUR","items":[` + item + `]`), "currency"},
		{"empty customer", "", create(`"customer_id":""`), "customer_id"},
		{"long customer", "", create(`"customer_id":"` + strings.Repeat("c", order.CustomerIDLenMax+1) + `"`), "customer_id"},
		{"customer with a space", "", create(`"customer_id":"a b"`), "customer_id"},
		{"metadata not an object", "", create(`"metadata":["a"]`), "metadata"},
		{"metadata a string", "/v1/orders/o-1/transitions", `{"to":"Paid","metadata":"x"}`, "metadata"},
		{"too many keys", "", create(`"metadata":` + keys(order.MetadataKeysMax+1, 1)), "metadata"},
		{"too many bytes", "/v1/orders/o-1/transitions", `{"to":"Paid","metadata":` + keys(9, order.MetadataValueLenMax) + `}`, "metadata"},
		{"long value", "/v1/orders/o-1/transitions", `{"to":"Paid","metadata":{"note":"` + strings.Repeat("v", order.MetadataValueLenMax+1) + `"}}`, "metadata.note"},
		{"value a number", "/v1/orders/o-1/transitions", `{"to":"Paid","metadata":{"note":1}}`, "metadata.note"},
		{"value null", "", create(`"metadata":{"note":null}`), "metadata.note"},
		{"value an object", "", create(`"metadata":{"note":{"a":"b"}}`), "metadata.note"},
		{"repeated key", "/v1/orders/o-1/transitions", `{"to":"Paid","metadata":{"k":"a","k":"b"}}`, "metadata.k"},
		{"empty key", "", create(`"metadata":{"":"v"}`), "metadata"},
		{"long key", "", create(`"metadata":{"` + strings.Repeat("k", order.MetadataKeyLenMax+1) + `":"v"}`), "metadata"},
		{"key with a space", "", create(`"metadata":{"a b":"v"}`), "metadata"},
		{"metadata on a reschedule", "/v1/orders/o-1/payment-deadline", `{"extend":"10m","metadata":{"k":"v"}}`, "metadata"},
	}
	h := newHarness(t, &fakeService{}, Config{})
	for _, tt := range tests {
		path := tt.path
		if path == "" {
			path = "/v1/orders"
		}
		r := h.do("POST", path, tt.body)
		if !assert.Equal(t, nethttp.StatusBadRequest, r.status, "%s: %s", tt.name, r.body) {
			continue
		}
		p := requireProblem(t, r, nethttp.StatusBadRequest, "bad-request")
		assert.Equal(t, tt.field, p["field"], "%s: %s", tt.name, p["detail"])
	}
	h.requireNothingApplied()
}

// At every bound at once, a create is accepted.
func TestContentsAtTheirBounds(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeService{ExecuteFn: withContents}, Config{})
	items := make([]string, order.ItemsMax)
	for i := range items {
		items[i] = fmt.Sprintf(`{"sku":%q,"quantity":%d,"unit_price":%d}`, strings.Repeat("s", order.SKULenMax), order.QuantityMax, order.UnitPriceMax)
	}
	md := make([]string, order.MetadataKeysMax)
	for i := range md {
		// Every character escaped: the body's size bound must allow it.
		md[i] = fmt.Sprintf(`"%0*d":"%s"`, order.MetadataKeyLenMax, i, strings.Repeat(`\u0001`, order.MetadataBytesMax/order.MetadataKeysMax-order.MetadataKeyLenMax))
	}
	body := fmt.Sprintf(`{"customer_id":%q,"currency":"EUR","items":[%s],"metadata":{%s}}`,
		strings.Repeat("c", order.CustomerIDLenMax), strings.Join(items, ",\n  "), strings.Join(md, ",\n  "))
	require.Less(t, len(body), DefaultBodyLimit)
	r := h.do("POST", "/v1/orders", body)
	require.Equal(t, nethttp.StatusCreated, r.status, "body: %.300s", r.body)
	var o struct{ Total int64 }
	require.NoError(t, json.Unmarshal(r.body, &o))
	assert.Equal(t, int64(order.ItemsMax*order.QuantityMax*order.UnitPriceMax), o.Total)
}

// The history shows what each event recorded: the creation's contents and
// every event's own metadata.
func TestHistoryShowsContents(t *testing.T) {
	t.Parallel()
	events := []order.Event{
		{EventID: "e1", OrderID: "o-1", Version: 1, To: order.Created, At: t0, CustomerID: "c", Currency: "EUR",
			Items: []order.Item{{SKU: "a", Quantity: 2, UnitPrice: 0}}, Total: 0, Metadata: map[string]string{"k": "v"}},
		{EventID: "e2", OrderID: "o-1", Version: 2, From: order.Created, To: order.Paid, At: t0},
		{EventID: "e3", OrderID: "o-1", Version: 3, From: order.Paid, To: order.Shipped, At: t0, Metadata: map[string]string{"tracking_number": "0034"}},
	}
	h := newHarness(t, &fakeService{HistoryFn: func(context.Context, string) ([]order.Event, error) { return events, nil }}, Config{})
	r := h.do("GET", "/v1/orders/o-1/history", "")
	require.Equal(t, nethttp.StatusOK, r.status, "body: %s", r.body)
	var body struct{ Transitions []map[string]any }
	require.NoError(t, json.Unmarshal(r.body, &body))
	require.Len(t, body.Transitions, 3)
	first := body.Transitions[0]
	assert.Equal(t, "c", first["customer_id"])
	assert.Equal(t, "EUR", first["currency"])
	assert.Equal(t, []any{map[string]any{"sku": "a", "quantity": float64(2), "unit_price": float64(0)}}, first["items"])
	assert.Equal(t, float64(0), first["total"], "a total of 0 is shown")
	assert.Equal(t, map[string]any{"k": "v"}, first["metadata"])
	assert.NotContains(t, body.Transitions[1], "metadata")
	assert.NotContains(t, body.Transitions[1], "items")
	assert.Equal(t, map[string]any{"tracking_number": "0034"}, body.Transitions[2]["metadata"])
}

// createOracle is a create body as encoding/json reads it.
type createOracle struct {
	ID             *string `json:"id"`
	PaymentTimeout *string `json:"payment_timeout"`
	CustomerID     *string `json:"customer_id"`
	Currency       *string `json:"currency"`
	Items          []struct {
		SKU       *string `json:"sku"`
		Quantity  *int64  `json:"quantity"`
		UnitPrice *int64  `json:"unit_price"`
	} `json:"items"`
	Metadata map[string]*string `json:"metadata"`
}

// FuzzCreateContents: whatever create body is accepted, encoding/json
// reads the same contents from it (strictly: unknown members refused), and
// they are within their bounds. The body decoder itself is FuzzDecodeObject's.
func FuzzCreateContents(f *testing.F) {
	f.Add(`{"id":"o-1","customer_id":"c-1","currency":"EUR","items":[{"sku":"a","quantity":2,"unit_price":5}],"metadata":{"k":"v"}}`)
	f.Add(`{"currency":"EUR","items":[{"unit_price":0,"sku":"b","quantity":10000}, {"sku":"c","quantity":1,"unit_price":1}]}`)
	f.Add(`{"metadata":{"a":"\u00e9","b":""},"items":null}`)
	f.Add(`{"items":[{"sku":"a","quantity":1.0,"unit_price":5}],"currency":"EUR"}`)
	f.Fuzz(func(t *testing.T, body string) {
		req, err := parseCreateBody([]byte(body))
		if err != nil {
			return
		}
		dec := json.NewDecoder(strings.NewReader(body))
		dec.DisallowUnknownFields()
		var want createOracle
		if isBlank([]byte(body)) {
			return
		}
		require.NoError(t, dec.Decode(&want), "encoding/json refuses what was accepted")
		c := req.Contents
		require.NoError(t, order.CheckOrderContents(c.customerID, c.currency, c.items))
		require.NoError(t, order.CheckMetadata(req.Metadata))
		if want.CustomerID != nil {
			require.Equal(t, *want.CustomerID, c.customerID)
		}
		if want.Currency != nil {
			require.Equal(t, *want.Currency, c.currency)
		}
		require.Len(t, c.items, len(want.Items))
		for i, it := range want.Items {
			require.Equal(t, order.Item{SKU: *it.SKU, Quantity: *it.Quantity, UnitPrice: *it.UnitPrice}, c.items[i])
		}
		require.Len(t, req.Metadata, len(want.Metadata))
		for k, v := range want.Metadata {
			require.Equal(t, *v, req.Metadata[k])
		}
	})
}
