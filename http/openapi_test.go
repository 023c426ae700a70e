package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	nethttp "net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// openAPIURL names the document for the schema compiler; it is never fetched.
const openAPIURL = "https://orderd.invalid/openapi.json"

// apiSpec is openapi.json parsed once, with the schemas compiled as needed.
// The compiler is not safe for concurrent use, and harness.try runs on many
// goroutines, hence the lock.
type apiSpec struct {
	doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	raw map[string]any

	mu       sync.Mutex
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema
}

// openAPIMethods are the keys of an OpenAPI path item that are operations.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

var loadSpec = sync.OnceValues(func() (*apiSpec, error) {
	s := &apiSpec{schemas: map[string]*jsonschema.Schema{}}
	if err := json.Unmarshal(openAPIDocument, &s.doc); err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(openAPIDocument))
	if err != nil {
		return nil, err
	}
	s.raw, _ = doc.(map[string]any)
	s.compiler = jsonschema.NewCompiler()
	// OpenAPI 3.1's schemas are JSON Schema 2020-12.
	s.compiler.DefaultDraft(jsonschema.Draft2020)
	s.compiler.AssertFormat() // date-time is part of the contract
	if err := s.compiler.AddResource(openAPIURL, doc); err != nil {
		return nil, err
	}
	return s, nil
})

// schemaAt compiles the schema at a JSON pointer into the document.
func (s *apiSpec) schemaAt(pointer string) (*jsonschema.Schema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch, ok := s.schemas[pointer]; ok {
		return sch, nil
	}
	sch, err := s.compiler.Compile(openAPIURL + "#" + pointer)
	if err != nil {
		return nil, err
	}
	s.schemas[pointer] = sch
	return sch, nil
}

// lookup follows a JSON pointer through the raw document, resolving a local
// $ref at the end of it, and returns the value and its pointer.
func (s *apiSpec) lookup(pointer string) (any, string) {
	var v any = s.raw
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := v.(map[string]any)
		if !ok {
			return nil, ""
		}
		if v, ok = m[tok]; !ok {
			return nil, ""
		}
	}
	if m, ok := v.(map[string]any); ok {
		if ref, ok := m["$ref"].(string); ok {
			return s.lookup(strings.TrimPrefix(ref, "#"))
		}
	}
	return v, pointer
}

func escapePointer(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
}

// openAPIPath turns a Fiber route pattern into an OpenAPI path template:
// /v1/orders/:id becomes /v1/orders/{id}.
func openAPIPath(fiberPath string) string {
	parts := strings.Split(fiberPath, "/")
	for i, p := range parts {
		if name, ok := strings.CutPrefix(p, ":"); ok {
			parts[i] = "{" + name + "}"
		}
	}
	return strings.Join(parts, "/")
}

// matchPath finds the path template a request path falls under.
func (s *apiSpec) matchPath(path string) (string, bool) {
	segs := strings.Split(path, "/")
	for tmpl := range s.doc.Paths {
		tsegs := strings.Split(tmpl, "/")
		if len(tsegs) != len(segs) {
			continue
		}
		match := true
		for i := range tsegs {
			if !strings.HasPrefix(tsegs[i], "{") && tsegs[i] != segs[i] {
				match = false
				break
			}
		}
		if match {
			return tmpl, true
		}
	}
	return "", false
}

// checkResponse reports how a response departs from the document: a status
// the operation does not describe, a media type it does not list, a body or
// a header that does not match its schema. Requests outside the described
// operations (unknown paths, other methods) must still answer with a
// problem document. HEAD responses have no body to check.
func (s *apiSpec) checkResponse(method, target string, r reply) error {
	path, _, _ := strings.Cut(target, "?")
	tmpl, ok := s.matchPath(path)
	opPtr := "/paths/" + escapePointer(tmpl) + "/" + strings.ToLower(method)
	if op, _ := s.lookup(opPtr); !ok || op == nil {
		if method == nethttp.MethodHead {
			return nil
		}
		return s.checkBody("/components/schemas/Problem", r)
	}
	status := strconv.Itoa(r.status)
	resp, respPtr := s.lookup(opPtr + "/responses/" + status)
	if resp == nil {
		if resp, respPtr = s.lookup(opPtr + "/responses/default"); resp == nil {
			return fmt.Errorf("%s %s: status %d not described", method, tmpl, r.status)
		}
	}
	if err := s.checkHeaders(respPtr, r); err != nil {
		return fmt.Errorf("%s %s %d: %w", method, tmpl, r.status, err)
	}
	if method == nethttp.MethodHead {
		return nil
	}
	mediaType, _, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	if err != nil {
		return fmt.Errorf("%s %s %d: Content-Type %q: %w", method, tmpl, r.status, r.header.Get("Content-Type"), err)
	}
	content, _ := s.lookup(respPtr + "/content/" + escapePointer(mediaType))
	if content == nil {
		return fmt.Errorf("%s %s %d: media type %s not described", method, tmpl, r.status, mediaType)
	}
	if !strings.HasSuffix(mediaType, "json") {
		return nil
	}
	if err := s.checkBody(respPtr+"/content/"+escapePointer(mediaType)+"/schema", r); err != nil {
		return fmt.Errorf("%s %s %d: %w", method, tmpl, r.status, err)
	}
	return nil
}

func (s *apiSpec) checkBody(schemaPtr string, r reply) error {
	sch, err := s.schemaAt(schemaPtr)
	if err != nil {
		return err
	}
	body, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.body))
	if err != nil {
		return fmt.Errorf("body %q: %w", r.body, err)
	}
	if err := sch.Validate(body); err != nil {
		return fmt.Errorf("body %s does not match %s: %w", r.body, schemaPtr, err)
	}
	return nil
}

// checkHeaders validates the described headers the response carries, and
// requires X-Request-ID wherever it is described.
func (s *apiSpec) checkHeaders(respPtr string, r reply) error {
	headers, _ := s.lookup(respPtr + "/headers")
	names, _ := headers.(map[string]any)
	for name := range names {
		value := r.header.Get(name)
		if value == "" {
			if name == headerRequestID {
				return fmt.Errorf("header %s missing", name)
			}
			continue
		}
		_, hPtr := s.lookup(respPtr + "/headers/" + escapePointer(name))
		schemaPtr := hPtr + "/schema"
		sch, err := s.schemaAt(schemaPtr)
		if err != nil {
			return err
		}
		var inst any = value
		if typ, _ := s.lookup(schemaPtr + "/type"); typ == "integer" {
			n, err := strconv.Atoi(value)
			if err != nil {
				return fmt.Errorf("header %s: %q is not an integer", name, value)
			}
			inst = json.Number(strconv.Itoa(n))
		}
		if err := sch.Validate(inst); err != nil {
			return fmt.Errorf("header %s: %q: %w", name, value, err)
		}
	}
	return nil
}

// checkAgainstSpec is harness.try's hook: every response an HTTP test
// receives over a socket is checked against the document.
func checkAgainstSpec(method, target string, r reply) error {
	spec, err := loadSpec()
	if err != nil {
		return fmt.Errorf("openapi.json: %w", err)
	}
	if err := spec.checkResponse(method, target, r); err != nil {
		return fmt.Errorf("response does not match openapi.json: %w", err)
	}
	return nil
}

// TestOpenAPIDescribesExactlyTheRoutes: every route the server registers is
// described, and every described operation is registered.
func TestOpenAPIDescribesExactlyTheRoutes(t *testing.T) {
	t.Parallel()
	spec, err := loadSpec()
	require.NoError(t, err)

	var registered, described []string
	for _, r := range New(&fakeService{}, Config{}).routes() {
		registered = append(registered, r.method+" "+openAPIPath(r.path))
	}
	for path, item := range spec.doc.Paths {
		for key := range item {
			if slices.Contains(openAPIMethods, key) {
				described = append(described, strings.ToUpper(key)+" "+path)
			}
		}
	}
	sort.Strings(registered)
	sort.Strings(described)
	require.Equal(t, registered, described)
}

// TestOpenAPIDocumentIsWellFormed: every $ref resolves, every schema
// compiles, and the document declares 3.1 and bearer security.
func TestOpenAPIDocumentIsWellFormed(t *testing.T) {
	t.Parallel()
	spec, err := loadSpec()
	require.NoError(t, err)
	assert.Equal(t, "3.1.0", spec.raw["openapi"])
	scheme, _ := spec.lookup("/components/securitySchemes/bearer/scheme")
	assert.Equal(t, "bearer", scheme)

	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				refs = append(refs, ref)
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(spec.raw)
	require.NotEmpty(t, refs)
	for _, ref := range refs {
		target, _ := spec.lookup(strings.TrimPrefix(ref, "#"))
		assert.NotNil(t, target, "unresolved $ref %s", ref)
	}
	schemas, _ := spec.lookup("/components/schemas")
	for name := range schemas.(map[string]any) {
		_, err := spec.schemaAt("/components/schemas/" + name)
		assert.NoError(t, err, name)
	}
	// The State enum is the order package's, spelled as on the wire.
	enum, _ := spec.lookup("/components/schemas/State/enum")
	var names []any
	for _, s := range order.States() {
		names = append(names, s.String())
	}
	assert.Equal(t, names, enum)
}

// TestOpenAPIServed: the document is served as it is embedded, without a key.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeService{}, Config{APIKeys: []APIKey{{Principal: "ops", Token: "0123456789abcdef-token"}}})

	r := h.do("GET", "/openapi.json", "")

	require.Equal(t, nethttp.StatusOK, r.status, "body: %s", r.body)
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	assert.Equal(t, openAPIDocument, r.body)
}

// TestOpenAPIEveryOperationAndError drives each described operation through
// success and the errors it describes, over a socket, so that every response
// passes harness.try's check against the document; the cases here make sure
// each status of each operation is exercised at least once.
func TestOpenAPIEveryOperationAndError(t *testing.T) {
	t.Parallel()
	const token = "0123456789abcdef-token"
	auth := []string{"Authorization", "Bearer " + token}
	ready := errors.New("recovering")
	var notReady bool
	var mu sync.Mutex
	created := order.Order{ID: "o-1", State: order.Created, Version: 1, CreatedAt: t0, UpdatedAt: t0}
	svc := &fakeService{
		ReadyFn: func() error {
			mu.Lock()
			defer mu.Unlock()
			if notReady {
				return ready
			}
			return nil
		},
		GetFn: func(_ context.Context, id string) (order.Order, error) {
			if id != created.ID {
				return order.Order{}, order.ErrOrderNotFound
			}
			return created, nil
		},
		ListFn: func(context.Context, order.ListQuery) (order.ListPage, error) {
			return order.ListPage{Orders: []order.Order{created}, More: true}, nil
		},
		HistoryFn: func(_ context.Context, id string) ([]order.Event, error) {
			if id != created.ID {
				return nil, order.ErrOrderNotFound
			}
			return []order.Event{
				{EventID: "e1", OrderID: id, Version: 1, To: order.Created, At: t0, Principal: "ops", RequestID: "r1"},
				{EventID: "e2", OrderID: id, Version: 2, From: order.Created, To: order.Paid, At: t0, Reason: "card", Principal: "ops", RequestID: "r2"},
			}, nil
		},
		ExecuteFn: func(_ context.Context, cmd order.Command) (order.Order, error) {
			switch {
			case cmd.OrderID == "exists":
				return order.Order{}, order.ErrOrderExists
			case cmd.IdempotencyKey == "reused":
				return order.Order{}, order.ErrIdempotencyKeyReused
			case cmd.IdempotencyKey == "unknown":
				return order.Order{}, order.ErrOutcomeUnknown
			case cmd.ExpectedVersion == 9:
				return order.Order{}, &order.VersionMismatchError{Expected: 9, Current: 2}
			case cmd.To == order.Delivered:
				return order.Order{}, &order.InvalidTransitionError{From: order.Paid, To: order.Delivered,
					Allowed: order.AllowedNext(order.Paid)}
			case cmd.OrderID == "missing":
				return order.Order{}, order.ErrOrderNotFound
			}
			return applied(cmd), nil
		},
	}
	h := newHarness(t, svc, Config{APIKeys: []APIKey{{Principal: "ops", Token: token}}})
	with := func(headers ...string) []string { return append(slices.Clone(auth), headers...) }

	cases := []struct {
		method, path, body string
		headers            []string
		status             int
	}{
		{"POST", "/v1/orders", "", with(), 201},
		{"POST", "/v1/orders", `{"id":"o-2"}`, with(), 201},
		{"POST", "/v1/orders", `{"id":"exists"}`, with(), 409},
		{"POST", "/v1/orders", `{"id":"o 2"}`, with(), 400},
		{"POST", "/v1/orders", `{}`, nil, 401},
		{"POST", "/v1/orders", `{}`, with("Idempotency-Key", "reused"), 422},
		{"POST", "/v1/orders", `{}`, with("Idempotency-Key", "unknown"), 503},
		{"POST", "/v1/orders", `{}`, with("Content-Type", "text/plain"), 415},
		{"DELETE", "/v1/orders", "", with(), 405},
		{"GET", "/v1/orders?state=Paid&limit=1", "", with(), 200},
		{"GET", "/v1/orders?limit=0", "", with(), 400},
		{"GET", "/v1/orders", "", nil, 401},
		{"GET", "/v1/orders/o-1", "", with(), 200},
		{"HEAD", "/v1/orders/o-1", "", with(), 200},
		{"GET", "/v1/orders/nope", "", with(), 404},
		{"POST", "/v1/orders/o-1/transitions", `{"to":"Paid","reason":"card"}`, with("If-Match", `"1"`), 200},
		{"POST", "/v1/orders/o-1/transitions", `{"to":"Delivered"}`, with(), 409},
		{"POST", "/v1/orders/o-1/transitions", `{"to":"Paid"}`, with("If-Match", `"9"`), 412},
		{"POST", "/v1/orders/missing/transitions", `{"to":"Paid"}`, with(), 404},
		{"POST", "/v1/orders/o-1/transitions", `{"to":"Nowhere"}`, with(), 400},
		{"GET", "/v1/orders/o-1/history", "", with(), 200},
		{"GET", "/v1/orders/nope/history", "", with(), 404},
		{"GET", "/v1/machine", "", with(), 200},
		{"GET", "/v1/machine?format=mermaid", "", with(), 200},
		{"GET", "/v1/machine?format=dot", "", with(), 200},
		{"GET", "/v1/machine?format=png", "", with(), 400},
		{"GET", "/healthz", "", nil, 200},
		{"GET", "/readyz", "", nil, 200},
		{"GET", "/metrics", "", with(), 200},
		{"GET", "/metrics", "", nil, 401},
		{"GET", "/openapi.json", "", nil, 200},
		{"GET", "/no/such/path", "", with(), 404},
	}
	for _, c := range cases {
		r := h.do(c.method, c.path, c.body, c.headers...) // checks the document
		assert.Equal(t, c.status, r.status, "%s %s: %s", c.method, c.path, r.body)
	}

	// An oversize body is refused from its Content-Length alone, and the
	// connection closed: a client still writing the body then meets a reset
	// (seen as a flake under load), so only the headers are sent.
	r := h.raw(fmt.Sprintf("POST /v1/orders HTTP/1.1\r\nHost: orderd\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		auth[1], DefaultBodyLimit+1))
	require.NoError(t, checkAgainstSpec("POST", "/v1/orders", r))
	assert.Equal(t, nethttp.StatusRequestEntityTooLarge, r.status, "%s", r.body)

	mu.Lock()
	notReady = true
	mu.Unlock()
	for _, path := range []string{"/readyz", "/v1/orders/o-1", "/v1/orders"} {
		r := h.do("GET", path, "", auth...)
		assert.Equal(t, nethttp.StatusServiceUnavailable, r.status, "%s: %s", path, r.body)
	}
}

// TestCheckResponseCatchesDepartures: the checker itself fails responses
// that depart from the document, so a green suite means something.
func TestCheckResponseCatchesDepartures(t *testing.T) {
	t.Parallel()
	spec, err := loadSpec()
	require.NoError(t, err)
	header := func(pairs ...string) nethttp.Header {
		h := nethttp.Header{}
		for i := 0; i+1 < len(pairs); i += 2 {
			h.Set(pairs[i], pairs[i+1])
		}
		return h
	}
	okHeader := header("Content-Type", "application/json", "X-Request-ID", "r1", "ETag", `"1"`)
	good := `{"id":"o-1","state":"Created","version":1,"created_at":"2026-11-05T10:00:00Z","updated_at":"2026-11-05T10:00:00Z"}`
	require.NoError(t, spec.checkResponse("GET", "/v1/orders/o-1", reply{status: 200, header: okHeader, body: []byte(good)}))

	for name, r := range map[string]reply{
		"extra member":      {status: 200, header: okHeader, body: []byte(strings.Replace(good, `"id"`, `"extra":1,"id"`, 1))},
		"bad state":         {status: 200, header: okHeader, body: []byte(strings.Replace(good, "Created", "Lost", 1))},
		"bad time":          {status: 200, header: okHeader, body: []byte(strings.Replace(good, "2026-11-05T10:00:00Z", "yesterday", 1))},
		"undescribed media": {status: 200, header: header("Content-Type", "text/html", "X-Request-ID", "r1"), body: []byte("<p>")},
		"bad ETag":          {status: 200, header: header("Content-Type", "application/json", "X-Request-ID", "r1", "ETag", "W/1"), body: []byte(good)},
		"no request ID":     {status: 200, header: header("Content-Type", "application/json"), body: []byte(good)},
	} {
		assert.Error(t, spec.checkResponse("GET", "/v1/orders/o-1", r), name)
	}
	assert.Error(t, spec.checkResponse("GET", "/no/such/path", reply{status: 404, header: okHeader, body: []byte(`{}`)}),
		"an unknown path must still answer with a problem document")
}
