package engine_test

import (
	"testing"
	"time"
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
