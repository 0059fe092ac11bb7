package redistest

import "syscall"

// sysProcAttr makes the kernel kill a server when the test binary dies
// before its cleanup runs (go test -timeout, a crash), so that no
// redis-server outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
