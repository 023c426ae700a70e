package http

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	nethttp "net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// fuzzOutcomes are what the fake service answers, chosen by the fuzzer:
// success and errors a client can cause. None of them may become a 5xx
// (the 503s the service can return are TestErrorTable's business).
var fuzzOutcomes = []error{
	nil,
	order.ErrOrderNotFound,
	&order.InvalidTransitionError{From: order.Delivered, To: order.Paid, Allowed: []order.State{order.Returned}},
	&order.VersionMismatchError{Expected: 1, Current: 2},
}

// fuzzHeaderBytesMax keeps fuzzed requests inside fasthttp's 4 KiB header
// buffer, even with the path ID percent-encoded (3 bytes per byte).
const fuzzHeaderBytesMax = 1024

// FuzzTransitionRequest sends arbitrary bodies, path IDs and header values
// to POST /v1/orders/{id}/transitions and checks that the server never
// answers 5xx when the service behaves, that every error is a problem
// document, that a request refused as malformed never reached the actors,
// and that the body decoder agrees with encoding/json's.
func FuzzTransitionRequest(f *testing.F) {
	f.Add(`{"to":"Paid"}`, "order-1", `"1"`, "key-1", "application/json", uint8(0))
	f.Add(`{"to":"paid","reason":5}`, "a b", "W/\"1\"", "", "text/plain", uint8(2))
	f.Add(`{"to":"Paid","to":"Shipped"}`, "o", "*", strings.Repeat("k", 256), "application/json; charset=utf-8", uint8(3))

	svc := &fakeService{}
	var outcome error
	svc.ExecuteFn = func(_ context.Context, cmd order.Command) (order.Order, error) {
		if outcome != nil {
			return order.Order{}, outcome
		}
		return applied(cmd), nil
	}
	srv := New(svc, Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})

	f.Fuzz(func(t *testing.T, body, id, ifMatch, idemKey, contentType string, pick uint8) {
		// Oversize bodies and headers are refused by fasthttp before Fiber
		// sees them, and app.Test reports that as an error rather than a
		// response: TestBodyLimit and TestHeadersTooLarge cover them.
		if len(body) > DefaultBodyLimit || len(id)+len(ifMatch)+len(idemKey)+len(contentType) > fuzzHeaderBytesMax {
			t.Skip("oversize request")
		}
		// The body decoder agrees with encoding/json on every body, sendable
		// or not (FuzzDecodeObject is the same check on bodies alone).
		requireSameAsOracle(t, body)
		if !validHeaderValue(ifMatch) || !validHeaderValue(idemKey) || !validHeaderValue(contentType) {
			t.Skip("not a value an HTTP client can send")
		}
		outcome = fuzzOutcomes[int(pick)%len(fuzzOutcomes)] // app.Test serves one request at a time
		svc.mu.Lock()
		svc.commands = nil
		svc.mu.Unlock()

		req, err := nethttp.NewRequest("POST", "http://orderd.test/v1/orders/"+url.PathEscape(id)+"/transitions", strings.NewReader(body))
		require.NoError(t, err)
		setHeader(req, "Content-Type", contentType)
		setHeader(req, "If-Match", ifMatch)
		setHeader(req, "Idempotency-Key", idemKey)

		resp, err := srv.App().Test(req, -1)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)

		require.Less(t, resp.StatusCode, 500, "body: %s", raw)
		executed := len(svc.received())
		if resp.StatusCode < 300 {
			require.Equal(t, 1, executed)
			return
		}
		require.Equal(t, problemContentType, resp.Header.Get("Content-Type"))
		var p map[string]any
		require.NoError(t, json.Unmarshal(raw, &p), "body: %s", raw)
		switch p["type"] {
		case problemTypePrefix + "bad-request", problemTypePrefix + "not-found",
			problemTypePrefix + "unsupported-media-type":
			require.Zero(t, executed, "a malformed request reached Execute: %s", raw)
		}
	})
}

// validHeaderValue rejects what net/http would refuse or rewrite: control
// characters other than tab, and surrounding whitespace, which HTTP strips.
func validHeaderValue(v string) bool {
	if strings.TrimSpace(v) != v {
		return false
	}
	return !strings.ContainsFunc(v, func(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f })
}

func setHeader(req *nethttp.Request, name, value string) {
	if value != "" {
		req.Header.Set(name, value)
	}
}
