package drills

import "syscall"

// procAttr makes the kernel kill a role when the test process dies (a
// panic, a -timeout), so that no sensorhub process outlives its test.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
