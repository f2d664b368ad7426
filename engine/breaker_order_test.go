package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/valkeytest"
)

// Order when a node's breaker opens (found by TestAuditChaos): the
// breaker's state change marks the node open (Node.SetOpen), then fails
// what its connection actors hold (ConnState.FailHeld). A command issued
// in between saw the node open and failed at once, while a command its
// goroutine had issued before, for the same key, was still queued and
// failed only afterwards: completion order broken (docs/api.md, Order).
// Here the node is marked open by hand, as in that window, while the
// first command waits in the mailbox behind a busy script.
func TestBreakerOpenKeepsOrder(t *testing.T) {
	ctx, e, conn := orderEngine(t)
	for _, via := range []string{"Set", "Pipeline"} {
		t.Run(via, func(t *testing.T) {
			busy := holdActor(ctx, t, e, conn)
			first := e.Set(ctx, "k", "1", 0) // queued behind the script
			conn.Node.SetOpen(true)          // opened; FailHeld not run yet
			var second error
			switch via {
			case "Set":
				second = e.Set(ctx, "k", "2", 0).Err(ctx)
			case "Pipeline":
				p := e.Pipeline()
				p.Set("k", "2", 0)
				second = p.Exec(ctx)
			}
			done := first.IsDone()
			conn.Node.SetOpen(false)
			if !errors.Is(second, ErrCircuitOpen) {
				t.Fatalf("second SET with the node open: %v, want ErrCircuitOpen", second)
			}
			if !done {
				t.Fatal("the second SET failed while the first, issued before it, was still queued: completion order broken")
			}
			if err := first.Err(ctx); !errors.Is(err, ErrCircuitOpen) {
				t.Fatalf("first SET: %v, want ErrCircuitOpen (it was not sent)", err)
			}
			if err := busy.Err(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// stuckMsg is a queued message whose Fail waits until release is closed.
type stuckMsg struct{ failing, release chan struct{} }

func (m *stuckMsg) Context() context.Context { return context.Background() }
func (m *stuckMsg) Fail(error)               { close(m.failing); <-m.release }

// The same order when the breaker's opening is still failing what it took
// from the mailbox (found by TestAuditChaos after the fix above): a
// command refused meanwhile found the mailbox empty and failed at once,
// before the queued command issued before it. Here the opening's FailHeld
// is held up by a queued message whose Fail blocks.
func TestBreakerOpenWaitsForConcurrentFail(t *testing.T) {
	ctx, e, conn := orderEngine(t)
	busy := holdActor(ctx, t, e, conn)
	stuck := &stuckMsg{failing: make(chan struct{}), release: make(chan struct{})}
	released := false
	release := func() {
		if !released {
			released = true
			close(stuck.release)
		}
	}
	defer release()
	conn.Mailbox.Post(stuck)
	first := e.Set(ctx, "k", "1", 0) // queued behind the script and stuck
	conn.Node.SetOpen(true)
	defer conn.Node.SetOpen(false)
	opening := make(chan struct{})
	go func() { // the breaker's opening
		defer close(opening)
		conn.FailHeld(conn.Node.OpenError())
	}()
	<-stuck.failing // it took stuck and first, and fails stuck
	firstDone := make(chan bool, 1)
	go func() {
		second := e.Set(ctx, "k", "2", 0)
		done := first.IsDone()
		if err := second.Err(ctx); !errors.Is(err, ErrCircuitOpen) {
			t.Errorf("second SET with the node open: %v, want ErrCircuitOpen", err)
		}
		firstDone <- done
	}()
	var done bool
	select {
	case done = <-firstDone: // refused at once (the bug), or after the opening
	case <-time.After(200 * time.Millisecond): // waiting for the opening, as it should
		release()
		done = <-firstDone
	}
	release()
	<-opening
	if !done {
		t.Fatal("the second SET failed while the first, issued before it, was still being failed by the breaker's opening: completion order broken")
	}
	if err := first.Err(ctx); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("first SET: %v, want ErrCircuitOpen", err)
	}
	if err := busy.Err(ctx); err != nil {
		t.Fatal(err)
	}
}

// orderEngine returns an engine on a server of its own (both closed when
// the test ends), a ctx of 20 s, and the connection actor that key "k"
// goes to.
func orderEngine(t *testing.T, hs ...hooks.Hook) (context.Context, *Engine, *actors.ConnState) {
	t.Helper()
	srv := valkeytest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	cfg := config.DefaultConfig().WithAddrs(srv.Addr())
	if len(hs) > 0 {
		cfg = cfg.WithHooks(hs...)
	}
	e, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return ctx, e, e.pick("k")
}
