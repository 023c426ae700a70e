package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestURLFlagRepeatedAndCommaSeparated(t *testing.T) {
	const a, b, c = "http://127.0.0.1:8080", "http://127.0.0.1:8081", "http://127.0.0.1:8082"
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{defaultURL}},
		{[]string{"--url", b}, []string{b}},
		{[]string{"--url", a, "--url", b}, []string{a, b}},
		{[]string{"--url=" + a + "," + b + "," + c}, []string{a, b, c}},
		{[]string{"--url", a + ", " + b, "--url", c}, []string{a, b, c}},
		// One URL with --start-server: ignored, as before.
		{[]string{"--url", b, "--start-server"}, []string{b}},
	} {
		cfg, err := parseConfig(tc.args, &bytes.Buffer{})
		if err != nil || !slices.Equal(cfg.urls, tc.want) {
			t.Errorf("%v: err %v, urls %q, want %q", tc.args, err, cfg.urls, tc.want)
		}
	}
}

func TestURLFlagRefusals(t *testing.T) {
	const two = "http://127.0.0.1:8080,http://127.0.0.1:8081"
	var many []string
	for i := range urlsMax + 1 {
		many = append(many, fmt.Sprintf("http://127.0.0.1:%d", 8080+i))
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--url", two, "--start-server"}, "--start-server starts one server"},
		{[]string{"--url", "http://127.0.0.1:8080", "--url", "http://127.0.0.1:8081", "--start-server"}, "--start-server starts one server"},
		{[]string{"--url", two, "--baseline-only"}, "--baseline-only starts one server"},
		{[]string{"--url", "http://127.0.0.1:8080,"}, "empty URL"},
		{[]string{"--url", "http://127.0.0.1:8080,http://127.0.0.1:8080"}, "given twice"},
		{[]string{"--url", strings.Join(many, ",")}, fmt.Sprintf("want at most %d", urlsMax)},
		{[]string{"--url", "http://127.0.0.1:8080,http://10.1.2.3:8080"}, "not a loopback"},
		{[]string{"--url", two, "--clients", "1"}, "without a client"},
		{[]string{"--url", two, "--rate", "100", "--max-outstanding", "1"}, "without a slot"},
		{[]string{"--url", two, "--verify-workers", "1"}, "unread"},
		{[]string{"--url", two, "--server-pid", "12"}, "--server-pid"},
	} {
		var stderr bytes.Buffer
		if _, err := parseConfig(c.args, &stderr); err == nil || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: err %v, stderr %q, want it to mention %q", c.args, err, stderr.String(), c.want)
		}
	}
	// Remote nodes are allowed when asked for, as a single one is.
	if _, err := parseConfig([]string{"--url", "http://10.1.2.3:8080,http://10.1.2.4:8080", "--allow-remote"}, &bytes.Buffer{}); err != nil {
		t.Errorf("--allow-remote with two remote URLs: %v", err)
	}
}

// Every mode sends through every URL, client (or slot, or reader) i
// through URL i mod n, and the per-URL counts add up to the totals. The
// verdicts are counts, not timings.
func TestLoadSpreadsOverEveryURL(t *testing.T) {
	const nodes = 3
	closed := smallLoad(60)
	closed.clients = 2 * nodes
	open := loadConfig{rate: 5000, maxOutstanding: 2 * nodes, orders: 60, mix: closed.mix, seed: 3}
	createOnly := closed
	createOnly.mix = mix{createOnly: true}
	for name, cfg := range map[string]loadConfig{"closed loop": closed, "open loop": open, "creates only": createOnly} {
		t.Run(name, func(t *testing.T) {
			cfg.idPrefix = strings.ReplaceAll(name, " ", "-") + "-"
			f := newFakeOrderd(t, nil)
			ns := f.addNodes(t, nodes)
			urls, clients := nodeClients(t, ns, 2*nodes)
			res := runLoad(context.Background(), cfg, clients.senders(), true)
			if res.rec.failures.count != 0 {
				t.Fatalf("failures against an honest cluster: %q", res.rec.failures.samples)
			}
			for k, n := range ns {
				if got, want := res.rec.byURL[k].requests, n.served.Load(); got == 0 || got != want {
					t.Errorf("URL %d: recorded %d requests, the server saw %d; want the same, and some", k, got, want)
				}
			}
			checkURLResultsAddUp(t, newTargetResult(targetOrderd, urls, cfg, res))

			before := servedBy(ns)
			v := verifyFinal(context.Background(), clients.getters(), res.tracks, 2*nodes)
			if !v.ok() {
				t.Fatalf("verification: %+v", v)
			}
			var reads int64
			for k, n := range ns {
				d := n.served.Load() - before[k]
				if d == 0 {
					t.Errorf("URL %d: no reads in the verification", k)
				}
				reads += d
			}
			if reads != v.Checked {
				t.Errorf("%d reads over the URLs, %d orders checked", reads, v.Checked)
			}
		})
	}
}

// With several URLs the text and the JSON give each URL's share after the
// totals; with one, neither changes.
func TestRunReportsEachURL(t *testing.T) {
	f := newFakeOrderd(t, nil)
	ns := f.addNodes(t, 3)
	urls := []string{ns[0].srv.URL, ns[1].srv.URL, ns[2].srv.URL}
	args := []string{"--url", urls[0] + "," + urls[1], "--url", urls[2], "--clients", "3", "--orders", "30", "--seed", "1"}
	r, stdout := runForReport(t, args)
	if r.URL != strings.Join(urls, ",") || len(r.ByURL) != 3 {
		t.Fatalf("url %q, %d per-URL results", r.URL, len(r.ByURL))
	}
	checkURLResultsAddUp(t, r)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 4 {
		t.Fatalf("stdout: %q, want the summary and a line per URL", stdout)
	}
	// Each server saw its share of the load and some of the verification's
	// reads; all of them together, the load and every read.
	var served, reported int64
	for i, u := range urls {
		if want := "  orderd " + u + ": "; !strings.HasPrefix(lines[i+1], want) {
			t.Errorf("line %d: %q, want it to start with %q", i+1, lines[i+1], want)
		}
		n := ns[i].served.Load()
		if n < r.ByURL[i].RequestsTotal {
			t.Errorf("URL %d served %d requests; the report says %d", i, n, r.ByURL[i].RequestsTotal)
		}
		served += n
		reported += r.ByURL[i].RequestsTotal
	}
	if served != reported+r.Verify.Checked {
		t.Errorf("the servers saw %d requests, want %d of the load and %d reads", served, reported, r.Verify.Checked)
	}

	single, stdout := runForReport(t, []string{"--url", urls[0], "--clients", "3", "--orders", "30", "--seed", "1"})
	if single.ByURL != nil || strings.Count(stdout, "\n") != 1 || single.URL != urls[0] {
		t.Fatalf("one URL: url %q, by_url %v, stdout %q", single.URL, single.ByURL, stdout)
	}
}

// runForReport runs the whole command with args and --json, expects it to
// pass, and returns its one result and its stdout.
func runForReport(t *testing.T, args []string) (targetResult, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "run.json")
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), append(args, "--json", file), &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout.String(), stderr.String())
	}
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(args) > 0 && !strings.Contains(strings.Join(args, " "), ",") && bytes.Contains(text, []byte(`"by_url"`)) {
		t.Errorf("one URL, yet the JSON has by_url")
	}
	var rep report
	if err := json.Unmarshal(text, &rep); err != nil || len(rep.Results) != 1 {
		t.Fatalf("JSON: %v, %d results", err, len(rep.Results))
	}
	return rep.Results[0], stdout.String()
}

// nodeClients returns the nodes' URLs and a client for each, conns
// connections in all.
func nodeClients(t *testing.T, ns []*fakeNode, conns int) ([]string, apiClients) {
	t.Helper()
	var urls []string
	for _, n := range ns {
		urls = append(urls, n.srv.URL)
	}
	clients, err := newAPIClients(urls, conns, testRequestTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(clients.closeIdle)
	return urls, clients
}

func servedBy(ns []*fakeNode) []int64 {
	s := make([]int64, len(ns))
	for i, n := range ns {
		s[i] = n.served.Load()
	}
	return s
}

// checkURLResultsAddUp checks that every URL has a share and that the
// shares' counts add up to the totals.
func checkURLResultsAddUp(t *testing.T, r targetResult) {
	t.Helper()
	var sum urlResult
	for _, u := range r.ByURL {
		if u.RequestsTotal == 0 {
			t.Errorf("%s: no requests", u.URL)
		}
		sum.Requests += u.Requests
		sum.Transitions += u.Transitions
		sum.RequestsTotal += u.RequestsTotal
		sum.Errors += u.Errors
		sum.Latency.Count += u.Latency.Count
	}
	if sum.Requests != r.Requests || sum.Transitions != r.Transitions || sum.RequestsTotal != r.RequestsTotal ||
		sum.Errors != r.Errors || sum.Latency.Count != r.Latency.Count {
		t.Errorf("per-URL sums %+v do not add up to the totals: requests %d, transitions %d, requests_total %d, errors %d, latency count %d",
			sum, r.Requests, r.Transitions, r.RequestsTotal, r.Errors, r.Latency.Count)
	}
}

// --verify-workers above --clients reads with that many connections: a
// client sized for the load alone failed the extra reads at once ("no free
// connections available to host") and counted their orders as unreadable.
func TestVerifyWorkersBeyondClients(t *testing.T) {
	f := newFakeOrderd(t, nil)
	ns := f.addNodes(t, 2)
	for _, urls := range []string{f.srv.URL, ns[0].srv.URL + "," + ns[1].srv.URL} {
		var stdout, stderr bytes.Buffer
		args := []string{"--url", urls, "--clients", "2", "--verify-workers", "8", "--orders", "200"}
		if code := run(t.Context(), args, &stdout, &stderr); code != exitOK {
			t.Fatalf("%s: exit %d\n%s%s", urls, code, stdout.String(), stderr.String())
		}
	}
}
