package engine_test

// SubscribeWith returns once the server confirmed every subscription it
// asked for, whatever the Buffer, the message rate and the Handler do:
// the items that arrive meanwhile are held (nobody can read the channel
// yet, and the Handler may wait for the Subscription) and handed over
// afterwards, in order, none lost or duplicated. Before, the connection's
// reader waited for the full channel or for the Handler, never read the
// next confirmation, and SubscribeWith failed at its ctx's end although
// the server had confirmed (with context.Background it never returned).

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// gateLimit bounds one SubscribeWith: far more than the confirmations
// take on a local server, far less than the test's deadline.
const gateLimit = 3 * time.Second

// gatePub publishes "0", "1", ... on a channel, 50 at a time (pipelined,
// so in order), until closed: a busy channel whose messages can be
// checked for loss, duplicates and order.
type gatePub struct {
	first atomic.Int64 // the first number that reached a subscriber; -1 before
	sent  atomic.Int64 // how many were published
	stop  chan struct{}
	done  chan error
}

func startGatePub(ctx context.Context, eng *engine.Engine, channel string) *gatePub {
	p := &gatePub{stop: make(chan struct{}), done: make(chan error, 1)}
	p.first.Store(-1)
	go func() {
		var seq int64
		fs := make([]*futures.Future[int64], 50)
		for {
			select {
			case <-p.stop:
				p.done <- nil
				return
			default:
			}
			for i := range fs {
				fs[i] = eng.Publish(ctx, channel, strconv.FormatInt(seq+int64(i), 10))
			}
			for i, f := range fs {
				n, err := f.Await(ctx)
				if err != nil {
					p.done <- err
					return
				}
				if n > 0 {
					p.first.CompareAndSwap(-1, seq+int64(i))
				}
			}
			seq += int64(len(fs))
			p.sent.Store(seq)
		}
	}()
	return p
}

// busy waits until p has published n messages.
func (p *gatePub) busy(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.sent.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the publisher sent %d messages in 10 s", p.sent.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

// firstReached returns the first number that reached a subscriber (its
// PUBLISH may be answered after the subscriber read it).
func (p *gatePub) firstReached(t *testing.T) int64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n := p.first.Load(); n >= 0 {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatal("no PUBLISH reached the subscriber within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// close stops the publisher and returns its error.
func (p *gatePub) close() error {
	close(p.stop)
	return <-p.done
}

// gateMessages checks items, a subscription's items in the order they
// were handed over: the Subscribed event, then messages numbered from
// first, consecutive (nothing lost nor repeated) or, with gaps (dropped
// messages), increasing.
func gateMessages(t *testing.T, items []engine.SubEvent, first int64, gaps bool) {
	t.Helper()
	if len(items) == 0 || items[0].Kind != engine.Subscribed {
		t.Fatalf("first item %+v, want Subscribed", items[:min(len(items), 1)])
	}
	prev := int64(-1)
	for i, ev := range items[1:] {
		if ev.Kind != engine.SubMessage {
			t.Fatalf("item %d: %s %+v, want a message", i+1, ev.Kind, ev)
		}
		n, err := strconv.ParseInt(ev.Message.Payload, 10, 64)
		if err != nil {
			t.Fatalf("item %d: payload %q", i+1, ev.Message.Payload)
		}
		switch {
		case i == 0 && !gaps && n != first:
			t.Fatalf("first message %d, want %d: the first that reached the subscriber (%d lost)", n, first, n-first)
		case i > 0 && !gaps && n != prev+1:
			t.Fatalf("message %d after %d: lost, repeated or out of order", n, prev)
		case i > 0 && n <= prev:
			t.Fatalf("message %d after %d: repeated or out of order", n, prev)
		}
		prev = n
	}
}

// SubscribeWith with channels and patterns or shard channels and a small
// Buffer, on a channel busy before it was subscribed: it returns nil once
// the server confirmed everything, and the channel then delivers every
// message from the first that reached the subscriber on, in order (with
// OverflowDrop: in order, the excess dropped).
func TestSubscribeWithSmallBufferBusyChannel(t *testing.T) {
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng, closeEng := hcEngine(t, srv)
	defer closeEng()
	ctx := ctxT(t)
	cases := []struct {
		name string
		o    engine.SubscribeOptions
	}{
		{"patterns/buffer=1", engine.SubscribeOptions{Patterns: []string{"gate:other:*"}, Buffer: 1}},
		{"patterns/buffer=16", engine.SubscribeOptions{Patterns: []string{"gate:other:*"}, Buffer: 16}},
		{"shard/buffer=1", engine.SubscribeOptions{ShardChannels: []string{"gate:shard"}, Buffer: 1}},
		{"all/buffer=2", engine.SubscribeOptions{Patterns: []string{"gate:other:*"}, ShardChannels: []string{"gate:shard"}, Buffer: 2}},
		{"patterns/buffer=1/drop", engine.SubscribeOptions{Patterns: []string{"gate:other:*"}, Buffer: 1, Overflow: engine.OverflowDrop}},
	}
	for ci, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for attempt := range 3 {
				channel := "gate:busy:" + strconv.Itoa(ci) + ":" + strconv.Itoa(attempt)
				pub := startGatePub(ctx, eng, channel)
				pub.busy(t, 200)
				o := c.o
				o.Channels = []string{channel}
				sctx, cancel := context.WithTimeout(ctx, gateLimit)
				start := time.Now()
				sub, err := eng.SubscribeWith(sctx, o)
				cancel()
				if err != nil {
					_ = pub.close()
					t.Fatalf("attempt %d: SubscribeWith failed after %s: %v, want nil (the server confirmed)", attempt, time.Since(start), err)
				}
				const n = 300
				items := []engine.SubEvent{subExpect(t, sub.Channel(), engine.Subscribed)}
				for range n {
					items = append(items, subNext(t, sub.Channel(), 10*time.Second))
				}
				if err := pub.close(); err != nil {
					t.Fatalf("publish: %v", err)
				}
				drop := o.Overflow == engine.OverflowDrop
				gateMessages(t, items, pub.firstReached(t), drop)
				if !drop && sub.Dropped() != 0 {
					t.Fatalf("Dropped = %d with OverflowBlock", sub.Dropped())
				}
				// The other kinds are subscribed too.
				if len(o.Patterns) > 0 {
					if got := subPublish(t, eng, "gate:other:x", "p"); got != 1 {
						t.Fatalf("PUBLISH on the pattern reached %d subscribers, want 1", got)
					}
				}
				if len(o.ShardChannels) > 0 {
					if got, err := eng.SPublish(ctx, "gate:shard", "s").Await(ctx); err != nil || got != 1 {
						t.Fatalf("SPUBLISH on the shard channel: %d, %v, want 1 subscriber", got, err)
					}
				}
				if err := sub.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
			}
		})
	}
}

// A Handler that waits for its own Subscription (the way to let it call
// the Subscription's methods), on a busy channel, with channels and
// patterns: SubscribeWith(context.Background()) returns without calling
// it; the Handler then gets the Subscribed event and every message from
// the first that reached the subscriber on, in order, and closes the
// subscription from within.
func TestSubscribeWithHandlerWaitsForSubscription(t *testing.T) {
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng, closeEng := hcEngine(t, srv)
	defer closeEng()
	ctx := ctxT(t)
	pub := startGatePub(ctx, eng, "gate:h")
	pub.busy(t, 200)
	const n = 300
	var (
		sub      *engine.Subscription
		ready    = make(chan struct{})
		closed   = make(chan struct{})
		items    []engine.SubEvent
		after    atomic.Int32 // items after the Close
		closeErr error
	)
	handle := func(ev engine.SubEvent) {
		<-ready // sub is set
		select {
		case <-closed:
			after.Add(1)
			return
		default:
		}
		items = append(items, ev)
		if len(items) == n+1 {
			closeErr = sub.Close()
			close(closed)
		}
	}
	type result struct {
		sub *engine.Subscription
		err error
	}
	res := make(chan result, 1)
	go func() {
		s, err := eng.SubscribeWith(context.Background(), engine.SubscribeOptions{
			Channels: []string{"gate:h"}, Patterns: []string{"gate:other:*"}, Handler: handle})
		res <- result{s, err}
	}()
	var r result
	select {
	case r = <-res:
	case <-time.After(gateLimit):
		close(ready) // let it go on, so that the test ends
		r = <-res
		t.Errorf("deadlock: SubscribeWith(context.Background()) had not returned after %s (then: %v)", gateLimit, r.err)
		if r.sub != nil {
			_ = r.sub.Close()
		}
		_ = pub.close()
		t.FailNow()
	}
	if r.err != nil {
		close(ready)
		_ = pub.close()
		t.Fatalf("SubscribeWith: %v", r.err)
	}
	sub = r.sub
	close(ready)
	hcWait(t, closed, "the Handler got its messages and closed the subscription")
	if err := pub.close(); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if closeErr != nil {
		t.Fatalf("Close from the Handler: %v", closeErr)
	}
	if err := hcSubEnds(t, sub); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
	if a := after.Load(); a != 0 {
		t.Fatalf("the Handler got %d items after its Close", a)
	}
	gateMessages(t, items, pub.firstReached(t), false)
}

// A Handler slow on the Subscribed event (loading a snapshot, say) does
// not hold SubscribeWith past its ctx: it returns nil at once, the
// subscription stays, and the Handler gets the messages published
// meanwhile after the event, in order.
func TestSubscribeWithSlowHandlerKeepsCtx(t *testing.T) {
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng, closeEng := hcEngine(t, srv)
	defer closeEng()
	const slow = 1500 * time.Millisecond
	var (
		mu    sync.Mutex
		items []engine.SubEvent
	)
	sctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	sub, err := eng.SubscribeWith(sctx, engine.SubscribeOptions{Channels: []string{"gate:slow"}, Handler: func(ev engine.SubEvent) {
		if ev.Kind == engine.Subscribed {
			time.Sleep(slow)
		}
		mu.Lock()
		items = append(items, ev)
		mu.Unlock()
	}})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("SubscribeWith failed after %s: %v, want nil (the server confirmed)", took, err)
	}
	if took >= slow {
		t.Fatalf("SubscribeWith took %s: it waited for the Handler", took)
	}
	for i := range 3 {
		if got := subPublish(t, eng, "gate:slow", strconv.Itoa(i)); got != 1 {
			t.Fatalf("PUBLISH reached %d subscribers, want 1", got)
		}
	}
	deadline := time.Now().Add(slow + 10*time.Second)
	for {
		mu.Lock()
		l := len(items)
		mu.Unlock()
		if l == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Handler got %d items, want 4", l)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	gateMessages(t, items, 0, false)
}
