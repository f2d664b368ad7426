package engine_test

// Close called from a stream consumer's handler or a subscription's
// Handler (the Consumer's, the Subscription's, the engine's) returns: it
// stops the service without waiting for the handler, its caller, and the
// rest of the stop happens once the handler returns. Without that it
// waited for itself: each test then fails after hcLimit with "deadlock"
// (and leaves the engine it deadlocked open, rather than hang the
// package in its cleanup).

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// hcLimit bounds the wait for a Close called from a handler.
const hcLimit = 5 * time.Second

// hcEngine starts an engine on srv; closeEng closes it at the end of a
// test that did not deadlock (a deadlocked engine's Close would hang).
func hcEngine(t *testing.T, srv *valkeytest.Server, mod ...func(config.Config) config.Config) (eng *engine.Engine, closeEng func()) {
	t.Helper()
	cfg := config.DefaultConfig().WithAddrs(srv.Addr())
	for _, m := range mod {
		cfg = m(cfg)
	}
	eng = engineOn(t, cfg)
	return eng, func() {
		if !t.Failed() {
			_ = eng.Close()
		}
	}
}

// hcWait waits for ch, failing the test with "deadlock: what" after
// hcLimit.
func hcWait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(hcLimit):
		t.Fatalf("deadlock: %s not within %s", what, hcLimit)
	}
}

// hcEnded reports whether ch is closed, taking the items still in it.
func hcEnded(ch <-chan engine.SubEvent) bool {
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return true
			}
		default:
			return false
		}
	}
}

func hcIsClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// A handler that closes its consumer at the 3rd of 10 entries read at
// once: Close returns, Done is closed only after the handler returned,
// the 3rd entry (handled successfully) is acknowledged as with a Close
// from elsewhere, and the 7 read after it are neither handled nor
// acknowledged.
func TestConsumerHandlerCloses(t *testing.T) {
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng, closeEng := hcEngine(t, srv)
	defer closeEng()
	ctx := ctxT(t)
	csProduce(t, ctx, eng, "hc", 0, 10) // before the group (StartID 0): one read takes all 10

	var (
		c        *engine.Consumer
		ready    = make(chan struct{})
		closed   = make(chan struct{})
		calls    atomic.Int32
		doneSeen atomic.Bool // Done was closed when Close returned in the handler
		closeErr error
	)
	c, err := eng.Consume(ctx, "hc", "g", "c", func(hctx context.Context, x engine.XEntry) error {
		<-ready
		if calls.Add(1) != 3 {
			return nil
		}
		closeErr = c.Close()
		doneSeen.Store(hcIsClosed(c.Done()))
		if hctx.Err() == nil {
			t.Error("the handler's context is not cancelled after Close")
		}
		close(closed)
		return nil
	}, engine.ConsumeOptions{StartID: "0", Block: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	close(ready)
	hcWait(t, closed, "Consumer.Close called from the handler returned")
	if closeErr != nil {
		t.Fatalf("Close from the handler: %v", closeErr)
	}
	if doneSeen.Load() {
		t.Fatal("Done closed while the handler was still running")
	}
	hcWait(t, c.Done(), "Done closed after the handler returned")
	if n := calls.Load(); n != 3 {
		t.Fatalf("handler called %d times, want 3 (nothing after the Close)", n)
	}
	if st := c.Stats(); st.Handled != 3 || st.Acked != 3 || st.Failed != 0 {
		t.Fatalf("stats = %+v, want 3 handled and acknowledged", st)
	}
	if n := csPending(t, ctx, eng, "hc", "g"); n != 7 {
		t.Fatalf("pending = %d, want the 7 entries read after the 3rd", n)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// A consumer's handler calls the engine's Close: it returns (with
// DrainTimeout 0 too, where Close stops the services on a goroutine of
// its own), the engine is closed, the other services are stopped when it
// returns, and the consumer ends once the handler returns, its entry
// acknowledged.
func TestConsumerHandlerClosesEngine(t *testing.T) {
	for _, drain := range []time.Duration{config.DefaultConfig().DrainTimeout, 0} {
		t.Run("drain="+drain.String(), func(t *testing.T) {
			srv, eng, done := hcDrainEngine(t, drain)
			defer done()
			ctx := ctxT(t)
			csProduce(t, ctx, eng, "hc", 0, 10)

			// Other services, which the engine's Close must have stopped
			// before it returns.
			other := hcOther(t, ctx, eng)
			sub, err := eng.Subscribe(ctx, "hc:other")
			if err != nil {
				t.Fatal(err)
			}

			var (
				ready                = make(chan struct{})
				closed               = make(chan struct{})
				calls                atomic.Int32
				closeErr             error
				otherDone, subClosed bool
			)
			c, err := eng.Consume(ctx, "hc", "g", "c", func(hctx context.Context, x engine.XEntry) error {
				<-ready
				if calls.Add(1) != 3 {
					return nil
				}
				closeErr = eng.Close()
				otherDone = hcIsClosed(other.Done())
				subClosed = hcEnded(sub.Channel())
				close(closed)
				return nil
			}, engine.ConsumeOptions{StartID: "0", Block: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			close(ready)
			hcWait(t, closed, "the engine's Close called from a consumer's handler returned")
			if closeErr != nil {
				t.Fatalf("engine Close from the handler: %v", closeErr)
			}
			if !otherDone || !subClosed {
				t.Fatalf("when the engine's Close returned: other consumer stopped %t, subscription ended %t; want both", otherDone, subClosed)
			}
			if _, err := eng.Set(ctx, "k", "v", 0).Await(ctx); !errors.Is(err, engine.ErrClosed) {
				t.Fatalf("SET after the engine's Close: %v, want ErrClosed", err)
			}
			hcWait(t, c.Done(), "the consumer's Done closed after the handler returned")
			if n := calls.Load(); n != 3 {
				t.Fatalf("handler called %d times, want 3", n)
			}
			if st := c.Stats(); st.Handled != 3 || st.Acked != 3 {
				t.Fatalf("stats = %+v, want 3 handled and acknowledged", st)
			}
			check, closeCheck := hcEngine(t, srv)
			defer closeCheck()
			if n := csPending(t, ctx, check, "hc", "g"); n != 7 {
				t.Fatalf("pending = %d, want the 7 entries read after the 3rd", n)
			}
		})
	}
}

// A subscription whose Handler closes it at the 3rd message: Close
// returns nil, no item reaches the Handler afterwards, and the
// subscription ends once the Handler returned (a second Close, from the
// test, waits for that and returns ErrClosed).
func TestSubscriptionHandlerCloses(t *testing.T) {
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng, closeEng := hcEngine(t, srv)
	defer closeEng()
	ctx := ctxT(t)
	var sub *engine.Subscription
	h := newHCThird(func() error { return sub.Close() })
	sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"hc"}, Handler: h.handle})
	if err != nil {
		t.Fatal(err)
	}
	close(h.ready)
	for i := range 10 {
		subPublish(t, eng, "hc", strconv.Itoa(i))
	}
	hcWait(t, h.closed, "Subscription.Close called from the Handler returned")
	if h.closeErr != nil {
		t.Fatalf("Close from the Handler: %v", h.closeErr)
	}
	if err := hcSubEnds(t, sub); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	h.check(t)
	if n := subPublish(t, eng, "hc", "late"); n != 0 {
		t.Fatalf("PUBLISH after Close reached %d subscribers, want 0", n)
	}
}

// A Handler that closes its subscription on an event emitted by the
// subscriber actor's goroutine (the Disconnected of a killed connection),
// not by the connection's reader.
func TestSubscriptionHandlerClosesOnEvent(t *testing.T) {
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng, closeEng := hcEngine(t, srv)
	defer closeEng()
	ctx := ctxT(t)
	var (
		sub      *engine.Subscription
		ready    = make(chan struct{})
		closed   = make(chan struct{})
		closeErr error
	)
	sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{
		Channels: []string{"hc"},
		Handler: func(ev engine.SubEvent) {
			if ev.Kind == engine.Disconnected {
				<-ready
				closeErr = sub.Close()
				close(closed)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	close(ready)
	if n, err := srv.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil || n != int64(1) {
		t.Fatalf("CLIENT KILL TYPE pubsub: %v, %v", n, err)
	}
	hcWait(t, closed, "Subscription.Close called from the Handler (Disconnected) returned")
	if closeErr != nil {
		t.Fatalf("Close from the Handler: %v", closeErr)
	}
	_ = hcSubEnds(t, sub)
}

// A Handler that calls the engine's Close at the 3rd message: it returns,
// the engine is closed, the other services are stopped, and nothing more
// reaches the Handler.
func TestSubscriptionHandlerClosesEngine(t *testing.T) {
	for _, drain := range []time.Duration{config.DefaultConfig().DrainTimeout, 0} {
		t.Run("drain="+drain.String(), func(t *testing.T) {
			_, eng, done := hcDrainEngine(t, drain)
			defer done()
			ctx := ctxT(t)
			other := hcOther(t, ctx, eng)
			published := make(chan struct{}) // the PUBLISHes are answered: none in flight
			var otherDone bool
			h := newHCThird(func() error {
				<-published
				err := eng.Close()
				otherDone = hcIsClosed(other.Done())
				return err
			})
			sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"hc"}, Handler: h.handle})
			if err != nil {
				t.Fatal(err)
			}
			close(h.ready)
			for i := range 3 {
				subPublish(t, eng, "hc", strconv.Itoa(i))
			}
			close(published)
			hcWait(t, h.closed, "the engine's Close called from a Handler returned")
			if h.closeErr != nil {
				t.Fatalf("engine Close from the Handler: %v", h.closeErr)
			}
			if !otherDone {
				t.Fatal("a consumer still running when the engine's Close returned")
			}
			if _, err := eng.Publish(ctx, "hc", "late").Await(ctx); !errors.Is(err, engine.ErrClosed) {
				t.Fatalf("PUBLISH after the engine's Close: %v, want ErrClosed", err)
			}
			_ = hcSubEnds(t, sub)
			if !errors.Is(sub.Err(), engine.ErrClosed) {
				t.Fatalf("Err() = %v, want ErrClosed", sub.Err())
			}
			h.check(t)
		})
	}
}

// A Close from another goroutine still waits for the Handler call in
// progress (the Subscription's and the engine's).
func TestSubscriptionCloseWaitsForHandler(t *testing.T) {
	for _, viaEngine := range []bool{false, true} {
		t.Run("engine="+strconv.FormatBool(viaEngine), func(t *testing.T) {
			srv := valkeytest.Start(t)
			defer subNoLeak(t)()
			eng, closeEng := hcEngine(t, srv)
			defer closeEng()
			ctx := ctxT(t)
			in := make(chan struct{}, 1)
			returned := make(chan struct{})
			var once sync.Once
			sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{
				Channels: []string{"hc"},
				Handler: func(ev engine.SubEvent) {
					if ev.Kind != engine.SubMessage {
						return
					}
					once.Do(func() {
						in <- struct{}{}
						time.Sleep(100 * time.Millisecond) // slow work, which Close must wait for
						close(returned)
					})
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			subPublish(t, eng, "hc", "x")
			<-in
			if viaEngine {
				if err := eng.Close(); err != nil {
					t.Fatalf("engine Close: %v", err)
				}
			} else if err := sub.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if !hcIsClosed(returned) {
				t.Fatal("Close returned before the Handler call in progress did")
			}
		})
	}
}

// hcSubEnds closes sub again from the test's goroutine, which waits for
// the subscription to end after its Handler returned, and returns that
// Close's error; it fails the test if that takes more than hcWait allows.
func hcSubEnds(t *testing.T, sub *engine.Subscription) error {
	t.Helper()
	ended := make(chan struct{})
	var err error
	go func() {
		err = sub.Close()
		close(ended)
	}()
	hcWait(t, ended, "the subscription ended after the Handler returned")
	return err
}

// A consumer's handler, or a subscription's Handler, that calls the
// engine's Close while another goroutine's Close runs: that Close waits
// for the handler, so the handler's Close returns ErrClosed at once rather
// than wait for it (before: each waited for the other, for ever).
func TestHandlerClosesEngineDuringClose(t *testing.T) {
	for _, kind := range []string{"consumer", "subscription"} {
		t.Run(kind, func(t *testing.T) {
			srv := valkeytest.Start(t)
			eng, closeEng := hcEngine(t, srv)
			defer closeEng()
			ctx := ctxT(t)
			inner := make(chan scResult, 1)
			outer := make(chan scResult, 1)
			var once sync.Once
			handle := func() {
				once.Do(func() { hcCloseDuringClose(ctx, eng, inner, outer) })
			}
			if kind == "consumer" {
				csProduce(t, ctx, eng, "hcd", 0, 1)
				if _, err := eng.Consume(ctx, "hcd", "g", "c", func(context.Context, engine.XEntry) error {
					handle()
					return nil
				}, engine.ConsumeOptions{StartID: "0"}); err != nil {
					t.Fatal(err)
				}
			} else {
				if _, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{
					Channels: []string{"hcd"},
					Handler: func(ev engine.SubEvent) {
						if ev.Kind == engine.SubMessage {
							handle()
						}
					},
				}); err != nil {
					t.Fatal(err)
				}
				subPublish(t, eng, "hcd", "x")
			}
			r := scAwait(t, inner, "the engine's Close from the handler while another Close runs")
			if !errors.Is(r.err, engine.ErrClosed) {
				t.Errorf("the handler's Close = %v, want ErrClosed (another Close runs)", r.err)
			}
			if o := scAwait(t, outer, "the other Close"); o.err != nil {
				t.Errorf("the other Close = %v, want nil", o.err)
			}
		})
	}
}

// hcThird is a subscription Handler that calls closeFn at the 3rd
// message (once ready is closed) and counts the items that reach it
// after that call returned.
type hcThird struct {
	ready, closed chan struct{}
	closeFn       func() error
	closeErr      error // closeFn's, once closed is closed
	msgs, after   atomic.Int32
	once          sync.Once
}

func newHCThird(closeFn func() error) *hcThird {
	return &hcThird{ready: make(chan struct{}), closed: make(chan struct{}), closeFn: closeFn}
}

func (h *hcThird) handle(ev engine.SubEvent) {
	if hcIsClosed(h.closed) {
		h.after.Add(1)
		return
	}
	if ev.Kind != engine.SubMessage {
		return
	}
	<-h.ready
	if h.msgs.Add(1) == 3 {
		h.once.Do(func() {
			h.closeErr = h.closeFn()
			close(h.closed)
		})
	}
}

// check fails the test unless the Handler got 3 messages and nothing
// after its Close.
func (h *hcThird) check(t *testing.T) {
	t.Helper()
	if n, a := h.msgs.Load(), h.after.Load(); n != 3 || a != 0 {
		t.Fatalf("Handler got %d messages and %d items after Close, want 3 and 0", n, a)
	}
}

// A subscription's Handler changes the subscription's set: Subscribe,
// PSubscribe and Unsubscribe called from it return at once (they used to
// wait for the server's confirmation, which the connection's reader, held
// up by the Handler, never read: until their ctx ended, for ever with
// context.Background), and the changes take effect once the Handler
// returns.
func TestSubscriptionHandlerChangesSet(t *testing.T) {
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng, closeEng := hcEngine(t, srv)
	defer closeEng()
	ctx := ctxT(t)
	type change struct {
		err  error
		took time.Duration
	}
	changed := make(chan change, 2)
	got := make(chan string, 64) // "channel/payload" of the other channels' messages
	var sub *engine.Subscription
	ready := make(chan struct{})
	handle := func(ev engine.SubEvent) {
		if ev.Kind != engine.SubMessage {
			return // the Subscribed needs no sub
		}
		<-ready // sub is set
		m := ev.Message
		if m.Channel != "hs:a" {
			select {
			case got <- m.Channel + "/" + m.Payload:
			default:
			}
			return
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		start := time.Now()
		var err error
		switch m.Payload {
		case "sub":
			err = errors.Join(sub.Subscribe(cctx, "hs:b"), sub.PSubscribe(cctx, "hs:p:*"))
		case "unsub":
			err = sub.Unsubscribe(cctx, "hs:a")
		}
		changed <- change{err, time.Since(start)}
	}
	sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"hs:a"}, Handler: handle})
	if err != nil {
		t.Fatal(err)
	}
	close(ready)
	await := func(what string) {
		t.Helper()
		select {
		case c := <-changed:
			if c.err != nil || c.took > time.Second {
				t.Fatalf("%s from the Handler: %v after %s, want nil at once", what, c.err, c.took)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("deadlock: %s from the Handler has not returned within 10 s", what)
		}
	}
	// publishUntil publishes to channel until n receivers got it.
	publishUntil := func(channel string, n int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for subPublish(t, eng, channel, "x") != n {
			if time.Now().After(deadline) {
				t.Fatalf("PUBLISH %s never reached %d subscribers", channel, n)
			}
		}
	}
	subPublish(t, eng, "hs:a", "sub")
	await("Subscribe and PSubscribe")
	publishUntil("hs:b", 1)
	publishUntil("hs:p:1", 1)
	seen := map[string]bool{}
	for !seen["hs:b/x"] || !seen["hs:p:1/x"] {
		select {
		case s := <-got:
			seen[s] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("the Handler got %v, want messages on hs:b and hs:p:1", seen)
		}
	}
	subPublish(t, eng, "hs:a", "unsub")
	await("Unsubscribe")
	publishUntil("hs:a", 0)
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
}

// hcCloseDuringClose starts the engine's Close on another goroutine (its
// result to outer), waits until it has begun (commands fail with
// ErrClosed), then calls Close on this goroutine (its result to inner).
func hcCloseDuringClose(ctx context.Context, eng *engine.Engine, inner, outer chan<- scResult) {
	go func() {
		start := time.Now()
		err := eng.Close()
		outer <- scResult{err, time.Since(start)}
	}()
	deadline := time.Now().Add(hcLimit)
	for !errors.Is(eng.Get(ctx, "k").Err(ctx), engine.ErrClosed) && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	start := time.Now()
	err := eng.Close()
	inner <- scResult{err, time.Since(start)}
}

// hcDrainEngine starts a server and an engine on it with DrainTimeout
// drain; done closes the engine (unless the test failed: see hcEngine)
// and checks that no goroutine is left.
func hcDrainEngine(t *testing.T, drain time.Duration) (srv *valkeytest.Server, eng *engine.Engine, done func()) {
	t.Helper()
	srv = valkeytest.Start(t)
	leak := subNoLeak(t)
	eng, closeEng := hcEngine(t, srv, func(c config.Config) config.Config { return c.WithDrainTimeout(drain) })
	return srv, eng, func() { closeEng(); leak() }
}

// hcOther starts a stream consumer beside the service under test: the
// engine's Close called from a handler must have stopped it too when it
// returns.
func hcOther(t *testing.T, ctx context.Context, eng *engine.Engine) *engine.Consumer {
	t.Helper()
	other, err := eng.Consume(ctx, "other", "g", "c", func(context.Context, engine.XEntry) error { return nil }, engine.ConsumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return other
}
