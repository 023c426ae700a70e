package persistence

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/segmentio/kafka-go/compress"
	kafkasnappy "github.com/segmentio/kafka-go/compress/snappy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence/kfaketest"
)

// decodeAllocMax is what decoding one batch that lies about its size may
// allocate in these tests: room for a decoder at its bounds (a 16 MiB
// window) and for whatever else the process allocates meanwhile, well below
// what kafka-go's own codecs allocated for the same inputs (512 MiB to
// gigabytes).
const decodeAllocMax = 128 << 20

// compressWith compresses data with the writer of c from kafka-go's table.
func compressWith(t testing.TB, c compress.Codec, data []byte) []byte {
	var buf bytes.Buffer
	w := c.NewWriter(&buf)
	_, err := w.Write(data)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// decodeCounting reads what c's bounded reader yields from in, and how many
// bytes the process allocated meanwhile.
func decodeCounting(c compress.Compression, in []byte) (n int64, allocated uint64, err error) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := newBoundedReader(c, bytes.NewReader(in))
	n, err = io.Copy(io.Discard, r)
	_ = r.Close()
	runtime.ReadMemStats(&after)
	return n, after.TotalAlloc - before.TotalAlloc, err
}

// Every codec the batch reader expands with is bounded: inputs that
// made kafka-go v0.4.51 allocate gigabytes, or that expand beyond
// batchDecompressedBytesMax, fail, and cost little.
func TestCodecsRefuseWhatTheyCannotBound(t *testing.T) {
	xerial := append(append([]byte(nil), xerialMagic...), 0, 0, 0, 1, 0, 0, 0, 1)
	beyond := make([]byte, batchDecompressedBytesMax+1)
	var hugeWindow bytes.Buffer
	zw, err := zstd.NewWriter(&hugeWindow, zstd.WithWindowSize(zstd.MaxWindowSize), zstd.WithEncoderLevel(zstd.SpeedFastest))
	require.NoError(t, err)
	_, err = zw.Write(make([]byte, 64<<20))
	require.NoError(t, err)
	require.NoError(t, zw.Close())

	for _, tc := range []struct {
		name  string
		codec compress.Compression
		in    []byte
		want  string
		lies  bool // about its size: what it costs is checked
	}{
		// 1.5 GiB allocated by kafka-go's reader for a claim of 1.5 GiB.
		{"snappy chunk claiming 4 GiB", compress.Snappy, binary.BigEndian.AppendUint32(bytes.Clone(xerial), 0xFFFFFFFF), "chunk of 4294967295 bytes", true},
		{"snappy block claiming 4 GiB", compress.Snappy, append(binary.AppendUvarint(nil, 0xFFFFFFFF), 0, 0, 0), "expands beyond", true},
		// 512 MiB allocated by kafka-go's reader.
		{"zstd asking for a 512 MiB window", compress.Zstd, hugeWindow.Bytes(), "window size exceeded", true},
		{"snappy chunks beyond the bound", compress.Snappy, compressWith(t, compress.Snappy.Codec(), beyond), "expands beyond", false},
		{"snappy unframed beyond the bound", compress.Snappy, compressWith(t, &kafkasnappy.Codec{Framing: kafkasnappy.Unframed}, beyond), "expands beyond", false},
		{"zstd beyond the bound", compress.Zstd, compressWith(t, compress.Zstd.Codec(), beyond), "expands beyond", false},
		{"gzip beyond the bound", compress.Gzip, compressWith(t, compress.Gzip.Codec(), beyond), "expands beyond", false},
		{"lz4 beyond the bound", compress.Lz4, compressWith(t, compress.Lz4.Codec(), beyond), "expands beyond", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, allocated, err := decodeCounting(tc.codec, tc.in)
			require.ErrorContains(t, err, tc.want)
			assert.LessOrEqual(t, n, int64(batchDecompressedBytesMax))
			if tc.lies {
				assert.Less(t, allocated, uint64(decodeAllocMax), "bytes allocated")
			}
		})
	}
}

// The bounded codecs read what kafka-go's writers write, up to exactly the
// bound, and every snappy framing.
func TestCodecsReadWhatKafkaGoWrites(t *testing.T) {
	random := make([]byte, 300<<10) // several 32 KiB xerial chunks
	for i := range random {
		random[i] = byte(rand.IntN(16)) // compressible, not trivially
	}
	atTheBound := bytes.Repeat([]byte("orderd"), batchDecompressedBytesMax/6)
	atTheBound = append(atTheBound, make([]byte, batchDecompressedBytesMax-len(atTheBound))...)
	codecs := map[string]compress.Codec{
		"gzip": compress.Gzip.Codec(), "lz4": compress.Lz4.Codec(), "zstd": compress.Zstd.Codec(),
		"snappy": compress.Snappy.Codec(), "snappy unframed": &kafkasnappy.Codec{Framing: kafkasnappy.Unframed},
	}
	for name, codec := range codecs {
		for _, data := range [][]byte{nil, []byte("x"), random, atTheBound} {
			t.Run(fmt.Sprintf("%s/%d bytes", name, len(data)), func(t *testing.T) {
				in := compressWith(t, codec, data)
				// The bounded reader, whichever writer wrote it.
				r := newBoundedReader(compress.Compression(codec.Code()), bytes.NewReader(in))
				got, err := io.ReadAll(r)
				require.NoError(t, err)
				require.NoError(t, r.Close())
				assert.True(t, bytes.Equal(data, got), "%d bytes back for %d", len(got), len(data))
			})
		}
	}
}

// Every codec Kafka defines has a bounded reader.
func TestCodecsCoverKafkasCodecs(t *testing.T) {
	for _, c := range []compress.Compression{compress.Gzip, compress.Snappy, compress.Lz4, compress.Zstd} {
		assert.Contains(t, boundedReaders, c, "%s", c)
	}
}

// produceRawBatch writes one raw record batch to partition p of the test
// broker, as a producer other than orderd could.
func produceRawBatch(t testing.TB, e *Embedded, p int32, batch []byte) {
	t.Helper()
	require.NoError(t, kfaketest.ProduceBatch(testContext(t), e.Addr(), DefaultTopic, p, batch), "the broker takes the batch")
}

// Batches that would have made kafka-go allocate gigabytes, written to the
// topic by another producer between two of orderd's records, are skipped by
// a replay and a load like any record they cannot decode (counted, logged,
// never applied), and cost no more than the bound.
func TestKafkaReadsSkipBatchesThatLieAboutTheirSize(t *testing.T) {
	for _, tc := range hostileBatches(t) {
		t.Run(tc.name, func(t *testing.T) {
			_, j, events := journalAround(t, tc.batch)
			ctx := testContext(t)

			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			got, stats := replayAll(t, j)
			runtime.ReadMemStats(&after)
			assert.Equal(t, events, got)
			assert.Equal(t, 1, stats.Undecodable, "the batch counts as one")
			assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(decodeAllocMax), "bytes allocated")

			loaded, err := j.Load(ctx, "o-1")
			require.NoError(t, err)
			assert.Equal(t, events, loaded)
		})
	}
}

// journalAround starts a broker whose one partition holds two of orderd's
// records with batch between them, written by another producer, and opens
// a journal on it.
func journalAround(t *testing.T, batch []byte) (*Embedded, *KafkaJournal, []order.Event) {
	t.Helper()
	e := startTestBroker(t)
	j := openTestJournal(t, e, KafkaConfig{Partitions: 1})
	events := lifecycle("o-1", 2)
	require.NoError(t, j.Append(testContext(t), events[0]))
	produceRawBatch(t, e, 0, batch)
	require.NoError(t, j.Append(testContext(t), events[1]))
	return e, j, events
}

// hostileBatch is a record batch with a good CRC whose contents made
// kafka-go allocate gigabytes.
type hostileBatch struct {
	name  string
	batch []byte
}

// hostileBatches are one of each kind that a producer other than orderd
// could write to the topic, each holding (or claiming to hold) one record at
// offset 0.
func hostileBatches(t testing.TB) []hostileBatch {
	records := []testRecord{{0, []byte("k"), []byte("v"), nil}}
	claimsMillions := encodeTestBatch(t, 0, testBatchOpts{lastDelta: 199_999_999}, records...)
	binary.BigEndian.PutUint32(claimsMillions[batchRecordCountAt:], 200_000_000)
	setBatchCRC(claimsMillions)
	snappyBomb := encodeTestBatch(t, 0, testBatchOpts{attributes: int16(compress.Snappy)}, records...)
	snappyBomb = snappyBomb[:batchHeaderBytes]
	snappyBomb = append(snappyBomb, xerialMagic...)
	snappyBomb = append(snappyBomb, 0, 0, 0, 1, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0)
	binary.BigEndian.PutUint32(snappyBomb[8:], uint32(len(snappyBomb)-batchLengthEnd))
	setBatchCRC(snappyBomb)
	// kfake takes a batch of no records, which holds no offsets (Kafka
	// refuses one): this one claims none and holds one.
	claimsNone := encodeTestBatch(t, 0, testBatchOpts{}, records...)
	binary.BigEndian.PutUint32(claimsNone[batchRecordCountAt:], 0)
	binary.BigEndian.PutUint32(claimsNone[batchLastDeltaAt:], 0xFFFFFFFF) // -1
	setBatchCRC(claimsNone)

	// 80 bytes whose one record claims a billion headers: kafka-go's
	// readers allocate them (40 GB) and the process dies.
	claimsHeaders := encodeTestBatch(t, 0, testBatchOpts{}, testRecord{})
	claimsHeaders = claimsHeaders[:batchHeaderBytes]
	claimsHeaders = append(claimsHeaders, recordClaimingHeaders(1_000_000_000)...)
	binary.BigEndian.PutUint32(claimsHeaders[8:], uint32(len(claimsHeaders)-batchLengthEnd))
	setBatchCRC(claimsHeaders)
	return []hostileBatch{
		{"a batch claiming 200 million records", claimsMillions},
		{"a snappy chunk claiming 4 GiB", snappyBomb},
		{"a batch claiming no records", claimsNone},
		{"a record claiming a billion headers", claimsHeaders},
	}
}

// recordClaimingHeaders is a record at offset delta 0 with key "k", value
// "v" and a header count of n, followed by no headers.
func recordClaimingHeaders(n int64) []byte {
	body := []byte{0}                   // attributes
	body = binary.AppendVarint(body, 0) // timestamp delta
	body = binary.AppendVarint(body, 0) // offset delta
	body = binary.AppendVarint(body, 1)
	body = append(body, 'k')
	body = binary.AppendVarint(body, 1)
	body = append(body, 'v')
	body = binary.AppendVarint(body, n)
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}

// FuzzSnappy checks the bounded snappy reader two ways: whatever it is
// given, it returns an error or at most batchDecompressedBytesMax bytes
// without panicking; and whatever kafka-go's writer makes of some data,
// framed or not, it reads back as that data.
func FuzzSnappy(f *testing.F) {
	xerial := append(append([]byte(nil), xerialMagic...), 0, 0, 0, 1, 0, 0, 0, 1)
	f.Add(compressWith(f, compress.Snappy.Codec(), []byte(`{"event_id":"x","order_id":"o-1","version":1}`)))
	f.Add(compressWith(f, &kafkasnappy.Codec{Framing: kafkasnappy.Unframed}, []byte("orderd orderd orderd")))
	f.Add(binary.BigEndian.AppendUint32(bytes.Clone(xerial), 0xFFFFFFFF))
	f.Add(append(binary.AppendUvarint(nil, 0xFFFFFFFF), 0, 0, 0))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := decodeSnappy(b)
		if err == nil {
			require.LessOrEqual(t, len(out), batchDecompressedBytesMax)
		}
		for _, codec := range []compress.Codec{compress.Snappy.Codec(), &kafkasnappy.Codec{Framing: kafkasnappy.Unframed}} {
			back, err := decodeSnappy(compressWith(t, codec, b))
			require.NoError(t, err)
			require.True(t, bytes.Equal(b, back), "%d bytes back for %d", len(back), len(b))
		}
	})
}
