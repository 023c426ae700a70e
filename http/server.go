package http

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/order"
)

// Defaults for the zero fields of Config.
const (
	// DefaultReadTimeout bounds reading one request, headers and body: a
	// well-behaved client sends a few hundred bytes at once, so a slow one is
	// holding a connection hostage.
	DefaultReadTimeout = 5 * time.Second
	// DefaultWriteTimeout bounds writing one response (fasthttp starts it
	// after the handler returns, so it does not limit RequestTimeout).
	DefaultWriteTimeout = 5 * time.Second
	// DefaultIdleTimeout keeps keep-alive connections open between a
	// client's requests without letting idle ones pile up forever.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultRequestTimeout is the deadline of each call into the service:
	// long enough to ride out a journal fsync stall of a few hundred
	// milliseconds (FACTS.md), short enough that a client is told
	// "outcome unknown" before it gives up on its own.
	DefaultRequestTimeout = 5 * time.Second
)

// Config holds the server's limits and hooks. Zero fields take the defaults.
type Config struct {
	BodyLimit      int           // bytes; DefaultBodyLimit
	ReadTimeout    time.Duration // DefaultReadTimeout
	WriteTimeout   time.Duration // DefaultWriteTimeout
	IdleTimeout    time.Duration // DefaultIdleTimeout
	RequestTimeout time.Duration // DefaultRequestTimeout

	// APIKeys, when not empty, are required (as bearer tokens) on every
	// route except /healthz and /readyz; the key's principal is recorded
	// with each transition. Empty: open, every request is "anonymous".
	APIKeys []APIKey

	// NodePrincipal is the principal of the API key the cluster's nodes
	// call each other with (cmd/orderd's --node-token-file): its requests
	// may name the principal they act for (headerOnBehalfOf, holds.go),
	// and they are not rate limited, having been limited where they
	// entered the cluster. Empty: no principal may act for another.
	NodePrincipal string

	// RatePerPrincipal and BurstPerPrincipal limit each principal's
	// requests (429 beyond); zero means the defaults, negative no limit.
	RatePerPrincipal  int
	BurstPerPrincipal int

	// Logger receives internal errors and panics, the only things logged
	// here; slog.Default() when nil.
	Logger *slog.Logger

	// Now and Entropy make generated order and request IDs; tests replace
	// them. Entropy must not fail: the default reads crypto/rand, which
	// never returns an error.
	Now     func() time.Time
	Entropy func() [order.IDEntropyLen]byte

	// Metrics receives the HTTP metrics and is served at GET /metrics;
	// nil: a registry of the server's own, holding the HTTP metrics only.
	Metrics Registry

	// Checkouts runs the checkout sagas (checkout.go); nil: the checkout
	// routes answer 404.
	Checkouts CheckoutService

	// Router, in a cluster, says which node serves each order: a request
	// for an order served elsewhere is forwarded there in one hop (route.go,
	// forward.go). Nil: a single node serving every order.
	Router Router
}

func (cfg Config) withDefaults() Config {
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RatePerPrincipal == 0 {
		cfg.RatePerPrincipal, cfg.BurstPerPrincipal = DefaultRatePerPrincipal, DefaultBurstPerPrincipal
	}
	if cfg.BurstPerPrincipal <= 0 {
		cfg.BurstPerPrincipal = cfg.RatePerPrincipal
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Entropy == nil {
		cfg.Entropy = cryptoEntropy
	}
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	return cfg
}

func cryptoEntropy() (b [order.IDEntropyLen]byte) {
	_, _ = rand.Read(b[:]) // documented never to fail since Go 1.24
	return b
}

// Server is the HTTP front end of one orderd process.
type Server struct {
	svc     actors.Service
	keys    *keyring     // nil: no authentication
	limiter *rateLimiter // nil: no rate limit
	cfg     Config
	app     *fiber.App
	machine machineViews
	metrics *httpMetrics

	// With a Router only: the client to the other nodes and its metrics.
	peers    *fasthttp.Client
	forwards *forwardMetrics

	mu       sync.Mutex
	ln       net.Listener // set by Serve, closed by Shutdown
	shutDown bool
}

// New builds the server; it does not listen until Serve.
func New(svc actors.Service, cfg Config) *Server {
	s := &Server{svc: svc, cfg: cfg.withDefaults(), machine: newMachineViews(), keys: newKeyring(cfg.APIKeys)}
	s.limiter = newRateLimiter(s.cfg.RatePerPrincipal, s.cfg.BurstPerPrincipal, s.cfg.Now)
	s.app = fiber.New(fiber.Config{
		// Request values live in buffers Fiber reuses after the handler
		// returns, while commands outlive it in actors and the log
		// (FACTS.md, Fiber). Immutable would copy every header, parameter
		// and path Fiber hands out, five or more allocations per request,
		// most of them for values only looked at; instead the few values
		// that are kept are copied where they are read: the path ID
		// (pathID), Idempotency-Key (parseIdempotencyKey), X-Request-ID
		// (requestID) and body members (bodyMember.optional, string()).
		// TestRequestValuesOutliveTheirBuffers checks that they survive.
		Immutable: false,
		// Prefork would give every child process its own actors for the
		// same orders. Stated here so nobody turns it on.
		Prefork: false,
		// One spelling per resource: /V1/Orders is not an alias.
		CaseSensitive:         true,
		BodyLimit:             s.cfg.BodyLimit,
		ReadTimeout:           s.cfg.ReadTimeout,
		WriteTimeout:          s.cfg.WriteTimeout,
		IdleTimeout:           s.cfg.IdleTimeout,
		ErrorHandler:          s.handleError,
		DisableStartupMessage: true,
	})
	// Responses sent while shutting down carry "Connection: close", so
	// keep-alive clients move on instead of finding a closed socket.
	s.app.Server().CloseOnShutdown = true
	s.metrics = newHTTPMetrics(s.cfg.Metrics, s.routePaths())
	if s.cfg.Router != nil {
		s.peers, s.forwards = newPeerClient(s.cfg), newForwardMetrics(s.cfg.Metrics)
	}
	s.app.Use(s.tagRequest, s.observe, recoverPanics)
	s.register()
	return s
}

// ErrServerClosed is what Serve returns when called after Shutdown.
var ErrServerClosed = errors.New("http: server closed")

// Serve answers requests on ln until Shutdown; it then returns nil.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shutDown {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrServerClosed
	}
	s.ln = ln
	s.mu.Unlock()
	err := s.app.Listener(ln)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutDown {
		return nil // the listener was closed on purpose
	}
	return err
}

// Shutdown stops accepting connections and waits, up to ctx's deadline, for
// requests in flight to finish (their commands are already with the actors,
// so cutting them off would only turn answers into "outcome unknown").
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutDown = true
	ln := s.ln
	s.mu.Unlock()
	err := s.app.ShutdownWithContext(ctx)
	// fasthttp's Shutdown returns at once if Serve has not yet handed it
	// the listener, and that Serve would then run forever; closing the
	// listener here stops it either way (a second Close is harmless).
	if ln != nil {
		_ = ln.Close()
	}
	if s.peers != nil {
		// Requests in flight are done. fasthttp's cleaner goroutines
		// end by themselves within 10 s once no connection is left.
		s.peers.CloseIdleConnections()
	}
	return err
}

// App exposes the Fiber app, for tests that drive it without a socket.
func (s *Server) App() *fiber.App { return s.app }

type route struct {
	method  string
	path    string
	handler fiber.Handler
	public  bool // answered without an API key: the probes and the API description
}

func (s *Server) routes() []route {
	return []route{
		{fiber.MethodPost, "/v1/orders", s.gatedHere(s.createOrder), false},
		// Not routed: every node lists from its own state store, which
		// follows every partition (list.go).
		{fiber.MethodGet, "/v1/orders", s.gated(s.listOrders), false},
		{fiber.MethodGet, "/v1/orders/:id", s.routed(s.gated(s.getOrder)), false},
		{fiber.MethodPost, "/v1/orders/:id/transitions", s.routed(s.gated(s.transition)), false},
		{fiber.MethodPost, paymentDeadlinePath, s.routed(s.gated(s.reschedulePayment)), false},
		{fiber.MethodGet, "/v1/orders/:id/history", s.routed(s.gated(s.history)), false},
		{fiber.MethodGet, inventoryPath, s.routedBy(skuKey, s.gated(s.getStock)), false},
		{fiber.MethodPut, inventoryPath, s.routedBy(skuKey, s.gated(s.setStock)), false},
		{fiber.MethodPost, holdPath, s.routedBy(holdKey, s.gated(s.changeHold)), false},
		// A checkout's ID is known only once its body is read.
		{fiber.MethodPost, checkoutsPath, s.gatedHere(s.createCheckout), false},
		{fiber.MethodGet, checkoutsPath + "/:id", s.routed(s.gated(s.getCheckout)), false},
		{fiber.MethodGet, "/v1/machine", s.getMachine, false},
		{fiber.MethodGet, "/healthz", s.healthz, true},
		{fiber.MethodGet, "/readyz", s.readyz, true},
		{fiber.MethodGet, "/metrics", s.metricsHandler(), false},
		{fiber.MethodGet, "/openapi.json", s.openAPI, true},
	}
}

// register adds the routes, then, after them, a catch-all per path that
// answers 405 with the Allow header Fiber's own 405 lacks (RFC 9110 §15.5.6).
func (s *Server) register() {
	allowed := map[string][]string{}
	var paths []string
	for _, r := range s.routes() {
		if _, seen := allowed[r.path]; !seen {
			paths = append(paths, r.path)
		}
		handler := r.handler
		if !r.public {
			handler = s.authenticated(s.rateLimited(handler))
		}
		s.app.Add(r.method, r.path, handler)
		allowed[r.path] = append(allowed[r.path], r.method)
		if r.method == fiber.MethodGet {
			s.app.Add(fiber.MethodHead, r.path, handler)
			allowed[r.path] = append(allowed[r.path], fiber.MethodHead)
		}
	}
	for _, p := range paths {
		s.app.All(p, methodNotAllowed(strings.Join(allowed[p], ", ")))
	}
}

func methodNotAllowed(allow string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderAllow, allow)
		return fiber.ErrMethodNotAllowed
	}
}

// localRequestID is the Ctx.Locals key of the request's ID.
const localRequestID = "orderd.request_id"

// tagRequest gives every request an ID before anything can fail.
func (s *Server) tagRequest(c *fiber.Ctx) error {
	s.requestID(c)
	return c.Next()
}

// requestID returns the request's ID, choosing it on first use: the client's
// X-Request-ID when it is short and printable, else a fresh one, so that a
// hostile header never reaches the log. It is echoed in the response.
func (s *Server) requestID(c *fiber.Ctx) string {
	if id, ok := c.Locals(localRequestID).(string); ok {
		return id
	}
	var id string
	if sent := c.Request().Header.Peek(headerRequestID); len(sent) > 0 && len(sent) <= requestIDLenMax && isVisibleASCII(sent) {
		id = string(sent) // a copy: the ID outlives Fiber's buffers in commands and the log
	} else {
		id = s.newID()
	}
	c.Locals(localRequestID, id)
	c.Response().Header.Set(headerRequestID, id)
	return id
}

// newID makes a sortable unique ID (a ULID) for orders and requests alike.
func (s *Server) newID() string { return order.NewID(s.cfg.Now(), s.cfg.Entropy()) }

// recoverPanics turns a handler's panic into an internal error, which the
// error handler logs with its stack and answers with 500; a bug in one
// request must not take the process, and every order's actor, down with it.
func recoverPanics(c *fiber.Ctx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v\n%s", v, debug.Stack())
		}
	}()
	return c.Next()
}
