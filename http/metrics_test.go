package http

import (
	nethttp "net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHTTPMetricsLabelRoutesNotPaths: requests are counted by route
// pattern and status, whatever the IDs in their paths, and unknown paths
// share one series.
func TestHTTPMetricsLabelRoutesNotPaths(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	h := newHarness(t, &fakeService{}, Config{Metrics: reg})

	for _, id := range []string{"a-1", "b-2", "c-3"} {
		h.do("GET", "/v1/orders/"+id, "") // 404 from the fake
	}
	h.do("POST", "/v1/orders/a-1/transitions", `{"to":"Paid"}`)
	h.do("GET", "/v1/orders/a-1/transitions", "") // 405
	h.do("GET", "/random-"+strings.Repeat("x", 10), "")
	h.do("GET", "/another", "")

	families, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "orderd_http_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got[labels["method"]+" "+labels["route"]+" "+labels["status"]] = m.GetCounter().GetValue()
		}
	}
	assert.Equal(t, map[string]float64{
		"GET /v1/orders/:id 404":              3,
		"POST /v1/orders/:id/transitions 200": 1,
		"GET /v1/orders/:id/transitions 405":  1,
		"GET unmatched 404":                   2,
	}, got)
}

// TestMetricsServedWithoutARegistry: a server given no registry still
// serves its own HTTP metrics.
func TestMetricsServedWithoutARegistry(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeService{}, Config{})
	h.do("GET", "/healthz", "")

	r := h.do("GET", "/metrics", "")

	require.Equal(t, nethttp.StatusOK, r.status, "body: %s", r.body)
	assert.Contains(t, r.header.Get("Content-Type"), "text/plain")
	assert.Contains(t, string(r.body), `orderd_http_requests_total{method="GET",route="/healthz",status="200"} 1`)
}
