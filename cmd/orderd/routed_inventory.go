package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/order"
)

// The inventory a cluster node's checkout saga and transition actions call
// (DESIGN §9, §10). A checkout and its order live in the checkout's
// partition, so their commands are always this node's; a SKU lives in the
// partition of its record key (order.InventoryKey), which any node may
// serve. routedInventory asks the Router, per call, who serves that
// partition: this node → the local actors; another → the hold and
// inventory routes of the HTTP API on that node, sent with
// X-Orderd-Forwarded so that it is served there and never forwarded again.
// Answers come back as the local actors give them: the same results and the
// same typed errors, so that the saga's retries (actors.passing) and the
// ledger's once-only effects hold remotely as they do locally.
//
// net/http, not the fasthttp client the forwarding uses: httptrace tells
// exactly whether a request was written, so a failure before that is "not
// applied" (actors.ErrNotReady) and only one after it "outcome unknown".
// A saga step is not a hot path; the ~25 µs fasthttp saves is nothing there.
const (
	// inventoryOwnerWaitMax bounds the wait for a SKU's partition to have
	// a serving owner (a rebalance): past it the call is ErrNotReady, and
	// the saga retries with its own backoff rather than holding one call
	// for the whole rebalance.
	inventoryOwnerWaitMax = 2 * time.Second
	// inventoryHopSlack is added to the owner's own request deadline
	// (--request-timeout, the same on every node) for the hop and its
	// queueing, so that the owner's answer, even "outcome unknown", arrives
	// before this side gives up on it.
	inventoryHopSlack = 2 * time.Second
	// inventoryResponseBytesMax bounds an owner's answer: a hold result
	// or a problem document is well under a kilobyte.
	inventoryResponseBytesMax = 64 << 10
	// peerIdleConnsMax bounds the idle keep-alive connections kept to each
	// peer: a few sagas' steps at once, well under forward.go's bound.
	peerIdleConnsMax = 64
	// peerIdleTimeout closes idle connections before the peer's idle
	// timeout (60 s) does, so that a command never goes out on a
	// connection the peer is closing.
	peerIdleTimeout = 30 * time.Second
)

// inventoryRouter is what routedInventory needs of the cluster: where a
// key's partition is served (orderhttp.Router has it, clusterRouter
// implements it).
type inventoryRouter interface {
	PartitionOf(key string) int
	// Owner returns the base URL of p's owner, or local true when this
	// node serves p now; an error matching actors.ErrNotReady while p has
	// no owner and ctx ends.
	Owner(ctx context.Context, p int) (url string, local bool, err error)
}

// routedInventory is actors.InventoryService across a cluster. Safe for
// concurrent use; close drops its idle connections.
type routedInventory struct {
	local   actors.InventoryService
	router  inventoryRouter
	token   string // bearer token for peers; "" without API keys
	timeout time.Duration
	client  *http.Client
}

var _ actors.InventoryService = (*routedInventory)(nil)

// newRoutedInventory returns the InventoryService of a cluster node: calls
// for SKUs this node serves go to local (the node's *actors.System, or the
// lateService in front of it), the others to their owner over HTTP with
// token as the bearer token (the node key's, node_key.go; "" without API
// keys). requestTimeout is --request-timeout: the owner's deadline for a
// call, which this side waits out plus inventoryHopSlack, or less if the
// caller's context ends sooner.
func newRoutedInventory(local actors.InventoryService, router inventoryRouter, token string, requestTimeout time.Duration) *routedInventory {
	return &routedInventory{
		local: local, router: router, token: token, timeout: requestTimeout + inventoryHopSlack,
		client: &http.Client{
			Transport: &http.Transport{
				MaxIdleConnsPerHost: peerIdleConnsMax,
				IdleConnTimeout:     peerIdleTimeout,
				DisableCompression:  true,
				ForceAttemptHTTP2:   false, // the peers speak HTTP/1.1 (fasthttp)
			},
			// A redirect would be a misconfigured peer, not a place to send
			// a command again.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// clusterInventory is the InventoryService for this node's sagas and
// actions: routed across the cluster in cluster mode, the local actors
// (through lateService) on a single node. Call once, after Start.
func (m *Main) clusterInventory() actors.InventoryService {
	if m.router == nil {
		return m.svc
	}
	return newRoutedInventory(m.svc, m.router, m.nodeKey.Token, m.cfg.RequestTimeout)
}

// close drops the idle connections to peers; calls under way finish.
func (r *routedInventory) close() { r.client.CloseIdleConnections() }

// owner finds who serves sku: local, or a peer's base URL.
func (r *routedInventory) owner(ctx context.Context, sku string) (string, bool, error) {
	if err := order.ValidateSKU(sku); err != nil {
		return "", false, err // as the actors refuse it, before any routing
	}
	ctx, cancel := context.WithTimeout(ctx, inventoryOwnerWaitMax)
	defer cancel()
	url, local, err := r.router.Owner(ctx, r.router.PartitionOf(order.InventoryKey(sku)))
	if err != nil && !errors.Is(err, actors.ErrNotReady) {
		err = fmt.Errorf("%w: no owner for sku %s: %w", actors.ErrNotReady, sku, err)
	}
	return url, local, err
}

// GetStock implements actors.InventoryService.
func (r *routedInventory) GetStock(ctx context.Context, sku string) (order.Stock, error) {
	url, local, err := r.owner(ctx, sku)
	switch {
	case err != nil:
		return order.Stock{}, err
	case local:
		return r.local.GetStock(ctx, sku)
	}
	var st stockJSON
	err = r.call(ctx, peerCall{method: http.MethodGet, url: url + "/v1/inventory/" + sku, sku: sku}, &st)
	return st.stock(), err
}

// SetStock implements actors.InventoryService.
func (r *routedInventory) SetStock(ctx context.Context, set actors.StockSet) (order.Stock, error) {
	url, local, err := r.owner(ctx, set.SKU)
	switch {
	case err != nil:
		return order.Stock{}, err
	case local:
		return r.local.SetStock(ctx, set)
	}
	body, _ := json.Marshal(struct {
		OnHand int64 `json:"on_hand"`
	}{set.OnHand}) // cannot fail
	c := peerCall{method: http.MethodPut, url: url + "/v1/inventory/" + set.SKU, body: body, sku: set.SKU,
		principal: set.Principal, requestID: set.RequestID, idempotencyKey: set.IdempotencyKey, expected: set.ExpectedVersion}
	var st stockJSON
	err = r.call(ctx, c, &st)
	return st.stock(), err
}

// Reserve implements actors.InventoryService.
func (r *routedInventory) Reserve(ctx context.Context, ref actors.HoldRef, quantity int64) (actors.InventoryResult, error) {
	return r.hold(ctx, order.StockReserve, ref, quantity)
}

// Release implements actors.InventoryService.
func (r *routedInventory) Release(ctx context.Context, ref actors.HoldRef) (actors.InventoryResult, error) {
	return r.hold(ctx, order.StockRelease, ref, 0)
}

// Consume implements actors.InventoryService.
func (r *routedInventory) Consume(ctx context.Context, ref actors.HoldRef) (actors.InventoryResult, error) {
	return r.hold(ctx, order.StockConsume, ref, 0)
}

// Restock implements actors.InventoryService.
func (r *routedInventory) Restock(ctx context.Context, ref actors.HoldRef) (actors.InventoryResult, error) {
	return r.hold(ctx, order.StockRestock, ref, 0)
}

func (r *routedInventory) hold(ctx context.Context, change order.StockChange, ref actors.HoldRef, quantity int64) (actors.InventoryResult, error) {
	url, local, err := r.owner(ctx, ref.SKU)
	switch {
	case err != nil:
		return actors.InventoryResult{}, err
	case local:
		return r.localHold(ctx, change, ref, quantity)
	}
	if err := order.ValidateID(ref.OrderID); err != nil {
		// As the actors refuse it; and it would not make a path.
		return actors.InventoryResult{}, &order.InventoryError{Field: order.FieldOrderID, Detail: err.Error()}
	}
	req := holdRequestJSON{Change: change.String(), OrderVersion: ref.OrderVersion}
	if change == order.StockReserve {
		req.Quantity = &quantity
	}
	body, _ := json.Marshal(req) // cannot fail
	c := peerCall{method: http.MethodPost, url: url + "/v1/inventory/" + ref.SKU + "/holds/" + ref.OrderID, body: body,
		sku: ref.SKU, principal: ref.Principal, requestID: ref.RequestID, ref: ref, change: change, quantity: quantity}
	var res holdResultJSON
	if err := r.call(ctx, c, &res); err != nil {
		return actors.InventoryResult{}, err
	}
	return actors.InventoryResult{Stock: res.Stock.stock(), Hold: res.Hold.hold(), Applied: res.Applied}, nil
}

func (r *routedInventory) localHold(ctx context.Context, change order.StockChange, ref actors.HoldRef, quantity int64) (actors.InventoryResult, error) {
	switch change {
	case order.StockReserve:
		return r.local.Reserve(ctx, ref, quantity)
	case order.StockRelease:
		return r.local.Release(ctx, ref)
	case order.StockConsume:
		return r.local.Consume(ctx, ref)
	}
	return r.local.Restock(ctx, ref)
}

// peerCall is one request to an owner, and what its answer is mapped with.
type peerCall struct {
	method, url string
	body        []byte
	sku         string

	principal, requestID, idempotencyKey string
	expected                             uint64 // If-Match; 0: none

	// A hold command's, to rebuild its typed errors.
	ref      actors.HoldRef
	change   order.StockChange
	quantity int64
}

// Headers the owner reads (http/route.go, http/holds.go, http/request.go).
const (
	headerForwarded      = "X-Orderd-Forwarded"
	headerOnBehalfOf     = "X-Orderd-On-Behalf-Of"
	headerRequestID      = "X-Request-ID"
	headerIdempotencyKey = "Idempotency-Key"
	problemTypePrefix    = "urn:orderd:problem:"
)

// call sends c to the owner and decodes a 200 into out, or maps the
// answer (or its absence) to the error the local actors would give.
func (r *routedInventory) call(ctx context.Context, c peerCall, out any) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var written atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		// Only a request written whole can be served: a write that failed
		// part-way leaves the owner an incomplete request it drops.
		WroteRequest: func(info httptrace.WroteRequestInfo) { written.Store(info.Err == nil) },
	})
	req, err := http.NewRequestWithContext(ctx, c.method, c.url, bytes.NewReader(c.body))
	if err != nil {
		return fmt.Errorf("inventory request to %s: %w", c.url, err) // a bad advertised URL: not passing
	}
	r.setHeaders(req, c)
	resp, err := r.client.Do(req)
	if err != nil {
		return unanswered(c, written.Load(), err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, inventoryResponseBytesMax+1))
	switch {
	case err != nil:
		return unanswered(c, true, err)
	case len(raw) > inventoryResponseBytesMax:
		return unanswered(c, true, fmt.Errorf("answer larger than %d bytes", inventoryResponseBytesMax))
	case resp.StatusCode == http.StatusOK:
		if err := json.Unmarshal(raw, out); err != nil {
			return unanswered(c, true, fmt.Errorf("undecodable answer: %w", err))
		}
		return nil
	}
	return answerError(c, resp.StatusCode, raw)
}

func (r *routedInventory) setHeaders(req *http.Request, c peerCall) {
	req.Header.Set(headerForwarded, "1")
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if len(c.body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.principal != "" {
		req.Header.Set(headerOnBehalfOf, c.principal)
	}
	if c.requestID != "" {
		req.Header.Set(headerRequestID, c.requestID) // the owner replaces one it would refuse
	}
	if c.idempotencyKey != "" {
		req.Header.Set(headerIdempotencyKey, c.idempotencyKey)
	}
	if c.expected != 0 {
		req.Header.Set("If-Match", `"`+strconv.FormatUint(c.expected, 10)+`"`)
	}
}

// unanswered is a call that got no usable answer. Unwritten, nothing was
// applied; written, a command may have been, and a read changed nothing.
func unanswered(c peerCall, written bool, err error) error {
	switch {
	case !written:
		return fmt.Errorf("%w: sku %s: the node serving it cannot be reached; nothing was sent: %w", actors.ErrNotReady, c.sku, err)
	case c.method == http.MethodGet:
		return fmt.Errorf("%w: sku %s: the node serving it did not answer: %w", actors.ErrNotReady, c.sku, err)
	}
	return fmt.Errorf("%w: sku %s: the node serving it did not answer; the change may or may not be recorded: %w", order.ErrOutcomeUnknown, c.sku, err)
}

// problemJSON is what answerError reads of a problem document.
type problemJSON struct {
	Type           string    `json:"type"`
	Detail         string    `json:"detail"`
	Field          string    `json:"field"`
	Available      int64     `json:"available"`
	CurrentVersion uint64    `json:"current_version"`
	Hold           *holdJSON `json:"hold"`
}

// answerError maps the owner's refusal to the error the local actors give
// for it (http/problem.go's table read backwards). What no row of it
// covers is an error of the cluster's setup (a key the peer does not know,
// a peer without the route), not passing: the saga's step fails.
func answerError(c peerCall, status int, raw []byte) error {
	var p problemJSON
	if json.Unmarshal(raw, &p) != nil || !strings.HasPrefix(p.Type, problemTypePrefix) {
		if status >= 500 {
			return unanswered(c, true, fmt.Errorf("status %d without a problem document", status))
		}
		return fmt.Errorf("inventory on %s: status %d without a problem document", c.url, status)
	}
	code := strings.TrimPrefix(p.Type, problemTypePrefix)
	at := func(sentinel error) error {
		return fmt.Errorf("%w: sku %s, on the node serving it: %s", sentinel, c.sku, p.Detail)
	}
	switch code {
	case "out-of-stock":
		return &order.OutOfStockError{SKU: c.sku, Requested: c.quantity, Available: p.Available}
	case "hold-conflict":
		if p.Hold == nil {
			return at(order.ErrHoldConflict)
		}
		return &order.HoldConflictError{SKU: c.sku, OrderID: c.ref.OrderID, Change: c.change, Hold: p.Hold.hold()}
	case "version-mismatch":
		return &order.VersionMismatchError{Expected: c.expected, Current: p.CurrentVersion}
	case "stock-reserved":
		return at(order.ErrStockReserved)
	case "sku-not-found":
		return fmt.Errorf("%w: %s", order.ErrSKUNotFound, c.sku)
	case "bad-request":
		if p.Field != "" {
			return &order.InventoryError{Field: p.Field, Detail: strings.TrimPrefix(p.Detail, p.Field+": ")}
		}
	case "busy", "rate-limited":
		return at(actors.ErrBusy)
	case "not-ready":
		return at(actors.ErrNotReady)
	case "journal-unavailable":
		return at(order.ErrJournalUnavailable)
	case "outcome-unknown", "internal-error":
		if c.method == http.MethodGet {
			return at(actors.ErrNotReady)
		}
		return at(order.ErrOutcomeUnknown) // an internal error may follow the write
	}
	return fmt.Errorf("inventory on %s: %d %s: %s", c.url, status, code, p.Detail)
}

// The bodies of the hold and inventory routes (openapi.json: Stock, Hold,
// HoldChangeRequest, HoldResult).
type (
	stockJSON struct {
		SKU      string `json:"sku"`
		OnHand   int64  `json:"on_hand"`
		Reserved int64  `json:"reserved"`
		Version  uint64 `json:"version"`
	}
	holdJSON struct {
		Status       string `json:"status"`
		Quantity     int64  `json:"quantity"`
		OrderVersion uint64 `json:"order_version"`
		Version      uint64 `json:"version"`
	}
	holdRequestJSON struct {
		Change       string `json:"change"`
		Quantity     *int64 `json:"quantity,omitempty"`
		OrderVersion uint64 `json:"order_version,omitempty"`
	}
	holdResultJSON struct {
		Applied bool      `json:"applied"`
		Stock   stockJSON `json:"stock"`
		Hold    holdJSON  `json:"hold"`
	}
)

func (s stockJSON) stock() order.Stock {
	return order.Stock{SKU: s.SKU, OnHand: s.OnHand, Reserved: s.Reserved, Version: s.Version}
}

// hold reads the status by its name; "none" (or a name this node does not
// know) is the zero status.
func (h holdJSON) hold() order.Hold {
	var status order.HoldStatus
	for s := order.HoldHeld; s <= order.HoldRestocked; s++ {
		if s.String() == h.Status {
			status = s
		}
	}
	return order.Hold{Status: status, Quantity: h.Quantity, OrderVersion: h.OrderVersion, Version: h.Version}
}
