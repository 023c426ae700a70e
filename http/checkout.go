package http

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/order"
)

// Checkouts (DESIGN §10): POST /v1/checkouts starts a saga and answers
// with its end when it comes within the request deadline (201; 409 when
// the stock was short), else 202 with the checkout as it stands and a
// Location to poll; GET /v1/checkouts/{id} shows it.

// CheckoutService is what the handlers need of the saga orchestrator
// (actors.Checkouts).
type CheckoutService interface {
	Start(ctx context.Context, st actors.CheckoutStart) (order.Checkout, error)
	Wait(ctx context.Context, id string) (order.Checkout, error)
	Get(ctx context.Context, id string) (order.Checkout, error)
}

var _ CheckoutService = (*actors.Checkouts)(nil)

// checkoutsPath is the collection; a checkout lives at checkoutsPath/{id}.
const checkoutsPath = "/v1/checkouts"

// checkoutAnswerMargin is the part of the request deadline kept for
// answering: a saga still running when the rest has passed is answered
// 202, so the client hears something before its own timeout.
const checkoutAnswerMargin = 250 * time.Millisecond

// checkoutIDPrefix marks the IDs derived from an Idempotency-Key, so that
// the retries of one request find one checkout.
const checkoutIDPrefix = "co-"

// Body members of a checkout request.
const (
	fieldPayment = "payment"
	fieldToken   = "token"
)

// outOfStockError is a compensated checkout that lacked stock: 409
// out-of-stock, naming the checkout and its short SKUs.
type outOfStockError struct {
	checkout order.Checkout
}

func (e *outOfStockError) Error() string {
	return fmt.Sprintf("checkout %s: out of stock: %v", e.checkout.ID, e.checkout.OutOfStock)
}

func (e *outOfStockError) Is(target error) bool { return target == order.ErrOutOfStock }

// checkoutRequest is the body of POST /v1/checkouts.
type checkoutRequest struct {
	ID       optString
	Contents contentsRequest
	Token    string
}

func parseCheckoutBody(body []byte) (checkoutRequest, error) {
	members := [...]bodyMember{{name: fieldID}, {name: order.FieldCustomerID}, {name: order.FieldCurrency},
		{name: order.FieldItems, want: "array"}, {name: fieldPayment, want: "object"}}
	if err := decodeObject(body, members[:]); err != nil {
		return checkoutRequest{}, err
	}
	req := checkoutRequest{ID: members[0].optional()}
	if req.ID.ok {
		if err := order.ValidateID(req.ID.value); err != nil {
			return req, badInput(fieldID, "%v", err)
		}
	}
	for _, m := range members[1:] {
		if !m.set {
			return req, badInput(m.name, "required")
		}
	}
	var err error
	if req.Contents, err = parseContents(&members[1], &members[2], &members[3]); err != nil {
		return req, err
	}
	payment := [...]bodyMember{{name: fieldToken}}
	if err := decodeObject(members[4].raw, payment[:]); err != nil {
		var ie *inputError
		if errors.As(err, &ie) {
			return req, badInput(fieldPayment+"."+ie.field, "%s", ie.reason)
		}
		return req, err
	}
	if !payment[0].set {
		return req, badInput(order.FieldPaymentToken, "required")
	}
	req.Token = string(payment[0].raw)
	return req, nil
}

// checkoutIDFor derives a checkout's ID from its client's principal and
// Idempotency-Key: every retry of the request names the same checkout.
func checkoutIDFor(principal, key string) string {
	sum := sha256.Sum256([]byte(principal + "\x00" + key))
	return checkoutIDPrefix + hex.EncodeToString(sum[:16])
}

// createCheckout is POST /v1/checkouts. In a cluster it is served by the
// node that serves the checkout's ID (its order's too): an ID from the body
// or derived from the Idempotency-Key is the same on every node; a random
// one is drawn in a partition served here, or by the owner it is sent to.
func (s *Server) createCheckout(c *fiber.Ctx) error {
	if s.cfg.Checkouts == nil {
		return fiber.ErrNotFound
	}
	st, drawn, err := s.checkoutStart(c)
	if err != nil {
		return err
	}
	start := func(c *fiber.Ctx) error { return s.startCheckout(c, st) }
	if s.cfg.Router == nil {
		return start(c)
	}
	p, send := s.cfg.Router.PartitionOf(st.ID), partitionUnsent
	if drawn {
		send = p // the owner draws its own ID there (newCheckoutID)
	}
	return s.serveIn(c, p, send, s.gated(start))
}

// checkoutStart reads and checks a checkout request, and names it; drawn
// is true for a name drawn at random (neither in the body nor derived from
// an Idempotency-Key).
func (s *Server) checkoutStart(c *fiber.Ctx) (st actors.CheckoutStart, drawn bool, err error) {
	if err := checkJSONBody(c); err != nil {
		return st, false, err
	}
	req, err := parseCheckoutBody(c.Request().Body())
	if err != nil {
		return st, false, err
	}
	if err := rejectIfMatch(c); err != nil {
		return st, false, err
	}
	cmd, err := s.command(c, order.CommandCreate)
	if err != nil {
		return st, false, err
	}
	st = actors.CheckoutStart{IdempotencyKey: cmd.IdempotencyKey, Principal: cmd.Principal, RequestID: cmd.RequestID,
		Request: order.CheckoutRequest{CustomerID: req.Contents.customerID, Currency: req.Contents.currency,
			Items: req.Contents.items, PaymentToken: req.Token}}
	switch {
	case req.ID.ok:
		st.ID = req.ID.value
	case st.IdempotencyKey != "":
		st.ID = checkoutIDFor(st.Principal, st.IdempotencyKey)
	default:
		if st.ID, err = s.newCheckoutID(c); err != nil {
			return actors.CheckoutStart{}, false, err
		}
		drawn = true
	}
	if err := order.CheckCheckoutRequest(st.Request); err != nil {
		return actors.CheckoutStart{}, false, checkoutProblem(err)
	}
	return st, drawn, nil
}

// newCheckoutID draws a checkout's ID; in a cluster, in the partition
// createPartition chooses: one this node serves when it serves one, so
// that the checkout needs no hop, and on the owner a forwarded checkout
// was sent to, the partition the sender chose (headerPartition). Drawn
// anywhere there, it would live in a partition its node does not serve.
func (s *Server) newCheckoutID(c *fiber.Ctx) (string, error) {
	if s.cfg.Router == nil {
		return s.newID(), nil
	}
	p, err := s.createPartition(c, "")
	if err != nil {
		return "", err
	}
	return s.newIDIn(p)
}

// startCheckout starts the checkout and answers once it has ended, or
// with 202 once the request deadline draws near.
func (s *Server) startCheckout(c *fiber.Ctx, st actors.CheckoutStart) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	if _, err := s.cfg.Checkouts.Start(ctx, st); err != nil {
		return checkoutProblem(err)
	}
	waitCtx, cancelWait := context.WithTimeout(ctx, max(s.cfg.RequestTimeout-checkoutAnswerMargin, s.cfg.RequestTimeout/2))
	defer cancelWait()
	co, err := s.cfg.Checkouts.Wait(waitCtx, st.ID)
	if err != nil {
		return readError(err)
	}
	c.Location(checkoutsPath + "/" + co.ID)
	switch {
	case !co.Status.Finished():
		return c.Status(fiber.StatusAccepted).JSON(newCheckoutBody(co))
	case co.Status == order.CheckoutCompensated && co.FailedStep == order.StepReserve && len(co.OutOfStock) > 0:
		return &outOfStockError{checkout: co}
	}
	return c.Status(fiber.StatusCreated).JSON(newCheckoutBody(co))
}

// checkoutProblem names the member a checkout request got wrong.
func checkoutProblem(err error) error {
	var ce *order.CheckoutError
	if errors.As(err, &ce) {
		return badInput(ce.Field, "%s", ce.Detail)
	}
	return contentsProblem(err)
}

// getCheckout is GET /v1/checkouts/{id}.
func (s *Server) getCheckout(c *fiber.Ctx) error {
	if s.cfg.Checkouts == nil {
		return fiber.ErrNotFound
	}
	id, err := pathID(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	co, err := s.cfg.Checkouts.Get(ctx, id)
	if err != nil {
		return readError(err)
	}
	return c.JSON(newCheckoutBody(co))
}

// checkoutBody is a checkout on the wire.
type checkoutBody struct {
	ID              string             `json:"id"`
	Status          string             `json:"status"`
	OrderID         string             `json:"order_id"`
	CustomerID      string             `json:"customer_id"`
	Currency        string             `json:"currency"`
	Items           []itemBody         `json:"items"`
	Total           int64              `json:"total"`
	Version         uint64             `json:"version"`
	CreatedAt       string             `json:"created_at"`
	UpdatedAt       string             `json:"updated_at"`
	AuthorizationID string             `json:"authorization_id,omitempty"`
	FailedStep      string             `json:"failed_step,omitempty"`
	OutOfStock      []string           `json:"out_of_stock,omitempty"`
	Steps           []checkoutStepBody `json:"steps"`
}

type checkoutStepBody struct {
	Step    string `json:"step"`
	Outcome string `json:"outcome"`
	At      string `json:"at"`
	Detail  string `json:"detail,omitempty"`
}

func newCheckoutBody(co order.Checkout) checkoutBody {
	b := checkoutBody{ID: co.ID, Status: co.Status.String(), OrderID: co.OrderID, CustomerID: co.CustomerID,
		Currency: co.Currency, Items: make([]itemBody, len(co.Items)), Total: co.Total, Version: co.Version,
		CreatedAt: formatTime(co.CreatedAt), UpdatedAt: formatTime(co.UpdatedAt),
		AuthorizationID: co.AuthorizationID, OutOfStock: co.OutOfStock, Steps: make([]checkoutStepBody, len(co.Steps))}
	for i, it := range co.Items {
		b.Items[i] = itemBody(it)
	}
	if co.FailedStep != 0 {
		b.FailedStep = co.FailedStep.String()
	}
	for i, st := range co.Steps {
		b.Steps[i] = checkoutStepBody{Step: st.Step.String(), Outcome: st.Outcome.String(), At: formatTime(st.At), Detail: st.Detail}
	}
	return b
}
