// Package bolteng is the experiment's engine on go.etcd.io/bbolt: one bucket
// per table, one read-write transaction per batch, NoSync (see the doc).
package bolteng

import (
	"time"

	bolt "go.etcd.io/bbolt"

	"orderd-experiments/storeengines/workload"
)

var tables = []byte{workload.TSummary, workload.TEvent, workload.TDeadline, workload.TCheckpoint}

// DB is a bbolt store.
type DB struct{ db *bolt.DB }

// Open opens (creating) the store file path. noSync skips the fsync at
// each commit.
func Open(path string, noSync bool) (*DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      time.Second,
		NoSync:       noSync,
		FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, t := range tables {
			if _, err := tx.CreateBucketIfNotExists([]byte{t}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &DB{db: db}, nil
}

// Bolt returns the underlying DB.
func (d *DB) Bolt() *bolt.DB { return d.db }

type writer struct{ tx *bolt.Tx }

func (w writer) Get(t byte, k []byte) ([]byte, error) {
	return w.tx.Bucket([]byte{t}).Get(k), nil
}
func (w writer) Put(t byte, k, v []byte) error { return w.tx.Bucket([]byte{t}).Put(k, v) }
func (w writer) Delete(t byte, k []byte) error { return w.tx.Bucket([]byte{t}).Delete(k) }

// Update commits fn's writes in one read-write transaction.
func (d *DB) Update(fn func(workload.Writer) error) error {
	return d.db.Update(func(tx *bolt.Tx) error { return fn(writer{tx}) })
}

func (d *DB) Get(t byte, k []byte) ([]byte, error) {
	var out []byte
	err := d.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte{t}).Get(k); v != nil {
			out = append([]byte{}, v...)
		}
		return nil
	})
	return out, err
}

func (d *DB) Scan(t byte, prefix []byte, fn func(k, v []byte) error) error {
	return d.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte{t}).Cursor()
		for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
			if err := fn(k, v); err != nil {
				return err
			}
		}
		return nil
	})
}

func hasPrefix(k, p []byte) bool {
	if len(k) < len(p) {
		return false
	}
	for i := range p {
		if k[i] != p[i] {
			return false
		}
	}
	return true
}

func (d *DB) Close() error { return d.db.Close() }
