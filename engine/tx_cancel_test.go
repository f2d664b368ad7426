package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// TestTxCancelEndsRoundTrip: a cancelled ctx (with a far deadline, as an
// HTTP request's) ends a Tx's, a Watch's and a DedicatedConn's round trip
// on a server that does not answer, instead of the call waiting for
// Config.ReadTimeout (3 s) to close the silent connection (qa-AH 1:
// valkey-go's synchronous round trip hears only a ctx's deadline). The
// error matches ctx's; a transaction whose EXEC was written reads as
// ErrOutcomeUnknown; the pools are clean afterwards.
func TestTxCancelEndsRoundTrip(t *testing.T) {
	srv := valkeytest.Start(t)
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	// Warm each pool so that the calls below take an idle connection.
	tx := eng.Tx()
	tx.Incr("cancel:warm")
	if err := tx.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error { _, err := c.Do(ctx, "PING"); return err }); err != nil {
		t.Fatal(err)
	}
	// Each case pauses the server, cancels after 100 ms, and must return
	// well before ReadTimeout (3 s); 2 s leaves a busy machine its margin.
	const bound = 2 * time.Second
	run := func(name string, call func(cctx context.Context) error, check func(error) bool) {
		t.Helper()
		if err := srv.Pause(); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		timer := time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		err := call(cctx)
		took := time.Since(start)
		timer.Stop()
		cancel()
		if rerr := srv.Resume(); rerr != nil {
			t.Fatal(rerr)
		}
		if took > bound || !errors.Is(err, context.Canceled) || !check(err) {
			t.Errorf("%s: returned after %v with %v; want ctx's error within %v", name, took, err, bound)
		}
	}
	run("Tx.Exec", func(cctx context.Context) error {
		tx := eng.Tx()
		tx.Incr("cancel:tx")
		return tx.Exec(cctx)
	}, func(err error) bool { return errors.Is(err, engine.ErrOutcomeUnknown) })
	run("Watch read", func(cctx context.Context) error {
		return eng.Watch(cctx, func(tx *engine.Tx) error {
			_, err := tx.Read().Get(cctx, "cancel:w")
			return err
		}, "cancel:w")
	}, func(error) bool { return true })
	run("DedicatedConn.Do", func(cctx context.Context) error {
		return eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
			_, err := c.Do(cctx, "INCR", "cancel:ded")
			return err
		})
	}, func(err error) bool { return errors.Is(err, engine.ErrOutcomeUnknown) })
	// The connections cut are not given to the next users.
	for range 3 {
		tx := eng.Tx()
		f := tx.Incr("cancel:after")
		if err := tx.Exec(ctx); err != nil {
			t.Fatalf("Tx after the cuts: %v", err)
		}
		if _, err := f.Await(ctx); err != nil {
			t.Fatal(err)
		}
		if err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error { _, err := c.Do(ctx, "PING"); return err }); err != nil {
			t.Fatalf("Dedicated after the cuts: %v", err)
		}
	}
}

// TestTxDeadlineOutcomes: transactions with deadlines about as long as
// their round trip. Whatever the race between the deadline and the
// reply: Exec nil means every future has its reply; a future failed with
// ctx's bare error means the transaction did not run (once EXEC is on its
// way, it says ErrOutcomeUnknown), checked against the server (qa-AG 1:
// Exec returned nil beside futures failed with "context deadline
// exceeded", 11 of 5,000).
func TestTxDeadlineOutcomes(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	const n = 3000
	bare := map[int]bool{} // transactions whose futures failed with ctx's bare error
	var nilWithFailed, results, unknown, unknownFutures int
	for i := range n {
		d := time.Duration(50+(i*37)%1500) * time.Microsecond
		ctx, cancel := context.WithTimeout(context.Background(), d)
		tx := eng.Tx()
		f1 := tx.RPush("txd:l", strconv.Itoa(i))
		f2 := tx.Incr("txd:c")
		err := tx.Exec(ctx)
		cancel()
		_, e1, ok1 := f1.Result()
		_, e2, ok2 := f2.Result()
		if !ok1 || !ok2 {
			t.Fatalf("transaction %d: a future pending after Exec returned", i)
		}
		switch {
		case err == nil && (e1 != nil || e2 != nil):
			nilWithFailed++
		case err == nil:
			results++
		case errors.Is(err, engine.ErrOutcomeUnknown):
			unknown++
		}
		for _, fe := range []error{e1, e2} {
			if errors.Is(fe, engine.ErrOutcomeUnknown) {
				unknownFutures++
			}
			if fe != nil && !errors.Is(fe, engine.ErrOutcomeUnknown) && (errors.Is(fe, context.DeadlineExceeded) || errors.Is(fe, context.Canceled)) {
				bare[i] = true
			}
		}
	}
	if nilWithFailed > 0 {
		t.Errorf("%d transactions: Exec nil beside a failed future", nilWithFailed)
	}
	r, err := srv.Do("LRANGE", "txd:l", "0", "-1")
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, v := range r.([]any) {
		i, _ := strconv.Atoi(fmt.Sprint(v))
		ran++
		if bare[i] {
			t.Errorf("transaction %d ran, and its futures failed with ctx's bare error (read as not run)", i)
		}
	}
	t.Logf("%d transactions: %d Exec nil, %d ErrOutcomeUnknown, %d with ctx's bare error, %d ran", n, results, unknown, len(bare), ran)
	if results == 0 {
		t.Error("no transaction completed within its deadline: the deadlines test nothing")
	}
	if s := eng.Stats(); s.OutcomeUnknown != uint64(unknownFutures) {
		t.Errorf("Stats.OutcomeUnknown = %d, want the %d commands whose futures failed so (review-32b B4: a Tx's were not counted)", s.OutcomeUnknown, unknownFutures)
	}
}

// TestWatchRetryRerunsUnsent: a run whose connection the server closed
// before its EXEC was written (CLIENT KILL during fn) fails unsent, and
// WatchRetry runs fn again rather than return that error (qa-AG 4); the
// transaction commits once.
func TestWatchRetryRerunsUnsent(t *testing.T) {
	srv := valkeytest.Start(t)
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	runs := 0
	err := eng.WatchRetry(ctx, 3, func(tx *engine.Tx) error {
		runs++
		if runs == 1 {
			r, err := tx.Read().Do(ctx, "CLIENT", "ID")
			if err != nil {
				return err
			}
			id, _ := r.Int64()
			if err := killIdle(srv, id, time.Now()); err != nil {
				return err
			}
		}
		tx.Incr("wr:unsent")
		return nil
	}, "wr:unsent")
	if err != nil {
		t.Fatalf("WatchRetry: %v", err)
	}
	if runs != 2 {
		t.Errorf("fn ran %d times, want 2", runs)
	}
	if v, err := srv.Do("GET", "wr:unsent"); err != nil || fmt.Sprint(v) != "1" {
		t.Errorf("wr:unsent = %v (%v), want 1", v, err)
	}
}

// TestTxUnsentTryThenCtxEnds: a transaction whose first try wrote nothing
// (its pooled connection found closed) and whose ctx ends during the
// second try's dial (a slow credentials provider) did not run: its future
// fails with ctx's error, not ErrOutcomeUnknown (review-30 2: the "EXEC on
// its way" mark of the first try was kept).
func TestTxUnsentTryThenCtxEnds(t *testing.T) {
	srv := valkeytest.Start(t)
	var slow atomic.Bool
	provider := func(ctx context.Context) (string, string, error) {
		if slow.Load() {
			select {
			case <-time.After(400 * time.Millisecond):
			case <-ctx.Done():
				return "", "", ctx.Err()
			}
		}
		return "", "", nil
	}
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithCredentialsProvider(provider).WithDialTimeout(2*time.Second))
	for i := range 5 {
		tx := eng.Tx()
		tx.Incr("txu:warm")
		if err := tx.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		// The pool's idle connection closed by the server, and past the
		// driver's peek gap (so that the try finds it closed, unsent), but
		// within the pool's idle check (txCheckIdle, 1 s).
		killed := time.Now()
		if _, err := eng.Do(ctx, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").Await(ctx); err != nil {
			t.Fatal(err)
		}
		for time.Since(killed) < 50*time.Millisecond {
			time.Sleep(10 * time.Millisecond)
		}
		slow.Store(true)
		cctx, ccancel := context.WithCancel(ctx)
		timer := time.AfterFunc(150*time.Millisecond, ccancel)
		tx = eng.Tx()
		f := tx.Incr("txu:k")
		xerr := tx.Exec(cctx)
		ferr := f.Err(ctx)
		timer.Stop()
		ccancel()
		slow.Store(false)
		v, err := srv.Do("GET", "txu:k")
		if err != nil {
			t.Fatal(err)
		}
		if v == nil && errors.Is(ferr, engine.ErrOutcomeUnknown) {
			t.Errorf("run %d: nothing ran (Exec: %v), and the future says ErrOutcomeUnknown: %v", i, xerr, ferr)
		}
		if v != nil {
			t.Logf("run %d: the transaction ran (Exec: %v, future: %v)", i, xerr, ferr)
			if _, err := srv.Do("DEL", "txu:k"); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A Tx, a Watch and a Dedicated call whose connection cannot be made (the
// server gone) fail matching ErrNotSent, with the ConnectError that says
// why (qa-AS AS3: a ConnectError alone, which did not say nothing was
// sent).
func TestTxDialFailureNotSent(t *testing.T) {
	srv := valkeytest.Start(t)
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	tx := eng.Tx()
	tx.Incr("k")
	errs := map[string]error{
		"Tx":    tx.Exec(ctx),
		"Watch": eng.Watch(ctx, func(tx *engine.Tx) error { tx.Incr("k"); return nil }, "k"),
		"Dedicated": eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
			_, err := c.Do(ctx, "PING")
			return err
		}),
	}
	for name, err := range errs {
		var ce *engine.ConnectError
		if !errors.Is(err, engine.ErrNotSent) || !errors.As(err, &ce) || errors.Is(err, engine.ErrOutcomeUnknown) {
			t.Errorf("%s with the server gone: %v; want ErrNotSent and a ConnectError", name, err)
		}
	}
}

// After a Watch read lost its connection (ErrOutcomeUnknown: the read may
// have run), what comes after on that connection is refused unsent:
// later reads, Exec and the transaction's commands match ErrNotSent, not
// the read's outcome unknown, and WatchRetry runs fn again, which commits
// (review-33b B3: they said outcome unknown, and WatchRetry gave up).
func TestWatchAfterBrokenReadNotSent(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	ctx := ctxT(t)
	killed := make(chan error, 1)
	go func() {
		for end := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			info, err := srv.Do("INFO", "clients")
			if s, _ := info.(string); err == nil && strings.Contains(s, "blocked_clients:1") {
				break
			}
			if time.Now().After(end) {
				killed <- errors.New("the read did not block on the server within 10 s")
				return
			}
		}
		_, err := srv.Do("CLIENT", "KILL", "TYPE", "normal")
		killed <- err
	}()
	runs := 0
	var readErr, read2Err, execErr, setErr error
	err := eng.WatchRetry(ctx, 2, func(tx *engine.Tx) error {
		runs++
		if runs == 1 {
			_, readErr = tx.Read().Do(ctx, "BLPOP", "q", "2") // below ReadTimeout: a Watch read may block that long
			_, read2Err = tx.Read().Get(ctx, "k")
			f := tx.Set("k", "v", 0)
			execErr = tx.Exec(ctx)
			_, setErr = f.Await(ctx)
			return execErr
		}
		tx.Set("k", "v", 0)
		return nil
	}, "k")
	if kerr := <-killed; kerr != nil {
		t.Fatal(kerr)
	}
	if !errors.Is(readErr, engine.ErrOutcomeUnknown) {
		t.Fatalf("the read cut by CLIENT KILL: %v, want ErrOutcomeUnknown", readErr)
	}
	for name, e := range map[string]error{"second read": read2Err, "Exec": execErr, "SET": setErr} {
		if !errors.Is(e, engine.ErrNotSent) || errors.Is(e, engine.ErrOutcomeUnknown) {
			t.Errorf("%s after the broken read: %v, want ErrNotSent", name, e)
		}
	}
	if err != nil || runs != 2 {
		t.Fatalf("WatchRetry: %v after %d runs, want nil after 2", err, runs)
	}
	if v, err := srv.Do("GET", "k"); err != nil || v != "v" {
		t.Fatalf("k = %v, %v; want v", v, err)
	}
}
