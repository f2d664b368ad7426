package engine_test

// A BatchWriter's OnError that calls the writer's Close or Flush, or the
// engine's Close: none waits for the callback in progress, its caller.
// Before, each waited for itself: the tests then fail after hcLimit with
// "deadlock" (and leave what deadlocked open rather than hang the package
// in its cleanup).
//
// Each writer has one connection (ConnsPerNode 1), so that while the
// callback for a failed INCR (WRONGTYPE) runs on it, the commands written
// after stay queued: the tests know which are sent and which are not.

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// owPre and owQueued are how many SETs a test writes before the failing
// INCR (sent) and while its callback runs (queued).
const owPre, owQueued = 10, 100

// owRun is one writer whose OnError holds the connection's goroutine in
// the callback for the failing INCR (first) until ready is closed, then
// calls first; the callbacks for the other commands (the queued ones,
// failed by the stop) call rest.
type owRun struct {
	w                     *engine.BatchWriter
	errs                  bwErrors
	inFirst, ready, fdone chan struct{}
	once                  sync.Once
}

func newOWRun(t *testing.T, eng *engine.Engine, first func(), rest func(err error)) *owRun {
	t.Helper()
	r := &owRun{inFirst: make(chan struct{}), ready: make(chan struct{}), fdone: make(chan struct{})}
	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{ConnsPerNode: 1, OnError: func(cmd []string, err error) {
		r.errs.on(cmd, err)
		if cmd[0] != "INCR" {
			if rest != nil {
				rest(err)
			}
			return
		}
		r.once.Do(func() {
			close(r.inFirst)
			<-r.ready
			first()
			close(r.fdone)
		})
	}})
	if err != nil {
		t.Fatal(err)
	}
	r.w = w
	return r
}

// write writes the SETs owPre, the INCR of a list (WRONGTYPE), and once
// its callback runs the owQueued SETs queued behind it; then it lets the
// callback go on (first) and waits for it to be over.
func (r *owRun) write(t *testing.T, ctx context.Context, eng *engine.Engine, what string) {
	t.Helper()
	if _, err := eng.LPush(ctx, "ow:list", "a").Await(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range owPre {
		if err := r.w.Set(ctx, bwKey("ow:pre", i), "v", 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.w.Incr(ctx, "ow:list"); err != nil {
		t.Fatal(err)
	}
	hcWait(t, r.inFirst, "the INCR's OnError call")
	for i := range owQueued {
		if err := r.w.Set(ctx, bwKey("ow:q", i), "v", 0); err != nil {
			t.Fatal(err)
		}
	}
	close(r.ready)
	hcWait(t, r.fdone, what)
}

// closeWaits closes the writer from the test's goroutine, which waits for
// the stop to be over, and returns its error (ErrClosed: already closed).
func (r *owRun) closeWaits(t *testing.T) error {
	t.Helper()
	ended := make(chan struct{})
	var err error
	go func() {
		err = r.w.Close(context.Background())
		close(ended)
	}()
	hcWait(t, ended, "the writer's stop to be over")
	return err
}

// check asserts the accounting once the writer has stopped: the SETs
// before the INCR acknowledged and present, the INCR failed with
// WRONGTYPE, each queued SET reported failed once with ErrClosed and not
// sent, and Stats consistent with the reports.
func (r *owRun) check(t *testing.T, ctx context.Context, eng *engine.Engine) {
	t.Helper()
	st := r.w.Stats()
	bwCheckDone(t, st, r.errs.len())
	if st.Written != owPre+1+owQueued || st.Acknowledged != owPre || st.Failed != 1+owQueued {
		t.Fatalf("stats %s, want %d written, %d acknowledged, %d failed", st, owPre+1+owQueued, owPre, 1+owQueued)
	}
	seen := map[string]int{}
	for i, cmd := range r.errs.cmds {
		err := r.errs.errs[i]
		seen[cmd[1]]++
		switch {
		case cmd[0] == "INCR":
			if !errors.Is(err, &engine.ServerError{Prefix: "WRONGTYPE"}) {
				t.Fatalf("OnError(%q, %v), want WRONGTYPE", cmd, err)
			}
		case !errors.Is(err, engine.ErrClosed):
			t.Fatalf("OnError(%q, %v), want ErrClosed (queued when the writer stopped)", cmd, err)
		}
	}
	for i := range owQueued {
		if n := seen[bwKey("ow:q", i)]; n != 1 {
			t.Fatalf("%s reported %d times, want once", bwKey("ow:q", i), n)
		}
	}
	pre := make([]string, owPre)
	for i := range pre {
		pre[i] = bwKey("ow:pre", i)
	}
	if lost := bwMissing(t, ctx, eng, pre); len(lost) > 0 {
		t.Fatalf("acknowledged keys missing: %q", lost)
	}
	queued := make([]string, owQueued)
	for i := range queued {
		queued[i] = bwKey("ow:q", i)
	}
	if n := len(bwMissing(t, ctx, eng, queued)); n != owQueued {
		t.Fatalf("%d of the %d SETs failed with ErrClosed were written", owQueued-n, owQueued)
	}
}

// OnError closes its writer: Close returns nil at once (a second Close
// ErrClosed at once, a Write ErrClosed); the commands queued behind the
// failed one are reported failed with ErrClosed (on the stopping
// goroutine, whose own Flush and Close from OnError do not wait either);
// a Close from the test's goroutine waits for the stop and returns
// ErrClosed; nothing is lost or reported twice, and the writer's
// goroutines are gone while the engine lives on.
func TestBatchWriterOnErrorCloses(t *testing.T) {
	srv := valkeytest.Start(t)
	eng, closeEng := hcEngine(t, srv)
	defer closeEng()
	ctx := ctxT(t)
	if err := eng.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	writerOnly := goleak.IgnoreCurrent()

	var closeErr, againErr, writeErr error
	var r *owRun
	var restOnce sync.Once
	var restFlush, restClose error
	r = newOWRun(t, eng, func() {
		start := time.Now()
		closeErr = r.w.Close(ctx)
		againErr = r.w.Close(ctx)
		writeErr = r.w.Set(ctx, "ow:late", "v", 0)
		if d := time.Since(start); d > scLimit {
			t.Errorf("Close from OnError took %s", d)
		}
	}, func(error) {
		restOnce.Do(func() {
			restFlush = r.w.Flush(ctx)
			restClose = r.w.Close(ctx)
		})
	})
	r.write(t, ctx, eng, "Close called from OnError returned")
	if closeErr != nil {
		t.Fatalf("Close from OnError: %v, want nil", closeErr)
	}
	if !errors.Is(againErr, engine.ErrClosed) || !errors.Is(writeErr, engine.ErrClosed) {
		t.Fatalf("from OnError after its Close: Close %v, Write %v; want ErrClosed", againErr, writeErr)
	}
	if err := r.closeWaits(t); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Close after the Close from OnError: %v, want ErrClosed", err)
	}
	if !errors.Is(restFlush, engine.ErrInOnError) || !errors.Is(restClose, engine.ErrClosed) {
		t.Fatalf("from OnError on the stopping goroutine: Flush %v (want ErrInOnError), Close %v (want ErrClosed)", restFlush, restClose)
	}
	r.check(t, ctx, eng)
	if err := r.w.Set(ctx, "ow:late", "v", 0); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Write after the stop: %v, want ErrClosed", err)
	}
	goleak.VerifyNone(t, writerOnly)
	if err := eng.Ping(ctx); err != nil {
		t.Fatalf("the engine after the writer's Close from OnError: %v", err)
	}
}

// OnError flushes its writer: Flush returns ErrInOnError at once, both on
// a connection's goroutine (a failed reply) and on the goroutine that
// stops the writer (a queued command failed by the engine's Close), and
// changes nothing: the writer goes on, and a Flush from elsewhere waits
// for everything.
func TestBatchWriterOnErrorFlushes(t *testing.T) {
	t.Run("reply", func(t *testing.T) {
		srv := valkeytest.Start(t)
		eng, closeEng := hcEngine(t, srv)
		defer closeEng()
		ctx := ctxT(t)
		var flushErr error
		var took time.Duration
		var r *owRun
		r = newOWRun(t, eng, func() {
			start := time.Now()
			flushErr = r.w.Flush(ctx)
			took = time.Since(start)
		}, nil)
		r.write(t, ctx, eng, "Flush called from OnError returned")
		if !errors.Is(flushErr, engine.ErrInOnError) || took > scLimit {
			t.Fatalf("Flush from OnError: %v after %s, want ErrInOnError at once", flushErr, took)
		}
		if err := r.w.Flush(ctx); err != nil {
			t.Fatalf("Flush: %v", err)
		}
		st := r.w.Stats()
		bwCheckDone(t, st, r.errs.len())
		if st.Acknowledged != owPre+owQueued || st.Failed != 1 {
			t.Fatalf("stats %s, want %d acknowledged, 1 failed", st, owPre+owQueued)
		}
		if err := r.w.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})
	t.Run("stop", func(t *testing.T) {
		srv := valkeytest.Start(t)
		defer subNoLeak(t)()
		eng, closeEng := hcEngine(t, srv)
		defer closeEng()
		ctx := ctxT(t)
		var (
			r         *owRun
			stopFlush = make(chan error, 1)
			release   = make(chan struct{})
			once      sync.Once
		)
		// The INCR's callback returns once a queued command's callback
		// (the engine's Close stopping the writer) has flushed.
		r = newOWRun(t, eng, func() { <-release }, func(err error) {
			once.Do(func() {
				stopFlush <- r.w.Flush(ctx)
				close(release)
			})
		})
		closed := make(chan struct{})
		var closeErr error
		go func() {
			<-r.ready
			closeErr = eng.Close()
			close(closed)
		}()
		r.write(t, ctx, eng, "the INCR's callback released by the Flush from OnError on the stopping goroutine")
		hcWait(t, closed, "the engine's Close")
		if closeErr != nil {
			t.Fatalf("engine Close: %v", closeErr)
		}
		if err := <-stopFlush; !errors.Is(err, engine.ErrInOnError) {
			t.Fatalf("Flush from OnError on the stopping goroutine: %v, want ErrInOnError", err)
		}
		if err := r.closeWaits(t); !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("Close after the engine's: %v, want ErrClosed", err)
		}
		check, closeCheck := hcEngine(t, srv)
		defer closeCheck()
		r.check(t, ctx, check)
	})
}

// OnError closes the engine (with DrainTimeout 0 too): the engine's Close
// returns (nil) while the callback still runs, with the engine's other
// services stopped; from the callback, the writer's Close then returns
// ErrClosed and its Flush ErrInOnError at once; the commands queued
// behind the failed one are reported failed with ErrClosed; once the
// callback has returned the writer stops (a Close from the test's
// goroutine waits for that) and no goroutine is left.
func TestBatchWriterOnErrorClosesEngine(t *testing.T) {
	for _, drain := range []time.Duration{config.DefaultConfig().DrainTimeout, 0} {
		t.Run("drain="+drain.String(), func(t *testing.T) {
			srv, eng, done := hcDrainEngine(t, drain)
			defer done()
			ctx := ctxT(t)
			other := hcOther(t, ctx, eng)
			var (
				r                   *owRun
				closeErr            error
				wClose, wFlush, set error
				otherDone           bool
			)
			r = newOWRun(t, eng, func() {
				closeErr = eng.Close()
				otherDone = hcIsClosed(other.Done())
				wClose = r.w.Close(ctx)
				wFlush = r.w.Flush(ctx)
				_, set = eng.Set(ctx, "k", "v", 0).Await(ctx)
			}, nil)
			r.write(t, ctx, eng, "the engine's Close called from OnError returned")
			if closeErr != nil {
				t.Fatalf("engine Close from OnError: %v", closeErr)
			}
			if !otherDone {
				t.Fatal("a consumer still running when the engine's Close returned")
			}
			if !errors.Is(wClose, engine.ErrClosed) || !errors.Is(wFlush, engine.ErrInOnError) || !errors.Is(set, engine.ErrClosed) {
				t.Fatalf("from OnError after the engine's Close: writer Close %v (want ErrClosed), Flush %v (want ErrInOnError), SET %v (want ErrClosed)", wClose, wFlush, set)
			}
			if err := r.closeWaits(t); !errors.Is(err, engine.ErrClosed) {
				t.Fatalf("writer Close after the engine's: %v, want ErrClosed", err)
			}
			check, closeCheck := hcEngine(t, srv)
			defer closeCheck()
			r.check(t, ctx, check)
		})
	}
}

// OnError calls the engine's Close while another goroutine's Close runs
// (which waits for the writer, hence for the callback): it returns
// ErrClosed at once, and the other Close then returns nil.
func TestBatchWriterOnErrorClosesEngineDuringClose(t *testing.T) {
	srv := valkeytest.Start(t)
	defer subNoLeak(t)()
	eng, closeEng := hcEngine(t, srv)
	defer closeEng()
	ctx := ctxT(t)
	if _, err := eng.LPush(ctx, "ow:list", "a").Await(ctx); err != nil {
		t.Fatal(err)
	}
	inner := make(chan scResult, 1)
	outer := make(chan scResult, 1)
	var once sync.Once
	var calls atomic.Int32
	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{OnError: func([]string, error) {
		calls.Add(1)
		once.Do(func() { hcCloseDuringClose(ctx, eng, inner, outer) })
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Incr(ctx, "ow:list"); err != nil {
		t.Fatal(err)
	}
	res := scAwait(t, inner, "the engine's Close from OnError while another Close runs")
	if !errors.Is(res.err, engine.ErrClosed) {
		t.Errorf("the callback's Close = %v, want ErrClosed (another Close runs)", res.err)
	}
	if o := scAwait(t, outer, "the other Close"); o.err != nil {
		t.Errorf("the other Close = %v, want nil", o.err)
	}
	st := w.Stats()
	bwCheckDone(t, st, int(calls.Load()))
	if st.Written != 1 || st.Failed != 1 {
		t.Fatalf("stats %s, want the INCR written and failed", st)
	}
}

// OnError writes, the queue full (MaxPending), under either Backpressure:
// a Write from the callback never waits for room (the commands queued
// behind the reported one wait for the callback), but it may use the room
// of the failed commands being reported, so a callback that writes each
// failed command again (a retry) always finds room; beyond that room it
// fails with ErrBackpressure at once. Before, under BackpressureBlock,
// the retry waited until its ctx ended ("deadlock" after hcLimit).
func TestBatchWriterOnErrorWrites(t *testing.T) {
	const maxPending = 8
	for _, policy := range []config.BackpressurePolicy{config.BackpressureBlock, config.BackpressureReject} {
		t.Run(policy.String(), func(t *testing.T) {
			srv := valkeytest.Start(t)
			eng, closeEng := hcEngine(t, srv)
			defer closeEng()
			ctx := ctxT(t)
			if _, err := eng.LPush(ctx, "ow:list", "a").Await(ctx); err != nil {
				t.Fatal(err)
			}
			var (
				w        *engine.BatchWriter
				errs     bwErrors
				mu       sync.Mutex
				retryErr []error
				extraErr error
				slowest  time.Duration
				calls    int
				cbDone   = make(chan struct{}, maxPending)
			)
			w, err := eng.NewBatchWriter(engine.BatchWriterOptions{
				ConnsPerNode: 1, MaxPending: maxPending, Backpressure: policy,
				OnError: func(cmd []string, err error) {
					errs.on(cmd, err)
					defer func() { cbDone <- struct{}{} }()
					wctx, cancel := context.WithTimeout(ctx, hcLimit)
					defer cancel()
					start := time.Now()
					// The retry: the failed INCR's key is a list; count
					// it in a key of its own instead.
					rerr := w.Write(wctx, "INCR", "ow:retried:"+cmd[1])
					mu.Lock()
					defer mu.Unlock()
					retryErr = append(retryErr, rerr)
					if calls++; calls == maxPending {
						// The last callback writes until refused.
						for i := range 10 * maxPending { // more than any room
							if extraErr = w.Set(wctx, bwKey("ow:extra", i), "v", 0); extraErr != nil {
								break
							}
						}
					}
					slowest = max(slowest, time.Since(start))
				}})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close(ctx)
			for range maxPending { // fills the queue; each fails (WRONGTYPE)
				if err := w.Incr(ctx, "ow:list"); err != nil {
					t.Fatal(err)
				}
			}
			for i := range maxPending {
				select {
				case <-cbDone:
				case <-time.After(2 * hcLimit):
					t.Fatalf("deadlock: %d of %d OnError calls returned within %s", i, maxPending, 2*hcLimit)
				}
			}
			if err := w.Flush(ctx); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			for i, err := range retryErr {
				if err != nil {
					t.Errorf("retry %d from OnError: %v, want nil (the reported commands' room)", i, err)
				}
			}
			if !errors.Is(extraErr, engine.ErrBackpressure) {
				t.Errorf("Writes from OnError beyond the room: %v, want ErrBackpressure", extraErr)
			}
			if slowest > scLimit {
				t.Errorf("a Write from OnError took %s, want at once (no wait for room)", slowest)
			}
			st := w.Stats()
			bwCheckDone(t, st, errs.len())
			if st.Failed != maxPending || st.Rejected != 1 {
				t.Errorf("stats %s, want %d failed, 1 rejected", st, maxPending)
			}
			n, err := eng.Get(ctx, "ow:retried:ow:list").Await(ctx)
			if err != nil || n != strconv.Itoa(maxPending) {
				t.Errorf("the retries' key = %q, %v; want %d (each retry sent once)", n, err, maxPending)
			}
		})
	}
}
