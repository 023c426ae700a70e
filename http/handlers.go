package http

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/order"
)

// principalAnonymous is who requests act as when the server runs without
// API keys (DESIGN §7).
const principalAnonymous = "anonymous"

// ordersPath is the collection; an order lives at ordersPath + "/" + id.
const ordersPath = "/v1/orders"

// historyBody is GET .../history: the accepted events, oldest first.
type historyBody struct {
	ID          string           `json:"id"`
	Transitions []transitionBody `json:"transitions"`
}

type transitionBody struct {
	EventID   string       `json:"event_id"`
	Version   uint64       `json:"version"`
	From      *order.State `json:"from"` // null on creation
	To        order.State  `json:"to"`
	At        string       `json:"at"`
	Reason    string       `json:"reason"`
	Principal string       `json:"principal"`
	RequestID string       `json:"request_id"`
	// PaymentDueAt is set on a creation and a deadline change (deadline.go).
	PaymentDueAt string `json:"payment_due_at,omitempty"`
	// What a creation ordered, as recorded (contents.go); the metadata any
	// event added.
	CustomerID string            `json:"customer_id,omitempty"`
	Currency   string            `json:"currency,omitempty"`
	Items      []itemBody        `json:"items,omitempty"`
	Total      *int64            `json:"total,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"`
}

type itemBody struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
}

// formatTime writes instants as RFC 3339 in UTC, to the nanosecond the log holds.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// createOrder is POST /v1/orders.
func (s *Server) createOrder(c *fiber.Ctx) error {
	req, err := parseCreate(c)
	if err != nil {
		return err
	}
	if err := rejectIfMatch(c); err != nil {
		return err
	}
	cmd, err := s.command(c, order.CommandCreate)
	if err != nil {
		return err
	}
	if cmd.PaymentTimeout, err = parsePaymentTimeout(req.PaymentTimeout); err != nil {
		return err
	}
	cmd.CustomerID, cmd.Currency, cmd.Items = req.Contents.customerID, req.Contents.currency, req.Contents.items
	cmd.Metadata = req.Metadata
	switch {
	case s.cfg.Router != nil:
		return s.createRouted(c, req.ID, cmd)
	case req.ID.ok:
		cmd.OrderID = req.ID.value
	default:
		// Every attempt gets a fresh ID; with an Idempotency-Key the
		// actors route a retry to the order its first attempt made.
		cmd.OrderID, cmd.IDGenerated = s.newID(), true
	}
	return s.create(c, cmd)
}

// createRouted serves a create in a cluster where its order will live: the
// ID's partition, or, without an ID, the partition createPartition chooses,
// whose serving node generates an ID that falls in it.
func (s *Server) createRouted(c *fiber.Ctx, id optString, cmd order.Command) error {
	if id.ok {
		cmd.OrderID = id.value
		return s.serveIn(c, s.cfg.Router.PartitionOf(id.value), partitionUnsent,
			s.gated(func(c *fiber.Ctx) error { return s.create(c, cmd) }))
	}
	p, err := s.createPartition(c, cmd.IdempotencyKey)
	if err != nil {
		return err
	}
	return s.serveIn(c, p, p, s.gated(func(c *fiber.Ctx) error {
		id, err := s.newIDIn(p)
		if err != nil {
			return err
		}
		cmd.OrderID, cmd.IDGenerated = id, true
		return s.create(c, cmd)
	}))
}

// create executes a create command and answers 201.
func (s *Server) create(c *fiber.Ctx, cmd order.Command) error {
	o, err := s.execute(c, cmd)
	if err != nil {
		return err
	}
	c.Location(ordersPath + "/" + o.ID)
	return sendOrder(c.Status(fiber.StatusCreated), o)
}

// transition is POST /v1/orders/{id}/transitions.
func (s *Server) transition(c *fiber.Ctx) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	req, err := parseTransition(c)
	if err != nil {
		return err
	}
	expected, err := parseIfMatch(c)
	if err != nil {
		return err
	}
	cmd, err := s.command(c, order.CommandTransition)
	if err != nil {
		return err
	}
	cmd.OrderID, cmd.To, cmd.Reason, cmd.ExpectedVersion = id, req.to, req.reason, expected
	cmd.Metadata = req.metadata
	o, err := s.execute(c, cmd)
	if err != nil {
		return err
	}
	return sendOrder(c.Status(fiber.StatusOK), o)
}

// command fills the fields every command carries from the request headers.
func (s *Server) command(c *fiber.Ctx, kind order.CommandKind) (order.Command, error) {
	key, err := parseIdempotencyKey(c)
	if err != nil {
		return order.Command{}, err
	}
	return order.Command{
		Kind:           kind,
		IdempotencyKey: key,
		Principal:      principal(c),
		RequestID:      s.requestID(c),
	}, nil
}

// execute runs cmd with the request deadline. An order without a version, or
// another order than the one named, is not something the service may return
// on success: it is reported as an internal error rather than sent as a
// nonsense ETag. The one exception is a retried create whose ID the server
// chose: it is answered with the order its first attempt made.
func (s *Server) execute(c *fiber.Ctx, cmd order.Command) (order.Order, error) {
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	o, err := s.svc.Execute(ctx, cmd)
	if err == nil && (!o.Exists() || (o.ID != cmd.OrderID && !cmd.IDGenerated)) {
		err = fmt.Errorf("service answered command for %q with order %q version %d", cmd.OrderID, o.ID, o.Version)
	}
	return o, err
}

// getOrder is GET /v1/orders/{id}.
func (s *Server) getOrder(c *fiber.Ctx) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	o, err := s.svc.Get(ctx, id)
	if err != nil {
		return readError(err)
	}
	if !o.Exists() {
		return order.ErrOrderNotFound
	}
	return sendOrder(c, o)
}

// history is GET /v1/orders/{id}/history.
func (s *Server) history(c *fiber.Ctx) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	events, err := s.svc.History(ctx, id)
	if err != nil {
		return readError(err)
	}
	if len(events) == 0 { // an order begins with its creation event
		return order.ErrOrderNotFound
	}
	body := historyBody{ID: id, Transitions: make([]transitionBody, len(events))}
	for i, ev := range events {
		body.Transitions[i] = newTransitionBody(ev)
	}
	return c.JSON(body)
}

func newTransitionBody(ev order.Event) transitionBody {
	t := transitionBody{
		EventID: ev.EventID, Version: ev.Version, To: ev.To, At: formatTime(ev.At),
		Reason: ev.Reason, Principal: ev.Principal, RequestID: ev.RequestID,
		PaymentDueAt: formatDueAt(ev.PaymentDueAt),
		CustomerID:   ev.CustomerID, Currency: ev.Currency, Metadata: ev.Metadata,
	}
	if ev.Items != nil {
		t.Items = make([]itemBody, len(ev.Items))
		for i, it := range ev.Items {
			t.Items[i] = itemBody(it)
		}
		total := ev.Total
		t.Total = &total
	}
	if ev.From.Valid() {
		from := ev.From
		t.From = &from
	}
	return t
}

// readError: a read that ran out of time changed nothing, so unlike a
// command it is not "outcome unknown" but "busy, retry shortly".
func readError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, actors.ErrBusy) {
		return fmt.Errorf("%w: %w", actors.ErrBusy, err)
	}
	return err
}

// healthReporter is implemented by a service that can tell whether its
// dependencies (the journal) work, apart from whether it is ready. /readyz
// reports both, so a load balancer stops sending writes to a server whose
// broker is down; the order routes are gated on Ready alone, so reads keep
// being answered from memory meanwhile and writes fail fast with 503.
type healthReporter interface{ Healthy() error }

// gated refuses order requests until the service has caught up with the log:
// before that, reads would show stale orders and commands would be decided
// against them.
func (s *Server) gated(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if err := s.svc.Ready(); err != nil {
			return notReady(err)
		}
		return h(c)
	}
}

// gatedHere is gated for a handler that routes requests itself: in a
// cluster it gates only what it serves here (createOrder does), since a node
// still catching up can forward requests to the nodes that serve them.
func (s *Server) gatedHere(h fiber.Handler) fiber.Handler {
	if s.cfg.Router != nil {
		return h
	}
	return s.gated(h)
}

// notReady makes sure a Ready error maps to 503 not-ready even if the
// service forgot to wrap ErrNotReady.
func notReady(err error) error {
	if errors.Is(err, actors.ErrNotReady) {
		return err
	}
	return fmt.Errorf("%w: %w", actors.ErrNotReady, err)
}

type statusBody struct {
	Status string `json:"status"`
}

// healthz is GET /healthz: the process answers, nothing more.
func (s *Server) healthz(c *fiber.Ctx) error { return c.JSON(statusBody{Status: "ok"}) }

// readyz is GET /readyz: 200 once recovery has caught up with the log and
// the journal can be written.
func (s *Server) readyz(c *fiber.Ctx) error {
	if err := s.svc.Ready(); err != nil {
		return notReady(err)
	}
	if h, ok := s.svc.(healthReporter); ok {
		if err := h.Healthy(); err != nil {
			return notReady(err)
		}
	}
	return c.JSON(statusBody{Status: "ready"})
}
