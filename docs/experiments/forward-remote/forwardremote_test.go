package forwardremote

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func startPair(tb testing.TB) *Pair {
	p, err := StartPair()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Stop)
	// The first message dials B: keep that out of the timings.
	if _, err := p.Forward(&wrapperspb.BytesValue{Value: Reply}, 10*time.Second); err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestRoundTrip(t *testing.T) {
	p := startPair(t)
	tr := SampleTransition()
	t.Logf("request %d bytes of JSON, reply %d; small %d, %d",
		len(tr.AppendJSON(nil)), len(Reply), len(SmallRequest), len(SmallReply))
	for _, msg := range []any{&wrapperspb.BytesValue{Value: tr.AppendJSON(nil)}, tr.Struct()} {
		got, err := p.Forward(msg, 5*time.Second)
		if err != nil || !bytes.Equal(got, Reply) {
			t.Fatalf("%T: %q, %v", msg, got, err)
		}
	}
	got, err := p.Forward(&wrapperspb.BytesValue{Value: SmallRequest}, 5*time.Second)
	if err != nil || !bytes.Equal(got, SmallReply) {
		t.Fatalf("small: %q, %v", got, err)
	}
}

// TestPlainStructTimesOut checks the FACTS.md note: a message that is not a
// proto.Message cannot be serialised, and the caller sees only its timeout.
func TestPlainStructTimesOut(t *testing.T) {
	p := startPair(t)
	_, err := p.Forward(SampleTransition(), 300*time.Millisecond)
	if !errors.Is(err, actor.ErrTimeout) {
		t.Fatalf("err = %v, want a timeout", err)
	}
}

// BenchmarkForwardRemote is BenchmarkForwardClient's counterpart: one
// forwarded transition A→B→A, serially and from 4 goroutines per CPU.
// bytesvalue builds the request JSON every time (one append into a fresh
// slice); structpb builds a Struct with one field per item; small sends
// and answers what BenchmarkForwardClient's HTTP messages carry.
func BenchmarkForwardRemote(b *testing.B) {
	p := startPair(b)
	tr := SampleTransition()
	size := len(tr.AppendJSON(nil))
	msgs := map[string]func() any{
		"bytesvalue": func() any { return &wrapperspb.BytesValue{Value: tr.AppendJSON(make([]byte, 0, size))} },
		"structpb":   func() any { return tr.Struct() },
		"small":      func() any { return &wrapperspb.BytesValue{Value: append([]byte(nil), SmallRequest...)} },
	}
	for name, msg := range msgs {
		want := len(Reply)
		if name == "small" {
			want = len(SmallReply)
		}
		do := func(b *testing.B) {
			got, err := p.Forward(msg(), time.Minute)
			if err != nil || len(got) != want {
				b.Fatal(err, len(got))
			}
		}
		b.Run(name+"/serial", func(b *testing.B) {
			for b.Loop() {
				do(b)
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					do(b)
				}
			})
		})
	}
}
