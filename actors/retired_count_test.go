package actors_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/valkey-io/valkey-go"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/policies"
)

// A command kept after a not-sent transport error is counted in Commands
// (run: commands.Add(len(live))). When start resends the stash on a
// connection found retired (a stale redial after a Reset), run's Retire
// branch stashes it again; the breaker's opening then fails it, and it
// stays counted once (review-41d 1: marked uncounted there, it was
// counted in CircuitOpen as well).
func TestKeptNotSentRetiredCountedOnce(t *testing.T) {
	for _, reset := range []bool{false, true} {
		t.Run(fmt.Sprint("reset=", reset), func(t *testing.T) {
			snapshot := goleak.IgnoreCurrent()
			conn := newFakeConn()
			conn.reply = func(call, int) valkey.ValkeyResult {
				return transportErrReply(fmt.Errorf("%w: closed", drivers.ErrNotSent))
			}
			d := newFakeDialer()
			hold1 := make(chan struct{})
			d.hold, d.ignores = hold1, true
			st := nodeState(conn, d, 100)
			h := start(t, st)

			cmd := newFakeCmd(1, nil)
			st.Mailbox.Post(cmd)
			waitChan(t, d.started, "the redial") // cmd is in the stash, counted in Commands
			if s := st.Stats(); s.Commands != 1 {
				t.Fatalf("Commands %d after the not-sent try, want 1", s.Commands)
			}
			hold2 := make(chan struct{})
			if reset {
				h.sup.Reset(st.Node) // the primary changed while the dial runs: the dialled conn is stale
			}
			d.mu.Lock()
			d.hold = hold2
			d.mu.Unlock()
			close(hold1)
			if reset {
				waitChan(t, d.started, "the redial after the stale conn's retire") // start -> run -> Retire branch re-stashed cmd
				st.Node.Breaker.Open()
				err := cmd.wantFailed(t)
				if !errors.Is(err, policies.ErrCircuitOpen) {
					t.Fatalf("cmd: %v, want ErrCircuitOpen", err)
				}
				s := st.Stats()
				total := s.Commands + s.CircuitOpen + s.OutcomeUnknown + s.Mailbox.Expired + s.Mailbox.Rejected
				if total != 1 {
					t.Errorf("one command fired, counted %d times: Commands %d CircuitOpen %d", total, s.Commands, s.CircuitOpen)
				}
			} else {
				cmd.wantCompleted(t)
			}
			close(hold2)
			h.shutdown(t, snapshot)
		})
	}
}
