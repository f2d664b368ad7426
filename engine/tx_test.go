package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// A transaction's futures complete from EXEC's reply; its commands run
// with no other client's command in between (three INCRs in a transaction
// give consecutive values while other goroutines INCR the same key); a
// WRONGTYPE raised while EXEC runs fails only that command.
func TestTxAtomicResults(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	tx := eng.Tx()
	set := tx.Set("tx:s", "v", 0)
	n1, n2 := tx.Incr("tx:n"), tx.IncrBy("tx:n", 5)
	get := tx.Get("tx:s")
	wrong := tx.LPush("tx:s", "x") // WRONGTYPE at EXEC time
	hset := tx.HSet("tx:h", "f", "1")
	missing := tx.Get("tx:missing")
	if n, _ := eng.Exists(ctx, "tx:s").Await(ctx); n != 0 {
		t.Fatal("a transaction command was sent before Exec")
	}
	if err := tx.Exec(ctx); err != nil {
		t.Fatalf("Exec: %v", err)
	}
	pipeWant(t, ctx, "SET", set, struct{}{})
	pipeWant(t, ctx, "INCR", n1, int64(1))
	pipeWant(t, ctx, "INCRBY", n2, int64(6))
	pipeWant(t, ctx, "GET", get, "v")
	pipeWant(t, ctx, "HSET", hset, int64(1))
	if err := wrong.Err(ctx); !errors.Is(err, &engine.ServerError{Prefix: "WRONGTYPE"}) {
		t.Fatalf("LPUSH on a string: %v, want WRONGTYPE", err)
	}
	if err := missing.Err(ctx); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("GET missing: %v, want ErrNil", err)
	}
	if err := tx.Exec(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("second Exec: %v, want ErrInvalidArgument", err)
	}

	// Atomicity: 8 goroutines INCR tx:a while transactions of 3 INCRs run;
	// each transaction's 3 values are consecutive.
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for !stop.Load() {
				if _, err := eng.Incr(ctx, "tx:a").Await(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 200 {
		tx := eng.Tx()
		fs := []*futures.Future[int64]{tx.Incr("tx:a"), tx.Incr("tx:a"), tx.Incr("tx:a")}
		if err := tx.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		v, err := futures.All(ctx, fs...)
		if err != nil {
			t.Fatal(err)
		}
		if v[1] != v[0]+1 || v[2] != v[0]+2 {
			t.Fatalf("transaction %d: INCR values %v not consecutive", i, v)
		}
	}
	stop.Store(true)
	wg.Wait()
}

// A command the server refuses while queueing (wrong arity) aborts the
// transaction with EXECABORT: nothing runs; its future has its own error,
// the others EXECABORT. A command rejected by the engine fails the whole
// transaction before anything is sent.
func TestTxExecAbort(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	tx := eng.Tx()
	set := tx.Set("tx:abort", "v", 0)
	bad := tx.Do("SET", "tx:abort") // wrong number of arguments
	incr := tx.Incr("tx:abort:n")
	err := tx.Exec(ctx)
	if !errors.Is(err, &engine.ServerError{Prefix: "EXECABORT"}) {
		t.Fatalf("Exec: %v, want EXECABORT", err)
	}
	var se *engine.ServerError
	if berr := bad.Err(ctx); !errors.As(berr, &se) || se.Prefix != "ERR" {
		t.Fatalf("refused command: %v, want its own ERR reply", berr)
	}
	for name, f := range map[string]interface{ Err(context.Context) error }{"SET": set, "INCR": incr} {
		if err := f.Err(ctx); !errors.Is(err, &engine.ServerError{Prefix: "EXECABORT"}) {
			t.Fatalf("%s: %v, want EXECABORT", name, err)
		}
	}
	if n, _ := eng.Exists(ctx, "tx:abort", "tx:abort:n").Await(ctx); n != 0 {
		t.Fatalf("%d keys written by an aborted transaction", n)
	}

	// Engine-side rejection: nothing sent, every future fails.
	tx = eng.Tx()
	ok := tx.Set("tx:abort", "v", 0)
	odd := tx.HSet("tx:abort:h", "f")
	if err := tx.Exec(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("Exec with a rejected command: %v, want ErrInvalidArgument", err)
	}
	if !errors.Is(ok.Err(ctx), engine.ErrInvalidArgument) || !errors.Is(odd.Err(ctx), engine.ErrInvalidArgument) {
		t.Fatalf("futures: %v, %v; want ErrInvalidArgument", ok.Err(ctx), odd.Err(ctx))
	}
	if n, _ := eng.Exists(ctx, "tx:abort").Await(ctx); n != 0 {
		t.Fatal("a rejected transaction was sent")
	}
}

// A write by another client to a watched key between WATCH and EXEC
// aborts the transaction: ErrTxAborted from Watch and on every future;
// nothing of it ran.
func TestTxWatchAborted(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	if _, err := eng.Set(ctx, "tx:w", "1", 0).Await(ctx); err != nil {
		t.Fatal(err)
	}
	var set *futures.Future[struct{}]
	var other *futures.Future[int64]
	err := eng.Watch(ctx, func(tx *engine.Tx) error {
		v, err := tx.Read().Get(ctx, "tx:w")
		if err != nil || v != "1" {
			return fmt.Errorf("read %q, %v", v, err)
		}
		// Another client changes the watched key.
		if _, err := eng.Set(ctx, "tx:w", "changed", 0).Await(ctx); err != nil {
			return err
		}
		set = tx.Set("tx:w", "2", 0)
		other = tx.Incr("tx:w:other")
		return nil
	}, "tx:w")
	if !errors.Is(err, engine.ErrTxAborted) {
		t.Fatalf("Watch: %v, want ErrTxAborted", err)
	}
	if !errors.Is(set.Err(ctx), engine.ErrTxAborted) || !errors.Is(other.Err(ctx), engine.ErrTxAborted) {
		t.Fatalf("futures: %v, %v; want ErrTxAborted", set.Err(ctx), other.Err(ctx))
	}
	if v, _ := eng.Get(ctx, "tx:w").Await(ctx); v != "changed" {
		t.Fatalf("tx:w = %q, want the other client's write", v)
	}
	if n, _ := eng.Exists(ctx, "tx:w:other").Await(ctx); n != 0 {
		t.Fatal("an aborted transaction wrote")
	}

	// Without a concurrent write the same transaction commits; fn may Exec
	// itself and read the results; a function error discards.
	err = eng.Watch(ctx, func(tx *engine.Tx) error {
		set = tx.Set("tx:w", "3", 0)
		if err := tx.Exec(ctx); err != nil {
			return err
		}
		_, err := set.Await(ctx)
		return err
	}, "tx:w")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	boom := errors.New("boom")
	err = eng.Watch(ctx, func(tx *engine.Tx) error {
		set = tx.Set("tx:w", "4", 0)
		return boom
	}, "tx:w")
	if !errors.Is(err, boom) || !errors.Is(set.Err(ctx), engine.ErrDiscarded) {
		t.Fatalf("Watch with an error: %v, future %v", err, set.Err(ctx))
	}
	if v, _ := eng.Get(ctx, "tx:w").Await(ctx); v != "3" {
		t.Fatalf("tx:w = %q, want 3", v)
	}
	// The reader is only for Watch, and only while fn runs.
	if _, err := eng.Tx().Read().Get(ctx, "tx:w"); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("Read outside Watch: %v", err)
	}
}

// 100 goroutines increment one counter 20 times each with
// WATCH/GET/MULTI/SET/EXEC through WatchRetry: the final value is exact.
func TestTxWatchRetryCounter(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	const workers, each = 100, 20
	var runs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for range each {
				err := eng.WatchRetry(ctx, 1000, func(tx *engine.Tx) error {
					runs.Add(1)
					v, err := tx.Read().Get(ctx, "tx:counter")
					if err != nil && !errors.Is(err, engine.ErrNil) {
						return err
					}
					n, _ := strconv.Atoi(v)
					tx.Set("tx:counter", strconv.Itoa(n+1), 0)
					return nil
				}, "tx:counter")
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	v, err := eng.Get(ctx, "tx:counter").Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v != strconv.Itoa(workers*each) {
		t.Fatalf("counter = %s, want %d", v, workers*each)
	}
	t.Logf("%d goroutines x %d optimistic increments: exact, in %s (%.0f commits/s, %d runs aborted by a concurrent commit)",
		workers, each, elapsed.Round(time.Millisecond), float64(workers*each)/elapsed.Seconds(), runs.Load()-workers*each)
}

// Stats counts transactions: committed, aborted by WATCH, failed.
func TestTxStats(t *testing.T) {
	eng, srv := newEngine(t)
	ctx := ctxT(t)
	for range 3 {
		tx := eng.Tx()
		tx.Incr("txs:n")
		if err := tx.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	err := eng.Watch(ctx, func(tx *engine.Tx) error {
		// A write from elsewhere between WATCH and EXEC aborts it.
		if err := eng.Set(ctx, "txs:n", "x", 0).Err(ctx); err != nil {
			return err
		}
		tx.Incr("txs:n")
		return nil
	}, "txs:n")
	if !errors.Is(err, engine.ErrTxAborted) {
		t.Fatalf("Watch with a concurrent write = %v; want ErrTxAborted", err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	tx := eng.Tx()
	tx.Incr("txs:n")
	if err := tx.Exec(ctx); err == nil {
		t.Fatal("Exec against a killed server succeeded")
	}
	st := eng.Stats()
	if st.Transactions != 3 || st.TxAborted != 1 || st.TxFailed != 1 {
		t.Fatalf("Stats: %d transactions, %d aborted, %d failed; want 3, 1, 1", st.Transactions, st.TxAborted, st.TxFailed)
	}
}

// Cluster mode: a transaction on hash-tagged keys runs on the slot's
// primary; keys in different slots fail with ErrCrossSlot, unsent; Watch
// works on the slot's primary.
func TestTxCluster(t *testing.T) {
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	tx := eng.Tx()
	set := tx.Set("{tx:u1}:name", "ada", 0)
	n := tx.Incr("{tx:u1}:visits")
	mget := tx.MGet("{tx:u1}:name", "{tx:u1}:visits")
	if err := tx.Exec(ctx); err != nil {
		t.Fatalf("Exec: %v", err)
	}
	pipeWant(t, ctx, "SET", set, struct{}{})
	pipeWant(t, ctx, "INCR", n, int64(1))
	vals, err := mget.Await(ctx)
	if err != nil || *vals[0] != "ada" || *vals[1] != "1" {
		t.Fatalf("MGET = %v, %v", vals, err)
	}

	tx = eng.Tx()
	a := tx.Set("tx:a", "1", 0)
	tx.Set("tx:b", "1", 0) // another slot
	if err := tx.Exec(ctx); !errors.Is(err, engine.ErrCrossSlot) || !errors.Is(a.Err(ctx), engine.ErrCrossSlot) {
		t.Fatalf("cross-slot transaction: %v, future %v; want ErrCrossSlot", err, a.Err(ctx))
	}
	if n, _ := eng.Exists(ctx, "tx:a").Await(ctx); n != 0 {
		t.Fatal("a cross-slot transaction was sent")
	}

	for range 10 {
		err := eng.WatchRetry(ctx, 100, func(tx *engine.Tx) error {
			v, err := tx.Read().Get(ctx, "{tx:u1}:visits")
			if err != nil {
				return err
			}
			n, _ := strconv.Atoi(v)
			tx.Set("{tx:u1}:visits", strconv.Itoa(n+1), 0)
			tx.Set("{tx:u1}:seen", "yes", 0)
			return nil
		}, "{tx:u1}:visits")
		if err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := eng.Get(ctx, "{tx:u1}:visits").Await(ctx); v != "11" {
		t.Fatalf("visits = %s, want 11", v)
	}
	if err := eng.Watch(ctx, func(tx *engine.Tx) error { return nil }, "tx:a", "tx:b"); !errors.Is(err, engine.ErrCrossSlot) {
		t.Fatalf("Watch of keys in two slots: %v, want ErrCrossSlot", err)
	}
}

// txNilCtx is a nil context, for the methods that accept one.
var txNilCtx context.Context

// Bad input fails with ErrInvalidArgument and sends nothing.
func TestTxBadInput(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	fn := func(*engine.Tx) error { return nil }
	for name, err := range map[string]error{
		"nil fn":     eng.Watch(ctx, nil, "k"),
		"no keys":    eng.Watch(ctx, fn),
		"0 attempts": eng.WatchRetry(ctx, 0, fn, "k"),
	} {
		if !errors.Is(err, engine.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
	if err := eng.Watch(txNilCtx, fn, "k"); err != nil {
		t.Errorf("Watch with nil ctx: %v", err)
	}
	if err := eng.Tx().Exec(ctx); err != nil {
		t.Errorf("empty Exec: %v", err)
	}
}

// Close while a Watch function runs: the watched connection closes, the
// Watch ends with an error, every future completes, no goroutine leaks;
// Watch and Tx after Close fail with ErrClosed.
func TestTxCloseDuringWatch(t *testing.T) {
	srv := valkeytest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	eng, err := open(context.Background(), t, faultConfig(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	// A transaction leaves an idle pooled connection behind.
	tx := eng.Tx()
	tx.Set("tx:close", "0", 0)
	if err := tx.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	inside, release := make(chan struct{}), make(chan struct{})
	var incr *futures.Future[int64]
	var readErr error
	done := make(chan error, 1)
	go func() {
		done <- eng.Watch(ctx, func(tx *engine.Tx) error {
			close(inside)
			<-release
			_, readErr = tx.Read().Get(ctx, "tx:close")
			incr = tx.Incr("tx:close")
			return nil
		}, "tx:close")
	}()
	<-inside
	if err := eng.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	close(release)
	err = <-done
	if err == nil || readErr == nil {
		t.Fatalf("Watch after Close: %v (read %v), want errors", err, readErr)
	}
	if !incr.IsDone() || incr.Err(ctx) == nil {
		t.Fatalf("queued INCR: done %v, %v", incr.IsDone(), incr.Err(ctx))
	}
	if err := eng.Watch(ctx, func(*engine.Tx) error { return nil }, "k"); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Watch after Close: %v, want ErrClosed", err)
	}
	tx = eng.Tx()
	f := tx.Incr("k")
	if err := tx.Exec(ctx); !errors.Is(err, engine.ErrClosed) || !errors.Is(f.Err(ctx), engine.ErrClosed) {
		t.Fatalf("Tx after Close: %v, %v; want ErrClosed", err, f.Err(ctx))
	}
	t.Logf("Watch ended by Close: %v; read: %v", err, readErr)
}

// A transaction longer than the connection's pipeline limit goes out in
// parts on its connection and still runs as one transaction.
func TestTxLongerThanPipeline(t *testing.T) {
	eng, _ := newEngine(t, func(c config.Config) config.Config { return c.WithMaxBatchSize(16) })
	ctx := ctxT(t)
	tx := eng.Tx()
	fs := make([]*futures.Future[int64], 100)
	for i := range fs {
		fs[i] = tx.Incr("tx:long")
	}
	if err := tx.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for i, f := range fs {
		pipeWant(t, ctx, fmt.Sprintf("INCR %d", i), f, int64(i+1))
	}
}

// txIdleConn starts an engine (fault settings) on srv and runs one
// transaction, which leaves an idle pooled transaction connection.
func txIdleConn(t *testing.T, srv *valkeytest.Server) (*engine.Engine, context.Context) {
	t.Helper()
	eng := engineOn(t, faultConfig(srv.Addr()))
	t.Cleanup(func() { _ = eng.Close() })
	ctx := ctxT(t)
	tx := eng.Tx()
	tx.Set("tx:idle", "1", 0)
	if err := tx.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	return eng, ctx
}

// The server dies: a transaction and a Watch fail with a transport error
// (not a reply), and every future has completed.
func TestTxServerKilled(t *testing.T) {
	srv := valkeytest.Start(t)
	eng, ctx := txIdleConn(t, srv)
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	tx := eng.Tx()
	set, incr := tx.Set("tx:killed", "2", 0), tx.Incr("tx:killed:n")
	err := tx.Exec(ctx)
	var se *engine.ServerError
	if err == nil || errors.As(err, &se) {
		t.Fatalf("Exec against a killed server: %v, want a transport error", err)
	}
	if !set.IsDone() || !incr.IsDone() || set.Err(ctx) == nil || incr.Err(ctx) == nil {
		t.Fatal("futures not failed after Exec returned")
	}
	werr := eng.Watch(ctx, func(tx *engine.Tx) error { tx.Incr("tx:killed"); return nil }, "tx:killed")
	if werr == nil || errors.As(werr, &se) {
		t.Fatalf("Watch against a killed server: %v, want a transport error", werr)
	}
	t.Logf("Exec: %v; Watch: %v", err, werr)
}

// A transaction after a server restart, on a pooled connection left idle
// across it, runs (the pool checks a connection idle for a second or more
// before writing a transaction on it) instead of failing with an unknown
// outcome.
func TestTxAfterRestartOnIdleConnection(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{AppendOnly: true})
	eng, ctx := txIdleConn(t, srv)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// The pool checks connections idle for txCheckIdle (1 s) or longer:
	// let this one age past it.
	time.Sleep(1100 * time.Millisecond)
	tx := eng.Tx()
	incr := tx.Incr("tx:idle")
	if err := tx.Exec(ctx); err != nil {
		t.Fatalf("Exec after a restart, on a connection idle across it: %v", err)
	}
	if n, err := incr.Await(ctx); err != nil || n != 2 {
		t.Fatalf("INCR in the transaction = %d, %v; want 2", n, err)
	}
}
