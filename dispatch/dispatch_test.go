package dispatch_test

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/dispatch"
	"github.com/wspush/wspush/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

const (
	waitTotal    = 10 * time.Second
	waitInterval = time.Millisecond
)

// newDispatcher returns a dispatcher closed at the end of the test.
func newDispatcher(t *testing.T, cfg dispatch.Config) *dispatch.Dispatcher {
	t.Helper()
	d, err := dispatch.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if closedByTest(d) {
			return
		}
		if err := d.Close(waitTotal); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

var closed sync.Map // *dispatch.Dispatcher → true once a test closed it

func closedByTest(d *dispatch.Dispatcher) bool { _, ok := closed.Load(d); return ok }

func closeDispatcher(t *testing.T, d *dispatch.Dispatcher) error {
	t.Helper()
	closed.Store(d, true)
	return d.Close(waitTotal)
}

// eventTask counts events produced by Dispatch callers and consumed by Serve,
// and tracks how many workers are inside Serve at once.
type eventTask struct {
	slot     dispatch.Slot
	produced atomic.Int64
	consumed atomic.Int64
	inflight atomic.Int32
	maxIn    atomic.Int32
	serves   atomic.Int64
}

func (e *eventTask) Slot() *dispatch.Slot { return &e.slot }
func (e *eventTask) Abort(err error)      { panic(fmt.Sprintf("unexpected Abort: %v", err)) }

func (e *eventTask) Serve() {
	n := e.inflight.Add(1)
	for {
		m := e.maxIn.Load()
		if n <= m || e.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	e.serves.Add(1)
	// Handle everything that is ready now, as a connection drains its
	// socket; events that arrive later need another pass.
	e.consumed.Store(e.produced.Load())
	runtime.Gosched()
	e.inflight.Add(-1)
}

// produce records one event and dispatches the task for it.
func (e *eventTask) produce(d *dispatch.Dispatcher) error {
	e.produced.Add(1)
	return d.Dispatch(e)
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		workers int
		wantCap int
	}{
		{name: "explicit", workers: 3, wantCap: 3},
		{name: "one", workers: 1, wantCap: 1},
		{name: "zero_means_default", workers: 0, wantCap: 64 * runtime.GOMAXPROCS(0)},
		{name: "negative_means_default", workers: -4, wantCap: 64 * runtime.GOMAXPROCS(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDispatcher(t, dispatch.Config{Workers: tt.workers})
			if got := d.Cap(); got != tt.wantCap {
				t.Errorf("Cap() = %d, want %d", got, tt.wantCap)
			}
			if got := d.Panics(); got != 0 {
				t.Errorf("Panics() = %d on a new dispatcher", got)
			}
		})
	}
}

// TestAtMostOneWorkerPerTask dispatches the same tasks from many goroutines
// at once: no task may ever be served by two workers at a time, and no
// dispatch may be lost (every event is consumed by a pass that started after
// it was produced).
func TestAtMostOneWorkerPerTask(t *testing.T) {
	tests := []struct {
		name       string
		workers    int
		tasks      int
		goroutines int
		dispatches int // per goroutine
	}{
		{name: "one_task_big_pool", workers: 64, tasks: 1, goroutines: 16, dispatches: 500},
		{name: "few_tasks_small_pool", workers: 2, tasks: 4, goroutines: 16, dispatches: 300},
		{name: "many_tasks", workers: 8, tasks: 32, goroutines: 8, dispatches: 400},
		{name: "single_worker", workers: 1, tasks: 3, goroutines: 8, dispatches: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDispatcher(t, dispatch.Config{Workers: tt.workers})
			tasks := make([]*eventTask, tt.tasks)
			for i := range tasks {
				tasks[i] = &eventTask{}
			}
			var wg sync.WaitGroup
			for g := 0; g < tt.goroutines; g++ {
				wg.Go(func() {
					for i := 0; i < tt.dispatches; i++ {
						if err := tasks[(g+i)%len(tasks)].produce(d); err != nil {
							t.Errorf("Dispatch: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			testutil.CheckFor(t, waitTotal, waitInterval, func() error {
				for i, e := range tasks {
					if p, c := e.produced.Load(), e.consumed.Load(); c != p {
						return fmt.Errorf("task %d: consumed %d of %d events (lost wake-up)", i, c, p)
					}
				}
				return nil
			})
			var total int64
			for i, e := range tasks {
				if m := e.maxIn.Load(); m != 1 {
					t.Errorf("task %d: %d workers served it at once, want 1", i, m)
				}
				total += e.serves.Load()
				if e.serves.Load() == 0 || e.serves.Load() > e.produced.Load() {
					t.Errorf("task %d: %d passes for %d dispatches", i, e.serves.Load(), e.produced.Load())
				}
			}
			t.Logf("%d dispatches folded into %d passes", tt.goroutines*tt.dispatches, total)
		})
	}
}

// TestNoLostWakeupSequential alternates a dispatch with waiting for it to be
// consumed, so that every dispatch hits the idle → running path or the tail
// of a pass.
func TestNoLostWakeupSequential(t *testing.T) {
	d := newDispatcher(t, dispatch.Config{Workers: 2})
	e := &eventTask{}
	for i := 0; i < 500; i++ {
		if err := e.produce(d); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 { // odd ones race with the pass of the previous one
			testutil.CheckFor(t, waitTotal, 50*time.Microsecond, func() error {
				if c, p := e.consumed.Load(), e.produced.Load(); c != p {
					return fmt.Errorf("dispatch %d: consumed %d of %d", i, c, p)
				}
				return nil
			})
		}
	}
	testutil.CheckFor(t, waitTotal, waitInterval, func() error {
		if c, p := e.consumed.Load(), e.produced.Load(); c != p {
			return fmt.Errorf("consumed %d of %d", c, p)
		}
		return nil
	})
}

// selfTask re-dispatches itself from inside Serve, as a connection does when
// it finds more work; that must fold into another pass of the same worker.
type selfTask struct {
	slot   dispatch.Slot
	d      *dispatch.Dispatcher
	want   int64
	passes atomic.Int64
	errs   chan error
}

func (s *selfTask) Slot() *dispatch.Slot { return &s.slot }
func (s *selfTask) Abort(err error)      { s.errs <- err }
func (s *selfTask) Serve() {
	if s.passes.Add(1) < s.want {
		if err := s.d.Dispatch(s); err != nil {
			s.errs <- err
		}
	}
}

func TestDispatchFromServe(t *testing.T) {
	d := newDispatcher(t, dispatch.Config{Workers: 1})
	s := &selfTask{d: d, want: 20, errs: make(chan error, 20)}
	if err := d.Dispatch(s); err != nil {
		t.Fatal(err)
	}
	testutil.CheckFor(t, waitTotal, waitInterval, func() error {
		if n := s.passes.Load(); n != s.want {
			return fmt.Errorf("%d passes, want %d", n, s.want)
		}
		if !s.slot.Idle() {
			return errors.New("slot still busy")
		}
		return nil
	})
	select {
	case err := <-s.errs:
		t.Fatalf("error from Serve: %v", err)
	default:
	}
}

// blockTask blocks in Serve until release is closed.
type blockTask struct {
	slot    dispatch.Slot
	entered *atomic.Int32
	release chan struct{}
	passes  atomic.Int32
}

func (b *blockTask) Slot() *dispatch.Slot { return &b.slot }
func (b *blockTask) Abort(err error)      {}
func (b *blockTask) Serve() {
	b.passes.Add(1)
	b.entered.Add(1)
	<-b.release
}

// dispatchBlocked dispatches a blockTask on d and waits until a worker is
// inside its Serve; the caller closes its release channel.
func dispatchBlocked(t *testing.T, d *dispatch.Dispatcher) *blockTask {
	t.Helper()
	var entered atomic.Int32
	b := &blockTask{entered: &entered, release: make(chan struct{})}
	if err := d.Dispatch(b); err != nil {
		t.Fatal(err)
	}
	testutil.CheckFor(t, waitTotal, waitInterval, func() error {
		if entered.Load() != 1 {
			return errors.New("Serve not entered")
		}
		return nil
	})
	return b
}

func TestDifferentTasksRunConcurrently(t *testing.T) {
	tests := []struct {
		name    string
		workers int
		tasks   int
	}{
		{name: "two_workers_two_tasks", workers: 2, tasks: 2},
		{name: "four_workers_four_tasks", workers: 4, tasks: 4},
		{name: "big_pool_three_tasks", workers: 64, tasks: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDispatcher(t, dispatch.Config{Workers: tt.workers})
			var entered atomic.Int32
			release := make(chan struct{})
			released := false
			defer func() {
				if !released {
					close(release)
				}
			}()
			tasks := make([]*blockTask, tt.tasks)
			for i := range tasks {
				tasks[i] = &blockTask{entered: &entered, release: release}
				if err := d.Dispatch(tasks[i]); err != nil {
					t.Fatal(err)
				}
			}
			// Every task is inside Serve at the same time: each one waits
			// for the barrier that only opens after all have entered.
			testutil.CheckFor(t, waitTotal, waitInterval, func() error {
				if n := entered.Load(); n != int32(tt.tasks) {
					return fmt.Errorf("%d of %d tasks entered Serve concurrently", n, tt.tasks)
				}
				return nil
			})
			if got := d.Running(); got < tt.tasks {
				t.Errorf("Running() = %d while %d tasks are blocked in Serve", got, tt.tasks)
			}
			close(release)
			released = true
			testutil.CheckFor(t, waitTotal, waitInterval, func() error {
				for i, b := range tasks {
					if !b.slot.Idle() {
						return fmt.Errorf("task %d still held by a worker", i)
					}
				}
				return nil
			})
		})
	}
}

// panicTask panics in Serve with value while panicking is set.
type panicTask struct {
	slot     dispatch.Slot
	value    any
	panicNow atomic.Bool
	passes   atomic.Int32
	order    *atomic.Int32 // shared sequence to order Abort vs OnPanic
	abortAt  atomic.Int32
	mu       sync.Mutex
	aborts   []error
}

func (p *panicTask) Slot() *dispatch.Slot { return &p.slot }

func (p *panicTask) Abort(err error) {
	p.abortAt.Store(p.order.Add(1))
	p.mu.Lock()
	p.aborts = append(p.aborts, err)
	p.mu.Unlock()
}

func (p *panicTask) Serve() {
	p.passes.Add(1)
	if p.panicNow.Load() {
		panic(p.value)
	}
}

func (p *panicTask) abortErrs() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]error(nil), p.aborts...)
}

type customPanic struct{ code int }

func TestPanicInServe(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name  string
		value any
		check func(t *testing.T, got any)
	}{
		{name: "string", value: "kaboom", check: func(t *testing.T, got any) {
			if got != "kaboom" {
				t.Errorf("Value = %#v, want \"kaboom\"", got)
			}
		}},
		{name: "error", value: errBoom, check: func(t *testing.T, got any) {
			if err, ok := got.(error); !ok || !errors.Is(err, errBoom) {
				t.Errorf("Value = %#v, want errBoom", got)
			}
		}},
		{name: "struct", value: customPanic{code: 7}, check: func(t *testing.T, got any) {
			if got != (customPanic{code: 7}) {
				t.Errorf("Value = %#v, want customPanic{7}", got)
			}
		}},
		{name: "nil", value: nil, check: func(t *testing.T, got any) {
			var pn *runtime.PanicNilError
			if err, ok := got.(error); !ok || !errors.As(err, &pn) {
				t.Errorf("Value = %#v, want *runtime.PanicNilError", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var order atomic.Int32
			var onPanicAt atomic.Int32
			var mu sync.Mutex
			var reported []*dispatch.PanicError
			d := newDispatcher(t, dispatch.Config{Workers: 4, OnPanic: func(pe *dispatch.PanicError) {
				onPanicAt.Store(order.Add(1))
				mu.Lock()
				reported = append(reported, pe)
				mu.Unlock()
			}})
			p := &panicTask{value: tt.value, order: &order}
			p.panicNow.Store(true)
			bystander := &eventTask{}
			if err := d.Dispatch(p); err != nil {
				t.Fatal(err)
			}
			testutil.CheckFor(t, waitTotal, waitInterval, func() error {
				mu.Lock()
				defer mu.Unlock()
				if len(reported) != 1 || d.Panics() != 1 {
					return fmt.Errorf("OnPanic called %d times, Panics() = %d, want 1 and 1", len(reported), d.Panics())
				}
				return nil
			})
			aborts := p.abortErrs()
			if len(aborts) != 1 {
				t.Fatalf("Abort called %d times, want 1", len(aborts))
			}
			var pe *dispatch.PanicError
			if !errors.As(aborts[0], &pe) {
				t.Fatalf("Abort got %T %v, want *dispatch.PanicError", aborts[0], aborts[0])
			}
			tt.check(t, pe.Value)
			if !bytes.Contains(pe.Stack, []byte("dispatch_test.(*panicTask).Serve")) {
				t.Errorf("stack does not show the panicking Serve:\n%s", pe.Stack)
			}
			if pe.Error() == "" {
				t.Error("empty Error()")
			}
			mu.Lock()
			if reported[0] != pe {
				t.Error("OnPanic got a different *PanicError than Abort")
			}
			mu.Unlock()
			if a, o := p.abortAt.Load(), onPanicAt.Load(); a == 0 || o == 0 || o > a {
				t.Errorf("Abort at step %d, OnPanic at step %d: want OnPanic first (counted before the close is seen)", a, o)
			}

			// The dispatcher keeps serving: another task, and the same task
			// once it stops panicking (its slot went back to idle).
			for i := 0; i < 10; i++ {
				if err := bystander.produce(d); err != nil {
					t.Fatal(err)
				}
			}
			p.panicNow.Store(false)
			if err := d.Dispatch(p); err != nil {
				t.Fatal(err)
			}
			testutil.CheckFor(t, waitTotal, waitInterval, func() error {
				if c, pr := bystander.consumed.Load(), bystander.produced.Load(); c != pr {
					return fmt.Errorf("bystander consumed %d of %d", c, pr)
				}
				if n := p.passes.Load(); n != 2 {
					return fmt.Errorf("panicking task served %d times, want 2", n)
				}
				return nil
			})
			if n := d.Panics(); n != 1 {
				t.Errorf("Panics() = %d, want 1", n)
			}
		})
	}
}

func TestManyConcurrentPanics(t *testing.T) {
	var onPanic atomic.Int64
	d := newDispatcher(t, dispatch.Config{Workers: 8, OnPanic: func(*dispatch.PanicError) { onPanic.Add(1) }})
	var order atomic.Int32
	const n = 50
	tasks := make([]*panicTask, n)
	for i := range tasks {
		tasks[i] = &panicTask{value: i, order: &order}
		tasks[i].panicNow.Store(true)
		if err := d.Dispatch(tasks[i]); err != nil {
			t.Fatal(err)
		}
	}
	testutil.CheckFor(t, waitTotal, waitInterval, func() error {
		if d.Panics() != n || onPanic.Load() != n {
			return fmt.Errorf("Panics() = %d, OnPanic calls = %d, want %d", d.Panics(), onPanic.Load(), n)
		}
		// The hook runs, and the panic is counted, before Abort: wait for
		// every Abort too.
		for i, p := range tasks {
			if len(p.abortErrs()) == 0 {
				return fmt.Errorf("task %d not aborted yet", i)
			}
		}
		return nil
	})
	for i, p := range tasks {
		errs := p.abortErrs()
		var pe *dispatch.PanicError
		if len(errs) != 1 || !errors.As(errs[0], &pe) || pe.Value != i {
			t.Errorf("task %d: aborts %v", i, errs)
		}
	}
}

func TestPanicWithoutOnPanic(t *testing.T) {
	d := newDispatcher(t, dispatch.Config{Workers: 1})
	var order atomic.Int32
	p := &panicTask{value: "x", order: &order}
	p.panicNow.Store(true)
	if err := d.Dispatch(p); err != nil {
		t.Fatal(err)
	}
	testutil.CheckFor(t, waitTotal, waitInterval, func() error {
		if len(p.abortErrs()) != 1 || d.Panics() != 1 {
			return fmt.Errorf("aborts %d, Panics() %d, want 1 and 1", len(p.abortErrs()), d.Panics())
		}
		return nil
	})
	// The only worker survived the panic.
	e := &eventTask{}
	if err := e.produce(d); err != nil {
		t.Fatal(err)
	}
	testutil.CheckFor(t, waitTotal, waitInterval, func() error {
		if e.consumed.Load() != 1 {
			return errors.New("task after a panic not served")
		}
		return nil
	})
}

func TestSlotIdle(t *testing.T) {
	t.Run("zero_slot_is_idle", func(t *testing.T) {
		var s dispatch.Slot
		if !s.Idle() {
			t.Fatal("a zero Slot is not idle")
		}
	})
	t.Run("busy_while_worker_runs", func(t *testing.T) {
		d := newDispatcher(t, dispatch.Config{Workers: 2})
		b := dispatchBlocked(t, d)
		if b.slot.Idle() {
			close(b.release)
			t.Fatal("slot idle while a worker is in Serve")
		}
		// An event while the worker runs folds into one more pass; the
		// slot stays busy until that pass ends too.
		if err := d.Dispatch(b); err != nil {
			t.Fatal(err)
		}
		close(b.release)
		testutil.CheckFor(t, waitTotal, waitInterval, func() error {
			if !b.slot.Idle() {
				return errors.New("slot still busy after Serve returned")
			}
			return nil
		})
		if n := b.passes.Load(); n != 2 {
			t.Errorf("%d passes, want 2 (the dispatch during Serve must cause one more)", n)
		}
		// Idle again: a dispatch runs it.
		if err := d.Dispatch(b); err != nil {
			t.Fatal(err)
		}
		testutil.CheckFor(t, waitTotal, waitInterval, func() error {
			if n := b.passes.Load(); n != 3 {
				return fmt.Errorf("%d passes after a third Dispatch, want 3", n)
			}
			return nil
		})
	})
}

func TestClose(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		d := newDispatcher(t, dispatch.Config{Workers: 4})
		e := &eventTask{}
		for i := 0; i < 20; i++ {
			if err := e.produce(d); err != nil {
				t.Fatal(err)
			}
		}
		testutil.CheckFor(t, waitTotal, waitInterval, func() error {
			if e.consumed.Load() != e.produced.Load() {
				return errors.New("not consumed yet")
			}
			return nil
		})
		if err := closeDispatcher(t, d); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if d.Running() != 0 {
			t.Errorf("Running() = %d after Close", d.Running())
		}
		err := e.produce(d)
		if !errors.Is(err, dispatch.ErrClosed) {
			t.Fatalf("Dispatch after Close = %v, want ErrClosed", err)
		}
		// The failed dispatch left the slot idle.
		if !e.slot.Idle() {
			t.Fatal("slot left busy by a refused Dispatch")
		}
	})
	t.Run("waits_for_running_task", func(t *testing.T) {
		d := newDispatcher(t, dispatch.Config{Workers: 2})
		b := dispatchBlocked(t, d)
		closeErr := make(chan error, 1)
		go func() { closeErr <- closeDispatcher(t, d) }()
		// Once dispatches are refused, Close has released the pool and
		// must now be waiting for the task that is inside Serve.
		probe := &eventTask{}
		testutil.CheckFor(t, waitTotal, waitInterval, func() error {
			if err := probe.produce(d); !errors.Is(err, dispatch.ErrClosed) {
				return fmt.Errorf("Dispatch during Close = %v, want ErrClosed", err)
			}
			return nil
		})
		select {
		case err := <-closeErr:
			close(b.release)
			t.Fatalf("Close returned %v while a task was still running", err)
		default:
		}
		close(b.release)
		if err := <-closeErr; err != nil {
			t.Fatalf("Close: %v", err)
		}
		if n := d.Running(); n != 0 {
			t.Errorf("Running() = %d after Close", n)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		d, err := dispatch.New(dispatch.Config{Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		b := dispatchBlocked(t, d)
		if err := d.Close(20 * time.Millisecond); err == nil {
			t.Error("Close with a task stuck in Serve returned nil, want a timeout error")
		}
		close(b.release)
		testutil.CheckFor(t, waitTotal, waitInterval, func() error {
			if n := d.Running(); n != 0 {
				return fmt.Errorf("Running() = %d after the stuck task returned", n)
			}
			return nil
		})
	})
}

// TestBusyCountsServingWorkers: Busy counts workers inside Serve only;
// Running (ants' live goroutines) may stay up until they expire.
func TestBusyCountsServingWorkers(t *testing.T) {
	d := newDispatcher(t, dispatch.Config{Workers: 4})
	e := &eventTask{}
	if err := e.produce(d); err != nil {
		t.Fatal(err)
	}
	testutil.CheckFor(t, 2*time.Second, waitInterval, func() error {
		if !e.slot.Idle() {
			return errors.New("task still running")
		}
		if n := d.Busy(); n != 0 {
			return fmt.Errorf("Busy() = %d with no task in Serve, want 0", n)
		}
		return nil
	})
}

// abortPanicTask panics in Serve and again in Abort the first time.
type abortPanicTask struct {
	slot   dispatch.Slot
	passes atomic.Int32
}

func (a *abortPanicTask) Slot() *dispatch.Slot { return &a.slot }
func (a *abortPanicTask) Abort(error)          { panic("abort failed") }
func (a *abortPanicTask) Serve() {
	if a.passes.Add(1) == 1 {
		panic("serve failed")
	}
}

// TestAbortPanicLeavesSlotBusy: when Abort (or OnPanic) itself panics, the
// panic escapes run before the slot is reset; ants recovers it, but the slot
// stays "running" forever and every later Dispatch of the task is folded
// into a pass that never happens.
func TestAbortPanicLeavesSlotBusy(t *testing.T) {
	d := newDispatcher(t, dispatch.Config{Workers: 2})
	a := &abortPanicTask{}
	if err := d.Dispatch(a); err != nil {
		t.Fatal(err)
	}
	testutil.CheckFor(t, waitTotal, waitInterval, func() error {
		if d.Panics() == 0 {
			return errors.New("panic not counted yet")
		}
		return nil
	})
	if err := d.Dispatch(a); err != nil {
		t.Fatal(err)
	}
	testutil.CheckFor(t, 2*time.Second, waitInterval, func() error {
		if n := a.passes.Load(); n != 2 {
			return fmt.Errorf("task served %d times after a second Dispatch, want 2 (slot stuck busy: idle=%v)", n, a.slot.Idle())
		}
		return nil
	})
}

func BenchmarkDispatch(b *testing.B) {
	d, err := dispatch.New(dispatch.Config{Workers: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close(waitTotal)
	e := &eventTask{}
	b.ReportAllocs()
	for b.Loop() {
		if err := e.produce(d); err != nil {
			b.Fatal(err)
		}
	}
}

// redispatchTask panics in its first Serve, and its Abort asks for another
// pass (as a connection asks for its teardown pass).
type redispatchTask struct {
	slot   dispatch.Slot
	d      *dispatch.Dispatcher
	passes atomic.Int32
}

func (r *redispatchTask) Slot() *dispatch.Slot { return &r.slot }
func (r *redispatchTask) Abort(error) {
	if err := r.d.Dispatch(r); err != nil {
		panic(err)
	}
}
func (r *redispatchTask) Serve() {
	if r.passes.Add(1) == 1 {
		panic("first pass")
	}
}

// TestDispatchDuringPanickingPass: a Dispatch that arrives while a pass is
// panicking (from Abort itself here) is not lost when the slot is reset.
func TestDispatchDuringPanickingPass(t *testing.T) {
	d := newDispatcher(t, dispatch.Config{Workers: 2})
	r := &redispatchTask{d: d}
	if err := d.Dispatch(r); err != nil {
		t.Fatal(err)
	}
	testutil.CheckFor(t, waitTotal, waitInterval, func() error {
		if n := r.passes.Load(); n != 2 {
			return fmt.Errorf("%d passes, want 2: the Dispatch from Abort was lost", n)
		}
		if !r.slot.Idle() {
			return errors.New("slot still busy")
		}
		return nil
	})
}
