package http

import (
	"context"
	"encoding/json"
	nethttp "net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

var testKeys = []APIKey{
	{Principal: "shop", Token: "shop-token-0123456789"},
	{Principal: "warehouse", Token: "warehouse-token-0123456789"},
}

// pathFor turns a route pattern into a concrete path.
func pathFor(pattern string) string { return strings.ReplaceAll(pattern, ":id", "o-1") }

// TestEveryRouteButProbesNeedsAKey walks the server's own route table, so a
// route added later cannot forget authentication.
func TestEveryRouteButProbesNeedsAKey(t *testing.T) {
	svc := &fakeService{GetFn: func(context.Context, string) (order.Order, error) { return order.Order{}, order.ErrOrderNotFound }}
	h := newHarness(t, svc, Config{APIKeys: testKeys})
	routes := h.srv.routes()
	require.NotEmpty(t, routes)
	for _, r := range routes {
		for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Basic c2hvcDpzaG9w", "Bearer ", "shop-token-0123456789"} {
			resp := h.do(r.method, pathFor(r.path), `{"to":"Paid"}`, "Authorization", auth)
			if r.public {
				assert.Equal(t, nethttp.StatusOK, resp.status, "%s %s is a probe", r.method, r.path)
				continue
			}
			assert.Equal(t, nethttp.StatusUnauthorized, resp.status, "%s %s with %q", r.method, r.path, auth)
			assert.Equal(t, `Bearer realm="orderd"`, resp.header.Get("WWW-Authenticate"))
			var p map[string]any
			require.NoError(t, json.Unmarshal(resp.body, &p))
			assert.Equal(t, "urn:orderd:problem:unauthorized", p["type"])
		}
	}
	assert.Empty(t, svc.received(), "nothing unauthenticated reached the actors")
}

func TestKeyPrincipalIsRecorded(t *testing.T) {
	svc := &fakeService{}
	h := newHarness(t, svc, Config{APIKeys: testKeys})
	resp := h.do("POST", "/v1/orders", `{"id":"o-1"}`, "Authorization", "Bearer warehouse-token-0123456789")
	require.Equal(t, nethttp.StatusCreated, resp.status, "%s", resp.body)
	resp = h.do("POST", "/v1/orders/o-1/transitions", `{"to":"Paid"}`, "Authorization", "bearer shop-token-0123456789")
	require.Equal(t, nethttp.StatusOK, resp.status, "%s", resp.body)
	got := svc.received()
	require.Len(t, got, 2)
	assert.Equal(t, "warehouse", got[0].Principal)
	assert.Equal(t, "shop", got[1].Principal)
	assert.NotContains(t, h.logs.String(), "token-0123456789", "tokens never reach the log")
}

func TestWithoutKeysEveryoneIsAnonymous(t *testing.T) {
	svc := &fakeService{}
	h := newHarness(t, svc, Config{})
	resp := h.do("POST", "/v1/orders", `{"id":"o-1"}`)
	require.Equal(t, nethttp.StatusCreated, resp.status)
	assert.Equal(t, principalAnonymous, svc.received()[0].Principal)
}

func TestParseAPIKeys(t *testing.T) {
	keys, err := ParseAPIKeys(strings.NewReader("# comment\n\n shop = shop-token-0123456789 \nwarehouse=warehouse-token-0123456789\n"))
	require.NoError(t, err)
	assert.Equal(t, testKeys, keys)

	for name, text := range map[string]string{
		"no separator":     "shop shop-token-0123456789",
		"short token":      "shop=short",
		"empty principal":  "=shop-token-0123456789",
		"space in token":   "shop=shop token 0123456789",
		"duplicate name":   "a=shop-token-0123456789\na=other-token-0123456789",
		"duplicate token":  "a=shop-token-0123456789\nb=shop-token-0123456789",
		"nothing":          "# only a comment\n",
		"comma in token":   "shop=shop-token,0123456789",
		"control in token": "shop=shop-token-\x010123456789",
	} {
		_, err := ParseAPIKeys(strings.NewReader(text))
		require.Error(t, err, name)
		assert.NotContains(t, err.Error(), "0123456789", "%s: errors never quote tokens", name)
	}
}
