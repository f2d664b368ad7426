package engine_test

// review-43s: the background retry of subscribes nobody waited for whose
// new connection could not be made (7769a79, 99bb77c): races with
// concurrent subscribes and unsubscribes of the same names.

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// Shard channels on a node that is down, each subscribed (ctx ended: kept
// for a retry) and unsubscribed several times at random, the names
// concurrently: once the node is back, each name ends in the state of
// its last call (subscribed after an SSubscribe, not after an
// SUnsubscribe), stays there, and has no more Resubscribed than Refused.
func TestRV43sShardSubscribeUnsubscribeStorm(t *testing.T) {
	cl, eng, chanOn := pendingCluster(t)
	ctx := ctxT(t)
	ps := cl.Primaries()
	chA := chanOn(ps[0], "rsa", 0)
	sub, rec := shardSub(t, eng, chA, ps[1])
	ended, cancel := context.WithCancel(ctx)
	cancel()
	const names = 8
	want := make([]bool, names)
	chans := make([]string, names)
	for i := range names {
		chans[i] = chanOn(ps[1], "rsn", i)
	}
	storm(t, chans, want, 0, func(ch string) { _ = sub.SSubscribe(ended, ch) }, func(ch string) error { return sub.SUnsubscribe(ctx, ch) })
	time.Sleep(time.Second)
	if err := cl.RestartNode(ps[1]); err != nil {
		t.Fatal(err)
	}
	state := func() (bad []string) {
		for i, ch := range chans {
			n := shardSubscribers(t, ps[1], ch)
			if (n == 1) != want[i] || n > 1 {
				bad = append(bad, ch)
			}
		}
		return bad
	}
	deadline := time.Now().Add(8 * time.Second)
	for len(state()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // a retry still running would act by now
	for _, ch := range state() {
		i := 0
		for chans[i] != ch {
			i++
		}
		t.Errorf("%s: %d subscribers, want subscribed=%v (its last call); events %s", ch, shardSubscribers(t, ps[1], ch), want[i], describe(eventsOf(rec, ch)))
	}
	for i, ch := range chans {
		refused, resub := 0, 0
		for _, ev := range eventsOf(rec, ch) {
			if ev.ShardChannel != ch {
				continue
			}
			switch ev.Kind {
			case engine.Refused:
				refused++
			case engine.Resubscribed:
				resub++
			}
		}
		if resub > refused || (want[i] && resub == 0) {
			t.Errorf("%s (subscribed=%v): %d Refused, %d Resubscribed; events %s", ch, want[i], refused, resub, describe(eventsOf(rec, ch)))
		}
	}
}

// storm subscribes (sub) and unsubscribes (unsub) each of chans 8 times
// at random (seeded with seed plus its index), the names concurrently,
// up to 400 ms apart, and records in want whether its last call
// subscribed it.
func storm(t *testing.T, chans []string, want []bool, seed int64, sub func(string), unsub func(string) error) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewSource(seed + int64(i)))
			for range 8 {
				if r.Intn(2) == 0 {
					sub(chans[i])
					want[i] = true
				} else {
					if err := unsub(chans[i]); err != nil {
						t.Errorf("unsubscribe %s: %v", chans[i], err)
					}
					want[i] = false
				}
				time.Sleep(time.Duration(r.Intn(400)) * time.Millisecond)
			}
		}()
	}
	wg.Wait()
}

// numSub returns PUBSUB NUMSUB's count for ch summed over nodes.
func numSub(t *testing.T, nodes []*valkeytest.ClusterNode, ch string) int64 {
	t.Helper()
	var sum int64
	for _, n := range nodes {
		sum += pubsubCount(t, n, "NUMSUB", ch)
	}
	return sum
}

// The same for channels of a shard-only subscription while no node
// answers (their retry is retryOthers).
func TestRV43sChannelSubscribeUnsubscribeStorm(t *testing.T) {
	cl, _, sub, rec, _ := shardOnlyAllDown(t, "rca")
	ctx := ctxT(t)
	ps := cl.Primaries()
	ended, cancel := context.WithCancel(ctx)
	cancel()
	const names = 6
	want := make([]bool, names)
	chans := make([]string, names)
	for i := range names {
		chans[i] = fmt.Sprintf("rcn:%d", i)
	}
	storm(t, chans, want, 100, func(ch string) { _ = sub.Subscribe(ended, ch) }, func(ch string) error { return sub.Unsubscribe(ctx, ch) })
	time.Sleep(time.Second)
	for _, p := range ps[:2] {
		if err := p.Restart(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.RestartNode(ps[2]); err != nil {
		t.Fatal(err)
	}
	state := func() (bad []string) {
		for i, ch := range chans {
			n := numSub(t, ps, ch)
			if (n == 1) != want[i] || n > 1 {
				bad = append(bad, ch)
			}
		}
		return bad
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(state()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	for _, ch := range state() {
		i := 0
		for chans[i] != ch {
			i++
		}
		t.Errorf("%s: %d subscribers, want subscribed=%v (its last call); events %s", ch, numSub(t, ps, ch), want[i], describe(eventsOf(rec, "")))
	}
}

// A channel kept by a subscribe nobody waited for (all nodes down) stays
// kept while waited Subscribes of it fail meanwhile, as a kept shard
// channel does (its move's claim outlives a waited SSubscribe's failure):
// once the nodes are back it is subscribed. Before, a waited Subscribe
// sent to the retry's new connection after the retry's own operation took
// the name over (fresh), and the retry, finding it no longer its own,
// dropped it: the outcome depended on timing. (A waited Subscribe sent
// before the first failure was settled overrides the unwaited one, as
// the last call; the test starts after its Refused.)
func TestRV43sChannelRetryOutlivesWaitedFailures(t *testing.T) {
	cl, _, sub, rec, _ := shardOnlyAllDown(t, "rwa")
	ctx := ctxT(t)
	ps := cl.Primaries()
	ended, cancel := context.WithCancel(ctx)
	cancel()
	_ = sub.Subscribe(ended, "rw-ch")
	csWait(t, 10*time.Second, "the Refused of rw-ch", func() bool {
		for _, ev := range eventsOf(rec, "") {
			if ev.Kind == engine.Refused {
				return true
			}
		}
		return false
	})
	// Waited Subscribes of the same channel, each failing fast, while the
	// retry runs.
	failed := 0
	for stop := time.Now().Add(3 * time.Second); time.Now().Before(stop); {
		if err := sub.Subscribe(ctx, "rw-ch"); err != nil {
			failed++
		}
		time.Sleep(2 * time.Millisecond)
	}
	if failed == 0 {
		t.Fatal("no waited Subscribe failed while no node answered")
	}
	for _, p := range ps[:2] {
		if err := p.Restart(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.RestartNode(ps[2]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(8 * time.Second)
	for numSub(t, ps, "rw-ch") != 1 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := numSub(t, ps, "rw-ch"); n != 1 {
		t.Fatalf("rw-ch (kept by a Subscribe nobody waited for; %d waited ones failed meanwhile): %d subscribers 8 s after the nodes are back, want 1; events %s", failed, n, describe(eventsOf(rec, "")))
	}
}

// A kept shard channel unsubscribed, then subscribed again by a waited
// SSubscribe once its node is back, while its retry waits its backoff:
// the retry, which had picked the channel before it paused, must not
// subscribe it again on waking (a second SSUBSCRIBE the actor confirms
// at once with a Resubscribed, Gap from the first call, and SubMoved
// counted), since the channel is no longer its own.
func TestRV43sShardRetryLeavesResubscribedChannel(t *testing.T) {
	cl, _, chanOn := pendingCluster(t)
	ctx := ctxT(t)
	// A long backoff: the node is back and the calls are made while the
	// retry waits.
	eng, err := open(ctx, t, config.DefaultConfig().WithAddrs(cl.Addrs()...).WithClusterMode(true).
		WithMinRetryBackoff(4*time.Second).WithMaxRetryBackoff(4*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ps := cl.Primaries()
	chA, chB := chanOn(ps[0], "rla", 0), chanOn(ps[1], "rlb", 0)
	sub, rec := shardSub(t, eng, chA, ps[1])
	ended, cancel := context.WithCancel(ctx)
	cancel()
	_ = sub.SSubscribe(ended, chB)
	csWait(t, 10*time.Second, "the Refused of "+chB, func() bool { return hasEvent(rec, engine.Refused, chB) })
	if err := cl.RestartNode(ps[1]); err != nil {
		t.Fatal(err)
	}
	if err := sub.SUnsubscribe(ctx, chB); err != nil {
		t.Fatal(err)
	}
	mark := len(eventsOf(rec, chB))
	moved := eng.Stats().SubMoved
	if err := sub.SSubscribe(ctx, chB); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second) // the retry's next round has run
	after := eventsOf(rec, chB)[mark:]
	for _, ev := range after {
		if ev.Kind == engine.Resubscribed && ev.ShardChannel == chB {
			t.Errorf("a Resubscribed of %s (Gap %s) after its SUnsubscribe and a waited SSubscribe: the retry it had left subscribed it again; events since %s (SubMoved +%d)",
				chB, ev.Gap, describe(after), eng.Stats().SubMoved-moved)
			break
		}
	}
	if n := shardSubscribers(t, ps[1], chB); n != 1 {
		t.Errorf("%s: %d subscribers, want 1", chB, n)
	}
}
