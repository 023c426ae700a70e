package http

import (
	"bytes"
	"mime"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/orderd/orderd/order"
)

// Limits on what one request may carry. Each is far above what a correct
// client sends and small enough that a hostile one cannot grow memory or the
// audit log with it.
const (
	// DefaultBodyLimit: the largest valid body is a create with
	// order.ItemsMax items (about 12 KiB) and order.MetadataBytesMax of
	// metadata, about 14 KiB, or 25 KiB if every metadata character is
	// \u-escaped. 64 KiB leaves room for pretty-printing; Fiber refuses
	// anything bigger from Content-Length alone, before reading it.
	DefaultBodyLimit = 64 << 10

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

// createRequest is the body of POST /v1/orders. An absent or null id
// (generate one) differs from an empty one (a mistake).
type createRequest struct {
	ID             optString
	PaymentTimeout optString // deadline.go
	Contents       contentsRequest
	Metadata       map[string]string
}

// parseCreate reads a create body. An empty body is allowed and means "no
// id": creating with a generated ID needs no body at all.
func parseCreate(c *fiber.Ctx) (createRequest, error) {
	if err := checkJSONBody(c); err != nil {
		return createRequest{}, err
	}
	return parseCreateBody(c.Request().Body())
}

// parseCreateBody is parseCreate's reading of the body.
func parseCreateBody(body []byte) (createRequest, error) {
	members := [...]bodyMember{{name: fieldID}, {name: order.FieldPaymentTimeout}, {name: order.FieldCustomerID},
		{name: order.FieldCurrency}, {name: order.FieldItems, want: "array"}, {name: order.FieldMetadata, want: "object"}}
	if err := decodeObject(body, members[:]); err != nil {
		return createRequest{}, err
	}
	req := createRequest{ID: members[0].optional(), PaymentTimeout: members[1].optional()}
	if req.ID.ok {
		if err := order.ValidateID(req.ID.value); err != nil {
			return req, badInput(fieldID, "%v", err)
		}
	}
	var err error
	if req.Contents, err = parseContents(&members[2], &members[3], &members[4]); err != nil {
		return req, err
	}
	req.Metadata, err = parseMetadataMember(&members[5])
	return req, err
}

// transitionRequest is the body of POST /v1/orders/{id}/transitions.
type transitionRequest struct {
	to       order.State
	reason   string
	metadata map[string]string
}

// wireStates are the states a transition may name, looked up without
// making a string of the name first.
var wireStates = order.States()

// parseTransition reads a transition body and resolves the target state.
func parseTransition(c *fiber.Ctx) (transitionRequest, error) {
	if err := checkJSONBody(c); err != nil {
		return transitionRequest{}, err
	}
	members := [...]bodyMember{{name: fieldTo}, {name: fieldReason}, {name: order.FieldMetadata, want: "object"}}
	if err := decodeObject(c.Request().Body(), members[:]); err != nil {
		return transitionRequest{}, err
	}
	to, reason := members[0].raw, members[1].raw // null and absent leave them empty
	if len(to) == 0 {
		return transitionRequest{}, badInput(fieldTo, "required: the state to move to")
	}
	state, err := parseState(to)
	if err != nil {
		return transitionRequest{}, badInput(fieldTo, "%v", err)
	}
	if len(reason) > reasonLenMax {
		return transitionRequest{}, badInput(fieldReason, "%d bytes, at most %d allowed", len(reason), reasonLenMax)
	}
	md, err := parseMetadataMember(&members[2])
	if err != nil {
		return transitionRequest{}, err
	}
	return transitionRequest{to: state, reason: string(reason), metadata: md}, nil
}

// parseState is order.ParseState on the bytes of the body.
func parseState(name []byte) (order.State, error) {
	for _, s := range wireStates {
		if s.String() == string(name) {
			return s, nil
		}
	}
	return order.ParseState(string(name))
}

// pathID reads and validates the {id} path parameter, and copies it out of
// Fiber's buffers. Paths are not percent-decoded: a valid ID has only
// unreserved characters, so an encoded one is refused rather than silently
// aliased.
func pathID(c *fiber.Ctx) (string, error) {
	id := c.Params(fieldID)
	if err := order.ValidateID(id); err != nil {
		return "", badInput(fieldID, "%v", err)
	}
	return strings.Clone(id), nil
}

// checkJSONBody refuses bodies that are not plain JSON. The raw body is used
// everywhere (never fiber's Ctx.Body, which inflates gzip on the fly): a
// compressed body would escape the body limit, so Content-Encoding is refused.
func checkJSONBody(c *fiber.Ctx) error {
	header := &c.Request().Header
	if enc := header.Peek(fiber.HeaderContentEncoding); len(enc) > 0 && !bytes.EqualFold(enc, []byte("identity")) {
		return errUnsupportedMediaType
	}
	if isBlank(c.Request().Body()) {
		return nil
	}
	return checkContentType(header.ContentType())
}

// Content types accepted without parsing: what clients send nearly always.
var (
	contentTypeJSON     = []byte(fiber.MIMEApplicationJSON)
	contentTypeJSONUTF8 = []byte(fiber.MIMEApplicationJSONCharsetUTF8)
)

// checkContentType accepts application/json, with at most a charset=utf-8
// parameter. The two spellings clients send skip mime.ParseMediaType, which
// allocates a map per call; it judges everything else.
func checkContentType(ct []byte) error {
	if bytes.EqualFold(ct, contentTypeJSON) || bytes.EqualFold(ct, contentTypeJSONUTF8) {
		return nil
	}
	mediaType, params, err := mime.ParseMediaType(string(ct))
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

// parseIdempotencyKey reads the optional Idempotency-Key, copied out of
// Fiber's buffers for the actor and the log. An empty header is treated as
// absent, since HTTP cannot tell the two apart reliably.
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
	return strings.Clone(key), nil
}

// isVisibleASCII reports whether s is only printable, non-space ASCII, the
// characters that survive every proxy, log and terminal unchanged.
func isVisibleASCII[T string | []byte](s T) bool {
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

// appendETag writes a version as the strong entity tag If-Match expects.
func appendETag(dst []byte, v uint64) []byte {
	dst = append(dst, '"')
	dst = strconv.AppendUint(dst, v, 10)
	return append(dst, '"')
}
