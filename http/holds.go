package http

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/order"
)

// Hold routes: one order's hold on one SKU (the ledger of order/inventory.go,
// actors.InventoryService), over HTTP so that a node can change a hold on a
// SKU another node serves (the checkout saga's reservations, the transition
// actions), and so that operators can see and repair a hold by hand:
//
//	POST /v1/inventory/{sku}/holds/{order_id} {"change":"reserve","quantity":3,"order_version":1}
//
// change is reserve (with quantity), release, consume or restock;
// order_version, optional, is the order's version whose transition causes
// the change, recorded with it. The answer is 200
// {"applied","stock":{...},"hold":{...}} with the SKU's version as ETag,
// whether the change was applied or was a no-op the hold had moved past
// (applied false): each change takes effect once per order and SKU, so a
// retry is always safe and needs no Idempotency-Key. Refusals are those of
// the ledger: 409 out-of-stock (with out_of_stock naming the SKU and
// available), 409 hold-conflict (with the order's hold), 400 naming the field.
// In a cluster the request is served by the owner of the partition of the
// SKU's record key, like the other inventory routes.

const (
	holdPath          = inventoryPath + "/holds/:" + fieldOrderIDPath
	fieldOrderIDPath  = "order_id"
	fieldChange       = "change"
	fieldOrderVersion = "order_version"
)

// headerOnBehalfOf names the principal a node acts for: the checkout's or
// the transition's, which the hold's record must name rather than the node's
// own. Honoured only from the node principal (Config.NodePrincipal), whose
// token only the cluster's nodes hold, or when the server has no API keys
// and so no identities to protect; anyone else naming another principal is
// refused with 403 rather than silently recorded as themselves.
const headerOnBehalfOf = "X-Orderd-On-Behalf-Of"

// errForbidden: the request asks for a right its principal does not have.
var errForbidden = errors.New("forbidden")

// actingPrincipal is the principal a request's records name: the
// authenticated one, or the one a node names in headerOnBehalfOf.
func (s *Server) actingPrincipal(c *fiber.Ctx) (string, error) {
	raw := c.Request().Header.Peek(headerOnBehalfOf)
	if len(raw) == 0 {
		return principal(c), nil
	}
	if s.keys != nil && (s.cfg.NodePrincipal == "" || principal(c) != s.cfg.NodePrincipal) {
		return "", errForbidden
	}
	if !visibleASCII(string(raw), apiPrincipalLenMax) {
		return "", badInput(headerOnBehalfOf, "must be 1 to %d visible ASCII characters", apiPrincipalLenMax)
	}
	return string(raw), nil // a copy: it outlives Fiber's buffers in the log
}

// holdKey is the routing key of a hold request, the SKU's record key, once
// both path parameters are valid: a bad order ID is refused without a hop.
func holdKey(c *fiber.Ctx) (string, error) {
	if _, err := pathOrderID(c); err != nil {
		return "", err
	}
	return skuKey(c)
}

// pathOrderID reads and validates the {order_id} path parameter, copied.
func pathOrderID(c *fiber.Ctx) (string, error) {
	id := c.Params(fieldOrderIDPath)
	if err := order.ValidateID(id); err != nil {
		return "", badInput(fieldOrderIDPath, "%v", err)
	}
	return strings.Clone(id), nil
}

// holdChange is a parsed hold request body.
type holdChange struct {
	change       order.StockChange
	quantity     int64 // reserve only
	orderVersion uint64
}

// changeHold is POST /v1/inventory/{sku}/holds/{order_id}.
func (s *Server) changeHold(c *fiber.Ctx) error {
	sku, err := pathSKU(c)
	if err != nil {
		return err
	}
	orderID, err := pathOrderID(c)
	if err != nil {
		return err
	}
	hc, err := parseHoldChange(c)
	if err != nil {
		return err
	}
	who, err := s.actingPrincipal(c)
	if err != nil {
		return err
	}
	inv, err := s.inventory()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	ref := actors.HoldRef{SKU: sku, OrderID: orderID, OrderVersion: hc.orderVersion, Principal: who, RequestID: s.requestID(c)}
	var res actors.InventoryResult
	switch hc.change {
	case order.StockReserve:
		res, err = inv.Reserve(ctx, ref, hc.quantity)
	case order.StockRelease:
		res, err = inv.Release(ctx, ref)
	case order.StockConsume:
		res, err = inv.Consume(ctx, ref)
	case order.StockRestock:
		res, err = inv.Restock(ctx, ref)
	}
	if err != nil {
		return err
	}
	return sendHoldResult(c, orderID, res)
}

// parseHoldChange reads {"change","quantity","order_version"}: change one of
// the four hold changes; quantity 1..order.QuantityMax on a reserve and
// nowhere else; order_version, optional, a non-negative integer (0: none).
func parseHoldChange(c *fiber.Ctx) (holdChange, error) {
	if err := checkJSONBody(c); err != nil {
		return holdChange{}, err
	}
	members := [...]bodyMember{
		{name: fieldChange},
		{name: order.FieldQuantity, want: "number"},
		{name: fieldOrderVersion, want: "number"},
	}
	if err := decodeObject(c.Request().Body(), members[:]); err != nil {
		return holdChange{}, err
	}
	change, quantity, version := &members[0], &members[1], &members[2]
	var hc holdChange
	if !change.set {
		return holdChange{}, badInput(fieldChange, "required: reserve, release, consume or restock")
	}
	hc.change, _ = order.ParseStockChange(string(change.raw))
	if !hc.change.Valid() || hc.change == order.StockSet {
		return holdChange{}, badInput(fieldChange, "%q is not reserve, release, consume or restock", change.raw)
	}
	switch {
	case hc.change == order.StockReserve && !quantity.set:
		return holdChange{}, badInput(order.FieldQuantity, "required on a reserve: the units to hold")
	case hc.change != order.StockReserve && quantity.set:
		return holdChange{}, badInput(order.FieldQuantity, "only a reserve names a quantity; a %v moves what the order holds", hc.change)
	case quantity.set:
		n, err := integer(order.FieldQuantity, quantity.raw)
		if err != nil {
			return holdChange{}, err
		}
		if n < 1 || n > order.QuantityMax {
			return holdChange{}, badInput(order.FieldQuantity, "%d is outside 1..%d", n, order.QuantityMax)
		}
		hc.quantity = n
	}
	if version.set {
		n, err := integer(fieldOrderVersion, version.raw)
		if err != nil {
			return holdChange{}, err
		}
		if n < 0 {
			return holdChange{}, badInput(fieldOrderVersion, "%d is negative; 0 or absent names no version", n)
		}
		hc.orderVersion = uint64(n)
	}
	return hc, nil
}

// sendHoldResult writes {"applied","stock","hold"} with the SKU's version
// as ETag.
func sendHoldResult(c *fiber.Ctx, orderID string, res actors.InventoryResult) error {
	if !res.Stock.Exists() {
		return order.ErrSKUNotFound // a hold command always leaves the SKU recorded
	}
	var buf [responseBufferLen]byte
	b := append(buf[:0], `{"applied":`...)
	b = strconv.AppendBool(b, res.Applied)
	b = append(b, `,"stock":`...)
	b = appendStock(b, res.Stock)
	b = append(b, `,"hold":`...)
	b = appendHold(b, orderID, res.Hold)
	b = append(b, '}')
	var tag [2 + 20]byte
	c.Response().Header.SetBytesV(fiber.HeaderETag, appendETag(tag[:0], res.Stock.Version))
	return sendJSON(c, b, fiber.MIMEApplicationJSON)
}

// appendHold writes one order's hold as the Hold schema of openapi.json;
// status "none" when the order holds nothing (a hold-conflict's).
func appendHold(b []byte, orderID string, h order.Hold) []byte {
	b = append(b, `{"order_id":`...)
	b = appendJSONString(b, orderID)
	b = append(b, `,"status":"`...)
	b = append(b, h.Status.String()...) // lowercase ASCII names
	b = append(b, `","quantity":`...)
	b = strconv.AppendInt(b, h.Quantity, 10)
	b = append(b, `,"order_version":`...)
	b = strconv.AppendUint(b, h.OrderVersion, 10)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, h.Version, 10)
	return append(b, '}')
}
