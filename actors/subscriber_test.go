package actors_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/valkey-io/valkey-go"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/policies"
)

// subBuilder returns a valkey-go command builder without a server (a
// single client whose dial failed still builds commands).
func subBuilder(t *testing.T) valkey.Builder {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, _ := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, ForceSingleClient: true, DisableRetry: true})
	if c == nil {
		t.Fatal("no valkey-go client to build commands with")
	}
	t.Cleanup(c.Close)
	return c.B()
}

// subFake is a pub/sub connection without a server: subscribe commands
// are confirmed through the hooks, as the server would.
type subFake struct {
	b      valkey.Builder
	hint   string
	tries  int
	hooks  valkey.PubSubHooks
	done   chan error
	once   sync.Once
	mu     sync.Mutex
	cmds   []string
	listen chan struct{}
	moved  func(string) bool // shard channels answered with MOVED
	hold   chan struct{}     // when set (under mu), SUNSUBSCRIBE waits for it
}

var (
	_ drivers.ValkeyConn   = (*subFake)(nil)
	_ drivers.ValkeyPubSub = (*subFake)(nil)
)

func (f *subFake) B() valkey.Builder { return f.b }
func (f *subFake) Do(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResult {
	return f.DoMulti(ctx, cmd)[0]
}
func (f *subFake) DoMulti(_ context.Context, cmds ...valkey.Completed) []valkey.ValkeyResult {
	out := make([]valkey.ValkeyResult, len(cmds))
	for i, c := range cmds {
		args := c.Commands()
		f.mu.Lock()
		f.cmds = append(f.cmds, strings.Join(args, " "))
		f.mu.Unlock()
		kind := strings.ToLower(args[0])
		f.mu.Lock()
		hold := f.hold
		f.mu.Unlock()
		if kind == "sunsubscribe" && hold != nil {
			<-hold
		}
		if kind == "ssubscribe" && f.moved != nil && f.moved(args[1]) {
			out[i] = serverErrReply("MOVED 1234 127.0.0.1:7001")
			continue
		}
		for _, n := range args[1:] {
			f.hooks.OnSubscription(valkey.PubSubSubscription{Kind: kind, Channel: n})
		}
		out[i] = strReply("")
	}
	return out
}
func (f *subFake) ListenValkey(h valkey.PubSubHooks) <-chan error {
	f.hooks = h
	close(f.listen)
	return f.done
}
func (f *subFake) breakWith(err error) {
	f.once.Do(func() { f.done <- err; close(f.done) })
}
func (f *subFake) Close() error { f.breakWith(errors.New("closed")); return nil }
func (f *subFake) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cmds)
}

// subRig runs one subscriber actor over fakes.
type subRig struct {
	t      *testing.T
	st     *actors.SubscriberState
	conns  chan *subFake
	events chan actors.SubEvent
	system *actor.ActorSystem
}

func newSubRig(t *testing.T, dialErr error, mods ...func(*actors.SubscriberState)) *subRig {
	b := subBuilder(t)
	r := &subRig{t: t, conns: make(chan *subFake, 16), events: make(chan actors.SubEvent, 64)}
	r.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	r.st = &actors.SubscriberState{
		Dial: func(_ context.Context, hint string, failures int) (drivers.ValkeyConn, string, error) {
			if dialErr != nil {
				return nil, "", dialErr
			}
			f := &subFake{b: b, hint: hint, tries: failures, done: make(chan error, 1), listen: make(chan struct{})}
			r.conns <- f
			return f, "node:1", nil
		},
		Backoff:  policies.Backoff{Min: time.Millisecond, Max: 4 * time.Millisecond},
		Emit:     func(ev actors.SubEvent) { r.events <- ev },
		CloseErr: errors.New("stopped"),
	}
	for _, m := range mods {
		m(r.st)
	}
	r.st.Spawn(r.system)
	return r
}

func (r *subRig) op(kind actors.SubKind, unsub bool, names ...string) error {
	return r.wait(r.send(actors.SubOp{Kind: kind, Unsub: unsub, Names: names}))
}

// send posts op (with a new Done) without waiting.
func (r *subRig) send(op actors.SubOp) actors.SubOp {
	op.Done = make(chan error, 1)
	r.st.Send(op)
	return op
}

func (r *subRig) wait(op actors.SubOp) error {
	select {
	case err := <-op.Done:
		return err
	case <-time.After(waitTimeout):
		r.t.Fatal("operation not answered")
	}
	return nil
}

func (r *subRig) event(kind actors.SubEventKind) actors.SubEvent {
	r.t.Helper()
	select {
	case ev := <-r.events:
		if ev.Kind != kind {
			r.t.Fatalf("event %+v, want kind %d", ev, kind)
		}
		return ev
	case <-time.After(waitTimeout):
		r.t.Fatalf("no event of kind %d", kind)
	}
	return actors.SubEvent{}
}

func (r *subRig) conn() *subFake {
	r.t.Helper()
	select {
	case f := <-r.conns:
		<-f.listen
		return f
	case <-time.After(waitTimeout):
		r.t.Fatal("no dial")
	}
	return nil
}

func (r *subRig) stop() {
	r.st.Stop()
	r.system.Shutdown()
}

func TestSubscriberResubscribesEverything(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	r := newSubRig(t, nil)
	defer r.stop()
	if err := r.op(actors.SubChannel, false, "a", "b"); err != nil {
		t.Fatal(err)
	}
	r.event(actors.SubSubscribed)
	c1 := r.conn()
	c1.hooks.OnMessage(valkey.PubSubMessage{Channel: "a", Message: "1"})
	if ev := r.event(actors.SubMessage); ev.Msg.Message != "1" || ev.Addr != "node:1" {
		t.Fatalf("message event %+v", ev)
	}
	if err := r.op(actors.SubPattern, false, "p*"); err != nil {
		t.Fatal(err)
	}
	if err := r.op(actors.SubChannel, true, "a"); err != nil {
		t.Fatal(err)
	}
	c1.breakWith(errors.New("boom"))
	if ev := r.event(actors.SubDisconnected); ev.Err == nil || ev.Err.Error() != "boom" {
		t.Fatalf("disconnected with %v, want boom", ev.Err)
	}
	c2 := r.conn()
	if ev := r.event(actors.SubResubscribed); ev.Gap <= 0 {
		t.Fatalf("gap %s", ev.Gap)
	}
	// Resubscribed comes with the first confirmation on the new
	// connection; the rest of the set may still be on its way.
	got := c2.sent()
	for deadline := time.Now().Add(waitTimeout); len(got) < 2 && time.Now().Before(deadline); got = c2.sent() {
		time.Sleep(time.Millisecond)
	}
	slices.Sort(got)
	if want := []string{"PSUBSCRIBE p*", "SUBSCRIBE b"}; !slices.Equal(got, want) {
		t.Fatalf("resubscribed with %q, want %q", got, want)
	}
	// While down, a subscribe waits for the next connection; an
	// unsubscribe completes at once.
	c2.breakWith(errors.New("again"))
	r.event(actors.SubDisconnected)
	c3 := r.conn()
	r.event(actors.SubResubscribed)
	if err := r.op(actors.SubShard, false, "s1"); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(c3.sent(), "SSUBSCRIBE s1") {
		t.Fatalf("sent %q, want SSUBSCRIBE s1", c3.sent())
	}
}

func TestSubscriberFailsFastBeforeFirstSubscription(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	boom := errors.New("refused")
	r := newSubRig(t, boom)
	defer r.stop()
	if err := r.op(actors.SubChannel, false, "a"); !errors.Is(err, boom) {
		t.Fatalf("op = %v, want the dial error", err)
	}
}

func TestSubscriberFollowsMovedShardChannels(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	r := newSubRig(t, nil)
	defer r.stop()
	if err := r.op(actors.SubShard, false, "s1"); err != nil {
		t.Fatal(err)
	}
	r.event(actors.SubSubscribed)
	c1 := r.conn()
	// The server drops the channel on its own: its slot moved.
	c1.hooks.OnSubscription(valkey.PubSubSubscription{Kind: "sunsubscribe", Channel: "s1"})
	if ev := r.event(actors.SubDisconnected); !errors.Is(ev.Err, actors.ErrSlotMoved) {
		t.Fatalf("disconnected with %v, want ErrSlotMoved", ev.Err)
	}
	c2 := r.conn()
	r.event(actors.SubResubscribed)
	if c2.hint != "s1" || c2.tries == 0 {
		t.Fatalf("redial with hint %q after %d failures, want s1 after >= 1", c2.hint, c2.tries)
	}
	if !slices.Equal(c2.sent(), []string{"SSUBSCRIBE s1"}) {
		t.Fatalf("sent %q", c2.sent())
	}
}

// subMovedRig is a rig whose actor hands moved shard channels back
// (Moved) instead of reconnecting; the hand-overs arrive on the channel.
type subHandOver struct {
	names []string
	since time.Time
}

func newSubMovedRig(t *testing.T, moved func(string) bool) (*subRig, chan subHandOver) {
	ho := make(chan subHandOver, 16)
	r := newSubRig(t, nil, func(st *actors.SubscriberState) {
		st.Moved = func(names []string, since time.Time) { ho <- subHandOver{names, since} }
		dial := st.Dial
		st.Dial = func(ctx context.Context, hint string, failures int) (drivers.ValkeyConn, string, error) {
			c, addr, err := dial(ctx, hint, failures)
			if f, ok := c.(*subFake); ok {
				f.moved = moved
			}
			return c, addr, err
		}
	})
	return r, ho
}

func (r *subRig) handOver(ho chan subHandOver) subHandOver {
	r.t.Helper()
	select {
	case h := <-ho:
		return h
	case <-time.After(waitTimeout):
		r.t.Fatal("no hand-over")
	}
	return subHandOver{}
}

// TestSubscriberHandsOverMovedChannels: with Moved set, a shard channel
// the server drops on its own is handed back (one Disconnected naming
// it) while the connection and its other channels stay; our own
// SUNSUBSCRIBE followed at once by an SSUBSCRIBE of the same channel is
// not mistaken for a move; a handed-over channel's confirmation is a
// Resubscribed naming it (no Subscribed for a connection opened for it).
func TestSubscriberHandsOverMovedChannels(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	r, ho := newSubMovedRig(t, nil)
	defer r.stop()
	if err := r.op(actors.SubShard, false, "s1", "s2", "s3"); err != nil {
		t.Fatal(err)
	}
	r.event(actors.SubSubscribed)
	c1 := r.conn()
	c1.hooks.OnSubscription(valkey.PubSubSubscription{Kind: "sunsubscribe", Channel: "s1"})
	ev := r.event(actors.SubDisconnected)
	if !errors.Is(ev.Err, actors.ErrSlotMoved) || ev.ShardChannel != "s1" {
		t.Fatalf("disconnected %+v, want s1 with ErrSlotMoved", ev)
	}
	if h := r.handOver(ho); !slices.Equal(h.names, []string{"s1"}) || h.since.IsZero() {
		t.Fatalf("handed over %+v, want s1", h)
	}
	// Same connection: the others still deliver.
	c1.hooks.OnMessage(valkey.PubSubMessage{Channel: "s2", Message: "still"})
	if ev := r.event(actors.SubMessage); ev.Msg.Message != "still" {
		t.Fatalf("message %+v", ev)
	}
	// Unsubscribe and subscribe again before the sunsubscribe is seen:
	// the SUNSUBSCRIBE waits until the SSUBSCRIBE is queued.
	hold := make(chan struct{})
	c1.mu.Lock()
	c1.hold = hold
	c1.mu.Unlock()
	un := r.send(actors.SubOp{Kind: actors.SubShard, Unsub: true, Names: []string{"s2"}})
	re := r.send(actors.SubOp{Kind: actors.SubShard, Names: []string{"s2"}})
	close(hold)
	if err := r.wait(un); err != nil {
		t.Fatal(err)
	}
	if err := r.wait(re); err != nil {
		t.Fatal(err)
	}
	// A channel handed over from elsewhere.
	since := time.Now().Add(-time.Second)
	if err := r.wait(r.send(actors.SubOp{Kind: actors.SubShard, Names: []string{"s9"}, Since: since})); err != nil {
		t.Fatal(err)
	}
	ev = r.event(actors.SubResubscribed)
	if ev.ShardChannel != "s9" || ev.Gap < time.Second {
		t.Fatalf("resubscribed %+v, want s9 with a gap >= 1s", ev)
	}
	select {
	case ev := <-r.events:
		t.Fatalf("unexpected event %+v", ev)
	case h := <-ho:
		t.Fatalf("unexpected hand-over %+v", h)
	case f := <-r.conns:
		t.Fatalf("unexpected dial (hint %q)", f.hint)
	case <-time.After(50 * time.Millisecond):
	}

	// A fresh actor whose first channel is handed over reports no Subscribed.
	r2, _ := newSubMovedRig(t, nil)
	defer r2.stop()
	if err := r2.wait(r2.send(actors.SubOp{Kind: actors.SubShard, Names: []string{"m"}, Since: since})); err != nil {
		t.Fatal(err)
	}
	if ev := r2.event(actors.SubResubscribed); ev.ShardChannel != "m" {
		t.Fatalf("resubscribed %+v, want m", ev)
	}
	if !r2.st.Subscribed() {
		t.Fatal("Subscribed() = false after a confirmation")
	}
}

// TestSubscriberMovedReplies: MOVED to SSUBSCRIBE fails only the moved
// channels of an operation (a *MovedError naming them, the rest is
// subscribed); MOVED while resubscribing after a reconnect hands those
// channels back, after the connection's Resubscribed.
func TestSubscriberMovedReplies(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var mu sync.Mutex
	away := map[string]bool{"x": true}
	r, ho := newSubMovedRig(t, func(n string) bool {
		mu.Lock()
		defer mu.Unlock()
		return away[n]
	})
	defer r.stop()
	err := r.op(actors.SubShard, false, "a", "x", "b")
	var me *actors.MovedError
	if !errors.As(err, &me) || !slices.Equal(me.Names, []string{"x"}) {
		t.Fatalf("op = %v, want a MovedError for x", err)
	}
	r.event(actors.SubSubscribed)
	c1 := r.conn()
	mu.Lock()
	away["b"] = true
	mu.Unlock()
	c1.breakWith(errors.New("boom"))
	r.event(actors.SubDisconnected)
	c2 := r.conn()
	if ev := r.event(actors.SubResubscribed); ev.ShardChannel != "" {
		t.Fatalf("resubscribed %+v, want the connection's", ev)
	}
	ev := r.event(actors.SubDisconnected)
	if ev.ShardChannel != "b" || !errors.Is(ev.Err, actors.ErrSlotMoved) {
		t.Fatalf("disconnected %+v, want b moved", ev)
	}
	if h := r.handOver(ho); !slices.Equal(h.names, []string{"b"}) {
		t.Fatalf("handed over %+v, want b", h)
	}
	got := c2.sent()
	slices.Sort(got)
	if want := []string{"SSUBSCRIBE a", "SSUBSCRIBE b"}; !slices.Equal(got, want) {
		t.Fatalf("resubscribed with %q, want %q", got, want)
	}
	// b is out of the set: the next connection does not ask for it.
	c2.breakWith(errors.New("again"))
	r.event(actors.SubDisconnected)
	c3 := r.conn()
	r.event(actors.SubResubscribed)
	if got := c3.sent(); !slices.Equal(got, []string{"SSUBSCRIBE a"}) {
		t.Fatalf("third connection sent %q", got)
	}
}
