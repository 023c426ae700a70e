package http

import (
	"log/slog"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry is where the server registers its HTTP metrics and what it serves
// at GET /metrics. A *prometheus.Registry is one; the process creates one and
// hands it to every part, rather than using the global default, so that
// tests can run many servers in one process.
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// routeUnmatched labels requests that matched no route (404s), so that
// scanners probing random paths add one series, not one per path.
const routeUnmatched = "unmatched"

// methodOther labels methods outside RFC 9110's set, for the same reason.
const methodOther = "OTHER"

// httpLatencyBuckets: reads answer from memory in microseconds; writes wait
// for a journal round trip of ~1-30 ms, up to the request deadline.
var httpLatencyBuckets = []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// httpMetrics counts requests by method, route pattern (never the raw path:
// order IDs would make a series per order) and status.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	paths    map[string]bool // the registered route patterns
}

func newHTTPMetrics(reg prometheus.Registerer, paths map[string]bool) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orderd_http_requests_total",
			Help: "HTTP requests answered, by method, route pattern and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orderd_http_request_duration_seconds",
			Help:    "Time from the request's routing to its answer, by method and route pattern.",
			Buckets: httpLatencyBuckets,
		}, []string{"method", "route"}),
		paths: paths,
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// observe is the outermost middleware after tagRequest. It runs the error
// handler itself, as Fiber's logger middleware does, so that the status it
// records is the one sent. Errors fasthttp raises before routing (413 from
// Content-Length, unparsable requests) never reach it and are not counted.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	if err := c.Next(); err != nil {
		if herr := s.handleError(c, err); herr != nil {
			return herr
		}
	}
	route := c.Route().Path
	if !s.metrics.paths[route] {
		route = routeUnmatched
	}
	method := methodLabel(c.Method())
	took := time.Since(start)
	s.metrics.requests.WithLabelValues(method, route, statusLabel(c.Response().StatusCode())).Inc()
	s.metrics.duration.WithLabelValues(method, route).Observe(took.Seconds())
	s.accessLog(c, route, took)
	return nil
}

// accessLog writes one line per request at Debug level (--log-level debug),
// with the request ID a client can quote; at Info and above it costs one
// level check, since a line per request would dominate the log at load.
func (s *Server) accessLog(c *fiber.Ctx, route string, took time.Duration) {
	if !s.cfg.Logger.Enabled(c.Context(), slog.LevelDebug) {
		return
	}
	s.cfg.Logger.Debug("request", "method", c.Method(), "route", route, "status", c.Response().StatusCode(),
		"took", took, "request_id", s.requestID(c), "principal", principal(c))
}

func methodLabel(m string) string {
	switch m {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodPost, fiber.MethodPut, fiber.MethodPatch,
		fiber.MethodDelete, fiber.MethodOptions, fiber.MethodConnect, fiber.MethodTrace:
		return m
	}
	return methodOther
}

// statusLabels are the status codes as strings, made once so that labelling
// a request allocates nothing.
var statusLabels = func() (labels [600]string) {
	for code := range labels {
		labels[code] = strconv.Itoa(code)
	}
	return labels
}()

func statusLabel(code int) string {
	if code < 0 || code >= len(statusLabels) {
		return "other"
	}
	return statusLabels[code]
}

// metricsHandler is GET /metrics, in Prometheus' text format. promhttp is a
// net/http handler; Fiber's adaptor runs it on the fasthttp request.
func (s *Server) metricsHandler() fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(s.cfg.Metrics, promhttp.HandlerOpts{
		// A failing collector should not hide every other metric.
		ErrorHandling: promhttp.ContinueOnError,
	}))
}
