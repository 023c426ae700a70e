package main

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeCheckoutd is the checkout and inventory API of issue 16 in memory,
// honest unless a knob makes it lie: stock per SKU with reservations, a
// saga that reserves all or nothing (409 out-of-stock otherwise), declines
// tok_decline and releases its units, answers 202 and ends on a later poll,
// and replays an answer for a known Idempotency-Key.
type fakeCheckoutd struct {
	handler http.Handler
	srv     *httptest.Server

	mu        sync.Mutex
	stock     map[string]*fakeStock
	checkouts map[string]*fakeCheckout
	byKey     map[string]fakeAnswer
	ended     map[string]int64 // the fake's own count of checkouts by end: completed, compensated, out-of-stock

	// Knobs; set before the first request. n counts the POSTs from 1.
	// accept answers the n-th POST 202; its checkout ends on its second poll.
	accept func(n int64) bool
	// busy answers the n-th POST 503 without doing anything.
	busy func(n int64) bool
	// lostAnswer does the n-th POST's checkout but answers 503
	// (outcome-unknown): the retry must learn the end by its key.
	lostAnswer func(n int64) bool
	// leak keeps a declined checkout's reservation: stock not conserved.
	leak bool
	// ignoreDecline completes the checkouts paid with tok_decline.
	ignoreDecline bool
	// lieOnGet may replace the status GET shows of a checkout.
	lieOnGet func(id, status string) string

	posts atomic.Int64
}

type fakeStock struct {
	onHand, reserved int64
	version          uint64
}

type fakeCheckout struct {
	id, status, orderID string
	items               []fakeItem
	declined            bool
	pollsLeft           int // while running: polls until it ends
}

type fakeItem struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
}

// fakeAnswer is an answer kept for its Idempotency-Key.
type fakeAnswer struct {
	status int
	body   map[string]any
	id     string
}

func newFakeCheckoutd(t *testing.T, configure func(*fakeCheckoutd)) *fakeCheckoutd {
	t.Helper()
	f := &fakeCheckoutd{stock: make(map[string]*fakeStock), checkouts: make(map[string]*fakeCheckout),
		byKey: make(map[string]fakeAnswer), ended: make(map[string]int64)}
	if configure != nil {
		configure(f)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("PUT /v1/inventory/{sku}", f.putStock)
	mux.HandleFunc("GET /v1/inventory/{sku}", f.getStock)
	mux.HandleFunc("POST /v1/checkouts", f.postCheckout)
	mux.HandleFunc("GET /v1/checkouts/{id}", f.getCheckout)
	f.handler = mux
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// node is one more server answering for f's state, as a cluster's node.
func (f *fakeCheckoutd) node(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(f.handler)
	t.Cleanup(s.Close)
	return s
}

func writeProblem(w http.ResponseWriter, status int, kind string, extra map[string]any) {
	body := map[string]any{"type": "urn:orderd:problem:" + kind, "title": kind, "status": status}
	for k, v := range extra {
		body[k] = v
	}
	w.Header().Set("Content-Type", "application/problem+json")
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "0")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (s *fakeStock) json(sku string) map[string]any {
	return map[string]any{"sku": sku, "on_hand": s.onHand, "reserved": s.reserved, "available": s.onHand - s.reserved, "version": s.version}
}

func (f *fakeCheckoutd) putStock(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OnHand *int64 `json:"on_hand"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.OnHand == nil {
		writeProblem(w, http.StatusBadRequest, "bad-request", nil)
		return
	}
	sku := r.PathValue("sku")
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.stock[sku]
	if !ok {
		s = &fakeStock{}
		f.stock[sku] = s
	}
	s.onHand = *req.OnHand
	s.version++
	writeJSON(w, http.StatusOK, s.json(sku))
}

func (f *fakeCheckoutd) getStock(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.stock[sku]
	if !ok {
		writeProblem(w, http.StatusNotFound, "sku-not-found", nil)
		return
	}
	writeJSON(w, http.StatusOK, s.json(sku))
}

func (f *fakeCheckoutd) postCheckout(w http.ResponseWriter, r *http.Request) {
	n := f.posts.Add(1)
	if f.busy != nil && f.busy(n) {
		writeProblem(w, http.StatusServiceUnavailable, "busy", nil)
		return
	}
	var req struct {
		CustomerID string     `json:"customer_id"`
		Currency   string     `json:"currency"`
		Items      []fakeItem `json:"items"`
		Payment    struct{ Token string }
	}
	key := r.Header.Get("Idempotency-Key")
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || key == "" || req.CustomerID == "" || req.Currency != "EUR" ||
		len(req.Items) == 0 || req.Payment.Token == "" {
		writeProblem(w, http.StatusBadRequest, "bad-request", nil)
		return
	}
	f.mu.Lock()
	a, seen := f.byKey[key]
	if !seen {
		a = f.start(key, req.Items, req.Payment.Token == tokenDeclined, f.accept != nil && f.accept(n))
		f.byKey[key] = a
	}
	f.mu.Unlock()
	if f.lostAnswer != nil && f.lostAnswer(n) {
		writeProblem(w, http.StatusServiceUnavailable, "outcome-unknown", nil)
		return
	}
	f.answer(w, a)
}

func (f *fakeCheckoutd) answer(w http.ResponseWriter, a fakeAnswer) {
	if a.id != "" {
		w.Header().Set("Location", checkoutsPath+"/"+a.id)
	}
	if a.status == http.StatusConflict {
		writeProblem(w, a.status, "out-of-stock", a.body)
		return
	}
	writeJSON(w, a.status, a.body)
}

// start runs a new checkout's saga as far as it goes now. Called with mu held.
func (f *fakeCheckoutd) start(key string, items []fakeItem, declined, accepted bool) fakeAnswer {
	co := &fakeCheckout{id: "co-" + key, items: items, declined: declined}
	f.checkouts[co.id] = co
	var short []string
	for _, it := range items {
		if s := f.stock[it.SKU]; s == nil || s.onHand-s.reserved < it.Quantity {
			short = append(short, it.SKU)
		}
	}
	if len(short) > 0 {
		co.status = checkoutCompensated
		f.ended["out-of-stock"]++
		return fakeAnswer{status: http.StatusConflict, id: co.id, body: map[string]any{"checkout_id": co.id, "out_of_stock": short}}
	}
	f.move(co.items, 1)
	if accepted {
		co.status, co.pollsLeft = "running", 2
		return fakeAnswer{status: http.StatusAccepted, id: co.id, body: co.json()}
	}
	f.finish(co)
	return fakeAnswer{status: http.StatusCreated, id: co.id, body: co.json()}
}

// move reserves (sign 1) or releases (sign -1) items. Called with mu held.
func (f *fakeCheckoutd) move(items []fakeItem, sign int64) {
	for _, it := range items {
		s := f.stock[it.SKU]
		s.reserved += sign * it.Quantity
		s.version++
	}
}

// finish authorises the payment and ends the saga. Called with mu held.
func (f *fakeCheckoutd) finish(co *fakeCheckout) {
	if co.declined && !f.ignoreDecline {
		co.status = checkoutCompensated
		if !f.leak {
			f.move(co.items, -1)
		}
	} else {
		co.status, co.orderID = checkoutCompleted, co.id
	}
	f.ended[co.status]++
}

func (co *fakeCheckout) json() map[string]any {
	return map[string]any{"id": co.id, "status": co.status, "order_id": co.orderID, "items": co.items, "steps": []any{}}
}

func (f *fakeCheckoutd) getCheckout(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f.mu.Lock()
	defer f.mu.Unlock()
	co, ok := f.checkouts[id]
	if !ok {
		writeProblem(w, http.StatusNotFound, "checkout-not-found", nil)
		return
	}
	if co.status == "running" {
		if co.pollsLeft--; co.pollsLeft == 0 {
			f.finish(co)
		}
	}
	body := co.json()
	if f.lieOnGet != nil {
		body["status"] = f.lieOnGet(id, co.status)
	}
	writeJSON(w, http.StatusOK, body)
}

// every returns a knob true for every k-th request.
func every(k int64) func(int64) bool { return func(n int64) bool { return n%k == 0 } }

func newTestRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0)) }
