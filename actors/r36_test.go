package actors_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/policies"
)

// actorLog is the actor system's log, for a test to read.
type actorLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *actorLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *actorLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// subscribedActor starts a subscriber actor whose first dial gives a
// fake connection and whose later dials (n counts every dial, from 1) are
// redial's, subscribes channel "a" and waits for its confirmation. It
// returns the first connection, the actor, its events and its system's
// log; the actor is stopped at the test's end.
func subscribedActor(t *testing.T, redial func(b valkey.Builder, n int64) (drivers.ValkeyConn, string, error)) (*subFake, *actors.SubscriberState, chan actors.SubEvent, *actorLog) {
	t.Helper()
	b := subBuilder(t)
	logs := &actorLog{}
	var calls atomic.Int64
	events := make(chan actors.SubEvent, 1024)
	first := make(chan *subFake, 1)
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.NewTextHandler(logs, nil)) }))
	st := &actors.SubscriberState{
		Dial: func(_ context.Context, hint string, failures int) (drivers.ValkeyConn, string, error) {
			if n := calls.Add(1); n > 1 {
				return redial(b, n)
			}
			f := &subFake{b: b, hint: hint, done: make(chan error, 1), listen: make(chan struct{})}
			first <- f
			return f, "node:1", nil
		},
		Backoff:  policies.Backoff{Min: time.Millisecond, Max: 4 * time.Millisecond},
		Emit:     func(ev actors.SubEvent) { events <- ev },
		CloseErr: fmt.Errorf("stopped"),
	}
	st.Spawn(system)
	t.Cleanup(system.Shutdown)
	t.Cleanup(st.Stop)
	op := actors.SubOp{Kind: actors.SubChannel, Names: []string{"a"}, Done: make(chan error, 1)}
	st.Send(op)
	f := <-first
	<-f.listen
	if err := <-op.Done; err != nil {
		t.Fatal(err)
	}
	return f, st, events, logs
}

// After the subscription was confirmed, every reconnect is refused by the
// server, the refusal's text alternating between two (a cluster's dialAny
// rotating over nodes, each *ConnectError naming its node; Valkey's NOPERM
// naming whichever denied channel came first). "Once per distinct error"
// remembered the last one only: a Refused per retry, forever (review-36
// R36-2). Each distinct text is told once.
func TestR36RefusedAlternatingText(t *testing.T) {
	var calls atomic.Int64
	f, st, events, _ := subscribedActor(t, func(_ valkey.Builder, n int64) (drivers.ValkeyConn, string, error) {
		calls.Store(n)
		node := 7000 + n%2
		err := fmt.Errorf("vactor: connect to 127.0.0.1:%d: %w", node, serverErrReply("WRONGPASS invalid username-password pair or user is disabled.").Error())
		return nil, fmt.Sprintf("127.0.0.1:%d", node), err
	})
	f.breakWith(fmt.Errorf("EOF"))
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() < 20 { // 19 refused redials
		if time.Now().After(deadline) {
			t.Fatalf("%d dials in 10 s", calls.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	st.Stop()
	counts := map[actors.SubEventKind]int{}
	for len(events) > 0 {
		counts[(<-events).Kind]++
	}
	t.Logf("dials %d, events by kind %v", calls.Load(), counts)
	if counts[actors.SubRefused] != 2 {
		t.Errorf("%d Refused events for two alternating refusals over %d dials, want 2", counts[actors.SubRefused], calls.Load())
	}
}

// A connection whose watcher reports no error (a nil from the driver's
// listener) is lost and redialled like any other: the refusal check of
// retry must not read a nil error's text (it did: a nil pointer panic,
// which protoactor recovered by restarting the actor).
func TestSubscriberLostWithoutError(t *testing.T) {
	f, _, events, logs := subscribedActor(t, func(b valkey.Builder, _ int64) (drivers.ValkeyConn, string, error) {
		return &subFake{b: b, done: make(chan error, 1), listen: make(chan struct{})}, "node:1", nil
	})
	f.breakWith(nil)
	want := []actors.SubEventKind{actors.SubSubscribed, actors.SubDisconnected, actors.SubResubscribed}
	for i, k := range want {
		select {
		case ev := <-events:
			if ev.Kind != k {
				t.Fatalf("event %d: %v, want %v", i, ev.Kind, k)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no event %d (%v) in 10 s", i, k)
		}
	}
	if l := logs.String(); strings.Contains(l, "Recovering") {
		t.Fatalf("the actor panicked:\n%s", l)
	}
}
