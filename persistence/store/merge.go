package store

import (
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"
)

// keyedMerger resolves the writes of one keyed-create key. Creates with the
// same principal and key can be in different partitions (a key reused after
// the first create's entry expired), whose batches commit in any order; the
// create made latest wins, ties broken by order ID, so the store's answer does
// not depend on which partition a feeder read first. Batches write these keys
// with Merge, never Set, and Pebble applies this function when it reads or
// compacts them.
var keyedMerger = &pebble.Merger{
	// Pebble records the name and refuses to open the store with
	// another merger: change it with formatVersion.
	Name: "orderd.keyed-create.latest.v1",
	Merge: func(_, value []byte) (pebble.ValueMerger, error) {
		m := &latestKeyed{}
		return m, m.add(value)
	},
}

// latestKeyed keeps the latest of the keyed creates it is given.
type latestKeyed struct {
	best    []byte
	created keyedCreate
}

func (m *latestKeyed) add(value []byte) error {
	c, err := decodeKeyed(value)
	if err != nil {
		return fmt.Errorf("%w: %w", pebble.ErrCorruption, err)
	}
	if m.best == nil || later(c, m.created) {
		m.best, m.created = append(m.best[:0], value...), c
	}
	return nil
}

func later(a, b keyedCreate) bool {
	if !a.at.Equal(b.at) {
		return a.at.After(b.at)
	}
	return a.orderID > b.orderID
}

func (m *latestKeyed) MergeNewer(value []byte) error { return m.add(value) }
func (m *latestKeyed) MergeOlder(value []byte) error { return m.add(value) }

func (m *latestKeyed) Finish(bool) ([]byte, io.Closer, error) { return m.best, nil, nil }
