package actors_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

// r35aOpeningBreaker is a node's real breaker, except that its openAt-th
// TryAcquirePermit first runs before (when set) and opens it, as another
// connection of the node whose failure opens the breaker between the
// actor's Open check and its permit request would (the opening runs the
// OnStateChanged listener, FailHeld included, on that other goroutine).
type r35aOpeningBreaker struct {
	policies.Breaker
	calls  atomic.Int32
	openAt atomic.Int32
	before func()
}

func (b *r35aOpeningBreaker) TryAcquirePermit() bool {
	if b.calls.Add(1) == b.openAt.Load() {
		if b.before != nil {
			b.before()
		}
		b.Breaker.Open()
	}
	return b.Breaker.TryAcquirePermit()
}

var errR35aReset = errors.New("connection reset by peer")

// r35aResetFirst makes the first round trip on conn lose its reply (the
// command was written) and answers OK after.
func r35aResetFirst(conn *fakeConn) {
	conn.reply = func(c call, _ int) valkey.ValkeyResult {
		if c.index == 0 {
			return transportErrReply(errR35aReset)
		}
		return strReply("OK")
	}
}

// keptNode returns a node's ConnState whose connection resets its first
// call (see r35aResetFirst) and whose re-dial waits for hold to close, and
// its dialer: a command written on that first call is kept in the stash,
// and start sends it once hold is closed.
func keptNode() (st *actors.ConnState, d *fakeDialer, hold chan struct{}) {
	conn := newFakeConn()
	r35aResetFirst(conn)
	d = newFakeDialer()
	hold = make(chan struct{})
	d.hold = hold
	return nodeState(conn, d, 100), d, hold
}

// review-35 R35-1: an idempotent command written on a connection that
// broke is kept and resent first thing after the reconnect (start takes
// it from the stash, then run). When the node's breaker opens just then
// (another connection's failure), the opening's FailHeld finds the stash
// empty, and run's breaker check fails the command: written once, it may
// have run, so it fails as FailHeld's held.fail would have failed it, an
// ErrOutcomeUnknown wrapping the open-breaker error, counted in
// OutcomeUnknown and not in CircuitOpen (it failed with the bare
// *CircuitOpenError, "not sent", counted in CircuitOpen). A command of
// the same batch never written before still fails with the bare open
// error, counted in CircuitOpen.
func TestR35ResentCommandFailedByBreakerIsOutcomeUnknown(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn := newFakeConn()
	r35aResetFirst(conn)
	d := newFakeDialer()
	st := nodeState(conn, d, 100)
	ob := &r35aOpeningBreaker{Breaker: st.Node.Breaker}
	ob.openAt.Store(2)
	st.Node.Breaker = ob
	h := start(t, st)

	cmd := idempotent(0, nil)
	st.Mailbox.Post(cmd)
	waitFor(t, cmd, 5*time.Second, "resent after the reconnect")
	err := cmd.wantFailed(t)
	if cmd.rewrites == 0 {
		t.Fatalf("command was not kept after a written failure (rewrites 0): %v", err)
	}
	if got := ob.calls.Load(); got < 2 {
		t.Fatalf("the breaker was asked for %d permits, want the resend's too", got)
	}
	if !errors.Is(err, policies.ErrOutcomeUnknown) || !errors.Is(err, policies.ErrCircuitOpen) || !errors.Is(err, errR35aReset) {
		t.Errorf("written (rewrites=%d) idempotent command refused by the breaker failed with %T %v; want ErrOutcomeUnknown wrapping ErrCircuitOpen and the lost connection's error", cmd.rewrites, err, err)
	}
	if policies.NotSent(err) {
		t.Errorf("its error %v says not sent", err)
	}
	s := st.Stats()
	if s.OutcomeUnknown != 1 || s.CircuitOpen != 0 {
		t.Errorf("Stats: OutcomeUnknown %d, CircuitOpen %d; want 1 and 0", s.OutcomeUnknown, s.CircuitOpen)
	}
	h.shutdown(t, snapshot)
}

// The same refusal with a command queued while the actor was down, issued
// after the kept one: the kept one fails first (an outcome unknown), then
// the queued one (ErrCircuitOpen alone, counted in CircuitOpen). The
// breaker opening between start's take of the stash and run's check
// failed the queued one first (its FailHeld found the stash empty), and
// the kept one after it (rule 2).
func TestR35ResendRefusedFailsBeforeQueued(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	st, d, hold := keptNode()
	ob := &r35aOpeningBreaker{Breaker: st.Node.Breaker}
	st.Node.Breaker = ob
	h := start(t, st)

	log := &completionLog{}
	kept := idempotent(1, log)
	st.Mailbox.Post(kept)
	waitChan(t, d.started, "the redial") // kept is in the stash
	fresh := newFakeCmd(2, log)
	st.Mailbox.Post(fresh) // queued while the actor is down
	ob.openAt.Store(ob.calls.Load() + 1)
	close(hold)
	kerr, ferr := kept.wantFailed(t), fresh.wantFailed(t)
	if !errors.Is(kerr, policies.ErrOutcomeUnknown) || !errors.Is(kerr, policies.ErrCircuitOpen) {
		t.Errorf("resent command: %v; want ErrOutcomeUnknown wrapping ErrCircuitOpen", kerr)
	}
	if errors.Is(ferr, policies.ErrOutcomeUnknown) || !errors.Is(ferr, policies.ErrCircuitOpen) {
		t.Errorf("never written command: %v; want ErrCircuitOpen alone", ferr)
	}
	if got := log.get(); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("completion order %v, want [1 2]", got)
	}
	// At once: a purge of the mailbox counts each refusal before it fails
	// the command (it counted them after failing them all: CircuitOpen 0
	// once in a whole run).
	s := st.Stats()
	if s.OutcomeUnknown != 1 || s.CircuitOpen != 1 {
		t.Errorf("Stats: OutcomeUnknown %d, CircuitOpen %d; want 1 and 1", s.OutcomeUnknown, s.CircuitOpen)
	}
	h.shutdown(t, snapshot)
}

// R35-1 in cluster mode: the resent command refused by a breaker that
// refused connections (its OpenError's cause is a refused dial, which
// reads as "did not run") is not rerouted to the slot's new owner as a
// command that never ran (docs/cluster.md: only a command its node failed
// without running it goes back to its slot actor; see unrun): it was
// written once and may have run, and fails with ErrOutcomeUnknown. (It
// failed with the bare open error, which Collector.Reroute took as unrun:
// the slot actor sent it to the new owner, a second run.)
func TestR35ResentCommandRefusedNotRerouted(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn := newFakeConn()
	r35aResetFirst(conn)
	d := newFakeDialer()
	oldSt := nodeState(conn, d, 100)
	node := oldSt.Node
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	ob := &r35aOpeningBreaker{Breaker: node.Breaker, before: func() { node.RecordFailure(refused) }}
	ob.openAt.Store(2)
	node.Breaker = ob
	newConn := newFakeConn()
	newSt := newState("127.0.0.1:7002", newConn, mailbox.ErrClosed)
	h := start(t, oldSt, newSt)
	slot := slotOn(h, oldSt, 1)
	r := &movingRouter{from: oldSt, to: newSt, onRefresh: true} // a failover
	slot.Router = r

	cmd := newReroutingCmd(1, "v")
	cmd.ctx = policies.WithIdempotent(context.Background())
	slot.Submit(cmd) // direct path to old
	err := cmd.wantFailed(t)
	if cmd.rewrites == 0 {
		t.Fatalf("command was not kept after a written failure (rewrites 0): %v", err)
	}
	if !errors.Is(err, policies.ErrOutcomeUnknown) || !errors.Is(err, policies.ErrCircuitOpen) {
		t.Errorf("written (rewrites=%d) command refused by the breaker failed with %T %v; want ErrOutcomeUnknown wrapping ErrCircuitOpen", cmd.rewrites, err, err)
	}
	if calls := newConn.callLog(); len(calls) != 0 || r.moved.Load() {
		t.Errorf("the written command was rerouted to the new owner as if it had not run: its calls %v, map read again %v", calls, r.moved.Load())
	}
	if got := oldSt.Stats().OutcomeUnknown; got != 1 {
		t.Errorf("Stats().OutcomeUnknown = %d, want 1", got)
	}
	slot.Close(mailbox.ErrClosed)
	slot.Wait()
	h.shutdown(t, snapshot)
}

// review-35 R35-3: a command blocked in a full mailbox (Backpressure block)
// when the node's breaker opens fails with the queued ones, with the open
// error, its Post returning false: the opening's FailHeld let it into the
// room it freed, where it sat in the suspended actor's mailbox until the
// next flush (the next refusal, or a failed probe after OpenTimeout, an
// hour here), while every later command failed fast.
func TestR35BlockedPosterFailsWhenBreakerOpens(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn := newFakeConn()
	gate := conn.gate(0)
	conn.reply = func(call, int) valkey.ValkeyResult { return transportErrReply(errors.New("connection reset by peer")) }
	d := newFakeDialer()
	d.fail = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	st := nodeState(conn, d, 1)
	st.Mailbox = mailbox.New(mailbox.Options{Capacity: 1})
	h := start(t, st)

	log := &completionLog{}
	a, b, c := newFakeCmd(1, log), newFakeCmd(2, log), newFakeCmd(3, log)
	st.Mailbox.Post(a)
	conn.waitEntered(t, 0, "Do(1)")
	st.Mailbox.Post(b) // fills the mailbox
	posted := make(chan bool, 1)
	go func() { posted <- st.Mailbox.Post(c) }() // waits for room
	eventually(t, "C waiting for room", func() bool { return st.Mailbox.Stats().Waiting == 1 })
	close(gate) // A fails: the breaker (threshold 1) opens, FailHeld runs
	a.waitDone(t)
	b.waitDone(t)
	select {
	case ok := <-posted:
		if ok {
			t.Errorf("C's Post returned true: let into the down actor's mailbox")
		}
	case <-time.After(time.Second):
		t.Fatalf("C's Post still blocked 1 s after the breaker opened")
	}
	select {
	case <-c.done:
	case <-time.After(time.Second):
		t.Fatalf("C (blocked poster) still pending 1 s after the breaker opened; mailbox %+v", st.Mailbox.Stats())
	}
	if err := c.wantFailed(t); !errors.Is(err, policies.ErrCircuitOpen) || errors.Is(err, policies.ErrOutcomeUnknown) {
		t.Errorf("C failed with %v, want ErrCircuitOpen (not written)", err)
	}
	if err := b.wantFailed(t); !errors.Is(err, policies.ErrCircuitOpen) {
		t.Errorf("B failed with %v, want ErrCircuitOpen", err)
	}
	if got := log.get(); len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Errorf("completion order %v, want [1 2 3]", got)
	}
	s := st.Stats()
	if s.CircuitOpen != 2 || s.Mailbox.Queued != 0 || s.Mailbox.Waiting != 0 {
		t.Errorf("Stats: CircuitOpen %d (want 2: B and C), Queued %d, Waiting %d (want 0)", s.CircuitOpen, s.Mailbox.Queued, s.Mailbox.Waiting)
	}
	h.shutdown(t, snapshot)
}

// R35-1, run's own breaker check: a command written on an earlier try
// that reaches a connection actor through its mailbox (kept, resent, then
// redirected to another node in cluster mode) and is refused there fails
// as an outcome unknown too, counted in OutcomeUnknown; a command of the
// same batch never written fails with the bare open error, counted in
// CircuitOpen, after it.
func TestR35WrittenBeforeRefusedInBatch(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	d := newFakeDialer()
	st := nodeState(newFakeConn(), d, 100)
	ob := &r35aOpeningBreaker{Breaker: st.Node.Breaker}
	ob.openAt.Store(1)
	st.Node.Breaker = ob
	h := start(t, st)

	log := &completionLog{}
	written, fresh := idempotent(1, log), newFakeCmd(2, log)
	written.rewrites, written.attempts = 1, 1 // written once, its reply lost
	st.Mailbox.PostAll(context.Background(), written, fresh)
	werr, ferr := written.wantFailed(t), fresh.wantFailed(t)
	if !errors.Is(werr, policies.ErrOutcomeUnknown) || !errors.Is(werr, policies.ErrCircuitOpen) || policies.NotSent(werr) {
		t.Errorf("command written before: %v; want ErrOutcomeUnknown wrapping ErrCircuitOpen", werr)
	}
	if errors.Is(ferr, policies.ErrOutcomeUnknown) || !errors.Is(ferr, policies.ErrCircuitOpen) {
		t.Errorf("never written command: %v; want ErrCircuitOpen alone", ferr)
	}
	if got := log.get(); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("completion order %v, want [1 2]", got)
	}
	// At once: a purge of the mailbox counts each refusal before it fails
	// the command (it counted them after failing them all: CircuitOpen 0
	// once in a whole run).
	s := st.Stats()
	if s.OutcomeUnknown != 1 || s.CircuitOpen != 1 {
		t.Errorf("Stats: OutcomeUnknown %d, CircuitOpen %d; want 1 and 1", s.OutcomeUnknown, s.CircuitOpen)
	}
	h.shutdown(t, snapshot)
}
