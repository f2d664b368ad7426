package actors_test

import (
	"errors"
	"slices"
	"testing"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/mailbox"
)

// Stopping the supervisor stops every connection actor; each one closes its
// mailbox with its ConnState's CloseErr, which fails the commands still
// queued and every later post. The batch in flight is completed normally.
// Stopped() is closed, and nothing keeps running afterwards.
func TestSupervisorStopFailsQueuedCommands(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	errIdle := errors.New("engine closed (idle node)")
	errBusy := errors.New("engine closed (busy node)")

	idleConn, busyConn := newFakeConn(), newFakeConn()
	idle := newState("idle:6379", idleConn, errIdle)
	busy := newState("busy:6379", busyConn, errBusy)
	gate := busyConn.gate(0)
	// Order matters for the synchronisation below: protoactor stops
	// children in reverse spawn order, so the Stop for busy (spawned last)
	// is posted to its mailbox before the one for idle. Once idle's
	// mailbox is closed, busy's Stop is therefore already queued, ahead of
	// any user message. Were that order to change, the queued commands
	// would be written by a second driver call and this test would fail on the
	// call count, not pass by accident.
	h := start(t, idle, busy)

	// Both actors serve commands.
	served := newFakeCmd(0, nil)
	idle.Mailbox.Post(served)
	served.wantString(t, "c0-0")

	log := &completionLog{}
	inFlight := newFakeCmd(1, log)
	busy.Mailbox.Post(inFlight)
	busyConn.waitEntered(t, 0, "Do(1)")
	queued := []*fakeCmd{newFakeCmd(2, log), newFakeCmd(3, log), newFakeCmd(4, log)}
	for _, c := range queued {
		busy.Mailbox.Post(c)
	}

	h.system.Root.Stop(h.pid)
	eventually(t, "the idle actor's mailbox to close", idle.Mailbox.Closed)
	select {
	case <-h.sup.Stopped():
		t.Fatal("Stopped() closed while a connection actor is still inside its driver call")
	default:
	}
	close(gate)
	h.waitStopped(t)

	inFlight.wantString(t, "c0-0")
	for _, c := range queued {
		if err := c.wantFailed(t); err != errBusy {
			t.Fatalf("queued command %d failed with %v, want the ConnState's CloseErr %v", c.id, err, errBusy)
		}
	}
	if got, want := log.get(), []int{1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Fatalf("completion order %v, want %v", got, want)
	}
	if got := busyConn.callLog(); !slices.Equal(got, []string{"Do(1)"}) {
		t.Fatalf("busy driver calls %v, want [Do(1)]: commands queued at stop must not be written", got)
	}
	if !busy.Mailbox.Closed() || !idle.Mailbox.Closed() {
		t.Fatal("a mailbox is still open after the supervisor stopped")
	}

	// Later posts fail at once, each with its own ConnState's error.
	lateIdle, lateBusy := newFakeCmd(5, nil), newFakeCmd(6, nil)
	idle.Mailbox.Post(lateIdle)
	busy.Mailbox.Post(lateBusy)
	if !lateIdle.isDone() || !lateBusy.isDone() {
		t.Fatal("Post to a closed mailbox did not fail the command before returning")
	}
	if err := lateIdle.wantFailed(t); err != errIdle {
		t.Fatalf("post after stop (idle) failed with %v, want %v", err, errIdle)
	}
	if err := lateBusy.wantFailed(t); err != errBusy {
		t.Fatalf("post after stop (busy) failed with %v, want %v", err, errBusy)
	}
	if got := idleConn.callLog(); !slices.Equal(got, []string{"Do(1)"}) {
		t.Fatalf("idle driver calls %v, want [Do(1)]", got)
	}
	if s := busy.Stats(); s.Commands != 1 || s.InFlight != 0 || s.Restarts != 0 {
		t.Fatalf("busy Stats() = %+v", s)
	}
	h.shutdown(t, snapshot)
}

// A ConnState without CloseErr fails queued and later commands with
// mailbox.ErrClosed.
func TestSupervisorStopWithoutCloseErr(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn := newFakeConn()
	st := newState("node:6379", conn, nil)
	h := start(t, st)
	h.stop(t)
	late := newFakeCmd(0, nil)
	st.Mailbox.Post(late)
	if err := late.wantFailed(t); !errors.Is(err, mailbox.ErrClosed) {
		t.Fatalf("post after stop failed with %v, want mailbox.ErrClosed", err)
	}
	if got := conn.callLog(); len(got) != 0 {
		t.Fatalf("driver called %v after stop", got)
	}
	h.shutdown(t, snapshot)
}

// A supervisor without connections starts and stops.
func TestSupervisorEmpty(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	h := start(t) // fails unless Ready is closed after Spawn, not before
	select {
	case <-h.sup.Stopped():
		t.Fatal("Stopped() closed while the supervisor runs")
	default:
	}
	h.stop(t)               // fails unless Stopped is closed
	h.shutdown(t, snapshot) // fails on a goroutine left behind
}

// Two supervisors live side by side in one system (names do not clash),
// and stopping one leaves the other serving.
func TestSupervisorsAreIndependent(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	system := newSystem()
	stA := newState("a:6379", newFakeConn(), errors.New("a closed"))
	stB := newState("b:6379", newFakeConn(), errors.New("b closed"))
	supA, supB := actors.NewSupervisor([]*actors.ConnState{stA}), actors.NewSupervisor([]*actors.ConnState{stB})
	pidA, err := supA.Spawn(system)
	if err != nil {
		t.Fatalf("Spawn A: %v", err)
	}
	pidB, err := supB.Spawn(system)
	if err != nil {
		t.Fatalf("Spawn B: %v", err)
	}
	if pidA.Id == pidB.Id {
		t.Fatalf("both supervisors got PID %q", pidA.Id)
	}
	hA := &harness{system: system, sup: supA, pid: pidA}
	hB := &harness{system: system, sup: supB, pid: pidB}
	hA.stop(t)
	c := newFakeCmd(0, nil)
	stB.Mailbox.Post(c)
	c.wantString(t, "c0-0")
	if stB.Mailbox.Closed() {
		t.Fatal("stopping supervisor A closed B's mailbox")
	}
	hB.shutdown(t, snapshot)
}
