package engine_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/valkeytest"
)

// qabeRec records a subscription's items (Handler or channel).
type qabeRec struct {
	mu    sync.Mutex
	items []engine.SubEvent
}

func (r *qabeRec) add(ev engine.SubEvent) {
	r.mu.Lock()
	r.items = append(r.items, ev)
	r.mu.Unlock()
}

func (r *qabeRec) count(kind engine.SubEventKind, channel, payload string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.items {
		if ev.Kind != kind {
			continue
		}
		if kind == engine.SubMessage && (channel != "" && ev.Message.Channel != channel || payload != "" && ev.Message.Payload != payload) {
			continue
		}
		n++
	}
	return n
}

func (r *qabeRec) events() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := ""
	for _, ev := range r.items {
		if ev.Kind != engine.SubMessage {
			s += fmt.Sprintf("[%s %v] ", ev.Kind, ev.Err)
		}
	}
	return s
}

// CLIENT KILL TYPE normal kills every connection of the engine that is
// not a subscriber (valkey-go's idle first connection of the
// subscriber's driver conn among them): the subscription must go on
// receiving, on channels and patterns.
func TestQABEKillNormalKeepsSubscription(t *testing.T) {
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng := subEngine(t, srv)
	ctx := ctxT(t)
	rec := &qabeRec{}
	sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"kn:a", "kn:b"}, Patterns: []string{"kp:*"}, Handler: rec.add})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		if _, err := srv.Do("CLIENT", "KILL", "TYPE", "normal"); err != nil {
			t.Fatal(err)
		}
		for _, ch := range []string{"kn:a", "kn:b", "kp:x"} {
			p := fmt.Sprintf("r%d", round)
			csWait(t, 10*time.Second, "delivery on "+ch+" after CLIENT KILL TYPE normal", func() bool {
				pctx, cancel := context.WithTimeout(ctx, time.Second)
				defer cancel()
				_, _ = eng.Publish(pctx, ch, p).Await(pctx)
				return rec.count(engine.SubMessage, ch, p) > 0
			})
		}
	}
	t.Logf("events: %s", rec.events())
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	_ = eng.Close()
}

// A Handler that unsubscribes the channel of the message it handles: the
// channel must stay unsubscribed across a reconnect, the others must
// resume.
func TestQABEHandlerUnsubscribesThenKill(t *testing.T) {
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng := subEngine(t, srv)
	ctx := ctxT(t)
	rec := &qabeRec{}
	ready := make(chan struct{})
	var sub *engine.Subscription
	var unsubErr atomic.Value
	h := func(ev engine.SubEvent) {
		rec.add(ev)
		if ev.Kind == engine.SubMessage && ev.Message.Payload == "stop" {
			<-ready
			if err := sub.Unsubscribe(ctx, ev.Message.Channel); err != nil {
				unsubErr.Store(err)
			}
			if err := sub.PUnsubscribe(ctx, "hp:*"); err != nil {
				unsubErr.Store(err)
			}
		}
	}
	var err error
	sub, err = eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"hu:a", "hu:b"}, Patterns: []string{"hp:*"}, Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	close(ready)
	if _, err := eng.Publish(ctx, "hu:a", "stop").Await(ctx); err != nil {
		t.Fatal(err)
	}
	csWait(t, 5*time.Second, "unsubscribed", func() bool {
		n, _ := eng.Publish(ctx, "hu:a", "probe").Await(ctx)
		m, _ := eng.Publish(ctx, "hp:z", "probe").Await(ctx)
		return n == 0 && m == 0
	})
	if v := unsubErr.Load(); v != nil {
		t.Fatalf("unsubscribe from handler: %v", v)
	}
	if n, err := srv.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil || n != int64(1) {
		t.Fatalf("CLIENT KILL TYPE pubsub: %v %v", n, err)
	}
	csWait(t, 10*time.Second, "Resubscribed", func() bool { return rec.count(engine.Resubscribed, "", "") == 1 })
	csWait(t, 5*time.Second, "hu:b delivered after the reconnect", func() bool {
		_, _ = eng.Publish(ctx, "hu:b", "after").Await(ctx)
		return rec.count(engine.SubMessage, "hu:b", "after") > 0
	})
	if n, _ := eng.Publish(ctx, "hu:a", "after").Await(ctx); n != 0 {
		t.Fatalf("hu:a resubscribed after the reconnect: PUBLISH reached %d", n)
	}
	if n, _ := eng.Publish(ctx, "hp:z", "after").Await(ctx); n != 0 {
		t.Fatalf("hp:* resubscribed after the reconnect: PUBLISH reached %d", n)
	}
	t.Logf("events: %s", rec.events())
	_ = sub.Close()
	_ = eng.Close()
}

// Subscribe/Unsubscribe from many goroutines racing Close: every call
// returns, nothing panics, nothing is left.
func TestQABESubscribeRacesClose(t *testing.T) {
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng := subEngine(t, srv)
	ctx := ctxT(t)
	for round := range 20 {
		sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"rc:base"}, Buffer: 4, Overflow: engine.OverflowDrop})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 20 {
					name := fmt.Sprintf("rc:%d:%d:%d", round, g, i%3)
					var err error
					switch i % 4 {
					case 0:
						err = sub.Subscribe(ctx, name)
					case 1:
						err = sub.PSubscribe(ctx, name+"*")
					case 2:
						err = sub.Unsubscribe(ctx, name)
					case 3:
						err = sub.PUnsubscribe(ctx, name+"*")
					}
					if err != nil {
						return // closed
					}
				}
			})
		}
		if round%2 == 0 {
			time.Sleep(time.Duration(round) * time.Millisecond) // vary the race, not synchronisation
		}
		done := make(chan struct{})
		go func() { _ = sub.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not return in 10s")
		}
		wc := make(chan struct{})
		go func() { wg.Wait(); close(wc) }()
		select {
		case <-wc:
		case <-time.After(10 * time.Second):
			t.Fatal("runtime calls did not return within 10s of Close")
		}
		for range sub.Channel() {
		}
	}
	if st := eng.Stats(); st.Subscriptions != 0 || st.SubConns != 0 {
		t.Fatalf("after every Close: Subscriptions %d, SubConns %d", st.Subscriptions, st.SubConns)
	}
	_ = eng.Close()
}

// A reader that stops reading (OverflowBlock, its channel full) while the
// connection is lost and made again, for longer than ReadTimeout: the
// new connection is kept (the server buffers, as for a reader held up on
// a live connection: TestSubscribeSlowReaderKeepsConnection), the outage
// gives one Disconnected and one Resubscribed, and every message
// published to the new connection during the pause arrives.
func TestQABEStoppedReaderAcrossRestart(t *testing.T) {
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng := subEngine(t, srv)
	pub := subEngine(t, srv)
	ctx := ctxT(t)
	sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"sr:a"}, Buffer: 2})
	if err != nil {
		t.Fatal(err)
	}
	subExpect(t, sub.Channel(), engine.Subscribed)
	// One item in the channel: the Disconnected fills it, and the new
	// connection's reader waits to hand over its Resubscribed.
	if _, err := pub.Publish(ctx, "sr:a", "before").Await(ctx); err != nil {
		t.Fatal(err)
	}
	csWait(t, 5*time.Second, "the message in the channel", func() bool { return len(sub.Channel()) == 1 })
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	csWait(t, 10*time.Second, "subscribed again on the server", func() bool {
		v, err := srv.Do("PUBSUB", "NUMSUB", "sr:a")
		a, _ := v.([]any)
		return err == nil && len(a) == 2 && a[1] == int64(1)
	})
	// The reader stays stopped for longer than ReadTimeout (3 s): the
	// fault under test, not synchronisation.
	time.Sleep(4 * time.Second)
	reached := 0
	for i := range 20 {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		n, _ := pub.Publish(pctx, "sr:a", fmt.Sprintf("during-%d", i)).Await(pctx)
		cancel()
		reached += int(n)
	}
	var kinds []string
	during := 0
	deadline := time.After(20 * time.Second)
	for during < reached {
		select {
		case ev := <-sub.Channel():
			if ev.Kind != engine.SubMessage {
				kinds = append(kinds, fmt.Sprintf("%s(err %v, gap %s)", ev.Kind, ev.Err, ev.Gap))
			} else if strings.HasPrefix(ev.Message.Payload, "during-") {
				during++
			}
		case <-deadline:
			t.Fatalf("%d of the %d messages PUBLISH said reached the subscriber arrived; events %v", during, reached, kinds)
		}
	}
	// Whatever else comes within the next second (events of a further
	// reconnect, if any).
	idle := time.After(time.Second)
	for drained := false; !drained; {
		select {
		case ev := <-sub.Channel():
			if ev.Kind != engine.SubMessage {
				kinds = append(kinds, fmt.Sprintf("%s(err %v, gap %s)", ev.Kind, ev.Err, ev.Gap))
			}
		case <-idle:
			drained = true
		}
	}
	t.Logf("PUBLISH reached the subscriber %d of 20 times; events: %v", reached, kinds)
	if reached != 20 || len(kinds) != 2 {
		t.Errorf("PUBLISH during the pause reached the subscriber %d of 20 times, events %v: want 20 and one Disconnected, one Resubscribed", reached, kinds)
	}
	_ = sub.Close()
	_ = eng.Close()
	_ = pub.Close()
}

// Many channels and patterns, a Handler, a server stalled by DEBUG SLEEP
// (longer than the idle PING's bound) and then CLIENT KILL TYPE pubsub:
// after each Resubscribed every channel and pattern delivers again.
func TestQABEManyChannelsStallAndKill(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{Args: []string{"--enable-debug-command", "yes"}})
	defer subNoLeak(t)()
	eng := subEngine(t, srv)
	pub := subEngine(t, srv)
	ctx := ctxT(t)
	const nch, npat = 5000, 200
	chans := make([]string, nch)
	for i := range chans {
		chans[i] = fmt.Sprintf("mc:%d", i)
	}
	pats := make([]string, npat)
	for i := range pats {
		pats[i] = fmt.Sprintf("mp:%d:*", i)
	}
	rec := &qabeRec{}
	sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: chans, Patterns: pats, Handler: rec.add})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, round int) {
		t.Helper()
		for i := 0; i < nch; i += 97 {
			ch, p := chans[i], fmt.Sprintf("%s-%d", what, round)
			csWait(t, 15*time.Second, what+": "+ch, func() bool {
				pctx, cancel := context.WithTimeout(ctx, time.Second)
				defer cancel()
				_, _ = pub.Publish(pctx, ch, p).Await(pctx)
				return rec.count(engine.SubMessage, ch, p) > 0
			})
		}
		for i := 0; i < npat; i += 17 {
			ch, p := fmt.Sprintf("mp:%d:x", i), fmt.Sprintf("%s-%d", what, round)
			csWait(t, 15*time.Second, what+": "+ch, func() bool {
				pctx, cancel := context.WithTimeout(ctx, time.Second)
				defer cancel()
				_, _ = pub.Publish(pctx, ch, p).Await(pctx)
				return rec.count(engine.SubMessage, ch, p) > 0
			})
		}
	}
	check("start", 0)
	qabeDebugSleep(t, srv, "6")
	csWait(t, 15*time.Second, "Resubscribed after DEBUG SLEEP", func() bool { return rec.count(engine.Resubscribed, "", "") >= 1 })
	check("sleep", 1)
	if n, err := srv.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil || n != int64(1) {
		t.Fatalf("CLIENT KILL TYPE pubsub: %v %v", n, err)
	}
	csWait(t, 15*time.Second, "Resubscribed after CLIENT KILL", func() bool { return rec.count(engine.Resubscribed, "", "") >= 2 })
	check("kill", 2)
	t.Logf("events: %s", rec.events())
	if d, r := rec.count(engine.Disconnected, "", ""), rec.count(engine.Resubscribed, "", ""); d != 2 || r != 2 {
		t.Errorf("%d Disconnected, %d Resubscribed, want 2 each", d, r)
	}
	_ = sub.Close()
	_ = eng.Close()
	_ = pub.Close()
}

type qabeSubHook struct {
	mu      sync.Mutex
	dropped uint64
	events  int
}

func (h *qabeSubHook) OnSubscriberEvent(ev hooks.Subscriber) {
	if ev.Kind != hooks.MessagesDropped {
		return
	}
	h.mu.Lock()
	h.dropped += ev.Count
	h.events++
	h.mu.Unlock()
}

func (h *qabeSubHook) sum() (uint64, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropped, h.events
}

// The MessagesDropped events report every drop ("Count messages since
// the previous such event, at most one a second"): a burst of drops that
// stops is reported in full within about a second, not only its first.
func TestQABEDroppedBurstReported(t *testing.T) {
	srv := valkeytest.Start(t)
	h := &qabeSubHook{}
	eng := subEngine(t, srv, func(c config.Config) config.Config { return c.WithHooks(h) })
	ctx := ctxT(t)
	sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"db:a"}, Buffer: 4, Overflow: engine.OverflowDrop})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i := range 200 {
		if _, err := eng.Publish(ctx, "db:a", fmt.Sprint(i)).Await(ctx); err != nil {
			t.Fatal(err)
		}
	}
	csWait(t, 5*time.Second, "drops", func() bool { return sub.Dropped() >= 190 })
	deadline := time.Now().Add(3 * time.Second)
	for {
		// The reader may still drop the burst's last messages after the
		// wait above: compare with the count now (a report never runs
		// ahead of it).
		want := sub.Dropped()
		got, n := h.sum()
		if got == want {
			t.Logf("%d drops reported in %d events", got, n)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("MessagesDropped events reported %d drops (%d events) 3s after the last of %d", got, n, want)
		}
		time.Sleep(20 * time.Millisecond) // polling the hook's sum
	}
}

// BE1 with a Handler: one slow on the Resubscribed event (4 s, longer
// than ReadTimeout) holds the new connection's reader up the same way;
// the connection must be kept: one Disconnected, one Resubscribed.
func TestQABESlowHandlerOnResubscribed(t *testing.T) {
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng := subEngine(t, srv)
	ctx := ctxT(t)
	rec := &qabeRec{}
	h := func(ev engine.SubEvent) {
		rec.add(ev)
		if ev.Kind == engine.Resubscribed && rec.count(engine.Resubscribed, "", "") == 1 {
			time.Sleep(4 * time.Second) // the slow Handler under test
		}
	}
	sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"sh:a"}, Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := srv.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil || n != int64(1) {
		t.Fatalf("CLIENT KILL TYPE pubsub: %v %v", n, err)
	}
	csWait(t, 10*time.Second, "Resubscribed", func() bool { return rec.count(engine.Resubscribed, "", "") == 1 })
	time.Sleep(4500 * time.Millisecond) // past the slow call (and any reconnect it caused)
	csWait(t, 5*time.Second, "delivery after the slow call", func() bool {
		_, _ = eng.Publish(ctx, "sh:a", "after").Await(ctx)
		return rec.count(engine.SubMessage, "sh:a", "after") > 0
	})
	if d, r := rec.count(engine.Disconnected, "", ""), rec.count(engine.Resubscribed, "", ""); d != 1 || r != 1 {
		t.Errorf("%d Disconnected, %d Resubscribed for one CLIENT KILL, want 1 each: %s", d, r, rec.events())
	}
	_ = sub.Close()
	_ = eng.Close()
}

// BE1's fix leaves the actor waiting for the confirmations while the
// reader is held up: Close without reading must still return at once
// and leave nothing behind.
func TestQABECloseWhileResubscribeHeldUp(t *testing.T) {
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng := subEngine(t, srv)
	ctx := ctxT(t)
	sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"ch:a"}, Buffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	// The Subscribed event fills the channel: the Disconnected waits, so
	// does the reconnect.
	if n, err := srv.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil || n != int64(1) {
		t.Fatalf("CLIENT KILL TYPE pubsub: %v %v", n, err)
	}
	<-sub.Channel() // room for the Disconnected; the Resubscribed then waits
	csWait(t, 10*time.Second, "subscribed again on the server", func() bool {
		v, err := srv.Do("PUBSUB", "NUMSUB", "ch:a")
		a, _ := v.([]any)
		return err == nil && len(a) == 2 && a[1] == int64(1)
	})
	time.Sleep(3500 * time.Millisecond) // past ReadTimeout, reader still held up: the state under test
	start := time.Now()
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %s", d)
	}
	if st := eng.Stats(); st.SubConns != 0 || st.Subscriptions != 0 {
		t.Errorf("after Close: SubConns %d, Subscriptions %d", st.SubConns, st.Subscriptions)
	}
	_ = eng.Close()
}
