//go:build !linux

package main

import "os/exec"

// dieWithParent is a no-op where the kernel offers no parent-death signal;
// the tests' cleanups still stop their children.
func dieWithParent(*exec.Cmd) {}
