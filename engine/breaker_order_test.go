package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
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
	srv := valkeytest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := New(ctx, config.DefaultConfig().WithAddrs(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	conn := e.pick("k")
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
