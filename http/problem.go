package http

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/order"
)

// problemContentType is the media type of every error body (RFC 9457).
const problemContentType = "application/problem+json"

// problemTypePrefix makes problem codes into URIs. A URN, not a URL: there is
// no documentation server to dereference, and the code is what clients match.
const problemTypePrefix = "urn:orderd:problem:"

// Retry-After values, in seconds. Busy orders and unknown outcomes clear in
// milliseconds (the next mailbox turn, the next journal round trip); recovery
// and an unwritable log take longer, so clients are told to back off more.
const (
	retryAfterBusySeconds     = 1
	retryAfterOutcomeSeconds  = 1
	retryAfterNotReadySeconds = 5
	retryAfterJournalSeconds  = 5
)

// problemKind is one row of the error table: what a class of errors looks
// like on the wire.
type problemKind struct {
	status            int
	code              string
	title             string
	detail            string // fixed detail, used when the error carries none fit to show
	retryAfterSeconds int    // 0: no Retry-After header
}

// Problem kinds that are not the verdict of a domain error.
var (
	kindBadRequest = problemKind{status: fiber.StatusBadRequest, code: "bad-request",
		title: "Bad request", detail: "the request is malformed"}
	kindNotFound = problemKind{status: fiber.StatusNotFound, code: "not-found",
		title: "Not found", detail: "no such resource"}
	kindMethodNotAllowed = problemKind{status: fiber.StatusMethodNotAllowed, code: "method-not-allowed",
		title: "Method not allowed", detail: "the resource does not support this method; see the Allow header"}
	kindPayloadTooLarge = problemKind{status: fiber.StatusRequestEntityTooLarge, code: "payload-too-large",
		title: "Payload too large"}
	kindUnsupportedMediaType = problemKind{status: fiber.StatusUnsupportedMediaType, code: "unsupported-media-type",
		title:  "Unsupported media type",
		detail: "request bodies must be application/json (charset utf-8, no Content-Encoding)"}
	kindInternal = problemKind{status: fiber.StatusInternalServerError, code: "internal-error",
		title: "Internal error", detail: "the server failed to handle the request; its log has the details under the request ID"}
)

// errorTable is the one place where errors become HTTP statuses. Rows are
// tried in order with errors.Is, and the first match wins: ErrBusy and
// ErrNotReady come before the deadline row because they promise that nothing
// was applied, which a bare deadline cannot.
var errorTable = []struct {
	target error
	kind   problemKind
}{
	{order.ErrOrderNotFound, problemKind{status: fiber.StatusNotFound, code: "order-not-found",
		title: "Order not found", detail: "no order has this ID"}},
	{order.ErrOrderExists, problemKind{status: fiber.StatusConflict, code: "order-exists",
		title: "Order exists", detail: "an order with this ID already exists"}},
	{order.ErrInvalidTransition, problemKind{status: fiber.StatusConflict, code: "invalid-transition",
		title: "Invalid transition", detail: "the order cannot move to the requested state"}},
	{order.ErrWriteConflict, problemKind{status: fiber.StatusConflict, code: "write-conflict",
		title:  "Write conflict",
		detail: "another writer changed the order first; this request's record is in the audit log, but the order skips it, so nothing was applied. Read the order and decide again"}}, // with current_version
	{order.ErrVersionMismatch, problemKind{status: fiber.StatusPreconditionFailed, code: "version-mismatch",
		title: "Version mismatch", detail: "the order is not at the version named in If-Match"}},
	{order.ErrIdempotencyKeyReused, problemKind{status: fiber.StatusUnprocessableEntity, code: "idempotency-key-reused",
		title:  "Idempotency key reused",
		detail: "this Idempotency-Key was already used for a different request; nothing was applied. Use a new key for a new request"}},
	{order.ErrSKUNotFound, problemKind{status: fiber.StatusNotFound, code: "sku-not-found",
		title: "SKU not found", detail: "nothing was ever recorded for this SKU; set its stock first"}},
	{order.ErrOutOfStock, problemKind{status: fiber.StatusConflict, code: "out-of-stock",
		title: "Out of stock", detail: "fewer units are available than requested; nothing was reserved"}}, // a checkout's: with out_of_stock and checkout_id
	{order.ErrStockReserved, problemKind{status: fiber.StatusConflict, code: "stock-reserved",
		title: "Stock reserved", detail: "more units are reserved than the requested count; release or consume the holds first"}},
	{order.ErrHoldConflict, problemKind{status: fiber.StatusConflict, code: "hold-conflict",
		title: "Hold conflict", detail: "the order's hold on this SKU does not allow the change"}},
	{order.ErrInvalidInventory, kindBadRequest},
	{errNoInventory, kindNotFound},
	{actors.ErrCheckoutNotFound, problemKind{status: fiber.StatusNotFound, code: "checkout-not-found",
		title: "Checkout not found", detail: "no checkout has this ID"}},
	{actors.ErrCheckoutExists, problemKind{status: fiber.StatusConflict, code: "checkout-exists",
		title: "Checkout exists", detail: "a different checkout has this ID; nothing was started"}},
	{order.ErrUnknownState, kindBadRequest},
	{order.ErrInvalidID, kindBadRequest},
	{order.ErrDeadlineOutOfBounds, kindBadRequest},
	{order.ErrInvalidContents, kindBadRequest},
	{errUnsupportedMediaType, kindUnsupportedMediaType},
	{errRateLimited, problemKind{status: fiber.StatusTooManyRequests, code: "rate-limited",
		title: "Too many requests", detail: "this client sent more requests than its rate limit allows; nothing was applied",
		retryAfterSeconds: retryAfterBusySeconds}},
	{errUnauthorized, problemKind{status: fiber.StatusUnauthorized, code: "unauthorized",
		title: "Unauthorized", detail: "send a valid API key as 'Authorization: Bearer <token>'"}},
	{errForbidden, problemKind{status: fiber.StatusForbidden, code: "forbidden",
		title:  "Forbidden",
		detail: "only a cluster node's key may act on behalf of another principal (" + headerOnBehalfOf + "); nothing was applied"}},
	{actors.ErrBusy, problemKind{status: fiber.StatusServiceUnavailable, code: "busy",
		title: "Order busy", detail: "the order could not take the request in time; nothing was applied, retry shortly",
		retryAfterSeconds: retryAfterBusySeconds}},
	// Before ErrNotReady, which it wraps: the same answer, saying why.
	{actors.ErrNotOwner, problemKind{status: fiber.StatusServiceUnavailable, code: "not-ready",
		title: "Not ready", detail: "the order's partition is moving between the cluster's nodes; nothing was applied, retry shortly",
		retryAfterSeconds: retryAfterNotReadySeconds}},
	{actors.ErrNotReady, problemKind{status: fiber.StatusServiceUnavailable, code: "not-ready",
		title: "Not ready", detail: "the server is recovering from the log or shutting down; nothing was applied",
		retryAfterSeconds: retryAfterNotReadySeconds}},
	{order.ErrStoreBehind, problemKind{status: fiber.StatusServiceUnavailable, code: "store-behind",
		title:             "State store behind",
		detail:            "this node's state store has not yet applied the latest writes, which the listing must show; retry shortly",
		retryAfterSeconds: retryAfterBusySeconds}},
	{order.ErrJournalUnavailable, problemKind{status: fiber.StatusServiceUnavailable, code: "journal-unavailable",
		title: "Journal unavailable", detail: "the audit log cannot be written; nothing was applied",
		retryAfterSeconds: retryAfterJournalSeconds}},
	{order.ErrOutcomeUnknown, kindOutcomeUnknown},
	{context.DeadlineExceeded, kindOutcomeUnknown},
}

// kindOutcomeUnknown covers a failed log write and a command that outlived its
// deadline: either way the event may or may not be recorded.
var kindOutcomeUnknown = problemKind{status: fiber.StatusServiceUnavailable, code: "outcome-unknown",
	title:             "Outcome unknown",
	detail:            "the command may or may not have been recorded; retry with the same Idempotency-Key to learn which",
	retryAfterSeconds: retryAfterOutcomeSeconds}

// fiberKinds maps the errors Fiber and fasthttp raise themselves (unknown
// routes, oversize bodies, read timeouts, unparsable requests) to problems.
var fiberKinds = map[int]problemKind{
	fiber.StatusNotFound:              kindNotFound,
	fiber.StatusMethodNotAllowed:      kindMethodNotAllowed,
	fiber.StatusRequestEntityTooLarge: kindPayloadTooLarge,
	fiber.StatusRequestTimeout: {status: fiber.StatusRequestTimeout, code: "request-timeout",
		title: "Request timeout", detail: "the request was not received in time"},
	fiber.StatusRequestHeaderFieldsTooLarge: {status: fiber.StatusRequestHeaderFieldsTooLarge,
		code: "request-header-fields-too-large", title: "Request header fields too large",
		detail: "the request headers exceed the server's buffer"},
}

// errUnsupportedMediaType: a POST body that is not plain JSON.
var errUnsupportedMediaType = errors.New("unsupported media type")

// inputError is a client mistake in one named part of the request: a body
// member, a path parameter, a header or a query parameter.
type inputError struct {
	field  string
	reason string
}

func (e *inputError) Error() string { return e.field + ": " + e.reason }

func badInput(field, format string, args ...any) error {
	return &inputError{field: field, reason: fmt.Sprintf(format, args...)}
}

// problem is an RFC 9457 problem document: the standard members from its
// kind, and the extension members beside them, as the RFC asks. It is
// written by appendProblem, in the bytes encoding/json gave the map it was
// before (members sorted by name).
type problem struct {
	kind      problemKind
	detail    string
	requestID string

	field    string
	hasField bool // "" is a field name a client can send

	// invalidTransition: current_state and allowed are shown.
	invalidTransition bool
	currentState      order.State
	allowed           []order.State

	currentVersion    uint64
	hasCurrentVersion bool
	// A checkout that lacked stock: which checkout, and the SKUs short.
	checkoutID string
	outOfStock []string
	// A reserve that lacked stock: the units available.
	available    int64
	hasAvailable bool
	// A hold-conflict: the order's hold as it is.
	hold        order.Hold
	holdOrderID string
	hasHold     bool
}

// classify finds the row for err. ok is false for errors nobody mapped,
// which are internal failures.
func classify(err error) (kind problemKind, ok bool) {
	var fe *fiber.Error
	if errors.As(err, &fe) {
		if k, found := fiberKinds[fe.Code]; found {
			return k, true
		}
		if fe.Code >= 400 && fe.Code < 500 {
			return kindBadRequest, true
		}
		return kindInternal, false
	}
	var ie *inputError
	if errors.As(err, &ie) {
		return kindBadRequest, true
	}
	for _, row := range errorTable {
		if errors.Is(err, row.target) {
			return row.kind, true
		}
	}
	return kindInternal, false
}

// newProblem builds the document for err. Details come from typed errors
// whose text is meant for clients; everything else gets the row's fixed
// detail, so wrapped internals (broker addresses, stack context) never leak.
func newProblem(kind problemKind, err error, bodyLimit int) problem {
	p := problem{kind: kind, detail: kind.detail}
	var (
		ie  *inputError
		ite *order.InvalidTransitionError
		vme *order.VersionMismatchError
		wce *order.WriteConflictError
		use *order.UnknownStateError
		de  *order.DeadlineError
		ce  *order.ContentsError
		fe  *forwardError
		ive *order.InventoryError
		ose *outOfStockError
		oos *order.OutOfStockError
		hce *order.HoldConflictError
		sre *order.StockReservedError
	)
	switch {
	case kind.code == kindPayloadTooLarge.code:
		p.detail = fmt.Sprintf("the request body exceeds %d bytes", bodyLimit)
	case errors.As(err, &ie):
		p.detail, p.field, p.hasField = ie.Error(), ie.field, true
	case errors.As(err, &ite):
		p.detail = ite.Error()
		p.invalidTransition, p.currentState, p.allowed = true, ite.From, ite.Allowed
	case errors.As(err, &vme):
		p.detail = vme.Error()
		p.currentVersion, p.hasCurrentVersion = vme.Current, true
	case errors.As(err, &wce):
		p.detail = wce.Error()
		p.currentVersion, p.hasCurrentVersion = wce.Current, true
	case errors.As(err, &de): // decided on the actor's clock, so found only there
		p.detail, p.field, p.hasField = de.Error(), de.Field, true
	case errors.As(err, &ce): // checked before the actor too; this is its second line
		p.detail, p.field, p.hasField = ce.Error(), ce.Field, true
	case errors.As(err, &ive):
		p.detail, p.field, p.hasField = ive.Error(), ive.Field, true
	case errors.As(err, &ose):
		p.detail = fmt.Sprintf("checkout %s was compensated: not enough stock of %s", ose.checkout.ID, strings.Join(ose.checkout.OutOfStock, ", "))
		p.checkoutID, p.outOfStock = ose.checkout.ID, ose.checkout.OutOfStock
	case errors.As(err, &oos): // one SKU's reserve (holds.go)
		p.detail = oos.Error()
		p.outOfStock, p.available, p.hasAvailable = []string{oos.SKU}, oos.Available, true
	case errors.As(err, &hce):
		p.detail = hce.Error()
		p.hold, p.holdOrderID, p.hasHold = hce.Hold, hce.OrderID, true
	case errors.As(err, &sre):
		p.detail = sre.Error()
	case errors.As(err, &use):
		p.detail, p.field, p.hasField = "to: "+use.Error(), "to", true
	case errors.As(err, &fe):
		p.detail = fe.detail
	case errors.Is(err, order.ErrInvalidID):
		p.detail, p.field, p.hasField = "id: not a valid order ID", "id", true
	}
	return p
}

// handleError is Fiber's ErrorHandler: every error, from a handler, the
// router or fasthttp's request parser, becomes a problem document here.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	kind, ok := classify(err)
	reqID := s.requestID(c)
	if !ok {
		// The one place internal errors are logged: the client only sees
		// the request ID to quote. Method and path are copied: Fiber
		// reuses their buffers, and a log handler may keep the record.
		s.cfg.Logger.Error("request failed", "err", err, "method", strings.Clone(c.Method()),
			"path", strings.Clone(c.Path()), "request_id", reqID)
	}
	p := newProblem(kind, err, s.cfg.BodyLimit)
	p.requestID = reqID
	if kind.retryAfterSeconds > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(kind.retryAfterSeconds))
	}
	if kind.status == fiber.StatusUnauthorized {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="orderd"`)
	}
	var buf [responseBufferLen]byte
	c.Status(kind.status)
	return sendJSON(c, p.append(buf[:0]), problemContentType)
}

// append writes the document with its members in the order encoding/json
// wrote the map's keys: sorted.
func (p *problem) append(b []byte) []byte {
	b = append(b, '{')
	if p.invalidTransition {
		b = append(b, `"allowed":[`...)
		for i, s := range p.allowed {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, s.String())
		}
		b = append(b, `],"current_state":`...)
		b = appendJSONString(b, p.currentState.String())
		b = append(b, ',')
	}
	if p.hasAvailable {
		b = append(b, `"available":`...)
		b = strconv.AppendInt(b, p.available, 10)
		b = append(b, ',')
	}
	if p.checkoutID != "" {
		b = append(b, `"checkout_id":`...)
		b = appendJSONString(b, p.checkoutID)
		b = append(b, ',')
	}
	if p.hasCurrentVersion {
		b = append(b, `"current_version":`...)
		b = strconv.AppendUint(b, p.currentVersion, 10)
		b = append(b, ',')
	}
	b = append(b, `"detail":`...)
	b = appendJSONString(b, p.detail)
	if p.hasField {
		b = append(b, `,"field":`...)
		b = appendJSONString(b, p.field)
	}
	if p.hasHold {
		b = append(b, `,"hold":`...)
		b = appendHold(b, p.holdOrderID, p.hold)
	}
	if p.outOfStock != nil {
		b = append(b, `,"out_of_stock":[`...)
		for i, sku := range p.outOfStock {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, sku)
		}
		b = append(b, ']')
	}
	b = append(b, `,"request_id":`...)
	b = appendJSONString(b, p.requestID)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(p.kind.status), 10)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, p.kind.title)
	b = append(b, `,"type":"`+problemTypePrefix...) // codes are plain ASCII
	b = append(b, p.kind.code...)
	return append(b, `"}`...)
}
