package wsconn

import (
	"testing"
	"time"
)

// TestPingSchedule: keepalives are spread over the interval. Over any
// PingInterval of sweeps every descriptor is in exactly one window, each
// sweep holds about 1/phases of them, a sweep the ticker dropped hands its
// phases to the next one, and pings off means no window.
func TestPingSchedule(t *testing.T) {
	const fds = 1000
	for _, tc := range []struct {
		name        string
		ping, sweep time.Duration
		phases      int64
	}{
		{"default", 25 * time.Second, time.Second, 25},
		{"bench", 5 * time.Second, time.Second, 5},
		{"rounded down", 2500 * time.Millisecond, time.Second, 2},
		{"under a sweep", 100 * time.Millisecond, time.Second, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{PingInterval: tc.ping, SweepInterval: tc.sweep}
			start := time.Unix(1_000_000, 0)
			s := newPingSchedule(&cfg, start)
			if s.phases != tc.phases {
				t.Fatalf("phases %d, want %d", s.phases, tc.phases)
			}
			pinged := make([]int, fds)
			for i := int64(1); i <= 3*tc.phases; i++ {
				w := s.next(start.Add(time.Duration(i)*tc.sweep + time.Millisecond))
				n := 0
				for fd := range int32(fds) {
					if w.has(fd) {
						pinged[fd]++
						n++
					}
				}
				if want := fds / int(tc.phases); n < want-1 || n > want+1 {
					t.Fatalf("sweep %d pinged %d of %d, want about %d", i, n, fds, want)
				}
			}
			for fd, n := range pinged {
				if n != 3 {
					t.Fatalf("fd %d pinged %d times in 3 intervals, want 3", fd, n)
				}
			}
		})
	}
}

// TestPingScheduleDroppedSweeps: a late sweep pings the phases of the
// sweeps it replaces (all of them after a whole interval); a second tick
// within the same sweep index pings nobody.
func TestPingScheduleDroppedSweeps(t *testing.T) {
	cfg := Config{PingInterval: 5 * time.Second, SweepInterval: time.Second}
	start := time.Unix(1_000_000, 0)
	s := newPingSchedule(&cfg, start)
	count := func(w pingWindow) (n int) {
		for fd := range int32(100) {
			if w.has(fd) {
				n++
			}
		}
		return n
	}
	for _, step := range []struct {
		at   time.Duration
		want int
	}{
		{1100 * time.Millisecond, 20}, // sweep 1: one phase
		{1900 * time.Millisecond, 0},  // still sweep 1
		{3050 * time.Millisecond, 40}, // sweeps 2 and 3
		{20 * time.Second, 100},       // a whole interval late: everyone once
		{21 * time.Second, 20},        // back to one phase
	} {
		if got := count(s.next(start.Add(step.at))); got != step.want {
			t.Fatalf("at %v: %d of 100 pinged, want %d", step.at, got, step.want)
		}
	}
	off := Config{PingInterval: -1, SweepInterval: time.Second}
	s = newPingSchedule(&off, start)
	if got := count(s.next(start.Add(time.Hour))); got != 0 {
		t.Fatalf("pings off: %d pinged", got)
	}
}
