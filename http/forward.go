package http

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/order"
)

// The client that forwards requests to their owners. fasthttp's, not
// net/http's: BenchmarkForwardClient (forward_bench_test.go) measured a
// forwarded transition over loopback at 24 µs with 1 allocation against
// 48 µs and 64 allocations serially, 22 µs against 33 µs from 4 goroutines
// per CPU (2026-12-05, 2 vCPUs). net/http can tell exactly whether a
// request was written (httptrace); fasthttp cannot, so forwardFailed treats
// every failure after the dial as possibly sent, which costs a command an
// outcome-unknown it might have been spared, never a wrong "not applied".
const (
	// peerConnsMax bounds the connections to one peer, and so the requests
	// forwarded to it at once: above the 64 clients bench/ drives a whole
	// node with. Past it a request is refused at once with 503 not-ready,
	// as nothing was sent, instead of queueing behind the others.
	peerConnsMax = 512
	// forwardResponseBytesMax bounds an owner's answer. Histories are the
	// largest answers and have no bound of their own (a deadline may be
	// moved again and again), so this is a generous constant rather than a
	// multiple of the body limit: some 4,000 events carrying the largest
	// metadata and reason. A larger answer is an internal error.
	forwardResponseBytesMax = 16 << 20
)

// newPeerClient makes the pooled keep-alive client to the other nodes.
// Idle connections are closed after half the server's own idle timeout, so
// that this side closes them first: a peer closing one just as a command
// goes out on it would make that command's outcome unknown.
func newPeerClient(cfg Config) *fasthttp.Client {
	return &fasthttp.Client{
		Name:                "orderd",
		MaxConnsPerHost:     peerConnsMax,
		MaxIdleConnDuration: cfg.IdleTimeout / 2,
		MaxResponseBodySize: forwardResponseBytesMax,
		// No retries: a command must reach its owner at most once per
		// client request; the client retries with its Idempotency-Key.
		// Not even reads: with attempts to spare, fasthttp also sends a
		// POST again whose connection closed before the answer (io.EOF),
		// whatever RetryIf says; tried on 2026-12-06, a POST to an owner
		// killed after applying it went again, failed to dial, and was
		// answered "nothing applied" (TestClusterKillNineUnderLoad).
		MaxIdemponentCallAttempts: 1,
		// The path is sent as it came: IDs are never percent-decoded.
		DisablePathNormalizing: true,
		// Refuse at once when peerConnsMax are busy (see there).
		MaxConnWaitTimeout: 0,
	}
}

// relayedHeaders are the owner's response headers the client sees: every
// header the API documents (openapi.json).
var relayedHeaders = []string{fiber.HeaderContentType, fiber.HeaderETag, fiber.HeaderLocation,
	fiber.HeaderRetryAfter, headerRequestID, fiber.HeaderWWWAuthenticate, fiber.HeaderAllow}

// forwardedHeaders are the client's request headers the owner sees. The
// owner authenticates the request itself, with the client's Authorization.
var forwardedHeaders = []string{fiber.HeaderContentType, fiber.HeaderAuthorization,
	headerIdempotencyKey, headerIfMatch, fiber.HeaderAccept, headerOnBehalfOf}

// forward sends the request to the owner at peer, within ctx's deadline,
// and relays its answer.
func (s *Server) forward(ctx context.Context, c *fiber.Ctx, peer string, sendPartition int) error {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	s.buildForward(c, req, peer, sendPartition)
	deadline, _ := ctx.Deadline() // serveIn set one
	start := time.Now()
	if !start.Before(deadline) { // Owner took it all: fasthttp would say ErrTimeout, as if sent
		s.forwards.count(forwardUnreachable)
		return errUnsent(context.DeadlineExceeded)
	}
	if err := s.peers.DoDeadline(req, resp, deadline); err != nil {
		return s.forwardFailed(c, err)
	}
	s.forwards.answered(time.Since(start))
	relay(c, resp)
	return nil
}

// buildForward copies what the owner needs into req. The body is not
// copied: DoDeadline returns before the handler does, and Fiber's buffers
// live until then.
func (s *Server) buildForward(c *fiber.Ctx, req *fasthttp.Request, peer string, sendPartition int) {
	in := &c.Request().Header
	req.SetRequestURI(peer + c.OriginalURL())
	req.Header.SetMethodBytes(in.Method())
	for _, name := range forwardedHeaders {
		if v := in.Peek(name); len(v) > 0 {
			req.Header.SetBytesV(name, v)
		}
	}
	req.Header.Set(headerRequestID, s.requestID(c)) // so both nodes log the same one
	req.Header.Set(headerForwarded, forwardedMark)
	if sendPartition != partitionUnsent {
		req.Header.Set(headerPartition, strconv.Itoa(sendPartition))
	}
	req.SetBodyRaw(c.Request().Body())
}

// relay answers the client with the owner's status, headers and body.
func relay(c *fiber.Ctx, resp *fasthttp.Response) {
	c.Status(resp.StatusCode())
	for _, name := range relayedHeaders {
		if v := resp.Header.Peek(name); len(v) > 0 {
			c.Response().Header.SetBytesV(name, v)
		}
	}
	c.Response().SetBody(resp.Body())
}

// forwardError is a failure to have the owner answer. Its detail is for
// clients; err decides the status through errorTable.
type forwardError struct {
	detail string
	err    error
}

func (e *forwardError) Error() string { return e.detail + ": " + e.err.Error() }
func (e *forwardError) Unwrap() error { return e.err }

func errNoOwner(err error) error {
	return &forwardError{detail: "no node serves this order now (the cluster is moving it); nothing was applied",
		err: notReady(err)}
}

// errUnsent: the request never left this node.
func errUnsent(err error) error {
	return &forwardError{detail: "the node serving this order cannot be reached; nothing was applied",
		err: fmt.Errorf("%w: %w", actors.ErrNotReady, err)}
}

// forwardFailed classifies a failed forward. Only a failed dial or a full
// pool proves the owner never saw the request; after that a command may
// have been applied, and a read has changed nothing either way.
func (s *Server) forwardFailed(c *fiber.Ctx, err error) error {
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return fmt.Errorf("owner's answer exceeds %d bytes: %w", forwardResponseBytesMax, err)
	case notSent(err):
		s.forwards.count(forwardUnreachable)
		return errUnsent(err)
	}
	s.forwards.count(forwardNoAnswer)
	if c.Method() == fiber.MethodPost {
		return &forwardError{detail: "the node serving this order did not answer in time; the command may or may not have been recorded, retry with the same Idempotency-Key to learn which",
			err: fmt.Errorf("%w: %w", order.ErrOutcomeUnknown, err)}
	}
	return &forwardError{detail: "the node serving this order did not answer in time; nothing was changed",
		err: fmt.Errorf("%w: %w", actors.ErrNotReady, err)}
}

// notSent reports errors that leave the request unsent: no connection
// could be made or had.
func notSent(err error) bool {
	var op *net.OpError
	return errors.Is(err, fasthttp.ErrDialTimeout) || errors.Is(err, fasthttp.ErrNoFreeConns) ||
		(errors.As(err, &op) && op.Op == "dial")
}

// Outcomes of forwarding, the values of the "outcome" label.
type forwardOutcome int

const (
	forwardOK          forwardOutcome = iota // the owner answered, whatever its status
	forwardNoOwner                           // no node served the partition within the deadline
	forwardUnreachable                       // the owner could not be connected to: nothing sent
	forwardNoAnswer                          // sent, but no answer came: a command's outcome is unknown
	forwardOutcomes
)

var forwardOutcomeLabels = [forwardOutcomes]string{"ok", "no_owner", "unreachable", "no_answer"}

// forwardLatencyBuckets: a loopback hop costs ~25 µs (forward.go's
// measurement); the owner's own work adds a journal round trip to commands.
var forwardLatencyBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// forwardMetrics count forwarded requests by outcome and time the answered ones.
type forwardMetrics struct {
	outcomes [forwardOutcomes]prometheus.Counter
	duration prometheus.Histogram
}

func newForwardMetrics(reg prometheus.Registerer) *forwardMetrics {
	counters := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orderd_forwarded_requests_total",
		Help: "Requests for orders another node serves, by outcome: ok (the owner answered), no_owner, unreachable (nothing sent), no_answer.",
	}, []string{"outcome"})
	m := &forwardMetrics{duration: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "orderd_forward_duration_seconds",
		Help:    "Time from sending a request to its owner to the owner's answer, for answered forwards.",
		Buckets: forwardLatencyBuckets,
	})}
	for o := range forwardOutcomes {
		m.outcomes[o] = counters.WithLabelValues(forwardOutcomeLabels[o])
	}
	reg.MustRegister(counters, m.duration)
	return m
}

func (m *forwardMetrics) count(o forwardOutcome) { m.outcomes[o].Inc() }

func (m *forwardMetrics) answered(took time.Duration) {
	m.outcomes[forwardOK].Inc()
	m.duration.Observe(took.Seconds())
}
