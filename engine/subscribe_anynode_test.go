package engine_test

import (
	"slices"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/valkeytest"
)

// In cluster mode channels and patterns need no particular node (every
// node delivers every PUBLISH): when the node of their connection dies,
// the subscription resubscribes on another primary at once, and a new
// Subscribe works while slot 0's primary is down. Both waited for that
// primary's failover (the subscription lost every message of its 2.5-3 s,
// a new Subscribe failed with the dead node's "connection refused").
func TestClusterSubscribeAnyNode(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t)
	rec := &recHook{}
	cfg, _ := withLogCheck(t, config.DefaultConfig().WithAddrs(c.Addrs()[0]).WithClusterMode(true).WithHooks(rec))
	eng := engineOn(t, cfg)
	defer eng.Close()
	ctx := ctxT(t)
	sub, err := eng.Subscribe(ctx, "anynode")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ch := sub.Channel()
	first := subExpect(t, ch, engine.Subscribed)
	dead, err := c.NodeForSlot(0)
	if err != nil {
		t.Fatal(err)
	}
	if first.Addr != dead.Addr() {
		t.Fatalf("channels subscribed on %s, want slot 0's owner %s first", first.Addr, dead.Addr())
	}
	var others []string
	for _, p := range c.Primaries() {
		if p != dead {
			others = append(others, p.Addr())
		}
	}
	if err := c.KillPrimary(dead); err != nil {
		t.Fatal(err)
	}
	subExpect(t, ch, engine.Disconnected)
	back := subExpect(t, ch, engine.Resubscribed)
	if !slices.Contains(others, back.Addr) {
		t.Fatalf("resubscribed on %s, want one of the other primaries %v (not the dead node's replica after its failover)", back.Addr, others)
	}
	// A new Subscribe while slot 0's primary is down (its failover takes
	// seconds: the cluster's node timeout is 1 s, then an election).
	sub2, err := eng.PSubscribe(ctx, "anynode*")
	if err != nil {
		t.Fatalf("PSubscribe while slot 0's primary is down: %v", err)
	}
	defer sub2.Close()
	if ev := subExpect(t, sub2.Channel(), engine.Subscribed); !slices.Contains(others, ev.Addr) {
		t.Fatalf("PSubscribe on %s, want one of %v", ev.Addr, others)
	}
	// Messages reach both (PUBLISH goes by the channel's slot: it may
	// fail until that slot's owner answers; in cluster mode its reply
	// counts only the receiving node's subscribers).
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := eng.Publish(ctx, "anynode", "m").Await(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PUBLISH: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range []<-chan engine.SubEvent{ch, sub2.Channel()} {
		if ev := subExpect(t, c, engine.SubMessage); ev.Message.Payload != "m" {
			t.Fatalf("message %+v", ev)
		}
	}
	// The hooks tell a shard channels' connection from the channels and
	// patterns' one (hooks.Subscriber.Shards): two on one node looked
	// the same.
	live := c.Primaries()[0]
	if live == dead {
		live = c.Primaries()[1]
	}
	shardCh := keyOn(t, c, live)
	sub3, err := eng.SSubscribe(ctx, shardCh)
	if err != nil {
		t.Fatal(err)
	}
	defer sub3.Close()
	subExpect(t, sub3.Channel(), engine.Subscribed)
	if err := eng.Close(); err != nil { // delivers the hooks' events
		t.Fatal(err)
	}
	rec.with(func() {
		var plain, shards int
		for _, ev := range rec.subs {
			if ev.Kind != hooks.Subscribed {
				continue
			}
			if ev.Shards {
				shards++
			} else {
				plain++
			}
		}
		if plain != 2 || shards != 1 {
			t.Errorf("Subscribed events: %d of channels and patterns, %d of shard channels; want 2 and 1: %+v", plain, shards, rec.subs)
		}
	})
}

// A frozen node (SIGSTOP, a hung host) takes the TCP connection and never
// answers: a new Subscribe of channels or patterns waited out the read
// timeout (3 s) on slot 0's primary before it tried another. The next
// primary is dialled as well after 250 ms without an answer.
func TestClusterSubscribeFrozenNode(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t)
	cfg, _ := withLogCheck(t, config.DefaultConfig().WithAddrs(c.Addrs()[0]).WithClusterMode(true))
	eng := engineOn(t, cfg)
	defer eng.Close()
	ctx := ctxT(t)
	if err := eng.Ping(ctx); err != nil { // slot map loaded
		t.Fatal(err)
	}
	frozen, err := c.NodeForSlot(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := frozen.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = frozen.Resume() })
	start := time.Now()
	sub, err := eng.Subscribe(ctx, "frozen")
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Subscribe with slot 0's primary frozen: %v", err)
	}
	defer sub.Close()
	ev := subExpect(t, sub.Channel(), engine.Subscribed)
	if ev.Addr == frozen.Addr() {
		t.Fatalf("subscribed on the frozen node %s", ev.Addr)
	}
	// The bound for a failed node's replacement is 1 s: the
	// stagger is 250 ms, a live node answers in a millisecond.
	if took > time.Second {
		t.Fatalf("Subscribe took %v with slot 0's primary frozen, want < 1 s", took)
	}
	if err := frozen.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
}
