package persistence

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence/kfaketest"
)

// completeBatches lists (base offset, last offset delta) of the complete
// batches at the start of b, and the bytes after them.
func completeBatches(b []byte) (spans [][2]int64, rest []byte) {
	for len(b) >= batchHeaderBytes {
		length := int64(int32(binary.BigEndian.Uint32(b[8:])))
		if length < batchHeaderBytes-batchLengthEnd || int64(len(b))-batchLengthEnd < length {
			break
		}
		spans = append(spans, [2]int64{int64(binary.BigEndian.Uint64(b)), int64(int32(binary.BigEndian.Uint32(b[batchLastDeltaAt:])))})
		b = b[batchLengthEnd+length:]
	}
	return spans, b
}

// A corrupt batch between good ones becomes a placeholder over the same
// offsets, with one record at its last offset that no decoder accepts; the
// good batches and the partial batch that ends a response are left as they
// are, byte for byte.
func TestSanitizeBatchesReplacesCorruptBatches(t *testing.T) {
	for _, hostile := range hostileBatches(t) {
		t.Run(hostile.name, func(t *testing.T) {
			first := encodeTestBatch(t, 0, testBatchOpts{}, testRecord{0, []byte("a"), []byte("1"), nil}, testRecord{1, []byte("b"), []byte("2"), nil})
			bad := bytes.Clone(hostile.batch)
			binary.BigEndian.PutUint64(bad, 2) // the broker assigns offsets; the CRC does not cover them
			badLastDelta := int64(int32(binary.BigEndian.Uint32(bad[batchLastDeltaAt:])))
			after := 2 + badLastDelta + 1
			last := encodeTestBatch(t, after, testBatchOpts{}, testRecord{0, []byte("c"), []byte("3"), nil})
			partial := encodeTestBatch(t, after+1, testBatchOpts{}, testRecord{0, []byte("d"), []byte("4"), nil})[:30]
			in := bytes.Join([][]byte{first, bad, last, partial}, nil)

			out, changed, refused := sanitizeBatches(in)
			require.True(t, changed)
			require.False(t, refused)
			inSpans, _ := completeBatches(in)
			outSpans, rest := completeBatches(out)
			assert.Equal(t, inSpans, outSpans, "the same offsets")
			assert.Equal(t, partial, rest, "the partial batch")
			assert.True(t, bytes.HasPrefix(out, first), "the batch before, unchanged")
			assert.True(t, bytes.HasSuffix(out, append(bytes.Clone(last), partial...)), "the batch after, unchanged")

			var got []visited
			next, err := readBatches(out, func(o int64, k, v []byte) error {
				got = append(got, visited{o, bytes.Clone(k), bytes.Clone(v)})
				return nil
			}, nil)
			require.NoError(t, err, "nothing corrupt is left")
			assert.Equal(t, after+1, next)
			want := []visited{{0, []byte("a"), []byte("1")}, {1, []byte("b"), []byte("2")}}
			if badLastDelta >= 0 { // a batch of no offsets gets no record
				want = append(want, visited{2 + badLastDelta, nil, nil})
			}
			want = append(want, visited{after, []byte("c"), []byte("3")})
			assert.Equal(t, want, got)
		})
	}
	good := encodeTestBatch(t, 0, testBatchOpts{}, testRecord{0, []byte("a"), []byte("1"), nil})
	out, changed, refused := sanitizeBatches(good)
	assert.False(t, changed)
	assert.False(t, refused)
	assert.Equal(t, good, out)
}

// A corrupt batch at offsets that make no sense, and a batch whose CRC is
// wrong, have no placeholder: the batches before it are kept and the rest cut
// off; with none before it, the partition is refused. Only a broken broker
// assigns such offsets (the CRC does not cover the base offset), so the
// hostile batch here gets a negative one.
func TestSanitizeBatchesCutsAtUnplaceableBatches(t *testing.T) {
	first := encodeTestBatch(t, 0, testBatchOpts{}, testRecord{0, []byte("a"), []byte("1"), nil})
	last := encodeTestBatch(t, 9, testBatchOpts{}, testRecord{0, []byte("c"), []byte("3"), nil})
	assertCut := func(t *testing.T, bad []byte, why string) {
		t.Helper()
		out, changed, refused := sanitizeBatches(bytes.Join([][]byte{first, bad, last}, nil))
		assert.True(t, changed, why)
		assert.False(t, refused, why)
		assert.Equal(t, first, out, "%s: the batch before, and nothing after", why)

		out, changed, refused = sanitizeBatches(bytes.Join([][]byte{bad, last}, nil))
		assert.True(t, changed, why)
		assert.True(t, refused, why)
		assert.Empty(t, out, why)
	}

	badCRC := encodeTestBatch(t, 1, testBatchOpts{}, testRecord{0, []byte("b"), []byte("2"), nil})
	badCRC[len(badCRC)-1] ^= 1
	assertCut(t, badCRC, "a bit flipped in a record")
	for _, hostile := range hostileBatches(t) {
		t.Run(hostile.name, func(t *testing.T) {
			bad := bytes.Clone(hostile.batch)
			bases := []int64{-1, math.MinInt64}
			if int32(binary.BigEndian.Uint32(bad[batchLastDeltaAt:])) >= 0 {
				bases = append(bases, math.MaxInt64) // past it, for a batch with offsets
			}
			for _, base := range bases {
				binary.BigEndian.PutUint64(bad, uint64(base))
				assertCut(t, bad, fmt.Sprintf("base %d", base))
			}
		})
	}

	// The same batch at a good offset gets its placeholder: only the
	// offsets are refused.
	bad := bytes.Clone(hostileBatches(t)[0].batch)
	binary.BigEndian.PutUint64(bad, 1)
	_, changed, refused := sanitizeBatches(bad)
	assert.True(t, changed)
	assert.False(t, refused)
}

// discardConn is a connection whose writes go nowhere.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error) { return len(p), nil }

// The connection follows the requests' framing however kafka-go's writes
// cut it, and notes the Fetch requests (key 1) only.
func TestSanitizingConnNotesFetchRequests(t *testing.T) {
	request := func(key, version int16, id int32, bodyBytes int) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(requestHeadBytes-4+bodyBytes))
		b = binary.BigEndian.AppendUint16(b, uint16(key))
		b = binary.BigEndian.AppendUint16(b, uint16(version))
		b = binary.BigEndian.AppendUint32(b, uint32(id))
		return append(b, make([]byte, bodyBytes)...)
	}
	stream := bytes.Join([][]byte{
		request(fetchAPIKey, 10, 7, 40),
		request(3, 5, 8, 0), // metadata
		request(fetchAPIKey, 11, 9, 1000),
		request(0, 7, 10, 300), // produce
		request(fetchAPIKey, 5, 11, 3),
	}, nil)
	for _, chunk := range []int{1, 5, 12, 13, 100, len(stream)} {
		c := &sanitizingConn{Conn: discardConn{}, fetches: map[int32]int16{}}
		for b := stream; len(b) > 0; {
			n := min(chunk, len(b))
			written, err := c.Write(b[:n])
			require.NoError(t, err)
			require.Equal(t, n, written)
			b = b[n:]
		}
		assert.Equal(t, map[int32]int16{7: 10, 9: 11, 11: 5}, c.fetches, "writes of %d bytes", chunk)
	}

	c := &sanitizingConn{Conn: discardConn{}, fetches: map[int32]int16{}}
	for id := range int32(sanitizeRequestsInFlightMax) {
		_, err := c.Write(request(fetchAPIKey, 10, id, 0))
		require.NoError(t, err)
	}
	_, err := c.Write(request(fetchAPIKey, 10, sanitizeRequestsInFlightMax, 0))
	assert.ErrorContains(t, err, "fetch requests in flight")
}

// chunkedConn hands out what it holds a few bytes at a time, failing every
// other read as a deadline would, to show that a response read in pieces,
// across errors, comes out whole.
type chunkedConn struct {
	net.Conn
	in    []byte
	reads int
}

func (c *chunkedConn) Read(p []byte) (int, error) {
	c.reads++
	if c.reads%2 == 0 {
		return 0, errors.New("i/o timeout")
	}
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 7)], c.in)
	c.in = c.in[n:]
	return n, nil
}

// drain reads c, five bytes at a time, to its end.
func drain(c net.Conn) []byte {
	var got []byte
	buf := make([]byte, 5)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return got
		}
	}
}

// A Fetch response is rewritten when it holds a corrupt batch, under its
// correlation ID and with its size prefix right; any other response, and a
// Fetch response with nothing corrupt, passes byte for byte.
func TestSanitizingConnRewritesFetchResponses(t *testing.T) {
	good := encodeTestBatch(t, 0, testBatchOpts{}, testRecord{0, []byte("a"), []byte("1"), nil})
	bad := hostileBatches(t)[0].batch
	binary.BigEndian.PutUint64(bad, 1)
	fetchResponse := func(version int16, batches []byte) []byte {
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = version
		topic := kmsg.NewFetchResponseTopic()
		topic.Topic = DefaultTopic
		part := kmsg.NewFetchResponseTopicPartition()
		part.HighWatermark, part.RecordBatches = 2, batches
		topic.Partitions = append(topic.Partitions, part)
		resp.Topics = append(resp.Topics, topic)
		return resp.AppendTo(nil)
	}
	frame := func(id int32, body []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
		b = binary.BigEndian.AppendUint32(b, uint32(id))
		return append(b, body...)
	}
	clean := frame(1, fetchResponse(10, good))
	dirty := frame(2, fetchResponse(10, append(bytes.Clone(good), bad...)))
	other := frame(3, fetchResponse(10, append(bytes.Clone(good), bad...))) // not a fetch's answer
	unparseable := frame(4, []byte("left as it is"))                        // as flexible, its tagged fields run past its end
	unplaceable := bytes.Clone(bad)
	binary.BigEndian.PutUint64(unplaceable, math.MaxUint64) // offset -1: only a broken broker assigns it
	refused := frame(5, fetchResponse(10, append(unplaceable, good...)))
	src := &chunkedConn{in: bytes.Join([][]byte{clean, dirty, other, unparseable, refused}, nil)}
	c := &sanitizingConn{Conn: src, fetches: map[int32]int16{1: 10, 2: 10, 4: fetchFlexibleVersionMin, 5: 10}}

	got := drain(c)
	require.True(t, bytes.HasPrefix(got, clean), "a clean fetch response")
	got = got[len(clean):]
	size := int(binary.BigEndian.Uint32(got))
	require.GreaterOrEqual(t, len(got), 4+size)
	rewritten := got[:4+size]
	got = got[4+size:]
	assert.Equal(t, int32(2), int32(binary.BigEndian.Uint32(rewritten[4:])), "correlation ID")
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 10
	require.NoError(t, resp.ReadFrom(rewritten[8:]))
	batches := resp.Topics[0].Partitions[0].RecordBatches
	assert.True(t, bytes.HasPrefix(batches, good))
	_, err := readBatches(batches, func(int64, []byte, []byte) error { return nil }, nil)
	assert.NoError(t, err, "nothing corrupt is left")
	assert.Equal(t, int64(2), resp.Topics[0].Partitions[0].HighWatermark)
	require.True(t, bytes.HasPrefix(got, append(other, unparseable...)), "the others, unchanged")
	got = got[len(other)+len(unparseable):]

	require.NoError(t, resp.ReadFrom(got[8:]), "a refused partition, in a response of its own")
	part := resp.Topics[0].Partitions[0]
	assert.Equal(t, int16(corruptMessageErrorCode), part.ErrorCode)
	assert.Equal(t, kafka.InvalidMessage, kafka.Error(part.ErrorCode), "what kafka-go hands its reader's caller")
	assert.Empty(t, part.RecordBatches, "no records the reader could not place")
	assert.Empty(t, c.fetches, "every answered request forgotten")

	huge := &sanitizingConn{Conn: &chunkedConn{in: binary.BigEndian.AppendUint32(nil, sanitizeResponseBytesMax+1)}, fetches: map[int32]int16{}}
	var readErr error
	for range 4 {
		if _, readErr = huge.Read(make([]byte, 5)); readErr != nil && readErr.Error() != "i/o timeout" {
			break
		}
	}
	assert.ErrorContains(t, readErr, "at most")
}

// Flexible Fetch responses (v12 on) are rewritten too: the tagged fields of
// their header are kept as they came, and the body, with topic IDs from
// v13, is sanitized like any other.
func TestSanitizingConnRewritesFlexibleFetchResponses(t *testing.T) {
	good := encodeTestBatch(t, 0, testBatchOpts{}, testRecord{0, []byte("a"), []byte("1"), nil})
	bad := hostileBatches(t)[0].batch
	binary.BigEndian.PutUint64(bad, 1)
	headerTags := []byte{1, 0, 2, 'h', 'i'} // one field: tag 0, two bytes
	topicID := [16]byte{1, 2, 3}
	for _, version := range []int16{fetchFlexibleVersionMin, 13, 16} {
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = version
		topic := kmsg.NewFetchResponseTopic()
		topic.Topic, topic.TopicID = DefaultTopic, topicID
		part := kmsg.NewFetchResponseTopicPartition()
		part.HighWatermark, part.RecordBatches = 2, append(bytes.Clone(good), bad...)
		topic.Partitions = append(topic.Partitions, part)
		resp.Topics = append(resp.Topics, topic)
		body := append(bytes.Clone(headerTags), resp.AppendTo(nil)...)
		in := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
		in = binary.BigEndian.AppendUint32(in, 7)
		in = append(in, body...)

		c := &sanitizingConn{Conn: &chunkedConn{in: in}, fetches: map[int32]int16{7: version}}
		got := drain(c)
		require.GreaterOrEqual(t, len(got), responseHeadBytes+len(headerTags), "v%d", version)
		assert.Equal(t, len(got)-4, int(binary.BigEndian.Uint32(got)), "v%d: the size prefix", version)
		assert.Equal(t, int32(7), int32(binary.BigEndian.Uint32(got[4:])), "v%d: the correlation ID", version)
		assert.Equal(t, headerTags, got[responseHeadBytes:responseHeadBytes+len(headerTags)], "v%d: the header's tagged fields", version)
		out := kmsg.NewPtrFetchResponse()
		out.Version = version
		require.NoError(t, out.ReadFrom(got[responseHeadBytes+len(headerTags):]), "v%d", version)
		if version >= 13 {
			assert.Equal(t, topicID, out.Topics[0].TopicID, "v%d", version)
		}
		batches := out.Topics[0].Partitions[0].RecordBatches
		assert.True(t, bytes.HasPrefix(batches, good), "v%d", version)
		spans, _ := completeBatches(batches)
		assert.Len(t, spans, 2, "v%d: the good batch and the placeholder", version)
		_, err := readBatches(batches, func(int64, []byte, []byte) error { return nil }, nil)
		assert.NoError(t, err, "v%d: nothing corrupt is left", version)
	}
}

// A client that asks for flexible Fetch versions (franz-go asks for v16,
// with topic IDs and fetch sessions), given SanitizeFetches as its dialer,
// reads past every hostile batch the way kafka-go does: one placeholder
// record, and orderd's records around it.
func TestFranzGoReadsPastHostileBatchesWhenSanitized(t *testing.T) {
	for _, hostile := range hostileBatches(t) {
		t.Run(hostile.name, func(t *testing.T) {
			e, _, events := journalAround(t, hostile.batch)
			ctx := testContext(t)
			cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addr()), kgo.ConsumeTopics(DefaultTopic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.Dialer(SanitizeFetches(nil)))
			require.NoError(t, err)
			defer cl.Close()
			var decoded []string
			var placeholders int
			for len(decoded) < len(events) {
				fetches := cl.PollFetches(ctx)
				require.NoError(t, ctx.Err())
				for _, fe := range fetches.Errors() {
					require.NoError(t, fe.Err)
				}
				for _, r := range fetches.Records() {
					if ev, err := DecodeEvent(r.Key, r.Value); err == nil {
						decoded = append(decoded, ev.EventID)
					}
					for _, h := range r.Headers {
						if h.Key == CorruptBatchHeader {
							placeholders++
						}
					}
				}
			}
			assert.Equal(t, []string{events[0].EventID, events[1].EventID}, decoded)
			if int32(binary.BigEndian.Uint32(hostile.batch[batchLastDeltaAt:])) >= 0 {
				assert.Equal(t, 1, placeholders, "the corrupt batch, as one record")
			} else {
				assert.Zero(t, placeholders, "a batch of no offsets has no placeholder record")
			}
		})
	}
}

// Tagged fields are measured only when whole.
func TestTaggedFieldsLen(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want int
		ok   bool
	}{
		{[]byte{0}, 1, true},
		{[]byte{0, 9, 9}, 1, true},
		{[]byte{1, 0, 2, 'h', 'i'}, 5, true},
		{[]byte{2, 0, 0, 5, 1, 'x'}, 6, true},
		{nil, 0, false},
		{[]byte{1, 0, 3, 'h', 'i'}, 0, false},
		{[]byte{1, 0}, 0, false},
		{[]byte{0xff}, 0, false},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 0, false}, // 2^63-1 fields in 9 bytes
	} {
		got, ok := taggedFieldsLen(tc.in)
		assert.Equal(t, tc.ok, ok, "%x", tc.in)
		assert.Equal(t, tc.want, got, "%x", tc.in)
	}
}

// kafka-go's own readers, on connections from SanitizeFetches, read past
// every hostile batch that would otherwise kill the process: a Reader (what
// orderctl tail uses) and the journal's kafka.Client fetch (its fallback).
func TestKafkaGoReadsPastHostileBatches(t *testing.T) {
	for _, hostile := range hostileBatches(t) {
		t.Run(hostile.name, func(t *testing.T) {
			e, j, _ := journalAround(t, hostile.batch)
			ctx := testContext(t)
			ends, err := j.listOffsets(ctx, []int{0}, kafka.LastOffsetOf)
			require.NoError(t, err)
			end := ends[0]

			r := kafka.NewReader(kafka.ReaderConfig{
				Brokers: []string{e.Addr()}, Topic: DefaultTopic, Partition: 0,
				Dialer:  &kafka.Dialer{DialFunc: SanitizeFetches(e.Dial)},
				MaxWait: 100 * time.Millisecond,
			})
			defer r.Close()
			var decoded []int64
			var reasons []string
			for {
				m, err := r.ReadMessage(ctx)
				require.NoError(t, err)
				if _, err := DecodeEvent(m.Key, m.Value); err == nil {
					decoded = append(decoded, m.Offset)
				}
				for _, h := range m.Headers {
					if h.Key == CorruptBatchHeader {
						assert.Nil(t, m.Value)
						reasons = append(reasons, string(h.Value))
					}
				}
				if m.Offset == end-1 {
					break
				}
			}
			assert.Equal(t, []int64{0, end - 1}, decoded, "the journal's two records")
			if lastDelta := int32(binary.BigEndian.Uint32(hostile.batch[batchLastDeltaAt:])); lastDelta >= 0 {
				require.Len(t, reasons, 1, "one placeholder")
				assert.Contains(t, reasons[0], "corrupt record batch at offset 1")
			} else {
				assert.Empty(t, reasons, "a batch of no offsets has no placeholder record")
			}

			records, err := j.fetch(ctx, 0, 0)
			require.NoError(t, err)
			var offsets []int64
			for {
				rec, err := records.ReadRecord()
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(t, err)
				offsets = append(offsets, rec.Offset)
				closeRecord(rec)
			}
			assert.Contains(t, offsets, end-1, "the fetch reads up to the last record")
		})
	}
}

// FuzzSanitizeBatches: whatever the bytes, sanitizing them does not panic,
// keeps the complete batches' offsets and what follows them, and leaves no
// complete batch that is corrupt.
func FuzzSanitizeBatches(f *testing.F) {
	// The seeds are in testdata: FuzzReadBatches' and, after a good batch,
	// each of hostileBatches.
	f.Fuzz(func(t *testing.T, in []byte) {
		out, changed, refused := sanitizeBatches(in)
		if !changed {
			require.Equal(t, in, out)
		}
		if refused {
			require.Empty(t, out)
		}
		inSpans, inRest := completeBatches(in)
		outSpans, outRest := completeBatches(out)
		if cut := len(outSpans); changed && len(outRest) == 0 && cut < len(inSpans) {
			// Cut at a batch with a wrong CRC, or a corrupt one whose
			// offsets make no sense: what comes before it stays.
			base, last := inSpans[cut][0], inSpans[cut][1]
			batch := in
			for range cut {
				batch = batch[batchLengthEnd+int(binary.BigEndian.Uint32(batch[8:])):]
			}
			badCRC := batch[batchMagicAt] == batchMagicV2 && !batchCRCMatches(batch[:batchLengthEnd+int(binary.BigEndian.Uint32(batch[8:]))])
			require.True(t, badCRC || base < 0 || last < -1 || base > math.MaxInt64-1-last, "cut at %v", inSpans[cut])
			require.True(t, slices.Equal(inSpans[:cut], outSpans), "%v kept of %v", outSpans, inSpans)
		} else {
			require.False(t, refused)
			require.Equal(t, inSpans, outSpans)
			require.Equal(t, inRest, outRest)
		}
		for b := out; ; {
			spans, _ := completeBatches(b)
			if len(spans) == 0 {
				break
			}
			length := int(binary.BigEndian.Uint32(b[8:]))
			batch := b[:batchLengthEnd+length]
			_, err := readBatch(spans[0][0], batch, func(int64, []byte, []byte) error { return nil })
			require.NotErrorIs(t, err, errBatchCorrupt)
			b = b[len(batch):]
		}
	})
}

// The journal's own kafka-go fetches fit a sanitizing connection's bound,
// with room for the one batch a broker may add beyond a fetch's limit.
func TestSanitizeBoundFitsTheJournalsFetches(t *testing.T) {
	const brokerBatchBytesMax = 1 << 20 // message.max.bytes, Kafka's default
	assert.Less(t, fetchBytesMax+brokerBatchBytesMax, sanitizeResponseBytesMax)
}

// FuzzSanitizingConnResponses feeds arbitrary bytes to a sanitizing
// connection as the broker's side of the stream, with correlation IDs 0 to
// 3 awaited as Fetch responses of versions 4, 10, 11 and 12: whatever
// arrives, it does not panic, and what it hands out is whole frames, as
// many as came in, each under its own correlation ID.
func FuzzSanitizingConnResponses(f *testing.F) {
	// The seeds are in testdata: a Fetch response of each version with a
	// corrupt batch (v12's with tagged fields in its header), three in one
	// stream, other answers.
	f.Fuzz(func(t *testing.T, stream []byte) {
		c := &sanitizingConn{Conn: &chunkedConn{in: bytes.Clone(stream)}, fetches: map[int32]int16{0: 4, 1: 10, 2: 11, 3: 12}}
		var out []byte
		buf := make([]byte, 64)
		// Every other read of chunkedConn fails, and each other one
		// brings a byte at least: this is more reads than it takes.
		for range 8*len(stream) + 16 {
			n, err := c.Read(buf)
			out = append(out, buf[:n]...)
			if err != nil && err.Error() != "i/o timeout" {
				break
			}
		}
		var inIDs, outIDs []int32
		for _, frames := range []struct {
			b   []byte
			ids *[]int32
		}{{stream, &inIDs}, {out, &outIDs}} {
			for b := frames.b; len(b) >= 8; {
				size := int64(int32(binary.BigEndian.Uint32(b)))
				if size < 4 || size > int64(len(b)-4) || size > sanitizeResponseBytesMax {
					break
				}
				*frames.ids = append(*frames.ids, int32(binary.BigEndian.Uint32(b[4:])))
				b = b[4+size:]
			}
		}
		require.Equal(t, inIDs, outIDs)
	})
}

// Batches the embedded broker never serves on its own, served by it through
// a control function as a broken broker or a damaged disk would: a batch
// whose CRC is wrong, and a hostile batch at a negative offset. kafka-go's
// readers on sanitizing connections get Kafka's CORRUPT_MESSAGE (kafka-go's
// InvalidMessage) for the partition, not the records, and the journal's
// fallback fetch, and so the replay, says so.
func TestKafkaGoIsRefusedBatchesItCannotPlaceOrTrust(t *testing.T) {
	badCRC := encodeTestBatch(t, 0, testBatchOpts{}, testRecord{0, []byte("k"), []byte("v"), nil})
	badCRC[len(badCRC)-1] ^= 1
	negative := bytes.Clone(hostileBatches(t)[0].batch)
	binary.BigEndian.PutUint64(negative, math.MaxUint64) // offset -1
	for name, batch := range map[string][]byte{"wrong CRC": badCRC, "negative offset": negative} {
		t.Run(name, func(t *testing.T) {
			e := startTestBroker(t)
			j := openTestJournal(t, e, KafkaConfig{Partitions: 1})
			require.NoError(t, j.Append(testContext(t), lifecycle("o-1", 1)[0]))
			kfaketest.AnswerFetches(e.cluster, func(p *kmsg.FetchResponseTopicPartition) {
				p.HighWatermark, p.LastStableOffset, p.RecordBatches = 1, 1, batch
			})
			ctx := testContext(t)

			r := kafka.NewReader(kafka.ReaderConfig{
				Brokers: []string{e.Addr()}, Topic: DefaultTopic, Partition: 0,
				Dialer:  &kafka.Dialer{DialFunc: SanitizeFetches(e.Dial)},
				MaxWait: 100 * time.Millisecond,
			})
			defer r.Close()
			m, err := r.ReadMessage(ctx)
			require.ErrorIs(t, err, kafka.InvalidMessage, "read %+v", m)

			_, err = j.fetch(ctx, 0, 0)
			require.ErrorIs(t, err, kafka.InvalidMessage)
			// The replay's own reader leaves the batch to that fetch,
			// and stops.
			calls := 0
			_, err = j.Replay(ctx, func(order.Event) error { calls++; return nil })
			require.ErrorIs(t, err, kafka.InvalidMessage)
			assert.ErrorContains(t, err, "the next record batch has a wrong CRC")
			assert.Zero(t, calls)
		})
	}
}
