package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
)

// responseBytesMax bounds what orderctl reads of a response. The largest
// answer orderd gives is a history (a few KiB under today's lifecycle); a
// bigger body is not orderd's.
const responseBytesMax = 4 << 20

// userAgent names orderctl in the server's logs.
const userAgent = "orderctl"

// response is an HTTP answer, read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

// problem is an RFC 9457 problem document as orderd writes it (README, error
// table), with the extension members orderctl shows.
type problem struct {
	Type           string   `json:"type"`
	Title          string   `json:"title"`
	Status         int      `json:"status"`
	Detail         string   `json:"detail"`
	Allowed        []string `json:"allowed"`
	CurrentState   string   `json:"current_state"`
	CurrentVersion *uint64  `json:"current_version"`
	Field          string   `json:"field"`
	RequestID      string   `json:"request_id"`
}

// problemTypePrefix is how orderd spells its problem types.
const problemTypePrefix = "urn:orderd:problem:"

// code is the problem's short code (`invalid-transition`), or "".
func (p problem) code() string { return strings.TrimPrefix(p.Type, problemTypePrefix) }

// Problem codes that promise nothing was applied although the status is 5xx.
var nothingAppliedCodes = map[string]bool{"busy": true, "journal-unavailable": true, "not-ready": true}

// request is one call to orderd.
type request struct {
	method string
	path   string // below the base URL, escaped
	body   any    // encoded as JSON when not nil
	header map[string]string
	// write: the request changes state, so a lost answer leaves its
	// outcome unknown (exit 5 rather than 3).
	write bool
	// idempotencyKey is shown when the outcome is unknown.
	idempotencyKey string
}

// do sends req with the global timeout and returns the answer, whatever its
// status. A transport failure is reported here and returned as its exit code.
func (a *app) do(ctx context.Context, req request) (response, int) {
	ctx, cancel := context.WithTimeout(ctx, a.g.timeout)
	defer cancel()
	var body io.Reader
	if req.body != nil {
		b, err := json.Marshal(req.body)
		if err != nil {
			a.errorf("encoding the request: %v", err)
			return response{}, exitRefused
		}
		body = bytes.NewReader(b)
	}
	hreq, err := http.NewRequestWithContext(ctx, req.method, a.g.url+req.path, body)
	if err != nil {
		a.errorf("%v", err)
		return response{}, exitUsage
	}
	hreq.Header.Set("User-Agent", userAgent)
	hreq.Header.Set("Accept", "application/json, application/problem+json")
	if req.body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	if token := a.getenv(envToken); token != "" {
		hreq.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range req.header {
		hreq.Header.Set(k, v)
	}
	hresp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return response{}, a.transportError(ctx, req, err)
	}
	defer hresp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(hresp.Body, responseBytesMax+1))
	if err != nil {
		return response{}, a.transportError(ctx, req, err)
	}
	if len(b) > responseBytesMax {
		a.errorf("the answer from %s is larger than %d bytes: not orderd?", a.g.url, responseBytesMax)
		return response{}, exitRefused
	}
	return response{status: hresp.StatusCode, header: hresp.Header, body: b}, exitOK
}

// transportError reports a request that got no (complete) answer. A write
// that may have reached the server has an unknown outcome; one that could
// not even connect has not.
func (a *app) transportError(ctx context.Context, req request, err error) int {
	// The url.Error repeats the method and URL; the cause is what helps.
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	notSent := errors.Is(err, syscall.ECONNREFUSED) || isDNSError(err)
	switch {
	case notSent:
		a.errorf("cannot reach orderd at %s: %v (is it running? set --url or %s)", a.g.url, err, envURL)
		return exitUnavailable
	case ctx.Err() != nil && req.write:
		a.errorf("no answer from %s within %v: the %s may or may not have been applied", a.g.url, a.g.timeout, what(req))
		a.retryHint(req)
		return exitOutcomeUnknown
	case ctx.Err() != nil:
		a.errorf("no answer from %s within %v", a.g.url, a.g.timeout)
		return exitUnavailable
	case req.write:
		a.errorf("request to %s failed: %v: the %s may or may not have been applied", a.g.url, err, what(req))
		a.retryHint(req)
		return exitOutcomeUnknown
	default:
		a.errorf("request to %s failed: %v", a.g.url, err)
		return exitUnavailable
	}
}

func isDNSError(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr)
}

// what names the write whose outcome is unknown.
func what(req request) string {
	switch {
	case req.path == ordersPath:
		return "create"
	case req.path == checkoutsPath:
		return "checkout"
	case strings.HasPrefix(req.path, inventoryPath+"/"):
		return "stock change"
	}
	return "transition"
}

func (a *app) retryHint(req request) {
	if req.idempotencyKey != "" {
		fmt.Fprintf(a.stderr, "  retry with --idempotency-key %s to apply it at most once\n", req.idempotencyKey)
	}
}

// failed reports a non-2xx answer on stderr (and, with --json, writes the
// problem document to stdout for scripts) and returns its exit code.
func (a *app) failed(req request, resp response) int {
	if a.g.json && len(resp.body) > 0 {
		writeLine(a.stdout, resp.body)
	}
	var p problem
	if err := json.Unmarshal(resp.body, &p); err != nil || p.Title == "" {
		// Not a problem document: a proxy's page, or not orderd at all.
		a.errorf("HTTP %d %s from %s: %s", resp.status, http.StatusText(resp.status), a.g.url, snippet(resp.body))
		return statusExitCode(req, resp.status, "")
	}
	msg := p.Title
	if p.Detail != "" {
		msg += ": " + p.Detail
	}
	a.errorf("%s", msg)
	if p.Allowed != nil {
		allowed := "none (a terminal state)"
		if len(p.Allowed) > 0 {
			allowed = strings.Join(p.Allowed, ", ")
		}
		fmt.Fprintf(a.stderr, "  current state: %s; allowed next: %s\n", orDash(p.CurrentState), allowed)
	}
	if p.CurrentVersion != nil {
		fmt.Fprintf(a.stderr, "  current version: %d\n", *p.CurrentVersion)
	}
	if p.Field != "" {
		fmt.Fprintf(a.stderr, "  field: %s\n", p.Field)
	}
	if ra := resp.header.Get("Retry-After"); ra != "" {
		fmt.Fprintf(a.stderr, "  retry after: %ss\n", ra)
	}
	if resp.status == http.StatusUnauthorized && a.getenv(envToken) == "" {
		fmt.Fprintf(a.stderr, "  set %s to your API token\n", envToken)
	}
	if p.RequestID != "" {
		fmt.Fprintf(a.stderr, "  request id: %s\n", p.RequestID)
	}
	code := statusExitCode(req, resp.status, p.code())
	if code == exitOutcomeUnknown {
		a.retryHint(req)
	}
	return code
}

// statusExitCode maps an HTTP status (and problem code) to an exit code.
func statusExitCode(req request, status int, code string) int {
	switch {
	case status == http.StatusNotFound:
		return exitNotFound
	case status < 500:
		return exitRefused
	case code == "outcome-unknown":
		return exitOutcomeUnknown
	case nothingAppliedCodes[code] || !req.write:
		return exitUnavailable
	default:
		// Any other 5xx on a write (an internal error, a proxy's 502)
		// does not say whether it was applied.
		return exitOutcomeUnknown
	}
}

// snippet is the start of an unexpected body, on one line.
func snippet(b []byte) string {
	const snippetBytesMax = 200
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > snippetBytesMax {
		s = s[:snippetBytesMax] + "..."
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}

// writeLine writes b and ends it with a newline if it has none.
func writeLine(w io.Writer, b []byte) {
	_, _ = w.Write(b)
	if len(b) == 0 || b[len(b)-1] != '\n' {
		_, _ = io.WriteString(w, "\n")
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
