package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/valkeytest"
)

// assisted sums the batches the engine's connection actors ran on an
// awaiting caller's goroutine.
func assisted(e *Engine) uint64 {
	var n uint64
	for _, c := range e.Stats().Conns {
		n += c.Mailbox.Assisted
	}
	return n
}

// defaultEngine starts a server and an engine with the default config.
func defaultEngine(t *testing.T) (*valkeytest.Server, *Engine) {
	t.Helper()
	srv := valkeytest.Start(t)
	e, err := New(context.Background(), config.DefaultConfig().WithAddrs(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return srv, e
}

// A command with a context that never ends, awaited at once by the only
// caller, is sent by that caller: the connection actor's batch runs on
// its goroutine (no goroutine started, no hand-off back), and every reply
// is the right one.
func TestAwaitRunsIdleActorsBatch(t *testing.T) {
	// What is asserted here is the assist, not the scheduler's timing:
	// with the default idle spins a busy machine often has the caller post
	// its next command while the actor still spins (then the actor runs
	// it), and under the race detector the caller may miss the 20 µs claim
	// delay (then the timer dispatches the actor): 0-49 of 400 were
	// assisted in 3 of 20 runs, 0 in most runs beside two CPU hogs. No
	// spin and a long claim delay leave the actor idle after each batch.
	tuneMailbox = func(o *mailbox.Options) { o.IdleSpins, o.ClaimDelay = -1, time.Second }
	t.Cleanup(func() { tuneMailbox = nil })
	_, e := defaultEngine(t)
	ctx := context.Background()
	before := assisted(e)
	for i := range 200 {
		k := fmt.Sprintf("claim:%d", i)
		if err := e.Set(ctx, k, k, 0).Err(ctx); err != nil {
			t.Fatal(err)
		}
		if v, err := e.Get(ctx, k).Await(ctx); err != nil || v != k {
			t.Fatalf("GET %s = %q, %v", k, v, err)
		}
	}
	// The actor's goroutine may still be running (its idle spin) when the
	// next command comes, so not every batch is assisted; most are.
	if n := assisted(e) - before; n < 100 {
		t.Fatalf("%d of 400 sequential commands' batches ran on the awaiting caller, want most", n)
	}
}

// A command claimed for an awaiting caller that never comes still goes
// out: not awaited at all, or waited for only through a callback or an
// Await whose context can end.
func TestClaimedCommandsGoOutUnawaited(t *testing.T) {
	srv, e := defaultEngine(t)
	bg := context.Background()
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()

	// Each command below is fired right after an assisted round trip,
	// which leaves the actor idle: it is claimed for an Await that never
	// comes.
	idle := func() {
		t.Helper()
		for n := assisted(e); assisted(e) == n; {
			if err := e.Set(bg, "claim:warm", "v", 0).Err(bg); err != nil {
				t.Fatal(err)
			}
			if ctx.Err() != nil {
				t.Fatal("no command was assisted")
			}
		}
	}

	// Fired and never awaited: the write reaches the server (after the
	// mailbox's ClaimDelay).
	idle()
	e.Set(bg, "claim:fired", "v", 0)
	for {
		v, err := srv.Do("GET", "claim:fired")
		if err == nil && v == "v" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("a SET fired and not awaited never reached the server: %v", err)
		}
		time.Sleep(time.Millisecond)
	}

	// Waited for through a callback only (at once, not after ClaimDelay).
	idle()
	done := make(chan error, 1)
	e.Get(bg, "claim:fired").OnComplete(func(v string, err error) {
		if err == nil && v != "v" {
			err = fmt.Errorf("GET = %q, want v", v)
		}
		done <- err
	})
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("a GET waited for through OnComplete never completed")
	}

	// Awaited with a context that can end (it does not assist).
	idle()
	if v, err := e.Get(bg, "claim:fired").Await(ctx); err != nil || v != "v" {
		t.Fatalf("GET awaited with a deadline = %q, %v", v, err)
	}
}
