package hookbus

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/internal/goid"
)

// seqHook records, in order, which hook saw which event.
type seqHook struct {
	name  string
	mu    *sync.Mutex
	log   *[]string
	panic bool
}

func (h seqHook) add(s string) {
	h.mu.Lock()
	*h.log = append(*h.log, h.name+":"+s)
	h.mu.Unlock()
	if h.panic {
		panic(h.name)
	}
}
func (h seqHook) PostExecution(_ context.Context, ev hooks.Executed) { h.add(ev.Name) }
func (h seqHook) OnBreakerChanged(ev hooks.BreakerChange)            { h.add(ev.To) }

func newBus(t *testing.T, capacity int, hs ...hooks.Hook) (*Bus, *bytes.Buffer) {
	var buf bytes.Buffer
	b := New(hs, slog.New(slog.NewTextHandler(&buf, nil)), capacity)
	b.Start()
	t.Cleanup(func() { b.Close(time.Minute) })
	waitIdle(t, b)
	return b, &buf
}

// waitIdle waits until the hook goroutine (if the bus has one) waits for
// events. Until then it takes whatever is queued without a wake-up, Hold
// or not: a test that holds to get one batch must start from an idle
// goroutine (CI once saw TestCloseFromHook's events split in two).
func waitIdle(t *testing.T, b *Bus) {
	t.Helper()
	if !b.async {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		idle := b.idle
		b.mu.Unlock()
		if idle {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the hook goroutine has not gone idle within 10 s")
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// Events reach every hook in the slice's order, event by event; a hook
// that panics loses that event only, the hooks after it still get it, and
// its first panic only is logged.
func TestCompositeOrderAndPanics(t *testing.T) {
	var mu sync.Mutex
	var got []string
	a := seqHook{name: "a", mu: &mu, log: &got}
	p := seqHook{name: "p", mu: &mu, log: &got, panic: true}
	c := seqHook{name: "c", mu: &mu, log: &got}
	b, logs := newBus(t, 0, a, p, c)
	b.Hold() // deliver the three in one batch
	b.Executed(context.Background(), hooks.Executed{Name: "GET"})
	b.Emit(hooks.BreakerChange{To: "open"})
	b.Executed(context.Background(), hooks.Executed{Name: "SET"})
	b.Release()
	b.Close(time.Minute)
	want := []string{"a:GET", "p:GET", "c:GET", "a:open", "p:open", "c:open", "a:SET", "p:SET", "c:SET"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if st := b.Stats(); st.Panics != 3 || st.Events != 3 {
		t.Fatalf("stats %+v, want 3 panics, 3 events", st)
	}
	if n := strings.Count(logs.String(), MsgPanicked); n != 1 {
		t.Fatalf("%d panics logged, want 1:\n%s", n, logs)
	}
}

// A PreExecution that panics leaves the context as it was; the next
// PreExecution hooks still run.
type ctxKey struct{}

type preHook struct{ panic bool }

func (h preHook) PreExecution(ctx context.Context, _ hooks.Command) context.Context {
	if h.panic {
		panic("pre")
	}
	return context.WithValue(ctx, ctxKey{}, "set")
}

func TestFirePanics(t *testing.T) {
	b, _ := newBus(t, 0, preHook{panic: true}, preHook{})
	ctx := b.Fire(context.Background(), hooks.Command{Name: "GET"})
	if ctx.Value(ctxKey{}) != "set" {
		t.Fatal("the hook after the panicking one did not run")
	}
	if b.Stats().Panics != 1 {
		t.Fatalf("%d panics counted", b.Stats().Panics)
	}
}

// blocker blocks until released.
type blocker struct{ entered, release chan struct{} }

func (h blocker) PostExecution(context.Context, hooks.Executed) {
	select {
	case h.entered <- struct{}{}:
	default:
	}
	<-h.release
}

// A full queue drops and counts; pushing never waits for the hook.
func TestDropWhenFull(t *testing.T) {
	h := blocker{entered: make(chan struct{}, 1), release: make(chan struct{})}
	b, _ := newBus(t, 4, h)
	b.Executed(context.Background(), hooks.Executed{Name: "first"})
	<-h.entered // the hook goroutine is stuck in the first event
	done := make(chan struct{})
	go func() {
		for range 10 {
			b.Executed(context.Background(), hooks.Executed{Name: "more"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("pushing waited for the hook")
	}
	if d := b.Stats().Dropped; d != 6 {
		t.Fatalf("%d dropped, want 6 (4 queued)", d)
	}
	close(h.release)
	b.Close(time.Minute)
	if e := b.Stats().Events; e != 5 {
		t.Fatalf("%d delivered, want 5", e)
	}
}

// A bus without hooks is nil, and every method is safe on it.
func TestNoHooks(t *testing.T) {
	if b := New(nil, nil, 0); b != nil {
		t.Fatal("a bus without hooks")
	}
	if b := New([]hooks.Hook{42}, nil, 0); b != nil {
		t.Fatal("a bus for a value that implements no hook")
	}
	var b *Bus
	b.Start()
	b.Emit(hooks.Lost{})
	b.Executed(context.Background(), hooks.Executed{})
	b.Hold()
	b.Release()
	b.Close(time.Minute)
	if b.WantsCommands() || b.WantsPipelines() || b.NextPipeline() != 0 || b.Fire(context.Background(), hooks.Command{}) == nil {
		t.Fatal("nil bus wants something")
	}
}

// Events pushed during a Hold wait for its Release; Close delivers what
// is queued.
func TestHoldRelease(t *testing.T) {
	var mu sync.Mutex
	var got []string
	b, _ := newBus(t, 0, seqHook{name: "a", mu: &mu, log: &got})
	b.Hold()
	b.Emit(hooks.BreakerChange{To: "open"})
	b.Release()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the released event was not delivered")
		}
		time.Sleep(time.Millisecond)
	}
	b.Emit(hooks.BreakerChange{To: "closed"})
	b.Close(time.Minute)
	b.Emit(hooks.BreakerChange{To: "late"})
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, " ") != "a:open a:closed" {
		t.Fatalf("delivered %v", got)
	}
}

// Close gives up on a hook that does not return within its wait: it
// reports false, and what was queued behind the stuck call is dropped, not
// delivered once the hook returns. (Before, Close waited for good.)
func TestCloseGivesUpOnStuckHook(t *testing.T) {
	h := blocker{entered: make(chan struct{}, 1), release: make(chan struct{})}
	b := New([]hooks.Hook{h}, nil, 0)
	b.Start()
	b.Executed(context.Background(), hooks.Executed{Name: "stuck"})
	<-h.entered
	for range 3 {
		b.Executed(context.Background(), hooks.Executed{Name: "queued"})
	}
	start := time.Now()
	if b.Close(50 * time.Millisecond) {
		t.Fatal("Close reported the stuck hook finished")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v with a 50ms wait", d)
	}
	close(h.release)
	if !b.Close(10 * time.Second) {
		t.Fatal("the hook goroutine did not end once the hook returned")
	}
	if s := b.Stats(); s.Events != 1 || s.Dropped != 3 {
		t.Fatalf("events %d, dropped %d; want 1 delivered and the 3 queued dropped", s.Events, s.Dropped)
	}
}

// syncBuf is a log buffer safe to read while the bus writes to it.
type syncBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// Dropped events are logged (MsgDropped) while the engine runs even when
// the hook goroutine is stuck in a hook for good: before, only the hook
// goroutine logged them, after a batch it had delivered, so a hook that
// never returned hid every drop until Close. The report comes at most
// once a second, with the number dropped since the last one.
func TestDropLoggedWhileHookStuck(t *testing.T) {
	h := blocker{entered: make(chan struct{}, 1), release: make(chan struct{})}
	logs := &syncBuf{}
	b := New([]hooks.Hook{h}, slog.New(slog.NewTextHandler(logs, nil)), 4)
	b.Start()
	defer func() {
		close(h.release)
		b.Close(time.Minute)
	}()
	b.Executed(context.Background(), hooks.Executed{Name: "first"})
	<-h.entered // stuck for the rest of the test
	for range 10 {
		b.Executed(context.Background(), hooks.Executed{Name: "more"})
	}
	// The first drop has a report made at once (none for a second
	// before), on a timer's goroutine: it counts the drops made so far,
	// perhaps only the first. The next ones come at most one a second.
	waitTotal := func(total int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(logs.String(), fmt.Sprintf("total=%d\n", total)) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q line with total=%d with the hook stuck; log:\n%s", MsgDropped, total, logs)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitTotal(6)
	for range 3 {
		b.Executed(context.Background(), hooks.Executed{Name: "again"})
	}
	waitTotal(9)
	var at []time.Time
	for line := range strings.Lines(logs.String()) {
		if !strings.Contains(line, MsgDropped) {
			continue
		}
		f := strings.Fields(line)
		ts, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(f[0], "time="))
		if err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		at = append(at, ts)
	}
	// 6 drops, then 3 more: 2 reports, or 3 when the first counted only
	// some of the 6.
	if len(at) < 2 || len(at) > 3 {
		t.Errorf("%d reports, want 2 or 3:\n%s", len(at), logs)
	}
	for i := 1; i < len(at); i++ {
		if d := at[i].Sub(at[i-1]); d < 900*time.Millisecond {
			t.Errorf("report %d came %v after the one before, want about a second (rate limit):\n%s", i+1, d, logs)
		}
	}
}

// stateRec blocks in PostExecution until released, and records the
// other events it gets, in order.
type stateRec struct {
	blocker
	mu  sync.Mutex
	got []string
}

func (h *stateRec) add(s string) {
	h.mu.Lock()
	h.got = append(h.got, s)
	h.mu.Unlock()
}
func (h *stateRec) OnConsumerEvent(ev hooks.Consumer)          { h.add("consumer:" + ev.Kind.String()) }
func (h *stateRec) OnBreakerChanged(ev hooks.BreakerChange)    { h.add("breaker:" + ev.To) }
func (h *stateRec) OnSubscriberEvent(ev hooks.Subscriber)      { h.add("sub:" + ev.Kind.String()) }
func (h *stateRec) PostConnection(ev hooks.Dialed)             { h.add(fmt.Sprintf("dialed:%v", ev.Dedicated)) }
func (h *stateRec) OnRetryScheduled(hooks.Retry)               { h.add("retry") }
func (h *stateRec) OnSentinelSwitched(ev hooks.SentinelSwitch) { h.add("sentinel:" + ev.To) }

// The lifecycle events that observers keep state from (a consumer's
// Stopped ends its lag series, a breaker's change, a subscriber's
// disconnect) are not dropped when the queue is full: they are delivered
// after the queued events, in order, once the hook catches up, while the
// other events that find the queue full are dropped and counted. Before,
// a Stopped that found the queue full was dropped and otelvactor reported
// the stopped consumer's lag for ever.
func TestLifecycleEventsNotDropped(t *testing.T) {
	h := &stateRec{blocker: blocker{entered: make(chan struct{}, 1), release: make(chan struct{})}}
	b, _ := newBus(t, 8, h)
	release := sync.OnceFunc(func() { close(h.release) })
	defer release()
	b.Executed(context.Background(), hooks.Executed{Name: "first"})
	<-h.entered // the hook goroutine is stuck in the first event
	for range 8 {
		b.Executed(context.Background(), hooks.Executed{Name: "queued"})
	}
	b.Emit(hooks.Consumer{Kind: hooks.Lag})                         // dropped
	b.Emit(hooks.Retry{})                                           // dropped
	b.Emit(hooks.Dialed{Dedicated: true})                           // dropped
	b.Emit(hooks.Subscriber{Kind: hooks.MessagesDropped, Count: 1}) // dropped
	b.Emit(hooks.BreakerChange{From: "closed", To: "open"})
	b.Emit(hooks.Subscriber{Kind: hooks.Disconnected})
	b.Emit(hooks.Dialed{})
	b.Emit(hooks.BreakerChange{From: "open", To: "closed"})
	b.Emit(hooks.Subscriber{Kind: hooks.Resubscribed})
	b.Emit(hooks.SentinelSwitch{To: "b"})
	b.Emit(hooks.Consumer{Kind: hooks.Stopped})
	if d := b.Stats().Dropped; d != 4 {
		t.Fatalf("%d dropped, want 4 (the lifecycle events kept)", d)
	}
	release()
	b.Close(time.Minute)
	want := "breaker:open sub:disconnected dialed:false breaker:closed sub:resubscribed sentinel:b consumer:stopped"
	h.mu.Lock()
	got := strings.Join(h.got, " ")
	h.mu.Unlock()
	if got != want {
		t.Fatalf("delivered %q, want %q", got, want)
	}
	if s := b.Stats(); s.Events != 1+8+7 || s.Dropped != 4 {
		t.Fatalf("stats %+v, want 16 events delivered, 4 dropped", s)
	}
}

// The lifecycle events' own queue is bounded too (by the capacity): a
// hook that never returns makes them dropped once it is full.
func TestLifecycleQueueBounded(t *testing.T) {
	h := &stateRec{blocker: blocker{entered: make(chan struct{}, 1), release: make(chan struct{})}}
	b, _ := newBus(t, 2, h)
	release := sync.OnceFunc(func() { close(h.release) })
	defer release()
	b.Executed(context.Background(), hooks.Executed{Name: "first"})
	<-h.entered
	b.Executed(context.Background(), hooks.Executed{Name: "queued"})
	b.Executed(context.Background(), hooks.Executed{Name: "queued"})
	for range 5 {
		b.Emit(hooks.Consumer{Kind: hooks.Stopped})
	}
	if d := b.Stats().Dropped; d != 3 {
		t.Fatalf("%d dropped, want 3 (2 kept)", d)
	}
	release()
	b.Close(time.Minute)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.got) != 2 {
		t.Fatalf("delivered %v, want 2 Stopped", h.got)
	}
}

// When Close gives up on a stuck hook, the events still queued, the
// lifecycle events that wait in their own queue included, are counted as
// dropped by the time Close returns (Stats.Dropped, the engine's
// Stats.HookDropped), and not counted again when the hook returns.
// Before, they were counted only once the stuck hook returned, if ever:
// an engine closed with a hook stuck for good never counted them.
func TestCloseCountsQueuedWhenGivingUp(t *testing.T) {
	h := &stateRec{blocker: blocker{entered: make(chan struct{}, 1), release: make(chan struct{})}}
	b := New([]hooks.Hook{h}, nil, 4)
	b.Start()
	release := sync.OnceFunc(func() { close(h.release) })
	defer release()
	b.Executed(context.Background(), hooks.Executed{Name: "first"})
	<-h.entered // stuck
	for range 4 {
		b.Executed(context.Background(), hooks.Executed{Name: "queued"})
	}
	b.Emit(hooks.BreakerChange{From: "closed", To: "open"}) // lifecycle: its own queue
	b.Emit(hooks.Consumer{Kind: hooks.Stopped})
	if d := b.Stats().Dropped; d != 0 {
		t.Fatalf("%d dropped before Close, want 0", d)
	}
	if b.Close(50 * time.Millisecond) {
		t.Fatal("Close reported the stuck hook finished")
	}
	if d := b.Stats().Dropped; d != 6 {
		t.Fatalf("%d dropped when Close gave up, want the 6 queued (2 lifecycle)", d)
	}
	release()
	if !b.Close(10 * time.Second) {
		t.Fatal("the hook goroutine did not end once the hook returned")
	}
	if s := b.Stats(); s.Events != 1 || s.Dropped != 6 {
		t.Fatalf("stats %+v, want 1 delivered and 6 dropped (each counted once)", s)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.got) != 0 {
		t.Fatalf("delivered %v after Close gave up", h.got)
	}
}

// closingHook calls CloseFrom, as the engine's Close does, at the event
// named at, and reports what it returned and how long it took.
type closingHook struct {
	b   *Bus
	at  string
	got chan closeResult
}

type closeResult struct {
	finished bool
	took     time.Duration
}

func (h *closingHook) PostExecution(_ context.Context, ev hooks.Executed) {
	if ev.Name == h.at {
		start := time.Now()
		finished := h.b.CloseFrom(5*time.Second, goid.Get())
		h.got <- closeResult{finished, time.Since(start)}
	}
}

// A hook that closes the bus (CloseFrom on the hook goroutine) does not
// wait for itself: CloseFrom returns true at once; the event in hand
// still reaches the hooks after the closing one, nothing queued behind it
// reaches any; those are counted as dropped and not logged; the hook
// goroutine ends when the hook returns. Without the check CloseFrom
// waited for the hook goroutine, its caller, for the whole wait.
func TestCloseFromHook(t *testing.T) {
	var mu sync.Mutex
	var got []string
	a := seqHook{name: "a", mu: &mu, log: &got}
	c := seqHook{name: "c", mu: &mu, log: &got}
	h := &closingHook{at: "CLOSE", got: make(chan closeResult, 1)}
	b, logs := newBus(t, 0, a, h, c)
	h.b = b
	b.Hold() // one batch: two events before the closing one, three behind
	for _, n := range []string{"GET", "SET", "CLOSE", "DEL", "INCR"} {
		b.Executed(context.Background(), hooks.Executed{Name: n})
	}
	b.Emit(hooks.BreakerChange{To: "open"}) // a lifecycle event too
	b.Release()
	var r closeResult
	select {
	case r = <-h.got:
	case <-time.After(10 * time.Second):
		t.Fatal("deadlock: CloseFrom on the hook goroutine has not returned within 10 s")
	}
	if !r.finished || r.took > time.Second {
		t.Fatalf("CloseFrom on the hook goroutine = %v after %v, want true at once", r.finished, r.took)
	}
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the hook goroutine has not ended within 10 s of the closing hook's return")
	}
	want := "a:GET c:GET a:SET c:SET a:CLOSE c:CLOSE"
	if s := strings.Join(got, " "); s != want {
		t.Fatalf("delivered %v, want %v", s, want)
	}
	if st := b.Stats(); st.Dropped != 3 || st.Events != 3 {
		t.Fatalf("stats %+v, want the 3 events up to the closing one delivered, the 3 behind it dropped", st)
	}
	if strings.Contains(logs.String(), MsgDropped) {
		t.Fatalf("drops logged for a hook that closed the bus:\n%s", logs)
	}
	if !b.Close(time.Minute) {
		t.Fatal("a later Close reports a stuck hook")
	}
}

// Runs is false for 0, another goroutine, and a bus not started.
func TestRuns(t *testing.T) {
	var nilBus *Bus
	if nilBus.Runs(goid.Get()) {
		t.Fatal("a nil bus runs this goroutine")
	}
	b := New([]hooks.Hook{seqHook{name: "a", mu: new(sync.Mutex), log: new([]string)}}, nil, 0)
	if b.Runs(goid.Get()) || b.Runs(0) {
		t.Fatal("a bus not started runs a goroutine")
	}
	b.Start()
	defer b.Close(time.Minute)
	if b.Runs(goid.Get()) || b.Runs(0) {
		t.Fatal("Runs is true for a goroutine other than the hook goroutine")
	}
}

// When Close gives up on a hook stuck in the middle of a batch, the
// events of that batch it never delivers are counted once: in Dropped,
// not also in Events (Events + Dropped is the events queued). Before,
// the hook goroutine had counted the whole batch in Events when it took
// it, and added the rest to Dropped too.
func TestAbandonedBatchCountedOnce(t *testing.T) {
	h := blocker{entered: make(chan struct{}, 1), release: make(chan struct{})}
	b, _ := newBus(t, 0, h)
	release := sync.OnceFunc(func() { close(h.release) })
	defer release()
	b.Hold() // one batch: the stuck event and 4 behind it
	for _, n := range []string{"stuck", "a", "b", "c", "d"} {
		b.Executed(context.Background(), hooks.Executed{Name: n})
	}
	b.Release()
	<-h.entered
	for range 2 { // queued behind the batch in hand
		b.Executed(context.Background(), hooks.Executed{Name: "queued"})
	}
	if b.Close(50 * time.Millisecond) {
		t.Fatal("Close reported the stuck hook finished")
	}
	if s := b.Stats(); s.Dropped != 2 || s.Events+s.Dropped > 7 {
		t.Fatalf("stats %+v when Close gave up, want the 2 queued dropped and at most 7 counted", s)
	}
	release()
	if !b.Close(10 * time.Second) {
		t.Fatal("the hook goroutine did not end once the hook returned")
	}
	if s := b.Stats(); s.Events != 1 || s.Dropped != 6 {
		t.Fatalf("stats %+v, want 1 delivered and 6 dropped (each of the 7 counted once)", s)
	}
}

// panicker panics in every PostExecution and OnBreakerChanged.
type panicker struct{ name string }

func (p panicker) PostExecution(context.Context, hooks.Executed) { panic(p.name) }
func (p panicker) OnBreakerChanged(hooks.BreakerChange)          { panic(p.name) }

// panicLines returns the MsgPanicked lines of logs, by the hook's panic
// value.
func panicLines(t *testing.T, logs string) map[string]string {
	t.Helper()
	lines := map[string]string{}
	for line := range strings.Lines(logs) {
		if !strings.Contains(line, MsgPanicked) {
			continue
		}
		_, v, ok := strings.Cut(line, " panic=")
		if !ok {
			t.Fatalf("a panic line without panic: %q", line)
		}
		lines[strings.Fields(v)[0]] = line
	}
	return lines
}

// A panic's report gives a configured hook's index in Config.Hooks, not
// in the bus's list, which starts with the engine's own hooks (the
// Logging hook of Config.Logger): NewOwn's own. One of the engine's own
// is reported with engine=true and no index. Before, every configured
// hook's index was one too high whenever Config.Logger was set.
func TestPanicIndexInConfigHooks(t *testing.T) {
	var buf bytes.Buffer
	b := NewOwn([]hooks.Hook{panicker{"own"}, panicker{"user0"}, preHook{}, panicker{"user2"}},
		1, slog.New(slog.NewTextHandler(&buf, nil)), 0)
	b.Start()
	b.Executed(context.Background(), hooks.Executed{Name: "GET"})
	b.Close(time.Minute)
	lines := panicLines(t, buf.String())
	for name, want := range map[string]string{"user0": " index=0 ", "user2": " index=2 ", "own": " engine=true "} {
		l, ok := lines[name]
		if !ok {
			t.Fatalf("no panic line for %s:\n%s", name, buf.String())
		}
		if !strings.Contains(l, want) {
			t.Errorf("panic line for %s: %q, want %q in it", name, l, strings.TrimSpace(want))
		}
	}
	if l := lines["own"]; strings.Contains(l, "index=") {
		t.Errorf("the engine's own hook reported with an index: %q", l)
	}
	// New: every hook is configured; indexes are those of hs.
	buf.Reset()
	b = New([]hooks.Hook{preHook{}, panicker{"p"}}, slog.New(slog.NewTextHandler(&buf, nil)), 0)
	b.Start()
	b.Executed(context.Background(), hooks.Executed{Name: "GET"})
	b.Close(time.Minute)
	if l := panicLines(t, buf.String())["p"]; !strings.Contains(l, " index=1 ") {
		t.Errorf("New: panic line %q, want index=1", l)
	}
}

// panicHandler is a slog handler that panics on every record.
type panicHandler struct{}

func (panicHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (panicHandler) Handle(context.Context, slog.Record) error { panic("handler") }
func (h panicHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h panicHandler) WithGroup(string) slog.Handler           { return h }

// The engine's own Logging hook panics when Config.Logger's handler
// does; the report of that panic goes to the same handler, which panics
// again: the bus counts the panic and loses the line rather than end the
// process from its recovery.
func TestPanickingLoggerOfOwnHook(t *testing.T) {
	log := slog.New(panicHandler{})
	var mu sync.Mutex
	var got []string
	b := NewOwn([]hooks.Hook{hooks.NewLogging(log), seqHook{name: "a", mu: &mu, log: &got}}, 1, log, 0)
	b.Start()
	b.Emit(hooks.BreakerChange{Node: "n", From: "closed", To: "open"})
	b.Emit(hooks.BreakerChange{Node: "n", From: "open", To: "closed"})
	if !b.Close(time.Minute) {
		t.Fatal("Close gave up")
	}
	if s := b.Stats(); s.Panics != 2 {
		t.Fatalf("stats %+v, want the Logging hook's 2 panics", s)
	}
	if strings.Join(got, " ") != "a:open a:closed" {
		t.Fatalf("the hook after the panicking one got %v", got)
	}
}
