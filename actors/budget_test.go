package actors_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

// Transport retries (Policy.MaxRetries, counted by the connection actor)
// and cluster redirects (SlotState.MaxRedirects, counted by the slot
// actor) have budgets of their own: one never uses up the other.

// scriptConn is a drivers.ValkeyConn that answers PING (the reconnect's check)
// with PONG and every other command with the next step of its script:
// "MOVED" (a redirect to the same node), "DOWN" (a transport error from
// before anything was written, which the actor sends again), "LOST" (a
// transport error after the write: io.EOF), or a string reply. Past the script's end it answers "OK".
type scriptConn struct {
	mu     sync.Mutex
	script []string
	sent   int // script steps used
}

var _ drivers.ValkeyConn = (*scriptConn)(nil)

const scriptAddr = "127.0.0.1:7001"

func (s *scriptConn) B() valkey.Builder { return valkey.Builder{} }

func (s *scriptConn) Do(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResult {
	return s.DoMulti(ctx, cmd)[0]
}

func (s *scriptConn) DoMulti(_ context.Context, cmds ...valkey.Completed) []valkey.ValkeyResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]valkey.ValkeyResult, len(cmds))
	for i, c := range cmds {
		if c.Commands()[0] == "PING" {
			out[i] = strReply("PONG")
			continue
		}
		step := "OK"
		if s.sent < len(s.script) {
			step = s.script[s.sent]
		}
		s.sent++
		switch step {
		case "MOVED":
			out[i] = serverErrReply("MOVED 1 " + scriptAddr)
		case "DOWN":
			out[i] = transportErrReply(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
		case "LOST":
			out[i] = transportErrReply(io.EOF)
		default:
			out[i] = strReply(step)
		}
	}
	return out
}

func (s *scriptConn) Close() error { return nil }

// used returns how many script steps were consumed.
func (s *scriptConn) used() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// hookedCmd is a fakeCmd a slot actor can follow, completed as the
// engine's requests are: through the slot's collector, which takes back
// redirect replies.
type hookedCmd struct {
	*fakeCmd
	cmd       valkey.Completed
	hook      atomic.Pointer[actors.Collector]
	seq       uint32
	redirects int // only the slot actor touches it
}

var _ actors.Hooked = (*hookedCmd)(nil)

func newHookedCmd(id int) *hookedCmd {
	return &hookedCmd{fakeCmd: newFakeCmd(id, nil), cmd: valkey.Builder{}.Arbitrary("SET", "k", "v").Build()}
}

func (c *hookedCmd) Cmd() valkey.Completed { return c.cmd }
func (c *hookedCmd) SetHook(h *actors.Collector, seq uint32) {
	c.seq = seq
	c.hook.Store(h)
}
func (c *hookedCmd) Seq() uint32    { return c.seq }
func (c *hookedCmd) Renew()         {}
func (c *hookedCmd) Redirects() int { return c.redirects }
func (c *hookedCmd) Redirected()    { c.redirects++ }

func (c *hookedCmd) Complete(r valkey.ValkeyResult) {
	h := c.hook.Swap(nil)
	if h != nil && h.Intercept(c, r) {
		return // redirected: the slot actor sends it again
	}
	c.fakeCmd.Complete(r)
	if h != nil {
		h.Done()
	}
}

func (c *hookedCmd) Fail(err error) {
	c.fakeCmd.Fail(err)
	if h := c.hook.Swap(nil); h != nil {
		h.Failed()
	}
}

// oneNode is an actors.Router over one node whose connection actor is st.
type oneNode struct{ st *actors.ConnState }

func (r oneNode) Owner(uint16) (string, error)                   { return scriptAddr, nil }
func (r oneNode) Conn(string, uint16) (*actors.ConnState, error) { return r.st, nil }
func (r oneNode) ReadConn(uint16) (*actors.ConnState, error)     { return nil, nil }
func (r oneNode) ReplicaAddr(uint16) string                      { return "" }
func (r oneNode) Cached(string, uint16) *actors.ConnState        { return r.st }
func (r oneNode) ReplicaReads() bool                             { return false }
func (r oneNode) Asking() actors.Command                         { return newFakeCmd(-1, nil) }
func (r oneNode) Moved(uint16, string)                           {}
func (r oneNode) Stale(uint16)                                   {}
func (r oneNode) Epoch() uint64                                  { return 1 }
func (r oneNode) Refresh(uint16) (string, error)                 { return scriptAddr, nil }

const (
	testMaxRetries   = 2
	testMaxRedirects = 3
)

// runScript sends one command through a slot actor to a connection actor
// whose driver follows script, and returns the command once it completed.
func runScript(t *testing.T, script ...string) (*hookedCmd, *scriptConn) {
	t.Helper()
	snapshot := goleak.IgnoreCurrent()
	conn := &scriptConn{script: script}
	backoff := policies.Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}
	st := scriptNode(conn)
	st.Policy = &actors.Policy{
		MaxRetries: testMaxRetries,
		Backoff:    backoff,
		Budget:     policies.NewBudget(1, 100),
	}
	h := start(t, st)
	slot := &actors.SlotState{
		Slot:         1,
		Router:       oneNode{st},
		MaxRedirects: testMaxRedirects,
		Backoff:      backoff,
		CloseErr:     mailbox.ErrClosed,
		NewMailbox:   func() *mailbox.Bounded { return mailbox.New(mailbox.Options{}) },
		System:       h.system,
	}
	cmd := newHookedCmd(1)
	slot.Submit(cmd)
	cmd.waitDone(t)
	slot.Close(mailbox.ErrClosed)
	slot.Wait()
	h.shutdown(t, snapshot)
	return cmd, conn
}

// A command redirected MaxRedirects-1 times still gets its MaxRetries
// transport retries.
func TestRedirectsLeaveRetries(t *testing.T) {
	var script []string
	for range testMaxRedirects - 1 {
		script = append(script, "MOVED")
	}
	for range testMaxRetries {
		script = append(script, "DOWN")
	}
	cmd, conn := runScript(t, append(script, "done")...)
	cmd.wantString(t, "done")
	if cmd.redirects != testMaxRedirects-1 || cmd.attempts != testMaxRetries {
		t.Fatalf("redirects %d, retries %d; want %d and %d", cmd.redirects, cmd.attempts, testMaxRedirects-1, testMaxRetries)
	}
	if n := conn.used(); n != len(script)+1 {
		t.Fatalf("%d sends, want %d", n, len(script)+1)
	}
}

// A command retried MaxRetries times after transport failures still gets
// its MaxRedirects redirects.
func TestRetriesLeaveRedirects(t *testing.T) {
	var script []string
	for range testMaxRetries {
		script = append(script, "DOWN")
	}
	for range testMaxRedirects {
		script = append(script, "MOVED")
	}
	cmd, _ := runScript(t, append(script, "done")...)
	cmd.wantString(t, "done")
	if cmd.redirects != testMaxRedirects || cmd.attempts != testMaxRetries {
		t.Fatalf("redirects %d, retries %d; want %d and %d", cmd.redirects, cmd.attempts, testMaxRedirects, testMaxRetries)
	}
}

// Each budget still bounds its own kind: one redirect more than
// MaxRedirects fails with ErrTooManyRedirects, one transport failure more
// than MaxRetries fails with the transport error.
func TestRedirectAndRetryBudgetsBound(t *testing.T) {
	var script []string
	for range testMaxRedirects + 1 {
		script = append(script, "MOVED")
	}
	cmd, _ := runScript(t, script...)
	if err := cmd.wantFailed(t); !errors.Is(err, actors.ErrTooManyRedirects) {
		t.Fatalf("after %d redirects: %v, want ErrTooManyRedirects", testMaxRedirects+1, err)
	}

	script = []string{"MOVED"}
	for range testMaxRetries + 1 {
		script = append(script, "DOWN")
	}
	cmd, _ = runScript(t, script...)
	if err := cmd.wantFailed(t); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("after %d transport failures: %v, want the transport error", testMaxRetries+1, err)
	}
}

// A read whose reply a broken connection lost is sent again: the first
// time whatever the retry budget (a lost connection costs its node one
// more send of what was in flight: qa-AJ, 900 of 1,000 GETs in flight
// failed where valkey-go and go-redis served them all), later times
// within the budget. Past it the read fails as an outcome unknown that
// names the budget (ErrRetryBudget), and so do the repeatable commands a
// write refused by the budget holds back (qa-AJ: 899 of 900 idempotent
// SETs said nothing of it); a write hit the same way does not (it is
// never resent: the budget is not why). (A cluster whose connections the
// servers all closed at once failed 18 of 200 GETs with a bare "outcome
// unknown: EOF".) ConnStats.RetryBudget counts what the budget refused.
func TestRetryBudgetNamed(t *testing.T) {
	b := subBuilder(t)
	snapshot := goleak.IgnoreCurrent()
	conn := &holdConn{
		scriptConn: &scriptConn{script: []string{
			"LOST", "LOST", "first", // the budget's one token: its second resend
			"LOST", "LOST", // a read and an idempotent write, resent once each for free...
			"LOST", "LOST", // ...then refused by the spent budget
			"LOST", // a plain write: never resent
		}},
		release: make(chan struct{}), entered: make(chan struct{}, 1),
	}
	st := scriptNode(conn)
	st.Policy = quickPolicy(policies.NewBudget(0.001, 1)) // one token, then ~nothing earned
	h := start(t, st)
	cmd := func(id int, ctx context.Context, c valkey.Completed) *fakeCmd {
		f := newFakeCmd(id, nil)
		f.ctx, f.cmd = ctx, c
		return f
	}
	bg := context.Background()
	first := cmd(1, bg, b.Get().Key("k").Build())
	st.Mailbox.Post(first)
	<-conn.entered
	read := cmd(2, bg, b.Get().Key("k").Build())
	idem := cmd(3, policies.WithIdempotent(bg), b.Set().Key("k").Value("v").Build())
	st.Mailbox.Post(read)
	st.Mailbox.Post(idem) // one batch with read, behind first's recovery
	close(conn.release)
	first.wantString(t, "first")
	for _, c := range []*fakeCmd{read, idem} {
		err := c.wantFailed(t)
		if !errors.Is(err, policies.ErrOutcomeUnknown) || !errors.Is(err, policies.ErrRetryBudget) || !errors.Is(err, io.EOF) {
			t.Fatalf("command %d past the budget failed with %v, want ErrOutcomeUnknown wrapping ErrRetryBudget and io.EOF", c.id, err)
		}
	}
	write := cmd(4, bg, b.Set().Key("k").Value("v").Build())
	st.Mailbox.Post(write)
	err := write.wantFailed(t)
	if !errors.Is(err, policies.ErrOutcomeUnknown) || errors.Is(err, policies.ErrRetryBudget) {
		t.Fatalf("write whose reply was lost failed with %v, want ErrOutcomeUnknown not naming the budget", err)
	}
	if first.attempts != 2 || read.attempts != 1 || idem.attempts != 1 || write.attempts != 0 {
		t.Fatalf("attempts %d, %d, %d, %d; want 2, 1, 1, 0", first.attempts, read.attempts, idem.attempts, write.attempts)
	}
	// The two the budget refused are counted apart, among the three
	// outcomes unknown.
	if s := st.Stats(); s.RetryBudget != 2 || s.OutcomeUnknown != 3 {
		t.Fatalf("Stats RetryBudget = %d, OutcomeUnknown = %d; want 2 and 3", s.RetryBudget, s.OutcomeUnknown)
	}
	h.shutdown(t, snapshot)
}

// A command a transport error hit and the actor keeps to send again is in
// ConnStats.Held until the new connection takes it: in no mailbox and not
// in flight meanwhile, it was counted nowhere (qa-AF).
func TestStatsHeldWhileReconnecting(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn := &scriptConn{script: []string{"DOWN", "back"}}
	st := scriptNode(conn)
	release := make(chan struct{})
	st.Node.Dial = func(ctx context.Context) (drivers.ValkeyConn, error) {
		select {
		case <-release:
			return conn, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	st.Node.DialTimeout = time.Minute
	st.Policy = quickPolicy(policies.NewBudget(0.1, 100))
	h := start(t, st)
	cmd := newFakeCmd(1, nil)
	cmd.cmd = valkey.Builder{}.Arbitrary("SET", "k", "v").Build()
	st.Mailbox.Post(cmd)
	eventually(t, "the command held while the dial waits", func() bool { return st.Stats().Held == 1 })
	if s := st.Stats(); s.InFlight != 0 || s.Mailbox.Queued != 0 || s.Connected {
		t.Fatalf("Stats while held = %+v, want nothing in flight or queued, not connected", s)
	}
	close(release)
	cmd.wantString(t, "back")
	if held := st.Stats().Held; held != 0 {
		t.Fatalf("Held = %d after the resend, want 0", held)
	}
	h.shutdown(t, snapshot)
}

// The first resend after a write is free of the budget also for a command
// retried before as not sent (a connection found closed): the not-sent
// retry does not count (review-31 F1: a GET refused as not sent and then
// lost after its write paid the budget, and past it failed).
func TestFirstResendAfterNotSentFree(t *testing.T) {
	b := subBuilder(t)
	snapshot := goleak.IgnoreCurrent()
	conn := &scriptConn{script: []string{
		"LOST", "LOST", "ok0", // cmd0: its free resend, then the budget's one token
		"DOWN", "LOST", "ok1", // cmd1: a not-sent retry, then its first resend after a write
	}}
	st := scriptNode(conn)
	st.Policy = quickPolicy(policies.NewBudget(0.001, 1)) // one token, then ~nothing earned
	h := start(t, st)
	c0 := newFakeCmd(0, nil)
	c0.cmd = b.Get().Key("k").Build()
	st.Mailbox.Post(c0)
	c0.wantString(t, "ok0")
	c1 := newFakeCmd(1, nil)
	c1.cmd = b.Get().Key("k").Build()
	st.Mailbox.Post(c1)
	c1.wantString(t, "ok1")
	if c1.attempts != 2 || c1.rewrites != 1 {
		t.Fatalf("attempts %d, rewrites %d; want 2 and 1", c1.attempts, c1.rewrites)
	}
	h.shutdown(t, snapshot)
}

// quickPolicy is the policy of the budget tests: 3 retries, a backoff of a
// millisecond or two, and budget.
func quickPolicy(budget *policies.Budget) *actors.Policy {
	return &actors.Policy{
		MaxRetries: 3,
		Backoff:    policies.Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond},
		Budget:     budget,
	}
}

// A command written and lost, then found unsent on each of its resends
// until MaxRetries, fails as an outcome unknown, not as not sent: its
// first try may have run (a WithIdempotent SET said ErrNotSent though it
// may have been applied).
func TestUnsentAfterWrittenStaysUnknown(t *testing.T) {
	b := subBuilder(t)
	snapshot := goleak.IgnoreCurrent()
	conn := &scriptConn{script: []string{"LOST", "DOWN", "DOWN", "DOWN"}}
	st := scriptNode(conn)
	st.Policy = quickPolicy(policies.NewBudget(0.1, 100))
	h := start(t, st)
	set := newFakeCmd(1, nil)
	set.ctx, set.cmd = policies.WithIdempotent(context.Background()), b.Set().Key("k").Value("v").Build()
	st.Mailbox.Post(set)
	err := set.wantFailed(t)
	if !errors.Is(err, policies.ErrOutcomeUnknown) || policies.NotSent(err) || errors.Is(err, drivers.ErrNotSent) {
		t.Fatalf("SET written, then unsent thrice: %v; want ErrOutcomeUnknown, not a not-sent error", err)
	}
	if set.attempts != 3 || set.rewrites != 1 {
		t.Fatalf("attempts %d, rewrites %d; want 3 and 1", set.attempts, set.rewrites)
	}
	if got := st.Stats().OutcomeUnknown; got != 1 {
		t.Fatalf("OutcomeUnknown = %d, want 1", got)
	}
	h.shutdown(t, snapshot)
}
