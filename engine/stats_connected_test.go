package engine_test

import (
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/valkeytest"
)

// Stats.Conns[i].Connected says whether a connection actor holds a
// working connection: false while the server is down (so that
// db.client.connection.count reads 0 then, not 1 idle), true again once
// it is back, false after Close.
func TestStatsConnectedFollowsOutage(t *testing.T) {
	eng, srv := newEngine(t)
	ctx := ctxT(t)
	connected := func() bool {
		cs := eng.Stats().Conns
		return len(cs) == 1 && cs[0].Connected
	}
	if err := eng.Set(ctx, "sc:k", "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	if !connected() {
		t.Fatalf("not connected after a SET: %+v", eng.Stats().Conns)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	waitCond(t, 10*time.Second, "the connection reported down", func() bool {
		_ = eng.Get(ctx, "sc:k").Err(ctx) // finds the connection dead
		return !connected()
	})
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitCond(t, 10*time.Second, "the connection back", func() bool {
		_ = eng.Get(ctx, "sc:k").Err(ctx)
		return connected()
	})
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	if connected() {
		t.Fatalf("connected after Close: %+v", eng.Stats().Conns)
	}
}

// Stats.Held counts a command kept to be sent again while its node's
// connection is re-dialled: a GET whose reply a silent server withheld
// (ReadTimeout) waits for the new connection in no mailbox and not in
// flight, then is answered (qa-AF: counted nowhere before).
func TestStatsHeldWhileRedialling(t *testing.T) {
	srv := valkeytest.Start(t)
	px := valkeytest.ProxyFor(t, srv.Addr())
	eng := engineOn(t, config.DefaultConfig().WithAddrs(px.Addr()))
	defer eng.Close()
	ctx := ctxT(t)
	if err := eng.Set(ctx, "held:k", "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	if err := px.Timeout(0); err != nil { // silent: requests and dials go unanswered
		t.Fatal(err)
	}
	f := eng.Get(ctx, "held:k")
	waitCond(t, 20*time.Second, "the GET held for the new connection", func() bool {
		s := eng.Stats()
		return s.Held == 1 && s.InFlight == 0 && s.Queued == 0
	})
	if err := px.RemoveToxics(); err != nil {
		t.Fatal(err)
	}
	if v, err := f.Await(ctx); err != nil || v != "v" {
		t.Fatalf("GET after the server came back: %q, %v", v, err)
	}
	if held := eng.Stats().Held; held != 0 {
		t.Fatalf("Held = %d after the GET was answered, want 0", held)
	}
}
