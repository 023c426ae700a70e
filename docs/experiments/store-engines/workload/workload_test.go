package workload

import "testing"

func TestRoundTrips(t *testing.T) {
	if a, b := uint64(mix), uint64(mixInv); a*b != 1 {
		t.Fatalf("mixInv is not mix's inverse")
	}
	for i := uint64(0); i < 20_000; i++ {
		o, k := Record(i)
		if RecordIndex(o, k) != i {
			t.Fatalf("record %d: order %d event %d maps back to %d", i, o, k, RecordIndex(o, k))
		}
		n, err := OrderNumber(OrderID(o))
		if err != nil || n != o {
			t.Fatalf("order %d: ID %s maps back to %d, %v", o, OrderID(o), n, err)
		}
		if l := len(Event(o, k)); l < 250 || l > 450 {
			t.Fatalf("event %d of order %d: %d bytes", k, o, l)
		}
	}
}
