package http

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// APIKey is one client's credential: the principal recorded in the audit log
// for its transitions, and the bearer token it sends.
type APIKey struct {
	Principal string
	Token     string
}

// Limits on configured keys. A token shorter than apiTokenLenMin is too easy
// to guess for a credential that guards writes to an audit log.
const (
	apiTokenLenMin     = 16
	apiTokenLenMax     = 512
	apiPrincipalLenMax = 64
	apiKeysMax         = 10000
)

// ParseAPIKeys reads one "principal=token" per line; blank lines and lines
// starting with '#' are skipped. Errors name the line, never the token.
func ParseAPIKeys(r io.Reader) ([]APIKey, error) {
	var keys []APIKey
	seenPrincipal, seenToken := map[string]bool{}, map[string]bool{}
	scanner := bufio.NewScanner(r)
	for line := 1; scanner.Scan(); line++ {
		text := strings.TrimSpace(scanner.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		principal, token, ok := strings.Cut(text, "=")
		principal, token = strings.TrimSpace(principal), strings.TrimSpace(token)
		switch {
		case !ok:
			return nil, fmt.Errorf("API keys line %d: want principal=token", line)
		case !visibleASCII(principal, apiPrincipalLenMax) || strings.ContainsAny(principal, ",="):
			return nil, fmt.Errorf("API keys line %d: principal must be 1 to %d visible ASCII characters without ',' or '='", line, apiPrincipalLenMax)
		case len(token) < apiTokenLenMin || !visibleASCII(token, apiTokenLenMax) || strings.Contains(token, ","):
			return nil, fmt.Errorf("API keys line %d (principal %q): token must be %d to %d visible ASCII characters without ','", line, principal, apiTokenLenMin, apiTokenLenMax)
		case seenPrincipal[principal]:
			return nil, fmt.Errorf("API keys line %d: principal %q appears twice", line, principal)
		case seenToken[token]:
			return nil, fmt.Errorf("API keys line %d (principal %q): token already belongs to another principal", line, principal)
		case len(keys) == apiKeysMax:
			return nil, fmt.Errorf("API keys: more than %d keys", apiKeysMax)
		}
		seenPrincipal[principal], seenToken[token] = true, true
		keys = append(keys, APIKey{Principal: principal, Token: token})
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("API keys: %w", err)
	}
	if len(keys) == 0 {
		return nil, errors.New("API keys: none given")
	}
	return keys, nil
}

func visibleASCII(s string, lenMax int) bool {
	if s == "" || len(s) > lenMax {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// keyring checks bearer tokens. Tokens are compared as SHA-256 digests in
// constant time, against every key without stopping at a match, so neither
// the length nor the content of a token, nor which key matched, shows in
// the response time.
type keyring struct {
	principals []string
	digests    [][sha256.Size]byte
}

func newKeyring(keys []APIKey) *keyring {
	if len(keys) == 0 {
		return nil
	}
	k := &keyring{}
	for _, key := range keys {
		k.principals = append(k.principals, key.Principal)
		k.digests = append(k.digests, sha256.Sum256([]byte(key.Token)))
	}
	return k
}

func (k *keyring) principalOf(token string) (string, bool) {
	digest := sha256.Sum256([]byte(token))
	match := -1
	for i := range k.digests {
		if subtle.ConstantTimeCompare(digest[:], k.digests[i][:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return "", false
	}
	return k.principals[match], true
}

// localPrincipal is the Ctx.Locals key of the authenticated principal.
const localPrincipal = "orderd.principal"

// errUnauthorized: no valid bearer token on a route that needs one.
var errUnauthorized = errors.New("unauthorized")

// authenticated wraps a handler so that, when keys are configured, it runs
// only for a request with a valid bearer token, as that token's principal.
func (s *Server) authenticated(next fiber.Handler) fiber.Handler {
	if s.keys == nil {
		return next
	}
	return func(c *fiber.Ctx) error {
		scheme, token, _ := strings.Cut(c.Get(fiber.HeaderAuthorization), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return errUnauthorized
		}
		principal, ok := s.keys.principalOf(strings.TrimSpace(token))
		if !ok {
			return errUnauthorized
		}
		c.Locals(localPrincipal, principal)
		return next(c)
	}
}

// principal is who the request acts as: the API key's principal, or
// "anonymous" when the server runs without keys.
func principal(c *fiber.Ctx) string {
	if p, ok := c.Locals(localPrincipal).(string); ok {
		return p
	}
	return principalAnonymous
}
