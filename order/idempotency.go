package order

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// RequestDigestLen is the length of a RequestDigest: SHA-256 in lowercase hex.
const RequestDigestLen = 2 * sha256.Size

// requestDigestDomain starts the digested text, so that the digest can never
// collide with a digest of something else, and names the canonical form's
// version should it ever change.
const requestDigestDomain = "orderd/request/v1"

// RequestDigest identifies what cmd asks for, so that a retry carrying the
// same idempotency key can be told from another request that reuses it. It is
// SHA-256, in lowercase hex, over a canonical form of: the kind, the order ID
// as the client named it (empty when the server generated it, since every
// retry gets another), the target state (empty for a create), the reason and
// the principal; then, only when the request has any, what a create orders
// and the metadata (so that the digest of a request without them is what it
// was before they existed, and keys in the log keep matching their retries).
// Each part is length-prefixed, so no two requests share a
// form. It digests the parsed request, not its bytes, so a retry whose JSON
// differs only in spacing or member order is the same request.
//
// If-Match (ExpectedVersion) is left out on purpose: it guards the first
// execution. A client that lost the answer, re-read the order and retried
// with the version it now sees is asking for the same thing, and must get
// the first answer, not a 412 or a 422.
func RequestDigest(cmd Command) string {
	h := sha256.New()
	var lenBuf [binary.MaxVarintLen64]byte
	write := func(part string) {
		h.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(part)))])
		h.Write([]byte(part))
	}
	write(requestDigestDomain)
	id, to := cmd.OrderID, ""
	if cmd.IDGenerated {
		id = ""
	}
	switch cmd.Kind {
	case CommandCreate:
		write("create")
	case CommandTransition:
		write("transition")
		to = cmd.To.String()
	case CommandReschedulePayment:
		// The requested deadline stands in for the target state: the
		// same key asking for another deadline is another request.
		write("payment-deadline")
		to = cmd.PaymentExtend.String()
		if !cmd.PaymentDueAt.IsZero() {
			to = cmd.PaymentDueAt.UTC().Format(time.RFC3339Nano)
		}
	default:
		write(fmt.Sprintf("kind-%d", cmd.Kind))
	}
	write(id)
	write(to)
	write(cmd.Reason)
	write(cmd.Principal)
	if cmd.CustomerID != "" || cmd.Currency != "" || cmd.Items != nil || len(cmd.Metadata) > 0 {
		writeContents(write, cmd)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// writeContents adds a command's contents to its digest: items in their
// order (the order of lines is the client's), metadata by key.
func writeContents(write func(string), cmd Command) {
	write("contents")
	write(cmd.CustomerID)
	write(cmd.Currency)
	write(strconv.Itoa(len(cmd.Items)))
	for _, it := range cmd.Items {
		write(it.SKU)
		write(strconv.FormatInt(it.Quantity, 10))
		write(strconv.FormatInt(it.UnitPrice, 10))
	}
	write(strconv.Itoa(len(cmd.Metadata)))
	for _, k := range slices.Sorted(maps.Keys(cmd.Metadata)) {
		write(k)
		write(cmd.Metadata[k])
	}
}

// KeyLimits bound what a KeyWindow remembers, so that memory stays bounded
// however many keys clients send.
type KeyLimits struct {
	// PerOrder is how many keyed events of one order are remembered; the
	// oldest are forgotten first.
	PerOrder int
	// Age is how long after its event a key is remembered.
	Age time.Duration
}

// KeyWindow remembers the idempotency keys of one order's recent events and
// what each event left behind, so that a retry is answered as the first
// attempt was. Keys are scoped by principal: a key is the client's name for
// its own request, so two clients never collide. The zero KeyWindow is empty
// and ready to use. It is not safe for concurrent use: its order's actor owns
// it.
type KeyWindow struct {
	keys []rememberedKey // oldest first
}

type rememberedKey struct {
	principal string
	key       string
	digest    string // empty in records written before digests were recorded
	at        time.Time
	after     Order // the order right after the event
}

// Remember records ev's key, if it has one, with the order it produced.
// Keys older than lim.Age at now are dropped, and beyond lim.PerOrder the
// oldest.
func (w *KeyWindow) Remember(ev Event, after Order, lim KeyLimits, now time.Time) {
	w.expire(lim, now)
	if ev.IdempotencyKey == "" || expired(ev.At, lim, now) {
		return
	}
	w.keys = append(w.keys, rememberedKey{
		principal: ev.Principal, key: ev.IdempotencyKey, digest: ev.RequestDigest, at: ev.At, after: after,
	})
	if extra := len(w.keys) - max(lim.PerOrder, 0); extra > 0 {
		w.keys = append(w.keys[:0], w.keys[extra:]...)
	}
}

// Lookup checks cmd's idempotency key against the window. A remembered key
// with the same request digest returns the order as that event left it and
// true: the command is a retry and must not be carried out again. A key
// remembered for a different request returns an error matching
// ErrIdempotencyKeyReused. A key that is absent, or older than lim.Age,
// returns false: the command is new. A key recorded before digests were
// (an empty digest) matches by key alone.
func (w *KeyWindow) Lookup(cmd Command, lim KeyLimits, now time.Time) (Order, bool, error) {
	if cmd.IdempotencyKey == "" {
		return Order{}, false, nil
	}
	for i := len(w.keys) - 1; i >= 0; i-- {
		k := w.keys[i]
		if k.key != cmd.IdempotencyKey || k.principal != cmd.Principal || expired(k.at, lim, now) {
			continue
		}
		if k.digest != "" && k.digest != RequestDigest(cmd) {
			return Order{}, false, fmt.Errorf("%w: key %q was used for another request at version %d",
				ErrIdempotencyKeyReused, cmd.IdempotencyKey, k.after.Version)
		}
		return k.after, true, nil
	}
	return Order{}, false, nil
}

// Len returns how many keys are remembered, expired ones not yet dropped
// included.
func (w *KeyWindow) Len() int { return len(w.keys) }

func (w *KeyWindow) expire(lim KeyLimits, now time.Time) {
	drop := 0
	for drop < len(w.keys) && expired(w.keys[drop].at, lim, now) {
		drop++
	}
	if drop > 0 {
		w.keys = append(w.keys[:0], w.keys[drop:]...)
	}
}

// expired reports whether a key recorded at is older than the window. A time
// in the future (a clock stepped back) counts as fresh: forgetting a key
// early could apply a retry twice, remembering it late only costs memory.
func expired(at time.Time, lim KeyLimits, now time.Time) bool {
	return now.Sub(at) > lim.Age
}
