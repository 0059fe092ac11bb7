//go:build !linux

package redistest

import "syscall"

// sysProcAttr: only Linux has Pdeathsig; elsewhere a server whose test
// binary dies before its cleanup runs is left to the OS.
func sysProcAttr() *syscall.SysProcAttr { return nil }
