package store

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// Fuzz targets for every decoder of the store's own keys and values: none
// may panic or look beyond its input, whatever it is given, and what one
// accepts must survive being written again. The seed corpora are in
// testdata/fuzz; .ci/run runs each target for a while.

var fuzzEpoch = time.Date(2026, 12, 5, 12, 0, 0, 1, time.UTC)

func FuzzDecodeSummary(f *testing.F) {
	f.Add(encodeSummary(order.Order{State: order.Created, Version: 1, CreatedAt: fuzzEpoch, UpdatedAt: fuzzEpoch, PaymentDueAt: fuzzEpoch.Add(time.Hour)}))
	f.Add(encodeSummary(order.Order{State: order.Returned, Version: 5}))
	f.Add(encodeSummary(order.Order{State: order.Paid, Version: 2, Contents: &order.Contents{CustomerID: "cust"}}))
	f.Fuzz(func(t *testing.T, v []byte) {
		o, err := decodeSummary("o", v)
		if err != nil {
			return
		}
		again, err := decodeSummary("o", encodeSummary(o))
		require.NoError(t, err)
		require.Equal(t, o, again)
	})
}

func FuzzDecodeIndexKey(f *testing.F) {
	f.Add(indexKey(indexPrefix(0, ""), "order-1"))
	f.Add(indexKey(indexPrefix(order.Paid, ""), "order-1"))
	f.Add(indexKey(indexPrefix(0, "cust"), "order-1"))
	f.Add(indexKey(indexPrefix(order.Shipped, "cust"), "order-1"))
	f.Fuzz(func(t *testing.T, k []byte) {
		state, customer, id, err := decodeIndexKey(k)
		if err != nil {
			return
		}
		require.Equal(t, k, indexKey(indexPrefix(state, customer), id), "a key decodes to the parts that make it")
	})
}

func FuzzDecodeEventKey(f *testing.F) {
	f.Add(eventKey("order-1", 3))
	f.Add(eventKey("", 1))
	f.Fuzz(func(t *testing.T, k []byte) {
		id, version, err := decodeEventKey(k)
		if err != nil {
			return
		}
		require.Equal(t, k[:1+uvarintLen(len(id))+len(id)], eventPrefix(id))
		_, again, err := decodeEventKey(eventKey(id, version))
		require.NoError(t, err)
		require.Equal(t, version, again)
	})
}

func FuzzDecodeDeadline(f *testing.F) {
	f.Add(deadlineKey(fuzzEpoch, "order-1"), binaryUvarint(2))
	f.Add(deadlineKey(time.Unix(-5, 0), "x"), binaryUvarint(1))
	f.Fuzz(func(t *testing.T, k, v []byte) {
		d, err := decodeDeadline(k, v)
		if err != nil {
			return
		}
		again, err := decodeDeadline(deadlineKey(d.Due, d.OrderID), binaryUvarint(d.Version))
		require.NoError(t, err)
		require.Equal(t, d, again)
	})
}

func FuzzDecodeKeyed(f *testing.F) {
	f.Add(encodeKeyed(keyedCreate{orderID: "order-1", at: fuzzEpoch}))
	f.Fuzz(func(t *testing.T, v []byte) {
		c, err := decodeKeyed(v)
		if err != nil {
			return
		}
		again, err := decodeKeyed(encodeKeyed(c))
		require.NoError(t, err)
		require.Equal(t, c, again)
	})
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(encodeMeta(Identity{Topic: "orders.transitions", Partitions: 16}))
	f.Fuzz(func(t *testing.T, v []byte) {
		id, err := decodeMeta(v)
		if err != nil {
			return
		}
		again, err := decodeMeta(encodeMeta(id))
		require.NoError(t, err)
		require.Equal(t, id, again)
	})
}

func FuzzDecodeCheckpoint(f *testing.F) {
	f.Add(encodeCheckpoint(12345))
	f.Fuzz(func(t *testing.T, v []byte) {
		next, err := decodeCheckpoint(v)
		if err != nil {
			return
		}
		require.True(t, bytes.Equal(v, encodeCheckpoint(next)))
	})
}

func uvarintLen(n int) int { return len(binaryUvarint(uint64(n))) }

func FuzzDecodeStock(f *testing.F) {
	f.Add(encodeStock(order.Stock{SKU: "s", Version: 3, OnHand: 10, Reserved: 4}))
	f.Add(encodeStock(order.Stock{SKU: "s", Version: 1, OnHand: order.OnHandMax, Reserved: order.OnHandMax}))
	f.Fuzz(func(t *testing.T, v []byte) {
		s, err := decodeStock("s", v)
		if err != nil {
			return
		}
		again, err := decodeStock("s", encodeStock(s))
		require.NoError(t, err)
		require.Equal(t, s, again)
	})
}

func FuzzDecodeHold(f *testing.F) {
	f.Add(holdKey("mug", "order-1"), encodeHold(order.Hold{Status: order.HoldHeld, Quantity: 2, OrderVersion: 1, Version: 3}))
	f.Add(holdKey("m", "o"), encodeHold(order.Hold{Status: order.HoldReleased, Version: 1}))
	f.Fuzz(func(t *testing.T, k, v []byte) {
		if sku, orderID, err := decodeHoldKey(k); err == nil {
			require.Equal(t, k, holdKey(sku, orderID))
		}
		h, err := decodeHold(v)
		if err != nil {
			return
		}
		again, err := decodeHold(encodeHold(h))
		require.NoError(t, err)
		require.Equal(t, h, again)
	})
}

func FuzzDecodeCheckoutKeys(f *testing.F) {
	f.Add(checkoutEventKey("co-1", 3))
	f.Add(unfinishedKey("co-1"))
	f.Add([]byte{prefixCheckoutEvent, 0x80, 0x00})
	f.Fuzz(func(t *testing.T, k []byte) {
		if id, version, err := decodeCheckoutEventKey(k); err == nil {
			require.Equal(t, k, checkoutEventKey(id, version))
		}
		if id, err := decodeUnfinishedKey(k); err == nil {
			require.Equal(t, k, unfinishedKey(id))
		}
	})
}
