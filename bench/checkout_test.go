package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCheckoutCommand runs the whole command with --checkout and --json and
// returns its exit code, its checkout result and its stdout and stderr.
func runCheckoutCommand(t *testing.T, args ...string) (int, checkoutResult, string, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "run.json")
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), append([]string{"--checkout", "--duration", "0", "--seed", "1", "--id-prefix", "t-", "--json", file}, args...), &stdout, &stderr)
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("exit %d, no JSON: %v\nstdout %s\nstderr %s", code, err, stdout.String(), stderr.String())
	}
	var rep report
	if err := json.Unmarshal(text, &rep); err != nil || rep.Checkout == nil || rep.Results != nil || rep.Mix != nil {
		t.Fatalf("JSON: %v, checkout %v, results %v, mix %v", err, rep.Checkout, rep.Results, rep.Mix)
	}
	if rep.ExitCode != code {
		t.Errorf("JSON exit code %d, the command's %d", rep.ExitCode, code)
	}
	return code, *rep.Checkout, stdout.String(), stderr.String()
}

// Every path of the contract at once — completed, declined, out of stock,
// 202 then polled, 503 before and after the checkout was done — against an
// honest fake: the counts are the fake's own, nothing is an error, and the
// stock and every checkout verify.
func TestCheckoutsAgainstAnHonestServer(t *testing.T) {
	f := newFakeCheckoutd(t, func(f *fakeCheckoutd) {
		f.accept, f.busy, f.lostAnswer = every(5), every(7), every(11)
	})
	// 5 SKUs of 10 units and 60 checkouts of about 3 units: the stock
	// runs out part-way.
	code, r, stdout, stderr := runCheckoutCommand(t, "--url", f.srv.URL, "--orders", "60", "--clients", "4",
		"--skus", "5", "--stock", "10", "--decline-rate", "0.3")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	f.mu.Lock()
	ended := f.ended
	f.mu.Unlock()
	if r.CheckoutsTotal != 60 || r.Completed+r.Compensated+r.OutOfStock != 60 || r.Unknown != 0 || r.Errors != 0 || r.Wrong != 0 {
		t.Fatalf("counts %+v", r)
	}
	if r.Completed != ended[checkoutCompleted] || r.Compensated != ended[checkoutCompensated] || r.OutOfStock != ended["out-of-stock"] {
		t.Errorf("counted completed %d compensated %d out of stock %d; the server ended %v", r.Completed, r.Compensated, r.OutOfStock, ended)
	}
	if r.Completed == 0 || r.Declined == 0 || r.Declined != r.Compensated || r.OutOfStock == 0 || r.Polled == 0 || r.Retried == 0 {
		t.Errorf("want every path taken: %+v", r)
	}
	if r.Checkouts != 60 || r.Latency.Count != 60 || r.CheckoutsPerSec <= 0 || r.Statuses["202"] == 0 || r.Statuses["503"] != r.Retried {
		t.Errorf("measured %d checkouts, latency count %d, %.0f/s, statuses %v, retried %d", r.Checkouts, r.Latency.Count, r.CheckoutsPerSec, r.Statuses, r.Retried)
	}
	if v := r.Verify; v == nil || !v.ok() || v.Checkouts != 60 || v.SKUs != 5 || v.InDoubt != 0 {
		t.Fatalf("verification %+v", v)
	}
	for _, want := range []string{"orderd checkout closed clients=4 skus=5", "checkouts/s", "latency ms p50", "p99",
		"out_of_stock=", "verified 60 of 60 checkouts, stock of 5 of 5 SKUs: ok"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout %q lacks %q", stdout, want)
		}
	}
}

// A server that keeps a declined checkout's reservation leaks stock: the
// run passes every answer but fails the conservation check.
func TestCheckoutVerificationCatchesALeakedReservation(t *testing.T) {
	f := newFakeCheckoutd(t, func(f *fakeCheckoutd) { f.leak = true })
	code, r, stdout, stderr := runCheckoutCommand(t, "--url", f.srv.URL, "--orders", "40", "--clients", "2", "--skus", "3", "--decline-rate", "0.5")
	if code != exitFail || r.Wrong != 0 || r.Declined == 0 {
		t.Fatalf("exit %d, %+v\nstdout %s", code, r, stdout)
	}
	if v := r.Verify; v.StockMismatches == 0 || v.CheckoutMismatches != 0 {
		t.Fatalf("verification %+v", v)
	}
	if !strings.Contains(stdout, "FAIL: orderd: checkout verification") || !strings.Contains(stderr, "verify: sku t-sku-") ||
		!strings.Contains(stderr, "but the completed checkouts hold") {
		t.Fatalf("stdout %s\nstderr %s", stdout, stderr)
	}
}

// A checkout answered completed that reads back compensated fails.
func TestCheckoutVerificationCatchesAChangedStatus(t *testing.T) {
	f := newFakeCheckoutd(t, func(f *fakeCheckoutd) {
		f.lieOnGet = func(id, status string) string {
			if id == "co-t-co-3" {
				return checkoutCompensated
			}
			return status
		}
	})
	code, r, stdout, stderr := runCheckoutCommand(t, "--url", f.srv.URL, "--orders", "10", "--clients", "2")
	if code != exitFail || r.Completed != 10 {
		t.Fatalf("exit %d, %+v\nstdout %s", code, r, stdout)
	}
	if v := r.Verify; v.CheckoutMismatches != 1 || v.StockMismatches != 0 || !strings.Contains(stderr, "reads back compensated, but was answered completed") {
		t.Fatalf("verification %+v\nstderr %s", v, stderr)
	}
}

// A server that completes a declined payment answers against the
// contract; what it said it did is what the stock must show, so the
// conservation check agrees with it.
func TestCheckoutCatchesACompletedDecline(t *testing.T) {
	f := newFakeCheckoutd(t, func(f *fakeCheckoutd) { f.ignoreDecline = true })
	code, r, stdout, stderr := runCheckoutCommand(t, "--url", f.srv.URL, "--orders", "20", "--clients", "2", "--decline-rate", "0.5")
	if code != exitFail || r.Wrong == 0 || r.Wrong != r.Errors || !r.Verify.ok() {
		t.Fatalf("exit %d, %+v", code, r)
	}
	if !strings.Contains(stdout, "checkouts answered against the contract") || !strings.Contains(stderr, "completed though paid with tok_decline") {
		t.Fatalf("stdout %s\nstderr %s", stdout, stderr)
	}
}

// A server that answers 503 to everything leaves every checkout's end
// unknown: errors, not failures, and the stock check allows either end.
func TestCheckoutsWhoseEndIsUnknown(t *testing.T) {
	f := newFakeCheckoutd(t, func(f *fakeCheckoutd) { f.busy = func(int64) bool { return true } })
	code, r, stdout, stderr := runCheckoutCommand(t, "--url", f.srv.URL, "--orders", "4", "--clients", "2")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	if r.Unknown != 4 || r.Errors != 4 || r.Wrong != 0 || r.Retried != 4*(checkoutTriesMax-1) || r.Checkouts != 0 {
		t.Fatalf("counts %+v", r)
	}
	if v := r.Verify; !v.ok() || v.InDoubt != 4 || v.Checkouts != 0 {
		t.Fatalf("verification %+v", v)
	}
}

// With several URLs, a line per URL follows the summary and the shares
// add up to the totals.
func TestCheckoutsOverSeveralURLs(t *testing.T) {
	f := newFakeCheckoutd(t, func(f *fakeCheckoutd) { f.accept = every(3) })
	urls := []string{f.node(t).URL, f.node(t).URL}
	code, r, stdout, stderr := runCheckoutCommand(t, "--url", strings.Join(urls, ","), "--orders", "30", "--clients", "4", "--decline-rate", "0.2")
	if code != exitOK || len(r.ByURL) != 2 || !r.Verify.ok() {
		t.Fatalf("exit %d, by_url %+v\nstdout %s\nstderr %s", code, r.ByURL, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("stdout %q: want the summary and a line per URL", stdout)
	}
	var total, measured, latencies int64
	for i, u := range r.ByURL {
		if u.URL != urls[i] || u.CheckoutsTotal == 0 || !strings.HasPrefix(lines[i+1], "  orderd "+urls[i]+": ") {
			t.Errorf("URL %d: %+v, line %q", i, u, lines[i+1])
		}
		total += u.CheckoutsTotal
		measured += u.Checkouts
		latencies += u.Latency.Count
	}
	if total != r.CheckoutsTotal || measured != r.Checkouts || latencies != r.Latency.Count {
		t.Errorf("per-URL sums %d %d %d, totals %d %d %d", total, measured, latencies, r.CheckoutsTotal, r.Checkouts, r.Latency.Count)
	}
}

// A server without the inventory API cannot be stocked: a setup error,
// before any checkout is sent.
func TestCheckoutsNeedTheInventoryAPI(t *testing.T) {
	f := newFakeOrderd(t, nil)
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"--checkout", "--url", f.srv.URL, "--orders", "5"}, &stdout, &stderr)
	if code != exitSetup || !strings.Contains(stderr.String(), "does this orderd serve inventory") || f.requests.Load() > 1+defaultSKUs {
		t.Fatalf("exit %d, %d requests\nstderr %s", code, f.requests.Load(), stderr.String())
	}
}

// The draw: 1 to 3 distinct SKUs of the run, 1 to 2 units each, and the
// declined share near the asked one.
func TestCheckoutBaskets(t *testing.T) {
	cfg, err := parseConfig([]string{"--checkout", "--skus", "4", "--decline-rate", "0.25", "--seed", "7", "--id-prefix", "p-"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	w := newCheckoutWorkload(cfg)
	if len(w.skus) != 4 || w.skus[0] != "p-sku-1" || w.stock != defaultStock {
		t.Fatalf("workload %+v", w)
	}
	rng := newTestRand(7)
	declined := 0
	const n = 4000
	for i := range n {
		tr := w.newTrack(int64(i+1), 0, 0, rng)
		if len(tr.items) < 1 || len(tr.items) > checkoutSKUsMax {
			t.Fatalf("%d items", len(tr.items))
		}
		seen := map[string]bool{}
		for _, it := range tr.items {
			if seen[it.sku] || it.quantity < 1 || it.quantity > checkoutQuantityMax || !strings.HasPrefix(it.sku, "p-sku-") {
				t.Fatalf("basket %+v", tr.items)
			}
			seen[it.sku] = true
		}
		if tr.declined {
			declined++
		}
	}
	if share := float64(declined) / n; share < 0.2 || share > 0.3 {
		t.Errorf("declined share %.3f, want about 0.25", share)
	}
}

// The fake's contract against the real one: orderd itself (built and
// started as --start-server does, on its embedded broker and simulated
// gateway), with declines and the stock running out part-way, must give
// every path the judge knows and verify. Counts, not speed: nothing here
// is timed.
func TestCheckoutsAgainstOrderd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts orderd")
	}
	code, r, stdout, stderr := runCheckoutCommand(t, "--start-server", "--orders", "60", "--clients", "4",
		"--skus", "5", "--stock", "10", "--decline-rate", "0.3")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	if r.CheckoutsTotal != 60 || r.Completed+r.Compensated+r.OutOfStock != 60 || r.Unknown != 0 || r.Errors != 0 || r.Wrong != 0 {
		t.Fatalf("counts %+v\nstdout %s", r, stdout)
	}
	if r.Completed == 0 || r.Declined == 0 || r.Declined != r.Compensated || r.OutOfStock == 0 {
		t.Errorf("want completed, declined and out-of-stock checkouts: %+v", r)
	}
	if v := r.Verify; v == nil || !v.ok() || v.Checkouts != 60 || v.SKUs != 5 || v.InDoubt != 0 {
		t.Fatalf("verification %+v\nstdout %s", v, stdout)
	}
}
