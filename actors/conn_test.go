package actors_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

// The reply helpers build what they claim to; the other tests rely on it.
func TestFakeReplies(t *testing.T) {
	if s, err := strReply("hello").ToString(); err != nil || s != "hello" {
		t.Fatalf("strReply: (%q, %v)", s, err)
	}
	err := serverErrReply("ERR boom").Error()
	var verr *valkey.ValkeyError
	if !errors.As(err, &verr) || valkey.IsValkeyNil(err) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("serverErrReply: error %v (%T), want a *valkey.ValkeyError that is not nil", err, err)
	}
	if err := nilReply().Error(); !valkey.IsValkeyNil(err) {
		t.Fatalf("nilReply: error %v, want valkey nil", err)
	}
	boom := errors.New("broken pipe")
	if r := transportErrReply(boom); r.NonValkeyError() != boom || r.Error() != boom {
		t.Fatalf("transportErrReply: %v", r.Error())
	}
}

// Each drained batch goes out as one driver call (Do for a batch of one,
// DoMulti otherwise); commands complete in posting order, each with the
// reply at its own index.
func TestConnBatchIsOneDoMulti(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn := newFakeConn()
	gate := conn.gate(0)
	st := newState("node-a:6379", conn, nil)
	h := start(t, st)

	log := &completionLog{}
	first := newFakeCmd(0, log)
	st.Mailbox.Post(first)
	conn.waitEntered(t, 0, "Do(1)")

	// The actor is inside Do: these queue up for the next batch.
	const queued = 5
	cmds := []*fakeCmd{first}
	for i := 1; i <= queued; i++ {
		c := newFakeCmd(i, log)
		cmds = append(cmds, c)
		st.Mailbox.Post(c)
	}
	if n := st.Mailbox.Len(); n != queued {
		t.Fatalf("mailbox holds %d commands while the actor is busy, want %d", n, queued)
	}
	for _, c := range cmds {
		if c.isDone() {
			t.Fatalf("command %d completed before its driver call returned", c.id)
		}
	}
	close(gate)

	first.wantString(t, "c0-0")
	for i, c := range cmds[1:] {
		c.wantString(t, fmt.Sprintf("c1-%d", i))
	}
	if got, want := conn.callLog(), []string{"Do(1)", "DoMulti(5)"}; !slices.Equal(got, want) {
		t.Fatalf("driver calls %v, want %v", got, want)
	}
	if got, want := log.get(), []int{0, 1, 2, 3, 4, 5}; !slices.Equal(got, want) {
		t.Fatalf("completion order %v, want %v", got, want)
	}
	s := st.Stats()
	if s.Addr != "node-a:6379" || s.Commands != queued+1 || s.Errors != 0 || s.InFlight != 0 || s.Restarts != 0 {
		t.Fatalf("Stats() = %+v", s)
	}
	if s.Mailbox.Batches != 2 || s.Mailbox.MaxBatch != queued {
		t.Fatalf("mailbox stats %+v, want 2 batches, the largest of %d", s.Mailbox, queued)
	}
	h.shutdown(t, snapshot)
}

// InFlight counts the commands of the batch inside the driver call; Commands and
// Errors count replies, and a valkey nil is not an error.
func TestConnStats(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn := newFakeConn()
	gate0, gate1 := conn.gate(0), conn.gate(1)
	boom := errors.New("connection reset")
	conn.reply = func(c call, i int) valkey.ValkeyResult {
		if c.index == 0 {
			return strReply("first")
		}
		switch i {
		case 0:
			return strReply("ok")
		case 1:
			return serverErrReply("WRONGTYPE Operation against a key holding the wrong kind of value")
		case 2:
			return nilReply()
		default:
			return transportErrReply(boom)
		}
	}
	st := newState("node-a:6379", conn, nil)
	h := start(t, st)

	if s := st.Stats(); s.Commands != 0 || s.Errors != 0 || s.InFlight != 0 {
		t.Fatalf("Stats() before any command = %+v", s)
	}
	first := newFakeCmd(0, nil)
	st.Mailbox.Post(first)
	conn.waitEntered(t, 0, "Do(1)")
	if s := st.Stats(); s.InFlight != 1 || s.Commands != 0 {
		t.Fatalf("Stats() while a batch of one blocks in Do = %+v, want InFlight 1, Commands 0", s)
	}

	cmds := make([]*fakeCmd, 4)
	for i := range cmds {
		cmds[i] = newFakeCmd(i+1, nil)
		st.Mailbox.Post(cmds[i])
	}
	close(gate0)
	first.wantString(t, "first")
	conn.waitEntered(t, 1, "DoMulti(4)")
	if s := st.Stats(); s.InFlight != 4 || s.Commands != 1 || s.Errors != 0 {
		t.Fatalf("Stats() while a 4-command DoMulti blocks = %+v, want InFlight 4, Commands 1, Errors 0", s)
	}
	close(gate1)

	cmds[0].wantString(t, "ok")
	if err := cmds[1].wantCompleted(t).Error(); err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE") {
		t.Fatalf("command 2: error %v, want the WRONGTYPE server error", err)
	}
	if err := cmds[2].wantCompleted(t).Error(); !valkey.IsValkeyNil(err) {
		t.Fatalf("command 3: error %v, want valkey nil", err)
	}
	// A transport error after the write: the outcome is unknown.
	if err := cmds[3].wantFailed(t); !errors.Is(err, policies.ErrOutcomeUnknown) || !errors.Is(err, boom) {
		t.Fatalf("command 4: error %v, want ErrOutcomeUnknown wrapping %v", err, boom)
	}
	// Counted before the futures complete: no need to wait.
	if s := st.Stats(); s.Commands != 5 || s.Errors != 2 || s.InFlight != 0 {
		t.Fatalf("Stats() after both batches = %+v, want Commands 5, Errors 2 (server + transport, not nil), InFlight 0", s)
	}
	h.shutdown(t, snapshot)
}

// A mailbox.Message that is not a Command fails with ErrNotCommand; the
// commands around it are served, with replies at the right indices, and a
// batch of nothing but such messages calls the driver not at all.
func TestConnNotCommand(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn := newFakeConn()
	gate := conn.gate(0)
	st := newState("node-a:6379", conn, nil)
	h := start(t, st)

	log := &completionLog{}
	first := newFakeCmd(0, log)
	st.Mailbox.Post(first)
	conn.waitEntered(t, 0, "Do(1)")

	a, bad, b := newFakeCmd(1, log), newFakeMsg(2, log), newFakeCmd(3, log)
	st.Mailbox.Post(a)
	st.Mailbox.Post(bad)
	st.Mailbox.Post(b)
	close(gate)

	first.wantString(t, "c0-0")
	a.wantString(t, "c1-0")
	b.wantString(t, "c1-1")
	if err := bad.wait(t); !errors.Is(err, actors.ErrNotCommand) {
		t.Fatalf("non-command message failed with %v, want ErrNotCommand", err)
	}
	if got, want := log.get(), []int{0, 2, 1, 3}; !slices.Equal(got, want) {
		// The non-command fails while the batch is sorted, before the
		// pipeline is written; the commands complete after it, in order.
		t.Fatalf("completion order %v, want %v", got, want)
	}

	// A batch without a single command: no driver call at all.
	alone := newFakeMsg(4, nil)
	st.Mailbox.Post(alone)
	if err := alone.wait(t); !errors.Is(err, actors.ErrNotCommand) {
		t.Fatalf("lone non-command message failed with %v, want ErrNotCommand", err)
	}
	// Prove the actor went past that batch, then look at the calls.
	last := newFakeCmd(5, nil)
	st.Mailbox.Post(last)
	last.wantString(t, "c2-0")
	if got, want := conn.callLog(), []string{"Do(1)", "DoMulti(2)", "Do(1)"}; !slices.Equal(got, want) {
		t.Fatalf("driver calls %v, want %v (none for the batch without commands)", got, want)
	}
	if s := st.Stats(); s.Commands != 4 || s.Errors != 0 {
		t.Fatalf("Stats() = %+v, want Commands 4 (non-commands not counted), Errors 0", s)
	}
	h.shutdown(t, snapshot)
}

// postPanickingBatch runs a 1-command batch through a gated Do, queues
// n commands behind it and lets them go out as the second DoMulti, which
// panics. It returns the n commands.
func postPanickingBatch(t *testing.T, st *actors.ConnState, conn *fakeConn, n int) []*fakeCmd {
	t.Helper()
	gate := conn.gate(0)
	conn.panicOn(1, "driver exploded")
	first := newFakeCmd(0, nil)
	st.Mailbox.Post(first)
	conn.waitEntered(t, 0, "Do(1)")
	cmds := make([]*fakeCmd, n)
	for i := range cmds {
		cmds[i] = newFakeCmd(i+1, nil)
		st.Mailbox.Post(cmds[i])
	}
	close(gate)
	first.wantString(t, "c0-0")
	return cmds
}

// A panic inside DoMulti fails every command of the batch with
// ErrActorFailed, the actor is restarted once, and later commands are
// served by the new incarnation on the same mailbox and driver.
func TestConnPanicRestarts(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn := newFakeConn()
	st := newState("node-a:6379", conn, nil)
	h := start(t, st)

	cmds := postPanickingBatch(t, st, conn, 3)
	for _, c := range cmds {
		err := c.wantFailed(t)
		if !errors.Is(err, mailbox.ErrActorFailed) {
			t.Fatalf("command %d of the panicking batch failed with %v, want ErrActorFailed", c.id, err)
		}
		if !strings.Contains(err.Error(), "driver exploded") {
			t.Fatalf("command %d: error %q does not carry the panic value", c.id, err)
		}
	}
	eventually(t, "Restarts == 1", func() bool { return st.Stats().Restarts == 1 })

	after := []*fakeCmd{newFakeCmd(10, nil), newFakeCmd(11, nil)}
	for _, c := range after {
		st.Mailbox.Post(c)
	}
	for _, c := range after {
		r := c.wantCompleted(t)
		if s, err := r.ToString(); err != nil || !strings.HasPrefix(s, "c2-") && !strings.HasPrefix(s, "c3-") {
			t.Fatalf("command %d after the restart: reply (%q, %v), want one from call 2 or 3", c.id, s, err)
		}
	}
	if got := conn.callLog(); len(got) < 3 || got[1] != "DoMulti(3)" {
		t.Fatalf("driver calls %v, want [Do(1) DoMulti(3) ...]", got)
	}
	if s := st.Stats(); s.Restarts != 1 || s.Commands != 3 || st.Mailbox.Closed() {
		t.Fatalf("Stats() = %+v (mailbox closed %v), want Restarts 1, Commands 3 (1 + 0 + 2), mailbox open",
			s, st.Mailbox.Closed())
	}
	if conn.closedCount() != 0 {
		t.Fatal("the restart closed the driver connection; it belongs to the ConnState and must survive")
	}
	h.shutdown(t, snapshot)
}

// A panic inside Do (a batch of one) is handled the same way.
func TestConnPanicInDoRestarts(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn := newFakeConn()
	conn.panicOn(0, "do exploded")
	st := newState("node-a:6379", conn, nil)
	h := start(t, st)

	c := newFakeCmd(0, nil)
	st.Mailbox.Post(c)
	if err := c.wantFailed(t); !errors.Is(err, mailbox.ErrActorFailed) {
		t.Fatalf("command failed with %v, want ErrActorFailed", err)
	}
	eventually(t, "Restarts == 1", func() bool { return st.Stats().Restarts == 1 })
	next := newFakeCmd(1, nil)
	st.Mailbox.Post(next)
	next.wantString(t, "c1-0")
	if got, want := conn.callLog(), []string{"Do(1)", "Do(1)"}; !slices.Equal(got, want) {
		t.Fatalf("driver calls %v, want %v", got, want)
	}
	h.shutdown(t, snapshot)
}

// After a batch whose driver call panicked, InFlight must go back to 0: those
// commands are no longer awaiting replies.
func TestConnPanicResetsInFlight(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn := newFakeConn()
	st := newState("node-a:6379", conn, nil)
	h := start(t, st)

	for _, c := range postPanickingBatch(t, st, conn, 3) {
		c.wantFailed(t)
	}
	eventually(t, "Restarts == 1", func() bool { return st.Stats().Restarts == 1 })
	if s := st.Stats(); s.InFlight != 0 {
		t.Fatalf("InFlight = %d after the panicking batch was failed and the actor restarted, want 0", s.InFlight)
	}
	h.shutdown(t, snapshot)
}

// lateCtx has a deadline that has passed while its Err is still nil: the
// moment between a deadline and the runtime timer that ends the context,
// in which a driver that watches the deadline itself (glide) may already
// have given up on the round trip.
type lateCtx struct{ context.Context }

func (lateCtx) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }

// A command whose deadline has passed fails with context.DeadlineExceeded
// when its round trip fails, as when its context has already ended, not
// with ErrOutcomeUnknown: the caller's deadline is what ended it. (Over
// glide, Do(ctx 200ms, a slow EVAL) gave ErrOutcomeUnknown wrapping
// DeadlineExceeded, valkey-go the plain DeadlineExceeded.)
func TestConnPassedDeadlineIsContextError(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	conn := newFakeConn()
	conn.reply = func(call, int) valkey.ValkeyResult { return transportErrReply(context.DeadlineExceeded) }
	st := newState("node-a:6379", conn, nil)
	h := start(t, st)
	cmd := newFakeCmd(0, nil)
	cmd.ctx = lateCtx{context.Background()}
	st.Mailbox.Post(cmd)
	if err := cmd.wantFailed(t); err != context.DeadlineExceeded {
		t.Fatalf("error %v, want context.DeadlineExceeded", err)
	}
	h.shutdown(t, snapshot)
}
