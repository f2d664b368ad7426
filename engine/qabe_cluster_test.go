package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
)

// A Handler's SSubscribe of a shard channel whose owner has no
// connection yet and cannot be reached at that moment (the node is
// restarting): the call returns nil (it does not wait), so the channel
// must end up subscribed once the node is back, or the failure must be
// reported; it must not vanish in silence.
func TestQABEClusterHandlerSSubscribeNodeDown(t *testing.T) {
	cl, eng, chanOn := pendingCluster(t)
	ctx := ctxT(t)
	ps := cl.Primaries()
	chA, chB := chanOn(ps[0], "hsa", 0), chanOn(ps[1], "hsb", 0)
	rec := &qabeRec{}
	_, returned := handlerSSubscribeDown(t, eng, rec, chA, chB, ps[1])
	t.Logf("Handler's SSubscribe(%s) returned %v", chB, returned)
	if returned != nil {
		return // reported to the Handler: nothing lost in silence
	}
	time.Sleep(time.Second) // the node stays down a while: the fault under test
	if err := cl.RestartNode(ps[1]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_, _ = eng.SPublish(pctx, chB, "x").Await(pctx)
		cancel()
		if rec.count(engine.SubMessage, chB, "x") > 0 {
			t.Logf("subscribed once the node was back; events %s", rec.events())
			return
		}
		rec.mu.Lock()
		for _, ev := range rec.items {
			if ev.Kind != engine.SubMessage && ev.Kind != engine.Subscribed {
				t.Logf("reported: %s %s %v", ev.Kind, ev.ShardChannel, ev.Err)
				var ce *engine.ConnectError
				if ev.Kind != engine.Refused || ev.ShardChannel != chB || !errors.As(ev.Err, &ce) {
					t.Errorf("got %s (ShardChannel %q, Err %v), want a Refused of %s with a *ConnectError", ev.Kind, ev.ShardChannel, ev.Err, chB)
				}
				rec.mu.Unlock()
				return
			}
		}
		rec.mu.Unlock()
		time.Sleep(100 * time.Millisecond) // polling SPUBLISH
	}
	t.Fatalf("%s: the Handler's SSubscribe returned nil, the node is back for 10s, and the channel is neither subscribed nor reported; events %s", chB, rec.events())
}
