package actors_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/valkey-io/valkey-go"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/policies"
)

// dialedConn is a fakeConn handed out by a fakeDialer: it can build the
// PING that checks a new connection (the zero valkey.Builder is usable).
type dialedConn struct{ *fakeConn }

func (dialedConn) B() valkey.Builder { return valkey.Builder{} }

// fakeDialer is a Node.Dial that hands out new fake connections. While
// hold is set, a dial reports itself on started and waits for release (or
// its context).
type fakeDialer struct {
	started chan struct{}

	mu      sync.Mutex
	conns   []*fakeConn
	hold    chan struct{} // nil: dial at once
	ignores bool          // the held dial ignores its context
	fail    error         // set: the next dial fails with it (after its hold), once
}

func newFakeDialer() *fakeDialer { return &fakeDialer{started: make(chan struct{}, 16)} }

func (d *fakeDialer) dial(ctx context.Context) (drivers.ValkeyConn, error) {
	d.mu.Lock()
	hold, ignores := d.hold, d.ignores
	d.mu.Unlock()
	if hold != nil {
		d.started <- struct{}{}
		if ignores {
			<-hold
		} else {
			select {
			case <-hold:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	d.mu.Lock()
	fail := d.fail
	d.fail = nil
	d.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	c := newFakeConn()
	d.mu.Lock()
	d.conns = append(d.conns, c)
	d.mu.Unlock()
	return dialedConn{c}, nil
}

// dialed returns the connections dialled so far.
func (d *fakeDialer) dialed() []*fakeConn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.conns)
}

// nodeState returns a ConnState with a Node (breaker of threshold,
// opening for an hour, wired to FailHeld as the engine wires it) and a
// retry Policy, over conn.
func nodeState(conn drivers.ValkeyConn, d *fakeDialer, threshold uint) *actors.ConnState {
	st := newState("node:6379", conn, errors.New("closed"))
	node := &actors.Node{Addr: st.Addr, Dial: d.dial, DialTimeout: 5 * time.Second}
	node.Breaker = policies.NewBreaker(policies.BreakerOptions{
		Threshold:   threshold,
		OpenTimeout: time.Hour,
		OnStateChanged: func(_, to circuitbreaker.State) {
			if now := node.SyncOpen(); to == circuitbreaker.OpenState && now != circuitbreaker.ClosedState {
				st.FailHeld(policies.ErrCircuitOpen)
			}
		},
	})
	st.Node = node
	st.Policy = &actors.Policy{MaxRetries: 3, Backoff: policies.Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}}
	return st
}

// failingNode returns a node's ConnState (see nodeState) over a connection
// whose every call fails with a transport error, and its dialer.
func failingNode(threshold uint) (*actors.ConnState, *fakeDialer) {
	d := newFakeDialer()
	return nodeState(failingConn(errors.New("connection reset by peer")), d, threshold), d
}

// failingConn returns a connection whose every call fails with the
// transport error err.
func failingConn(err error) *fakeConn {
	conn := newFakeConn()
	conn.reply = func(call, int) valkey.ValkeyResult { return transportErrReply(err) }
	return conn
}

// wantSent waits for queued (what) to complete, and checks that n
// connections were dialled.
func wantSent(t *testing.T, queued *fakeCmd, d *fakeDialer, n int, what string) {
	t.Helper()
	waitFor(t, queued, 2*time.Second, what)
	queued.wantCompleted(t)
	if got := len(d.dialed()); got != n {
		t.Fatalf("%d connections dialled, want %d", got, n)
	}
}

// fireWithDeadline posts a command whose context ends after d; the
// caller cancels it at the end.
func fireWithDeadline(st *actors.ConnState, d time.Duration) context.CancelFunc {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	c := newFakeCmd(1, nil)
	c.ctx = ctx
	st.Mailbox.Post(c)
	return cancel
}

// checkServedClosed posts a command, waits for it to be sent (what) with
// n connections dialled in all, and checks that the node's breaker is
// closed.
func checkServedClosed(t *testing.T, st *actors.ConnState, d *fakeDialer, n int, what string) {
	t.Helper()
	final := newFakeCmd(2, nil)
	st.Mailbox.Post(final)
	wantSent(t, final, d, n, what)
	if st.Node.Open() {
		t.Fatalf("the breaker open once %s", what)
	}
}

// fireCancelled posts a command whose caller cancels its context after
// d (no deadline: a caller that gave up); the returned func cancels it
// at once.
func fireCancelled(st *actors.ConnState, d time.Duration) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	timer := time.AfterFunc(d, cancel)
	c := newFakeCmd(1, nil)
	c.ctx = ctx
	st.Mailbox.Post(c)
	return func() { timer.Stop(); cancel() }
}

// fireUntil posts a command with the given deadline every 10 ms (the
// callers' pace) until done reports true, and fails the test if the
// node's breaker opens first or limit passes (what names the phase). The
// commands' contexts are cancelled when the test ends. It returns the
// time it fired for.
func fireUntil(t *testing.T, st *actors.ConnState, deadline, limit time.Duration, done func() bool, what string) time.Duration {
	t.Helper()
	return fireUntilWith(t, st, fireWithDeadline, deadline, limit, done, what)
}

// fireUntilWith is fireUntil with fire posting each command (after: how
// long its context lasts).
func fireUntilWith(t *testing.T, st *actors.ConnState, fire func(*actors.ConnState, time.Duration) context.CancelFunc, after, limit time.Duration, done func() bool, what string) time.Duration {
	t.Helper()
	var cancels []context.CancelFunc
	t.Cleanup(func() {
		for _, c := range cancels {
			c()
		}
	})
	began := time.Now()
	for !done() {
		if st.Node.Open() {
			t.Fatalf("the breaker opened %v into %s", time.Since(began).Round(time.Millisecond), what)
		}
		if time.Since(began) > limit {
			t.Fatalf("%s: not over after %v", what, limit)
		}
		cancels = append(cancels, fire(st, after))
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(began)
}

// idempotent returns a fake command marked idempotent (repeatable).
func idempotent(id int, log *completionLog) *fakeCmd {
	c := newFakeCmd(id, log)
	c.ctx = policies.WithIdempotent(context.Background())
	return c
}

// waitFor waits up to d for c's first completion.
func waitFor(t *testing.T, c *fakeCmd, d time.Duration, what string) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(d):
		t.Fatalf("command %d (%s) still pending after %s", c.id, what, d)
	}
}

// Finding 9 of issue 9: a command kept for a retry when the breaker opens
// fails at once with ErrCircuitOpen (and, having been written, as an
// outcome unknown, counted in OutcomeUnknown), instead of escaping FailHeld, which the opening runs,
// and waiting for the first probe (an hour here).
func TestConnKeptCommandFailsWhenBreakerOpens(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	reset := errors.New("connection reset by peer")
	conn := failingConn(reset)
	d := newFakeDialer()
	st := nodeState(conn, d, 1)
	h := start(t, st)

	cmd := idempotent(0, nil)
	st.Mailbox.Post(cmd)
	waitFor(t, cmd, 2*time.Second, "kept for a retry as the breaker opened")
	err := cmd.wantFailed(t)
	if !errors.Is(err, policies.ErrCircuitOpen) || !errors.Is(err, policies.ErrOutcomeUnknown) || !errors.Is(err, reset) {
		t.Fatalf("kept command failed with %v, want ErrCircuitOpen as an outcome unknown wrapping %v", err, reset)
	}
	// Counted as one (QA-S 2: a held command failed so was in no
	// counter).
	if got := st.Stats().OutcomeUnknown; got != 1 {
		t.Errorf("Stats().OutcomeUnknown = %d, want 1", got)
	}
	if !st.Node.Open() {
		t.Fatal("breaker not open after a failure with threshold 1")
	}
	h.shutdown(t, snapshot)
}

// Finding 8(b) of issue 9: of a batch [SET k v1 (idempotent), SET k v2]
// that loses its connection, v2 may have run and is not repeatable, so it
// fails as an outcome unknown; v1, sent again after the reconnect, would
// land after v2 and leave k at v1. It fails as an outcome unknown too, and
// nothing is written on the new connection. When v2 is repeatable as
// well, both are kept and sent again, in order, first thing after the
// reconnect.
func TestConnRetryNeverOvertakesLaterWrite(t *testing.T) {
	for _, bothIdempotent := range []bool{false, true} {
		name := "v2 not repeatable"
		if bothIdempotent {
			name = "both repeatable"
		}
		t.Run(name, func(t *testing.T) {
			snapshot := goleak.IgnoreCurrent()
			conn := newFakeConn()
			gate := conn.gate(0)
			reset := errors.New("connection reset by peer")
			conn.reply = func(c call, i int) valkey.ValkeyResult {
				if c.index == 1 {
					return transportErrReply(reset)
				}
				return strReply("old")
			}
			d := newFakeDialer()
			st := nodeState(conn, d, 100)
			h := start(t, st)

			first := newFakeCmd(0, nil)
			st.Mailbox.Post(first)
			conn.waitEntered(t, 0, "Do(1)")
			log := &completionLog{}
			v1 := idempotent(1, log)
			v2 := newFakeCmd(2, log)
			if bothIdempotent {
				v2 = idempotent(2, log)
			}
			st.Mailbox.Post(v1)
			st.Mailbox.Post(v2)
			close(gate) // v1 and v2 go out as one DoMulti(2), which fails

			if !bothIdempotent {
				for _, c := range []*fakeCmd{v1, v2} {
					if err := c.wantFailed(t); !errors.Is(err, policies.ErrOutcomeUnknown) || !errors.Is(err, reset) {
						t.Fatalf("command %d failed with %v, want ErrOutcomeUnknown wrapping %v", c.id, err, reset)
					}
				}
				eventually(t, "the reconnect", func() bool { return st.Stats().Reconnects == 1 })
				// A command posted now goes out on the new connection,
				// alone: nothing was kept.
				after := newFakeCmd(3, nil)
				st.Mailbox.Post(after)
				after.wantString(t, "c1-0")
				if got, want := d.dialed()[0].callLog(), []string{"Do(1)", "Do(1)"}; !slices.Equal(got, want) {
					t.Fatalf("new connection calls %v, want %v (PING, then the later command)", got, want)
				}
			} else {
				v1.wantString(t, "c1-0")
				v2.wantString(t, "c1-1")
				if got, want := log.get(), []int{1, 2}; !slices.Equal(got, want) {
					t.Fatalf("completion order %v, want %v", got, want)
				}
				if got, want := d.dialed()[0].callLog(), []string{"Do(1)", "DoMulti(2)"}; !slices.Equal(got, want) {
					t.Fatalf("new connection calls %v, want %v (PING, then both resent)", got, want)
				}
			}
			if got, want := conn.callLog(), []string{"Do(1)", "DoMulti(2)"}; !slices.Equal(got, want) {
				t.Fatalf("old connection calls %v, want %v", got, want)
			}
			h.shutdown(t, snapshot)
		})
	}
}

// Finding 0 of issue 9: the reconnect runs off the actor. While the new
// connection's dial hangs, nothing is written on the broken one, a queued
// command whose context ends fails within a probe tick of its deadline,
// the kept command goes out first once the dial succeeds, then the queued
// one; stopping the supervisor while a dial hangs ends it at once.
func TestConnReconnectRunsOffActor(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	reset := errors.New("connection reset by peer")
	conn := failingConn(reset)
	d := newFakeDialer()
	release := make(chan struct{})
	d.hold = release
	st := nodeState(conn, d, 100)
	h := start(t, st)

	log := &completionLog{}
	kept := idempotent(0, log)
	st.Mailbox.Post(kept)
	select {
	case <-d.started:
	case <-time.After(waitTimeout):
		t.Fatal("no reconnect dial started")
	}
	// The dial hangs. A command with a deadline fails at it (+ a probe
	// tick), although the actor has no connection and no batch runs.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	expiring := newFakeCmd(1, nil)
	expiring.ctx = ctx
	posted := time.Now()
	st.Mailbox.Post(expiring)
	waitFor(t, expiring, time.Second, "queued with a 100ms deadline during the dial")
	if el := time.Since(posted); el > 100*time.Millisecond+150*time.Millisecond {
		t.Fatalf("queued command failed %s after it was posted, deadline 100ms", el)
	}
	if err := expiring.wantFailed(t); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expired command failed with %v", err)
	}
	queued := newFakeCmd(2, log)
	st.Mailbox.Post(queued)
	if kept.isDone() || queued.isDone() {
		t.Fatal("a command completed while the dial hangs")
	}
	close(release)
	kept.wantString(t, "c1-0")
	queued.wantString(t, "c2-0")
	if got, want := log.get(), []int{0, 2}; !slices.Equal(got, want) {
		t.Fatalf("completion order %v, want %v (the kept command first)", got, want)
	}
	if got, want := conn.callLog(), []string{"Do(1)"}; !slices.Equal(got, want) {
		t.Fatalf("broken connection calls %v, want only the failed %v", got, want)
	}
	if got, want := d.dialed()[0].callLog(), []string{"Do(1)", "Do(1)", "Do(1)"}; !slices.Equal(got, want) {
		t.Fatalf("new connection calls %v, want %v (PING, kept, queued)", got, want)
	}
	if conn.closedCount() != 1 {
		t.Fatalf("broken connection closed %d times, want 1", conn.closedCount())
	}

	// Break it again and stop while the next dial hangs.
	d.mu.Lock()
	d.hold = make(chan struct{})
	d.mu.Unlock()
	d.dialed()[0].reply = func(call, int) valkey.ValkeyResult { return transportErrReply(reset) }
	late := newFakeCmd(3, nil)
	st.Mailbox.Post(late)
	select {
	case <-d.started:
	case <-time.After(waitTimeout):
		t.Fatal("no second reconnect dial started")
	}
	stopAt := time.Now()
	h.system.Root.Stop(h.pid)
	select {
	case <-h.sup.Stopped():
	case <-time.After(time.Second):
		t.Fatal("supervisor not stopped 1s after Stop while a dial hangs")
	}
	if err := late.wantFailed(t); !errors.Is(err, policies.ErrOutcomeUnknown) {
		t.Fatalf("command hit by the second break failed with %v", err)
	}
	t.Logf("stopped %s after Stop with a dial hanging", time.Since(stopAt))
	h.shutdown(t, snapshot)
}

// A Reset of a node restarts at once its connection actor whose reconnect
// waits out a backoff (an hour here): the node's address leads to another
// server now (sentinel mode: the primary changed). Before, the actor
// waited its backoff out, while the engine counted the node's expired
// commands against the breaker the Reset had just closed.
func TestSupervisorResetEndsReconnectBackoff(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	st, d := failingNode(100)
	st.Policy.Backoff = policies.Backoff{Min: time.Hour, Max: time.Hour}
	h := start(t, st)

	lost := newFakeCmd(0, nil)
	st.Mailbox.Post(lost)
	waitFor(t, lost, 2*time.Second, "written on the connection that broke")
	eventually(t, "the connection actor down", st.Down)
	queued := newFakeCmd(1, nil)
	st.Mailbox.Post(queued)
	if len(d.dialed()) != 0 {
		t.Fatalf("%d dials before the Reset, want none (the backoff is an hour)", len(d.dialed()))
	}
	// One Reset: the failure handled before it, the Reset ends the
	// backoff; handled after it, the failure concerns the former server
	// and is not waited out either.
	h.sup.Reset(st.Node)
	wantSent(t, queued, d, 1, "queued while the actor waited out its backoff, then Reset")
	h.shutdown(t, snapshot)
}

// A dial under way when its node is Reset, which then fails (it aimed at
// the former server), is not counted against the node's breaker and is
// made again at once. Counted, it would open the breaker (threshold 1,
// open for an hour) and the queued command would wait that hour.
func TestSupervisorResetDuringDial(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	st, d := failingNode(1)
	hold := make(chan struct{})
	d.hold, d.fail = hold, errors.New("connection refused (the former primary)")
	d.ignores = true // a dial that does not end with its ctx (see TestSupervisorResetEndsDial)
	st.Policy.MaxRetries = 0
	h := start(t, st)

	breakThenResetUntilDial(t, h, st, d)
	queued := newFakeCmd(1, nil)
	st.Mailbox.Post(queued)
	h.sup.Reset(st.Node) // the primary changed again while the dial runs
	h.sup.Add(nil)       // the supervisor has handled the Reset
	d.mu.Lock()
	d.hold = nil
	d.mu.Unlock()
	close(hold) // the held dial fails (once); the next one succeeds
	waitFor(t, queued, 2*time.Second, "queued while the stale dial ran")
	queued.wantCompleted(t)
	if st.Node.Open() {
		t.Fatal("the breaker is open: the stale dial's failure was counted")
	}
	if n := len(d.dialed()); n != 1 {
		t.Fatalf("%d connections dialled, want 1 (after the stale dial)", n)
	}
	h.shutdown(t, snapshot)
}

// A Reset ends a dial under way to its node (the former server, which may
// be frozen: its handshake would run until the dial timeout, the commands
// waiting with it), and the node is dialled again at once; the ended dial
// is not counted against the breaker.
func TestSupervisorResetEndsDial(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	st, d := failingNode(1)
	hold := make(chan struct{}) // never closed: the former server never answers
	d.hold = hold
	st.Policy.MaxRetries = 0
	h := start(t, st)

	breakThenResetUntilDial(t, h, st, d)
	queued := newFakeCmd(1, nil)
	st.Mailbox.Post(queued)
	d.mu.Lock()
	d.hold = nil // the next dial reaches the new server
	d.mu.Unlock()
	h.sup.Reset(st.Node) // the primary changed: the held dial ends
	waitFor(t, queued, 2*time.Second, "queued while the dial to the former server hung")
	queued.wantCompleted(t)
	if st.Node.Open() {
		t.Fatal("the breaker is open: the ended dial was counted")
	}
	if n := len(d.dialed()); n != 1 {
		t.Fatalf("%d connections dialled, want 1", n)
	}
	h.shutdown(t, snapshot)
}

// breakThenResetUntilDial sends a command that breaks the connection
// (the breaker, threshold 1, opens on it and keeps the actor down), then
// Resets the node until a dial starts: a Reset closes the breaker and
// redials, once the actor is among those it restarts (its restart is
// scheduled on the supervisor meanwhile).
func breakThenResetUntilDial(t *testing.T, h *harness, st *actors.ConnState, d *fakeDialer) {
	t.Helper()
	lost := newFakeCmd(0, nil)
	st.Mailbox.Post(lost)
	waitFor(t, lost, 2*time.Second, "written on the connection that broke")
	deadline := time.Now().Add(2 * time.Second)
	for {
		h.sup.Reset(st.Node)
		select {
		case <-d.started:
			return
		case <-time.After(10 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("no dial after Reset")
			}
		}
	}
}

// A connection dialled before a Reset of its node fails after it (the
// former primary, killed: the failure reaches the supervisor once the
// Reset was handled, no restart pending for it to end): the actor dials
// the node's new server at once, not after its backoff (an hour here).
// Before, it waited the backoff out (writes resumed 1.2 s after a kill's
// switch in the sentinel chaos audit, the new primary's breaker opened by
// the commands expiring meanwhile).
//
// Nor is that failure counted against the breaker (threshold 1 here: it
// would open, for an hour).
func TestSupervisorFailureAfterResetRedialsAtOnce(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	st, d := failingNode(1)
	st.Policy.Backoff = policies.Backoff{Min: time.Hour, Max: time.Hour}
	st.Policy.MaxRetries = 0
	h := start(t, st)

	h.sup.Reset(st.Node) // the primary changed; the actor's connection still looks up
	h.sup.Add(nil)       // the supervisor has handled the Reset
	lost := newFakeCmd(0, nil)
	st.Mailbox.Post(lost)
	waitFor(t, lost, 2*time.Second, "written on the former server's connection")
	queued := newFakeCmd(1, nil)
	st.Mailbox.Post(queued)
	wantSent(t, queued, d, 1, "queued after the former server's connection failed")
	if st.Node.Open() {
		t.Fatal("the breaker is open: the former server's connection failure was counted")
	}
	h.shutdown(t, snapshot)
}

// A dial begun before a Reset of its node that succeeds after it (a dial
// that does not end with its context, to the former primary, still up):
// nothing is sent on that connection (the failover drops what the former
// primary acknowledges), and the node is dialled again at once.
func TestSupervisorDialBeforeResetNotUsed(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	st, d := failingNode(100)
	hold := make(chan struct{})
	d.hold, d.ignores = hold, true
	st.Policy.Backoff = policies.Backoff{Min: time.Hour, Max: time.Hour}
	st.Policy.MaxRetries = 0
	h := start(t, st)

	breakThenResetUntilDial(t, h, st, d)
	queued := newFakeCmd(1, nil)
	st.Mailbox.Post(queued)
	h.sup.Reset(st.Node) // the primary changed while the dial runs
	h.sup.Add(nil)
	d.mu.Lock()
	d.hold = nil
	d.mu.Unlock()
	close(hold) // the dial to the former server succeeds
	waitFor(t, queued, 2*time.Second, "queued while the dial to the former server ran")
	queued.wantCompleted(t)
	conns := d.dialed()
	if len(conns) != 2 {
		t.Fatalf("%d connections dialled, want 2 (the former server's, unused, then the new one)", len(conns))
	}
	conns[0].mu.Lock()
	sent := slices.Clone(conns[0].calls)
	conns[0].mu.Unlock()
	if len(sent) > 1 { // the dial's PING is its only call
		t.Fatalf("calls on the connection dialled before the Reset: %v, want only the dial's PING", sent)
	}
	h.shutdown(t, snapshot)
}

// A pipeline that Retire cuts (a sentinel switch) keeps its idempotent
// commands for the new primary even when the node's breaker is open: the
// open state is the former server's (another connection of the node
// failed on it) and the switch's Reset closes it. Before, the kept
// commands failed with ErrCircuitOpen when the cut came back before the
// breaker was closed (review-27 5).
func TestRetireKeepsCommandsPastOpenBreaker(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	cut := errors.New("use of closed network connection")
	conn := failingConn(cut)
	gate := conn.gate(0)
	d := newFakeDialer()
	st := nodeState(conn, d, 1)
	st.Policy.Backoff = policies.Backoff{Min: time.Hour, Max: time.Hour}
	h := start(t, st)

	kept := idempotent(1, nil)
	st.Mailbox.Post(kept)
	<-conn.entered // the pipeline is in flight to the former primary
	// Another connection of the node failed: open (its FailHeld waits
	// for the pipeline in flight, so not on this goroutine).
	go st.Node.RecordFailure(cut)
	eventually(t, "the breaker open", st.Node.Open)
	st.Retire(func(err error) error { return err })
	close(gate) // the cut round trip returns
	// The retired actor re-dials at once, and waits for the breaker.
	eventually(t, "the new primary dialled", func() bool { return len(d.dialed()) == 1 })
	if kept.isDone() {
		t.Fatalf("the cut command completed before the switch's Reset: %v", kept.wantFailed(t))
	}
	h.sup.Reset(st.Node) // the switch: the breaker closes, the new primary is dialled
	waitFor(t, kept, 2*time.Second, "kept for the new primary")
	kept.wantCompleted(t)
	h.shutdown(t, snapshot)
}

// After a switch to a new primary that never answers (frozen: each dial
// runs out the DialTimeout), the commands expiring in the mailbox of the
// re-dialling actor count against the breaker once the connection has
// been down for dialGrace (500 ms here) with a dial under way, and it
// then opens within a few probe ticks, as for a node frozen without a
// switch (docs/reliability.md).
// Skipped while the actor's connection was the former server's, the
// breaker opened only after Threshold dial timeouts (review-28 2: 3.0 s
// against 0.2 s with DialTimeout 1 s; with the defaults ~25 s), the
// expired commands piling up meanwhile.
func TestSupervisorSwitchToFrozenPrimaryOpensBreaker(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn := newFakeConn()
	d := newFakeDialer()
	hold := make(chan struct{}) // the new primary never answers
	d.hold = hold
	st := nodeState(conn, d, 3)
	st.Node.DialTimeout = 5 * time.Second
	st.Policy.Backoff = policies.Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}
	h := start(t, st)

	start := time.Now()
	h.sup.Reset(st.Node) // the switch, as engine/sentinel.go switched does it
	st.Retire(func(err error) error { return err })
	var cancels []context.CancelFunc
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	// Callers keep firing commands with a 100 ms deadline.
	for !st.Node.Open() {
		if time.Since(start) > 2*time.Second {
			t.Fatalf("the breaker still closed %v after a switch to a frozen primary (%d queued), want open within a few probe ticks", time.Since(start).Round(time.Millisecond), st.Mailbox.Stats().Queued)
		}
		cancels = append(cancels, fireWithDeadline(st, 100*time.Millisecond))
		time.Sleep(10 * time.Millisecond) // the callers' pace
	}
	t.Logf("breaker open %v after the switch", time.Since(start).Round(time.Millisecond))
	close(hold)
	h.shutdown(t, snapshot)
}

// After a switch to a new primary whose first dial is slow but succeeds
// (255 ms on a loaded machine in a sentinel chaos run), the commands with
// short deadlines that expire in the mailbox meanwhile are not counted
// against its breaker: the node has not failed to answer yet (dialGrace).
// Counted once per probe tick, they opened the breaker of the healthy new
// primary with threshold 5 as its connection came up, and its commands
// were refused for the breaker's open timeout.
func TestSupervisorSlowSwitchDialNotCounted(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn := newFakeConn()
	d := newFakeDialer()
	hold := make(chan struct{}) // the new primary's dial, slow
	d.hold = hold
	st := nodeState(conn, d, 3)
	h := start(t, st)

	h.sup.Reset(st.Node) // the switch, as engine/sentinel.go switched does it
	st.Retire(func(err error) error { return err })
	<-d.started
	// Callers fire commands with a 20 ms deadline for 400 ms (8 probe
	// ticks) while the dial runs.
	began := time.Now()
	fireUntil(t, st, 20*time.Millisecond, time.Second, func() bool { return time.Since(began) >= 400*time.Millisecond }, "the new primary's first dial")
	close(hold) // the dial succeeds
	checkServedClosed(t, st, d, 1, "sent to the new primary after its slow dial")
	h.shutdown(t, snapshot)
}

// Commands their callers cancel (no deadline) while a slow dial of the
// node runs past the dial grace are not counted against its breaker:
// a caller that gave up says nothing about the node. Counted like
// expired deadlines, they opened the breaker of a node whose 1.2 s dial
// then succeeded (threshold 3: the grace and 3 ticks, ~650 ms).
func TestSupervisorCancelledBehindDialNotCounted(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	d := newFakeDialer()
	hold := make(chan struct{}) // the new primary's dial, slow
	d.hold = hold
	st := nodeState(newFakeConn(), d, 3)
	h := start(t, st)

	h.sup.Reset(st.Node)
	st.Retire(func(err error) error { return err })
	<-d.started
	began := time.Now()
	fireUntilWith(t, st, fireCancelled, 20*time.Millisecond, 3*time.Second, func() bool { return time.Since(began) >= 1200*time.Millisecond },
		"a 1.2 s dial, callers cancelling their commands after 20 ms")
	close(hold)
	checkServedClosed(t, st, d, 1, "sent after the slow dial")
	h.shutdown(t, snapshot)
}

// After a switch to a frozen new primary whose every dial fails after
// 300 ms (its handshake's read timeout, shorter than the dial grace),
// the commands that expire behind the dials count once the grace of the
// outage has run: the breaker opens within it and a few ticks, not after
// Threshold dials (review-39 1: a grace restarted at each dial never
// ended, and the breaker opened after the 10 dials, 3 s here, instead of
// ~1 s).
func TestSupervisorFrozenShortHandshakeOpensBreaker(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	st := nodeState(newFakeConn(), newFakeDialer(), 10)
	st.Node.Dial = func(ctx context.Context) (drivers.ValkeyConn, error) {
		t := time.NewTimer(300 * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
			return nil, errors.New("i/o timeout")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	h := start(t, st) // backoff 1-2 ms: the dials follow each other
	began := time.Now()
	h.sup.Reset(st.Node) // the switch
	st.Retire(func(err error) error { return err })
	// 10 failed dials alone take 3 s.
	fireUntil(t, st, 100*time.Millisecond, 2200*time.Millisecond, st.Node.Open,
		"the switch to a frozen primary, before its breaker opened (grace 500 ms, threshold 10 ticks of 50 ms)")
	if !st.Node.Open() {
		t.Fatal("fireUntil returned with the breaker closed")
	}
	t.Logf("breaker open %v after the switch", time.Since(began).Round(time.Millisecond))
	h.shutdown(t, snapshot)
}

// A healthy node's connection breaks and its actor waits out a long
// reconnect backoff (MinRetryBackoff 600 ms): the commands with short
// deadlines that expire meanwhile were asked of no server and are not
// counted against its breaker (review-39 2: it opened 212 ms after the
// break, before any dial).
func TestSupervisorBackoffExpiriesNotCounted(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	st, d := failingNode(3)
	st.Policy.Backoff = policies.Backoff{Min: 600 * time.Millisecond, Max: time.Second}
	st.Policy.MaxRetries = 0
	h := start(t, st)
	lost := newFakeCmd(0, nil)
	st.Mailbox.Post(lost)
	waitFor(t, lost, 2*time.Second, "failed on the connection that broke")
	fireUntil(t, st, 20*time.Millisecond, 5*time.Second, func() bool { return len(d.dialed()) > 0 }, "the reconnect backoff (600 ms-1 s)")
	checkServedClosed(t, st, d, 1, "sent after the re-dial")
	h.shutdown(t, snapshot)
}

// The dial grace follows the node's own connect time: a node whose
// re-dial took 500 ms (a remote one, TLS: several round trips) is given
// twice that before what expires behind its next re-dial counts. Its
// next outage's 700 ms dial, short deadlines expiring behind it, leaves
// the breaker closed (review-39 3: with a fixed 500 ms grace the last
// 150-200 ms of ticks opened it).
func TestSupervisorDialGraceFollowsConnectTime(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	st, _ := failingNode(3) // two pipeline failures below: one more tick opens it
	var dials atomic.Int32
	var broken atomic.Bool // the first re-dialled connection breaks at its first command
	redialed := make(chan struct{}, 2)
	st.Node.Dial = func(ctx context.Context) (drivers.ValkeyConn, error) {
		d, conn := 500*time.Millisecond, newFakeConn()
		if dials.Add(1) == 1 {
			conn.reply = func(call, int) valkey.ValkeyResult {
				if broken.Load() {
					return transportErrReply(errors.New("connection reset by peer"))
				}
				return strReply("PONG")
			}
		} else {
			d = 700 * time.Millisecond
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			redialed <- struct{}{}
			return dialedConn{conn}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	st.Policy.MaxRetries = 0
	h := start(t, st)
	first := newFakeCmd(0, nil)
	st.Mailbox.Post(first)
	waitFor(t, first, 2*time.Second, "failed on the connection that broke")
	<-redialed // 500 ms: the node's connect time
	broken.Store(true)
	second := newFakeCmd(1, nil)
	st.Mailbox.Post(second)
	waitFor(t, second, 2*time.Second, "failed on the re-dialled connection, which breaks too")
	fireUntil(t, st, 20*time.Millisecond, 5*time.Second, func() bool { return len(redialed) > 0 },
		"the second re-dial (700 ms; grace twice the last connect, 500 ms)")
	final := newFakeCmd(2, nil)
	st.Mailbox.Post(final)
	waitFor(t, final, 2*time.Second, "sent once the connection was back")
	final.wantCompleted(t)
	if st.Node.Open() {
		t.Fatal("the breaker open after the second re-dial succeeded")
	}
	h.shutdown(t, snapshot)
}

// A breaker probe of the node's former server, begun before a Reset and
// failing after it, is not counted against the breaker the Reset closed
// (review-28 3: with threshold 1 it reopened the breaker of the healthy
// new server, 3 of 3 runs); the Reset ends it, so that the new server can
// be probed at once.
func TestSupervisorProbeBeforeResetIgnored(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	st, d := failingNode(1)
	hold := make(chan struct{})
	d.hold, d.ignores = hold, true // the former server: a dial that hangs whatever its ctx
	node := st.Node
	node.Breaker = policies.NewBreaker(policies.BreakerOptions{
		Threshold:   1,
		OpenTimeout: 50 * time.Millisecond, // probed soon after it opens
		OnStateChanged: func(_, to circuitbreaker.State) {
			if now := node.SyncOpen(); to == circuitbreaker.OpenState && now != circuitbreaker.ClosedState {
				st.FailHeld(policies.ErrCircuitOpen)
			}
		},
	})
	st.Policy.MaxRetries = 0
	h := start(t, st)

	lost := newFakeCmd(0, nil)
	st.Mailbox.Post(lost)
	waitFor(t, lost, 2*time.Second, "written on the connection that broke")
	select {
	case <-d.started: // the probe of the former server (the actor waits for the breaker)
	case <-time.After(3 * time.Second):
		t.Fatal("no probe")
	}
	d.mu.Lock()
	d.hold = nil // the switch: dials reach the new server
	d.mu.Unlock()
	h.sup.Reset(node)
	ok := newFakeCmd(1, nil)
	st.Mailbox.Post(ok)
	waitFor(t, ok, 2*time.Second, "sent to the new server after the switch")
	ok.wantCompleted(t)
	d.mu.Lock()
	d.fail = errors.New("i/o timeout (the former primary, frozen)")
	d.mu.Unlock()
	close(hold) // the former server's probe fails now
	eventually(t, "the former server's probe ended", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.fail == nil
	})
	for range 20 { // its result, were it counted, opens the breaker at once
		h.sup.Add(nil)
		if node.Open() {
			t.Fatal("the breaker reopened on the failure of a probe begun before the Reset")
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.shutdown(t, snapshot)
}

// Reset closes the node's breaker before it returns: the switch's Retire,
// which follows, cuts pipelines whose kept commands must not meet the
// former server's open breaker while the supervisor has not handled the
// Reset yet (review-27 5).
func TestSupervisorResetClosesBreakerAtOnce(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	d := newFakeDialer()
	st := nodeState(newFakeConn(), d, 1)
	h := start(t, st)
	st.Node.RecordFailure(errors.New("the former primary failed"))
	if !st.Node.Open() {
		t.Fatal("the breaker did not open (threshold 1)")
	}
	h.sup.Reset(st.Node)
	if st.Node.Open() {
		t.Fatal("the breaker still open when Reset returned")
	}
	h.shutdown(t, snapshot)
}

// A call beside the actor (a blocking command) waiting in LiveDriver for
// the new primary's connection fails with the node's open-breaker error
// once the breaker opens (the new primary does not answer), as the other
// commands do; it waited for its own ctx, for ever without a deadline
// (review-28b A).
func TestLiveDriverFailsWhenBreakerOpens(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	d := newFakeDialer()
	hold := make(chan struct{}) // the new primary never answers
	d.hold = hold
	st := nodeState(newFakeConn(), d, 1)
	st.Node.DialTimeout = 100 * time.Millisecond
	h := start(t, st)
	h.sup.Reset(st.Node) // the switch
	st.Retire(func(err error) error { return err })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := st.LiveDriver(ctx) // returns once the failed dial opened the breaker (in ~100 ms)
	if conn != nil || !errors.Is(err, policies.ErrCircuitOpen) {
		t.Fatalf("LiveDriver = %v, %v; want the open-breaker error", conn, err)
	}
	close(hold)
	h.shutdown(t, snapshot)
}

// A re-dial of the former server that outlives the Reset's cancel (a
// driver whose handshake ignores its ctx) keeps its actor from dialling
// the new server: the commands expiring meanwhile are not counted against
// the new server's breaker (review-28b B: it opened although the new
// primary answered every dial).
func TestSupervisorHungFormerDialNotCounted(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	st, d := failingNode(3)
	hold := make(chan struct{})
	d.hold, d.ignores = hold, true // the former primary, frozen
	st.Policy.MaxRetries = 0
	h := start(t, st)
	lost := newFakeCmd(0, nil)
	st.Mailbox.Post(lost)
	waitFor(t, lost, 2*time.Second, "written on the connection that broke")
	<-d.started // the re-dial of the former primary, hanging
	d.mu.Lock()
	d.hold = nil // the new primary answers every dial
	d.mu.Unlock()
	h.sup.Reset(st.Node)
	st.Retire(func(err error) error { return err })
	var cancels []context.CancelFunc
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	for start := time.Now(); time.Since(start) < time.Second; {
		if st.Node.Open() {
			t.Fatalf("the new primary's breaker opened %v after the switch, though it answers every dial", time.Since(start).Round(time.Millisecond))
		}
		cancels = append(cancels, fireWithDeadline(st, 100*time.Millisecond))
		time.Sleep(10 * time.Millisecond) // the callers' pace
	}
	close(hold) // the hung dial ends: its connection is not used, the new server is dialled
	final := newFakeCmd(2, nil)
	st.Mailbox.Post(final)
	wantSent(t, final, d, 2, "sent to the new server once the hung dial ended")
	h.shutdown(t, snapshot)
}

// Reset clears the failures a closed breaker counted for the former
// server: two of them, and one of the new server's, opened it with
// threshold 3 (review-28c 6).
func TestSupervisorResetClearsClosedBreakerCount(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	st := nodeState(newFakeConn(), newFakeDialer(), 3)
	h := start(t, st)
	st.Node.RecordFailure(errors.New("former primary 1"))
	st.Node.RecordFailure(errors.New("former primary 2"))
	h.sup.Reset(st.Node)
	st.Node.RecordFailure(errors.New("new primary 1"))
	if st.Node.Open() {
		t.Fatal("open after the Reset and one failure of the new primary (threshold 3)")
	}
	h.shutdown(t, snapshot)
}

// A call beside the actor (a blocking command) under way on the
// connection a switch retires is cut (the connection closed), and its
// error wraps Retire's: a blocking call on a frozen former primary waited
// for ever (review-28b C). Also when the connection broke before the
// switch (the actor's pipeline failed on the frozen former primary, the
// blocking call waits on its own): Retire returned early on it, and once
// the install closed it the call's error did not say the primary changed
// (review-28c 1).
func TestLiveDriverCallCutByRetire(t *testing.T) {
	for _, broken := range []bool{false, true} {
		t.Run(fmt.Sprintf("broken=%v", broken), func(t *testing.T) {
			snapshot := goleak.IgnoreCurrent()
			conn := newFakeConn()
			dialer := newFakeDialer()
			hold := make(chan struct{}) // the new primary does not answer yet: no install closes the old connection
			dialer.hold = hold
			st := nodeState(conn, dialer, 100)
			h := start(t, st)
			d, end, err := st.LiveDriver(context.Background())
			if d == nil || err != nil {
				t.Fatalf("LiveDriver = %v, %v; want the connection", d, err)
			}
			if broken {
				conn.mu.Lock()
				conn.reply = func(call, int) valkey.ValkeyResult { return transportErrReply(errors.New("i/o timeout")) }
				conn.mu.Unlock()
				lost := newFakeCmd(0, nil)
				st.Mailbox.Post(lost)
				waitFor(t, lost, 2*time.Second, "the pipeline on the frozen former primary")
				<-dialer.started // its re-dial (of the former primary) is held
				eventually(t, "the connection broken", st.Down)
				h.sup.Reset(st.Node)
			}
			switched := errors.New("the primary changed")
			st.Retire(func(err error) error { return errors.Join(switched, err) })
			eventually(t, "the connection closed under the call", func() bool {
				conn.mu.Lock()
				defer conn.mu.Unlock()
				return conn.closed > 0
			})
			if err := end(errors.New("use of closed network connection")); !errors.Is(err, switched) {
				t.Fatalf("the cut call's error %v does not wrap Retire's", err)
			}
			close(hold) // the new primary answers
			final := newFakeCmd(1, nil)
			st.Mailbox.Post(final)
			waitFor(t, final, 2*time.Second, "sent to the new primary")
			final.wantCompleted(t)
			h.shutdown(t, snapshot)
		})
	}
}

// lostConn is a fakeConn that reports its loss (drivers.LostNotifier)
// when the test calls lose, as the valkeygo driver does when an idle
// connection's socket closes.
type lostConn struct {
	*fakeConn
	lmu    sync.Mutex
	onLost func(error)
}

func (c *lostConn) OnLost(f func(error)) {
	c.lmu.Lock()
	c.onLost = f
	c.lmu.Unlock()
}

func (c *lostConn) lose(err error) bool {
	c.lmu.Lock()
	f := c.onLost
	c.lmu.Unlock()
	if f != nil {
		f(err)
	}
	return f != nil
}

// An idle connection to the former server that is lost after a Reset of
// its node (the former primary closing its clients) is not counted
// against the node's breaker, and is replaced at once. Counted, it opened
// the new server's breaker (threshold 1, open for an hour here).
func TestConnLostAfterResetNotCounted(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn := &lostConn{fakeConn: failingConn(errors.New("connection reset by peer"))}
	d := newFakeDialer()
	st := nodeState(conn, d, 1)
	st.Policy.Backoff = policies.Backoff{Min: time.Hour, Max: time.Hour}
	st.Policy.MaxRetries = 0
	h := start(t, st)

	eventually(t, "the actor listening for the connection's loss", func() bool {
		conn.lmu.Lock()
		defer conn.lmu.Unlock()
		return conn.onLost != nil
	})
	h.sup.Reset(st.Node) // the primary changed
	h.sup.Add(nil)       // the supervisor has handled the Reset
	conn.lose(errors.New("EOF (the former primary closed its clients)"))
	eventually(t, "the lost connection replaced", func() bool { return len(d.dialed()) == 1 })
	queued := newFakeCmd(1, nil)
	st.Mailbox.Post(queued)
	wantSent(t, queued, d, 1, "queued after the former server's connection was lost")
	if st.Node.Open() {
		t.Fatal("the breaker is open: the former server's connection loss was counted")
	}
	h.shutdown(t, snapshot)
}
