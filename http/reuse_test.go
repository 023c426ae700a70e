package http

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

// TestRequestValuesOutliveTheirBuffers: the server runs Fiber without
// Immutable and copies what it keeps. Besides the commands
// (TestCommandsSurviveBufferReuse, TestCreatesSurviveBufferReuse), the IDs
// reads hand the service, escaped body members and the request IDs of
// problems must read as the request that sent them after many more requests
// have gone through the same buffers.
func TestRequestValuesOutliveTheirBuffers(t *testing.T) {
	t.Parallel()

	const (
		requests = 200
		workers  = 4
	)
	var mu sync.Mutex
	read := map[string]int{}
	svc := &fakeService{GetFn: func(_ context.Context, id string) (order.Order, error) {
		mu.Lock()
		read[id]++ // kept past the handler, as a cache would
		mu.Unlock()
		return order.Order{ID: id, State: order.Paid, Version: 2, CreatedAt: t0, UpdatedAt: t0}, nil
	}}
	h := newHarness(t, svc, Config{})

	sendConcurrently(requests, workers, func(i int) {
		r, err := h.try("GET", fmt.Sprintf("/v1/orders/read-%04d", i), "")
		assert.NoError(t, err)
		assert.Contains(t, string(r.body), fmt.Sprintf(`"id":"read-%04d"`, i))
		// A member name that needs unescaping, and one that does not.
		_, err = h.try("POST", fmt.Sprintf("/v1/orders/o-%04d/transitions", i),
			fmt.Sprintf(`{"to":"P\u0061id","reason":"r\u00e9ason-%04d"}`, i), "X-Request-ID", fmt.Sprintf("req-%04d", i))
		assert.NoError(t, err)
		r, err = h.try("POST", "/v1/orders", fmt.Sprintf(`{"unknown-%04d":1}`, i), "X-Request-ID", fmt.Sprintf("bad-%04d", i))
		assert.NoError(t, err)
		assert.Contains(t, string(r.body), fmt.Sprintf(`"field":"unknown-%04d"`, i))
		assert.Contains(t, string(r.body), fmt.Sprintf(`"request_id":"bad-%04d"`, i))
	})

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, read, requests)
	for i := range requests {
		assert.Equal(t, 1, read[fmt.Sprintf("read-%04d", i)], "read-%04d", i)
	}
	cmds := h.svc.received()
	require.Len(t, cmds, requests)
	for _, cmd := range cmds {
		i := orderNumber(t, cmd.OrderID, "o-%04d")
		assert.Equal(t, fmt.Sprintf("réason-%04d", i), cmd.Reason)
		assert.Equal(t, fmt.Sprintf("req-%04d", i), cmd.RequestID)
		assert.Equal(t, order.Paid, cmd.To)
	}
}
