package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderd/orderd/order"
	"github.com/orderd/orderd/persistence"
	"github.com/orderd/orderd/persistence/kfaketest"
)

// TestIfMatchAndETagEndToEnd: every order response carries its version as a
// strong ETag; If-Match naming another version is 412 with current_version
// and applies nothing, even for a step the table would also refuse; a
// malformed If-Match is 400 (DESIGN §3).
func TestIfMatchAndETagEndToEnd(t *testing.T) {
	_, url := e2eStartMain(t, t.TempDir())
	orders := url + "/v1/orders"
	transitions := orders + "/etag-1/transitions"

	r := e2eDo(t, "POST", orders, `{"id":"etag-1"}`)
	e2eRequireStatus(t, r, http.StatusCreated)
	assert.Equal(t, `"1"`, r.header.Get("ETag"))
	assert.Equal(t, "/v1/orders/etag-1", r.header.Get("Location"))
	r = e2eDo(t, "GET", orders+"/etag-1", "")
	e2eRequireStatus(t, r, http.StatusOK)
	assert.Equal(t, `"1"`, r.header.Get("ETag"))

	r = e2eDo(t, "POST", transitions, `{"to":"Paid"}`, "If-Match", `"1"`)
	assert.Equal(t, float64(2), e2eRequireStatus(t, r, http.StatusOK)["version"])
	assert.Equal(t, `"2"`, r.header.Get("ETag"))

	for name, to := range map[string]string{"allowed step": "Shipped", "step the table refuses too": "Delivered"} {
		r = e2eDo(t, "POST", transitions, fmt.Sprintf(`{"to":%q}`, to), "If-Match", `"1"`)
		p := e2eRequireProblem(t, r, http.StatusPreconditionFailed, "version-mismatch")
		assert.Equal(t, float64(2), p["current_version"], name)
		assert.Empty(t, r.header.Get("ETag"), name)
	}
	for _, bad := range []string{`1`, `W/"2"`, `"2", "3"`, `"02"`, `"0"`, `"x"`} {
		r = e2eDo(t, "POST", transitions, `{"to":"Shipped"}`, "If-Match", bad)
		p := e2eRequireProblem(t, r, http.StatusBadRequest, "bad-request")
		assert.Equal(t, "If-Match", p["field"], bad)
	}
	e2eRequireProblem(t, e2eDo(t, "POST", orders+"/missing/transitions", `{"to":"Paid"}`, "If-Match", `"1"`),
		http.StatusNotFound, "order-not-found")

	r = e2eDo(t, "POST", transitions, `{"to":"Shipped"}`, "If-Match", `*`)
	e2eRequireStatus(t, r, http.StatusOK)
	assert.Equal(t, `"3"`, r.header.Get("ETag"))
	// A current If-Match does not make a step the table refuses allowed.
	r = e2eDo(t, "POST", transitions, `{"to":"Paid"}`, "If-Match", `"3"`)
	e2eRequireProblem(t, r, http.StatusConflict, "invalid-transition")

	r = e2eDo(t, "GET", orders+"/etag-1", "")
	assert.Equal(t, "Shipped", e2eRequireStatus(t, r, http.StatusOK)["state"])
	assert.Equal(t, `"3"`, r.header.Get("ETag"))
	history := e2eRequireStatus(t, e2eDo(t, "GET", orders+"/etag-1/history", ""), http.StatusOK)
	assert.Len(t, history["transitions"], 3, "nothing refused was applied")
}

// Tokens of the principals in TestIdempotencyKeysEndToEnd.
const (
	e2eAliceToken = "alice-token-0123456789"
	e2eBobToken   = "bob-token-0123456789ab"
)

// TestIdempotencyKeysEndToEnd: a retry with the same Idempotency-Key and
// request gets the first status and body and appends nothing, also after a
// restart; the same key for another request is 422; keys are per principal;
// a retried create without an ID makes one order.
func TestIdempotencyKeysEndToEnd(t *testing.T) {
	dataDir := t.TempDir()
	keysFile := filepath.Join(t.TempDir(), "keys")
	require.NoError(t, os.WriteFile(keysFile, []byte("alice="+e2eAliceToken+"\nbob="+e2eBobToken+"\n"), 0o600))
	m, url := e2eStartMain(t, dataDir, "--api-keys-file", keysFile)
	alice := func(method, path, body string, headers ...string) e2eReply {
		return e2eDo(t, method, url+path, body, append(headers, "Authorization", "Bearer "+e2eAliceToken)...)
	}

	create := alice("POST", "/v1/orders", "", "Idempotency-Key", "create-1")
	e2eRequireStatus(t, create, http.StatusCreated)
	loc := create.header.Get("Location")
	require.NotEmpty(t, loc)
	pay := alice("POST", loc+"/transitions", `{"to":"Paid","reason":"card"}`, "Idempotency-Key", "pay-1", "If-Match", `"1"`)
	e2eRequireStatus(t, pay, http.StatusOK)
	e2eRequireStatus(t, alice("POST", loc+"/transitions", `{"to":"Shipped"}`), http.StatusOK)

	// checkRetries runs before and after a restart: recovery rebuilds the
	// keys from the log.
	checkRetries := func(t *testing.T, alice func(method, path, body string, headers ...string) e2eReply) {
		r := alice("POST", "/v1/orders", "", "Idempotency-Key", "create-1")
		e2eRequireStatus(t, r, http.StatusCreated)
		assert.Equal(t, string(create.body), string(r.body), "the first body: the order as created")
		assert.Equal(t, loc, r.header.Get("Location"), "the order the first attempt made, not a new one")
		assert.Equal(t, `"1"`, r.header.Get("ETag"))

		// If-Match "1" is stale by now: the key is checked first.
		r = alice("POST", loc+"/transitions", `{"to":"Paid", "reason":"card"}`, "Idempotency-Key", "pay-1", "If-Match", `"1"`)
		e2eRequireStatus(t, r, http.StatusOK)
		assert.Equal(t, string(pay.body), string(r.body), "the first body: the order right after the payment")
		assert.Equal(t, `"2"`, r.header.Get("ETag"))

		for _, other := range []string{`{"to":"Cancelled","reason":"card"}`, `{"to":"Paid","reason":"cash"}`} {
			r = alice("POST", loc+"/transitions", other, "Idempotency-Key", "pay-1")
			e2eRequireProblem(t, r, http.StatusUnprocessableEntity, "idempotency-key-reused")
		}
		r = alice("POST", "/v1/orders", `{"id":"named"}`, "Idempotency-Key", "create-1")
		e2eRequireProblem(t, r, http.StatusUnprocessableEntity, "idempotency-key-reused")
	}
	checkRetries(t, alice)

	// Bob's "pay-1" is his own: decided afresh (the order is Shipped).
	r := e2eDo(t, "POST", url+loc+"/transitions", `{"to":"Paid","reason":"card"}`,
		"Idempotency-Key", "pay-1", "Authorization", "Bearer "+e2eBobToken)
	e2eRequireProblem(t, r, http.StatusConflict, "invalid-transition")

	require.NoError(t, m.Close())
	m, url = e2eStartMain(t, dataDir, "--api-keys-file", keysFile)
	t.Run("AfterRestart", func(t *testing.T) { checkRetries(t, alice) })
	require.NoError(t, m.Close())

	id := loc[len("/v1/orders/"):]
	log := e2eReadLogInDir(t, dataDir)
	require.Len(t, log, 1, "one order, however often its create was retried")
	events := log[id]
	require.Len(t, events, 3, "created, paid, shipped: each once")
	assert.Equal(t, "create-1", events[0].IdempotencyKey)
	assert.Equal(t, order.RequestDigest(order.Command{Kind: order.CommandCreate, IDGenerated: true, Principal: "alice"}),
		events[0].RequestDigest)
	assert.Equal(t, "pay-1", events[1].IdempotencyKey)
	assert.Equal(t, "alice", events[1].Principal)
	assert.Len(t, events[1].RequestDigest, order.RequestDigestLen)
	assert.Empty(t, events[2].IdempotencyKey)
	assert.Empty(t, events[2].RequestDigest, "no key, no digest")
}

// TestUnknownOutcomeRetryEndToEnd injects both kinds of unknown outcome —
// the record landed but the acknowledgement was lost, and the record never
// landed — through the in-memory journal and through a Kafka broker (kfake,
// the embedded broker's engine, behind the same kafka-go journal). Each time
// the client hears 503 outcome-unknown, memory is unchanged, and a retry with
// the same Idempotency-Key gets the true answer: the first 200 if the record
// landed, the transition applied now if not. Either way the log holds it
// exactly once (DESIGN §5.4, §8 invariant 5).
func TestUnknownOutcomeRetryEndToEnd(t *testing.T) {
	type journal struct {
		start  func(t *testing.T) string // the server's URL
		inject func(landed bool)         // makes the next append's outcome unknown
		log    func(t *testing.T) map[string][]order.Event
	}
	journals := map[string]func(t *testing.T) journal{
		"Memory": func(t *testing.T) journal {
			j := persistence.NewMemoryJournal()
			return journal{
				start: func(t *testing.T) string { return e2eMemoryStack(t, j) },
				inject: func(landed bool) {
					j.FailNext(1, map[bool]persistence.Fault{true: persistence.FaultUnknownWritten, false: persistence.FaultUnknownNotWritten}[landed])
				},
				log: func(t *testing.T) map[string][]order.Event { return e2eMemoryLog(t, j) },
			}
		},
		"Broker": func(t *testing.T) journal {
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			require.NoError(t, err)
			t.Cleanup(c.Close)
			addr := c.ListenAddrs()[0]
			return journal{
				start: func(t *testing.T) string {
					_, url := e2eStartMain(t, t.TempDir(), "--kafka-brokers", addr, "--partitions", "1", "--replication-factor", "1")
					return url
				},
				inject: func(landed bool) {
					if landed {
						// kfake appends, then answers with the error.
						c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.RequestTimedOut})
						return
					}
					kfaketest.AnswerNextProduce(c, kerr.RequestTimedOut.Code)
				},
				log: func(t *testing.T) map[string][]order.Event { return e2eReadLog(t, addr) },
			}
		},
	}
	for name, newJournal := range journals {
		for _, landed := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/landed=%v", name, landed), func(t *testing.T) {
				j := newJournal(t)
				url := j.start(t)
				orderURL := url + "/v1/orders/unknown-1"
				e2eRequireStatus(t, e2eDo(t, "POST", url+"/v1/orders", `{"id":"unknown-1"}`), http.StatusCreated)

				j.inject(landed)
				pay := func(requestID string) e2eReply {
					return e2eDo(t, "POST", orderURL+"/transitions", `{"to":"Paid"}`,
						"Idempotency-Key", "pay-1", "If-Match", `"1"`, "X-Request-ID", requestID)
				}
				r := pay("attempt-1")
				e2eRequireProblem(t, r, http.StatusServiceUnavailable, "outcome-unknown")
				assert.NotEmpty(t, r.header.Get("Retry-After"))
				got := e2eRequireStatus(t, e2eDo(t, "GET", orderURL, ""), http.StatusOK)
				assert.Equal(t, "Created", got["state"], "memory is not changed by an unknown outcome")

				r = pay("attempt-2")
				first := e2eRequireStatus(t, r, http.StatusOK)
				assert.Equal(t, "Paid", first["state"])
				assert.Equal(t, float64(2), first["version"])
				assert.Equal(t, `"2"`, r.header.Get("ETag"))
				again := pay("attempt-3")
				e2eRequireStatus(t, again, http.StatusOK)
				assert.Equal(t, string(r.body), string(again.body))

				events := j.log(t)["unknown-1"]
				require.Len(t, events, 2, "created and paid, the payment exactly once")
				assert.Equal(t, order.Paid, events[1].To)
				assert.Equal(t, "pay-1", events[1].IdempotencyKey)
				// Which attempt is in the log tells a replayed answer from
				// a step applied by the retry.
				wantAttempt := map[bool]string{true: "attempt-1", false: "attempt-2"}[landed]
				assert.Equal(t, wantAttempt, events[1].RequestID)
				got = e2eRequireStatus(t, e2eDo(t, "GET", orderURL, ""), http.StatusOK)
				assert.Equal(t, "Paid", got["state"])
			})
		}
	}
}

// TestIdempotencyWindowFlagReachesTheActors: with a window too short to
// remember anything, a retry is decided as a new request.
func TestIdempotencyWindowFlagReachesTheActors(t *testing.T) {
	_, url := e2eStartMain(t, t.TempDir(), "--idempotency-window", "1ns")
	create := func() e2eReply {
		return e2eDo(t, "POST", url+"/v1/orders", `{"id":"forgetful"}`, "Idempotency-Key", "create-1")
	}
	e2eRequireStatus(t, create(), http.StatusCreated)
	e2eRequireProblem(t, create(), http.StatusConflict, "order-exists")
}
