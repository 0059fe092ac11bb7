// Package rawsys makes the system calls on non-blocking descriptors
// (sockets, epoll, eventfd) as raw calls (unix.RawSyscall): the runtime is
// not told. Each returns at once, and announcing it would let sysmon take
// the P away from a thread the kernel merely preempted mid-call; see
// netpoll's package comment for what those hand-offs and wake-ups cost on
// a host running dozens of Go processes on two cores. It owns nothing and
// never makes a call that can block.
package rawsys

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Read is read(2) on a non-blocking descriptor: the bytes read, or -1 and
// the errno.
func Read(fd int, b []byte) (int, error) { return rw(unix.SYS_READ, fd, b) }

// Write is write(2) on a non-blocking descriptor: the bytes written, or -1
// and the errno.
func Write(fd int, b []byte) (int, error) { return rw(unix.SYS_WRITE, fd, b) }

// rw makes the read or write system call nr on b.
func rw(nr uintptr, fd int, b []byte) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	n, _, e := unix.RawSyscall(nr, uintptr(fd), uintptr(p), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}
