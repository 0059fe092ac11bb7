package netpoll

import (
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/wspush/wspush/internal/rawsys"
)

// Event is the readiness reported for one descriptor.
type Event uint32

// Readiness bits. A hang-up or error is always reported together with
// EventRead so that a handler's next read observes it (EOF or the error).
const (
	// EventRead means the descriptor has data to read (or a pending EOF).
	EventRead Event = 1 << iota
	// EventHangup means the peer closed its side (EPOLLRDHUP or EPOLLHUP).
	EventHangup
	// EventError means the socket has a pending error (EPOLLERR).
	EventError
	// EventWrite means the socket has room to write again; it answers
	// ArmWrite and is reported alone.
	EventWrite
	// EventTrigger answers Trigger: it says nothing about the socket and
	// is reported alone.
	EventTrigger
)

// Handler receives readiness events for the descriptors it was added with.
type Handler interface {
	// HandleEvent runs on the poller goroutine; it must return quickly and
	// never block on the connection.
	HandleEvent(fd int, ev Event)
}

// eventsPerWait is how many events one epoll_wait may return.
const eventsPerWait = 256

// readEvents are the events a descriptor is armed with by Add; edgeEvents
// by AddEdge (EPOLLET as a uint32: the constant is negative in x/sys).
const (
	readEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT
	edgeEvents = unix.EPOLLIN | unix.EPOLLRDHUP | 1<<31
)

// Poller is one epoll instance and the goroutine waiting on it. Create it with
// NewPoller, start it with Run, stop it with Close.
type Poller struct {
	epfd  int      // epoll descriptor for readability; immutable until Close
	efile *os.File // epfd in the runtime's poller: Run parks on it; closes epfd
	outfd int      // nested epoll descriptor for ArmWrite; watched through epfd
	wfd   int      // eventfd used to wake Run for Close; immutable until Close

	// stride is how many pollers share the fd space (fd%stride picks the
	// poller), so handlers is indexed by fd/stride; immutable.
	stride int

	mu       sync.Mutex         // guards handlers, count and writers
	handlers []Handler          // handlers[fd/stride]; nil = not registered; guarded by mu
	count    int                // registered descriptors; guarded by mu
	writers  map[int32]struct{} // fds present in outfd; guarded by mu

	tmu      sync.Mutex // guards triggers; never held with mu
	triggers []trigger  // handlers to call on the poller goroutine; guarded by tmu
	spare    []trigger  // the drained batch, reused; poller goroutine only

	closed atomic.Bool   // set once by Close
	done   chan struct{} // closed when Run returns
	once   sync.Once     // makes Close idempotent
	ran    atomic.Bool   // Run was called
}

// trigger is one pending Trigger call.
type trigger struct {
	fd int
	h  Handler
}

// NewPoller creates an epoll instance and its wake-up eventfd. Call Run on a
// goroutine of your own, and Close when done.
func NewPoller() (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	wfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	outfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		unix.Close(wfd)
		unix.Close(epfd)
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	for _, fd := range []int{wfd, outfd} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			unix.Close(outfd)
			unix.Close(wfd)
			unix.Close(epfd)
			return nil, os.NewSyscallError("epoll_ctl add", err)
		}
	}
	// A non-blocking descriptor given to os.NewFile joins the runtime's
	// poller: Run then parks its goroutine until epfd is readable (has
	// events) instead of blocking a thread in epoll_wait.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(outfd)
		unix.Close(wfd)
		unix.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	return &Poller{
		epfd:    epfd,
		efile:   os.NewFile(uintptr(epfd), "epoll"),
		outfd:   outfd,
		wfd:     wfd,
		stride:  1,
		writers: make(map[int32]struct{}),
		done:    make(chan struct{}),
	}, nil
}

// handlerLocked returns fd's handler or nil. p.mu must be held.
func (p *Poller) handlerLocked(fd int) Handler {
	if i := fd / p.stride; fd >= 0 && i < len(p.handlers) {
		return p.handlers[i]
	}
	return nil
}

// setHandlerLocked stores (or with nil clears) fd's handler, growing the
// table as descriptor numbers grow. A slice costs 16 bytes per slot where a
// map costs several times that per entry. p.mu must be held.
func (p *Poller) setHandlerLocked(fd int, h Handler) {
	i := fd / p.stride
	if i >= len(p.handlers) {
		if h == nil {
			return
		}
		// A quarter more, not double: the table is memory per
		// connection, and descriptor numbers grow one at a time.
		n := max(i+1, len(p.handlers)+len(p.handlers)/4, 64)
		grown := make([]Handler, n)
		copy(grown, p.handlers)
		p.handlers = grown
	}
	switch old := p.handlers[i]; {
	case old == nil && h != nil:
		p.count++
	case old != nil && h == nil:
		p.count--
	}
	p.handlers[i] = h
}

// Add starts watching fd for readability and hang-up, delivering events to h.
// The descriptor is armed once; call Rearm after handling each event.
func (p *Poller) Add(fd int, h Handler) error { return p.add(fd, h, readEvents) }

// AddEdge starts watching fd edge-triggered: an event each time new data
// (or a hang-up) arrives, with no Rearm (an epoll_ctl per event saved).
// The handler must then read until EAGAIN, and events for fd may come
// while an earlier one is still being handled: whoever serves fd must
// serialise that itself. wspushd's connections use Add (one worker per
// readiness, which dispatch relies on); AddEdge suits a client that reads
// every event to the end, such as the load tool's.
func (p *Poller) AddEdge(fd int, h Handler) error { return p.add(fd, h, edgeEvents) }

// add registers fd with events.
func (p *Poller) add(fd int, h Handler, events uint32) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if fd < 0 || h == nil {
		return os.NewSyscallError("epoll_ctl add", unix.EINVAL)
	}
	p.mu.Lock()
	if p.handlerLocked(fd) != nil {
		p.mu.Unlock()
		return ErrRegistered
	}
	p.setHandlerLocked(fd, h)
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := epollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.mu.Lock()
		p.setHandlerLocked(fd, nil)
		p.mu.Unlock()
		return os.NewSyscallError("epoll_ctl add", err)
	}
	return nil
}

// Rearm re-enables one event for fd after the previous one was handled. If fd
// is readable already, the event is reported again at once.
func (p *Poller) Rearm(fd int) error {
	if p.closed.Load() {
		return ErrClosed
	}
	ev := unix.EpollEvent{Events: readEvents, Fd: int32(fd)}
	if err := epollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &ev); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EBADF) {
			return ErrNotRegistered
		}
		return os.NewSyscallError("epoll_ctl mod", err)
	}
	return nil
}

// ArmWrite asks for one EventWrite when fd can take more bytes. fd must have
// been added with Add. Use it after a write returned EAGAIN; it does not
// disturb the read arming.
func (p *Poller) ArmWrite(fd int) error {
	if p.closed.Load() {
		return ErrClosed
	}
	p.mu.Lock()
	defer p.mu.Unlock() // held so that Remove cannot interleave
	if p.handlerLocked(fd) == nil {
		return ErrNotRegistered
	}
	op := unix.EPOLL_CTL_MOD
	if _, ok := p.writers[int32(fd)]; !ok {
		op = unix.EPOLL_CTL_ADD
	}
	ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLONESHOT, Fd: int32(fd)}
	if err := epollCtl(p.outfd, op, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl arm write", err)
	}
	p.writers[int32(fd)] = struct{}{}
	return nil
}

// Remove stops watching fd. Call it before closing the descriptor.
func (p *Poller) Remove(fd int) error {
	if p.closed.Load() {
		return ErrClosed
	}
	p.mu.Lock()
	ok := p.handlerLocked(fd) != nil
	p.setHandlerLocked(fd, nil)
	_, w := p.writers[int32(fd)]
	delete(p.writers, int32(fd))
	p.mu.Unlock()
	if !ok {
		return ErrNotRegistered
	}
	if w {
		if err := epollCtl(p.outfd, unix.EPOLL_CTL_DEL, fd, nil); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EBADF) {
			return os.NewSyscallError("epoll_ctl del write", err)
		}
	}
	if err := epollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EBADF) {
		return os.NewSyscallError("epoll_ctl del", err)
	}
	return nil
}

// Len reports how many descriptors are registered.
func (p *Poller) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count
}

// Run waits for events and hands them to their handlers until Close. It
// returns nil after Close, or the epoll_wait error that stopped it.
func (p *Poller) Run() error {
	p.mu.Lock()
	switch {
	case p.closed.Load():
		p.mu.Unlock()
		return nil
	case p.ran.Load():
		p.mu.Unlock()
		return errors.New("netpoll: Run called twice")
	}
	p.ran.Store(true)
	p.mu.Unlock()
	defer close(p.done)
	events := make([]unix.EpollEvent, eventsPerWait)
	outEvents := make([]unix.EpollEvent, eventsPerWait)
	rc, err := p.efile.SyscallConn()
	if err != nil {
		return err
	}
	var n int
	var werr error
	poll := func(fd uintptr) bool {
		n, werr = epollPoll(int(fd), events)
		return n > 0 || werr != nil // nothing ready: park until epfd is readable
	}
	for {
		if err := rc.Read(poll); err != nil {
			return err
		}
		if werr != nil {
			return os.NewSyscallError("epoll_wait", werr)
		}
		for i := 0; i < n; i++ {
			e := &events[i]
			switch int(e.Fd) {
			case p.wfd:
				p.drainWake()
				if p.closed.Load() {
					return nil
				}
				p.runTriggers()
			case p.outfd:
				if err := p.dispatchWritable(outEvents); err != nil {
					return err
				}
			default:
				p.deliver(e.Fd, toEvent(e.Events))
			}
		}
	}
}

// dispatchWritable drains the nested write epoll without blocking.
func (p *Poller) dispatchWritable(events []unix.EpollEvent) error {
	n, err := epollPoll(p.outfd, events)
	if err != nil {
		return os.NewSyscallError("epoll_wait write", err)
	}
	for i := 0; i < n; i++ {
		p.deliver(events[i].Fd, EventWrite)
	}
	return nil
}

func (p *Poller) deliver(fd int32, ev Event) {
	p.mu.Lock()
	h := p.handlerLocked(int(fd))
	p.mu.Unlock()
	if h != nil {
		h.HandleEvent(int(fd), ev)
	}
}

func toEvent(bits uint32) Event {
	ev := EventRead
	if bits&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		ev |= EventHangup
	}
	if bits&unix.EPOLLERR != 0 {
		ev |= EventError
	}
	return ev
}

// Trigger makes the poller goroutine call h.HandleEvent(fd, EventTrigger)
// soon, whether or not fd is registered (a handler may Remove its fd and
// then Trigger itself). It never blocks and may be called from any
// goroutine, also while holding locks that handlers need: it only queues h
// and wakes the poller. It returns ErrClosed after Close.
func (p *Poller) Trigger(fd int, h Handler) error {
	if p.closed.Load() {
		return ErrClosed
	}
	p.tmu.Lock()
	first := len(p.triggers) == 0
	p.triggers = append(p.triggers, trigger{fd: fd, h: h})
	p.tmu.Unlock()
	if first {
		return p.wake()
	}
	return nil // the wake for the first one is still pending
}

// runTriggers calls the queued Trigger handlers. Poller goroutine only.
func (p *Poller) runTriggers() {
	p.tmu.Lock()
	batch := p.triggers
	p.triggers = p.spare[:0]
	p.tmu.Unlock()
	for i := range batch {
		batch[i].h.HandleEvent(batch[i].fd, EventTrigger)
		batch[i] = trigger{}
	}
	p.spare = batch[:0]
}

// wake makes a waiting Run return to its loop (the eventfd is in epfd).
func (p *Poller) wake() error {
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], 1)
	for {
		_, err := rawsys.Write(p.wfd, b[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil && err != unix.EAGAIN {
			return os.NewSyscallError("eventfd write", err)
		}
		return nil
	}
}

func (p *Poller) drainWake() {
	var b [8]byte
	for {
		if _, err := rawsys.Read(p.wfd, b[:]); err != unix.EINTR {
			return
		}
	}
}

// Close stops Run (waiting for it to return if it was started) and releases
// the epoll and eventfd descriptors. Registered sockets are not closed.
func (p *Poller) Close() error {
	var err error
	p.once.Do(func() {
		// Under mu, so that Run either started before (and is waited for)
		// or sees closed and never touches the descriptors.
		p.mu.Lock()
		p.closed.Store(true)
		ran := p.ran.Load()
		p.mu.Unlock()
		if ran {
			if err = p.wake(); err == nil {
				<-p.done
			}
		}
		p.mu.Lock()
		p.handlers, p.count = nil, 0
		clear(p.writers)
		p.mu.Unlock()
		unix.Close(p.outfd)
		unix.Close(p.wfd)
		p.efile.Close() // epfd
	})
	return err
}

// FD returns the descriptor number of a socket through SyscallConn().Control.
// Unlike (*net.TCPConn).File it neither duplicates the descriptor nor switches
// it to blocking mode. The number is only valid while the connection is open.
func FD(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(s uintptr) { fd = int(s) }); err != nil {
		return -1, err
	}
	return fd, nil
}

// epollCtl is epoll_ctl(2) as a raw system call: it never blocks, so the
// runtime is not told (see internal/rawsys). Every Add, Rearm and Remove
// goes through it.
func epollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// epollPoll takes the ready events of epfd without waiting (epoll_pwait
// with a zero timeout, a raw system call), EINTR retried.
func epollPoll(epfd int, events []unix.EpollEvent) (int, error) {
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		}
		return 0, e
	}
}
