package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/valkeytest"
)

// subEngine starts an engine on srv, closed at cleanup (Close again is
// harmless).
func subEngine(t *testing.T, srv *valkeytest.Server, mod ...func(config.Config) config.Config) *engine.Engine {
	t.Helper()
	cfg := config.DefaultConfig().WithAddrs(srv.Addr())
	for _, m := range mod {
		cfg = m(cfg)
	}
	eng, err := open(ctxT(t), t, cfg)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	return eng
}

// subNoLeak checks at the end of the test that no goroutine is left
// (the servers' process watchers aside: Restart starts new ones).
func subNoLeak(t *testing.T) func() {
	opts := []goleak.Option{goleak.IgnoreCurrent(), goleak.IgnoreAnyFunction("github.com/vactor-io/vactor/valkeytest.startProcess.func1")}
	return func() { goleak.VerifyNone(t, opts...) }
}

// subNext returns the next item of ch, failing the test after d.
func subNext(t *testing.T, ch <-chan engine.SubEvent, d time.Duration) engine.SubEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("subscription channel closed")
		}
		return ev
	case <-time.After(d):
		t.Fatalf("no subscription item within %s", d)
	}
	return engine.SubEvent{}
}

// subExpect reads the next item and checks its kind.
func subExpect(t *testing.T, ch <-chan engine.SubEvent, kind engine.SubEventKind) engine.SubEvent {
	t.Helper()
	ev := subNext(t, ch, 10*time.Second)
	if ev.Kind != kind {
		t.Fatalf("got %s %+v, want %s", ev.Kind, ev, kind)
	}
	return ev
}

// subPublish publishes and returns the number of receivers.
func subPublish(t *testing.T, eng *engine.Engine, channel, msg string) int64 {
	t.Helper()
	n, err := eng.Publish(ctxT(t), channel, msg).Await(ctxT(t))
	if err != nil {
		t.Fatalf("PUBLISH %s: %v", channel, err)
	}
	return n
}

// subClosed waits until ch is closed, draining it.
func subClosed(t *testing.T, ch <-chan engine.SubEvent) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("subscription channel not closed")
		}
	}
}

func TestSubscribeDeliversInOrder(t *testing.T) {
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng := subEngine(t, srv)
	ctx := ctxT(t)
	sub, err := eng.Subscribe(ctx, "sub:a", "sub:b")
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	ch := sub.Channel()
	subExpect(t, ch, engine.Subscribed)
	for i := range 100 {
		c := "sub:a"
		if i%2 == 1 {
			c = "sub:b"
		}
		if n := subPublish(t, eng, c, strconv.Itoa(i)); n != 1 {
			t.Fatalf("PUBLISH reached %d subscribers, want 1", n)
		}
	}
	for i := range 100 {
		ev := subExpect(t, ch, engine.SubMessage)
		if ev.Message.Payload != strconv.Itoa(i) || ev.Message.Pattern != "" {
			t.Fatalf("message %d = %+v", i, ev.Message)
		}
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	subClosed(t, ch)
	if err := sub.Close(); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
	if n := subPublish(t, eng, "sub:a", "x"); n != 0 {
		t.Fatalf("PUBLISH after Close reached %d subscribers", n)
	}
	_ = eng.Close()
}

func TestSubscribePattern(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	sub, err := eng.PSubscribe(ctx, "news.*")
	if err != nil {
		t.Fatalf("PSubscribe: %v", err)
	}
	defer sub.Close()
	subExpect(t, sub.Channel(), engine.Subscribed)
	subPublish(t, eng, "news.tech", "hello")
	subPublish(t, eng, "other", "no")
	subPublish(t, eng, "news.art", "bye")
	for _, want := range []engine.Message{
		{Channel: "news.tech", Pattern: "news.*", Payload: "hello"},
		{Channel: "news.art", Pattern: "news.*", Payload: "bye"},
	} {
		if ev := subExpect(t, sub.Channel(), engine.SubMessage); ev.Message != want {
			t.Fatalf("got %+v, want %+v", ev.Message, want)
		}
	}
}

func TestSubscribeRuntimeChanges(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	sub, err := eng.Subscribe(ctx, "rt:a")
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer sub.Close()
	ch := sub.Channel()
	subExpect(t, ch, engine.Subscribed)
	if err := sub.Subscribe(ctx, "rt:b", "rt:c"); err != nil {
		t.Fatalf("sub.Subscribe: %v", err)
	}
	if err := sub.PSubscribe(ctx, "rtp:*"); err != nil {
		t.Fatalf("sub.PSubscribe: %v", err)
	}
	if err := sub.SSubscribe(ctx, "rts:x"); err != nil {
		t.Fatalf("sub.SSubscribe: %v", err)
	}
	for _, c := range []string{"rt:a", "rt:b", "rt:c", "rtp:1"} {
		if n := subPublish(t, eng, c, c); n != 1 {
			t.Fatalf("PUBLISH %s reached %d, want 1", c, n)
		}
		if ev := subExpect(t, ch, engine.SubMessage); ev.Message.Channel != c {
			t.Fatalf("got %+v, want a message on %s", ev.Message, c)
		}
	}
	if n, err := eng.SPublish(ctx, "rts:x", "s").Await(ctx); err != nil || n != 1 {
		t.Fatalf("SPUBLISH = %d, %v; want 1", n, err)
	}
	if ev := subExpect(t, ch, engine.SubMessage); ev.Message != (engine.Message{Channel: "rts:x", Payload: "s"}) {
		t.Fatalf("got %+v", ev.Message)
	}
	if err := sub.Unsubscribe(ctx, "rt:a", "rt:b"); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	if err := sub.PUnsubscribe(ctx, "rtp:*"); err != nil {
		t.Fatalf("PUnsubscribe: %v", err)
	}
	if err := sub.SUnsubscribe(ctx, "rts:x"); err != nil {
		t.Fatalf("SUnsubscribe: %v", err)
	}
	for _, c := range []string{"rt:a", "rt:b", "rtp:1"} {
		if n := subPublish(t, eng, c, c); n != 0 {
			t.Fatalf("PUBLISH %s after unsubscribe reached %d", c, n)
		}
	}
	if n := subPublish(t, eng, "rt:c", "still"); n != 1 {
		t.Fatalf("PUBLISH rt:c reached %d, want 1", n)
	}
	if ev := subExpect(t, ch, engine.SubMessage); ev.Message.Payload != "still" {
		t.Fatalf("got %+v, want the message on rt:c", ev.Message)
	}
}

func TestSubscribeDropOverflowCounts(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{
		Channels: []string{"drop"}, Buffer: 4, Overflow: engine.OverflowDrop,
	})
	if err != nil {
		t.Fatalf("SubscribeWith: %v", err)
	}
	defer sub.Close()
	const n = 200
	for i := range n {
		subPublish(t, eng, "drop", strconv.Itoa(i))
	}
	// The Subscribed event holds one of the 4 places: 3 messages fit.
	want := uint64(n - 3)
	deadline := time.Now().Add(10 * time.Second)
	for sub.Dropped() != want {
		if time.Now().After(deadline) {
			t.Fatalf("Dropped = %d, want %d", sub.Dropped(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	subExpect(t, sub.Channel(), engine.Subscribed)
	for i := range 3 {
		if ev := subExpect(t, sub.Channel(), engine.SubMessage); ev.Message.Payload != strconv.Itoa(i) {
			t.Fatalf("kept message %d = %q", i, ev.Message.Payload)
		}
	}
	// Room again: new messages are delivered.
	subPublish(t, eng, "drop", "after")
	if ev := subExpect(t, sub.Channel(), engine.SubMessage); ev.Message.Payload != "after" {
		t.Fatalf("got %q, want after", ev.Message.Payload)
	}
	t.Logf("%d published to a 4-item channel nobody read: %d dropped", n, sub.Dropped())
}

func TestSubscribeBlockOverflowDeliversAll(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"block"}, Buffer: 1})
	if err != nil {
		t.Fatalf("SubscribeWith: %v", err)
	}
	defer sub.Close()
	const n = 20000
	pubErr := make(chan error, 1)
	go func() {
		for i := range n {
			f := eng.Publish(ctx, "block", strconv.Itoa(i))
			if i%1000 == 999 || i == n-1 {
				if _, err := f.Await(ctx); err != nil {
					pubErr <- err
					return
				}
			}
		}
		pubErr <- nil
	}()
	subExpect(t, sub.Channel(), engine.Subscribed)
	for i := range n {
		ev := subExpect(t, sub.Channel(), engine.SubMessage)
		if ev.Message.Payload != strconv.Itoa(i) {
			t.Fatalf("message %d = %q", i, ev.Message.Payload)
		}
		if i%5000 == 0 {
			time.Sleep(50 * time.Millisecond) // a slow reader now and then
		}
	}
	if err := <-pubErr; err != nil {
		t.Fatalf("publish: %v", err)
	}
	if sub.Dropped() != 0 {
		t.Fatalf("Dropped = %d with OverflowBlock", sub.Dropped())
	}
}

func TestSubscribeHandler(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	var mu sync.Mutex
	var got []engine.SubEvent
	sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{
		Channels: []string{"h"},
		Handler: func(ev engine.SubEvent) {
			mu.Lock()
			got = append(got, ev)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatalf("SubscribeWith: %v", err)
	}
	if sub.Channel() != nil {
		t.Fatal("Channel() != nil with a Handler")
	}
	const n = 500
	for i := range n {
		subPublish(t, eng, "h", strconv.Itoa(i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		l := len(got)
		mu.Unlock()
		if l == n+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("handler got %d items, want %d", l, n+1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got[0].Kind != engine.Subscribed {
		t.Fatalf("first item %s, want subscribed", got[0].Kind)
	}
	for i, ev := range got[1:] {
		if ev.Kind != engine.SubMessage || ev.Message.Payload != strconv.Itoa(i) {
			t.Fatalf("item %d = %+v", i+1, ev)
		}
	}
}

// A Handler that panics loses the item it panicked on, not the
// subscription: the next messages arrive in order, Stats.SubPanics counts
// every panic, and only the first is logged (error level, no payload).
func TestSubscribeHandlerPanicRecovered(t *testing.T) {
	srv := valkeytest.Start(t)
	cfg, logs := withLogCheck(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	eng := engineOn(t, cfg)
	defer eng.Close()
	logs.Secret("payload-")
	ctx := ctxT(t)
	got := make(chan string, 16)
	sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{
		Channels: []string{"hp"},
		Handler: func(ev engine.SubEvent) {
			if ev.Kind != engine.SubMessage {
				return
			}
			if strings.HasSuffix(ev.Message.Payload, "boom") {
				panic("handler bug")
			}
			got <- ev.Message.Payload
		},
	})
	if err != nil {
		t.Fatalf("SubscribeWith: %v", err)
	}
	defer sub.Close()
	for _, p := range []string{"payload-boom", "payload-1", "payload-boom", "payload-2"} {
		subPublish(t, eng, "hp", p)
	}
	for _, want := range []string{"payload-1", "payload-2"} {
		select {
		case p := <-got:
			if p != want {
				t.Fatalf("handler got %q, want %q", p, want)
			}
		case <-ctx.Done():
			t.Fatalf("handler got nothing after a panic (want %q): %v", want, ctx.Err())
		}
	}
	if n := eng.Stats().SubPanics; n != 2 {
		t.Fatalf("Stats.SubPanics = %d, want 2", n)
	}
	if n := logs.Count(hooks.MsgSubPanicked); n != 1 {
		t.Fatalf("%q logged %d times, want once", hooks.MsgSubPanicked, n)
	}
}

func TestSubscribeEngineCloseStopsSubscriptions(t *testing.T) {
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng := subEngine(t, srv)
	ctx := ctxT(t)
	var subs []*engine.Subscription
	for i := range 3 {
		sub, err := eng.Subscribe(ctx, fmt.Sprintf("ec:%d", i))
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		subs = append(subs, sub)
	}
	// One blocked on a full channel nobody reads.
	blocked, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"ec:full"}, Buffer: 1})
	if err != nil {
		t.Fatalf("SubscribeWith: %v", err)
	}
	for range 10 {
		subPublish(t, eng, "ec:full", "x")
	}
	start := time.Now()
	if err := eng.Close(); err != nil {
		t.Fatalf("engine Close: %v", err)
	}
	t.Logf("engine Close with 4 live subscriptions: %s", time.Since(start))
	for _, sub := range append(subs, blocked) {
		subClosed(t, sub.Channel())
		if !errors.Is(sub.Err(), engine.ErrClosed) {
			t.Fatalf("Err() = %v, want ErrClosed", sub.Err())
		}
		if err := sub.Close(); !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("Close after engine Close = %v, want ErrClosed", err)
		}
	}
	if _, err := eng.Subscribe(ctx, "late"); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Subscribe after Close = %v, want ErrClosed", err)
	}
}

func TestSubscribeBadInput(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	for name, f := range map[string]func() error{
		"no channel": func() error { _, err := eng.Subscribe(ctx); return err },
		"empty name": func() error { _, err := eng.PSubscribe(ctx, "a", ""); return err },
		"negative buffer": func() error {
			_, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"a"}, Buffer: -1})
			return err
		},
		"bad overflow": func() error {
			_, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"a"}, Overflow: 9})
			if err != nil && !strings.Contains(err.Error(), "SubscribeOptions.Overflow 9") {
				t.Errorf("bad overflow: %v, want it to name the field", err)
			}
			return err
		},
		"buffer over the limit": func() error {
			_, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"a"}, Buffer: 1<<20 + 1})
			if err != nil && !strings.Contains(err.Error(), "SubscribeOptions.Buffer 1048577: from 0 (the default, 1024) to 1048576") {
				t.Errorf("buffer over the limit: %v, want it to name the field and its range (qa-AI F6)", err)
			}
			return err
		},
		"nil ctx, empty shard name": func() error {
			var nilCtx context.Context // a nil ctx on purpose
			_, err := eng.SSubscribe(nilCtx, "")
			return err
		},
	} {
		if err := f(); !errors.Is(err, engine.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
	var nilCtx context.Context // a nil ctx on purpose
	sub, err := eng.Subscribe(nilCtx, "ok")
	if err != nil {
		t.Fatalf("Subscribe with nil ctx: %v", err)
	}
	defer sub.Close()
	if err := sub.Subscribe(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Errorf("sub.Subscribe(): %v", err)
	}
	if err := sub.Unsubscribe(ctx, ""); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Errorf("sub.Unsubscribe(\"\"): %v", err)
	}
	if err := sub.Unsubscribe(ctx, "never-subscribed"); err != nil {
		t.Errorf("Unsubscribe of an unknown channel: %v", err)
	}
}

func TestSubscribeFailsFastWithoutServer(t *testing.T) {
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng := subEngine(t, srv, func(c config.Config) config.Config { c.DialTimeout = time.Second; return c })
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sub, err := eng.Subscribe(ctxT(t), "nobody")
	if err == nil {
		sub.Close()
		t.Fatal("Subscribe succeeded with the server down")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Subscribe failed after %s, want within the dial timeout", d)
	}
	t.Logf("Subscribe with the server down: %v after %s", err, time.Since(start))
	_ = eng.Close()
}

// TestSubscribeAcrossRestarts restarts the server 20 times ~0.5s apart
// while a publisher sends sequence numbers: the subscriber resubscribes
// after each restart (one Disconnected and one Resubscribed each), and
// every message whose PUBLISH reached a subscriber is delivered.
func TestSubscribeAcrossRestarts(t *testing.T) {
	const restarts = 20
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng := subEngine(t, srv)
	pub, err := open(ctxT(t), t, config.DefaultConfig().WithAddrs(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	sub, err := eng.Subscribe(ctx, "seq")
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	subExpect(t, sub.Channel(), engine.Subscribed)

	var (
		mu           sync.Mutex
		got          = map[int]bool{}
		resubscribed atomic.Int64
		disconnected atomic.Int64
		gaps         []time.Duration
		order        []engine.SubEventKind // events only
		readerDone   = make(chan struct{})
	)
	go func() {
		defer close(readerDone)
		for ev := range sub.Channel() {
			mu.Lock()
			switch ev.Kind {
			case engine.SubMessage:
				if i, err := strconv.Atoi(ev.Message.Payload); err == nil {
					got[i] = true
				}
			case engine.Disconnected:
				disconnected.Add(1)
				order = append(order, ev.Kind)
			case engine.Resubscribed:
				resubscribed.Add(1)
				gaps = append(gaps, ev.Gap)
				order = append(order, ev.Kind)
			default:
				order = append(order, ev.Kind)
			}
			mu.Unlock()
		}
	}()

	// The publisher counts a message as sent while connected only when
	// PUBLISH says a subscriber received it.
	var (
		delivered  []int
		deliveredN atomic.Int64
		stopPub    = make(chan struct{})
		pubDone    = make(chan struct{})
	)
	go func() {
		defer close(pubDone)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopPub:
				return
			case <-tick.C:
			}
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			n, err := pub.Publish(pctx, "seq", strconv.Itoa(i)).Await(pctx)
			cancel()
			if err == nil && n >= 1 {
				delivered = append(delivered, i)
				deliveredN.Add(1)
			}
		}
	}()

	start := time.Now()
	for r := 1; r <= restarts; r++ {
		time.Sleep(500 * time.Millisecond) // the ~0.5 s between restarts
		if err := srv.Restart(); err != nil {
			t.Fatalf("restart %d: %v", r, err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for resubscribed.Load() < int64(r) {
			if time.Now().After(deadline) {
				t.Fatalf("restart %d: resubscribed %d times", r, resubscribed.Load())
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	// Let the publisher see the subscriber again (its engine may have
	// opened its breaker during the restarts: wait for a PUBLISH that
	// reaches the subscriber), then stop it.
	seen := deliveredN.Load()
	deadline := time.Now().Add(10 * time.Second)
	for deliveredN.Load() <= seen+10 {
		if time.Now().After(deadline) {
			t.Fatalf("the publisher reached no subscriber within 10 s of the last restart")
		}
		time.Sleep(2 * time.Millisecond)
	}
	close(stopPub)
	<-pubDone
	// A last message marks the end of the stream.
	if n := subPublish(t, pub, "seq", "end"); n != 1 {
		t.Fatalf("final PUBLISH reached %d", n)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		missing := 0
		for _, i := range delivered {
			if !got[i] {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages published while connected were not delivered", missing, len(delivered))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	<-readerDone
	_ = pub.Close()
	_ = eng.Close()

	mu.Lock()
	defer mu.Unlock()
	if resubscribed.Load() != restarts || disconnected.Load() != restarts {
		t.Fatalf("%d restarts: %d Disconnected, %d Resubscribed; want %d each", restarts, disconnected.Load(), resubscribed.Load(), restarts)
	}
	for i, k := range order {
		want := engine.Disconnected
		if i%2 == 1 {
			want = engine.Resubscribed
		}
		if k != want {
			t.Fatalf("event %d is %s, want %s (events %v)", i, k, want, order)
		}
	}
	var maxGap, sum time.Duration
	for _, g := range gaps {
		maxGap = max(maxGap, g)
		sum += g
	}
	t.Logf("%d restarts in %s: %d resubscriptions, gap mean %s max %s; %d messages published while connected, all delivered (%d received)",
		restarts, time.Since(start).Round(time.Millisecond), len(gaps), sum/time.Duration(len(gaps)), maxGap, len(delivered), len(got))
}

// TestSubscribeShardChannelsCluster subscribes to shard channels owned by
// different primaries: one connection per primary, each receives its
// channels' SPUBLISHed messages; then a failover of one primary: its
// connection resubscribes on the new primary.
func TestSubscribeShardChannelsCluster(t *testing.T) {
	cl := valkeytest.StartClusterT(t)
	ctx := ctxT(t)
	eng, err := open(ctx, t, config.DefaultConfig().WithAddrs(cl.Addrs()...).WithClusterMode(true))
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	defer eng.Close()
	// A channel per primary.
	owners := map[string]string{} // primary addr -> channel
	for i := 0; len(owners) < len(cl.Primaries()) && i < 1000; i++ {
		c := fmt.Sprintf("shard:%d", i)
		slot, err := cl.KeySlot(c)
		if err != nil {
			t.Fatal(err)
		}
		n, err := cl.NodeForSlot(slot)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := owners[n.Addr()]; !ok {
			owners[n.Addr()] = c
		}
	}
	var chans []string
	for _, c := range owners {
		chans = append(chans, c)
	}
	sub, err := eng.SSubscribe(ctx, chans...)
	if err != nil {
		t.Fatalf("SSubscribe: %v", err)
	}
	defer sub.Close()
	ch := sub.Channel()
	addrs := map[string]bool{}
	for range chans {
		ev := subExpect(t, ch, engine.Subscribed)
		addrs[ev.Addr] = true
	}
	if len(addrs) != len(chans) {
		t.Fatalf("Subscribed on %d nodes, want %d", len(addrs), len(chans))
	}
	for _, c := range chans {
		if n, err := eng.SPublish(ctx, c, "m:"+c).Await(ctx); err != nil || n != 1 {
			t.Fatalf("SPUBLISH %s = %d, %v; want 1", c, n, err)
		}
		ev := subExpect(t, ch, engine.SubMessage)
		if ev.Message.Channel != c || ev.Message.Payload != "m:"+c || owners[ev.Addr] != c {
			t.Fatalf("got %+v from %s, want the message on %s", ev.Message, ev.Addr, c)
		}
	}
	t.Logf("%d shard channels on %d connections", len(chans), len(addrs))

	// Failover of one shard: its connection resubscribes on the new primary.
	replica := cl.Replicas()[0]
	start := time.Now()
	if err := cl.Failover(replica); err != nil {
		t.Fatalf("failover to %s: %v", replica.Addr(), err)
	}
	if _, ok := owners[replica.Addr()]; ok {
		t.Fatal("a replica owned a channel before the failover")
	}
	ev := subExpect(t, ch, engine.Disconnected)
	t.Logf("after failover: disconnected from %s: %v", ev.Addr, ev.Err)
	ev = subExpect(t, ch, engine.Resubscribed)
	if ev.Addr != replica.Addr() {
		t.Fatalf("resubscribed on %s, want the new primary %s", ev.Addr, replica.Addr())
	}
	t.Logf("resubscribed on the new primary %s %s after the failover started (gap %s)", ev.Addr, time.Since(start).Round(time.Millisecond), ev.Gap)
	for _, c := range chans {
		if n, err := eng.SPublish(ctx, c, "after:"+c).Await(ctx); err != nil || n != 1 {
			t.Fatalf("SPUBLISH %s after failover = %d, %v; want 1", c, n, err)
		}
		if ev := subExpect(t, ch, engine.SubMessage); ev.Message.Channel != c || ev.Message.Payload != "after:"+c {
			t.Fatalf("got %+v, want the message on %s", ev.Message, c)
		}
	}
}

// subClientIDs returns the ids of the connections on node whose client
// name is name (CLIENT LIST).
func subClientIDs(t *testing.T, node *valkeytest.ClusterNode, name string) []string {
	return subClients(t, node, name, func(string) bool { return true })
}

// subShardConnIDs returns the ids of those connections that hold shard
// subscriptions, or held them last (their last command was SSUBSCRIBE or
// SUNSUBSCRIBE).
func subShardConnIDs(t *testing.T, node *valkeytest.ClusterNode, name string) []string {
	return subClients(t, node, name, func(line string) bool {
		return !strings.Contains(line, " ssub=0 ") || strings.Contains(line, " cmd=ssubscribe ") || strings.Contains(line, " cmd=sunsubscribe ")
	})
}

func subClients(t *testing.T, node *valkeytest.ClusterNode, name string, keep func(string) bool) []string {
	t.Helper()
	r, err := node.Do("CLIENT", "LIST")
	if err != nil {
		t.Fatalf("CLIENT LIST on %s: %v", node.Addr(), err)
	}
	list, _ := r.(string)
	var ids []string
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " name="+name+" ") && keep(line) {
			id, _, _ := strings.Cut(line, " ")
			ids = append(ids, id)
		}
	}
	return ids
}

// subWaitFor polls cond until it holds, failing the test after d.
func subWaitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSubscribeReshardSplitsShardConn subscribes to 3 shard channels of
// one primary (one connection), then migrates the slot of ONE of them to
// another primary while a publisher SPUBLISHes a sequence on all three:
// the two others lose nothing and are never interrupted, the moved one
// gets one Disconnected and one Resubscribed naming it and resumes on its
// new owner. Then unsubscribing every channel of a connection closes it.
// Stats counts it all.
func TestSubscribeReshardSplitsShardConn(t *testing.T) {
	cl := valkeytest.StartClusterT(t)
	ctx := ctxT(t)
	const name = "subreshard"
	cfg := config.DefaultConfig().WithAddrs(cl.Addrs()...).WithClusterMode(true)
	cfg.ClientName = name
	eng, err := open(ctx, t, cfg)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	defer eng.Close()
	pub, err := open(ctx, t, config.DefaultConfig().WithAddrs(cl.Addrs()...).WithClusterMode(true))
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	defer pub.Close()

	// Three channels served by one primary, in three slots.
	from, to := cl.Primaries()[0], cl.Primaries()[1]
	ranges, err := cl.SlotsOf(from)
	if err != nil {
		t.Fatal(err)
	}
	var chans []string
	var slots []int
	for i := 0; len(chans) < 3 && i < 10000; i++ {
		c := fmt.Sprintf("rs:%d", i)
		slot, err := cl.KeySlot(c)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(slots, slot) || !slices.ContainsFunc(ranges, func(r [2]int) bool { return r[0] <= slot && slot <= r[1] }) {
			continue
		}
		chans, slots = append(chans, c), append(slots, slot)
	}
	if len(chans) != 3 {
		t.Fatalf("found %d channels on %s", len(chans), from.Addr())
	}
	movedCh := chans[2]

	sub, err := eng.SSubscribe(ctx, chans...)
	if err != nil {
		t.Fatalf("SSubscribe: %v", err)
	}
	defer sub.Close()
	if ev := subExpect(t, sub.Channel(), engine.Subscribed); ev.Addr != from.Addr() {
		t.Fatalf("subscribed on %s, want %s", ev.Addr, from.Addr())
	}

	var (
		mu       sync.Mutex
		got      = map[string]map[int]string{} // channel -> seq -> addr
		events   []engine.SubEvent             // everything but messages
		received int
	)
	for _, c := range chans {
		got[c] = map[int]string{}
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for ev := range sub.Channel() {
			mu.Lock()
			if ev.Kind == engine.SubMessage {
				received++
				if i, err := strconv.Atoi(ev.Message.Payload); err == nil {
					got[ev.Message.Channel][i] = ev.Addr
				}
			} else {
				events = append(events, ev)
			}
			mu.Unlock()
		}
	}()

	// The publisher: a sequence number every millisecond on each channel.
	var (
		sent    = map[string][]int{} // SPUBLISHes that reached >= 1 subscriber
		missed  = map[string]int{}   // SPUBLISHes that reached none (or failed)
		stopPub = make(chan struct{})
		pubDone = make(chan struct{})
	)
	go func() {
		defer close(pubDone)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopPub:
				return
			case <-tick.C:
			}
			for _, c := range chans {
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				n, err := pub.SPublish(pctx, c, strconv.Itoa(i)).Await(pctx)
				cancel()
				if err == nil && n >= 1 {
					sent[c] = append(sent[c], i)
				} else {
					missed[c]++
				}
			}
		}
	}()

	time.Sleep(300 * time.Millisecond) // traffic before the move
	start := time.Now()
	if err := cl.MigrateSlots(from, to, []int{slots[2]}); err != nil {
		t.Fatalf("MigrateSlots: %v", err)
	}
	migrated := time.Now()
	var resub engine.SubEvent
	subWaitFor(t, 10*time.Second, "Resubscribed for the moved channel", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range events {
			if ev.Kind == engine.Resubscribed && ev.ShardChannel == movedCh {
				resub = ev
				return true
			}
		}
		return false
	})
	resumed := time.Since(migrated)
	t.Logf("slot %d of %s migrated in %s; resubscribed on %s %s after the migration ended (gap %s)",
		slots[2], movedCh, migrated.Sub(start).Round(time.Millisecond), resub.Addr, resumed.Round(time.Millisecond), resub.Gap.Round(time.Microsecond))
	if resumed > 2*time.Second {
		t.Fatalf("moved channel resubscribed %s after the migration, want within 2s", resumed)
	}
	if resub.Addr != to.Addr() {
		t.Fatalf("moved channel resubscribed on %s, want its new owner %s", resub.Addr, to.Addr())
	}
	time.Sleep(300 * time.Millisecond) // traffic after the move
	close(stopPub)
	<-pubDone

	// Every SPUBLISH that reached a subscriber was delivered.
	subWaitFor(t, 10*time.Second, "every message that reached a subscriber delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for c, seqs := range sent {
			for _, i := range seqs {
				if _, ok := got[c][i]; !ok {
					return false
				}
			}
		}
		return true
	})
	mu.Lock()
	for _, c := range chans[:2] {
		if missed[c] != 0 {
			t.Errorf("%s (not moved): %d SPUBLISHes reached no subscriber, want 0", c, missed[c])
		}
	}
	var afterMove int
	for i, addr := range got[movedCh] {
		if i > 0 && addr == to.Addr() {
			afterMove++
		}
	}
	if afterMove == 0 {
		t.Errorf("no message on %s from its new owner %s", movedCh, to.Addr())
	}
	var disc, res int
	for _, ev := range events {
		switch {
		case ev.Kind == engine.Disconnected && ev.ShardChannel == movedCh && errors.Is(ev.Err, engine.ErrSlotMoved) && ev.Addr == from.Addr():
			disc++
		case ev.Kind == engine.Resubscribed && ev.ShardChannel == movedCh:
			res++
		default:
			t.Errorf("unexpected event %+v", ev)
		}
	}
	if disc != 1 || res != 1 {
		t.Errorf("moved channel: %d Disconnected, %d Resubscribed; want 1 each", disc, res)
	}
	t.Logf("published per channel (reached a subscriber / reached none): %s %d/%d, %s %d/%d, %s (moved) %d/%d; %d received, %d from the new owner",
		chans[0], len(sent[chans[0]]), missed[chans[0]], chans[1], len(sent[chans[1]]), missed[chans[1]],
		movedCh, len(sent[movedCh]), missed[movedCh], received, afterMove)
	mu.Unlock()

	st := eng.Stats()
	if st.Subscriptions != 1 || st.SubConns != 2 || st.SubMoved != 1 || st.SubReconnects != 0 {
		t.Fatalf("Stats: %d subscriptions, %d conns, %d moved, %d reconnects; want 1, 2, 1, 0",
			st.Subscriptions, st.SubConns, st.SubMoved, st.SubReconnects)
	}

	// A connection left without channels is closed: its dedicated pub/sub
	// connection (the one with a shard subscription on the new owner)
	// leaves the node's CLIENT LIST.
	ded := subShardConnIDs(t, to, name)
	if len(ded) != 1 {
		t.Fatalf("%d connections with shard subscriptions on %s, want 1", len(ded), to.Addr())
	}
	if err := sub.SUnsubscribe(ctx, movedCh); err != nil {
		t.Fatalf("SUnsubscribe: %v", err)
	}
	subWaitFor(t, 10*time.Second, "the emptied connection closed", func() bool {
		return eng.Stats().SubConns == 1 && !slices.Contains(subClientIDs(t, to, name), ded[0])
	})
	if n, err := pub.SPublish(ctx, chans[0], "kept").Await(ctx); err != nil || n != 1 {
		t.Fatalf("SPUBLISH %s after closing the other connection = %d, %v; want 1", chans[0], n, err)
	}
	if err := sub.SUnsubscribe(ctx, chans[0], chans[1]); err != nil {
		t.Fatalf("SUnsubscribe: %v", err)
	}
	subWaitFor(t, 10*time.Second, "the last shard connection closed", func() bool {
		return eng.Stats().SubConns == 0 && len(subShardConnIDs(t, from, name)) == 0
	})
	// Subscribing again opens a new one.
	if err := sub.SSubscribe(ctx, chans[0]); err != nil {
		t.Fatalf("SSubscribe again: %v", err)
	}
	if n, err := pub.SPublish(ctx, chans[0], "again").Await(ctx); err != nil || n != 1 {
		t.Fatalf("SPUBLISH %s after subscribing again = %d, %v; want 1", chans[0], n, err)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	<-readerDone
	mu.Lock()
	defer mu.Unlock()
	if st := eng.Stats(); st.Subscriptions != 0 || st.SubConns != 0 || st.SubMessages != uint64(received) {
		t.Fatalf("Stats after Close: %d subscriptions, %d conns, %d messages; want 0, 0, %d", st.Subscriptions, st.SubConns, st.SubMessages, received)
	}
}

// TestSubMessagesCountedWhenRead: a message read from Channel is in
// Stats().SubMessages. The count was added after the channel send, so with
// the one-item buffer full the message that waited to be sent could be
// read (the receive that freed the room hands it over at once) before its
// sender ran again to count it: Stats then showed one message fewer than
// the reader had.
func TestSubMessagesCountedWhenRead(t *testing.T) {
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng := subEngine(t, srv)
	defer eng.Close()
	ctx := ctxT(t)
	sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"cnt"}, Buffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	subExpect(t, sub.Channel(), engine.Subscribed)
	read := uint64(0)
	for round := range 100 {
		// Two at once: the first fills the buffer, the second waits to be
		// sent until the first is read.
		a, b := eng.Publish(ctx, "cnt", "a"), eng.Publish(ctx, "cnt", "b")
		if _, err := futures.All(ctx, a, b); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			subExpect(t, sub.Channel(), engine.SubMessage)
			read++
			if n := eng.Stats().SubMessages; n < read {
				t.Fatalf("round %d: %d messages read, Stats().SubMessages %d", round, read, n)
			}
		}
	}
}

// TestSubscribeStats checks the pub/sub counters of Stats in standalone
// mode: live subscriptions and connections, delivered and dropped
// messages, reconnects.
func TestSubscribeStats(t *testing.T) {
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng := subEngine(t, srv)
	ctx := ctxT(t)
	// A 2-item channel nobody reads: the Subscribed event and 1 message fit.
	full, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"st:drop"}, Buffer: 2, Overflow: engine.OverflowDrop})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := eng.Subscribe(ctx, "st:read")
	if err != nil {
		t.Fatal(err)
	}
	subExpect(t, sub.Channel(), engine.Subscribed)
	if st := eng.Stats(); st.Subscriptions != 2 || st.SubConns != 2 {
		t.Fatalf("Stats: %d subscriptions, %d conns; want 2, 2", st.Subscriptions, st.SubConns)
	}
	for i := range 10 {
		subPublish(t, eng, "st:drop", strconv.Itoa(i))
	}
	for i := range 5 {
		subPublish(t, eng, "st:read", strconv.Itoa(i))
	}
	for range 5 {
		subExpect(t, sub.Channel(), engine.SubMessage)
	}
	subWaitFor(t, 10*time.Second, "9 dropped", func() bool { return eng.Stats().SubDropped == 9 })
	if st := eng.Stats(); st.SubMessages != 6 || full.Dropped() != 9 {
		t.Fatalf("Stats: %d messages delivered, Dropped() %d; want 6, 9", st.SubMessages, full.Dropped())
	}
	// A restart: the subscription that is read reconnects; the other waits
	// to hand out its Disconnected.
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	subExpect(t, sub.Channel(), engine.Disconnected)
	subExpect(t, sub.Channel(), engine.Resubscribed)
	if st := eng.Stats(); st.SubReconnects != 1 || st.SubMoved != 0 {
		t.Fatalf("Stats: %d reconnects, %d moved; want 1, 0", st.SubReconnects, st.SubMoved)
	}
	_ = full.Close()
	_ = sub.Close()
	if st := eng.Stats(); st.Subscriptions != 0 || st.SubConns != 0 {
		t.Fatalf("Stats after Close: %d subscriptions, %d conns; want 0, 0", st.Subscriptions, st.SubConns)
	}
	_ = eng.Close()
}
