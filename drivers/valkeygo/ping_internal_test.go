package valkeygo

import (
	"context"
	"errors"
	"math/rand/v2"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/valkeytest"
)

// shortPingGap makes the driver PING after gap of silence for the test.
func shortPingGap(t *testing.T, gap time.Duration) {
	prev := pingGap
	pingGap = gap
	t.Cleanup(func() { pingGap = prev })
}

func dialT(t *testing.T, o drivers.Options) *Conn {
	t.Helper()
	if o.DialTimeout == 0 {
		o.DialTimeout = 5 * time.Second
	}
	c, err := Driver{}.Dial(context.Background(), o)
	if err != nil {
		t.Fatalf("Dial(%s): %v", o.Addr, err)
	}
	conn := c.(*Conn)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// sockets returns the connections the Conn has open.
func (c *Conn) sockets() []*idleConn {
	c.open.mu.Lock()
	defer c.open.mu.Unlock()
	var out []*idleConn
	for ic := range c.open.conns {
		out = append(out, ic)
	}
	return out
}

var pingCalls = regexp.MustCompile(`cmdstat_ping:calls=(\d+)`)

// pings returns how many PINGs srv has run.
func pings(t *testing.T, srv *valkeytest.Server) int {
	t.Helper()
	r, err := srv.Do("INFO", "commandstats")
	if err != nil {
		t.Fatalf("INFO commandstats: %v", err)
	}
	s, _ := r.(string)
	m := pingCalls.FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// waitPings waits until srv has run n more PINGs (5 s at most).
func waitPings(t *testing.T, srv *valkeytest.Server, n int) {
	t.Helper()
	before := pings(t, srv)
	start := time.Now()
	for pings(t, srv)-before < n {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("fewer than %d PINGs in 5 s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A call made while the idle PING is out waits for it instead of
// meeting it in valkey-go: every round trip keeps valkey-go's synchronous
// path (a SetDeadline per round trip on the one connection). With
// valkey-go's own PING, a call that came during the PING's round trip put
// the connection on valkey-go's background path for good (its writer and
// reader goroutines, two more hand-offs per round trip): with a 3 ms gap
// that happened within the first few hundred pauses.
func TestPingKeepsSyncPath(t *testing.T) {
	const gap = 3 * time.Millisecond
	shortPingGap(t, gap)
	srv := valkeytest.Start(t)
	c := dialT(t, drivers.Options{Addr: srv.Addr()})
	ctx := context.Background()
	get := c.B().Get().Key("k").Build().Pin()
	if err := c.DoMulti(ctx, get)[0].Error(); err != nil && !valkey.IsValkeyNil(err) {
		t.Fatal(err)
	}
	socks := c.sockets()
	if len(socks) != 1 {
		t.Fatalf("%d connections open, want 1", len(socks))
	}
	ic := socks[0]
	before := pings(t, srv)
	const rounds = 400
	background := 0
	for i := range rounds {
		// A pause of 1-2 gaps: the PING goes out in most, and the call
		// lands at any point of its round trip.
		time.Sleep(gap + rand.N(gap))
		last := ic.lastRT.Load()
		if err := c.DoMulti(ctx, get)[0].Error(); err != nil && !valkey.IsValkeyNil(err) {
			t.Fatalf("round %d: %v", i, err)
		}
		if ic.lastRT.Load() == last {
			background++
		}
	}
	sent := pings(t, srv) - before
	t.Logf("%d PINGs in %d pauses; %d round trips off the synchronous path", sent, rounds, background)
	if sent < rounds/10 {
		t.Fatalf("only %d PINGs in %d pauses of 1-2 gaps: the test cannot tell", sent, rounds)
	}
	if background > 0 {
		t.Fatalf("%d of %d round trips took valkey-go's background path: a call met the idle PING", background, rounds)
	}
}

// The PING finds a frozen server out while the connection is idle: it
// breaks the connection after the timeout and reports it (OnLost, once).
// The Conn is then done: a later call fails as not sent at once, instead
// of going to a connection valkey-go would dial on its own, behind its
// owner's back (the engine's connection actor replaces the Conn).
func TestPingBreaksFrozenConnection(t *testing.T) {
	shortPingGap(t, 20*time.Millisecond)
	srv := valkeytest.Start(t)
	c := dialT(t, drivers.Options{Addr: srv.Addr(), ReadTimeout: 300 * time.Millisecond})
	lost := make(chan error, 2)
	c.OnLost(func(err error) { lost <- err })
	ctx := context.Background()
	if err := c.Do(ctx, c.B().Ping().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	first := c.sockets()
	if len(first) != 1 {
		t.Fatalf("%d connections open, want 1", len(first))
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := true
	defer func() {
		if paused {
			_ = srv.Resume()
		}
	}()
	start := time.Now()
	select {
	case err := <-lost:
		t.Logf("reported %s after the freeze: %v", time.Since(start).Round(time.Millisecond), err)
		if !errors.Is(err, drivers.ErrNotSent) {
			t.Errorf("OnLost error %v does not wrap drivers.ErrNotSent", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no OnLost within 5 s of the freeze: no PING timed out")
	}
	for len(c.sockets()) != 0 {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the connection to the frozen server is still open after 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	paused = false
	err := c.Do(ctx, c.B().Ping().Build()).Error()
	if !errors.Is(err, drivers.ErrNotSent) {
		t.Fatalf("PING after the connection was lost: %v, want drivers.ErrNotSent", err)
	}
	rs := c.DoMulti(ctx, c.B().Ping().Build(), c.B().Ping().Build())
	for i, r := range rs {
		if !errors.Is(r.Error(), drivers.ErrNotSent) {
			t.Fatalf("DoMulti's PING %d after the connection was lost: %v, want drivers.ErrNotSent", i, r.Error())
		}
	}
	if now := c.sockets(); len(now) != 0 {
		t.Fatalf("%d connections open after the loss: valkey-go dialled behind the Conn's owner", len(now))
	}
	select {
	case err := <-lost:
		t.Fatalf("OnLost called a second time: %v", err)
	default:
	}
}

// A listening Conn's connection is PINGed too: a frozen server ends the
// listener with an error, as with valkey-go's PING.
func TestPingListenerFrozen(t *testing.T) {
	shortPingGap(t, 20*time.Millisecond)
	srv := valkeytest.Start(t)
	c := dialT(t, drivers.Options{Addr: srv.Addr(), ReadTimeout: 300 * time.Millisecond})
	subscribed := make(chan struct{}, 1)
	done := c.ListenValkey(valkey.PubSubHooks{OnSubscription: func(s valkey.PubSubSubscription) {
		if s.Kind == "subscribe" {
			subscribed <- struct{}{}
		}
	}})
	if err := c.Do(context.Background(), c.B().Subscribe().Channel("frozen").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-subscribed:
	case err := <-done:
		t.Fatalf("the listener ended before the subscription: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("SUBSCRIBE not confirmed")
	}
	// Pings while subscribed (the listener's and the first connection's).
	waitPings(t, srv, 4)
	select {
	case err := <-done:
		t.Fatalf("the listener ended while the server answers: %v", err)
	default:
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Resume() }()
	start := time.Now()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the listener ended without an error")
		}
		t.Logf("listener ended %s after the freeze: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(5 * time.Second):
		t.Fatal("the listener still runs 5 s after the server froze: no PING timed out")
	}
}

// A Conn dialled with NoIdlePing sends nothing of its own.
func TestNoIdlePingSendsNothing(t *testing.T) {
	shortPingGap(t, 5*time.Millisecond)
	srv := valkeytest.Start(t)
	c := dialT(t, drivers.Options{Addr: srv.Addr(), NoIdlePing: true})
	p := dialT(t, drivers.Options{Addr: srv.Addr()}) // one that PINGs, to wait on
	if err := c.Do(context.Background(), c.B().Get().Key("k").Build()).Error(); err != nil && !valkey.IsValkeyNil(err) {
		t.Fatal(err)
	}
	if err := p.Do(context.Background(), p.B().Get().Key("k").Build()).Error(); err != nil && !valkey.IsValkeyNil(err) {
		t.Fatal(err)
	}
	// 20 PINGs of the other Conn: 20 gaps of silence for both.
	waitPings(t, srv, 20)
	r, err := srv.Do("CLIENT", "LIST")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := r.(string)
	if n := regexp.MustCompile(`cmd=ping`).FindAllStringIndex(s, -1); len(n) != 1 {
		t.Fatalf("%d connections whose last command was PING, want 1 (the Conn without NoIdlePing):\n%s", len(n), s)
	}
}
