package order

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var checkoutT0 = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

func startEvent() CheckoutEvent {
	return CheckoutEvent{
		EventID: "e1", CheckoutID: "co-1", Version: 1, At: checkoutT0, OrderID: "co-1",
		CustomerID: "cus-1", Currency: "EUR", Items: []Item{{SKU: "mug", Quantity: 2, UnitPrice: 500}}, Total: 1000,
	}
}

// runSaga applies the start and then one record per (step, outcome),
// each the step NextCheckoutStep names, and returns the checkout.
func runSaga(t *testing.T, outcomes ...StepOutcome) Checkout {
	t.Helper()
	c, err := ApplyCheckout(Checkout{}, startEvent())
	require.NoError(t, err)
	for i, o := range outcomes {
		step, ok := NextCheckoutStep(c)
		require.True(t, ok, "record %d: the saga has no next step (%v)", i, c.Status)
		c, err = ApplyCheckout(c, CheckoutEvent{CheckoutID: "co-1", Version: c.Version + 1, At: checkoutT0.Add(time.Duration(i+1) * time.Second), Step: step, Outcome: o})
		require.NoError(t, err, "record %d: %v %v", i, step, o)
	}
	return c
}

func stepsOf(c Checkout) []CheckoutStep {
	var out []CheckoutStep
	for _, r := range c.Steps {
		out = append(out, r.Step)
	}
	return out
}

func TestCheckoutSagaRunsForwardAndCompensatesInReverse(t *testing.T) {
	tests := []struct {
		name     string
		outcomes []StepOutcome
		status   CheckoutStatus
		steps    []CheckoutStep
	}{
		{"completed", []StepOutcome{StepSucceeded, StepSucceeded, StepSucceeded, StepSucceeded},
			CheckoutCompleted, []CheckoutStep{StepReserve, StepCreateOrder, StepAuthorize, StepPay}},
		{"out of stock: only the reservation is undone", []StepOutcome{StepFailed, StepSucceeded},
			CheckoutCompensated, []CheckoutStep{StepReserve, StepRelease}},
		{"the create failed: cancel (perhaps nothing), then release", []StepOutcome{StepSucceeded, StepFailed, StepSkipped, StepSucceeded},
			CheckoutCompensated, []CheckoutStep{StepReserve, StepCreateOrder, StepCancelOrder, StepRelease}},
		{"declined: void, cancel, release", []StepOutcome{StepSucceeded, StepSucceeded, StepFailed, StepSucceeded, StepSucceeded, StepSucceeded},
			CheckoutCompensated, []CheckoutStep{StepReserve, StepCreateOrder, StepAuthorize, StepVoid, StepCancelOrder, StepRelease}},
		{"the pay failed: void, cancel, release", []StepOutcome{StepSucceeded, StepSucceeded, StepSucceeded, StepFailed, StepSucceeded, StepSucceeded, StepSucceeded},
			CheckoutCompensated, []CheckoutStep{StepReserve, StepCreateOrder, StepAuthorize, StepPay, StepVoid, StepCancelOrder, StepRelease}},
		{"compensating, half way", []StepOutcome{StepSucceeded, StepSucceeded, StepFailed, StepSucceeded},
			CheckoutCompensating, []CheckoutStep{StepReserve, StepCreateOrder, StepAuthorize, StepVoid}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := runSaga(t, tt.outcomes...)
			assert.Equal(t, tt.status, c.Status)
			assert.Equal(t, tt.steps, stepsOf(c))
			_, more := NextCheckoutStep(c)
			assert.Equal(t, !tt.status.Finished(), more)
		})
	}
}

func TestCheckoutRecordsOutOfTurnAreSkipped(t *testing.T) {
	c := runSaga(t, StepSucceeded)
	next := func(step CheckoutStep, o StepOutcome) CheckoutEvent {
		return CheckoutEvent{CheckoutID: "co-1", Version: c.Version + 1, At: checkoutT0, Step: step, Outcome: o}
	}
	tests := []struct {
		name string
		ev   CheckoutEvent
		want error
	}{
		{"a step ahead of its turn", next(StepAuthorize, StepSucceeded), ErrRecordFork},
		{"a compensation while running", next(StepRelease, StepSucceeded), ErrRecordFork},
		{"a forward step skipped", next(StepCreateOrder, StepSkipped), ErrRecordFork},
		{"another checkout's record", func() CheckoutEvent { e := next(StepCreateOrder, StepSucceeded); e.CheckoutID = "co-2"; return e }(), ErrRecordFork},
		{"a repeated version", func() CheckoutEvent { e := next(StepCreateOrder, StepSucceeded); e.Version = c.Version; return e }(), ErrRecordDuplicate},
		{"a gap", func() CheckoutEvent { e := next(StepCreateOrder, StepSucceeded); e.Version = c.Version + 2; return e }(), ErrRecordFork},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ApplyCheckout(c, tt.ev)
			assert.ErrorIs(t, err, tt.want)
			assert.Equal(t, c, got)
		})
	}

	comp := runSaga(t, StepSucceeded, StepSucceeded, StepFailed)
	_, err := ApplyCheckout(comp, CheckoutEvent{CheckoutID: "co-1", Version: comp.Version + 1, Step: StepVoid, Outcome: StepFailed})
	assert.ErrorIs(t, err, ErrRecordFork, "a compensation is retried, never recorded as failed")

	_, err = ApplyCheckout(Checkout{}, CheckoutEvent{CheckoutID: "co-1", Version: 1, Step: StepReserve, Outcome: StepSucceeded, OrderID: "co-1"})
	assert.ErrorIs(t, err, ErrRecordFork, "a checkout starts with its start")
}

func TestCheckoutApplyKeepsWhatTheRecordsSay(t *testing.T) {
	c, err := ApplyCheckout(Checkout{}, startEvent())
	require.NoError(t, err)
	assert.Equal(t, CheckoutRunning, c.Status)
	assert.Equal(t, "co-1", c.OrderID)
	assert.Equal(t, int64(1000), c.Total)

	c, err = ApplyCheckout(c, CheckoutEvent{CheckoutID: "co-1", Version: 2, At: checkoutT0, Step: StepReserve, Outcome: StepFailed,
		Detail: "out of stock: mug", OutOfStock: []string{"mug"}})
	require.NoError(t, err)
	assert.Equal(t, StepReserve, c.FailedStep)
	assert.Equal(t, []string{"mug"}, c.OutOfStock)
	assert.Equal(t, "out of stock: mug", c.Steps[0].Detail)

	a := runSaga(t, StepSucceeded, StepSucceeded)
	a2, err := ApplyCheckout(a, CheckoutEvent{CheckoutID: "co-1", Version: a.Version + 1, Step: StepAuthorize, Outcome: StepSucceeded, AuthorizationID: "auth-7"})
	require.NoError(t, err)
	assert.Equal(t, "auth-7", a2.AuthorizationID)
	assert.Len(t, a.Steps, 2, "the checkout applied to is not changed")
}

func TestResumeCheckoutGoesForwardOnlyPastTheAuthorisation(t *testing.T) {
	tests := []struct {
		name     string
		outcomes []StepOutcome
		fail     CheckoutStep
		ok       bool
	}{
		{"nothing reserved yet", nil, StepReserve, true},
		{"reserved", []StepOutcome{StepSucceeded}, StepCreateOrder, true},
		{"created: the authorisation may have been sent", []StepOutcome{StepSucceeded, StepSucceeded}, StepAuthorize, true},
		{"authorised: mark it paid", []StepOutcome{StepSucceeded, StepSucceeded, StepSucceeded}, 0, false},
		{"compensating already", []StepOutcome{StepFailed}, 0, false},
		{"finished", []StepOutcome{StepFailed, StepSucceeded}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fail, ok := ResumeCheckout(runSaga(t, tt.outcomes...))
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.fail, fail)
		})
	}
}

func TestCheckCheckoutRequest(t *testing.T) {
	good := CheckoutRequest{CustomerID: "cus-1", Currency: "EUR", Items: []Item{{SKU: "mug", Quantity: 1, UnitPrice: 100}}, PaymentToken: "tok_visa"}
	require.NoError(t, CheckCheckoutRequest(good))
	tests := []struct {
		name  string
		edit  func(*CheckoutRequest)
		field string
	}{
		{"no customer", func(r *CheckoutRequest) { r.CustomerID = "" }, FieldCustomerID},
		{"no items", func(r *CheckoutRequest) { r.Items = nil }, FieldItems},
		{"no currency", func(r *CheckoutRequest) { r.Currency = "" }, FieldCurrency},
		{"a bad quantity", func(r *CheckoutRequest) { r.Items[0].Quantity = 0 }, "items[0].quantity"},
		{"a SKU twice", func(r *CheckoutRequest) { r.Items = append(r.Items, r.Items[0]) }, "items[1].sku"},
		{"no token", func(r *CheckoutRequest) { r.PaymentToken = "" }, FieldPaymentToken},
		{"a token with a space", func(r *CheckoutRequest) { r.PaymentToken = "tok visa" }, FieldPaymentToken},
		{"a long token", func(r *CheckoutRequest) { r.PaymentToken = string(make([]byte, PaymentTokenLenMax+1)) }, FieldPaymentToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good
			r.Items = append([]Item(nil), good.Items...)
			tt.edit(&r)
			err := CheckCheckoutRequest(r)
			var ce *CheckoutError
			var ct *ContentsError
			switch {
			case errors.As(err, &ce):
				assert.Equal(t, tt.field, ce.Field)
				assert.ErrorIs(t, err, ErrInvalidCheckout)
			case errors.As(err, &ct):
				assert.Equal(t, tt.field, ct.Field)
			default:
				t.Fatalf("error %v names no field", err)
			}
		})
	}
}

func TestCheckoutStepAndOutcomeNamesRoundTrip(t *testing.T) {
	for s := StepReserve; s <= StepRelease; s++ {
		got, ok := ParseCheckoutStep(s.String())
		assert.True(t, ok)
		assert.Equal(t, s, got)
	}
	for o := StepSucceeded; o <= StepSkipped; o++ {
		got, ok := ParseStepOutcome(o.String())
		assert.True(t, ok)
		assert.Equal(t, o, got)
	}
	_, ok := ParseCheckoutStep("Reserve-Stock")
	assert.False(t, ok, "names are exact")
}

// TestCheckoutKey: a checkout's record key can be no order's nor SKU's.
func TestCheckoutKey(t *testing.T) {
	assert.Equal(t, "checkout:co-1", CheckoutKey("co-1"))
	assert.ErrorIs(t, ValidateID(CheckoutKey("co-1")), ErrInvalidID)
	assert.ErrorIs(t, ValidateSKU(CheckoutKey("co-1")), ErrInvalidInventory)
}
