package actors

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/orderd/orderd/order"
)

// The checkout saga's orchestrator (DESIGN §10; the saga's rules are
// order/checkout.go). A checkout runs on one goroutine of its own, which
// performs a step, records its outcome in the journal, and only then goes
// on to the next: after a crash its records say exactly which steps may
// have happened, and Resume finishes it, forward when it can, compensating
// otherwise. Every effect is idempotent through a key derived from the
// checkout and the step, so a step performed twice (before and after a
// crash) has its effect once.

// CheckoutJournal records a checkout's events. Append has order.Journal's
// contract: nil only once the event is durable; errors match
// order.ErrJournalUnavailable (not written) or anything else (perhaps
// written). Load returns a checkout's events in log order, settling unknown
// outcomes like order.Journal.Load.
type CheckoutJournal interface {
	AppendCheckout(ctx context.Context, ev order.CheckoutEvent) error
	LoadCheckout(ctx context.Context, checkoutID string) ([]order.CheckoutEvent, error)
}

// StockReservations is what the saga needs of inventory: a reservation per
// SKU, named by the order that will hold it. Both are idempotent by
// (sku, order): reserving again what the order holds, or releasing what it
// does not hold, changes nothing and succeeds. Reserve fails with an error
// matching order.ErrOutOfStock when the SKU has too little available.
type StockReservations interface {
	Reserve(ctx context.Context, sku, orderID string, quantity int64) error
	Release(ctx context.Context, sku, orderID string) error
}

// Bounds and pacing of the sagas.
const (
	// CheckoutsRunningMax bounds the sagas under way at once (each holds
	// a goroutine and its payment token): beyond it a new checkout is
	// refused with ErrBusy.
	CheckoutsRunningMax = 10_000
	// checkoutFinishedKept bounds the finished checkouts kept in memory
	// for GET; older ones are read from the journal again.
	checkoutFinishedKept = 10_000
	// checkoutStepPatience is how long a forward step is retried while it
	// fails for a passing reason (journal down, busy order, gateway
	// unavailable) before it counts as failed and the checkout
	// compensates. Compensations are retried until they are done.
	checkoutStepPatience = 20 * time.Second
	// checkoutRetryMin and checkoutRetryMax space those retries, doubling.
	checkoutRetryMin = 50 * time.Millisecond
	checkoutRetryMax = 5 * time.Second
	// checkoutDetailCut bounds what a step record says (a gateway's
	// decline reason, an error); checkoutReasonLenMax the reason of the
	// cancellation that compensates a checkout, as the HTTP API bounds a
	// client's reasons.
	checkoutDetailCut    = order.StepDetailLenMax
	checkoutReasonLenMax = 1024
)

// ErrCheckoutNotFound: no checkout has this ID.
var ErrCheckoutNotFound = errors.New("checkout not found")

// ErrCheckoutExists: a different checkout has this ID (a retry of the same
// request is not an error: it gets the checkout).
var ErrCheckoutExists = errors.New("checkout already exists")

// CheckoutStart is one request to start a checkout.
type CheckoutStart struct {
	ID             string
	Request        order.CheckoutRequest
	IdempotencyKey string
	Principal      string
	RequestID      string
}

// CheckoutConfig wires the orchestrator.
type CheckoutConfig struct {
	Journal  CheckoutJournal
	Orders   Service
	Stock    StockReservations
	Payments PaymentGateway
	// PaymentTimeout bounds one call to the gateway.
	PaymentTimeout time.Duration
	Now            func() time.Time
	NewEventID     func() string
	Logger         *slog.Logger
	// Owns reports whether this node drives the checkout (in a cluster,
	// whether it serves the checkout's partition) and the partition's
	// epoch here: how many times this node has started to serve it. A saga
	// stops between attempts when its partition moved away, or moved away
	// and came back (another node may have moved the checkout on
	// meanwhile): then the owner resumes it from the log. nil: always,
	// epoch 0.
	Owns func(checkoutID string) (epoch uint64, ok bool)
}

// Checkouts runs checkout sagas.
type Checkouts struct {
	cfg    CheckoutConfig
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	running  map[string]*checkoutRun
	finished map[string]order.Checkout
	// finishedOrder is the IDs of finished in the order they finished, to
	// drop the oldest beyond checkoutFinishedKept.
	finishedOrder []string
	// completed and compensated count the sagas this orchestrator ended.
	completed, compensated uint64
}

// CheckoutCounts is what an orchestrator has done since it started, for
// metrics.
type CheckoutCounts struct {
	Running                int
	Completed, Compensated uint64
}

// Counts returns the sagas under way and those ended since the start.
func (s *Checkouts) Counts() CheckoutCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return CheckoutCounts{Running: len(s.running), Completed: s.completed, Compensated: s.compensated}
}

// checkoutRun is one saga under way; its goroutine alone writes state.
type checkoutRun struct {
	mu    sync.Mutex
	state order.Checkout
	done  chan struct{}
	// epoch is the partition's epoch (CheckoutConfig.Owns) the run drives
	// the checkout in; only its goroutine reads and writes it.
	epoch uint64
}

func (r *checkoutRun) snapshot() order.Checkout {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

func (r *checkoutRun) set(c order.Checkout) {
	r.mu.Lock()
	r.state = c
	r.mu.Unlock()
}

// NewCheckouts returns an orchestrator; Close stops its sagas where they
// are (Resume finishes them at the next start).
func NewCheckouts(cfg CheckoutConfig) *Checkouts {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewEventID == nil {
		cfg.NewEventID = func() string {
			var entropy [order.IDEntropyLen]byte
			_, _ = rand.Read(entropy[:]) // crypto/rand.Read never fails (Go 1.24+)
			return order.NewID(time.Now(), entropy)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Owns == nil {
		cfg.Owns = func(string) (uint64, bool) { return 0, true }
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Checkouts{cfg: cfg, ctx: ctx, cancel: cancel,
		running: make(map[string]*checkoutRun), finished: make(map[string]order.Checkout)}
}

// Close stops every saga after its current step and waits for them.
func (s *Checkouts) Close() {
	s.cancel()
	s.wg.Wait()
}

// Start begins a checkout and returns it as it is once started (version
// 1, running). A checkout with this ID that exists already is returned if
// it was started by the same request (same principal, key and what it
// buys), else the error matches ErrCheckoutExists. Errors of the journal
// are returned as they are: nothing was started.
func (s *Checkouts) Start(ctx context.Context, st CheckoutStart) (order.Checkout, error) {
	if err := order.CheckCheckoutRequest(st.Request); err != nil {
		return order.Checkout{}, err
	}
	digest := checkoutDigest(st)
	existing, err := s.Get(ctx, st.ID)
	switch {
	case err == nil:
		if existing.RequestDigest != digest || existing.Principal != st.Principal {
			return order.Checkout{}, fmt.Errorf("%w: %s", ErrCheckoutExists, st.ID)
		}
		return existing, nil
	case !errors.Is(err, ErrCheckoutNotFound):
		return order.Checkout{}, err
	}
	s.mu.Lock()
	if len(s.running) >= CheckoutsRunningMax {
		s.mu.Unlock()
		return order.Checkout{}, fmt.Errorf("%w: %d checkouts under way", ErrBusy, CheckoutsRunningMax)
	}
	if _, dup := s.running[st.ID]; dup {
		s.mu.Unlock()
		return order.Checkout{}, fmt.Errorf("%w: %s is starting", ErrCheckoutExists, st.ID)
	}
	run := &checkoutRun{done: make(chan struct{})}
	s.running[st.ID] = run
	s.mu.Unlock()

	total, err := order.Total(st.Request.Items)
	if err != nil {
		s.forget(st.ID)
		return order.Checkout{}, err
	}
	ev := order.CheckoutEvent{
		EventID: s.cfg.NewEventID(), CheckoutID: st.ID, Version: 1, At: s.cfg.Now().UTC(),
		OrderID: st.ID, CustomerID: st.Request.CustomerID, Currency: st.Request.Currency,
		Items: st.Request.Items, Total: total, IdempotencyKey: st.IdempotencyKey,
		RequestDigest: digest, Principal: st.Principal, RequestID: st.RequestID,
	}
	c, err := order.ApplyCheckout(order.Checkout{}, ev)
	if err == nil {
		err = s.cfg.Journal.AppendCheckout(ctx, ev)
	}
	if err != nil {
		// Perhaps written: a retry finds it in the journal, and Resume
		// (without the token) compensates it at the next start.
		s.forget(st.ID)
		return order.Checkout{}, err
	}
	run.set(c)
	s.wg.Add(1)
	go s.run(run, st.Request.PaymentToken)
	return c, nil
}

// checkoutDigest tells a retry of a checkout from another request with the
// same ID: what it buys and from whom, not how the JSON was laid out. The
// token is left out: a client retrying with a fresh token is the same
// checkout.
func checkoutDigest(st CheckoutStart) string {
	r := st.Request
	cmd := order.Command{Kind: order.CommandCreate, OrderID: st.ID, Principal: st.Principal,
		IdempotencyKey: st.IdempotencyKey, CustomerID: r.CustomerID, Currency: r.Currency, Items: r.Items}
	return order.RequestDigest(cmd)
}

func (s *Checkouts) forget(id string) {
	s.mu.Lock()
	delete(s.running, id)
	s.mu.Unlock()
}

// Get returns a checkout as it stands.
func (s *Checkouts) Get(ctx context.Context, id string) (order.Checkout, error) {
	s.mu.Lock()
	run, ok := s.running[id]
	fin, finOK := s.finished[id]
	s.mu.Unlock()
	switch {
	case ok:
		if c := run.snapshot(); c.Exists() {
			return c, nil
		}
		return order.Checkout{}, fmt.Errorf("%w: %s", ErrCheckoutNotFound, id)
	case finOK:
		return fin, nil
	}
	c, err := s.load(ctx, id)
	if err != nil {
		return order.Checkout{}, err
	}
	if !c.Exists() {
		return order.Checkout{}, fmt.Errorf("%w: %s", ErrCheckoutNotFound, id)
	}
	return c, nil
}

// Wait returns the checkout once it is finished, or as it stands when ctx
// ends first (a nil error either way, unless it cannot be read).
func (s *Checkouts) Wait(ctx context.Context, id string) (order.Checkout, error) {
	s.mu.Lock()
	run, ok := s.running[id]
	s.mu.Unlock()
	if ok {
		select {
		case <-run.done:
		case <-ctx.Done():
			return run.snapshot(), nil
		}
	}
	return s.Get(context.WithoutCancel(ctx), id)
}

// load folds a checkout's records with the one apply rule.
func (s *Checkouts) load(ctx context.Context, id string) (order.Checkout, error) {
	evs, err := s.cfg.Journal.LoadCheckout(ctx, id)
	if err != nil {
		return order.Checkout{}, err
	}
	var c order.Checkout
	for _, ev := range evs {
		if next, err := order.ApplyCheckout(c, ev); err == nil {
			c = next
		}
	}
	return c, nil
}

// Resume finishes a checkout found unfinished (after a restart, or on the
// node that took its partition over): it has no payment token any more,
// so a checkout that had not been authorised compensates
// (order.ResumeCheckout), one that had goes forward.
func (s *Checkouts) Resume(ctx context.Context, id string) error {
	c, err := s.load(ctx, id)
	if err != nil {
		return err
	}
	if !c.Exists() || c.Status.Finished() {
		return nil
	}
	s.mu.Lock()
	if _, dup := s.running[id]; dup {
		s.mu.Unlock()
		return nil
	}
	run := &checkoutRun{state: c, done: make(chan struct{})}
	s.running[id] = run
	s.mu.Unlock()
	s.wg.Add(1)
	go s.run(run, "")
	return nil
}

// run drives one saga to its end, until Close, or until this node no
// longer drives it.
func (s *Checkouts) run(run *checkoutRun, token string) {
	defer s.wg.Done()
	c := run.snapshot()
	run.epoch, _ = s.cfg.Owns(c.ID)
	for {
		// Without the token a resumed checkout that may not go forward
		// fails the step it is at (once: then it compensates).
		if step, fail := order.ResumeCheckout(c); fail && token == "" && s.driving(run, c.ID) {
			c = s.record(run, c, order.CheckoutEvent{Step: step, Outcome: order.StepFailed, Detail: order.ResumeDetail})
		}
		var stopped bool
		c, stopped = s.drive(run, c, token)
		if s.end(run, c, stopped) {
			return
		}
		// Driven here again already: the partition was taken over here
		// again while this run stopped, and the takeover's Resume found
		// the run and left the checkout to it. Go on from what the log
		// holds, in the new epoch: another node may have moved it on
		// meanwhile.
		run.epoch, _ = s.cfg.Owns(c.ID)
		if back, err := s.load(s.ctx, c.ID); err == nil && back.Version > c.Version {
			c = back
			run.set(c)
		}
	}
}

// drive performs and records steps until the checkout is finished
// (stopped false) or this orchestrator stops driving it (stopped true).
func (s *Checkouts) drive(run *checkoutRun, c order.Checkout, token string) (order.Checkout, bool) {
	for s.driving(run, c.ID) {
		step, ok := order.NextCheckoutStep(c)
		if !ok {
			return c, false
		}
		ev := s.perform(run, c, step, token)
		// No outcome: perform stopped mid-step because this node stopped
		// driving the checkout, which it may drive again by now; a
		// record without an outcome is refused by ApplyCheckout (record
		// panicked on it). Whoever drives it next repeats the step, by
		// its key.
		if ev.Outcome == 0 || !s.driving(run, c.ID) {
			return c, true
		}
		c = s.record(run, c, ev)
	}
	return c, true
}

// end ends the run, unless it stopped early and this orchestrator drives
// the checkout again already. Under s.mu, as Resume's look for a run:
// a Resume either finds the run, which then goes on, or finds none and
// starts one; a checkout is never left with neither.
func (s *Checkouts) end(run *checkoutRun, c order.Checkout, stopped bool) bool {
	s.mu.Lock()
	if _, owned := s.cfg.Owns(c.ID); stopped && !c.Status.Finished() && s.ctx.Err() == nil && owned {
		s.mu.Unlock()
		return false
	}
	delete(s.running, c.ID)
	if c.Status.Finished() {
		s.keepFinished(c)
	}
	s.mu.Unlock()
	close(run.done)
	return true
}

// driving reports whether run still drives the checkout: the orchestrator
// is not closing, and (in a cluster) this node has served the checkout's
// partition without a break since run's epoch began.
func (s *Checkouts) driving(run *checkoutRun, id string) bool {
	epoch, ok := s.cfg.Owns(id)
	return s.ctx.Err() == nil && ok && epoch == run.epoch
}

func (s *Checkouts) keepFinished(c order.Checkout) {
	if c.Status == order.CheckoutCompleted {
		s.completed++
	} else {
		s.compensated++
	}
	s.finished[c.ID] = c
	s.finishedOrder = append(s.finishedOrder, c.ID)
	if len(s.finishedOrder) > checkoutFinishedKept {
		delete(s.finished, s.finishedOrder[0])
		s.finishedOrder = slices.Delete(s.finishedOrder, 0, 1)
	}
}

// record appends a step's outcome and applies it, retrying while the
// journal fails. After an append whose outcome is unknown the checkout is
// read back from the journal: whatever the log holds is the truth.
func (s *Checkouts) record(run *checkoutRun, c order.Checkout, ev order.CheckoutEvent) order.Checkout {
	ev.CheckoutID, ev.Version, ev.At = c.ID, c.Version+1, s.cfg.Now().UTC()
	// A detail is an error's or a gateway's text: the record holds valid
	// UTF-8 only, and a record refused for it would be retried forever.
	ev.Detail = cut(strings.ToValidUTF8(ev.Detail, "\uFFFD"), checkoutDetailCut)
	next, err := order.ApplyCheckout(c, ev)
	if err != nil {
		// A bug: perform returned a step out of turn.
		panic(fmt.Sprintf("actors: checkout %s: %v", c.ID, err))
	}
	for wait := checkoutRetryMin; ; wait = min(2*wait, checkoutRetryMax) {
		ev.EventID = s.cfg.NewEventID()
		err := s.cfg.Journal.AppendCheckout(s.ctx, ev)
		if err == nil {
			run.set(next)
			return next
		}
		if !s.driving(run, c.ID) {
			return c
		}
		if !errors.Is(err, order.ErrJournalUnavailable) {
			if back, lerr := s.load(s.ctx, c.ID); lerr == nil && back.Version > c.Version {
				run.set(back)
				return back // it landed (or another record did)
			}
		}
		s.cfg.Logger.Warn("checkout: recording a step failed; retrying", "checkout", c.ID, "step", ev.Step.String(), "err", err)
		if !s.sleep(wait) {
			return c
		}
	}
}

// sleep waits d unless the orchestrator closes first.
func (s *Checkouts) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// stepKey is the idempotency key of a step's effect.
func stepKey(c order.Checkout, step order.CheckoutStep) string {
	return "checkout:" + c.ID + ":" + step.String()
}

// perform carries a step out and returns the record of its outcome.
// Forward steps are retried for checkoutStepPatience while they fail for a
// passing reason; compensations until they are done.
func (s *Checkouts) perform(run *checkoutRun, c order.Checkout, step order.CheckoutStep, token string) order.CheckoutEvent {
	deadline := s.cfg.Now().Add(checkoutStepPatience)
	for wait := checkoutRetryMin; ; wait = min(2*wait, checkoutRetryMax) {
		ev, passing := s.attempt(c, step, token)
		if passing == nil {
			return ev
		}
		if !step.IsCompensation() && s.cfg.Now().After(deadline) {
			return order.CheckoutEvent{Step: step, Outcome: order.StepFailed, Detail: "gave up: " + passing.Error()}
		}
		s.cfg.Logger.Warn("checkout: a step failed for a passing reason; retrying", "checkout", c.ID, "step", step.String(), "err", passing)
		if !s.sleep(wait) || !s.driving(run, c.ID) {
			return order.CheckoutEvent{Step: step}
		}
	}
}

func succeeded(step order.CheckoutStep, detail string) order.CheckoutEvent {
	return order.CheckoutEvent{Step: step, Outcome: order.StepSucceeded, Detail: detail}
}

func failed(step order.CheckoutStep, detail string) order.CheckoutEvent {
	return order.CheckoutEvent{Step: step, Outcome: order.StepFailed, Detail: detail}
}

// attempt tries a step once: the record of its outcome, or a passing error
// to retry on.
func (s *Checkouts) attempt(c order.Checkout, step order.CheckoutStep, token string) (order.CheckoutEvent, error) {
	ctx := s.ctx
	switch step {
	case order.StepReserve:
		return s.reserve(ctx, c)
	case order.StepCreateOrder:
		return s.createOrder(ctx, c)
	case order.StepAuthorize:
		return s.authorize(ctx, c, token)
	case order.StepPay:
		return s.pay(ctx, c)
	case order.StepVoid:
		return s.void(ctx, c)
	case order.StepCancelOrder:
		return s.cancelOrder(ctx, c)
	case order.StepRelease:
		return s.release(ctx, c)
	}
	panic(fmt.Sprintf("actors: checkout step %v", step))
}

// reserve reserves every item, and names every SKU that lacks stock: the
// client learns all of them at once.
func (s *Checkouts) reserve(ctx context.Context, c order.Checkout) (order.CheckoutEvent, error) {
	var short []string
	for _, it := range c.Items {
		err := s.cfg.Stock.Reserve(ctx, it.SKU, c.OrderID, it.Quantity)
		switch {
		case err == nil:
		case errors.Is(err, order.ErrOutOfStock):
			short = append(short, it.SKU)
		default:
			return order.CheckoutEvent{}, err
		}
	}
	if len(short) > 0 {
		slices.Sort(short)
		ev := failed(order.StepReserve, "out of stock: "+strings.Join(short, ", "))
		ev.OutOfStock = short
		return ev, nil
	}
	return succeeded(order.StepReserve, fmt.Sprintf("%d SKUs reserved", len(c.Items))), nil
}

// passing reports whether a command's error may go away by itself.
func passing(err error) bool {
	return errors.Is(err, ErrBusy) || errors.Is(err, ErrNotReady) ||
		errors.Is(err, order.ErrJournalUnavailable) || errors.Is(err, order.ErrOutcomeUnknown) ||
		errors.Is(err, context.DeadlineExceeded)
}

func (s *Checkouts) createOrder(ctx context.Context, c order.Checkout) (order.CheckoutEvent, error) {
	_, err := s.cfg.Orders.Execute(ctx, order.Command{
		Kind: order.CommandCreate, OrderID: c.OrderID, IdempotencyKey: stepKey(c, order.StepCreateOrder),
		Principal: c.Principal, Reason: "checkout " + c.ID,
		CustomerID: c.CustomerID, Currency: c.Currency, Items: c.Items,
	})
	switch {
	case err == nil:
		return succeeded(order.StepCreateOrder, "order "+c.OrderID), nil
	case passing(err):
		return order.CheckoutEvent{}, err
	}
	return failed(order.StepCreateOrder, err.Error()), nil
}

func (s *Checkouts) authorize(ctx context.Context, c order.Checkout, token string) (order.CheckoutEvent, error) {
	if c.Total == 0 {
		return succeeded(order.StepAuthorize, "nothing to pay"), nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PaymentTimeout)
	defer cancel()
	res, err := s.cfg.Payments.Authorize(ctx, PaymentAuthorization{
		Key: stepKey(c, order.StepAuthorize), Token: token, Amount: c.Total, Currency: c.Currency,
		OrderID: c.OrderID, CustomerID: c.CustomerID,
	})
	switch {
	case err == nil:
		ev := succeeded(order.StepAuthorize, "authorization "+res.AuthorizationID)
		ev.AuthorizationID = res.AuthorizationID
		return ev, nil
	case errors.Is(err, ErrPaymentUnavailable):
		return order.CheckoutEvent{}, err
	case errors.Is(err, ErrPaymentDeclined), errors.Is(err, ErrPaymentRejected):
		return failed(order.StepAuthorize, err.Error()), nil
	}
	// Unknown: perhaps authorised. The void that compensates it names the
	// authorisation by its key.
	detail := err.Error()
	if !errors.Is(err, ErrPaymentOutcomeUnknown) { // else it says so already
		detail = ErrPaymentOutcomeUnknown.Error() + ": " + detail
	}
	return failed(order.StepAuthorize, detail), nil
}

func (s *Checkouts) pay(ctx context.Context, c order.Checkout) (order.CheckoutEvent, error) {
	_, err := s.cfg.Orders.Execute(ctx, order.Command{
		Kind: order.CommandTransition, OrderID: c.OrderID, To: order.Paid,
		IdempotencyKey: stepKey(c, order.StepPay), Principal: c.Principal, Reason: "checkout " + c.ID,
	})
	switch {
	case err == nil:
		return succeeded(order.StepPay, ""), nil
	case passing(err):
		return order.CheckoutEvent{}, err
	}
	return failed(order.StepPay, err.Error()), nil
}

func (s *Checkouts) void(ctx context.Context, c order.Checkout) (order.CheckoutEvent, error) {
	if c.Total == 0 {
		return order.CheckoutEvent{Step: order.StepVoid, Outcome: order.StepSkipped, Detail: "nothing was authorised"}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PaymentTimeout)
	defer cancel()
	err := s.cfg.Payments.Void(ctx, PaymentVoid{
		Key: stepKey(c, order.StepVoid), AuthorizationID: c.AuthorizationID,
		AuthorizationKey: stepKey(c, order.StepAuthorize), OrderID: c.OrderID,
	})
	if err != nil {
		return order.CheckoutEvent{}, err
	}
	return succeeded(order.StepVoid, ""), nil
}

// cancelOrder cancels the order the saga created; an order it did not
// create (the create failed, or found another's order under the ID) is
// left alone.
func (s *Checkouts) cancelOrder(ctx context.Context, c order.Checkout) (order.CheckoutEvent, error) {
	hist, err := s.cfg.Orders.History(ctx, c.OrderID)
	switch {
	case errors.Is(err, order.ErrOrderNotFound):
		return order.CheckoutEvent{Step: order.StepCancelOrder, Outcome: order.StepSkipped, Detail: "no order was created"}, nil
	case err != nil:
		return order.CheckoutEvent{}, err
	case len(hist) == 0 || hist[0].IdempotencyKey != stepKey(c, order.StepCreateOrder):
		return order.CheckoutEvent{Step: order.StepCancelOrder, Outcome: order.StepSkipped, Detail: "the order under this ID is not the checkout's"}, nil
	}
	reason := "checkout-failed: " + c.Steps[failedIndex(c)].Detail
	_, err = s.cfg.Orders.Execute(ctx, order.Command{
		Kind: order.CommandTransition, OrderID: c.OrderID, To: order.Cancelled,
		IdempotencyKey: stepKey(c, order.StepCancelOrder), Principal: c.Principal, Reason: cut(reason, checkoutReasonLenMax),
	})
	var inv *order.InvalidTransitionError
	switch {
	case err == nil:
		return succeeded(order.StepCancelOrder, ""), nil
	case errors.As(err, &inv) && inv.From == order.Cancelled:
		return succeeded(order.StepCancelOrder, "already cancelled"), nil
	}
	return order.CheckoutEvent{}, err
}

// failedIndex is the index of the step whose failure started compensating.
func failedIndex(c order.Checkout) int {
	for i, r := range c.Steps {
		if r.Outcome == order.StepFailed {
			return i
		}
	}
	return 0
}

func (s *Checkouts) release(ctx context.Context, c order.Checkout) (order.CheckoutEvent, error) {
	for _, it := range c.Items {
		if err := s.cfg.Stock.Release(ctx, it.SKU, c.OrderID); err != nil {
			return order.CheckoutEvent{}, err
		}
	}
	return succeeded(order.StepRelease, ""), nil
}

// cut shortens s to at most n bytes, on a UTF-8 boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
