package actors_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

type noOwnerRouter struct{ movingRouter }

func (r *noOwnerRouter) Conn(a string, s uint16) (*actors.ConnState, error) {
	if a == r.to.Addr {
		return nil, fmt.Errorf("%w: slot 1", policies.ErrNoSlotOwner)
	}
	return r.movingRouter.Conn(a, s)
}
func (r *noOwnerRouter) Refresh(s uint16) (string, error) {
	return "", fmt.Errorf("%w: slot 1", policies.ErrNoSlotOwner)
}

// A command written on an earlier try that the slot actor cannot place
// (no owner after a MOVED) fails as an outcome unknown, counted in the
// slot's OutcomeUnknown, which Engine.Stats sums (review-35b R35b-4: it
// was counted nowhere, neither in NoOwner nor in any OutcomeUnknown).
func TestSlotNoOwnerWrittenCounted(t *testing.T) {
	fromConn := newRedirectOnceConn("MOVED 1 127.0.0.1:7002")
	fromSt := scriptNode(fromConn)
	h := start(t, fromSt)
	toSt := scriptNode(newRedirectOnceConn(""))
	toSt.Addr = "127.0.0.1:7002"
	toSt.Node.Addr = toSt.Addr
	slot := slotOn(h, fromSt, 1)
	slot.Router = &noOwnerRouter{movingRouter{from: fromSt, to: toSt}}

	written := newHookedCmd(1)
	written.rewrites = 1
	slot.Submit(written)
	waitChan(t, fromConn.entered, "the round trip")
	close(fromConn.release)
	err := written.wantFailed(t)
	if !errors.Is(err, policies.ErrOutcomeUnknown) {
		t.Fatalf("want ErrOutcomeUnknown, got %v", err)
	}
	if n, u := slot.NoOwner(), slot.OutcomeUnknown(); n != 0 || u != 1 {
		t.Errorf("the slot's NoOwner %d, OutcomeUnknown %d; want 0 and 1", n, u)
	}
	slot.Close(mailbox.ErrClosed)
	slot.Wait()
	h.stop(t)
	h.waitStopped(t)
}

func (r *noOwnerRouter) Cached(a string, s uint16) *actors.ConnState {
	if a == r.to.Addr {
		return nil
	}
	return r.movingRouter.Cached(a, s)
}
func (r *noOwnerRouter) Owner(uint16) (string, error) {
	if r.moved.Load() {
		return "", fmt.Errorf("%w: slot 1", policies.ErrNoSlotOwner)
	}
	return r.from.Addr, nil
}
