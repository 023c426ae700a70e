package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scrape reads GET /metrics as Prometheus would and returns the families.
func scrape(t *testing.T, url string, headers ...string) map[string]*dto.MetricFamily {
	t.Helper()
	r := e2eDo(t, "GET", url+"/metrics", "", headers...)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	var parser expfmt.TextParser
	families, err := parser.TextToMetricFamilies(bytes.NewReader(r.body))
	require.NoError(t, err)
	return families
}

// sample finds the series of a family whose labels include want (name,
// value pairs) and returns its counter, gauge or histogram count; 0 when no
// series matches, which is what Prometheus shows for a series not yet seen.
func sample(t *testing.T, families map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	fam, ok := families[name]
	require.True(t, ok, "metric %s not exposed", name)
	var total float64
	for _, m := range fam.GetMetric() {
		if !hasLabels(m, want) {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	return total
}

// histogramSum is the sum of a histogram's observations over matching series.
func histogramSum(t *testing.T, families map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	fam, ok := families[name]
	require.True(t, ok, "metric %s not exposed", name)
	var sum float64
	for _, m := range fam.GetMetric() {
		sum += m.GetHistogram().GetSampleSum()
	}
	return sum
}

func hasLabels(m *dto.Metric, want []string) bool {
	for i := 0; i+1 < len(want); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == want[i] && l.GetValue() == want[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// TestMetricsAfterTraffic runs the whole server on its embedded broker,
// sends known traffic and checks that every metric moved by exactly that.
func TestMetricsAfterTraffic(t *testing.T) {
	t.Parallel()
	_, url := e2eStartMain(t, t.TempDir())

	for _, id := range []string{"m-1", "m-2"} {
		e2eRequireStatus(t, e2eDo(t, "POST", url+"/v1/orders", `{"id":"`+id+`"}`), http.StatusCreated)
	}
	for range 2 { // the second is answered from the idempotency window
		e2eRequireStatus(t, e2eDo(t, "POST", url+"/v1/orders", `{"id":"m-3"}`, "Idempotency-Key", "k-3"), http.StatusCreated)
	}
	e2eRequireStatus(t, e2eDo(t, "POST", url+"/v1/orders/m-1/transitions", `{"to":"Paid"}`), http.StatusOK)
	e2eRequireStatus(t, e2eDo(t, "POST", url+"/v1/orders/m-2/transitions", `{"to":"Cancelled"}`), http.StatusOK)
	e2eRequireStatus(t, e2eDo(t, "POST", url+"/v1/orders/m-3/transitions", `{"to":"Delivered"}`), http.StatusConflict)
	e2eRequireStatus(t, e2eDo(t, "POST", url+"/v1/orders/m-3/transitions", `{"to":"Paid"}`, "If-Match", `"7"`), http.StatusPreconditionFailed)
	e2eRequireStatus(t, e2eDo(t, "GET", url+"/v1/orders/m-1", ""), http.StatusOK)
	e2eRequireStatus(t, e2eDo(t, "GET", url+"/v1/orders/nope-1", ""), http.StatusNotFound)
	e2eRequireStatus(t, e2eDo(t, "GET", url+"/no/such/path", ""), http.StatusNotFound)

	m := scrape(t, url)

	transitions := func(from, to, outcome string) float64 {
		return sample(t, m, "orderd_transitions_total", "from", from, "to", to, "outcome", outcome)
	}
	assert.Equal(t, 3.0, transitions("none", "Created", "accepted"))
	assert.Equal(t, 1.0, transitions("Created", "Created", "key-replayed"))
	assert.Equal(t, 1.0, transitions("Created", "Paid", "accepted"))
	assert.Equal(t, 1.0, transitions("Created", "Cancelled", "accepted"))
	assert.Equal(t, 1.0, transitions("Created", "Delivered", "rejected-invalid"))
	assert.Equal(t, 1.0, transitions("Created", "Paid", "version-mismatch"))
	assert.Equal(t, 8.0, sample(t, m, "orderd_transitions_total"), "no other command was counted")

	// Five records were appended, each in exactly one produce request.
	appends := sample(t, m, "orderd_journal_append_seconds")
	assert.Equal(t, 5.0, appends)
	assert.Equal(t, appends, histogramSum(t, m, "orderd_journal_batch_records"))
	assert.GreaterOrEqual(t, sample(t, m, "orderd_journal_produce_seconds"), 1.0)
	assert.LessOrEqual(t, sample(t, m, "orderd_journal_produce_seconds"), appends)
	assert.Equal(t, 0.0, sample(t, m, "orderd_journal_produce_failures_total"))

	assert.Equal(t, 3.0, sample(t, m, "orderd_orders_known"))
	assert.Equal(t, 3.0, sample(t, m, "orderd_actors_live"))
	assert.Equal(t, 8.0, sample(t, m, "orderd_mailbox_depth"), "one observation per command enqueued")

	requests := func(method, route, status string) float64 {
		return sample(t, m, "orderd_http_requests_total", "method", method, "route", route, "status", status)
	}
	assert.Equal(t, 4.0, requests("POST", "/v1/orders", "201"))
	assert.Equal(t, 2.0, requests("POST", "/v1/orders/:id/transitions", "200"))
	assert.Equal(t, 1.0, requests("POST", "/v1/orders/:id/transitions", "409"))
	assert.Equal(t, 1.0, requests("POST", "/v1/orders/:id/transitions", "412"))
	assert.Equal(t, 1.0, requests("GET", "/v1/orders/:id", "200"))
	assert.Equal(t, 1.0, requests("GET", "/v1/orders/:id", "404"))
	assert.Equal(t, 1.0, requests("GET", "unmatched", "404"), "raw paths never become labels")
	assert.Equal(t, 1.0, sample(t, m, "orderd_http_request_duration_seconds", "method", "GET", "route", "unmatched"))
	for _, fam := range m["orderd_http_requests_total"].GetMetric() {
		for _, l := range fam.GetLabel() {
			assert.NotContains(t, l.GetValue(), "m-1", "an order ID became a label")
		}
	}

	// A fresh log: recovery read nothing, and the process metrics are there.
	assert.Equal(t, 0.0, sample(t, m, "orderd_journal_replay_target_records"))
	assert.Equal(t, 0.0, sample(t, m, "orderd_replay_events_total"))
	assert.Contains(t, m, "orderd_replay_duration_seconds")
	assert.Contains(t, m, "go_goroutines")
	assert.Contains(t, m, "process_resident_memory_bytes")
}

// TestMetricsShowReplayAfterRestart: a restarted server reports what its
// start read of the log, and loads orders from the state store as they are
// named. After a graceful stop the store holds the whole log, so the start
// reads nothing and keeps no order in memory.
func TestMetricsShowReplayAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, url := e2eStartMain(t, dir)
	for _, id := range []string{"r-1", "r-2"} {
		e2eRequireStatus(t, e2eDo(t, "POST", url+"/v1/orders", `{"id":"`+id+`"}`), http.StatusCreated)
	}
	e2eRequireStatus(t, e2eDo(t, "POST", url+"/v1/orders/r-1/transitions", `{"to":"Paid"}`), http.StatusOK)
	require.NoError(t, first.Close())

	_, url = e2eStartMain(t, dir)
	m := scrape(t, url)

	assert.Equal(t, 0.0, sample(t, m, "orderd_journal_replay_target_records"), "the store already holds every record")
	assert.Equal(t, 0.0, sample(t, m, "orderd_journal_replay_records_total"))
	assert.Equal(t, 0.0, sample(t, m, "orderd_replay_events_total", "result", "applied"))
	assert.Equal(t, 0.0, sample(t, m, "orderd_replay_events_total", "result", "skipped"))
	assert.Greater(t, sample(t, m, "orderd_replay_duration_seconds"), 0.0)
	assert.Equal(t, 0.0, sample(t, m, "orderd_orders_known"), "no order is in memory until named")
	assert.Equal(t, 0.0, sample(t, m, "orderd_actors_live"))
	assert.Equal(t, 0.0, sample(t, m, "orderd_journal_append_seconds"))
	// The lag is measured at the feeder's first fetch, which waits for
	// records up to its long poll.
	require.Eventually(t, func() bool {
		_, ok := scrape(t, url)["orderd_store_checkpoint_lag_records"]
		return ok
	}, roomyTimeout, 50*time.Millisecond, "the checkpoint lag is measured")
	assert.Equal(t, 0.0, sample(t, scrape(t, url), "orderd_store_checkpoint_lag_records", "partition", "0"))
	assert.Positive(t, sample(t, m, "orderd_store_size_bytes"))

	e2eRequireStatus(t, e2eDo(t, "GET", url+"/v1/orders/r-1", ""), http.StatusOK)
	m = scrape(t, url)
	assert.Equal(t, 1.0, sample(t, m, "orderd_orders_known"))
	assert.Equal(t, 1.0, sample(t, m, "orderd_orders_cold_loads_total"))
	assert.Equal(t, 0.0, sample(t, m, "orderd_orders_evicted_total"))
}

// TestMetricsNeedAnAPIKey: /metrics reveals traffic and error rates, so it is
// protected like the order routes; the probes are not.
func TestMetricsNeedAnAPIKey(t *testing.T) {
	t.Parallel()
	const token = "ops-token-0123456789"
	keysFile := filepath.Join(t.TempDir(), "keys")
	require.NoError(t, os.WriteFile(keysFile, []byte("ops="+token+"\n"), 0o600))
	_, url := e2eStartMain(t, t.TempDir(), "--api-keys-file", keysFile)

	assert.Equal(t, http.StatusUnauthorized, e2eDo(t, "GET", url+"/metrics", "").status)
	m := scrape(t, url, "Authorization", "Bearer "+token)
	assert.Contains(t, m, "orderd_http_requests_total")
	assert.Equal(t, 1.0, sample(t, m, "orderd_http_requests_total", "route", "/metrics", "status", "401"))
}
