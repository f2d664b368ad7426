package engine_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
)

// TestStatsAccountEveryCommand: every command fired is counted once:
// answered (Commands), failed before it was written because its context
// ended (Expired), or refused (Rejected). Contexts cancelled a few
// microseconds after their commands were fired end some of them after
// the actor drained them and before it wrote them: those were counted
// nowhere (60-1,152 of 200,000 in QA's runs).
func TestStatsAccountEveryCommand(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	before := eng.Stats()
	var fired atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			fs := make([]*futures.Future[int64], 20)
			for r := range 40 {
				c, cancel := context.WithCancel(ctx)
				for i := range fs {
					fs[i] = eng.Incr(c, "n")
				}
				fired.Add(int64(len(fs)))
				time.AfterFunc(time.Duration(r%5)*20*time.Microsecond, cancel)
				for _, f := range fs {
					if _, err := f.Await(ctx); err != nil && !errors.Is(err, context.Canceled) {
						t.Errorf("INCR: %v", err)
					}
				}
				cancel()
			}
		})
	}
	wg.Wait()
	// A future whose context ends fails at once (an Await with another
	// context watches it), while its command may still be queued or
	// drained and not yet dealt with: the counts catch up once the actor
	// has dealt with every command. One never counted never does.
	var counted int64
	var st engine.Stats
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		st = eng.Stats()
		counted = int64(st.Commands-before.Commands) + int64(st.Expired-before.Expired) + int64(st.Rejected-before.Rejected)
		if counted == fired.Load() || time.Now().After(deadline) {
			break
		}
	}
	if counted != fired.Load() {
		t.Fatalf("Commands %d + Expired %d + Rejected %d = %d, %d commands fired (queued %d, in flight %d)",
			st.Commands-before.Commands, st.Expired-before.Expired, st.Rejected-before.Rejected, counted, fired.Load(), st.Queued, st.InFlight)
	}
}

// TestZeroEngine: a zero Engine (not made by New) is not a healthy one:
// Ping fails with ErrNotCreated, IsHealthy is false, and Close returns
// ErrNotCreated instead of panicking (it closed a nil channel).
func TestZeroEngine(t *testing.T) {
	var e engine.Engine
	ctx := ctxT(t)
	if err := e.Ping(ctx); !errors.Is(err, engine.ErrNotCreated) {
		t.Fatalf("Ping on a zero Engine: %v, want ErrNotCreated", err)
	}
	if e.IsHealthy(ctx) {
		t.Fatal("IsHealthy true on a zero Engine")
	}
	if err := e.Close(); !errors.Is(err, engine.ErrNotCreated) {
		t.Fatalf("Close on a zero Engine: %v, want ErrNotCreated", err)
	}
	// New returns nil with its error: "defer eng.Close()" before the
	// error check panicked on the failure path (QA-AA).
	var nilEngine *engine.Engine
	if err := nilEngine.Close(); !errors.Is(err, engine.ErrNotCreated) {
		t.Fatalf("Close on a nil *Engine: %v, want ErrNotCreated", err)
	}
	// A health check given the nil engine of a failed New.
	if err := nilEngine.Ping(ctx); !errors.Is(err, engine.ErrNotCreated) {
		t.Fatalf("Ping on a nil *Engine: %v, want ErrNotCreated", err)
	}
	if nilEngine.IsHealthy(ctx) {
		t.Fatal("IsHealthy true on a nil *Engine")
	}
	// A nil *DedicatedConn (qa-AN AN5: Do panicked).
	var dc *engine.DedicatedConn
	if _, err := dc.Do(ctx, "PING"); !errors.Is(err, engine.ErrNotCreated) {
		t.Fatalf("Do on a nil *DedicatedConn: %v, want ErrNotCreated", err)
	}
	if _, err := dc.DoMulti(ctx, []string{"PING"}); !errors.Is(err, engine.ErrNotCreated) {
		t.Fatalf("DoMulti on a nil *DedicatedConn: %v, want ErrNotCreated", err)
	}
	if dc.Addr() != "" {
		t.Fatal("Addr of a nil *DedicatedConn")
	}
}

// TestStatsCountBreakerRefusals: commands the open breaker fails before
// they are written are counted in CircuitOpen, so that Stats still
// accounts for every command fired while a node is down (QA-M: 1,000
// refused commands were counted nowhere).
func TestStatsCountBreakerRefusals(t *testing.T) {
	eng, srv := newEngine(t, func(c config.Config) config.Config {
		c.CircuitBreakerThreshold = 1
		c.ReadTimeout = 200 * time.Millisecond
		c.WriteTimeout = 200 * time.Millisecond
		return c
	})
	ctx := ctxT(t)
	if err := eng.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	before := eng.Stats()
	resume := pauseServer(t, srv)
	if _, err := eng.Incr(ctx, "n").Await(ctx); err == nil {
		t.Fatal("INCR answered by a stopped server")
	}
	fired, refused := 1, 0
	for range 100 {
		fired++
		if _, err := eng.Incr(ctx, "n").Await(ctx); errors.Is(err, engine.ErrCircuitOpen) {
			refused++
		}
	}
	p := eng.Pipeline()
	fs := make([]*futures.Future[int64], 10)
	for i := range fs {
		fs[i] = p.Incr("n")
	}
	_ = p.Exec(ctx)
	for _, f := range fs {
		fired++
		if _, err := f.Await(ctx); errors.Is(err, engine.ErrCircuitOpen) {
			refused++
		}
	}
	resume()
	st := eng.Stats()
	if refused < 100 {
		t.Fatalf("%d of %d commands refused by the open breaker; the breaker did not open", refused, fired)
	}
	if got := st.CircuitOpen - before.CircuitOpen; got != uint64(refused) {
		t.Errorf("CircuitOpen counted %d, %d commands failed with ErrCircuitOpen", got, refused)
	}
	counted := (st.Commands - before.Commands) + (st.Expired - before.Expired) + (st.Rejected - before.Rejected) + (st.CircuitOpen - before.CircuitOpen)
	if counted != uint64(fired) {
		t.Errorf("Commands %d + Expired %d + Rejected %d + CircuitOpen %d = %d, %d commands fired",
			st.Commands-before.Commands, st.Expired-before.Expired, st.Rejected-before.Rejected, st.CircuitOpen-before.CircuitOpen, counted, fired)
	}
}
