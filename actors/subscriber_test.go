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
	hooks  drivers.PubSubHooks
	done   chan error
	once   sync.Once
	mu     sync.Mutex
	cmds   []string
	listen chan struct{}
}

var (
	_ drivers.Conn   = (*subFake)(nil)
	_ drivers.PubSub = (*subFake)(nil)
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
		for _, n := range args[1:] {
			f.hooks.OnSubscription(valkey.PubSubSubscription{Kind: kind, Channel: n})
		}
		out[i] = strReply("")
	}
	return out
}
func (f *subFake) Listen(h drivers.PubSubHooks) <-chan error {
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

func newSubRig(t *testing.T, dialErr error) *subRig {
	b := subBuilder(t)
	r := &subRig{t: t, conns: make(chan *subFake, 16), events: make(chan actors.SubEvent, 64)}
	r.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	r.st = &actors.SubscriberState{
		Dial: func(_ context.Context, hint string, failures int) (drivers.Conn, string, error) {
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
	r.st.Spawn(r.system)
	return r
}

func (r *subRig) op(kind actors.SubKind, unsub bool, names ...string) error {
	op := actors.SubOp{Kind: kind, Unsub: unsub, Names: names, Done: make(chan error, 1)}
	r.st.Send(op)
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
	got := c2.sent()
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
