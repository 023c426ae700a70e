package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/valyala/fasthttp"
)

// The load generator shares two cores with the server it measures, so its
// own cost per request is taken out of the server's budget. fasthttp's
// client (already in the module graph through Fiber) costs a fraction of
// net/http's per request and allocates little, which leaves more of the
// machine to the server under test.

// connIdleMax closes client connections idle for longer; runs are short,
// so this matters only against a server that keeps connections forever.
const connIdleMax = 30 * time.Second

// apiClient sends orderd API requests over keep-alive connections.
type apiClient struct {
	hc      *fasthttp.HostClient
	base    string // scheme://host:port, no trailing slash
	timeout time.Duration
}

// newAPIClient returns a client for the server at rawURL that keeps at most
// conns connections open: one per client or outstanding request, so no
// request ever waits for a connection inside the client, where its waiting
// would be hidden from the latency.
func newAPIClient(rawURL string, conns int, timeout time.Duration) (*apiClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("--url %q: %w", rawURL, err)
	}
	if u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("--url %q: want http://host:port (plain HTTP, no path)", rawURL)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	return &apiClient{
		hc: &fasthttp.HostClient{
			Addr:     host,
			MaxConns: conns,
			// Every request is sent exactly once: a silent retry would hide
			// an error and could apply a write twice.
			MaxIdemponentCallAttempts: 1,
			MaxIdleConnDuration:       connIdleMax,
			ReadTimeout:               timeout,
			WriteTimeout:              timeout,
			NoDefaultUserAgentHeader:  true,
			DisablePathNormalizing:    true,
		},
		base:    "http://" + host,
		timeout: timeout,
	}, nil
}

// Request bodies that never change, built once.
var (
	transitionBodies = func() map[string][]byte {
		m := make(map[string][]byte, len(allStates))
		for _, s := range allStates {
			m[s] = []byte(`{"to":"` + s + `"}`)
		}
		return m
	}()
	contentJSON = []byte("application/json")
)

// wireBody is the union of the members the harness reads from an order
// document and from a 409 problem document.
type wireBody struct {
	ID           string `json:"id"`
	State        string `json:"state"`
	Version      uint64 `json:"version"`
	CurrentState string `json:"current_state"`
}

// do sends step s of order id and returns the answer.
func (c *apiClient) do(s step, id string) response {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	switch s.kind {
	case opCreate:
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI(c.base + "/v1/orders")
		req.Header.SetContentTypeBytes(contentJSON)
		req.SetBodyString(`{"id":"` + id + `"}`) // IDs never need escaping (README: Limits)
	case opTransition, opInvalid:
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI(c.base + "/v1/orders/" + id + "/transitions")
		req.Header.SetContentTypeBytes(contentJSON)
		req.SetBody(transitionBodies[s.to])
	case opRead:
		req.Header.SetMethod(fasthttp.MethodGet)
		req.SetRequestURI(c.base + "/v1/orders/" + id)
	}
	if err := c.hc.DoTimeout(req, resp, c.timeout); err != nil {
		return response{err: err}
	}
	return decodeResponse(resp.StatusCode(), resp.Body())
}

// get reads order id, for the final verification.
func (c *apiClient) get(id string) response { return c.do(step{kind: opRead}, id) }

// getStatus is a bare GET of path, for readiness probes.
func (c *apiClient) getStatus(path string) (int, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(c.base + path)
	if err := c.hc.DoTimeout(req, resp, c.timeout); err != nil {
		return 0, err
	}
	return resp.StatusCode(), nil
}

func decodeResponse(status int, body []byte) response {
	r := response{status: status}
	var w wireBody
	if err := json.Unmarshal(body, &w); err != nil {
		return r
	}
	if status >= 200 && status <= 299 && w.ID != "" {
		r.decoded, r.id, r.state, r.version = true, w.ID, w.State, w.Version
	}
	r.currentState = w.CurrentState
	return r
}

// closeIdle drops the client's idle connections.
func (c *apiClient) closeIdle() { c.hc.CloseIdleConnections() }

// apiClients is one client per URL, for a load spread over the nodes of a
// cluster.
type apiClients []*apiClient

// newAPIClients returns a client for each URL, sharing conns between them:
// client i of the load uses URL i mod n, so URL k serves at most
// ceil(conns/n) of them at a time.
func newAPIClients(rawURLs []string, conns int, timeout time.Duration) (apiClients, error) {
	perURL := (conns + len(rawURLs) - 1) / len(rawURLs)
	cs := make(apiClients, 0, len(rawURLs))
	for _, u := range rawURLs {
		c, err := newAPIClient(u, perURL, timeout)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

func (cs apiClients) senders() []sender {
	s := make([]sender, len(cs))
	for i, c := range cs {
		s[i] = c
	}
	return s
}

func (cs apiClients) getters() []getter {
	g := make([]getter, len(cs))
	for i, c := range cs {
		g[i] = c
	}
	return g
}

func (cs apiClients) closeIdle() {
	for _, c := range cs {
		c.closeIdle()
	}
}
