package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// A consumer blocked in XREADGROUP on a server that then freezes
// (SIGSTOP): Close cannot have the server end the read (CLIENT UNBLOCK
// gets no answer) and falls back to closing the read's connection after
// unblockWait (250 ms), not after ReadTimeout: 3 s with the defaults in
// the first version of the unblocking Close, which undid qa-AZ AZ3's
// prompt Close against such a server.
func TestConsumeCloseFrozenServerPrompt(t *testing.T) {
	srv := valkeytest.Start(t)
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	cons, err := eng.Consume(ctx, "s", "g", "c", func(context.Context, engine.XEntry) error { return nil },
		engine.ConsumeOptions{Block: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	waitCond(t, 10*time.Second, "the consumer's read blocked on the server", func() bool {
		info, err := srv.Do("INFO", "clients")
		s, _ := info.(string)
		return err == nil && strings.Contains(s, "blocked_clients:1")
	})
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Resume() }()
	start := time.Now()
	if err := cons.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Consumer.Close with the server frozen took %v, want < 1s", took)
	}
	start = time.Now()
	eng.Close()
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Engine.Close after it took %v, want < 1s", took)
	}
}
