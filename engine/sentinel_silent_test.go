package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// A sentinel that accepts connections and never answers (a frozen host,
// a black hole), first in the list, with a 500ms DialTimeout: New finds
// the primary through the healthy sentinels after it, and the
// resolutions after New (each reconnect's, the periodic ones) do not fail
// on it either. Before, the first sentinel's query (bounded by 1 s) took
// New's whole time: New failed with ErrNoPrimary naming only that
// sentinel, and every resolution of the sentinel actor failed the same
// way.
func TestSentinelSilentFirstSentinel(t *testing.T) {
	s := valkeytest.StartSentinelT(t)
	bl := blackHole(t)
	const dial = 500 * time.Millisecond
	cfg := config.DefaultConfig().WithDialTimeout(dial).WithSentinel(s.MasterName(), append([]string{bl}, s.Addrs()...)...)
	ctx := ctxT(t)
	start := time.Now()
	eng, err := open(ctx, t, cfg)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("New with a silent first sentinel and a %v dial timeout failed after %v: %v", dial, took.Round(time.Millisecond), err)
	}
	defer eng.Close()
	t.Logf("New in %v", took.Round(time.Millisecond))
	// New waits up to its dial timeout for the subscriptions, the silent
	// sentinel's included: the primary itself is found within 100-200ms.
	if took > dial+500*time.Millisecond {
		t.Errorf("New took %v, want < %v", took, dial+500*time.Millisecond)
	}
	if _, err := eng.Set(ctx, "k", "v", 0).Await(ctx); err != nil {
		t.Fatal(err)
	}
	p := s.Nodes()[0] // s.Primary would ask the sentinels
	if got := eng.Stats().Sentinel.Primary; got != p.Addr() {
		t.Fatalf("the engine follows %s, want the first primary %s", got, p.Addr())
	}
	// The sentinel actor resolves at its start and after each
	// subscription; the reconnects after a kill resolve again.
	waitCond(t, 3*time.Second, "a resolution of the sentinel actor", func() bool {
		st := eng.Stats().Sentinel
		return st.Resolutions > st.FailedResolutions
	})
	if _, err := p.Do("CLIENT", "KILL", "TYPE", "normal"); err != nil {
		t.Fatal(err)
	}
	back := servingAgain(ctx, t, eng)
	if back > time.Second {
		t.Errorf("serving again %v after the kill, want < 1s", back)
	}
	time.Sleep(dial) // a resolution that waited on the silent sentinel would fail by now
	st := eng.Stats().Sentinel
	t.Logf("serving again %v after the kill; %d resolutions, %d failed", back.Round(time.Millisecond), st.Resolutions, st.FailedResolutions)
	if st.FailedResolutions != 0 {
		t.Errorf("%d of %d resolutions failed: the silent sentinel stopped the others from being asked", st.FailedResolutions, st.Resolutions)
	}
}

// When no sentinel answers, New's error names every sentinel: those that
// failed, those still asked when the dial timeout ended, and those not
// asked by then. Before, a silent first sentinel took New's whole time
// and the error named it alone (the sentinel after it, which refuses
// connections, was never tried).
func TestSentinelSilentSentinelsErrorNamesEach(t *testing.T) {
	s := valkeytest.StartSentinelT(t, valkeytest.SentinelOptions{Replicas: -1})
	bl1, refused, bl2, bl3, bl4, bl5, last := blackHole(t), freeAddr(t), blackHole(t), blackHole(t), blackHole(t), blackHole(t), blackHole(t)
	defer noLeakWithin(t, lingerDial, goleak.IgnoreCurrent())
	// bl1 is asked at once, refused 100ms later (it fails at once: bl2
	// next), bl3 100ms after bl2, bl4 100ms after bl3, at about the 300ms
	// dial timeout, when bl1's own dial fails too, which may start bl5 at
	// once (a busy machine may run that before New's deadline ends the
	// rest: once, the sentinel after bl4 was asked); last not before bl2's
	// dial fails, 100ms after the deadline.
	const dial = 300 * time.Millisecond
	cfg := config.DefaultConfig().WithDialTimeout(dial).WithSentinel(s.MasterName(), bl1, refused, bl2, bl3, bl4, bl5, last)
	start := time.Now()
	eng, err := open(ctxT(t), t, cfg)
	took := time.Since(start)
	if err == nil {
		eng.Close()
		t.Fatal("New succeeded with no sentinel answering")
	}
	t.Logf("New failed in %v: %v", took.Round(time.Millisecond), err)
	if !errors.Is(err, engine.ErrNoPrimary) {
		t.Fatalf("New: %v, want ErrNoPrimary", err)
	}
	if took > dial+500*time.Millisecond {
		t.Errorf("New took %v to fail, want < %v", took, dial+500*time.Millisecond)
	}
	msg := err.Error()
	for _, addr := range []string{bl1, refused, bl2, bl3, last} {
		if !strings.Contains(msg, "sentinel "+addr+":") {
			t.Errorf("the error does not name %s: %v", addr, msg)
		}
	}
	if !strings.Contains(msg, "sentinel "+last+": not asked: context deadline exceeded") {
		t.Errorf("the error does not say %s was not asked: %v", last, msg)
	}
}

// A sentinel that freezes after New (SIGSTOP), the one whose answer the
// engine took: the resolutions of later reconnects ask it first, over
// its open connection, and go on to the next sentinel after 100ms, its
// query given up (its connection closed) as soon as that one answered.
// Before, with a 500ms DialTimeout (a resolution's bound) they failed,
// the frozen sentinel's query taking the resolution's whole time; with
// 2s, each reconnect waited the 1s bound of that query before it dialled.
func TestSentinelFrozenAfterNew(t *testing.T) {
	for _, dial := range []time.Duration{500 * time.Millisecond, 2 * time.Second} {
		t.Run(dial.String(), func(t *testing.T) { frozenAfterNew(t, dial) })
	}
}

func frozenAfterNew(t *testing.T, dial time.Duration) {
	s := valkeytest.StartSentinelT(t)
	eng := sentinelEngine(t, s, func(c config.Config) config.Config { return c.WithDialTimeout(dial) })
	ctx := ctxT(t)
	if _, err := eng.Set(ctx, "k", "v", 0).Await(ctx); err != nil {
		t.Fatal(err)
	}
	waitCond(t, 3*time.Second, "a resolution of the sentinel actor", func() bool {
		st := eng.Stats().Sentinel
		return st.Resolutions > st.FailedResolutions
	})
	time.Sleep(200 * time.Millisecond) // the resolutions after the subscriptions end
	frozen := s.Sentinels()[0]
	if err := frozen.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = frozen.Kill() }() // a frozen server takes long to stop
	before := eng.Stats().Sentinel
	p := s.Nodes()[0]
	if _, err := p.Do("CLIENT", "KILL", "TYPE", "normal"); err != nil {
		t.Fatal(err)
	}
	back := servingAgain(ctx, t, eng)
	time.Sleep(min(dial, time.Second) + 200*time.Millisecond) // the reconnect's resolution ended
	st := eng.Stats().Sentinel
	t.Logf("serving again %v after the kill; resolutions %d -> %d, failed %d -> %d", back.Round(time.Millisecond), before.Resolutions, st.Resolutions, before.FailedResolutions, st.FailedResolutions)
	if st.Resolutions == before.Resolutions {
		t.Fatal("no resolution after the kill")
	}
	if st.FailedResolutions != before.FailedResolutions {
		t.Errorf("%d resolutions failed with the first sentinel frozen", st.FailedResolutions-before.FailedResolutions)
	}
	// The next sentinel answers 100ms after the frozen one was asked.
	if back > 600*time.Millisecond {
		t.Errorf("serving again %v after the kill, want < 600ms", back)
	}
}

// servingAgain returns how long after now a SET succeeds again (5 s at
// most, else the test fails).
func servingAgain(ctx context.Context, t *testing.T, eng *engine.Engine) time.Duration {
	t.Helper()
	begin := time.Now()
	for {
		_, err := eng.Set(ctx, "k2", "v", 0).Await(ctx)
		if err == nil {
			return time.Since(begin)
		}
		if time.Since(begin) > 5*time.Second {
			t.Fatalf("no SET succeeded within 5s of the kill: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
