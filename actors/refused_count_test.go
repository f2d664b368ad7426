package actors_test

import (
	"errors"
	"net"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

// A cluster command queued on a node whose breaker opens (the node
// refuses connections) is rerouted by its slot, and refused again by the
// slot when the node is still its owner and still open: it is one command
// failed with the open error, counted once in the node's CircuitOpen
// (review-40 6: the opening's purge counted it, then the slot's refusal
// again). One that the slot sends again and the node then runs is not
// counted at all.
func TestRefusedRerouteCountedOnce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		closes bool // the breaker closes before the slot sends them again
	}{
		{"refused again", false},
		{"run after all", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snapshot := goleak.IgnoreCurrent()
			conn, st, h := heldNode(t)
			breakerFailsHeld(st) // OpenTimeout an hour
			node := st.Node
			slot := slotOn(h, st, 1)

			a, b, c := newReroutingCmd(1, "1"), newReroutingCmd(2, "2"), newReroutingCmd(3, "3")
			slot.Submit(a) // in flight, held
			waitChan(t, conn.entered, "A's round trip")
			slot.Submit(b) // queued behind A
			slot.Submit(c)
			node.RecordFailure(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
			node.Breaker.Open() // FailHeld: B and C rerouted, the slot waits for A
			eventually(t, "B and C taken off the node", func() bool { return st.Mailbox.Stats().Queued == 0 })
			if tc.closes {
				node.Breaker.Close()
			}
			close(conn.release) // A answered: the slot sends B and C again
			a.wantCompleted(t)
			want := uint64(0)
			for _, cmd := range []*reroutingCmd{b, c} {
				if tc.closes {
					cmd.wantCompleted(t)
					continue
				}
				if err := cmd.wantFailed(t); !errors.Is(err, policies.ErrCircuitOpen) {
					t.Fatalf("command %d: %v, want ErrCircuitOpen", cmd.id, err)
				}
				want++
			}
			if got := st.Stats().CircuitOpen; got != want {
				t.Errorf("CircuitOpen %d, want %d (each command failed by the open breaker counted once)", got, want)
			}
			slot.Close(mailbox.ErrClosed)
			slot.Wait()
			h.shutdown(t, snapshot)
		})
	}
}
