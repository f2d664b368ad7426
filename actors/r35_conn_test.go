package actors_test

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

// review-35 R35-3: a command blocked in a full mailbox (Backpressure block)
// when the node's breaker opens fails with the queued ones, with the open
// error, its Post returning false: the opening's FailHeld let it into the
// room it freed, where it sat in the suspended actor's mailbox until the
// next flush (the next refusal, or a failed probe after OpenTimeout, an
// hour here), while every later command failed fast.
func TestR35BlockedPosterFailsWhenBreakerOpens(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn := newFakeConn()
	gate := conn.gate(0)
	conn.reply = func(call, int) valkey.ValkeyResult { return transportErrReply(errors.New("connection reset by peer")) }
	d := newFakeDialer()
	d.fail = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	st := nodeState(conn, d, 1)
	st.Mailbox = mailbox.New(mailbox.Options{Capacity: 1})
	h := start(t, st)

	log := &completionLog{}
	a, b, c := newFakeCmd(1, log), newFakeCmd(2, log), newFakeCmd(3, log)
	st.Mailbox.Post(a)
	conn.waitEntered(t, 0, "Do(1)")
	st.Mailbox.Post(b) // fills the mailbox
	posted := make(chan bool, 1)
	go func() { posted <- st.Mailbox.Post(c) }() // waits for room
	eventually(t, "C waiting for room", func() bool { return st.Mailbox.Stats().Waiting == 1 })
	close(gate) // A fails: the breaker (threshold 1) opens, FailHeld runs
	a.waitDone(t)
	b.waitDone(t)
	select {
	case ok := <-posted:
		if ok {
			t.Errorf("C's Post returned true: let into the down actor's mailbox")
		}
	case <-time.After(time.Second):
		t.Fatalf("C's Post still blocked 1 s after the breaker opened")
	}
	select {
	case <-c.done:
	case <-time.After(time.Second):
		t.Fatalf("C (blocked poster) still pending 1 s after the breaker opened; mailbox %+v", st.Mailbox.Stats())
	}
	if err := c.wantFailed(t); !errors.Is(err, policies.ErrCircuitOpen) || errors.Is(err, policies.ErrOutcomeUnknown) {
		t.Errorf("C failed with %v, want ErrCircuitOpen (not written)", err)
	}
	if err := b.wantFailed(t); !errors.Is(err, policies.ErrCircuitOpen) {
		t.Errorf("B failed with %v, want ErrCircuitOpen", err)
	}
	if got := log.get(); len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Errorf("completion order %v, want [1 2 3]", got)
	}
	s := st.Stats()
	if s.CircuitOpen != 2 || s.Mailbox.Queued != 0 || s.Mailbox.Waiting != 0 {
		t.Errorf("Stats: CircuitOpen %d (want 2: B and C), Queued %d, Waiting %d (want 0)", s.CircuitOpen, s.Mailbox.Queued, s.Mailbox.Waiting)
	}
	h.shutdown(t, snapshot)
}
