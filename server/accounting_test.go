package server

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wspush/wspush/internal/testutil"
	"github.com/wspush/wspush/internal/wstest"
	"github.com/wspush/wspush/wsconn"
)

// TestExactAccounting drives a mixed workload (readers, never-readers,
// clients that leave mid-stream, churn) and checks, exactly, that every
// recipient of every publish was delivered, dropped by the policy, or lost
// to a connection that closed first.
func TestExactAccounting(t *testing.T) {
	s := startServer(t, Config{Conn: wsconn.Config{SendQueue: 8, MaxMessage: 1 << 20}})
	const msgs = 200
	payload := strings.Repeat("a", 64<<10)
	var wg sync.WaitGroup
	var readers, leavers []*wstest.Client
	for range 6 {
		c := dial(t, s, "/ws?topics=acct")
		readers = append(readers, c)
		wg.Add(1)
		go func() { defer wg.Done(); io.Copy(io.Discard, c.Conn) }()
	}
	for range 4 {
		dial(t, s, "/ws?topics=acct") // never reads
	}
	for range 4 {
		leavers = append(leavers, dial(t, s, "/ws?topics=acct"))
	}
	stopChurn := make(chan struct{})
	churnDone := make(chan struct{})
	go func() {
		defer close(churnDone)
		for i := 0; i < 200; i++ {
			select {
			case <-stopChurn:
				return
			default:
			}
			c, err := wstest.Dial(s.WSAddr().String(), "/ws?topics=acct", nil)
			if err != nil {
				continue
			}
			if i%2 == 0 {
				c.Write(F{Op: 8, Payload: wstest.CloseFramePayload(1000, "")})
			}
			c.Close()
		}
	}()
	for i := 1; i <= msgs; i++ {
		if i == msgs/2 {
			for _, c := range leavers {
				c.Close()
			}
		}
		publish(t, s, "acct", fmt.Sprintf(`{"n":%d,"p":%q}`, i, payload))
	}
	close(stopChurn)
	<-churnDone
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, c := range readers {
		c.Close()
	}
	wg.Wait()
	st := s.Stats()
	recipients := s.metrics.recipients.Load()
	testutil.CheckFor(t, readWait, 10*time.Millisecond, func() error {
		delivered, dropped, lost := st.Delivered.Load(), st.Dropped(), st.LostClosed.Load()
		if sum := delivered + dropped + lost; sum != recipients {
			return fmt.Errorf("recipients %d != delivered %d + dropped %d + lost %d = %d", recipients, delivered, dropped, lost, sum)
		}
		return nil
	})
	if st.Dropped() == 0 || st.LostClosed.Load() == 0 {
		t.Fatalf("workload too gentle: dropped %d, lost %d (both must be exercised)", st.Dropped(), st.LostClosed.Load())
	}
}
