package main

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// orderd reaches its embedded broker in-process (persistence.Embedded.Dial),
// while the broker's TCP port keeps serving everyone else: orderctl and the
// audit topic's consumers.
func TestEmbeddedBrokerIsReachedInProcessAndStillServesTCP(t *testing.T) {
	m, url := e2eStartMain(t, t.TempDir())
	created := e2eDo(t, "POST", url+"/v1/orders", `{"id":"in-process-1"}`)
	require.Equal(t, http.StatusCreated, created.status, created.body)
	assert.Positive(t, m.broker.InProcessConns(), "the journal connected to its broker in-process")

	// e2eReadLog opens a journal of its own with no Dial: over TCP.
	dialed := m.broker.InProcessConns()
	log := e2eReadLog(t, m.broker.Addr())
	assert.Len(t, log["in-process-1"], 1, "a TCP client reads what the journal wrote in-process")
	assert.Equal(t, dialed, m.broker.InProcessConns(), "the reader connected over TCP")
}
