package engine_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/engine/enginetest"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// faultConfig is the configuration the fault tests run with: the defaults
// (DialTimeout 5s, ReadTimeout and WriteTimeout 3s: what users get), with a
// breaker that half-opens after 250ms instead of 1s so that recovery
// within 1s of a restart is measured against the probe, not the wait.
func faultConfig(addr string) config.Config {
	return config.DefaultConfig().WithAddrs(addr).
		WithCircuitBreakerOpenTimeout(250 * time.Millisecond)
}

// Fault test 1: the server is killed and restarted 20 times while 64
// goroutines write distinct keys. Every future completes, every write
// whose future succeeded is on the server after the last restart (AOF,
// appendfsync always), and the engine serves again within 1s of each
// restart.
func TestFaultKillRestart(t *testing.T) {
	enginetest.FaultKillRestart(t, checked(enginetest.Options{}))
}

// Fault test 2: the server is frozen (SIGSTOP) under load. Commands fail at
// their deadlines (±50ms), the breaker opens, calls then fail fast (<1ms
// each over 1,000 calls); after SIGCONT the breaker closes within 1s and
// traffic flows; the goroutine count returns to its baseline.
func TestFaultFrozenServer(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: skipped with -short")
	}
	srv := valkeytest.Start(t)
	eng, err := open(context.Background(), t, faultConfig(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ctx := ctxT(t)
	if err := eng.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()

	// Load: 16 goroutines, 100ms deadlines.
	const deadline = 100 * time.Millisecond
	var stop atomic.Bool
	var wg sync.WaitGroup
	var late atomic.Int64 // commands that returned more than 50ms after their deadline
	var worstLate atomic.Int64
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				cctx, cancel := context.WithTimeout(context.Background(), deadline)
				start := time.Now()
				_, err := eng.Set(cctx, fmt.Sprintf("f%d:%d", g, i), "v", 0).Await(cctx)
				el := time.Since(start)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) {
					over := el - deadline
					if over > 50*time.Millisecond {
						late.Add(1)
					}
					for {
						w := worstLate.Load()
						if int64(over) <= w || worstLate.CompareAndSwap(w, int64(over)) {
							break
						}
					}
				}
				if err != nil {
					time.Sleep(time.Millisecond) // pacing while the node is down
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond) // traffic flowing
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()

	// The breaker opens.
	for eng.Stats().Nodes[0].Breaker == "closed" {
		if time.Since(paused) > 10*time.Second {
			t.Fatalf("breaker still closed 10s after SIGSTOP: %+v", eng.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	openedAfter := time.Since(paused)

	// Calls fail fast while it is open.
	var slowest time.Duration
	var total time.Duration
	for range 1000 {
		start := time.Now()
		_, err := eng.Get(ctx, "x").Await(ctx)
		d := time.Since(start)
		total += d
		slowest = max(slowest, d)
		if !errors.Is(err, engine.ErrCircuitOpen) {
			t.Fatalf("call with the breaker open: %v, want ErrCircuitOpen", err)
		}
	}
	if mean := total / 1000; mean >= time.Millisecond {
		t.Fatalf("fail-fast calls took %s on average, want < 1ms", mean)
	}

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	for eng.Stats().Nodes[0].Breaker != "closed" {
		if time.Since(resumed) > time.Second {
			t.Fatalf("breaker not closed 1s after SIGCONT: %+v", eng.Stats().Nodes)
		}
		time.Sleep(5 * time.Millisecond)
	}
	closedAfter := time.Since(resumed)
	served := enginetest.WaitServing(t, eng, time.Second)
	stop.Store(true)
	wg.Wait()

	if n := late.Load(); n > 0 {
		t.Fatalf("%d commands returned more than 50ms after their deadline (worst %s)", n, time.Duration(worstLate.Load()))
	}
	// Goroutines back to the baseline (timers and probes finish).
	var now int
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		if now = runtime.NumGoroutine(); now <= base {
			break
		}
		if time.Since(start) > 5*time.Second {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines %d, baseline %d:\n%s", now, base, buf[:runtime.Stack(buf, true)])
		}
	}
	t.Logf("breaker opened %s after SIGSTOP; fail-fast mean %s, slowest %s; closed %s after SIGCONT, serving %s later; worst lateness %s; goroutines %d (baseline %d)",
		openedAfter, total/1000, slowest, closedAfter, served, time.Duration(worstLate.Load()), now, base)
}

// Close while the node is down (breaker open, probes and restarts pending)
// completes every future and leaves no goroutine behind.
func TestFaultCloseWhileBreakerOpen(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: skipped with -short")
	}
	srv := valkeytest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	eng, err := open(context.Background(), t, faultConfig(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if err := eng.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer srv.Resume()
	var fs []*futures.Future[struct{}]
	for eng.Stats().Nodes[0].Breaker == "closed" {
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		fs = append(fs, eng.Set(cctx, "k", "v", 0))
		_ = fs[len(fs)-1].Err(cctx)
		cancel()
		if len(fs) > 1000 {
			t.Fatal("breaker never opened")
		}
	}
	// Commands without deadlines, queued or failed fast.
	for range 100 {
		fs = append(fs, eng.Set(ctx, "k", "v", 0))
	}
	if err := eng.Close(); err != nil {
		t.Logf("Close: %v", err)
	}
	for i, f := range fs {
		if !f.IsDone() {
			t.Fatalf("future %d pending after Close", i)
		}
	}
}

// A command's own context ends it at its deadline whatever its connection
// actor is doing (issue 9, finding 0). The server is frozen (SIGSTOP: it
// accepts connections and answers nothing), so the engine's connection
// breaks at the first deadline and each reconnect waits out the default
// 5s DialTimeout. Three GETs in a row, each with a 200ms deadline and
// awaited with a context that never ends, each return by their deadline
// + 50ms; three rounds of freeze and thaw; after each thaw the engine
// serves again within 1s.
func TestFaultFrozenDeadlines(t *testing.T) {
	srv, eng := faultEngine(t)
	const deadline = 200 * time.Millisecond
	for round := range 3 {
		if err := srv.Pause(); err != nil {
			t.Fatal(err)
		}
		for call := range 3 {
			cctx, cancel := context.WithTimeout(context.Background(), deadline)
			start := time.Now()
			_, err := eng.Get(cctx, "k").Await(context.Background())
			el := time.Since(start)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, engine.ErrCircuitOpen) {
				t.Fatalf("round %d, call %d: GET on a frozen server: %v, want a deadline error", round, call, err)
			}
			if el > deadline+50*time.Millisecond {
				t.Fatalf("round %d, call %d: GET with a %s deadline returned after %s", round, call, deadline, el)
			}
		}
		if err := srv.Resume(); err != nil {
			t.Fatal(err)
		}
		d := enginetest.WaitServing(t, eng, 10*time.Second)
		if d > time.Second {
			t.Fatalf("round %d: serving again %s after SIGCONT, want < 1s", round, d)
		}
	}
	if st := eng.Stats(); st.Reconnects < 3 {
		t.Fatalf("%d reconnects for 3 freezes: the connection never broke", st.Reconnects)
	}
}

// TestFaultFrozenBlockingDeadline: a blocking command's ctx ends its
// future at its deadline against a server that stopped answering, also
// when the future is awaited with a ctx that never ends (the driver's
// blocking call gives up seconds later).
func TestFaultFrozenBlockingDeadline(t *testing.T) {
	srv, eng := faultEngine(t)
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Resume() }()
	const deadline = 300 * time.Millisecond
	for _, args := range [][]string{{"nolist", "5"}, {"nolist", "0"}} {
		cctx, cancel := context.WithTimeout(context.Background(), deadline)
		start := time.Now()
		_, err := eng.Do(cctx, "BLPOP", args...).Await(context.Background())
		el := time.Since(start)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("BLPOP %v on a frozen server: %v, want context.DeadlineExceeded", args, err)
		}
		if el > deadline+50*time.Millisecond {
			t.Fatalf("BLPOP %v with a %s deadline returned after %s", args, deadline, el)
		}
	}
}

// faultEngine skips a fault test with -short, else starts a server and an
// engine on it with the default config, closed at the test's end, and
// checks that it serves.
func faultEngine(t *testing.T) (*valkeytest.Server, *engine.Engine) {
	t.Helper()
	if testing.Short() {
		t.Skip("fault test: skipped with -short")
	}
	srv := valkeytest.Start(t)
	eng, err := open(context.Background(), t, config.DefaultConfig().WithAddrs(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	if err := eng.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	return srv, eng
}
