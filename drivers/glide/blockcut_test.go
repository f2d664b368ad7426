package glide_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/drivers/glide"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// glideWaiters counts the goroutines glide leaves waiting for the reply
// of a call whose ctx ended (the cleanup goroutine of its executeBatch or
// executeCommandWithRoute).
func glideWaiters() int {
	buf := make([]byte, 8<<20)
	n := 0
	for _, st := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if (strings.Contains(st, "executeBatch.func") || strings.Contains(st, "executeCommandWithRoute.func")) && strings.Contains(st, "chan receive") {
			n++
		}
	}
	return n
}

// Blocking pops their ctx ends leave no goroutine behind (qa-AO AO1: glide
// kept one per call, waiting for a reply that never came, also after
// Close), fail with the ctx's error, and leave no client blocked on the
// server.
func TestBlockingCutByCtxLeavesNoGoroutine(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := glideEngine(t, srv)
	bg := context.Background()
	const n = 20
	ctx, cancel := context.WithCancel(bg)
	fs := make([]interface {
		Await(context.Context) (engine.KeyValue, error)
	}, n)
	for i := range fs {
		fs[i] = eng.BLPop(ctx, 0, "never")
	}
	waitFor(t, "the pops blocked on the server", func() bool {
		info, err := srv.Do("INFO", "clients")
		s, _ := info.(string)
		return err == nil && strings.Contains(s, "blocked_clients:20\r")
	})
	cancel()
	for i, f := range fs {
		if _, err := f.Await(bg); !errors.Is(err, context.Canceled) {
			t.Fatalf("pop %d: %v, want context.Canceled", i, err)
		}
	}
	waitFor(t, "no goroutine left waiting in glide", func() bool { return glideWaiters() == 0 })
	waitFor(t, "no client left blocked", func() bool {
		info, err := srv.Do("INFO", "clients")
		s, _ := info.(string)
		return err == nil && strings.Contains(s, "blocked_clients:0\r")
	})
}

// waitFor waits up to 10 s for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A Tx, a Watch and a Dedicated call their ctx cuts while the server is
// stalled leave no goroutine in glide, after Close either (qa-AS AS1: one
// per call, as for blocking calls), and fail with their ctx's error.
func TestKeptStateCallsCutByCtxLeaveNoGoroutine(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := glideEngine(t, srv)
	bg := context.Background()
	// Warm connections (the calls below are cut on their way, not in a
	// dial, which glide cannot cancel), and a Dedicated one held.
	tx := eng.Tx()
	tx.Incr("k")
	if err := tx.Exec(bg); err != nil {
		t.Fatal(err)
	}
	if err := eng.Watch(bg, func(tx *engine.Tx) error { tx.Incr("k"); return nil }, "k"); err != nil {
		t.Fatal(err)
	}
	ready, paused, dedicated := make(chan error, 1), make(chan struct{}), make(chan error, 1)
	go func() {
		dedicated <- eng.Dedicated(bg, func(c *engine.DedicatedConn) error {
			_, err := c.Do(bg, "PING") // its connection made before the pause
			ready <- err
			if err != nil {
				return err
			}
			<-paused
			ctx, cancel := context.WithTimeout(bg, 300*time.Millisecond)
			defer cancel()
			_, err = c.Do(ctx, "INCR", "k")
			return err
		})
	}()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Resume() }()
	close(paused)
	// Each call with a ctx of its own, in flight on a warm connection
	// when its ctx ends (review-33b B4: the Watch had the Tx's, ended).
	cut := func(call func(context.Context) error) error {
		ctx, cancel := context.WithTimeout(bg, 300*time.Millisecond)
		defer cancel()
		return call(ctx)
	}
	errs := map[string]error{}
	errs["Tx"] = cut(func(ctx context.Context) error {
		tx := eng.Tx()
		tx.Incr("k")
		return tx.Exec(ctx)
	})
	errs["Watch"] = cut(func(ctx context.Context) error {
		return eng.Watch(ctx, func(tx *engine.Tx) error { tx.Incr("k"); return nil }, "k")
	})
	errs["Dedicated"] = <-dedicated
	for name, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s cut by its ctx: %v, want context.DeadlineExceeded", name, err)
		}
	}
	if err := eng.Close(); err != nil { // the server still stalled
		t.Fatal(err)
	}
	// At once: glide's request timeout would end them later.
	if n := glideWaiters(); n > 0 {
		t.Fatalf("%d goroutines left in glide after Close", n)
	}
}

// A Conn that keeps state, closed (as at the end of a call's ctx), fails
// what it is given next as unsent, so that the engine takes another one:
// it was closed as its call ended, and went back to the pool (review-33b
// B5). A plain Conn's says closed only.
func TestKeptStateConnClosedNotSent(t *testing.T) {
	srv := valkeytest.Start(t)
	for _, keeps := range []bool{true, false} {
		c, err := glide.Driver{}.Dial(context.Background(), drivers.Options{Addr: srv.Addr(), DialTimeout: 5 * time.Second, KeepsState: keeps})
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
		out := make([]drivers.Result, 1)
		c.Exec(context.Background(), []drivers.Command{{Args: []string{"PING"}}}, out)
		if !errors.Is(out[0].Err, drivers.ErrClosed) || errors.Is(out[0].Err, drivers.ErrNotSent) != keeps {
			t.Errorf("KeepsState %v: Exec after Close: %v; want ErrClosed, ErrNotSent %v", keeps, out[0].Err, keeps)
		}
	}
}
