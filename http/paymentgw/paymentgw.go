// Package paymentgw is the actors.PaymentGateway that speaks JSON over HTTP
// to a payment bridge: a small service of the user's in front of their
// payment provider. docs/payment-gateway.md is the protocol, for whoever
// writes the bridge; this file sends the requests, answer.go reads the
// answers and decides what each one means for the saga.
package paymentgw

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/orderd/orderd/actors"
)

const (
	// responseBytesMax bounds an answer: the protocol's are a few hundred
	// bytes, and a bridge that adds its provider's whole response still
	// fits. A larger answer is not read further (answer.go says what it
	// means).
	responseBytesMax = 64 << 10
	// connsPerHostMax bounds the connections to the bridge, and so the
	// calls in flight: more checkouts wait for a connection (within their
	// deadline; a call that never got one was not sent) instead of opening
	// sockets without end against a slow bridge.
	connsPerHostMax = 64
	// idleConnsPerHostMax keeps enough warm connections for a steady
	// checkout load without holding sixty-four idle ones.
	idleConnsPerHostMax = 16
	// idleConnTimeout closes an idle connection before a bridge behind a
	// typical load balancer (60 s or more) closes it under a request.
	idleConnTimeout = 50 * time.Second
)

// Config configures a Client.
type Config struct {
	// URL is the bridge's base URL: http or https, a host, optionally a
	// path prefix (CheckURL).
	URL string
	// Timeout ends each call that its context has not ended before;
	// 0: actors.PaymentCallTimeoutDefault.
	Timeout time.Duration
	// Token, when set, is sent as "Authorization: Bearer <Token>". This
	// package never prints it.
	Token string
	// Transport replaces the pooled transport of the client's own (tests).
	Transport http.RoundTripper
}

// Client calls a payment bridge. It is safe for concurrent use.
type Client struct {
	base    string // without a trailing slash
	timeout time.Duration
	// setAuth adds the Authorization header, nil without a token. A
	// closure, so that printing a Client (%#v included) shows no token:
	// fmt prints a func as an address, and never calls the methods of an
	// unexported field's type.
	setAuth func(http.Header)
	hc      *http.Client
}

var _ actors.PaymentGateway = (*Client)(nil)

// CheckURL accepts an absolute http or https URL with a host and no user,
// query or fragment: the protocol's paths are appended to it, and
// credentials belong in the token, which is never printed (a URL is).
func CheckURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return err
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return errors.New("want an absolute http:// or https:// URL with a host, e.g. https://payments.internal:8443/orderd")
	case u.User != nil:
		return errors.New("no user or password in the URL: give the token in ORDERD_PAYMENT_GATEWAY_TOKEN")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return errors.New("no query or fragment: the protocol's paths are appended to the URL")
	}
	return nil
}

// New returns a client of the bridge at cfg.URL. It connects on first use.
func New(cfg Config) (*Client, error) {
	if err := CheckURL(cfg.URL); err != nil {
		return nil, fmt.Errorf("payment gateway URL %q: %w", cfg.URL, err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = actors.PaymentCallTimeoutDefault
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("payment gateway timeout %v: must be positive", cfg.Timeout)
	}
	tr := cfg.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone() // proxies from the environment, dial and TLS timeouts
		t.MaxConnsPerHost = connsPerHostMax
		t.MaxIdleConnsPerHost = idleConnsPerHostMax
		t.IdleConnTimeout = idleConnTimeout
		tr = t
	}
	c := &Client{base: strings.TrimRight(cfg.URL, "/"), timeout: cfg.Timeout, hc: &http.Client{
		Transport: tr,
		// A redirected POST was not carried out; following it would
		// send the token wherever the bridge points. Answered as it is.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		// No Timeout: every call has a context deadline (post).
	}}
	if cfg.Token != "" {
		value := "Bearer " + cfg.Token
		c.setAuth = func(h http.Header) { h.Set("Authorization", value) }
	}
	return c, nil
}

// String names the bridge, not the token.
func (c *Client) String() string { return "payment bridge at " + c.base }

// Close closes the idle connections. Calls may still be made after it.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

type authorizeRequest struct {
	Amount     int64  `json:"amount"`
	Currency   string `json:"currency"`
	Token      string `json:"token"`
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id,omitempty"`
}

type voidRequest struct {
	AuthorizationKey string `json:"authorization_key,omitempty"`
	OrderID          string `json:"order_id"`
}

// Authorize sends POST {base}/authorizations.
func (c *Client) Authorize(ctx context.Context, a actors.PaymentAuthorization) (actors.PaymentResult, error) {
	if err := a.Validate(); err != nil {
		return actors.PaymentResult{}, err
	}
	body, err := json.Marshal(authorizeRequest{Amount: a.Amount, Currency: a.Currency, Token: a.Token, OrderID: a.OrderID, CustomerID: a.CustomerID})
	if err != nil {
		return actors.PaymentResult{}, fmt.Errorf("%w: encoding the authorisation: %w", actors.ErrPaymentRejected, err)
	}
	ans, err := c.post(ctx, c.base+"/authorizations", a.Key, body)
	if err != nil {
		return actors.PaymentResult{}, fmt.Errorf("authorize (key %q): %w", a.Key, err)
	}
	res, err := authorizeOutcome(ans)
	if err != nil {
		return actors.PaymentResult{}, fmt.Errorf("authorize (key %q): %w", a.Key, err)
	}
	return res, nil
}

// Void sends POST {base}/authorizations/{id}/void, or POST {base}/voids
// naming the authorisation's key when its ID is not known.
func (c *Client) Void(ctx context.Context, v actors.PaymentVoid) error {
	if err := v.Validate(); err != nil {
		return err
	}
	target := c.base + "/voids"
	if v.AuthorizationID != "" {
		target = c.base + "/authorizations/" + url.PathEscape(v.AuthorizationID) + "/void"
	}
	body, err := json.Marshal(voidRequest{AuthorizationKey: v.AuthorizationKey, OrderID: v.OrderID})
	if err != nil {
		return fmt.Errorf("%w: encoding the void: %w", actors.ErrPaymentRejected, err)
	}
	ans, err := c.post(ctx, target, v.Key, body)
	if err == nil {
		err = voidOutcome(ans)
	}
	if err != nil {
		return fmt.Errorf("void (key %q): %w", v.Key, err)
	}
	return nil
}

// post sends one request within the call's deadline and reads its answer.
// Its error says whether the request may have been sent: a failure before
// the client had a connection for it is Unavailable (nothing left this
// process); any later one is OutcomeUnknown. That errs on the safe side:
// a failure after the connection but before the first byte costs the saga
// a void it might have been spared, never a wrong "not done". (net/http
// may itself resend a request that failed on a reused connection, as it
// carries an Idempotency-Key: the bridge's idempotency makes that safe.)
func (c *Client) post(ctx context.Context, target, key string, body []byte) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var connected atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { connected.Store(true) },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return answer{}, fmt.Errorf("%w: %w", actors.ErrPaymentRejected, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "orderd")
	req.Header.Set("Idempotency-Key", key)
	if c.setAuth != nil {
		c.setAuth(req.Header)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if connected.Load() {
			return answer{}, fmt.Errorf("%w: sent, no answer: %w", actors.ErrPaymentOutcomeUnknown, err)
		}
		return answer{}, fmt.Errorf("%w: not sent: %w", actors.ErrPaymentUnavailable, err)
	}
	defer resp.Body.Close()
	ans := answer{status: resp.StatusCode, location: resp.Header.Get("Location")}
	ans.body, err = io.ReadAll(io.LimitReader(resp.Body, responseBytesMax+1))
	switch {
	case err != nil:
		ans.bodyErr = fmt.Errorf("reading the answer: %w", err)
	case len(ans.body) > responseBytesMax:
		ans.bodyErr = fmt.Errorf("the answer is larger than %d bytes", responseBytesMax)
	}
	return ans, nil
}
