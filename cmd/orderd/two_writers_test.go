package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// twoWriterOrders is how many orders the two processes race on.
const twoWriterOrders = 200

// twoWriterWorkers bounds the orders raced at once.
const twoWriterWorkers = 24

// twoWriterAck is one transition a server answered 2xx.
type twoWriterAck struct {
	server  string
	id      string
	version uint64
	state   string
}

// TestTwoWritersOnOneTopicLoseNothingAcknowledged runs two orderd processes
// on one `orderd broker`, as two replicas behind a load balancer would be,
// and races a conflicting transition of the same orders on each, twice. Then
// one restarts and rebuilds itself from the log: every transition either
// process answered with 2xx is in the history, and every history is a valid
// path. Before orderd read another writer's records, each process answered
// 200 for every order, and half of those were gone after the restart.
func TestTwoWritersOnOneTopicLoseNothingAcknowledged(t *testing.T) {
	brokerAddr := freeLoopbackAddr(t)
	startBroker(t, brokerAddr, t.TempDir())
	// Every command on an order the other process wrote re-reads the
	// order's partition: uncompressed, because under the race detector
	// lz4 allocates 4 MiB for every batch it reads (docs/experiments.md).
	// The harness's roomy deadlines (roomyFlags) keep a busy machine's
	// slowness from turning answers into 503s, which would leave less to
	// check.
	flags := []string{"--kafka-brokers", brokerAddr, "--partitions", "4", "--replication-factor", "1",
		"--compression", "none"}
	a := startServer(t, t.TempDir(), flags...)
	ids := make([]string, twoWriterOrders)
	for i := range ids {
		ids[i] = fmt.Sprintf("race-%03d", i)
	}
	forEachOrder(ids, func(id string) {
		status, body := call(t, "POST", a.url+"/v1/orders", fmt.Sprintf(`{"id":%q}`, id), nil)
		assert.Equal(t, http.StatusCreated, status, "%s", body)
	})
	// B replays the orders A made, so both start from the same state.
	b := startServer(t, t.TempDir(), flags...)

	var mu sync.Mutex
	var acks []twoWriterAck
	statuses := map[string]int{}
	send := func(srv *serverProcess, name, id, to string) {
		status, body := call(t, "POST", srv.url+"/v1/orders/"+id+"/transitions", fmt.Sprintf(`{"to":%q}`, to), nil)
		mu.Lock()
		defer mu.Unlock()
		statuses[fmt.Sprintf("%d %s", status, problemCode(body))]++
		if status == http.StatusOK {
			o := decode[orderView](t, body)
			acks = append(acks, twoWriterAck{server: name, id: id, version: o.Version, state: o.State})
		}
	}
	race := func(toA, toB string) {
		forEachOrder(ids, func(id string) {
			var pair sync.WaitGroup
			pair.Go(func() { send(a, "a", id, toA) })
			pair.Go(func() { send(b, "b", id, toB) })
			pair.Wait()
		})
	}
	race("Paid", "Cancelled")
	race("Shipped", "Cancelled") // Cancelled is valid from Paid, not from Cancelled or Shipped
	t.Logf("answers: %v", statuses)
	require.NotEmpty(t, acks)
	assert.Contains(t, a.logs.String()+b.logs.String(), "another writer appended to a partition this orderd writes")

	a.stop(t, syscall.SIGTERM)
	restarted := startServer(t, t.TempDir(), flags...)
	perOrder := map[string][]twoWriterAck{}
	for _, k := range acks {
		perOrder[k.id] = append(perOrder[k.id], k)
	}
	lost := 0
	for _, id := range ids {
		status, body := call(t, "GET", restarted.url+"/v1/orders/"+id+"/history", "", nil)
		require.Equal(t, http.StatusOK, status, "%s", body)
		h := decode[historyView](t, body)
		requireValidPath(t, id, h)
		for _, k := range perOrder[id] {
			if k.version > uint64(len(h.Transitions)) || h.Transitions[k.version-1].To != k.state {
				lost++
				t.Errorf("order %s: %s answered 200 for version %d (%s); the history after a restart says %+v", id, k.server, k.version, k.state, h.Transitions)
			}
		}
		// Two answers for one version would mean both writers were told yes.
		seen := map[uint64]bool{}
		for _, k := range perOrder[id] {
			assert.False(t, seen[k.version], "order %s: version %d acknowledged twice: %v", id, k.version, perOrder[id])
			seen[k.version] = true
		}
	}
	t.Logf("%d transitions acknowledged over two writers, %d lost after a restart", len(acks), lost)
	restarted.stop(t, syscall.SIGTERM)
	b.stop(t, syscall.SIGTERM)
}

// forEachOrder runs fn for every ID, twoWriterWorkers at a time.
func forEachOrder(ids []string, fn func(id string)) {
	work := make(chan string)
	var wg sync.WaitGroup
	for range twoWriterWorkers {
		wg.Go(func() {
			for id := range work {
				fn(id)
			}
		})
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
}

// requireValidPath checks that a history is versions 1, 2, 3... with every
// step in the table, starting with a creation.
func requireValidPath(t *testing.T, id string, h historyView) {
	t.Helper()
	state := order.State(0)
	for i, tr := range h.Transitions {
		require.Equal(t, uint64(i+1), tr.Version, "order %s: versions", id)
		to, err := order.ParseState(tr.To)
		require.NoError(t, err)
		if i == 0 {
			require.Nil(t, tr.From, "order %s: creation", id)
			require.Equal(t, order.Created, to, "order %s: creation", id)
		} else {
			require.True(t, order.CanTransition(state, to), "order %s: %v -> %v at version %d", id, state, to, tr.Version)
		}
		state = to
	}
}

// problemCode is the code of a problem document, or "" for another body.
func problemCode(body []byte) string {
	var p struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(body, &p) != nil || len(p.Type) < len("urn:orderd:problem:") {
		return ""
	}
	return p.Type[len("urn:orderd:problem:"):]
}
