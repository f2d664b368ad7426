package engine_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/valkeytest"
)

// A reconnect whose dial is slow but succeeds (a loaded machine: a new
// primary's took 255 ms in one TestAuditChaosSentinel run) while callers
// fire commands with short deadlines: those expire in the mailbox of the
// actor waiting for the dial, through no fault of the node. They must not
// open the node's breaker. Before the fix every 50 ms probe tick that
// dropped some counted one failure, so a dial longer than
// CircuitBreakerThreshold ticks (250 ms by default) opened the breaker of
// a node that answered it, and its commands were refused for
// CircuitBreakerOpenTimeout (1 s) after the connection came up (the chaos
// run: writes resumed 1.2 s after the switch, the bound being 1 s).
// Default configuration: the dial slowed by 150 ms per reply (HELLO, then
// PING: 300 ms or more), the connection closed by the server first.
func TestSlowRedialShortDeadlinesKeepBreakerClosed(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: skipped with -short")
	}
	srv, px, eng, rec := slowDialEngine(t, 0)
	ctx := ctxT(t)
	before := eng.Stats().Reconnects

	// Every reply 150 ms late: the reconnect's handshake is slow, the
	// node healthy (DialTimeout is 5 s).
	if err := px.Latency(150 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Do("CLIENT", "KILL", "TYPE", "normal"); err != nil {
		t.Fatal(err)
	}
	// Callers fire commands with 20 ms deadlines every 5 ms until the
	// connection is back.
	reconnected, fired := fireShortUntilReconnected(t, eng, before, 5*time.Second, nil)
	if err := px.RemoveToxics(); err != nil {
		t.Fatal(err)
	}
	// The node answered the dial: a command with time to spare succeeds
	// now, not refused by an open breaker.
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := eng.Set(wctx, "after", "v", 0).Err(wctx)
	for end := time.Now().Add(time.Second); ; time.Sleep(5 * time.Millisecond) { // hook events arrive on their own goroutine
		if dials, _ := rec.snapshot(); len(dials) > 0 || time.Now().After(end) {
			break
		}
	}
	dials, opened := rec.snapshot()
	t.Logf("reconnected %s after the kill; reconnect dials %v (hooks.Dialed: without the PING check that follows); %d commands fired; breaker events %v",
		reconnected.Round(time.Millisecond), dials, fired, opened)
	if errors.Is(err, engine.ErrCircuitOpen) {
		t.Fatalf("SET after the slow reconnect: %v: the breaker opened on commands whose deadlines expired while the node was being dialled", err)
	}
	if err != nil {
		t.Fatalf("SET after the slow reconnect: %v", err)
	}
	if len(opened) > 0 {
		t.Fatalf("breaker events %v during a slow but successful reconnect, want none", opened)
	}
	if b := eng.Stats().Nodes[0].Breaker; b != "closed" {
		t.Fatalf("breaker %s after the reconnect, want closed", b)
	}
	// The premise: the first reconnect dial succeeded, and the node was
	// down for longer than CircuitBreakerThreshold probe ticks (250 ms).
	if len(dials) == 0 || dials[0].err != nil || reconnected < 250*time.Millisecond {
		t.Fatalf("reconnected after %s, dials %v: want a first dial that succeeded, 250 ms or more after the kill", reconnected, dials)
	}
}

// slowDialRec records the reconnect dials and the breaker's changes.
type slowDialRec struct {
	mu     sync.Mutex
	dials  []slowDial
	events []string
}

type slowDial struct {
	d   time.Duration
	err error
}

func (r *slowDialRec) PostConnection(ev hooks.Dialed) {
	if ev.Dedicated || ev.Initial || ev.Probe {
		return
	}
	r.mu.Lock()
	r.dials = append(r.dials, slowDial{d: ev.Duration, err: ev.Err})
	r.mu.Unlock()
}

func (r *slowDialRec) OnBreakerChanged(ev hooks.BreakerChange) {
	r.mu.Lock()
	r.events = append(r.events, ev.From+">"+ev.To)
	r.mu.Unlock()
}

func (r *slowDialRec) snapshot() ([]slowDial, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]slowDial(nil), r.dials...), append([]string(nil), r.events...)
}

// A node slow from the start (a remote one: every reply 400 ms late) is
// given the grace its own dials need at its first outage too: the
// engine's first dials in New record an estimate of the node's connect
// time (twice the dial: they check no PING), as re-dials and probes
// record theirs. Before, the first outage had the
// least grace (500 ms): the commands with short deadlines expiring behind
// its ~800 ms re-dial (dial and PING) opened the breaker 660 ms into it.
// Default configuration.
func TestSlowNodeFirstRedialKeepsBreakerClosed(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: skipped with -short")
	}
	srv, _, eng, rec := slowDialEngine(t, 400*time.Millisecond)
	ctx := ctxT(t)
	before := eng.Stats().Reconnects
	if _, err := srv.Do("CLIENT", "KILL", "TYPE", "normal"); err != nil {
		t.Fatal(err)
	}
	reconnected, _ := fireShortUntilReconnected(t, eng, before, 8*time.Second, func(in time.Duration) {
		if b := eng.Stats().Nodes[0].Breaker; b != "closed" {
			t.Fatalf("breaker %s %v into the first re-dial of a slow node", b, in.Round(time.Millisecond))
		}
	})
	dials, opened := rec.snapshot()
	t.Logf("reconnected %s after the kill; reconnect dials %v; breaker events %v", reconnected.Round(time.Millisecond), dials, opened)
	if len(opened) > 0 {
		t.Fatalf("breaker events %v during the slow node's first re-dial, want none", opened)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := eng.Set(wctx, "after", "v", 0).Err(wctx); err != nil {
		t.Fatalf("SET after the re-dial: %v", err)
	}
	// The premise: the node was down for longer than the least grace and
	// CircuitBreakerThreshold probe ticks (750 ms).
	if reconnected < 750*time.Millisecond {
		t.Fatalf("reconnected after %s: want 750 ms or more after the kill", reconnected)
	}
}

// fireShortUntilReconnected fires SETs with 20 ms deadlines every 5 ms,
// as callers with short deadlines do, until eng has reconnected
// (Stats().Reconnects past before), and fails the test after limit.
// check, when not nil, runs before each one with the time since the
// first. It returns how long the reconnect took and how many it fired;
// their contexts are cancelled when the test ends.
func fireShortUntilReconnected(t *testing.T, eng *engine.Engine, before uint64, limit time.Duration, check func(time.Duration)) (time.Duration, int) {
	t.Helper()
	start := time.Now()
	fired := 0
	for eng.Stats().Reconnects == before {
		in := time.Since(start)
		if in > limit {
			t.Fatalf("not reconnected within %v: %+v", limit, eng.Stats().Nodes)
		}
		if check != nil {
			check(in)
		}
		cctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		t.Cleanup(cancel)
		eng.Set(cctx, "short", "v", 0)
		fired++
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start), fired
}

// slowDialEngine starts a server behind a proxy that delays every reply
// by latency from the start (0: none) and an engine on it with the
// default configuration and a slowDialRec, one SET answered; the engine
// is closed when the test ends.
func slowDialEngine(t *testing.T, latency time.Duration) (*valkeytest.Server, *valkeytest.Proxy, *engine.Engine, *slowDialRec) {
	t.Helper()
	srv := valkeytest.Start(t)
	px := valkeytest.ProxyFor(t, srv.Addr())
	if latency > 0 {
		if err := px.Latency(latency); err != nil {
			t.Fatal(err)
		}
	}
	rec := &slowDialRec{}
	ctx := ctxT(t)
	eng, err := open(ctx, t, config.DefaultConfig().WithAddrs(px.Addr()).WithHooks(rec))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	if err := eng.Set(ctx, "k", "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	return srv, px, eng, rec
}
