package engine_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/vactor-io/vactor/futures"
)

// A command awaited with its own context registers nothing on it: a GET
// with a deadline allocates no more than one with context.Background
// (before: 3 more, context.AfterFunc's).
func TestLazyWatchAllocations(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	if err := eng.Set(ctx, "lw:k", "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	deadline, cancel := context.WithTimeout(bg, time.Minute)
	defer cancel()
	// AllocsPerRun counts the whole process's allocations: the goroutines
	// an earlier test left winding down add some to a round now and then
	// (CI once saw 3.0 against 2.0). They only ever add, so the fewest of
	// several interleaved rounds is the command's own count.
	plain, own := math.Inf(1), math.Inf(1)
	for range 5 {
		plain = min(plain, testing.AllocsPerRun(200, func() { _, _ = eng.Get(bg, "lw:k").Await(bg) }))
		own = min(own, testing.AllocsPerRun(200, func() { _, _ = eng.Get(deadline, "lw:k").Await(deadline) }))
	}
	t.Logf("allocations per GET: %.1f with context.Background, %.1f with a deadline awaited with it", plain, own)
	if own > plain {
		t.Errorf("a GET with a deadline, awaited with it, allocates %.1f, more than with context.Background (%.1f): it registered on its context", own, plain)
	}
}

// The end of a command's context fails its future at once, whoever waits
// and however: an Await with another context, a callback, an Await with
// the command's own context (the future is then failed when Await
// returns). Each GET here is queued behind a command that waits for ever
// on a stalled server, so only the context can end it.
func TestLazyWatchFailsAtOnce(t *testing.T) {
	eng, srv := newEngine(t)
	ctx := ctxT(t)
	if err := eng.Set(ctx, "lw:k", "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Resume() }()
	blocker := eng.Get(context.Background(), "lw:k")
	waitCond(t, 10*time.Second, "the blocking GET written to the stalled server", func() bool { return eng.Stats().InFlight > 0 })

	short := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		t.Cleanup(cancel)
		return c
	}
	within := func(what string, f *futures.Future[string], await context.Context) {
		t.Helper()
		start := time.Now()
		_, err := f.Await(await)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
			t.Errorf("%s: %v after %s, want context.DeadlineExceeded within 1s", what, err, time.Since(start).Round(time.Millisecond))
		}
	}

	// Awaited with a context that never ends.
	within("Await(Background)", eng.Get(short(), "lw:k"), context.Background())

	// A callback only.
	f := eng.Get(short(), "lw:k")
	got := make(chan error, 1)
	f.OnComplete(func(_ string, err error) { got <- err })
	select {
	case err := <-got:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("OnComplete: %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(time.Second):
		t.Error("OnComplete: no callback within 1s of the deadline")
	}

	// Awaited with its own context: failed by the time Await returns.
	own := short()
	g := eng.Get(own, "lw:k")
	within("Await(own ctx)", g, own)
	if _, err, ok := g.Result(); !ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("after Await(own ctx): Result %v, done %v; want done with context.DeadlineExceeded", err, ok)
	}

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	if v, err := blocker.Await(ctx); err != nil || v != "v" {
		t.Errorf("the blocking GET: %q, %v; want \"v\" once the server resumed", v, err)
	}
}
