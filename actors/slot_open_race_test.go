package actors_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

// openingRouter is oneNode whose ReplicaReads, once armed, opens the
// node's breaker first: Submit asks it after route() found the breaker
// closed and before it posts the command, the window in which a breaker
// opening (its FailHeld included) can run in the engine.
type openingRouter struct {
	oneNode
	armed atomic.Bool
}

func (r *openingRouter) ReplicaReads() bool {
	if r.armed.Swap(false) {
		r.st.Node.Breaker.Open() // its listener fails what the node holds (FailHeld)
	}
	return false
}

// A command Submit posts straight to the owner's connection actor just
// after the owner's breaker opened, its FailHeld run and past (the
// breaker read closed when the command was routed), is not left in the
// mailbox until the next opening (OpenTimeout later, after a probe: the
// connection actor of a refused node stays down meanwhile, or here, is
// busy): it fails with the open error at once, as it would have queued a
// moment earlier. In hunt40's runs of TestClusterAllNodesRefuseFailFast
// with the window widened, such GETs waited 1.03 s (OpenTimeout 1 s)
// instead of ~0.1 s.
func TestSlotDirectPostRacingBreakerOpeningFails(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn, st, h := heldNode(t)
	breakerFailsHeld(st) // OpenTimeout an hour: no second opening comes
	slot := slotOn(h, st, 1)
	router := &openingRouter{oneNode: oneNode{st}}
	slot.Router = router

	inFlight := newHookedCmd(1)
	slot.Submit(inFlight) // keeps the connection actor busy: its round trip is held
	waitChan(t, conn.entered, "the first round trip")

	racing := newHookedCmd(2)
	racing.cmd = subBuilder(t).Get().Key("k").Build() // read-only: Submit asks ReplicaReads
	router.armed.Store(true)
	slot.Submit(racing)
	if !st.Node.Open() {
		t.Fatal("the breaker did not open in the window")
	}
	select {
	case <-racing.done:
	case <-time.After(waitTimeout):
		t.Fatalf("the command posted just after the breaker opened was not failed in %v: it waits in the mailbox for the next opening", waitTimeout)
	}
	if err := racing.wantFailed(t); !errors.Is(err, policies.ErrCircuitOpen) {
		t.Fatalf("command 2: %v, want ErrCircuitOpen", err)
	}
	close(conn.release)
	inFlight.waitDone(t)
	slot.Close(mailbox.ErrClosed)
	slot.Wait()
	h.shutdown(t, snapshot)
}

var _ actors.Router = (*openingRouter)(nil)

// An ASK to a node whose breaker is open fails at once with the open
// error. It was forwarded to the target's connection actor without a
// look at the breaker and waited there, the actor down (or, here, busy on
// a round trip), until the breaker's next opening or closing, an
// OpenTimeout later (review-40 5).
func TestSlotAskToOpenTargetFails(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	owner := scriptNode(&askFirst{scriptConn: &scriptConn{script: []string{"a"}}})
	hold, target, h2 := heldNode(t)
	target.Addr, target.Node.Addr = askTarget, askTarget
	breakerFailsHeld(target) // OpenTimeout an hour
	h := start(t, owner)
	r := &askDial{oneNode: oneNode{owner}, target: target, release: make(chan struct{}), dials: make(chan struct{}, 4), dialled: true}
	close(r.release)
	slot := slotOn(h, owner, 1)
	slot.Router = r

	busy := newHookedCmd(1)
	target.Mailbox.Post(busy) // the target's connection actor is busy
	waitChan(t, hold.entered, "the target's round trip")
	target.Node.Breaker.Open()

	asked := newHookedCmd(2)
	slot.Submit(asked) // the owner answers ASK to the target
	select {
	case <-asked.done:
	case <-time.After(waitTimeout):
		t.Fatalf("the command redirected by ASK to a node whose breaker is open was not failed in %v", waitTimeout)
	}
	if err := asked.wantFailed(t); !errors.Is(err, policies.ErrCircuitOpen) {
		t.Fatalf("the asked command: %v, want ErrCircuitOpen", err)
	}
	if got := target.Stats().CircuitOpen; got != 1 {
		t.Fatalf("the target's CircuitOpen %d, want 1 (the asked command, refused unsent)", got)
	}
	close(hold.release)
	waitFor(t, busy.fakeCmd, waitTimeout, "the target's round trip")

	slot.Close(mailbox.ErrClosed)
	slot.Wait()
	h2.stop(t)
	h2.waitStopped(t)
	h.shutdown(t, snapshot)
}

// replicaReadsRouter is oneNode with replica reads on and no replica: a
// read goes through the slot actor (dispatch) to the owner.
type replicaReadsRouter struct{ oneNode }

func (replicaReadsRouter) ReplicaReads() bool { return true }

// openingCmd is a read that opens its node's breaker (its listener
// failing what the node holds) when the slot hooks it, once armed:
// dispatch hooks a command after its lookup found the breaker closed and
// before it forwards it.
type openingCmd struct {
	*hookedCmd
	node  *actors.Node
	armed atomic.Bool
}

func (c *openingCmd) SetHook(h *actors.Collector, seq uint32) {
	if c.armed.Swap(false) {
		c.node.Breaker.Open()
	}
	c.hookedCmd.SetHook(h, seq)
}

// The same as TestSlotDirectPostRacingBreakerOpeningFails on the slot
// actor's path (dispatch): a read forwarded to the owner just after its
// breaker opened fails at once, not at the next opening.
func TestSlotDispatchRacingBreakerOpeningFails(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn, st, h := heldNode(t)
	breakerFailsHeld(st)
	slot := slotOn(h, st, 1)
	slot.Router = replicaReadsRouter{oneNode{st}}

	inFlight := newHookedCmd(1)
	slot.Submit(inFlight) // a write, straight to the owner: its round trip is held
	waitChan(t, conn.entered, "the first round trip")

	racing := &openingCmd{hookedCmd: newHookedCmd(2), node: st.Node}
	racing.cmd = subBuilder(t).Get().Key("k").Build() // read-only: through the slot actor
	racing.armed.Store(true)
	slot.Submit(racing)
	select {
	case <-racing.done:
	case <-time.After(waitTimeout):
		t.Fatalf("the read dispatched just after the breaker opened was not failed in %v: it waits in the mailbox for the next opening", waitTimeout)
	}
	if racing.armed.Load() || !st.Node.Open() {
		t.Fatal("the breaker did not open in dispatch's window: the test did not take the path it tests")
	}
	if err := racing.wantFailed(t); !errors.Is(err, policies.ErrCircuitOpen) {
		t.Fatalf("the read: %v, want ErrCircuitOpen", err)
	}
	close(conn.release)
	inFlight.waitDone(t)
	slot.Close(mailbox.ErrClosed)
	slot.Wait()
	h.shutdown(t, snapshot)
}

// replicaRouter routes the slot's reads to a replica (rst), its writes to
// the owner.
type replicaRouter struct {
	oneNode
	rst *actors.ConnState
}

func (r replicaRouter) ReadConn(uint16) (*actors.ConnState, error) { return r.rst, nil }
func (r replicaRouter) ReplicaAddr(uint16) string                  { return r.rst.Addr }
func (r replicaRouter) Cached(addr string, _ uint16) *actors.ConnState {
	if addr == r.rst.Addr {
		return r.rst
	}
	return r.st
}
func (replicaRouter) ReplicaReads() bool { return true }

// The same on dispatch's replica path: a read forwarded to a replica just
// after the replica's breaker opened fails at once with the replica's
// open error, not left in its mailbox until its next opening (here: until
// its busy round trip ends; review-40: no test reached that
// RefuseIfOpen). (A breaker opened by timeouts, as here, does not move
// the read elsewhere: see unrun.)
func TestSlotDispatchToReplicaRacingBreakerOpeningFails(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	owner := scriptNode(&scriptConn{})
	h := start(t, owner)
	hold, replica, h2 := heldNode(t)
	replica.Addr, replica.Node.Addr = "replica:6379", "replica:6379"
	breakerFailsHeld(replica) // OpenTimeout an hour: no second opening comes
	slot := slotOn(h, owner, 1)
	slot.Router = replicaRouter{oneNode: oneNode{owner}, rst: replica}

	busy := newHookedCmd(1)
	replica.Mailbox.Post(busy) // the replica's connection actor is busy
	waitChan(t, hold.entered, "the replica's round trip")

	racing := &openingCmd{hookedCmd: newHookedCmd(2), node: replica.Node}
	racing.cmd = subBuilder(t).Get().Key("k").Build() // read-only: to the replica
	racing.armed.Store(true)
	slot.Submit(racing)
	select {
	case <-racing.done:
	case <-time.After(waitTimeout):
		t.Fatalf("the read dispatched to the replica just after its breaker opened was not failed in %v: it waits in the replica's mailbox", waitTimeout)
	}
	if racing.armed.Load() || !replica.Node.Open() {
		t.Fatal("the replica's breaker did not open in dispatch's window: the test did not take the path it tests")
	}
	if err := racing.wantFailed(t); !errors.Is(err, policies.ErrCircuitOpen) {
		t.Fatalf("the read: %v, want ErrCircuitOpen", err)
	}
	if got := replica.Stats().CircuitOpen; got != 1 {
		t.Fatalf("the replica's CircuitOpen %d, want 1 (the read, refused unsent)", got)
	}
	close(hold.release)
	waitFor(t, busy.fakeCmd, waitTimeout, "the replica's round trip")
	slot.Close(mailbox.ErrClosed)
	slot.Wait()
	h2.stop(t)
	h2.waitStopped(t)
	h.shutdown(t, snapshot)
}
