package persistence

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A connection for kafka-go's fetches that hands it no corrupt record batch.
//
// kafka-go's record readers allocate what a record claims: a record of 80
// bytes that claims a billion headers made a kafka.Reader ask for 40 GB and
// die with "fatal error: runtime: out of memory" (v0.4.51, against the
// embedded broker, which takes such a batch from any producer: it checks a
// batch's CRC and offsets, not its records). The bounded codecs (codecs.go)
// cannot help there; this can. SanitizeFetches wraps a dial function: every
// Fetch response read through its connections has each corrupt batch
// (errBatchCorrupt: a good CRC, but records that are not what its header
// says) replaced by a placeholder batch over the same offsets, holding one
// record with a null key and value at its last offset, and a header
// CorruptBatchHeader that says why. A reader sees one record it cannot
// decode, skips it as it skips any (DESIGN §4), and its next fetch starts
// after the batch, as it would have. A corrupt batch at offsets that make no
// sense, and a batch whose CRC is wrong, get no placeholder: the reader gets
// the batches before it, and then Kafka's CORRUPT_MESSAGE for the partition,
// an error, not records it cannot place or trust. Every other batch, and
// every other response, reaches kafka-go byte for byte.
//
// kafka-go v0.4.51 asks for Fetch v2, v5 or v10 (kafka.Conn, kafka.Reader)
// and at most v11 (kafka.Client). Later versions (v12 on, "flexible": the
// response header ends with tagged fields) are rewritten too, with the
// header's tagged fields kept, so that a newer kafka-go, or another client
// given this dial function (franz-go asks for v16), is covered alike.

// Limits of a sanitizing connection.
const (
	// sanitizeResponseBytesMax bounds one response the connection holds
	// in memory to inspect. kafka-go asks for far less (a Reader's
	// MaxBytes, 1 MiB by default; orderd's fetchBytesMax), and a broker
	// exceeds the limit by at most one batch (message.max.bytes, 1 MiB
	// by default). A larger response is refused, not passed unread.
	sanitizeResponseBytesMax = 64 << 20
	// sanitizeRequestsInFlightMax bounds the requests whose responses a
	// connection waits for. kafka-go has one or a few in flight per
	// connection.
	sanitizeRequestsInFlightMax = 1024
	// fetchFlexibleVersionMin is the first Fetch version with tagged
	// fields in its response header (KIP-482).
	fetchFlexibleVersionMin = 12
	// responseHeadBytes: size int32, correlation ID int32; a flexible
	// response's tagged fields follow.
	responseHeadBytes = 8
	// requestHeadBytes: size int32, API key int16, API version int16,
	// correlation ID int32.
	requestHeadBytes = 12
	// fetchAPIKey is Fetch's key in the Kafka protocol.
	fetchAPIKey = 1
	// placeholderReasonBytesMax bounds the reason a placeholder carries.
	placeholderReasonBytesMax = 256
	// corruptMessageErrorCode is Kafka's CORRUPT_MESSAGE: a partition
	// whose next batch is corrupt beyond a placeholder gets it instead of
	// records. kafka-go hands it to the reader's caller as an error.
	corruptMessageErrorCode = 2
)

// CorruptBatchHeader is the header of the record that stands in for a
// corrupt batch; its value says what was wrong with the batch. The record's
// key and value are null: no record orderd writes looks like it.
const CorruptBatchHeader = "orderd-corrupt-batch"

// SanitizeFetches returns a dial function whose connections replace corrupt
// record batches in Fetch responses (see above). A nil dial dials TCP.
func SanitizeFetches(dial func(ctx context.Context, network, address string) (net.Conn, error)) func(ctx context.Context, network, address string) (net.Conn, error) {
	if dial == nil {
		dial = dialTCP
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		return &sanitizingConn{Conn: c, fetches: make(map[int32]int16)}, nil
	}
}

// sanitizingConn passes writes through, noting the correlation ID and
// version of every Fetch request, and reads one whole response at a time,
// rewriting it if it answers a Fetch and holds a corrupt batch.
type sanitizingConn struct {
	net.Conn

	wmu     sync.Mutex // Write: kafka-go writes from one goroutine at a time, but nothing says so
	head    [requestHeadBytes]byte
	headLen int
	skip    int64 // bytes of the current request after its head

	mu      sync.Mutex
	fetches map[int32]int16 // correlation ID to Fetch version, until answered

	// Read's state. A read that fails partway (a deadline) keeps what it
	// has: the next Read goes on where it stopped.
	rmu   sync.Mutex // Read, as wmu is Write's
	frame []byte     // the response being read: size prefix included
	out   []byte     // what Read hands out next
}

func (c *sanitizingConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	// Noted before the request reaches the broker, so before its answer
	// can arrive.
	if err := c.noteRequests(p); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// noteRequests follows the framing of the requests written so far: p may
// hold the end of one request, several whole ones and the start of another.
func (c *sanitizingConn) noteRequests(p []byte) error {
	for len(p) > 0 {
		if c.skip > 0 {
			n := min(int64(len(p)), c.skip)
			c.skip -= n
			p = p[n:]
			continue
		}
		n := copy(c.head[c.headLen:], p)
		c.headLen += n
		p = p[n:]
		if c.headLen < requestHeadBytes {
			return nil
		}
		c.headLen = 0
		size := int64(int32(binary.BigEndian.Uint32(c.head[:])))
		if size < requestHeadBytes-4 {
			return fmt.Errorf("persistence: writing a Kafka request of %d bytes", size)
		}
		c.skip = size - (requestHeadBytes - 4)
		if binary.BigEndian.Uint16(c.head[4:]) != fetchAPIKey {
			continue
		}
		version := int16(binary.BigEndian.Uint16(c.head[6:]))
		id := int32(binary.BigEndian.Uint32(c.head[8:]))
		c.mu.Lock()
		full := len(c.fetches) >= sanitizeRequestsInFlightMax
		if !full {
			c.fetches[id] = version
		}
		c.mu.Unlock()
		if full {
			return fmt.Errorf("persistence: more than %d Kafka fetch requests in flight on one connection", sanitizeRequestsInFlightMax)
		}
	}
	return nil
}

func (c *sanitizingConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.out) == 0 {
		if err := c.readResponse(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// readResponse reads the next whole response into c.out, sanitized.
func (c *sanitizingConn) readResponse() error {
	if err := c.fill(4); err != nil {
		return err
	}
	size := int64(int32(binary.BigEndian.Uint32(c.frame)))
	if size < 4 || size > sanitizeResponseBytesMax {
		return fmt.Errorf("persistence: a Kafka response of %d bytes (at most %d are read)", size, sanitizeResponseBytesMax)
	}
	if err := c.fill(4 + int(size)); err != nil {
		return err
	}
	frame := c.frame
	c.frame = c.frame[:0]
	id := int32(binary.BigEndian.Uint32(frame[4:]))
	c.mu.Lock()
	version, isFetch := c.fetches[id]
	delete(c.fetches, id)
	c.mu.Unlock()
	c.out = frame
	if !isFetch {
		return nil
	}
	head := responseHeadBytes
	if version >= fetchFlexibleVersionMin {
		tags, ok := taggedFieldsLen(frame[head:])
		if !ok {
			return nil // not a response any client can parse either
		}
		head += tags
	}
	if body, changed := sanitizeFetchResponse(version, frame[head:]); changed {
		out := make([]byte, head, head+len(body))
		copy(out, frame[:head])
		binary.BigEndian.PutUint32(out, uint32(head-4+len(body)))
		c.out = append(out, body...)
	}
	return nil
}

// taggedFieldsLen returns the length of the tagged fields at the start of b
// (KIP-482: a count, then each field's tag, length and bytes, the numbers
// unsigned varints), and whether b holds them whole.
func taggedFieldsLen(b []byte) (int, bool) {
	count, at := binary.Uvarint(b)
	if at <= 0 {
		return 0, false
	}
	for range count {
		_, w := binary.Uvarint(b[at:]) // the tag
		if w <= 0 {
			return 0, false
		}
		at += w
		size, w := binary.Uvarint(b[at:])
		if w <= 0 || size > uint64(len(b)-at-w) {
			return 0, false
		}
		at += w + int(size)
	}
	return at, true
}

// fill reads until c.frame holds n bytes.
func (c *sanitizingConn) fill(n int) error {
	if cap(c.frame) < n {
		grown := make([]byte, len(c.frame), n)
		copy(grown, c.frame)
		c.frame = grown
	}
	for len(c.frame) < n {
		got, err := c.Conn.Read(c.frame[len(c.frame):n])
		c.frame = c.frame[:len(c.frame)+got]
		if err != nil && len(c.frame) < n {
			return err
		}
	}
	return nil
}

// sanitizeFetchResponse returns body (a Fetch response of version, without
// its header) with every corrupt batch replaced, and
// whether anything was. A body it cannot parse is left to kafka-go, whose
// own parsing of it will fail.
func sanitizeFetchResponse(version int16, body []byte) ([]byte, bool) {
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = version
	if err := resp.ReadFrom(body); err != nil {
		return body, false
	}
	changed := false
	for t := range resp.Topics {
		for p := range resp.Topics[t].Partitions {
			part := &resp.Topics[t].Partitions[p]
			batches, ok, refused := sanitizeBatches(part.RecordBatches)
			switch {
			case refused:
				part.ErrorCode = corruptMessageErrorCode
				part.RecordBatches = nil
				changed = true
			case ok:
				part.RecordBatches, changed = batches, true
			}
		}
	}
	if !changed {
		return body, false
	}
	return resp.AppendTo(nil), true
}

// sanitizeBatches returns b with every complete corrupt batch replaced by a
// placeholder, and whether anything changed. A batch that is not corrupt,
// and everything from a batch whose length makes no sense or that ends b cut
// short, is kept as it is.
//
// Two kinds of batch have no placeholder, and b is cut there: the batches
// before it are kept, and the next fetch starts at it; if it is the first,
// refused is true, and the caller answers the partition with an error
// instead of records.
//   - A v2 batch whose CRC is wrong: its header may be as damaged as its
//     records, and kafka-go's Reader and Conn do not check the CRC (v0.4.51
//     reads it and moves on), so a flipped bit in a record's header count
//     would be believed. Kafka's own consumers refuse such a batch too.
//   - A corrupt batch whose own offsets make no sense (a negative base, a
//     last offset delta below -1, or offsets past the largest int64: only a
//     broken broker assigns them): a reader could not tell where to go on
//     from it.
func sanitizeBatches(b []byte) (out []byte, changed, refused bool) {
	kept := 0 // b[kept:at] is not yet in out
	at := 0
	for len(b)-at >= batchHeaderBytes {
		length := int64(int32(binary.BigEndian.Uint32(b[at+8:])))
		if length < batchHeaderBytes-batchLengthEnd || int64(len(b)-at)-batchLengthEnd < length {
			break
		}
		batch := b[at : at+batchLengthEnd+int(length)]
		base := int64(binary.BigEndian.Uint64(batch))
		_, err := readBatch(base, batch, func(int64, []byte, []byte) error { return nil })
		corrupt := errors.Is(err, errBatchCorrupt)
		badCRC := errors.Is(err, errBatchUnreadable) && batch[batchMagicAt] == batchMagicV2 && !batchCRCMatches(batch)
		if !corrupt && !badCRC {
			at += len(batch)
			continue
		}
		out = append(out, b[kept:at]...)
		if _, placeable := batchLast(base, batch); badCRC || !placeable {
			return out, true, len(out) == 0
		}
		out = append(out, placeholderBatch(batch, err.Error())...)
		at += len(batch)
		kept = at
	}
	if out == nil {
		return b, false, false
	}
	return append(out, b[kept:]...), true, false
}

// placeholderBatch stands in for a corrupt batch: the same base offset and
// last offset delta (so a reader's next fetch starts where it would have),
// leader epoch and timestamps, and one record at the last offset with a
// null key and value, which no decoder accepts, and why as its
// CorruptBatchHeader. A batch of no records (last delta -1) gets none.
func placeholderBatch(corrupt []byte, why string) []byte {
	lastDelta := int32(binary.BigEndian.Uint32(corrupt[batchLastDeltaAt:]))
	rb := kmsg.RecordBatch{
		FirstOffset:          int64(binary.BigEndian.Uint64(corrupt)),
		PartitionLeaderEpoch: int32(binary.BigEndian.Uint32(corrupt[batchLengthEnd:])),
		Magic:                batchMagicV2,
		LastOffsetDelta:      lastDelta,
		FirstTimestamp:       int64(binary.BigEndian.Uint64(corrupt[batchFirstTimeAt:])),
		MaxTimestamp:         int64(binary.BigEndian.Uint64(corrupt[batchMaxTimeAt:])),
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
	}
	if lastDelta >= 0 {
		rb.NumRecords = 1
		rb.Records = placeholderRecord(lastDelta, why)
	}
	rb.Length = int32(len(rb.AppendTo(nil)) - batchLengthEnd)
	enc := rb.AppendTo(nil)
	setBatchCRC(enc)
	return enc
}

// placeholderRecord is a record at offsetDelta with a null key and value
// and one header, CorruptBatchHeader: why.
func placeholderRecord(offsetDelta int32, why string) []byte {
	if len(why) > placeholderReasonBytesMax {
		why = why[:placeholderReasonBytesMax]
	}
	var body []byte
	body = append(body, 0)                               // attributes
	body = binary.AppendVarint(body, 0)                  // timestamp delta
	body = binary.AppendVarint(body, int64(offsetDelta)) // offset delta
	body = binary.AppendVarint(body, -1)                 // key: null
	body = binary.AppendVarint(body, -1)                 // value: null
	body = binary.AppendVarint(body, 1)                  // headers
	body = binary.AppendVarint(body, int64(len(CorruptBatchHeader)))
	body = append(body, CorruptBatchHeader...)
	body = binary.AppendVarint(body, int64(len(why)))
	body = append(body, why...)
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}
