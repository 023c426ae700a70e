package actors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/orderd/orderd/order"
)

// PaymentGateway authorises and voids card payments for the checkout saga
// (issue 16). Two implementations: SimulatedGateway (payment_sim.go, the
// default) and http/paymentgw (a JSON-over-HTTP bridge to a real provider).
// docs/payment-gateway.md describes both and the HTTP protocol.
//
// The contract, which every implementation keeps:
//
//   - Idempotent by Key. A call repeated with the Key of an earlier call (and
//     the same arguments) has no second effect and gives the first call's
//     result: the same AuthorizationID, the same decline. A saga resuming
//     after a crash repeats the step it was in, so it derives each Key from
//     the checkout and the step ("<checkout>/authorize", "<checkout>/void")
//     and never invents a new one for a retry. A Key reused with different
//     arguments is refused (ErrPaymentRejected) where the gateway can tell.
//     Gateways remember keys for a bounded time or number; a repeat after
//     that may act again (SimulatedGateway: simulatedKeysMax).
//   - Every error matches exactly one of ErrPaymentDeclined,
//     ErrPaymentRejected, ErrPaymentUnavailable and ErrPaymentOutcomeUnknown
//     (errors.Is), and says what the caller must assume:
//     the first three mean the call had no effect; the fourth that it may
//     have had one. Context errors are wrapped in one of them (a call whose
//     context ended before anything was sent is Unavailable; after, Unknown).
//   - After ErrPaymentOutcomeUnknown from Authorize the money may be held:
//     the caller either repeats Authorize with the same Key to learn the
//     outcome, or voids by AuthorizationKey (the Key of that Authorize), which
//     also stops a still-travelling authorisation with that key from taking
//     effect later.
//   - Void of an authorisation that is unknown, already voided or was never
//     made (declined) succeeds: after a nil error nothing is held.
//   - A call ends by its context's deadline or the gateway's own per-call
//     timeout, whichever comes first.
//   - Safe for concurrent use. Calls with different keys are independent;
//     concurrent calls with one key get one effect.
type PaymentGateway interface {
	// Authorize holds Amount of Currency on the payment method Token.
	Authorize(ctx context.Context, a PaymentAuthorization) (PaymentResult, error)
	// Void releases an authorisation, named by AuthorizationID when the
	// caller learnt it and by AuthorizationKey otherwise.
	Void(ctx context.Context, v PaymentVoid) error
}

// PaymentAuthorization is one Authorize request.
type PaymentAuthorization struct {
	Key        string // idempotency key: 1 to PaymentKeyLenMax visible ASCII characters
	Token      string // the payment method, as the client's payment form produced it
	Amount     int64  // minor units (cents for EUR), > 0
	Currency   string // ISO 4217, e.g. "EUR"
	OrderID    string
	CustomerID string // optional
}

// PaymentResult is a successful authorisation.
type PaymentResult struct {
	AuthorizationID string // the gateway's; 1 to PaymentAuthorizationIDLenMax visible ASCII characters
}

// PaymentVoid is one Void request. At least one of AuthorizationID and
// AuthorizationKey is set; the ID wins when both are.
type PaymentVoid struct {
	Key              string // idempotency key of the void itself
	AuthorizationID  string // from PaymentResult, when Authorize answered
	AuthorizationKey string // the Key of the Authorize call, always known to a saga
	OrderID          string
}

// Limits of the strings a gateway is given or answers. Keys follow orderd's
// own Idempotency-Key header (1-255 visible ASCII bytes), so that an HTTP
// bridge can send them as a header; tokens and IDs fit any provider's.
const (
	PaymentKeyLenMax             = 255
	PaymentTokenLenMax           = order.PaymentTokenLenMax    // what a checkout request accepts
	PaymentAuthorizationIDLenMax = order.AuthorizationIDLenMax // what a checkout record holds
)

// The per-call timeout of a gateway (--payment-gateway-timeout) and its
// bounds. Below the minimum ordinary network jitter would make calls end
// with an unknown outcome (each one costs a void); above the maximum a
// stuck gateway holds a checkout's step for longer than any client waits.
const (
	PaymentCallTimeoutDefault = 10 * time.Second
	PaymentCallTimeoutMin     = 100 * time.Millisecond
	PaymentCallTimeoutMax     = 2 * time.Minute
)

var (
	// ErrPaymentDeclined: the gateway said no (a *DeclinedError says why).
	// Nothing is held; the saga compensates.
	ErrPaymentDeclined = errors.New("payment declined")
	// ErrPaymentRejected: the request itself was refused, by the gateway
	// (a 4xx other than a decline: bad credentials, a malformed request, a
	// key reused with other arguments) or before it was sent (invalid
	// arguments). Nothing was done, and repeating the call will not help:
	// a configuration error or a bug, for an operator to look at.
	ErrPaymentRejected = errors.New("payment request rejected")
	// ErrPaymentUnavailable: the gateway could not be asked, or said it did
	// nothing and may do it later (connection refused, 503, 429). Nothing was
	// done; the call may be repeated with the same key.
	ErrPaymentUnavailable = errors.New("payment gateway unavailable")
	// ErrPaymentOutcomeUnknown: the request may have been carried out (a
	// timeout or a broken connection after it was sent, a garbled answer).
	// The caller must assume it was: see the contract on PaymentGateway.
	ErrPaymentOutcomeUnknown = errors.New("payment outcome unknown")
)

// DeclinedError is a decline with the gateway's words for it. It matches
// ErrPaymentDeclined.
type DeclinedError struct {
	Code   string // machine-readable, e.g. "card_declined"; may be empty
	Reason string // for people; may be empty
}

func (e *DeclinedError) Error() string {
	switch {
	case e.Code == "" && e.Reason == "":
		return ErrPaymentDeclined.Error()
	case e.Code == "":
		return fmt.Sprintf("%v: %s", ErrPaymentDeclined, e.Reason)
	case e.Reason == "":
		return fmt.Sprintf("%v (%s)", ErrPaymentDeclined, e.Code)
	}
	return fmt.Sprintf("%v: %s (%s)", ErrPaymentDeclined, e.Reason, e.Code)
}

// Is makes errors.Is(err, ErrPaymentDeclined) true.
func (e *DeclinedError) Is(target error) bool { return target == ErrPaymentDeclined }

// Validate checks an authorisation before it is sent; a failure matches
// ErrPaymentRejected. Every gateway calls it, so the rules are the same.
func (a PaymentAuthorization) Validate() error {
	var errs []error
	if err := checkPaymentString("key", a.Key, PaymentKeyLenMax); err != nil {
		errs = append(errs, err)
	}
	if err := checkPaymentString("token", a.Token, PaymentTokenLenMax); err != nil {
		errs = append(errs, err)
	}
	if a.Amount <= 0 {
		errs = append(errs, fmt.Errorf("amount %d: must be positive (minor units)", a.Amount))
	}
	if err := order.CheckCurrency(a.Currency); err != nil {
		errs = append(errs, err)
	}
	if err := order.ValidateID(a.OrderID); err != nil {
		errs = append(errs, err)
	}
	if a.CustomerID != "" {
		if err := order.CheckCustomerID(a.CustomerID); err != nil {
			errs = append(errs, err)
		}
	}
	return rejected("authorisation", errs)
}

// Validate checks a void before it is sent; a failure matches
// ErrPaymentRejected.
func (v PaymentVoid) Validate() error {
	var errs []error
	if err := checkPaymentString("key", v.Key, PaymentKeyLenMax); err != nil {
		errs = append(errs, err)
	}
	switch {
	case v.AuthorizationID != "":
		if err := CheckAuthorizationID(v.AuthorizationID); err != nil {
			errs = append(errs, err)
		}
	case v.AuthorizationKey != "":
		if err := checkPaymentString("authorization key", v.AuthorizationKey, PaymentKeyLenMax); err != nil {
			errs = append(errs, err)
		}
	default:
		errs = append(errs, errors.New("neither an authorization ID nor an authorization key"))
	}
	if err := order.ValidateID(v.OrderID); err != nil {
		errs = append(errs, err)
	}
	return rejected("void", errs)
}

func rejected(what string, errs []error) error {
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: invalid %s: %w", ErrPaymentRejected, what, err)
	}
	return nil
}

// CheckAuthorizationID accepts what a gateway may answer as an
// authorisation's ID (an HTTP bridge's answer is checked with it).
func CheckAuthorizationID(id string) error {
	return checkPaymentString("authorization ID", id, PaymentAuthorizationIDLenMax)
}

// checkPaymentString accepts 1 to max visible ASCII characters: what can
// travel in an HTTP header and a URL path segment (escaped) unchanged.
func checkPaymentString(name, s string, max int) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("%s: %d bytes, want 1 to %d", name, len(s), max)
	}
	if !visibleASCII(s) {
		return fmt.Errorf("%s: only visible ASCII characters are allowed", name)
	}
	return nil
}

// visibleASCII reports whether s holds only the bytes 0x21-0x7e.
func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
