package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"sort"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/orderd/orderd/order"
)

// Limits on what one request may carry. Each is far above what a correct
// client sends and small enough that a hostile one cannot grow memory or the
// audit log with it.
const (
	// DefaultBodyLimit: the largest valid body is a transition with a
	// reasonLenMax-byte reason, about 1 KiB, or 6 KiB if every character
	// is \u-escaped. 16 KiB leaves room for pretty-printing; Fiber refuses
	// anything bigger from Content-Length alone, before reading it.
	DefaultBodyLimit = 16 << 10

	// requestIDLenMax admits UUIDs, ULIDs and W3C trace IDs (55 bytes for a
	// whole traceparent) while keeping the audit log's copy small.
	requestIDLenMax = 128

	// idempotencyKeyLenMax is DESIGN §3's bound.
	idempotencyKeyLenMax = 255

	// reasonLenMax bounds the free text a transition carries into the
	// audit log, where every record is kept forever.
	reasonLenMax = 1024
)

// Header and field names, spelled once so problem documents name them
// exactly as clients send them.
const (
	headerIfMatch        = "If-Match"
	headerIdempotencyKey = "Idempotency-Key"
	headerRequestID      = "X-Request-ID"
	fieldBody            = "body"
	fieldID              = "id"
	fieldTo              = "to"
	fieldReason          = "reason"
	fieldFormat          = "format"
)

// createRequest is the body of POST /v1/orders. ID is a pointer so that an
// absent or null id (generate one) differs from an empty one (a mistake).
type createRequest struct {
	ID             *string
	PaymentTimeout *string // deadline.go
}

// transitionRequest is the body of POST /v1/orders/{id}/transitions.
type transitionRequest struct {
	To     string
	Reason string
}

// parseCreate reads a create body. An empty body is allowed and means "no
// id": creating with a generated ID needs no body at all.
func parseCreate(c *fiber.Ctx) (createRequest, error) {
	var req createRequest
	if err := checkJSONBody(c); err != nil {
		return req, err
	}
	fields := map[string]any{fieldID: &req.ID, order.FieldPaymentTimeout: &req.PaymentTimeout}
	if err := decodeObject(c.Request().Body(), fields); err != nil {
		return req, err
	}
	if req.ID != nil {
		if err := order.ValidateID(*req.ID); err != nil {
			return req, badInput(fieldID, "%v", err)
		}
	}
	return req, nil
}

// parseTransition reads a transition body and resolves the target state.
func parseTransition(c *fiber.Ctx) (order.State, string, error) {
	var req transitionRequest
	if err := checkJSONBody(c); err != nil {
		return 0, "", err
	}
	fields := map[string]any{fieldTo: &req.To, fieldReason: &req.Reason}
	if err := decodeObject(c.Request().Body(), fields); err != nil {
		return 0, "", err
	}
	if req.To == "" {
		return 0, "", badInput(fieldTo, "required: the state to move to")
	}
	to, err := order.ParseState(req.To)
	if err != nil {
		return 0, "", badInput(fieldTo, "%v", err)
	}
	if len(req.Reason) > reasonLenMax {
		return 0, "", badInput(fieldReason, "%d bytes, at most %d allowed", len(req.Reason), reasonLenMax)
	}
	return to, req.Reason, nil
}

// pathID reads and validates the {id} path parameter. Paths are not
// percent-decoded: a valid ID has only unreserved characters, so an encoded
// one is refused rather than silently aliased.
func pathID(c *fiber.Ctx) (string, error) {
	id := c.Params(fieldID)
	if err := order.ValidateID(id); err != nil {
		return "", badInput(fieldID, "%v", err)
	}
	return id, nil
}

// checkJSONBody refuses bodies that are not plain JSON. The raw body is used
// everywhere (never fiber's Ctx.Body, which inflates gzip on the fly): a
// compressed body would escape the body limit, so Content-Encoding is refused.
func checkJSONBody(c *fiber.Ctx) error {
	if enc := c.Get(fiber.HeaderContentEncoding); enc != "" && !strings.EqualFold(enc, "identity") {
		return errUnsupportedMediaType
	}
	if isBlank(c.Request().Body()) {
		return nil
	}
	mediaType, params, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mediaType != fiber.MIMEApplicationJSON {
		return errUnsupportedMediaType
	}
	for name, value := range params {
		if name != "charset" || !strings.EqualFold(value, "utf-8") {
			return errUnsupportedMediaType
		}
	}
	return nil
}

func isBlank(body []byte) bool { return len(bytes.Trim(body, " \t\r\n")) == 0 }

// decodeObject reads one JSON object whose members are exactly the keys of
// fields (case-sensitive, each at most once) into the pointers they map to.
// It walks tokens instead of calling json.Unmarshal on a struct because
// encoding/json matches member names case-insensitively and keeps the last
// of duplicate members; both would let "To" or a second "to" slip through.
// A blank body is an empty object.
func decodeObject(body []byte, fields map[string]any) error {
	if isBlank(body) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil {
		return syntaxError(err)
	} else if tok != json.Delim('{') {
		return badInput(fieldBody, "must be a JSON object")
	}
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return syntaxError(err)
		}
		name, _ := tok.(string) // inside an object the decoder only yields string keys
		dst, known := fields[name]
		if !known {
			return badInput(name, "unknown member (allowed: %s)", memberList(fields))
		}
		if seen[name] {
			return badInput(name, "member appears more than once")
		}
		seen[name] = true
		if err := dec.Decode(dst); err != nil {
			return valueError(name, err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return syntaxError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badInput(fieldBody, "unexpected data after the JSON object")
	}
	return nil
}

func syntaxError(err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return badInput(fieldBody, "malformed JSON at byte %d: %v", se.Offset, se)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return badInput(fieldBody, "truncated JSON")
	default:
		return badInput(fieldBody, "malformed JSON")
	}
}

// valueError explains a member of the wrong JSON type. Every member the API
// accepts is a string (or null where optional), so that is what it asks for.
func valueError(name string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return badInput(name, "must be a string, not %s", te.Value)
	}
	return syntaxError(err)
}

func memberList(fields map[string]any) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, strconv.Quote(name))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// parseIfMatch reads If-Match into an expected version; 0 means no check.
// "*" ("any current version") also means no check: the actor still refuses
// a transition on an order that does not exist, with 404. Only the entity
// tags the server issues are accepted (a single strong "<version>"), since a
// weak tag or a list could never match under If-Match's strong comparison.
func parseIfMatch(c *fiber.Ctx) (uint64, error) {
	v := c.Get(headerIfMatch)
	if v == "" || v == "*" {
		return 0, nil
	}
	digits, ok := strings.CutPrefix(v, `"`)
	digits, ok2 := strings.CutSuffix(digits, `"`)
	if !ok || !ok2 || !isDecimal(digits) {
		return 0, badInput(headerIfMatch, `must be "*" or one quoted version such as "3"`)
	}
	version, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || version == 0 {
		return 0, badInput(headerIfMatch, "version must be between 1 and %d", uint64(1<<64-1))
	}
	return version, nil
}

// isDecimal accepts the digits of a version as the server writes them: no
// sign, no leading zero.
func isDecimal(s string) bool {
	if s == "" || (s[0] == '0' && len(s) > 1) {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
}

// parseIdempotencyKey reads the optional Idempotency-Key. An empty header is
// treated as absent, since HTTP cannot tell the two apart reliably.
func parseIdempotencyKey(c *fiber.Ctx) (string, error) {
	key := c.Get(headerIdempotencyKey)
	if key == "" {
		return "", nil
	}
	if len(key) > idempotencyKeyLenMax {
		return "", badInput(headerIdempotencyKey, "%d bytes, at most %d allowed", len(key), idempotencyKeyLenMax)
	}
	if !isVisibleASCII(key) {
		return "", badInput(headerIdempotencyKey, "only visible ASCII characters are allowed")
	}
	return key, nil
}

// isVisibleASCII reports whether s is only printable, non-space ASCII, the
// characters that survive every proxy, log and terminal unchanged.
func isVisibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// rejectIfMatch refuses If-Match where it cannot be honoured, so that a
// client never believes a precondition was checked when it was not.
func rejectIfMatch(c *fiber.Ctx) error {
	if c.Get(headerIfMatch) != "" {
		return badInput(headerIfMatch, "not supported when creating an order (a new order has no version yet)")
	}
	return nil
}

// formatVersion writes a version as the strong entity tag If-Match expects.
func formatVersion(v uint64) string { return fmt.Sprintf(`"%d"`, v) }
