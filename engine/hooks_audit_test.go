package engine_test

// A user's audit of the hooks: what an operator's own hooks do that the
// scripted runs do not: call back into the engine, appear twice in the
// list, match the engine's own log messages, and fire commands that carry
// passwords.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/internal/hookbus"
	"github.com/vactor-io/vactor/valkeytest"
)

// The messages the hook bus logs are the hooks package's constants, which
// the documentation names for users to match on (hooks.MsgHookPanicked,
// hooks.MsgHookDropped); the bus is internal.
func TestHookBusMessagesExported(t *testing.T) {
	if hooks.MsgHookPanicked != hookbus.MsgPanicked || hooks.MsgHookDropped != hookbus.MsgDropped {
		t.Fatalf("hooks.MsgHookPanicked %q, hooks.MsgHookDropped %q; the bus logs %q and %q",
			hooks.MsgHookPanicked, hooks.MsgHookDropped, hookbus.MsgPanicked, hookbus.MsgDropped)
	}
}

// reentrant calls back into the engine from its hooks: PreExecution
// awaits a GET on the caller's goroutine before every SET (a lookup an
// application might make), PostExecution awaits an INCR on the hook
// goroutine after every SET (a counter kept in Valkey).
type reentrant struct {
	eng       atomic.Pointer[engine.Engine]
	pre, post atomic.Int64
	mu        sync.Mutex
	errs      []error
}

func (h *reentrant) fail(err error) {
	h.mu.Lock()
	h.errs = append(h.errs, err)
	h.mu.Unlock()
}

func (h *reentrant) PreExecution(ctx context.Context, cmd hooks.Command) context.Context {
	if e := h.eng.Load(); e != nil && cmd.Name == "SET" {
		h.pre.Add(1)
		if _, err := e.Get(ctx, "re:lookup").Await(ctx); err != nil && !errors.Is(err, engine.ErrNil) {
			h.fail(fmt.Errorf("GET in PreExecution: %w", err))
		}
	}
	return ctx
}

func (h *reentrant) PostExecution(_ context.Context, ev hooks.Executed) {
	if e := h.eng.Load(); e != nil && ev.Name == "SET" {
		h.post.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := e.Incr(ctx, "re:count").Await(ctx); err != nil && !errors.Is(err, engine.ErrClosed) {
			h.fail(fmt.Errorf("INCR in PostExecution: %w", err))
		}
	}
}

// Hooks that fire commands and await them, from PreExecution (the
// caller's goroutine, for single commands, a pipeline's and a
// transaction's) and from PostExecution (the hook goroutine), deadlock
// nothing: every command completes, and so does Close.
func TestHookCallsBackIntoEngine(t *testing.T) {
	h := &reentrant{}
	eng, _ := newEngine(t, func(c config.Config) config.Config { return c.WithHooks(h) })
	h.eng.Store(eng)
	ctx := ctxT(t)
	const n = 5
	for range n {
		if err := eng.Set(ctx, "re:k", "v", 0).Err(ctx); err != nil {
			t.Fatal(err)
		}
	}
	p := eng.Pipeline()
	for range n {
		p.Set("re:k", "v", 0)
	}
	if err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	tx := eng.Tx()
	tx.Set("re:k", "v", 0)
	if err := tx.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	const sets = 2*n + 1
	csWait(t, 10*time.Second, "an INCR per SET from PostExecution", func() bool {
		v, err := eng.Get(ctx, "re:count").Await(ctx)
		return err == nil && v == fmt.Sprint(sets)
	})
	closed := make(chan error, 1)
	go func() { closed <- eng.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not return with hooks that call back into the engine")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pre.Load() != sets || h.post.Load() != sets || len(h.errs) != 0 {
		t.Errorf("%d PreExecution, %d PostExecution of %d SETs; errors %v", h.pre.Load(), h.post.Load(), sets, h.errs)
	}
}

// countHook counts its calls.
type countHook struct{ pre, post, dials atomic.Int64 }

func (h *countHook) PreExecution(ctx context.Context, _ hooks.Command) context.Context {
	h.pre.Add(1)
	return ctx
}
func (h *countHook) PostExecution(context.Context, hooks.Executed) { h.post.Add(1) }
func (h *countHook) PostConnection(hooks.Dialed)                   { h.dials.Add(1) }

// notAHook implements none of the hooks interfaces (its method has the
// wrong signature).
type notAHook struct{}

func (notAHook) PostExecution(hooks.Executed) {}

// The hook list is checked at New: a nil entry and a value that
// implements no hooks interface are refused, naming the entry; a hook
// listed twice is two hooks, called twice per event.
func TestHookListChecked(t *testing.T) {
	srv := valkeytest.Start(t)
	ctx := ctxT(t)
	base := config.DefaultConfig().WithAddrs(srv.Addr())
	for _, c := range []struct {
		hs   []hooks.Hook
		want string
	}{
		{[]hooks.Hook{&countHook{}, nil}, `vactor: config: invalid Hooks[1] "nil": must not be nil`},
		{[]hooks.Hook{notAHook{}}, `vactor: config: invalid Hooks[0] "engine_test.notAHook": implements no interface of the hooks package`},
	} {
		eng, err := open(ctx, t, base.WithHooks(c.hs...))
		if err == nil {
			_ = eng.Close()
			t.Fatalf("New with hooks %v succeeded", c.hs)
		}
		var fe *config.FieldError
		if !errors.As(err, &fe) || !errors.Is(err, config.ErrInvalidConfig) || err.Error() != c.want {
			t.Errorf("New with hooks %v: %v, want a *config.FieldError %q", c.hs, err, c.want)
		}
	}
	h := &countHook{}
	eng := engineOn(t, base.WithHooks(h, h))
	const n = 10
	for i := range n {
		if err := eng.Set(ctx, fmt.Sprintf("dup:%d", i), "v", 0).Err(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	if h.pre.Load() != 2*n || h.post.Load() != 2*n || h.dials.Load() < 2 || h.dials.Load()%2 != 0 {
		t.Errorf("a hook listed twice: %d PreExecution, %d PostExecution for %d SETs, %d PostConnection; want each event twice",
			h.pre.Load(), h.post.Load(), n, h.dials.Load())
	}
}

// Commands that carry a password (CONFIG SET requirepass, MIGRATE ...
// AUTH, AUTH and HELLO ... AUTH refused on the shared connections, an
// unknown command whose error reply quotes its arguments) put it in no
// log line, at debug level, with the engine's logger and a Logging hook
// of the user's own; the commands reached PostExecution.
func TestHookPasswordsInCommandsNotLogged(t *testing.T) {
	const secret = "cmd-pass-SECRET-2718"
	rec := &recHook{}
	logs := newLogCheck(t, secret)
	eng, srv := newEngine(t, func(c config.Config) config.Config {
		return c.WithLogger(logs.Logger()).WithLogLevel(config.LogLevelDebug).WithHooks(rec, hooks.NewLogging(logs.Logger()))
	})
	ctx := ctxT(t)
	cmds := [][]string{
		{"CONFIG", "SET", "requirepass", secret},
		{"CONFIG", "SET", "requirepass", ""},
		{"MIGRATE", valkeytest.Host, "1", "", "0", "100", "AUTH", secret, "KEYS", "mig:k"},
		{"MIGRATE", valkeytest.Host, "1", "", "0", "100", "AUTH2", "app", secret, "KEYS", "mig:k"},
		{"NOSUCHCOMMAND", secret},
		{"AUTH", "app", secret},
		{"HELLO", "3", "AUTH", "app", secret},
	}
	for _, c := range cmds {
		_, err := eng.Do(ctx, c[0], c[1:]...).Await(ctx)
		t.Logf("%s: %v", c[0], err)
	}
	if _, err := srv.Do("SET", "mig:k", "v"); err != nil {
		t.Fatal(err)
	}
	// A MIGRATE that reaches its (refused) target and one whose AUTH the
	// target refuses: the errors come from the server.
	_, _ = eng.Do(ctx, "MIGRATE", valkeytest.Host, fmt.Sprint(srv.Port()), "", "0", "1000", "COPY", "AUTH", secret, "KEYS", "mig:k").Await(ctx)
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	rec.with(func() {
		if len(rec.executed) < 5 {
			t.Errorf("%d commands reached PostExecution, want the 5 sent at least", len(rec.executed))
		}
	})
	if len(logs.Lines()) == 0 {
		t.Error("nothing logged at debug level")
	}
}

// TestHooksDedicatedAndTx: a DedicatedConn's commands, a transaction's and
// a Watch's reads reach the command hooks with the node that carried them.
// (Before, a DedicatedConn's and a Watch's reads reached no hook at all,
// and a transaction's reported node "".)
func TestHooksDedicatedAndTx(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{})
	rec := &recHook{}
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithHooks(rec))
	defer eng.Close()
	ctx := ctxT(t)

	err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		if _, err := c.Do(ctx, "SET", "hd:a", "1"); err != nil {
			return err
		}
		_, err := c.DoMulti(ctx, []string{"INCR", "hd:a"}, []string{"LPUSH", "hd:a", "x"})
		var se *engine.ServerError
		if !errors.As(err, &se) || se.Prefix != "WRONGTYPE" {
			t.Errorf("DoMulti: %v, want WRONGTYPE", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tx := eng.Tx()
	incr := tx.Incr("hd:b")
	if err := tx.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := incr.Await(ctx); n != 1 || err != nil {
		t.Fatalf("INCR in the transaction: %v, %v", n, err)
	}
	// A Watch's read, sent at once on the watched connection, and its
	// transaction.
	err = eng.Watch(ctx, func(tx *engine.Tx) error {
		if v, err := tx.Read().Get(ctx, "hd:b"); v != "1" || err != nil {
			t.Errorf("GET in Watch: %q, %v", v, err)
		}
		tx.Incr("hd:b")
		return nil
	}, "hd:b")
	if err != nil {
		t.Fatal(err)
	}

	rec.eventually(t, "PostExecution of the six commands", func() bool { return len(rec.executed) >= 6 })
	rec.with(func() {
		var got []string
		for _, ev := range rec.executed {
			got = append(got, ev.Name)
			if ev.Node != srv.Addr() {
				t.Errorf("%s: Node %q, want %q", ev.Name, ev.Node, srv.Addr())
			}
			if ev.Duration <= 0 {
				t.Errorf("%s: Duration %v", ev.Name, ev.Duration)
			}
			wantErr := ev.Name == "LPUSH"
			if (ev.Err != nil) != wantErr {
				t.Errorf("%s: Err %v", ev.Name, ev.Err)
			}
		}
		if want := []string{"SET", "INCR", "LPUSH", "INCR", "GET", "INCR"}; !slices.Equal(got, want) {
			t.Errorf("PostExecution for %v, want %v", got, want)
		}
		if tx := rec.executed[3]; tx.PipelineSize != 3 || tx.Pipeline == 0 {
			t.Errorf("transaction's INCR: pipeline %d of size %d, want MULTI, INCR, EXEC", tx.Pipeline, tx.PipelineSize)
		}
		if len(rec.fired) != 6 {
			t.Errorf("PreExecution for %d commands, want 6", len(rec.fired))
		}
	})
}

// TestCloseWithStuckHook: a hook that never returns does not hold up Close
// for good: Close gives up on it after its wait, says so (error and
// MsgHookStuck), and every future is complete. (Before, Close waited for
// the hook for ever.)
func TestCloseWithStuckHook(t *testing.T) {
	defer engine.SetHookWait(300 * time.Millisecond)()
	h := &blockingHook{release: make(chan struct{}), entered: make(chan struct{})}
	defer close(h.release) // the hook goroutine ends with the test
	srv := valkeytest.Start(t, valkeytest.Options{})
	cfg, logs := withLogCheck(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithHooks(h))
	eng := engineOn(t, cfg)
	ctx := ctxT(t)
	if err := eng.Set(ctx, "stuck:0", "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	<-h.entered // the hook goroutine is stuck
	f := eng.Get(ctx, "stuck:0")
	start := time.Now()
	err := eng.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v with a stuck hook and a 300ms wait", d)
	}
	if err == nil || !strings.Contains(err.Error(), "hook") {
		t.Fatalf("Close = %v, want the stuck hook reported", err)
	}
	if !f.IsDone() {
		t.Fatal("a future is pending after Close")
	}
	if n := logs.Count(hooks.MsgHookStuck); n != 1 {
		t.Fatalf("%d %q lines, want 1", n, hooks.MsgHookStuck)
	}
	// The events Close gave up on (the Get's completion at least) are
	// counted by the time it returns, though the hook is still stuck.
	if st := eng.Stats(); st.HookDropped == 0 {
		t.Fatalf("HookDropped 0 after Close gave up on a stuck hook (%d events delivered)", st.HookEvents)
	}
}
