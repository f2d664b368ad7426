package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// An engine made right after the promotion of a dead primary's replica
// (a process restarted in the outage) serves at once. In the failover's
// last phase (its leader reconfigures the other replicas, about a
// second) the leader names the promoted replica but still says a failover
// is in progress: the engine took it for one to hold for and held every
// command until the hold limit, 6 s (QA-Z 2). New fails with ErrNoPrimary
// until the promotion, so the first New that succeeds falls in that phase.
func TestSentinelNewAfterPromotion(t *testing.T) {
	s := valkeytest.StartSentinelT(t)
	old, err := s.Primary()
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Kill(); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	cfg := config.DefaultConfig().WithSentinel(s.MasterName(), s.Addrs()...)
	deadline := time.Now().Add(30 * time.Second)
	var eng *engine.Engine
	for {
		eng, err = engine.New(ctx, cfg)
		if err == nil {
			break
		}
		if !errors.Is(err, engine.ErrNoPrimary) || time.Now().After(deadline) {
			t.Fatalf("New after the kill: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // the cadence of a restarting process
	}
	defer eng.Close()
	if p := eng.Stats().Sentinel.Primary; p == old.Addr() {
		t.Fatalf("New found the dead primary %s", p)
	}
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	err = eng.Set(sctx, "newafter", "1", 0).Err(sctx)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("first SET after New: %v after %v (sentinel %+v)", err, took, *eng.Stats().Sentinel)
	}
	if took > time.Second {
		t.Fatalf("first SET after New took %v, want < 1 s (sentinel %+v)", took, *eng.Stats().Sentinel)
	}
	if st := eng.Stats().Sentinel; st.HoldTimeouts != 0 {
		t.Fatalf("a hold ended by its limit: %+v", *st)
	}
}
