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

// Inventory routes (order/inventory.go, actors/inventory.go):
//
//	PUT /v1/inventory/{sku} {"on_hand": N}   set the units on hand (logged; If-Match, Idempotency-Key recorded)
//	GET /v1/inventory/{sku}                  the stock
//
// Both answer {"sku","on_hand","reserved","available","version"} with the
// version as ETag. A SKU nothing was ever recorded for is 404 sku-not-found:
// a client can tell an unknown SKU from one counted at zero. In a cluster they
// are served by the owner of the partition of the SKU's record key.

const (
	inventoryPath = "/v1/inventory/:sku"
	fieldSKUPath  = "sku"
)

// errNoInventory: the service behind the server keeps no inventory.
var errNoInventory = errors.New("this server keeps no inventory")

func (s *Server) inventory() (actors.InventoryService, error) {
	inv, ok := s.svc.(actors.InventoryService)
	if !ok {
		return nil, errNoInventory
	}
	return inv, nil
}

// pathSKU reads and validates the {sku} path parameter, copied out of
// Fiber's buffers.
func pathSKU(c *fiber.Ctx) (string, error) {
	sku := c.Params(fieldSKUPath)
	if err := order.ValidateSKU(sku); err != nil {
		var ie *order.InventoryError
		errors.As(err, &ie)
		return "", badInput(fieldSKUPath, "%s", ie.Detail)
	}
	return strings.Clone(sku), nil
}

// skuKey is the routing key of a request naming a SKU: its record key.
func skuKey(c *fiber.Ctx) (string, error) {
	sku, err := pathSKU(c)
	if err != nil {
		return "", err
	}
	return order.InventoryKey(sku), nil
}

// getStock is GET /v1/inventory/{sku}.
func (s *Server) getStock(c *fiber.Ctx) error {
	sku, err := pathSKU(c)
	if err != nil {
		return err
	}
	inv, err := s.inventory()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	st, err := inv.GetStock(ctx, sku)
	if err != nil {
		return readError(err)
	}
	return sendStock(c, st)
}

// setStock is PUT /v1/inventory/{sku}.
func (s *Server) setStock(c *fiber.Ctx) error {
	sku, err := pathSKU(c)
	if err != nil {
		return err
	}
	onHand, err := parseSetStock(c)
	if err != nil {
		return err
	}
	expected, err := parseIfMatch(c)
	if err != nil {
		return err
	}
	key, err := parseIdempotencyKey(c)
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
	st, err := inv.SetStock(ctx, actors.StockSet{SKU: sku, OnHand: onHand, ExpectedVersion: expected,
		Principal: who, RequestID: s.requestID(c), IdempotencyKey: key})
	if err != nil {
		return err
	}
	return sendStock(c, st)
}

// parseSetStock reads {"on_hand": N}: exactly that member, an integer in
// 0..order.OnHandMax.
func parseSetStock(c *fiber.Ctx) (int64, error) {
	if err := checkJSONBody(c); err != nil {
		return 0, err
	}
	members := [...]bodyMember{{name: order.FieldOnHand, want: "number"}}
	if err := decodeObject(c.Request().Body(), members[:]); err != nil {
		return 0, err
	}
	if !members[0].set {
		return 0, badInput(order.FieldOnHand, "required: the units on hand")
	}
	n, err := integer(order.FieldOnHand, members[0].raw)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > order.OnHandMax {
		return 0, badInput(order.FieldOnHand, "%d is outside 0..%d", n, order.OnHandMax)
	}
	return n, nil
}

// sendStock writes st with its version as ETag.
func sendStock(c *fiber.Ctx, st order.Stock) error {
	if !st.Exists() {
		return order.ErrSKUNotFound
	}
	var buf [responseBufferLen]byte
	var tag [2 + 20]byte
	c.Response().Header.SetBytesV(fiber.HeaderETag, appendETag(tag[:0], st.Version))
	return sendJSON(c, appendStock(buf[:0], st), fiber.MIMEApplicationJSON)
}

// appendStock writes st as the Stock schema of openapi.json.
func appendStock(b []byte, st order.Stock) []byte {
	b = append(b, `{"sku":`...)
	b = appendJSONString(b, st.SKU)
	b = append(b, `,"on_hand":`...)
	b = strconv.AppendInt(b, st.OnHand, 10)
	b = append(b, `,"reserved":`...)
	b = strconv.AppendInt(b, st.Reserved, 10)
	b = append(b, `,"available":`...)
	b = strconv.AppendInt(b, st.Available(), 10)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, st.Version, 10)
	return append(b, '}')
}
