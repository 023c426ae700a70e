package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes a child process get SIGKILL when the test binary
// dies, even by a panic, a fatal error or a test timeout that skips the
// cleanups, so that no orderd outlives the run. (cmd/orderd's tests have
// the same; test files cannot be shared between packages.)
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
