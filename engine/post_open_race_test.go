package engine

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/mailbox"
)

// openingCtx is a context whose Err, once armed, first opens a node's
// breaker (its listener runs the opening's FailHeld): the mailbox asks a
// command's context for Err as it posts it, after the poster found the
// breaker closed and before the command is queued, the window in which a
// breaker opening can run in the engine.
type openingCtx struct {
	context.Context
	armed atomic.Bool
	open  func()
}

func (c *openingCtx) Err() error {
	if c.armed.Swap(false) {
		c.open()
	}
	return c.Context.Err()
}

// slowScript keeps the connection actor busy on one round trip for 1 s.
const slowScript = `local t = redis.call('TIME')
local s = t[1] * 1000000 + t[2]
repeat local n = redis.call('TIME') until n[1] * 1000000 + n[2] - s >= 1000000
return 1`

// A command posted just after its node's breaker opened (the post found
// it closed, the opening's FailHeld ran before the command was queued)
// fails with the open error at once, on every path that posts to a
// connection actor after checking the breaker: the engine's post (724fcc3
// re-checks there) and a standalone or sentinel Pipeline's group
// (postGroup.post, which 724fcc3 left out: its commands waited in the
// mailbox until the busy round trip ended here, until the next opening,
// OpenTimeout and a probe later, when the actor is down).
func TestPostRacingBreakerOpeningFails(t *testing.T) {
	for _, via := range []string{"post", "Pipeline"} {
		t.Run(via, func(t *testing.T) {
			ctx, e, conn := orderEngine(t)
			busy := submitTo(e, conn, ctx, e.b.Arbitrary("EVAL", slowScript, "0").Build(), decodeReply)
			for conn.Stats().InFlight == 0 {
				if busy.IsDone() {
					t.Fatalf("the busy script ended before it was seen in flight: %v", busy.Err(ctx))
				}
				time.Sleep(time.Millisecond)
			}
			octx := &openingCtx{Context: ctx, open: func() { conn.Node.Breaker.Open() }}
			r := newRequest(e, octx, e.b.Set().Key("k").Value("v").Build(), decodeOK)
			f := r.promise.Future()
			octx.armed.Store(true)
			switch via {
			case "post":
				post(e, conn, r)
			case "Pipeline":
				postGroup{mb: conn.Mailbox, conn: conn, msgs: []mailbox.Message{r}}.post()
			}
			if octx.armed.Load() {
				t.Fatal("the breaker was not opened in the window")
			}
			if !conn.Node.Open() {
				t.Fatal("the breaker is not open")
			}
			done := f.IsDone()
			running := !busy.IsDone()
			if !done && running {
				t.Fatal("the SET posted just after the breaker opened is queued, not failed: it waits for the busy round trip (or, the actor down, for the next opening)")
			}
			if err := f.Err(ctx); !errors.Is(err, ErrCircuitOpen) {
				t.Fatalf("SET: %v, want ErrCircuitOpen", err)
			}
			if err := busy.Err(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}
