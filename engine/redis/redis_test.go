package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/wspush/wspush/engine"
	"github.com/wspush/wspush/engine/enginetest"
	"github.com/wspush/wspush/engine/redis"
	"github.com/wspush/wspush/internal/redistest"
	"github.com/wspush/wspush/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

// TestEngineSuite runs the shared engine suite against a real Redis.
func TestEngineSuite(t *testing.T) {
	srv := redistest.Start(t)
	enginetest.Run(t, func(t *testing.T, o enginetest.Options, h engine.Handler) engine.Engine {
		e, err := redis.New(redis.Config{URL: srv.URL(), HistorySize: o.HistorySize, HistoryTTL: o.HistoryTTL}, h)
		if err != nil {
			t.Fatal(err)
		}
		return e
	})
}

// TestTwoNodes: a publish on one node reaches the other, with one seq order.
func TestTwoNodes(t *testing.T) {
	srv := redistest.Start(t)
	r1, r2 := enginetest.NewRecorder(), enginetest.NewRecorder()
	e1 := newEngine(t, srv.URL(), r1)
	e2 := newEngine(t, srv.URL(), r2)
	ctx := context.Background()
	p1, err := e1.Listen(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := e2.Listen(ctx, "x")
	if err != nil || p1 != p2 {
		t.Fatalf("positions %+v and %+v, %v: want the same", p1, p2, err)
	}
	for i := range 10 {
		e := e1
		if i%2 == 1 {
			e = e2
		}
		if _, err := e.Publish(ctx, "x", []byte{'0' + byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []*enginetest.Recorder{r1, r2} {
		for i, p := range r.Wait(t, "x", 10, 5*time.Second) {
			if p.Pos.Seq != uint64(i+1) || p.Pos.Epoch != p1.Epoch || string(p.Data) != string([]byte{'0' + byte(i)}) {
				t.Fatalf("publication %d = %+v %q", i, p.Pos, p.Data)
			}
		}
	}
}

// TestRedisDown: with Redis gone, Publish fails fast and Healthy says why;
// once it is back (empty) publishing works again under a new epoch.
func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	e := newEngine(t, srv.URL(), enginetest.NewRecorder())
	ctx := context.Background()
	before, err := e.Publish(ctx, "d", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	ctx2, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := e.Publish(ctx2, "d", []byte("2")); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("Publish with Redis down = %v, want ErrUnavailable", err)
	}
	if e.Healthy() == nil {
		t.Fatal("Healthy() = nil with Redis down")
	}
	srv.Restart(t)
	var after engine.Published
	testutil.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		after, err = e.Publish(ctx, "d", []byte("3"))
		return err
	})
	if after.Pos.Epoch == before.Pos.Epoch || after.Pos.Seq != 1 {
		t.Fatalf("first publish after an empty restart = %+v, want seq 1 of a new run (was %s)", after.Pos, before.Pos.Epoch)
	}
	testutil.CheckFor(t, 10*time.Second, 50*time.Millisecond, e.Healthy)
}

func newEngine(t *testing.T, url string, h engine.Handler) *redis.Engine {
	t.Helper()
	e, err := redis.New(redis.Config{URL: url, Timeout: time.Second}, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// TestPasswordInURL: the broker URL's password is used (a Redis that
// requires one refuses the engine without it).
func TestPasswordInURL(t *testing.T) {
	srv := redistest.Start(t)
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer admin.Close()
	if err := admin.ConfigSet(context.Background(), "requirepass", "s3cret").Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	without := newEngine(t, srv.URL(), enginetest.NewRecorder())
	if _, err := without.Publish(ctx, "p", []byte("1")); err == nil {
		t.Fatal("Publish without the password succeeded")
	}
	with := newEngine(t, "redis://:s3cret@"+srv.Addr()+"/0", enginetest.NewRecorder())
	if _, err := with.Publish(ctx, "p", []byte("1")); err != nil {
		t.Fatalf("Publish with the password in the URL: %v", err)
	}
}
