package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/orderd/orderd/order"
)

// Key prefixes: one byte each, so that every kind of key lives in its own
// range and a scan of one kind never meets another (package comment).
const (
	prefixMeta       = 'm'
	prefixCheckpoint = 'c'
	prefixSummary    = 'o'
	prefixEvent      = 'e'
	prefixDeadline   = 'd'
	prefixKeyed      = 'k'
	prefixClaim      = 'p'
)

// formatVersion is the layout this code writes and reads. A store written
// in another layout is unusable and rebuilt from the log: it is a cache.
// 2: the listing indexes (index.go) and the customer in summaries.
// 3: inventory, the stock and holds of each SKU (inventory.go).
// 4: checkouts, their records and the unfinished ones (checkout.go), and
// the index of held holds (holds.go).
const formatVersion = 4

// partsBytesMax bounds one variable part of a key or value (an order ID, a
// principal, an idempotency key, a topic): far above what the log allows
// (IDs and keys are at most a few hundred bytes), low enough that a garbled
// length cannot make a decoder look far.
const partsBytesMax = 1 << 16

// errFormat matches every value or key this package cannot decode.
var errFormat = errors.New("store: malformed key or value")

// appendPart appends s with its length in front, so that no choice of IDs or
// keys can make two keys equal or one a prefix of another.
func appendPart(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// readPart reads what appendPart wrote and returns the rest. The length must
// be in its shortest form: binary.Uvarint also accepts padded ones (0x80 0x00
// for 0), and a key read back with a padded length would not be the key that
// names the same order, so a scan by prefix would miss it. A padded form
// is one whose last byte adds nothing (zero); checked without allocating,
// as this runs on every cold load.
func readPart(b []byte) (string, []byte, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || (w > 1 && b[w-1] == 0) || n > partsBytesMax || n > uint64(len(b)-w) {
		return "", nil, fmt.Errorf("%w: bad length-prefixed part", errFormat)
	}
	return string(b[w : w+int(n)]), b[w+int(n):], nil
}

// sortableNanos orders times as bytes: big-endian with the sign bit flipped,
// so that times before 1970 still sort before later ones.
func sortableNanos(t time.Time) uint64 { return uint64(t.UnixNano()) ^ (1 << 63) }

func fromSortableNanos(u uint64) time.Time { return time.Unix(0, int64(u^(1<<63))).UTC() }

func metaKey() []byte { return []byte{prefixMeta} }

func checkpointKey(p int) []byte {
	return binary.BigEndian.AppendUint32([]byte{prefixCheckpoint}, uint32(p))
}

// claimKey names a partition's claim (a takeover record, persistence's
// claims.go) by its offset: one key per claim, in offset order.
func claimKey(p int, offset int64) []byte {
	return binary.BigEndian.AppendUint64(claimPrefix(p), uint64(offset))
}

func claimPrefix(p int) []byte { return binary.BigEndian.AppendUint32([]byte{prefixClaim}, uint32(p)) }

func decodeClaimKey(k []byte) (p int, offset int64, err error) {
	if len(k) != 1+4+8 || k[0] != prefixClaim {
		return 0, 0, fmt.Errorf("%w: claim key of %d bytes", errFormat, len(k))
	}
	offset = int64(binary.BigEndian.Uint64(k[5:]))
	if offset < 0 {
		return 0, 0, fmt.Errorf("%w: claim at offset %d", errFormat, offset)
	}
	return int(binary.BigEndian.Uint32(k[1:5])), offset, nil
}

func summaryKey(orderID string) []byte { return appendPart([]byte{prefixSummary}, orderID) }

// eventPrefix is the start of every event key of one order.
func eventPrefix(orderID string) []byte { return appendPart([]byte{prefixEvent}, orderID) }

func eventKey(orderID string, version uint64) []byte {
	return binary.BigEndian.AppendUint64(eventPrefix(orderID), version)
}

// decodeEventKey returns the order and version an event key names.
func decodeEventKey(k []byte) (orderID string, version uint64, err error) {
	if len(k) == 0 || k[0] != prefixEvent {
		return "", 0, fmt.Errorf("%w: not an event key", errFormat)
	}
	orderID, rest, err := readPart(k[1:])
	if err != nil {
		return "", 0, err
	}
	if len(rest) != 8 {
		return "", 0, fmt.Errorf("%w: event key version is %d bytes", errFormat, len(rest))
	}
	return orderID, binary.BigEndian.Uint64(rest), nil
}

func deadlineKey(due time.Time, orderID string) []byte {
	b := binary.BigEndian.AppendUint64([]byte{prefixDeadline}, sortableNanos(due))
	return appendPart(b, orderID)
}

// deadlineBound is the first deadline key at or after t.
func deadlineBound(t time.Time) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixDeadline}, sortableNanos(t))
}

// decodeDeadline reads a deadline key and its value (the version).
func decodeDeadline(k, v []byte) (order.PendingDeadline, error) {
	if len(k) < 9 || k[0] != prefixDeadline {
		return order.PendingDeadline{}, fmt.Errorf("%w: not a deadline key", errFormat)
	}
	id, rest, err := readPart(k[9:])
	if err != nil || len(rest) != 0 || id == "" {
		return order.PendingDeadline{}, fmt.Errorf("%w: bad deadline key", errFormat)
	}
	version, w := binary.Uvarint(v)
	if w <= 0 || w != len(v) || version == 0 {
		return order.PendingDeadline{}, fmt.Errorf("%w: bad deadline version", errFormat)
	}
	return order.PendingDeadline{OrderID: id, Version: version, Due: fromSortableNanos(binary.BigEndian.Uint64(k[1:9]))}, nil
}

func keyedKey(principal, key string) []byte {
	return appendPart(appendPart([]byte{prefixKeyed}, principal), key)
}

// keyedCreate is the value of a keyed-create key.
type keyedCreate struct {
	orderID string
	at      time.Time
}

func encodeKeyed(c keyedCreate) []byte {
	return binary.AppendVarint(appendPart(nil, c.orderID), c.at.UnixNano())
}

func decodeKeyed(v []byte) (keyedCreate, error) {
	id, rest, err := readPart(v)
	if err != nil {
		return keyedCreate{}, err
	}
	nanos, w := binary.Varint(rest)
	if w <= 0 || w != len(rest) || id == "" {
		return keyedCreate{}, fmt.Errorf("%w: bad keyed create", errFormat)
	}
	return keyedCreate{orderID: id, at: time.Unix(0, nanos).UTC()}, nil
}

func encodeCheckpoint(next int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(next)) }

func decodeCheckpoint(v []byte) (int64, error) {
	if len(v) != 8 || int64(binary.BigEndian.Uint64(v)) < 0 {
		return 0, fmt.Errorf("%w: bad checkpoint", errFormat)
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

func encodeMeta(id Identity) []byte {
	b := appendPart([]byte{formatVersion}, id.Topic)
	return binary.AppendUvarint(b, uint64(id.Partitions))
}

func decodeMeta(v []byte) (Identity, error) {
	if len(v) == 0 || v[0] != formatVersion {
		return Identity{}, fmt.Errorf("%w: unknown format version", errFormat)
	}
	topic, rest, err := readPart(v[1:])
	if err != nil {
		return Identity{}, err
	}
	n, w := binary.Uvarint(rest)
	if w <= 0 || w != len(rest) || n == 0 || n > partitionsMax {
		return Identity{}, fmt.Errorf("%w: bad partition count", errFormat)
	}
	return Identity{Topic: topic, Partitions: int(n)}, nil
}

// Summary flags: which optional times follow.
const (
	summaryHasCreated = 1 << iota
	summaryHasUpdated
	summaryHasDue
	summaryHasCustomer
)

// encodeSummary writes what the apply rule and the indexes need of an
// order: its state, version and times, and of its contents only the
// customer (the listing indexes are keyed by it).
func encodeSummary(o order.Order) []byte {
	var flags byte
	times := []time.Time{o.CreatedAt, o.UpdatedAt, o.PaymentDueAt}
	for i, t := range times {
		if !t.IsZero() {
			flags |= 1 << i
		}
	}
	customer := customerOf(o)
	if customer != "" {
		flags |= summaryHasCustomer
	}
	b := binary.AppendUvarint([]byte{byte(o.State), flags}, o.Version)
	for _, t := range times {
		if !t.IsZero() {
			b = binary.AppendVarint(b, t.UnixNano())
		}
	}
	if customer != "" {
		b = appendPart(b, customer)
	}
	return b
}

func decodeSummary(orderID string, v []byte) (order.Order, error) {
	if len(v) < 3 {
		return order.Order{}, fmt.Errorf("%w: short summary", errFormat)
	}
	o := order.Order{ID: orderID, State: order.State(v[0])}
	flags := v[1]
	version, w := binary.Uvarint(v[2:])
	if w <= 0 || version == 0 || !o.State.Valid() || flags > summaryHasCreated|summaryHasUpdated|summaryHasDue|summaryHasCustomer {
		return order.Order{}, fmt.Errorf("%w: bad summary", errFormat)
	}
	o.Version = version
	rest := v[2+w:]
	for i, t := range []*time.Time{&o.CreatedAt, &o.UpdatedAt, &o.PaymentDueAt} {
		if flags&(1<<i) == 0 {
			continue
		}
		nanos, w := binary.Varint(rest)
		if w <= 0 {
			return order.Order{}, fmt.Errorf("%w: bad summary time", errFormat)
		}
		*t, rest = time.Unix(0, nanos).UTC(), rest[w:]
	}
	if flags&summaryHasCustomer != 0 {
		customer, after, err := readPart(rest)
		if err != nil || customer == "" {
			return order.Order{}, fmt.Errorf("%w: bad summary customer", errFormat)
		}
		o.Contents, rest = &order.Contents{CustomerID: customer}, after
	}
	if len(rest) != 0 {
		return order.Order{}, fmt.Errorf("%w: %d bytes after the summary", errFormat, len(rest))
	}
	return o, nil
}

func binaryUvarint(v uint64) []byte { return binary.AppendUvarint(nil, v) }
