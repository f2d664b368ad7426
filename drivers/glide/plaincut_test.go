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

// glideCalls counts the goroutines inside a glide call or waiting for
// the reply of one: glide's own cleanup goroutines of calls whose ctx
// ended (see glideWaiters), and calls still under way.
func glideCalls() int {
	buf := make([]byte, 8<<20)
	n := 0
	for _, st := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(st, "valkey-glide/go/v2.(*baseClient).executeBatch") ||
			strings.Contains(st, "valkey-glide/go/v2.(*baseClient).executeCommandWithRoute") {
			n++
		}
	}
	return n
}

// A call on a plain Conn (the engine's own, a consumer's, a batch
// writer's) its ctx cuts fails at once with the ctx's error, and leaves
// no goroutine once the Conn is closed (qa-AZ AZ1: glide kept one for
// good, waiting for a reply its Close never sent, when the Conn was closed
// before the server answered: a consumer's read in flight as it
// stopped). A Conn left open serves the next call, and the cut call's
// round trip ends with its reply.
func TestPlainCallCutByCtxLeavesNoGoroutine(t *testing.T) {
	srv := valkeytest.Start(t)
	bg := context.Background()
	for _, closeIt := range []bool{true, false} {
		c, err := glide.Driver{}.Dial(bg, drivers.Options{Addr: srv.Addr(), DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		out := make([]drivers.Result, 1)
		c.Exec(bg, []drivers.Command{{Args: []string{"PING"}}}, out)
		if out[0].Err != nil {
			t.Fatal(out[0].Err)
		}
		if err := srv.Pause(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(bg, 200*time.Millisecond)
		start := time.Now()
		c.Exec(ctx, []drivers.Command{{Args: []string{"XAUTOCLAIM", "s", "g", "c", "0", "0-0"}}}, out)
		took := time.Since(start)
		cancel()
		if !errors.Is(out[0].Err, context.DeadlineExceeded) {
			t.Errorf("close %v: a call cut by its ctx: %v, want context.DeadlineExceeded", closeIt, out[0].Err)
		}
		if took > 2*time.Second {
			t.Errorf("close %v: a call cut by its ctx after 200 ms returned after %v", closeIt, took)
		}
		if closeIt {
			_ = c.Close() // as a consumer's session does once stopped, the server still stalled
		}
		if err := srv.Resume(); err != nil {
			t.Fatal(err)
		}
		if !closeIt {
			c.Exec(bg, []drivers.Command{{Args: []string{"PING"}}}, out)
			if out[0].Err != nil || out[0].Value.Str != "PONG" {
				t.Errorf("a PING after a cut call on the Conn left open: %+v", out[0])
			}
			_ = c.Close()
		}
		waitFor(t, "no goroutine left in glide's calls", func() bool { return glideCalls() == 0 })
	}
}

// A consumer stopped while its non-blocking read (the pending entries'
// XREADGROUP without BLOCK) is in flight, on a stalled server, stops at
// once and leaves no goroutine in glide (qa-AZ AZ1: one for good per
// such stop, from the churn of starting and stopping consumers).
func TestConsumerStoppedDuringReadLeavesNoGoroutine(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := glideEngine(t, srv)
	bg := context.Background()
	// An entry pending for the consumer: its session's first read
	// (readPending) hands it to the handler, which stalls the server and
	// fails it, so that the next read of the pending list goes out to a
	// stalled server.
	for _, cmd := range [][]string{
		{"XADD", "s", "*", "f", "v"},
		{"XGROUP", "CREATE", "s", "g", "0"},
		{"XREADGROUP", "GROUP", "g", "c", "COUNT", "10", "STREAMS", "s", ">"},
	} {
		if _, err := eng.Do(bg, cmd[0], cmd[1:]...).Await(bg); err != nil {
			t.Fatal(cmd, err)
		}
	}
	handled := make(chan struct{})
	first := true
	cons, err := eng.Consume(bg, "s", "g", "c", func(context.Context, engine.XEntry) error {
		if first {
			first = false
			if err := srv.Pause(); err != nil {
				t.Error(err)
			}
			close(handled)
		}
		return errors.New("failed, so the entry stays pending")
	}, engine.ConsumeOptions{ClaimInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Resume() }()
	select {
	case <-handled:
	case <-time.After(10 * time.Second):
		t.Fatal("the pending entry was not handed to the handler")
	}
	time.Sleep(100 * time.Millisecond) // the next read in flight
	start := time.Now()
	if err := cons.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Consumer.Close took %v", took)
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "no goroutine left in glide's calls", func() bool { return glideCalls() == 0 })
}
