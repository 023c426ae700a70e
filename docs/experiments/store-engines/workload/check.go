package workload

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Check reads the whole store and returns its checkpoint if the store holds
// exactly the records below it: every event with its value, every order's
// summary at the right version, the deadline index of the orders still at
// version 1, and nothing else.
func Check(e Engine) (uint64, error) {
	cp, err := Checkpoint(e)
	if err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	var events uint64
	err = e.Scan(TEvent, nil, func(k, v []byte) error {
		if len(k) != 25 {
			return fmt.Errorf("event key %q", k)
		}
		o, err := OrderNumber(k[:16])
		if err != nil {
			return err
		}
		ver := binary.BigEndian.Uint64(k[17:])
		if ver < 1 || ver > EventsPerOrder {
			return fmt.Errorf("event key %q: version %d", k, ver)
		}
		if i := RecordIndex(o, int(ver-1)); i >= cp {
			return fmt.Errorf("record %d (order %s v%d) is at or past the checkpoint %d", i, k[:16], ver, cp)
		}
		if !bytes.Equal(v, Event(o, int(ver-1))) {
			return fmt.Errorf("order %s v%d: value differs", k[:16], ver)
		}
		events++
		return nil
	})
	if err != nil {
		return cp, err
	}
	if events != cp {
		return cp, fmt.Errorf("%d events below the checkpoint %d", events, cp)
	}
	want := func(o uint64) int { // events of o below cp
		n := 0
		for k := 0; k < EventsPerOrder; k++ {
			if RecordIndex(o, k) < cp {
				n++
			}
		}
		return n
	}
	var summaries, wantSummaries, deadlines, wantDeadlines uint64
	for o := uint64(0); RecordIndex(o, 0) < cp || o%Chunk != 0; o++ {
		switch want(o) {
		case 0:
		case 1:
			wantSummaries++
			wantDeadlines++
		default:
			wantSummaries++
		}
	}
	err = e.Scan(TSummary, nil, func(k, v []byte) error {
		o, err := OrderNumber(k)
		if err != nil {
			return err
		}
		n := want(o)
		if n == 0 || !bytes.Equal(v, Summary(o, n-1)) {
			return fmt.Errorf("order %s: summary %x, want version %d", k, v, n)
		}
		summaries++
		return nil
	})
	if err != nil {
		return cp, err
	}
	err = e.Scan(TDeadline, nil, func(k, v []byte) error {
		o, err := OrderNumber(k[8:])
		if err != nil {
			return err
		}
		if want(o) != 1 || !bytes.Equal(k, DeadlineKey(o)) {
			return fmt.Errorf("deadline %x of order %s", k[:8], k[8:])
		}
		deadlines++
		return nil
	})
	if err != nil {
		return cp, err
	}
	if summaries != wantSummaries || deadlines != wantDeadlines {
		return cp, fmt.Errorf("%d summaries (want %d), %d deadlines (want %d)", summaries, wantSummaries, deadlines, wantDeadlines)
	}
	return cp, nil
}
