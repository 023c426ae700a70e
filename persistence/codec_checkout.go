package persistence

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"

	"github.com/segmentio/kafka-go"

	"github.com/orderd/orderd/order"
)

// Checkout records (order/checkout.go) share the audit topic with order
// records: key "checkout:<id>" (order.CheckoutKey; ':' is no order-ID
// character). They are placed in the partition of the checkout's order
// (AppendCheckout), so they come under its claims, writers and state store.
// Headers are the CloudEvents binding of order records with their own type
// and the checkout ID as subject. The value is one flat JSON object, of one
// of two forms, members in this order:
//
//	start (version 1): {"event_id","checkout_id","version","at","order_id","customer_id",
//	                    "currency","items","total","idempotency_key","request_digest",
//	                    "principal","request_id"}
//	step (version 2+): {"event_id","checkout_id","version","at","step","outcome","detail"
//	                    [,"authorization_id"][,"out_of_stock"]}
//
// Every member of a form is present, but for the two in brackets, which are
// written only when set (an authorisation that succeeded, a reservation that
// lacked stock). No payment token is ever among them: the log is read by
// other systems and kept forever. The decoder (codec_checkout_parse.go) is
// as strict as the order records': exact names, each once, nothing else.

// ceTypeCheckout is the CloudEvents type of checkout records.
const ceTypeCheckout = "orderd.checkout.stepped"

var (
	checkoutKeyPrefix = []byte(order.CheckoutKeyPrefix)
	typeCheckoutBytes = []byte(ceTypeCheckout)
)

// IsCheckoutKey reports whether a record key of the audit topic is a
// checkout record's: readers of orders skip such records by their key
// alone, without decoding them (and without counting them as garbage).
func IsCheckoutKey(key []byte) bool { return bytes.HasPrefix(key, checkoutKeyPrefix) }

// ValidateCheckoutEvent checks everything the journal requires of a
// checkout event before it is written and after it is read back: a valid
// checkout ID and event ID, a time RFC 3339 can write, and the members of
// its form: the start's exactly at version 1 (order, customer, items, their
// total), a step's after it (a named step and outcome, texts within bounds).
// Whether the record continues the saga is order.ApplyCheckout's to judge.
func ValidateCheckoutEvent(ev order.CheckoutEvent) error {
	if err := order.ValidateID(ev.CheckoutID); err != nil {
		return fmt.Errorf("%w: checkout_id: %w", ErrInvalidRecord, err)
	}
	if ev.EventID == "" {
		return fmt.Errorf("%w: event_id is empty", ErrInvalidRecord)
	}
	if err := checkText("event_id", ev.EventID, EventIDLenMax); err != nil {
		return err
	}
	if ev.Version < 1 {
		return fmt.Errorf("%w: version %d, the first version is 1", ErrInvalidRecord, ev.Version)
	}
	if y := ev.At.UTC().Year(); ev.At.IsZero() || y < 1 || y > 9999 {
		return fmt.Errorf("%w: at %v is zero or outside the years RFC 3339 can write", ErrInvalidRecord, ev.At)
	}
	if ev.Version == 1 {
		return checkCheckoutStart(ev)
	}
	return checkCheckoutStep(ev)
}

// checkCheckoutStart: what order.CheckCheckoutRequest accepted (but the
// token, which is not kept), the order it will make, and the request's
// metadata within the order records' bounds.
func checkCheckoutStart(ev order.CheckoutEvent) error {
	switch {
	case ev.Step != 0 || ev.Outcome != 0 || ev.Detail != "" || ev.AuthorizationID != "" || len(ev.OutOfStock) != 0:
		return fmt.Errorf("%w: the start (version 1) records no step", ErrInvalidRecord)
	case ev.CustomerID == "" || ev.Currency == "" || len(ev.Items) == 0:
		return fmt.Errorf("%w: the start needs a customer_id, a currency and items", ErrInvalidRecord)
	}
	if err := order.ValidateID(ev.OrderID); err != nil {
		return fmt.Errorf("%w: order_id: %w", ErrInvalidRecord, err)
	}
	if err := order.CheckOrderContents(ev.CustomerID, ev.Currency, ev.Items); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	for i, it := range ev.Items {
		if slices.ContainsFunc(ev.Items[:i], func(o order.Item) bool { return o.SKU == it.SKU }) {
			return fmt.Errorf("%w: items[%d]: sku %q twice: one line per SKU", ErrInvalidRecord, i, it.SKU)
		}
	}
	total, err := order.Total(ev.Items)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	if ev.Total != total {
		return fmt.Errorf("%w: total is %d, its items make %d", ErrInvalidRecord, ev.Total, total)
	}
	if err := checkCheckoutDigest(ev.RequestDigest); err != nil {
		return err
	}
	if err := checkText("idempotency_key", ev.IdempotencyKey, IdempotencyKeyLenMax); err != nil {
		return err
	}
	if err := checkText("principal", ev.Principal, PrincipalLenMax); err != nil {
		return err
	}
	return checkText("request_id", ev.RequestID, RequestIDLenMax)
}

// checkCheckoutDigest: empty, or a digest as order.RequestDigest writes it.
// Unlike an order's, a checkout's digest needs no idempotency key: it tells
// a retry from another request with the same checkout ID, however named.
func checkCheckoutDigest(d string) error {
	if d == "" {
		return nil
	}
	if len(d) != order.RequestDigestLen {
		return fmt.Errorf("%w: request_digest is %d characters, want %d", ErrInvalidRecord, len(d), order.RequestDigestLen)
	}
	for i := 0; i < len(d); i++ {
		if !lowerHex[d[i]] {
			return fmt.Errorf("%w: request_digest is not lowercase hex", ErrInvalidRecord)
		}
	}
	return nil
}

// checkCheckoutStep: a named step and outcome, none of the start's
// members, and the step's own members only where that step has them.
func checkCheckoutStep(ev order.CheckoutEvent) error {
	if !ev.Step.Valid() || !validOutcome(ev.Outcome) {
		return fmt.Errorf("%w: version %d records step %v, outcome %v", ErrInvalidRecord, ev.Version, ev.Step, ev.Outcome)
	}
	if ev.OrderID != "" || ev.CustomerID != "" || ev.Currency != "" || ev.Items != nil || ev.Total != 0 ||
		ev.IdempotencyKey != "" || ev.RequestDigest != "" || ev.Principal != "" || ev.RequestID != "" {
		return fmt.Errorf("%w: version %d carries what only the start records", ErrInvalidRecord, ev.Version)
	}
	if err := checkText("detail", ev.Detail, order.StepDetailLenMax); err != nil {
		return err
	}
	if ev.AuthorizationID != "" {
		if ev.Step != order.StepAuthorize || ev.Outcome != order.StepSucceeded {
			return fmt.Errorf("%w: authorization_id on %v %v", ErrInvalidRecord, ev.Step, ev.Outcome)
		}
		if err := checkVisibleASCII("authorization_id", ev.AuthorizationID, order.AuthorizationIDLenMax); err != nil {
			return err
		}
	}
	return checkOutOfStock(ev)
}

// checkOutOfStock: only a failed reservation names SKUs, at most one per
// item a checkout may have, each valid, sorted and once.
func checkOutOfStock(ev order.CheckoutEvent) error {
	oos := ev.OutOfStock
	switch {
	case len(oos) == 0:
		return nil
	case ev.Step != order.StepReserve || ev.Outcome != order.StepFailed:
		return fmt.Errorf("%w: out_of_stock on %v %v", ErrInvalidRecord, ev.Step, ev.Outcome)
	case len(oos) > order.ItemsMax:
		return fmt.Errorf("%w: out_of_stock names %d SKUs, at most %d allowed", ErrInvalidRecord, len(oos), order.ItemsMax)
	}
	for i, sku := range oos {
		if err := order.ValidateSKU(sku); err != nil {
			return fmt.Errorf("%w: out_of_stock[%d]: %w", ErrInvalidRecord, i, err)
		}
		if i > 0 && oos[i-1] >= sku {
			return fmt.Errorf("%w: out_of_stock is not sorted, each SKU once", ErrInvalidRecord)
		}
	}
	return nil
}

func validOutcome(o order.StepOutcome) bool {
	got, ok := order.ParseStepOutcome(o.String())
	return ok && got == o
}

// checkVisibleASCII accepts 1 to lenMax bytes of 0x21-0x7e, what a payment
// gateway may answer as an ID.
func checkVisibleASCII(field, s string, lenMax int) error {
	if s == "" || len(s) > lenMax {
		return fmt.Errorf("%w: %s is %d bytes, want 1 to %d", ErrInvalidRecord, field, len(s), lenMax)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("%w: %s has %q at byte %d (allowed: visible ASCII)", ErrInvalidRecord, field, c, i)
		}
	}
	return nil
}

// EncodeCheckout validates ev and encodes it as its record, which owns its
// memory.
func EncodeCheckout(ev order.CheckoutEvent) (Record, error) {
	headers := new([headerCount]kafka.Header)
	key, value, _, err := encodeCheckoutRecord(nil, headers, ev)
	if err != nil {
		return Record{}, err
	}
	return Record{Key: key, Value: value, Headers: headers[:]}, nil
}

// encodeCheckoutRecord is encodeRecord for a checkout event: into buf's
// memory, growing it if need be, with headers filled.
func encodeCheckoutRecord(buf []byte, headers *[headerCount]kafka.Header, ev order.CheckoutEvent) (key, value, next []byte, err error) {
	if err := ValidateCheckoutEvent(ev); err != nil {
		return nil, nil, buf, err
	}
	b := buf[:0]
	if n := len(checkoutKeyPrefix) + 2*len(ev.CheckoutID) + len(ev.EventID) + timeTextLen + checkoutSizeHint(ev); cap(b) < n {
		b = make([]byte, 0, n)
	}
	b = append(b, checkoutKeyPrefix...)
	b = append(b, ev.CheckoutID...)
	b = append(b, ev.EventID...)
	b = appendTime(b, ev.At.UTC())
	k, id := len(checkoutKeyPrefix)+len(ev.CheckoutID), len(checkoutKeyPrefix)+len(ev.CheckoutID)+len(ev.EventID)
	key = b[:k:k]
	subject := b[len(checkoutKeyPrefix):k:k]
	idText := b[k:id:id]
	atText := b[id:len(b):len(b)]
	start := len(b)
	b = appendCheckoutJSON(b, ev, atText)
	value = b[start:len(b):len(b)]
	if len(value) > RecordValueBytesMax {
		return nil, nil, b, fmt.Errorf("%w: value is %d bytes, at most %d allowed", ErrInvalidRecord, len(value), RecordValueBytesMax)
	}
	*headers = cloudEventHeaders(typeCheckoutBytes, subject, idText, atText)
	return key, value, b, nil
}

// checkoutSizeHint is the value's size when nothing needs escaping.
func checkoutSizeHint(ev order.CheckoutEvent) int {
	const fixed = len(`{"event_id":"","checkout_id":"","version":,"at":"","order_id":"","customer_id":"","currency":"","items":,"total":,"idempotency_key":"","request_digest":"","principal":"","request_id":""}`)
	n := fixed + 2*20 + timeTextLen + len(ev.EventID) + len(ev.CheckoutID) + len(ev.OrderID) + len(ev.CustomerID) +
		len(ev.Currency) + itemsSizeHint(ev.Items) + len(ev.IdempotencyKey) + len(ev.RequestDigest) + len(ev.Principal) +
		len(ev.RequestID) + len(ev.Detail) + len(ev.AuthorizationID) + len(`,"authorization_id":"","out_of_stock":[]`)
	for _, sku := range ev.OutOfStock {
		n += len(sku) + len(`"",`)
	}
	return n
}

// appendCheckoutJSON writes the members of ev's form in their fixed order.
// ev must be valid.
func appendCheckoutJSON(b []byte, ev order.CheckoutEvent, atText []byte) []byte {
	b = append(b, `{"event_id":`...)
	b = appendString(b, ev.EventID)
	b = append(b, `,"checkout_id":`...)
	b = appendString(b, ev.CheckoutID)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, ev.Version, 10)
	b = append(b, `,"at":"`...)
	b = append(b, atText...)
	b = append(b, '"')
	if ev.Version == 1 {
		b = appendCheckoutStartJSON(b, ev)
	} else {
		b = appendCheckoutStepJSON(b, ev)
	}
	return append(b, '}')
}

func appendCheckoutStartJSON(b []byte, ev order.CheckoutEvent) []byte {
	b = append(b, `,"order_id":`...)
	b = appendString(b, ev.OrderID)
	b = append(b, `,"customer_id":`...)
	b = appendString(b, ev.CustomerID)
	b = append(b, `,"currency":`...)
	b = appendString(b, ev.Currency)
	b = append(b, `,"items":`...)
	b = appendItems(b, ev.Items)
	b = append(b, `,"total":`...)
	b = strconv.AppendInt(b, ev.Total, 10)
	b = append(b, `,"idempotency_key":`...)
	b = appendString(b, ev.IdempotencyKey)
	b = append(b, `,"request_digest":`...)
	b = appendString(b, ev.RequestDigest)
	b = append(b, `,"principal":`...)
	b = appendString(b, ev.Principal)
	b = append(b, `,"request_id":`...)
	return appendString(b, ev.RequestID)
}

func appendCheckoutStepJSON(b []byte, ev order.CheckoutEvent) []byte {
	b = append(b, `,"step":`...)
	b = appendString(b, ev.Step.String())
	b = append(b, `,"outcome":`...)
	b = appendString(b, ev.Outcome.String())
	b = append(b, `,"detail":`...)
	b = appendString(b, ev.Detail)
	if ev.AuthorizationID != "" {
		b = append(b, `,"authorization_id":`...)
		b = appendString(b, ev.AuthorizationID)
	}
	if len(ev.OutOfStock) > 0 {
		b = append(b, `,"out_of_stock":[`...)
		for i, sku := range ev.OutOfStock {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, sku)
		}
		b = append(b, ']')
	}
	return b
}
