package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/order"
)

// orderBody is an order as encoding/json wrote it before appendOrder: the
// oracle for the bytes on the wire.
type orderBody struct {
	ID           string            `json:"id"`
	State        order.State       `json:"state"`
	Version      uint64            `json:"version"`
	CreatedAt    string            `json:"created_at"`
	UpdatedAt    string            `json:"updated_at"`
	PaymentDueAt string            `json:"payment_due_at,omitempty"`
	CustomerID   string            `json:"customer_id,omitempty"`
	Currency     string            `json:"currency,omitempty"`
	Items        []itemBody        `json:"items,omitempty"`
	Total        *int64            `json:"total,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
}

// newOrderBody is o as orderBody.
func newOrderBody(o order.Order) orderBody {
	b := orderBody{ID: o.ID, State: o.State, Version: o.Version,
		CreatedAt: formatTime(o.CreatedAt), UpdatedAt: formatTime(o.UpdatedAt), PaymentDueAt: formatDueAt(o.PaymentDueAt)}
	if c := o.Contents; c != nil {
		b.CustomerID, b.Currency, b.Metadata = c.CustomerID, c.Currency, c.Metadata
		for _, it := range c.Items {
			b.Items = append(b.Items, itemBody(it))
		}
		if len(c.Items) > 0 {
			b.Total = &c.Total
		}
	}
	return b
}

func TestAppendOrderMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	paris := time.FixedZone("Paris", 3600)
	orders := []order.Order{
		{ID: "order-1", State: order.Created, Version: 1, CreatedAt: t0, UpdatedAt: t0},
		{ID: strings.Repeat("a", order.IDLenMax), State: order.Returned, Version: 1<<64 - 1,
			CreatedAt: t0.In(paris), UpdatedAt: t0.Add(90 * time.Minute).In(paris), PaymentDueAt: t0.Add(15 * time.Minute)},
		{ID: "Az09-._~", State: order.Paid, Version: 2, CreatedAt: time.Unix(0, 0), UpdatedAt: time.Unix(1, 0)},
		{ID: "whole-seconds", State: order.Shipped, Version: 3, CreatedAt: t0.Truncate(time.Second), UpdatedAt: time.Time{}},
		// Not valid IDs, but the service is not trusted to send only those.
		{ID: `<a href="x">&amp;</a>`, State: order.Delivered, Version: 4, CreatedAt: t0, UpdatedAt: t0},
		{ID: "zäpfchen\u2028\u2029\x00\x1f\xff\"\\", State: order.Cancelled, Version: 5, CreatedAt: t0, UpdatedAt: t0},
		{ID: "contents", State: order.Shipped, Version: 3, CreatedAt: t0, UpdatedAt: t0, Contents: &order.Contents{
			CustomerID: `c<"&>`, Currency: "EUR", Total: 2999,
			Items:    []order.Item{{SKU: "mug", Quantity: 2, UnitPrice: 1250}, {SKU: "tea", Quantity: 1, UnitPrice: 499}},
			Metadata: map[string]string{"z": "last", "a": "first \u2028 <b> \x01", "m": ""}}},
		{ID: "free", State: order.Created, Version: 1, CreatedAt: t0, UpdatedAt: t0, Contents: &order.Contents{
			Currency: "JPY", Items: []order.Item{{SKU: "gift", Quantity: 1, UnitPrice: 0}}}},
		{ID: "metadata-only", State: order.Paid, Version: 2, CreatedAt: t0, UpdatedAt: t0, Contents: &order.Contents{
			Metadata: map[string]string{"k": "v"}}},
		{ID: "empty-contents", State: order.Paid, Version: 2, CreatedAt: t0, UpdatedAt: t0, Contents: &order.Contents{}},
	}
	for _, o := range orders {
		want, err := json.Marshal(newOrderBody(o))
		require.NoError(t, err)
		got, err := appendOrder(nil, o)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got))
	}

	_, err := appendOrder(nil, order.Order{ID: "o", Version: 1})
	assert.Error(t, err, "an order without a state is not something to send")
}

func TestAppendETag(t *testing.T) {
	t.Parallel()
	for _, v := range []uint64{1, 9, 10, 1234567890, 1<<64 - 1} {
		assert.Equal(t, fmt.Sprintf(`"%d"`, v), string(appendETag(nil, v)))
	}
}

// problemMap is a problem as it was before problem.append: a map, which
// encoding/json writes with its keys sorted.
func problemMap(p problem) map[string]any {
	m := map[string]any{
		"type":       problemTypePrefix + p.kind.code,
		"title":      p.kind.title,
		"status":     p.kind.status,
		"detail":     p.detail,
		"request_id": p.requestID,
	}
	if p.hasField {
		m["field"] = p.field
	}
	if p.invalidTransition {
		allowed := make([]string, len(p.allowed))
		for i, s := range p.allowed {
			allowed[i] = s.String()
		}
		m["current_state"], m["allowed"] = p.currentState.String(), allowed
	}
	if p.hasCurrentVersion {
		m["current_version"] = p.currentVersion
	}
	return m
}

func TestProblemMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	errs := []error{
		badInput(fieldTo, "unknown state %q", "<Lost & \"found\">"),
		badInput("", "unknown member"),
		badInput("zä\xff", "unknown member"),
		&order.InvalidTransitionError{From: order.Shipped, To: order.Paid, Allowed: []order.State{order.Delivered}},
		&order.InvalidTransitionError{From: order.Created, To: order.Returned, Allowed: []order.State{order.Paid, order.Cancelled}},
		&order.InvalidTransitionError{From: order.Cancelled, To: order.Paid},
		&order.VersionMismatchError{Expected: 1, Current: 1<<64 - 1},
		&order.UnknownStateError{Name: "paid"},
		fmt.Errorf("%w: empty", order.ErrInvalidID),
		&order.DeadlineError{Field: order.FieldExtend, Detail: "must be positive"},
		actors.ErrBusy, actors.ErrNotReady, order.ErrOutcomeUnknown, context.DeadlineExceeded, errUnauthorized,
		errRateLimited, errUnsupportedMediaType, fiber.ErrRequestEntityTooLarge, fiber.ErrNotFound,
		fiber.ErrMethodNotAllowed, fiber.ErrRequestTimeout, fiber.ErrRequestHeaderFieldsTooLarge, fiber.ErrBadRequest,
		errors.New("internal"),
	}
	for _, err := range errs {
		kind, _ := classify(err)
		p := newProblem(kind, err, DefaultBodyLimit)
		p.requestID = "req-<1>"
		want, jerr := json.Marshal(problemMap(p))
		require.NoError(t, jerr)
		assert.Equal(t, string(want), string(p.append(nil)), "%v", err)
	}
}
