package http

import (
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	// routes holds every registered route pattern and routeUnmatched, each
	// with its series, so that a request finds them without hashing its
	// label values into the vectors (which also allocated per request).
	routes map[string]*routeSeries
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
		routes: map[string]*routeSeries{routeUnmatched: {}},
	}
	for path := range paths {
		m.routes[path] = &routeSeries{}
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// routeSeries are one route's series by method label.
type routeSeries struct {
	byMethod [len(methodLabels)]methodSeries
}

// methodSeries are the series of one route and method: its duration, and
// a request counter per status seen so far. Requests read them without a
// lock; the first of a new status copies the set under mu and publishes it.
type methodSeries struct {
	set atomic.Pointer[seriesSet]
	mu  sync.Mutex
}

type seriesSet struct {
	duration prometheus.Observer
	requests []statusSeries // a handful: the statuses a route answers with
}

type statusSeries struct {
	status   int
	requests prometheus.Counter
}

// routeOf returns the route label of a request's matched pattern
// (routeUnmatched for a pattern not registered) with its series.
func (m *httpMetrics) routeOf(pattern string) (string, *routeSeries) {
	if rs, ok := m.routes[pattern]; ok {
		return pattern, rs
	}
	return routeUnmatched, m.routes[routeUnmatched]
}

// record counts one answered request of route, whose series rs are.
func (m *httpMetrics) record(route string, rs *routeSeries, method, status int, took time.Duration) {
	ms := &rs.byMethod[method]
	set := ms.set.Load()
	counter := set.counter(status)
	if counter == nil {
		set, counter = m.addSeries(ms, route, method, status)
	}
	counter.Inc()
	set.duration.Observe(took.Seconds())
}

func (s *seriesSet) counter(status int) prometheus.Counter {
	if s == nil {
		return nil
	}
	for i := range s.requests {
		if s.requests[i].status == status {
			return s.requests[i].requests
		}
	}
	return nil
}

// addSeries is record's slow path: the first request of a route, method and
// status creates their series in the vectors.
func (m *httpMetrics) addSeries(ms *methodSeries, route string, method, status int) (*seriesSet, prometheus.Counter) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	old := ms.set.Load()
	if c := old.counter(status); c != nil {
		return old, c
	}
	next := &seriesSet{}
	if old != nil {
		next.duration, next.requests = old.duration, slices.Clone(old.requests)
	} else {
		next.duration = m.duration.WithLabelValues(methodLabels[method], route)
	}
	c := m.requests.WithLabelValues(methodLabels[method], route, statusLabel(status))
	next.requests = append(next.requests, statusSeries{status: status, requests: c})
	ms.set.Store(next)
	return next, c
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
	route, series := s.metrics.routeOf(c.Route().Path)
	method := methodIndex(c.Method())
	took := time.Since(start)
	s.metrics.record(route, series, method, c.Response().StatusCode(), took)
	s.accessLog(c, route, took)
	return nil
}

// accessLog writes one line per request at Debug level (--log-level debug),
// with the request ID a client can quote; at Info and above it costs one
// level check, since a line per request would dominate the log at load.
// The method is copied: a handler may keep the record past Fiber's buffers.
func (s *Server) accessLog(c *fiber.Ctx, route string, took time.Duration) {
	if !s.cfg.Logger.Enabled(c.Context(), slog.LevelDebug) {
		return
	}
	s.cfg.Logger.Debug("request", "method", strings.Clone(c.Method()), "route", route, "status", c.Response().StatusCode(),
		"took", took, "request_id", s.requestID(c), "principal", principal(c))
}

// methodLabels are the values of the "method" label: RFC 9110's methods,
// and methodOther for the rest, so that made-up methods add one series.
// Labels are these constants, never the request's own string, which lives
// in a buffer Fiber reuses.
var methodLabels = [...]string{
	fiber.MethodGet, fiber.MethodHead, fiber.MethodPost, fiber.MethodPut, fiber.MethodPatch,
	fiber.MethodDelete, fiber.MethodOptions, fiber.MethodConnect, fiber.MethodTrace, methodOther,
}

// methodIndex finds a request's method among methodLabels.
func methodIndex(m string) int {
	for i, label := range methodLabels[:len(methodLabels)-1] {
		if m == label {
			return i
		}
	}
	return len(methodLabels) - 1
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
