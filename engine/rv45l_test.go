package engine_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// Every future the engine returned is complete when Close returns (see
// Engine.Close), those of the typed commands the engine derives from
// another command's future included: LMove, SetNX with a ttl, BLPop, BRPop and BLMove. They were
// completed by a futures callback (futures.Then), on the callback
// goroutines, which Close never waits for: behind callbacks that block
// (which OnComplete allows) they were still pending after Close returned
// (and, Close or not, completed about a millisecond per blocked callback
// late, where a Get's future was not delayed at all).
func TestTypedFuturesCompleteByClose(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	// Callbacks that block until the checks below are done: each holds a
	// callback goroutine, and the callbacks queued behind them wait about
	// a millisecond per blocked one (futures.OnComplete).
	release := make(chan struct{})
	defer close(release)
	const blocked = 1000
	for range blocked {
		eng.Get(ctx, "rv45l:none").OnComplete(func(string, error) { <-release })
	}
	if err := eng.RPush(ctx, "rv45l:src", "a").Err(ctx); err != nil {
		t.Fatal(err)
	}
	type check struct {
		name string
		f    interface{ IsDone() bool }
	}
	lmove := eng.LMove(ctx, "rv45l:src", "rv45l:dst", engine.Left, engine.Right)
	setnx := eng.SetNX(ctx, "rv45l:nx", "v", time.Minute)
	checks := []check{
		{"LMove", lmove},
		{"SetNX with a ttl", setnx},
		{"BLPop", eng.BLPop(ctx, 10*time.Millisecond, "rv45l:empty")},
		{"BLMove", eng.BLMove(ctx, "rv45l:empty", "rv45l:dst", engine.Left, engine.Right, 10*time.Millisecond)},
	}
	if err := eng.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, c := range checks {
		if !c.f.IsDone() {
			t.Errorf("%s: its future is pending after Close returned", c.name)
		}
	}
	// Written before Close, they ran; still queued, Close failed them
	// with ErrClosed (it fails what is queued, drains what is written):
	// either way with their own outcome.
	if v, err, _ := lmove.Result(); !(v == "a" && err == nil) && !errors.Is(err, engine.ErrClosed) {
		t.Errorf("LMove: %q, %v; want \"a\" or ErrClosed", v, err)
	}
	if set, err, _ := setnx.Result(); !(set && err == nil) && !errors.Is(err, engine.ErrClosed) {
		t.Errorf("SetNX: %v, %v; want true or ErrClosed", set, err)
	}
}

// LMove and SetNX with a ttl, no longer sent through Do, are routed as Do
// routed them in cluster mode: by their key, LMove's keys of one slot
// only (ErrCrossSlot, unsent, otherwise).
func TestTypedFuturesCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	for i := range 12 {
		src, dst := fmt.Sprintf("{rv45l:%d}:src", i), fmt.Sprintf("{rv45l:%d}:dst", i) // spread over the nodes
		if err := eng.RPush(ctx, src, "a").Err(ctx); err != nil {
			t.Fatal(err)
		}
		if v, err := eng.LMove(ctx, src, dst, engine.Left, engine.Right).Await(ctx); err != nil || v != "a" {
			t.Fatalf("LMove %s = %q, %v", src, v, err)
		}
		if _, err := eng.LMove(ctx, src, dst, engine.Left, engine.Right).Await(ctx); !errors.Is(err, engine.ErrNil) {
			t.Fatalf("LMove of an empty list: %v, want ErrNil", err)
		}
		if set, err := eng.SetNX(ctx, src+"nx", "v", time.Minute).Await(ctx); err != nil || !set {
			t.Fatalf("SetNX %s = %v, %v", src, set, err)
		}
		if set, err := eng.SetNX(ctx, src+"nx", "v", time.Minute).Await(ctx); err != nil || set {
			t.Fatalf("SetNX again = %v, %v; want false", set, err)
		}
	}
	if _, err := eng.LMove(ctx, "rv45l:a", "rv45l:b", engine.Left, engine.Right).Await(ctx); !errors.Is(err, engine.ErrCrossSlot) {
		t.Fatalf("cross-slot LMove: %v, want ErrCrossSlot", err)
	}
}
