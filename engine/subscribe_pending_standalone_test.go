package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// Standalone mode, the counterpart of BE3's cluster retry
// (TestPendingShardHandlerSSubscribeNodeBack): a Subscribe nobody waits
// for (its ctx ended) made while the server is down is not lost: the
// subscription's one connection actor keeps the name and subscribes it
// with the rest of the set when the server is back.
func TestSubscribeUnwaitedWhileDownStandalone(t *testing.T) {
	srv := valkeytest.Start(t)
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	rec := &qabeRec{}
	sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"a"}, Handler: rec.add})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	csWait(t, 10*time.Second, "Disconnected", func() bool { return rec.count(engine.Disconnected, "", "") > 0 })
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if err := sub.Subscribe(ended, "b"); err == nil {
		t.Fatal("Subscribe with an ended ctx returned nil while the server was down")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	csWait(t, 10*time.Second, "Resubscribed", func() bool { return rec.count(engine.Resubscribed, "", "") > 0 })
	csWait(t, 10*time.Second, "a message on b", func() bool {
		_ = eng.Publish(ctx, "b", "x").Err(ctx)
		return rec.count(engine.SubMessage, "b", "x") > 0
	})
	if n := rec.count(engine.Refused, "", ""); n != 0 {
		t.Fatalf("%d Refused events (the server was only down): %s", n, rec.events())
	}
}
