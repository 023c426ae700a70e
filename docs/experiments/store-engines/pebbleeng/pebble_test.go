package pebbleeng

import (
	"testing"

	"orderd-experiments/storeengines/workload"
)

func TestPebble(t *testing.T) {
	dir := t.TempDir()
	workload.TestEngine(t, func() workload.Engine {
		db, err := Open(dir, 8<<20, 0)
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}
