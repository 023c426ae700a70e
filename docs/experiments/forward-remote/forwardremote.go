// Package forwardremote measures the protoactor-go remote half of issue 15:
// node A asks an actor on node B, over protoactor's gRPC remote on
// 127.0.0.1, to apply a forwarded transition, and waits for the answer.
// The HTTP half is BenchmarkForwardClient in the main module's
// http/forward_bench_test.go. A throwaway experiment, not part of orderd.
//
// Messages crossing nodes must be proto.Message. No code generation: the
// request and the reply are google.golang.org/protobuf well-known types,
// wrapperspb.BytesValue carrying JSON (or, for the request, a
// structpb.Struct with one field per forwarded item).
package forwardremote

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Transition is what a forwarded transition carries: what the HTTP forward
// carries in its path, headers and body.
type Transition struct {
	OrderID, To, IdempotencyKey, RequestID, Principal string
	Body                                              []byte
}

// SampleTransition is a transition with a ~200-byte body.
func SampleTransition() Transition {
	return Transition{
		OrderID:        "o-01JBENCHORDER0000000000001",
		To:             "Paid",
		IdempotencyKey: "idem-01JBENCHIDEMPOTENCY00001",
		RequestID:      "01JBENCHREQUEST",
		Principal:      "client-42",
		Body: []byte(`{"to":"Paid","reason":"card payment captured by the provider",` +
			`"metadata":{"provider":"acme-pay","payment_id":"pay_01JBENCHPAYMENT0000001",` +
			`"amount":"129.90","currency":"EUR","captured_at":"2026-11-05T10:00:01Z"}}`),
	}
}

// Reply is the owner's answer: a ~250-byte order, as JSON.
var Reply = []byte(`{"id":"o-01JBENCHORDER0000000000001","state":"Paid","version":2,` +
	`"customer_id":"c-01JBENCHCUSTOMER000001","total":"129.90","currency":"EUR",` +
	`"created_at":"2026-11-05T10:00:00Z","updated_at":"2026-11-05T10:00:01Z",` +
	`"payment_deadline":"2026-11-05T10:15:00Z","etag":"\"2\""}`)

// SmallRequest and SmallReply are what BenchmarkForwardClient sends and
// answers, headers included, as JSON: to tell the payload's size from the
// transport's cost.
var (
	SmallRequest = []byte(`{"order_id":"o-1","authorization":"Bearer 0123456789abcdef-token",` +
		`"request_id":"01JBENCHREQUEST","body":{"to":"Paid","reason":"card"}}`)
	SmallReply = []byte(`{"id":"o-1","state":"Paid","version":2,"created_at":"2026-11-05T10:00:00Z",` +
		`"updated_at":"2026-11-05T10:00:01Z","etag":"\"2\""}`)
)

// AppendJSON appends t as a JSON object: the BytesValue request.
// The strings are the sample's, which need no escaping.
func (t Transition) AppendJSON(b []byte) []byte {
	b = append(b, `{"order_id":`...)
	b = strconv.AppendQuote(b, t.OrderID)
	b = append(b, `,"to":`...)
	b = strconv.AppendQuote(b, t.To)
	b = append(b, `,"idempotency_key":`...)
	b = strconv.AppendQuote(b, t.IdempotencyKey)
	b = append(b, `,"request_id":`...)
	b = strconv.AppendQuote(b, t.RequestID)
	b = append(b, `,"principal":`...)
	b = strconv.AppendQuote(b, t.Principal)
	b = append(b, `,"body":`...)
	b = append(b, t.Body...)
	return append(b, '}')
}

// Struct is t as a structpb.Struct: the structured request.
func (t Transition) Struct() *structpb.Struct {
	s := func(v string) *structpb.Value { return structpb.NewStringValue(v) }
	return &structpb.Struct{Fields: map[string]*structpb.Value{
		"order_id": s(t.OrderID), "to": s(t.To), "idempotency_key": s(t.IdempotencyKey),
		"request_id": s(t.RequestID), "principal": s(t.Principal), "body": s(string(t.Body)),
	}}
}

// owner answers every request with Reply (SmallReply to SmallRequest):
// like the Fiber peer of BenchmarkForwardClient, it does not look into the
// body.
func owner(c actor.Context) {
	switch m := c.Message().(type) {
	case *wrapperspb.BytesValue:
		if len(m.Value) == len(SmallRequest) {
			c.Respond(&wrapperspb.BytesValue{Value: SmallReply})
			return
		}
		c.Respond(&wrapperspb.BytesValue{Value: Reply})
	case *structpb.Struct:
		c.Respond(&wrapperspb.BytesValue{Value: Reply})
	}
}

// Pair is two actor systems with remote started on 127.0.0.1 (random
// ports) in one process; B hosts the owner, named "owner".
type Pair struct {
	A, B   *actor.ActorSystem
	ra, rb *remote.Remote
	Owner  *actor.PID // as A addresses it: B's address, "owner"
}

func quiet(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }

func node() (*actor.ActorSystem, *remote.Remote) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(quiet))
	r := remote.NewRemote(sys, remote.Configure("127.0.0.1", 0))
	r.Start()
	return sys, r
}

// StartPair starts both nodes and the owner.
func StartPair() (*Pair, error) {
	p := &Pair{}
	p.A, p.ra = node()
	p.B, p.rb = node()
	if _, err := p.B.Root.SpawnNamed(actor.PropsFromFunc(owner), "owner"); err != nil {
		p.Stop()
		return nil, err
	}
	p.Owner = actor.NewPID(p.B.Address(), "owner")
	return p, nil
}

// Stop shuts both remotes down at once (not gracefully: protoactor's
// graceful stop may wait 10 s for gRPC).
func (p *Pair) Stop() {
	p.ra.Shutdown(false)
	p.rb.Shutdown(false)
}

// Forward sends msg from A to the owner on B and waits for its answer.
func (p *Pair) Forward(msg any, timeout time.Duration) ([]byte, error) {
	res, err := p.A.Root.RequestFuture(p.Owner, msg, timeout).Result()
	if err != nil {
		return nil, err
	}
	r, ok := res.(*wrapperspb.BytesValue)
	if !ok {
		return nil, fmt.Errorf("owner answered %T", res)
	}
	return r.Value, nil
}
