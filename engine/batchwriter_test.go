package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/drivers/driverstest"
	"github.com/vactor-io/vactor/drivers/valkeygo"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/valkeytest"
)

// bwKey is the i-th key of a batch writer test.
func bwKey(prefix string, i int) string { return prefix + ":" + strconv.Itoa(i) }

// bwMissing returns the keys among keys that do not exist, asking with
// MGETs of 1,000 keys (split per slot by the engine in cluster mode).
func bwMissing(t *testing.T, ctx context.Context, eng *engine.Engine, keys []string) []string {
	t.Helper()
	var fs []*futures.Future[[]*string]
	for i := 0; i < len(keys); i += 1000 {
		fs = append(fs, eng.MGet(ctx, keys[i:min(i+1000, len(keys))]...))
	}
	var lost []string
	for c, f := range fs {
		vals, err := f.Await(ctx)
		if err != nil {
			t.Fatalf("MGET: %v", err)
		}
		for j, v := range vals {
			if v == nil {
				lost = append(lost, keys[c*1000+j])
			}
		}
	}
	return lost
}

// bwDBSize returns DBSIZE of the engine's (standalone) server.
func bwDBSize(t *testing.T, ctx context.Context, eng *engine.Engine) int64 {
	t.Helper()
	r, err := eng.Do(ctx, "DBSIZE").Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.Int64()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// bwErrors collects the commands reported through OnError.
type bwErrors struct {
	mu   sync.Mutex
	cmds [][]string
	errs []error
}

func (b *bwErrors) on(cmd []string, err error) {
	b.mu.Lock()
	b.cmds = append(b.cmds, cmd)
	b.errs = append(b.errs, err)
	b.mu.Unlock()
}

func (b *bwErrors) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.cmds)
}

// bwWriter returns a batch writer on eng closed at cleanup.
func bwWriter(t *testing.T, eng *engine.Engine, opts engine.BatchWriterOptions) *engine.BatchWriter {
	t.Helper()
	w, err := eng.NewBatchWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w
}

// bwSetAll writes prefix:0 .. prefix:n-1 (value "v") through w and flushes;
// it returns the keys.
func bwSetAll(t *testing.T, ctx context.Context, w *engine.BatchWriter, prefix string, n int) []string {
	t.Helper()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = bwKey(prefix, i)
		if err := w.Set(ctx, keys[i], "v", 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return keys
}

// bwCheckDone asserts that every command written was acknowledged or
// failed, and that OnError saw exactly the failed ones.
func bwCheckDone(t *testing.T, st engine.BatchWriterStats, reported int) {
	t.Helper()
	if st.Acknowledged+st.Failed != st.Written || st.Pending != 0 {
		t.Fatalf("acked %d + failed %d != written %d (pending %d)", st.Acknowledged, st.Failed, st.Written, st.Pending)
	}
	if uint64(reported) != st.Failed {
		t.Fatalf("OnError called %d times, Stats.Failed = %d", reported, st.Failed)
	}
}

// 1,000,000 SETs through the writer: all acknowledged, all present (DBSIZE
// and an MGET of every key).
func TestBatchWriterMillionSets(t *testing.T) {
	if testing.Short() {
		t.Skip("1M-write test: skipped with -short")
	}
	eng, _ := newEngine(t)
	ctx := bulkCtxT(t)
	var errs bwErrors
	w := bwWriter(t, eng, engine.BatchWriterOptions{OnError: errs.on})
	const n = 1_000_000
	value := string(slices.Repeat([]byte("v"), 64))
	start := time.Now()
	for i := range n {
		if err := w.Set(ctx, bwKey("bw", i), value, 0); err != nil {
			t.Fatalf("Set %d: %v", i, err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	st := w.Stats()
	t.Logf("1M SETs in %s (%.0f ops/s under the test's flags): %s, %d pipelines, %d connections", elapsed, n/elapsed.Seconds(), st, st.Batches, st.Connects)
	bwCheckDone(t, st, errs.len())
	if st.Written != n || st.Acknowledged != n {
		t.Fatalf("written %d, acked %d, want %d", st.Written, st.Acknowledged, n)
	}
	if got := bwDBSize(t, ctx, eng); got != n {
		t.Fatalf("DBSIZE = %d, want %d", got, n)
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = bwKey("bw", i)
	}
	if lost := bwMissing(t, ctx, eng, keys); len(lost) > 0 {
		t.Fatalf("%d keys missing, first %q", len(lost), lost[0])
	}
}

// bwRestart writes n SETs while the server (AOF, fsync always) restarts
// once a third of them is written, and checks that nothing was dropped:
// acked + failed == written, every key not reported failed exists after
// the restart, and the writer reconnected.
func bwRestart(t *testing.T, n int, idempotent bool) (engine.BatchWriterStats, *bwErrors) {
	srv := valkeytest.Start(t, valkeytest.Options{AppendOnly: true})
	ctx := bulkCtxT(t)
	eng, err := open(ctx, t, config.DefaultConfig().WithAddrs(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	errs := &bwErrors{}
	w := bwWriter(t, eng, engine.BatchWriterOptions{OnError: errs.on, Idempotent: idempotent})
	restarted := make(chan error, 1)
	var atRestart engine.BatchWriterStats
	for i := range n {
		if i == n/3 {
			go func() {
				err := srv.Restart()
				atRestart = w.Stats()
				restarted <- err
			}()
		}
		if err := w.Set(ctx, bwKey("rs", i), strconv.Itoa(i), 0); err != nil {
			t.Fatalf("Set %d: %v", i, err)
		}
	}
	if err := <-restarted; err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if atRestart.Acknowledged >= uint64(n) {
		t.Fatalf("every write was acknowledged before the restart completed: %s", atRestart)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	t.Logf("restart during %d SETs (at the restart: %s): %s, %d resent, %d connections", n, atRestart, st, st.Retries, st.Connects)
	bwCheckDone(t, st, errs.len())
	if st.Written != uint64(n) {
		t.Fatalf("written %d, want %d", st.Written, n)
	}
	if st.Connects <= engine.DefaultWriterConns {
		t.Fatalf("%d connections opened: the restart did not make the writer reconnect", st.Connects)
	}
	failed := map[string]bool{}
	for i, cmd := range errs.cmds {
		if len(cmd) < 2 || cmd[0] != "SET" {
			t.Fatalf("OnError got command %q", cmd)
		}
		if !errors.Is(errs.errs[i], engine.ErrOutcomeUnknown) && !errors.Is(errs.errs[i], engine.ErrClosed) {
			// Not written (refused) commands are resent; after the limit
			// they fail with the dial error. Anything is fine as long as it
			// is reported; log the kinds.
			t.Logf("failed %q: %v", cmd, errs.errs[i])
		}
		failed[cmd[1]] = true
	}
	var acked []string
	for i := range n {
		if k := bwKey("rs", i); !failed[k] {
			acked = append(acked, k)
		}
	}
	// Check on a fresh engine: eng's own connection died in the restart.
	check, err := open(ctx, t, config.DefaultConfig().WithAddrs(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	if lost := bwMissing(t, ctx, check, acked); len(lost) > 0 {
		t.Fatalf("%d acknowledged keys missing after the restart, first %q", len(lost), lost[0])
	}
	return st, errs
}

// A server restart in the middle: every command acknowledged or reported
// failed, no acknowledged write lost (AOF fsync always).
func TestBatchWriterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("1M-write test: skipped with -short")
	}
	st, errs := bwRestart(t, 1_000_000, false)
	for _, err := range errs.errs {
		if errors.Is(err, engine.ErrClosed) {
			t.Fatalf("a command failed with ErrClosed though nothing was closed: %v", err)
		}
	}
	_ = st
}

// With Idempotent, commands whose replies were lost are sent again: every
// write is acknowledged.
func TestBatchWriterRestartIdempotent(t *testing.T) {
	st, _ := bwRestart(t, 200_000, true)
	if st.Failed != 0 {
		t.Fatalf("%d failed with Idempotent", st.Failed)
	}
}

// Reject mode: with MaxPending commands pending (server paused), the next
// Write fails with ErrBackpressure; block mode waits and gives up with the
// Write's ctx.
func TestBatchWriterBackpressure(t *testing.T) {
	eng, srv := newEngine(t)
	ctx := ctxT(t)
	for _, policy := range []config.BackpressurePolicy{config.BackpressureReject, config.BackpressureBlock} {
		t.Run(policy.String(), func(t *testing.T) {
			w := bwWriter(t, eng, engine.BatchWriterOptions{MaxPending: 10, Backpressure: policy})
			// Open the connections first.
			for i := range 10 {
				if err := w.Incr(ctx, bwKey("bp:warm", i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			resume := pauseServer(t, srv)
			for i := range 10 {
				if err := w.Incr(ctx, "bp:"+policy.String()); err != nil {
					t.Fatalf("Write %d of 10: %v", i, err)
				}
			}
			if policy == config.BackpressureReject {
				if err := w.Incr(ctx, "bp:"+policy.String()); !errors.Is(err, engine.ErrBackpressure) {
					t.Fatalf("11th Write: %v, want ErrBackpressure", err)
				}
				if st := w.Stats(); st.Rejected != 1 || st.Written != 20 {
					t.Fatalf("stats %+v, want 1 rejected, 20 written", st)
				}
			} else {
				short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				err := w.Incr(short, "bp:"+policy.String())
				cancel()
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("11th Write: %v, want context.DeadlineExceeded", err)
				}
				// A blocked Write goes through once there is room.
				done := make(chan error, 1)
				go func() { done <- w.Incr(ctx, "bp:"+policy.String()) }()
				select {
				case err := <-done:
					t.Fatalf("Write returned %v while full", err)
				case <-time.After(20 * time.Millisecond):
				}
				resume()
				if err := <-done; err != nil {
					t.Fatalf("blocked Write: %v", err)
				}
			}
			resume()
			if err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			want := int64(10)
			if policy == config.BackpressureBlock {
				want = 11
			}
			if got, err := eng.Get(ctx, "bp:"+policy.String()).Await(ctx); err != nil || got != strconv.FormatInt(want, 10) {
				t.Fatalf("counter = %q, %v; want %d", got, err, want)
			}
		})
	}
}

// Flush waits for everything written before it, not for what is written
// after; it returns at once when nothing is pending, and with ctx's error
// when ctx ends first.
func TestBatchWriterFlush(t *testing.T) {
	eng, srv := newEngine(t)
	ctx := ctxT(t)
	w := bwWriter(t, eng, engine.BatchWriterOptions{})
	if err := w.Flush(ctx); err != nil {
		t.Fatalf("Flush with nothing written: %v", err)
	}
	const n = 20_000
	for range n {
		if err := w.Incr(ctx, "fl:counter"); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := eng.Get(ctx, "fl:counter").Await(ctx); err != nil || got != strconv.Itoa(n) {
		t.Fatalf("after Flush counter = %q, %v; want %d", got, err, n)
	}
	if st := w.Stats(); st.Acknowledged != n || st.Pending != 0 {
		t.Fatalf("after Flush: %s", st)
	}
	// A writer that keeps writing does not hold up a Flush.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := w.Incr(ctx, bwKey("fl:busy", i%100)); err != nil {
				t.Errorf("busy Incr: %v", err)
				return
			}
		}
	})
	for range 5 {
		if err := w.Incr(ctx, "fl:mark"); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if got, err := eng.Get(ctx, "fl:mark").Await(ctx); err != nil || got != "5" {
		t.Fatalf("mark = %q, %v; want 5", got, err)
	}
	// ctx ends first: the server is paused.
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := w.Incr(ctx, "fl:counter"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err := w.Flush(short)
	cancel()
	if rerr := srv.Resume(); rerr != nil {
		t.Fatal(rerr)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush on a paused server: %v, want DeadlineExceeded", err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := eng.Get(ctx, "fl:counter").Await(ctx); got != strconv.Itoa(n+1) {
		t.Fatalf("counter = %q, want %d", got, n+1)
	}
}

// Close flushes and stops: written keys exist, later Writes and a second
// Close fail with ErrClosed.
func TestBatchWriterClose(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	if err := eng.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// The writer's goroutines end with Close, while the engine lives on.
	engineOnly := goleak.IgnoreCurrent()
	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 5000)
	for i := range keys {
		keys[i] = bwKey("cl", i)
		if err := w.Set(ctx, keys[i], "v", time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	goleak.VerifyNone(t, engineOnly)
	if st := w.Stats(); st.Acknowledged != 5000 || st.Pending != 0 {
		t.Fatalf("after Close: %s", st)
	}
	if lost := bwMissing(t, ctx, eng, keys); len(lost) > 0 {
		t.Fatalf("%d keys missing after Close", len(lost))
	}
	if err := w.Set(ctx, "cl:late", "v", 0); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Write after Close: %v, want ErrClosed", err)
	}
	if err := w.Write(ctx, "PING"); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Write after Close: %v, want ErrClosed", err)
	}
	if err := w.Close(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
	// The engine is unaffected.
	if err := eng.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// Error replies are reported per command through OnError and counted; the
// other commands of the same pipelines are acknowledged.
func TestBatchWriterOnErrorWrongType(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	if _, err := eng.LPush(ctx, "ow:list", "a").Await(ctx); err != nil {
		t.Fatal(err)
	}
	var errs bwErrors
	w := bwWriter(t, eng, engine.BatchWriterOptions{OnError: errs.on})
	for i := range 3000 {
		var err error
		switch {
		case i%1000 == 500:
			err = w.Incr(ctx, "ow:list")
		case i == 1234:
			err = w.Write(ctx, "HSET", "ow:list", "f", "v")
		default:
			err = w.Set(ctx, bwKey("ow", i), "v", 0)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	bwCheckDone(t, st, errs.len())
	if st.Failed != 4 || st.Acknowledged != 2996 {
		t.Fatalf("stats %s, want 4 failed, 2996 acked", st)
	}
	for i, cmd := range errs.cmds {
		if !errors.Is(errs.errs[i], &engine.ServerError{Prefix: "WRONGTYPE"}) {
			t.Fatalf("OnError(%q, %v), want WRONGTYPE", cmd, errs.errs[i])
		}
		if !slices.Equal(cmd, []string{"INCR", "ow:list"}) && !slices.Equal(cmd, []string{"HSET", "ow:list", "f", "v"}) {
			t.Fatalf("OnError command %q", cmd)
		}
	}
}

// Bad input fails with ErrInvalidArgument and queues nothing; no panics.
func TestBatchWriterBadInput(t *testing.T) {
	eng, _ := newEngine(t)
	if _, err := eng.NewBatchWriter(engine.BatchWriterOptions{MaxPending: -1}); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("MaxPending -1: %v", err)
	}
	if _, err := eng.NewBatchWriter(engine.BatchWriterOptions{Backpressure: 7}); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("Backpressure 7: %v", err)
	}
	w := bwWriter(t, eng, engine.BatchWriterOptions{})
	var nilCtx context.Context
	for name, err := range map[string]error{
		"Write()":        w.Write(nilCtx),
		"Write(\"\")":    w.Write(nilCtx, ""),
		"SUBSCRIBE":      w.Write(nilCtx, "subscribe", "ch"),
		"HSet odd":       w.HSet(nilCtx, "k", "f"),
		"HSet none":      w.HSet(nilCtx, "k"),
		"Del none":       w.Del(nilCtx),
		"RPush none":     w.RPush(nilCtx, "k"),
		"SAdd none":      w.SAdd(nilCtx, "k"),
		"XAdd odd":       w.XAdd(nilCtx, "k", "f"),
		"XAdd no stream": w.XAdd(nilCtx, "", "f", "v"),
		"Expire 0":       w.Expire(nilCtx, "k", 0),
		"Set negative":   w.Set(nilCtx, "k", "v", -5*time.Second),
		"Write canceled": w.Write(canceledCtx(), "SET", "k", "v"),
	} {
		if name == "Write canceled" {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s: %v, want context.Canceled", name, err)
			}
			continue
		}
		if !errors.Is(err, engine.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
	if st := w.Stats(); st.Written != 0 {
		t.Fatalf("bad input queued %d commands", st.Written)
	}
	// A nil ctx is otherwise fine; every helper writes.
	ctx := ctxT(t)
	for _, err := range []error{
		w.Write(nilCtx, "SET", "bi:a", "1"),
		w.Set(nilCtx, "bi:b", "1", 1500*time.Millisecond+time.Hour),
		w.HSet(ctx, "bi:h", "f", "v"),
		w.Del(ctx, "bi:a", "bi:zz"),
		w.IncrBy(ctx, "bi:n", 5),
		w.Expire(ctx, "bi:n", time.Minute),
		w.RPush(ctx, "bi:l", "x", "y"),
		w.SAdd(ctx, "bi:s", "m"),
		w.XAdd(ctx, "bi:x", "f", "v"),
		w.Write(ctx, "PING"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Acknowledged != 10 || st.Failed != 0 {
		t.Fatalf("helpers: %s", st)
	}
	if n := bwDBSize(t, ctx, eng); n != 6 { // b, h, n, l, s, x
		t.Fatalf("DBSIZE = %d, want 6", n)
	}
}

func canceledCtx() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// engine.Close with a live writer holding queued and in-flight commands:
// the writer is stopped first, every command is acknowledged or reported
// failed (ErrClosed for the queued ones), later Writes fail with
// ErrClosed, and no goroutine remains.
func TestBatchWriterEngineClose(t *testing.T) {
	srv := valkeytest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := ctxT(t)
	eng, err := open(ctx, t, config.DefaultConfig().WithAddrs(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	var errs bwErrors
	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{OnError: errs.on})
	if err != nil {
		t.Fatal(err)
	}
	const n = 50_000
	for i := range n {
		if err := w.Set(ctx, bwKey("ec", i), "v", 0); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if err := eng.Close(); err != nil {
		t.Fatalf("engine Close: %v", err)
	}
	st := w.Stats()
	t.Logf("engine.Close with %d written: %s in %s", n, st, time.Since(start))
	bwCheckDone(t, st, errs.len())
	for i, err := range errs.errs {
		if !errors.Is(err, engine.ErrClosed) && !errors.Is(err, engine.ErrOutcomeUnknown) {
			t.Fatalf("OnError(%q, %v), want ErrClosed or ErrOutcomeUnknown", errs.cmds[i], err)
		}
	}
	if err := w.Set(ctx, "ec:late", "v", 0); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Write after engine.Close: %v", err)
	}
	if err := w.Close(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("writer Close after engine.Close: %v", err)
	}
	if _, err := eng.NewBatchWriter(engine.BatchWriterOptions{}); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("NewBatchWriter after Close: %v", err)
	}
	// What was acknowledged is there.
	if st.Acknowledged > 0 {
		c := rawConn(t, srv.Addr())
		if got := c.cmd(t, "DBSIZE"); got != fmt.Sprintf(":%d", st.Acknowledged) {
			t.Fatalf("DBSIZE = %s, want :%d", got, st.Acknowledged)
		}
	}
}

// Cluster mode: 100,000 SETs across all slots, grouped by slot owner, all
// present (DBSIZE summed over the primaries, and MGET of every key).
func TestBatchWriterCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	var errs bwErrors
	w := bwWriter(t, eng, engine.BatchWriterOptions{OnError: errs.on})
	const n = 100_000
	keys := bwSetAll(t, ctx, w, "cw", n)
	st := w.Stats()
	t.Logf("cluster: %s, %d pipelines, %d connections", st, st.Batches, st.Connects)
	bwCheckDone(t, st, errs.len())
	if st.Acknowledged != n {
		t.Fatalf("acked %d, want %d", st.Acknowledged, n)
	}
	if want := uint64(len(c.Primaries()) * engine.DefaultWriterConns); st.Connects != want {
		t.Fatalf("%d connections, want %d (per primary)", st.Connects, want)
	}
	var total int64
	for _, p := range c.Primaries() {
		r, err := p.Do("DBSIZE")
		if err != nil {
			t.Fatal(err)
		}
		total += r.(int64)
	}
	if total != n {
		t.Fatalf("DBSIZE over the primaries = %d, want %d", total, n)
	}
	if lost := bwMissing(t, ctx, eng, keys); len(lost) > 0 {
		t.Fatalf("%d keys missing, first %q", len(lost), lost[0])
	}
}

// Cluster mode while 300 slots move between primaries under the writer:
// MOVED and ASK redirects are followed (ASKING to the importing node),
// nothing is lost or failed, and every key ends up on its slot's new owner.
func TestBatchWriterClusterResharding(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	prim := c.Primaries()
	ranges, err := c.SlotsOf(prim[0])
	if err != nil {
		t.Fatal(err)
	}
	var slots []int
	for s := ranges[0][0]; s <= ranges[0][1] && len(slots) < 300; s++ {
		slots = append(slots, s)
	}
	var errs bwErrors
	w := bwWriter(t, eng, engine.BatchWriterOptions{OnError: errs.on, MaxPending: 5000})
	const n = 60_000
	keys := make([]string, n)
	migrated := make(chan error, 1)
	for i := range keys {
		if i == n/4 {
			go func() { migrated <- c.MigrateSlots(prim[0], prim[1], slots) }()
		}
		keys[i] = bwKey("rw", i)
		if err := w.Set(ctx, keys[i], "v", 0); err != nil {
			t.Fatal(err)
		}
		if i%5000 == 0 {
			// Pace the writes so that they span the migration.
			if err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := <-migrated; err != nil {
		t.Fatalf("MigrateSlots: %v", err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	t.Logf("resharding 300 slots under %d SETs: %s, %d resent, %d redirects", n, st, st.Retries, st.Redirects)
	bwCheckDone(t, st, errs.len())
	if st.Redirects == 0 {
		t.Fatal("no MOVED or ASK redirect: the writes did not span the migration")
	}
	if st.Failed != 0 {
		t.Fatalf("%d failed, first %q: %v", st.Failed, errs.cmds[0], errs.errs[0])
	}
	if lost := bwMissing(t, ctx, eng, keys); len(lost) > 0 {
		t.Fatalf("%d keys missing, first %q", len(lost), lost[0])
	}
	var total int64
	for _, p := range prim {
		r, err := p.Do("DBSIZE")
		if err != nil {
			t.Fatal(err)
		}
		total += r.(int64)
	}
	if total != n {
		t.Fatalf("DBSIZE over the primaries = %d, want %d", total, n)
	}
}

// Cluster mode, a primary killed (SIGKILL) under the writer: the commands
// queued for it are re-routed to the replica that takes over once the slot
// map shows it; only those in flight at the kill fail (ErrOutcomeUnknown),
// every command is accounted for, and writes after the failover all land.
func TestBatchWriterClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	var errs bwErrors
	w := bwWriter(t, eng, engine.BatchWriterOptions{OnError: errs.on, MaxPending: 20_000})
	victim := c.Primaries()[0]
	const n = 60_000
	failedOver := make(chan error, 1)
	for i := range n {
		if i == n/3 {
			if err := c.KillPrimary(victim); err != nil {
				t.Fatal(err)
			}
			go func() { failedOver <- c.WaitFailover(victim, 20*time.Second) }()
		}
		if err := w.Set(ctx, bwKey("fo", i), "v", 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-failedOver; err != nil {
		t.Fatalf("WaitFailover: %v", err)
	}
	// After the failover: every write lands.
	after := bwSetAll(t, ctx, w, "fo:after", 5000)
	st := w.Stats()
	t.Logf("primary killed under %d SETs: %s, %d resent, %d connections", n+len(after), st, st.Retries, st.Connects)
	bwCheckDone(t, st, errs.len())
	for i, err := range errs.errs {
		if !errors.Is(err, engine.ErrOutcomeUnknown) {
			t.Fatalf("OnError(%q, %v): only commands in flight at the kill may fail", errs.cmds[i], err)
		}
	}
	if s := eng.Stats(); s.OutcomeUnknown < uint64(errs.len()) {
		t.Errorf("Stats.OutcomeUnknown = %d, want at least the writer's %d (review-33 F3: not counted)", s.OutcomeUnknown, errs.len())
	}
	if max := uint64(engine.DefaultWriterConns * engine.DefaultWriterBatchSize); st.Failed > max {
		t.Fatalf("%d failed, more than the %d that can be in flight on the victim", st.Failed, max)
	}
	if lost := bwMissing(t, ctx, eng, after); len(lost) > 0 {
		t.Fatalf("%d keys written after the failover missing, first %q", len(lost), lost[0])
	}
	// The victim's lanes, busy rerouting when its successor got lanes,
	// end once idle: lanes for the current primaries only.
	want := len(c.Primaries()) * engine.DefaultWriterConns
	deadline := time.Now().Add(10 * time.Second)
	for engine.WriterLanes(w) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d writer lanes, want %d (the killed primary's are kept)", engine.WriterLanes(w), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// bwCommandCalls returns the calls of cmd (lower case) in INFO
// commandstats, asked through eng.
func bwCommandCalls(t *testing.T, ctx context.Context, eng *engine.Engine, cmd string) int {
	t.Helper()
	r, err := eng.Do(ctx, "INFO", "commandstats").Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := r.String()
	calls := 0
	if i := strings.Index(s, "cmdstat_"+cmd+":calls="); i >= 0 {
		fmt.Sscanf(s[i+len("cmdstat_"+cmd+":calls="):], "%d", &calls)
	}
	return calls
}

// Runs of plain SETs go out as MSETs: the same writes, in order, with SETs
// that carry options (and other commands) keeping their place between
// them; each SET is acknowledged on its own.
func TestBatchWriterMergesSets(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	w := bwWriter(t, eng, engine.BatchWriterOptions{})
	const n = 5000
	for i := range n {
		k := bwKey("merge", i%1000) // each key written 5 times: the last value wins
		if err := w.Set(ctx, k, strconv.Itoa(i), 0); err != nil {
			t.Fatal(err)
		}
		if i%700 == 0 { // a SET with a TTL and a HSET in between
			if err := w.Set(ctx, bwKey("merge:ttl", i), "v", time.Hour); err != nil {
				t.Fatal(err)
			}
			if err := w.HSet(ctx, "merge:h", strconv.Itoa(i), "x"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	bwCheckDone(t, st, 0)
	if st.Acknowledged != n+2*8 {
		t.Fatalf("acknowledged %d; want %d", st.Acknowledged, n+2*8)
	}
	for k := range 1000 {
		want := strconv.Itoa(4000 + k)
		if v, err := eng.Get(ctx, bwKey("merge", k)).Await(ctx); err != nil || v != want {
			t.Fatalf("GET %s = %q, %v; want %s (the last write)", bwKey("merge", k), v, err, want)
		}
	}
	if ttl, err := eng.TTL(ctx, bwKey("merge:ttl", 700)).Await(ctx); err != nil || !ttl.HasExpiry || ttl.Remaining <= 0 {
		t.Fatalf("TTL of the SET with EX = %v, %v; want > 0", ttl, err)
	}
	if m, err := eng.HGetAll(ctx, "merge:h").Await(ctx); err != nil || len(m) != 8 {
		t.Fatalf("HGETALL = %v, %v; want 8 fields", m, err)
	}
	msets, sets := bwCommandCalls(t, ctx, eng, "mset"), bwCommandCalls(t, ctx, eng, "set")
	t.Logf("%d SETs sent as %d MSETs and %d SETs", n+8, msets, sets)
	if msets == 0 || msets > n/2 {
		t.Fatalf("%d MSETs for %d plain SETs: runs of SETs were not merged", msets, n)
	}
}

// A server that refuses MSET (an ACL without it): the refused SETs are sent
// again as SETs, merging stops, nothing fails.
func TestBatchWriterMSetRefused(t *testing.T) {
	srv := valkeytest.Start(t)
	ctx := ctxT(t)
	admin, err := open(ctx, t, config.DefaultConfig().WithAddrs(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Do(ctx, "ACL", "SETUSER", "nomset", "on", ">nomset-Pa55word-3e8", "~*", "+@all", "-mset").Await(ctx); err != nil {
		t.Fatal(err)
	}
	registerCountingDriver()
	pipes := &setPipelines
	pipes.Store(0)
	eng, err := open(ctx, t, config.DefaultConfig().WithAddrs(srv.Addr()).WithUsername("nomset").WithPassword("nomset-Pa55word-3e8").WithDriver(countingDriverName))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	var reported atomic.Int64
	w := bwWriter(t, eng, engine.BatchWriterOptions{OnError: func([]string, error) { reported.Add(1) }})
	keys := bwSetAll(t, ctx, w, "nomset", 3000)
	st := w.Stats()
	bwCheckDone(t, st, int(reported.Load()))
	if st.Failed != 0 || st.Acknowledged != uint64(len(keys)) {
		t.Fatalf("acknowledged %d, failed %d; want all %d acknowledged", st.Acknowledged, st.Failed, len(keys))
	}
	if missing := bwMissing(t, ctx, admin, keys); len(missing) > 0 {
		t.Fatalf("%d keys missing, first %s", len(missing), missing[0])
	}
	// The writer did try MSET first (refused by the ACL), then SETs.
	r, err := admin.Do(ctx, "INFO", "commandstats").Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := r.String()
	i := strings.Index(info, "cmdstat_mset:")
	if i < 0 || !strings.Contains(info[i:i+strings.IndexByte(info[i:], '\n')], "rejected_calls=") ||
		strings.Contains(info[i:i+strings.IndexByte(info[i:], '\n')], "rejected_calls=0") {
		t.Fatalf("no MSET was refused: %q", info)
	}
	if sets := bwCommandCalls(t, ctx, admin, "set"); sets < len(keys) {
		t.Fatalf("%d SETs reached the server; want at least %d", sets, len(keys))
	}
	// Stats.Batches counts every pipeline sent, the refused ones too (a
	// pipeline of refused MSETs only was not counted).
	if sent := pipes.Load(); st.Batches != uint64(sent) {
		t.Fatalf("Stats.Batches = %d, but the writer sent %d pipelines", st.Batches, sent)
	}
}

// countingDriverName is valkey-go through the neutral interface,
// counting in setPipelines the pipelines whose commands include SET or
// MSET.
const countingDriverName = "test-counting"

var (
	setPipelines           atomic.Int64
	registerCountingDriver = sync.OnceFunc(func() {
		drivers.Register(countingDriverName, countingDriver{driverstest.NeutralOnly(valkeygo.Driver{}), &setPipelines})
	})
)

// countingDriver counts in *n the pipelines whose commands include SET or
// MSET.
type countingDriver struct {
	drivers.Driver
	n *atomic.Int64
}

func (d countingDriver) Dial(ctx context.Context, o drivers.Options) (drivers.Conn, error) {
	c, err := d.Driver.Dial(ctx, o)
	if err != nil {
		return nil, err
	}
	return countingConn{c, d.n}, nil
}

type countingConn struct {
	drivers.Conn
	n *atomic.Int64
}

func (c countingConn) Exec(ctx context.Context, cmds []drivers.Command, out []drivers.Result) {
	for _, cmd := range cmds {
		if len(cmd.Args) > 0 && (strings.EqualFold(cmd.Args[0], "SET") || strings.EqualFold(cmd.Args[0], "MSET")) {
			c.n.Add(1)
			break
		}
	}
	c.Conn.Exec(ctx, cmds, out)
}

// An OnError that panics cannot take the writer down: every failed
// command still counts as failed (Flush returns, nothing pending), later
// writes are acknowledged, Stats.OnErrorPanics counts each panic and only
// the first is logged.
func TestBatchWriterOnErrorPanicRecovered(t *testing.T) {
	srv := valkeytest.Start(t)
	cfg, logs := withLogCheck(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	eng := engineOn(t, cfg)
	defer eng.Close()
	ctx := ctxT(t)
	if _, err := eng.Set(ctx, "bwp:str", "x", 0).Await(ctx); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	w := bwWriter(t, eng, engine.BatchWriterOptions{OnError: func([]string, error) {
		calls.Add(1)
		panic("callback bug")
	}})
	for range 3 {
		if err := w.Write(ctx, "LPUSH", "bwp:str", "a"); err != nil { // WRONGTYPE
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	bwSetAll(t, ctx, w, "bwp", 10)
	st := w.Stats()
	bwCheckDone(t, st, int(calls.Load()))
	if st.Failed != 3 || st.Acknowledged != 10 || st.OnErrorPanics != 3 {
		t.Fatalf("failed %d, acknowledged %d, OnErrorPanics %d: want 3, 10, 3", st.Failed, st.Acknowledged, st.OnErrorPanics)
	}
	if n := logs.Count(hooks.MsgWriterPanicked); n != 1 {
		t.Fatalf("%q logged %d times, want once", hooks.MsgWriterPanicked, n)
	}
}

// Stats read as soon as Flush returns counts the pipeline that Flush
// waited for, even when every command of it failed: the batch was counted
// only after the failures were, and counting them is what releases Flush,
// so Batches could be one short. Each round writes one INCR on a list
// (WRONGTYPE: failed, not retried) and flushes; one pipeline per round.
func TestBatchWriterFlushCountsFailedBatch(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	if _, err := eng.LPush(ctx, "fb:list", "a").Await(ctx); err != nil {
		t.Fatal(err)
	}
	var errs bwErrors
	w := bwWriter(t, eng, engine.BatchWriterOptions{OnError: errs.on})
	deadline := time.Now().Add(10 * time.Second)
	for round := uint64(1); round <= 3000 && time.Now().Before(deadline); round++ {
		if err := w.Incr(ctx, "fb:list"); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		st := w.Stats()
		if st.Failed != round || st.Batches != round {
			t.Fatalf("round %d, right after Flush: %d failed, %d batches; want %d of each", round, st.Failed, st.Batches, round)
		}
	}
	bwCheckDone(t, w.Stats(), errs.len())
}
