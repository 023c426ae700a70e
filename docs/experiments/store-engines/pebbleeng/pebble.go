// Package pebbleeng is the experiment's engine on github.com/cockroachdb/pebble/v2:
// one key space, the table as the key's first byte, a bounded block cache,
// batches committed to the WAL without fsync.
package pebbleeng

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"orderd-experiments/storeengines/workload"
)

// corruptions counts pebble's DataCorruption events.
var corruptions atomic.Int64

// Corruptions returns how many DataCorruption events pebble reported.
func Corruptions() int64 { return corruptions.Load() }

type quiet struct{}

func (quiet) Infof(string, ...interface{})      {}
func (quiet) Errorf(string, ...interface{})     {}
func (quiet) Fatalf(f string, a ...interface{}) { panic("pebble: fatal") }

// DB is a pebble store.
type DB struct{ db *pebble.DB }

// Open opens (creating) the store in dir with a block cache of cacheBytes,
// memtables of memtableBytes (0: pebble's default, 4 MiB) and bloom filters
// of 10 bits per key on every level.
func Open(dir string, cacheBytes int64, memtableBytes uint64) (*DB, error) {
	c := pebble.NewCache(cacheBytes)
	defer c.Unref()
	o := &pebble.Options{
		Cache:              c,
		Logger:             quiet{},
		FormatMajorVersion: pebble.FormatNewest,
		MemTableSize:       memtableBytes,
		// The default handler calls the logger's Fatalf (with pebble's
		// default logger: the process exits). The read that met the
		// damage returns an error all the same: report it and go on.
		EventListener: &pebble.EventListener{DataCorruption: func(i pebble.DataCorruptionInfo) {
			if corruptions.Add(1) == 1 {
				fmt.Fprintf(os.Stderr, "pebble: first DataCorruption event: %.160s\n", i.Details)
			}
		}},
	}
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, o)
	if err != nil {
		return nil, err
	}
	return &DB{db: db}, nil
}

// Pebble returns the underlying DB.
func (d *DB) Pebble() *pebble.DB { return d.db }

func key(table byte, k []byte) []byte {
	b := make([]byte, 0, 1+len(k))
	return append(append(b, table), k...)
}

type writer struct {
	db *pebble.DB
	b  *pebble.Batch
}

func (w writer) Get(table byte, k []byte) ([]byte, error) {
	v, c, err := w.db.Get(key(table, k))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), v...)
	return out, c.Close()
}

func (w writer) Put(table byte, k, v []byte) error { return w.b.Set(key(table, k), v, nil) }
func (w writer) Delete(table byte, k []byte) error { return w.b.Delete(key(table, k), nil) }

// Update commits fn's writes as one batch, to the WAL without fsync.
func (d *DB) Update(fn func(workload.Writer) error) error {
	b := d.db.NewBatch()
	defer b.Close()
	if err := fn(writer{d.db, b}); err != nil {
		return err
	}
	return b.Commit(pebble.NoSync)
}

func (d *DB) Get(table byte, k []byte) ([]byte, error) { return writer{db: d.db}.Get(table, k) }

func (d *DB) Scan(table byte, prefix []byte, fn func(k, v []byte) error) error {
	lo := key(table, prefix)
	hi := upper(lo)
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		if err := fn(it.Key()[1:], v); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Error(); err != nil {
		it.Close()
		return err
	}
	return it.Close()
}

// upper is the smallest key after every key with the prefix p.
func upper(p []byte) []byte {
	u := append([]byte(nil), p...)
	for i := len(u) - 1; i >= 0; i-- {
		if u[i] < 0xff {
			u[i]++
			return u[:i+1]
		}
	}
	return nil
}

func (d *DB) Close() error { return d.db.Close() }
