package persistence

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"sync"

	"github.com/segmentio/kafka-go/compress"
)

// The record batch reader: the one way orderd and orderctl read records. A
// fetch response holds record batches as the broker stores them; this reads
// Kafka's record batch format v2 in place: the key and value it hands out are
// slices of the response, and headers are only walked, left for
// LogRecord.Header to find (each of our records carries seven CloudEvents
// headers, which replay never needs: decoding them was most of a replay's
// allocations when kafka-go read the log).
//
// It reads v2 batches, plain or compressed with any of Kafka's codecs (whose
// records it expands into a pooled buffer first, within
// batchDecompressedBytesMax: orderd writes lz4 by default). Two verdicts on
// what it cannot read:
//
//   - errBatchCorrupt: a batch whose producer sent it so (its CRC is right)
//     but that holds no records orderd can read: records that are not what
//     its header says, records that do not expand, an unknown codec, or the
//     message sets of magic 0 and 1 (Kafka before 0.11, which no producer
//     of Kafka 4 can write). Readers skip it and count it as one undecodable
//     record (DESIGN §4: counted and skipped, never applied).
//   - ErrBatchDamaged: a batch whose bytes are not what its producer sent (a
//     wrong CRC), or whose offsets make no sense. The read stops there:
//     reading again gives the same answer, and skipping would hide a damaged
//     log.

// Layout of a v2 record batch, in bytes from its start.
const (
	batchLengthEnd      = 12 // baseOffset int64, batchLength int32
	batchMagicAt        = 16 // after partitionLeaderEpoch int32
	batchCRCAt          = 17 // crc uint32, over everything after it
	batchAttributesAt   = 21 // attributes int16
	batchLastDeltaAt    = 23 // lastOffsetDelta int32
	batchFirstTimeAt    = 27 // firstTimestamp int64
	batchMaxTimeAt      = 35 // maxTimestamp int64
	batchRecordCountAt  = 57 // after timestamps, producer ID, epoch, sequence
	batchHeaderBytes    = 61 // where the records start
	batchMagicV2        = 2
	batchCompressionBit = 0x07 // attributes: codec; 0 is none
	batchControlBit     = 0x20 // attributes: a transaction marker, not data
	// recordBytesMin is the smallest record: a one-byte length, attributes,
	// timestamp delta, offset delta, key length, value length and header
	// count. It bounds the record count a batch can claim for its size.
	recordBytesMin = 7
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrBatchDamaged: a batch whose CRC is wrong (a damaged log or a broken
// broker), or whose offsets no broker assigns. A read stops at it.
var ErrBatchDamaged = errors.New("damaged record batch")

// errBatchCorrupt: a batch with a good CRC (its writer sent these bytes)
// whose records cannot be read: more records than its bytes can hold,
// records that do not parse, offsets out of order, compressed records that
// do not expand (or not within the bound), an unknown codec, an old message
// format. orderd never writes one; another producer did. kafka-go, for one,
// believes such headers (measured on v0.4.51: a 100-byte batch that claimed
// 200 million records made it allocate 18 GiB, and return no error). Readers
// skip it like any record they cannot decode, unless its own offsets make no
// sense: then there is no telling where the next batch starts, and the read
// stops.
var errBatchCorrupt = errors.New("corrupt record batch")

// LogRecord is one record of the log as a read hands it out. Key and Value are
// nil when null. They, and the headers, are slices of the fetch response (or
// of a batch's expanded records) and valid only until the visit returns.
type LogRecord struct {
	Offset     int64
	Key, Value []byte
	headers    []byte // the record's headers, as they are in the batch
	headerN    int64  // how many there are: checked against their bytes
}

// Header returns the value of the record's first header named key.
func (r LogRecord) Header(key string) ([]byte, bool) {
	h := recordReader{b: r.headers}
	for range r.headerN {
		k, v := h.bytes(), h.bytes()
		if h.err != nil {
			return nil, false
		}
		if string(k) == key {
			return v, true
		}
	}
	return nil, false
}

// errStopBatches ends readBatches early without an error (the caller has
// read what it wanted).
var errStopBatches = errors.New("stop reading batches")

// readBatches calls visit for each record of the complete batches at the
// start of b, in order. key and value are slices of b, or of a pooled buffer
// for a compressed batch (nil for a null one), valid only until visit
// returns. Control batches (transaction markers) hold no data
// and are passed over, as every Kafka consumer does.
//
// It returns the offset just past the last batch it read to the end (0 if
// none), so that a reader moves on past batches whose records were all
// compacted away. A batch cut short at the end of b is not an error: Kafka
// ends a fetch response at its size limit wherever that falls, and the next
// fetch starts there.
//
// At a damaged batch it returns an error matching ErrBatchDamaged; the
// records before it have been visited. At a corrupt one
// (errBatchCorrupt) it calls skip and goes on past the batch; with a nil
// skip, or at a batch whose own offsets make no sense, it returns the
// error. The corrupt batch's records before the one that gave it away have
// been visited. If visit or skip returns an error, readBatches stops and
// returns it (errStopBatches included).
func readBatches(b []byte, visit func(LogRecord) error, skip func(offset int64, err error) error) (next int64, err error) {
	for len(b) >= batchLengthEnd {
		base := int64(binary.BigEndian.Uint64(b))
		length := int64(int32(binary.BigEndian.Uint32(b[8:])))
		if length < 0 {
			return next, fmt.Errorf("%w: batch at offset %d has length %d", ErrBatchDamaged, base, length)
		}
		if int64(len(b))-batchLengthEnd < length {
			return next, nil // the partial batch that ends a response
		}
		if base < next {
			// A broker sends a partition's batches in offset order.
			return next, fmt.Errorf("%w: batch at offset %d after one that ended at %d", ErrBatchDamaged, base, next)
		}
		batch := b[:batchLengthEnd+length]
		b = b[len(batch):]
		last, err := readBatch(base, batch, visit)
		if errors.Is(err, errBatchCorrupt) && skip != nil {
			var ok bool
			if last, ok = skippedLast(base, batch); ok {
				if err := skip(base, err); err != nil {
					return next, err
				}
				next = last + 1
				continue
			}
		}
		if err != nil {
			return next, err
		}
		next = last + 1
	}
	return next, nil
}

// batchesEnd returns the offset just past the last complete v2 batch in b
// as its header claims, without checking or reading the batch: where the
// next fetch will start, known before the records are read. 0 if b has no
// such batch.
func batchesEnd(b []byte) int64 {
	var end int64
	for len(b) > batchMagicAt {
		length := int64(int32(binary.BigEndian.Uint32(b[8:])))
		if length <= batchMagicAt-batchLengthEnd || int64(len(b))-batchLengthEnd < length {
			break
		}
		base := int64(binary.BigEndian.Uint64(b))
		switch magic := b[batchMagicAt]; {
		case magic < batchMagicV2 && base >= end && base >= 0:
			end = base + 1 // an old message set, which readBatches skips (skippedLast)
		case magic != batchMagicV2 || length < batchHeaderBytes-batchLengthEnd:
			return end
		default:
			lastDelta := int64(int32(binary.BigEndian.Uint32(b[batchLastDeltaAt:])))
			if lastDelta < -1 || base < end || base > math.MaxInt64-1-lastDelta {
				return end // base < end: out of order, which readBatches refuses too
			}
			end = base + lastDelta + 1
		}
		b = b[batchLengthEnd+length:]
	}
	return end
}

// readBatch visits the records of one complete batch and returns its last
// offset.
func readBatch(base int64, batch []byte, visit func(LogRecord) error) (last int64, err error) {
	damaged := func(format string, args ...any) error {
		return fmt.Errorf("%w at offset %d: %s", ErrBatchDamaged, base, fmt.Sprintf(format, args...))
	}
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w at offset %d: %s", errBatchCorrupt, base, fmt.Sprintf(format, args...))
	}
	if len(batch) <= batchMagicAt {
		return 0, damaged("%d bytes", len(batch))
	}
	switch magic := batch[batchMagicAt]; {
	case magic < batchMagicV2:
		// A message set of Kafka before 0.11: its own layout and CRC.
		// No producer of Kafka 4 writes one, orderd never did.
		return 0, corrupt("message format v%d, not read", magic)
	case magic > batchMagicV2:
		return 0, damaged("magic %d", magic)
	}
	if len(batch) < batchHeaderBytes {
		return 0, damaged("%d bytes, shorter than its header", len(batch))
	}
	if !batchCRCMatches(batch) {
		return 0, damaged("CRC %08x, computed %08x", binary.BigEndian.Uint32(batch[batchCRCAt:]), crc32.Checksum(batch[batchAttributesAt:], castagnoli))
	}
	attributes := binary.BigEndian.Uint16(batch[batchAttributesAt:])
	records := batch[batchHeaderBytes:]
	if c := attributes & batchCompressionBit; c != 0 {
		codec := compress.Compression(c)
		if _, ok := boundedReaders[codec]; !ok {
			return 0, corrupt("codec %d", c)
		}
		buf, err := decompressRecords(codec, records)
		if err != nil {
			// Bytes its producer sent (the CRC says so) that its
			// codec cannot expand, or not within the bound.
			return 0, corrupt("%s: %v", codec, err)
		}
		defer recycleDecompressed(buf)
		records = buf.Bytes()
	}
	lastDelta := int64(int32(binary.BigEndian.Uint32(batch[batchLastDeltaAt:])))
	count := int64(int32(binary.BigEndian.Uint32(batch[batchRecordCountAt:])))
	if _, ok := batchLast(base, batch); !ok {
		return 0, corrupt("offsets %d to %d+%d", base, base, lastDelta)
	}
	if count < 0 || count > int64(len(records)/recordBytesMin) {
		return 0, corrupt("%d records in %d bytes", count, len(records))
	}
	if attributes&batchControlBit != 0 {
		return base + lastDelta, nil
	}
	prev := int64(-1)
	for range count {
		var r recordReader
		r.b, records, err = splitRecord(records)
		if err != nil {
			return 0, corrupt("%v", err)
		}
		rec, delta, err := r.record()
		switch {
		case err != nil:
			return 0, corrupt("%v", err)
		case delta <= prev || delta > lastDelta:
			return 0, corrupt("offset delta %d after %d, last %d", delta, prev, lastDelta)
		}
		prev = delta
		rec.Offset = base + delta
		if err := visit(rec); err != nil {
			return 0, err
		}
	}
	if len(records) != 0 {
		return 0, corrupt("%d bytes after the last record", len(records))
	}
	return base + lastDelta, nil
}

// batchCRCMatches reports whether a v2 batch with a complete header holds
// the CRC of what follows it.
func batchCRCMatches(batch []byte) bool {
	return binary.BigEndian.Uint32(batch[batchCRCAt:]) == crc32.Checksum(batch[batchAttributesAt:], castagnoli)
}

// setBatchCRC sets the CRC of a v2 batch with a complete header to that of
// what follows it, as its producer does.
func setBatchCRC(batch []byte) {
	binary.BigEndian.PutUint32(batch[batchCRCAt:], crc32.Checksum(batch[batchAttributesAt:], castagnoli))
}

// skippedLast returns the last offset of a corrupt batch, which a read
// skips: of a v2 batch, as its header says (batchLast); a message set of
// magic 0 or 1 is one entry whose offset is its last (a compressed one's
// wrapper carries the offset of the last message inside).
func skippedLast(base int64, batch []byte) (last int64, ok bool) {
	if batch[batchMagicAt] < batchMagicV2 {
		return base, base >= 0
	}
	return batchLast(base, batch)
}

// batchLast returns the last offset of a batch with a complete header, as
// the broker assigned it, and whether that makes sense: a batch holds the
// offsets from its base to base+lastOffsetDelta, and the next starts after.
// A delta of -1 is a batch of no records, which holds no offsets (kfake
// takes one from a producer; Kafka refuses it).
func batchLast(base int64, batch []byte) (last int64, ok bool) {
	lastDelta := int64(int32(binary.BigEndian.Uint32(batch[batchLastDeltaAt:])))
	if lastDelta < -1 || base < 0 || base > math.MaxInt64-1-lastDelta {
		return 0, false
	}
	return base + lastDelta, true
}

// splitRecord splits the first length-prefixed record off b.
func splitRecord(b []byte) (record, rest []byte, err error) {
	n, w := binary.Varint(b)
	if w <= 0 || n < 0 || n > int64(len(b)-w) {
		return nil, nil, errors.New("bad record length")
	}
	return b[w : w+int(n)], b[w+int(n):], nil
}

// recordReader reads the fields of one record (without its length), which
// must end exactly with its last header.
type recordReader struct {
	b   []byte
	err error
}

// record returns the record (its Offset left to the caller) and its offset
// delta; a null key or value is nil. Headers are walked, not kept: a count
// larger than the bytes left, or a header that does not parse, fails the
// record.
func (r *recordReader) record() (rec LogRecord, offsetDelta int64, err error) {
	if len(r.b) == 0 {
		return LogRecord{}, 0, errors.New("empty record")
	}
	r.b = r.b[1:] // attributes: none are defined for records
	r.varint()    // timestamp delta
	offsetDelta = r.varint()
	rec.Key = r.bytes()
	rec.Value = r.bytes()
	rec.headerN = r.varint()
	rec.headers = r.b
	if r.err == nil && (rec.headerN < 0 || rec.headerN > int64(len(r.b))) {
		r.err = fmt.Errorf("%d headers", rec.headerN)
	}
	for i := int64(0); i < rec.headerN && r.err == nil; i++ {
		if r.bytes() == nil && r.err == nil {
			r.err = errors.New("null header key")
		}
		r.bytes()
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d bytes after the headers", len(r.b))
	}
	return rec, offsetDelta, r.err
}

func (r *recordReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, w := binary.Varint(r.b)
	if w <= 0 {
		r.err = errors.New("bad varint")
		return 0
	}
	r.b = r.b[w:]
	return v
}

// bytes reads a varint length and that many bytes; -1 is null (nil).
func (r *recordReader) bytes() []byte {
	n := r.varint()
	switch {
	case r.err != nil:
		return nil
	case n == -1:
		return nil
	case n < -1 || n > int64(len(r.b)):
		r.err = fmt.Errorf("length %d with %d bytes left", n, len(r.b))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// batchDecompressedBytesMax bounds what one compressed batch may expand to,
// so that a corrupt or hostile batch cannot exhaust memory: 32 times what
// orderd writes at most (DefaultBatchBytesMax before compression), and room
// for a batch of Kafka's default 1 MiB limit that compressed well. Every
// codec this process reads with enforces it (codecs.go).
const batchDecompressedBytesMax = 16 << 20

// decompressedBufBytesMax bounds the buffer a recycled decompression keeps.
const decompressedBufBytesMax = 4 << 20

var decompressedPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// decompressRecords expands the records of a batch compressed with a known
// codec into a pooled buffer, which the caller hands back with
// recycleDecompressed once it has visited them.
func decompressRecords(codec compress.Compression, records []byte) (*bytes.Buffer, error) {
	r := newBoundedReader(codec, bytes.NewReader(records)) // a known codec: readBatch checked
	defer r.Close()
	buf := decompressedPool.Get().(*bytes.Buffer)
	if _, err := buf.ReadFrom(r); err != nil {
		recycleDecompressed(buf)
		return nil, err
	}
	return buf, nil
}

func recycleDecompressed(buf *bytes.Buffer) {
	if buf.Cap() > decompressedBufBytesMax {
		return // left to the garbage collector rather than pinned in the pool
	}
	buf.Reset()
	decompressedPool.Put(buf)
}
