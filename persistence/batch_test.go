package persistence

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"testing"

	"github.com/segmentio/kafka-go/compress"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The batches here are encoded with franz-go's kmsg, not with anything of
// batch.go, so that the reader is checked against another implementation of
// the format.

// testRecord is one record of a test batch; offsetDelta is relative to the
// batch's first offset.
type testRecord struct {
	offsetDelta int32
	key, value  []byte
	headers     []kmsg.Header
}

func encodeTestRecord(r testRecord) []byte {
	rec := kmsg.Record{OffsetDelta: r.offsetDelta, Key: r.key, Value: r.value, Headers: r.headers}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1) // the length 0 took one byte
	return rec.AppendTo(nil)
}

// testBatchOpts changes a test batch from a plain v2 batch of data.
type testBatchOpts struct {
	attributes int16
	magic      int8                 // 2 if zero
	lastDelta  int32                // the last record's delta if zero
	codec      compress.Compression // compress the records (and set the attribute)
}

func encodeTestBatch(t testing.TB, base int64, opts testBatchOpts, records ...testRecord) []byte {
	var raw []byte
	for _, r := range records {
		raw = append(raw, encodeTestRecord(r)...)
	}
	if opts.codec != compress.None {
		var buf bytes.Buffer
		zw := opts.codec.Codec().NewWriter(&buf)
		_, err := zw.Write(raw)
		require.NoError(t, err)
		require.NoError(t, zw.Close())
		raw = buf.Bytes()
		opts.attributes |= int16(opts.codec)
	}
	b := kmsg.RecordBatch{
		FirstOffset: base, PartitionLeaderEpoch: -1, Magic: opts.magic, Attributes: opts.attributes,
		LastOffsetDelta: opts.lastDelta, FirstTimestamp: 1, MaxTimestamp: 1,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(records)), Records: raw,
	}
	if b.Magic == 0 {
		b.Magic = 2
	}
	if b.LastOffsetDelta == 0 && len(records) > 0 {
		b.LastOffsetDelta = records[len(records)-1].offsetDelta
	}
	b.Length = int32(len(b.AppendTo(nil)) - 12)
	enc := b.AppendTo(nil)
	b.CRC = int32(crc32.Checksum(enc[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b.AppendTo(nil)
}

// visited is what readBatches handed to visit.
type visited struct {
	offset     int64
	key, value []byte
}

func readAllBatches(b []byte) ([]visited, int64, error) {
	var got []visited
	next, err := readBatches(b, func(rec LogRecord) error {
		got = append(got, visited{rec.Offset, rec.Key, rec.Value})
		return nil
	}, nil)
	return got, next, err
}

var cloudEventsHeaders = []kmsg.Header{
	{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte("ev-1")},
	{Key: "ce_source", Value: []byte("orderd")}, {Key: "ce_type", Value: []byte("orderd.order.transitioned")},
	{Key: "ce_subject", Value: []byte("o-1")}, {Key: "ce_time", Value: []byte("2026-11-23T12:00:00.000000000Z")},
	{Key: "content-type", Value: []byte("application/json")}, {Key: "null-value"}, {Key: "", Value: []byte("empty key")},
}

func TestReadBatchesReadsEveryRecordInPlace(t *testing.T) {
	b := encodeTestBatch(t, 100, testBatchOpts{},
		testRecord{0, []byte("k0"), []byte("v0"), cloudEventsHeaders},
		testRecord{1, nil, []byte("null key"), nil},
		testRecord{2, []byte("null value"), nil, cloudEventsHeaders[:1]},
		testRecord{3, []byte{}, []byte{}, nil},
	)
	b = append(b, encodeTestBatch(t, 104, testBatchOpts{},
		testRecord{0, []byte("k4"), []byte("v4"), cloudEventsHeaders},
		testRecord{2, []byte("k6"), []byte("v6"), nil}, // 105 compacted away
	)...)
	got, next, err := readAllBatches(b)
	require.NoError(t, err)
	assert.Equal(t, []visited{
		{100, []byte("k0"), []byte("v0")},
		{101, nil, []byte("null key")},
		{102, []byte("null value"), nil},
		{103, []byte{}, []byte{}},
		{104, []byte("k4"), []byte("v4")},
		{106, []byte("k6"), []byte("v6")},
	}, got)
	assert.Nil(t, got[1].key, "a null key stays null")
	assert.NotNil(t, got[3].key, "an empty key is not null")
	assert.Equal(t, int64(107), next)
	assert.Equal(t, next, batchesEnd(b))
	// In place: the value is a slice of the response, not a copy.
	got[0].value[0] = 'X'
	assert.Contains(t, string(b), "X0")
}

func TestReadBatchesIgnoresAPartialLastBatch(t *testing.T) {
	first := encodeTestBatch(t, 0, testBatchOpts{}, testRecord{0, []byte("k0"), []byte("v0"), cloudEventsHeaders})
	second := encodeTestBatch(t, 1, testBatchOpts{}, testRecord{0, []byte("k1"), []byte("v1"), nil},
		testRecord{1, []byte("k2"), []byte("v2"), nil})
	for cut := range len(second) {
		response := append(append([]byte(nil), first...), second[:cut]...)
		got, next, err := readAllBatches(response)
		require.NoError(t, err, "cut at %d", cut)
		assert.Equal(t, []visited{{0, []byte("k0"), []byte("v0")}}, got, "cut at %d", cut)
		assert.Equal(t, int64(1), next, "cut at %d: the next fetch starts at the partial batch", cut)
		assert.Equal(t, int64(1), batchesEnd(response), "cut at %d", cut)
	}
}

// A batch whose bytes are not what its producer sent (a wrong CRC) or whose
// offsets make no sense is damaged (ErrBatchDamaged); one whose bytes are
// what its producer sent but that holds nothing orderd can read (records
// not what its header claims, an unknown codec, an old message format) is
// corrupt.
func TestReadBatchesStopsAtWhatItCannotRead(t *testing.T) {
	good := encodeTestBatch(t, 0, testBatchOpts{}, testRecord{0, []byte("k0"), []byte("v0"), nil})
	records := []testRecord{{0, []byte("k1"), []byte("v1"), cloudEventsHeaders}, {1, []byte("k2"), []byte("v2"), nil}}
	badCRC := encodeTestBatch(t, 1, testBatchOpts{}, records...)
	badCRC[len(badCRC)-1] ^= 1
	// A record whose length claims a byte more than the batch holds,
	// with a CRC that matches: the producer wrote it so.
	badRecord := encodeTestBatch(t, 1, testBatchOpts{}, records...)
	badRecord[batchHeaderBytes] += 2 // zigzag: +1
	setBatchCRC(badRecord)
	tooManyRecords := encodeTestBatch(t, 1, testBatchOpts{}, records...)
	binary.BigEndian.PutUint32(tooManyRecords[batchRecordCountAt:], 3)
	setBatchCRC(tooManyRecords)
	deltaBeyondLast := encodeTestBatch(t, 1, testBatchOpts{lastDelta: 0}, testRecord{1, []byte("k"), []byte("v"), nil})
	binary.BigEndian.PutUint32(deltaBeyondLast[batchLastDeltaAt:], 0)
	setBatchCRC(deltaBeyondLast)
	negativeLength := encodeTestBatch(t, 1, testBatchOpts{}, records...)
	binary.BigEndian.PutUint32(negativeLength[8:], 0xFFFFFFFF)
	// What made kafka-go allocate 18 GiB: a record count no batch of this
	// size can hold.
	claimsMillions := encodeTestBatch(t, 1, testBatchOpts{lastDelta: 199_999_999}, records...)
	binary.BigEndian.PutUint32(claimsMillions[batchRecordCountAt:], 200_000_000)
	setBatchCRC(claimsMillions)

	k0 := visited{0, []byte("k0"), []byte("v0")}
	// Records are visited as they are read: those of a batch before the
	// record that gives it away too.
	prefix := []visited{k0, {1, []byte("k1"), []byte("v1")}, {2, []byte("k2"), []byte("v2")}}
	for _, tc := range []struct {
		name    string
		bad     []byte
		want    []visited
		wantErr error
	}{
		{"bad CRC", badCRC, prefix[:1], ErrBatchDamaged},
		{"unknown codec", encodeTestBatch(t, 1, testBatchOpts{attributes: 6}, records...), prefix[:1], errBatchCorrupt},
		{"magic 1", encodeTestBatch(t, 1, testBatchOpts{magic: 1}, records...), prefix[:1], errBatchCorrupt},
		{"magic 3", encodeTestBatch(t, 1, testBatchOpts{magic: 3}, records...), prefix[:1], ErrBatchDamaged},
		{"negative length", negativeLength, prefix[:1], ErrBatchDamaged},
		{"shorter than magic", binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, 1), 2), prefix[:1], ErrBatchDamaged},
		{"record too long", badRecord, prefix[:1], errBatchCorrupt},
		{"too many records", tooManyRecords, prefix, errBatchCorrupt},
		{"claims millions of records", claimsMillions, prefix[:1], errBatchCorrupt},
		{"delta beyond last", deltaBeyondLast, prefix[:1], errBatchCorrupt},
		{"not what its codec says", encodeTestBatch(t, 1, testBatchOpts{attributes: int16(compress.Lz4)}, records...), prefix[:1], errBatchCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			response := append(append([]byte(nil), good...), tc.bad...)
			response = append(response, encodeTestBatch(t, 3, testBatchOpts{}, testRecord{0, []byte("k3"), []byte("v3"), nil})...)
			got, next, err := readAllBatches(response)
			require.ErrorIs(t, err, tc.wantErr)
			assert.Equal(t, tc.want, got, "what came before is read, nothing after")
			assert.Equal(t, int64(1), next, "the end of the last batch read whole")
		})
	}
}

// With skip, the reader passes over a corrupt batch to the next one, by the
// offsets the broker gave the batch; a batch whose own offsets make no sense
// still stops it, as there is no telling where the next one starts.
func TestReadBatchesSkipsCorruptBatches(t *testing.T) {
	good := encodeTestBatch(t, 0, testBatchOpts{}, testRecord{0, []byte("k0"), []byte("v0"), nil})
	claimsMillions := encodeTestBatch(t, 1, testBatchOpts{lastDelta: 199_999_999}, testRecord{0, []byte("k1"), []byte("v1"), nil})
	binary.BigEndian.PutUint32(claimsMillions[batchRecordCountAt:], 200_000_000)
	setBatchCRC(claimsMillions)
	after := encodeTestBatch(t, 200_000_001, testBatchOpts{}, testRecord{0, []byte("k2"), []byte("v2"), nil})
	noOffsets := bytes.Clone(claimsMillions)
	binary.BigEndian.PutUint32(noOffsets[batchLastDeltaAt:], 0xFFFFFFF0) // -16
	setBatchCRC(noOffsets)

	var got []visited
	var skipped []int64
	visit := func(rec LogRecord) error {
		got = append(got, visited{rec.Offset, rec.Key, rec.Value})
		return nil
	}
	skip := func(offset int64, err error) error {
		assert.ErrorIs(t, err, errBatchCorrupt)
		skipped = append(skipped, offset)
		return nil
	}
	next, err := readBatches(slices.Concat(good, claimsMillions, after), visit, skip)
	require.NoError(t, err)
	assert.Equal(t, []visited{{0, []byte("k0"), []byte("v0")}, {200_000_001, []byte("k2"), []byte("v2")}}, got)
	assert.Equal(t, []int64{1}, skipped)
	assert.Equal(t, int64(200_000_002), next)

	got, skipped = nil, nil
	next, err = readBatches(slices.Concat(good, noOffsets, after), visit, skip)
	assert.ErrorIs(t, err, errBatchCorrupt)
	assert.ErrorContains(t, err, "offsets 1 to 1+-16")
	assert.Empty(t, skipped)
	assert.Equal(t, int64(1), next)
}

// Compressed batches are read on the fast path too: their records are
// expanded into a pooled buffer, and what visit gets is the same as from a
// plain batch.
func TestReadBatchesReadsCompressedBatches(t *testing.T) {
	records := []testRecord{{0, []byte("k0"), []byte("v0"), cloudEventsHeaders}, {1, nil, nil, nil}, {2, []byte("k2"), bytes.Repeat([]byte("v"), 5000), cloudEventsHeaders}}
	plain, _, err := readAllBatches(encodeTestBatch(t, 7, testBatchOpts{}, records...))
	require.NoError(t, err)
	for _, codec := range []compress.Compression{compress.Gzip, compress.Snappy, compress.Lz4, compress.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			batch := encodeTestBatch(t, 7, testBatchOpts{codec: codec}, records...)
			var got []visited
			next, err := readBatches(append(batch, batch[:20]...), func(rec LogRecord) error {
				offset, key, value := rec.Offset, rec.Key, rec.Value
				// The records live in a recycled buffer: copy what is kept.
				got = append(got, visited{offset, bytes.Clone(key), bytes.Clone(value)})
				return nil
			}, nil)
			require.NoError(t, err)
			assert.Equal(t, plain, got)
			assert.Equal(t, int64(10), next)
		})
	}
}

// A batch that expands beyond batchDecompressedBytesMax is corrupt, however
// small it is compressed.
func TestReadBatchesBoundsDecompression(t *testing.T) {
	var raw bytes.Buffer
	zw := compress.Gzip.Codec().NewWriter(&raw)
	_, err := zw.Write(make([]byte, batchDecompressedBytesMax+1))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	b := kmsg.RecordBatch{
		FirstOffset: 0, PartitionLeaderEpoch: -1, Magic: 2, Attributes: int16(compress.Gzip),
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1, Records: raw.Bytes(),
	}
	b.Length = int32(len(b.AppendTo(nil)) - 12)
	enc := b.AppendTo(nil)
	b.CRC = int32(crc32.Checksum(enc[21:], castagnoli))
	_, _, err = readAllBatches(b.AppendTo(nil))
	assert.ErrorIs(t, err, errBatchCorrupt)
	assert.ErrorContains(t, err, "expands beyond")
}

func TestReadBatchesPassesOverControlAndEmptyBatches(t *testing.T) {
	marker := encodeTestBatch(t, 0, testBatchOpts{attributes: batchControlBit | 0x10},
		testRecord{0, []byte{0, 0, 0, 1}, []byte{0, 0, 0, 0, 0, 0}, nil})
	compacted := encodeTestBatch(t, 1, testBatchOpts{lastDelta: 4})
	data := encodeTestBatch(t, 6, testBatchOpts{attributes: 0x10}, testRecord{0, []byte("k6"), []byte("v6"), nil})
	got, next, err := readAllBatches(append(append(marker, compacted...), data...))
	require.NoError(t, err)
	assert.Equal(t, []visited{{6, []byte("k6"), []byte("v6")}}, got, "transactional data is data; markers are not")
	assert.Equal(t, int64(7), next)

	_, next, err = readAllBatches(compacted)
	require.NoError(t, err)
	assert.Equal(t, int64(6), next, "a batch emptied by compaction still moves the reader on")
}

func TestReadBatchesStopsWhenVisitSaysSo(t *testing.T) {
	b := encodeTestBatch(t, 0, testBatchOpts{}, testRecord{0, []byte("k0"), nil, nil}, testRecord{1, []byte("k1"), nil, nil})
	stop := errors.New("enough")
	calls := 0
	_, err := readBatches(b, func(LogRecord) error { calls++; return stop }, nil)
	assert.ErrorIs(t, err, stop)
	assert.Equal(t, 1, calls)
}

// FuzzReadBatches feeds arbitrary responses to the batch reader: it must
// never panic, hand out records in increasing offset order within the
// batches it read, skipping corrupt ones or not, and agree with batchesEnd
// about where they end. The seed
// corpus is in testdata/fuzz/FuzzReadBatches; these add batches of every
// kind the tests build.
func FuzzReadBatches(f *testing.F) {
	records := []testRecord{{0, []byte("k0"), []byte("v0"), cloudEventsHeaders}, {1, nil, nil, nil}, {3, []byte{}, []byte("v3"), nil}}
	for _, opts := range []testBatchOpts{{}, {codec: compress.Gzip}, {codec: compress.Snappy}, {codec: compress.Lz4},
		{codec: compress.Zstd}, {magic: 1}, {attributes: batchControlBit}, {lastDelta: 9}} {
		b := encodeTestBatch(f, 5, opts, records...)
		f.Add(b)
		f.Add(append(b, b[:len(b)/2]...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, skipCorrupt := range []bool{false, true} {
			prev := int64(-1)
			var skip func(int64, error) error
			if skipCorrupt {
				skip = func(offset int64, err error) error {
					require.ErrorIs(t, err, errBatchCorrupt)
					return nil
				}
			}
			next, err := readBatches(b, func(rec LogRecord) error {
				require.Greater(t, rec.Offset, prev, "offsets increase")
				prev = rec.Offset
				return nil
			}, skip)
			if err != nil {
				if !errors.Is(err, errBatchCorrupt) {
					require.ErrorIs(t, err, ErrBatchDamaged)
				}
				continue
			}
			require.Greater(t, next, prev, "next is past every record read")
			require.Equal(t, next, batchesEnd(b), "batchesEnd agrees on where the batches end")
		}
	})
}

// Batches out of offset order are damaged: the read stops after the records
// of the batches before them; batchesEnd stops at the same place.
func TestReadBatchesRefusesOutOfOrderBatches(t *testing.T) {
	later := encodeTestBatch(t, 10, testBatchOpts{}, testRecord{0, []byte("k10"), []byte("v10"), nil})
	earlier := encodeTestBatch(t, 3, testBatchOpts{}, testRecord{0, []byte("k3"), []byte("v3"), nil})
	var got []int64
	_, err := readBatches(append(append([]byte{}, later...), earlier...), func(rec LogRecord) error {
		got = append(got, rec.Offset)
		return nil
	}, nil)
	assert.ErrorIs(t, err, ErrBatchDamaged)
	assert.Equal(t, []int64{10}, got)
	assert.Equal(t, int64(11), batchesEnd(append(append([]byte{}, later...), earlier...)))
}

// A record's headers are found by name, the first of a name winning; a
// null header value reads as nil.
func TestLogRecordHeaders(t *testing.T) {
	headers := append(slices.Clone(cloudEventsHeaders), kmsg.Header{Key: "ce_type", Value: []byte("second")})
	b := encodeTestBatch(t, 0, testBatchOpts{codec: compress.Lz4}, testRecord{0, []byte("k0"), []byte("v0"), headers},
		testRecord{1, []byte("k1"), []byte("v1"), nil})
	var found [][]string
	_, err := readBatches(b, func(rec LogRecord) error {
		var got []string
		for _, name := range []string{"ce_type", "ce_id", "null-value", "", "missing"} {
			v, ok := rec.Header(name)
			got = append(got, fmt.Sprintf("%s=%q/%v/%v", name, v, ok, v == nil))
		}
		found = append(found, got)
		return nil
	}, nil)
	require.NoError(t, err)
	assert.Equal(t, [][]string{
		{`ce_type="orderd.order.transitioned"/true/false`, `ce_id="ev-1"/true/false`, `null-value=""/true/true`, `="empty key"/true/false`, `missing=""/false/true`},
		{`ce_type=""/false/true`, `ce_id=""/false/true`, `null-value=""/false/true`, `=""/false/true`, `missing=""/false/true`},
	}, found)
}
