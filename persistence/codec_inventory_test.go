package persistence

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

var invAt = time.Date(2026, 12, 6, 10, 30, 0, 123456789, time.UTC)

// inventoryEvents are the codec test events: one of each change, and texts
// that need escaping.
func inventoryEvents() map[string]order.InventoryEvent {
	base := order.InventoryEvent{EventID: "01JEV", SKU: "mug-blue", Version: 2, OrderID: "o-1", OrderVersion: 1,
		At: invAt, Principal: "alice", RequestID: "r-1", IdempotencyKey: "k-1"}
	with := func(f func(*order.InventoryEvent)) order.InventoryEvent {
		ev := base
		f(&ev)
		return ev
	}
	return map[string]order.InventoryEvent{
		"Set": with(func(e *order.InventoryEvent) {
			e.Version, e.Change, e.OnHand, e.OrderID, e.OrderVersion = 1, order.StockSet, 10, "", 0
		}),
		"Reserve": with(func(e *order.InventoryEvent) {
			e.Change, e.Quantity, e.OnHand, e.Reserved = order.StockReserve, 3, 10, 3
		}),
		"Release": with(func(e *order.InventoryEvent) {
			e.Change, e.Quantity, e.OnHand, e.Reserved = order.StockRelease, 3, 10, 0
		}),
		"ReleaseUnheld": with(func(e *order.InventoryEvent) { e.Change, e.OnHand = order.StockRelease, 10 }),
		"Consume": with(func(e *order.InventoryEvent) {
			e.Change, e.Quantity, e.OnHand, e.Reserved = order.StockConsume, 3, 7, 0
		}),
		"Restock": with(func(e *order.InventoryEvent) {
			e.Change, e.Quantity, e.OnHand, e.OrderVersion = order.StockRestock, 3, 10, 0
		}),
		"Escapes": with(func(e *order.InventoryEvent) {
			e.Change, e.Quantity, e.OnHand, e.Reserved = order.StockReserve, 1, 1, 1
			e.Principal, e.RequestID, e.IdempotencyKey = "a\"b\\c", "line\nbreak", "ünïcode\x01"
		}),
	}
}

func TestInventoryRoundTrip(t *testing.T) {
	for name, ev := range inventoryEvents() {
		t.Run(name, func(t *testing.T) {
			rec, err := EncodeInventory(ev)
			require.NoError(t, err)
			assert.True(t, IsInventoryKey(rec.Key))
			got, err := DecodeInventory(rec.Key, rec.Value)
			require.NoError(t, err)
			assert.Equal(t, ev, got)
			// The order decoder refuses it: readers of orders must skip
			// inventory records by their key before decoding.
			_, err = DecodeEvent(rec.Key, rec.Value)
			assert.ErrorIs(t, err, ErrInvalidRecord)
		})
	}
}

// TestInventoryGoldenRecord pins the record's bytes: consumers read them.
func TestInventoryGoldenRecord(t *testing.T) {
	rec, err := EncodeInventory(inventoryEvents()["Reserve"])
	require.NoError(t, err)
	assert.Equal(t, "inventory:mug-blue", string(rec.Key))
	assert.Equal(t, `{"event_id":"01JEV","sku":"mug-blue","version":2,"change":"reserve","quantity":3,"on_hand":10,"reserved":3,`+
		`"order_id":"o-1","order_version":1,"at":"2026-12-06T10:30:00.123456789Z","principal":"alice","request_id":"r-1","idempotency_key":"k-1"}`,
		string(rec.Value))
	var headers []string
	for _, h := range rec.Headers {
		headers = append(headers, h.Key+"="+string(h.Value))
	}
	assert.Equal(t, []string{
		"ce_specversion=1.0", "ce_id=01JEV", "ce_source=orderd", "ce_type=orderd.inventory.changed",
		"ce_subject=mug-blue", "ce_time=2026-12-06T10:30:00.123456789Z", "content-type=application/json",
	}, headers)
}

func TestDecodeInventoryIsStrict(t *testing.T) {
	rec, err := EncodeInventory(inventoryEvents()["Reserve"])
	require.NoError(t, err)
	good := string(rec.Value)
	tests := map[string]struct{ key, value string }{
		"other key":           {"inventory:tea", good},
		"order key":           {"mug-blue", good},
		"mis-cased member":    {string(rec.Key), strings.Replace(good, `"sku"`, `"SKU"`, 1)},
		"unknown member":      {string(rec.Key), strings.Replace(good, `{`, `{"x":1,`, 1)},
		"duplicate member":    {string(rec.Key), strings.Replace(good, `{`, `{"version":2,`, 1)},
		"missing member":      {string(rec.Key), strings.Replace(good, `"order_version":1,`, ``, 1)},
		"unknown change":      {string(rec.Key), strings.Replace(good, `"reserve"`, `"steal"`, 1)},
		"negative quantity":   {string(rec.Key), strings.Replace(good, `"quantity":3`, `"quantity":-3`, 1)},
		"huge quantity":       {string(rec.Key), strings.Replace(good, `"quantity":3`, `"quantity":99999999999`, 1)},
		"reserved > on_hand":  {string(rec.Key), strings.Replace(good, `"reserved":3`, `"reserved":11`, 1)},
		"zero version":        {string(rec.Key), strings.Replace(good, `"version":2`, `"version":0`, 1)},
		"no order":            {string(rec.Key), strings.Replace(good, `"order_id":"o-1"`, `"order_id":""`, 1)},
		"local time":          {string(rec.Key), strings.Replace(good, `123456789Z`, `123456789+01:00`, 1)},
		"trailing data":       {string(rec.Key), good + "{}"},
		"not an object":       {string(rec.Key), `[]`},
		"invalid utf-8":       {string(rec.Key), strings.Replace(good, "alice", "al\xffce", 1)},
		"fraction":            {string(rec.Key), strings.Replace(good, `"on_hand":10`, `"on_hand":10.0`, 1)},
		"set with a quantity": {string(rec.Key), strings.Replace(strings.Replace(good, `"reserve"`, `"set"`, 1), `"order_id":"o-1","order_version":1`, `"order_id":"","order_version":0`, 1)},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeInventory([]byte(tt.key), []byte(tt.value))
			assert.ErrorIs(t, err, ErrInvalidRecord)
		})
	}
}

func TestEncodeInventoryValidates(t *testing.T) {
	ev := inventoryEvents()["Consume"]
	ev.Quantity = 0
	_, err := EncodeInventory(ev)
	assert.ErrorIs(t, err, ErrInvalidRecord)
	ev = inventoryEvents()["Set"]
	ev.SKU = "a:b"
	_, err = EncodeInventory(ev)
	assert.ErrorIs(t, err, ErrInvalidRecord)
}

func FuzzDecodeInventory(f *testing.F) {
	// testdata/fuzz/FuzzDecodeInventory holds the committed seeds; these
	// add every codec test event.
	for _, ev := range inventoryEvents() {
		rec, err := EncodeInventory(ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rec.Key, rec.Value)
	}
	f.Fuzz(func(t *testing.T, key, value []byte) {
		ev, err := DecodeInventory(key, value)
		if err != nil {
			return
		}
		// Whatever decodes is valid and survives a round trip unchanged.
		rec, err := EncodeInventory(ev)
		require.NoError(t, err, "a decoded event must encode")
		again, err := DecodeInventory(rec.Key, rec.Value)
		require.NoError(t, err)
		require.Equal(t, ev, again)
		require.Equal(t, key, rec.Key)
	})
}
