package actors

import (
	"sync"
	"time"
)

// Bounds on what the System remembers of idempotency keys (DESIGN §3, §6).
const (
	// IdempotencyKeysPerOrderDefault is how many keyed events of one order
	// are remembered. The lifecycle has at most five state changes per
	// order, so those are all covered; payment-deadline changes add more
	// events, and the bound keeps an order's memory fixed however many.
	IdempotencyKeysPerOrderDefault = 8
	// IdempotencyWindowDefault is how long a key is remembered after its
	// event: a day, the retry horizon clients commonly expect of
	// Idempotency-Key (a retry storm, a queue drained the next morning).
	IdempotencyWindowDefault = 24 * time.Hour
	// CreateKeysMaxDefault bounds the server-wide index that finds the order
	// a keyed create made when the client let the server choose its ID.
	// An entry is a principal, a key (≤ 255 bytes) and an order ID (≤ 128
	// bytes): the index stays below ~30 MiB even with every key at its
	// longest, and covers 65,536 creates per window.
	CreateKeysMaxDefault = 1 << 16
)

// clientKey scopes an idempotency key by the principal that sent it: a key is
// the client's own name for its request, so two clients never collide.
type clientKey struct {
	principal string
	key       string
}

// createIndex maps a keyed create to the order it made. A create without an
// ID gets a fresh server-generated ID on every attempt, so without the index
// a retry would make a second order. It is bounded by count and by age;
// beyond either, a retry is a new request.
type createIndex struct {
	limit int
	age   time.Duration

	mu    sync.Mutex
	byKey map[clientKey]createClaim
	fifo  []queuedKey // insertion order, oldest first, from head on
	head  int
	seq   uint64
}

type createClaim struct {
	orderID  string
	at       time.Time
	recorded bool   // the log holds the creation; else a claim whose create may not have happened
	seq      uint64 // matches the queuedKey that placed it
}

// queuedKey is one insertion. An overwritten key leaves a stale entry behind,
// recognised by its seq, so the queue, not the map, is what the limit counts.
type queuedKey struct {
	key clientKey
	seq uint64
}

func newCreateIndex(limit int, age time.Duration) *createIndex {
	return &createIndex{limit: limit, age: age, byKey: map[clientKey]createClaim{}}
}

// claim returns the order a create with this key was routed to within the
// window, or, the first time, routes it to proposed. Claiming before the
// create runs (rather than recording after it succeeds) is what makes a
// retry sent while the first attempt is still in flight queue behind it in
// the same order's mailbox instead of creating a second order.
func (x *createIndex) claim(k clientKey, proposed string, now time.Time) string {
	x.mu.Lock()
	defer x.mu.Unlock()
	if c, ok := x.byKey[k]; ok && now.Sub(c.at) <= x.age {
		return c.orderID
	}
	x.put(k, createClaim{orderID: proposed, at: now}, now)
	return proposed
}

// recorded returns the order whose logged creation carried this key within
// the window, if any.
func (x *createIndex) recorded(k clientKey, now time.Time) (string, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	c, ok := x.byKey[k]
	if !ok || !c.recorded || now.Sub(c.at) > x.age {
		return "", false
	}
	return c.orderID, true
}

// record notes that the log holds a creation of orderID with this key (at
// run time after the append, at recovery for every keyed creation).
func (x *createIndex) record(k clientKey, orderID string, at, now time.Time) {
	if now.Sub(at) > x.age {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if c, ok := x.byKey[k]; ok && c.orderID == orderID && c.recorded {
		return
	}
	x.put(k, createClaim{orderID: orderID, at: at, recorded: true}, now)
}

// put inserts c, then evicts from the front of the queue what is stale,
// beyond the limit or older than the window (entries are queued roughly in
// time order).
func (x *createIndex) put(k clientKey, c createClaim, now time.Time) {
	x.seq++
	c.seq = x.seq
	x.byKey[k] = c
	x.fifo = append(x.fifo, queuedKey{key: k, seq: x.seq})
	for x.head < len(x.fifo) {
		q := x.fifo[x.head]
		c, current := x.byKey[q.key]
		stale := !current || c.seq != q.seq
		if !stale && len(x.fifo)-x.head <= x.limit && now.Sub(c.at) <= x.age {
			break
		}
		if !stale {
			delete(x.byKey, q.key)
		}
		x.fifo[x.head] = queuedKey{}
		x.head++
	}
	// Reclaim the consumed front once it is most of the slice.
	if x.head > len(x.fifo)/2 {
		x.fifo = append(x.fifo[:0], x.fifo[x.head:]...)
		x.head = 0
	}
}

// len returns the number of keys indexed.
func (x *createIndex) len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.byKey)
}
