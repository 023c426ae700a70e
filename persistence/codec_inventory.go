package persistence

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/segmentio/kafka-go"

	"github.com/orderd/orderd/order"
)

// Inventory records (order/inventory.go) share the audit topic with order
// records: key "inventory:<sku>" (order.InventoryKey; ':' is no order-ID
// character, and claims use "orderd:claim"), so that a SKU's records land in
// one partition by the same murmur2 rule and come under the same claims,
// writers and state store. Headers are the CloudEvents binding of order
// records with their own type and the SKU as subject. The value is one flat
// JSON object with every member always present, in this order:
//
//	{"event_id","sku","version","change","quantity","on_hand","reserved",
//	 "order_id","order_version","at","principal","request_id","idempotency_key"}
//
// on_hand and reserved are the SKU's after the change; order_id is "" and
// order_version and quantity 0 on a set. The decoder reads it with the order
// records' JSON primitives (codec_parse.go), as strictly: exact names, each
// once, nothing else.

// ceTypeInventory is the CloudEvents type of inventory records.
const ceTypeInventory = "orderd.inventory.changed"

var (
	inventoryKeyPrefix = []byte(order.InventoryKeyPrefix)
	typeInventoryBytes = []byte(ceTypeInventory)
)

// IsInventoryKey reports whether a record key of the audit topic is an
// inventory record's: readers of orders skip such records by their key
// alone, without decoding them (and without counting them as garbage).
func IsInventoryKey(key []byte) bool { return bytes.HasPrefix(key, inventoryKeyPrefix) }

// ValidateInventoryEvent checks everything the journal requires of an
// inventory event before it is written and after it is read back: a valid
// SKU and event ID, a version of at least 1, a known change, quantities
// within their bounds, an order exactly when the change is not a set, and
// texts within the bounds of order records. Whether the change continues the
// SKU is order.ApplyInventory's to judge.
func ValidateInventoryEvent(ev order.InventoryEvent) error {
	if err := order.ValidateSKU(ev.SKU); err != nil {
		return fmt.Errorf("%w: sku: %w", ErrInvalidRecord, err)
	}
	if ev.EventID == "" {
		return fmt.Errorf("%w: event_id is empty", ErrInvalidRecord)
	}
	if err := checkText("event_id", ev.EventID, EventIDLenMax); err != nil {
		return err
	}
	switch {
	case ev.Version < 1:
		return fmt.Errorf("%w: version %d, the first version is 1", ErrInvalidRecord, ev.Version)
	case !ev.Change.Valid():
		return fmt.Errorf("%w: change %v", ErrInvalidRecord, ev.Change)
	case ev.Quantity < 0 || ev.Quantity > order.QuantityMax:
		return fmt.Errorf("%w: quantity %d is outside 0..%d", ErrInvalidRecord, ev.Quantity, order.QuantityMax)
	case ev.OnHand < 0 || ev.OnHand > order.OnHandMax:
		return fmt.Errorf("%w: on_hand %d is outside 0..%d", ErrInvalidRecord, ev.OnHand, order.OnHandMax)
	case ev.Reserved < 0 || ev.Reserved > ev.OnHand:
		return fmt.Errorf("%w: reserved %d is outside 0..on_hand (%d)", ErrInvalidRecord, ev.Reserved, ev.OnHand)
	}
	if err := checkInventoryOrder(ev); err != nil {
		return err
	}
	if y := ev.At.UTC().Year(); ev.At.IsZero() || y < 1 || y > 9999 {
		return fmt.Errorf("%w: at %v is zero or outside the years RFC 3339 can write", ErrInvalidRecord, ev.At)
	}
	if err := checkText("principal", ev.Principal, PrincipalLenMax); err != nil {
		return err
	}
	if err := checkText("request_id", ev.RequestID, RequestIDLenMax); err != nil {
		return err
	}
	return checkText("idempotency_key", ev.IdempotencyKey, IdempotencyKeyLenMax)
}

// checkInventoryOrder: a set names no order and no quantity; every other
// change names a valid order, and all but a release at least one unit.
func checkInventoryOrder(ev order.InventoryEvent) error {
	if ev.Change == order.StockSet {
		if ev.OrderID != "" || ev.OrderVersion != 0 || ev.Quantity != 0 {
			return fmt.Errorf("%w: a set with order_id %q, order_version %d, quantity %d", ErrInvalidRecord, ev.OrderID, ev.OrderVersion, ev.Quantity)
		}
		return nil
	}
	if err := order.ValidateID(ev.OrderID); err != nil {
		return fmt.Errorf("%w: order_id: %w", ErrInvalidRecord, err)
	}
	if ev.Quantity == 0 && ev.Change != order.StockRelease {
		return fmt.Errorf("%w: a %v of 0 units", ErrInvalidRecord, ev.Change)
	}
	return nil
}

// EncodeInventory validates ev and encodes it as its record, which owns its
// memory.
func EncodeInventory(ev order.InventoryEvent) (Record, error) {
	headers := new([headerCount]kafka.Header)
	key, value, _, err := encodeInventoryRecord(nil, headers, ev)
	if err != nil {
		return Record{}, err
	}
	return Record{Key: key, Value: value, Headers: headers[:]}, nil
}

// encodeInventoryRecord is encodeRecord for an inventory event: into buf's
// memory, growing it if need be, with headers filled.
func encodeInventoryRecord(buf []byte, headers *[headerCount]kafka.Header, ev order.InventoryEvent) (key, value, next []byte, err error) {
	if err := ValidateInventoryEvent(ev); err != nil {
		return nil, nil, buf, err
	}
	b := buf[:0]
	if n := 2*len(inventoryKeyPrefix) + 2*len(ev.SKU) + len(ev.EventID) + timeTextLen + inventorySizeHint(ev); cap(b) < n {
		b = make([]byte, 0, n)
	}
	b = append(b, inventoryKeyPrefix...)
	b = append(b, ev.SKU...)
	b = append(b, ev.EventID...)
	b = appendTime(b, ev.At.UTC())
	k, id := len(inventoryKeyPrefix)+len(ev.SKU), len(inventoryKeyPrefix)+len(ev.SKU)+len(ev.EventID)
	key = b[:k:k]
	subject := b[len(inventoryKeyPrefix):k:k]
	idText := b[k:id:id]
	atText := b[id:len(b):len(b)]
	start := len(b)
	b = appendInventoryJSON(b, ev, atText)
	value = b[start:len(b):len(b)]
	*headers = cloudEventHeaders(typeInventoryBytes, subject, idText, atText)
	return key, value, b, nil
}

func inventorySizeHint(ev order.InventoryEvent) int {
	const fixed = len(`{"event_id":"","sku":"","version":,"change":"restock","quantity":,"on_hand":,"reserved":,"order_id":"","order_version":,"at":"","principal":"","request_id":"","idempotency_key":""}`)
	return fixed + 5*20 + timeTextLen + len(ev.EventID) + len(ev.SKU) + len(ev.OrderID) + len(ev.Principal) + len(ev.RequestID) + len(ev.IdempotencyKey)
}

// appendInventoryJSON writes the members in their fixed order. ev must be valid.
func appendInventoryJSON(b []byte, ev order.InventoryEvent, atText []byte) []byte {
	b = append(b, `{"event_id":`...)
	b = appendString(b, ev.EventID)
	b = append(b, `,"sku":`...)
	b = appendString(b, ev.SKU)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, ev.Version, 10)
	b = append(b, `,"change":`...)
	b = appendString(b, ev.Change.String())
	b = append(b, `,"quantity":`...)
	b = strconv.AppendInt(b, ev.Quantity, 10)
	b = append(b, `,"on_hand":`...)
	b = strconv.AppendInt(b, ev.OnHand, 10)
	b = append(b, `,"reserved":`...)
	b = strconv.AppendInt(b, ev.Reserved, 10)
	b = append(b, `,"order_id":`...)
	b = appendString(b, ev.OrderID)
	b = append(b, `,"order_version":`...)
	b = strconv.AppendUint(b, ev.OrderVersion, 10)
	b = append(b, `,"at":"`...)
	b = append(b, atText...)
	b = append(b, `","principal":`...)
	b = appendString(b, ev.Principal)
	b = append(b, `,"request_id":`...)
	b = appendString(b, ev.RequestID)
	b = append(b, `,"idempotency_key":`...)
	b = appendString(b, ev.IdempotencyKey)
	return append(b, '}')
}

// inventoryMembers are the value's members, in the order they are written;
// every one is required.
var inventoryMembers = [...]string{
	"event_id", "sku", "version", "change", "quantity", "on_hand", "reserved",
	"order_id", "order_version", "at", "principal", "request_id", "idempotency_key",
}

// DecodeInventory reads a record written by EncodeInventory. It is strict:
// one JSON object with exactly the members above, each once, of the right
// type; the key must be the SKU's; the event must pass
// ValidateInventoryEvent. Every error matches ErrInvalidRecord. It never
// panics, whatever the input.
func DecodeInventory(key, value []byte) (order.InventoryEvent, error) {
	return decodeStrict(key, value, parseInventory,
		func(ev order.InventoryEvent) string { return order.InventoryKey(ev.SKU) }, ValidateInventoryEvent)
}

func parseInventory(b []byte) (order.InventoryEvent, error) {
	p := parser{b: b}
	defer p.releaseScratch()
	var ev order.InventoryEvent
	seen, err := p.object(inventoryMembers[:], func(i int) error { return p.inventoryMember(i, &ev) })
	if err != nil {
		return ev, err
	}
	for i, name := range inventoryMembers {
		if seen&(1<<i) == 0 {
			return ev, fmt.Errorf("member %q is missing", name)
		}
	}
	return ev, nil
}

// inventoryMember reads the value of member i into ev.
func (p *parser) inventoryMember(i int, ev *order.InventoryEvent) error {
	name := inventoryMembers[i]
	switch name {
	case "version", "order_version", "quantity", "on_hand", "reserved":
		v, err := p.uint64(name)
		if err != nil {
			return err
		}
		// Units are at most order.OnHandMax, so the conversions below
		// cannot wrap; ValidateInventoryEvent checks each bound.
		if name != "version" && name != "order_version" && v > order.OnHandMax {
			return fmt.Errorf("member %s: %d is too large", name, v)
		}
		switch name {
		case "version":
			ev.Version = v
		case "order_version":
			ev.OrderVersion = v
		case "quantity":
			ev.Quantity = int64(v)
		case "on_hand":
			ev.OnHand = int64(v)
		case "reserved":
			ev.Reserved = int64(v)
		}
		return nil
	}
	text, err := p.string()
	if err != nil {
		return fmt.Errorf("member %s: %w", name, err)
	}
	switch name {
	case "change":
		c, ok := order.ParseStockChange(string(text))
		if !ok {
			return fmt.Errorf("member change: unknown change %q", string(text))
		}
		ev.Change = c
	case "at":
		at, err := parseTime(text)
		if err != nil {
			return fmt.Errorf("member at: %w", err)
		}
		ev.At = at
	case "event_id":
		ev.EventID = string(text)
	case "sku":
		ev.SKU = string(text)
	case "order_id":
		ev.OrderID = string(text)
	case "principal":
		ev.Principal = string(text)
	case "request_id":
		ev.RequestID = string(text)
	case "idempotency_key":
		ev.IdempotencyKey = string(text)
	}
	return nil
}
