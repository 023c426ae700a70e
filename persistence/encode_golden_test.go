package persistence

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// goldenRecordDigests pins the exact bytes of the records goldenEvents encode
// to, as the encoder wrote them before the write path reused its memory
// (commit 6c98fba): consumers depend on the format (DESIGN §4), so an
// optimisation of the encoder must not change a byte.
var goldenRecordDigests = map[string]string{
	"ControlChars":           "ca14fa980a8bc89e9f68330e94881835c9c87bc5f662b8b398074fadc4deff46",
	"Creation":               "8f9a8832f0653089826c877af578ababe2f41d19d2bce85688fcf30931d845dc",
	"CreationWithContents":   "875ad7844fe3df4d9441e2c7478491f4f26c96a575e0644604a396f1104d6d37",
	"CreationWithDeadline":   "051919f4be4cb9efdd03e3a01e926e7b8a7cd500eea419b0f78ae4be60a4d7af",
	"DeadlineChange":         "15b9357f807eeeb47c954438fb1072ad482425863e151f3c1113f62fb3bc3451",
	"EmptyOptions":           "3c8bad02a283e3b07d0fb003ef5bed95d9e7ec2f7f90dca8e0220645777b4d14",
	"ItemsOnly":              "cf9eaf2f602cb964943f1538c71ece4b9fe09e1807571e262aa9738bee18c983",
	"KeyWithoutDigest":       "62a7a562741eb8056aeb3cc92015a9bcd0ee69c25d631115668d5723ec7f5c3b",
	"LargeVersion":           "ef1eb05bd704f129fde6bac692ad87f4ed1f841bee140247fd31e7f963aae094",
	"Lifecycle1":             "656c9aa885b95a05ba5dcd81df57ffa44dabf8add7c939dbc81d4c5ef9d4438b",
	"Lifecycle2":             "f82f605c61ba3f2264f2907f63a334fc98db1e95b3c85fbdf462e917e677da53",
	"Lifecycle3":             "e2e7614041de5386735a17635eaef99d20db36e36ee238e2011cd06be80c4962",
	"Lifecycle4":             "8d43956b3bb9a0b25df5f235114fd7fc66f8bb9cf0e4513ff3322b21e8ac09e4",
	"Lifecycle5":             "19321310edfe8168b1b7e8570ef0991e2ca00a206355ad724248ac072dbb57b0",
	"LongFields":             "61d3f3704d766affd331bc9e68db8c815aca0735204f80a93739e9bf6b366230",
	"NUL":                    "bfa37ba8ac6d1946a0d7ff2ce44dad8ac30490c9209cb086d1ca70c2a3d0cfdb",
	"QuotesAndSlashes":       "5b7b25624c3e5029d86d8f7fa395cfb49f34299d429a2af3e52e2ad423b632a9",
	"Transition":             "609c5a93d46e5152dc6e6f1cf24c332894c87ab5db0d5cc979176100c0d7853c",
	"TransitionWithMetadata": "4232acccdf88d3d6577a7d579e803eaef28a84fe5a69c49f7819e67adf9e7a7d",
	"Unicode":                "4a713a4ccc687373f126d027272363aa6dd325f245329b5af9d3d5aaafa1014a",
	"WholeSecond":            "d770423314367c35e4db61e684570e979267db76115ef308a8bb3306689c43be",
	"YearBounds":             "937bf5172eb23646e9ea79069d159510686271602e5293ddaf52bfebd5ff5322",
}

// recordDigest is a SHA-256 of everything a record puts on the wire: key,
// value and headers in order, each length-prefixed.
func recordDigest(rec Record) string {
	h := sha256.New()
	field := func(b []byte) {
		h.Write(binary.AppendUvarint(nil, uint64(len(b))))
		h.Write(b)
	}
	field(rec.Key)
	field(rec.Value)
	for _, hd := range rec.Headers {
		field([]byte(hd.Key))
		field(hd.Value)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// goldenEvents are the events whose records are pinned: every codec test
// event and a whole lifecycle.
func goldenEvents() map[string]order.Event {
	events := codecEvents()
	for v := 1; v <= len(lifecyclePath); v++ {
		events[fmt.Sprintf("Lifecycle%d", v)] = lifecycleEvent("01JDXQ6Z8M3V5T2K9R4W7N1B0C", v)
	}
	return events
}

func TestEncodeEventWritesTheGoldenRecords(t *testing.T) {
	events := goldenEvents()
	require.Len(t, goldenRecordDigests, len(events))
	for name, ev := range events {
		rec, err := EncodeEvent(ev)
		require.NoError(t, err, name)
		assert.Equal(t, goldenRecordDigests[name], recordDigest(rec), name)
	}
}

// The write path encodes into recycled memory: whatever was encoded there
// before, large or small, the record is the same.
func TestEncodeRecordReusingMemoryWritesTheGoldenRecords(t *testing.T) {
	events := goldenEvents()
	names := make([]string, 0, len(events))
	for name := range events {
		names = append(names, name)
	}
	sort.Strings(names)
	var buf []byte
	var headers [headerCount]kafka.Header
	for round := range 3 {
		for _, name := range names {
			key, value, next, err := encodeRecord(buf, &headers, events[name])
			require.NoError(t, err, name)
			buf = next
			assert.Equal(t, goldenRecordDigests[name], recordDigest(Record{Key: key, Value: value, Headers: headers[:]}), "%s, round %d", name, round)
		}
		rand.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	}
}

// A pendingAppend hands kafka-go the record EncodeEvent writes.
func TestPendingAppendCarriesTheGoldenRecord(t *testing.T) {
	for name, ev := range goldenEvents() {
		p, err := newPendingAppend(ev)
		require.NoError(t, err, name)
		key, err := readAllBytes(p.rec.Key)
		require.NoError(t, err)
		value, err := readAllBytes(p.rec.Value)
		require.NoError(t, err)
		rec := Record{Key: key, Value: value, Headers: p.rec.Headers}
		assert.Equal(t, goldenRecordDigests[name], recordDigest(rec), name)
		assert.Equal(t, recordSize(key, value, rec.Headers)+claimStampBytesMax, p.size, name, "room for the claim stamp")
		p.recycle()
	}
}

func readAllBytes(b kafka.Bytes) ([]byte, error) {
	out := make([]byte, b.Len())
	_, err := b.Read(out)
	return out, err
}

// appendStringReference is appendString as it was written first, one byte
// at a time: the specification the faster one is checked against.
func appendStringReference(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// Every byte value at every offset from a word boundary, in strings of every
// length around the word size, and random strings.
func TestAppendStringMatchesReference(t *testing.T) {
	for n := range 20 {
		for at := range n {
			for c := range 256 {
				s := []byte(strings.Repeat("a", n))
				s[at] = byte(c)
				require.Equal(t, string(appendStringReference(nil, string(s))), string(appendString(nil, string(s))), "%q", s)
			}
		}
	}
	seed := rand.Uint64()
	rnd := rand.New(rand.NewPCG(seed, seed))
	alphabet := []byte("ab\"\\\x00\x1f\x20\x7f\x80\xff\n\t\r")
	for range 10_000 {
		s := make([]byte, rnd.IntN(40))
		for i := range s {
			s[i] = alphabet[rnd.IntN(len(alphabet))]
		}
		require.Equal(t, string(appendStringReference(nil, string(s))), string(appendString(nil, string(s))), "seed %d: %q", seed, s)
	}
}

// Digests are lowercase hex only; the table behind checkDigest agrees with
// the definition for every byte.
func TestCheckDigestBytes(t *testing.T) {
	ev := lifecycleEvent("o", 2)
	for c := range 256 {
		d := []byte(testDigest)
		d[10] = byte(c)
		ev.RequestDigest = string(d)
		want := ('0' <= c && c <= '9') || ('a' <= c && c <= 'f')
		assert.Equal(t, want, checkDigest(ev) == nil, "byte %#x", c)
	}
}
