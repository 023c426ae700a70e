package http

import (
	"errors"
	"strconv"

	"github.com/orderd/orderd/order"
)

// What an order carries on the wire (order/contents.go): a create's
// optional "customer_id", "items" and "currency", and the "metadata" of a
// create or a transition. The body decoder reads items and metadata whole
// as JSON text (decodeObject checks its syntax exactly as for every body);
// these parsers then read their structure, as strictly: names exact and
// once, no unknown members, the right types, each problem naming its
// member (items[3].quantity, metadata.carrier).

// contentsRequest is what a create orders, as parsed from its body.
type contentsRequest struct {
	customerID string
	currency   string
	items      []order.Item
}

// parseContents reads and checks a create's customer_id, currency and items.
func parseContents(customerID, currency, items *bodyMember) (contentsRequest, error) {
	var req contentsRequest
	if customerID.set {
		req.customerID = string(customerID.raw)
		if err := order.CheckCustomerID(req.customerID); err != nil {
			return req, contentsProblem(err)
		}
	}
	if currency.set {
		req.currency = string(currency.raw)
	}
	if items.set {
		var err error
		if req.items, err = parseItems(items.raw); err != nil {
			return req, err
		}
	}
	if err := order.CheckOrderContents(req.customerID, req.currency, req.items); err != nil {
		return req, contentsProblem(err)
	}
	return req, nil
}

// contentsProblem turns the order package's verdict into a 400 that names
// the member.
func contentsProblem(err error) error {
	var ce *order.ContentsError
	if errors.As(err, &ce) {
		return badInput(ce.Field, "%s", ce.Detail)
	}
	return err
}

// parseItems reads the array of items, which decodeObject has checked is
// well-formed JSON. Its bounds are order.CheckItems's, but the count is
// checked as it is read, so that no body makes a longer list.
func parseItems(raw []byte) ([]order.Item, error) {
	d := jsonReader{data: raw, pos: 1} // past the '['
	items := []order.Item{}
	if c, _ := d.next(); c == ']' {
		return items, nil // refused by CheckItems, with its reason
	}
	for {
		i := len(items)
		if i == order.ItemsMax {
			return nil, badInput(order.FieldItems, "more than %d items", order.ItemsMax)
		}
		it, err := d.item(i)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
		c, _ := d.next()
		d.pos++
		if c == ']' {
			return items, nil
		}
		// decodeObject has checked the syntax: c is ','.
	}
}

// item reads items[i]: an object of exactly "sku", "quantity" and
// "unit_price".
func (d *jsonReader) item(i int) (order.Item, error) {
	field := order.FieldItems + "[" + strconv.Itoa(i) + "]"
	d.next()
	start := d.pos
	kind, err := d.value(0)
	if err != nil {
		return order.Item{}, err
	}
	if kind != "object" {
		return order.Item{}, badInput(field, "must be an object, not %s", kind)
	}
	members := [...]bodyMember{{name: "sku"}, {name: "quantity", want: "number"}, {name: "unit_price", want: "number"}}
	inner := jsonReader{data: d.data[:d.pos], pos: start + 1}
	if err := inner.members(members[:]); err != nil {
		return order.Item{}, within(field, err)
	}
	for _, m := range members {
		if !m.set {
			return order.Item{}, badInput(field+"."+m.name, "required")
		}
	}
	it := order.Item{SKU: string(members[0].raw)}
	if it.Quantity, err = integer(field+".quantity", members[1].raw); err != nil {
		return it, err
	}
	it.UnitPrice, err = integer(field+".unit_price", members[2].raw)
	return it, err
}

// within names a problem of a member of an array element by its whole path.
func within(field string, err error) error {
	var ie *inputError
	if errors.As(err, &ie) && ie.field != fieldBody {
		return &inputError{field: field + "." + ie.field, reason: ie.reason}
	}
	return err
}

// integer reads a JSON number that must be an integer, as encoding/json
// reads one into an int64: no fraction, no exponent, within 64 bits.
func integer(field string, raw []byte) (int64, error) {
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, badInput(field, "must be an integer within 64 bits, not %s", raw)
	}
	return v, nil
}

// parseMetadata reads the metadata object, which decodeObject has checked
// is well-formed JSON: string values, each key once. A key is checked
// before it is used to name a problem.
func parseMetadata(raw []byte) (map[string]string, error) {
	d := jsonReader{data: raw, pos: 1} // past the '{'
	md := map[string]string{}
	if c, _ := d.next(); c == '}' {
		return md, nil
	}
	for {
		if len(md) == order.MetadataKeysMax {
			return nil, badInput(order.FieldMetadata, "more than %d keys", order.MetadataKeysMax)
		}
		start := d.pos
		if err := d.skipString(); err != nil {
			return nil, err
		}
		key := string(unquote(d.data[start:d.pos]))
		if err := order.CheckMetadataKey(key); err != nil {
			return nil, contentsProblem(err)
		}
		field := order.FieldMetadata + "." + key
		if _, dup := md[key]; dup {
			return nil, badInput(field, "member appears more than once")
		}
		d.next()
		d.pos++ // the ':'
		d.next()
		start = d.pos
		kind, err := d.value(0)
		if err != nil {
			return nil, err
		}
		if kind != "string" {
			return nil, badInput(field, "must be a string, not %s", kind)
		}
		md[key] = string(unquote(d.data[start:d.pos]))
		c, _ := d.next()
		d.pos++
		if c == '}' {
			break
		}
		d.next() // past the ',' to the next key
	}
	if err := order.CheckMetadata(md); err != nil {
		return nil, contentsProblem(err)
	}
	return md, nil
}

// parseMetadataMember reads an optional metadata member; nil when it is
// absent, null or empty (an empty object adds nothing).
func parseMetadataMember(m *bodyMember) (map[string]string, error) {
	if !m.set {
		return nil, nil
	}
	md, err := parseMetadata(m.raw)
	if err != nil || len(md) == 0 {
		return nil, err
	}
	return md, nil
}
