package paymentgw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/actors"
)

const testToken = "bridge-token-do-not-print"

// fakeBridge is a payment bridge as docs/payment-gateway.md describes it,
// idempotent by key, whose tokens choose a misbehaviour. It records every
// request it was sent.
type fakeBridge struct {
	t  *testing.T
	mu sync.Mutex
	// requests, in arrival order.
	requests []bridgeRequest
	ids      map[string]string // authorisation key -> ID
	byID     map[string]bool   // ID -> voided
	effects  int               // authorisations made
	held     chan struct{}     // receives when a tok_hold request has arrived
}

type bridgeRequest struct {
	Path, Key, Auth, ContentType string
	Body                         map[string]any
}

func newFakeBridge(t *testing.T) (*fakeBridge, *httptest.Server) {
	b := &fakeBridge{t: t, ids: map[string]string{}, byID: map[string]bool{}, held: make(chan struct{}, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /authorizations", b.authorize)
	mux.HandleFunc("POST /authorizations/{id}/void", b.voidByID)
	mux.HandleFunc("POST /voids", b.voidByKey)
	srv := httptest.NewServer(mux) // 127.0.0.1, port 0
	t.Cleanup(srv.Close)
	return b, srv
}

func (b *fakeBridge) record(r *http.Request) bridgeRequest {
	req := bridgeRequest{Path: r.URL.EscapedPath(), Key: r.Header.Get("Idempotency-Key"),
		Auth: r.Header.Get("Authorization"), ContentType: r.Header.Get("Content-Type")}
	assert.NoError(b.t, json.NewDecoder(r.Body).Decode(&req.Body))
	b.mu.Lock()
	defer b.mu.Unlock()
	b.requests = append(b.requests, req)
	return req
}

func (b *fakeBridge) authorize(w http.ResponseWriter, r *http.Request) {
	req := b.record(r)
	switch req.Body["token"] {
	case "tok_decline":
		reply(w, http.StatusPaymentRequired, `{"status":"declined","reason":"insufficient funds","code":"nsf"}`)
	case "tok_hold": // until the client gives up
		b.held <- struct{}{}
		<-r.Context().Done()
	case "tok_hangup":
		conn, _, err := w.(http.Hijacker).Hijack()
		require.NoError(b.t, err)
		conn.Close()
	case "tok_500":
		reply(w, http.StatusInternalServerError, "internal error")
	case "tok_503":
		reply(w, http.StatusServiceUnavailable, `{"error":"provider down"}`)
	case "tok_401":
		reply(w, http.StatusUnauthorized, `{"error":"unknown token"}`)
	case "tok_big":
		reply(w, http.StatusCreated, `{"id":"auth_big","status":"authorized","raw":"`+strings.Repeat("x", responseBytesMax)+`"}`)
	case "tok_garbage":
		reply(w, http.StatusCreated, `{"id":"auth_garbage","status":"authorized"`)
	case "tok_noid":
		reply(w, http.StatusCreated, `{"status":"authorized"}`)
	default:
		b.mu.Lock()
		id, seen := b.ids[req.Key]
		if !seen {
			b.effects++
			id = fmt.Sprintf("auth_%d", b.effects)
			b.ids[req.Key], b.byID[id] = id, false
		}
		b.mu.Unlock()
		status := http.StatusCreated
		if seen {
			status = http.StatusOK
		}
		reply(w, status, `{"id":"`+id+`","status":"authorized","provider":{"anything":[1,2]}}`)
	}
}

func (b *fakeBridge) voidByID(w http.ResponseWriter, r *http.Request) {
	b.record(r)
	b.void(w, r.PathValue("id"))
}

func (b *fakeBridge) voidByKey(w http.ResponseWriter, r *http.Request) {
	req := b.record(r)
	b.mu.Lock()
	id := b.ids[req.Body["authorization_key"].(string)]
	b.mu.Unlock()
	b.void(w, id)
}

func (b *fakeBridge) void(w http.ResponseWriter, id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.byID[id]; !ok {
		reply(w, http.StatusNotFound, `{"status":"not_found"}`)
		return
	}
	b.byID[id] = true
	reply(w, http.StatusOK, `{"id":"`+id+`","status":"voided"}`)
}

func (b *fakeBridge) sent() []bridgeRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]bridgeRequest(nil), b.requests...)
}

func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func newTestClient(t *testing.T, url string) *Client {
	c, err := New(Config{URL: url, Token: testToken})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func authorization(key, token string) actors.PaymentAuthorization {
	return actors.PaymentAuthorization{Key: key, Token: token, Amount: 4200, Currency: "EUR", OrderID: "o-1", CustomerID: "c-1"}
}

var errKinds = []error{actors.ErrPaymentDeclined, actors.ErrPaymentRejected, actors.ErrPaymentUnavailable, actors.ErrPaymentOutcomeUnknown}

// kindOf returns the one sentinel err matches, or an error saying it
// matches none or several.
func kindOf(err error) error {
	var kinds []error
	for _, k := range errKinds {
		if errors.Is(err, k) {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) != 1 {
		return fmt.Errorf("%v matches %d payment error kinds, want exactly 1", err, len(kinds))
	}
	return kinds[0]
}

func TestAuthorizeSendsTheProtocol(t *testing.T) {
	bridge, srv := newFakeBridge(t)
	c := newTestClient(t, srv.URL+"/")
	res, err := c.Authorize(context.Background(), authorization("chk-1/authorize", "tok_visa"))
	require.NoError(t, err)
	assert.Equal(t, "auth_1", res.AuthorizationID)
	assert.Equal(t, []bridgeRequest{{
		Path: "/authorizations", Key: "chk-1/authorize", Auth: "Bearer " + testToken, ContentType: "application/json",
		Body: map[string]any{"amount": 4200.0, "currency": "EUR", "token": "tok_visa", "order_id": "o-1", "customer_id": "c-1"},
	}}, bridge.sent())
}

func TestAuthorizeOutcomes(t *testing.T) {
	bridge, srv := newFakeBridge(t)
	c := newTestClient(t, srv.URL)
	tests := []struct {
		token string
		want  error
	}{
		{"tok_decline", actors.ErrPaymentDeclined},
		{"tok_hangup", actors.ErrPaymentOutcomeUnknown},
		{"tok_500", actors.ErrPaymentOutcomeUnknown},
		{"tok_503", actors.ErrPaymentUnavailable},
		{"tok_401", actors.ErrPaymentRejected},
		{"tok_big", actors.ErrPaymentOutcomeUnknown},
		{"tok_garbage", actors.ErrPaymentOutcomeUnknown},
		{"tok_noid", actors.ErrPaymentOutcomeUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			res, err := c.Authorize(context.Background(), authorization(tt.token+"/authorize", tt.token))
			assert.Zero(t, res)
			assert.Equal(t, tt.want, kindOf(err), "%v", err)
			assert.NotContains(t, err.Error(), testToken)
		})
	}
	assert.Zero(t, bridge.effects)
}

func TestAuthorizeDeclineCarriesReason(t *testing.T) {
	_, srv := newFakeBridge(t)
	_, err := newTestClient(t, srv.URL).Authorize(context.Background(), authorization("k", "tok_decline"))
	var declined *actors.DeclinedError
	require.ErrorAs(t, err, &declined)
	assert.Equal(t, actors.DeclinedError{Code: "nsf", Reason: "insufficient funds"}, *declined)
}

// TestAuthorizeGivenUpAfterSendingIsUnknown: the bridge has the request
// when the caller's context ends.
func TestAuthorizeGivenUpAfterSendingIsUnknown(t *testing.T) {
	bridge, srv := newFakeBridge(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-bridge.held
		cancel()
	}()
	_, err := newTestClient(t, srv.URL).Authorize(ctx, authorization("k", "tok_hold"))
	assert.Equal(t, actors.ErrPaymentOutcomeUnknown, kindOf(err), "%v", err)
	assert.ErrorIs(t, err, context.Canceled)
}

// TestAuthorizeHeldPastTimeoutIsUnknown: the client's own timeout ends a
// call whose context has no deadline. (Two seconds: ample for a loopback
// connection, so that the request is surely sent first.)
func TestAuthorizeHeldPastTimeoutIsUnknown(t *testing.T) {
	bridge, srv := newFakeBridge(t)
	c, err := New(Config{URL: srv.URL, Timeout: 2 * time.Second})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Authorize(context.Background(), authorization("k", "tok_hold"))
	assert.ErrorIs(t, err, actors.ErrPaymentOutcomeUnknown)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	require.Len(t, bridge.sent(), 1)
	assert.Empty(t, bridge.sent()[0].Auth, "no token configured, none sent")
}

func TestAuthorizeRetryWithSameKeyGetsSameID(t *testing.T) {
	bridge, srv := newFakeBridge(t)
	c := newTestClient(t, srv.URL)
	first, err := c.Authorize(context.Background(), authorization("chk-1/authorize", "tok_visa"))
	require.NoError(t, err)
	again, err := c.Authorize(context.Background(), authorization("chk-1/authorize", "tok_visa"))
	require.NoError(t, err)
	assert.Equal(t, first, again)
	assert.Equal(t, 1, bridge.effects)
	sent := bridge.sent()
	require.Len(t, sent, 2)
	assert.Equal(t, sent[0], sent[1], "the retry is the same request")
}

func TestUnreachableBridgeIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	c := newTestClient(t, "http://"+addr)
	_, err = c.Authorize(context.Background(), authorization("k", "tok_visa"))
	assert.Equal(t, actors.ErrPaymentUnavailable, kindOf(err), "%v", err)
	err = c.Void(context.Background(), actors.PaymentVoid{Key: "k/void", AuthorizationID: "a", OrderID: "o-1"})
	assert.Equal(t, actors.ErrPaymentUnavailable, kindOf(err), "%v", err)
}

func TestDoneContextSendsNothing(t *testing.T) {
	bridge, srv := newFakeBridge(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := newTestClient(t, srv.URL).Authorize(ctx, authorization("k", "tok_visa"))
	assert.Equal(t, actors.ErrPaymentUnavailable, kindOf(err), "%v", err)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, bridge.sent())
}

func TestInvalidArgumentsAreRejectedUnsent(t *testing.T) {
	bridge, srv := newFakeBridge(t)
	c := newTestClient(t, srv.URL)
	bad := authorization("k", "tok_visa")
	bad.Currency = "euro"
	_, err := c.Authorize(context.Background(), bad)
	assert.Equal(t, actors.ErrPaymentRejected, kindOf(err), "%v", err)
	err = c.Void(context.Background(), actors.PaymentVoid{Key: "k", OrderID: "o-1"})
	assert.Equal(t, actors.ErrPaymentRejected, kindOf(err), "%v", err)
	assert.Empty(t, bridge.sent())
}

func TestVoid(t *testing.T) {
	bridge, srv := newFakeBridge(t)
	c := newTestClient(t, srv.URL)
	ctx := context.Background()
	res, err := c.Authorize(ctx, authorization("chk-1/authorize", "tok_visa"))
	require.NoError(t, err)

	byID := actors.PaymentVoid{Key: "chk-1/void", AuthorizationID: res.AuthorizationID, AuthorizationKey: "chk-1/authorize", OrderID: "o-1"}
	require.NoError(t, c.Void(ctx, byID))
	require.NoError(t, c.Void(ctx, byID), "a repeat")
	assert.True(t, bridge.byID[res.AuthorizationID])

	require.NoError(t, c.Void(ctx, actors.PaymentVoid{Key: "x/void", AuthorizationID: "auth_unknown", OrderID: "o-1"}),
		"the bridge's 404 for an unknown authorisation")
	require.NoError(t, c.Void(ctx, actors.PaymentVoid{Key: "y/void", AuthorizationID: "a/b?c", OrderID: "o-1"}),
		"an ID that needs escaping in the path")

	_, err = c.Authorize(ctx, authorization("chk-2/authorize", "tok_visa"))
	require.NoError(t, err)
	require.NoError(t, c.Void(ctx, actors.PaymentVoid{Key: "chk-2/void", AuthorizationKey: "chk-2/authorize", OrderID: "o-2"}), "by key")
	assert.True(t, bridge.byID["auth_2"])

	sent := bridge.sent()
	require.Len(t, sent, 7)
	assert.Equal(t, bridgeRequest{Path: "/authorizations/auth_1/void", Key: "chk-1/void", Auth: "Bearer " + testToken, ContentType: "application/json",
		Body: map[string]any{"authorization_key": "chk-1/authorize", "order_id": "o-1"}}, sent[1])
	assert.Equal(t, "/authorizations/a%2Fb%3Fc/void", sent[4].Path)
	assert.Equal(t, bridgeRequest{Path: "/voids", Key: "chk-2/void", Auth: "Bearer " + testToken, ContentType: "application/json",
		Body: map[string]any{"authorization_key": "chk-2/authorize", "order_id": "o-2"}}, sent[6])
}

// TestVoidAtAWrongURLFails: a 404 that is not the bridge's must not pass
// for "nothing to void".
func TestVoidAtAWrongURLFails(t *testing.T) {
	_, srv := newFakeBridge(t)
	c := newTestClient(t, srv.URL+"/v2")
	err := c.Void(context.Background(), actors.PaymentVoid{Key: "k/void", AuthorizationID: "auth_1", OrderID: "o-1"})
	assert.Equal(t, actors.ErrPaymentRejected, kindOf(err), "%v", err)
	assert.ErrorContains(t, err, "404")
}

func TestRedirectIsNotFollowed(t *testing.T) {
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		http.Redirect(w, r, "https://elsewhere.invalid/authorizations", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	_, err := newTestClient(t, srv.URL).Authorize(context.Background(), authorization("k", "tok_visa"))
	assert.Equal(t, actors.ErrPaymentRejected, kindOf(err), "%v", err)
	assert.ErrorContains(t, err, "elsewhere.invalid")
	assert.Equal(t, 1, hits)
}

func TestClientNeverPrintsItsToken(t *testing.T) {
	c := newTestClient(t, "http://127.0.0.1:1")
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		assert.NotContains(t, fmt.Sprintf(verb, c), testToken, verb)
		assert.NotContains(t, fmt.Sprintf(verb, *c), testToken, verb)
	}
}

func TestCheckURL(t *testing.T) {
	for url, ok := range map[string]bool{
		"http://127.0.0.1:8099":              true,
		"https://payments.internal/orderd/":  true,
		"ftp://payments.internal":            false,
		"payments.internal:8443":             false,
		"https://":                           false,
		"https://user:pw@payments.internal":  false,
		"https://payments.internal/?x=1":     false,
		"https://payments.internal/#section": false,
		"http://[::1":                        false,
	} {
		assert.Equal(t, ok, CheckURL(url) == nil, url)
	}
}

// TestOutcomeTable is docs/payment-gateway.md's table of answers.
func TestOutcomeTable(t *testing.T) {
	authorized := `{"id":"auth_1","status":"authorized"}`
	tests := []struct {
		status           int
		body             string
		authorize, void_ error // nil: success
	}{
		{200, authorized, nil, actors.ErrPaymentOutcomeUnknown},
		{201, authorized, nil, actors.ErrPaymentOutcomeUnknown},
		{200, `{"id":"auth_1","status":"voided"}`, actors.ErrPaymentOutcomeUnknown, nil},
		{204, ``, actors.ErrPaymentOutcomeUnknown, nil},
		{202, authorized, actors.ErrPaymentOutcomeUnknown, actors.ErrPaymentOutcomeUnknown},
		{307, ``, actors.ErrPaymentRejected, actors.ErrPaymentRejected},
		{400, `{"error":"bad"}`, actors.ErrPaymentRejected, actors.ErrPaymentRejected},
		{401, ``, actors.ErrPaymentRejected, actors.ErrPaymentRejected},
		{402, `{"status":"declined","reason":"r"}`, actors.ErrPaymentDeclined, actors.ErrPaymentRejected},
		{402, `not json`, actors.ErrPaymentDeclined, actors.ErrPaymentRejected},
		{404, `{"status":"not_found"}`, actors.ErrPaymentRejected, nil},
		{404, `404 page not found`, actors.ErrPaymentRejected, actors.ErrPaymentRejected},
		{409, ``, actors.ErrPaymentOutcomeUnknown, actors.ErrPaymentOutcomeUnknown},
		{422, `{"error":"key reused"}`, actors.ErrPaymentRejected, actors.ErrPaymentRejected},
		{429, ``, actors.ErrPaymentUnavailable, actors.ErrPaymentUnavailable},
		{500, ``, actors.ErrPaymentOutcomeUnknown, actors.ErrPaymentOutcomeUnknown},
		{502, ``, actors.ErrPaymentOutcomeUnknown, actors.ErrPaymentOutcomeUnknown},
		{503, ``, actors.ErrPaymentUnavailable, actors.ErrPaymentUnavailable},
		{504, ``, actors.ErrPaymentOutcomeUnknown, actors.ErrPaymentOutcomeUnknown},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d %s", tt.status, tt.body), func(t *testing.T) {
			ans := answer{status: tt.status, body: []byte(tt.body)}
			_, err := authorizeOutcome(ans)
			assertKind(t, tt.authorize, err)
			assertKind(t, tt.void_, voidOutcome(ans))
		})
	}
}

func assertKind(t *testing.T, want, err error) {
	t.Helper()
	if want == nil {
		assert.NoError(t, err)
		return
	}
	assert.Equal(t, want, kindOf(err), "%v", err)
}

func TestDecodeAuthorized(t *testing.T) {
	tests := []struct {
		body, wantErr string // wantErr "": accepted
	}{
		{`{"id":"auth_1","status":"authorized"}`, ""},
		{` {"status":"authorized","id":"auth_1","amount":4200,"extra":{"a":[null]}} `, ""},
		{`{"ID":"auth_1","status":"authorized"}`, `no "id"`},
		{`{"id":"auth_1","id":"auth_2","status":"authorized"}`, "given twice"},
		{`{"id":"auth_1","status":"declined"}`, `status "declined"`},
		{`{"id":"auth_1"}`, `no "status"`},
		{`{"id":null,"status":"authorized"}`, "not a string"},
		{`{"id":42,"status":"authorized"}`, "not a string"},
		{`{"id":"","status":"authorized"}`, "authorization ID"},
		{`{"id":"has space","status":"authorized"}`, "visible ASCII"},
		{`{"id":"auth_1","status":"authorized"}{}`, "data after"},
		{`[{"id":"auth_1","status":"authorized"}]`, "not a JSON object"},
		{`null`, "not a JSON object"},
		{"{\"id\":\"auth_1\",\"status\":\"authorized\",\"x\":\"\xff\"}", "not UTF-8"},
		{`{"id":"auth_1",`, "not JSON"},
		{``, "not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			id, err := decodeAuthorized([]byte(tt.body))
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.Equal(t, "auth_1", id)
				return
			}
			assert.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestDeclineTextIsMadePrintable(t *testing.T) {
	d := decodeDeclined(answer{status: 402, body: []byte(`{"reason":"no\nfunds\u0007` + strings.Repeat("é", declineTextLenMax) + `","code":7}`)})
	assert.True(t, strings.HasPrefix(d.Reason, "no funds "), d.Reason)
	assert.LessOrEqual(t, len(d.Reason), declineTextLenMax)
	assert.True(t, strings.HasSuffix(d.Reason, "é"), "cut at a character boundary")
	assert.Empty(t, d.Code, "a code that is not a string is left out")
}
