package engine_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// shardChannelOn returns a shard channel (prefix:N) whose slot node
// serves, none of whose slots is in avoid.
func shardChannelOn(t *testing.T, cl *valkeytest.Cluster, node *valkeytest.ClusterNode, prefix string, avoid ...int) (string, int) {
	t.Helper()
	ranges, err := cl.SlotsOf(node)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10000 {
		c := fmt.Sprintf("%s:%d", prefix, i)
		slot, err := cl.KeySlot(c)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(avoid, slot) && slices.ContainsFunc(ranges, func(r [2]int) bool { return r[0] <= slot && slot <= r[1] }) {
			return c, slot
		}
	}
	t.Fatalf("no shard channel on %s", node.Addr())
	return "", 0
}

// movedCluster starts a cluster and two engines on it in cluster mode
// with the default config (their config too): the subscriber and the
// publisher of the moved-channel tests.
func movedCluster(t *testing.T) (*valkeytest.Cluster, *engine.Engine, *engine.Engine, config.Config) {
	t.Helper()
	cl := valkeytest.StartClusterT(t)
	cfg := config.DefaultConfig().WithAddrs(cl.Addrs()...).WithClusterMode(true)
	eng := engineOn(t, cfg)
	t.Cleanup(func() { _ = eng.Close() })
	pub := engineOn(t, cfg)
	t.Cleanup(func() { _ = pub.Close() })
	return cl, eng, pub, cfg
}

// A shard channel whose slot moves to a node that refuses it (an ACL that
// differs between nodes: the new owner answers its SSUBSCRIBE NOPERM)
// reports the refusal, a Refused event naming the channel and the node,
// once however many times it repeats, and keeps being tried: when the new
// owner allows it, a Resubscribed follows and its messages arrive. The
// new owner's connection holds another channel, so the refusal comes on
// a connection that stays subscribed. A channel unsubscribed while it is
// being tried is tried no more (review-36 R36-3: the refusal was dropped,
// and the channel, after its Disconnected, was neither subscribed nor
// reported again).
func TestSubscribeMovedChannelRefused(t *testing.T) {
	cl, eng, pub, cfg := movedCluster(t)
	ctx := ctxT(t)

	from, to := cl.Primaries()[0], cl.Primaries()[1]
	moving, slot := shardChannelOn(t, cl, from, "mr")
	staying, _ := shardChannelOn(t, cl, to, "ms")
	leaving, slot2 := shardChannelOn(t, cl, from, "ml", slot)

	sub := ssubscribeTwoNodes(t, eng, moving, staying, leaving)

	// The new owner allows only the channel it serves already.
	restrictChannels(t, to, staying)
	if err := cl.MigrateSlots(from, to, []int{slot, slot2}); err != nil {
		t.Fatalf("MigrateSlots: %v", err)
	}

	// Each moved channel: a Disconnected from its old owner, then one
	// Refused from the new.
	disc, refused := map[string]int{}, map[string]int{}
	for len(disc) < 2 || len(refused) < 2 {
		ev := subNext(t, sub.Channel(), 10*time.Second)
		switch ev.Kind {
		case engine.Disconnected:
			if ev.Addr != from.Addr() || !errors.Is(ev.Err, engine.ErrSlotMoved) {
				t.Fatalf("Disconnected %+v; want ErrSlotMoved from %s", ev, from.Addr())
			}
			disc[ev.ShardChannel]++
		case engine.Refused:
			var se *engine.ServerError
			if !errors.As(ev.Err, &se) || se.Prefix != "NOPERM" || ev.Addr != to.Addr() {
				t.Fatalf("Refused: err %v (%T) addr %q; want a NOPERM *ServerError from %s", ev.Err, ev.Err, ev.Addr, to.Addr())
			}
			refused[ev.ShardChannel]++
		default:
			t.Fatalf("unexpected event %+v", ev)
		}
	}
	for _, c := range []string{moving, leaving} {
		if disc[c] != 1 || refused[c] != 1 {
			t.Fatalf("%s: %d Disconnected, %d Refused; want 1 each (all: %v, %v)", c, disc[c], refused[c], disc, refused)
		}
	}

	// Both are tried again: three more refused SSUBSCRIBEs, which add no
	// event (the same refusal).
	base := cmdStat(t, to.Server, "ssubscribe", "rejected_calls")
	subWaitFor(t, 15*time.Second, "three more refused SSUBSCRIBEs", func() bool {
		return cmdStat(t, to.Server, "ssubscribe", "rejected_calls") >= base+3
	})
	select {
	case ev := <-sub.Channel():
		t.Fatalf("unexpected event while refused: %+v", ev)
	default:
	}

	// One is unsubscribed: it is tried no more. Then the new owner allows
	// every channel: the other is subscribed there.
	if err := sub.SUnsubscribe(ctx, leaving); err != nil {
		t.Fatalf("SUnsubscribe: %v", err)
	}
	if _, err := to.Do("ACL", "SETUSER", "default", "allchannels"); err != nil {
		t.Fatal(err)
	}
	ev := subExpect(t, sub.Channel(), engine.Resubscribed)
	if ev.ShardChannel != moving || ev.Addr != to.Addr() {
		t.Fatalf("Resubscribed %+v; want %s on %s", ev, moving, to.Addr())
	}
	if n, err := pub.SPublish(ctx, moving, "hello").Await(ctx); err != nil || n != 1 {
		t.Fatalf("SPUBLISH %s = %d, %v; want 1", moving, n, err)
	}
	if ev := subExpect(t, sub.Channel(), engine.SubMessage); ev.Message.Channel != moving || ev.Message.Payload != "hello" {
		t.Fatalf("message %+v; want hello on %s", ev.Message, moving)
	}
	// The unsubscribed one stays unsubscribed: no SSUBSCRIBE of it for
	// twice the longest backoff (none to wait for: nothing is sent).
	calls := cmdStat(t, to.Server, "ssubscribe", "calls")
	time.Sleep(2 * cfg.MaxRetryBackoff)
	if n := cmdStat(t, to.Server, "ssubscribe", "calls"); n != calls {
		t.Fatalf("%d SSUBSCRIBEs after %s was unsubscribed, want 0", n-calls, leaving)
	}
	if n, err := pub.SPublish(ctx, leaving, "gone").Await(ctx); err != nil || n != 0 {
		t.Fatalf("SPUBLISH %s = %d, %v; want 0", leaving, n, err)
	}
	if st := eng.Stats(); st.SubMoved != 1 {
		t.Fatalf("Stats.SubMoved = %d, want 1", st.SubMoved)
	}
}

// A shard channels' connection that is down while their slots move
// follows them to their new owner (it dials the node of one of its
// channels); when that node refuses one of them (its own ACL), that one
// leaves the set, is reported Refused and tried on its own, and the rest
// stay subscribed there. Before, the refusal dropped the whole connection
// and the set cycled Resubscribed/Disconnected at the backoff for ever,
// none of it delivered (found by review-37's test, which hit it when the
// connection picked a moved channel to dial by).
func TestSubscribeShardSetFollowsSlotsToRefusingNode(t *testing.T) {
	cl, eng, pub, _ := movedCluster(t)
	p0, p1 := cl.Primaries()[0], cl.Primaries()[1]
	x, sx := shardChannelOn(t, cl, p0, "fx")
	y, sy := shardChannelOn(t, cl, p0, "fy", sx)
	staying, _ := shardChannelOn(t, cl, p1, "fs")
	sub := ssubscribeTwoNodes(t, eng, x, y, staying)

	// p0 refuses everything and drops its subscribers: x's and y's
	// connection retries; meanwhile their slots move to p1, which allows x
	// (and the channel it served already) and refuses y.
	// Each is refused (once per distinct text: p1's refusal of y later
	// repeats p0's) and tried on its own.
	restrictAndReconnect(t, sub, p0, []string{x, y})
	migrateToRestricted(t, cl, p0, p1, []int{sx, sy}, staying, x)

	// x is delivered: the set does not cycle on y's refusal.
	waitDelivered(t, sub, pub, x)
	// Once p1 allows y, y is subscribed there too.
	if _, err := p1.Do("ACL", "SETUSER", "default", "allchannels"); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, sub, pub, y)
}

// ssubscribeTwoNodes subscribes the shard channels names, which two
// nodes serve, and waits for each connection's Subscribed; the
// subscription is closed when the test ends.
func ssubscribeTwoNodes(t *testing.T, eng *engine.Engine, names ...string) *engine.Subscription {
	t.Helper()
	ctx := ctxT(t)
	sub, err := eng.SSubscribe(ctx, names...)
	if err != nil {
		t.Fatalf("SSubscribe: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	subExpect(t, sub.Channel(), engine.Subscribed) // one per connection
	subExpect(t, sub.Channel(), engine.Subscribed)
	return sub
}

// restrictChannels lets node's default user subscribe the shard channels
// allowed only, until the test ends.
func restrictChannels(t *testing.T, node *valkeytest.ClusterNode, allowed ...string) {
	t.Helper()
	args := []string{"ACL", "SETUSER", "default", "resetchannels"}
	for _, ch := range allowed {
		args = append(args, "&"+ch)
	}
	if _, err := node.Do(args...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = node.Do("ACL", "SETUSER", "default", "allchannels") })
}

// restrictAndReconnect lets node subscribe the shard channels allowed
// only (until the test ends), closes its subscriber connections, and
// waits up to 10 s for a Refused of each of refused on sub.
func restrictAndReconnect(t *testing.T, sub *engine.Subscription, node *valkeytest.ClusterNode, refused []string, allowed ...string) {
	t.Helper()
	restrictChannels(t, node, allowed...)
	if _, err := node.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil {
		t.Fatal(err)
	}
	r37Until(t, sub.Channel(), 10*time.Second, "refused: "+strings.Join(refused, ", "), func(evs []engine.SubEvent) bool {
		for _, n := range refused {
			if r37Count(evs, engine.Refused, n) == 0 {
				return false
			}
		}
		return true
	})
}

// migrateToRestricted lets to subscribe the shard channels allowed only
// (until the test ends), moves slots from from to it, and gives from every
// channel back.
func migrateToRestricted(t *testing.T, cl *valkeytest.Cluster, from, to *valkeytest.ClusterNode, slots []int, allowed ...string) {
	t.Helper()
	restrictChannels(t, to, allowed...)
	if err := cl.MigrateSlots(from, to, slots); err != nil {
		t.Fatal(err)
	}
	if _, err := from.Do("ACL", "SETUSER", "default", "allchannels"); err != nil {
		t.Fatal(err)
	}
}

// waitDelivered waits up to 10 s until an SPUBLISH on ch reaches one
// subscriber, emptying sub's channel meanwhile (its items are not read).
func waitDelivered(t *testing.T, sub *engine.Subscription, pub *engine.Engine, ch string) {
	t.Helper()
	ctx := ctxT(t)
	subWaitFor(t, 10*time.Second, ch+" delivered", func() bool {
		for len(sub.Channel()) > 0 {
			<-sub.Channel()
		}
		n, err := pub.SPublish(ctx, ch, "m").Await(ctx)
		return err == nil && n == 1
	})
}
