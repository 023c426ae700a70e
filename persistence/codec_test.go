package persistence

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// jsonRecord is the value as encoding/json reads it: the reference the
// hand-written encoder and decoder are checked against.
type jsonRecord struct {
	EventID        *string `json:"event_id"`
	OrderID        *string `json:"order_id"`
	Version        *uint64 `json:"version"`
	From           *string `json:"from"`
	To             *string `json:"to"`
	At             *string `json:"at"`
	IdempotencyKey *string `json:"idempotency_key"`
	RequestDigest  *string `json:"request_digest"` // optional: older records lack it
	Principal      *string `json:"principal"`
	RequestID      *string `json:"request_id"`
	Reason         *string `json:"reason"`
	PaymentDueAt   *string `json:"payment_due_at"` // optional: only events that set a deadline
	// Optional, only on creations that carry them; metadata on any event.
	CustomerID *string           `json:"customer_id"`
	Currency   *string           `json:"currency"`
	Items      []jsonItem        `json:"items"`
	Total      *int64            `json:"total"`
	Metadata   map[string]string `json:"metadata"`
}

type jsonItem struct {
	SKU       *string `json:"sku"`
	Quantity  *int64  `json:"quantity"`
	UnitPrice *int64  `json:"unit_price"`
}

// eventFromJSON reads a value with encoding/json, strictly enough to agree
// with DecodeEvent on what a valid record says.
func eventFromJSON(t testing.TB, value []byte) order.Event {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.DisallowUnknownFields()
	var r jsonRecord
	require.NoError(t, dec.Decode(&r), "encoding/json reads %s", value)
	for name, p := range map[string]*string{
		"event_id": r.EventID, "order_id": r.OrderID, "to": r.To, "at": r.At,
		"idempotency_key": r.IdempotencyKey, "principal": r.Principal, "request_id": r.RequestID, "reason": r.Reason,
	} {
		require.NotNil(t, p, "member %s", name)
	}
	require.NotNil(t, r.Version)
	ev := order.Event{
		EventID: *r.EventID, OrderID: *r.OrderID, Version: *r.Version,
		IdempotencyKey: *r.IdempotencyKey, Principal: *r.Principal, RequestID: *r.RequestID, Reason: *r.Reason,
	}
	if r.RequestDigest != nil {
		ev.RequestDigest = *r.RequestDigest
	}
	var err error
	ev.To, err = order.ParseState(*r.To)
	require.NoError(t, err)
	if r.From != nil {
		ev.From, err = order.ParseState(*r.From)
		require.NoError(t, err)
	}
	ev.At, err = time.Parse(time.RFC3339Nano, *r.At)
	require.NoError(t, err)
	ev.At = ev.At.UTC()
	if r.PaymentDueAt != nil {
		due, err := time.Parse(time.RFC3339Nano, *r.PaymentDueAt)
		require.NoError(t, err)
		ev.PaymentDueAt = due.UTC()
	}
	if r.CustomerID != nil {
		ev.CustomerID = *r.CustomerID
	}
	if r.Currency != nil {
		ev.Currency = *r.Currency
	}
	if r.Items != nil {
		ev.Items = make([]order.Item, len(r.Items))
		for i, it := range r.Items {
			require.True(t, it.SKU != nil && it.Quantity != nil && it.UnitPrice != nil, "items[%d] has every member", i)
			ev.Items[i] = order.Item{SKU: *it.SKU, Quantity: *it.Quantity, UnitPrice: *it.UnitPrice}
		}
	}
	if r.Total != nil {
		ev.Total = *r.Total
	}
	ev.Metadata = r.Metadata
	return ev
}

// codecEvents are events whose text needs every kind of escaping.
func codecEvents() map[string]order.Event {
	creation := lifecycleEvent("A-b_c.d~9", 1)
	allControls := make([]byte, 0x20)
	for i := range allControls {
		allControls[i] = byte(i)
	}
	events := map[string]order.Event{
		"Creation":         creation,
		"Transition":       lifecycleEvent("order-42", 4),
		"EmptyOptions":     {EventID: "e", OrderID: "o", Version: 1, To: order.Created, At: testEpoch},
		"KeyWithoutDigest": {EventID: "e", OrderID: "o", Version: 1, To: order.Created, At: testEpoch, IdempotencyKey: "k"},
		"LargeVersion":     {EventID: "e", OrderID: "o", Version: 1<<64 - 1, From: order.Paid, To: order.Cancelled, At: testEpoch},
		"ControlChars":     withReason(creation, string(allControls)+"\x7f"),
		"QuotesAndSlashes": withReason(creation, `"\/\\"'`+"</script>&"),
		"Unicode":          withReason(creation, "é ✓ 𝄞 \u2028\u2029 \ufeff 日本"),
		"NUL":              withReason(creation, "a\x00b"),
		"WholeSecond":      {EventID: "e", OrderID: "o", Version: 1, To: order.Created, At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		"YearBounds":       {EventID: "e", OrderID: "o", Version: 1, To: order.Created, At: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
		"CreationWithDeadline": {EventID: "e", OrderID: "o", Version: 1, To: order.Created, At: testEpoch,
			PaymentDueAt: testEpoch.Add(30 * time.Minute)},
		"DeadlineChange": {EventID: "e", OrderID: "o", Version: 2, From: order.Created, To: order.Created, At: testEpoch,
			PaymentDueAt: testEpoch.Add(time.Hour + time.Nanosecond)},
		"CreationWithContents": {EventID: "e", OrderID: "o", Version: 1, To: order.Created, At: testEpoch,
			CustomerID: `cus"\7`, Currency: "EUR", Total: 2999,
			Items:    []order.Item{{SKU: "mug-1", Quantity: 2, UnitPrice: 1250}, {SKU: "tea", Quantity: 1, UnitPrice: 499}},
			Metadata: map[string]string{"channel": "web", "note": "gift \n \x01 ✓", "a": ""}},
		"ItemsOnly": {EventID: "e", OrderID: "o", Version: 1, To: order.Created, At: testEpoch,
			Currency: "JPY", Items: []order.Item{{SKU: "free", Quantity: 1, UnitPrice: 0}}},
		"TransitionWithMetadata": {EventID: "e", OrderID: "o", Version: 3, From: order.Paid, To: order.Shipped, At: testEpoch,
			Metadata: map[string]string{"tracking_number": "00340434", "carrier": "DHL"}},
		"LongFields": {
			EventID: strings.Repeat("e", EventIDLenMax), OrderID: strings.Repeat("o", order.IDLenMax), Version: 2,
			From: order.Shipped, To: order.Delivered, At: testEpoch,
			IdempotencyKey: strings.Repeat("\x01", IdempotencyKeyLenMax), RequestDigest: testDigest,
			Principal: strings.Repeat("\"", PrincipalLenMax),
			RequestID: strings.Repeat("\\", RequestIDLenMax), Reason: strings.Repeat("\x1f", ReasonLenMax),
		},
	}
	return events
}

func withReason(ev order.Event, reason string) order.Event {
	ev.Reason = reason
	return ev
}

func TestCodecRoundTrip(t *testing.T) {
	for name, ev := range codecEvents() {
		t.Run(name, func(t *testing.T) {
			rec, err := EncodeEvent(ev)
			require.NoError(t, err)
			assert.LessOrEqual(t, len(rec.Value), RecordValueBytesMax)
			got, err := DecodeEvent(rec.Key, rec.Value)
			require.NoError(t, err)
			assert.Equal(t, ev, got, "DecodeEvent")
			assert.Equal(t, ev, eventFromJSON(t, rec.Value), "encoding/json reads the same event")
			assert.True(t, json.Valid(rec.Value))
		})
	}
}

// everyFieldEvents are valid events between which no field of order.Event
// is left zero: a deadline change, the one kind of event with every field
// of the lifecycle, and a creation with everything it may order (only a
// creation has those, and it has no from).
var everyFieldEvents = []order.Event{{
	EventID: "01JEVERYFIELD", OrderID: "o-every", Version: 2, From: order.Created, To: order.Created,
	At: testEpoch, IdempotencyKey: "key-every", RequestDigest: testDigest, Principal: "alice",
	RequestID: "req-every", Reason: "every field", PaymentDueAt: testEpoch.Add(time.Hour),
	Metadata: map[string]string{"k": "v"},
}, {
	EventID: "01JEVERYFIELD1", OrderID: "o-every", Version: 1, To: order.Created,
	At: testEpoch, IdempotencyKey: "key-every", RequestDigest: testDigest, Principal: "alice",
	RequestID: "req-every", Reason: "every field", PaymentDueAt: testEpoch.Add(time.Hour),
	CustomerID: "cus-1", Currency: "EUR", Items: []order.Item{{SKU: "s", Quantity: 3, UnitPrice: 5}}, Total: 15,
	Metadata: map[string]string{"k": "v"},
}}

// TestEveryEventFieldSurvivesTheLog is the check list for adding a member
// to the audit record (docs/json.md): a new field of order.Event fails here
// until everyFieldEvents set it, then until EncodeEvent, DecodeEvent and
// the encoding/json reference (jsonRecord) all carry it.
func TestEveryEventFieldSurvivesTheLog(t *testing.T) {
	typ := reflect.TypeOf(order.Event{})
	for i := range typ.NumField() {
		set := false
		for _, ev := range everyFieldEvents {
			set = set || !reflect.ValueOf(ev).Field(i).IsZero()
		}
		assert.True(t, set, "order.Event.%s is zero in every one of everyFieldEvents: set it there", typ.Field(i).Name)
	}
	for _, ev := range everyFieldEvents {
		rec, err := EncodeEvent(ev)
		require.NoError(t, err)
		got, err := DecodeEvent(rec.Key, rec.Value)
		require.NoError(t, err)
		assert.Equal(t, ev, got, "DecodeEvent(EncodeEvent(ev))")
		assert.Equal(t, ev, eventFromJSON(t, rec.Value), "encoding/json's reading of EncodeEvent(ev)")
	}
}

func TestEncodeEventIsTheDesignedRecord(t *testing.T) {
	for _, ev := range []order.Event{lifecycleEvent("order-7", 1), lifecycleEvent("order-7", 3)} {
		rec, err := EncodeEvent(ev)
		require.NoError(t, err)
		assert.Equal(t, ev.OrderID, string(rec.Key))

		dec := json.NewDecoder(bytes.NewReader(rec.Value))
		dec.UseNumber()
		var members map[string]any
		require.NoError(t, dec.Decode(&members))
		wantFrom := any(nil)
		if ev.Version > 1 {
			wantFrom = ev.From.String()
		}
		assert.Equal(t, map[string]any{
			"event_id":        ev.EventID,
			"order_id":        ev.OrderID,
			"version":         json.Number(strconv.FormatUint(ev.Version, 10)),
			"from":            wantFrom,
			"to":              ev.To.String(),
			"at":              ev.At.Format("2006-01-02T15:04:05.000000000Z"),
			"idempotency_key": ev.IdempotencyKey,
			"request_digest":  ev.RequestDigest,
			"principal":       ev.Principal,
			"request_id":      ev.RequestID,
			"reason":          ev.Reason,
		}, members)

		headers := make(map[string]string)
		for _, h := range rec.Headers {
			headers[h.Key] = string(h.Value)
		}
		assert.Len(t, rec.Headers, 7)
		assert.Equal(t, map[string]string{
			"ce_specversion": "1.0",
			"ce_id":          ev.EventID,
			"ce_source":      "orderd",
			"ce_type":        "orderd.order.transitioned",
			"ce_subject":     ev.OrderID,
			"ce_time":        ev.At.Format(time.RFC3339Nano),
			"content-type":   "application/json",
		}, headersWithRFC3339Time(headers))
	}
}

// headersWithRFC3339Time rewrites ce_time through time.Parse, checking that
// it is RFC 3339 and naming the same instant.
func headersWithRFC3339Time(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = v
	}
	if at, err := time.Parse(time.RFC3339Nano, h["ce_time"]); err == nil {
		out["ce_time"] = at.Format(time.RFC3339Nano)
	}
	return out
}

func TestEncodeEventConvertsTimesToUTC(t *testing.T) {
	ev := lifecycleEvent("zoned", 1)
	ev.At = ev.At.In(time.FixedZone("UTC+5", 5*3600))
	rec, err := EncodeEvent(ev)
	require.NoError(t, err)
	got, err := DecodeEvent(rec.Key, rec.Value)
	require.NoError(t, err)
	assert.True(t, got.At.Equal(ev.At))
	assert.Equal(t, time.UTC, got.At.Location())
}

func TestValidateEventRefuses(t *testing.T) {
	valid := lifecycleEvent("valid", 2)
	for name, mutate := range map[string]func(*order.Event){
		"BadOrderID":     func(ev *order.Event) { ev.OrderID = "has space" },
		"EmptyOrderID":   func(ev *order.Event) { ev.OrderID = "" },
		"EmptyEventID":   func(ev *order.Event) { ev.EventID = "" },
		"LongEventID":    func(ev *order.Event) { ev.EventID = strings.Repeat("e", EventIDLenMax+1) },
		"VersionZero":    func(ev *order.Event) { ev.Version = 0 },
		"InvalidTo":      func(ev *order.Event) { ev.To = 0 },
		"ToOutOfRange":   func(ev *order.Event) { ev.To = 99 },
		"NoFromAfterV1":  func(ev *order.Event) { ev.From = 0 },
		"InvalidFrom":    func(ev *order.Event) { ev.From = 42 },
		"FromOnCreation": func(ev *order.Event) { ev.Version = 1 },
		"ZeroTime":       func(ev *order.Event) { ev.At = time.Time{} },
		"YearTooLarge":   func(ev *order.Event) { ev.At = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"YearZero":       func(ev *order.Event) { ev.At = time.Date(0, 6, 1, 0, 0, 0, 0, time.UTC) },
		"YearTooLargeInUTC": func(ev *order.Event) {
			ev.At = time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("UTC-5", -5*3600))
		},
		"LongKey":           func(ev *order.Event) { ev.IdempotencyKey = strings.Repeat("k", IdempotencyKeyLenMax+1) },
		"LongPrincipal":     func(ev *order.Event) { ev.Principal = strings.Repeat("p", PrincipalLenMax+1) },
		"LongRequestID":     func(ev *order.Event) { ev.RequestID = strings.Repeat("r", RequestIDLenMax+1) },
		"LongReason":        func(ev *order.Event) { ev.Reason = strings.Repeat("r", ReasonLenMax+1) },
		"InvalidUTF8Reason": func(ev *order.Event) { ev.Reason = "\xff" },
		"InvalidUTF8Key":    func(ev *order.Event) { ev.IdempotencyKey = "a\xc3" },
		"DigestWithoutKey":  func(ev *order.Event) { ev.IdempotencyKey = "" },
		"DigestShort":       func(ev *order.Event) { ev.RequestDigest = testDigest[1:] },
		"DigestLong":        func(ev *order.Event) { ev.RequestDigest = testDigest + "0" },
		"DigestUppercase":   func(ev *order.Event) { ev.RequestDigest = strings.ToUpper(testDigest) },
		"DigestNotHex":      func(ev *order.Event) { ev.RequestDigest = "g" + testDigest[1:] },
		"ItemsAfterCreation": func(ev *order.Event) {
			ev.Currency, ev.Items, ev.Total = "EUR", []order.Item{{SKU: "s", Quantity: 1, UnitPrice: 1}}, 1
		},
		"CustomerAfterCreation": func(ev *order.Event) { ev.CustomerID = "c" },
		"EmptyMetadata":         func(ev *order.Event) { ev.Metadata = map[string]string{} },
		"BadMetadataKey":        func(ev *order.Event) { ev.Metadata = map[string]string{"a b": "v"} },
		"LongMetadataValue": func(ev *order.Event) {
			ev.Metadata = map[string]string{"k": strings.Repeat("v", order.MetadataValueLenMax+1)}
		},
	} {
		ev := valid
		mutate(&ev)
		_, err := EncodeEvent(ev)
		assert.ErrorIs(t, err, ErrInvalidRecord, name)
	}
	_, err := EncodeEvent(valid)
	assert.NoError(t, err)

	creation := lifecycleEvent("valid", 1)
	creation.Currency, creation.Items, creation.Total = "EUR", []order.Item{{SKU: "s", Quantity: 2, UnitPrice: 5}}, 10
	for name, mutate := range map[string]func(*order.Event){
		"WrongTotal":          func(ev *order.Event) { ev.Total = 11 },
		"TotalWithoutItems":   func(ev *order.Event) { ev.Currency, ev.Items = "", nil },
		"ItemsNoCurrency":     func(ev *order.Event) { ev.Currency = "" },
		"CurrencyNoItems":     func(ev *order.Event) { ev.Items, ev.Total = nil, 0 },
		"NoItems":             func(ev *order.Event) { ev.Items, ev.Total = []order.Item{}, 0 },
		"LowercaseCurrency":   func(ev *order.Event) { ev.Currency = "eur" },
		"QuantityZero":        func(ev *order.Event) { ev.Items, ev.Total = []order.Item{{SKU: "s", UnitPrice: 5}}, 0 },
		"NegativePrice":       func(ev *order.Event) { ev.Items, ev.Total = []order.Item{{SKU: "s", Quantity: 1, UnitPrice: -5}}, -5 },
		"BadSKU":              func(ev *order.Event) { ev.Items[0].SKU = "a/b" },
		"TooManyItems":        func(ev *order.Event) { ev.Items = make([]order.Item, order.ItemsMax+1) },
		"BadCustomer":         func(ev *order.Event) { ev.CustomerID = "with space" },
		"LongCustomer":        func(ev *order.Event) { ev.CustomerID = strings.Repeat("c", order.CustomerIDLenMax+1) },
		"InvalidUTF8Metadata": func(ev *order.Event) { ev.Metadata = map[string]string{"k": "\xff"} },
	} {
		ev := creation
		ev.Items = slices.Clone(creation.Items)
		mutate(&ev)
		_, err := EncodeEvent(ev)
		assert.ErrorIs(t, err, ErrInvalidRecord, name)
	}
	_, err = EncodeEvent(creation)
	assert.NoError(t, err)
}

// TestLargestRecordFits: the longest event ValidateEvent accepts, every
// string at its bound and escaped six-fold where it can be, fits in
// RecordValueBytesMax, so the journal never refuses an event the API took.
func TestLargestRecordFits(t *testing.T) {
	ctl := func(n int) string { return strings.Repeat("\x01", n) }
	items := make([]order.Item, order.ItemsMax)
	for i := range items {
		items[i] = order.Item{SKU: strings.Repeat("s", order.SKULenMax), Quantity: order.QuantityMax, UnitPrice: order.UnitPriceMax}
	}
	md := map[string]string{}
	for i := range order.MetadataKeysMax {
		key := fmt.Sprintf("%0*d", order.MetadataKeyLenMax, i)
		md[key] = ctl(order.MetadataBytesMax/order.MetadataKeysMax - len(key))
	}
	// The bytes left over go to values: the bound is on keys and values together.
	require.NoError(t, order.CheckMetadata(md))
	ev := order.Event{
		EventID: ctl(EventIDLenMax), OrderID: strings.Repeat("o", order.IDLenMax), Version: 1, To: order.Created,
		At: testEpoch, PaymentDueAt: testEpoch.Add(time.Hour),
		IdempotencyKey: ctl(IdempotencyKeyLenMax), RequestDigest: testDigest, Principal: ctl(PrincipalLenMax),
		RequestID: ctl(RequestIDLenMax), Reason: ctl(ReasonLenMax),
		CustomerID: strings.Repeat(`"`, order.CustomerIDLenMax), Currency: "EUR", Items: items,
		Total: order.ItemsMax * order.QuantityMax * order.UnitPriceMax, Metadata: md,
	}
	rec, err := EncodeEvent(ev)
	require.NoError(t, err)
	t.Logf("the largest record is %d bytes of %d", len(rec.Value), RecordValueBytesMax)
	assert.LessOrEqual(t, len(rec.Value), RecordValueBytesMax)
	got, err := DecodeEvent(rec.Key, rec.Value)
	require.NoError(t, err)
	assert.Equal(t, ev, got)
}

const validValue = `{"event_id":"e1","order_id":"o1","version":2,"from":"Created","to":"Paid","at":"2026-11-23T12:00:00.5Z","idempotency_key":"k","request_digest":"` + testDigest + `","principal":"","request_id":"","reason":""}`

// legacyValue is a record as written before request_digest existed.
const legacyValue = `{"event_id":"e1","order_id":"o1","version":2,"from":"Created","to":"Paid","at":"2026-11-23T12:00:00.5Z","idempotency_key":"k","principal":"","request_id":"","reason":""}`

func TestDecodeEventAcceptsValidJSONItDidNotWrite(t *testing.T) {
	for name, value := range map[string]string{
		"Compact":         validValue,
		"Whitespace":      " \t\n{ \"event_id\" : \"e1\" ,\r\n\"order_id\":\"o1\",\"version\":2,\"from\":\"Created\",\"to\":\"Paid\",\"at\":\"2026-11-23T12:00:00.5Z\",\"idempotency_key\":\"\",\"principal\":\"\",\"request_id\":\"\",\"reason\":\"\" } \n",
		"OtherOrder":      `{"reason":"","request_id":"","principal":"","request_digest":"` + testDigest + `","idempotency_key":"k","at":"2026-11-23T12:00:00.5Z","to":"Paid","from":"Created","version":2,"order_id":"o1","event_id":"e1"}`,
		"Legacy":          legacyValue,
		"EmptyDigest":     strings.Replace(validValue, testDigest, "", 1),
		"EscapedNames":    strings.Replace(validValue, `"event_id"`, `"\u0065vent_id"`, 1),
		"EscapedState":    strings.Replace(validValue, `"Paid"`, `"P\u0061id"`, 1),
		"SurrogatePair":   strings.Replace(validValue, `"reason":""`, `"reason":"\ud834\udd1e"`, 1),
		"EscapedSlash":    strings.Replace(validValue, `"reason":""`, `"reason":"a\/b"`, 1),
		"NoFraction":      strings.Replace(validValue, `12:00:00.5Z`, `12:00:00Z`, 1),
		"UppercaseEscape": strings.Replace(validValue, `"reason":""`, `"reason":"\u00E9"`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			ev, err := DecodeEvent([]byte("o1"), []byte(value))
			require.NoError(t, err)
			assert.Equal(t, eventFromJSON(t, []byte(value)), ev)
		})
	}
}

func TestDecodeEventRefuses(t *testing.T) {
	replace := func(old, new string) string {
		if !strings.Contains(validValue, old) {
			panic(old)
		}
		return strings.Replace(validValue, old, new, 1)
	}
	for name, value := range map[string]string{
		"Empty":              "",
		"Null":               "null",
		"Array":              "[]",
		"EmptyObject":        "{}",
		"Truncated":          validValue[:len(validValue)-1],
		"TruncatedInString":  validValue[:20],
		"TrailingData":       validValue + "{}",
		"TrailingComma":      replace(`"reason":""}`, `"reason":"",}`),
		"MissingMember":      replace(`,"reason":""`, ``),
		"DuplicateMember":    replace(`"reason":""`, `"reason":"","reason":""`),
		"UnknownMember":      replace(`"reason":""`, `"reason":"","extra":1`),
		"CaseFoldedName":     replace(`"event_id"`, `"Event_ID"`),
		"VersionString":      replace(`"version":2`, `"version":"2"`),
		"VersionFloat":       replace(`"version":2`, `"version":2.0`),
		"VersionExponent":    replace(`"version":2`, `"version":2e0`),
		"VersionNegative":    replace(`"version":2`, `"version":-2`),
		"VersionLeadingZero": replace(`"version":2`, `"version":02`),
		"VersionOverflow":    replace(`"version":2`, `"version":18446744073709551616`),
		"VersionHuge":        replace(`"version":2`, `"version":`+strings.Repeat("9", 400)),
		"VersionZero":        replace(`"version":2`, `"version":0`),
		"VersionNull":        replace(`"version":2`, `"version":null`),
		"FromNullAfterV1":    replace(`"from":"Created"`, `"from":null`),
		"FromEmpty":          replace(`"from":"Created"`, `"from":""`),
		"FromNumber":         replace(`"from":"Created"`, `"from":1`),
		"FromOnCreation":     replace(`"version":2`, `"version":1`),
		"ToNull":             replace(`"to":"Paid"`, `"to":null`),
		"ToLowercase":        replace(`"to":"Paid"`, `"to":"paid"`),
		"ToUnknown":          replace(`"to":"Paid"`, `"to":"Lost"`),
		"AtOffset":           replace(`12:00:00.5Z`, `13:00:00.5+01:00`),
		"AtNoZone":           replace(`12:00:00.5Z`, `12:00:00.5`),
		"AtGarbage":          replace(`2026-11-23T12:00:00.5Z`, `yesterday Z`),
		"AtZero":             replace(`2026-11-23T12:00:00.5Z`, `0001-01-01T00:00:00Z`),
		"AtYear0":            replace(`2026-11-23T12:00:00.5Z`, `0000-06-01T00:00:00Z`),
		"ReasonNumber":       replace(`"reason":""`, `"reason":5`),
		"ReasonNull":         replace(`"reason":""`, `"reason":null`),
		"ReasonObject":       replace(`"reason":""`, `"reason":{}`),
		"RawControlChar":     replace(`"reason":""`, "\"reason\":\"a\nb\""),
		"BadEscape":          replace(`"reason":""`, `"reason":"\x"`),
		"ShortUnicodeEscape": replace(`"reason":""`, `"reason":"\u12"`),
		"LoneHighSurrogate":  replace(`"reason":""`, `"reason":"\ud834"`),
		"LoneLowSurrogate":   replace(`"reason":""`, `"reason":"\udd1e"`),
		"HighThenNotLow":     replace(`"reason":""`, `"reason":"\ud834\u0041"`),
		"InvalidUTF8":        replace(`"reason":""`, "\"reason\":\"\xff\""),
		"BadOrderID":         replace(`"order_id":"o1"`, `"order_id":"o 1"`),
		"EmptyEventID":       replace(`"event_id":"e1"`, `"event_id":""`),
		"LongReason":         replace(`"reason":""`, `"reason":"`+strings.Repeat("r", ReasonLenMax+1)+`"`),
		"Oversize":           replace(`"reason":""`, `"reason":"`+strings.Repeat(" ", RecordValueBytesMax)+`"`),
		"SingleQuotes":       replace(`"reason":""`, `'reason':''`),
		"NoColon":            replace(`"reason":""`, `"reason" ""`),
		"DigestTwice":        replace(`"reason":""`, `"reason":"","request_digest":"`+testDigest+`"`),
		"DigestNull":         replace(`"`+testDigest+`"`, `null`),
		"DigestNumber":       replace(`"`+testDigest+`"`, `1`),
		"DigestUppercase":    replace(testDigest, strings.ToUpper(testDigest)),
		"DigestShort":        replace(testDigest, testDigest[2:]),
		"DigestWithoutKey":   replace(`"idempotency_key":"k"`, `"idempotency_key":""`),
		"DigestCaseFolded":   replace(`"request_digest"`, `"Request_Digest"`),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeEvent([]byte("o1"), []byte(value))
			assert.ErrorIs(t, err, ErrInvalidRecord)
		})
	}
	t.Run("KeyIsNotOrderID", func(t *testing.T) {
		_, err := DecodeEvent([]byte("o2"), []byte(validValue))
		assert.ErrorIs(t, err, ErrInvalidRecord)
	})
	t.Run("NilKey", func(t *testing.T) {
		_, err := DecodeEvent(nil, []byte(validValue))
		assert.ErrorIs(t, err, ErrInvalidRecord)
	})
}

func FuzzDecodeEvent(f *testing.F) {
	// The committed corpus in testdata/fuzz/FuzzDecodeEvent holds the
	// interesting cases; these add every codec test event.
	for _, ev := range codecEvents() {
		rec, err := EncodeEvent(ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rec.Key, rec.Value)
	}
	f.Fuzz(func(t *testing.T, key, value []byte) {
		ev, err := DecodeEvent(key, value)
		if err != nil {
			return
		}
		// Whatever decodes is a valid event, reads the same through
		// encoding/json, and survives a round trip unchanged.
		require.Equal(t, ev, eventFromJSON(t, value), "encoding/json disagrees")
		rec, err := EncodeEvent(ev)
		require.NoError(t, err, "a decoded event must encode")
		again, err := DecodeEvent(rec.Key, rec.Value)
		require.NoError(t, err)
		require.Equal(t, ev, again)
		require.Equal(t, key, rec.Key)
	})
}

func BenchmarkEncodeEvent(b *testing.B) {
	ev := lifecycleEvent("01JDXQ6Z8M3V5T2K9R4W7N1B0C", 2)
	rec, _ := EncodeEvent(ev)
	b.SetBytes(int64(len(rec.Value)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeEvent(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeRecord is the write path's encoding: into memory reused
// from record to record, as a recycled pendingAppend does.
func BenchmarkEncodeRecord(b *testing.B) {
	ev := lifecycleEvent("01JDXQ6Z8M3V5T2K9R4W7N1B0C", 2)
	var headers [headerCount]kafka.Header
	_, value, buf, err := encodeRecord(nil, &headers, ev)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, buf, err = encodeRecord(buf, &headers, ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	benchmarkDecode(b, lifecycleEvent("01JDXQ6Z8M3V5T2K9R4W7N1B0C", 2))
}

func benchmarkDecode(b *testing.B, ev order.Event) {
	rec, err := EncodeEvent(ev)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(rec.Value)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEvent(rec.Key, rec.Value); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeEventJSON is the encoding/json baseline the hand-written
// decoder is measured against.
func BenchmarkDecodeEventJSON(b *testing.B) {
	rec, err := EncodeEvent(lifecycleEvent("01JDXQ6Z8M3V5T2K9R4W7N1B0C", 2))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(rec.Value)))
	b.ReportAllocs()
	for b.Loop() {
		var r jsonRecord
		if err := json.Unmarshal(rec.Value, &r); err != nil {
			b.Fatal(err)
		}
	}
}

// Payment deadlines are optional on decode (older records lack them), belong
// only to events that leave the order in Created, and a deadline change must
// carry one.
func TestCodecPaymentDueAt(t *testing.T) {
	const base = `{"event_id":"e","order_id":"o","version":%d,"from":%s,"to":"%s","at":"2026-01-02T03:04:05.000000000Z","idempotency_key":"","principal":"","request_id":"","reason":""%s}`
	due := `,"payment_due_at":"2026-01-02T03:34:05.000000000Z"`
	ok := map[string]string{
		"OldCreation":     fmt.Sprintf(base, 1, "null", "Created", ""),
		"CreationWithDue": fmt.Sprintf(base, 1, "null", "Created", due),
		"DeadlineChange":  fmt.Sprintf(base, 2, `"Created"`, "Created", due),
	}
	for name, value := range ok {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeEvent([]byte("o"), []byte(value))
			require.NoError(t, err)
		})
	}
	bad := map[string]string{
		"ChangeWithoutDue": fmt.Sprintf(base, 2, `"Created"`, "Created", ""),
		"DueOnPaid":        fmt.Sprintf(base, 2, `"Created"`, "Paid", due),
		"DueTwice":         fmt.Sprintf(base, 1, "null", "Created", due+due),
		"DueNotUTC":        fmt.Sprintf(base, 1, "null", "Created", `,"payment_due_at":"2026-01-02T03:34:05+01:00"`),
		"DueNull":          fmt.Sprintf(base, 1, "null", "Created", `,"payment_due_at":null`),
	}
	for name, value := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeEvent([]byte("o"), []byte(value))
			assert.ErrorIs(t, err, ErrInvalidRecord)
		})
	}
}

// What a creation orders and the metadata are optional on decode (records
// written before them lack them, and decode with none), strict like every
// member, and only a creation may order.
func TestCodecContents(t *testing.T) {
	const base = `{"event_id":"e","order_id":"o","version":%d,"from":%s,"to":"%s","at":"2026-01-02T03:04:05.000000000Z","idempotency_key":"","principal":"","request_id":"","reason":""%s}`
	creation := func(extra string) string { return fmt.Sprintf(base, 1, "null", "Created", extra) }
	shipped := func(extra string) string { return fmt.Sprintf(base, 3, `"Paid"`, "Shipped", extra) }
	items := `,"currency":"EUR","items":[{"sku":"a","quantity":2,"unit_price":5}],"total":10`

	old, err := DecodeEvent([]byte("o"), []byte(creation("")))
	require.NoError(t, err)
	assert.True(t, old.CustomerID == "" && old.Currency == "" && old.Items == nil && old.Total == 0 && old.Metadata == nil,
		"a record without them decodes with none: %+v", old)

	ok := map[string]string{
		"Items":              creation(items),
		"Everything":         creation(`,"customer_id":"c-1"` + items + `,"metadata":{"k":"v"}`),
		"OtherMemberOrder":   creation(`,"metadata":{"k":"v"},"total":10,"items":[{"unit_price":5,"quantity":2,"sku":"a"}],"currency":"EUR"`),
		"Whitespace":         creation(` , "items" : [ { "sku" : "a" , "quantity" : 2 , "unit_price" : 5 } ] , "currency":"EUR","total":10`),
		"CustomerOnly":       creation(`,"customer_id":"c-1"`),
		"MetadataOnShipped":  shipped(`,"metadata":{"tracking_number":"0034","carrier":"DHL"}`),
		"EscapedMetadataKey": shipped(`,"metadata":{"\u0074racking":"\u00e9"}`),
	}
	for name, value := range ok {
		t.Run(name, func(t *testing.T) {
			ev, err := DecodeEvent([]byte("o"), []byte(value))
			require.NoError(t, err)
			assert.Equal(t, eventFromJSON(t, []byte(value)), ev)
		})
	}
	bad := map[string]string{
		"ItemsOnShipped":     shipped(items),
		"CustomerOnShipped":  shipped(`,"customer_id":"c"`),
		"WrongTotal":         creation(strings.Replace(items, `"total":10`, `"total":11`, 1)),
		"NoTotal":            creation(strings.Replace(items, `,"total":10`, ``, 1)),
		"NoCurrency":         creation(strings.Replace(items, `"currency":"EUR",`, ``, 1)),
		"EmptyItems":         creation(`,"currency":"EUR","items":[],"total":0`),
		"ItemsNull":          creation(`,"currency":"EUR","items":null,"total":0`),
		"ItemMissingPrice":   creation(`,"currency":"EUR","items":[{"sku":"a","quantity":2}],"total":0`),
		"ItemUnknownMember":  creation(`,"currency":"EUR","items":[{"sku":"a","quantity":2,"unit_price":5,"x":1}],"total":10`),
		"ItemDuplicate":      creation(`,"currency":"EUR","items":[{"sku":"a","sku":"b","quantity":2,"unit_price":5}],"total":10`),
		"ItemMisCased":       creation(`,"currency":"EUR","items":[{"SKU":"a","quantity":2,"unit_price":5}],"total":10`),
		"QuantityFraction":   creation(`,"currency":"EUR","items":[{"sku":"a","quantity":2.0,"unit_price":5}],"total":10`),
		"QuantityNegative":   creation(`,"currency":"EUR","items":[{"sku":"a","quantity":-2,"unit_price":5}],"total":-10`),
		"QuantityString":     creation(`,"currency":"EUR","items":[{"sku":"a","quantity":"2","unit_price":5}],"total":10`),
		"PriceBeyondInt64":   creation(`,"currency":"EUR","items":[{"sku":"a","quantity":1,"unit_price":9223372036854775808}],"total":0`),
		"TrailingComma":      creation(`,"currency":"EUR","items":[{"sku":"a","quantity":2,"unit_price":5},],"total":10`),
		"ItemsTwice":         creation(items + items),
		"MetadataEmpty":      shipped(`,"metadata":{}`),
		"MetadataNumber":     shipped(`,"metadata":{"k":1}`),
		"MetadataDuplicate":  shipped(`,"metadata":{"k":"a","k":"b"}`),
		"MetadataNull":       shipped(`,"metadata":null`),
		"MetadataBadKey":     shipped(`,"metadata":{"a b":"v"}`),
		"MetadataNested":     shipped(`,"metadata":{"k":{"a":"b"}}`),
		"MetadataMisCased":   shipped(`,"Metadata":{"k":"v"}`),
		"MetadataTruncated":  shipped(`,"metadata":{"k":"v"`),
		"CurrencyLowercase":  creation(strings.Replace(items, `"EUR"`, `"eur"`, 1)),
		"CustomerEmpty":      creation(`,"customer_id":""`),
		"CurrencyEmpty":      creation(`,"currency":""`),
		"CustomerWithSpaces": creation(`,"customer_id":"a b"`),
	}
	for name, value := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeEvent([]byte("o"), []byte(value))
			assert.ErrorIs(t, err, ErrInvalidRecord)
		})
	}
	many := make([]string, order.ItemsMax+1)
	for i := range many {
		many[i] = `{"sku":"a","quantity":1,"unit_price":1}`
	}
	_, err = DecodeEvent([]byte("o"), []byte(creation(`,"currency":"EUR","items":[`+strings.Join(many, ",")+`],"total":101`)))
	assert.ErrorIs(t, err, ErrInvalidRecord, "more items than allowed")
}

// BenchmarkDecodeEventWithContents: a creation with three items and
// metadata, for comparison with BenchmarkDecodeEvent (which has neither).
func BenchmarkDecodeEventWithContents(b *testing.B) {
	ev := lifecycleEvent("01JDXQ6Z8M3V5T2K9R4W7N1B0C", 1)
	ev.CustomerID, ev.Currency, ev.Total = "cus-42", "EUR", 4248
	ev.Items = []order.Item{{SKU: "mug-blue", Quantity: 2, UnitPrice: 1250}, {SKU: "tea-earl-grey", Quantity: 3, UnitPrice: 499}, {SKU: "card", Quantity: 1, UnitPrice: 251}}
	ev.Metadata = map[string]string{"channel": "web", "campaign": "winter-26"}
	benchmarkDecode(b, ev)
}

// TestOldRecordsStillDecode: the log is forever, so records written before
// orders carried contents (the committed valid seeds, and every golden
// event's record, which is byte for byte what the code before them wrote)
// decode as they did, with no contents.
func TestOldRecordsStillDecode(t *testing.T) {
	for _, name := range []string{"valid-creation-null-from", "valid-empty-digest", "valid-escapes", "valid-transition",
		"valid-whitespace", "valid-with-digest", "deadline-change"} {
		raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzDecodeEvent", name))
		require.NoError(t, err)
		lines := strings.Split(string(raw), "\n")
		require.GreaterOrEqual(t, len(lines), 3, name)
		key, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		require.NoError(t, err, name)
		value, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[2], "[]byte("), ")"))
		require.NoError(t, err, name)
		ev, err := DecodeEvent([]byte(key), []byte(value))
		require.NoError(t, err, name)
		assert.True(t, ev.CustomerID == "" && ev.Currency == "" && ev.Items == nil && ev.Total == 0 && ev.Metadata == nil, name)
	}
}
