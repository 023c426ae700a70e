package bolteng

import (
	"path/filepath"
	"testing"

	"orderd-experiments/storeengines/workload"
)

func TestBolt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	workload.TestEngine(t, func() workload.Engine {
		db, err := Open(path, true)
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}
