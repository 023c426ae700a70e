package main

import (
	"context"
	"net"
	"testing"
)

// The baseline answers every request of the lifecycle with a 2xx the
// harness can decode, so the same load runs against it unchanged.
func TestBaselineServesTheSameLoad(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app := newBaselineApp()
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	t.Cleanup(func() {
		if err := app.Shutdown(); err != nil {
			t.Error(err)
		}
		<-served
	})

	c, err := newAPIClient("http://"+ln.Addr().String(), 4, testRequestTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.closeIdle()
	if status, err := c.getStatus("/readyz"); err != nil || status != 200 {
		t.Fatalf("/readyz: %d %v", status, err)
	}
	cfg := smallLoad(50)
	res := runLoad(context.Background(), cfg, []sender{c}, false)
	if res.rec.failures.count != 0 || res.rec.outcomes[outcomeOK] != res.rec.requests {
		t.Fatalf("outcomes %v", res.rec.outcomes)
	}
	if res.rec.statuses[201] != 50 {
		t.Fatalf("statuses %v, want 50 creates answered 201", res.rec.statuses)
	}
	// Transitions count the plan's writes only, as for orderd: the canned
	// 200 to an invalid step is not a transition.
	var writes int64
	for _, tr := range res.tracks {
		for _, s := range tr.plan {
			if s.kind.writes() {
				writes++
			}
		}
	}
	if res.rec.transitions != writes {
		t.Fatalf("%d transitions, want %d", res.rec.transitions, writes)
	}
	if r := c.get("anything"); !r.decoded {
		t.Fatalf("canned answer not decodable as an order: %+v", r)
	}
}
