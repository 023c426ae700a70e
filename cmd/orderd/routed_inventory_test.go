package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/actors"
	orderhttp "github.com/orderd/orderd/http"
	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
)

// The keys of the inventory peers in these tests: a client's, and the node
// key the wrapper calls with.
const (
	invClientToken = "0123456789abcdef-client"
	invNodeToken   = "0123456789abcdef-node"
)

var invPeerKeys = []orderhttp.APIKey{{Principal: "alice", Token: invClientToken}, {Principal: "node", Token: invNodeToken}}

// newInventorySystem is a real actor system on a memory journal.
func newInventorySystem(t *testing.T) *actors.System {
	t.Helper()
	sys, err := actors.New(actors.Config{Journal: persistence.NewMemoryJournal(), Shards: 1, ShardOf: func(string) int { return 0 }, Logger: e2eLogger(t)})
	require.NoError(t, err)
	_, err = sys.Recover(context.Background())
	require.NoError(t, err)
	t.Cleanup(sys.Close)
	return sys
}

// servePeer serves svc's HTTP API, with the peer keys, on port 0.
func servePeer(t *testing.T, svc actors.Service) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := orderhttp.New(svc, orderhttp.Config{Logger: e2eLogger(t), RequestTimeout: roomyRequestTimeout,
		APIKeys: invPeerKeys, NodePrincipal: "node"})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
		require.NoError(t, <-served)
	})
	return "http://" + ln.Addr().String()
}

// fixedRouter places every SKU at url, or here when local; err, if set, is
// every Owner's answer once ctx ends (a partition without an owner).
type fixedRouter struct {
	url   string
	local bool
	err   error
}

func (r fixedRouter) PartitionOf(string) int { return 0 }

func (r fixedRouter) Owner(ctx context.Context, _ int) (string, bool, error) {
	if r.err != nil {
		<-ctx.Done()
		return "", false, fmt.Errorf("%w: %w", r.err, ctx.Err())
	}
	return r.url, r.local, nil
}

// refLog is a System that records the HoldRefs of the hold commands.
type refLog struct {
	*actors.System
	mu   sync.Mutex
	refs []actors.HoldRef
}

func (l *refLog) record(ref actors.HoldRef) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refs = append(l.refs, ref)
}

func (l *refLog) all() []actors.HoldRef {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]actors.HoldRef(nil), l.refs...)
}

func (l *refLog) Reserve(ctx context.Context, ref actors.HoldRef, q int64) (actors.InventoryResult, error) {
	l.record(ref)
	return l.System.Reserve(ctx, ref, q)
}

func (l *refLog) Release(ctx context.Context, ref actors.HoldRef) (actors.InventoryResult, error) {
	l.record(ref)
	return l.System.Release(ctx, ref)
}

// invStep is one call of the script both services run.
type invStep struct {
	name string
	run  func(context.Context, actors.InventoryService) (any, error)
}

func reserve(sku, id string, q int64) invStep {
	return invStep{fmt.Sprintf("reserve %s %s %d", sku, id, q), func(ctx context.Context, s actors.InventoryService) (any, error) {
		return s.Reserve(ctx, actors.HoldRef{SKU: sku, OrderID: id, OrderVersion: 1, Principal: "alice", RequestID: "req-" + id}, q)
	}}
}

func holdStep(name string, f func(actors.InventoryService) func(context.Context, actors.HoldRef) (actors.InventoryResult, error), sku, id string) invStep {
	return invStep{name + " " + sku + " " + id, func(ctx context.Context, s actors.InventoryService) (any, error) {
		return f(s)(ctx, actors.HoldRef{SKU: sku, OrderID: id, OrderVersion: 3, Principal: "alice", RequestID: "req-" + id})
	}}
}

func setStock(sku string, n int64, ifMatch uint64) invStep {
	return invStep{fmt.Sprintf("set %s %d if %d", sku, n, ifMatch), func(ctx context.Context, s actors.InventoryService) (any, error) {
		return s.SetStock(ctx, actors.StockSet{SKU: sku, OnHand: n, ExpectedVersion: ifMatch, Principal: "alice"})
	}}
}

func getStock(sku string) invStep {
	return invStep{"get " + sku, func(ctx context.Context, s actors.InventoryService) (any, error) { return s.GetStock(ctx, sku) }}
}

var (
	release = func(s actors.InventoryService) func(context.Context, actors.HoldRef) (actors.InventoryResult, error) {
		return s.Release
	}
	consume = func(s actors.InventoryService) func(context.Context, actors.HoldRef) (actors.InventoryResult, error) {
		return s.Consume
	}
	restock = func(s actors.InventoryService) func(context.Context, actors.HoldRef) (actors.InventoryResult, error) {
		return s.Restock
	}
)

// TestRoutedInventoryMatchesLocal: the same script of inventory calls, run
// on a local actor system and through the wrapper on another node's HTTP
// API, gives the same results and the same typed errors, and the remote
// hold records name the caller's principal and request.
func TestRoutedInventoryMatchesLocal(t *testing.T) {
	local := newInventorySystem(t)
	remote := &refLog{System: newInventorySystem(t)}
	routed := newRoutedInventory(nil, fixedRouter{url: servePeer(t, remote)}, invNodeToken, roomyRequestTimeout)
	t.Cleanup(routed.close)

	script := []invStep{
		getStock("mug"), // sku-not-found
		setStock("mug", 5, 0),
		reserve("mug", "o-1", 3),
		reserve("mug", "o-1", 3), // a retry: no-op
		reserve("mug", "o-1", 2), // hold-conflict, with the hold
		reserve("mug", "o-2", 4), // out of stock
		reserve("ghost", "o-2", 1),
		reserve("mug", "o-2", 0),                   // bad quantity
		reserve("a:b", "o-2", 1),                   // bad SKU
		reserve("mug", "o 2", 1),                   // bad order ID
		holdStep("consume", consume, "mug", "o-4"), // nothing held
		holdStep("restock", restock, "mug", "o-1"), // nothing consumed yet
		setStock("mug", 2, 0),                      // below reserved
		setStock("mug", 6, 7),                      // If-Match
		holdStep("consume", consume, "mug", "o-1"),
		holdStep("restock", restock, "mug", "o-1"),
		holdStep("release", release, "mug", "o-1"), // no-op after the restock
		holdStep("release", release, "mug", "o-3"), // released before held
		reserve("mug", "o-3", 1),                   // holds nothing
		getStock("mug"),
	}
	ctx := context.Background()
	for _, step := range script {
		want, wantErr := step.run(ctx, local)
		got, gotErr := step.run(ctx, routed)
		assert.Equal(t, wantErr == nil, gotErr == nil, "%s: local %v, remote %v", step.name, wantErr, gotErr)
		if wantErr == nil { // what comes with an error is not part of the contract
			assert.Equal(t, want, got, step.name)
		}
		for _, sentinel := range []error{order.ErrSKUNotFound, order.ErrOutOfStock, order.ErrHoldConflict, order.ErrStockReserved,
			order.ErrVersionMismatch, order.ErrInvalidInventory} {
			assert.Equal(t, errors.Is(wantErr, sentinel), errors.Is(gotErr, sentinel), "%s: %v: local %v, remote %v", step.name, sentinel, wantErr, gotErr)
		}
		var wantOOS, gotOOS *order.OutOfStockError
		if errors.As(wantErr, &wantOOS) && assert.ErrorAs(t, gotErr, &gotOOS, step.name) {
			assert.Equal(t, wantOOS, gotOOS, step.name)
		}
		var wantHC, gotHC *order.HoldConflictError
		if errors.As(wantErr, &wantHC) && assert.ErrorAs(t, gotErr, &gotHC, step.name) {
			assert.Equal(t, wantHC, gotHC, step.name)
		}
		var wantIE, gotIE *order.InventoryError
		if errors.As(wantErr, &wantIE) && assert.ErrorAs(t, gotErr, &gotIE, step.name) {
			assert.Equal(t, wantIE, gotIE, step.name)
		}
		var wantVM, gotVM *order.VersionMismatchError
		if errors.As(wantErr, &wantVM) && assert.ErrorAs(t, gotErr, &gotVM, step.name) {
			assert.Equal(t, wantVM, gotVM, step.name)
		}
	}
	for _, ref := range remote.all() {
		assert.Equal(t, "alice", ref.Principal, "the node acts for the caller's principal")
		assert.Equal(t, "req-"+ref.OrderID, ref.RequestID)
	}
	assert.NotEmpty(t, remote.all())
}

// failingInventory answers every hold command with err.
type failingInventory struct {
	*actors.System
	err error
}

func (f failingInventory) Reserve(context.Context, actors.HoldRef, int64) (actors.InventoryResult, error) {
	return actors.InventoryResult{}, f.err
}

func (f failingInventory) GetStock(context.Context, string) (order.Stock, error) {
	return order.Stock{}, f.err
}

// passingErrors are the errors the saga retries on (actors/checkout.go).
var passingErrors = []error{actors.ErrBusy, actors.ErrNotReady, order.ErrJournalUnavailable, order.ErrOutcomeUnknown}

func isPassing(err error) bool {
	for _, p := range passingErrors {
		if errors.Is(err, p) {
			return true
		}
	}
	return false
}

// TestRoutedInventoryFailures: the owner's passing refusals come back as
// the same sentinels; an owner that cannot be reached, or that no node is,
// is "not ready" (nothing sent); one that does not answer a command is
// "outcome unknown", a read "not ready"; a key the peer refuses is not
// passing. Each within its bound.
func TestRoutedInventoryFailures(t *testing.T) {
	ctx := context.Background()
	ref := actors.HoldRef{SKU: "mug", OrderID: "o-1"}
	for _, sentinel := range passingErrors {
		url := servePeer(t, failingInventory{System: newInventorySystem(t), err: fmt.Errorf("%w: injected", sentinel)})
		routed := newRoutedInventory(nil, fixedRouter{url: url}, invNodeToken, roomyRequestTimeout)
		_, err := routed.Reserve(ctx, ref, 1)
		assert.ErrorIs(t, err, sentinel)
		_, err = routed.GetStock(ctx, "mug")
		assert.True(t, isPassing(err), "a read's %v: %v", sentinel, err)
		routed.close()
	}

	began := time.Now()
	_, err := newRoutedInventory(nil, fixedRouter{err: actors.ErrNotReady}, "", time.Second).Reserve(ctx, ref, 1)
	assert.ErrorIs(t, err, actors.ErrNotReady, "no owner")
	assert.Less(t, time.Since(began), inventoryOwnerWaitMax+roomyTimeout/4)

	_, err = newRoutedInventory(nil, fixedRouter{url: "http://" + freeLoopbackAddr(t)}, "", time.Second).Reserve(ctx, ref, 1)
	assert.ErrorIs(t, err, actors.ErrNotReady, "nothing listens: nothing sent")

	silent := silentListener(t)
	short := newRoutedInventory(nil, fixedRouter{url: silent}, "", 10*time.Millisecond)
	began = time.Now()
	_, err = short.Reserve(ctx, ref, 1)
	assert.ErrorIs(t, err, order.ErrOutcomeUnknown, "sent, never answered")
	assert.Less(t, time.Since(began), inventoryHopSlack+roomyTimeout/4)
	_, err = short.GetStock(ctx, "mug")
	assert.ErrorIs(t, err, actors.ErrNotReady, "a read that was not answered changed nothing")
	short.close()

	url := servePeer(t, newInventorySystem(t))
	_, err = newRoutedInventory(nil, fixedRouter{url: url}, "0123456789abcdef-wrong", time.Second).Reserve(ctx, ref, 1)
	require.Error(t, err)
	assert.False(t, isPassing(err), "a refused key is a setup error, not one to wait out: %v", err)
	_, err = newRoutedInventory(nil, fixedRouter{url: url}, invClientToken, time.Second).Reserve(ctx, actors.HoldRef{SKU: "mug", OrderID: "o-1", Principal: "bob"}, 1)
	assert.False(t, isPassing(err), "a client key may not act for another: %v", err)
	assert.Contains(t, err.Error(), "forbidden")
}

// TestRoutedInventoryLocal: a SKU this node serves goes to the local
// service, never over HTTP.
func TestRoutedInventoryLocal(t *testing.T) {
	local := &refLog{System: newInventorySystem(t)}
	routed := newRoutedInventory(local, fixedRouter{url: "http://" + freeLoopbackAddr(t), local: true}, "", time.Second)
	_, err := routed.Release(context.Background(), actors.HoldRef{SKU: "mug", OrderID: "o-1", Principal: "alice"})
	require.NoError(t, err)
	assert.Equal(t, []actors.HoldRef{{SKU: "mug", OrderID: "o-1", Principal: "alice"}}, local.all())
}

// silentListener accepts connections and reads them, never answering,
// until the test ends; it returns its base URL.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}
