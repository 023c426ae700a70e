package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// stockClient is what the setup and the verification ask of a server.
type stockClient interface {
	putStock(sku string, onHand int64) stockAnswer
	getStock(sku string) stockAnswer
	getCheckout(path string) checkoutAnswer
}

var _ stockClient = (*apiClient)(nil)

// forEach runs do(i, client) for i in [0, n) on up to workers goroutines,
// worker k going through clients[k mod len(clients)], until ctx ends.
func forEach(ctx context.Context, clients []stockClient, n, workers int, do func(i int, c stockClient)) {
	workers = max(1, min(workers, verifyWorkersMax, n))
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			c := clients[w%len(clients)]
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				do(i, c)
			}
		})
	}
	wg.Wait()
}

// patiently asks again, after a pause, while the answer is a 503 or a 429:
// the setup and the verification are not part of the measurement.
func patiently[A any](ctx context.Context, ask func() A, status func(A) (int, time.Duration)) A {
	for try := 1; ; try++ {
		a := ask()
		s, retryAfter := status(a)
		if !retryable(s) || try == verifyRateLimitedTries || !pause(ctx, time.Now().Add(checkoutPatience), retryPause(retryAfter)) {
			return a
		}
	}
}

func stockStatus(a stockAnswer) (int, time.Duration)     { return a.status, 0 }
func answerStatus(a checkoutAnswer) (int, time.Duration) { return a.status, a.retryAfter }

// setupStock sets every SKU's units on hand to w.stock before the run. The
// SKUs are new (their names carry the run's prefix), so each must answer
// with nothing reserved; anything else means the verification after the
// run could not be trusted, and the run does not start.
func setupStock(ctx context.Context, clients []stockClient, w *checkoutWorkload, workers int) error {
	var (
		mu    sync.Mutex
		first error
	)
	// The first failure stops the others: a server without the inventory
	// API would refuse every SKU alike.
	setupCtx, stop := context.WithCancel(ctx)
	defer stop()
	forEach(setupCtx, clients, len(w.skus), workers, func(i int, c stockClient) {
		sku := w.skus[i]
		a := patiently(ctx, func() stockAnswer { return c.putStock(sku, w.stock) }, stockStatus)
		var err error
		switch {
		case a.status == 0:
			err = fmt.Errorf("PUT %s%s: %w", inventoryPath, sku, a.err)
		case a.status != http.StatusOK:
			err = fmt.Errorf("PUT %s%s: status %d, want 200: does this orderd serve inventory (issue 16)?", inventoryPath, sku, a.status)
		case !a.decoded || a.OnHand != w.stock || a.Reserved != 0:
			err = fmt.Errorf("PUT %s%s to %d: answered on_hand %d reserved %d (decoded %v), want %d and 0", inventoryPath, sku, w.stock, a.OnHand, a.Reserved, a.decoded, w.stock)
		}
		if err != nil {
			mu.Lock()
			if first == nil {
				first = err
			}
			mu.Unlock()
			stop()
		}
	})
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// checkoutVerify is the outcome of the verification after a checkout run.
type checkoutVerify struct {
	// Checkouts is those with an ID read back; CheckoutsChecked those read
	// and judged; CheckoutMismatches those whose status was not the one
	// answered, or could not be read.
	Checkouts          int   `json:"checkouts"`
	CheckoutsChecked   int64 `json:"checkouts_checked"`
	CheckoutMismatches int64 `json:"checkout_mismatches"`
	// InDoubt is the checkouts whose end is still unknown after the
	// read-back: their units may or may not be held, and the check allows both.
	InDoubt int `json:"in_doubt"`
	// SKUs is those stocked; SKUsChecked those read and judged;
	// StockMismatches those not conserved, or unreadable.
	SKUs            int      `json:"skus"`
	SKUsChecked     int64    `json:"skus_checked"`
	StockMismatches int64    `json:"stock_mismatches"`
	Samples         []string `json:"samples,omitempty"`
	Seconds         float64  `json:"seconds"`
}

func (v checkoutVerify) ok() bool {
	return v.CheckoutMismatches == 0 && v.CheckoutsChecked == int64(v.Checkouts) &&
		v.StockMismatches == 0 && v.SKUsChecked == int64(v.SKUs)
}

// verifyCheckouts reads back every checkout that has an ID, then every
// SKU's stock, and checks stock conservation: nothing ships in this
// workload, so each SKU's on_hand must still be the initial stock, and its
// reserved units exactly the sum over the completed checkouts that bought
// it (their orders, left in Paid, hold their reservation), give or take
// the checkouts whose end stayed unknown. A checkout whose end the run
// never learned but the read-back shows is counted as it ended.
func verifyCheckouts(ctx context.Context, clients []stockClient, w *checkoutWorkload, tracks []*checkoutTrack, workers int) checkoutVerify {
	began := time.Now()
	v := checkoutVerify{SKUs: len(w.skus)}
	var (
		mu       sync.Mutex
		failures failureLog
		checked  atomic.Int64
	)
	report := func(format string, a ...any) {
		mu.Lock()
		failures.add(fmt.Sprintf(format, a...))
		mu.Unlock()
	}
	var withID []*checkoutTrack
	for _, t := range tracks {
		if t.id != "" {
			withID = append(withID, t)
		}
	}
	v.Checkouts = len(withID)
	forEach(ctx, clients, len(withID), workers, func(i int, c stockClient) {
		if problem := verifyCheckout(ctx, c, withID[i]); problem != "" {
			report("%s", problem)
		}
		checked.Add(1)
	})
	v.CheckoutsChecked = checked.Load()
	v.CheckoutMismatches = failures.count

	held, doubt := make(map[string]int64), make(map[string]int64)
	for _, t := range tracks {
		switch {
		case t.end == endCompleted:
			addItems(held, t.items)
		case t.end == endUnknown:
			v.InDoubt++
			addItems(doubt, t.items)
		}
	}
	checked.Store(0)
	forEach(ctx, clients, len(w.skus), workers, func(i int, c stockClient) {
		sku := w.skus[i]
		a := patiently(ctx, func() stockAnswer { return c.getStock(sku) }, stockStatus)
		checked.Add(1)
		if problem := judgeStock(sku, a, w.stock, held[sku], doubt[sku]); problem != "" {
			report("%s", problem)
		}
	})
	v.SKUsChecked = checked.Load()
	v.StockMismatches = failures.count - v.CheckoutMismatches
	v.Samples = failures.samples
	v.Seconds = time.Since(began).Seconds()
	return v
}

func addItems(units map[string]int64, items []checkoutItem) {
	for _, it := range items {
		units[it.sku] += it.quantity
	}
}

// verifyCheckout reads t back. A checkout that ended must show the status
// it was answered with (and its order); one in doubt takes the status the
// read shows, if it has ended since.
func verifyCheckout(ctx context.Context, c stockClient, t *checkoutTrack) string {
	a := patiently(ctx, func() checkoutAnswer { return c.getCheckout(checkoutsPath + "/" + url.PathEscape(t.id)) }, answerStatus)
	if t.end == endUnknown {
		if a.status == http.StatusOK && a.decoded && a.body.ID == t.id && isFinished(a.body.Status) {
			t.status, t.orderID = a.body.Status, a.body.OrderID
			t.end = endCompensated
			if a.body.Status == checkoutCompleted {
				t.end = endCompleted
			}
		}
		return ""
	}
	switch {
	case a.status == 0:
		return fmt.Sprintf("checkout %s (%s): could not read it back: %v", t.id, t.key, a.err)
	case a.status != http.StatusOK || !a.decoded || a.body.ID != t.id:
		return fmt.Sprintf("checkout %s (%s): read back with status %d id %q, want 200 and the checkout", t.id, t.key, a.status, a.body.ID)
	case a.body.Status != t.status:
		return fmt.Sprintf("checkout %s (%s): reads back %s, but was answered %s", t.id, t.key, a.body.Status, t.status)
	case t.orderID != "" && a.body.OrderID != t.orderID:
		return fmt.Sprintf("checkout %s (%s): reads back order %q, but was answered order %q", t.id, t.key, a.body.OrderID, t.orderID)
	}
	return ""
}

// judgeStock checks one SKU's stock against what the checkouts imply:
// on_hand the initial stock, reserved between held and held + doubt,
// available the difference.
func judgeStock(sku string, a stockAnswer, stock, held, doubt int64) string {
	want := fmt.Sprintf("%d", held)
	if doubt > 0 {
		want = fmt.Sprintf("%d to %d (%d units in checkouts whose end is unknown)", held, held+doubt, doubt)
	}
	switch {
	case a.status == 0:
		return fmt.Sprintf("sku %s: could not read its stock: %v", sku, a.err)
	case a.status != http.StatusOK || !a.decoded:
		return fmt.Sprintf("sku %s: stock read with status %d, want 200 and the stock", sku, a.status)
	case a.OnHand != stock:
		return fmt.Sprintf("sku %s: on_hand %d, want the initial %d (nothing ships in this workload)", sku, a.OnHand, stock)
	case a.Reserved < held || a.Reserved > held+doubt:
		return fmt.Sprintf("sku %s: reserved %d, but the completed checkouts hold %s", sku, a.Reserved, want)
	case a.Available != a.OnHand-a.Reserved:
		return fmt.Sprintf("sku %s: available %d, want on_hand %d - reserved %d", sku, a.Available, a.OnHand, a.Reserved)
	}
	return ""
}
