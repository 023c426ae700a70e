package actors

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// Tokens the simulated gateway treats specially; it approves every other.
const (
	// SimTokenDecline is declined with the code "card_declined".
	SimTokenDecline = "tok_decline"
	// SimTokenTimeout is authorised, but the answer never comes: the call
	// ends when its deadline does, with ErrPaymentOutcomeUnknown. It is the
	// worst case of a real timeout (money held, caller not told), so a saga
	// that handles it must void by AuthorizationKey.
	SimTokenTimeout = "tok_timeout"
)

// simulatedKeysMax bounds the authorisation keys the simulated gateway
// remembers (about 200 bytes each, so some 10 MB at most). Past it the
// oldest key is forgotten first (FIFO, not LRU: a repeat does not renew a
// key, as a provider's 24-hour key window is not renewed either). A saga
// repeating a step whose key was forgotten would authorise again; at the
// rates this gateway serves (tests, demos, bench) its steps are long done
// by then, and Void of a forgotten authorisation succeeds as for any
// unknown one.
const simulatedKeysMax = 50_000

// SimulatedGateway is the PaymentGateway of the embedded setup: in memory,
// no network, deterministic. It keeps the PaymentGateway contract and
// counts what it did, for tests (Authorized, Voided, Stats).
//
// Keys of voids are not remembered: a void is idempotent by nature (voiding
// a voided authorisation is a success with no effect).
type SimulatedGateway struct {
	timeout time.Duration // 0: the context's deadline alone

	mu    sync.Mutex
	byKey map[string]*simAuthorization
	byID  map[string]*simAuthorization
	// keys is a ring of the remembered keys in arrival order; once it is
	// full, keys[oldest] is the next to be forgotten.
	keys   []string
	oldest int
	limit  int
	stats  SimulatedGatewayStats
}

var _ PaymentGateway = (*SimulatedGateway)(nil)

// simAuthorization is what one key did.
type simAuthorization struct {
	request  PaymentAuthorization // zero for a key voided before it authorised
	id       string               // "" unless authorised
	declined bool
	voided   bool
}

// SimulatedGatewayStats counts calls and effects. Repeats with a known key
// add to the calls only.
type SimulatedGatewayStats struct {
	AuthorizeCalls int
	Authorizations int // authorisations made, at most one per key
	Declines       int
	VoidCalls      int
	Voids          int // authorisations voided, at most one per authorisation
}

// NewSimulatedGateway returns an empty simulated gateway whose calls end
// after timeout at the latest (0: only by their context).
func NewSimulatedGateway(timeout time.Duration) *SimulatedGateway {
	return newSimulatedGateway(timeout, simulatedKeysMax)
}

func newSimulatedGateway(timeout time.Duration, limit int) *SimulatedGateway {
	return &SimulatedGateway{timeout: timeout, limit: limit,
		byKey: make(map[string]*simAuthorization), byID: make(map[string]*simAuthorization)}
}

// Authorize approves every token but SimTokenDecline and SimTokenTimeout.
func (g *SimulatedGateway) Authorize(ctx context.Context, a PaymentAuthorization) (PaymentResult, error) {
	if err := a.Validate(); err != nil {
		return PaymentResult{}, err
	}
	ctx, cancel := g.withTimeout(ctx)
	defer cancel()
	if err := ctx.Err(); err != nil {
		return PaymentResult{}, fmt.Errorf("%w: not sent: %w", ErrPaymentUnavailable, err)
	}
	rec, err := g.authorize(a)
	switch {
	case err != nil:
		return PaymentResult{}, err
	case a.Token == SimTokenTimeout:
		<-ctx.Done()
		return PaymentResult{}, fmt.Errorf("%w: the simulated gateway does not answer %s: %w", ErrPaymentOutcomeUnknown, SimTokenTimeout, ctx.Err())
	case rec.declined:
		return PaymentResult{}, &DeclinedError{Code: "card_declined", Reason: "the simulated gateway declines " + SimTokenDecline}
	case rec.id == "":
		return PaymentResult{}, &DeclinedError{Code: "voided", Reason: "the authorisation key was voided before it was authorised"}
	}
	return PaymentResult{AuthorizationID: rec.id}, nil
}

// authorize records a's effect, once per key, and returns the key's record.
func (g *SimulatedGateway) authorize(a PaymentAuthorization) (simAuthorization, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stats.AuthorizeCalls++
	if rec, ok := g.byKey[a.Key]; ok {
		if rec.request != a && rec.request != (PaymentAuthorization{}) {
			return simAuthorization{}, fmt.Errorf("%w: idempotency key %q was used for a different authorisation", ErrPaymentRejected, a.Key)
		}
		return *rec, nil
	}
	rec := &simAuthorization{request: a}
	if a.Token == SimTokenDecline {
		rec.declined = true
		g.stats.Declines++
	} else {
		rec.id = simAuthorizationID(a.Key)
		g.byID[rec.id] = rec
		g.stats.Authorizations++
	}
	g.remember(a.Key, rec)
	return *rec, nil
}

// Void voids by ID, or else by key; a key not seen yet is remembered as
// voided, so that an authorisation with it arriving later is declined.
func (g *SimulatedGateway) Void(ctx context.Context, v PaymentVoid) error {
	if err := v.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: not sent: %w", ErrPaymentUnavailable, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stats.VoidCalls++
	var rec *simAuthorization
	if v.AuthorizationID != "" {
		rec = g.byID[v.AuthorizationID]
	} else if rec = g.byKey[v.AuthorizationKey]; rec == nil {
		g.remember(v.AuthorizationKey, &simAuthorization{voided: true})
	}
	if rec != nil && rec.id != "" && !rec.voided {
		rec.voided = true
		g.stats.Voids++
	}
	return nil
}

// remember adds key, forgetting the oldest key when full. Called with mu.
func (g *SimulatedGateway) remember(key string, rec *simAuthorization) {
	if len(g.keys) < g.limit {
		g.keys = append(g.keys, key)
	} else {
		old := g.keys[g.oldest]
		if r := g.byKey[old]; r != nil && r.id != "" {
			delete(g.byID, r.id)
		}
		delete(g.byKey, old)
		g.keys[g.oldest] = key
		g.oldest = (g.oldest + 1) % g.limit
	}
	g.byKey[key] = rec
}

// Authorized returns the ID of the authorisation made with key, voided or
// not; false if none was (declined, never seen, or forgotten).
func (g *SimulatedGateway) Authorized(key string) (authorizationID string, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if rec := g.byKey[key]; rec != nil && rec.id != "" {
		return rec.id, true
	}
	return "", false
}

// Voided reports whether the authorisation with this ID has been voided.
func (g *SimulatedGateway) Voided(authorizationID string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	rec := g.byID[authorizationID]
	return rec != nil && rec.voided
}

// Stats returns the counts so far.
func (g *SimulatedGateway) Stats() SimulatedGatewayStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stats
}

func (g *SimulatedGateway) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if g.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, g.timeout)
}

// simAuthorizationID derives the ID from the key, so that a test can
// predict it and a repeat finds the same one.
func simAuthorizationID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sim_auth_" + hex.EncodeToString(sum[:12])
}
