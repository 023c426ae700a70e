package order

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// A checkout is a saga (DESIGN §10): reserve every item, create the order,
// authorise the payment, mark the order paid. Each step's outcome is a
// record in the log before the next step begins, so the checkout's records
// alone say where it stands: this file is the saga's state machine, pure
// like the order's. A step that fails turns the checkout to compensating:
// the steps attempted so far are undone in reverse order (void the
// authorisation, cancel the order, release the stock), each recorded in
// turn, until the checkout is compensated. A compensation is never
// recorded as failed: compensations are idempotent, and the orchestrator
// retries one until it is done.

// CheckoutStep is one step of the saga, forward or compensating. The zero
// value is the checkout's start.
type CheckoutStep uint8

const (
	_ CheckoutStep = iota
	StepReserve
	StepCreateOrder
	StepAuthorize
	StepPay
	StepVoid
	StepCancelOrder
	StepRelease
)

var stepNames = [...]string{
	StepReserve:     "reserve-stock",
	StepCreateOrder: "create-order",
	StepAuthorize:   "authorize-payment",
	StepPay:         "mark-paid",
	StepVoid:        "void-payment",
	StepCancelOrder: "cancel-order",
	StepRelease:     "release-stock",
}

func (s CheckoutStep) String() string { return enumName(stepNames[:], s, "CheckoutStep") }

// Valid reports whether s is a named step.
func (s CheckoutStep) Valid() bool { return s >= StepReserve && s <= StepRelease }

// ParseCheckoutStep reads a step's name as String writes it.
func ParseCheckoutStep(name string) (CheckoutStep, bool) {
	return parseEnum[CheckoutStep](stepNames[:], name)
}

// forwardSteps are the saga's steps in the order they run.
var forwardSteps = [...]CheckoutStep{StepReserve, StepCreateOrder, StepAuthorize, StepPay}

// compensationOf names the step that undoes a forward step; StepPay has
// none: it is the last step, and a pay that failed changed nothing.
func compensationOf(s CheckoutStep) CheckoutStep {
	switch s {
	case StepReserve:
		return StepRelease
	case StepCreateOrder:
		return StepCancelOrder
	case StepAuthorize:
		return StepVoid
	}
	return 0
}

// IsCompensation reports whether s undoes another step.
func (s CheckoutStep) IsCompensation() bool { return s >= StepVoid && s <= StepRelease }

// StepOutcome is what became of a step.
type StepOutcome uint8

const (
	_ StepOutcome = iota
	// StepSucceeded: the step's effect is done.
	StepSucceeded
	// StepFailed: a forward step did not happen, or may have happened in
	// part (a reservation of some items, an authorisation whose answer was
	// lost); it is compensated with the others.
	StepFailed
	// StepSkipped: a compensation had nothing to undo (an order the failed
	// create never made).
	StepSkipped
)

var outcomeNames = [...]string{StepSucceeded: "succeeded", StepFailed: "failed", StepSkipped: "skipped"}

func (o StepOutcome) String() string { return enumName(outcomeNames[:], o, "StepOutcome") }

// ParseStepOutcome reads an outcome's name as String writes it.
func ParseStepOutcome(name string) (StepOutcome, bool) {
	return parseEnum[StepOutcome](outcomeNames[:], name)
}

// CheckoutStatus is where a checkout stands.
type CheckoutStatus uint8

const (
	_ CheckoutStatus = iota
	CheckoutRunning
	CheckoutCompensating
	CheckoutCompleted
	CheckoutCompensated
)

var statusNames = [...]string{
	CheckoutRunning:      "running",
	CheckoutCompensating: "compensating",
	CheckoutCompleted:    "completed",
	CheckoutCompensated:  "compensated",
}

func (s CheckoutStatus) String() string { return enumName(statusNames[:], s, "CheckoutStatus") }

// enumName and parseEnum read the name tables of the small enums above,
// whose zero value is no name.
func enumName[T ~uint8](names []string, v T, kind string) string {
	if int(v) < len(names) && names[v] != "" {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", kind, uint8(v))
}

func parseEnum[T ~uint8](names []string, name string) (T, bool) {
	for i, n := range names {
		if n != "" && n == name {
			return T(i), true
		}
	}
	return 0, false
}

// Finished reports whether the saga has nothing left to do.
func (s CheckoutStatus) Finished() bool { return s == CheckoutCompleted || s == CheckoutCompensated }

// Bounds on a checkout's own fields (its items and customer are an order's,
// contents.go).
const (
	// PaymentTokenLenMax fits the tokens payment providers hand a browser
	// (tok_..., pm_..., a few dozen bytes) with room to spare.
	PaymentTokenLenMax = 255
	// StepDetailLenMax bounds what a step record says about itself (a
	// gateway's decline reason, the SKUs out of stock): kept forever in
	// the log, so cut, never refused.
	StepDetailLenMax = 1024
	// AuthorizationIDLenMax is the longest authorisation ID a gateway may
	// answer (actors.PaymentAuthorizationIDLenMax is this bound): the
	// record keeps it to void the authorisation.
	AuthorizationIDLenMax = 255
)

// CheckoutEvent is one record of a checkout: its start (version 1, Step
// zero), then one per step outcome.
type CheckoutEvent struct {
	EventID    string
	CheckoutID string
	Version    uint64
	At         time.Time

	Step    CheckoutStep
	Outcome StepOutcome
	// Detail says why a step failed, or what a step did.
	Detail string
	// AuthorizationID is the gateway's, on StepAuthorize succeeded.
	AuthorizationID string
	// OutOfStock names the SKUs a failed StepReserve lacked, sorted.
	OutOfStock []string

	// The start only: what is bought, by whom, and the order that will
	// hold it. The payment token is never recorded: the log is read by
	// other systems and kept forever. So a checkout found unfinished
	// after a restart cannot authorise any more; ResumeCheckout says what
	// becomes of it.
	OrderID        string
	CustomerID     string
	Currency       string
	Items          []Item
	Total          int64
	IdempotencyKey string
	RequestDigest  string
	Principal      string
	RequestID      string
}

// CheckoutStepRecord is one step as a checkout remembers it.
type CheckoutStepRecord struct {
	Step    CheckoutStep
	Outcome StepOutcome
	At      time.Time
	Detail  string
}

// Checkout is a saga's state as its records made it. The zero Checkout
// has not started.
type Checkout struct {
	ID        string
	OrderID   string
	Status    CheckoutStatus
	Version   uint64
	CreatedAt time.Time
	UpdatedAt time.Time

	CustomerID string
	Currency   string
	Items      []Item
	Total      int64

	IdempotencyKey string
	RequestDigest  string
	Principal      string

	AuthorizationID string
	// FailedStep is the forward step whose failure turned the checkout
	// to compensating; OutOfStock the SKUs it lacked, if it was the
	// reservation.
	FailedStep CheckoutStep
	OutOfStock []string
	Steps      []CheckoutStepRecord
}

// Exists reports whether the checkout has started.
func (c Checkout) Exists() bool { return c.Version > 0 }

// ErrInvalidCheckout matches every error about a checkout request that
// cannot start (a CheckoutError naming the field).
var ErrInvalidCheckout = errors.New("invalid checkout")

// CheckoutError names the member of a checkout request that is wrong.
type CheckoutError struct {
	Field  string
	Detail string
}

func (e *CheckoutError) Error() string { return e.Field + ": " + e.Detail }

func (e *CheckoutError) Is(target error) bool { return target == ErrInvalidCheckout }

// CheckoutRequest is what a client asks a checkout to buy.
type CheckoutRequest struct {
	CustomerID   string
	Currency     string
	Items        []Item
	PaymentToken string
}

// FieldPaymentToken is the request member that carries the token.
const FieldPaymentToken = "payment.token"

// CheckCheckoutRequest checks a checkout request: a customer, a currency,
// at least one item, each line within an order's bounds, one line per SKU
// (a basket names a SKU once, so that a reservation is one per SKU), and a
// payment token of visible ASCII.
func CheckCheckoutRequest(r CheckoutRequest) error {
	if r.CustomerID == "" {
		return &CheckoutError{Field: FieldCustomerID, Detail: "required"}
	}
	if len(r.Items) == 0 {
		return &CheckoutError{Field: FieldItems, Detail: "required: at least one item"}
	}
	if r.Currency == "" {
		return &CheckoutError{Field: FieldCurrency, Detail: "required"}
	}
	if err := CheckOrderContents(r.CustomerID, r.Currency, r.Items); err != nil {
		return err
	}
	seen := make(map[string]int, len(r.Items))
	for i, it := range r.Items {
		if j, dup := seen[it.SKU]; dup {
			return &CheckoutError{Field: ItemField(i, "sku"), Detail: fmt.Sprintf("%q is already items[%d]: one line per SKU", it.SKU, j)}
		}
		seen[it.SKU] = i
	}
	switch {
	case r.PaymentToken == "":
		return &CheckoutError{Field: FieldPaymentToken, Detail: "required"}
	case len(r.PaymentToken) > PaymentTokenLenMax:
		return &CheckoutError{Field: FieldPaymentToken, Detail: fmt.Sprintf("%d bytes, at most %d allowed", len(r.PaymentToken), PaymentTokenLenMax)}
	}
	for i := 0; i < len(r.PaymentToken); i++ {
		if c := r.PaymentToken[i]; c < 0x21 || c > 0x7e {
			return &CheckoutError{Field: FieldPaymentToken, Detail: fmt.Sprintf("character %q at byte %d (allowed: visible ASCII)", c, i)}
		}
	}
	return nil
}

// NextCheckoutStep says which step the saga runs next: the forward step
// after the last one that succeeded while it runs; while it compensates,
// the compensation of the latest attempted step not yet undone. ok is
// false once the checkout is finished (or has not started).
func NextCheckoutStep(c Checkout) (step CheckoutStep, ok bool) {
	switch c.Status {
	case CheckoutRunning:
		done := 0
		for _, r := range c.Steps {
			if r.Outcome == StepSucceeded && !r.Step.IsCompensation() {
				done++
			}
		}
		if done < len(forwardSteps) {
			return forwardSteps[done], true
		}
	case CheckoutCompensating:
		pending := pendingCompensations(c)
		if len(pending) > 0 {
			return pending[0], true
		}
	}
	return 0, false
}

// pendingCompensations lists, in the order they run, the compensations of
// every forward step attempted (succeeded, or failed and so perhaps done
// in part) that are not recorded yet.
func pendingCompensations(c Checkout) []CheckoutStep {
	var pending []CheckoutStep
	for i := len(c.Steps) - 1; i >= 0; i-- {
		r := c.Steps[i]
		if r.Step.IsCompensation() {
			continue
		}
		comp := compensationOf(r.Step)
		if comp != 0 && !slices.ContainsFunc(c.Steps, func(d CheckoutStepRecord) bool { return d.Step == comp }) {
			pending = append(pending, comp)
		}
	}
	return pending
}

// ApplyCheckout is the one rule by which a checkout record changes a
// checkout, at run time and at replay alike: a record applies only if it
// is the next version and records the step NextCheckoutStep names, with an
// outcome that step may have. Anything else is returned unchanged with an
// error matching ErrRecordDuplicate or ErrRecordFork, to be counted and
// skipped.
func ApplyCheckout(c Checkout, ev CheckoutEvent) (Checkout, error) {
	switch {
	case c.Exists() && ev.CheckoutID != c.ID:
		return c, fmt.Errorf("%w: checkout record for %q applied to %q", ErrRecordFork, ev.CheckoutID, c.ID)
	case ev.Version <= c.Version:
		return c, fmt.Errorf("%w: checkout %s version %d, it is at %d", ErrRecordDuplicate, ev.CheckoutID, ev.Version, c.Version)
	case ev.Version != c.Version+1:
		return c, fmt.Errorf("%w: checkout %s version %d after %d leaves a gap", ErrRecordFork, ev.CheckoutID, ev.Version, c.Version)
	}
	if ev.Version == 1 {
		if ev.Step != 0 || ev.Outcome != 0 || ev.OrderID == "" {
			return c, fmt.Errorf("%w: checkout %s starts with step %v, outcome %v, order %q", ErrRecordFork, ev.CheckoutID, ev.Step, ev.Outcome, ev.OrderID)
		}
		return Checkout{
			ID: ev.CheckoutID, OrderID: ev.OrderID, Status: CheckoutRunning, Version: 1,
			CreatedAt: ev.At, UpdatedAt: ev.At,
			CustomerID: ev.CustomerID, Currency: ev.Currency, Items: ev.Items, Total: ev.Total,
			IdempotencyKey: ev.IdempotencyKey, RequestDigest: ev.RequestDigest, Principal: ev.Principal,
		}, nil
	}
	next, ok := NextCheckoutStep(c)
	if !ok || ev.Step != next || !outcomeAllowed(ev.Step, ev.Outcome) {
		return c, fmt.Errorf("%w: checkout %s version %d records %v %v, the saga is %v at %v", ErrRecordFork, ev.CheckoutID, ev.Version, ev.Step, ev.Outcome, c.Status, next)
	}
	out := c
	out.Version, out.UpdatedAt = ev.Version, ev.At
	// A new slice each time: readers may hold the previous checkout.
	out.Steps = append(slices.Clip(c.Steps), CheckoutStepRecord{Step: ev.Step, Outcome: ev.Outcome, At: ev.At, Detail: ev.Detail})
	switch {
	case ev.Step == StepAuthorize && ev.Outcome == StepSucceeded:
		out.AuthorizationID = ev.AuthorizationID
	case ev.Outcome == StepFailed:
		out.Status, out.FailedStep, out.OutOfStock = CheckoutCompensating, ev.Step, ev.OutOfStock
	}
	switch {
	case out.Status == CheckoutRunning && ev.Step == StepPay:
		out.Status = CheckoutCompleted
	case out.Status == CheckoutCompensating && len(pendingCompensations(out)) == 0:
		out.Status = CheckoutCompensated
	}
	return out, nil
}

// outcomeAllowed: a forward step succeeds or fails; a compensation
// succeeds or finds nothing to undo, and is retried until it does one.
func outcomeAllowed(s CheckoutStep, o StepOutcome) bool {
	if s.IsCompensation() {
		return o == StepSucceeded || o == StepSkipped
	}
	return o == StepSucceeded || o == StepFailed
}

// ResumeDetail is the Detail of the failure ResumeCheckout records.
const ResumeDetail = "interrupted before the payment was authorised (the token is not kept)"

// ResumeCheckout says what becomes of a checkout found unfinished after a
// restart or a takeover, when its payment token is gone: forward when it
// can (the payment was authorised: mark the order paid), compensation
// otherwise (a step at or before the authorisation fails, and what was
// attempted is undone: an authorisation whose answer was lost is voided
// by its key). ok is false when the checkout just goes on as it is: it
// compensates already, or may go forward.
func ResumeCheckout(c Checkout) (fail CheckoutStep, ok bool) {
	next, pending := NextCheckoutStep(c)
	if !pending || c.Status != CheckoutRunning || next == StepPay {
		return 0, false
	}
	return next, true
}

// CheckoutKeyPrefix starts the record key of every checkout event in the
// audit topic: "checkout:" + checkout ID. A checkout ID is an order ID
// (ValidateID), and ':' is not an order-ID character, so no order's key,
// and no SKU's, can be a checkout's.
const CheckoutKeyPrefix = "checkout:"

// CheckoutKey is the record key (and the partitioning key) of a checkout.
func CheckoutKey(checkoutID string) string { return CheckoutKeyPrefix + checkoutID }
