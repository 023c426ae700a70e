package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
)

// The linearizability workload: linClients clients race over HTTP on a
// rotating pair of hot orders and many cold ones. Bounded in operations,
// not in time, so that its checks never depend on the machine's speed.
const (
	linClients     = 16
	linOps         = 6000 // over all clients
	linHotOrders   = 100  // two at a time are hot
	linHotEpochOps = 60   // operations before the next two orders become hot
	linColdOrders  = 300
	// linShortTimeoutPercent of operations give up early, after
	// linShortTimeoutMin doubled 0 to linShortTimeoutDoublings times, so
	// some outcomes are unknown to the client: the server may or may not
	// have carried them out. The shortest always run out, before or after
	// the request reached the server; the longest sometimes.
	linShortTimeoutPercent   = 3
	linShortTimeoutMin       = 10 * time.Microsecond
	linShortTimeoutDoublings = 9 // up to 5.12 ms
	// linOverlapMin is how many answered operations must have been in
	// flight on one order at once for the run to count as a race.
	linOverlapMin = 4
	// linCheckTimeout bounds porcupine's search; a history it cannot
	// decide in time fails the test rather than passing it.
	linCheckTimeout = roomyTimeout
)

type linKind uint8

const (
	linCreate linKind = iota + 1
	linRead
	linTransition
)

// linInput is what a client asked. ifMatch 0 is no If-Match.
type linInput struct {
	kind    linKind
	id      string
	to      order.State
	ifMatch uint64
}

type linResult uint8

const (
	linOK       linResult = iota + 1 // 201 created, 200 transition (state, version), 200 read (state, version)
	linExists                        // 409 order-exists
	linInvalid                       // 409 invalid-transition, with the state that refused it
	linMismatch                      // 412 version-mismatch, with the current version
	linNotFound                      // 404 order-not-found
	linUnknown                       // timed out or 503 outcome-unknown: may or may not have happened
)

type linOutput struct {
	result  linResult
	state   order.State
	version uint64
}

// linState is one order as DESIGN §1 and §3 describe it: whether it exists,
// its state and its version.
type linState struct {
	exists  bool
	state   order.State
	version uint64
}

// linModel is the sequential specification each order must look like,
// one partition per order ID.
var linModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byID := map[string][]porcupine.Operation{}
		var ids []string
		for _, op := range history {
			id := op.Input.(linInput).id
			if _, ok := byID[id]; !ok {
				ids = append(ids, id)
			}
			byID[id] = append(byID[id], op)
		}
		out := make([][]porcupine.Operation, 0, len(ids))
		for _, id := range ids {
			out = append(out, byID[id])
		}
		return out
	},
	Init: func() any { return linState{} },
	Step: func(st, in, out any) (bool, any) {
		return linStep(st.(linState), in.(linInput), out.(linOutput))
	},
	DescribeOperation: func(in, out any) string {
		i, o := in.(linInput), out.(linOutput)
		return fmt.Sprintf("%d %s to=%v if-match=%d -> %d %v v%d", i.kind, i.id, i.to, i.ifMatch, o.result, o.state, o.version)
	},
	DescribeState: func(st any) string {
		s := st.(linState)
		return fmt.Sprintf("exists=%v %v v%d", s.exists, s.state, s.version)
	},
}

// linStep says whether the order in state s could have answered in with
// out, and what it is afterwards. An answer of 200 means the step happened
// at that version; 409 and 412 mean it did not and what they report was
// current; an unknown outcome may have happened (if it could) or not.
func linStep(s linState, in linInput, out linOutput) (bool, linState) {
	switch in.kind {
	case linCreate:
		created := linState{exists: true, state: order.Created, version: 1}
		switch out.result {
		case linOK:
			return !s.exists, created
		case linExists:
			return s.exists, s
		case linUnknown:
			if !s.exists {
				return true, created
			}
			return true, s
		}
	case linRead:
		switch out.result {
		case linOK:
			return s.exists && s.state == out.state && s.version == out.version, s
		case linNotFound:
			return !s.exists, s
		}
	case linTransition:
		precondition := s.exists && (in.ifMatch == 0 || in.ifMatch == s.version)
		allowed := precondition && order.CanTransition(s.state, in.to)
		next := linState{exists: true, state: in.to, version: s.version + 1}
		switch out.result {
		case linOK:
			return allowed && out.state == in.to && out.version == next.version, next
		case linInvalid:
			return precondition && !allowed && out.state == s.state, s
		case linMismatch:
			return s.exists && in.ifMatch != 0 && in.ifMatch != s.version && out.version == s.version, s
		case linNotFound:
			return !s.exists, s
		case linUnknown:
			if allowed {
				return true, next
			}
			return true, s
		}
	}
	return false, s
}

// linOp is one operation as a client saw it, with what the log check needs.
type linOp struct {
	op        porcupine.Operation
	requestID string
	status    int
}

// linHistory collects the operations of every client.
type linHistory struct {
	start time.Time
	mu    sync.Mutex
	ops   []linOp
	// Answers that promise nothing was applied (503 busy,
	// journal-unavailable, not-ready): they say nothing about the order's
	// state, so they are counted and left out of the history.
	nothingApplied int
}

func (h *linHistory) now() int64 { return time.Since(h.start).Nanoseconds() }

func (h *linHistory) add(op linOp) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
}

func (h *linHistory) operations() []porcupine.Operation {
	ops := make([]porcupine.Operation, len(h.ops))
	for i, o := range h.ops {
		ops[i] = o.op
	}
	return ops
}

// linClient is one client's view: what it last heard of each order, so that
// its If-Match and targets are plausible, stale only because of the others.
type linClient struct {
	id     int
	rng    *rand.Rand
	client *http.Client
	seen   map[string]linState
}

// TestLinearizability checks DESIGN §8 invariant 4 on a real orderd over
// HTTP on its embedded broker: concurrent clients race with random targets,
// some with If-Match, some giving up early; porcupine checks the history per
// order against the model of DESIGN §1 and §3; then the log itself is read
// back: versions contiguous per order, each step in the table, nothing
// answered 4xx in it, every 2xx in it exactly once (matched by X-Request-ID).
func TestLinearizability(t *testing.T) {
	seed := testSeed(t)
	dataDir := t.TempDir()
	m, url := e2eStartMain(t, dataDir)
	h, elapsed := runLinWorkload(t, seed, func() string { return url }, nil)
	require.NoError(t, m.Close())
	if t.Failed() {
		t.Fatalf("seed %d: the workload failed", seed)
	}
	history := checkLinHistory(t, seed, h, elapsed)

	// The test of the test, on this very history: a copy of one 200 claims
	// a second win at the same version, which no order can give.
	doctored := append([]porcupine.Operation(nil), history...)
	for _, op := range history {
		if op.Input.(linInput).kind == linTransition && op.Output.(linOutput).result == linOK {
			twin := op
			twin.ClientId = linClients // a client that does not exist
			doctored = append(doctored, twin)
			break
		}
	}
	require.Len(t, doctored, len(history)+1, "no transition succeeded; seed %d", seed)
	assert.Equal(t, porcupine.Illegal, porcupine.CheckOperationsTimeout(linModel, doctored, linCheckTimeout),
		"two 200s for one version must be caught")

	checkLinLog(t, e2eReadLogInDir(t, dataDir), h)
}

// runLinWorkload runs linOps operations from linClients clients over HTTP,
// each operation sent to urlOf's answer, and goes on beyond linOps until
// faultsDone (if not nil) is closed: a fault sequence running beside it is
// then entirely under load. It returns the history and how long it took.
func runLinWorkload(t *testing.T, seed uint64, urlOf func() string, faultsDone <-chan struct{}) (*linHistory, time.Duration) {
	hot := make([]string, linHotOrders)
	for i := range hot {
		hot[i] = fmt.Sprintf("hot-%02d", i)
	}
	cold := make([]string, linColdOrders)
	for i := range cold {
		cold[i] = fmt.Sprintf("cold-%03d", i)
	}
	done := func(n int64) bool {
		if n < linOps {
			return false
		}
		if faultsDone == nil {
			return true
		}
		select {
		case <-faultsDone:
			return true
		default:
			return false
		}
	}
	h := &linHistory{start: time.Now()}
	var issued atomic.Int64
	var wg sync.WaitGroup
	started := time.Now()
	for c := range linClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			transport := &http.Transport{MaxIdleConnsPerHost: 1}
			defer transport.CloseIdleConnections()
			cl := &linClient{id: c, rng: rand.New(rand.NewPCG(seed, uint64(c))),
				client: &http.Client{Transport: transport}, seen: map[string]linState{}}
			for {
				n := issued.Add(1) - 1
				if done(n) {
					return
				}
				id := cold[cl.rng.IntN(len(cold))]
				if cl.rng.IntN(2) == 0 {
					epoch := int(n / linHotEpochOps)
					id = hot[(2*epoch+cl.rng.IntN(2))%len(hot)]
				}
				cl.do(t, h, urlOf(), id, fmt.Sprintf("lin-%d-%d", c, n))
			}
		}()
	}
	wg.Wait()
	return h, time.Since(started)
}

// checkLinHistory checks that the workload exercised what the checks are
// about, and that porcupine finds the history linearizable; it returns the
// history.
func checkLinHistory(t *testing.T, seed uint64, h *linHistory, elapsed time.Duration) []porcupine.Operation {
	t.Helper()
	results := map[linResult]int{}
	ifMatchWins := 0
	for _, o := range h.ops {
		out := o.op.Output.(linOutput)
		results[out.result]++
		if out.result == linOK && o.op.Input.(linInput).ifMatch != 0 {
			ifMatchWins++
		}
	}
	t.Logf("%d operations in %v: %d 2xx (%d with If-Match), %d 409 invalid-transition, %d 409 order-exists, "+
		"%d 412, %d 404, %d unknown outcomes; %d 503s that applied nothing",
		len(h.ops), elapsed.Round(time.Millisecond), results[linOK], ifMatchWins, results[linInvalid],
		results[linExists], results[linMismatch], results[linNotFound], results[linUnknown], h.nothingApplied)
	// The workload must have exercised what the checks are about.
	for _, r := range []linResult{linOK, linInvalid, linExists, linMismatch, linUnknown} {
		require.Positive(t, results[r], "no operation ended with result %d; seed %d", r, seed)
	}
	require.Positive(t, ifMatchWins, "seed %d", seed)
	overlap := maxOverlap(h.operations())
	t.Logf("at most %d answered operations overlapped on one order", overlap)
	require.GreaterOrEqual(t, overlap, linOverlapMin, "the hot orders were not raced on; seed %d", seed)

	checkStart := time.Now()
	history := h.operations()
	result, info := porcupine.CheckOperationsVerbose(linModel, history, linCheckTimeout)
	t.Logf("porcupine: %s in %v", result, time.Since(checkStart).Round(time.Millisecond))
	if result != porcupine.Ok {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("orderd-linearizability-%d.html", seed))
		if err := porcupine.VisualizePath(linModel, info, path); err == nil {
			t.Logf("visualization: %s", path)
		}
	}
	require.Equal(t, porcupine.Ok, result, "seed %d", seed)
	return history
}

// maxOverlap is the largest number of answered operations on one order
// whose intervals share an instant.
func maxOverlap(history []porcupine.Operation) int {
	type edge struct {
		at    int64
		delta int
	}
	byID := map[string][]edge{}
	for _, op := range history {
		if op.Return == math.MaxInt64 {
			continue
		}
		id := op.Input.(linInput).id
		// Intervals are closed: at equal times, starts count before ends.
		byID[id] = append(byID[id], edge{op.Call, 1}, edge{op.Return, -1})
	}
	most := 0
	for _, edges := range byID {
		slices.SortFunc(edges, func(a, b edge) int {
			if a.at != b.at {
				return cmp.Compare(a.at, b.at)
			}
			return cmp.Compare(b.delta, a.delta)
		})
		n := 0
		for _, e := range edges {
			n += e.delta
			most = max(most, n)
		}
	}
	return most
}

// do runs one random operation on order id and records it.
func (cl *linClient) do(t *testing.T, h *linHistory, url, id, requestID string) {
	in := linInput{id: id}
	method, path, body := "POST", url+"/v1/orders/"+id+"/transitions", ""
	// Orders the client has not seen yet are mostly created first, so
	// that most operations meet an order and race on it.
	createPercent := 10
	if !cl.seen[id].exists {
		createPercent = 50
	}
	switch r := cl.rng.IntN(100); {
	case r < createPercent:
		in.kind, method, path, body = linCreate, "POST", url+"/v1/orders", fmt.Sprintf(`{"id":%q}`, id)
	case r < createPercent+15:
		in.kind, method, path = linRead, "GET", url+"/v1/orders/"+id
	default:
		in.kind, in.to = linTransition, cl.target(id)
		body = fmt.Sprintf(`{"to":%q}`, in.to)
		if cl.rng.IntN(100) < 40 {
			in.ifMatch = cl.seen[id].version
			if in.ifMatch == 0 || cl.rng.IntN(10) == 0 {
				in.ifMatch = uint64(1 + cl.rng.IntN(5))
			}
		}
	}
	timeout := e2eTimeout
	if cl.rng.IntN(100) < linShortTimeoutPercent {
		timeout = linShortTimeoutMin << cl.rng.IntN(linShortTimeoutDoublings+1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
	if !assert.NoError(t, err) {
		return
	}
	req.Header.Set("X-Request-ID", requestID)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if in.ifMatch != 0 {
		req.Header.Set("If-Match", fmt.Sprintf(`"%d"`, in.ifMatch))
	}

	call := h.now()
	status, doc, err := linSend(cl.client, req)
	ret := h.now()
	out, known := linOutput{result: linUnknown}, true
	if err != nil {
		ret = math.MaxInt64 // a timeout: it may take effect at any time after its call
	} else {
		out, known = linClassify(t, in, status, doc, requestID)
	}
	if !known {
		h.mu.Lock()
		h.nothingApplied++
		h.mu.Unlock()
		return
	}
	if out.result == linUnknown {
		ret = math.MaxInt64
	}
	if in.kind == linRead && out.result == linUnknown {
		return // a read that was not answered changed nothing and saw nothing
	}
	cl.learn(id, out)
	h.add(linOp{requestID: requestID, status: status, op: porcupine.Operation{
		ClientId: cl.id, Input: in, Call: call, Output: out, Return: ret,
	}})
}

// target picks an allowed next state of what the client last saw more often
// than not, so that orders move along their paths, and any state otherwise.
func (cl *linClient) target(id string) order.State {
	if s := cl.seen[id]; s.exists && cl.rng.IntN(100) < 60 {
		if next := order.AllowedNext(s.state); len(next) > 0 {
			return next[cl.rng.IntN(len(next))]
		}
	}
	states := order.States()
	return states[cl.rng.IntN(len(states))]
}

func (cl *linClient) learn(id string, out linOutput) {
	s := cl.seen[id]
	switch out.result {
	case linOK:
		s = linState{exists: true, state: out.state, version: out.version}
	case linInvalid:
		s.exists, s.state = true, out.state
	case linMismatch:
		s.exists, s.version = true, out.version
	case linExists:
		s.exists = true
	}
	cl.seen[id] = s
}

func linSend(client *http.Client, req *http.Request) (int, map[string]any, error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, doc, nil
}

// linClassify turns an answer into the model's output. known is false for the
// 503s that promise nothing was applied.
func linClassify(t *testing.T, in linInput, status int, doc map[string]any, requestID string) (out linOutput, known bool) {
	code, _ := doc["type"].(string)
	code = strings.TrimPrefix(code, "urn:orderd:problem:")
	state := func(member string) order.State {
		name, _ := doc[member].(string)
		s, err := order.ParseState(name)
		assert.NoError(t, err, "%s: %v", requestID, doc)
		return s
	}
	version := func(member string) uint64 {
		v, _ := doc[member].(float64)
		return uint64(v)
	}
	switch {
	case status == http.StatusCreated && in.kind == linCreate,
		status == http.StatusOK && in.kind != linCreate:
		return linOutput{result: linOK, state: state("state"), version: version("version")}, true
	case status == http.StatusConflict && code == "order-exists" && in.kind == linCreate:
		return linOutput{result: linExists}, true
	case status == http.StatusConflict && code == "invalid-transition" && in.kind == linTransition:
		return linOutput{result: linInvalid, state: state("current_state")}, true
	case status == http.StatusPreconditionFailed && code == "version-mismatch" && in.ifMatch != 0:
		return linOutput{result: linMismatch, version: version("current_version")}, true
	case status == http.StatusNotFound && code == "order-not-found" && in.kind != linCreate:
		return linOutput{result: linNotFound}, true
	case status == http.StatusServiceUnavailable && code == "outcome-unknown":
		return linOutput{result: linUnknown}, true
	case status == http.StatusServiceUnavailable && (code == "busy" || code == "journal-unavailable" || code == "not-ready"):
		return linOutput{}, false
	}
	t.Errorf("%s: unexpected answer %d %v to %+v", requestID, status, doc, in)
	return linOutput{}, false
}

// checkLinLog checks the log against the answers: DESIGN §8 invariant 3
// (valid paths, nothing answered 4xx applied) and that every 2xx is in it
// exactly once, at the version and state it was answered with, and that an
// unknown outcome is in it at most once.
func checkLinLog(t *testing.T, log map[string][]order.Event, h *linHistory) {
	t.Helper()
	byRequest := map[string][]order.Event{}
	for id, events := range log {
		var o order.Order
		for i, ev := range events {
			require.Equal(t, uint64(i+1), ev.Version, "order %s: versions are 1, 2, 3...", id)
			next, err := order.Apply(o, ev)
			require.NoError(t, err, "order %s: every step is in the table", id)
			o = next
			byRequest[ev.RequestID] = append(byRequest[ev.RequestID], ev)
		}
	}
	sent := map[string]bool{}
	for _, o := range h.ops {
		sent[o.requestID] = true
		in, out := o.op.Input.(linInput), o.op.Output.(linOutput)
		events := byRequest[o.requestID]
		switch {
		case in.kind == linRead:
			assert.Empty(t, events, "a read is never written")
		case out.result == linOK:
			if assert.Len(t, events, 1, "%s answered %d: in the log exactly once", o.requestID, o.status) {
				assert.Equal(t, out.version, events[0].Version, o.requestID)
				assert.Equal(t, out.state, events[0].To, o.requestID)
				assert.Equal(t, in.id, events[0].OrderID, o.requestID)
			}
		case out.result == linUnknown:
			assert.LessOrEqual(t, len(events), 1, "%s (unknown outcome): at most once", o.requestID)
		default:
			assert.Empty(t, events, "%s answered %d: never in the log", o.requestID, o.status)
		}
	}
	for rid := range byRequest {
		assert.True(t, sent[rid], "%s is in the log, but no client sent it or it was answered with nothing applied", rid)
	}
}

// TestLinearizabilityCheckerCatchesBrokenServers is the test of the test:
// histories that break DESIGN §3 must make the checker fail, or its Ok in
// TestLinearizability would prove nothing.
func TestLinearizabilityCheckerCatchesBrokenServers(t *testing.T) {
	created := linOutput{result: linOK, state: order.Created, version: 1}
	op := func(client int, in linInput, call int64, out linOutput, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
	}
	create := linInput{kind: linCreate, id: "o"}
	pay := linInput{kind: linTransition, id: "o", to: order.Paid}
	cancel := linInput{kind: linTransition, id: "o", to: order.Cancelled}

	t.Run("TwoWinnersAtOneVersion", func(t *testing.T) {
		history := []porcupine.Operation{
			op(0, create, 0, created, 1),
			op(1, pay, 2, linOutput{result: linOK, state: order.Paid, version: 2}, 5),
			op(2, cancel, 3, linOutput{result: linOK, state: order.Cancelled, version: 2}, 6),
		}
		assert.Equal(t, porcupine.Illegal, porcupine.CheckOperationsTimeout(linModel, history, linCheckTimeout))
		// Either one alone is fine: the model is not simply refusing.
		assert.Equal(t, porcupine.Ok, porcupine.CheckOperationsTimeout(linModel, history[:2], linCheckTimeout))
	})
	t.Run("StaleRead", func(t *testing.T) {
		history := []porcupine.Operation{
			op(0, create, 0, created, 1),
			op(1, pay, 2, linOutput{result: linOK, state: order.Paid, version: 2}, 3),
			op(2, linInput{kind: linRead, id: "o"}, 4, created, 5),
		}
		assert.Equal(t, porcupine.Illegal, porcupine.CheckOperationsTimeout(linModel, history, linCheckTimeout))
	})
	t.Run("UnknownOutcomeMayGoEitherWay", func(t *testing.T) {
		unknown := op(1, pay, 2, linOutput{result: linUnknown}, math.MaxInt64)
		seenPaid := []porcupine.Operation{op(0, create, 0, created, 1), unknown,
			op(2, linInput{kind: linRead, id: "o"}, 4, linOutput{result: linOK, state: order.Paid, version: 2}, 5)}
		seenCreated := []porcupine.Operation{op(0, create, 0, created, 1), unknown,
			op(2, linInput{kind: linRead, id: "o"}, 4, created, 5)}
		assert.Equal(t, porcupine.Ok, porcupine.CheckOperationsTimeout(linModel, seenPaid, linCheckTimeout))
		assert.Equal(t, porcupine.Ok, porcupine.CheckOperationsTimeout(linModel, seenCreated, linCheckTimeout))
	})

	// A server that skips the version check, driven over HTTP with a fixed
	// script: its answers are fine one by one, but If-Match "1" cannot win
	// at version 3. The same script against the real server is Ok.
	for name, broken := range map[string]bool{"RealServer": false, "SkipsVersionCheck": true} {
		t.Run(name, func(t *testing.T) {
			j := persistence.NewMemoryJournal()
			sys, err := actors.New(actors.Config{Journal: j, Shards: 1, ShardOf: func(string) int { return 0 }})
			require.NoError(t, err)
			_, err = sys.Recover(context.Background())
			require.NoError(t, err)
			var svc actors.Service = sys
			if broken {
				svc = skipVersionCheck{sys}
			}
			url := e2eServe(t, svc, sys.Close)
			h := &linHistory{start: time.Now()}
			cl := &linClient{rng: rand.New(rand.NewPCG(1, 2)), client: e2eClient, seen: map[string]linState{}}
			script := []struct {
				in   linInput
				body string
			}{
				{linInput{kind: linCreate, id: "o"}, `{"id":"o"}`},
				{linInput{kind: linTransition, id: "o", to: order.Paid, ifMatch: 1}, `{"to":"Paid"}`},
				{linInput{kind: linTransition, id: "o", to: order.Cancelled, ifMatch: 1}, `{"to":"Cancelled"}`},
			}
			for i, step := range script {
				cl.id = i
				path := url + "/v1/orders/o/transitions"
				if step.in.kind == linCreate {
					path = url + "/v1/orders"
				}
				req, err := http.NewRequest("POST", path, strings.NewReader(step.body))
				require.NoError(t, err)
				req.Header.Set("Content-Type", "application/json")
				if step.in.ifMatch != 0 {
					req.Header.Set("If-Match", fmt.Sprintf(`"%d"`, step.in.ifMatch))
				}
				call := h.now()
				status, doc, err := linSend(cl.client, req)
				require.NoError(t, err)
				out, known := linClassify(t, step.in, status, doc, fmt.Sprint(i))
				require.True(t, known)
				h.add(linOp{op: porcupine.Operation{ClientId: i, Input: step.in, Call: call, Output: out, Return: h.now()}})
			}
			want := porcupine.Ok
			if broken {
				want = porcupine.Illegal
			}
			assert.Equal(t, want, porcupine.CheckOperationsTimeout(linModel, h.operations(), linCheckTimeout))
		})
	}
}

// skipVersionCheck is a deliberately broken service: it drops If-Match.
type skipVersionCheck struct{ *actors.System }

func (s skipVersionCheck) Execute(ctx context.Context, cmd order.Command) (order.Order, error) {
	cmd.ExpectedVersion = 0
	return s.System.Execute(ctx, cmd)
}
