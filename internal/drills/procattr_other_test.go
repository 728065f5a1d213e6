//go:build !linux

package drills

import "syscall"

// procAttr has nothing to add where there is no parent-death signal; the
// roles are still killed by t.Cleanup.
func procAttr() *syscall.SysProcAttr { return nil }
