package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
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

// A switch cuts the pipeline in flight to a stalled former primary: its
// writes fail with ErrOutcomeUnknown wrapping ErrPrimaryChanged, and what
// is queued behind it goes to the new primary at once. The switch only
// had the connection actors reconnect after their round trip, so the
// pipeline waited for the read timeout (or for the old primary to wake
// and acknowledge writes the failover then dropped: QA-Z 1), and every
// write queued behind it with it. ReadTimeout is 10 s here, as the docs
// suggest for slow commands: with the default 3 s the stall ended ~0.3 s
// after the switch, by the timeout, and the writes' errors did not say
// why.
func TestSentinelSwitchCutsPipelineToStalledPrimary(t *testing.T) {
	s := valkeytest.StartSentinelT(t)
	eng := sentinelEngine(t, s, func(c config.Config) config.Config { return c.WithReadTimeout(10 * time.Second) })
	// Writers keep a pipeline in flight: the first one written after
	// the freeze waits for an answer.
	var mu sync.Mutex
	var errs []error
	var acked atomic.Int64
	stop := writeThroughStall(t, eng, s, 4, "cut", func(ctx context.Context, key string) {
		if _, err := eng.Incr(context.Background(), key).Await(ctx); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		} else {
			acked.Add(1)
		}
	}, acked.Load)
	stop()
	mu.Lock()
	defer mu.Unlock()
	cut := 0
	for _, err := range errs {
		switch {
		case errors.Is(err, engine.ErrPrimaryChanged) && errors.Is(err, engine.ErrOutcomeUnknown):
			cut++
		default:
			t.Errorf("a write failed with %v, want ErrOutcomeUnknown and ErrPrimaryChanged (cut by the switch)", err)
		}
	}
	if cut == 0 {
		t.Fatalf("no write failed as cut by the switch (%d acknowledged): was no pipeline in flight?", acked.Load())
	}
	t.Logf("%d writes cut, %d acknowledged", cut, acked.Load())
}

// The same stall when every writer has a deadline: the pipeline to the
// frozen primary was abandoned at the deadlines, so no pipeline was in
// flight at the switch to cut; the actor was re-dialling the frozen
// primary instead, and that dial (its handshake unanswered) ran until the
// dial timeout, 5 s, with the writes behind it and the breaker opened by
// their expiry (QA-AB 1: writes resumed 3.0 s after the switch, 31,168
// ErrCircuitOpen). A switch ends a dial under way to the old primary.
func TestSentinelSwitchEndsDialToStalledPrimary(t *testing.T) {
	s := valkeytest.StartSentinelT(t)
	eng := sentinelEngine(t, s, func(c config.Config) config.Config { return c.WithReadTimeout(10 * time.Second) })
	var acked atomic.Int64
	stop := writeThroughStall(t, eng, s, 8, "dial", func(ctx context.Context, key string) {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := eng.Incr(wctx, key).Await(wctx); err == nil {
			acked.Add(1)
		}
	}, acked.Load)
	stop()
}

// writeThroughStall runs n writers calling write with keys prefix:i until
// stop is called (it waits for them), waits for 100 acknowledged writes
// (counted by acked), freezes the primary until the test ends, waits for
// the engine's switch, then checks that a SET made after it succeeds
// within 1 s (sentinel.md: writes resume within 1 s of the switch).
func writeThroughStall(t *testing.T, eng *engine.Engine, s *valkeytest.Sentinel, n int, prefix string, write func(ctx context.Context, key string), acked func() int64) (stop func()) {
	t.Helper()
	ctx := ctxT(t)
	old, err := s.Primary()
	if err != nil {
		t.Fatal(err)
	}
	var done atomic.Bool
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprint(prefix, ":", i)
			for !done.Load() {
				write(ctx, key)
			}
		})
	}
	stop = func() {
		done.Store(true)
		wg.Wait()
	}
	t.Cleanup(stop)
	waitCond(t, 10*time.Second, "writes acknowledged", func() bool { return acked() > 100 })
	if err := old.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = old.Resume() })
	waitCond(t, 30*time.Second, "the switch to a new primary", func() bool {
		return eng.Stats().Sentinel.Primary != old.Addr()
	})
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err = eng.Set(sctx, prefix+":after", "1", 0).Await(sctx)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("SET after the switch: %v (%v; held by the stalled former primary)", err, took)
	}
	if took > time.Second {
		t.Fatalf("SET after the switch took %v, want < 1 s", took)
	}
	t.Logf("SET after the switch: %v", took)
	return stop
}
