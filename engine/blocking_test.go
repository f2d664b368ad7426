package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// A blocking command sent with Do waits on its own connection: the
// pipelined commands go on meanwhile, and it completes when its list gets
// an element.
func TestBlockingDoDoesNotHoldUpPipeline(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	pop := eng.Do(ctx, "BLPOP", "blk:list", "10")
	xread := eng.Do(ctx, "XREAD", "COUNT", "1", "BLOCK", "10000", "STREAMS", "blk:stream", "0-0")
	start := time.Now()
	fs := make([]*futures.Future[int64], 200)
	for i := range fs {
		fs[i] = eng.Incr(ctx, "blk:counter")
	}
	if _, err := futures.All(ctx, fs...); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("200 INCRs took %s while a BLPOP waited: the blocking command held up the pipeline", took)
	}
	if pop.IsDone() || xread.IsDone() {
		t.Fatal("a blocking command completed before anything was pushed")
	}
	if err := eng.RPush(ctx, "blk:list", "x").Err(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := pop.Await(ctx)
	if err != nil {
		t.Fatalf("BLPOP: %v", err)
	}
	if got, err := r.Strings(); err != nil || len(got) != 2 || got[0] != "blk:list" || got[1] != "x" {
		t.Fatalf("BLPOP = %q, %v; want [blk:list x]", got, err)
	}
	if _, err := eng.XAdd(ctx, "blk:stream", "f", "v").Await(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := xread.Await(ctx); err != nil || r.IsNil() {
		t.Fatalf("XREAD BLOCK = %v, %v; want the entry", r, err)
	}
	// A timeout on the server is a nil reply, not an error.
	r, err = eng.Do(ctx, "BRPOP", "blk:empty", "0.05").Await(ctx)
	if err != nil || !r.IsNil() {
		t.Fatalf("BRPOP timeout = %v, %v; want a nil reply", r, err)
	}
	// The caller's ctx ends a blocking call.
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := eng.Do(cctx, "BLPOP", "blk:empty", "0").Await(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("BLPOP with an expiring ctx: %v; want context.DeadlineExceeded", err)
	}
}

// Close ends blocking calls in progress and leaves no goroutine. A call
// blocked on the server fails with ErrOutcomeUnknown: the server may have
// popped an item for it in Close's last milliseconds (ErrClosed, which
// says a command never ran, lost such items unseen: qa-AC 1).
func TestBlockingDoClose(t *testing.T) {
	srv := valkeytest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	pops := make([]*futures.Future[engine.Reply], 5)
	for i := range pops {
		pops[i] = eng.Do(ctx, "BLPOP", "blk:never", "0")
	}
	waitCond(t, 10*time.Second, "the BLPOPs blocked on the server", func() bool {
		info, err := srv.Do("INFO", "clients")
		s, _ := info.(string)
		return err == nil && strings.Contains(s, fmt.Sprintf("blocked_clients:%d", len(pops)))
	})
	start := time.Now()
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Close took %s with blocking calls in progress", took)
	}
	for _, f := range pops {
		if _, err := f.Await(ctx); !errors.Is(err, engine.ErrOutcomeUnknown) || errors.Is(err, engine.ErrClosed) {
			t.Fatalf("BLPOP blocked on the server, cut by Close: %v; want ErrOutcomeUnknown", err)
		}
	}
	if _, err := eng.Do(ctx, "BLPOP", "blk:never", "0").Await(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("BLPOP after Close: %v; want ErrClosed", err)
	}
}

// A blocking command on a kept blocking connection to a server that froze
// fails once its own timeout and the read bound passed, with an outcome
// unknown, even when its ctx never ends (qa-BA BA1: a BLPOP with a 10 s
// timeout waited until the server woke; valkey-go bounds a blocking
// command's read by its ctx only). Default config: the read bound is 3 s.
func TestBlockingFrozenServerBounded(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		fire func(eng *engine.Engine) error
	}{
		{"BLPop", func(eng *engine.Engine) error {
			_, err := eng.BLPop(ctx, 500*time.Millisecond, "q").Await(ctx)
			return err
		}},
		{"Do XREAD BLOCK", func(eng *engine.Engine) error {
			_, err := eng.Do(ctx, "XREAD", "BLOCK", "500", "STREAMS", "s", "$").Await(ctx)
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			eng, srv := newEngine(t)
			// One blocking call first: its connection is kept for the next.
			if _, err := eng.BLPop(ctx, 10*time.Millisecond, "warm").Await(ctx); !errors.Is(err, engine.ErrNil) {
				t.Fatalf("warm BLPop: %v", err)
			}
			srv.Pause()
			defer srv.Resume()
			start := time.Now()
			done := make(chan error, 1)
			go func() { done <- c.fire(eng) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				srv.Resume()
				t.Fatalf("still pending 10 s after it was sent; after the server woke: %v", <-done)
			}
			took := time.Since(start)
			if !errors.Is(err, engine.ErrOutcomeUnknown) || !strings.Contains(err.Error(), "no reply within its timeout") {
				t.Errorf("against a frozen server: %v, want ErrOutcomeUnknown naming the bound", err)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%v reads as the caller's ctx ending", err)
			}
			// 0.5 s timeout + 3 s read bound.
			if took < 3*time.Second || took > 6*time.Second {
				t.Errorf("returned after %v, want about 3.5 s", took)
			}
		})
	}
}

// The synchronous Client's blocking calls cut by their ctx say what the
// engine's future says: a pop may have run (ErrOutcomeUnknown wrapping the
// ctx's error), never the bare ctx error that Await(ctx) could return
// first (qa-BA BA3: 32 of 100 such pops lost an element that way).
func TestClientBlockingCutByCtxSaysOutcomeUnknown(t *testing.T) {
	eng, _ := newEngine(t)
	c := eng.Sync()
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := c.Do(ctx, "BLPOP", "empty", "0")
		cancel()
		if !errors.Is(err, engine.ErrOutcomeUnknown) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("try %d: Client.Do BLPOP cut by its ctx: %v, want ErrOutcomeUnknown wrapping context.DeadlineExceeded", i, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, err := c.BRPop(ctx, 0, "empty"); !errors.Is(err, engine.ErrOutcomeUnknown) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Client.BRPop cut by its ctx: %v, want ErrOutcomeUnknown wrapping context.Canceled", err)
	}
}

// A blocking command that waits for a connection of the driver's blocking
// pool (all 1,024 taken by calls that block) is not failed by the bound of
// TestBlockingFrozenServerBounded: it was never sent, the server is live
// (review-35b R35b-3: ErrOutcomeUnknown "the server may be frozen" after
// 3.1 s). It runs once a connection is free.
func TestBlockingPoolWaitNotBounded(t *testing.T) {
	eng, srv := newEngine(t)
	ctx := context.Background()
	const n = 1024 // valkey-go's default BlockingPoolSize
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := eng.BLPop(ctx, 0, "busy").Await(ctx)
			errs <- err
		}()
	}
	waitCond(t, 20*time.Second, "every pool connection blocked on the server", func() bool {
		info, err := srv.Do("INFO", "clients")
		return err == nil && strings.Contains(fmt.Sprint(info), fmt.Sprintf("blocked_clients:%d\r", n))
	})
	// One connection is freed past the bound (0.1 s + the 3 s read
	// bound): the probe waits for it until then.
	free := time.AfterFunc(4*time.Second, func() { _, _ = srv.Do("RPUSH", "busy", "x") })
	defer free.Stop()
	start := time.Now()
	_, err := eng.BLPop(ctx, 100*time.Millisecond, "other").Await(ctx)
	if took := time.Since(start); !errors.Is(err, engine.ErrNil) || took < 4*time.Second {
		t.Errorf("BLPOP that waited for a pool connection: %v after %v, want ErrNil once one was free (4 s)", err, took.Round(time.Millisecond))
	}
	args := []string{"RPUSH", "busy"}
	for range n - 1 {
		args = append(args, "x")
	}
	if _, err := srv.Do(args...); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("blocked BLPOP: %v, want an element", err)
		}
	}
}
