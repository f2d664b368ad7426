package engine_test

// User-side audit of subscriptions and stream consumers in standalone
// mode, default config unless the option is what is tested.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// auditSeqs collects, per channel, the sequence numbers a subscription
// received (payload "<seq>" or "<seq>:<padding>").
type auditSeqs struct {
	mu     sync.Mutex
	by     map[string][]int
	events []engine.SubEvent
}

func newAuditSeqs() *auditSeqs { return &auditSeqs{by: map[string][]int{}} }

func (a *auditSeqs) add(t *testing.T, ev engine.SubEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ev.Kind != engine.SubMessage {
		a.events = append(a.events, ev)
		return
	}
	p, _, _ := strings.Cut(ev.Message.Payload, ":")
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Errorf("payload %q", ev.Message.Payload)
		return
	}
	a.by[ev.Message.Channel] = append(a.by[ev.Message.Channel], n)
}

func (a *auditSeqs) of(c string) []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int(nil), a.by[c]...)
}

func (a *auditSeqs) kinds() []engine.SubEventKind {
	a.mu.Lock()
	defer a.mu.Unlock()
	var k []engine.SubEventKind
	for _, ev := range a.events {
		k = append(k, ev.Kind)
	}
	return k
}

// read drains ch into a until it is closed; the returned channel is
// closed then.
func (a *auditSeqs) read(t *testing.T, ch <-chan engine.SubEvent) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range ch {
			a.add(t, ev)
		}
	}()
	return done
}

// auditIncreasing fails unless seqs is strictly increasing (publish order,
// no duplicate).
func auditIncreasing(t *testing.T, what string, seqs []int) {
	t.Helper()
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("%s: %d after %d (out of order or duplicate)", what, seqs[i], seqs[i-1])
		}
	}
}

// auditPublishAll publishes msgs[i] on chans[i] as futures fired from one
// goroutine (so in order) and waits for them.
func auditPublishAll(t *testing.T, ctx context.Context, eng *engine.Engine, chans, msgs []string) {
	t.Helper()
	fs := make([]*futures.Future[int64], len(msgs))
	for i := range msgs {
		fs[i] = eng.Publish(ctx, chans[i], msgs[i])
	}
	for _, f := range fs {
		if _, err := f.Await(ctx); err != nil {
			t.Fatalf("PUBLISH: %v", err)
		}
	}
}

func auditWaitLen(t *testing.T, what string, n func() int, want int) {
	t.Helper()
	csWait(t, 10*time.Second, fmt.Sprintf("%s: %d items", what, want), func() bool { return n() >= want })
}

func TestAuditSubscriber(t *testing.T) {
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng := subEngine(t, srv)
	ctx := ctxT(t)

	// Per channel: publish order, no duplicates, nothing missing; a second
	// Subscription of the same channel gets every message too.
	t.Run("OrderTwoSubscriptions", func(t *testing.T) {
		s1, err := eng.Subscribe(ctx, "o:a", "o:b", "o:c")
		if err != nil {
			t.Fatal(err)
		}
		s2, err := eng.Subscribe(ctx, "o:a")
		if err != nil {
			t.Fatal(err)
		}
		r1, r2 := newAuditSeqs(), newAuditSeqs()
		d1, d2 := r1.read(t, s1.Channel()), r2.read(t, s2.Channel())
		const n = 3000
		chans, msgs := make([]string, n), make([]string, n)
		for i := range n {
			chans[i] = []string{"o:a", "o:b", "o:c"}[i%3]
			msgs[i] = strconv.Itoa(i)
		}
		auditPublishAll(t, ctx, eng, chans, msgs)
		auditWaitLen(t, "o:c", func() int { return len(r1.of("o:c")) }, n/3)
		auditWaitLen(t, "second subscription", func() int { return len(r2.of("o:a")) }, n/3)
		_ = s1.Close()
		_ = s2.Close()
		<-d1
		<-d2
		for _, c := range []string{"o:a", "o:b", "o:c"} {
			got := r1.of(c)
			auditIncreasing(t, c, got)
			if len(got) != n/3 {
				t.Fatalf("%s: %d messages, want %d", c, len(got), n/3)
			}
		}
		if got := r2.of("o:a"); len(got) != n/3 || len(r2.by) != 1 {
			t.Fatalf("second subscription: %d messages on o:a, channels %d", len(got), len(r2.by))
		} else {
			auditIncreasing(t, "second o:a", got)
		}
	})

	// Subscribe, PSubscribe and Unsubscribe while a publisher runs: what
	// is published after a Subscribe returned arrives, nothing published
	// after an Unsubscribe returned does, and per channel the order holds.
	t.Run("ChangesWhileFlowing", func(t *testing.T) {
		sub, err := eng.Subscribe(ctx, "f:a")
		if err != nil {
			t.Fatal(err)
		}
		rec := newAuditSeqs()
		done := rec.read(t, sub.Channel())
		var sent atomic.Int64 // seqs [0, sent) were published
		stop := make(chan struct{})
		pubDone := make(chan error, 1)
		chanOf := func(i int) string { return []string{"f:a", "f:b", "f:p.x"}[i%3] }
		go func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					pubDone <- nil
					return
				default:
				}
				if _, err := eng.Publish(ctx, chanOf(i), strconv.Itoa(i)).Await(ctx); err != nil {
					pubDone <- err
					return
				}
				sent.Store(int64(i + 1))
			}
		}()
		waitSent := func(n int64) {
			csWait(t, 10*time.Second, "publisher progress", func() bool { return sent.Load() >= n })
		}
		waitSent(300)
		if err := sub.Subscribe(ctx, "f:b"); err != nil {
			t.Fatal(err)
		}
		fromB := int(sent.Load()) + 1 // every f:b seq >= fromB was published after SUBSCRIBE ran
		waitSent(int64(fromB + 300))
		if err := sub.PSubscribe(ctx, "f:p.*"); err != nil {
			t.Fatal(err)
		}
		fromP := int(sent.Load()) + 1
		waitSent(int64(fromP + 300))
		beforeUnsub := int(sent.Load()) // every f:a seq < this was published before UNSUBSCRIBE ran
		if err := sub.Unsubscribe(ctx, "f:a"); err != nil {
			t.Fatal(err)
		}
		afterUnsub := int(sent.Load()) + 1
		waitSent(int64(afterUnsub + 300))
		close(stop)
		if err := <-pubDone; err != nil {
			t.Fatal(err)
		}
		end := int(sent.Load())
		// The last message of each subscribed channel arrives.
		lastOf := func(c string) int {
			for i := end - 1; i >= 0; i-- {
				if chanOf(i) == c {
					return i
				}
			}
			return -1
		}
		for _, c := range []string{"f:b", "f:p.x"} {
			last := lastOf(c)
			csWait(t, 10*time.Second, "last message of "+c, func() bool {
				got := rec.of(c)
				return len(got) > 0 && got[len(got)-1] == last
			})
		}
		_ = sub.Close()
		<-done
		check := func(c string, from, to int) {
			got := rec.of(c)
			auditIncreasing(t, c, got)
			have := map[int]bool{}
			for _, n := range got {
				have[n] = true
				if chanOf(n) != c {
					t.Fatalf("%s got seq %d of %s", c, n, chanOf(n))
				}
			}
			for i := from; i < to; i++ {
				if chanOf(i) == c && !have[i] {
					t.Fatalf("%s: seq %d (published in [%d, %d) while subscribed) missing", c, i, from, to)
				}
			}
		}
		check("f:a", 0, beforeUnsub)
		check("f:b", fromB, end)
		check("f:p.x", fromP, end)
		for _, n := range rec.of("f:a") {
			if n >= afterUnsub {
				t.Fatalf("f:a seq %d arrived, published after Unsubscribe returned (%d)", n, afterUnsub)
			}
		}
	})

	// Unsubscribing every channel keeps the subscription usable: a later
	// Subscribe gets messages again.
	t.Run("UnsubscribeAllThenAgain", func(t *testing.T) {
		sub, err := eng.Subscribe(ctx, "ua:a")
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		subExpect(t, sub.Channel(), engine.Subscribed)
		if err := sub.Unsubscribe(ctx, "ua:a"); err != nil {
			t.Fatal(err)
		}
		if n := subPublish(t, eng, "ua:a", "gone"); n != 0 {
			t.Fatalf("PUBLISH after Unsubscribe reached %d", n)
		}
		if err := sub.PSubscribe(ctx, "ua:*"); err != nil {
			t.Fatal(err)
		}
		if n := subPublish(t, eng, "ua:b", "back"); n != 1 {
			t.Fatalf("PUBLISH after PSubscribe reached %d", n)
		}
		ev := subNext(t, sub.Channel(), 10*time.Second)
		if ev.Kind != engine.SubMessage || ev.Message.Payload != "back" || ev.Message.Pattern != "ua:*" {
			t.Fatalf("got %s %+v, want the message \"back\" by pattern", ev.Kind, ev.Message)
		}
	})

	// Binary and unicode channel names, patterns and payloads; 1 MB
	// messages.
	t.Run("BinaryNamesHugeMessages", func(t *testing.T) {
		bin := "bin\x00\xff\r\n *?[ 日本"
		sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{bin}, Patterns: []string{"uni:日本*"}})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		subExpect(t, sub.Channel(), engine.Subscribed)
		payload := "\x00\xff\r\n$-1\r\n日本"
		huge := strings.Repeat("\x00abc\xff", 1<<20/5+1)
		if n := subPublish(t, eng, bin, payload); n != 1 {
			t.Fatalf("PUBLISH on binary channel reached %d", n)
		}
		if n := subPublish(t, eng, "uni:日本\x00語", huge); n != 1 {
			t.Fatalf("PUBLISH on unicode channel reached %d", n)
		}
		if n := subPublish(t, eng, bin, huge+"2"); n != 1 {
			t.Fatalf("PUBLISH huge reached %d", n)
		}
		ev := subExpect(t, sub.Channel(), engine.SubMessage)
		if ev.Message.Channel != bin || ev.Message.Payload != payload || ev.Message.Pattern != "" {
			t.Fatalf("binary message: %q", ev.Message)
		}
		ev = subExpect(t, sub.Channel(), engine.SubMessage)
		if ev.Message.Channel != "uni:日本\x00語" || ev.Message.Pattern != "uni:日本*" || ev.Message.Payload != huge {
			t.Fatalf("pattern message: channel %q pattern %q, %d bytes", ev.Message.Channel, ev.Message.Pattern, len(ev.Message.Payload))
		}
		ev = subExpect(t, sub.Channel(), engine.SubMessage)
		if ev.Message.Payload != huge+"2" {
			t.Fatalf("huge message: %d bytes, want %d", len(ev.Message.Payload), len(huge)+1)
		}
	})

	// OverflowDrop with a reader that does not keep up: every message is
	// delivered or counted dropped, in order; OverflowBlock and a slow
	// Handler: nothing lost, in order.
	t.Run("SlowReaders", func(t *testing.T) {
		drop, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"sl:d"}, Buffer: 8, Overflow: engine.OverflowDrop})
		if err != nil {
			t.Fatal(err)
		}
		var hmu sync.Mutex
		var hgot []int
		slow, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"sl:d"}, Handler: func(ev engine.SubEvent) {
			if ev.Kind != engine.SubMessage {
				return
			}
			time.Sleep(100 * time.Microsecond) // the handler's slowness is what is tested
			n, _ := strconv.Atoi(ev.Message.Payload)
			hmu.Lock()
			hgot = append(hgot, n)
			hmu.Unlock()
		}})
		if err != nil {
			t.Fatal(err)
		}
		subExpect(t, drop.Channel(), engine.Subscribed)
		const n = 1000
		chans, msgs := make([]string, n), make([]string, n)
		for i := range n {
			chans[i], msgs[i] = "sl:d", strconv.Itoa(i)
		}
		auditPublishAll(t, ctx, eng, chans, msgs)
		csWait(t, 10*time.Second, "handler got every message", func() bool {
			hmu.Lock()
			defer hmu.Unlock()
			return len(hgot) == n
		})
		var got []int
		for len(got)+int(drop.Dropped()) < n {
			ev := subExpect(t, drop.Channel(), engine.SubMessage)
			m, _ := strconv.Atoi(ev.Message.Payload)
			got = append(got, m)
		}
		if drop.Dropped() == 0 || len(got) < 8 {
			t.Fatalf("OverflowDrop: %d received, %d dropped; want the buffer's 8 received and drops", len(got), drop.Dropped())
		}
		auditIncreasing(t, "OverflowDrop", got)
		hmu.Lock()
		auditIncreasing(t, "Handler", hgot)
		hmu.Unlock()
		_ = drop.Close()
		_ = slow.Close()
	})

	// Close while messages flow and nobody reads (OverflowBlock, full
	// channel): it returns promptly, the channel closes, no goroutine is
	// left (subNoLeak).
	t.Run("CloseDuringDelivery", func(t *testing.T) {
		sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"cl:x"}, Buffer: 1})
		if err != nil {
			t.Fatal(err)
		}
		chans, msgs := make([]string, 5000), make([]string, 5000)
		for i := range chans {
			chans[i], msgs[i] = "cl:x", strconv.Itoa(i)
		}
		auditPublishAll(t, ctx, eng, chans, msgs)
		start := time.Now()
		if err := sub.Close(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("Close took %s with a full channel", d)
		}
		subClosed(t, sub.Channel())
		if !errors.Is(sub.Subscribe(ctx, "cl:y"), engine.ErrClosed) {
			t.Fatalf("Subscribe on a closed subscription: want ErrClosed")
		}
	})
	_ = eng.Close()
}

// A server crash and restart on the same port, then CLIENT KILL TYPE
// pubsub from another connection: each reported as one Disconnected and
// one Resubscribed with its gap; every message PUBLISH said was received
// arrives, once, in order; delivery goes on.
func TestAuditSubscriberOutages(t *testing.T) {
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng := subEngine(t, srv)
	pub := subEngine(t, srv)
	ctx := ctxT(t)
	sub, err := eng.Subscribe(ctx, "out:ch")
	if err != nil {
		t.Fatal(err)
	}
	rec := newAuditSeqs()
	done := rec.read(t, sub.Channel())
	var mu sync.Mutex
	var delivered []int
	seq := 0
	publish := func(k int) {
		for range k {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			n, err := pub.Publish(pctx, "out:ch", strconv.Itoa(seq)).Await(pctx)
			cancel()
			if err == nil && n == 1 {
				mu.Lock()
				delivered = append(delivered, seq)
				mu.Unlock()
			}
			seq++
		}
	}
	resubs := func() int {
		c := 0
		for _, k := range rec.kinds() {
			if k == engine.Resubscribed {
				c++
			}
		}
		return c
	}
	// The publishing engine's own connection breaks in each outage too:
	// wait until it publishes again before counting on its messages.
	pubUp := func() {
		csWait(t, 10*time.Second, "publisher connected", func() bool {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, err := pub.Publish(pctx, "out:other", "x").Await(pctx)
			return err == nil
		})
	}
	// A PUBLISH that counted the subscriber has queued the message to it,
	// and Redis writes the publisher's reply first: a kill -9 right after
	// the reply can lose the message with the server's output buffer (seen
	// under a CPU hog). Wait for it to arrive before each fault.
	received := func(what string) {
		mu.Lock()
		last := delivered[len(delivered)-1]
		mu.Unlock()
		csWait(t, 10*time.Second, what, func() bool {
			got := rec.of("out:ch")
			return len(got) > 0 && got[len(got)-1] == last
		})
	}
	publish(200)
	received("the messages before the kill")
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	publish(5) // fail or reach nobody
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	csWait(t, 10*time.Second, "Resubscribed after the restart", func() bool { return resubs() == 1 })
	pubUp()
	publish(200)
	received("the messages before CLIENT KILL")
	if n, err := srv.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil || n != int64(1) {
		t.Fatalf("CLIENT KILL TYPE pubsub: %v, %v", n, err)
	}
	publish(5)
	csWait(t, 10*time.Second, "Resubscribed after CLIENT KILL", func() bool { return resubs() == 2 })
	pubUp()
	publish(200)
	mu.Lock()
	want := append([]int(nil), delivered...)
	mu.Unlock()
	if len(want) < 600 {
		t.Fatalf("only %d messages reached the subscriber per PUBLISH, want the 600 published while it was subscribed", len(want))
	}
	received("the last message")
	_ = sub.Close()
	<-done
	got := rec.of("out:ch")
	auditIncreasing(t, "out:ch", got)
	have := map[int]bool{}
	for _, n := range got {
		have[n] = true
	}
	for _, n := range want {
		if !have[n] {
			t.Fatalf("message %d reached the subscriber per PUBLISH but was not delivered", n)
		}
	}
	kinds := rec.kinds()
	wantKinds := []engine.SubEventKind{engine.Subscribed, engine.Disconnected, engine.Resubscribed, engine.Disconnected, engine.Resubscribed}
	if fmt.Sprint(kinds) != fmt.Sprint(wantKinds) {
		t.Fatalf("events %v, want %v", kinds, wantKinds)
	}
	rec.mu.Lock()
	for _, ev := range rec.events {
		switch ev.Kind {
		case engine.Disconnected:
			if ev.Err == nil || ev.Addr != srv.Addr() {
				t.Errorf("Disconnected %+v: want an error and the address", ev)
			}
		case engine.Resubscribed:
			if ev.Gap <= 0 || ev.Addr != srv.Addr() {
				t.Errorf("Resubscribed %+v: want a gap and the address", ev)
			}
		}
	}
	rec.mu.Unlock()
	t.Logf("%d published, %d reached the subscriber per PUBLISH, %d delivered", seq, len(want), len(got))

	// Close while the server is down and the subscription keeps
	// re-dialling: prompt, the channel closed, nothing left behind.
	sub2, err := eng.Subscribe(ctx, "out:down")
	if err != nil {
		t.Fatal(err)
	}
	subExpect(t, sub2.Channel(), engine.Subscribed)
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	subExpect(t, sub2.Channel(), engine.Disconnected)
	start := time.Now()
	if err := sub2.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close with the server down took %s", d)
	}
	subClosed(t, sub2.Channel())
	_ = eng.Close()
	_ = pub.Close()
}

// auditHandled records the entries a consumer's handler succeeded on.
type auditHandled struct {
	mu  sync.Mutex
	ids map[string]int
}

func (h *auditHandled) add(id string) {
	h.mu.Lock()
	h.ids[id]++
	h.mu.Unlock()
}

func (h *auditHandled) count(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ids[id]
}

// all reports whether every id was handled.
func (h *auditHandled) all(ids []string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		if h.ids[id] == 0 {
			return false
		}
	}
	return true
}

func newAuditHandled() *auditHandled { return &auditHandled{ids: map[string]int{}} }

// auditConsume starts a consumer of stream (group g, default options)
// whose handler records key(entry) for every entry it is given; the
// consumer is closed when t ends.
func auditConsume(t *testing.T, ctx context.Context, eng *engine.Engine, stream string, key func(engine.XEntry) string) (*auditHandled, *engine.Consumer) {
	t.Helper()
	h := newAuditHandled()
	c, err := eng.Consume(ctx, stream, "g", "w1", func(_ context.Context, x engine.XEntry) error {
		h.add(key(x))
		return nil
	}, engine.ConsumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return h, c
}

// auditXAddEach XADDs n entries one at a time (each awaited) and returns
// their IDs.
func auditXAddEach(t *testing.T, ctx context.Context, eng *engine.Engine, stream string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		id, err := eng.XAdd(ctx, stream, "n", strconv.Itoa(i)).Await(ctx)
		if err != nil {
			t.Fatalf("XADD: %v", err)
		}
		ids[i] = id
	}
	return ids
}

func TestAuditConsumer(t *testing.T) {
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng := subEngine(t, srv)
	ctx := ctxT(t)

	// Every entry handled once (no faults) and acknowledged.
	t.Run("EveryEntryOnce", func(t *testing.T) {
		h, c := auditConsume(t, ctx, eng, "ac:s1", func(x engine.XEntry) string { return x.ID })
		ids := csProduce(t, ctx, eng, "ac:s1", 0, 2000)
		csWait(t, 10*time.Second, "all handled", func() bool { return h.all(ids) })
		csWait(t, 10*time.Second, "all acked", func() bool { return csPending(t, ctx, eng, "ac:s1", "g") == 0 })
		// Acked counts an XACK when its reply arrives, which may be after
		// the server shows nothing pending.
		csWait(t, 10*time.Second, "XACK replies counted", func() bool { return c.Stats().Acked >= 2000 })
		for _, id := range ids {
			if n := h.count(id); n != 1 {
				t.Fatalf("%s handled %d times without any fault", id, n)
			}
		}
		if st := c.Stats(); st.Acked != 2000 || st.Handled != 2000 || st.Failed != 0 {
			t.Fatalf("stats %+v", st)
		}
	})

	// A handler error or panic leaves the entry pending; a reclaim round
	// hands it over again (ClaimIdle is what is tested: short here) until
	// it succeeds; nothing else is held up or lost.
	t.Run("HandlerErrorsRedelivered", func(t *testing.T) {
		h := newAuditHandled()
		var tries sync.Map
		c, err := eng.Consume(ctx, "ac:s2", "g", "w1", func(_ context.Context, x engine.XEntry) error {
			n, _ := strconv.Atoi(x.Fields["seq"])
			k, _ := tries.LoadOrStore(x.ID, new(atomic.Int32))
			try := k.(*atomic.Int32).Add(1)
			switch {
			case n%10 == 0 && try < 3:
				return fmt.Errorf("failing %d, try %d", n, try)
			case n%25 == 1 && try == 1:
				panic("handler bug")
			}
			h.add(x.ID)
			return nil
		}, engine.ConsumeOptions{ClaimIdle: 100 * time.Millisecond, ClaimInterval: 50 * time.Millisecond, Block: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ids := csProduce(t, ctx, eng, "ac:s2", 0, 500)
		csWait(t, 15*time.Second, "all handled", func() bool { return h.all(ids) })
		csWait(t, 10*time.Second, "all acked", func() bool { return csPending(t, ctx, eng, "ac:s2", "g") == 0 })
		// Acked counts an XACK when its reply arrives, which may be after
		// the server shows nothing pending.
		csWait(t, 10*time.Second, "XACK replies counted", func() bool { return c.Stats().Acked >= 500 })
		if st := c.Stats(); st.Failed != 50*2+20 || st.Handled < 500 || st.Acked < 500 {
			t.Fatalf("stats %+v, want 120 failures and 500 handled", st)
		}
	})

	// The group is created when missing (MKSTREAM); when it is destroyed
	// under the running consumer, the consumer creates it again and goes
	// on with what is added afterwards.
	t.Run("GroupMissingAndDestroyed", func(t *testing.T) {
		h, _ := auditConsume(t, ctx, eng, "ac:s3", func(x engine.XEntry) string { return x.ID })
		groups, err := eng.XInfoGroups(ctx, "ac:s3").Await(ctx)
		if err != nil || len(groups) != 1 || groups[0].Name != "g" {
			t.Fatalf("groups after Consume on a missing stream: %+v, %v", groups, err)
		}
		ids := auditXAddEach(t, ctx, eng, "ac:s3", 10)
		csWait(t, 10*time.Second, "handled", func() bool { return h.all(ids) })
		if ok, err := eng.XGroupDestroy(ctx, "ac:s3", "g").Await(ctx); err != nil || !ok {
			t.Fatalf("XGROUP DESTROY: %v %v", ok, err)
		}
		ids = auditXAddEach(t, ctx, eng, "ac:s3", 50)
		csWait(t, 10*time.Second, "entries added after the group was destroyed handled", func() bool { return h.all(ids) })
	})

	// The stream deleted under the running consumer (DEL) and produced to
	// again: every entry of the new stream is handled (its XADD was
	// acknowledged: at least once).
	t.Run("StreamDeleted", func(t *testing.T) {
		h, _ := auditConsume(t, ctx, eng, "ac:s4", func(x engine.XEntry) string { return x.Fields["n"] + "@" + x.ID })
		ids := auditXAddEach(t, ctx, eng, "ac:s4", 10)
		csWait(t, 10*time.Second, "handled", func() bool {
			for i, id := range ids {
				if h.count(strconv.Itoa(i)+"@"+id) == 0 {
					return false
				}
			}
			return true
		})
		if n, err := eng.Del(ctx, "ac:s4").Await(ctx); err != nil || n != 1 {
			t.Fatalf("DEL: %d %v", n, err)
		}
		ids = auditXAddEach(t, ctx, eng, "ac:s4", 100)
		csWait(t, 10*time.Second, "entries of the new stream handled", func() bool {
			for i, id := range ids {
				if h.count(strconv.Itoa(i)+"@"+id) == 0 {
					return false
				}
			}
			return true
		})
	})
	_ = eng.Close()
}

// A crash and restart (AOF, fsync always) while a consumer works through a
// stream: every entry ends up handled and acknowledged, none acknowledged
// without its handler having succeeded.
func TestAuditConsumerCrash(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{AppendOnly: true})
	defer subNoLeak(t)()
	eng := subEngine(t, srv)
	ctx := ctxT(t)
	ids := csProduce(t, ctx, eng, "cr:s", 0, 3000)
	h := newAuditHandled()
	var handled atomic.Int64
	c, err := eng.Consume(ctx, "cr:s", "g", "w1", func(_ context.Context, x engine.XEntry) error {
		h.add(x.ID)
		handled.Add(1)
		return nil
	}, engine.ConsumeOptions{StartID: "0", Count: 50})
	if err != nil {
		t.Fatal(err)
	}
	csWait(t, 10*time.Second, "a third handled", func() bool { return handled.Load() >= 1000 })
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	csWait(t, 15*time.Second, "all handled", func() bool { return h.all(ids) })
	csWait(t, 10*time.Second, "pending list empty", func() bool {
		n, err := eng.XPending(ctx, "cr:s", "g").Await(ctx)
		return err == nil && n.Count == 0
	})
	_ = c.Close()
	if st := c.Stats(); st.Reconnects == 0 {
		t.Fatalf("stats %+v: the crash did not make the consumer reconnect", st)
	}
	dup := 0
	for _, id := range ids {
		if h.count(id) > 1 {
			dup++
		}
	}
	t.Logf("3000 entries, %d handled more than once; %+v", dup, c.Stats())

	// Close while the server is down and the consumer re-dials: prompt.
	c2, err := eng.Consume(ctx, "cr:s", "g", "w2", func(context.Context, engine.XEntry) error { return nil }, engine.ConsumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	csWait(t, 10*time.Second, "consumer lost its connection", func() bool { return c2.Stats().LastError != nil })
	start := time.Now()
	_ = c2.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("consumer Close with the server down took %s", d)
	}
	_ = eng.Close()
}
