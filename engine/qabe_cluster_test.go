package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// A Handler's SSubscribe of a shard channel whose owner has no
// connection yet and cannot be reached at that moment (the node is
// restarting): the call returns nil (it does not wait), so the channel
// must end up subscribed once the node is back, or the failure must be
// reported; it must not vanish in silence.
func TestQABEClusterHandlerSSubscribeNodeDown(t *testing.T) {
	cl := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{ReplicasPerPrimary: -1, NodeTimeout: 30 * time.Second})
	ctx := ctxT(t)
	eng, err := open(ctx, t, config.DefaultConfig().WithAddrs(cl.Addrs()...).WithClusterMode(true))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ps := cl.Primaries()
	chanOn := func(n *valkeytest.ClusterNode, prefix string) string {
		for i := range 10000 {
			c := fmt.Sprintf("%s:%d", prefix, i)
			slot, err := cl.KeySlot(c)
			if err != nil {
				t.Fatal(err)
			}
			o, err := cl.NodeForSlot(slot)
			if err != nil {
				t.Fatal(err)
			}
			if o.Addr() == n.Addr() {
				return c
			}
		}
		t.Fatal("no channel")
		return ""
	}
	chA, chB := chanOn(ps[0], "hsa"), chanOn(ps[1], "hsb")
	rec := &qabeRec{}
	ready := make(chan struct{})
	var sub *engine.Subscription
	var mu sync.Mutex
	var calls []error
	h := func(ev engine.SubEvent) {
		rec.add(ev)
		if ev.Kind == engine.SubMessage && ev.Message.Channel == chA && ev.Message.Payload == "go" {
			<-ready
			err := sub.SSubscribe(ctx, chB)
			mu.Lock()
			calls = append(calls, err)
			mu.Unlock()
		}
	}
	sub, err = eng.SubscribeWith(ctx, engine.SubscribeOptions{ShardChannels: []string{chA}, Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	close(ready)
	if err := ps[1].Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.SPublish(ctx, chA, "go").Await(ctx); err != nil {
		t.Fatal(err)
	}
	csWait(t, 5*time.Second, "the Handler's SSubscribe", func() bool { mu.Lock(); defer mu.Unlock(); return len(calls) == 1 })
	mu.Lock()
	t.Logf("Handler's SSubscribe(%s) returned %v", chB, calls[0])
	returned := calls[0]
	mu.Unlock()
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
