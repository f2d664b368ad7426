package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
	"github.com/vactor-io/vactor/valkeytest"
)

// recHook records every event of every kind.
type recHook struct {
	mu        sync.Mutex
	fired     []hooks.Command
	executed  []hooks.Executed
	execCtx   []context.Context
	dials     []hooks.Dial
	dialed    []hooks.Dialed
	lost      []hooks.Lost
	restarts  []hooks.Restart
	written   []hooks.Pipeline
	answered  []hooks.Pipeline
	full      []hooks.Backpressure
	breakers  []hooks.BreakerChange
	retries   []hooks.Retry
	redirects []hooks.Redirect
	slotMaps  []hooks.SlotMap
	switches  []hooks.SentinelSwitch
	subs      []hooks.Subscriber
	consumers []hooks.Consumer
}

// hookSeq is the context key recHook's PreExecution sets.
type hookSeq struct{}

func (h *recHook) PreExecution(ctx context.Context, cmd hooks.Command) context.Context {
	h.mu.Lock()
	defer h.mu.Unlock()
	cmd.Args = slices.Clone(cmd.Args)
	h.fired = append(h.fired, cmd)
	return context.WithValue(ctx, hookSeq{}, len(h.fired))
}

func (h *recHook) PostExecution(ctx context.Context, ev hooks.Executed) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.executed = append(h.executed, ev)
	h.execCtx = append(h.execCtx, ctx)
}

func (h *recHook) PreConnection(ev hooks.Dial)    { h.add(func() { h.dials = append(h.dials, ev) }) }
func (h *recHook) PostConnection(ev hooks.Dialed) { h.add(func() { h.dialed = append(h.dialed, ev) }) }
func (h *recHook) OnConnectionLost(ev hooks.Lost) { h.add(func() { h.lost = append(h.lost, ev) }) }
func (h *recHook) OnActorRestarted(ev hooks.Restart) {
	h.add(func() { h.restarts = append(h.restarts, ev) })
}
func (h *recHook) OnPipelineWritten(ev hooks.Pipeline) {
	h.add(func() { h.written = append(h.written, ev) })
}
func (h *recHook) OnPipelineAnswered(ev hooks.Pipeline) {
	h.add(func() { h.answered = append(h.answered, ev) })
}
func (h *recHook) OnMailboxFull(ev hooks.Backpressure) { h.add(func() { h.full = append(h.full, ev) }) }
func (h *recHook) OnBreakerChanged(ev hooks.BreakerChange) {
	h.add(func() { h.breakers = append(h.breakers, ev) })
}
func (h *recHook) OnRetryScheduled(ev hooks.Retry) {
	h.add(func() { h.retries = append(h.retries, ev) })
}
func (h *recHook) OnRedirected(ev hooks.Redirect) {
	h.add(func() { h.redirects = append(h.redirects, ev) })
}
func (h *recHook) OnSlotMapLoaded(ev hooks.SlotMap) {
	h.add(func() { h.slotMaps = append(h.slotMaps, ev) })
}
func (h *recHook) OnSentinelSwitched(ev hooks.SentinelSwitch) {
	h.add(func() { h.switches = append(h.switches, ev) })
}
func (h *recHook) OnSubscriberEvent(ev hooks.Subscriber) {
	h.add(func() { h.subs = append(h.subs, ev) })
}
func (h *recHook) OnConsumerEvent(ev hooks.Consumer) {
	h.add(func() { h.consumers = append(h.consumers, ev) })
}

func (h *recHook) add(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f()
}

// with runs f with the hook's lock held.
func (h *recHook) with(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f()
}

// eventually waits up to 10 s for cond (checked with the hook's lock held).
func (h *recHook) eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		ok := cond()
		h.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type callerKey struct{}

// A scripted run against a password-protected server, with every hook
// recorded and the log checked (no password, value or, above debug, key in
// any line): commands, an error reply, a kill that opens the breaker,
// and the restart.
func TestHooksScriptedRun(t *testing.T) {
	const password = "hook-pass-SECRET-4711"
	srv := valkeytest.Start(t, valkeytest.Options{Password: password})
	rec := &recHook{}
	cfg, logs := withLogCheck(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithPassword(password).
		WithCircuitBreakerOpenTimeout(250*time.Millisecond).WithHooks(rec))
	eng := engineOn(t, cfg)
	defer eng.Close()
	ctx := context.WithValue(ctxT(t), callerKey{}, "caller")

	const n = 50
	for i := range n {
		k, v := fmt.Sprintf("hk:key:%d", i), fmt.Sprintf("hk-value-SECRET-%d", i)
		logs.Secret(v)
		logs.Key(k)
		if err := eng.Set(ctx, k, v, 0).Err(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// An error reply.
	_, err := eng.LPush(ctx, "hk:key:0", "x").Await(ctx)
	var se *engine.ServerError
	if !errors.As(err, &se) || se.Prefix != "WRONGTYPE" {
		t.Fatalf("LPUSH on a string: %v, want WRONGTYPE", err)
	}
	// Kill the server: the connection is lost and the breaker opens.
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := eng.Get(cctx, "hk:key:1").Await(cctx)
		cancel()
		if errors.Is(err, engine.ErrCircuitOpen) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the breaker did not open within 10 s of the kill (last error %v)", err)
		}
	}
	// A blocking command the open breaker refuses reaches the hooks too.
	if _, err := eng.Do(ctx, "BLPOP", "hk:list", "1").Await(ctx); !errors.Is(err, engine.ErrCircuitOpen) {
		t.Fatalf("BLPOP with the breaker open: %v, want ErrCircuitOpen", err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	enginetest.WaitServing(t, eng, 10*time.Second)
	st := eng.Stats()
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}

	// Close delivered every event: check them.
	rec.with(func() {
		if len(rec.executed) != len(rec.fired) {
			t.Errorf("%d PreExecution, %d PostExecution", len(rec.fired), len(rec.executed))
		}
		sets := 0
		for i, ev := range rec.executed {
			c := rec.execCtx[i]
			if c.Value(hookSeq{}) == nil || (i <= n && c.Value(callerKey{}) != "caller") {
				t.Fatalf("PostExecution %d (%s) got a context without PreExecution's or the caller's value", i, ev.Name)
			}
			if ev.Duration <= 0 {
				t.Errorf("%s: duration %v", ev.Name, ev.Duration)
			}
			if ev.Name == "SET" && ev.Err == nil {
				sets++
				if ev.Node != srv.Addr() || ev.Pipeline == 0 || ev.PipelineSize < 1 {
					t.Errorf("SET: node %q pipeline %d size %d", ev.Node, ev.Pipeline, ev.PipelineSize)
				}
			}
		}
		if sets < n {
			t.Errorf("%d successful SETs reported, want at least %d", sets, n)
		}
		if !slices.ContainsFunc(rec.executed, func(ev hooks.Executed) bool {
			return ev.Name == "LPUSH" && errors.As(ev.Err, &se) && se.Prefix == "WRONGTYPE"
		}) {
			t.Error("no LPUSH with its WRONGTYPE reported")
		}
		if !slices.ContainsFunc(rec.executed, func(ev hooks.Executed) bool { return errors.Is(ev.Err, engine.ErrCircuitOpen) }) {
			t.Error("no command failed with ErrCircuitOpen reported")
		}
		if !slices.ContainsFunc(rec.executed, func(ev hooks.Executed) bool {
			return ev.Name == "BLPOP" && errors.Is(ev.Err, engine.ErrCircuitOpen)
		}) {
			t.Error("the BLPOP the open breaker refused was not reported")
		}
		// A command the open breaker refused names the breaker's node.
		for _, ev := range rec.executed {
			if errors.Is(ev.Err, engine.ErrCircuitOpen) && ev.Node != srv.Addr() {
				t.Errorf("%s refused by the open breaker of %s reported on node %q", ev.Name, srv.Addr(), ev.Node)
				break
			}
		}
		if i := slices.IndexFunc(rec.fired, func(c hooks.Command) bool { return c.Name == "SET" }); i < 0 || len(rec.fired[i].Args) < 2 || rec.fired[i].Args[0] != "hk:key:0" {
			t.Errorf("PreExecution of the first SET: %+v", rec.fired)
		}
		size, bytes := 0, 0
		for _, p := range rec.answered {
			size += p.Size
			bytes += p.Bytes
			if p.Node != srv.Addr() || p.Seq == 0 || (p.Err == nil && p.RTT <= 0) {
				t.Errorf("pipeline answered: %+v", p)
			}
		}
		if size < n || bytes <= 0 || len(rec.written) < len(rec.answered) {
			t.Errorf("%d pipelines written, %d answered, %d commands, %d bytes", len(rec.written), len(rec.answered), size, bytes)
		}
		if len(rec.lost) == 0 || rec.lost[0].Node != srv.Addr() || rec.lost[0].Err == nil {
			t.Errorf("connection lost: %+v", rec.lost)
		}
		if len(rec.restarts) == 0 {
			t.Error("no actor restart reported")
		}
		opened := slices.ContainsFunc(rec.breakers, func(b hooks.BreakerChange) bool {
			return b.Node == srv.Addr() && b.From == hooks.BreakerClosed && b.To == hooks.BreakerOpen
		})
		if !opened || rec.breakers[len(rec.breakers)-1].To != hooks.BreakerClosed {
			t.Errorf("breaker changes: %+v", rec.breakers)
		}
		if len(rec.dials) == 0 || !rec.dials[0].Initial {
			t.Errorf("dials: %+v", rec.dials)
		}
		failedDial := slices.ContainsFunc(rec.dialed, func(d hooks.Dialed) bool { return d.Err != nil })
		reconnected := slices.ContainsFunc(rec.dialed, func(d hooks.Dialed) bool { return d.Err == nil && !d.Initial && !d.Probe })
		if !failedDial || !reconnected {
			t.Errorf("dials ended: failed %t, reconnected %t: %+v", failedDial, reconnected, rec.dialed)
		}
		if st.Retries > 0 && len(rec.retries) == 0 {
			t.Errorf("%d retries, no RetryScheduled event", st.Retries)
		}
	})
	for _, msg := range []string{hooks.MsgConnected, hooks.MsgConnLost, hooks.MsgBreakerChanged, hooks.MsgReconnected} {
		if logs.Count(msg) == 0 {
			t.Errorf("nothing logged as %q", msg)
		}
	}
	if st.HookEvents == 0 || st.HookDropped != 0 || st.HookPanics != 0 {
		t.Errorf("hook stats: %d events, %d dropped, %d panics", st.HookEvents, st.HookDropped, st.HookPanics)
	}
}

// blockingHook blocks every call until release is closed.
type blockingHook struct {
	release chan struct{}
	entered chan struct{}
	once    sync.Once
	calls   atomic.Int64
}

func (h *blockingHook) block() {
	h.calls.Add(1)
	h.once.Do(func() { close(h.entered) })
	<-h.release
}
func (h *blockingHook) PostExecution(context.Context, hooks.Executed) { h.block() }
func (h *blockingHook) OnPipelineAnswered(hooks.Pipeline)             { h.block() }

// A hook that never returns stalls no connection actor: the commands
// complete while it blocks, the events it cannot take are dropped and
// counted, and once it returns Close delivers what was queued and ends.
func TestHookSlowDoesNotStallActors(t *testing.T) {
	h := &blockingHook{release: make(chan struct{}), entered: make(chan struct{})}
	const queue = 1000
	restore := engine.SetHookQueue(queue)
	var logs *logCheck
	eng, _ := newEngine(t, func(c config.Config) config.Config {
		c, logs = withLogCheck(t, c.WithHooks(h))
		return c
	})
	restore()
	ctx := ctxT(t)
	if err := eng.Set(ctx, "slow:0", "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the hook was not called")
	}
	// The hook goroutine is stuck. More commands than the hook queue holds
	// must still complete.
	const n = 10 * queue
	done := make(chan error, 1)
	go func() {
		p := eng.Pipeline()
		fs := make([]*futures.Future[struct{}], 0, n)
		for i := range n {
			fs = append(fs, p.Set(fmt.Sprintf("slow:%d", i%100), "v", 0))
		}
		if err := p.Exec(ctx); err != nil {
			done <- err
			return
		}
		for _, f := range fs {
			if err := f.Err(ctx); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("commands stalled behind a blocked hook (%d hook calls)", h.calls.Load())
	}
	if err := eng.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	st := eng.Stats()
	if st.HookDropped == 0 {
		t.Errorf("no hook event dropped with the hook blocked for %d commands", n)
	}
	// The drops are logged while the hook is still stuck (before, only
	// the hook goroutine logged them: nothing until Close).
	for deadline := time.Now().Add(10 * time.Second); logs.Count(hooks.MsgHookDropped) == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d events dropped, no %q logged within 10s with the hook stuck", eng.Stats().HookDropped, hooks.MsgHookDropped)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c := h.calls.Load(); c != 1 {
		t.Fatalf("the blocked hook was called %d times", c)
	}
	close(h.release)
	closed := make(chan error, 1)
	go func() { closed <- eng.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not return once the hook returned")
	}
	if c := h.calls.Load(); c < 2 {
		t.Errorf("the queued events were not delivered after the hook returned (%d calls)", c)
	}
}

// panicHook panics in every call.
type panicHook struct{ name string }

func (h panicHook) PreExecution(context.Context, hooks.Command) context.Context {
	panic(h.name + " pre")
}
func (h panicHook) PostExecution(context.Context, hooks.Executed) { panic(h.name + " post") }
func (h panicHook) OnPipelineAnswered(hooks.Pipeline)             { panic(h.name + " pipeline") }
func (h panicHook) OnConnectionLost(hooks.Lost)                   { panic(h.name + " lost") }

// A panicking hook crashes nothing: its panics are recovered, counted and
// logged once per hook, and the hooks after it still get every event.
func TestHookPanicsRecovered(t *testing.T) {
	rec := &recHook{}
	var logs *logCheck
	eng, _ := newEngine(t, func(c config.Config) config.Config {
		c, logs = withLogCheck(t, c.WithHooks(panicHook{"a"}, panicHook{"b"}, rec))
		return c
	})
	ctx := context.WithValue(ctxT(t), callerKey{}, "caller")
	const n = 100
	for i := range n {
		if err := eng.Set(ctx, fmt.Sprintf("p:%d", i), "v", 0).Err(ctx); err != nil {
			t.Fatal(err)
		}
	}
	st := eng.Stats()
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	st2 := eng.Stats()
	if st2.HookPanics < 2*(2*n) {
		t.Errorf("%d hook panics counted (before Close %d), want at least %d", st2.HookPanics, st.HookPanics, 4*n)
	}
	if got := logs.Count(hooks.MsgHookPanicked); got != 2 {
		t.Errorf("%d panics logged, want 2 (once per hook)", got)
	}
	rec.with(func() {
		if len(rec.fired) != n || len(rec.executed) != n || len(rec.answered) == 0 {
			t.Errorf("the hook after the panicking ones got %d fired, %d executed, %d pipelines", len(rec.fired), len(rec.executed), len(rec.answered))
		}
		for _, c := range rec.execCtx {
			if c.Value(callerKey{}) != "caller" || c.Value(hookSeq{}) == nil {
				t.Fatal("PostExecution context lost its values")
			}
		}
	})
}

// Credentials never reach the log: a server whose password changes under
// the engine makes its reconnects fail (logged, without a password), and
// New with a wrong password fails without logging it either.
func TestHookLogsNoCredentials(t *testing.T) {
	const (
		old = "cred-old-SECRET-0815"
		new = "cred-new-SECRET-0816"
	)
	srv := valkeytest.Start(t)
	if err := srv.AddUser("app", old, "~*", "&*", "+@all"); err != nil {
		t.Fatal(err)
	}
	logs := newLogCheck(t, old, new)
	cfg := config.DefaultConfig().WithAddrs(srv.Addr()).WithUsername("app").WithPassword(old).
		WithLogger(logs.Logger()).WithLogLevel(config.LogLevelDebug)
	eng := engineOn(t, cfg)
	defer eng.Close()
	ctx := ctxT(t)
	if err := eng.Set(ctx, "cred:k", "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetUserPassword("app", new); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Do("CLIENT", "KILL", "USER", "app"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for logs.Count(hooks.MsgDialFailed) == 0 {
		_ = eng.Set(ctx, "cred:k", "v", 0).Err(ctx)
		if time.Now().After(deadline) {
			t.Fatal("no failed reconnect logged within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := open(ctx, t, cfg.WithPassword(old+"-wrong")); err == nil {
		t.Fatal("New with a wrong password succeeded")
	}
	logs.Secret(old + "-wrong")
}

// LogLevel filters the engine's lines and the actor library's alike.
func TestLogLevelFilters(t *testing.T) {
	logs := newLogCheck(t)
	eng, srv := newEngine(t, func(c config.Config) config.Config {
		return c.WithLogger(logs.Logger()).WithLogLevel(config.LogLevelWarn)
	})
	ctx := ctxT(t)
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = eng.Set(ctx, "lvl", "v", 0).Err(ctx)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	enginetest.WaitServing(t, eng, 10*time.Second)
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	warned := false
	for _, l := range logs.Lines() {
		if l.Level < slog.LevelWarn {
			t.Errorf("logged below LogLevel warn: %s", l.Text)
		}
		warned = warned || l.Msg == hooks.MsgConnLost
	}
	if !warned {
		t.Error("the lost connection was not logged at warn")
	}
}

// An engine with hooks leaves no goroutine behind after Close.
func TestHooksNoLeak(t *testing.T) {
	srv := valkeytest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rec := &recHook{}
	logs := newLogCheck(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithHooks(rec).WithLogger(logs.Logger()))
	ctx := ctxT(t)
	if err := eng.Set(ctx, "leak", "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
}

// In a cluster, a slot moved under the engine: the MOVED redirect and the
// slot map that follows are reported, and the command's Executed event
// counts the redirect (two when a slot-map load read a node that had not
// heard of the move yet).
func TestHooksClusterRedirect(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c, rec, _, logs, eng := hookedCluster(t)
	defer eng.Close()
	ctx := ctxT(t)
	const key = "hook:moved"
	logs.Key(key)
	if err := eng.Set(ctx, key, "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	slot, err := c.KeySlot(key)
	if err != nil {
		t.Fatal(err)
	}
	from, to := ownerAndOther(t, c, slot)
	if err := c.MigrateSlots(from, to, []int{slot}); err != nil {
		t.Fatal(err)
	}
	if v, err := eng.Get(ctx, key).Await(ctx); err != nil || v != "v" {
		t.Fatalf("GET after the move: %q, %v", v, err)
	}
	rec.eventually(t, "slot map with the moved slot", func() bool {
		return slices.ContainsFunc(rec.slotMaps, func(m hooks.SlotMap) bool { return m.Err == nil && m.Moved >= 1 && m.Shards == 3 })
	})
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	rec.with(func() {
		i := slices.IndexFunc(rec.redirects, func(r hooks.Redirect) bool { return r.Slot == slot })
		if i < 0 {
			t.Fatalf("no redirect of slot %d: %+v", slot, rec.redirects)
		}
		r := rec.redirects[i]
		if r.Kind != hooks.RedirectMoved || r.Name != "GET" || r.From != from.Addr() || r.To != to.Addr() || r.GaveUp {
			t.Errorf("redirect: %+v, want MOVED GET from %s to %s", r, from.Addr(), to.Addr())
		}
		if !slices.ContainsFunc(rec.executed, func(ev hooks.Executed) bool {
			return ev.Name == "GET" && ev.Err == nil && ev.Redirects >= 1 && ev.Node == to.Addr()
		}) {
			t.Errorf("no GET completed on %s after a redirect: %+v", to.Addr(), rec.executed)
		}
	})
	if logs.Count(hooks.MsgSlotMapChanged) == 0 || logs.Count(hooks.MsgRedirected) == 0 {
		t.Error("the slot map change or the redirect was not logged")
	}
}

// A sentinel switch (reported by the sentinel code through the engine's
// sentinelSwitched) reaches the SentinelSwitched hooks and the log.
func TestHookSentinelSwitched(t *testing.T) {
	rec := &recHook{}
	var logs *logCheck
	eng, _ := newEngine(t, func(c config.Config) config.Config {
		c, logs = withLogCheck(t, c.WithHooks(rec))
		return c
	})
	engine.SentinelSwitched(eng, "mymaster", "10.0.0.1:6379", "10.0.0.2:6379")
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	rec.with(func() {
		if len(rec.switches) != 1 || rec.switches[0] != (hooks.SentinelSwitch{Master: "mymaster", From: "10.0.0.1:6379", To: "10.0.0.2:6379"}) {
			t.Fatalf("switches: %+v", rec.switches)
		}
	})
	if logs.Count(hooks.MsgSentinelSwitch) != 1 {
		t.Fatal("the switch was not logged")
	}
}
