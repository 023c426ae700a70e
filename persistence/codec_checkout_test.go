package persistence

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// checkoutEvents are the codec test events: a start, one record of each
// form a step takes, and texts that need escaping.
func checkoutEvents() map[string]order.CheckoutEvent {
	step := func(version uint64, s order.CheckoutStep, o order.StepOutcome, detail string) order.CheckoutEvent {
		return order.CheckoutEvent{EventID: "01JCO", CheckoutID: "co-1", Version: version, At: invAt, Step: s, Outcome: o, Detail: detail}
	}
	authorized := step(4, order.StepAuthorize, order.StepSucceeded, "authorization au_1")
	authorized.AuthorizationID = "au_1"
	lacking := step(2, order.StepReserve, order.StepFailed, "out of stock: mug, tea")
	lacking.OutOfStock = []string{"mug", "tea"}
	escapes := step(3, order.StepCreateOrder, order.StepFailed, "a\"b\\c\nünïcode\x01")
	return map[string]order.CheckoutEvent{
		"Start": {EventID: "01JCO", CheckoutID: "co-1", Version: 1, At: invAt, OrderID: "o-1", CustomerID: "cus-1",
			Currency: "EUR", Items: []order.Item{{SKU: "mug", Quantity: 2, UnitPrice: 500}, {SKU: "tea", Quantity: 1, UnitPrice: 0}},
			Total: 1000, IdempotencyKey: "k-1", RequestDigest: testDigest, Principal: "alice", RequestID: "r-1"},
		"StartBare": {EventID: "e", CheckoutID: "c", Version: 1, At: invAt, OrderID: "c", CustomerID: "u",
			Currency: "EUR", Items: []order.Item{{SKU: "s", Quantity: 1, UnitPrice: 1}}, Total: 1},
		"Reserved":   step(2, order.StepReserve, order.StepSucceeded, "2 SKUs reserved"),
		"Lacking":    lacking,
		"Authorized": authorized,
		"Paid":       step(5, order.StepPay, order.StepSucceeded, ""),
		"Skipped":    step(6, order.StepCancelOrder, order.StepSkipped, ""),
		"Escapes":    escapes,
	}
}

func TestCheckoutRoundTrip(t *testing.T) {
	for name, ev := range checkoutEvents() {
		t.Run(name, func(t *testing.T) {
			rec, err := EncodeCheckout(ev)
			require.NoError(t, err)
			assert.True(t, IsCheckoutKey(rec.Key))
			assert.False(t, IsInventoryKey(rec.Key))
			got, err := DecodeCheckout(rec.Key, rec.Value)
			require.NoError(t, err)
			assert.Equal(t, ev, got)
			// The other decoders refuse it: readers skip checkout
			// records by their key before decoding.
			_, err = DecodeEvent(rec.Key, rec.Value)
			assert.ErrorIs(t, err, ErrInvalidRecord)
			_, err = DecodeInventory(rec.Key, rec.Value)
			assert.ErrorIs(t, err, ErrInvalidRecord)
		})
	}
}

// TestCheckoutGoldenRecords pins the records' bytes: consumers read them.
func TestCheckoutGoldenRecords(t *testing.T) {
	rec, err := EncodeCheckout(checkoutEvents()["Start"])
	require.NoError(t, err)
	assert.Equal(t, "checkout:co-1", string(rec.Key))
	assert.Equal(t, `{"event_id":"01JCO","checkout_id":"co-1","version":1,"at":"2026-12-06T10:30:00.123456789Z",`+
		`"order_id":"o-1","customer_id":"cus-1","currency":"EUR","items":[{"sku":"mug","quantity":2,"unit_price":500},{"sku":"tea","quantity":1,"unit_price":0}],`+
		`"total":1000,"idempotency_key":"k-1","request_digest":"`+testDigest+`","principal":"alice","request_id":"r-1"}`,
		string(rec.Value))
	var headers []string
	for _, h := range rec.Headers {
		headers = append(headers, h.Key+"="+string(h.Value))
	}
	assert.Equal(t, []string{
		"ce_specversion=1.0", "ce_id=01JCO", "ce_source=orderd", "ce_type=orderd.checkout.stepped",
		"ce_subject=co-1", "ce_time=2026-12-06T10:30:00.123456789Z", "content-type=application/json",
	}, headers)

	for name, want := range map[string]string{
		"Authorized": `{"event_id":"01JCO","checkout_id":"co-1","version":4,"at":"2026-12-06T10:30:00.123456789Z","step":"authorize-payment","outcome":"succeeded","detail":"authorization au_1","authorization_id":"au_1"}`,
		"Lacking":    `{"event_id":"01JCO","checkout_id":"co-1","version":2,"at":"2026-12-06T10:30:00.123456789Z","step":"reserve-stock","outcome":"failed","detail":"out of stock: mug, tea","out_of_stock":["mug","tea"]}`,
		"Paid":       `{"event_id":"01JCO","checkout_id":"co-1","version":5,"at":"2026-12-06T10:30:00.123456789Z","step":"mark-paid","outcome":"succeeded","detail":""}`,
	} {
		rec, err := EncodeCheckout(checkoutEvents()[name])
		require.NoError(t, err)
		assert.Equal(t, want, string(rec.Value), name)
	}
}

func TestDecodeCheckoutIsStrict(t *testing.T) {
	enc := func(name string) (string, string) {
		rec, err := EncodeCheckout(checkoutEvents()[name])
		require.NoError(t, err)
		return string(rec.Key), string(rec.Value)
	}
	key, start := enc("Start")
	_, lacking := enc("Lacking")
	_, paid := enc("Paid")
	tests := map[string]struct{ key, value string }{
		"other key":             {"checkout:co-2", start},
		"order key":             {"co-1", start},
		"mis-cased member":      {key, strings.Replace(start, `"total"`, `"Total"`, 1)},
		"unknown member":        {key, strings.Replace(start, `{`, `{"x":1,`, 1)},
		"a payment token":       {key, strings.Replace(start, `{`, `{"payment_token":"tok_1",`, 1)},
		"duplicate member":      {key, strings.Replace(start, `{`, `{"version":1,`, 1)},
		"missing member":        {key, strings.Replace(start, `,"request_id":"r-1"`, ``, 1)},
		"start with a step":     {key, strings.Replace(start, `{`, `{"step":"reserve-stock",`, 1)},
		"step with an order":    {key, strings.Replace(paid, `{`, `{"order_id":"o-1",`, 1)},
		"step at version 1":     {key, strings.Replace(paid, `"version":5`, `"version":1`, 1)},
		"start at version 2":    {key, strings.Replace(start, `"version":1`, `"version":2`, 1)},
		"unknown step":          {key, strings.Replace(paid, `"mark-paid"`, `"steal"`, 1)},
		"unknown outcome":       {key, strings.Replace(paid, `"succeeded"`, `"maybe"`, 1)},
		"wrong total":           {key, strings.Replace(start, `"total":1000`, `"total":999`, 1)},
		"no items":              {key, strings.Replace(start, `[{"sku":"mug","quantity":2,"unit_price":500},{"sku":"tea","quantity":1,"unit_price":0}]`, `[]`, 1)},
		"a SKU twice":           {key, strings.Replace(start, `"tea"`, `"mug"`, 1)},
		"bad digest":            {key, strings.Replace(start, testDigest, "ABC", 1)},
		"empty out_of_stock":    {key, strings.Replace(lacking, `["mug","tea"]`, `[]`, 1)},
		"unsorted out_of_stock": {key, strings.Replace(lacking, `["mug","tea"]`, `["tea","mug"]`, 1)},
		"out_of_stock on pay":   {key, strings.Replace(paid, `"detail":""`, `"detail":"","out_of_stock":["mug"]`, 1)},
		"empty authorization":   {key, strings.Replace(paid, `"detail":""`, `"detail":"","authorization_id":""`, 1)},
		"authorization on pay":  {key, strings.Replace(paid, `"detail":""`, `"detail":"","authorization_id":"au"`, 1)},
		"long detail":           {key, strings.Replace(paid, `"detail":""`, `"detail":"`+strings.Repeat("x", order.StepDetailLenMax+1)+`"`, 1)},
		"local time":            {key, strings.Replace(paid, `123456789Z`, `123456789+01:00`, 1)},
		"trailing data":         {key, paid + "{}"},
		"not an object":         {key, `[]`},
		"invalid utf-8":         {key, strings.Replace(start, "alice", "al\xffce", 1)},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeCheckout([]byte(tt.key), []byte(tt.value))
			assert.ErrorIs(t, err, ErrInvalidRecord)
		})
	}
}

func TestEncodeCheckoutValidates(t *testing.T) {
	for name, mutate := range map[string]func(*order.CheckoutEvent){
		"a ':' in the ID":     func(ev *order.CheckoutEvent) { ev.CheckoutID = "co:1" },
		"no event ID":         func(ev *order.CheckoutEvent) { ev.EventID = "" },
		"zero time":           func(ev *order.CheckoutEvent) { ev.At = invAt.AddDate(-3000, 0, 0) },
		"start without order": func(ev *order.CheckoutEvent) { ev.OrderID = "" },
		"start with a step":   func(ev *order.CheckoutEvent) { ev.Step = order.StepReserve },
		"quantity above max":  func(ev *order.CheckoutEvent) { ev.Items[0].Quantity = order.QuantityMax + 1 },
	} {
		ev := checkoutEvents()["Start"]
		ev.Items = append([]order.Item(nil), ev.Items...)
		mutate(&ev)
		_, err := EncodeCheckout(ev)
		assert.ErrorIs(t, err, ErrInvalidRecord, name)
	}
	ev := checkoutEvents()["Authorized"]
	ev.AuthorizationID = "au 1"
	_, err := EncodeCheckout(ev)
	assert.ErrorIs(t, err, ErrInvalidRecord, "an authorisation ID of visible ASCII only")
}

// TestLargestCheckoutRecordFits: the longest start and step records
// ValidateCheckoutEvent accepts, escaped where they can be, fit in
// RecordValueBytesMax.
func TestLargestCheckoutRecordFits(t *testing.T) {
	ctl := func(n int) string { return strings.Repeat("\x01", n) }
	items := make([]order.Item, order.ItemsMax)
	skus := make([]string, order.ItemsMax)
	for i := range items {
		skus[i] = strings.Repeat("s", order.SKULenMax-3) + string(rune('0'+i/100)) + string(rune('0'+i/10%10)) + string(rune('0'+i%10))
		items[i] = order.Item{SKU: skus[i], Quantity: order.QuantityMax, UnitPrice: order.UnitPriceMax}
	}
	start := order.CheckoutEvent{EventID: ctl(EventIDLenMax), CheckoutID: strings.Repeat("c", order.IDLenMax), Version: 1, At: invAt,
		OrderID: strings.Repeat("o", order.IDLenMax), CustomerID: strings.Repeat(`"`, order.CustomerIDLenMax), Currency: "EUR",
		Items: items, Total: order.ItemsMax * order.QuantityMax * order.UnitPriceMax,
		IdempotencyKey: ctl(IdempotencyKeyLenMax), RequestDigest: testDigest, Principal: ctl(PrincipalLenMax), RequestID: ctl(RequestIDLenMax)}
	step := order.CheckoutEvent{EventID: ctl(EventIDLenMax), CheckoutID: start.CheckoutID, Version: 2, At: invAt,
		Step: order.StepReserve, Outcome: order.StepFailed, Detail: ctl(order.StepDetailLenMax), OutOfStock: skus}
	for _, ev := range []order.CheckoutEvent{start, step} {
		rec, err := EncodeCheckout(ev)
		require.NoError(t, err)
		t.Logf("the largest checkout record of version %d is %d bytes of %d", ev.Version, len(rec.Value), RecordValueBytesMax)
		got, err := DecodeCheckout(rec.Key, rec.Value)
		require.NoError(t, err)
		assert.Equal(t, ev, got)
	}
}

func FuzzDecodeCheckout(f *testing.F) {
	// testdata/fuzz/FuzzDecodeCheckout holds the committed seeds; these
	// add every codec test event.
	for _, ev := range checkoutEvents() {
		rec, err := EncodeCheckout(ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rec.Key, rec.Value)
	}
	f.Fuzz(func(t *testing.T, key, value []byte) {
		ev, err := DecodeCheckout(key, value)
		if err != nil {
			return
		}
		// Whatever decodes is valid and survives a round trip unchanged.
		rec, err := EncodeCheckout(ev)
		require.NoError(t, err, "a decoded event must encode")
		again, err := DecodeCheckout(rec.Key, rec.Value)
		require.NoError(t, err)
		require.Equal(t, ev, again)
		require.Equal(t, key, rec.Key)
	})
}
