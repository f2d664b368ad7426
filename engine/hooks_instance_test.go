package engine_test

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
)

// Two subscriptions on the same node are told apart by their events'
// Instance: every event of one subscription (Subscribed, Disconnected,
// Resubscribed, MessagesDropped) carries the same Instance, never 0, and
// the two subscriptions' differ. Before, a hook could not tell which
// subscription an event concerned (both had the same node).
func TestHookSubscriberInstance(t *testing.T) {
	rec := &recHook{}
	eng, srv := newEngine(t, func(c config.Config) config.Config { return c.WithHooks(rec) })
	ctx := ctxT(t)
	a, err := eng.Subscribe(ctx, "hk:inst")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"hk:inst"}, Buffer: 2, Overflow: engine.OverflowDrop})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	subExpect(t, a.Channel(), engine.Subscribed)
	subExpect(t, b.Channel(), engine.Subscribed)
	if n, err := srv.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil || n != int64(2) {
		t.Fatalf("CLIENT KILL TYPE pubsub: %v, %v; want 2 clients killed", n, err)
	}
	for _, s := range []*engine.Subscription{a, b} {
		subExpect(t, s.Channel(), engine.Disconnected)
		subExpect(t, s.Channel(), engine.Resubscribed)
	}
	// b's 2-item channel, unread, takes 2 messages and drops the third.
	for i := range 3 {
		if n := subPublish(t, eng, "hk:inst", strconv.Itoa(i)); n != 2 {
			t.Fatalf("PUBLISH reached %d subscribers, want 2", n)
		}
	}
	csWait(t, 10*time.Second, "a message dropped", func() bool { return b.Dropped() == 1 })
	rec.eventually(t, "the events of both subscriptions", func() bool {
		return len(rec.subsOf(hooks.Resubscribed)) == 2 && len(rec.subsOf(hooks.MessagesDropped)) == 1
	})
	rec.with(func() {
		kinds := map[uint64][]hooks.SubscriberKind{}
		for _, ev := range rec.subs {
			if ev.Instance == 0 {
				t.Errorf("%s event without an Instance: %+v", ev.Kind, ev)
			}
			kinds[ev.Instance] = append(kinds[ev.Instance], ev.Kind)
		}
		if len(kinds) != 2 {
			t.Fatalf("events of %d instances, want 2 (one per subscription): %v", len(kinds), kinds)
		}
		dropped := rec.subsOf(hooks.MessagesDropped)[0].Instance
		for inst, ks := range kinds {
			want := []hooks.SubscriberKind{hooks.Subscribed, hooks.Disconnected, hooks.Resubscribed}
			if inst == dropped {
				want = append(want, hooks.MessagesDropped)
			}
			if !slices.Equal(ks, want) {
				t.Errorf("instance %d: events %v, want %v", inst, ks, want)
			}
		}
	})
}
