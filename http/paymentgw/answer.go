package paymentgw

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/orderd/orderd/actors"
)

const (
	// declineTextLenMax bounds a decline's reason and code as kept: the
	// saga records them in the checkout's steps, and so in the log.
	declineTextLenMax = 256
	// errorDetailLenMax bounds how much of an unexpected answer an error
	// quotes: enough to tell a bridge's message from a proxy's page.
	errorDetailLenMax = 200
)

// answer is the bridge's answer to one request.
type answer struct {
	status   int
	body     []byte
	bodyErr  error  // the body could not be read whole (broken, or over responseBytesMax)
	location string // of a redirect
}

// authorizeOutcome decides what an answer to POST /authorizations means.
// The table is docs/payment-gateway.md's; keep them together.
func authorizeOutcome(ans answer) (actors.PaymentResult, error) {
	switch ans.status {
	case http.StatusOK, http.StatusCreated:
		// The bridge says it authorised; if we cannot read the ID we
		// cannot void by it, and the money may be held.
		if ans.bodyErr != nil {
			return actors.PaymentResult{}, fmt.Errorf("%w: %d with an unreadable answer: %w", actors.ErrPaymentOutcomeUnknown, ans.status, ans.bodyErr)
		}
		id, err := decodeAuthorized(ans.body)
		if err != nil {
			return actors.PaymentResult{}, fmt.Errorf("%w: %d with a malformed answer: %w", actors.ErrPaymentOutcomeUnknown, ans.status, err)
		}
		return actors.PaymentResult{AuthorizationID: id}, nil
	case http.StatusPaymentRequired:
		// The status decides; the body only adds the reason.
		return actors.PaymentResult{}, decodeDeclined(ans)
	}
	return actors.PaymentResult{}, otherOutcome(ans)
}

// voidOutcome decides what an answer to a void means.
func voidOutcome(ans answer) error {
	switch ans.status {
	case http.StatusOK, http.StatusCreated:
		if ans.bodyErr != nil {
			return fmt.Errorf("%w: %d with an unreadable answer: %w", actors.ErrPaymentOutcomeUnknown, ans.status, ans.bodyErr)
		}
		if err := decodeStatus(ans.body, "voided"); err != nil {
			return fmt.Errorf("%w: %d with a malformed answer: %w", actors.ErrPaymentOutcomeUnknown, ans.status, err)
		}
		return nil
	case http.StatusNoContent:
		return nil
	case http.StatusNotFound:
		// The authorisation is unknown: nothing is held, which is what a
		// void is for. Only the bridge's own 404 says so; a 404 of a wrong
		// URL (a proxy's or a web server's page) would otherwise make
		// every void succeed without reaching anyone.
		if ans.bodyErr == nil && decodeStatus(ans.body, "not_found") == nil {
			return nil
		}
		return fmt.Errorf("%w: 404 without {\"status\":\"not_found\"}, so not the bridge's (is the URL right?)%s", actors.ErrPaymentRejected, detail(ans))
	}
	return otherOutcome(ans)
}

// otherOutcome maps the statuses both operations share.
func otherOutcome(ans answer) error {
	s := ans.status
	text := fmt.Sprintf("%d %s", s, http.StatusText(s))
	switch {
	case s == http.StatusConflict:
		return fmt.Errorf("%w: %s: a request with this key is still in progress at the gateway; repeat it to learn the outcome", actors.ErrPaymentOutcomeUnknown, text)
	case s == http.StatusTooManyRequests, s == http.StatusServiceUnavailable:
		// The protocol reserves 503 for "did nothing" (docs).
		return fmt.Errorf("%w: %s%s", actors.ErrPaymentUnavailable, text, detail(ans))
	case s >= 300 && s < 400:
		return fmt.Errorf("%w: %s to %q: give the bridge's final URL", actors.ErrPaymentRejected, text, clip(ans.location, errorDetailLenMax))
	case s >= 400 && s < 500:
		return fmt.Errorf("%w: %s%s", actors.ErrPaymentRejected, text, detail(ans))
	}
	// 5xx but 503 (a crash, or a proxy's 502/504 after the bridge got the
	// request), and any 2xx the protocol does not define.
	return fmt.Errorf("%w: %s%s", actors.ErrPaymentOutcomeUnknown, text, detail(ans))
}

// decodeAuthorized reads {"id": "...", "status": "authorized"}.
func decodeAuthorized(body []byte) (string, error) {
	obj, err := decodeObject(body)
	if err != nil {
		return "", err
	}
	if err := wantStatus(obj, "authorized"); err != nil {
		return "", err
	}
	id, ok, err := stringMember(obj, "id")
	switch {
	case err != nil:
		return "", err
	case !ok:
		return "", errors.New(`no "id"`)
	}
	if err := actors.CheckAuthorizationID(id); err != nil {
		return "", err
	}
	return id, nil
}

// decodeDeclined reads {"status": "declined", "reason": "...", "code": "..."}
// as far as it can: a 402 is a decline even when its body says nothing.
func decodeDeclined(ans answer) *actors.DeclinedError {
	var d actors.DeclinedError
	if ans.bodyErr != nil {
		return &d
	}
	obj, err := decodeObject(ans.body)
	if err != nil {
		return &d
	}
	if s, ok, err := stringMember(obj, "reason"); ok && err == nil {
		d.Reason = printable(s, declineTextLenMax)
	}
	if s, ok, err := stringMember(obj, "code"); ok && err == nil {
		d.Code = printable(s, declineTextLenMax)
	}
	return &d
}

// decodeStatus reads an object whose "status" is want.
func decodeStatus(body []byte, want string) error {
	obj, err := decodeObject(body)
	if err != nil {
		return err
	}
	return wantStatus(obj, want)
}

func wantStatus(obj map[string]json.RawMessage, want string) error {
	s, ok, err := stringMember(obj, "status")
	switch {
	case err != nil:
		return err
	case !ok:
		return errors.New(`no "status"`)
	case s != want:
		return fmt.Errorf("status %q, want %q", clip(s, errorDetailLenMax), want)
	}
	return nil
}

// decodeObject reads one JSON object of valid UTF-8 and nothing after it.
// Member names match exactly (encoding/json's struct decoding would also
// take "ID" for "id"); a name given twice is refused, as which one counts
// would be up to the reader; unknown members are allowed, so that a
// bridge may pass on more of its provider's answer.
func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	if !utf8.Valid(body) {
		return nil, errors.New("not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	} else if tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	obj := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not JSON: %w", err)
		}
		name, _ := tok.(string) // object keys are strings
		if _, dup := obj[name]; dup {
			return nil, fmt.Errorf("member %q given twice", clip(name, errorDetailLenMax))
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("not JSON: %w", err)
		}
		obj[name] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the object")
	}
	return obj, nil
}

// stringMember returns the string member name; a member of another type
// (null included) is an error.
func stringMember(obj map[string]json.RawMessage, name string) (string, bool, error) {
	raw, ok := obj[name]
	if !ok {
		return "", false, nil
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' {
		return "", true, fmt.Errorf("%q is not a string", name)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", true, fmt.Errorf("%q: %w", name, err)
	}
	return s, true, nil
}

// detail quotes the start of an unexpected answer, for the operator.
func detail(ans answer) string {
	if len(ans.body) == 0 {
		return ""
	}
	return fmt.Sprintf(": %q", printable(string(ans.body), errorDetailLenMax))
}

// printable keeps text from a bridge fit for a log line: valid UTF-8, no
// control characters, at most max bytes.
func printable(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	return clip(s, max)
}

// clip cuts s to at most max bytes at a rune boundary.
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}
