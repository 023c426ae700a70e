// Package http serves orderd's v1 API (DESIGN §3) on Fiber v2. It validates
// and copies each request, turns it into an order.Command or a read on the
// actors.Service, and maps every error to an RFC 9457 problem document in
// one table (errorTable in problem.go). It knows nothing of the journal.
//
// Choices the design leaves open:
//
//   - Bodies: application/json, optionally with charset=utf-8; anything
//     else, or any Content-Encoding but identity, is 415. Members are
//     matched case-sensitively, unknown or repeated members are 400, and
//     so is anything after the object. An empty create body means
//     "generate an ID" and needs no Content-Type.
//   - IDs in paths are not percent-decoded: a valid ID never needs it.
//   - If-Match takes "*" (no version check) or exactly one strong tag
//     "<version>" as the server sends it in ETag; weak tags, lists and
//     "0" are 400. It is refused on create, which has no version to match.
//   - Idempotency-Key: 1-255 visible ASCII bytes; an empty header is absent.
//   - X-Request-ID: used when 1-128 visible ASCII bytes, else replaced by a
//     generated ULID; always echoed, and in every problem as request_id.
//   - A command past RequestTimeout is 503 outcome-unknown; a read past it
//     changed nothing and is 503 busy.
//   - Every 503 carries Retry-After. Order routes answer 503 not-ready
//     until the service is ready; /v1/machine, /healthz, /readyz do not.
//   - Wrong methods on known paths are 405 with Allow (GET routes also
//     answer HEAD); paths are case-sensitive.
//   - GET /metrics (Prometheus text format) needs an API key like the
//     order routes; GET /openapi.json (the embedded OpenAPI 3.1 document,
//     kept true by openapi_test.go) is public, like the probes.
//   - In a cluster (Config.Router), a request for an order another node
//     serves is forwarded there in one hop (route.go, forward.go) after
//     this node has authenticated and validated it; the owner
//     authenticates it again with the client's own Authorization and its
//     answer is relayed as it is. A create without an ID goes where its
//     Idempotency-Key does, or stays here, and the serving node generates
//     an ID in that partition.
package http
