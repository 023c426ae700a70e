package actors

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// fakeCheckoutJournal keeps checkout records in a slice; fail, when set,
// decides the fate of each append.
type fakeCheckoutJournal struct {
	mu     sync.Mutex
	events []order.CheckoutEvent
	fail   func(ev order.CheckoutEvent) (written bool, err error)
}

func (j *fakeCheckoutJournal) AppendCheckout(_ context.Context, ev order.CheckoutEvent) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil {
		if written, err := j.fail(ev); err != nil {
			if written {
				j.events = append(j.events, ev)
			}
			return err
		}
	}
	j.events = append(j.events, ev)
	return nil
}

func (j *fakeCheckoutJournal) LoadCheckout(_ context.Context, id string) ([]order.CheckoutEvent, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []order.CheckoutEvent
	for _, ev := range j.events {
		if ev.CheckoutID == id {
			out = append(out, ev)
		}
	}
	return out, nil
}

// fakeStock is inventory with the reservation contract: idempotent by
// (sku, order).
type fakeStock struct {
	mu        sync.Mutex
	available map[string]int64
	holds     map[string]int64 // sku + "/" + order
}

func newFakeStock(available map[string]int64) *fakeStock {
	return &fakeStock{available: available, holds: make(map[string]int64)}
}

func (f *fakeStock) Reserve(_ context.Context, sku, orderID string, q int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, held := f.holds[sku+"/"+orderID]; held {
		return nil
	}
	if f.available[sku] < q {
		return &order.OutOfStockError{SKU: sku, Requested: q, Available: f.available[sku]}
	}
	f.available[sku] -= q
	f.holds[sku+"/"+orderID] = q
	return nil
}

func (f *fakeStock) Release(_ context.Context, sku, orderID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if q, held := f.holds[sku+"/"+orderID]; held {
		f.available[sku] += q
		delete(f.holds, sku+"/"+orderID)
	}
	return nil
}

func (f *fakeStock) availableOf(sku string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.available[sku]
}

func (f *fakeStock) heldBy(sku, orderID string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.holds[sku+"/"+orderID]
}

type checkoutRig struct {
	orders   *System
	stock    *fakeStock
	gateway  *SimulatedGateway
	journal  *fakeCheckoutJournal
	sagas    *Checkouts
	ordersJ  *fakeJournal
	settings CheckoutConfig
}

func newCheckoutRig(t *testing.T, available map[string]int64) *checkoutRig {
	t.Helper()
	r := &checkoutRig{stock: newFakeStock(available), gateway: NewSimulatedGateway(0),
		journal: &fakeCheckoutJournal{}, ordersJ: &fakeJournal{}}
	r.orders = newSystem(t, r.ordersJ)
	r.settings = CheckoutConfig{Journal: r.journal, Orders: r.orders, Stock: r.stock, Payments: r.gateway,
		PaymentTimeout: 500 * time.Millisecond}
	r.sagas = r.start()
	return r
}

// start makes another orchestrator on the rig's parts (the caller closes it).
func (r *checkoutRig) start() *Checkouts { return NewCheckouts(r.settings) }

func basket(id, token string, items ...order.Item) CheckoutStart {
	return CheckoutStart{ID: id, Principal: "alice", Request: order.CheckoutRequest{
		CustomerID: "cus-1", Currency: "EUR", Items: items, PaymentToken: token}}
}

func item(sku string, q int64) order.Item { return order.Item{SKU: sku, Quantity: q, UnitPrice: 250} }

// checkout starts a checkout and waits for its end.
func (r *checkoutRig) checkout(t *testing.T, st CheckoutStart) order.Checkout {
	t.Helper()
	_, err := r.sagas.Start(ctxFor(t), st)
	require.NoError(t, err)
	c, err := r.sagas.Wait(ctxFor(t), st.ID)
	require.NoError(t, err)
	require.True(t, c.Status.Finished(), "checkout %s still %v", st.ID, c.Status)
	t.Cleanup(r.sagas.Close)
	return c
}

func stepsAndOutcomes(c order.Checkout) []string {
	var out []string
	for _, s := range c.Steps {
		out = append(out, s.Step.String()+" "+s.Outcome.String())
	}
	return out
}

func TestCheckoutCompletes(t *testing.T) {
	r := newCheckoutRig(t, map[string]int64{"mug": 5, "tea": 3})
	c := r.checkout(t, basket("co-1", "tok_visa", item("mug", 2), item("tea", 1)))

	assert.Equal(t, order.CheckoutCompleted, c.Status)
	assert.Equal(t, []string{"reserve-stock succeeded", "create-order succeeded", "authorize-payment succeeded", "mark-paid succeeded"}, stepsAndOutcomes(c))
	o, err := r.orders.Get(ctxFor(t), "co-1")
	require.NoError(t, err)
	assert.Equal(t, order.Paid, o.State)
	require.NotNil(t, o.Contents)
	assert.Equal(t, int64(750), o.Contents.Total)
	assert.Equal(t, int64(2), r.stock.heldBy("mug", "co-1"), "the order holds its reservation")
	assert.Equal(t, int64(3), r.stock.availableOf("mug"))
	authID, ok := r.gateway.Authorized("checkout:co-1:authorize-payment")
	require.True(t, ok)
	assert.Equal(t, authID, c.AuthorizationID)
	assert.Equal(t, 1, r.gateway.Stats().Authorizations)

	journal, err := r.journal.LoadCheckout(ctxFor(t), "co-1")
	require.NoError(t, err)
	assert.Len(t, journal, 5, "the start and one record per step")
}

func TestCheckoutOutOfStockReleasesWhatItReserved(t *testing.T) {
	r := newCheckoutRig(t, map[string]int64{"mug": 1, "tea": 3, "jam": 0})
	c := r.checkout(t, basket("co-2", "tok_visa", item("tea", 2), item("mug", 2), item("jam", 1)))

	assert.Equal(t, order.CheckoutCompensated, c.Status)
	assert.Equal(t, []string{"reserve-stock failed", "release-stock succeeded"}, stepsAndOutcomes(c))
	assert.Equal(t, []string{"jam", "mug"}, c.OutOfStock, "every SKU short, sorted")
	assert.Equal(t, int64(3), r.stock.availableOf("tea"), "the tea reserved before the shortfall is back")
	_, err := r.orders.Get(ctxFor(t), "co-2")
	assert.ErrorIs(t, err, order.ErrOrderNotFound)
	assert.Zero(t, r.gateway.Stats().AuthorizeCalls)
}

func TestCheckoutDeclinedCompensatesInReverse(t *testing.T) {
	for _, token := range []string{SimTokenDecline, SimTokenTimeout} {
		t.Run(token, func(t *testing.T) {
			r := newCheckoutRig(t, map[string]int64{"mug": 2})
			c := r.checkout(t, basket("co-3", token, item("mug", 2)))

			assert.Equal(t, order.CheckoutCompensated, c.Status)
			assert.Equal(t, []string{"reserve-stock succeeded", "create-order succeeded", "authorize-payment failed",
				"void-payment succeeded", "cancel-order succeeded", "release-stock succeeded"}, stepsAndOutcomes(c))
			assert.Equal(t, order.StepAuthorize, c.FailedStep)
			if token == SimTokenTimeout {
				detail := c.Steps[2].Detail
				assert.Equal(t, 1, strings.Count(detail, ErrPaymentOutcomeUnknown.Error()), "said once: %q", detail)
			}
			o, err := r.orders.Get(ctxFor(t), "co-3")
			require.NoError(t, err)
			assert.Equal(t, order.Cancelled, o.State)
			hist, err := r.orders.History(ctxFor(t), "co-3")
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(hist[len(hist)-1].Reason, "checkout-failed: "), hist[len(hist)-1].Reason)
			assert.Equal(t, int64(2), r.stock.availableOf("mug"))
			if authID, ok := r.gateway.Authorized("checkout:co-3:authorize-payment"); ok {
				assert.True(t, r.gateway.Voided(authID), "an authorisation whose answer was lost is voided by its key")
			}
		})
	}
}

func TestCheckoutsForTheLastUnitOneCompletes(t *testing.T) {
	const buyers = 64
	r := newCheckoutRig(t, map[string]int64{"last": 1})
	t.Cleanup(r.sagas.Close)
	results := make([]order.Checkout, buyers)
	var wg sync.WaitGroup
	for i := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("co-%02d", i)
			_, err := r.sagas.Start(ctxFor(t), basket(id, "tok_visa", item("last", 1)))
			if assert.NoError(t, err) {
				results[i], err = r.sagas.Wait(ctxFor(t), id)
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	completed := 0
	for _, c := range results {
		switch c.Status {
		case order.CheckoutCompleted:
			completed++
		case order.CheckoutCompensated:
			assert.Equal(t, []string{"last"}, c.OutOfStock)
		default:
			t.Errorf("checkout %s ended %v", c.ID, c.Status)
		}
	}
	assert.Equal(t, 1, completed)
	assert.Zero(t, r.stock.availableOf("last"))
}

func TestCheckoutStartIsIdempotent(t *testing.T) {
	r := newCheckoutRig(t, map[string]int64{"mug": 5})
	first := r.checkout(t, basket("co-4", "tok_visa", item("mug", 1)))
	again, err := r.sagas.Start(ctxFor(t), basket("co-4", "tok_other", item("mug", 1)))
	require.NoError(t, err, "a retry with another token is the same checkout")
	assert.Equal(t, first.Version, again.Version)
	_, err = r.sagas.Start(ctxFor(t), basket("co-4", "tok_visa", item("mug", 2)))
	assert.ErrorIs(t, err, ErrCheckoutExists)
	assert.Equal(t, int64(4), r.stock.availableOf("mug"), "one reservation")
	assert.Equal(t, 1, r.gateway.Stats().Authorizations)
}

// crashAfter writes a checkout's records up to and including the given
// steps, with their effects done by hand, as a process that died then
// would leave them.
func (r *checkoutRig) crashAfter(t *testing.T, st CheckoutStart, steps ...order.CheckoutStep) {
	t.Helper()
	total, err := order.Total(st.Request.Items)
	require.NoError(t, err)
	evs := []order.CheckoutEvent{{EventID: "s", CheckoutID: st.ID, Version: 1, At: time.Now(), OrderID: st.ID,
		CustomerID: st.Request.CustomerID, Currency: st.Request.Currency, Items: st.Request.Items, Total: total, Principal: st.Principal}}
	c, err := order.ApplyCheckout(order.Checkout{}, evs[0])
	require.NoError(t, err)
	for _, step := range steps {
		ev := order.CheckoutEvent{EventID: step.String(), CheckoutID: st.ID, Version: c.Version + 1, At: time.Now(), Step: step, Outcome: order.StepSucceeded}
		switch step {
		case order.StepReserve:
			for _, it := range st.Request.Items {
				require.NoError(t, r.stock.Reserve(ctxFor(t), it.SKU, st.ID, it.Quantity))
			}
		case order.StepCreateOrder:
			mustExecute(t, r.orders, order.Command{Kind: order.CommandCreate, OrderID: st.ID, Principal: st.Principal,
				IdempotencyKey: stepKey(c, order.StepCreateOrder), CustomerID: c.CustomerID, Currency: c.Currency, Items: c.Items})
		case order.StepAuthorize:
			res, err := r.gateway.Authorize(ctxFor(t), PaymentAuthorization{Key: stepKey(c, order.StepAuthorize), Token: "tok_visa",
				Amount: total, Currency: c.Currency, OrderID: st.ID})
			require.NoError(t, err)
			ev.AuthorizationID = res.AuthorizationID
		}
		c, err = order.ApplyCheckout(c, ev)
		require.NoError(t, err)
		evs = append(evs, ev)
	}
	r.journal.events = append(r.journal.events, evs...)
}

func TestResumedCheckoutGoesForwardOnlyPastTheAuthorisation(t *testing.T) {
	tests := []struct {
		name   string
		done   []order.CheckoutStep
		status order.CheckoutStatus
		state  order.State // of the order; zero: no order
	}{
		{"started only", nil, order.CheckoutCompensated, 0},
		{"reserved", []order.CheckoutStep{order.StepReserve}, order.CheckoutCompensated, 0},
		{"created", []order.CheckoutStep{order.StepReserve, order.StepCreateOrder}, order.CheckoutCompensated, order.Cancelled},
		{"authorised", []order.CheckoutStep{order.StepReserve, order.StepCreateOrder, order.StepAuthorize}, order.CheckoutCompleted, order.Paid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCheckoutRig(t, map[string]int64{"mug": 3})
			st := basket("co-5", "tok_visa", item("mug", 2))
			r.crashAfter(t, st, tt.done...)

			resumed := r.start()
			t.Cleanup(resumed.Close)
			require.NoError(t, resumed.Resume(ctxFor(t), "co-5"))
			c, err := resumed.Wait(ctxFor(t), "co-5")
			require.NoError(t, err)
			assert.Equal(t, tt.status, c.Status, "%v", stepsAndOutcomes(c))

			o, err := r.orders.Get(ctxFor(t), "co-5")
			if tt.state == 0 {
				assert.ErrorIs(t, err, order.ErrOrderNotFound)
			} else if assert.NoError(t, err) {
				assert.Equal(t, tt.state, o.State)
			}
			wantAvailable := int64(3)
			if tt.status == order.CheckoutCompleted {
				wantAvailable = 1
			}
			assert.Equal(t, wantAvailable, r.stock.availableOf("mug"))
			if tt.status == order.CheckoutCompensated {
				assert.Equal(t, order.ResumeDetail, c.Steps[len(tt.done)].Detail)
			}
		})
	}
}

func TestCheckoutRecordsThroughAJournalOutage(t *testing.T) {
	r := newCheckoutRig(t, map[string]int64{"mug": 3})
	var failures atomic.Int32
	r.journal.fail = func(ev order.CheckoutEvent) (bool, error) {
		switch {
		case ev.Version == 2 && failures.Add(1) <= 3:
			return false, fmt.Errorf("%w: broker down", order.ErrJournalUnavailable)
		case ev.Version == 3 && failures.Add(1) <= 5:
			return true, fmt.Errorf("%w: timeout", order.ErrOutcomeUnknown)
		}
		return false, nil
	}
	c := r.checkout(t, basket("co-6", "tok_visa", item("mug", 1)))
	assert.Equal(t, order.CheckoutCompleted, c.Status)
	evs, err := r.journal.LoadCheckout(ctxFor(t), "co-6")
	require.NoError(t, err)
	assert.Len(t, evs, 5, "a record that landed with an unknown outcome is not written again")
	assert.GreaterOrEqual(t, failures.Load(), int32(4))
}

// TestCheckoutStopsWhenItsPartitionMovesAway: a node that no longer owns a
// checkout stops driving it after the step under way; the new owner
// resumes it from the log (without the token: it compensates).
func TestCheckoutStopsWhenItsPartitionMovesAway(t *testing.T) {
	r := newCheckoutRig(t, map[string]int64{"mug": 3})
	var owned atomic.Bool
	owned.Store(true)
	r.settings.Owns = func(string) (uint64, bool) { return 0, owned.Load() }
	deposed := r.start()
	t.Cleanup(deposed.Close)
	r.journal.fail = func(ev order.CheckoutEvent) (bool, error) {
		if ev.Version == 2 { // the reserve is recorded; the group moves the partition
			owned.Store(false)
		}
		return false, nil
	}
	_, err := deposed.Start(ctxFor(t), basket("co-7", "tok_visa", item("mug", 2)))
	require.NoError(t, err)
	c, err := deposed.Wait(ctxFor(t), "co-7")
	require.NoError(t, err)
	assert.Equal(t, order.CheckoutRunning, c.Status, "left for the new owner: %v", stepsAndOutcomes(c))
	assert.Equal(t, uint64(2), c.Version)
	assert.Equal(t, int64(1), r.stock.availableOf("mug"))

	r.settings.Owns, r.journal.fail = nil, nil
	owner := r.start()
	t.Cleanup(owner.Close)
	require.NoError(t, owner.Resume(ctxFor(t), "co-7"))
	c, err = owner.Wait(ctxFor(t), "co-7")
	require.NoError(t, err)
	assert.Equal(t, order.CheckoutCompensated, c.Status, "%v", stepsAndOutcomes(c))
	assert.Equal(t, int64(3), r.stock.availableOf("mug"))
}

// busyOnce is stock whose first reservation fails for a passing reason.
type busyOnce struct {
	*fakeStock
	failed atomic.Bool
}

func (b *busyOnce) Reserve(ctx context.Context, sku, orderID string, q int64) error {
	if !b.failed.Swap(true) {
		return fmt.Errorf("%w: the SKU's partition is moving", ErrNotReady)
	}
	return b.fakeStock.Reserve(ctx, sku, orderID, q)
}

// TestCheckoutGoesOnWhenItsPartitionComesBackMidStep: the partition moves
// away while a step waits to be retried and is back before the saga looks
// again (a rebalance that hands a node its own partitions again). The
// saga records no outcome for the step it broke off (it used to record
// one without an outcome, which panicked the process), and goes on.
func TestCheckoutGoesOnWhenItsPartitionComesBackMidStep(t *testing.T) {
	r := newCheckoutRig(t, map[string]int64{"mug": 3})
	r.settings.Stock = &busyOnce{fakeStock: r.stock}
	var calls atomic.Int32
	// Looks: the run's start (1), before the reserve (2), after the
	// retry's pause (3): gone; then back, in a new epoch.
	r.settings.Owns = func(string) (uint64, bool) {
		switch n := calls.Add(1); {
		case n < 3:
			return 1, true
		case n == 3:
			return 1, false
		}
		return 2, true
	}
	r.sagas = r.start()
	c := r.checkout(t, basket("co-8", "tok_visa", item("mug", 2)))
	assert.Equal(t, order.CheckoutCompleted, c.Status, "%v", stepsAndOutcomes(c))
	assert.Equal(t, []string{"reserve-stock succeeded", "create-order succeeded", "authorize-payment succeeded", "mark-paid succeeded"}, stepsAndOutcomes(c))
	assert.Equal(t, int64(1), r.stock.availableOf("mug"))
}

// TestCheckoutIsNeverLeftWithoutADriver: the partition moves away as a
// step ends, and is taken over here again (its Resume finding the saga
// still running) before the saga has stopped: the saga goes on, rather
// than stop with no one left to drive the checkout.
func TestCheckoutIsNeverLeftWithoutADriver(t *testing.T) {
	r := newCheckoutRig(t, map[string]int64{"mug": 3})
	var calls atomic.Int32
	var sagas *Checkouts
	// Looks: the run's start (1), before the reserve (2), after it (3):
	// gone, and taken over here again, in a new epoch.
	r.settings.Owns = func(id string) (uint64, bool) {
		switch n := calls.Add(1); {
		case n < 3:
			return 1, true
		case n == 3:
			require.NoError(t, sagas.Resume(ctxFor(t), id)) // the takeover: it finds the saga running
			return 1, false
		}
		return 2, true
	}
	sagas = r.start()
	r.sagas = sagas
	c := r.checkout(t, basket("co-9", "tok_visa", item("mug", 2)))
	assert.Equal(t, order.CheckoutCompleted, c.Status, "%v", stepsAndOutcomes(c))
	assert.Equal(t, int64(1), r.stock.availableOf("mug"))
}

// TestCheckoutRoundTripOfItsPartition: the partition leaves and comes back
// between two looks of the saga, and meanwhile the other node resumed the
// checkout and compensated it. The saga sees the new epoch, reads the log
// and ends there: it does not authorise a payment for a checkout another
// node has compensated.
func TestCheckoutRoundTripOfItsPartition(t *testing.T) {
	r := newCheckoutRig(t, map[string]int64{"mug": 3})
	var calls atomic.Int32
	// Looks: the run's start (1), before the reserve (2), after it (3):
	// by then the partition has been away, and back.
	r.settings.Owns = func(id string) (uint64, bool) {
		if calls.Add(1) != 3 {
			return 1 + uint64(min(calls.Load()/3, 1)), true
		}
		other := NewCheckouts(CheckoutConfig{Journal: r.journal, Orders: r.orders, Stock: r.stock, Payments: r.gateway,
			PaymentTimeout: r.settings.PaymentTimeout})
		defer other.Close()
		require.NoError(t, other.Resume(ctxFor(t), id))
		c, err := other.Wait(ctxFor(t), id)
		require.NoError(t, err)
		require.Equal(t, order.CheckoutCompensated, c.Status)
		return 2, true
	}
	r.sagas = r.start()
	c := r.checkout(t, basket("co-10", "tok_visa", item("mug", 2)))
	assert.Equal(t, order.CheckoutCompensated, c.Status, "%v", stepsAndOutcomes(c))
	_, authorised := r.gateway.Authorized("checkout:co-10:authorize-payment")
	assert.False(t, authorised, "no payment for a compensated checkout")
	assert.Equal(t, int64(3), r.stock.availableOf("mug"))
	_, err := r.orders.Get(ctxFor(t), "co-10")
	assert.ErrorIs(t, err, order.ErrOrderNotFound, "no order for it either")
}
