package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// 1,000 GETs in flight (run by the server, their replies on their way)
// when the connection is cut are all sent again and answered: a lost
// connection's reads get their first resend whatever the retry budget
// (burst 100). Before, 900 of them failed with ErrOutcomeUnknown and
// ErrRetryBudget, where valkey-go and go-redis served them all (qa-AJ).
func TestCutReadsInFlightResent(t *testing.T) {
	srv := valkeytest.Start(t)
	px := valkeytest.ProxyFor(t, srv.Addr())
	eng := engineOn(t, config.DefaultConfig().WithAddrs(px.Addr()))
	defer eng.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := eng.Set(ctx, "cut:k", "v", 0).Await(ctx); err != nil {
		t.Fatal(err)
	}
	// Replies take a second: the blocker's round trip (a pipeline of its
	// own) holds the GETs in the mailbox, and they then go out as one
	// pipeline (1,000 < MaxBatchSize) whose replies are still on their
	// way when the server has run them and the cut comes.
	if err := px.Latency(time.Second); err != nil {
		t.Fatal(err)
	}
	base := getCalls(t, srv)
	before := eng.Stats()
	blocker := eng.Get(ctx, "cut:k")
	waitCond(t, 10*time.Second, "the blocker in flight", func() bool { return eng.Stats().InFlight == 1 })
	const n = 1000
	fs := make([]*futures.Future[string], n)
	for i := range fs {
		fs[i] = eng.Get(ctx, "cut:k")
	}
	waitCond(t, 10*time.Second, "the server ran the blocker and the 1,000 GETs", func() bool { return getCalls(t, srv) >= base+1+n })
	if err := px.Disable(); err != nil { // cuts every connection
		t.Fatal(err)
	}
	if err := px.RemoveToxics(); err != nil {
		t.Fatal(err)
	}
	if err := px.Enable(); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for i, f := range append(fs, blocker) {
		if v, err := f.Await(ctx); err != nil || v != "v" {
			if failed++; failed <= 3 {
				t.Errorf("GET %d: %q, %v", i, v, err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d GETs whose replies the cut lost failed", failed, n+1)
	}
	if resent := eng.Stats().Retries - before.Retries; resent < n {
		t.Fatalf("%d commands sent again, want at least %d: the cut did not catch the GETs in flight", resent, n)
	}
}
