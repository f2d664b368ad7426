package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// pendingFutures counts the futures of fs not complete yet, without
// waiting for any.
func pendingFutures[T any](fs []*futures.Future[T]) int {
	n := 0
	for _, f := range fs {
		if !f.IsDone() {
			n++
		}
	}
	return n
}

// Close with DrainTimeout 0 returns with every future complete in cluster
// mode, the commands held by slot actors included. Slots half-way through
// a migration answer a cross-slot-key MGET with TRYAGAIN: with a retry
// backoff far longer than the test, each slot's actor holds the MGET and
// parks every later command of its slot. Many goroutines fire commands at
// those slots and at others (straight to the connection actors), then
// Close runs; right when it returns, without waiting, no future may be
// pending: DrainTimeout bounds how long in-flight commands may still
// succeed, not whether the futures complete.
//
// How long Close takes is not asserted: in round 0 every SET to a
// migrating slot is redirected (ASK), some 15,000-31,000 Redirected
// events. Each was a debug line of the test's checked logger
// (withLogCheck), and Close delivers the hook events queued before it (up
// to hookWait): under -race Close took 0.8-1.7 s, most of it in that
// delivery. With redirects logged at most 10 a second per node it takes
// 0.1-0.2 s (0.25-0.5 s under a CPU hog), and that exposed a bug the slow
// delivery had hidden: the engine's Close and a connection actor's stop
// both close the actor's mailbox, and the second Close returned while the
// first was still failing the queued commands, so Close returned with up
// to 6,862 of 48,008 futures pending (3 runs in 8 under a CPU hog; the
// mailbox's second Close now waits, TestCloseWaitsForCloseInProgress).
func TestClusterCloseZeroDrainCompletesHeld(t *testing.T) {
	c := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{ReplicasPerPrimary: -1})
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := ctxT(t)
	for round := range 4 {
		cfg := config.DefaultConfig().WithAddrs(c.Addrs()[0]).WithClusterMode(true).
			WithDrainTimeout(0).WithMinRetryBackoff(time.Minute).WithMaxRetryBackoff(time.Minute)
		eng := engineOn(t, cfg)
		// The highest slots: Close closes the slots in order, these last.
		const slots = 8
		var tags []string
		for s := 16383; len(tags) < slots; s-- {
			tags = append(tags, tagOfSlot(s))
		}
		var held []*futures.Future[[]*string]
		for i, tag := range tags {
			a := fmt.Sprintf("{%s}a%d", tag, round)
			if err := eng.Set(ctx, a, "1", 0).Err(ctx); err != nil {
				t.Fatal(err)
			}
			if round == 0 {
				halfMigrate(t, c, a)
			}
			held = append(held, eng.MGet(ctx, a, fmt.Sprintf("{%s}b%d", tag, round)))
			// The TRYAGAIN came back: the slot actor holds the MGET.
			for deadline := time.Now().Add(10 * time.Second); eng.Stats().Redirects < uint64(i+1); {
				if time.Now().After(deadline) {
					t.Fatalf("round %d: no TRYAGAIN for slot of %s", round, a)
				}
				time.Sleep(time.Millisecond)
			}
		}
		const workers, perWorker = 8, 6000
		fs := make([][]*futures.Future[struct{}], workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perWorker {
					k := fmt.Sprintf("cp:%d:%d", w, i)
					if i%8 != 0 {
						k = fmt.Sprintf("{%s}%s", tags[(w+i)%len(tags)], k)
					}
					fs[w] = append(fs[w], eng.Set(context.Background(), k, "v", 0))
				}
			}()
		}
		wg.Wait()
		start := time.Now()
		closeErr := eng.Close()
		d := time.Since(start)
		pending := pendingFutures(held)
		total := len(held)
		for _, f := range fs {
			pending += pendingFutures(f)
			total += len(f)
		}
		if pending > 0 {
			t.Fatalf("round %d: %d of %d futures still pending when Close (DrainTimeout 0, %s, err %v) returned",
				round, pending, total, d, closeErr)
		}
		for _, f := range held {
			if _, err := f.Await(ctx); !errors.Is(err, engine.ErrClosed) {
				t.Fatalf("round %d: MGET held through TRYAGAIN: %v, want ErrClosed", round, err)
			}
		}
		t.Logf("round %d: Close in %s (err %v), %d futures complete", round, d, closeErr, total)
	}
}

// tagOfSlot returns a hash tag whose keys hash to slot.
func tagOfSlot(slot int) string {
	for i := 0; ; i++ {
		if tag := fmt.Sprintf("t%d", i); valkeytest.HashSlot(tag) == slot {
			return tag
		}
	}
}

// poolUsed returns how many connections of the engine's pool (PoolTx or
// PoolDedicated) are lent out or being dialled, and how many are idle.
func poolUsed(eng *engine.Engine, pool string) (used, idle int) {
	for _, p := range eng.Stats().DedicatedConns {
		if p.Pool == pool {
			used += p.Used
			idle += p.Idle
		}
	}
	return used, idle
}

// serverDo is what the test servers of every mode answer commands with.
type serverDo interface {
	Do(args ...string) (any, error)
}

// blockedPop issues a BLPOP that blocks on srv, and waits until it does.
func blockedPop(t *testing.T, ctx context.Context, eng *engine.Engine, srv serverDo, key string) *futures.Future[engine.Reply] {
	t.Helper()
	pop := eng.Do(ctx, "BLPOP", key, "0")
	waitCond(t, 10*time.Second, "the BLPOP blocked on the server", func() bool {
		info, err := srv.Do("INFO", "clients")
		s, _ := info.(string)
		return err == nil && strings.Contains(s, "blocked_clients:1")
	})
	return pop
}

// fireSets fires perWorker SETs from each of workers goroutines, keys
// prefix:worker:n, and returns their futures once all are fired.
func fireSets(ctx context.Context, eng *engine.Engine, prefix string, workers, perWorker int) []*futures.Future[struct{}] {
	fs := make([][]*futures.Future[struct{}], workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for j := range perWorker {
				fs[i] = append(fs[i], eng.Set(ctx, fmt.Sprintf("%s:%d:%d", prefix, i, j), "v", 0))
			}
		})
	}
	wg.Wait()
	var all []*futures.Future[struct{}]
	for _, f := range fs {
		all = append(all, f...)
	}
	return all
}

// closeStalledMax bounds Close with DrainTimeout 0 against a stalled
// server, with thousands of commands to fail. valkey-go's close of a
// connection sends a PING and waits up to 1 s for its reply (then closes
// the socket): the driver closes its sockets first, so that no close
// waits (TestCloseStalledServerIdle bounds that alone), and Close closes
// its connections (the connection actors', the batch writer's, the Tx
// and Dedicated pools') all at once. Before, it took that second once,
// and once per connection before that.
const closeStalledMax = 1800 * time.Millisecond

// Close with the default config (DrainTimeout 5 s) against a stalled
// server (SIGSTOP) while nothing is in flight: the connection actors,
// an idle Tx and Dedicated connection and a subscription's two sockets
// close without waiting for the server: in less than
// enginetest.CloseIdleStalledMax.
// Before, Close took at least the second valkey-go's close waits for a
// PING reply (the driver closed only its pooled connections' sockets
// first).
func TestCloseStalledServerIdle(t *testing.T) {
	srv := valkeytest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	if err := eng.Set(ctx, "si:k", "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	tx := eng.Tx()
	tx.Incr("si:n")
	if err := tx.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		_, err := c.Do(ctx, "PING")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	sub, err := eng.Subscribe(ctx, "si:chan")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Resume() }()
	enginetest.CloseIdleStalled(t, ctx, eng, srv.Resume)
	if err := sub.Close(); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Subscription.Close after the engine's Close: %v, want ErrClosed", err)
	}
}

// The same in cluster mode, one primary stalled (every primary dialled),
// and in sentinel mode, the primary stalled.
func TestCloseStalledNodeIdleClusterSentinel(t *testing.T) {
	t.Run("cluster", func(t *testing.T) {
		c := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{ReplicasPerPrimary: -1, NodeTimeout: time.Minute})
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		ctx := ctxT(t)
		eng := engineOn(t, config.DefaultConfig().WithAddrs(c.Addrs()[0]).WithClusterMode(true))
		for _, n := range c.Primaries() {
			if err := eng.Set(ctx, keyOn(t, c, n), "0", 0).Err(ctx); err != nil {
				t.Fatal(err)
			}
		}
		p := c.Primaries()[1]
		if err := p.Pause(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = p.Resume() }()
		enginetest.CloseIdleStalled(t, ctx, eng, p.Resume)
	})
	t.Run("sentinel", func(t *testing.T) {
		s := valkeytest.StartSentinelT(t, valkeytest.SentinelOptions{DownAfter: time.Minute})
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		ctx := ctxT(t)
		eng := engineOn(t, config.DefaultConfig().WithSentinel(s.MasterName(), s.Addrs()...))
		if err := eng.Set(ctx, "si:k", "v", 0).Err(ctx); err != nil {
			t.Fatal(err)
		}
		p, err := s.Primary()
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Pause(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = p.Resume() }()
		enginetest.CloseIdleStalled(t, ctx, eng, p.Resume)
	})
}

// closeZeroDrain closes eng and fails the test unless, right when Close
// returns, every future of fs, pop and txIncr (and extra more) and every
// item of w are complete, and Close took less than closeStalledMax. It
// returns how long Close took, the writer's stats and Close's error.
func closeZeroDrain(t *testing.T, eng *engine.Engine, w *engine.BatchWriter, reported func() int,
	fs []*futures.Future[struct{}], pop *futures.Future[engine.Reply], txIncr *futures.Future[int64], extra func() int,
) (time.Duration, engine.BatchWriterStats, error) {
	t.Helper()
	start := time.Now()
	closeErr := eng.Close()
	took := time.Since(start)
	pending := pendingFutures(fs) + pendingFutures([]*futures.Future[engine.Reply]{pop}) + pendingFutures([]*futures.Future[int64]{txIncr})
	if extra != nil {
		pending += extra()
	}
	st := w.Stats()
	if pending > 0 || st.Pending > 0 {
		t.Fatalf("Close (DrainTimeout 0, %s, err %v) returned with %d of %d futures pending and %d writer items (%s)",
			took, closeErr, pending, len(fs)+2, st.Pending, st)
	}
	bwCheckDone(t, st, reported())
	if took >= closeStalledMax {
		t.Errorf("Close (DrainTimeout 0) took %s against a stalled server, want < %s: it closed its connections one after another (err %v)",
			took, closeStalledMax, closeErr)
	}
	return took, st, closeErr
}

// flushedWriter returns a batch writer on eng, with its OnError reports,
// that has written and flushed n keys prefix:bw:0 and on.
func flushedWriter(t *testing.T, ctx context.Context, eng *engine.Engine, prefix string, n int) (*engine.BatchWriter, *bwErrors) {
	t.Helper()
	bwErrs := &bwErrors{}
	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{OnError: bwErrs.on})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := w.Set(ctx, fmt.Sprintf("%s:bw:%d", prefix, i), "v", 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return w, bwErrs
}

// closeTxStalled waits until a Tx.Exec (exec) holds a connection and
// commands are written to the stalled primary, closes eng as
// closeZeroDrain does, waits for the Exec to fail, resumes the primary and
// checks that no goroutine is left.
func closeTxStalled(t *testing.T, eng *engine.Engine, w *engine.BatchWriter, bwErrs *bwErrors,
	fs []*futures.Future[struct{}], pop *futures.Future[engine.Reply], txIncr *futures.Future[int64],
	exec <-chan error, resume func() error, snapshot goleak.Option,
) {
	t.Helper()
	waitCond(t, 10*time.Second, "the Tx.Exec on its connection", func() bool { used, _ := poolUsed(eng, engine.PoolTx); return used >= 1 })
	waitCond(t, 10*time.Second, "commands written to the stalled primary", func() bool { return eng.Stats().InFlight > 0 })
	took, st, closeErr := closeZeroDrain(t, eng, w, bwErrs.len, fs, pop, txIncr, nil)
	execFailed(t, exec)
	if err := resume(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, snapshot)
	t.Logf("Close in %s: %v; writer %s", took, closeErr, st)
}

// execFailed waits (5 s at most) for a Tx.Exec on a stalled server to
// return, with an error.
func execFailed(t *testing.T, exec <-chan error) {
	t.Helper()
	select {
	case err := <-exec:
		if err == nil {
			t.Error("Tx.Exec on the stalled primary succeeded")
		}
		t.Logf("Tx.Exec: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("Tx.Exec still runs 5 s after Close returned")
	}
}

// Close with DrainTimeout 0 of a standalone engine whose server is stalled
// (SIGSTOP): commands queued and written behind it on 2 connection actors,
// a BLPOP on the server, a batch writer with queued and written items on
// its 2 connections, a Tx.Exec, a Watch and a Dedicated call waiting on
// the server (one of them dialling it), an idle Dedicated connection and a
// subscription. When Close returns, without waiting, no future is pending
// (the transaction's included) and no item of the writer; Close did not
// wait for the dial, nor for each connection's close in turn (each waits
// up to 1 s for the stalled server, the subscription's two sockets
// included: Close takes less than closeStalledMax); the calls in progress
// return with an error; the subscription has ended; no goroutine is left.
func TestCloseZeroDrainStalledServer(t *testing.T) {
	srv := valkeytest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := ctxT(t)
	// A dial of the stalled server hangs (its handshake unanswered) for
	// the dial or the read timeout: Close must not wait for it.
	const dialTimeout = 20 * time.Second
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithDrainTimeout(0).WithPoolSize(2).
		WithDialTimeout(dialTimeout).WithReadTimeout(dialTimeout))
	// An idle connection in each pool.
	warm := eng.Tx()
	warm.Set("st:tx", "0", 0)
	if err := warm.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	// Two in the Dedicated pool: two calls hold a connection at once.
	var lent sync.WaitGroup
	lent.Add(2)
	warmDed := make(chan error, 2)
	for range 2 {
		go func() {
			warmDed <- eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
				lent.Done()
				lent.Wait()
				_, err := c.Do(ctx, "PING")
				return err
			})
		}()
	}
	for range 2 {
		if err := <-warmDed; err != nil {
			t.Fatal(err)
		}
	}
	// Enough keys that both of the writer's connections (ConnsPerNode 2,
	// keys spread by hash) are open.
	w, bwErrs := flushedWriter(t, ctx, eng, "st", 20)
	if c := w.Stats().Connects; c != 2 {
		t.Fatalf("the batch writer opened %d connections, want 2", c)
	}
	if _, idle := poolUsed(eng, engine.PoolDedicated); idle != 2 {
		t.Fatalf("%d idle connections in the Dedicated pool, want 2", idle)
	}
	pop := blockedPop(t, ctx, eng, srv, "st:never")
	// A subscription: its connection has two sockets (the driver's
	// pub/sub one and the one it dialled first), each of whose closes
	// waited for the stalled server before the driver closed its
	// sockets first.
	sub, err := eng.Subscribe(ctx, "st:chan")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Resume() }()

	// Calls in progress on the stalled server.
	calls := make(chan error, 3)
	tx := eng.Tx()
	txIncr := tx.Incr("st:tx")
	go func() { calls <- fmt.Errorf("Tx.Exec: %w", tx.Exec(ctx)) }()
	var watchIncr atomic.Pointer[futures.Future[int64]]
	go func() {
		calls <- fmt.Errorf("Watch: %w", eng.Watch(ctx, func(tx *engine.Tx) error {
			watchIncr.Store(tx.Incr("st:tx"))
			return nil
		}, "st:tx"))
	}()
	go func() {
		calls <- fmt.Errorf("Dedicated: %w", eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
			_, err := c.Do(ctx, "PING")
			return err
		}))
	}()
	// Commands fired by many goroutines, and writer items.
	fs := fireSets(ctx, eng, "st", 8, 2000)
	for i := range 5000 {
		if err := w.Set(ctx, fmt.Sprintf("st:bw:%d", i), "v", 0); err != nil {
			t.Fatal(err)
		}
	}
	waitCond(t, 10*time.Second, "the Tx, Watch and Dedicated calls on their connections", func() bool {
		tx, _ := poolUsed(eng, engine.PoolTx)
		ded, _ := poolUsed(eng, engine.PoolDedicated)
		return tx >= 2 && ded >= 1
	})
	waitCond(t, 10*time.Second, "commands written to the stalled server", func() bool { return eng.Stats().InFlight > 0 })

	took, st, closeErr := closeZeroDrain(t, eng, w, bwErrs.len, fs, pop, txIncr, func() int {
		if f := watchIncr.Load(); f != nil && !f.IsDone() {
			return 1
		}
		return 0
	})
	if took > dialTimeout/4 {
		t.Errorf("Close took %s with DrainTimeout 0: it waited for a dial (DialTimeout %s)", took, dialTimeout)
	}
	if _, err := pop.Await(ctx); !errors.Is(err, engine.ErrOutcomeUnknown) || errors.Is(err, engine.ErrClosed) {
		// Written (blocked on the server), then cut: the server may have
		// popped an item for it (ErrClosed says it never ran).
		t.Errorf("BLPOP blocked on the server, cut by Close: %v, want ErrOutcomeUnknown", err)
	}
	if err := sub.Close(); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Subscription.Close after the engine's Close: %v, want ErrClosed (the engine's Close ended it)", err)
	}
	for range 3 {
		select {
		case err := <-calls:
			if errors.Unwrap(err) == nil {
				t.Errorf("%v: nil error, want one", err)
			}
			t.Logf("%v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("a Tx, Watch or Dedicated call still runs 5 s after Close returned")
		}
	}
	t.Logf("Close in %s: %v; writer %s", took, closeErr, st)
}

// Sentinel mode: Close with DrainTimeout 0 while the primary is stalled
// (SIGSTOP), with commands queued and written to it, a BLPOP on it, a
// Tx.Exec waiting on it and batch-writer items queued: when Close
// returns, without waiting, no future and no writer item is pending, the
// Exec returns, and no goroutine is left.
func TestSentinelCloseZeroDrainStalledPrimary(t *testing.T) {
	s := valkeytest.StartSentinelT(t, valkeytest.SentinelOptions{DownAfter: time.Minute})
	snapshot := goleak.IgnoreCurrent()
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithSentinel(s.MasterName(), s.Addrs()...).WithDrainTimeout(0))
	p, err := s.Primary()
	if err != nil {
		t.Fatal(err)
	}
	warm := eng.Tx()
	warm.Set("sp:tx", "0", 0)
	if err := warm.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	w, bwErrs := flushedWriter(t, ctx, eng, "sp", 1)
	pop := blockedPop(t, ctx, eng, p, "sp:never")
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Resume() }()
	tx := eng.Tx()
	txIncr := tx.Incr("sp:tx")
	exec := make(chan error, 1)
	go func() { exec <- tx.Exec(ctx) }()
	fs := []*futures.Future[struct{}]{}
	for i := range 4000 {
		fs = append(fs, eng.Set(ctx, fmt.Sprint("sp:", i), "v", 0))
		if err := w.Set(ctx, fmt.Sprint("sp:bw:", i), "v", 0); err != nil {
			t.Fatal(err)
		}
	}
	closeTxStalled(t, eng, w, bwErrs, fs, pop, txIncr, exec, p.Resume, snapshot)
}

// Cluster mode: Close with DrainTimeout 0 while a dialled primary is
// stalled (SIGSTOP), with commands queued and written to it and to the
// others, a BLPOP on it, a Tx.Exec waiting on it and batch-writer items
// queued for every primary: when Close returns, without waiting, no
// future and no writer item is pending, and no goroutine is left.
func TestClusterCloseZeroDrainStalledNode(t *testing.T) {
	c := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{ReplicasPerPrimary: -1, NodeTimeout: time.Minute})
	snapshot := goleak.IgnoreCurrent()
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(c.Addrs()[0]).WithClusterMode(true).WithDrainTimeout(0))
	p := c.Primaries()[1]
	key := keyOn(t, c, p)
	for _, n := range c.Primaries() { // every primary dialled
		if err := eng.Set(ctx, keyOn(t, c, n), "0", 0).Err(ctx); err != nil {
			t.Fatal(err)
		}
	}
	w, bwErrs := flushedWriter(t, ctx, eng, "cs", 100)
	pop := blockedPop(t, ctx, eng, p, "{"+key+"}never")
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Resume() }()
	tx := eng.Tx()
	txIncr := tx.Incr(key)
	exec := make(chan error, 1)
	go func() { exec <- tx.Exec(ctx) }()
	fs := fireSets(ctx, eng, "cs", 8, 2000)
	for i := range 4000 {
		if err := w.Set(ctx, fmt.Sprint("cs:bw:", i), "v", 0); err != nil {
			t.Fatal(err)
		}
	}
	closeTxStalled(t, eng, w, bwErrs, fs, pop, txIncr, exec, p.Resume, snapshot)
}

// heldCtx holds the first call of its Err until released: Pipeline.Exec
// and Tx.Exec call Err right after they found the engine open, so a test
// can hold an Exec there while Close runs.
type heldCtx struct {
	context.Context
	once    sync.Once
	in      chan struct{} // closed when Err is first called
	release chan struct{}
}

func newHeldCtx() *heldCtx {
	return &heldCtx{Context: context.Background(), in: make(chan struct{}), release: make(chan struct{})}
}

func (c *heldCtx) Err() error {
	c.once.Do(func() {
		close(c.in)
		<-c.release
	})
	return c.Context.Err()
}

// An Exec called before Close, and still between its check that the
// engine is open and the hand-over of its commands, has its futures
// complete when Close returns: Close waits for it (it posts to closed
// mailboxes, or asks a closed pool, and fails them with ErrClosed).
// Before, Close returned at once and the futures completed afterwards.
//
// With a PreExecution hook configured, an Exec enters with its goroutine's
// id (Close does not wait for the Execs of its own goroutine, where a hook
// called it): Close still waits for another goroutine's.
func TestCloseWaitsForExecInProgress(t *testing.T) {
	srv := valkeytest.Start(t)
	for _, kind := range []string{"pipeline", "tx", "pipeline-hooked", "tx-hooked"} {
		t.Run(kind, func(t *testing.T) {
			cfg := config.DefaultConfig().WithAddrs(srv.Addr())
			if strings.HasSuffix(kind, "-hooked") {
				cfg = cfg.WithHooks(&scPreCloser{}) // closes nothing: no command is marked
				kind = strings.TrimSuffix(kind, "-hooked")
			}
			eng := engineOn(t, cfg)
			var (
				fs   []*futures.Future[struct{}]
				exec func(context.Context) error
			)
			if kind == "pipeline" {
				p := eng.Pipeline()
				for i := range 3 {
					fs = append(fs, p.Set(fmt.Sprintf("cw:%s:%d", kind, i), "v", 0))
				}
				exec = p.Exec
			} else {
				tx := eng.Tx()
				for i := range 3 {
					fs = append(fs, tx.Set(fmt.Sprintf("{cw}:%s:%d", kind, i), "v", 0))
				}
				exec = tx.Exec
			}
			hc := newHeldCtx()
			execErr := make(chan error, 1)
			go func() { execErr <- exec(hc) }()
			<-hc.in // the Exec found the engine open; it is held there
			pendingAtClose := make(chan int, 1)
			go func() {
				_ = eng.Close()
				pendingAtClose <- pendingFutures(fs)
			}()
			// Close must not return while the Exec is held. Close of an idle
			// engine takes milliseconds: a second says it is waiting.
			select {
			case n := <-pendingAtClose:
				close(hc.release)
				t.Fatalf("Close returned while an Exec called before it was in progress (%d of %d futures pending)", n, len(fs))
			case <-time.After(time.Second):
			}
			close(hc.release)
			if n := <-pendingAtClose; n > 0 {
				t.Fatalf("%d of %d futures pending when Close returned", n, len(fs))
			}
			if err := <-execErr; !errors.Is(err, engine.ErrClosed) {
				t.Fatalf("Exec: %v, want ErrClosed", err)
			}
			for i, f := range fs {
				if err := f.Err(context.Background()); !errors.Is(err, engine.ErrClosed) {
					t.Fatalf("future %d: %v, want ErrClosed", i, err)
				}
			}
		})
	}
}

// Cluster mode: Close with DrainTimeout 0 while the Tx and Dedicated pools
// are still closing their idle connections to a former primary that is
// stalled (SIGSTOP). The slot map that retired the node came in just
// before Close: Close waits for those closes, which each wait up to 1 s for
// the stalled node. The pools close them all at once, so that Close takes
// less than closeStalledMax, not a second per connection; no future is
// pending when it returns and no goroutine is left.
func TestClusterCloseRetiringStalledFormerPrimary(t *testing.T) {
	c := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{NodeTimeout: time.Minute})
	snapshot := goleak.IgnoreCurrent()
	ctx := ctxT(t)
	// The map reloads only when the test has it (a MOVED): a periodic
	// reload could retire the node before it is stalled.
	eng := engineOn(t, config.DefaultConfig().WithAddrs(c.Addrs()[0]).WithClusterMode(true).
		WithDrainTimeout(0).WithClusterRefreshInterval(0))
	old, next := c.Primaries()[0], c.Replicas()[0] // StartCluster: the replicas of primary 0, 1, ... in turn
	from, to := c.Primaries()[1], c.Primaries()[2]
	key := keyOn(t, c, old)
	moved := keyOn(t, c, from)
	for _, n := range c.Primaries() { // every primary dialled
		if err := eng.Set(ctx, keyOn(t, c, n), "0", 0).Err(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// perPool connections of each pool to the primary, held at once and
	// given back: idle.
	const perPool = 3
	var held, ready sync.WaitGroup
	held.Add(2 * perPool)
	release := make(chan struct{})
	errs := make(chan error, 2*perPool)
	for range perPool {
		ready.Go(func() {
			errs <- eng.Watch(ctx, func(*engine.Tx) error {
				held.Done()
				<-release
				return nil
			}, key)
		})
		ready.Go(func() {
			errs <- eng.DedicatedFor(ctx, key, func(*engine.DedicatedConn) error {
				held.Done()
				<-release
				return nil
			})
		})
	}
	held.Wait()
	close(release)
	ready.Wait()
	for range 2 * perPool {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	idleOld := func(open, idle map[string]int) bool { return idle[old.Addr()] == perPool }
	waitPools(t, eng, 0, "idle connections to the primary", idleOld)

	// The primary becomes a replica, and a slot of another primary moves:
	// the engine knows neither yet.
	if err := c.Failover(next); err != nil {
		t.Fatalf("Failover: %v", err)
	}
	slot := valkeytest.HashSlot(moved)
	if err := c.MigrateSlots(from, to, []int{slot}); err != nil {
		t.Fatalf("MigrateSlots: %v", err)
	}
	waitPools(t, eng, 0, "idle connections to the former primary before the map reloads", idleOld)
	if err := old.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = old.Resume() }()
	// MOVED: the engine reloads the map, which has the pools close their
	// idle connections to the former primary.
	set := eng.Set(ctx, moved, "1", 0)
	waitPools(t, eng, 10*time.Second, "the former primary's idle connections retired", func(open, idle map[string]int) bool {
		return idle[old.Addr()] == 0 && open[old.Addr()] == 0
	})
	start := time.Now()
	closeErr := eng.Close()
	took := time.Since(start)
	if !set.IsDone() {
		t.Fatal("the SET redirected by MOVED is still pending after Close")
	}
	if took >= closeStalledMax {
		t.Errorf("Close (DrainTimeout 0) took %s while the pools closed %d connections each to a stalled former primary, want < %s: they closed them one after another (err %v)",
			took, perPool, closeStalledMax, closeErr)
	}
	if err := old.Resume(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, snapshot)
	t.Logf("Close in %s: %v", took, closeErr)
}
