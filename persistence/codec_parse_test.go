package persistence

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// parseTimeText must accept only what time.Parse accepts, with the same
// result: it is a shortcut, not a second definition of a valid time.
func TestParseTimeTextAgreesWithTimeParse(t *testing.T) {
	for _, s := range parseTimeSeeds {
		checkParseTimeText(t, s)
	}
	// The shortcut takes the encoder's form.
	_, ok := parseTimeText([]byte("2026-11-23T12:00:00.123456789Z"))
	assert.True(t, ok)
}

var parseTimeSeeds = []string{
	"2026-11-23T12:00:00.123456789Z",
	"0001-01-01T00:00:00.000000000Z",
	"9999-12-31T23:59:59.999999999Z",
	"0000-01-01T00:00:00.000000000Z",
	"2024-02-29T00:00:00.000000000Z",
	"2023-02-29T00:00:00.000000000Z",
	"1900-02-29T00:00:00.000000000Z",
	"2000-02-29T00:00:00.000000000Z",
	"2026-04-31T00:00:00.000000000Z",
	"2026-13-01T00:00:00.000000000Z",
	"2026-00-01T00:00:00.000000000Z",
	"2026-01-00T00:00:00.000000000Z",
	"2026-01-01T24:00:00.000000000Z",
	"2026-01-01T23:60:00.000000000Z",
	"2026-01-01T23:59:60.000000000Z",
	"2026-01-01t12:00:00.000000000Z",
	"2026-01-01T12:00:00,000000000Z",
	"2026-01-01T12:00:00.00000000aZ",
	"2026-01-01T12:00:00.+00000000Z",
	"-026-01-01T12:00:00.000000000Z",
	"2026-01-01T12:00:00.000000000z",
	"2026-01-01T12:00:00Z",
	"2026-01-01T12:00:00.1Z",
}

func checkParseTimeText(t *testing.T, s string) {
	got, ok := parseTimeText([]byte(s))
	want, err := time.Parse(time.RFC3339Nano, s)
	if !ok {
		return // time.Parse decides
	}
	require.NoError(t, err, "%q: the shortcut accepted what time.Parse refuses", s)
	require.True(t, want.UTC() == got, "%q: %v, time.Parse says %v", s, got, want.UTC())
}

func FuzzParseTimeText(f *testing.F) {
	for _, s := range parseTimeSeeds {
		f.Add(s)
	}
	f.Fuzz(checkParseTimeText)
}

// Text members share strings by how long a server keeps them (textGroups);
// each must still read exactly as written, escapes included.
func TestDecodeEventTextMembers(t *testing.T) {
	ev := lifecycleEvent("text-1", 2)
	ev.Principal = `"alice"`
	ev.RequestID = ""
	rec, err := EncodeEvent(ev)
	require.NoError(t, err)
	got, err := DecodeEvent(rec.Key, rec.Value)
	require.NoError(t, err)
	assert.Equal(t, ev, got)

	// The decoded strings do not share the record's bytes.
	for i := range rec.Value {
		rec.Value[i] = 'X'
	}
	assert.Equal(t, ev, got)
}

// BenchmarkDecodeEventPlain decodes a record without escapes, the common
// case on a real log (BenchmarkDecodeEvent's event escapes on purpose).
func BenchmarkDecodeEventPlain(b *testing.B) {
	ev := order.Event{
		EventID: "01JDXQ6Z8M3V5T2K9R4W7N1B0D", OrderID: "01JDXQ6Z8M3V5T2K9R4W7N1B0C", Version: 2,
		From: order.Created, To: order.Paid, At: testEpoch, IdempotencyKey: "pay-01JDXQ6Z8M3V5T2K9R4W7N1B0C",
		RequestDigest: testDigest, Principal: "alice", RequestID: "7b0c8a36-1f0e-4f5e-9c1a-3f0f1d9c2a11",
		Reason: "paid by card",
	}
	benchmarkDecode(b, ev)
}
