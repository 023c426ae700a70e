package http

import (
	"errors"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
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

// rateLimiter holds one token bucket per principal. Principals are bounded
// (the configured keys, plus anonymous), so the map is too.
type rateLimiter struct {
	ratePerSecond float64
	burst         float64
	now           func() time.Time

	mu      sync.Mutex
	buckets map[string]*tokenBucket
}

type tokenBucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(ratePerSecond, burst int, now func() time.Time) *rateLimiter {
	if ratePerSecond <= 0 {
		return nil // unlimited
	}
	return &rateLimiter{ratePerSecond: float64(ratePerSecond), burst: float64(max(burst, 1)), now: now, buckets: map[string]*tokenBucket{}}
}

// allow takes one token from the principal's bucket, refilled at the rate
// since its last request and capped at the burst.
func (l *rateLimiter) allow(principal string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[principal]
	if b == nil {
		b = &tokenBucket{tokens: l.burst, last: now}
		l.buckets[principal] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.ratePerSecond)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// rateLimited wraps a handler that runs after authentication, so the
// request's principal is known.
func (s *Server) rateLimited(next fiber.Handler) fiber.Handler {
	if s.limiter == nil {
		return next
	}
	return func(c *fiber.Ctx) error {
		if !s.limiter.allow(principal(c)) {
			return errRateLimited
		}
		return next(c)
	}
}
