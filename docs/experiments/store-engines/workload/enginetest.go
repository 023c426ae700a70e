package workload

import "testing"

// TestEngine feeds a small store through e and checks it.
func TestEngine(t *testing.T, open func() Engine) {
	e := open()
	const records = 10 * Chunk * EventsPerOrder
	for from := uint64(0); from < records/2; from += 1000 {
		if err := e.Update(func(w Writer) error { return ApplyBatch(w, from, from+1000) }); err != nil {
			t.Fatal(err)
		}
	}
	if cp, err := Check(e); err != nil || cp != records/2 {
		t.Fatalf("half-way: checkpoint %d, %v", cp, err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = open()
	defer e.Close()
	for from := uint64(records / 2); from < records; from += 1000 {
		if err := e.Update(func(w Writer) error { return ApplyBatch(w, from, from+1000) }); err != nil {
			t.Fatal(err)
		}
	}
	if cp, err := Check(e); err != nil || cp != records {
		t.Fatalf("checkpoint %d, %v", cp, err)
	}
	var n int
	if err := e.Scan(TEvent, EventPrefix(1234), func(k, v []byte) error { n++; return nil }); err != nil || n != EventsPerOrder {
		t.Fatalf("order 1234: %d events, %v", n, err)
	}
}
