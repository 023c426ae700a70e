//go:build unix

package persistence

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDataDir takes an exclusive lock on dir for the life of the broker:
// kfake has no lock of its own, and two brokers writing one directory would
// corrupt each other's segments. The kernel drops the lock if the process
// dies, so a crash never leaves a stale lock behind.
func lockDataDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("persistence: data directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, dataDirLockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("persistence: data directory lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("persistence: data directory %s is in use by another embedded broker", dir)
		}
		return nil, fmt.Errorf("persistence: data directory lock: %w", err)
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}
