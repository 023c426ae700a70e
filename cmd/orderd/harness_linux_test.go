package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes a child process get SIGKILL when the test binary
// dies, even by a panic or a test timeout that skips the cleanups, so no
// orderd or broker outlives the run.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
