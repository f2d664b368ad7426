package actors_test

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

// review-41b: dc8ca82 made FailHeld's purge count a cluster command it fails
// only when the command fails (Refusable), not when the slot reroutes it.
// The connection actor's own refusal in run (a batch it took just as the
// breaker opened, before the opening's listener purged it) still counts
// every command first and then calls Fail, which reroutes a hooked one:
// the slot refuses it again and counts it a second time.
func TestRunRefusalOfReroutedCountedOnce(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn, st, h := heldNode(t)
	node := st.Node
	gate := make(chan struct{})
	node.Breaker = policies.NewBreaker(policies.BreakerOptions{
		Threshold: 100, OpenTimeout: time.Hour,
		OnStateChanged: func(_, to circuitbreaker.State) {
			if now := node.SyncOpen(); to == circuitbreaker.OpenState && now != circuitbreaker.ClosedState {
				<-gate // the listener marked the node open, its purge not yet run
				st.FailIfOpen()
			}
		},
	})
	slot := slotOn(h, st, 1)
	a, b := newReroutingCmd(1, "1"), newReroutingCmd(2, "2")
	slot.Submit(a) // in flight, held
	waitChan(t, conn.entered, "A's round trip")
	slot.Submit(b) // queued behind A
	node.RecordFailure(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	opened := make(chan struct{})
	go func() { node.Breaker.Open(); close(opened) }()
	eventually(t, "the node marked open", node.Open)
	close(conn.release) // A answered; the actor takes [B] and run refuses it
	a.wantCompleted(t)
	if err := b.wantFailed(t); !errors.Is(err, policies.ErrCircuitOpen) {
		t.Fatalf("B: %v, want ErrCircuitOpen", err)
	}
	close(gate)
	<-opened
	if got := st.Stats().CircuitOpen; got != 1 {
		t.Errorf("CircuitOpen %d, want 1 (one command refused)", got)
	}
	slot.Close(mailbox.ErrClosed)
	slot.Wait()
	h.shutdown(t, snapshot)
}
