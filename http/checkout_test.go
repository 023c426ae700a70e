package http

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/order"
)

// fakeCheckouts is a function-field fake of the saga orchestrator: the
// HTTP contract is what these tests check (actors tests the sagas).
type fakeCheckouts struct {
	mu     sync.Mutex
	starts []actors.CheckoutStart
	end    func(st actors.CheckoutStart) (order.Checkout, error) // what Wait answers
	get    func(id string) (order.Checkout, error)
}

func (f *fakeCheckouts) Start(_ context.Context, st actors.CheckoutStart) (order.Checkout, error) {
	f.mu.Lock()
	f.starts = append(f.starts, st)
	f.mu.Unlock()
	return order.Checkout{ID: st.ID, OrderID: st.ID, Status: order.CheckoutRunning, Version: 1}, nil
}

func (f *fakeCheckouts) Wait(ctx context.Context, id string) (order.Checkout, error) {
	f.mu.Lock()
	st := f.starts[len(f.starts)-1]
	f.mu.Unlock()
	return f.end(st)
}

func (f *fakeCheckouts) Get(_ context.Context, id string) (order.Checkout, error) {
	return f.get(id)
}

func (f *fakeCheckouts) started() []actors.CheckoutStart {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]actors.CheckoutStart(nil), f.starts...)
}

const checkoutBody1 = `{"customer_id":"cus-1","currency":"EUR","items":[{"sku":"mug","quantity":2,"unit_price":500}],"payment":{"token":"tok_visa"}}`

func finishedCheckout(st actors.CheckoutStart, status order.CheckoutStatus, steps ...order.CheckoutStepRecord) order.Checkout {
	return order.Checkout{ID: st.ID, OrderID: st.ID, Status: status, Version: uint64(len(steps) + 1),
		CustomerID: st.Request.CustomerID, Currency: st.Request.Currency, Items: st.Request.Items, Total: 1000,
		CreatedAt: t0, UpdatedAt: t0, Steps: steps}
}

func step(s order.CheckoutStep, o order.StepOutcome) order.CheckoutStepRecord {
	return order.CheckoutStepRecord{Step: s, Outcome: o, At: t0}
}

func newCheckoutHarness(t *testing.T, f *fakeCheckouts) *harness {
	return newHarness(t, &fakeService{}, Config{Checkouts: f})
}

func TestCheckoutAnswers(t *testing.T) {
	done := []order.CheckoutStepRecord{step(order.StepReserve, order.StepSucceeded), step(order.StepCreateOrder, order.StepSucceeded),
		step(order.StepAuthorize, order.StepSucceeded), step(order.StepPay, order.StepSucceeded)}
	declined := []order.CheckoutStepRecord{step(order.StepReserve, order.StepSucceeded), step(order.StepCreateOrder, order.StepSucceeded),
		step(order.StepAuthorize, order.StepFailed), step(order.StepVoid, order.StepSucceeded),
		step(order.StepCancelOrder, order.StepSucceeded), step(order.StepRelease, order.StepSucceeded)}
	tests := []struct {
		name   string
		end    func(st actors.CheckoutStart) (order.Checkout, error)
		status int
		want   string // the checkout's status in the body; "" for a problem
	}{
		{"completed", func(st actors.CheckoutStart) (order.Checkout, error) {
			return finishedCheckout(st, order.CheckoutCompleted, done...), nil
		}, fiber.StatusCreated, "completed"},
		{"declined: compensated, still 201", func(st actors.CheckoutStart) (order.Checkout, error) {
			c := finishedCheckout(st, order.CheckoutCompensated, declined...)
			c.FailedStep = order.StepAuthorize
			return c, nil
		}, fiber.StatusCreated, "compensated"},
		{"still running at the deadline", func(st actors.CheckoutStart) (order.Checkout, error) {
			return finishedCheckout(st, order.CheckoutRunning, done[:2]...), nil
		}, fiber.StatusAccepted, "running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeCheckouts{end: tt.end}
			h := newCheckoutHarness(t, f)
			r := h.do(fiber.MethodPost, checkoutsPath, checkoutBody1)
			require.Equal(t, tt.status, r.status, string(r.body))
			var body map[string]any
			require.NoError(t, json.Unmarshal(r.body, &body))
			assert.Equal(t, tt.want, body["status"])
			id := f.started()[0].ID
			assert.Equal(t, checkoutsPath+"/"+id, r.header.Get("Location"))
			assert.Equal(t, id, body["order_id"])
			assert.NotEmpty(t, body["steps"])
			st := f.started()[0]
			assert.Equal(t, "tok_visa", st.Request.PaymentToken)
			assert.Equal(t, []order.Item{{SKU: "mug", Quantity: 2, UnitPrice: 500}}, st.Request.Items)
		})
	}
}

func TestCheckoutOutOfStockIs409NamingTheSKUs(t *testing.T) {
	f := &fakeCheckouts{end: func(st actors.CheckoutStart) (order.Checkout, error) {
		c := finishedCheckout(st, order.CheckoutCompensated, step(order.StepReserve, order.StepFailed), step(order.StepRelease, order.StepSucceeded))
		c.FailedStep, c.OutOfStock = order.StepReserve, []string{"jam", "mug"}
		return c, nil
	}}
	h := newCheckoutHarness(t, f)
	r := h.do(fiber.MethodPost, checkoutsPath, `{"id":"co-9","customer_id":"cus-1","currency":"EUR","items":[{"sku":"mug","quantity":2,"unit_price":500},{"sku":"jam","quantity":1,"unit_price":300}],"payment":{"token":"tok_visa"}}`)
	p := requireProblem(t, r, fiber.StatusConflict, "out-of-stock")
	assert.Equal(t, []any{"jam", "mug"}, p["out_of_stock"])
	assert.Equal(t, "co-9", p["checkout_id"])
	assert.Equal(t, checkoutsPath+"/co-9", r.header.Get("Location"))
}

func TestCheckoutIDFromTheIdempotencyKey(t *testing.T) {
	f := &fakeCheckouts{end: func(st actors.CheckoutStart) (order.Checkout, error) {
		return finishedCheckout(st, order.CheckoutRunning), nil
	}}
	h := newCheckoutHarness(t, f)
	for range 2 {
		r := h.do(fiber.MethodPost, checkoutsPath, checkoutBody1, headerIdempotencyKey, "k-1")
		require.Equal(t, fiber.StatusAccepted, r.status, string(r.body))
	}
	h.do(fiber.MethodPost, checkoutsPath, checkoutBody1, headerIdempotencyKey, "k-2")
	h.do(fiber.MethodPost, checkoutsPath, checkoutBody1)
	st := f.started()
	require.Len(t, st, 4)
	assert.Equal(t, st[0].ID, st[1].ID, "a retry with the key names the same checkout")
	assert.NotEqual(t, st[0].ID, st[2].ID)
	assert.NotEqual(t, st[0].ID, st[3].ID)
	assert.Equal(t, "k-1", st[0].IdempotencyKey)
	for _, s := range st {
		assert.NoError(t, order.ValidateID(s.ID))
	}
}

func TestCheckoutRequestsRefused(t *testing.T) {
	tests := []struct{ name, body, field string }{
		{"no payment", `{"customer_id":"c","currency":"EUR","items":[{"sku":"a","quantity":1,"unit_price":1}]}`, "payment"},
		{"no token", `{"customer_id":"c","currency":"EUR","items":[{"sku":"a","quantity":1,"unit_price":1}],"payment":{}}`, "payment.token"},
		{"a member the payment does not have", `{"customer_id":"c","currency":"EUR","items":[{"sku":"a","quantity":1,"unit_price":1}],"payment":{"token":"t","card":"4242"}}`, "payment.card"},
		{"no customer", `{"currency":"EUR","items":[{"sku":"a","quantity":1,"unit_price":1}],"payment":{"token":"t"}}`, "customer_id"},
		{"no items", `{"customer_id":"c","currency":"EUR","payment":{"token":"t"}}`, "items"},
		{"a SKU twice", `{"customer_id":"c","currency":"EUR","items":[{"sku":"a","quantity":1,"unit_price":1},{"sku":"a","quantity":2,"unit_price":1}],"payment":{"token":"t"}}`, "items[1].sku"},
		{"a bad quantity", `{"customer_id":"c","currency":"EUR","items":[{"sku":"a","quantity":0,"unit_price":1}],"payment":{"token":"t"}}`, "items[0].quantity"},
		{"a token with a space", `{"customer_id":"c","currency":"EUR","items":[{"sku":"a","quantity":1,"unit_price":1}],"payment":{"token":"t t"}}`, "payment.token"},
		{"a bad id", `{"id":"a b","customer_id":"c","currency":"EUR","items":[{"sku":"a","quantity":1,"unit_price":1}],"payment":{"token":"t"}}`, "id"},
		{"Customer_ID mis-cased", `{"Customer_ID":"c","currency":"EUR","items":[{"sku":"a","quantity":1,"unit_price":1}],"payment":{"token":"t"}}`, "Customer_ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeCheckouts{}
			h := newCheckoutHarness(t, f)
			r := h.do(fiber.MethodPost, checkoutsPath, tt.body)
			p := requireProblem(t, r, fiber.StatusBadRequest, "bad-request")
			assert.Equal(t, tt.field, p["field"], p["detail"])
			assert.Empty(t, f.started(), "nothing started")
		})
	}
}

func TestGetCheckout(t *testing.T) {
	f := &fakeCheckouts{get: func(id string) (order.Checkout, error) {
		if id != "co-1" {
			return order.Checkout{}, fmt.Errorf("%w: %s", actors.ErrCheckoutNotFound, id)
		}
		c := finishedCheckout(actors.CheckoutStart{ID: id}, order.CheckoutCompleted, step(order.StepReserve, order.StepSucceeded))
		c.UpdatedAt = t0.Add(time.Second)
		return c, nil
	}}
	h := newCheckoutHarness(t, f)
	r := h.do(fiber.MethodGet, checkoutsPath+"/co-1", "")
	require.Equal(t, fiber.StatusOK, r.status)
	var body map[string]any
	require.NoError(t, json.Unmarshal(r.body, &body))
	assert.Equal(t, "completed", body["status"])
	assert.Equal(t, []any{map[string]any{"step": "reserve-stock", "outcome": "succeeded", "at": formatTime(t0)}}, body["steps"])
	requireProblem(t, h.do(fiber.MethodGet, checkoutsPath+"/co-2", ""), fiber.StatusNotFound, "checkout-not-found")
}

// checkoutOracle is a checkout body as encoding/json reads it.
type checkoutOracle struct {
	ID         *string `json:"id"`
	CustomerID string  `json:"customer_id"`
	Currency   string  `json:"currency"`
	Items      []struct {
		SKU       string `json:"sku"`
		Quantity  int64  `json:"quantity"`
		UnitPrice int64  `json:"unit_price"`
	} `json:"items"`
	Payment struct {
		Token string `json:"token"`
	} `json:"payment"`
}

// FuzzCheckoutRequest: what the checkout body parser accepts, encoding/json
// reads alike (no unknown members), and it is within the order's bounds.
func FuzzCheckoutRequest(f *testing.F) {
	f.Add(checkoutBody1)
	f.Add(`{"id":"co-1","customer_id":"c","currency":"EUR","items":[{"sku":"a","quantity":1,"unit_price":0}],"payment":{"token":"tok_\u0041"}}`)
	f.Add(`{"customer_id":"c","currency":"EUR","items":[{"sku":"a","quantity":1,"unit_price":1}],"payment":{"token":"t","token":"u"}}`)
	f.Add(`{"payment":null,"customer_id":"c","currency":"EUR","items":[]}`)
	f.Fuzz(func(t *testing.T, body string) {
		req, err := parseCheckoutBody([]byte(body))
		if err != nil {
			return
		}
		dec := json.NewDecoder(strings.NewReader(body))
		dec.DisallowUnknownFields()
		var want checkoutOracle
		require.NoError(t, dec.Decode(&want), "encoding/json refuses what was accepted")
		require.NoError(t, order.CheckOrderContents(req.Contents.customerID, req.Contents.currency, req.Contents.items))
		require.Equal(t, want.CustomerID, req.Contents.customerID)
		require.Equal(t, want.Currency, req.Contents.currency)
		require.Equal(t, want.Payment.Token, req.Token)
		require.Len(t, req.Contents.items, len(want.Items))
		for i, it := range want.Items {
			require.Equal(t, order.Item{SKU: it.SKU, Quantity: it.Quantity, UnitPrice: it.UnitPrice}, req.Contents.items[i])
		}
		if want.ID != nil {
			require.Equal(t, optString{value: *want.ID, ok: true}, req.ID)
		}
	})
}

// TestCheckoutsServedWhereTheirIDLives: in a cluster, a checkout is started
// and read on the node that serves its ID's partition (its order's), and an
// unkeyed checkout gets an ID in a partition of the node it reached.
func TestCheckoutsServedWhereTheirIDLives(t *testing.T) {
	t.Parallel()
	fc := &fakeCluster{}
	var entryCo, ownerCo fakeCheckouts
	for _, f := range []*fakeCheckouts{&entryCo, &ownerCo} {
		f.end = func(st actors.CheckoutStart) (order.Checkout, error) {
			return finishedCheckout(st, order.CheckoutCompleted, step(order.StepReserve, order.StepSucceeded)), nil
		}
		f.get = func(id string) (order.Checkout, error) {
			return finishedCheckout(actors.CheckoutStart{ID: id}, order.CheckoutCompleted), nil
		}
	}
	entry := newNode(t, fc, 1, Config{Checkouts: &entryCo})
	owner := newNode(t, fc, 2, Config{Checkouts: &ownerCo})
	withID := `{"id":"co-a",` + checkoutBody1[1:]
	fc.ownAll(owner.url)
	fc.own(entry.url, partitionOfKey("co-b")) // co-a's is the owner's
	require.NotEqual(t, partitionOfKey("co-a"), partitionOfKey("co-b"))

	r := entry.do("POST", "/v1/checkouts", withID, withAuth("Content-Type", "application/json")...)
	require.Equal(t, fiber.StatusCreated, r.status, "body: %s", r.body)
	assert.Equal(t, "/v1/checkouts/co-a", r.header.Get("Location"))
	require.Len(t, ownerCo.started(), 1)
	assert.Equal(t, "co-a", ownerCo.started()[0].ID)
	assert.Equal(t, "tok_visa", ownerCo.started()[0].Request.PaymentToken, "the body went along")
	r = entry.do("GET", "/v1/checkouts/co-a", "", clusterAuth...)
	require.Equal(t, fiber.StatusOK, r.status, "body: %s", r.body)

	keyed := withAuth("Content-Type", "application/json", "Idempotency-Key", "k-1")
	r = entry.do("POST", "/v1/checkouts", checkoutBody1, keyed...)
	require.Equal(t, fiber.StatusCreated, r.status, "body: %s", r.body)
	id := checkoutIDFor("ops", "k-1")
	wantStarts := &entryCo
	if partitionOfKey(id) != partitionOfKey("co-b") {
		wantStarts = &ownerCo
	}
	assert.Equal(t, id, wantStarts.started()[len(wantStarts.started())-1].ID, "the key's ID, where it lives")

	before := len(entryCo.started())
	r = entry.do("POST", "/v1/checkouts", checkoutBody1, withAuth("Content-Type", "application/json")...)
	require.Equal(t, fiber.StatusCreated, r.status, "body: %s", r.body)
	require.Len(t, entryCo.started(), before+1, "an unkeyed checkout needs no hop")
	assert.Equal(t, partitionOfKey("co-b"), partitionOfKey(entryCo.started()[before].ID))
}
