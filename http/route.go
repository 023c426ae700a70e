package http

import (
	"context"
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"
)

// Router says which node serves which order in a cluster. Every method is safe for concurrent use.
type Router interface {
	// PartitionOf places a key (an order ID, or a create's principal and Idempotency-Key) on a partition of the audit topic.
	PartitionOf(key string) int
	// Owner returns where requests for partition p are served: local is true when this node serves it now, otherwise url is the owner's base URL (scheme://host:port). While p has no owner (a rebalance), Owner waits for one until ctx ends and then returns an error matching actors.ErrNotReady.
	Owner(ctx context.Context, p int) (url string, local bool, err error)
	// LocalPartition returns a partition this node serves now, for a create with neither an ID nor an Idempotency-Key, so that it needs no hop; ok is false when it serves none.
	LocalPartition() (p int, ok bool)
}

// Headers between the nodes of a cluster.
const (
	// headerForwarded marks a request one node forwarded to another. Such a
	// request is served where it arrives, whatever the Router says, so a
	// request makes at most one hop and forwarding cannot loop. A client
	// that sends it only gives up being forwarded: the actors still refuse
	// an order whose partition this node does not serve.
	headerForwarded = "X-Orderd-Forwarded"
	// headerPartition carries the partition a forwarded create without an
	// ID chose, so that its owner generates the ID there. Honoured only on
	// forwarded requests; at worst a client picks the partition of an ID it
	// could have chosen outright.
	headerPartition = "X-Orderd-Partition"
	// forwardedMark is headerForwarded's value: nodes have no ID of their
	// own in Config, and the header's presence is what counts.
	forwardedMark = "1"
)

// Limits on partitions and on drawing an ID that lands in one.
const (
	// partitionsMax is cmd/orderd's bound on --partitions; headerPartition
	// beyond it is refused before any ID is drawn.
	partitionsMax = 1024
	// idDrawsMax bounds the IDs drawn for one create. A random ID lands in a
	// given one of n partitions with probability 1/n, so k draws all miss
	// with probability (1-1/n)^k < e^(-k/n): 64 draws per partition the
	// topic may have make that e^-64 (about 1e-28) even at partitionsMax,
	// and e^-4096 at the default 16. Only a Router whose PartitionOf never
	// yields the partition (a bug, or a forged headerPartition past the
	// topic's end) exhausts it, after ~20 ms of drawing here (measured by
	// TestPartitionNeverDrawn without -race), which only an authenticated,
	// rate-limited client can cause.
	idDrawsMax = 64 * partitionsMax
)

// isForwarded reports whether another node forwarded this request.
func isForwarded(c *fiber.Ctx) bool { return len(c.Request().Header.Peek(headerForwarded)) > 0 }

// routed serves a request that names an order in its path on the node
// that serves the order's partition. Without a Router it is h itself. It
// wraps the gate (gated): a node still catching up with the log can forward.
func (s *Server) routed(h fiber.Handler) fiber.Handler { return s.routedBy(pathID, h) }

// routedBy is routed for a request whose partition is that of the key
// keyOf reads from it (an order ID, a SKU's record key); a request keyOf
// refuses gets its 400 here, without a hop.
func (s *Server) routedBy(keyOf func(*fiber.Ctx) (string, error), h fiber.Handler) fiber.Handler {
	if s.cfg.Router == nil {
		return h
	}
	return func(c *fiber.Ctx) error {
		key, err := keyOf(c)
		if err != nil {
			return err
		}
		return s.serveIn(c, s.cfg.Router.PartitionOf(key), partitionUnsent, h)
	}
}

// partitionUnsent is serveIn's sendPartition when the request names its
// order, whose ID decides the partition on the owner as it did here.
const partitionUnsent = -1

// serveIn runs serve here if this node serves partition p (or the request
// was forwarded to it already), else forwards the request to p's owner,
// with sendPartition in headerPartition unless it is partitionUnsent. The
// request deadline covers the wait for an owner and what follows.
func (s *Server) serveIn(c *fiber.Ctx, p, sendPartition int, serve fiber.Handler) error {
	if isForwarded(c) {
		return serve(c)
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
	defer cancel()
	url, local, err := s.cfg.Router.Owner(ctx, p)
	switch {
	case err != nil:
		s.forwards.count(forwardNoOwner)
		return errNoOwner(err)
	case local:
		c.SetUserContext(ctx)
		return serve(c)
	}
	return s.forward(ctx, c, url, sendPartition)
}

// createPartition chooses the partition of a create without an ID. A keyed
// create goes where its key does, so that every retry reaches the actors
// that remember the key; an unkeyed one stays here if it can.
func (s *Server) createPartition(c *fiber.Ctx, key string) (int, error) {
	if raw := c.Request().Header.Peek(headerPartition); len(raw) > 0 && isForwarded(c) {
		return parsePartition(raw)
	}
	if key != "" {
		return s.cfg.Router.PartitionOf(principal(c) + "\x00" + key), nil
	}
	if p, ok := s.cfg.Router.LocalPartition(); ok {
		return p, nil
	}
	return s.cfg.Router.PartitionOf(s.newID()), nil // any partition: a random ID's
}

// parsePartition reads headerPartition: digits as a node writes them.
func parsePartition(raw []byte) (int, error) {
	p, err := strconv.Atoi(string(raw))
	if !isDecimal(string(raw)) || err != nil || p >= partitionsMax {
		return 0, badInput(headerPartition, "must be a partition number from 0 to %d", partitionsMax-1)
	}
	return p, nil
}

// newIDIn draws order IDs until one falls in partition p.
func (s *Server) newIDIn(p int) (string, error) {
	for range idDrawsMax {
		if id := s.newID(); s.cfg.Router.PartitionOf(id) == p {
			return id, nil
		}
	}
	return "", fmt.Errorf("none of %d IDs drawn falls in partition %d", idDrawsMax, p)
}
