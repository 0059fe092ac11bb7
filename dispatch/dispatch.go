package dispatch

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/panjf2000/ants/v2"
)

// Task is a connection's unit of work.
type Task interface {
	// Serve handles everything the connection has ready, without waiting for
	// more. It runs on a pool worker, never concurrently with itself for the
	// same Task.
	Serve()
	// Slot returns the task's scheduling state; the same pointer every call.
	Slot() *Slot
	// Abort is called (on the worker) when Serve panicked; it should close
	// the connection. err is a *PanicError.
	Abort(err error)
}

// Slot is the per-connection scheduling state. Its zero value is idle. Embed
// one in each connection; only this package writes it.
type Slot struct {
	state atomic.Int32 // slotIdle, slotRunning or slotAgain
}

const (
	slotIdle    int32 = iota // no worker has the task
	slotRunning              // a worker is serving it
	slotAgain                // a worker is serving it and must pass once more
)

// Config sets up a Dispatcher. The zero value is valid.
type Config struct {
	// Workers is the pool size. Zero means 64 × GOMAXPROCS. Workers never
	// wait on a client, so the pool only needs to cover work in flight.
	Workers int
	// OnPanic, if set, is called before the Task's Abort for every recovered
	// panic (for logging and metrics). It may be called concurrently.
	OnPanic func(*PanicError)
}

// Dispatcher runs Tasks on its own ants pool.
type Dispatcher struct {
	pool    *ants.PoolWithFuncGeneric[Task]
	onPanic func(*PanicError)
	panics  atomic.Int64
	busy    atomic.Int64 // workers inside run now
}

// New creates the dispatcher and its pool.
func New(cfg Config) (*Dispatcher, error) {
	n := cfg.Workers
	if n <= 0 {
		n = 64 * runtime.GOMAXPROCS(0)
	}
	d := &Dispatcher{onPanic: cfg.OnPanic}
	pool, err := ants.NewPoolWithFuncGeneric(n, d.run,
		ants.WithPanicHandler(func(v any) {
			// Only reached if run itself panics; Serve panics are
			// recovered in run. Count it so it is never silent.
			d.panics.Add(1)
		}),
		ants.WithExpiryDuration(2*time.Second),
	)
	if err != nil {
		return nil, fmt.Errorf("dispatch: new pool: %w", err)
	}
	d.pool = pool
	return d, nil
}

// Dispatch schedules t to be served. If a worker is serving t right now, that
// worker passes over t once more instead. Dispatch may block while every
// worker is busy (backpressure on the poller), never on t itself.
func (d *Dispatcher) Dispatch(t Task) error {
	s := t.Slot()
	for {
		switch s.state.Load() {
		case slotIdle:
			if !s.state.CompareAndSwap(slotIdle, slotRunning) {
				continue
			}
			if err := d.pool.Invoke(t); err != nil {
				s.state.Store(slotIdle)
				if errors.Is(err, ants.ErrPoolClosed) {
					return ErrClosed
				}
				return fmt.Errorf("dispatch: %w", err)
			}
			return nil
		case slotRunning:
			if s.state.CompareAndSwap(slotRunning, slotAgain) {
				return nil
			}
		default: // slotAgain: the running worker will pass again anyway
			return nil
		}
	}
}

// run is the pool function: serve until no event came in meanwhile. A
// Dispatch that arrived during a pass that panicked (Abort may ask for one:
// that is how a connection gets torn down on its own slot) still gets its
// pass.
func (d *Dispatcher) run(t Task) {
	d.busy.Add(1)
	defer d.busy.Add(-1)
	s := t.Slot()
	for {
		d.serve(t)
		if s.state.CompareAndSwap(slotRunning, slotIdle) {
			return
		}
		s.state.Store(slotRunning) // was slotAgain: one more pass
	}
}

// serve calls Serve, turning a panic into Abort.
func (d *Dispatcher) serve(t Task) {
	defer func() {
		if v := recover(); v != nil {
			pe := &PanicError{Value: v, Stack: debug.Stack()}
			d.panics.Add(1)
			d.abort(t, pe)
		}
	}()
	t.Serve()
}

// abort reports a panic to the task and the hook. A panic in either is
// swallowed (and counted) so that the slot is always reset.
func (d *Dispatcher) abort(t Task, pe *PanicError) {
	defer func() {
		if recover() != nil {
			d.panics.Add(1)
		}
	}()
	// The hook first: whoever learns of the close (from Abort) can rely on
	// the panic being counted already.
	if d.onPanic != nil {
		d.onPanic(pe)
	}
	t.Abort(pe)
}

// Busy reports how many workers are serving a task right now.
func (d *Dispatcher) Busy() int { return int(d.busy.Load()) }

// Running reports how many worker goroutines the pool has alive (busy or
// idle until they expire).
func (d *Dispatcher) Running() int { return d.pool.Running() }

// Cap reports the pool size.
func (d *Dispatcher) Cap() int { return d.pool.Cap() }

// Panics reports how many task panics were recovered.
func (d *Dispatcher) Panics() int64 { return d.panics.Load() }

// Close releases the pool, waiting up to timeout for running tasks.
func (d *Dispatcher) Close(timeout time.Duration) error {
	if err := d.pool.ReleaseTimeout(timeout); err != nil {
		return fmt.Errorf("dispatch: release: %w", err)
	}
	return nil
}

// Idle reports whether no worker has the task now (for tests and metrics:
// by the time the caller looks, a Dispatch may have changed it). Nothing
// outside this package can claim a Slot: a task's worker-only state belongs
// to the one worker Dispatch runs for it.
func (s *Slot) Idle() bool { return s.state.Load() == slotIdle }
