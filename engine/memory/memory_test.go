package memory_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wspush/wspush/engine"
	"github.com/wspush/wspush/engine/enginetest"
	"github.com/wspush/wspush/engine/memory"
	"github.com/wspush/wspush/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

func TestEngineSuite(t *testing.T) {
	enginetest.Run(t, func(t *testing.T, o enginetest.Options, h engine.Handler) engine.Engine {
		return memory.New(memory.Config{HistorySize: o.HistorySize, HistoryTTL: o.HistoryTTL}, h)
	})
}

// TestHistoryMemoryReturns: history bytes and topics are counted while kept
// and given back once the TTL passed.
func TestHistoryMemoryReturns(t *testing.T) {
	e := memory.New(memory.Config{HistorySize: 4, HistoryTTL: 100 * time.Millisecond}, enginetest.NewRecorder())
	defer e.Close()
	for i := range 10 {
		if _, err := e.Publish(context.Background(), fmt.Sprint("t", i%3), []byte(`"0123456789"`)); err != nil {
			t.Fatal(err)
		}
	}
	if n, b := e.Topics(), e.HistoryBytes(); n != 3 || b < 10*12 {
		t.Fatalf("topics %d, history %d bytes: want 3 topics and at least 120 bytes", n, b)
	}
	testutil.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n, b := e.Topics(), e.HistoryBytes(); n != 0 || b != 0 {
			return fmt.Errorf("after the TTL: topics %d, history %d bytes; want 0, 0", n, b)
		}
		return nil
	})
}

// TestMaxTopics: Listen beyond the cap fails; a publish to a new topic
// beyond it is kept nowhere and counted.
func TestMaxTopics(t *testing.T) {
	e := memory.New(memory.Config{HistorySize: 4, MaxTopics: 2}, enginetest.NewRecorder())
	defer e.Close()
	ctx := context.Background()
	for _, topic := range []string{"a", "b"} {
		if _, err := e.Listen(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Listen(ctx, "c"); !errors.Is(err, engine.ErrTooManyTopics) {
		t.Fatalf("third Listen = %v, want ErrTooManyTopics", err)
	}
	p, err := e.Publish(ctx, "c", []byte("1"))
	if err != nil || p.Pos.Seq != 1 {
		t.Fatalf("publish beyond the cap = %+v, %v", p, err)
	}
	if _, err := e.History(ctx, "c", engine.Position{Epoch: p.Pos.Epoch}, 1); !errors.Is(err, engine.ErrNotRecoverable) {
		t.Fatalf("History of a publish kept nowhere = %v", err)
	}
	if e.Dropped() != 1 {
		t.Fatalf("Dropped = %d, want 1", e.Dropped())
	}
}

// TestRunsEnd: without listeners or history a topic is a run of one per
// publish, and the Unlisten of its last listener ends its run.
func TestRunsEnd(t *testing.T) {
	e := memory.New(memory.Config{}, enginetest.NewRecorder())
	defer e.Close()
	ctx := context.Background()
	a, _ := e.Publish(ctx, "t", []byte("1"))
	b, _ := e.Publish(ctx, "t", []byte("2"))
	if a.Pos.Seq != 1 || b.Pos.Seq != 1 || a.Pos.Epoch == b.Pos.Epoch {
		t.Fatalf("publishes nobody listens to: %+v, %+v; want seq 1 of two epochs", a.Pos, b.Pos)
	}
	pos, err := e.Listen(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Publish(ctx, "t", []byte("3")); err != nil {
		t.Fatal(err)
	}
	e.Unlisten("t")
	again, err := e.Listen(ctx, "t")
	if err != nil || again.Epoch == pos.Epoch || again.Seq != 0 {
		t.Fatalf("Listen after the run ended = %+v, %v; want seq 0 of a new epoch (was %s)", again, err, pos.Epoch)
	}
}
