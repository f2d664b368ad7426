package engine_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// A switch away from a stalled primary (SIGSTOP: its sockets stay open,
// nothing answers) ends the hold of Dedicated, Tx, Watch and blocking
// commands at once. The switch closes the dedicated connections to the
// former primary (here three subscribers'), and each close waits a
// second for the stalled server; they ran one after another on the
// sentinel actor, before the hold ended, so a Dedicated call made right
// after the switch waited two seconds or more (2.02 s measured). Now they close all at
// once, beside the actor.
func TestSentinelSwitchFromStalledPrimaryReleasesHeld(t *testing.T) {
	s := valkeytest.StartSentinelT(t)
	eng := sentinelEngine(t, s)
	ctx := ctxT(t)
	old, err := s.Primary()
	if err != nil {
		t.Fatal(err)
	}
	const subs = 3
	for i := range subs {
		sub, err := eng.Subscribe(ctx, fmt.Sprint("stall:", i))
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
	}
	if err := old.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = old.Resume() }()
	waitCond(t, 30*time.Second, "the switch to a new primary", func() bool {
		return eng.Stats().Sentinel.Primary != old.Addr()
	})
	start := time.Now()
	var addr string
	err = eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		addr = c.Addr()
		_, err := c.Do(ctx, "PING")
		return err
	})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Dedicated after the switch: %v", err)
	}
	if addr == old.Addr() {
		t.Fatalf("Dedicated after the switch ran on the former primary %s", addr)
	}
	// One close of a connection to the stalled server takes a second;
	// one after another, the closes took two seconds or more.
	if took > time.Second {
		t.Fatalf("Dedicated after the switch took %v, want < 1s (the switch's closes of %d subscribers' connections to the stalled former primary held it)", took, subs)
	}
	t.Logf("Dedicated after the switch: %v", took)
}
