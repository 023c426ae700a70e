package http

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/orderd/orderd/order"
)

// Payment deadlines on the wire (order/deadline.go): the optional
// "payment_timeout" of a create, "payment_due_at" on an order while it waits
// for payment, and POST /v1/orders/{id}/payment-deadline to move it.

// paymentDeadlinePath is the rescheduling route.
const paymentDeadlinePath = "/v1/orders/:id/payment-deadline"

// parsePaymentTimeout reads a create's optional "payment_timeout" (a Go
// duration such as "15m"); 0 means the server's default.
func parsePaymentTimeout(raw optString) (time.Duration, error) {
	if !raw.ok {
		return 0, nil
	}
	d, err := time.ParseDuration(raw.value)
	if err != nil {
		return 0, badInput(order.FieldPaymentTimeout, `must be a duration such as "15m"`)
	}
	if err := order.CheckPaymentTimeout(order.FieldPaymentTimeout, d); err != nil {
		return 0, badInput(order.FieldPaymentTimeout, "%v..%v allowed, got %v", order.PaymentTimeoutMin, order.PaymentTimeoutMax, d)
	}
	return d, nil
}

// parseReschedule reads the body of POST .../payment-deadline into cmd:
// exactly one of an absolute deadline (RFC 3339) and an extension of the
// current one. The bounds relative to now are the actor's to check, on its
// own clock.
func parseReschedule(c *fiber.Ctx, cmd *order.Command) error {
	if err := checkJSONBody(c); err != nil {
		return err
	}
	members := [...]bodyMember{{name: order.FieldPaymentDueAt}, {name: order.FieldExtend}}
	if err := decodeObject(c.Request().Body(), members[:]); err != nil {
		return err
	}
	dueAt, extend := members[0].optional(), members[1].optional()
	switch {
	case dueAt.ok == extend.ok:
		return badInput(fieldBody, `name exactly one of "payment_due_at" and "extend"`)
	case dueAt.ok:
		due, err := time.Parse(time.RFC3339Nano, dueAt.value)
		if err != nil {
			return badInput(order.FieldPaymentDueAt, "must be an RFC 3339 time such as 2026-11-23T12:30:00Z")
		}
		cmd.PaymentDueAt = due.UTC()
	default:
		d, err := time.ParseDuration(extend.value)
		if err != nil || d <= 0 {
			return badInput(order.FieldExtend, `must be a positive duration such as "10m"`)
		}
		cmd.PaymentExtend = d
	}
	return nil
}

// reschedulePayment is POST /v1/orders/{id}/payment-deadline. It honours
// If-Match and Idempotency-Key like a transition; 409 invalid-transition
// once the order has left Created.
func (s *Server) reschedulePayment(c *fiber.Ctx) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	cmd, err := s.command(c, order.CommandReschedulePayment)
	if err != nil {
		return err
	}
	if err := parseReschedule(c, &cmd); err != nil {
		return err
	}
	if cmd.ExpectedVersion, err = parseIfMatch(c); err != nil {
		return err
	}
	cmd.OrderID = id
	o, err := s.execute(c, cmd)
	if err != nil {
		return err
	}
	return sendOrder(c.Status(fiber.StatusOK), o)
}

// formatDueAt writes a deadline for an order or event body; empty (the
// member is left out) when there is none.
func formatDueAt(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return formatTime(t)
}
