// Package netpoll watches many sockets with a few epoll instances so that no
// goroutine per connection has to sit in a read.
//
// A Poller is one epoll instance plus the goroutine waiting on it; a Group
// is N pollers with descriptors spread over them. The goroutine does not
// block a thread in epoll_wait: the epoll descriptor itself sits in the Go
// runtime's poller (os.NewFile on a non-blocking descriptor), the goroutine
// parks until it is readable, then takes the events with a zero-timeout
// epoll_pwait. While a thread sits in a system call the runtime's sysmon
// keeps waking, as often as every 20 µs, to take its P back: in a profile
// of 500,000 connections on 28 nodes and 27 client processes sharing two
// cores, sysmon's wake-ups were a fifth of all CPU (BENCHMARKS.md).
// Every other system call here and on the sockets (epoll_ctl, the eventfd,
// reads and writes) is non-blocking and made raw, unannounced to the
// runtime. Descriptors are
// registered one-shot: after a readiness event is delivered, the descriptor
// stays disarmed until Rearm, so exactly one party (the dispatch worker) acts on
// a given readiness at a time.
//
// What netpoll owns: the epoll and eventfd descriptors, the fd → Handler table,
// and the poller goroutines. What it never does: netpoll never reads from or
// writes to a watched socket, never closes one, and never blocks in a Handler
// call on behalf of a connection; handlers get the event and must return
// quickly (hand the work to a worker pool).
//
// Writability is watched only on request: after a write returns EAGAIN, the
// writer calls ArmWrite and gets one EventWrite when the socket drains. Those
// descriptors sit in a second epoll instance nested in the first, so one
// goroutine per poller serves both and read arming is never disturbed.
//
// Trigger queues a call of a handler on the poller goroutine, woken through
// the same eventfd: a way for any goroutine, even one holding locks, to hand
// work to the code that runs on events without blocking or spawning.
//
// Concurrency contract:
//   - Add, Rearm, ArmWrite, Remove and Trigger may be called from any goroutine,
//     concurrently with each other and with the poller loop. Trigger never
//     blocks.
//   - Handler.HandleEvent runs on the poller's goroutine, one event at a time
//     per poller. It must not block and must not call Close.
//   - After Remove returns, at most one event that was already taken from the
//     kernel may still reach the handler. Handlers tolerate a late or spurious
//     event (a read that finds nothing, then Rearm).
//   - Remove a descriptor before closing it: a closed descriptor number may be
//     reused by the kernel for a new socket at once.
package netpoll
