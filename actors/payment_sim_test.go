package actors

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// paymentErrKinds are the four sentinels; every gateway error matches
// exactly one of them.
var paymentErrKinds = []error{ErrPaymentDeclined, ErrPaymentRejected, ErrPaymentUnavailable, ErrPaymentOutcomeUnknown}

// paymentKind returns the one sentinel err matches, failing the test if it
// matches none or several.
func paymentKind(t *testing.T, err error) error {
	t.Helper()
	var kinds []error
	for _, k := range paymentErrKinds {
		if errors.Is(err, k) {
			kinds = append(kinds, k)
		}
	}
	require.Len(t, kinds, 1, "%v must match exactly one payment error kind", err)
	return kinds[0]
}

func simAuth(key, token string) PaymentAuthorization {
	return PaymentAuthorization{Key: key, Token: token, Amount: 1999, Currency: "EUR", OrderID: "o-1", CustomerID: "c-1"}
}

// shortCtx is a context whose deadline passes soon: the tests wait for it,
// they do not time anything.
func shortCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}

func TestSimulatedGatewayAuthorize(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name       string
		ctx        func(*testing.T) context.Context
		auth       PaymentAuthorization
		wantErr    error // nil: approved
		wantAuthed bool  // an authorisation exists under the key afterwards
		wantStats  SimulatedGatewayStats
	}{
		{"approve", nil, simAuth("k", "tok_visa"), nil, true, SimulatedGatewayStats{AuthorizeCalls: 1, Authorizations: 1}},
		{"decline", nil, simAuth("k", SimTokenDecline), ErrPaymentDeclined, false, SimulatedGatewayStats{AuthorizeCalls: 1, Declines: 1}},
		{"timeout: authorised, never answered", shortCtx, simAuth("k", SimTokenTimeout), ErrPaymentOutcomeUnknown, true, SimulatedGatewayStats{AuthorizeCalls: 1, Authorizations: 1}},
		{"context already done", func(*testing.T) context.Context { return cancelled }, simAuth("k", "tok_visa"), ErrPaymentUnavailable, false, SimulatedGatewayStats{}},
		{"no amount", nil, PaymentAuthorization{Key: "k", Token: "t", Currency: "EUR", OrderID: "o"}, ErrPaymentRejected, false, SimulatedGatewayStats{}},
		{"bad currency", nil, PaymentAuthorization{Key: "k", Token: "t", Amount: 1, Currency: "eur", OrderID: "o"}, ErrPaymentRejected, false, SimulatedGatewayStats{}},
		{"no key", nil, PaymentAuthorization{Token: "t", Amount: 1, Currency: "EUR", OrderID: "o"}, ErrPaymentRejected, false, SimulatedGatewayStats{}},
		{"key with a space", nil, simAuth("a key", "t"), ErrPaymentRejected, false, SimulatedGatewayStats{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.ctx != nil {
				ctx = tt.ctx(t)
			}
			g := NewSimulatedGateway(0)
			res, err := g.Authorize(ctx, tt.auth)
			if tt.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, simAuthorizationID(tt.auth.Key), res.AuthorizationID)
			} else {
				assert.Equal(t, tt.wantErr, paymentKind(t, err), "%v", err)
				assert.Zero(t, res)
			}
			_, authed := g.Authorized(tt.auth.Key)
			assert.Equal(t, tt.wantAuthed, authed)
			assert.Equal(t, tt.wantStats, g.Stats())
		})
	}
}

func TestSimulatedGatewayDeclineCarriesReason(t *testing.T) {
	_, err := NewSimulatedGateway(0).Authorize(context.Background(), simAuth("k", SimTokenDecline))
	var declined *DeclinedError
	require.ErrorAs(t, err, &declined)
	assert.Equal(t, "card_declined", declined.Code)
	assert.Contains(t, err.Error(), SimTokenDecline)
}

// TestSimulatedGatewayOwnTimeout: the gateway's own timeout ends a call
// whose context has no deadline.
func TestSimulatedGatewayOwnTimeout(t *testing.T) {
	_, err := NewSimulatedGateway(20*time.Millisecond).Authorize(context.Background(), simAuth("k", SimTokenTimeout))
	assert.ErrorIs(t, err, ErrPaymentOutcomeUnknown)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestSimulatedGatewayIdempotentRepeats(t *testing.T) {
	ctx := context.Background()
	g := NewSimulatedGateway(0)
	first, err := g.Authorize(ctx, simAuth("c1/authorize", "tok_visa"))
	require.NoError(t, err)
	again, err := g.Authorize(ctx, simAuth("c1/authorize", "tok_visa"))
	require.NoError(t, err)
	assert.Equal(t, first, again)

	for range 2 {
		_, err = g.Authorize(ctx, simAuth("c2/authorize", SimTokenDecline))
		assert.ErrorIs(t, err, ErrPaymentDeclined)
	}
	for range 2 {
		_, err = g.Authorize(shortCtx(t), simAuth("c3/authorize", SimTokenTimeout))
		assert.ErrorIs(t, err, ErrPaymentOutcomeUnknown)
	}
	assert.Equal(t, SimulatedGatewayStats{AuthorizeCalls: 6, Authorizations: 2, Declines: 1}, g.Stats())

	other := simAuth("c1/authorize", "tok_visa")
	other.Amount++
	_, err = g.Authorize(ctx, other)
	assert.Equal(t, ErrPaymentRejected, paymentKind(t, err), "a key reused for another amount")
	assert.Equal(t, 2, g.Stats().Authorizations)
}

func TestSimulatedGatewayConcurrentRepeatsAuthoriseOnce(t *testing.T) {
	g := NewSimulatedGateway(0)
	const callers = 32
	ids := make([]string, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			res, err := g.Authorize(context.Background(), simAuth("k", "tok_visa"))
			assert.NoError(t, err)
			ids[i] = res.AuthorizationID
		})
	}
	wg.Wait()
	for _, id := range ids {
		assert.Equal(t, ids[0], id)
	}
	assert.Equal(t, SimulatedGatewayStats{AuthorizeCalls: callers, Authorizations: 1}, g.Stats())
}

func TestSimulatedGatewayVoid(t *testing.T) {
	ctx := context.Background()
	g := NewSimulatedGateway(0)
	res, err := g.Authorize(ctx, simAuth("c1/authorize", "tok_visa"))
	require.NoError(t, err)
	require.False(t, g.Voided(res.AuthorizationID))

	byID := PaymentVoid{Key: "c1/void", AuthorizationID: res.AuthorizationID, OrderID: "o-1"}
	require.NoError(t, g.Void(ctx, byID))
	require.NoError(t, g.Void(ctx, byID), "a repeat")
	assert.True(t, g.Voided(res.AuthorizationID))
	assert.Equal(t, 1, g.Stats().Voids)

	require.NoError(t, g.Void(ctx, PaymentVoid{Key: "x/void", AuthorizationID: "sim_auth_unknown", OrderID: "o-1"}), "an unknown authorisation")
	_, err = g.Authorize(ctx, simAuth("c2/authorize", SimTokenDecline))
	require.ErrorIs(t, err, ErrPaymentDeclined)
	require.NoError(t, g.Void(ctx, PaymentVoid{Key: "c2/void", AuthorizationKey: "c2/authorize", OrderID: "o-1"}), "a declined one")
	assert.Equal(t, 1, g.Stats().Voids)

	err = g.Void(ctx, PaymentVoid{Key: "c1/void", OrderID: "o-1"})
	assert.Equal(t, ErrPaymentRejected, paymentKind(t, err), "neither ID nor key")
}

// TestSimulatedGatewayVoidAfterTimeout is the saga's way out of a gateway
// timeout: void by the authorisation's key, never having learnt its ID.
func TestSimulatedGatewayVoidAfterTimeout(t *testing.T) {
	g := NewSimulatedGateway(0)
	_, err := g.Authorize(shortCtx(t), simAuth("c1/authorize", SimTokenTimeout))
	require.ErrorIs(t, err, ErrPaymentOutcomeUnknown)
	id, ok := g.Authorized("c1/authorize")
	require.True(t, ok, "tok_timeout authorises and does not say so")

	require.NoError(t, g.Void(context.Background(), PaymentVoid{Key: "c1/void", AuthorizationKey: "c1/authorize", OrderID: "o-1"}))
	assert.True(t, g.Voided(id))
	assert.Equal(t, SimulatedGatewayStats{AuthorizeCalls: 1, Authorizations: 1, VoidCalls: 1, Voids: 1}, g.Stats())
}

// TestSimulatedGatewayVoidBeforeAuthorize: a void by key that overtakes its
// authorisation keeps the authorisation from taking effect.
func TestSimulatedGatewayVoidBeforeAuthorize(t *testing.T) {
	ctx := context.Background()
	g := NewSimulatedGateway(0)
	require.NoError(t, g.Void(ctx, PaymentVoid{Key: "c1/void", AuthorizationKey: "c1/authorize", OrderID: "o-1"}))
	_, err := g.Authorize(ctx, simAuth("c1/authorize", "tok_visa"))
	var declined *DeclinedError
	require.ErrorAs(t, err, &declined)
	assert.Equal(t, "voided", declined.Code)
	_, ok := g.Authorized("c1/authorize")
	assert.False(t, ok)
	assert.Zero(t, g.Stats().Authorizations)
}

func TestSimulatedGatewayForgetsOldestKeyFirst(t *testing.T) {
	ctx := context.Background()
	g := newSimulatedGateway(0, 2)
	ids := map[string]string{}
	for _, key := range []string{"a", "b", "c"} {
		res, err := g.Authorize(ctx, simAuth(key, "tok_visa"))
		require.NoError(t, err)
		ids[key] = res.AuthorizationID
	}
	_, ok := g.Authorized("a")
	assert.False(t, ok, "the oldest is forgotten")
	for _, key := range []string{"b", "c"} {
		_, ok := g.Authorized(key)
		assert.True(t, ok, key)
	}
	require.NoError(t, g.Void(ctx, PaymentVoid{Key: "a/void", AuthorizationID: ids["a"], OrderID: "o-1"}), "a forgotten authorisation is unknown")
	assert.False(t, g.Voided(ids["a"]))
	assert.Zero(t, g.Stats().Voids)
	assert.Len(t, g.byKey, 2)
	assert.Len(t, g.byID, 2)
}

func TestDeclinedErrorMessages(t *testing.T) {
	for want, err := range map[string]*DeclinedError{
		"payment declined":                      {},
		"payment declined: no funds":            {Reason: "no funds"},
		"payment declined (insufficient_funds)": {Code: "insufficient_funds"},
		"payment declined: no funds (nsf)":      {Code: "nsf", Reason: "no funds"},
	} {
		assert.Equal(t, want, err.Error())
		assert.ErrorIs(t, err, ErrPaymentDeclined)
	}
}
