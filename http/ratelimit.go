package http

import (
	"errors"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"
)

// Per-principal rate limits: a token bucket per API key's principal (or the
// one "anonymous" principal without keys). The defaults are far above what
// one process serves on a small machine (bench/ measured about 10,000
// transitions/s here), so they only stop a runaway or hostile client from
// starving the others; operators lower them per deployment.
const (
	DefaultRatePerPrincipal  = 20000 // requests per second
	DefaultBurstPerPrincipal = 40000 // requests
)

// errRateLimited: the principal sent more than its rate allows.
var errRateLimited = errors.New("rate limited")

// rateLimiter holds one token bucket (golang.org/x/time/rate) per principal.
// Principals are bounded (the configured keys, plus anonymous), so the map is
// too. A sync.Map: every request reads it, and it is written once per
// principal.
type rateLimiter struct {
	limit    rate.Limit
	burst    int
	now      func() time.Time
	limiters sync.Map // principal -> *rate.Limiter
}

func newRateLimiter(ratePerSecond, burst int, now func() time.Time) *rateLimiter {
	if ratePerSecond <= 0 {
		return nil // unlimited
	}
	return &rateLimiter{limit: rate.Limit(ratePerSecond), burst: max(burst, 1), now: now}
}

// allow takes one token from the principal's bucket, which starts full and
// refills at the rate, up to the burst.
func (l *rateLimiter) allow(principal string) bool {
	lim, ok := l.limiters.Load(principal)
	if !ok {
		lim, _ = l.limiters.LoadOrStore(principal, rate.NewLimiter(l.limit, l.burst))
	}
	return lim.(*rate.Limiter).AllowN(l.now(), 1)
}

// rateLimited wraps a handler that runs after authentication, so the
// request's principal is known. The node principal is not limited: its
// calls were counted against the client that caused them, on the node they
// entered, and a saga throttled here would hold its stock longer.
func (s *Server) rateLimited(next fiber.Handler) fiber.Handler {
	if s.limiter == nil {
		return next
	}
	return func(c *fiber.Ctx) error {
		if p := principal(c); (s.cfg.NodePrincipal == "" || p != s.cfg.NodePrincipal) && !s.limiter.allow(p) {
			return errRateLimited
		}
		return next(c)
	}
}
