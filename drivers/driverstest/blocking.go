package driverstest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/valkeytest"
)

// blockingCmd is a command flagged Blocking.
func blockingCmd(a ...string) []drivers.Command {
	return []drivers.Command{{Args: a, Flags: drivers.Blocking}}
}

// blocking: a blocking command waits on a connection of its own (the Conn
// serves pipelines meanwhile), is not bounded by ReadTimeout, and ends
// with its reply, its ctx or Close.
func (s *suite) blocking(t *testing.T, srv *valkeytest.Server, l level) {
	t.Run("Reply", func(t *testing.T) {
		c := s.dial(t, s.options(srv))
		x := l.bind(t, c)
		var r []drivers.Result
		done := make(chan struct{})
		go func() {
			defer close(done)
			r = x.exec(context.Background(), blockingCmd("BLPOP", "block:l", "0"))
		}()
		s.awaitTrue(t, "BLPOP blocked", func() bool { return running(srv, "blpop") })
		// The Conn serves pipelines while the BLPOP waits: nothing pushes
		// before this PING returns.
		within(t, s.o.Timeout, "PING while a BLPOP blocks", func() {
			if rs := do(t, s.ctx(t), x, args("PING")); rs[0].Value.Str != "PONG" {
				t.Errorf("PING while a BLPOP blocks: %v", rs[0].Value)
			}
		})
		if _, err := srv.Do("LPUSH", "block:l", "v"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(s.o.Timeout):
			t.Fatal("BLPOP did not return after LPUSH")
		}
		if r[0].Err != nil || r[0].Value.Kind != drivers.KindArray || len(r[0].Value.Elems) != 2 || r[0].Value.Elems[1].Str != "v" {
			t.Fatalf("BLPOP: %s", describe(r[0]))
		}
	})
	t.Run("NotBoundedByReadTimeout", func(t *testing.T) {
		o := s.options(srv)
		o.ReadTimeout, o.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond
		x := l.bind(t, s.dial(t, o))
		start := time.Now()
		r := x.exec(s.ctx(t), blockingCmd("BLPOP", "block:none", "1"))
		if r[0].Err != nil || r[0].Value.Kind != drivers.KindNull {
			t.Fatalf("BLPOP with a 1 s timeout and a ReadTimeout of 300ms: %s after %s, want a nil reply", describe(r[0]), time.Since(start))
		}
	})
	t.Run("Ctx", func(t *testing.T) {
		x := l.bind(t, s.dial(t, s.options(srv)))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var r []drivers.Result
		done := make(chan struct{})
		go func() {
			defer close(done)
			r = x.exec(ctx, blockingCmd("BLPOP", "block:ctx", "0"))
		}()
		s.awaitTrue(t, "BLPOP blocked", func() bool { return running(srv, "blpop") })
		cancel()
		select {
		case <-done:
		case <-time.After(s.o.Timeout):
			t.Fatal("BLPOP did not return after its ctx was cancelled")
		}
		transportError(t, x, "BLPOP whose ctx was cancelled", r[0], context.Canceled)
	})
	t.Run("Close", func(t *testing.T) {
		c := s.dial(t, s.options(srv))
		x := l.bind(t, c)
		var r []drivers.Result
		done := make(chan struct{})
		go func() {
			defer close(done)
			r = x.exec(context.Background(), blockingCmd("BLPOP", "block:close", "0"))
		}()
		s.awaitTrue(t, "BLPOP blocked", func() bool { return running(srv, "blpop") })
		within(t, s.o.Timeout, "Close during a BLPOP", func() { _ = c.Close() })
		select {
		case <-done:
		case <-time.After(s.o.Timeout):
			t.Fatal("BLPOP did not return after Close")
		}
		transportError(t, x, "BLPOP ended by Close", r[0], drivers.ErrClosed)
		if r[0].Err != nil && errors.Is(r[0].Err, context.Canceled) {
			t.Errorf("BLPOP ended by Close failed with %v: the caller's ctx was not cancelled", r[0].Err)
		}
	})
}
