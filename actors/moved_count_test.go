package actors_test

import (
	"errors"
	"testing"

	"github.com/valkey-io/valkey-go"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/policies"
)

// resendableCmd is a fakeCmd a READONLY reply can move (Resendable).
type resendableCmd struct {
	*fakeCmd
	redirects int
}

func (c *resendableCmd) Resendable() bool { return true }
func (c *resendableCmd) Renew()           {}
func (c *resendableCmd) Redirects() int   { return c.redirects }
func (c *resendableCmd) Redirected()      { c.redirects++ }

// review-41c: a command the former primary refused with READONLY is taken out
// of Commands (run: commands.Add(-moved)) and stashed unwritten
// (held{cmd}, no sent, no rewrite). When the node's breaker opens before the
// redial, FailHeld fails it with the open error through held.fail, which
// counts only outcome-unknown failures: the command is counted nowhere
// (Commands, CircuitOpen, OutcomeUnknown, Expired, Rejected all 0).
func TestMovedCommandFailedByOpeningIsCounted(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn := newFakeConn()
	conn.reply = func(call, int) valkey.ValkeyResult {
		return serverErrReply("READONLY You can't write against a read only replica.")
	}
	d := newFakeDialer()
	hold := make(chan struct{})
	d.hold = hold // the redial waits: the moved command stays in the stash
	st := nodeState(conn, d, 100)
	st.NotPrimary = func() {}
	st.MaxResends = 3
	h := start(t, st)

	cmd := &resendableCmd{fakeCmd: newFakeCmd(1, nil)}
	st.Mailbox.Post(cmd)
	waitChan(t, d.started, "the redial") // cmd is in the stash
	st.Node.Breaker.Open()               // the listener's FailHeld
	if err := cmd.wantFailed(t); !errors.Is(err, policies.ErrCircuitOpen) {
		t.Fatalf("moved command: %v, want ErrCircuitOpen", err)
	}
	s := st.Stats()
	total := s.Commands + s.CircuitOpen + s.OutcomeUnknown + s.Mailbox.Expired + s.Mailbox.Rejected
	if total != 1 {
		t.Errorf("one command fired, counted %d times: %+v", total, s)
	}
	close(hold)
	h.shutdown(t, snapshot)
}
