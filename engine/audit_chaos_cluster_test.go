package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"reflect"
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
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/policies"
	"github.com/vactor-io/vactor/valkeytest"
)

// A randomized "Jepsen-lite" audit of cluster mode under topology changes,
// with the default configuration (only the seed addresses set). Workers
// mix the public APIs over many slots (futures, Do, MGet across slots,
// Pipeline.Exec, the synchronous Client, Watch/WatchRetry and Tx on
// hash-tagged keys, SSubscribe and Subscribe with publishers, a batch
// writer) while a fault injector runs, in a random order, a replica-led
// failover (CLUSTER FAILOVER), the migration of slots holding live keys,
// and a primary killed (then restarted as a replica). Every outcome is
// recorded in issue order and checked once the faults have stopped
// against what the engine promises:
//
//   - every future completes within ccBound of its issue;
//   - the futures of one key, issued by one goroutine, complete in issue
//     order (observed as they complete);
//   - errors that say "not applied" (ErrCircuitOpen, ErrNodeRemoved,
//     ErrTooManyRedirects, error replies, refused dials, ErrTxAborted, ...)
//     were not applied, and nothing was applied twice: INCR counters lie
//     in [succeeded, succeeded + outcome unknown], RPUSH lists hold each
//     token at most once, in issue order, none refused;
//   - reads see the last write issued before them (per slot order);
//   - transactions are atomic (their two counters always equal);
//   - subscribers (sharded and not) receive again after recovery, and a
//     channel's messages never come twice or out of order;
//   - the engine serves all 16384 slots again shortly after the cluster
//     is healthy; Close leaves no goroutine; nothing panicked.
//
// Writes a killed primary acknowledged may be lost: replication is
// asynchronous (docs/cluster.md counts only WAIT-confirmed writes as
// kept). For keys whose slot the killed primary served, the checks that
// need a write to have survived (lower bounds, reads) are relaxed to what
// loss allows; the others (nothing refused applied, nothing applied twice,
// order) hold for every key.
//
// The seed is logged; VACTOR_CHAOS_SEED=<seed> replays the same fault plan
// and operation mix (the timing of a real cluster is not replayable).
func TestAuditChaosCluster(t *testing.T) {
	seed := ccSeed(t)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6363))
	began := time.Now()

	c := valkeytest.StartClusterT(t)
	leakOpts := []goleak.Option{goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/vactor-io/vactor/valkeytest.startProcess.func1")}
	cfg, logs := withLogCheck(t, config.DefaultConfig().WithAddrs(c.Addrs()...).WithClusterMode(true))
	eng := engineOn(t, cfg)
	closed := false
	defer func() {
		if !closed {
			_ = eng.Close()
		}
	}()
	ctx := ctxT(t)
	run := &ccRun{t: t, eng: eng, taint: map[int]bool{}}

	// Subscribers: shard channels on every primary, one plain channel.
	pubsub := ccStartPubSub(t, ctx, eng, c)

	// Batch writer: INCRs over 40 keys.
	bw := ccStartWriter(t, eng, rng.Uint64())

	// Workers.
	var stop atomic.Bool
	var wg sync.WaitGroup
	workers := make([]*ccWorker, ccWorkers)
	for i := range workers {
		workers[i] = newCCWorker(run, i, rng.Uint64())
		w := workers[i]
		wg.Go(func() { w.loop(&stop) })
	}
	txws := make([]*ccTxWorker, ccTxWorkers)
	for i := range txws {
		txws[i] = &ccTxWorker{run: run, id: i, rng: rand.New(rand.NewPCG(rng.Uint64(), 1))}
		w := txws[i]
		wg.Go(func() { w.loop(&stop) })
	}

	// Faults, in a random order; the killed primary restarts last.
	live := ccLiveSlots(workers, txws, pubsub)
	faultsEnd := ccInject(t, c, run, rng, live)
	healthyAt := time.Now()

	stop.Store(true)
	wgDone := make(chan struct{})
	go func() { wg.Wait(); close(wgDone) }()
	select {
	case <-wgDone:
	case <-time.After(ccBound + 5*time.Second):
		t.Fatalf("workers did not stop within %s of the end of the faults", ccBound+5*time.Second)
	}
	bw.stop()

	// The engine serves every slot again.
	served := ccServeAllSlots(t, eng, healthyAt)
	// Subscribers receive again.
	resub := pubsub.awaitRecovery(t, healthyAt)

	// The writer's guarantee: every command acknowledged or failed.
	bw.finish(t, ctx)

	// Final state against the recorded outcomes.
	var v ccViolations
	var ops, okN, unknownN, refusedN int
	for _, w := range workers {
		w.check(ctx, &v)
		ops += len(w.hist)
		for _, r := range w.hist {
			switch r.out {
			case ccOK:
				okN++
			case ccUnknown:
				unknownN++
			case ccRefused:
				refusedN++
			}
		}
	}
	var txOK, txUnknown, txRefused int64
	for _, w := range txws {
		w.check(ctx, &v)
		txOK += w.pairs[0].ok + w.pairs[1].ok
		txUnknown += w.pairs[0].unknown + w.pairs[1].unknown
		txRefused += w.pairs[0].refused + w.pairs[1].refused
	}
	bw.check(ctx, run, &v)
	pubsub.check(&v)
	run.checkOrder(&v)

	st := eng.Stats()
	if st.SubPanics != 0 {
		v.add("%d subscriber handler panics", st.SubPanics)
	}
	for _, l := range logs.Lines() {
		if l.Level >= slog.LevelError {
			v.add("error logged: %s", l.Text)
		}
	}
	pubsub.close()
	closeStart := time.Now()
	if err := eng.Close(); err != nil {
		v.add("Close: %v", err)
	}
	closed = true
	closeTook := time.Since(closeStart)
	noLeakWithin(t, 5*time.Second, leakOpts...)

	run.mu.Lock()
	t.Logf("seed %d: faults %s (%.1fs); %d ops (%d ok, %d outcome unknown, %d refused, %d other), %d tainted slots; "+
		"tx %d ok / %d unknown / %d refused; writer %s; slowest future %s; all slots served %s after healthy; "+
		"subscribers received again %s after healthy (%d messages reordered by the server around moves); redirects %d, reconnects %d; Close %s; total %s",
		seed, strings.Join(run.faults, ", "), faultsEnd.Seconds(), ops, okN, unknownN, refusedN, len(run.other), len(run.taint),
		txOK, txUnknown, txRefused, bw.summary, run.slowest.Round(time.Millisecond), served.Round(time.Millisecond),
		resub.Round(time.Millisecond), pubsub.reordered, st.Redirects, st.Reconnects, closeTook.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	for _, o := range run.other {
		v.add("unexpected error kind: %s", o)
	}
	run.mu.Unlock()
	if len(v.list) > 0 {
		t.Errorf("seed %d (replay: VACTOR_CHAOS_SEED=%d): %d violations:\n%s", seed, seed, len(v.list), strings.Join(v.first(40), "\n"))
	}
}

const (
	ccWorkers   = 6
	ccTxWorkers = 2
	// ccBound is how long any future may take from issue to completion.
	// The slowest path is a command caught by the killed primary: its
	// breaker opens within a few failed dials, and the slot map follows the
	// promotion (node timeout 1 s) within 250 ms.
	ccBound = 10 * time.Second
	// ccCmdTimeout is the commands' own deadline: past ccBound, so that a
	// command that hits it fails the bound, not the other checks.
	ccCmdTimeout = 15 * time.Second
	// ccExtraFaults is how many faults of a random kind follow the first
	// three (one of each kind). 0: with 2, a kill could follow a killed
	// node's restart by a second, and Redis 7.0 then sometimes did not
	// fail over within 30 s (the restarted replica not yet eligible), or
	// a node other than the replicas noted at the kill took over
	// (seed 1796311430856426481 did so in 3 runs of 4); the audit is about
	// the engine, not about such sequences.
	ccExtraFaults = 0
	// ccMaxBursts bounds each worker's operations.
	ccMaxBursts = 4000
)

// ccSeed returns VACTOR_CHAOS_SEED or a seed from the clock, and logs it.
func ccSeed(t *testing.T) int64 {
	t.Helper()
	if s := os.Getenv("VACTOR_CHAOS_SEED"); s != "" {
		seed, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("VACTOR_CHAOS_SEED=%q: %v", s, err)
		}
		t.Logf("seed %d (from VACTOR_CHAOS_SEED)", seed)
		return seed
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d (replay: VACTOR_CHAOS_SEED=%d)", seed, seed)
	return seed
}

// ccRun is what the goroutines of one run share.
type ccRun struct {
	t   *testing.T
	eng *engine.Engine

	mu      sync.Mutex
	taint   map[int]bool // slots the killed primary served
	faults  []string
	other   []string // errors of no documented kind
	slowest time.Duration
	order   []string // completion-order violations
	late    []string // futures past ccBound
}

func (r *ccRun) tainted(slot int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.taint[slot]
}

func (r *ccRun) checkOrder(v *ccViolations) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.order {
		v.add("completion order: %s", s)
	}
	for _, s := range r.late {
		v.add("late: %s", s)
	}
}

type ccViolations struct {
	mu   sync.Mutex
	list []string
}

func (v *ccViolations) add(format string, args ...any) {
	v.mu.Lock()
	v.list = append(v.list, fmt.Sprintf(format, args...))
	v.mu.Unlock()
}

func (v *ccViolations) first(n int) []string {
	if len(v.list) <= n {
		return v.list
	}
	return append(v.list[:n:n], fmt.Sprintf("... and %d more", len(v.list)-n))
}

// ccOutcome is what an error says about whether a write was applied.
type ccOutcome uint8

const (
	ccOK      ccOutcome = iota
	ccUnknown           // may have run
	ccRefused           // did not run
)

// classify maps err to an outcome as engine/errors.go and
// docs/reliability.md promise; an error of no documented kind counts as
// unknown and is reported.
func (r *ccRun) classify(what string, err error) ccOutcome {
	var se *engine.ServerError
	var ce *engine.ConnectError
	switch {
	case err == nil:
		return ccOK
	case errors.Is(err, engine.ErrOutcomeUnknown),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// A command's ctx ends its future whatever its state: it may have
		// been written (Pipeline.Exec's doc).
		return ccUnknown
	case errors.Is(err, engine.ErrCircuitOpen), errors.Is(err, engine.ErrNodeRemoved),
		errors.Is(err, engine.ErrTooManyRedirects), errors.Is(err, engine.ErrBackpressure),
		errors.Is(err, engine.ErrPoolExhausted), errors.Is(err, engine.ErrTxAborted),
		errors.Is(err, engine.ErrNoSlotOwner),
		errors.As(err, &se), errors.As(err, &ce):
		return ccRefused
	case (what == "Tx.Exec" || what == "WatchRetry") && policies.IsTransport(err):
		// Tx.Exec's doc: a transport error is wrapped in ErrOutcomeUnknown
		// once EXEC may have been written; unwrapped, nothing ran (a WATCH,
		// a read or MULTI failed).
		return ccRefused
	}
	r.mu.Lock()
	if len(r.other) < 20 {
		r.other = append(r.other, fmt.Sprintf("%s: %T: %v", what, err, err))
	}
	r.mu.Unlock()
	return ccUnknown
}

// --- keys and the per-key model ---

type ccKind uint8

const (
	ccCounter ccKind = iota
	ccList
	ccStr
)

type ccKey struct {
	name string
	kind ccKind
	slot int
}

// ccRec is one operation, in its worker's issue order.
type ccRec struct {
	op   string    // incr, rpush, set, del, get, mget
	via  string    // future, pipeline, sync
	at   time.Time // when it was recorded (after its burst completed)
	keys []*ccKey
	arg  string // rpush token, set value
	out  ccOutcome
	err  error
	n    int64     // incr, rpush: the reply
	s    []*string // get, mget: the values read (nil: missing)
}

// ccKeyState is the model of one key while its history is replayed.
type ccKeyState struct {
	ok, unknown int64           // counter, list: writes that succeeded, may have run
	last        int64           // counter: last value a successful INCR returned
	tokens      map[string]int  // list: token -> issue index
	refused     map[string]bool // list: tokens refused
	okTokens    []string        // list: tokens acknowledged
	possible    map[string]bool // str: values the key may hold ("\x00" missing)
	written     map[string]bool // str: every value ever sent
}

const ccMissing = "\x00"

// ccWorker issues bursts of operations on its own keys, in one of three
// modes (futures and Do, a Pipeline, the synchronous Client), and records
// their outcomes in issue order.
type ccWorker struct {
	run  *ccRun
	id   int
	rng  *rand.Rand
	keys []*ccKey
	hist []ccRec
	seq  int
}

func newCCWorker(run *ccRun, id int, seed uint64) *ccWorker {
	w := &ccWorker{run: run, id: id, rng: rand.New(rand.NewPCG(seed, uint64(id)))}
	add := func(kind ccKind, prefix string, n int) {
		for i := range n {
			name := fmt.Sprintf("cc:%d:%s%d", id, prefix, i)
			w.keys = append(w.keys, &ccKey{name: name, kind: kind, slot: valkeytest.HashSlot(name)})
		}
	}
	add(ccCounter, "ctr", 8)
	add(ccList, "lst", 6)
	add(ccStr, "str", 8)
	return w
}

// ccPending is an issued operation: its future's completion and result.
type ccPending struct {
	rec     ccRec
	ordered bool // single key: checked for completion order
	done    <-chan struct{}
	isDone  func() bool
	result  func() (any, error)
}

func ccPend[T any](f *futures.Future[T]) ccPending {
	return ccPending{done: f.Done(), isDone: f.IsDone, result: func() (any, error) {
		v, err, _ := f.Result()
		return v, err
	}}
}

var ccClosedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// ccNow is an operation completed already (the synchronous Client).
func ccNow(v any, err error) ccPending {
	return ccPending{done: ccClosedCh, isDone: func() bool { return true }, result: func() (any, error) { return v, err }}
}

func (w *ccWorker) loop(stop *atomic.Bool) {
	client := w.run.eng.Sync()
	for b := 0; b < ccMaxBursts && !stop.Load(); b++ {
		ctx, cancel := context.WithTimeout(context.Background(), ccCmdTimeout)
		mode := w.rng.IntN(10)
		n := 4 + w.rng.IntN(24)
		var pend []ccPending
		start := time.Now()
		switch {
		case mode < 6: // futures and Do
			for range n {
				pend = append(pend, w.issueFuture(ctx))
				if pend[len(pend)-1].rec.via == "" {
					pend[len(pend)-1].rec.via = "future"
				}
			}
			w.await(pend, start, nil)
		case mode < 8: // a pipeline
			p := w.run.eng.Pipeline()
			for range n {
				pend = append(pend, w.issuePipe(p))
				if pend[len(pend)-1].rec.via == "" {
					pend[len(pend)-1].rec.via = "pipeline"
				}
			}
			execDone := make(chan struct{})
			go func() { _ = p.Exec(ctx); close(execDone) }()
			w.await(pend, start, execDone)
		default: // the synchronous Client
			for range n / 2 {
				op := time.Now()
				pend = append(pend, w.issueSync(ctx, client))
				pend[len(pend)-1].rec.via = "sync"
				w.run.noteLatency(time.Since(op), "sync "+pend[len(pend)-1].rec.op)
			}
		}
		cancel()
		for _, p := range pend {
			v, err := p.result()
			w.record(p.rec, v, err)
		}
		time.Sleep(time.Millisecond) // leave the servers some CPU for the failure detection
	}
}

func (r *ccRun) noteLatency(d time.Duration, what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d > r.slowest {
		r.slowest = d
	}
	if d > ccBound && len(r.late) < 10 {
		r.late = append(r.late, fmt.Sprintf("%s took %s", what, d))
	}
}

// pick returns a random key of kind.
func (w *ccWorker) pick(kind ccKind) *ccKey {
	for {
		k := w.keys[w.rng.IntN(len(w.keys))]
		if k.kind == kind {
			return k
		}
	}
}

func (w *ccWorker) token() string {
	w.seq++
	return fmt.Sprintf("w%d-%d", w.id, w.seq)
}

// strKeys returns 2-4 distinct string keys (in several slots).
func (w *ccWorker) strKeys() []*ccKey {
	var ks []*ccKey
	for _, k := range w.keys {
		if k.kind == ccStr && w.rng.IntN(3) == 0 {
			ks = append(ks, k)
		}
	}
	if len(ks) < 2 {
		ks = append(ks[:0], w.pick(ccStr))
		for k2 := w.pick(ccStr); ; k2 = w.pick(ccStr) {
			if k2 != ks[0] {
				ks = append(ks, k2)
				break
			}
		}
	}
	return ks
}

func ccNames(ks []*ccKey) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.name
	}
	return out
}

func (w *ccWorker) issueFuture(ctx context.Context) ccPending {
	eng := w.run.eng
	var p ccPending
	var rec ccRec
	switch x := w.rng.IntN(14); {
	case x < 3:
		k := w.pick(ccCounter)
		rec = ccRec{op: "incr", keys: []*ccKey{k}}
		if x == 0 {
			p, rec.via = ccPend(eng.Do(ctx, "INCR", k.name)), "Do"
		} else {
			p = ccPend(eng.Incr(ctx, k.name))
		}
	case x < 6:
		k := w.pick(ccList)
		rec = ccRec{op: "rpush", keys: []*ccKey{k}, arg: w.token()}
		if x == 3 {
			p, rec.via = ccPend(eng.Do(ctx, "RPUSH", k.name, rec.arg)), "Do"
		} else {
			p = ccPend(eng.RPush(ctx, k.name, rec.arg))
		}
	case x < 9:
		k := w.pick(ccStr)
		rec = ccRec{op: "set", keys: []*ccKey{k}, arg: w.token()}
		p = ccPend(eng.Set(ctx, k.name, rec.arg, 0))
	case x < 11:
		k := w.pick(ccStr)
		rec = ccRec{op: "get", keys: []*ccKey{k}}
		if x == 9 {
			p, rec.via = ccPend(eng.Do(ctx, "GET", k.name)), "Do"
		} else {
			p = ccPend(eng.Get(ctx, k.name))
		}
	case x < 12:
		k := w.pick(ccStr)
		rec = ccRec{op: "del", keys: []*ccKey{k}}
		p = ccPend(eng.Del(ctx, k.name))
	default: // MGET across slots: ordered per slot, not as one future
		ks := w.strKeys()
		rec = ccRec{op: "mget", keys: ks}
		p = ccPend(eng.MGet(ctx, ccNames(ks)...))
	}
	p.rec = rec
	p.ordered = len(rec.keys) == 1
	return p
}

func (w *ccWorker) issuePipe(pl *engine.Pipeline) ccPending {
	var p ccPending
	var rec ccRec
	switch x := w.rng.IntN(12); {
	case x < 3:
		k := w.pick(ccCounter)
		rec = ccRec{op: "incr", keys: []*ccKey{k}}
		if x == 0 {
			p, rec.via = ccPend(pl.Do("INCR", k.name)), "pipeline Do"
		} else {
			p = ccPend(pl.Incr(k.name))
		}
	case x < 5:
		k := w.pick(ccList)
		rec = ccRec{op: "rpush", keys: []*ccKey{k}, arg: w.token()}
		p = ccPend(pl.RPush(k.name, rec.arg))
	case x < 8:
		k := w.pick(ccStr)
		rec = ccRec{op: "set", keys: []*ccKey{k}, arg: w.token()}
		p = ccPend(pl.Set(k.name, rec.arg, 0))
	case x < 10:
		k := w.pick(ccStr)
		rec = ccRec{op: "get", keys: []*ccKey{k}}
		p = ccPend(pl.Get(k.name))
	case x < 11:
		k := w.pick(ccStr)
		rec = ccRec{op: "del", keys: []*ccKey{k}}
		p = ccPend(pl.Del(k.name))
	default:
		ks := w.strKeys()
		rec = ccRec{op: "mget", keys: ks}
		p = ccPend(pl.MGet(ccNames(ks)...))
	}
	p.rec = rec
	p.ordered = len(rec.keys) == 1
	return p
}

func (w *ccWorker) issueSync(ctx context.Context, cl engine.Client) ccPending {
	var p ccPending
	switch x := w.rng.IntN(10); {
	case x < 3:
		k := w.pick(ccCounter)
		v, err := cl.Incr(ctx, k.name)
		p = ccNow(v, err)
		p.rec = ccRec{op: "incr", keys: []*ccKey{k}}
	case x < 5:
		k := w.pick(ccList)
		tok := w.token()
		v, err := cl.RPush(ctx, k.name, tok)
		p = ccNow(v, err)
		p.rec = ccRec{op: "rpush", keys: []*ccKey{k}, arg: tok}
	case x < 7:
		k := w.pick(ccStr)
		val := w.token()
		p = ccNow(struct{}{}, cl.Set(ctx, k.name, val, 0))
		p.rec = ccRec{op: "set", keys: []*ccKey{k}, arg: val}
	case x < 9:
		k := w.pick(ccStr)
		v, err := cl.Get(ctx, k.name)
		p = ccNow(v, err)
		p.rec = ccRec{op: "get", keys: []*ccKey{k}}
	default:
		ks := w.strKeys()
		v, err := cl.MGet(ctx, ccNames(ks)...)
		p = ccNow(v, err)
		p.rec = ccRec{op: "mget", keys: ks}
	}
	return p
}

// await waits for the futures of a burst as they complete; when one of a
// single key completes, every earlier one of the same key must have
// completed already (DESIGN rule 2). Each must complete within ccBound.
// also, when not nil, is waited for too (Pipeline.Exec).
func (w *ccWorker) await(pend []ccPending, start time.Time, also <-chan struct{}) {
	cases := make([]reflect.SelectCase, 0, len(pend)+1)
	idx := make([]int, 0, len(pend))
	for i, p := range pend {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(p.done)})
		idx = append(idx, i)
	}
	doneAt := make([]time.Duration, len(pend))
	var bad [][2]int // (i, j): i completed before the earlier j of its key
	timer := time.NewTimer(ccBound)
	defer timer.Stop()
	cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)})
	for len(idx) > 0 {
		chosen, _, _ := reflect.Select(cases)
		if chosen == len(cases)-1 {
			w.run.noteLatency(time.Since(start), fmt.Sprintf("%d of a burst of %d (first: %s %v)",
				len(idx), len(pend), pend[idx[0]].rec.op, ccNames(pend[idx[0]].rec.keys)))
			for _, i := range idx {
				<-pend[i].done // they must still complete (ctx ccCmdTimeout)
			}
			break
		}
		i := idx[chosen]
		doneAt[i] = time.Since(start)
		w.run.noteLatency(doneAt[i], pend[i].rec.op)
		if pend[i].ordered {
			k := pend[i].rec.keys[0]
			for j := range i {
				if pend[j].ordered && pend[j].rec.keys[0] == k && !pend[j].isDone() {
					bad = append(bad, [2]int{i, j})
				}
			}
		}
		cases = slices.Delete(cases, chosen, chosen+1)
		idx = slices.Delete(idx, chosen, chosen+1)
	}
	if also != nil {
		<-also
	}
	show := func(i int) string {
		_, err := pend[i].result()
		return fmt.Sprintf("#%d %s %s (%s, at +%s: %v)", i, pend[i].rec.via, pend[i].rec.op, pend[i].rec.arg, doneAt[i].Round(time.Microsecond), err)
	}
	for _, b := range bad {
		w.run.mu.Lock()
		if len(w.run.order) < 10 {
			w.run.order = append(w.run.order, fmt.Sprintf("%s (burst at %s): %s completed before %s",
				pend[b[0]].rec.keys[0].name, start.Format("15:04:05.000"), show(b[0]), show(b[1])))
		}
		w.run.mu.Unlock()
	}
}

// record files an operation's outcome in the worker's history.
func (w *ccWorker) record(rec ccRec, v any, err error) {
	switch rec.op {
	case "get":
		switch x := v.(type) {
		case string:
			if err == nil {
				rec.s = []*string{&x}
			}
		case engine.Reply:
			if err == nil {
				if x.IsNil() {
					rec.s = []*string{nil}
				} else if s, serr := x.String(); serr == nil {
					rec.s = []*string{&s}
				} else {
					err = serr
				}
			}
		}
		if errors.Is(err, engine.ErrNil) {
			rec.s, err = []*string{nil}, nil
		}
		if err != nil {
			rec.s = nil // a failed read tells nothing
		}
	case "mget":
		if s, ok := v.([]*string); ok && err == nil {
			rec.s = s
		}
	case "incr", "rpush":
		switch x := v.(type) {
		case int64:
			rec.n = x
		case engine.Reply:
			if err == nil {
				rec.n, err = x.Int64()
			}
		}
	}
	rec.err = err
	rec.at = time.Now()
	rec.out = w.run.classify(rec.via+" "+rec.op, err)
	w.hist = append(w.hist, rec)
}

// check replays the history against the model of each key, then reads
// the final state.
func (w *ccWorker) check(ctx context.Context, v *ccViolations) {
	st := map[*ccKey]*ccKeyState{}
	state := func(k *ccKey) *ccKeyState {
		s := st[k]
		if s == nil {
			s = &ccKeyState{tokens: map[string]int{}, refused: map[string]bool{},
				possible: map[string]bool{ccMissing: true}, written: map[string]bool{}}
			st[k] = s
		}
		return s
	}
	read := func(k *ccKey, got *string, i int, op string) {
		s := state(k)
		g := ccMissing
		if got != nil {
			g = *got
		}
		if g != ccMissing && !s.written[g] {
			where := "nowhere"
			for j, r := range w.hist {
				if r.op == "set" && r.arg == g {
					where = fmt.Sprintf("#%d %s SET %s at %s (%v)", j, r.via, r.keys[0].name, r.at.Format("15:04:05.000"), r.err)
				}
			}
			v.add("%s: #%d %s at %s read %q, never written to it before (written by %s)", k.name, i, op, w.hist[min(i, len(w.hist)-1)].at.Format("15:04:05.000"), g, where)
		}
		if !w.run.tainted(k.slot) && !s.possible[g] {
			v.add("%s: #%d %s read %q, want one of %v (the last write issued before it)", k.name, i, op, ccShow(g), ccSet(s.possible))
		}
		s.possible = map[string]bool{g: true}
	}
	for i, r := range w.hist {
		k := r.keys[0]
		s := state(k)
		tainted := w.run.tainted(k.slot)
		switch r.op {
		case "incr":
			switch r.out {
			case ccOK:
				s.ok++
				if r.n > s.ok+s.unknown || (!tainted && (r.n < s.ok || r.n <= s.last)) {
					v.add("%s: #%d INCR returned %d after %d acknowledged, %d unknown, last %d", k.name, i, r.n, s.ok, s.unknown, s.last)
				}
				s.last = r.n
			case ccUnknown:
				s.unknown++
			}
		case "rpush":
			s.tokens[r.arg] = i
			switch r.out {
			case ccOK:
				s.ok++
				s.okTokens = append(s.okTokens, r.arg)
				if r.n > s.ok+s.unknown || (!tainted && r.n < s.ok) {
					v.add("%s: #%d RPUSH returned length %d after %d acknowledged, %d unknown", k.name, i, r.n, s.ok, s.unknown)
				}
			case ccUnknown:
				s.unknown++
			case ccRefused:
				s.refused[r.arg] = true
			}
		case "set":
			s.written[r.arg] = true
			switch r.out {
			case ccOK:
				s.possible = map[string]bool{r.arg: true}
			case ccUnknown:
				s.possible[r.arg] = true
			}
		case "del":
			switch r.out {
			case ccOK:
				s.possible = map[string]bool{ccMissing: true}
			case ccUnknown:
				s.possible[ccMissing] = true
			}
		case "get", "mget":
			if r.s == nil {
				continue
			}
			if len(r.s) != len(r.keys) {
				v.add("%v: #%d %s returned %d values for %d keys", ccNames(r.keys), i, r.op, len(r.s), len(r.keys))
				continue
			}
			for j, kk := range r.keys {
				read(kk, r.s[j], i, r.op)
			}
		}
	}
	// The final state.
	eng := w.run.eng
	for _, k := range w.keys {
		s := state(k)
		tainted := w.run.tainted(k.slot)
		switch k.kind {
		case ccCounter:
			got, err := eng.Get(ctx, k.name).Await(ctx)
			n := int64(0)
			if err == nil {
				n, err = strconv.ParseInt(got, 10, 64)
			} else if errors.Is(err, engine.ErrNil) {
				err = nil
			}
			if err != nil {
				v.add("%s: final GET: %v", k.name, err)
				continue
			}
			if n > s.ok+s.unknown || (!tainted && n < s.ok) {
				v.add("%s: counter %d, want within [%d acknowledged, +%d unknown] (tainted %v)", k.name, n, s.ok, s.unknown, tainted)
			}
		case ccList:
			got, err := eng.LRange(ctx, k.name, 0, -1).Await(ctx)
			if err != nil {
				v.add("%s: final LRANGE: %v", k.name, err)
				continue
			}
			seen := map[string]bool{}
			prev := -1
			for _, tok := range got {
				idx, ours := s.tokens[tok]
				switch {
				case !ours:
					v.add("%s: token %q never pushed to it", k.name, tok)
				case seen[tok]:
					v.add("%s: token %q applied twice", k.name, tok)
				case s.refused[tok]:
					v.add("%s: token %q applied, but its RPUSH failed with an error that says it was not", k.name, tok)
				case idx < prev:
					v.add("%s: token %q (op #%d) after op #%d: applied out of issue order", k.name, tok, idx, prev)
				}
				seen[tok] = true
				prev = max(prev, idx)
			}
			if !tainted {
				for _, tok := range s.okTokens {
					if !seen[tok] {
						v.add("%s: acknowledged token %q missing", k.name, tok)
					}
				}
			}
		case ccStr:
			got, err := eng.Get(ctx, k.name).Await(ctx)
			var p *string
			if err == nil {
				p = &got
			} else if !errors.Is(err, engine.ErrNil) {
				v.add("%s: final GET: %v", k.name, err)
				continue
			}
			read(k, p, len(w.hist), "final GET")
		}
	}
}

func ccShow(s string) string {
	if s == ccMissing {
		return "(missing)"
	}
	return s
}

func ccSet(m map[string]bool) []string {
	var out []string
	for s := range m {
		out = append(out, ccShow(s))
	}
	slices.Sort(out)
	return out
}

// --- transactions ---

// ccTxWorker runs transactions that INCR two keys of one hash tag, with
// WatchRetry (reading both first: they must be equal) and with a plain Tx.
type ccTxWorker struct {
	run   *ccRun
	id    int
	rng   *rand.Rand
	pairs [2]ccTxPair
	bad   []string
}

type ccTxPair struct {
	a, b                 string
	slot                 int
	ok, unknown, refused int64
}

func (w *ccTxWorker) loop(stop *atomic.Bool) {
	eng := w.run.eng
	for p := range w.pairs {
		tag := fmt.Sprintf("{cctx:%d:%d}", w.id, p)
		w.pairs[p] = ccTxPair{a: tag + ":a", b: tag + ":b", slot: valkeytest.HashSlot(tag)}
	}
	for i := 0; i < ccMaxBursts && !stop.Load(); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), ccCmdTimeout)
		pi := w.rng.IntN(2)
		pr := &w.pairs[pi]
		start := time.Now()
		var err error
		if pi == 0 {
			err = eng.WatchRetry(ctx, 3, func(tx *engine.Tx) error {
				vals, err := tx.Read().MGet(ctx, pr.a, pr.b)
				if err != nil {
					return err
				}
				if s := ccPtr(vals[0]); s != ccPtr(vals[1]) && len(w.bad) < 5 {
					w.bad = append(w.bad, fmt.Sprintf("%s = %q, %s = %q inside WATCH", pr.a, s, pr.b, ccPtr(vals[1])))
				}
				tx.Incr(pr.a)
				tx.Incr(pr.b)
				return nil
			}, pr.a, pr.b)
		} else {
			tx := eng.Tx()
			tx.Incr(pr.a)
			tx.Incr(pr.b)
			err = tx.Exec(ctx)
		}
		cancel()
		w.run.noteLatency(time.Since(start), "transaction")
		what := "Tx.Exec"
		if pi == 0 {
			what = "WatchRetry"
		}
		switch w.run.classify(what, err) {
		case ccOK:
			pr.ok++
		case ccUnknown:
			pr.unknown++
		default:
			pr.refused++
		}
		time.Sleep(time.Millisecond)
	}
}

func ccPtr(s *string) string {
	if s == nil {
		return ccMissing
	}
	return *s
}

func (w *ccTxWorker) check(ctx context.Context, v *ccViolations) {
	for _, b := range w.bad {
		v.add("transaction isolation: %s", b)
	}
	for _, p := range w.pairs {
		vals, err := w.run.eng.MGet(ctx, p.a, p.b).Await(ctx)
		if err != nil {
			v.add("%s: final MGET: %v", p.a, err)
			continue
		}
		a, _ := strconv.ParseInt(ccPtr(vals[0]), 10, 64)
		b, _ := strconv.ParseInt(ccPtr(vals[1]), 10, 64)
		if a != b {
			v.add("transaction atomicity: %s = %d, %s = %d", p.a, a, p.b, b)
		}
		if a > p.ok+p.unknown || (!w.run.tainted(p.slot) && a < p.ok) {
			v.add("%s: %d transactions applied, want within [%d committed, +%d unknown]", p.a, a, p.ok, p.unknown)
		}
	}
}

// --- batch writer ---

type ccWriter struct {
	w    *engine.BatchWriter
	keys []string
	stp  atomic.Bool
	done chan struct{}

	mu      sync.Mutex
	written map[string]int64
	unknown map[string]int64
	failed  map[string]int64
	kinds   map[string]int
	summary string
}

func ccStartWriter(t *testing.T, eng *engine.Engine, seed uint64) *ccWriter {
	t.Helper()
	cw := &ccWriter{done: make(chan struct{}), written: map[string]int64{}, unknown: map[string]int64{},
		failed: map[string]int64{}, kinds: map[string]int{}}
	for i := range 40 {
		cw.keys = append(cw.keys, fmt.Sprintf("cc:bw:%d", i))
	}
	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{OnError: func(cmd []string, err error) {
		cw.mu.Lock()
		defer cw.mu.Unlock()
		if len(cmd) < 2 {
			cw.kinds["bad command "+strings.Join(cmd, " ")]++
			return
		}
		cw.failed[cmd[1]]++
		switch {
		case errors.Is(err, engine.ErrOutcomeUnknown):
			cw.unknown[cmd[1]]++
			cw.kinds["unknown"]++
		default:
			cw.kinds[ccFirstWords(err)]++
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	cw.w = w
	rng := rand.New(rand.NewPCG(seed, 7))
	go func() {
		defer close(cw.done)
		ctx := context.Background()
		for i := 0; i < 40000 && !cw.stp.Load(); i++ {
			k := cw.keys[rng.IntN(len(cw.keys))]
			if err := w.Incr(ctx, k); err != nil {
				cw.mu.Lock()
				cw.kinds["not queued: "+err.Error()]++
				cw.mu.Unlock()
				continue
			}
			cw.mu.Lock()
			cw.written[k]++
			cw.mu.Unlock()
			if i%20 == 19 {
				time.Sleep(2 * time.Millisecond)
			}
		}
	}()
	return cw
}

func ccFirstWords(err error) string {
	s := err.Error()
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

func (cw *ccWriter) stop() {
	cw.stp.Store(true)
	<-cw.done
}

func (cw *ccWriter) finish(t *testing.T, ctx context.Context) {
	fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := cw.w.Flush(fctx); err != nil {
		t.Errorf("BatchWriter.Flush: %v", err)
	}
	if err := cw.w.Close(fctx); err != nil {
		t.Errorf("BatchWriter.Close: %v", err)
	}
	st := cw.w.Stats()
	cw.mu.Lock()
	defer cw.mu.Unlock()
	cw.summary = fmt.Sprintf("%d written, %d acknowledged, %d failed %v, %d redirects", st.Written, st.Acknowledged, st.Failed, cw.kinds, st.Redirects)
	if st.Acknowledged+st.Failed != st.Written || st.Pending != 0 {
		t.Errorf("batch writer: %s, %d pending: acknowledged + failed != written", cw.summary, st.Pending)
	}
}

func (cw *ccWriter) check(ctx context.Context, run *ccRun, v *ccViolations) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	for k, what := range cw.kinds {
		if strings.HasPrefix(k, "not queued") || strings.HasPrefix(k, "bad command") {
			v.add("batch writer: %d × %s", what, k)
		}
	}
	for _, k := range cw.keys {
		got, err := run.eng.Get(ctx, k).Await(ctx)
		n := int64(0)
		if err == nil {
			n, err = strconv.ParseInt(got, 10, 64)
		} else if errors.Is(err, engine.ErrNil) {
			err = nil
		}
		if err != nil {
			v.add("batch writer %s: final GET: %v", k, err)
			continue
		}
		acked := cw.written[k] - cw.failed[k]
		if n > acked+cw.unknown[k] || (!run.tainted(valkeytest.HashSlot(k)) && n < acked) {
			v.add("batch writer %s: counter %d, want within [%d acknowledged, +%d unknown]", k, n, acked, cw.unknown[k])
		}
	}
}

// --- pub/sub ---

type ccPubSub struct {
	eng      *engine.Engine
	sharded  *engine.Subscription
	plain    *engine.Subscription
	channels []string // shard channels, then the plain one
	plainCh  string
	stp      atomic.Bool
	pubDone  chan struct{}
	readers  sync.WaitGroup

	mu        sync.Mutex
	seq       int64            // last sequence number published
	last      map[string]int64 // per channel: last received
	bad       []string
	events    map[string]int
	received  int
	pubErr    map[string]string // "channel seq" -> the SPUBLISH's error
	lastAddr  map[string]string
	timeline  []string
	movedAt   time.Time // the last Resubscribed (connection or shard channel)
	reordered int       // messages out of order or repeated in the server's order
}

// ccReorderWindow is how long after a resubscription a shard channel's
// messages may come out of order or twice (see ccPubSub.read).
const ccReorderWindow = time.Second

func ccStartPubSub(t *testing.T, ctx context.Context, eng *engine.Engine, c *valkeytest.Cluster) *ccPubSub {
	t.Helper()
	ps := &ccPubSub{eng: eng, pubDone: make(chan struct{}), last: map[string]int64{}, events: map[string]int{}, plainCh: "cc:plain", pubErr: map[string]string{}, lastAddr: map[string]string{}}
	// Two shard channels per primary.
	per := map[string]int{}
	for i := 0; len(ps.channels) < 2*len(c.Primaries()); i++ {
		ch := fmt.Sprintf("cc:sch:%d", i)
		owner, err := c.NodeForSlot(valkeytest.HashSlot(ch))
		if err != nil {
			t.Fatal(err)
		}
		if per[owner.Addr()] < 2 {
			per[owner.Addr()]++
			ps.channels = append(ps.channels, ch)
		}
	}
	var err error
	if ps.sharded, err = eng.SSubscribe(ctx, ps.channels...); err != nil {
		t.Fatalf("SSubscribe: %v", err)
	}
	if ps.plain, err = eng.Subscribe(ctx, ps.plainCh); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	for _, sub := range []*engine.Subscription{ps.sharded, ps.plain} {
		ps.readers.Go(func() { ps.read(sub) })
	}
	go ps.publish()
	return ps
}

func (ps *ccPubSub) read(sub *engine.Subscription) {
	for ev := range sub.Channel() {
		ps.mu.Lock()
		switch ev.Kind {
		case engine.SubMessage:
			ps.received++
			n, err := strconv.ParseInt(ev.Message.Payload, 10, 64)
			switch {
			case err != nil:
				ps.bad = append(ps.bad, fmt.Sprintf("%s: payload %q", ev.Message.Channel, ev.Message.Payload))
			case n <= ps.last[ev.Message.Channel] && (ev.Message.Channel == ps.plainCh || time.Since(ps.movedAt) < ccReorderWindow):
				// The server's order, not the engine's: PUBLISH goes to
				// the primaries in turn (keyless) and reaches the
				// subscriber's node over the cluster bus from each; an
				// SPUBLISH is propagated to the shard's replicas over the
				// bus, so one run on the old primary just before a
				// failover reaches the new primary's subscribers after
				// those run on it (measured: 20 ms later).
				ps.reordered++
			case n <= ps.last[ev.Message.Channel]:
				if len(ps.bad) < 10 {
					ch, last := ev.Message.Channel, ps.last[ev.Message.Channel]
					ps.bad = append(ps.bad, fmt.Sprintf("%s: message %d from %s after %d from %s (duplicate or out of order); SPUBLISH %d: %s; %d: %s; %d: %s",
						ch, n, ev.Addr, last, ps.lastAddr[ch], n, ps.pubErr[fmt.Sprintf("%s %d", ch, n)], n+1, ps.pubErr[fmt.Sprintf("%s %d", ch, n+1)], last, ps.pubErr[fmt.Sprintf("%s %d", ch, last)]))
					ps.timeline = append(ps.timeline, fmt.Sprintf("%s %s %d from %s (late)", time.Now().Format("15:04:05.000"), ch, n, ev.Addr))
				}
			default:
				if a := ps.lastAddr[ev.Message.Channel]; a != ev.Addr {
					ps.timeline = append(ps.timeline, fmt.Sprintf("%s %s %d from %s (was %s)", time.Now().Format("15:04:05.000"), ev.Message.Channel, n, ev.Addr, a))
				}
				ps.last[ev.Message.Channel] = n
				ps.lastAddr[ev.Message.Channel] = ev.Addr
			}
		default:
			k := ev.Kind.String()
			if ev.ShardChannel != "" {
				k += " (channel)"
			}
			ps.events[k]++
			if ev.Kind == engine.Resubscribed {
				ps.movedAt = time.Now()
			}
			ps.timeline = append(ps.timeline, fmt.Sprintf("%s %s %s %s %v", time.Now().Format("15:04:05.000"), k, ev.Addr, ev.ShardChannel, ev.Err))
		}
		ps.mu.Unlock()
	}
}

// publish sends an increasing sequence number to every channel, each
// publish awaited, every 5 ms, until stopped.
func (ps *ccPubSub) publish() {
	defer close(ps.pubDone)
	for !ps.stp.Load() {
		ps.mu.Lock()
		ps.seq++
		n := strconv.FormatInt(ps.seq, 10)
		ps.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fs := make([]*futures.Future[int64], 0, len(ps.channels)+1)
		for _, ch := range ps.channels {
			fs = append(fs, ps.eng.SPublish(ctx, ch, n))
		}
		fs = append(fs, ps.eng.Publish(ctx, ps.plainCh, n))
		t0 := time.Now()
		for i, f := range fs {
			_, err := f.Await(ctx) // failures while the faults last are expected
			if err != nil && i < len(ps.channels) {
				ps.mu.Lock()
				ps.pubErr[ps.channels[i]+" "+n] = fmt.Sprintf("%v after %s", err, time.Since(t0).Round(time.Millisecond))
				ps.mu.Unlock()
			}
		}
		cancel()
		time.Sleep(5 * time.Millisecond)
	}
}

// awaitRecovery waits until every channel received a message published
// after from; it returns how long after from that was.
func (ps *ccPubSub) awaitRecovery(t *testing.T, from time.Time) time.Duration {
	t.Helper()
	ps.mu.Lock()
	mark := ps.seq
	ps.mu.Unlock()
	all := append(slices.Clone(ps.channels), ps.plainCh)
	deadline := from.Add(ccBound)
	for {
		ps.mu.Lock()
		var behind []string
		for _, ch := range all {
			if ps.last[ch] <= mark {
				behind = append(behind, fmt.Sprintf("%s (last %d, mark %d)", ch, ps.last[ch], mark))
			}
		}
		ps.mu.Unlock()
		if len(behind) == 0 {
			return time.Since(from)
		}
		if time.Now().After(deadline) {
			t.Errorf("subscribers: %v received nothing published since the faults ended (+%s); events %v",
				behind, time.Since(from).Round(time.Millisecond), ps.events)
			return time.Since(from)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (ps *ccPubSub) check(v *ccViolations) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, b := range ps.bad {
		v.add("pub/sub: %s", b)
	}
	if len(ps.bad) > 0 {
		v.add("pub/sub timeline:\n%s", strings.Join(ps.timeline, "\n"))
	}
}

func (ps *ccPubSub) close() {
	ps.stp.Store(true)
	<-ps.pubDone
	_ = ps.sharded.Close()
	_ = ps.plain.Close()
	ps.readers.Wait()
}

// --- faults ---

// ccLiveSlots returns the slots of the keys and channels in use.
func ccLiveSlots(ws []*ccWorker, txws []*ccTxWorker, ps *ccPubSub) []int {
	var slots []int
	for _, w := range ws {
		for _, k := range w.keys {
			slots = append(slots, k.slot)
		}
	}
	for i := range txws {
		for p := range 2 {
			slots = append(slots, valkeytest.HashSlot(fmt.Sprintf("{cctx:%d:%d}", i, p)))
		}
	}
	for _, ch := range ps.channels {
		slots = append(slots, valkeytest.HashSlot(ch))
	}
	slices.Sort(slots)
	return slices.Compact(slots)
}

// ccInject runs one failover, one slot migration and one primary kill in
// a random order, then ccExtraFaults more of random kinds, with random
// pauses under load between them; a killed primary is restarted (as a
// replica) before the next kill and at the end. It returns how long that
// took.
func ccInject(t *testing.T, c *valkeytest.Cluster, run *ccRun, rng *rand.Rand, live []int) time.Duration {
	t.Helper()
	start := time.Now()
	pause := func() { time.Sleep(time.Duration(150+rng.IntN(350)) * time.Millisecond) }
	note := func(format string, args ...any) {
		run.mu.Lock()
		run.faults = append(run.faults, fmt.Sprintf("+%.1fs (%s) ", time.Since(start).Seconds(), time.Now().Format("15:04:05.000"))+fmt.Sprintf(format, args...))
		run.mu.Unlock()
	}
	running := func(ns []*valkeytest.ClusterNode) []*valkeytest.ClusterNode {
		return slices.DeleteFunc(ns, func(n *valkeytest.ClusterNode) bool { return n.Pid() == 0 })
	}
	var killed *valkeytest.ClusterNode
	recent := map[string]bool{} // the nodes of the shard of the last failover or kill
	// repaired reports whether err, the health failure of a fault step
	// (what), was a slot served by no node, then repaired. Redis 7.0
	// left a slot with no owner in the view of the very primary the
	// others saw serving it, once in ~25-100 runs: after a slot move to a
	// primary, its kill and its restart as a replica of the node that
	// took over (seed 1796338005412489245, "cluster node 4 ... sees slot
	// 13386 served by no node"), and after a manual failover (seed
	// 1796360432463969370, "node 3 ... sees slot 16136 served by no node
	// (seen as node 0: node 3 epoch 9, ..., node 3: none, node 4: none"):
	// the new primary does not claim a slot the others give it. The
	// cluster does not leave that state by itself; redis-cli --cluster fix
	// would repair it, and the engine sends no cluster administration
	// command that could cause it. The audit is about the engine: repair
	// it, and say so. Any other health failure fails.
	repaired := func(what string, err error, t0 time.Time) bool {
		if !errors.Is(err, valkeytest.ErrSlotUnserved) {
			return false
		}
		fixes, ferr := c.FixSlots()
		if ferr != nil {
			t.Fatalf("%s: %v; FixSlots: %v", what, err, ferr)
		}
		t.Logf("%s: %v; repaired with FixSlots:", what, err)
		// A primary that saw no owner for a slot it had served may have
		// dropped the slot's keys (seed 1796408499021154245: a counter of
		// slot 12911 went from 15 back to 1 across the repair): the server
		// lost them, not the engine, so those slots are tainted like a
		// killed primary's.
		run.mu.Lock()
		for _, f := range fixes {
			t.Logf("  %v", f)
			for s := f.First; s <= f.Last; s++ {
				run.taint[s] = true
			}
		}
		run.mu.Unlock()
		note("%s, %d slot ranges served by no node repaired (%s)", what, len(fixes), time.Since(t0).Round(time.Millisecond))
		return true
	}
	restart := func() {
		t0 := time.Now()
		err := c.RestartNode(killed)
		if repaired("RestartNode("+killed.Addr()+")", err, t0) {
			killed = nil
			return
		}
		if err != nil {
			t.Fatalf("RestartNode(%s): %v", killed.Addr(), err)
		}
		note("restarted %s (%s)", killed.Addr(), time.Since(t0).Round(time.Millisecond))
		killed = nil
	}
	// Each kind once in a random order, then ccExtraFaults more of any kind.
	plan := rng.Perm(3)
	for range ccExtraFaults {
		plan = append(plan, rng.IntN(3))
	}
	pause()
	for _, f := range plan {
		switch f {
		case 0: // a replica takes over with CLUSTER FAILOVER
			// Not in the shard of the previous failover or kill: Redis 7.0
			// refused a manual failover (the replica won its election, then
			// saw a newer epoch and went back to being a replica: Failover
			// timed out) in a shard that failed over twice in the 1.2 s
			// before.
			rs := running(c.Replicas())
			if fresh := slices.DeleteFunc(slices.Clone(rs), func(r *valkeytest.ClusterNode) bool {
				return recent[r.Addr()] || recent[ccPrimaryOf(t, r)]
			}); len(fresh) > 0 {
				rs = fresh
			}
			if len(rs) == 0 {
				t.Fatal("no running replica to fail over")
			}
			r := rs[rng.IntN(len(rs))]
			old := ccPrimaryOf(t, r)
			t0 := time.Now()
			recent = map[string]bool{r.Addr(): true, old: true}
			if err := c.Failover(r); repaired("Failover("+r.Addr()+")", err, t0) {
				if v, err := r.Do("ROLE"); err != nil {
					t.Fatalf("ROLE on %s: %v", r.Addr(), err)
				} else if f, _ := v.([]any); len(f) == 0 || f[0] != "master" {
					t.Fatalf("Failover(%s): ROLE %v after the repair, want master", r.Addr(), v)
				}
			} else if err != nil {
				t.Fatalf("Failover(%s): %v", r.Addr(), err)
			} else {
				note("failover to %s (%s)", r.Addr(), time.Since(t0).Round(time.Millisecond))
			}
		case 1: // slots with live keys move to another primary
			slot := live[rng.IntN(len(live))]
			from, err := c.NodeForSlot(slot)
			if err != nil {
				t.Fatal(err)
			}
			slots := []int{slot}
			for _, s := range live { // up to 3 more live slots of the same owner
				if o, err := c.NodeForSlot(s); err == nil && o == from && s != slot && len(slots) < 4 && rng.IntN(4) == 0 {
					slots = append(slots, s)
				}
			}
			ps := slices.DeleteFunc(running(c.Primaries()), func(n *valkeytest.ClusterNode) bool { return n == from })
			to := ps[rng.IntN(len(ps))]
			t0 := time.Now()
			if err := c.MigrateSlots(from, to, slots); err != nil {
				t.Fatalf("MigrateSlots(%s -> %s, %v): %v", from.Addr(), to.Addr(), slots, err)
			}
			note("migrated slots %v %s -> %s (%s)", slots, from.Addr(), to.Addr(), time.Since(t0).Round(time.Millisecond))
		case 2: // a primary is killed; its replica takes over
			if killed != nil {
				restart() // so that every shard has a replica again
				pause()
			}
			ps := running(c.Primaries())
			if fresh := slices.DeleteFunc(slices.Clone(ps), func(p *valkeytest.ClusterNode) bool { return recent[p.Addr()] }); len(fresh) > 0 {
				ps = fresh // as for failovers: not the shard touched last
			}
			victim := ps[rng.IntN(len(ps))]
			ranges, err := c.SlotsOf(victim)
			if err != nil {
				t.Fatal(err)
			}
			run.mu.Lock()
			for _, r := range ranges {
				for s := r[0]; s <= r[1]; s++ {
					run.taint[s] = true
				}
			}
			run.mu.Unlock()
			t0 := time.Now()
			if err := c.KillPrimary(victim); err != nil {
				t.Fatal(err)
			}
			if err := c.WaitFailover(victim, 15*time.Second); err != nil {
				// A node other than the victim's replicas noted at the kill
				// took its slots over (seen once: "slot 0 ... is served by
				// <id>, not by a former replica"). Which node took over is
				// the cluster's business; what the audit needs is a healthy
				// cluster whose running primaries serve every slot.
				if herr := c.WaitHealthy(15 * time.Second); herr != nil && !repaired("WaitFailover("+victim.Addr()+"), WaitHealthy", herr, t0) {
					t.Fatalf("WaitFailover(%s): %v; WaitHealthy: %v", victim.Addr(), err, herr)
				}
				t.Logf("WaitFailover(%s): %v; the cluster is healthy all the same", victim.Addr(), err)
			}
			killed = victim
			recent = map[string]bool{victim.Addr(): true}
			if p, err := c.NodeForSlot(ranges[0][0]); err == nil {
				recent[p.Addr()] = true
			}
			note("killed primary %s, failed over (%s)", victim.Addr(), time.Since(t0).Round(time.Millisecond))
		}
		pause()
	}
	if killed != nil {
		restart()
	}
	if err := c.WaitHealthy(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// ccPrimaryOf returns the address of the primary the replica r follows.
func ccPrimaryOf(t *testing.T, r *valkeytest.ClusterNode) string {
	t.Helper()
	v, err := r.Do("ROLE")
	if err != nil {
		t.Fatalf("ROLE on %s: %v", r.Addr(), err)
	}
	f, _ := v.([]any)
	if len(f) < 3 {
		t.Fatalf("ROLE on %s = %v", r.Addr(), v)
	}
	return fmt.Sprintf("%v:%v", f[1], f[2])
}

// ccServeAllSlots checks that the engine serves every one of the 16384
// slots (a SET to a key of each succeeds) soon after the cluster is
// healthy again; it returns how long after healthy that was.
func ccServeAllSlots(t *testing.T, eng *engine.Engine, healthy time.Time) time.Duration {
	t.Helper()
	keys := make([]string, 16384)
	left := 16384
	for i := 0; left > 0; i++ {
		k := "cc:slot:{" + strconv.Itoa(i) + "}"
		if s := valkeytest.HashSlot(k); keys[s] == "" {
			keys[s] = k
			left--
		}
	}
	// docs/cluster.md: a promotion is followed within about 250 ms, and
	// the frozen-primary test serves the slots < 1 s after it; the sweep
	// itself (16384 SETs under -race) takes a few hundred ms.
	const limit = 3 * time.Second
	pending := keys
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fs := make([]*futures.Future[struct{}], len(pending))
		for i, k := range pending {
			fs[i] = eng.Set(ctx, k, "x", 0)
		}
		var failed []string
		var lastErr error
		for i, f := range fs {
			if err := f.Err(ctx); err != nil {
				failed = append(failed, pending[i])
				lastErr = err
			}
		}
		cancel()
		if len(failed) == 0 {
			d := time.Since(healthy)
			if d > limit {
				t.Errorf("all slots served %s after the cluster was healthy, want < %s", d, limit)
			}
			return d
		}
		if time.Since(healthy) > limit {
			t.Errorf("%d slots not served %s after the cluster was healthy (last error %v)", len(failed), time.Since(healthy), lastErr)
			return time.Since(healthy)
		}
		pending = failed
		time.Sleep(20 * time.Millisecond)
	}
}

// A command whose slot no node serves in the engine's slot map, read
// again at once (a primary failed and no replica has taken over yet; here
// a map that leaves half the slots unassigned), fails unsent with the
// typed ErrNoSlotOwner, which policies.IsRetryable accepts: through the
// futures, a Tx and Watch (both unsent). It failed with an untyped error
// ("no cluster node serves slot N") that no errors.Is and no IsRetryable
// recognised (found by TestAuditChaosCluster while a killed primary's
// replica was not promoted yet).
func TestAuditClusterNoSlotOwnerTyped(t *testing.T) {
	defer noLeakWithin(t, lingerDial, goleak.IgnoreCurrent())
	srv, served, orphan := halfSlotsServer(t)
	defer srv.Close() // before the leak check
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithClusterMode(true))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if v, err := eng.Get(ctx, served).Await(ctx); err != nil || v != "ok" {
		t.Fatalf("GET of a served slot = %q, %v", v, err)
	}
	want := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, engine.ErrNoSlotOwner) || !policies.IsRetryable(err) {
			t.Errorf("%s on a slot no node serves: %v (%T); want ErrNoSlotOwner, retryable", what, err, err)
		}
	}
	_, err := eng.Get(ctx, orphan).Await(ctx)
	want("GET", err)
	_, err = eng.Do(ctx, "SET", orphan, "v").Await(ctx)
	want("Do SET", err)
	tx := eng.Tx()
	tx.Incr(orphan)
	want("Tx.Exec", tx.Exec(ctx))
	want("Watch", eng.Watch(ctx, func(tx *engine.Tx) error { return nil }, orphan))
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
}
