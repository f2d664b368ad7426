package glide_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/drivers/glide"
	"github.com/vactor-io/vactor/valkeytest"
)

// A dial of a connection that keeps state (a Tx's, a Watch's, a
// Dedicated's) whose ctx ends while its CLIENT ID is in flight fails at
// once with the ctx's error and leaves no goroutine in glide (qa-AZ AZ2:
// glide kept one for good, as the failed dial closed the client); one
// whose server does not answer CLIENT ID fails within DialTimeout (it
// waited for glide's request timeout, 10 s by default).
func TestDialCutDuringClientIDLeavesNoGoroutine(t *testing.T) {
	srv := valkeytest.Start(t)
	bg := context.Background()
	for _, byCtx := range []bool{true, false} {
		restore := glide.OnDialClientID(func() {
			if err := srv.Pause(); err != nil {
				t.Error(err)
			}
		})
		ctx, cancel := bg, context.CancelFunc(func() {})
		dialTimeout := 5 * time.Second
		want := context.DeadlineExceeded
		if byCtx {
			ctx, cancel = context.WithTimeout(bg, 300*time.Millisecond)
		} else {
			dialTimeout = 300 * time.Millisecond
		}
		start := time.Now()
		c, err := glide.Driver{}.Dial(ctx, drivers.Options{Addr: srv.Addr(), DialTimeout: dialTimeout, KeepsState: true})
		took := time.Since(start)
		cancel()
		restore()
		if rerr := srv.Resume(); rerr != nil {
			t.Fatal(rerr)
		}
		if err == nil {
			_ = c.Close()
			t.Fatalf("ctx ends %v: the dial succeeded", byCtx)
		}
		if !errors.Is(err, want) {
			t.Errorf("ctx ends %v: dial: %v, want %v", byCtx, err, want)
		}
		if took > 2*time.Second {
			t.Errorf("ctx ends %v: the dial, cut after 300 ms, returned after %v", byCtx, took)
		}
		waitFor(t, "no goroutine left in glide's calls", func() bool { return glideCalls() == 0 })
	}
}
