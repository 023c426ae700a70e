package http

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/orderd/orderd/order"
)

// The bodies every request answers with, an order and a problem, are
// written by appending to a buffer instead of by encoding/json's reflection
// (a map for problems): the same bytes, a fraction of the work. The tests
// compare both against json.Marshal of the types they replace.

// responseBufferLen is the stack buffer a response body is built in: an
// order with the longest ID is about 330 bytes. Longer bodies (problem
// details that quote a long reason, orders with items) grow it on the heap.
const responseBufferLen = 512

// sendOrder writes o with its version as a strong ETag, usable in If-Match.
func sendOrder(c *fiber.Ctx, o order.Order) error {
	var buf [responseBufferLen]byte
	body, err := appendOrder(buf[:0], o)
	if err != nil {
		return err
	}
	var tag [2 + 20]byte // quotes and the digits of the largest uint64
	c.Response().Header.SetBytesV(fiber.HeaderETag, appendETag(tag[:0], o.Version))
	return sendJSON(c, body, fiber.MIMEApplicationJSON)
}

// sendJSON copies body into the response, which owns a pooled buffer for it.
func sendJSON(c *fiber.Ctx, body []byte, contentType string) error {
	c.Response().SetBody(body)
	c.Response().Header.SetContentType(contentType)
	return nil
}

// appendOrder writes o as encoding/json wrote it (orderBody in the tests:
// id, state, version, created_at, updated_at, payment_due_at when set; times
// as formatTime writes them). A state that
// is not one of the six is an internal error, as MarshalText made it.
func appendOrder(b []byte, o order.Order) ([]byte, error) {
	if !o.State.Valid() {
		return b, fmt.Errorf("order %q: cannot encode invalid %v", o.ID, o.State)
	}
	b = append(b, `{"id":`...)
	b = appendJSONString(b, o.ID)
	b = append(b, `,"state":"`...)
	b = append(b, o.State.String()...)
	b = append(b, `","version":`...)
	b = strconv.AppendUint(b, o.Version, 10)
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, o.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendJSONTime(b, o.UpdatedAt)
	if !o.PaymentDueAt.IsZero() {
		b = append(b, `,"payment_due_at":`...)
		b = appendJSONTime(b, o.PaymentDueAt)
	}
	if o.Contents != nil {
		b = appendContents(b, o.Contents)
	}
	return append(b, '}'), nil
}

// appendContents writes what the order carries (contents.go), each member
// only when present, as encoding/json writes orderBody's: metadata keys
// sorted.
func appendContents(b []byte, c *order.Contents) []byte {
	if c.CustomerID != "" {
		b = append(b, `,"customer_id":`...)
		b = appendJSONString(b, c.CustomerID)
	}
	if c.Currency != "" {
		b = append(b, `,"currency":`...)
		b = appendJSONString(b, c.Currency)
	}
	if len(c.Items) > 0 {
		b = append(b, `,"items":[`...)
		for i, it := range c.Items {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"sku":`...)
			b = appendJSONString(b, it.SKU)
			b = append(b, `,"quantity":`...)
			b = strconv.AppendInt(b, it.Quantity, 10)
			b = append(b, `,"unit_price":`...)
			b = strconv.AppendInt(b, it.UnitPrice, 10)
			b = append(b, '}')
		}
		b = append(b, `],"total":`...)
		b = strconv.AppendInt(b, c.Total, 10)
	}
	if len(c.Metadata) > 0 {
		b = append(b, `,"metadata":{`...)
		for i, k := range slices.Sorted(maps.Keys(c.Metadata)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, c.Metadata[k])
		}
		b = append(b, '}')
	}
	return b
}

// appendJSONTime writes t as formatTime does, quoted. RFC 3339 needs no
// escaping in JSON.
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendJSONString writes s quoted exactly as encoding/json does. What the
// server writes (IDs, state names, fixed texts) is plain ASCII and is copied
// as it is; anything else goes through encoding/json for its escaping of
// HTML characters, U+2028, U+2029 and invalid UTF-8.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			quoted, _ := json.Marshal(strings.Clone(s)) // a string always encodes; the clone keeps s on its caller's stack
			return append(b, quoted...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
