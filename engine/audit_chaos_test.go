package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
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
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/policies"
	"github.com/vactor-io/vactor/valkeytest"
)

// The chaos audit ("Jepsen-lite"): workers drive every public API of a
// standalone engine with the default configuration while a fault
// injector cycles through proxy resets, latency, a blackhole, the proxy
// down and up, and kill -9 + restart of the server (AOF, appendfsync
// always). Then the faults stop and the test checks what the engine
// promises (docs/api.md, docs/reliability.md, DESIGN rules 2-4):
//
//  1. every future completes, at the latest a bounded time after the
//     faults stopped (every command here has a deadline);
//  2. from one goroutine, completion order is issue order, and what the
//     server saw is consistent with it: a GET never sees a value older
//     than an acknowledged later write, nor one written after it; the
//     INCRs of a counter that succeeded return increasing values; the
//     subscriber gets the published numbers in increasing order;
//  3. counters: succeeded <= final value <= succeeded + may-have-run;
//     commands failed with an error that says "not sent" (ErrCircuitOpen,
//     ErrBackpressure, ErrClosed, ErrDiscarded, ErrPoolExhausted,
//     ErrTxAborted, a retryable error, a "transaction not executed", a
//     *ConnectError: its connection could not be opened) are
//     not applied, acknowledged writes are there;
//  4. nothing is applied twice (per-operation INCR keys stay <= 1, no
//     published number arrives twice);
//  5. after the faults, the engine serves within CircuitBreakerOpenTimeout
//     + 2s, the subscriber receives again (with one Disconnected and one
//     Resubscribed per outage), the consumer handles every acknowledged
//     entry, the batch writer settles every write;
//  6. after Close no goroutine is left and nothing panicked.
//
// A command failed by its own context may have run (docs/api.md: ctx
// ends the future at its deadline whatever the actor is doing, also after
// the command was written), so context errors count as "may have run",
// and such a future is exempt from the completion-order check (it ends
// at its deadline, by design, whatever was issued before it), as is an
// earlier future whose context had ended before the later one completed.
//
// Found by it: a command refused because its node's breaker is open could
// complete before commands of its goroutine queued before it (see
// TestBreakerOpenKeepsOrder, TestBreakerOpenWaitsForConcurrentFail).
//
// The run is randomised; the seed is logged. VACTOR_CHAOS_SEED=<seed>
// replays the same choices (the timing still differs).
func TestAuditChaos(t *testing.T) {
	seed := chaosSeed(t)
	t.Logf("seed %d (replay: VACTOR_CHAOS_SEED=%d)", seed, seed)

	srv := valkeytest.Start(t, valkeytest.Options{AppendOnly: true})
	px := valkeytest.ProxyFor(t, srv.Addr())
	// The server and the proxy are stopped at cleanup, after this check;
	// the proxy's listener after Enable and the server's process after
	// Restart are theirs, not the engine's.
	defer noLeakWithin(t, lingerDial, goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/vactor-io/vactor/valkeytest.(*Proxy).accept"),
		goleak.IgnoreAnyFunction("github.com/vactor-io/vactor/valkeytest.startProcess.func1"))

	cfg, logs := withLogCheck(t, config.DefaultConfig().WithAddrs(px.Addr()))
	openCtx, cancelOpen := context.WithTimeout(context.Background(), 10*time.Second)
	eng, err := engine.New(openCtx, cfg)
	cancelOpen()
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = eng.Close()
		}
	}()
	ctx := ctxT(t)

	c := &chaos{t: t, eng: eng, seed: seed, stop: make(chan struct{}), onePool: cfg.PoolSize == 1}
	wg := c.startWorkload(ctx, 4)

	// Faults, on this goroutine.
	faults := c.injectFaults(srv, px, 5*time.Second, cfg.CircuitBreakerOpenTimeout+3*time.Second)
	faultsStopped := time.Now()
	close(c.stop)
	t.Logf("faults: %s", faults)

	c.verify(ctx, wg, faultsStopped, cfg.CircuitBreakerOpenTimeout+2*time.Second, logs)
	closed = true
}

// startWorkload starts the subscriber, the stream consumer, the batch
// writer and the workers (nFutures futures workers among them); the
// workers return once c.stop is closed (or their operations are used
// up).
func (c *chaos) startWorkload(ctx context.Context, nFutures int) *sync.WaitGroup {
	c.startSubscriber(ctx)
	c.startConsumer(ctx)
	c.startWriter()
	wg := new(sync.WaitGroup)
	for w := range nFutures {
		wg.Go(func() { c.futuresWorker(w) })
	}
	wg.Go(func() { c.pipelineWorker(10) })
	wg.Go(func() { c.txWorker(11) })
	wg.Go(func() { c.syncWorker(12) })
	wg.Go(func() { c.publisher(13) })
	wg.Go(func() { c.producer(14) })
	wg.Go(func() { c.writerWorker(15) })
	return wg
}

// verify runs the checks once the faults stopped (at faultsStopped, with
// c.stop closed): the engine serves within recoverBound, then invariants
// 1-5, then it closes the engine and checks 6 (nothing panicked; the
// caller checks the goroutines).
func (c *chaos) verify(ctx context.Context, wg *sync.WaitGroup, faultsStopped time.Time, recoverBound time.Duration, logs *logCheck) {
	t, eng := c.t, c.eng
	// 5: serving again within the documented bound.
	d := enginetest.WaitServing(t, eng, recoverBound)
	t.Logf("serving again %s after the faults stopped (bound %s)", d, recoverBound)

	// 1: every future completes. Every command has a deadline of at most
	// 2s, and none is written past it.
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()
	select {
	case <-workersDone:
	case <-time.After(10 * time.Second):
		t.Fatal("invariant 1: workers still blocked in calls 10s after the faults stopped")
	}
	c.awaitAll(faultsStopped.Add(5 * time.Second))

	c.checkWriter(ctx)
	c.checkSubscriber(ctx, 5*time.Second)
	c.checkConsumer(ctx, 8*time.Second)
	c.checkOrder()
	c.checkKeys(ctx)

	st := eng.Stats()
	t.Logf("stats: reconnects %d, retries %d, outcome unknown %d, sub reconnects %d, breaker changes %d",
		st.Reconnects, st.Retries, st.OutcomeUnknown, st.SubReconnects, logs.Count(hooks.MsgBreakerChanged))
	t.Logf("outcomes: %s", c.tally())

	// 6: Close, then nothing panicked and no goroutine is left (the
	// deferred check).
	start := time.Now()
	if err := eng.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	t.Logf("Close took %s", time.Since(start))
	if st.SubPanics != 0 {
		t.Errorf("%d subscriber handler panics", st.SubPanics)
	}
	for _, msg := range []string{hooks.MsgSubPanicked, hooks.MsgWriterPanicked, hooks.MsgHookPanicked} {
		if n := logs.Count(msg); n != 0 {
			t.Errorf("%d %q log lines: something panicked", n, msg)
		}
	}
	for _, l := range logs.Lines() {
		if strings.Contains(strings.ToLower(l.Text), "panic") {
			t.Errorf("a log line mentions a panic: %s", l.Text)
			break
		}
	}
}

// chaosSeed is VACTOR_CHAOS_SEED, or the time.
func chaosSeed(t *testing.T) uint64 {
	if s := os.Getenv("VACTOR_CHAOS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("VACTOR_CHAOS_SEED: %v", err)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

// chaosResult is what a command's result says about whether it ran.
type chaosResult uint8

const (
	ran      chaosResult = iota // succeeded (or an error reply: it reached the server)
	notRun                      // failed with an error that promises it did not run
	maybeRan                    // may or may not have run
)

// chaosOutcome classifies err; unclassified reports an error the engine's
// docs do not name for these commands (counted as maybeRan).
func chaosOutcome(err error) (o chaosResult, unclassified bool) {
	var (
		se *engine.ServerError
		ce *engine.ConnectError
	)
	switch {
	case err == nil, errors.Is(err, engine.ErrNil):
		return ran, false
	case errors.Is(err, engine.ErrOutcomeUnknown), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// ErrOutcomeUnknown first: a written command failed by the
		// breaker is ErrOutcomeUnknown wrapping ErrCircuitOpen.
		return maybeRan, false
	case errors.Is(err, engine.ErrCircuitOpen), errors.Is(err, engine.ErrBackpressure), errors.Is(err, engine.ErrClosed),
		errors.Is(err, engine.ErrDiscarded), errors.Is(err, engine.ErrInvalidArgument), errors.Is(err, engine.ErrPoolExhausted),
		errors.Is(err, engine.ErrTxAborted), errors.Is(err, errWatchFn), policies.IsRetryable(err),
		strings.Contains(err.Error(), "transaction not executed"):
		return notRun, false
	case errors.As(err, &se):
		// An error reply: the server refused the command.
		return notRun, false
	case errors.As(err, &ce):
		// The connection it was for could not be opened (Tx, Watch).
		return notRun, false
	}
	return maybeRan, true
}

// errWatchFn wraps the error of a read in a Watch function: the function
// returned it, so Watch sent nothing of what it queued.
var errWatchFn = errors.New("chaos: watch function failed")

// result is a command's result, read once it completed.
type result interface {
	Done() <-chan struct{}
	IsDone() bool
	Err(ctx context.Context) error
}

// done is the result of a synchronous call.
func done(err error) result {
	if err != nil {
		return futures.Failed[struct{}](err)
	}
	return futures.Completed(struct{}{})
}

// rec is a write whose effect the end checks look for.
type rec struct {
	key, val string // val "" for INCR: the key must hold at most "1"
	res      result
	what     string
	at       time.Time // issued
}

// counter is a key only INCRed (by 1) by one goroutine: each INCR's
// result and, for those that succeeded, its reply.
type counter struct {
	key     string
	results []result
	replies []*futures.Future[int64] // nil for results without a reply (Tx, Watch)
	at      []time.Time              // when each was issued
}

// add records an INCR issued at at.
func (ctr *counter) add(r result, reply *futures.Future[int64], at time.Time) {
	ctr.results = append(ctr.results, r)
	ctr.replies = append(ctr.replies, reply)
	ctr.at = append(ctr.at, at)
}

// orderOp is one command on a worker's order key, in issue order.
type orderOp struct {
	kind byte // 'S' SET, 'D' DEL, 'G' GET
	val  string
	set  result
	get  *futures.Future[string]
	at   time.Time // issued
}

// burst is a run of futures one goroutine issued without waiting, when
// each one's context ended (unix ns; 0: not yet or never), and the pairs
// (j issued before i) seen with i complete while j was not.
type burst struct {
	fs       []result
	keys     []string // each one's key
	ends     []*atomic.Int64
	mu       sync.Mutex
	inverted []inversion
}

type inversion struct {
	j, i int
	at   time.Time // i was complete, j not
}

// ctxEnd returns when ctx ends if it has a deadline or has ended: the
// caller stores the time it cancels it.
func ctxEnd(ctx context.Context) *atomic.Int64 {
	e := new(atomic.Int64)
	if ctx.Err() != nil {
		e.Store(time.Now().UnixNano())
	} else if d, ok := ctx.Deadline(); ok {
		e.Store(d.UnixNano())
	}
	return e
}

type chaos struct {
	t   *testing.T
	eng *engine.Engine
	// onePool: one connection carries everything (PoolSize 1), so all of
	// a goroutine's commands keep their order, not only those of one key
	// (engine/doc.go, Order).
	onePool bool
	// lossy, when set, reports whether a write issued at the given time
	// may be missing although it was acknowledged (sentinel mode: a
	// primary killed after acknowledging it; replication is
	// asynchronous); the checks then ask nothing of its presence. nil:
	// none may be (standalone: AOF, appendfsync always).
	lossy func(issued time.Time) bool
	// writerLossy is lossy for the batch writer (sentinel mode: the same
	// rule, counting the writer's writes found missing); nil: as lossy.
	writerLossy func(queued time.Time) bool
	seed        uint64
	stop        chan struct{}
	seq         atomic.Int64

	mu       sync.Mutex
	recs     []rec
	counters []*counter
	orders   [][]orderOp
	bursts   []*burst
	all      []result
	watchers sync.WaitGroup // the completion-order watchers
	unclass  map[string]int

	// subscriber
	sub       *engine.Subscription
	subDone   chan struct{}
	subMu     sync.Mutex
	subSeqs   []int
	subEvents []engine.SubEventKind
	subMarker chan struct{}
	published atomic.Int64

	// consumer
	consumer *engine.Consumer
	conMu    sync.Mutex
	handled  map[string]int
	xacked   []string
	xackedAt []time.Time // when each of xacked was issued

	// batch writer
	writer    *engine.BatchWriter
	wMu       sync.Mutex
	wFailed   map[string]error
	wWritten  []string
	wAt       []time.Time // when each of wWritten was queued
	wNotQueue map[string]error
}

// mayLose reports whether a write issued at at may be missing (lossy).
func (c *chaos) mayLose(at time.Time) bool { return c.lossy != nil && c.lossy(at) }

// writerMayLose is mayLose for the batch writer.
func (c *chaos) writerMayLose(at time.Time) bool {
	if c.writerLossy != nil {
		return c.writerLossy(at)
	}
	return c.mayLose(at)
}

func (c *chaos) stopped() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

func (c *chaos) rng(w int) *rand.Rand { return rand.New(rand.NewPCG(c.seed, uint64(w))) }

func (c *chaos) key(prefix string) string { return prefix + ":" + strconv.FormatInt(c.seq.Add(1), 10) }

// cmdCtx returns a context for one command: often a deadline between 1ms
// and 2s, sometimes cancelled before the command is issued, sometimes
// right after (cancelAfter). release frees it once the command completed.
func cmdCtx(rng *rand.Rand) (ctx context.Context, release context.CancelFunc, cancelAfter bool) {
	switch r := rng.IntN(100); {
	case r < 8:
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx, cancel, false
	case r < 16:
		ctx, cancel := context.WithCancel(context.Background())
		return ctx, cancel, true
	case r < 36:
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(1+rng.IntN(10))*time.Millisecond)
		return ctx, cancel, false
	case r < 56:
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(10+rng.IntN(90))*time.Millisecond)
		return ctx, cancel, false
	default:
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(200+rng.IntN(1800))*time.Millisecond)
		return ctx, cancel, false
	}
}

// track records results for the completion check, and a burst's order.
func (c *chaos) track(b *burst, rs ...result) {
	c.mu.Lock()
	c.all = append(c.all, rs...)
	if b != nil {
		c.bursts = append(c.bursts, b)
	}
	c.mu.Unlock()
}

// watch starts, for each future of b, a watcher that records which
// earlier futures were still pending when it completed.
func (c *chaos) watch(b *burst) {
	for i, f := range b.fs {
		c.watchers.Go(func() {
			<-f.Done()
			at := time.Now()
			for j := range i {
				if !b.fs[j].IsDone() && (c.onePool || b.keys[j] == b.keys[i]) {
					b.mu.Lock()
					b.inverted = append(b.inverted, inversion{j: j, i: i, at: at})
					b.mu.Unlock()
				}
			}
		})
	}
}

// releaseWhenDone calls release once f completed (so that the deadline
// of a pending command is not cut short).
func releaseWhenDone(f result, release context.CancelFunc) {
	if f.IsDone() {
		release()
		return
	}
	go func() {
		<-f.Done()
		release()
	}()
}

// pace sleeps 1 to most milliseconds between a worker's rounds: pacing
// while commands fail fast, not synchronisation.
func (c *chaos) pace(rng *rand.Rand, most int) {
	time.Sleep(time.Duration(1+rng.IntN(most)) * time.Millisecond)
}

const maxBursts = 4000

// futuresWorker fires bursts of SET (unique keys), INCR (per-operation
// keys and the worker's counter), SET/GET/DEL of the worker's order key
// and Do, without waiting, each with its own context.
func (c *chaos) futuresWorker(w int) {
	rng := c.rng(w)
	ctr := &counter{key: fmt.Sprintf("chaos:ctr:%d", w)}
	orderKey := fmt.Sprintf("chaos:order:%d", w)
	var order []orderOp
	defer func() {
		c.mu.Lock()
		c.counters = append(c.counters, ctr)
		c.orders = append(c.orders, order)
		c.mu.Unlock()
	}()
	for n := 0; n < maxBursts && !c.stopped(); n++ {
		b := &burst{}
		var recs []rec
		for range 1 + rng.IntN(12) {
			ctx, release, cancelAfter := cmdCtx(rng)
			var f result
			var k string // the command's key
			now := time.Now()
			switch op := rng.IntN(9); op {
			case 0:
				k = c.key("chaos:set")
				v := "v" + k
				f = c.eng.Set(ctx, k, v, 0)
				recs = append(recs, rec{key: k, val: v, res: f, what: "Set", at: now})
			case 1:
				k = c.key("chaos:incr")
				f = c.eng.Incr(ctx, k)
				recs = append(recs, rec{key: k, res: f, what: "Incr", at: now})
			case 2:
				k = c.key("chaos:do")
				f = c.eng.Do(ctx, "INCR", k)
				recs = append(recs, rec{key: k, res: f, what: "Do INCR", at: now})
			case 3:
				k = c.key("chaos:doset")
				v := "v" + k
				f = c.eng.Do(ctx, "SET", k, v)
				recs = append(recs, rec{key: k, val: v, res: f, what: "Do SET", at: now})
			case 4:
				k = ctr.key
				fi := c.eng.Incr(ctx, ctr.key)
				ctr.add(fi, fi, now)
				f = fi
			case 5, 6:
				k = orderKey
				v := c.key("o")
				f = c.eng.Set(ctx, orderKey, v, 0)
				order = append(order, orderOp{kind: 'S', val: v, set: f, at: now})
			case 7:
				k = orderKey
				g := c.eng.Get(ctx, orderKey)
				order = append(order, orderOp{kind: 'G', get: g, at: now})
				f = g
			case 8:
				k = orderKey
				fd := c.eng.Del(ctx, orderKey)
				order = append(order, orderOp{kind: 'D', set: fd, at: now})
				f = fd
			}
			end := ctxEnd(ctx)
			if cancelAfter {
				release()
				end.Store(time.Now().UnixNano())
			}
			b.fs = append(b.fs, f)
			b.keys = append(b.keys, k)
			b.ends = append(b.ends, end)
			releaseWhenDone(f, release)
		}
		c.mu.Lock()
		c.recs = append(c.recs, recs...)
		c.mu.Unlock()
		c.track(b, b.fs...)
		c.watch(b)
		c.pace(rng, 4)
	}
}

// pipelineWorker runs pipelines of SET (unique keys), INCR (per-operation
// keys and its counter) and GET, some discarded instead of executed.
func (c *chaos) pipelineWorker(w int) {
	rng := c.rng(w)
	ctr := &counter{key: "chaos:pctr"}
	defer func() {
		c.mu.Lock()
		c.counters = append(c.counters, ctr)
		c.mu.Unlock()
	}()
	for n := 0; n < maxBursts && !c.stopped(); n++ {
		p := c.eng.Pipeline()
		b := &burst{}
		var recs []rec
		now := time.Now() // the commands are sent at Exec, right after
		for range 1 + rng.IntN(8) {
			var f result
			var k string
			switch rng.IntN(4) {
			case 0:
				k = c.key("chaos:pset")
				v := "v" + k
				f = p.Set(k, v, 0)
				recs = append(recs, rec{key: k, val: v, res: f, what: "Pipeline.Set", at: now})
			case 1:
				k = c.key("chaos:pincr")
				f = p.Incr(k)
				recs = append(recs, rec{key: k, res: f, what: "Pipeline.Incr", at: now})
			case 2:
				k = ctr.key
				fi := p.Incr(ctr.key)
				ctr.add(fi, fi, now)
				f = fi
			case 3:
				k = "chaos:pget"
				f = p.Get(k)
			}
			b.fs = append(b.fs, f)
			b.keys = append(b.keys, k)
		}
		c.mu.Lock()
		c.recs = append(c.recs, recs...)
		c.mu.Unlock()
		ctx, release, cancelAfter := cmdCtx(rng)
		end := ctxEnd(ctx)
		for range b.fs {
			b.ends = append(b.ends, end)
		}
		c.track(b, b.fs...)
		c.watch(b)
		if rng.IntN(10) == 0 {
			p.Discard()
			release()
		} else {
			if cancelAfter {
				go func() { // races with Exec
					end.Store(time.Now().UnixNano())
					release()
				}()
			}
			_ = p.Exec(ctx) // each future has its own command's result
			release()
		}
		c.pace(rng, 4)
	}
}

// txWorker alternates a MULTI/EXEC (INCR of a counter and a SET of a
// unique key) and a WatchRetry read-modify-write of another counter.
func (c *chaos) txWorker(w int) {
	rng := c.rng(w)
	txCtr := &counter{key: "chaos:txctr"}
	watchCtr := &counter{key: "chaos:watchctr"}
	defer func() {
		c.mu.Lock()
		c.counters = append(c.counters, txCtr, watchCtr)
		c.mu.Unlock()
	}()
	for n := 0; n < maxBursts && !c.stopped(); n++ {
		ctx, release, _ := cmdCtx(rng)
		now := time.Now()
		if n%2 == 0 {
			tx := c.eng.Tx()
			fi := tx.Incr(txCtr.key)
			k := c.key("chaos:txset")
			v := "v" + k
			fs := tx.Set(k, v, 0)
			_ = tx.Exec(ctx)
			txCtr.add(fi, fi, now)
			c.mu.Lock()
			c.recs = append(c.recs, rec{key: k, val: v, res: fs, what: "Tx.Set", at: now})
			c.mu.Unlock()
			c.track(nil, fi, fs)
		} else {
			err := c.eng.WatchRetry(ctx, 5, func(tx *engine.Tx) error {
				s, err := tx.Read().Get(ctx, watchCtr.key)
				if err != nil && !errors.Is(err, engine.ErrNil) {
					return fmt.Errorf("%w: %w", errWatchFn, err)
				}
				cur, _ := strconv.Atoi(s)
				tx.Set(watchCtr.key, strconv.Itoa(cur+1), 0)
				return nil
			}, watchCtr.key)
			r := done(err)
			watchCtr.add(r, nil, now)
			c.track(nil, r)
		}
		release()
		c.pace(rng, 4)
	}
}

// syncWorker uses the synchronous Client facade: SET of unique keys,
// INCR of its counter and of per-operation keys through Do, GET.
func (c *chaos) syncWorker(w int) {
	rng := c.rng(w)
	cl := c.eng.Sync()
	ctr := &counter{key: "chaos:syncctr"}
	defer func() {
		c.mu.Lock()
		c.counters = append(c.counters, ctr)
		c.mu.Unlock()
	}()
	for n := 0; n < 4*maxBursts && !c.stopped(); n++ {
		ctx, release, cancelAfter := cmdCtx(rng)
		if cancelAfter {
			go release()
		}
		now := time.Now()
		switch rng.IntN(4) {
		case 0:
			k := c.key("chaos:sset")
			v := "v" + k
			r := done(cl.Set(ctx, k, v, 0))
			c.mu.Lock()
			c.recs = append(c.recs, rec{key: k, val: v, res: r, what: "Client.Set", at: now})
			c.mu.Unlock()
		case 1:
			_, err := cl.Incr(ctx, ctr.key)
			ctr.add(done(err), nil, now)
		case 2:
			k := c.key("chaos:sdo")
			_, err := cl.Do(ctx, "INCR", k)
			c.mu.Lock()
			c.recs = append(c.recs, rec{key: k, res: done(err), what: "Client.Do INCR", at: now})
			c.mu.Unlock()
		case 3:
			_, _ = cl.Get(ctx, "chaos:sget")
		}
		release()
		c.pace(rng, 2)
	}
}

// injectFaults applies faults: first one of each kind in a random order,
// then random ones until dur has passed (15 at most). Each is held 200-600ms, then
// removed; between faults it waits until the engine serves again (within
// serveLimit). It returns a summary.
func (c *chaos) injectFaults(srv *valkeytest.Server, px *valkeytest.Proxy, dur, serveLimit time.Duration) string {
	t := c.t
	rng := c.rng(1000)
	kinds := []string{"reset", "latency", "blackhole", "proxy down", "kill -9"}
	rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	var log []string
	end := time.Now().Add(dur)
	for i := 0; i < len(kinds) || (time.Now().Before(end) && i < 3*len(kinds)); i++ {
		kind := kinds[rng.IntN(len(kinds))]
		if i < len(kinds) {
			kind = kinds[i]
		}
		hold := time.Duration(200+rng.IntN(400)) * time.Millisecond
		var err error
		switch kind {
		case "reset":
			if rng.IntN(2) == 0 {
				kind = "reset peer"
				err = px.ResetPeer(0)
			} else {
				kind = "reset after write"
				err = px.ResetAfterWrite()
			}
		case "latency":
			d := time.Duration(20+rng.IntN(300)) * time.Millisecond
			kind = "latency " + d.String()
			err = px.Latency(d)
		case "blackhole":
			err = px.Timeout(0)
		case "proxy down":
			err = px.Disable()
		case "kill -9":
			err = srv.Kill()
		}
		if err != nil {
			t.Fatalf("fault %s: %v", kind, err)
		}
		time.Sleep(hold) // the fault lasts this long
		switch kind {
		case "proxy down":
			err = px.Enable()
		case "kill -9":
			err = srv.Restart()
		default:
			err = px.RemoveToxics()
		}
		if err != nil {
			t.Fatalf("ending fault %s: %v", kind, err)
		}
		log = append(log, fmt.Sprintf("%s %s", kind, hold))
		if i+1 < len(kinds) || time.Now().Before(end) {
			enginetest.WaitServing(t, c.eng, serveLimit)
			time.Sleep(time.Duration(200+rng.IntN(600)) * time.Millisecond) // load without faults
		}
	}
	return strings.Join(log, ", ")
}

// awaitAll checks invariant 1: every result completes by limit.
func (c *chaos) awaitAll(limit time.Time) {
	t := c.t
	c.mu.Lock()
	all := slices.Clone(c.all)
	c.mu.Unlock()
	pending := 0
	timer := time.NewTimer(time.Until(limit))
	defer timer.Stop()
	for _, r := range all {
		if pending > 0 {
			if !r.IsDone() {
				pending++
			}
			continue
		}
		select {
		case <-r.Done():
		case <-timer.C:
			pending++
		}
	}
	if pending > 0 {
		t.Fatalf("invariant 1: %d of %d futures still pending 5s after the faults stopped", pending, len(all))
	}
	c.watchers.Wait()
	t.Logf("%d futures, all complete", len(all))
}

func (c *chaos) outcomeOf(r result) chaosResult {
	o, unclassified := chaosOutcome(r.Err(context.Background()))
	if unclassified {
		c.mu.Lock()
		if c.unclass == nil {
			c.unclass = map[string]int{}
		}
		c.unclass[errKind(r.Err(context.Background()))]++
		c.mu.Unlock()
	}
	return o
}

func errKind(err error) string {
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// checkOrder checks invariant 2: completion order (futures not ended by
// their own context) and what each GET of an order key saw.
func (c *chaos) checkOrder() {
	t := c.t
	bg := context.Background()
	inverted, exempt := 0, 0
	for _, b := range c.bursts {
		for _, p := range b.inverted {
			ej, ei := b.fs[p.j].Err(bg), b.fs[p.i].Err(bg)
			// A future ends at its context's end, whatever was issued
			// before it; one whose context had ended may complete a
			// moment later than one issued after it.
			endJ := b.ends[p.j].Load()
			if isCtxErr(ei) || (isCtxErr(ej) && endJ != 0 && endJ <= p.at.UnixNano()) {
				exempt++
				continue
			}
			inverted++
			if inverted <= 5 {
				t.Errorf("invariant 2: future %d of a burst completed (%v) while future %d, issued before it, was pending (it ended with %v)",
					p.i, ei, p.j, ej)
			}
		}
	}
	if inverted > 0 {
		t.Errorf("invariant 2: %d completion-order inversions", inverted)
	}
	gets := 0
	for _, ops := range c.orders {
		gets += c.checkGets(ops)
	}
	t.Logf("completion order: %d inversions, %d exempt (the later one ended by its context, or the earlier one's context ended first); %d GETs of order keys checked", inverted, exempt, gets)
}

// checkGets checks the GETs of one order key's history.
func (c *chaos) checkGets(ops []orderOp) int {
	t := c.t
	bg := context.Background()
	checked := 0
	for g, op := range ops {
		if op.kind != 'G' {
			continue
		}
		v, err := op.get.Await(bg)
		if err != nil && !errors.Is(err, engine.ErrNil) {
			continue
		}
		checked++
		from := -1 // the write whose state the GET saw: a SET of v, or (nil) -1
		if err == nil {
			from = slices.IndexFunc(ops, func(o orderOp) bool { return o.kind == 'S' && o.val == v })
			switch {
			case from < 0:
				t.Errorf("invariant 2: GET saw %q, which no SET wrote", v)
				continue
			case from > g:
				t.Errorf("invariant 2: GET %d saw %q, written by SET %d issued after it", g, v, from)
				continue
			case c.outcomeOf(ops[from].set) == notRun:
				t.Errorf("invariant 2/3: GET %d saw %q, written by SET %d that failed with %v (not run)", g, v, from, ops[from].set.Err(bg))
				continue
			}
		}
		// No write acknowledged between what the GET saw and the GET; for a
		// nil reply, some DEL that may have run after every acknowledged SET.
		// An acknowledged write that may have been lost (lossy) proves
		// nothing.
		for k := from + 1; k < g; k++ {
			o := ops[k]
			if o.kind == 'G' || c.outcomeOf(o.set) != ran || c.mayLose(o.at) {
				continue
			}
			if err == nil || o.kind == 'S' {
				// A nil GET after an acknowledged SET needs a DEL after it.
				if err != nil && slices.ContainsFunc(ops[k+1:g], func(d orderOp) bool { return d.kind == 'D' && c.outcomeOf(d.set) != notRun }) {
					continue
				}
				t.Errorf("invariant 2: GET %d saw %q (%v), older than %c %d acknowledged before it was issued", g, v, err, o.kind, k)
				break
			}
		}
	}
	return checked
}

// checkKeys checks invariants 3 and 4 on the server.
func (c *chaos) checkKeys(ctx context.Context) {
	t := c.t
	bg := context.Background()
	// Counters. The lower bound counts only the INCRs that cannot have
	// been lost (lossy); the replies increase from the first of those on
	// (a lost INCR's successor, or one issued before a loss and answered
	// after it, may return less than it did).
	for _, ctr := range c.counters {
		ok, maybe, kept := 0, 0, 0
		prev := int64(0)
		for i, r := range ctr.results {
			lossy := c.mayLose(ctr.at[i])
			switch c.outcomeOf(r) {
			case ran:
				ok++
				if !lossy {
					kept++
				}
				if f := ctr.replies[i]; f != nil && !lossy {
					n, _ := f.Await(bg)
					if n <= prev {
						t.Errorf("invariant 2: %s: INCR %d returned %d after an earlier one returned %d", ctr.key, i, n, prev)
					}
					prev = n
				}
			case maybeRan:
				maybe++
			}
		}
		s, err := c.eng.Get(ctx, ctr.key).Await(ctx)
		if err != nil && !errors.Is(err, engine.ErrNil) {
			t.Fatalf("GET %s: %v", ctr.key, err)
		}
		v, _ := strconv.Atoi(s)
		if v < kept || v > ok+maybe {
			t.Errorf("invariant 3: %s = %d, want within [%d succeeded (%d of them not lossy), %d succeeded + may have run] (%d INCRs)", ctr.key, v, ok, kept, ok+maybe, len(ctr.results))
		}
	}
	// Unique keys.
	var notRunPresent, ackedMissing, dup, checked, lost int
	for from := 0; from < len(c.recs); from += 500 {
		part := c.recs[from:min(from+500, len(c.recs))]
		keys := make([]string, len(part))
		for i, r := range part {
			keys[i] = r.key
		}
		vals, err := c.eng.MGet(ctx, keys...).Await(ctx)
		if err != nil {
			t.Fatalf("MGET: %v", err)
		}
		for i, r := range part {
			checked++
			o := c.outcomeOf(r.res)
			want := r.val
			if want == "" {
				want = "1"
			}
			switch got := vals[i]; {
			case got != nil && *got != want:
				dup++
				t.Errorf("invariant 4: %s %s = %q, want %q (result %v)", r.what, r.key, *got, want, r.res.Err(bg))
			case got != nil && o == notRun:
				notRunPresent++
				t.Errorf("invariant 3: %s %s applied, but its future failed with %v (not sent)", r.what, r.key, r.res.Err(bg))
			case got == nil && o == ran && c.mayLose(r.at):
				lost++
			case got == nil && o == ran:
				ackedMissing++
				t.Errorf("invariant 3: %s %s acknowledged but missing", r.what, r.key)
			}
		}
	}
	t.Logf("%d unique keys checked: %d not-sent applied, %d acknowledged missing, %d applied twice or wrong; %d acknowledged and lost where loss is allowed", checked, notRunPresent, ackedMissing, dup, lost)
}

// tally summarises the outcomes.
func (c *chaos) tally() string {
	var n [3]int
	for _, r := range c.all {
		o, _ := chaosOutcome(r.Err(context.Background()))
		n[o]++
	}
	s := fmt.Sprintf("%d ran, %d not run, %d may have run", n[ran], n[notRun], n[maybeRan])
	if len(c.unclass) > 0 {
		s += fmt.Sprintf("; errors the docs do not name (counted as may have run): %v", c.unclass)
	}
	return s
}

// --- pub/sub ---------------------------------------------------------

const chaosChannel = "chaos:ch"

func (c *chaos) startSubscriber(ctx context.Context) {
	sub, err := c.eng.Subscribe(ctx, chaosChannel)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sub = sub
	c.subDone = make(chan struct{})
	c.subMarker = make(chan struct{}, 1)
	go func() {
		defer close(c.subDone)
		for ev := range sub.Channel() {
			c.subMu.Lock()
			if ev.Kind == engine.SubMessage {
				if ev.Message.Payload == "marker" {
					select {
					case c.subMarker <- struct{}{}:
					default:
					}
				} else if n, err := strconv.Atoi(ev.Message.Payload); err == nil {
					c.subSeqs = append(c.subSeqs, n)
				}
			} else {
				c.subEvents = append(c.subEvents, ev.Kind)
			}
			c.subMu.Unlock()
		}
	}()
}

// publisher publishes increasing numbers, one at a time.
func (c *chaos) publisher(w int) {
	rng := c.rng(w)
	for n := 0; n < 4*maxBursts && !c.stopped(); n++ {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		if r, err := c.eng.Publish(ctx, chaosChannel, strconv.Itoa(n)).Await(ctx); err == nil && r > 0 {
			c.published.Add(1)
		}
		cancel()
		c.pace(rng, 3)
	}
}

// checkSubscriber checks invariant 5 for the subscriber (it receives
// again within limit) and 4 (no message twice, in order), and that each
// outage gave one Disconnected then one Resubscribed.
func (c *chaos) checkSubscriber(ctx context.Context, limit time.Duration) {
	t := c.t
	start := time.Now()
	for {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, _ = c.eng.Publish(pctx, chaosChannel, "marker").Await(pctx)
		cancel()
		select {
		case <-c.subMarker:
		case <-time.After(50 * time.Millisecond): // publish again
			if time.Since(start) > limit {
				t.Fatalf("invariant 5: the subscriber received nothing within %s after recovery", limit)
			}
			continue
		}
		break
	}
	c.subMu.Lock()
	defer c.subMu.Unlock()
	for i := 1; i < len(c.subSeqs); i++ {
		if c.subSeqs[i] <= c.subSeqs[i-1] {
			t.Errorf("invariant 2/4: subscriber got %d after %d", c.subSeqs[i], c.subSeqs[i-1])
			break
		}
	}
	var ev []string
	want := engine.Disconnected
	for i, k := range c.subEvents {
		ev = append(ev, k.String())
		if i == 0 {
			if k != engine.Subscribed {
				t.Errorf("subscriber's first event %s, want Subscribed", k)
			}
			continue
		}
		if k != want {
			t.Errorf("subscriber events %v: want Disconnected and Resubscribed in turn", c.subEvents)
			break
		}
		want = map[engine.SubEventKind]engine.SubEventKind{engine.Disconnected: engine.Resubscribed, engine.Resubscribed: engine.Disconnected}[k]
	}
	if want != engine.Disconnected {
		t.Errorf("subscriber events end with a Disconnected (not resubscribed): %v", ev)
	}
	t.Logf("subscriber: %d published with a receiver, %d received, %d outages; receiving %s after recovery",
		c.published.Load(), len(c.subSeqs), (len(c.subEvents)-1)/2, time.Since(start))
}

// --- streams ---------------------------------------------------------

const chaosStream = "chaos:stream"

func (c *chaos) startConsumer(ctx context.Context) {
	c.handled = map[string]int{}
	cons, err := c.eng.Consume(ctx, chaosStream, "g", "c1", func(_ context.Context, x engine.XEntry) error {
		c.conMu.Lock()
		c.handled[x.ID]++
		c.conMu.Unlock()
		return nil
	}, engine.ConsumeOptions{StartID: "0"})
	if err != nil {
		c.t.Fatal(err)
	}
	c.consumer = cons
}

// producer XADDs entries, one at a time.
func (c *chaos) producer(w int) {
	rng := c.rng(w)
	for n := 0; n < 4*maxBursts && !c.stopped(); n++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(20+rng.IntN(500))*time.Millisecond)
		now := time.Now()
		id, err := c.eng.XAdd(ctx, chaosStream, "n", strconv.Itoa(n)).Await(ctx)
		cancel()
		if err == nil {
			c.conMu.Lock()
			c.xacked = append(c.xacked, id)
			c.xackedAt = append(c.xackedAt, now)
			c.conMu.Unlock()
		}
		c.pace(rng, 3)
	}
}

// checkConsumer checks invariant 5 for the consumer: a new entry and
// every acknowledged one are handled within limit.
func (c *chaos) checkConsumer(ctx context.Context, limit time.Duration) {
	t := c.t
	start := time.Now()
	var marker string
	for marker == "" {
		xctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		id, err := c.eng.XAdd(xctx, chaosStream, "n", "marker").Await(xctx)
		cancel()
		if err == nil {
			marker = id
		} else if time.Since(start) > limit {
			t.Fatalf("XADD after recovery: %v", err)
		}
	}
	var missing, lost int
	for {
		c.conMu.Lock()
		missing, lost = 0, 0
		for i, id := range append(slices.Clone(c.xacked), marker) {
			switch {
			case c.handled[id] != 0:
			case i < len(c.xacked) && c.mayLose(c.xackedAt[i]):
				lost++ // the entry itself may be gone
			default:
				missing++
			}
		}
		c.conMu.Unlock()
		if missing == 0 {
			break
		}
		if time.Since(start) > limit {
			t.Fatalf("invariant 5: %d acknowledged stream entries not handled %s after recovery (consumer %+v)", missing, limit, c.consumer.Stats())
		}
		time.Sleep(10 * time.Millisecond) // polling the handler's progress
	}
	st := c.consumer.Stats()
	t.Logf("consumer: %d entries acknowledged by XADD, all handled %s after recovery (%d never handled where loss is allowed); handled %d, reconnects %d",
		len(c.xacked), time.Since(start), lost, st.Handled, st.Reconnects)
}

// --- batch writer ----------------------------------------------------

func (c *chaos) startWriter() {
	c.wFailed = map[string]error{}
	c.wNotQueue = map[string]error{}
	w, err := c.eng.NewBatchWriter(engine.BatchWriterOptions{
		OnError: func(cmd []string, err error) {
			c.wMu.Lock()
			if len(cmd) > 1 {
				c.wFailed[cmd[1]] = err
			}
			c.wMu.Unlock()
		},
	})
	if err != nil {
		c.t.Fatal(err)
	}
	c.writer = w
}

// writerWorker writes SETs of unique keys through the batch writer.
func (c *chaos) writerWorker(w int) {
	rng := c.rng(w)
	for n := 0; n < 4*maxBursts && !c.stopped(); n++ {
		for range 1 + rng.IntN(20) {
			k := c.key("chaos:bw")
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			now := time.Now()
			err := c.writer.Set(ctx, k, "v"+k, 0)
			cancel()
			c.wMu.Lock()
			if err != nil {
				c.wNotQueue[k] = err
			} else {
				c.wWritten = append(c.wWritten, k)
				c.wAt = append(c.wAt, now)
			}
			c.wMu.Unlock()
		}
		c.pace(rng, 3)
	}
}

// checkWriter flushes the batch writer and checks its writes: every one
// acknowledged or reported; acknowledged ones present; those reported
// with an error that says "not sent" absent.
func (c *chaos) checkWriter(ctx context.Context) {
	t := c.t
	fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := c.writer.Flush(fctx); err != nil {
		t.Fatalf("invariant 5: batch writer Flush after recovery: %v", err)
	}
	if err := c.writer.Close(fctx); err != nil {
		t.Fatalf("batch writer Close: %v", err)
	}
	st := c.writer.Stats()
	if st.Acknowledged+st.Failed != st.Written || st.Pending != 0 || st.OnErrorPanics != 0 {
		t.Errorf("batch writer stats %+v: want Acknowledged + Failed == Written, nothing pending", st)
	}
	c.wMu.Lock()
	defer c.wMu.Unlock()
	lost := 0
	for from := 0; from < len(c.wWritten); from += 500 {
		keys := c.wWritten[from:min(from+500, len(c.wWritten))]
		vals, err := c.eng.MGet(ctx, keys...).Await(ctx)
		if err != nil {
			t.Fatalf("MGET: %v", err)
		}
		for i, k := range keys {
			ferr, failed := c.wFailed[k]
			switch {
			case vals[i] != nil && *vals[i] != "v"+k:
				t.Errorf("invariant 4: batch writer SET %s = %q", k, *vals[i])
			case !failed && vals[i] == nil && c.writerMayLose(c.wAt[from+i]):
				lost++
			case !failed && vals[i] == nil:
				t.Errorf("invariant 3: batch writer SET %s acknowledged but missing", k)
			case failed && vals[i] != nil:
				if o, _ := chaosOutcome(ferr); o == notRun {
					t.Errorf("invariant 3: batch writer SET %s applied, but reported with %v (not sent)", k, ferr)
				}
			}
		}
	}
	kinds := map[string]int{}
	for _, err := range c.wFailed {
		kinds[errKind(err)]++
	}
	t.Logf("batch writer: %d written, %d acknowledged, %d failed %v, %d not queued; %d acknowledged and lost where loss is allowed", st.Written, st.Acknowledged, st.Failed, kinds, len(c.wNotQueue), lost)
}
