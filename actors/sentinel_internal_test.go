package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/policies"
)

// hookLog records the sentinel actor's callbacks, in order.
type hookLog struct {
	mu      sync.Mutex
	calls   []string
	changed chan struct{}
}

func newHookLog() *hookLog { return &hookLog{changed: make(chan struct{})} }

func (l *hookLog) add(s string) {
	l.mu.Lock()
	l.calls = append(l.calls, s)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// waitFor waits until the log holds want (joined with "; ").
func (l *hookLog) waitFor(t *testing.T, want string) {
	t.Helper()
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	for {
		l.mu.Lock()
		got := strings.Join(l.calls, "; ")
		ch := l.changed
		l.mu.Unlock()
		if got == want {
			return
		}
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("callbacks: %q, want %q", got, want)
		}
	}
}

var errNoSentinel = errors.New("test: no sentinel")

// startSentinelActor runs the actor with dials that always fail (no
// resolution ever answers: the view is the one set here) and the hold
// limit given; events are injected as messages.
func startSentinelActor(t *testing.T, limit time.Duration) (*SentinelState, *hookLog) {
	t.Helper()
	snapshot := goleak.IgnoreCurrent()
	log := newHookLog()
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	s := &SentinelState{
		MasterName: "mymaster",
		Sentinels:  []string{"s1:1", "s2:2"},
		Dial: func(context.Context, string) (drivers.ValkeyConn, error) {
			return nil, errNoSentinel
		},
		Timeout:   time.Second,
		Backoff:   policies.Backoff{Min: time.Hour, Max: time.Hour}, // no resubscription within the test
		HoldLimit: limit,
		OnHold:    func(c string, r []string) { log.add(fmt.Sprintf("hold %s %v", c, r)) },
		OnSwitch: func(from string, to *SentinelView) {
			log.add(fmt.Sprintf("switch %s->%s gen %d", from, to.Master, to.Gen))
		},
		OnRelease: func() { log.add("release") },
	}
	s.init()
	s.view.Store(&SentinelView{Master: "10.0.0.1:6379", Gen: 1, Epoch: 3, Replicas: []string{"10.0.0.2:6379", "10.0.0.3:6379"}})
	if err := s.Spawn(sys); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		sys.Shutdown()
		goleak.VerifyNone(t, snapshot)
	})
	return s, log
}

func (s *SentinelState) inject(from, channel, payload string) {
	s.tell(sentinelEvent{from: from, channel: channel, payload: payload, at: time.Now()})
}

const (
	evMaster = "master mymaster 10.0.0.1 6379"
	evSlave2 = "slave 10.0.0.2:6379 10.0.0.2 6379 @ mymaster 10.0.0.1 6379"
)

// A failover of the primary holds from its first event; the promotion
// switches; later events of the same failover change nothing.
func TestSentinelActorHoldThenPromotion(t *testing.T) {
	s, log := startSentinelActor(t, time.Hour)
	s.inject("s1:1", evTryFailover, evMaster)
	s.inject("s1:1", evSelectedReplica, evSlave2)
	s.inject("s1:1", evSendReplicaOfNo, evSlave2)
	s.inject("s1:1", evPromoted, evSlave2)
	s.inject("s2:2", evSwitchMaster, "mymaster 10.0.0.1 6379 10.0.0.2 6379")
	s.inject("s1:1", evSwitchMaster, "mymaster 10.0.0.1 6379 10.0.0.2 6379")
	log.waitFor(t, "hold  [10.0.0.2:6379 10.0.0.3:6379]; hold 10.0.0.2:6379 [10.0.0.2:6379 10.0.0.3:6379]; switch 10.0.0.1:6379->10.0.0.2:6379 gen 2")
	v := s.View()
	if v.Master != "10.0.0.2:6379" || v.Epoch != 4 || !v.floor || len(v.Replicas) != 1 || v.Replicas[0] != "10.0.0.3:6379" {
		t.Fatalf("view after the switch = %+v", *v)
	}
	if st := s.Stats(); st.Switches != 1 || st.Holds != 1 {
		t.Fatalf("stats %+v, want 1 switch, 1 hold", st)
	}
}

// Events about another master name, another primary, or a switch from a
// primary other than the current one are ignored.
func TestSentinelActorIgnoresOthers(t *testing.T) {
	s, log := startSentinelActor(t, time.Hour)
	s.inject("s1:1", evTryFailover, "master other 10.0.0.1 6379")
	s.inject("s1:1", evTryFailover, "master mymaster 10.0.0.9 6379")
	s.inject("s1:1", evSwitchMaster, "mymaster 10.0.0.9 6379 10.0.0.2 6379") // a lagging sentinel's old switch
	s.inject("s1:1", evSwitchMaster, "other 10.0.0.1 6379 10.0.0.2 6379")
	s.inject("s1:1", evPromoted, "slave 10.0.0.2:6379 10.0.0.2 6379 @ other 10.0.0.1 6379")
	s.inject("s1:1", evSwitchMaster, "mymaster 10.0.0.1 6379 10.0.0.3 6379") // a real one, last
	log.waitFor(t, "switch 10.0.0.1:6379->10.0.0.3:6379 gen 2")
	if v := s.View(); v.Master != "10.0.0.3:6379" || v.Gen != 2 {
		t.Fatalf("view = %+v, want 10.0.0.3:6379 at gen 2 (only the real switch followed)", *v)
	}
}

// Two sentinels start a failover (a vote); one is not elected and aborts:
// the hold goes on until the other aborts too, then releases.
func TestSentinelActorAbortReleasesOnceAllAborted(t *testing.T) {
	s, log := startSentinelActor(t, time.Hour)
	s.inject("s1:1", evTryFailover, evMaster)
	s.inject("s2:2", evTryFailover, evMaster)
	s.inject("s1:1", evAbortPrefix+"not-elected", evMaster)
	log.waitFor(t, "hold  [10.0.0.2:6379 10.0.0.3:6379]")
	s.inject("s2:2", evAbortPrefix+"no-good-slave", evMaster)
	log.waitFor(t, "hold  [10.0.0.2:6379 10.0.0.3:6379]; release")
	if v := s.View(); v.Master != "10.0.0.1:6379" || v.Gen != 1 {
		t.Fatalf("view after the abort = %+v, want the old primary", *v)
	}
	if st := s.Stats(); st.Aborts != 1 {
		t.Fatalf("Aborts = %d, want 1", st.Aborts)
	}
}

// A hold with neither switch nor abort ends after the hold limit.
func TestSentinelActorHoldLimit(t *testing.T) {
	s, log := startSentinelActor(t, 200*time.Millisecond)
	start := time.Now()
	s.inject("s1:1", evTryFailover, evMaster)
	log.waitFor(t, "hold  [10.0.0.2:6379 10.0.0.3:6379]; release")
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("released after %v, before the 200ms hold limit", d)
	}
	if st := s.Stats(); st.HoldTimeouts != 1 {
		t.Fatalf("HoldTimeouts = %d, want 1", st.HoldTimeouts)
	}
}

// The acceptance rule of resolutions (see acceptable).
func TestSentinelAcceptable(t *testing.T) {
	view := &SentinelView{Master: "a:1", Epoch: 5}
	floor := &SentinelView{Master: "b:1", Epoch: 6, floor: true}
	unknown := &SentinelView{Master: "a:1", Epoch: -1}
	for _, c := range []struct {
		name string
		a    sentinelAnswer
		v    *SentinelView
		want bool
	}{
		{"no view", sentinelAnswer{master: "a:1", epoch: -1}, &SentinelView{Epoch: -1}, true},
		{"same primary", sentinelAnswer{master: "a:1", epoch: 5}, view, true},
		{"unknown name", sentinelAnswer{}, view, false},
		{"leader mid-failover", sentinelAnswer{master: "a:1", epoch: 6, inFailover: true}, view, false},
		{"newer epoch", sentinelAnswer{master: "b:1", epoch: 6}, view, true},
		{"same epoch, other primary", sentinelAnswer{master: "b:1", epoch: 5}, view, false},
		{"older epoch", sentinelAnswer{master: "b:1", epoch: 4}, view, false},
		{"lagging after an event", sentinelAnswer{master: "a:1", epoch: 5}, floor, false},
		{"confirms an event", sentinelAnswer{master: "b:1", epoch: 6}, floor, true},
		{"newer than an event", sentinelAnswer{master: "c:1", epoch: 7}, floor, true},
		{"no epochs", sentinelAnswer{master: "b:1", epoch: -1}, unknown, true},
		{"no epoch after an event", sentinelAnswer{master: "a:1", epoch: -1}, floor, false},
	} {
		if got := acceptable(c.a, c.v); got != c.want {
			t.Errorf("%s: acceptable = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSentinelParse(t *testing.T) {
	in, ok := parseInstance(evSlave2)
	if !ok || in.name != "mymaster" || in.addr != "10.0.0.2:6379" || in.master != "10.0.0.1:6379" {
		t.Fatalf("parseInstance(slave) = %+v, %v", in, ok)
	}
	in, ok = parseInstance("master mymaster ::1 6379")
	if !ok || in.addr != "[::1]:6379" || in.master != in.addr {
		t.Fatalf("parseInstance(master) = %+v, %v", in, ok)
	}
	for _, bad := range []string{"", "master x", "slave a b c d e f g", "sentinel x y z w"} {
		if _, ok := parseInstance(bad); ok {
			t.Errorf("parseInstance(%q) ok", bad)
		}
	}
	name, from, to, ok := parseSwitch("mymaster 10.0.0.1 6379 10.0.0.2 6380")
	if !ok || name != "mymaster" || from != "10.0.0.1:6379" || to != "10.0.0.2:6380" {
		t.Fatalf("parseSwitch = %s %s %s %v", name, from, to, ok)
	}
	if _, _, _, ok := parseSwitch("mymaster 1 2 3"); ok {
		t.Fatal("parseSwitch of 4 fields ok")
	}
}

// A leader whose failover has promoted its replica names it as the
// primary: its answer is not one of a failover in progress.
func TestSentinelPromotedState(t *testing.T) {
	for state, want := range map[string]bool{
		"": false, "wait_start": false, "select_slave": false, "send_slaveof_noone": false,
		"wait_promotion": false, "reconf_slaves": true, "update_config": true,
	} {
		if got := promoted(state); got != want {
			t.Errorf("promoted(%q) = %v, want %v", state, got, want)
		}
	}
}

// A +switch-master whose `to` is the current primary is a stale report of
// an earlier failover (a lagging sentinel's): it must not release the
// hold of a failover of the current primary, whose writes would then be
// acknowledged by the primary being failed over, and lost. (Review 27:
// a release on such a message, added for QA-Z 2, did that.)
func TestSentinelActorStaleSwitchKeepsHold(t *testing.T) {
	s, log := startSentinelActor(t, time.Hour)
	// Failover 1, followed at its leader's promotion.
	s.inject("s1:1", evTryFailover, evMaster)
	s.inject("s1:1", evPromoted, evSlave2)
	s.inject("s1:1", evSwitchMaster, "mymaster 10.0.0.1 6379 10.0.0.2 6379")
	// Failover 2, of 10.0.0.2; then s2's late report of failover 1; then
	// failover 2's promotion.
	s.inject("s1:1", evTryFailover, "master mymaster 10.0.0.2 6379")
	s.inject("s2:2", evSwitchMaster, "mymaster 10.0.0.1 6379 10.0.0.2 6379")
	s.inject("s1:1", evPromoted, "slave 10.0.0.3:6379 10.0.0.3 6379 @ mymaster 10.0.0.2 6379")
	// The events are handled in order: no release between the hold of
	// failover 2 and its switch.
	log.waitFor(t, "hold  [10.0.0.2:6379 10.0.0.3:6379]; switch 10.0.0.1:6379->10.0.0.2:6379 gen 2; hold  [10.0.0.3:6379]; switch 10.0.0.2:6379->10.0.0.3:6379 gen 3")
	if v, st := s.View(), s.Stats(); v.Master != "10.0.0.3:6379" || st.Switches != 2 || st.Holds != 2 || st.Aborts != 0 {
		t.Fatalf("view %+v, stats %+v: want 10.0.0.3:6379 after 2 holds and 2 switches, no abort", *v, st)
	}
}

// A primary whose sentinels' failover-timeout is the longest (beyond what
// a Duration holds, or within a second of it) is held as long as the hold
// limit allows: the failover-timeout wrapped around when parsed, and
// failover-timeout + 1s overflowed into a negative limit, so the hold
// was released as soon as it began and writes went to the primary being
// failed over.
func TestSentinelActorLongestFailoverTimeout(t *testing.T) {
	const master = "%3\r\n+config-epoch\r\n$1\r\n3\r\n+flags\r\n$6\r\nmaster\r\n+failover-timeout\r\n"
	addr := "*2\r\n$8\r\n10.0.0.1\r\n$4\r\n6379\r\n"
	for ms, want := range map[string]time.Duration{
		"180000":              3 * time.Minute,
		"9223372036854":       9223372036854 * time.Millisecond,
		"9223372036855":       math.MaxInt64,
		"288230376151711745":  math.MaxInt64, // 2⁵⁸+1: × 1,000,000 ns wrapped to 1 ms
		"9223372036854775807": math.MaxInt64,
	} {
		a, err := querySentinel(context.Background(), sentinelReplies(addr, master+bulk(ms), "*0\r\n", "*0\r\n"), "s1:1", "mymaster")
		if err != nil || a.failoverTimeout != want {
			t.Errorf("failover-timeout %s: %v, %v; want %v", ms, a.failoverTimeout, err, want)
		}
	}
	s, log := startSentinelActor(t, 200*time.Millisecond)
	s.tell(sentinelResolved{answer: &sentinelAnswer{from: "s1:1", master: "10.0.0.1:6379", epoch: 3,
		failoverTimeout: 9223372036854 * time.Millisecond, replicas: []string{"10.0.0.2:6379", "10.0.0.3:6379"}}})
	start := time.Now()
	s.inject("s1:1", evTryFailover, evMaster)
	log.waitFor(t, "hold  [10.0.0.2:6379 10.0.0.3:6379]; release")
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("released after %v, before the 200ms hold limit", d)
	}
}
