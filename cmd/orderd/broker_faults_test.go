package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/orderd/orderd/persistence/kfaketest"
)

// TestBrokerFaultsAtTheServer injects broker faults through kfake's request
// hooks under a real orderd: a produce refused with NOT_LEADER_OR_FOLLOWER
// (nothing written) is 503 journal-unavailable and applies nothing; a broker
// that holds a produce request beyond the request deadline gives 503
// outcome-unknown in time while reads keep working, and a retry with the
// same key afterwards is applied exactly once.
//
// The first orderd has roomy deadlines, so that its answers do not depend on
// the machine's speed; the second, on the same log, has a 1 s request
// deadline, which the held request must run into, and a produce deadline
// beyond the client's, so that only the request deadline can answer it.
func TestBrokerFaultsAtTheServer(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	flags := []string{"--kafka-brokers", addr, "--partitions", "1", "--replication-factor", "1"}
	first, url := e2eStartMain(t, t.TempDir(), flags...)
	e2eRequireStatus(t, e2eDo(t, "POST", url+"/v1/orders", `{"id":"fault-1"}`), http.StatusCreated)
	orderURL := url + "/v1/orders/fault-1"

	// Not the leader: the broker wrote nothing, and says so.
	kfaketest.AnswerNextProduce(c, kerr.NotLeaderForPartition.Code)
	r := e2eDo(t, "POST", orderURL+"/transitions", `{"to":"Paid"}`, "Idempotency-Key", "pay", "X-Request-ID", "not-leader")
	e2eRequireProblem(t, r, http.StatusServiceUnavailable, "journal-unavailable")
	got := e2eRequireStatus(t, e2eDo(t, "GET", orderURL, ""), http.StatusOK)
	assert.Equal(t, "Created", got["state"])
	require.NoError(t, first.Close())

	const requestTimeout = time.Second
	_, url = e2eStartMain(t, t.TempDir(), append(flags, "--request-timeout", requestTimeout.String(),
		"--produce-timeout", (2*roomyTimeout).String())...)
	orderURL = url + "/v1/orders/fault-1"
	// A slow broker: the next produce request is held until released.
	_, releaseBroker := kfaketest.HoldNextProduce(t, c)
	start := time.Now()
	r = e2eDo(t, "POST", orderURL+"/transitions", `{"to":"Paid"}`, "Idempotency-Key", "pay", "X-Request-ID", "slow")
	e2eRequireProblem(t, r, http.StatusServiceUnavailable, "outcome-unknown")
	// Bounded by the request deadline, not by the broker (which holds the
	// request until released), with room for a busy machine.
	assert.Less(t, time.Since(start), requestTimeout+roomyTimeout/4)
	got = e2eRequireStatus(t, e2eDo(t, "GET", orderURL, ""), http.StatusOK)
	assert.Equal(t, "Created", got["state"], "reads are answered while the broker is stuck")

	releaseBroker()
	var paid map[string]any
	require.Eventually(t, func() bool {
		r := e2eDo(t, "POST", orderURL+"/transitions", `{"to":"Paid"}`, "Idempotency-Key", "pay", "X-Request-ID", "retry")
		if r.status != http.StatusOK {
			return false
		}
		paid = e2eRequireStatus(t, r, http.StatusOK)
		return true
	}, roomyTimeout, 50*time.Millisecond)
	assert.Equal(t, "Paid", paid["state"])

	events := e2eReadLog(t, addr)["fault-1"]
	require.Len(t, events, 2, "created and paid once: nothing from the refused attempt, no duplicate")
	assert.Equal(t, "slow", events[1].RequestID, "the held request landed once released; the retry was answered from it")
}
