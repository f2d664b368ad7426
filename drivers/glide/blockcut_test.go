package glide_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// glideWaiters counts the goroutines glide leaves waiting for the reply
// of a call whose ctx ended (its executeBatch's cleanup goroutine).
func glideWaiters() int {
	buf := make([]byte, 8<<20)
	n := 0
	for _, st := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(st, "executeBatch.func") && strings.Contains(st, "chan receive") {
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
