package glide_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/drivers/glide"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// Replies holding empty strings and empty arrays, parsed by glide on
// goroutine stacks of every depth, do not abort the process. glide
// 2.5.3's Go binding leaves the pointer 0x1 of an empty buffer on the
// stack; with the runtime's invalidptr check on (the default), a stack
// that grows there aborts the process ("fatal error: invalid pointer
// found on stack"). TestMain runs the tests with GODEBUG=invalidptr=0;
// without it this test aborts the test binary.
func TestEmptyRepliesDoNotAbort(t *testing.T) {
	srv := valkeytest.Start(t)
	c, err := glide.Driver{}.Dial(context.Background(), drivers.Options{Addr: srv.Addr(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := ctxT(t)
	cmds := []drivers.Command{
		{Args: []string{"EVAL", "return {'', '', '', '', '', '', '', ''}", "0"}},
		{Args: []string{"EVAL", "return {{}, {}, {}, {}, {}, {}, {}, {}}", "0"}},
	}
	// Each call on a fresh goroutine, at another stack depth, so that
	// some stack grows while glide parses.
	for depth := range 400 {
		done := make(chan []drivers.Result)
		go func() {
			out := make([]drivers.Result, len(cmds))
			atDepth(depth, func() { c.Exec(ctx, cmds, out) })
			done <- out
		}()
		out := <-done
		for i, r := range out {
			if r.Err != nil || r.Value.Kind != drivers.KindArray || len(r.Value.Elems) != 8 {
				t.Fatalf("depth %d: command %d: %v, %v", depth, i, r.Value, r.Err)
			}
		}
	}
}

// atDepth calls f with about depth frames of 100 bytes more on the stack.
//
//go:noinline
func atDepth(depth int, f func()) {
	var pad [12]uint64
	pad[depth%12] = uint64(depth)
	if depth <= 0 {
		f()
		return
	}
	atDepth(depth-1, f)
	_ = pad
}

// With the runtime's invalidptr check on, the driver refuses to dial,
// and engine.New fails at once with an error that says what to set
// (errors.Is(err, glide.ErrInvalidPtrCheck)), instead of a process that
// aborts at random later.
func TestInvalidPtrCheckRefused(t *testing.T) {
	defer glide.SetInvalidPtrOn(func() bool { return true })()
	srv := valkeytest.Start(t)
	_, err := glide.Driver{}.Dial(context.Background(), drivers.Options{Addr: srv.Addr(), DialTimeout: 5 * time.Second})
	if !errors.Is(err, glide.ErrInvalidPtrCheck) {
		t.Fatalf("Dial: %v, want ErrInvalidPtrCheck", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(srv.Addr()).WithDriver(glide.Name))
	if err == nil {
		_ = eng.Close()
		t.Fatal("engine.New succeeded with the invalidptr check on")
	}
	var ce *engine.ConnectError
	if !errors.Is(err, glide.ErrInvalidPtrCheck) || !errors.As(err, &ce) {
		t.Fatalf("engine.New: %v (%T), want a *ConnectError wrapping ErrInvalidPtrCheck", err, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("engine.New took %s to fail", d)
	}
	t.Logf("engine.New: %v", err)
}
