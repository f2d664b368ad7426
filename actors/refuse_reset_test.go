package actors_test

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/actors"
)

// A refusal that found the node's breaker open, and a Reset (a sentinel
// switch) that closed it before the refusal's purge ran: the purge fails
// nothing queued for the new server after the Reset (review-40 2: it
// failed such commands, and the stash a switch's Retire keeps for the new
// primary, with the former server's open error).
func TestRefusalRacingResetSparesCommandsQueuedAfter(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	st := nodeState(newFakeConn(), newFakeDialer(), 1)
	h := start(t, st)
	st.Node.RecordFailure(errors.New("the former primary failed"))
	if !st.Node.Open() {
		t.Fatal("the breaker did not open (threshold 1)")
	}
	after := newFakeCmd(1, nil)
	actors.SetBeforeRefuse(func(s *actors.ConnState) {
		// The switch, between the refusal's look at the breaker and its
		// purge, and a command queued for the new primary then (the
		// mailbox paused: only the purge could take it before the
		// actor).
		s.Mailbox.Pause()
		h.sup.Reset(s.Node)
		s.Mailbox.Post(after)
	})
	st.RefuseIfOpen()
	actors.SetBeforeRefuse(nil)
	st.Mailbox.Unpause()
	waitFor(t, after, 2*time.Second, "queued for the new server after the Reset")
	after.wantCompleted(t)
	if st.Node.Open() {
		t.Fatal("the breaker open after the Reset")
	}
	h.shutdown(t, snapshot)
}
