package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// Resource bounds of a long-lived engine: each scenario repeats an
// operation many times and checks that goroutines, open file descriptors
// and the live heap come back to (or stay near) what they were after a
// warm-up run of the same operation. Not parallel (no engine test is):
// the process-wide counts see only this test's engines.

// usage is one measurement of the process.
type usage struct {
	goroutines int
	heap       uint64 // bytes of live heap objects, after a GC
	fds        int
}

func (u usage) String() string {
	return fmt.Sprintf("%d goroutines, %d KiB heap, %d fds", u.goroutines, u.heap>>10, u.fds)
}

func measure(t testing.TB) usage {
	t.Helper()
	runtime.GC()
	runtime.GC() // the first may leave finalizers and cleanups to run
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("open fds: %v", err)
	}
	return usage{goroutines: runtime.NumGoroutine(), heap: ms.HeapAlloc, fds: len(fds)}
}

// Slack of the comparisons: a goroutine or two of the runtime and the
// futures' callback workers come and go; the heap moves by pools, the
// race detector's shadow, mailbox slices grown by a burst and lazily
// allocated tables (up to about 2 MiB seen in these runs).
const (
	leakGoroutines = 2
	leakFds        = 1
	leakHeap       = 4 << 20
)

// settleTo polls until goroutines, fds and heap are back to base's (plus
// the slack), or within has passed; it returns the last measurement.
// Work still under way (commands queued, cleanups of dropped pipelines
// that run after a GC) is given that time to finish.
func settleTo(t testing.TB, base usage, within time.Duration) usage {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		u := measure(t)
		if !u.above(base) || time.Now().After(deadline) {
			return u
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// above reports whether u exceeds base by more than the slack.
func (u usage) above(base usage) bool {
	return u.goroutines > base.goroutines+leakGoroutines || u.fds > base.fds+leakFds || u.heap > base.heap+leakHeap
}

// bounded runs op once (a warm-up: pools, idle connections, lazily made
// tables), measures, runs it n times, and fails when goroutines or fds do
// not come back, or the heap grew by more than the slack. It logs both
// measurements.
func bounded(t *testing.T, name string, n int, op func(i int)) {
	t.Helper()
	op(-1)
	before := measure(t)
	start := time.Now()
	for i := range n {
		op(i)
	}
	after := settleTo(t, before, 5*time.Second)
	t.Logf("%-26s x%-6d %6s: before %s; after %s", name, n, time.Since(start).Round(time.Millisecond), before, after)
	if after.above(before) {
		t.Errorf("%s x%d: grew from %s to %s", name, n, before, after)
	}
}

// leakEngine starts an engine with the default config and no logger (the
// log check of open keeps every line, which reads as heap growth).
func leakEngine(t testing.TB, cfg config.Config) *engine.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eng, err := engine.New(ctx, cfg)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	return eng
}

// TestLeakRepeatedOps repeats, on one engine, what a long-lived service
// does many times: commands whose context ends before or while they are
// queued, awaits that give up, subscriptions, consumers, batch writers,
// Dedicated and Watch calls that fail or panic, abandoned Scan iterators,
// Pipelines and Txs dropped without Exec, blocking commands timed out,
// callbacks. Nothing may accumulate.
func TestLeakRepeatedOps(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{Args: []string{"--enable-debug-command", "yes"}})
	eng := leakEngine(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	defer eng.Close()
	ctx := ctxT(t)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()

	bounded(t, "ctx cancelled before", 20000, func(int) {
		if err := eng.Set(cancelled, "leak:k", "v", 0).Err(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Set with a cancelled ctx: %v", err)
		}
	})
	bounded(t, "ctx cancelled queued", 2000, func(int) {
		c, cancel := context.WithCancel(ctx)
		var fs [5]*futures.Future[struct{}]
		for j := range fs {
			fs[j] = eng.Set(c, "leak:k", "v", 0)
		}
		cancel()
		for _, f := range fs {
			_ = f.Err(ctx) // written or cancelled: either is fine
		}
	})
	// The reply may come before the cancel (a 2 ms sleep, and this
	// goroutine preempted on a busy machine): each command succeeds or
	// fails with context.Canceled, and some are cancelled.
	inFlightCancelled := 0
	bounded(t, "ctx cancelled in flight", 50, func(int) {
		c, cancel := context.WithCancel(ctx)
		defer cancel()
		f := eng.Do(c, "DEBUG", "SLEEP", "0.002")
		for eng.Stats().InFlight == 0 && !f.IsDone() {
			runtime.Gosched()
		}
		cancel()
		_, err := f.Await(ctx)
		switch {
		case errors.Is(err, context.Canceled):
			inFlightCancelled++
		case err != nil:
			t.Fatalf("DEBUG SLEEP cancelled in flight: %v, want context.Canceled (or its reply)", err)
		}
	})
	if inFlightCancelled == 0 {
		t.Error("DEBUG SLEEP cancelled in flight: every reply came before its cancel")
	}
	pending := futures.NewPromise[int]().Future()
	bounded(t, "await deadline expires", 20000, func(int) {
		c, cancel := context.WithTimeout(ctx, time.Microsecond)
		defer cancel()
		if _, err := pending.Await(c); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Await: %v", err)
		}
	})
	bounded(t, "never awaited", 10000, func(int) {
		eng.Get(ctx, "leak:k")
	})
	bounded(t, "callbacks", 5000, func(int) {
		eng.Get(ctx, "leak:k").OnComplete(func(string, error) {})
	})
	bounded(t, "subscribe/close", 50, func(int) {
		s, err := eng.Subscribe(ctx, "leak:ch")
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		if err := s.Subscribe(ctx, "leak:ch2"); err != nil {
			t.Fatalf("Subscribe ch2: %v", err)
		}
		if err := s.Unsubscribe(ctx, "leak:ch2"); err != nil {
			t.Fatalf("Unsubscribe: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})
	bounded(t, "subscribe ctx ends", 50, func(i int) {
		c, cancel := context.WithTimeout(ctx, time.Duration(max(i, 0)%3)*time.Millisecond)
		defer cancel()
		if s, err := eng.Subscribe(c, "leak:ch"); err == nil {
			_ = s.Close()
		}
	})
	bounded(t, "consumer start/close", 50, func(int) {
		c, err := eng.Consume(ctx, "leak:s", "g", "c", func(context.Context, engine.XEntry) error { return nil }, engine.ConsumeOptions{})
		if err != nil {
			t.Fatalf("Consume: %v", err)
		}
		_ = c.Close()
	})
	bounded(t, "batch writer new/close", 50, func(int) {
		w, err := eng.NewBatchWriter(engine.BatchWriterOptions{})
		if err != nil {
			t.Fatalf("NewBatchWriter: %v", err)
		}
		_ = w.Set(ctx, "leak:bw", "v", 0)
		if err := w.Close(ctx); err != nil {
			t.Fatalf("writer Close: %v", err)
		}
	})
	boom := errors.New("boom")
	bounded(t, "dedicated error/panic", 50, func(int) {
		if err := eng.Dedicated(ctx, func(*engine.DedicatedConn) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("Dedicated: %v", err)
		}
		func() {
			defer func() { _ = recover() }()
			_ = eng.Dedicated(ctx, func(*engine.DedicatedConn) error { panic(boom) })
		}()
		c, cancel := context.WithTimeout(ctx, 2*time.Millisecond)
		defer cancel()
		_ = eng.Dedicated(c, func(d *engine.DedicatedConn) error {
			_, err := d.Do(c, "DEBUG", "SLEEP", "0.005")
			return err
		})
	})
	bounded(t, "watch error/panic", 50, func(int) {
		if err := eng.Watch(ctx, func(*engine.Tx) error { return boom }, "leak:w"); !errors.Is(err, boom) {
			t.Fatalf("Watch: %v", err)
		}
		func() {
			defer func() { _ = recover() }()
			_ = eng.Watch(ctx, func(*engine.Tx) error { panic(boom) }, "leak:w")
		}()
	})
	for i := range 100 {
		_ = eng.Set(ctx, fmt.Sprintf("leak:scan:%d", i), "v", 0)
	}
	bounded(t, "scan abandoned", 100, func(int) {
		for _, err := range eng.Scan(ctx, "leak:scan:*", 10) {
			if err != nil {
				t.Fatalf("Scan: %v", err)
			}
			break
		}
	})
	var dropped []*futures.Future[string]
	bounded(t, "pipeline/tx abandoned", 3000, func(int) {
		p := eng.Pipeline()
		p.Set("leak:p", "v", 0)
		g := p.Get("leak:p")
		if len(dropped) < 10 {
			dropped = append(dropped, g)
		}
		tx := eng.Tx()
		tx.Set("leak:p", "v", 0)
	})
	for i, f := range dropped {
		if _, err := f.Await(ctx); !errors.Is(err, engine.ErrDiscarded) {
			t.Fatalf("future %d of an abandoned pipeline: %v, want ErrDiscarded", i, err)
		}
	}
	bounded(t, "blocking ctx timeout", 30, func(int) {
		c, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
		defer cancel()
		if _, err := eng.Do(c, "BLPOP", "leak:nolist", "0").Await(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("BLPOP past its deadline: %v", err)
		}
	})
	if st := eng.Stats(); st.Subscriptions != 0 || st.SubConns != 0 || st.InFlight != 0 {
		t.Fatalf("stats after the runs: %d subscriptions, %d sub conns, %d in flight", st.Subscriptions, st.SubConns, st.InFlight)
	}
}

// TestLeakServerRestarts restarts the server under an engine with a
// subscription, a consumer, a batch writer and pooled Watch and Dedicated
// connections: each reconnect replaces what it lost and nothing more.
func TestLeakServerRestarts(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := leakEngine(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	defer eng.Close()
	ctx := ctxT(t)
	sub, err := eng.Subscribe(ctx, "leak:ch")
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer sub.Close()
	go func() {
		for range sub.Channel() {
		}
	}()
	cons, err := eng.Consume(ctx, "leak:s", "g", "c", func(context.Context, engine.XEntry) error { return nil }, engine.ConsumeOptions{})
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	defer cons.Close()
	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{})
	if err != nil {
		t.Fatalf("NewBatchWriter: %v", err)
	}
	defer w.Close(ctx)
	// use has every part of the engine work on the current server: it
	// returns once each did.
	use := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for eng.Set(ctx, "leak:k", "v", 0).Err(ctx) != nil {
			if time.Now().After(deadline) {
				t.Fatal("no reconnect")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := w.Set(ctx, "leak:bw", "v", 0); err != nil {
			t.Fatalf("writer Set: %v", err)
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatalf("Flush: %v", err)
		}
		if err := eng.Watch(ctx, func(tx *engine.Tx) error { tx.Set("leak:w", "v", 0); return tx.Exec(ctx) }, "leak:w"); err != nil {
			t.Fatalf("Watch: %v", err)
		}
		if err := eng.Dedicated(ctx, func(*engine.DedicatedConn) error { return nil }); err != nil {
			t.Fatalf("Dedicated: %v", err)
		}
		for eng.Stats().SubConns != 1 {
			if time.Now().After(deadline) {
				t.Fatalf("subscription not back: %d sub conns", eng.Stats().SubConns)
			}
			time.Sleep(10 * time.Millisecond)
		}
		// The consumer is connected again once it handles a new entry:
		// measured while it was still in its reconnect backoff, the first
		// restart's baseline lacked its connection (10 goroutines and 16
		// fds against 14 and 19 after the later restarts, a false leak).
		handled := cons.Stats().Handled
		if _, err := eng.XAdd(ctx, "leak:s", "f", "v").Await(ctx); err != nil {
			t.Fatalf("XADD: %v", err)
		}
		for cons.Stats().Handled == handled {
			if time.Now().After(deadline) {
				t.Fatalf("consumer not back: %+v", cons.Stats())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	use()
	const restarts = 4
	var first usage
	for r := range restarts {
		if err := srv.Restart(); err != nil {
			t.Fatalf("Restart: %v", err)
		}
		use()
		if r == 0 {
			first = measure(t)
			continue
		}
		u := settleTo(t, first, 5*time.Second)
		st := eng.Stats()
		t.Logf("restart %d: %s (after the first: %s); reconnects %d, subscription %d, consumer %d", r, u, first, st.Reconnects, st.SubReconnects, cons.Stats().Reconnects)
		if u.above(first) {
			t.Errorf("restart %d: grew from %s to %s", r, first, u)
		}
	}
}

// TestLeakNewClose opens and closes engines (standalone and cluster) many
// times, each used for commands, a subscription and a Dedicated call:
// goroutines, fds and heap come back.
func TestLeakNewClose(t *testing.T) {
	srv := valkeytest.Start(t)
	cl := valkeytest.StartClusterT(t)
	ctx := ctxT(t)
	for _, tc := range []struct {
		name string
		cfg  config.Config
		n    int
	}{
		{"standalone", config.DefaultConfig().WithAddrs(srv.Addr()), 60},
		{"cluster", config.DefaultConfig().WithAddrs(cl.Addrs()...).WithClusterMode(true), 20},
	} {
		bounded(t, tc.name+" New/Close", tc.n, func(int) {
			eng := leakEngine(t, tc.cfg)
			for i := range 20 {
				if err := eng.Set(ctx, fmt.Sprint("leak:nc", i), "v", 0).Err(ctx); err != nil {
					t.Fatalf("Set: %v", err)
				}
			}
			s, err := eng.Subscribe(ctx, "leak:ch")
			if err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			_ = s.Close()
			if err := eng.Dedicated(ctx, func(*engine.DedicatedConn) error { return nil }); err != nil {
				t.Fatalf("Dedicated: %v", err)
			}
			if err := eng.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		})
	}
}

// A BatchWriter keeps lanes (a goroutine and a connection each) for the
// current primaries only: after a failover, the lanes of the former
// primary end once the writer has lanes for its successor. They stayed
// for the writer's lifetime, one more node's worth per address that ever
// was a primary (failovers, nodes replaced at new addresses).
func TestLeakWriterRetiresFormerPrimaries(t *testing.T) {
	c := valkeytest.StartClusterT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(c.Addrs()...).WithClusterMode(true))
	defer eng.Close()
	ctx := ctxT(t)
	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	writeAll := func() {
		t.Helper()
		for i := range 300 {
			if err := w.Set(ctx, fmt.Sprintf("retire:%d", i), "v", 0); err != nil {
				t.Fatalf("Set: %v", err)
			}
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatalf("Flush: %v", err)
		}
	}
	writeAll()
	want := len(c.Primaries()) * engine.DefaultWriterConns
	if n := engine.WriterLanes(w); n != want {
		t.Fatalf("%d lanes before the failover, want %d", n, want)
	}
	if err := c.Failover(c.Replicas()[0]); err != nil {
		t.Fatalf("Failover: %v", err)
	}
	if err := engine.ReloadSlotMap(ctx, eng); err != nil {
		t.Fatalf("ReloadSlotMap: %v", err)
	}
	writeAll()
	if n := engine.WriterLanes(w); n != want {
		t.Fatalf("%d lanes after the failover, want %d (the former primary's lanes are kept)", n, want)
	}
	if s := w.Stats(); s.Failed != 0 || s.Pending != 0 {
		t.Fatalf("writer stats %s", s)
	}
}

// TestLeakSentinelConns repeats, in sentinel mode, what dials dedicated
// connections (Dedicated, Watch, subscriptions, consumers, batch writers,
// blocking commands): the engine tracks each to close it when the primary
// changes, and forgets it when it closes. Only the idle pooled ones stay.
func TestLeakSentinelConns(t *testing.T) {
	s := valkeytest.StartSentinelT(t, valkeytest.SentinelOptions{Replicas: -1})
	ctx := ctxT(t)
	eng := leakEngine(t, config.DefaultConfig().WithSentinel(s.MasterName(), s.Addrs()...))
	defer eng.Close()
	boom := errors.New("boom")
	bounded(t, "sentinel dedicated conns", 30, func(int) {
		_ = eng.Dedicated(ctx, func(*engine.DedicatedConn) error { return boom })
		_ = eng.Watch(ctx, func(*engine.Tx) error { return boom }, "leak:w")
		sub, err := eng.Subscribe(ctx, "leak:ch")
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		_ = sub.Close()
		cons, err := eng.Consume(ctx, "leak:s", "g", "c", func(context.Context, engine.XEntry) error { return nil }, engine.ConsumeOptions{})
		if err != nil {
			t.Fatalf("Consume: %v", err)
		}
		_ = cons.Close()
		w, err := eng.NewBatchWriter(engine.BatchWriterOptions{})
		if err != nil {
			t.Fatalf("NewBatchWriter: %v", err)
		}
		_ = w.Set(ctx, "leak:bw", "v", 0)
		_ = w.Close(ctx)
		c, cancel := context.WithTimeout(ctx, 2*time.Millisecond)
		defer cancel()
		_ = eng.Do(c, "BLPOP", "leak:nolist", "0").Err(ctx)
	})
	// The idle Dedicated and Watch connections.
	if n := engine.SentinelTracked(eng); n > 2 {
		t.Fatalf("%d connections tracked, want at most the 2 idle pooled ones", n)
	}
}
