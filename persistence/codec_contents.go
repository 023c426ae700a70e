package persistence

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"

	"github.com/orderd/orderd/order"
)

// The members of what a creation orders (customer_id, currency, items,
// total) and of the metadata any event carries (order/contents.go). They
// are written only when present, so a record without them is byte for byte
// what it was before they existed, and its decoding takes no other path.

// checkContents: what was ordered belongs to the creation alone, within
// the order package's bounds and with the total that its items make;
// metadata, on any event, within its bounds and not empty (an empty object
// would not read back as it was written).
func checkContents(ev order.Event) error {
	if ev.Version != 1 && (ev.CustomerID != "" || ev.Currency != "" || ev.Items != nil || ev.Total != 0) {
		return fmt.Errorf("%w: version %d carries what a creation orders", ErrInvalidRecord, ev.Version)
	}
	if err := order.CheckOrderContents(ev.CustomerID, ev.Currency, ev.Items); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	total, err := order.Total(ev.Items)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	if ev.Total != total {
		return fmt.Errorf("%w: total is %d, its items make %d", ErrInvalidRecord, ev.Total, total)
	}
	if ev.Metadata == nil {
		return nil
	}
	if len(ev.Metadata) == 0 {
		return fmt.Errorf("%w: metadata is empty: leave it out", ErrInvalidRecord)
	}
	if err := order.CheckMetadata(ev.Metadata); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	return nil
}

// contentsSizeHint is what appendContentsJSON writes when nothing needs
// escaping; 0 for an event without contents.
func contentsSizeHint(ev order.Event) int {
	n := 0
	if ev.CustomerID != "" {
		n += len(`,"customer_id":""`) + len(ev.CustomerID)
	}
	if ev.Items != nil {
		n += len(`,"currency":"XXX","total":`) + 19 + itemsSizeHint(ev.Items)
	}
	if ev.Metadata != nil {
		n += len(`,"metadata":{}`)
		for k, v := range ev.Metadata {
			n += len(k) + len(v) + len(`"":"",`)
		}
	}
	return n
}

// appendContentsJSON writes the members present, metadata keys sorted (as
// encoding/json writes a map). ev must be valid.
func appendContentsJSON(b []byte, ev order.Event) []byte {
	if ev.CustomerID != "" {
		b = append(b, `,"customer_id":`...)
		b = appendString(b, ev.CustomerID)
	}
	if ev.Items != nil {
		b = append(b, `,"currency":`...)
		b = appendString(b, ev.Currency)
		b = append(b, `,"items":`...)
		b = appendItems(b, ev.Items)
		b = append(b, `,"total":`...)
		b = strconv.AppendInt(b, ev.Total, 10)
	}
	if ev.Metadata != nil {
		b = append(b, `,"metadata":{`...)
		for i, k := range slices.Sorted(maps.Keys(ev.Metadata)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, ev.Metadata[k])
		}
		b = append(b, '}')
	}
	return b
}

// itemsSizeHint is what appendItems writes of items when no SKU needs
// escaping (none does: SKUs are of the order-ID characters).
func itemsSizeHint(items []order.Item) int {
	const perItem = len(`{"sku":"","quantity":,"unit_price":},`) + 5 + 13
	n := len(`"items":[]`) + len(items)*perItem
	for _, it := range items {
		n += len(it.SKU)
	}
	return n
}

// appendItems writes items as a JSON array: the one form of items in the
// log, in order records and checkout records alike.
func appendItems(b []byte, items []order.Item) []byte {
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"sku":`...)
		b = appendString(b, it.SKU)
		b = append(b, `,"quantity":`...)
		b = strconv.AppendInt(b, it.Quantity, 10)
		b = append(b, `,"unit_price":`...)
		b = strconv.AppendInt(b, it.UnitPrice, 10)
		b = append(b, '}')
	}
	return append(b, ']')
}

// contentsMember reads one of the contents members into ev. The strings
// are copies (p.string's text lives only until its next call); their
// bounds are ValidateEvent's, after the parse, but the counts are bounded
// here so that a hostile record cannot make the parser allocate much.
func (p *parser) contentsMember(bit member, ev *order.Event) error {
	var err error
	switch bit {
	case memberCustomerID:
		ev.CustomerID, err = p.textCopy("customer_id")
		if err == nil && ev.CustomerID == "" {
			err = errors.New("member customer_id is empty: it is left out when there is none")
		}
	case memberCurrency:
		ev.Currency, err = p.textCopy("currency")
		if err == nil && ev.Currency == "" {
			err = errors.New("member currency is empty: it is left out when there is none")
		}
	case memberTotal:
		ev.Total, err = p.int64("total")
	case memberItems:
		ev.Items, err = p.items()
	case memberMetadata:
		ev.Metadata, err = p.metadata()
	}
	return err
}

func (p *parser) textCopy(name string) (string, error) {
	s, err := p.string()
	if err != nil {
		return "", fmt.Errorf("member %s: %w", name, err)
	}
	return string(s), nil
}

func (p *parser) int64(name string) (int64, error) {
	v, err := p.uint64(name)
	if err != nil {
		return 0, err
	}
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("member %s: %d does not fit in 63 bits", name, v)
	}
	return int64(v), nil
}

// items reads the array of items.
func (p *parser) items() ([]order.Item, error) {
	if !p.consume('[') {
		return nil, fmt.Errorf("member items: want an array at byte %d", p.i)
	}
	items := []order.Item{}
	p.skipSpace()
	if p.consume(']') {
		return items, nil // refused by ValidateEvent, with its reason
	}
	for {
		if len(items) == order.ItemsMax {
			return nil, fmt.Errorf("member items: more than %d items", order.ItemsMax)
		}
		p.skipSpace()
		it, err := p.item(len(items))
		if err != nil {
			return nil, err
		}
		items = append(items, it)
		p.skipSpace()
		if p.consume(',') {
			continue
		}
		if p.consume(']') {
			return items, nil
		}
		return nil, fmt.Errorf("member items: want ',' or ']' at byte %d", p.i)
	}
}

// item reads items[i]: an object of exactly sku, quantity and unit_price.
func (p *parser) item(i int) (order.Item, error) {
	const sku, quantity, unitPrice, all = 1, 2, 4, 7
	var it order.Item
	if !p.consume('{') {
		return it, fmt.Errorf("member items[%d]: want an object at byte %d", i, p.i)
	}
	seen := 0
	for {
		p.skipSpace()
		name, err := p.string()
		if err != nil {
			return it, fmt.Errorf("member items[%d]: %w", i, err)
		}
		var bit int
		switch string(name) {
		case "sku":
			bit = sku
		case "quantity":
			bit = quantity
		case "unit_price":
			bit = unitPrice
		default:
			return it, fmt.Errorf("member items[%d]: unknown member %q", i, string(name))
		}
		if seen&bit != 0 {
			return it, fmt.Errorf("member items[%d]: member %q appears twice", i, string(name))
		}
		seen |= bit
		p.skipSpace()
		if !p.consume(':') {
			return it, fmt.Errorf("member items[%d]: no ':' at byte %d", i, p.i)
		}
		p.skipSpace()
		switch bit {
		case sku:
			it.SKU, err = p.textCopy(order.ItemField(i, "sku"))
		case quantity:
			it.Quantity, err = p.int64(order.ItemField(i, "quantity"))
		case unitPrice:
			it.UnitPrice, err = p.int64(order.ItemField(i, "unit_price"))
		}
		if err != nil {
			return it, err
		}
		p.skipSpace()
		if p.consume(',') {
			continue
		}
		if !p.consume('}') {
			return it, fmt.Errorf("member items[%d]: want ',' or '}' at byte %d", i, p.i)
		}
		if seen != all {
			return it, fmt.Errorf("member items[%d]: want sku, quantity and unit_price", i)
		}
		return it, nil
	}
}

// metadata reads an object of string members, each name once.
func (p *parser) metadata() (map[string]string, error) {
	if !p.consume('{') {
		return nil, fmt.Errorf("member metadata: want an object at byte %d", p.i)
	}
	md := map[string]string{}
	p.skipSpace()
	if p.consume('}') {
		return md, nil // refused by ValidateEvent, with its reason
	}
	for {
		if len(md) == order.MetadataKeysMax {
			return nil, fmt.Errorf("member metadata: more than %d keys", order.MetadataKeysMax)
		}
		p.skipSpace()
		key, err := p.textCopy("metadata")
		if err != nil {
			return nil, err
		}
		if _, dup := md[key]; dup {
			return nil, fmt.Errorf("member metadata: key %q appears twice", key)
		}
		p.skipSpace()
		if !p.consume(':') {
			return nil, fmt.Errorf("member metadata: no ':' at byte %d", p.i)
		}
		p.skipSpace()
		if md[key], err = p.textCopy("metadata." + key); err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.consume(',') {
			continue
		}
		if p.consume('}') {
			return md, nil
		}
		return nil, fmt.Errorf("member metadata: want ',' or '}' at byte %d", p.i)
	}
}
