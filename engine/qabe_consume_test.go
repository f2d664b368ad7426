package engine_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/valkeytest"
)

// qabeDebugSleep runs DEBUG SLEEP secs on its own connection and returns
// once the server answered (valkeytest's Do gives up after 3 s).
func qabeDebugSleep(t testing.TB, srv *valkeytest.Server, secs string) {
	t.Helper()
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(c, "*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$%d\r\n%s\r\n", len(secs), secs); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "+OK") {
		t.Fatalf("DEBUG SLEEP %s: %q %v", secs, line, err)
	}
}

type qabeConsHook struct {
	mu  sync.Mutex
	evs []hooks.Consumer
}

func (h *qabeConsHook) OnConsumerEvent(ev hooks.Consumer) {
	h.mu.Lock()
	h.evs = append(h.evs, ev)
	h.mu.Unlock()
}

func (h *qabeConsHook) kinds() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var s []string
	for _, ev := range h.evs {
		if ev.Kind == hooks.Interrupted || ev.Kind == hooks.Resumed || ev.Kind == hooks.Stopped {
			s = append(s, fmt.Sprintf("%s(%v)", ev.Kind, ev.Err))
		}
	}
	return strings.Join(s, " ")
}

// A consumer with a poison entry (its handler always fails) through the
// group destroyed, the stream deleted, the key replaced by a string
// (WRONGTYPE), and a stalled server (DEBUG SLEEP): the poison entry is
// never acknowledged, every entry added after each fault is handled.
func TestQABEConsumerSurvivesFaults(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{Args: []string{"--enable-debug-command", "yes"}})
	defer subNoLeak(t)()
	h := &qabeConsHook{}
	eng := subEngine(t, srv, func(c config.Config) config.Config { return c.WithHooks(h) })
	ctx := ctxT(t)
	var mu sync.Mutex
	handled := map[string]int{} // payload -> successful handler calls
	poisonCalls := 0
	handler := func(_ context.Context, x engine.XEntry) error {
		mu.Lock()
		defer mu.Unlock()
		if x.Fields["p"] == "poison" {
			poisonCalls++
			return errors.New("poison")
		}
		handled[x.Fields["p"]]++
		return nil
	}
	c, err := eng.Consume(ctx, "qs", "g", "c1", handler, engine.ConsumeOptions{Block: 50 * time.Millisecond, ClaimIdle: 20 * time.Millisecond, ClaimInterval: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	add := func(p string) {
		t.Helper()
		if _, err := eng.XAdd(ctx, "qs", "p", p).Await(ctx); err != nil {
			t.Fatalf("XADD %s: %v", p, err)
		}
	}
	got := func(p string) bool {
		mu.Lock()
		defer mu.Unlock()
		return handled[p] > 0
	}
	step := func(name string, fault func()) {
		t.Helper()
		fault()
		for i := range 5 {
			add(fmt.Sprintf("%s-%d", name, i))
		}
		for i := range 5 {
			p := fmt.Sprintf("%s-%d", name, i)
			csWait(t, 15*time.Second, "after "+name+": "+p+" handled", func() bool { return got(p) })
		}
	}
	add("poison")
	step("start", func() {})
	step("destroy", func() {
		if _, err := srv.Do("XGROUP", "DESTROY", "qs", "g"); err != nil {
			t.Fatal(err)
		}
	})
	step("del", func() {
		if _, err := srv.Do("DEL", "qs"); err != nil {
			t.Fatal(err)
		}
		add("poison")
	})
	// WRONGTYPE: the key is a string for a while.
	if _, err := srv.Do("DEL", "qs"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Do("SET", "qs", "x"); err != nil {
		t.Fatal(err)
	}
	csWait(t, 10*time.Second, "WRONGTYPE seen", func() bool {
		var se *engine.ServerError
		return errors.As(c.Stats().LastError, &se) && se.Prefix == "WRONGTYPE"
	})
	step("wrongtype", func() {
		if _, err := srv.Do("DEL", "qs"); err != nil {
			t.Fatal(err)
		}
		add("poison")
	})
	step("sleep", func() {
		// The consumer's blocked read (Block 50ms) goes unanswered for 5s:
		// longer than Block + the silence bound.
		qabeDebugSleep(t, srv, "5")
	})
	// The poison entry is pending, never acknowledged.
	sum, err := eng.XPending(ctx, "qs", "g").Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Count != 1 {
		t.Errorf("pending %d, want 1 (the poison entry)", sum.Count)
	}
	st := c.Stats()
	mu.Lock()
	t.Logf("stats %+v; poison calls %d; handled %d payloads", st, poisonCalls, len(handled))
	mu.Unlock()
	t.Logf("events: %s", h.kinds())
	_ = c.Close()
	_ = eng.Close()
}

// A failing entry is handed over again by reclaim rounds once ClaimIdle
// has passed (ConsumeOptions.ClaimIdle's doc).
func TestQABEConsumerReclaimsFailed(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	var mu sync.Mutex
	calls := 0
	handler := func(_ context.Context, x engine.XEntry) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return errors.New("fails")
	}
	c, err := eng.Consume(ctx, "qr", "g", "c1", handler, engine.ConsumeOptions{Block: 50 * time.Millisecond, ClaimIdle: 20 * time.Millisecond, ClaimInterval: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := eng.XAdd(ctx, "qr", "p", "x").Await(ctx); err != nil {
		t.Fatal(err)
	}
	csWait(t, 5*time.Second, "the entry handed over 5 times", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls >= 5
	})
	t.Logf("stats %+v", c.Stats())
}
