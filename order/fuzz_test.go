package order

import (
	"testing"
	"time"
)

// FuzzCommandSequence reads the input as a sequence of commands against a
// few orders (each byte pair: command kind and order, target state and
// expected version) and checks the core's promises for every one: Decide
// never panics, whatever it accepts Apply accepts and advances by exactly one
// version, whatever it refuses changes nothing, and replaying the accepted
// events rebuilds the very same orders.
func FuzzCommandSequence(f *testing.F) {
	f.Add([]byte{0x00, 0x00, 0x10, 0x20, 0x10, 0x30, 0x10, 0x40})
	f.Add([]byte{0x01, 0x01, 0x11, 0x52, 0x11, 0x12, 0x00, 0x00, 0x00, 0x00})
	f.Add([]byte{0x10, 0x21, 0x02, 0x00, 0x12, 0x23, 0x12, 0x63, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, program []byte) {
		const orders = 3
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		live := map[string]Order{}
		var accepted []Event
		for i := 0; i+1 < len(program); i += 2 {
			op, arg := program[i], program[i+1]
			id := string(rune('a' + int(op&0x0f)%orders))
			cmd := Command{Kind: CommandTransition, OrderID: id, To: State(arg & 0x0f), EventID: "e", ExpectedVersion: uint64(arg >> 4)}
			if op>>4 == 0 {
				cmd.Kind = CommandCreate
			} else if op>>4 == 0x0f {
				cmd.Kind = CommandKind(op & 0x0f) // sometimes not a kind at all
			}
			now = now.Add(time.Second)
			before := live[id]
			ev, err := Decide(before, cmd, now)
			if err != nil {
				if live[id] != before {
					t.Fatalf("command %d: a refused command changed the order", i/2)
				}
				continue
			}
			after, err := Apply(before, ev)
			if err != nil {
				t.Fatalf("command %d: Decide accepted %+v but Apply refused it: %v", i/2, ev, err)
			}
			if after.Version != before.Version+1 || !after.State.Valid() {
				t.Fatalf("command %d: %+v -> %+v", i/2, before, after)
			}
			live[id] = after
			accepted = append(accepted, ev)
		}
		rebuilt := map[string]Order{}
		for _, ev := range accepted {
			next, err := Apply(rebuilt[ev.OrderID], ev)
			if err != nil {
				t.Fatalf("replay refused %+v: %v", ev, err)
			}
			rebuilt[ev.OrderID] = next
			// A second delivery of the same record is a duplicate, never applied.
			if again, err := Apply(next, ev); err == nil || again != next {
				t.Fatalf("a duplicate of %+v was applied", ev)
			}
		}
		if len(rebuilt) != len(live) {
			t.Fatalf("replay rebuilt %d orders, live has %d", len(rebuilt), len(live))
		}
		for id, o := range live {
			if rebuilt[id] != o {
				t.Fatalf("order %s: live %+v, replayed %+v", id, o, rebuilt[id])
			}
		}
	})
}
