package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeOrderd is a small in-memory orderd over net/http, honest unless one
// of its knobs makes it lie. Tests point the harness at it to prove the
// harness notices each kind of lie.
type fakeOrderd struct {
	srv     *httptest.Server // httptest listens on 127.0.0.1:0
	handler http.Handler     // what srv serves; addNodes serves it too

	mu     sync.Mutex
	orders map[string]*fakeOrder

	// Knobs; set before the first request.
	// lieOnGet may replace what GET shows of an order.
	lieOnGet func(id, state string, version uint64) (string, uint64)
	// dropWrite makes the server acknowledge a transition without applying it.
	dropWrite func(id, to string) bool
	// acceptInvalid makes the server apply steps the table forbids.
	acceptInvalid bool
	// delay holds the n-th request (from 1) before it is handled.
	delay func(n int64) time.Duration

	requests atomic.Int64
	inFlight atomic.Int64
	peak     atomic.Int64 // most requests in flight at once
}

type fakeOrder struct {
	state   string
	version uint64
}

func newFakeOrderd(t *testing.T, configure func(*fakeOrderd)) *fakeOrderd {
	t.Helper()
	f := &fakeOrderd{orders: make(map[string]*fakeOrder)}
	if configure != nil {
		configure(f)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("POST /v1/orders", f.create)
	mux.HandleFunc("POST /v1/orders/{id}/transitions", f.transition)
	mux.HandleFunc("GET /v1/orders/{id}", f.get)
	f.handler = f.track(mux)
	f.srv = httptest.NewServer(f.handler)
	t.Cleanup(f.srv.Close)
	return f
}

// fakeNode is one more server in front of a fakeOrderd's orders: several
// of them answer for any order, as the nodes of an orderd cluster do.
type fakeNode struct {
	srv    *httptest.Server
	served atomic.Int64 // requests other than /readyz
}

// addNodes starts n servers sharing f's orders and knobs.
func (f *fakeOrderd) addNodes(t *testing.T, n int) []*fakeNode {
	t.Helper()
	nodes := make([]*fakeNode, n)
	for i := range nodes {
		node := &fakeNode{}
		node.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/readyz" {
				node.served.Add(1)
			}
			f.handler.ServeHTTP(w, r)
		}))
		t.Cleanup(node.srv.Close)
		nodes[i] = node
	}
	return nodes
}

// track counts requests and concurrency, and applies delay.
func (f *fakeOrderd) track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.requests.Add(1)
		cur := f.inFlight.Add(1)
		defer f.inFlight.Add(-1)
		for {
			p := f.peak.Load()
			if cur <= p || f.peak.CompareAndSwap(p, cur) {
				break
			}
		}
		if r.URL.Path != "/readyz" && f.delay != nil {
			if d := f.delay(n); d > 0 {
				time.Sleep(d)
			}
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func orderJSON(id, state string, version uint64) map[string]any {
	return map[string]any{"id": id, "state": state, "version": version}
}

func (f *fakeOrderd) create(w http.ResponseWriter, r *http.Request) {
	var req struct{ ID string }
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.ID == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"status": 400})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.orders[req.ID]; ok {
		writeJSON(w, http.StatusConflict, map[string]any{"status": 409})
		return
	}
	f.orders[req.ID] = &fakeOrder{state: stateCreated, version: 1}
	writeJSON(w, http.StatusCreated, orderJSON(req.ID, stateCreated, 1))
}

func (f *fakeOrderd) transition(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req struct{ To string }
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"status": 400})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.orders[id]
	switch {
	case !ok:
		writeJSON(w, http.StatusNotFound, map[string]any{"status": 404})
	case !canTransition(o.state, req.To) && !f.acceptInvalid:
		writeJSON(w, http.StatusConflict, map[string]any{"status": 409, "current_state": o.state})
	case f.dropWrite != nil && f.dropWrite(id, req.To):
		writeJSON(w, http.StatusOK, orderJSON(id, req.To, o.version+1))
	default:
		o.state, o.version = req.To, o.version+1
		writeJSON(w, http.StatusOK, orderJSON(id, o.state, o.version))
	}
}

func (f *fakeOrderd) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.orders[id]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"status": 404})
		return
	}
	state, version := o.state, o.version
	if f.lieOnGet != nil {
		state, version = f.lieOnGet(id, state, version)
	}
	writeJSON(w, http.StatusOK, orderJSON(id, state, version))
}

func (f *fakeOrderd) client(t *testing.T, conns int) *apiClient {
	t.Helper()
	c, err := newAPIClient(f.srv.URL, conns, testRequestTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.closeIdle)
	return c
}

// testRequestTimeout is generous: the tests judge answers, not speed, and
// run under -race on a busy machine.
const testRequestTimeout = 30 * time.Second
