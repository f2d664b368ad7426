package actors_test

import (
	"errors"
	"testing"

	"github.com/vactor-io/vactor/policies"
)

// A queued command written on an earlier try (kept, then redirected to
// this node) that the breaker's opening fails may have run: it fails as an
// outcome unknown wrapping the open error, counted in OutcomeUnknown, not
// in CircuitOpen as refused unwritten (review-35b R35b-1); an unwritten one
// queued with it still fails with the open error alone.
func TestFailHeldWrittenQueuedIsOutcomeUnknown(t *testing.T) {
	st := nodeState(newFakeConn(), newFakeDialer(), 100) // actor not started: the commands stay queued
	written, fresh := idempotent(1, nil), newFakeCmd(2, nil)
	written.rewrites = 1
	st.Mailbox.Post(written)
	st.Mailbox.Post(fresh)
	st.FailHeld(policies.ErrCircuitOpen)
	if err := written.wantFailed(t); !errors.Is(err, policies.ErrOutcomeUnknown) || !errors.Is(err, policies.ErrCircuitOpen) {
		t.Errorf("written queued command failed by the breaker's opening: %v, want ErrOutcomeUnknown wrapping ErrCircuitOpen", err)
	}
	if err := fresh.wantFailed(t); errors.Is(err, policies.ErrOutcomeUnknown) || !errors.Is(err, policies.ErrCircuitOpen) {
		t.Errorf("unwritten queued command: %v, want ErrCircuitOpen alone", err)
	}
	if s := st.Stats(); s.CircuitOpen != 1 || s.OutcomeUnknown != 1 {
		t.Errorf("Stats: CircuitOpen %d, OutcomeUnknown %d; want 1 and 1", s.CircuitOpen, s.OutcomeUnknown)
	}
}
