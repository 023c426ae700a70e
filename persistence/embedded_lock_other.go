//go:build !unix

package persistence

import (
	"fmt"
	"os"
)

// lockDataDir only creates dir: there is no portable advisory lock, so on
// these systems nothing stops two brokers from sharing a directory.
func lockDataDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("persistence: data directory: %w", err)
	}
	return func() {}, nil
}
