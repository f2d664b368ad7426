package engine_test

// The engine's Close called from a hook (on the engine's hook goroutine)
// or from a future's callback (on the futures package's callback
// goroutines). From a hook, Close used to end by waiting for the hook
// goroutine, its caller, for the whole hook wait (5 s), then report a
// stuck hook (an error and hooks.MsgHookStuck) that was not stuck; a
// second Close from a hook while another goroutine's Close ran waited
// for that Close, which waited for the hook goroutine: both took the
// 5 s and the first reported the stuck hook. From a callback Close never
// waited for the callback goroutines (a regression test).

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/valkeytest"
	"go.uber.org/goleak"
)

// scLimit bounds a Close called from a hook or a callback: far below the
// hook wait (5 s), which a Close waiting for its own goroutine takes, and
// far above a Close's time on an idle engine (milliseconds; under -race
// on a busy machine, a few hundred).
const scLimit = 2 * time.Second

// scMark marks the context of the command whose PostExecution closes the
// engine (hooks.Executed names no key).
type scMark struct{}

// scResult is what a Close called from a hook or callback returned.
type scResult struct {
	err  error
	took time.Duration
}

// scAwait waits for the result of a Close called elsewhere, failing with
// "deadlock" when it has not returned within 10 s and with "took" when it
// returned after scLimit.
func scAwait(t *testing.T, ch <-chan scResult, what string) scResult {
	t.Helper()
	select {
	case r := <-ch:
		if r.took > scLimit {
			t.Fatalf("%s took %.1f s (limit %s): err %v", what, r.took.Seconds(), scLimit, r.err)
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("deadlock: %s has not returned within 10 s", what)
	}
	return scResult{}
}

// scCloser closes the engine from its PostExecution for the command whose
// context holds scMark; until gate is closed it holds the hook goroutine
// in the event of the command marked "gate".
type scCloser struct {
	eng    atomic.Pointer[engine.Engine]
	gate   chan struct{}
	before func() // called before Close (nil: none)
	res    chan scResult
	after  atomic.Int32 // hook calls begun after the Close returned
	closed atomic.Bool
}

func (h *scCloser) PostExecution(ctx context.Context, _ hooks.Executed) {
	if h.closed.Load() {
		h.after.Add(1)
	}
	switch ctx.Value(scMark{}) {
	case "gate":
		<-h.gate
	case "close":
		if h.before != nil {
			h.before()
		}
		start := time.Now()
		err := h.eng.Load().Close()
		h.closed.Store(true)
		h.res <- scResult{err, time.Since(start)}
	}
}

// scRecorder records the marks of the events it gets.
type scRecorder struct {
	mu   sync.Mutex
	seen []any
}

func (r *scRecorder) PostExecution(ctx context.Context, _ hooks.Executed) {
	r.mu.Lock()
	r.seen = append(r.seen, ctx.Value(scMark{}))
	r.mu.Unlock()
}

func (r *scRecorder) marks() []any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]any(nil), r.seen...)
}

// A PostExecution hook closes the engine while the events of ten later
// commands are queued behind its event. Close returns at once, with no
// error and no stuck-hook log; the event in hand still reaches the hook
// after it in Config.Hooks, nothing queued after it reaches any hook (the
// ten are counted in HookDropped, not logged as dropped), and the hook
// goroutine ends once the hook returns: no goroutine is left.
func TestCloseFromHook(t *testing.T) {
	before := goleak.IgnoreCurrent()
	srv := valkeytest.Start(t, valkeytest.Options{})
	h := &scCloser{gate: make(chan struct{}), res: make(chan scResult, 1)}
	rec := &scRecorder{}
	cfg, logs := withLogCheck(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithHooks(h, rec))
	eng := engineOn(t, cfg)
	h.eng.Store(eng)
	ctx := ctxT(t)
	mark := func(m string) context.Context { return context.WithValue(ctx, scMark{}, m) }
	if err := eng.Set(mark("gate"), "sc:k", "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	if err := eng.Get(mark("close"), "sc:k").Err(ctx); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := eng.Get(mark("after"), "sc:k").Err(ctx); err != nil {
			t.Fatal(err)
		}
	}
	close(h.gate) // the hook goroutine goes on: gate, close, the ten
	r := scAwait(t, h.res, "Close called from a hook")
	if r.err != nil {
		t.Fatalf("Close from a hook = %v, want nil", r.err)
	}
	if n := logs.Count(hooks.MsgHookStuck); n != 0 {
		t.Fatalf("%d %q lines for a hook that called Close", n, hooks.MsgHookStuck)
	}
	if n := logs.Count(hooks.MsgHookDropped); n != 0 {
		t.Fatalf("%d %q lines for a hook that called Close", n, hooks.MsgHookDropped)
	}
	// The hook goroutine ends once the hook has returned; nothing more
	// is delivered.
	noLeakWithin(t, lingerDial, before,
		goleak.IgnoreAnyFunction("github.com/vactor-io/vactor/valkeytest.startProcess.func1"))
	if n := h.after.Load(); n != 0 {
		t.Fatalf("%d hook calls began after the hook's Close returned", n)
	}
	got := rec.marks()
	if len(got) != 2 || got[0] != "gate" || got[1] != "close" {
		t.Fatalf("the hook after the closing one got %v, want [gate close]", got)
	}
	if st := eng.Stats(); st.HookDropped < 10 {
		t.Fatalf("HookDropped %d, want the ten events not delivered at least", st.HookDropped)
	}
	if err := eng.Close(); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("a later Close = %v, want ErrClosed", err)
	}
}

// A hook calls Close while another goroutine's Close runs: the hook's
// Close returns ErrClosed at once (it cannot wait for that Close, which
// waits for the hook goroutine), and the other Close returns without a
// stuck-hook error.
func TestCloseFromHookDuringClose(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{})
	h := &scCloser{gate: make(chan struct{}), res: make(chan scResult, 1)}
	close(h.gate)
	cfg, logs := withLogCheck(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithHooks(h))
	eng := engineOn(t, cfg)
	h.eng.Store(eng)
	ctx := ctxT(t)
	outer := make(chan scResult, 1)
	h.before = func() {
		// Close another goroutine's way, and wait until it has begun
		// (commands fail with ErrClosed from its start).
		go func() {
			start := time.Now()
			err := eng.Close()
			outer <- scResult{err, time.Since(start)}
		}()
		for !errors.Is(eng.Get(ctx, "sc:k").Err(ctx), engine.ErrClosed) {
		}
	}
	if err := eng.Get(context.WithValue(ctx, scMark{}, "close"), "sc:k").Err(ctx); err != nil && !errors.Is(err, engine.ErrNil) {
		t.Fatal(err)
	}
	r := scAwait(t, h.res, "Close called from a hook during another Close")
	if !errors.Is(r.err, engine.ErrClosed) {
		t.Fatalf("Close from a hook during another Close = %v, want ErrClosed", r.err)
	}
	o := scAwait(t, outer, "the Close the hook's Close ran into")
	if o.err != nil {
		t.Fatalf("the other Close = %v, want nil", o.err)
	}
	if n := logs.Count(hooks.MsgHookStuck); n != 0 {
		t.Fatalf("%d %q lines", n, hooks.MsgHookStuck)
	}
}

// Callbacks (OnComplete, Then) that close the engine: Close does not wait
// for the callback goroutines, so it returns at once with no error, from
// the callback of a command's future and from a Then's function while
// callbacks queued behind it wait; those run, and every future of the
// engine is complete when Close returns.
func TestCloseFromCallback(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{})
	for _, via := range []string{"OnComplete", "Then"} {
		t.Run(via, func(t *testing.T) {
			eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
			ctx := ctxT(t)
			res := make(chan scResult, 1)
			var pending *futures.Future[string]
			closeIt := func() {
				// A command still queued or in flight when Close runs.
				pending = eng.Get(ctx, "sc:cb")
				start := time.Now()
				err := eng.Close()
				res <- scResult{err, time.Since(start)}
			}
			// gate completes after the callback is registered: the
			// callback runs on a callback goroutine, not this one.
			gate := futures.NewPromise[int]()
			later := futures.NewPromise[int]()
			ran := make(chan struct{})
			switch via {
			case "OnComplete":
				gate.Future().OnComplete(func(int, error) { closeIt() })
			case "Then":
				futures.Then(gate.Future(), func(int) (int, error) { closeIt(); return 0, nil })
			}
			later.Future().OnComplete(func(int, error) { close(ran) })
			gate.Resolve(1)
			later.Resolve(2) // queued behind the closing callback
			r := scAwait(t, res, "Close called from a "+via+" callback")
			if r.err != nil {
				t.Fatalf("Close from a callback = %v, want nil", r.err)
			}
			if !pending.IsDone() {
				t.Fatal("a future of the engine is pending after Close")
			}
			hcWait(t, ran, "the callback queued behind the closing one")
		})
	}
}

// scPreCloser closes the engine from its PreExecution (on the goroutine
// that fires the command) for the first command whose context holds
// scMark.
type scPreCloser struct {
	eng  atomic.Pointer[engine.Engine]
	once sync.Once
	res  chan scResult
}

func (h *scPreCloser) PreExecution(ctx context.Context, _ hooks.Command) context.Context {
	if ctx.Value(scMark{}) != nil {
		h.once.Do(func() {
			start := time.Now()
			err := h.eng.Load().Close()
			h.res <- scResult{err, time.Since(start)}
		})
	}
	return ctx
}

// A PreExecution hook (on the goroutine that fires the command) closes
// the engine: for a single command, a blocking one, one on a Dedicated
// connection, a Watch's read, and the first command of a Pipeline's or a
// Tx's Exec (a Tx inside Watch too). The hooks of a Pipeline's commands
// used to run inside its Exec, which Close waits for: Close waited 5 s for
// its own goroutine and reported an Exec that had not returned; a Tx's,
// and a blocking command's, inside what Close waits for without a bound:
// a deadlock. They now run before: Close returns at once, and what the
// hook was called for fails with ErrClosed, unsent.
func TestCloseFromPreExecution(t *testing.T) {
	type batch interface {
		Get(string) *futures.Future[string]
		Set(string, string, time.Duration) *futures.Future[struct{}]
		Incr(string) *futures.Future[int64]
		Exec(context.Context) error
	}
	type errer = interface{ Err(context.Context) error }
	// exec queues three commands on b and runs them with the closing
	// hook's mark; the futures are added to fs.
	exec := func(b batch, mctx context.Context, fs *[]errer) error {
		*fs = append(*fs, b.Get("sc:p"), b.Set("sc:p", "w", 0), b.Incr("sc:n"))
		return b.Exec(mctx)
	}
	for _, c := range []struct {
		name string
		// run fires what the hook closes the engine for (mctx carries the
		// mark) and returns its error; its futures, if any, go to fs.
		run func(eng *engine.Engine, ctx, mctx context.Context, fs *[]errer) error
	}{
		{"single", func(eng *engine.Engine, ctx, mctx context.Context, _ *[]errer) error {
			return eng.Get(mctx, "sc:p").Err(ctx)
		}},
		{"blocking", func(eng *engine.Engine, ctx, mctx context.Context, _ *[]errer) error {
			return eng.Do(mctx, "BLPOP", "sc:l", "0.5").Err(ctx)
		}},
		{"dedicated", func(eng *engine.Engine, ctx, mctx context.Context, _ *[]errer) error {
			return eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
				_, err := c.Do(mctx, "GET", "sc:p")
				return err
			})
		}},
		{"watch-read", func(eng *engine.Engine, ctx, mctx context.Context, _ *[]errer) error {
			return eng.Watch(ctx, func(tx *engine.Tx) error {
				_, err := tx.Read().Get(mctx, "sc:p")
				return err
			}, "sc:p")
		}},
		{"pipeline", func(eng *engine.Engine, _, mctx context.Context, fs *[]errer) error {
			return exec(eng.Pipeline(), mctx, fs)
		}},
		{"tx", func(eng *engine.Engine, _, mctx context.Context, fs *[]errer) error {
			return exec(eng.Tx(), mctx, fs)
		}},
		{"watch-exec", func(eng *engine.Engine, ctx, mctx context.Context, fs *[]errer) error {
			return eng.Watch(ctx, func(tx *engine.Tx) error { return exec(tx, mctx, fs) }, "sc:p")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := valkeytest.Start(t, valkeytest.Options{})
			h := &scPreCloser{res: make(chan scResult, 1)}
			eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithHooks(h))
			h.eng.Store(eng)
			ctx := ctxT(t)
			if err := eng.Set(ctx, "sc:p", "v", 0).Err(ctx); err != nil {
				t.Fatal(err)
			}
			var fs []errer
			scPreClosed(t, h, "Close called from a PreExecution hook", func() error {
				return c.run(eng, ctx, context.WithValue(ctx, scMark{}, "close"), &fs)
			})
			for i, f := range fs {
				if err := f.Err(ctx); !errors.Is(err, engine.ErrClosed) {
					t.Fatalf("future %d: %v, want ErrClosed (nothing sent after Close)", i, err)
				}
			}
		})
	}
}

// Cluster mode: a Pipeline's MGET over two slots is split and sent inside
// the Exec, its hooks included; a PreExecution hook of the split's
// commands that closes the engine returns at once too (Close does not
// wait for an Exec of its own goroutine), and the MGET fails unsent.
func TestCloseFromPreExecutionClusterSplit(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t)
	h := &scPreCloser{res: make(chan scResult, 1)}
	eng := engineOn(t, config.DefaultConfig().WithAddrs(c.Addrs()[0]).WithClusterMode(true).WithHooks(h))
	h.eng.Store(eng)
	ctx := ctxT(t)
	p := eng.Pipeline()
	mget := p.MGet("a", "b") // slots 15495 and 3300
	scPreClosed(t, h, "Close called from a PreExecution hook of a split MGET", func() error {
		return p.Exec(context.WithValue(ctx, scMark{}, "close"))
	})
	if _, err := mget.Await(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("MGET: %v, want ErrClosed", err)
	}
}

// scPreClosed runs fire on a goroutine of its own; a PreExecution hook of
// what it fires (h) closes the engine. The Close must return nil within
// scLimit, and fire must return ErrClosed.
func scPreClosed(t *testing.T, h *scPreCloser, what string, fire func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fire() }()
	if r := scAwait(t, h.res, what); r.err != nil {
		t.Fatalf("Close from PreExecution = %v, want nil", r.err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("what the hook closed the engine for: %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("deadlock: what the hook closed the engine for has not returned within 10 s")
	}
}
