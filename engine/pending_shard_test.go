package engine_test

// qa-BE BE3's stronger fix: a shard channel a subscribe nobody waited for
// (the Handler's, or one whose ctx ended) needed a new connection to a
// node that was down at that moment. It was reported (a Refused with a
// *ConnectError) and then forgotten; it must be kept and subscribed once
// the node is back (a Resubscribed with its ShardChannel), unless it is
// unsubscribed or the subscription closes meanwhile.

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// pendingCluster starts a cluster of 3 primaries without replicas whose
// nodes are not failed over (NodeTimeout 30 s: a killed primary stays
// the owner of its slots until it is back) and an engine on it.
func pendingCluster(t *testing.T) (*valkeytest.Cluster, *engine.Engine, func(n *valkeytest.ClusterNode, prefix string, skip int) string) {
	t.Helper()
	cl := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{ReplicasPerPrimary: -1, NodeTimeout: 30 * time.Second})
	eng, err := open(ctxT(t), t, config.DefaultConfig().WithAddrs(cl.Addrs()...).WithClusterMode(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	// chanOn returns the skip-th channel of prefix whose slot n owns.
	chanOn := func(n *valkeytest.ClusterNode, prefix string, skip int) string {
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
				if skip == 0 {
					return c
				}
				skip--
			}
		}
		t.Fatal("no channel")
		return ""
	}
	return cl, eng, chanOn
}

// handlerSSubscribeDown subscribes eng to shard channel chA with a
// Handler that records its events in rec and, on chA's message "go",
// SSubscribes chB from inside the Handler; it kills down (chB's owner),
// publishes "go" and returns the subscription (closed at the end of the
// test) and what the Handler's SSubscribe returned.
func handlerSSubscribeDown(t *testing.T, eng *engine.Engine, rec *qabeRec, chA, chB string, down *valkeytest.ClusterNode) (*engine.Subscription, error) {
	t.Helper()
	ctx := ctxT(t)
	ready := make(chan struct{})
	returned := make(chan error, 1)
	var sub *engine.Subscription
	h := func(ev engine.SubEvent) {
		rec.add(ev)
		if ev.Kind == engine.SubMessage && ev.Message.Channel == chA && ev.Message.Payload == "go" {
			<-ready
			select {
			case returned <- sub.SSubscribe(ctx, chB):
			default:
			}
		}
	}
	sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{ShardChannels: []string{chA}, Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	close(ready)
	if err := down.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.SPublish(ctx, chA, "go").Await(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-returned:
		return sub, err
	case <-time.After(5 * time.Second):
		t.Fatal("the Handler's SSubscribe did not run within 5s")
		return nil, nil
	}
}

// shardSub subscribes eng to shard channel ch, its events recorded in
// rec (closed at the end of the test), then kills the nodes down.
func shardSub(t *testing.T, eng *engine.Engine, ch string, down ...*valkeytest.ClusterNode) (*engine.Subscription, *qabeRec) {
	t.Helper()
	rec := &qabeRec{}
	sub, err := eng.SubscribeWith(ctxT(t), engine.SubscribeOptions{ShardChannels: []string{ch}, Handler: rec.add})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	for _, n := range down {
		if err := n.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	return sub, rec
}

// shardOnlyAllDown is the set-up of the tests of a shard-only
// subscription whose nodes are all down: pendingCluster and shardSub to
// one shard channel (prefix's) of the first primary, every primary killed.
func shardOnlyAllDown(t *testing.T, prefix string) (*valkeytest.Cluster, *engine.Engine, *engine.Subscription, *qabeRec, string) {
	t.Helper()
	cl, eng, chanOn := pendingCluster(t)
	chA := chanOn(cl.Primaries()[0], prefix, 0)
	sub, rec := shardSub(t, eng, chA, cl.Primaries()...)
	return cl, eng, sub, rec, chA
}

// shardSubscribers returns PUBSUB SHARDNUMSUB's count for ch on n.
func shardSubscribers(t *testing.T, n *valkeytest.ClusterNode, ch string) int64 {
	t.Helper()
	return pubsubCount(t, n, "SHARDNUMSUB", ch)
}

// pubsubCount returns PUBSUB sub's (NUMSUB, SHARDNUMSUB) count for ch on n.
func pubsubCount(t *testing.T, n *valkeytest.ClusterNode, sub, ch string) int64 {
	t.Helper()
	r, err := n.Do("PUBSUB", sub, ch)
	if err != nil {
		t.Fatal(err)
	}
	a, ok := r.([]any)
	if !ok || len(a) != 2 {
		t.Fatalf("PUBSUB %s %s: %#v", sub, ch, r)
	}
	c, ok := a[1].(int64)
	if !ok {
		t.Fatalf("PUBSUB %s %s: %#v", sub, ch, r)
	}
	return c
}

// eventsOf returns the events (not the messages) rec holds about ch (its
// ShardChannel) or about whole connections (ShardChannel "").
func eventsOf(rec *qabeRec, ch string) []engine.SubEvent {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []engine.SubEvent
	for _, ev := range rec.items {
		if ev.Kind != engine.SubMessage && (ev.ShardChannel == ch || ev.ShardChannel == "") {
			out = append(out, ev)
		}
	}
	return out
}

func hasEvent(rec *qabeRec, kind engine.SubEventKind, ch string) bool {
	for _, ev := range eventsOf(rec, ch) {
		if ev.Kind == kind && ev.ShardChannel == ch {
			return true
		}
	}
	return false
}

func describe(evs []engine.SubEvent) string {
	s := ""
	for _, ev := range evs {
		s += fmt.Sprintf("[%s %q %v] ", ev.Kind, ev.ShardChannel, ev.Err)
	}
	return s
}

// The Handler's SSubscribe of a channel on a node that is down: Refused
// (a *ConnectError), then, once the node is back, Resubscribed with the
// channel, and its messages are delivered.
func TestPendingShardHandlerSSubscribeNodeBack(t *testing.T) {
	cl, eng, chanOn := pendingCluster(t)
	ctx := ctxT(t)
	ps := cl.Primaries()
	chA, chB := chanOn(ps[0], "pha", 0), chanOn(ps[1], "phb", 0)
	rec := &qabeRec{}
	if _, err := handlerSSubscribeDown(t, eng, rec, chA, chB, ps[1]); err != nil {
		t.Fatalf("the Handler's SSubscribe(%s) returned %v, want nil (it does not wait)", chB, err)
	}
	csWait(t, 10*time.Second, "the Refused of "+chB, func() bool { return hasEvent(rec, engine.Refused, chB) })
	// The node stays down over several retries (MaxRetryBackoff 512 ms):
	// they fail in silence.
	time.Sleep(1500 * time.Millisecond) // the fault under test: the node is down
	if err := cl.RestartNode(ps[1]); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	csWait(t, 5*time.Second, "the Resubscribed of "+chB+" after the node is back", func() bool { return hasEvent(rec, engine.Resubscribed, chB) })
	t.Logf("%s subscribed %s after the node's restart", chB, time.Since(restarted).Round(time.Millisecond))
	n, err := eng.SPublish(ctx, chB, "x").Await(ctx)
	if err != nil || n != 1 {
		t.Fatalf("SPUBLISH %s after its Resubscribed: %d receivers, %v; want 1", chB, n, err)
	}
	csWait(t, 5*time.Second, "the message on "+chB, func() bool { return rec.count(engine.SubMessage, chB, "x") == 1 })

	evs := eventsOf(rec, chB)
	want := []engine.SubEventKind{engine.Subscribed, engine.Refused, engine.Resubscribed}
	ok := len(evs) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = evs[i].Kind == want[i]
	}
	if !ok {
		t.Fatalf("events %s, want Subscribed (%s's connection), Refused %s, Resubscribed %s", describe(evs), chA, chB, chB)
	}
	var ce *engine.ConnectError
	if !errors.As(evs[1].Err, &ce) || evs[1].Addr != ps[1].Addr() {
		t.Errorf("Refused: Err %v (want a *ConnectError), Addr %s (want %s)", evs[1].Err, evs[1].Addr, ps[1].Addr())
	}
	if evs[2].Addr != ps[1].Addr() || evs[2].Gap <= 0 {
		t.Errorf("Resubscribed: Addr %s (want %s), Gap %s (want > 0)", evs[2].Addr, ps[1].Addr(), evs[2].Gap)
	}
	// chA was never interrupted.
	if n, err := eng.SPublish(ctx, chA, "y").Await(ctx); err != nil || n != 1 {
		t.Fatalf("SPUBLISH %s: %d receivers, %v; want 1", chA, n, err)
	}
}

// An SSubscribe whose ctx ended before the dial failed is kept too; one
// unsubscribed while it waits for its node is not subscribed when the
// node is back; and a waited SSubscribe whose dial fails still fails
// fast, to its caller, and is not tried again.
func TestPendingShardUnsubscribeAndWaited(t *testing.T) {
	cl, eng, chanOn := pendingCluster(t)
	ctx := ctxT(t)
	ps := cl.Primaries()
	chA := chanOn(ps[0], "pua", 0)
	chB, chC, chW := chanOn(ps[1], "pub", 0), chanOn(ps[1], "pub", 1), chanOn(ps[1], "puw", 0)
	sub, rec := shardSub(t, eng, chA, ps[1])

	// Waited: fails fast with a *ConnectError.
	start := time.Now()
	err := sub.SSubscribe(ctx, chW)
	var ce *engine.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("a waited SSubscribe(%s) to a node that is down returned %v, want a *ConnectError", chW, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the waited SSubscribe took %s to fail", d)
	}

	// ctx ended before the dial failed: kept.
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if err := sub.SSubscribe(ended, chB, chC); !errors.Is(err, context.Canceled) {
		t.Fatalf("SSubscribe with an ended ctx returned %v, want context.Canceled", err)
	}
	csWait(t, 10*time.Second, "the Refused of "+chB+" and "+chC, func() bool {
		return hasEvent(rec, engine.Refused, chB) && hasEvent(rec, engine.Refused, chC)
	})
	if err := sub.SUnsubscribe(ctx, chB); err != nil {
		t.Fatalf("SUnsubscribe of a pending channel: %v", err)
	}
	if err := cl.RestartNode(ps[1]); err != nil {
		t.Fatal(err)
	}
	// chC, pending beside chB, is subscribed: the retry has run since.
	csWait(t, 5*time.Second, "the Resubscribed of "+chC+" after the node is back", func() bool { return hasEvent(rec, engine.Resubscribed, chC) })
	if n, err := eng.SPublish(ctx, chC, "x").Await(ctx); err != nil || n != 1 {
		t.Fatalf("SPUBLISH %s: %d receivers, %v; want 1", chC, n, err)
	}
	for _, ch := range []string{chB, chW} {
		if n := shardSubscribers(t, ps[1], ch); n != 0 {
			t.Errorf("%s has %d subscribers on its node, want 0 (unsubscribed while pending, or failed to a waiting caller)", ch, n)
		}
		if hasEvent(rec, engine.Resubscribed, ch) {
			t.Errorf("%s: a Resubscribed, want none; events %s", ch, describe(eventsOf(rec, ch)))
		}
	}
	if hasEvent(rec, engine.Refused, chW) {
		t.Errorf("%s: a Refused for a failure its caller saw; events %s", chW, describe(eventsOf(rec, chW)))
	}
	// A later subscribe of the unsubscribed channel works as any.
	if err := sub.SSubscribe(ctx, chB); err != nil {
		t.Fatal(err)
	}
	if n, err := eng.SPublish(ctx, chB, "z").Await(ctx); err != nil || n != 1 {
		t.Fatalf("SPUBLISH %s: %d receivers, %v; want 1", chB, n, err)
	}
}

// Close while a pending channel waits for its node: prompt, nothing left
// running, no connection left open.
func TestPendingShardCloseWhileRetrying(t *testing.T) {
	ignore := []goleak.Option{goleak.IgnoreCurrent(), goleak.IgnoreAnyFunction("github.com/vactor-io/vactor/valkeytest.startProcess.func1")}
	cl, eng, chanOn := pendingCluster(t)
	ctx := ctxT(t)
	ps := cl.Primaries()
	chA, chB := chanOn(ps[0], "pca", 0), chanOn(ps[1], "pcb", 0)
	rec := &qabeRec{}
	sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{ShardChannels: []string{chA}, Handler: rec.add})
	if err != nil {
		t.Fatal(err)
	}
	if err := ps[1].Kill(); err != nil {
		t.Fatal(err)
	}
	ended, cancel := context.WithCancel(ctx)
	cancel()
	_ = sub.SSubscribe(ended, chB)
	csWait(t, 10*time.Second, "the Refused of "+chB, func() bool { return hasEvent(rec, engine.Refused, chB) })
	start := time.Now()
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %s with a retry pending", d)
	}
	if st := eng.Stats(); st.Subscriptions != 0 || st.SubConns != 0 {
		t.Errorf("after Close: Subscriptions %d, SubConns %d, want 0", st.Subscriptions, st.SubConns)
	}
	eng.Close()
	noLeakWithin(t, 2*time.Second, ignore...)
	if err := cl.RestartNode(ps[1]); err != nil {
		t.Fatal(err)
	}
	if n := shardSubscribers(t, ps[1], chB); n != 0 {
		t.Errorf("%s has %d subscribers after Close, want 0", chB, n)
	}
}

// The first channels and patterns added to a shard-only subscription,
// nobody waiting, while no node answers: Refused (a *ConnectError), then
// subscribed once the nodes are back (their connection's Subscribed);
// a pattern unsubscribed meanwhile is not.
func TestPendingChannelsNodesBack(t *testing.T) {
	cl, _, sub, rec, chA := shardOnlyAllDown(t, "pna")
	ctx := ctxT(t)
	ps := cl.Primaries()
	csWait(t, 10*time.Second, "the Disconnected of "+chA+"'s connection", func() bool {
		return len(eventsOf(rec, "")) >= 2 // Subscribed, Disconnected
	})
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if err := sub.Subscribe(ended, "pn-ch"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe with an ended ctx: %v, want context.Canceled", err)
	}
	if err := sub.PSubscribe(ended, "pn-pat:*", "pn-gone:*"); !errors.Is(err, context.Canceled) {
		t.Fatalf("PSubscribe with an ended ctx: %v, want context.Canceled", err)
	}
	refused := func() int {
		n := 0
		for _, ev := range eventsOf(rec, "") {
			var ce *engine.ConnectError
			if ev.Kind == engine.Refused && errors.As(ev.Err, &ce) {
				n++
			}
		}
		return n
	}
	csWait(t, 15*time.Second, "the Refused of the channel and of the patterns", func() bool { return refused() >= 2 })
	if err := sub.PUnsubscribe(ctx, "pn-gone:*"); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps[:2] {
		if err := p.Restart(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.RestartNode(ps[2]); err != nil {
		t.Fatal(err)
	}
	// PUBLISH from one node reaches every node's subscribers, in order.
	publish := func(ch, msg string) {
		if _, err := ps[0].Do("PUBLISH", ch, msg); err != nil {
			t.Fatal(err)
		}
	}
	// The cluster answers again: within a few retries the connection is
	// made.
	csWait(t, 10*time.Second, "the pending channel and pattern subscribed", func() bool {
		publish("pn-ch", "x")
		publish("pn-pat:1", "x")
		return rec.count(engine.SubMessage, "pn-ch", "x") > 0 && rec.count(engine.SubMessage, "pn-pat:1", "x") > 0
	})
	publish("pn-gone:1", "x")
	publish("pn-ch", "end")
	csWait(t, 5*time.Second, "the message after the unsubscribed pattern's", func() bool { return rec.count(engine.SubMessage, "pn-ch", "end") == 1 })
	if n := rec.count(engine.SubMessage, "pn-gone:1", ""); n != 0 {
		t.Errorf("a pattern unsubscribed while pending was subscribed when the nodes came back (%d messages); events %s", n, describe(eventsOf(rec, "")))
	}
	subscribed := 0
	for _, ev := range eventsOf(rec, "") {
		if ev.Kind == engine.Subscribed {
			subscribed++
		}
	}
	if subscribed != 2 {
		t.Errorf("%d Subscribed, want 2 (%s's connection, then the channels'); events %s", subscribed, chA, describe(eventsOf(rec, "")))
	}
	t.Logf("events %s", describe(eventsOf(rec, "")))
}
