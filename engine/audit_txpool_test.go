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

// Audit of the dedicated-connection pools (Tx and Watch, Dedicated):
// connections to nodes that are no longer primaries, WatchRetry after a
// slot moved between WATCH and EXEC, a pool at its limit, and a Watch
// whose context ended.

// waitPools polls, up to within, until ok holds for the open and idle
// counts of both pools (transactions, Dedicated); it fails the test with
// what it saw otherwise.
func waitPools(t *testing.T, eng *engine.Engine, within time.Duration, what string, ok func(open, idle map[string]int) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		txOpen, txIdle := engine.TxPoolConns(eng, false)
		dOpen, dIdle := engine.TxPoolConns(eng, true)
		if ok(txOpen, txIdle) && ok(dOpen, dIdle) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: Tx pool open %v idle %v; Dedicated pool open %v idle %v",
				what, within, txOpen, txIdle, dOpen, dIdle)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// allIdle reports whether every open connection of a pool is idle.
func allIdle(open, idle map[string]int) bool {
	n, m := 0, 0
	for _, v := range open {
		n += v
	}
	for _, v := range idle {
		m += v
	}
	return n == m
}

func TestAuditTxPoolCluster(t *testing.T) {
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	ctx := ctxT(t)

	// The Tx and Dedicated pools keep no connection to a node that is no
	// longer a primary: after a failover, the former primary's idle
	// connections close once the engine has the new slot map, and one
	// lent at the time closes when it is given back. They stayed open
	// until Close, up to 16 + 16 more per address that ever was a
	// primary.
	t.Run("FormerPrimaryRetired", func(t *testing.T) {
		old := c.Primaries()[0]
		next := c.Replicas()[0] // StartCluster: the replicas of primary 0, 1, ... in turn
		key := keyOn(t, c, old)
		// One connection of each pool lent across the failover.
		release := make(chan struct{})
		var releaseOnce sync.Once
		defer releaseOnce.Do(func() { close(release) }) // when the test fails early
		held := make(chan struct{}, 2)
		var wg sync.WaitGroup
		var watchErr, dedErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			watchErr = eng.Watch(ctx, func(tx *engine.Tx) error {
				held <- struct{}{}
				<-release
				return nil // nothing queued: UNWATCH, then back to the pool
			}, key)
		}()
		go func() {
			defer wg.Done()
			dedErr = eng.DedicatedFor(ctx, key, func(d *engine.DedicatedConn) error {
				held <- struct{}{}
				<-release
				return nil
			})
		}()
		<-held
		<-held
		// And one of each given back before it.
		if err := eng.Watch(ctx, func(tx *engine.Tx) error {
			if _, err := tx.Read().Get(ctx, key); err != nil && !errors.Is(err, engine.ErrNil) {
				return err
			}
			tx.Set(key, "1", 0)
			return nil
		}, key); err != nil {
			t.Fatalf("Watch: %v", err)
		}
		if err := eng.DedicatedFor(ctx, key, func(d *engine.DedicatedConn) error {
			_, err := d.Do(ctx, "SET", key, "2")
			return err
		}); err != nil {
			t.Fatalf("DedicatedFor: %v", err)
		}
		waitPools(t, eng, 0, "before the failover, an idle connection to the primary", func(open, idle map[string]int) bool {
			return idle[old.Addr()] >= 1 && open[old.Addr()] >= 2
		})

		if err := c.Failover(next); err != nil {
			t.Fatalf("Failover: %v", err)
		}
		if owner, err := c.NodeForSlot(valkeytest.HashSlot(key)); err != nil || owner != next {
			t.Fatalf("after the failover the key's slot is served by %v (%v), want %s", owner, err, next.Addr())
		}
		// A command to the moved slot: MOVED has the engine reload its map.
		if err := eng.Set(ctx, key, "3", 0).Err(ctx); err != nil {
			t.Fatalf("Set after the failover: %v", err)
		}
		waitPools(t, eng, 10*time.Second, "the former primary's idle connections closed", func(open, idle map[string]int) bool {
			return idle[old.Addr()] == 0
		})
		releaseOnce.Do(func() { close(release) })
		wg.Wait()
		if watchErr != nil || dedErr != nil {
			t.Fatalf("held across the failover: Watch %v, DedicatedFor %v", watchErr, dedErr)
		}
		waitPools(t, eng, 0, "the connections lent across the failover closed when given back", func(open, idle map[string]int) bool {
			return open[old.Addr()] == 0
		})

		// The pools serve the new primary.
		if err := eng.WatchRetry(ctx, 3, func(tx *engine.Tx) error {
			tx.Set(key, "4", 0)
			return nil
		}, key); err != nil {
			t.Fatalf("WatchRetry after the failover: %v", err)
		}
		if err := eng.DedicatedFor(ctx, key, func(d *engine.DedicatedConn) error {
			_, err := d.Do(ctx, "GET", key)
			return err
		}); err != nil {
			t.Fatalf("DedicatedFor after the failover: %v", err)
		}
		waitPools(t, eng, 0, "the pools hold connections to the new primary only", func(open, idle map[string]int) bool {
			return open[old.Addr()] == 0 && idle[next.Addr()] >= 1
		})
	})

	// WatchRetry reruns a run whose EXEC was refused (EXECABORT) because
	// the queued commands were redirected (MOVED: the slot moved between
	// WATCH and EXEC): nothing ran. It returned the EXECABORT at once.
	t.Run("WatchRetryAfterSlotMoved", func(t *testing.T) {
		ps := c.Primaries()
		from, to := ps[0], ps[1]
		key := keyOn(t, c, from)
		slot := valkeytest.HashSlot(key)
		if err := eng.Set(ctx, key, "0", 0).Err(ctx); err != nil {
			t.Fatalf("Set: %v", err)
		}
		runs := 0
		err := eng.WatchRetry(ctx, 1, func(tx *engine.Tx) error {
			runs++
			if _, err := tx.Read().Get(ctx, key); err != nil {
				return err
			}
			if runs == 1 {
				if err := c.MigrateSlots(from, to, []int{slot}); err != nil {
					return fmt.Errorf("MigrateSlots: %w", err)
				}
			}
			tx.Set(key, fmt.Sprint(runs), 0)
			return nil
		}, key)
		if err != nil || runs != 2 {
			t.Fatalf("WatchRetry across a slot move: %v after %d runs; want nil after 2", err, runs)
		}
		if v, err := eng.Get(ctx, key).Await(ctx); err != nil || v != "2" {
			t.Fatalf("GET = %q, %v; want 2", v, err)
		}

		// A genuine EXECABORT (a command refused while queued) is
		// returned at once.
		runs = 0
		err = eng.WatchRetry(ctx, 3, func(tx *engine.Tx) error {
			runs++
			tx.Do("SET", key) // wrong number of arguments
			return nil
		}, key)
		if !errors.Is(err, &engine.ServerError{Prefix: "EXECABORT"}) || runs != 1 {
			t.Fatalf("WatchRetry with a refused command: %v after %d runs; want EXECABORT after 1", err, runs)
		}

		// The reruns are bounded by MaxRedirects: with 1, a slot that
		// moves in every run fails after 2 runs, with the EXECABORT that
		// says a command was redirected.
		cfg, _ := withLogCheck(t, config.DefaultConfig().WithAddrs(c.Addrs()[0]).WithClusterMode(true))
		cfg.MaxRedirects = 1
		eng1, err := open(ctx, t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer eng1.Close()
		runs = 0
		at, other := to, from
		err = eng1.WatchRetry(ctx, 10, func(tx *engine.Tx) error {
			runs++
			if err := c.MigrateSlots(at, other, []int{slot}); err != nil {
				return fmt.Errorf("MigrateSlots: %w", err)
			}
			at, other = other, at
			tx.Set(key, "x", 0)
			return nil
		}, key)
		if !errors.Is(err, engine.ErrTooManyRedirects) || !errors.Is(err, &engine.ServerError{Prefix: "EXECABORT"}) ||
			!errors.Is(err, &engine.ServerError{Prefix: "MOVED"}) || runs != 2 {
			t.Fatalf("WatchRetry with MaxRedirects 1, the slot moving in every run: %v after %d runs; want ErrTooManyRedirects, EXECABORT (MOVED) after 2", err, runs)
		}
	})
}

// A Watch that waits for a transaction connection while every one of the
// node's 256 is lent (here: nested Watches, each holding one) fails with
// ErrPoolExhausted after Config.DialTimeout, even when its context has no
// deadline. It waited for ever. (Once the first inner Watches failed,
// their outer ones give their connections back and some of the others
// get one: those succeed.)
func TestAuditTxPoolExhausted(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := context.Background() // no deadline: the pool's bound applies
	const outer = 256           // the pool's limit per node
	var holding sync.WaitGroup
	holding.Add(outer)
	all := make(chan struct{})
	var allAt time.Time
	go func() { holding.Wait(); allAt = time.Now(); close(all) }()
	errs := make(chan error, outer)
	var exhausted atomic.Int64
	for range outer {
		go func() {
			errs <- eng.Watch(ctx, func(tx *engine.Tx) error {
				holding.Done()
				<-all
				err := eng.Watch(ctx, func(*engine.Tx) error { return nil }, "txpool:inner")
				if errors.Is(err, engine.ErrPoolExhausted) {
					exhausted.Add(1)
				}
				return err
			}, "txpool:outer")
		}()
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for i := range outer {
		select {
		case err := <-errs:
			if err != nil && !errors.Is(err, engine.ErrPoolExhausted) {
				t.Fatalf("nested Watch at the pool's limit: %v, want nil or ErrPoolExhausted", err)
			}
			if i == 0 {
				if d := time.Since(allAt); d < config.DefaultConfig().DialTimeout {
					t.Fatalf("the first nested Watch returned %v after the pool was exhausted, before DialTimeout", d)
				}
			}
		case <-timeout.C:
			_ = eng.Close() // ends the waits
			t.Fatalf("nested Watch at the pool's limit: %d of %d returned within 30s (the wait is not bounded)", i, outer)
		}
	}
	if exhausted.Load() == 0 {
		t.Fatal("no inner Watch failed with ErrPoolExhausted")
	}
	// The pool works again once the holders returned.
	if err := eng.Watch(ctxT(t), func(tx *engine.Tx) error { tx.Set("txpool:outer", "1", 0); return nil }, "txpool:outer"); err != nil {
		t.Fatalf("Watch after the exhaustion: %v", err)
	}
}

// A Watch whose context ended while its function ran gives its
// connection back after UNWATCH (run on a short context of its own), so
// the next Watch reuses it. The UNWATCH failed on the ended context and
// the connection was closed: a dial per such Watch.
func TestAuditTxWatchEndedCtxReusesConn(t *testing.T) {
	eng, _ := newEngine(t)
	clientID := func(ctx context.Context, tx *engine.Tx) int64 {
		r, err := tx.Read().Do(ctx, "CLIENT", "ID")
		if err != nil {
			t.Errorf("CLIENT ID: %v", err)
			return -1
		}
		id, err := r.Int64()
		if err != nil {
			t.Errorf("CLIENT ID reply: %v", err)
		}
		return id
	}
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var first int64
	err := eng.Watch(short, func(tx *engine.Tx) error {
		first = clientID(short, tx)
		<-short.Done()
		tx.Set("txpool:ended", "1", 0)
		return nil // Exec fails: ctx ended
	}, "txpool:ended")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Watch whose ctx ended: %v, want DeadlineExceeded", err)
	}
	// The UNWATCH runs in the background and gives the connection back.
	waitPools(t, eng, 5*time.Second, "the ended Watch's connection back idle", allIdle)
	ctx := ctxT(t)
	var second int64
	if err := eng.Watch(ctx, func(tx *engine.Tx) error {
		second = clientID(ctx, tx)
		return nil
	}, "txpool:ended"); err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if first != second {
		t.Fatalf("the second Watch ran on connection %d, not on %d: the first was closed", second, first)
	}
	if n, _ := eng.Exists(ctx, "txpool:ended").Await(ctx); n != 0 {
		t.Fatal("the transaction of the ended Watch ran")
	}
}

// Sentinel mode: after a failover the pools forget the former primary's
// connections (the engine closed them at the switch, but the pools kept
// them, idle, until Close: one entry more per switch and pool).
func TestAuditTxPoolSentinelSwitch(t *testing.T) {
	s := valkeytest.StartSentinelT(t)
	ctx := ctxT(t)
	cfg, _ := withLogCheck(t, config.DefaultConfig().WithSentinel(s.MasterName(), s.Addrs()...))
	eng, err := open(ctx, t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	use := func() {
		t.Helper()
		if err := eng.Watch(ctx, func(tx *engine.Tx) error { tx.Set("txpool:s", "1", 0); return nil }, "txpool:s"); err != nil {
			t.Fatalf("Watch: %v", err)
		}
		if err := eng.Dedicated(ctx, func(d *engine.DedicatedConn) error { _, err := d.Do(ctx, "GET", "txpool:s"); return err }); err != nil {
			t.Fatalf("Dedicated: %v", err)
		}
	}
	use()
	old := eng.Stats().Sentinel.Primary
	waitPools(t, eng, 0, "an idle connection to the primary", func(open, idle map[string]int) bool {
		return idle[old] == 1
	})
	next, err := s.Failover()
	if err != nil {
		t.Fatalf("Failover: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for eng.Stats().Sentinel.Primary != next.Addr() {
		if time.Now().After(deadline) {
			t.Fatalf("the engine did not follow the new primary %s within 10s", next.Addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitPools(t, eng, 5*time.Second, "the former primary's connections forgotten", func(open, idle map[string]int) bool {
		return open[old] == 0
	})
	use()
	waitPools(t, eng, 0, "the pools serve the new primary", func(open, idle map[string]int) bool {
		return open[old] == 0 && idle[next.Addr()] == 1
	})
}

// A Watch whose ctx ends while the server does not answer returns at its
// deadline: the clean-up UNWATCH (bounded to a second) does not hold it.
func TestAuditTxWatchEndedCtxReturnsAtDeadline(t *testing.T) {
	eng, srv := newEngine(t)
	ctx := ctxT(t)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err := eng.Watch(short, func(tx *engine.Tx) error {
		if _, err := tx.Read().Get(short, "txpool:paused"); err != nil && !errors.Is(err, engine.ErrNil) {
			return err
		}
		// The server answers nothing from now on.
		if err := srv.Pause(); err != nil {
			t.Errorf("pause: %v", err)
		}
		<-short.Done()
		return short.Err()
	}, "txpool:paused")
	late := time.Since(deadlineOf(t, short))
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Watch: %v, want DeadlineExceeded", err)
	}
	if late > 500*time.Millisecond {
		t.Fatalf("Watch returned %v after its deadline (the UNWATCH held it)", late)
	}
}

func deadlineOf(t *testing.T, ctx context.Context) time.Time {
	t.Helper()
	dl, ok := ctx.Deadline()
	if !ok {
		t.Fatal("ctx without deadline")
	}
	return dl
}

// A Dedicated call whose ctx ended after it used its connection gives the
// connection back (RESET in the background) instead of closing it, and
// returns at its deadline also when the server does not answer.
func TestAuditDedicatedEndedCtxReusesConn(t *testing.T) {
	eng, srv := newEngine(t)
	ctx := ctxT(t)
	id := func(ctx context.Context, d *engine.DedicatedConn) int64 {
		r, err := d.Do(ctx, "CLIENT", "ID")
		if err != nil {
			t.Errorf("CLIENT ID: %v", err)
			return -1
		}
		n, err := r.Int64()
		if err != nil {
			t.Errorf("CLIENT ID reply: %v", err)
		}
		return n
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	var first int64
	err := eng.Dedicated(short, func(d *engine.DedicatedConn) error {
		first = id(short, d)
		<-short.Done()
		return short.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dedicated whose ctx ended: %v, want DeadlineExceeded", err)
	}
	waitPools(t, eng, 5*time.Second, "the ended Dedicated's connection back idle", allIdle)
	var second int64
	if err := eng.Dedicated(ctx, func(d *engine.DedicatedConn) error { second = id(ctx, d); return nil }); err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Fatalf("the second Dedicated ran on connection %d, not on %d: the first was closed", second, first)
	}

	// The server stops answering after the call's command: the call still
	// returns at its deadline, and the connection whose RESET got no
	// answer within its bound is closed, not lent again.
	short2, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	err = eng.Dedicated(short2, func(d *engine.DedicatedConn) error {
		id(short2, d)
		if err := srv.Pause(); err != nil {
			t.Errorf("pause: %v", err)
		}
		<-short2.Done()
		return short2.Err()
	})
	late := time.Since(deadlineOf(t, short2))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dedicated: %v, want DeadlineExceeded", err)
	}
	if late > 500*time.Millisecond {
		t.Fatalf("Dedicated returned %v after its deadline", late)
	}
	waitPools(t, eng, 5*time.Second, "the unanswered RESET's connection closed", func(open, _ map[string]int) bool { return len(open) == 0 })
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	var third int64
	if err := eng.Dedicated(ctx, func(d *engine.DedicatedConn) error { third = id(ctx, d); return nil }); err != nil {
		t.Fatal(err)
	}
	if third == second {
		t.Fatalf("a connection whose RESET got no answer was lent again (%d)", third)
	}
}
