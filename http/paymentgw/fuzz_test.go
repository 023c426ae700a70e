package paymentgw

import (
	"encoding/json"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/orderd/orderd/actors"
)

// FuzzAnswer feeds the answer decoders any status and body (seeds in
// testdata/fuzz/FuzzAnswer). Whatever a bridge answers: no panic; every
// error is exactly one of the four kinds; a success is an answer the
// protocol defines, read as encoding/json reads it; a decline's text is
// printable and bounded.
func FuzzAnswer(f *testing.F) {
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		ans := answer{status: status, body: body}
		res, err := authorizeOutcome(ans)
		if err != nil {
			if k := kindOf(err); !isKind(k) {
				t.Fatalf("authorize %d %q: %v", status, body, k)
			}
		} else {
			checkAuthorized(t, status, body, res)
		}
		if err := voidOutcome(ans); err != nil {
			if k := kindOf(err); !isKind(k) {
				t.Fatalf("void %d %q: %v", status, body, k)
			}
		} else if status != 200 && status != 201 && status != 204 && status != 404 {
			t.Fatalf("void accepted status %d", status)
		}
		d := decodeDeclined(ans)
		for _, s := range []string{d.Reason, d.Code} {
			if len(s) > declineTextLenMax || !utf8.ValidString(s) {
				t.Fatalf("decline text %q", s)
			}
			for _, r := range s {
				if unicode.IsControl(r) {
					t.Fatalf("decline text %q holds a control character", s)
				}
			}
		}
	})
}

func isKind(err error) bool {
	for _, k := range errKinds {
		if err == k {
			return true
		}
	}
	return false
}

// checkAuthorized holds an accepted authorisation against encoding/json.
func checkAuthorized(t *testing.T, status int, body []byte, res actors.PaymentResult) {
	t.Helper()
	if status != 200 && status != 201 {
		t.Fatalf("authorised on status %d", status)
	}
	if err := actors.CheckAuthorizationID(res.AuthorizationID); err != nil {
		t.Fatalf("accepted %q: %v", res.AuthorizationID, err)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
	}
	if m["id"] != res.AuthorizationID || m["status"] != "authorized" {
		t.Fatalf("accepted %q as %q; encoding/json reads id %v, status %v", body, res.AuthorizationID, m["id"], m["status"])
	}
}
