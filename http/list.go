package http

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"slices"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/orderd/orderd/order"
)

// GET /v1/orders?state=&customer_id=&limit=&cursor= (issue 16): a page of
// orders in ID order, each as GET /v1/orders/{id} shows it, and the cursor
// of the next page unless this is the last.

// Query parameters of a listing, spelled as clients send them.
const (
	fieldState  = "state"
	fieldLimit  = "limit"
	fieldCursor = "cursor"
)

// Bounds of a listing request.
const (
	// cursorLenMax bounds a cursor before it is decoded: the largest one
	// this server makes (a customer ID and an order ID of 128 bytes each)
	// is 351 characters.
	cursorLenMax = 512
	// cursorVersion is the first byte of every cursor, so that a cursor
	// of another layout is refused rather than misread.
	cursorVersion = 1
	// listBodyPerOrder sizes the response buffer: an order without items is
	// about 300 bytes.
	listBodyPerOrder = 320
)

// cursor is where a listing resumes and the filter it was made for: a
// cursor used with another filter would silently skip or repeat orders, so
// it is refused.
type cursor struct {
	state      order.State // 0: any
	customerID string
	after      string
}

// cursorEncoding: URL-safe, so a cursor goes into a query string as it is.
var cursorEncoding = base64.RawURLEncoding.Strict()

// encodeCursor writes c as base64url of: the version byte, the state byte,
// and the customer and order IDs, each with its length in front.
func encodeCursor(c cursor) string {
	b := []byte{cursorVersion, byte(c.state)}
	b = binary.AppendUvarint(b, uint64(len(c.customerID)))
	b = append(b, c.customerID...)
	b = binary.AppendUvarint(b, uint64(len(c.after)))
	b = append(b, c.after...)
	return cursorEncoding.EncodeToString(b)
}

// decodeCursor reads what encodeCursor wrote and nothing else: each part
// must be one this server could have written.
func decodeCursor(s string) (cursor, bool) {
	if len(s) == 0 || len(s) > cursorLenMax {
		return cursor{}, false
	}
	b, err := cursorEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != cursorVersion {
		return cursor{}, false
	}
	c := cursor{state: order.State(b[1])}
	if c.state != 0 && !c.state.Valid() {
		return cursor{}, false
	}
	var ok bool
	rest := b[2:]
	if c.customerID, rest, ok = readCursorPart(rest); !ok || (c.customerID != "" && order.CheckCustomerID(c.customerID) != nil) {
		return cursor{}, false
	}
	if c.after, rest, ok = readCursorPart(rest); !ok || len(rest) != 0 || order.ValidateID(c.after) != nil {
		return cursor{}, false
	}
	// One cursor, one spelling: the base64 decoder skips '\r' and '\n'
	// anywhere, so another spelling of the same bytes would decode too.
	if encodeCursor(c) != s {
		return cursor{}, false
	}
	return c, true
}

// readCursorPart reads a length-prefixed part; the length must be in its
// shortest form, so that one cursor has one spelling.
func readCursorPart(b []byte) (string, []byte, bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || (w > 1 && b[w-1] == 0) || n > uint64(len(b)-w) {
		return "", nil, false
	}
	return string(b[w : w+int(n)]), b[w+int(n):], true
}

// parseListQuery reads the query string of a listing. Every parameter is
// optional and may be given once; any other parameter is refused, so that a
// misspelt filter ("status=Paid") is not silently a listing of everything.
func parseListQuery(c *fiber.Ctx) (order.ListQuery, error) {
	q := order.ListQuery{Limit: order.ListLimitDefault}
	var seen [4]bool
	var err error
	var cur string
	c.Request().URI().QueryArgs().VisitAll(func(key, value []byte) {
		if err != nil {
			return
		}
		i := slices.Index(listParams[:], string(key))
		switch {
		case i < 0:
			err = badInput(string(key), "not a parameter of this listing (state, customer_id, limit, cursor)")
			return
		case seen[i]:
			err = badInput(listParams[i], "given more than once")
			return
		}
		seen[i] = true
		switch listParams[i] {
		case fieldState:
			q.State, err = parseListState(value)
		case order.FieldCustomerID:
			q.CustomerID = string(value)
			if cerr := order.CheckCustomerID(q.CustomerID); cerr != nil {
				err = badInput(order.FieldCustomerID, "%v", cerr)
			}
		case fieldLimit:
			q.Limit, err = parseLimit(value)
		case fieldCursor:
			cur = string(value)
		}
	})
	if err != nil || !seen[3] {
		return q, err
	}
	at, ok := decodeCursor(cur)
	switch {
	case !ok:
		return q, badInput(fieldCursor, "not a cursor this server made: pass next_cursor from the previous page as it is")
	case at.state != q.State || at.customerID != q.CustomerID:
		return q, badInput(fieldCursor, "made for another filter: pass the same state and customer_id as for the first page")
	}
	q.After = at.after
	return q, nil
}

// listParams are the parameters a listing takes, in parseListQuery's order.
var listParams = [4]string{fieldState, order.FieldCustomerID, fieldLimit, fieldCursor}

func parseListState(value []byte) (order.State, error) {
	s, err := parseState(value)
	if err != nil {
		return 0, badInput(fieldState, "%v", err)
	}
	return s, nil
}

func parseLimit(value []byte) (int, error) {
	n, err := strconv.Atoi(string(value))
	if err != nil || !isDecimal(string(value)) || n < 1 || n > order.ListLimitMax {
		return 0, badInput(fieldLimit, "must be a whole number from 1 to %d", order.ListLimitMax)
	}
	return n, nil
}

// listOrders is GET /v1/orders. In a cluster every node answers it from
// its own state store, which follows every partition: it is not forwarded.
func (s *Server) listOrders(c *fiber.Ctx) error {
	q, err := parseListQuery(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	page, err := s.svc.List(ctx, q)
	if err != nil {
		return readError(err)
	}
	body, err := appendListBody(make([]byte, 0, 64+listBodyPerOrder*len(page.Orders)), page, q)
	if err != nil {
		return err
	}
	return sendJSON(c, body, fiber.MIMEApplicationJSON)
}

// appendListBody writes {"orders":[...],"next_cursor":"..."}, each order
// as appendOrder writes it for GET, next_cursor only when More.
func appendListBody(b []byte, page order.ListPage, q order.ListQuery) ([]byte, error) {
	b = append(b, `{"orders":[`...)
	for i, o := range page.Orders {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendOrder(b, o); err != nil {
			return b, err
		}
	}
	b = append(b, ']')
	if page.More && len(page.Orders) > 0 {
		next := cursor{state: q.State, customerID: q.CustomerID, after: page.Orders[len(page.Orders)-1].ID}
		b = append(b, `,"next_cursor":"`...)
		b = append(b, encodeCursor(next)...) // base64url needs no escaping
		b = append(b, '"')
	}
	return append(b, '}'), nil
}
