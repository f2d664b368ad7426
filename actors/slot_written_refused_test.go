package actors_test

import (
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

// A command written on an earlier try whose reply was lost (Rewrites > 0),
// then redirected by a MOVED to a node whose breaker is open, may have run
// where it was first written: the slot actor fails it with an outcome
// unknown wrapping the open error, counted in the node's OutcomeUnknown,
// not with the bare *CircuitOpenError ("not sent") it failed with
// (review-35 R35-1's class, on the slot actor's path). (One command: a
// second one could miss the round trip answered MOVED, review-35b R35b-5.)
func TestSlotRedirectedWrittenRefusedIsOutcomeUnknown(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	fromConn := newRedirectOnceConn("MOVED 1 127.0.0.1:7002")
	fromSt := scriptNode(fromConn)
	h := start(t, fromSt)
	toSt := scriptNode(newRedirectOnceConn(""))
	toSt.Addr = "127.0.0.1:7002"
	toSt.Node.Addr = toSt.Addr
	breakerFailsHeld(toSt) // its node reads open, as the engine's do
	h2 := start(t, toSt)
	toSt.Node.Breaker.Open()
	if !toSt.Node.Open() {
		t.Fatal("the new owner's node does not read open")
	}
	slot := slotOn(h, fromSt, 1)
	slot.Router = &movingRouter{from: fromSt, to: toSt}

	written := newHookedCmd(1)
	written.rewrites = 1 // an earlier try was written, its reply lost
	slot.Submit(written)
	waitChan(t, fromConn.entered, "the round trip")
	close(fromConn.release) // MOVED to the node whose breaker is open

	err := written.wantFailed(t)
	if !errors.Is(err, policies.ErrOutcomeUnknown) || !errors.Is(err, policies.ErrCircuitOpen) {
		t.Errorf("written command refused by the new owner's open breaker: %v, want ErrOutcomeUnknown wrapping ErrCircuitOpen", err)
	}
	if st := toSt.Stats(); st.OutcomeUnknown != 1 || st.CircuitOpen != 0 {
		t.Errorf("the new owner's OutcomeUnknown %d, CircuitOpen %d; want 1 and 0", st.OutcomeUnknown, st.CircuitOpen)
	}
	slot.Close(mailbox.ErrClosed)
	slot.Wait()
	h2.stop(t)
	h2.waitStopped(t)
	h.shutdown(t, snapshot)
}
