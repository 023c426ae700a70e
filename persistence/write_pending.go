package persistence

import (
	"bytes"
	"sync"

	"github.com/segmentio/kafka-go"

	"github.com/orderd/orderd/order"
)

// pendingBufBytesMax bounds the encode buffer a recycled pendingAppend keeps.
// A typical record needs ~0.5 KiB; the rare large one (a long reason, up to
// ~30 KiB escaped) gives its buffer back to the garbage collector rather than
// pinning it in the pool.
const pendingBufBytesMax = 4 << 10

// claimStampBytesMax is what the claim stamp adds to a record at most: its
// header name and an offset's decimal digits.
const claimStampBytesMax = len(headerClaim) + 19

// pendingAppend is one Append waiting for its produce request: the encoded
// record in the form kafka-go reads it, and the slot its outcome arrives in.
//
// Everything an append needs lives in this one struct, and the struct is
// recycled (pendingPool) once its append has succeeded, so a warm journal
// allocates nothing per append: the encode buffer, the headers, the key and
// value readers, the kafka.Record and the result channel are all reused.
// kafka-go reads the record while it encodes the produce request, which it
// may still be doing after Produce has returned an error (a deadline ends
// the wait, not the encoding), so an append that did not succeed is never
// recycled and the garbage collector takes it.
type pendingAppend struct {
	rec        kafka.Record // Key, Value and Headers point into this struct
	key, value recordBytes
	// headers has room for the claim stamp (claims.go), which the writer
	// adds when it sends the record under a claim.
	headers [headerCount + 1]kafka.Header
	buf     []byte // the encode buffer: key, value and header values
	size    int
	sent    bool // guarded by partitionWriter.mu: taken out of the queue by the writer
	// done receives the outcome exactly once. Buffered, so the writer
	// never waits for a caller that gave up; empty whenever the struct
	// is in the pool.
	done chan error
}

var pendingPool = sync.Pool{New: func() any { return &pendingAppend{done: make(chan error, 1)} }}

// newPendingAppend validates and encodes ev into a recycled pendingAppend.
func newPendingAppend(ev order.Event) (*pendingAppend, error) {
	p := pendingPool.Get().(*pendingAppend)
	key, value, buf, err := encodeRecord(p.buf, (*[headerCount]kafka.Header)(p.headers[:headerCount]), ev)
	p.buf = buf
	if err != nil {
		p.recycle()
		return nil, err
	}
	p.fill(key, value)
	return p, nil
}

// newPendingInventory is newPendingAppend for an inventory event.
func newPendingInventory(ev order.InventoryEvent) (*pendingAppend, error) {
	p := pendingPool.Get().(*pendingAppend)
	key, value, buf, err := encodeInventoryRecord(p.buf, (*[headerCount]kafka.Header)(p.headers[:headerCount]), ev)
	p.buf = buf
	if err != nil {
		p.recycle()
		return nil, err
	}
	p.fill(key, value)
	return p, nil
}

// newPendingCheckout is newPendingAppend for a checkout event.
func newPendingCheckout(ev order.CheckoutEvent) (*pendingAppend, error) {
	p := pendingPool.Get().(*pendingAppend)
	key, value, buf, err := encodeCheckoutRecord(p.buf, (*[headerCount]kafka.Header)(p.headers[:headerCount]), ev)
	p.buf = buf
	if err != nil {
		p.recycle()
		return nil, err
	}
	p.fill(key, value)
	return p, nil
}

// fill points p's record at key, value and its headers.
func (p *pendingAppend) fill(key, value []byte) {
	p.key.Reset(key)
	p.value.Reset(value)
	p.rec = kafka.Record{Key: &p.key, Value: &p.value, Headers: p.headers[:headerCount]}
	p.size = recordSize(key, value, p.headers[:headerCount]) + claimStampBytesMax
	p.sent = false
}

// recycle returns p to the pool. Only for a p that kafka-go is not reading
// and the writer will not complete: never queued, withdrawn, or completed
// with success (finish).
func (p *pendingAppend) recycle() {
	if cap(p.buf) > pendingBufBytesMax {
		p.buf = nil
	}
	pendingPool.Put(p)
}

// finish passes on the outcome the writer sent, recycling p if the append
// succeeded: then the produce request has returned with an answer, so
// kafka-go has read the record and let it go.
func (p *pendingAppend) finish(err error) error {
	if err == nil {
		p.recycle()
	}
	return err
}

// recordBytes hands a key or value to kafka-go (protocol.Bytes) without the
// allocation kafka.NewBytes makes for every call: it lives in its
// pendingAppend.
type recordBytes struct{ bytes.Reader }

func (*recordBytes) Close() error { return nil }

// eventID is the ID of the event p carries, from its ce_id header
// (encodeRecord puts it second).
func (p *pendingAppend) eventID() string { return string(p.headers[1].Value) }
