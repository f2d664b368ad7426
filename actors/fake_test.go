package actors_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/valkey-io/valkey-go"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/mailbox"
)

// waitTimeout bounds every wait in these tests: nothing here should take
// more than a fraction of it, so reaching it means a lost wakeup or a hang.
const waitTimeout = 10 * time.Second

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

// message builds a valkey.ValkeyMessage without a server, through the
// exported CacheUnmarshalView: 7 bytes of TTL, a RESP3 type byte, an 8-byte
// big-endian length (or integer value) and the payload. valkey-go documents
// the format as version-specific; TestFakeReplies checks that what these
// helpers build reads back as intended, so a format change fails loudly.
func message(typ byte, n int64, payload string) valkey.ValkeyMessage {
	buf := make([]byte, 7, 7+1+8+len(payload))
	buf = append(buf, typ)
	buf = binary.BigEndian.AppendUint64(buf, uint64(n))
	buf = append(buf, payload...)
	var m valkey.ValkeyMessage
	if err := m.CacheUnmarshalView(buf); err != nil {
		panic(fmt.Sprintf("building a %q message: %v", typ, err))
	}
	return m
}

// strReply is a successful blob-string reply.
func strReply(s string) valkey.ValkeyResult {
	return valkey.NewResult(message('$', int64(len(s)), s), nil)
}

// serverErrReply is a server error reply ("-ERR ..."): a valkey error, not
// a transport error.
func serverErrReply(s string) valkey.ValkeyResult {
	return valkey.NewResult(message('-', int64(len(s)), s), nil)
}

// nilReply is a RESP3 null reply (GET of a missing key).
func nilReply() valkey.ValkeyResult {
	return valkey.NewResult(message('_', 0, ""), nil)
}

// transportErrReply is a non-server error (a broken connection, a timeout).
func transportErrReply(err error) valkey.ValkeyResult {
	return valkey.NewErrorResult(err)
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

// completionLog records the order in which commands complete (Complete or
// Fail), across commands.
type completionLog struct {
	mu  sync.Mutex
	ids []int
}

func (l *completionLog) add(id int) {
	l.mu.Lock()
	l.ids = append(l.ids, id)
	l.mu.Unlock()
}

func (l *completionLog) get() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.ids...)
}

// fakeMsg is a mailbox.Message that is not an actors.Command. The first
// Fail wins; later ones are counted.
type fakeMsg struct {
	id   int
	ctx  context.Context
	log  *completionLog
	done chan struct{}

	mu    sync.Mutex
	err   error
	fails int
}

func newFakeMsg(id int, log *completionLog) *fakeMsg {
	return &fakeMsg{id: id, ctx: context.Background(), log: log, done: make(chan struct{})}
}

func (m *fakeMsg) Context() context.Context { return m.ctx }

func (m *fakeMsg) Fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fails++
	if m.fails == 1 {
		m.err = err
		if m.log != nil {
			m.log.add(m.id)
		}
		close(m.done)
	}
}

// wait waits for the first completion and returns its error.
func (m *fakeMsg) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-m.done:
	case <-time.After(waitTimeout):
		t.Fatalf("message %d never completed", m.id)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// fakeCmd is an actors.Command that records every Complete and Fail. The
// first completion of either kind wins and closes done; later ones are
// counted so that tests can check "at most once, never both".
type fakeCmd struct {
	id   int
	ctx  context.Context
	log  *completionLog
	done chan struct{}

	mu        sync.Mutex
	completes int
	fails     int
	result    valkey.ValkeyResult // from the first Complete, if it came first
	err       error               // from the first Fail, if it came first
	completed bool                // the first completion was Complete
	attempts  int
	rewrites  int
	cmd       valkey.Completed
}

var _ actors.Command = (*fakeCmd)(nil)

func newFakeCmd(id int, log *completionLog) *fakeCmd {
	return &fakeCmd{id: id, ctx: context.Background(), log: log, done: make(chan struct{})}
}

func (c *fakeCmd) Context() context.Context { return c.ctx }

// Cmd returns cmd, by default the zero valkey.Completed: the fake driver
// never inspects it (hooks measure it: set cmd then).
func (c *fakeCmd) Cmd() valkey.Completed { return c.cmd }

func (c *fakeCmd) Attempts() int { return c.attempts }
func (c *fakeCmd) Retrying(written bool) {
	c.attempts++
	if written {
		c.rewrites++
	}
}
func (c *fakeCmd) Rewrites() int { return c.rewrites }

func (c *fakeCmd) first() {
	if c.completes+c.fails == 1 {
		if c.log != nil {
			c.log.add(c.id)
		}
		close(c.done)
	}
}

func (c *fakeCmd) Complete(r valkey.ValkeyResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.completes++
	if c.completes+c.fails == 1 {
		c.result, c.completed = r, true
	}
	c.first()
}

func (c *fakeCmd) Fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fails++
	if c.completes+c.fails == 1 {
		c.err = err
	}
	c.first()
}

// waitDone waits for the first completion.
func (c *fakeCmd) waitDone(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(waitTimeout):
		t.Fatalf("command %d never completed", c.id)
	}
}

// isDone reports whether the command has completed, without waiting.
func (c *fakeCmd) isDone() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// wantString waits for c and checks that it was completed exactly once,
// by Complete, with a blob string reply s.
func (c *fakeCmd) wantString(t *testing.T, s string) {
	t.Helper()
	r := c.wantCompleted(t)
	got, err := r.ToString()
	if err != nil || got != s {
		t.Fatalf("command %d: reply (%q, %v), want %q", c.id, got, err, s)
	}
}

// wantCompleted waits for c and checks that it was completed exactly once,
// by Complete, and never failed. It returns the reply.
func (c *fakeCmd) wantCompleted(t *testing.T) valkey.ValkeyResult {
	t.Helper()
	c.waitDone(t)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.completed || c.completes != 1 || c.fails != 0 {
		t.Fatalf("command %d: Complete called %d times, Fail %d times (first err %v); want Complete once",
			c.id, c.completes, c.fails, c.err)
	}
	return c.result
}

// wantFailed waits for c and checks that its first completion was a Fail
// and that Complete was never called. It returns the error.
func (c *fakeCmd) wantFailed(t *testing.T) error {
	t.Helper()
	c.waitDone(t)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.completed || c.completes != 0 {
		t.Fatalf("command %d: Complete called %d times, want a Fail only", c.id, c.completes)
	}
	return c.err
}

// ---------------------------------------------------------------------------
// Driver connection
// ---------------------------------------------------------------------------

// call is one driver call: Do (a batch of one) or DoMulti.
type call struct {
	index int  // 0 for the first call (Do or DoMulti), 1 for the second, ...
	multi bool // DoMulti rather than Do
	size  int  // number of commands
}

func (c call) String() string {
	if c.multi {
		return fmt.Sprintf("DoMulti(%d)", c.size)
	}
	return fmt.Sprintf("Do(%d)", c.size)
}

// fakeConn is a drivers.ValkeyConn whose Do and DoMulti record each call and
// return replies from reply, by default strReply("c<call>-<index>"). Calls
// are numbered across Do and DoMulti. A call whose number has a gate first
// reports itself on entered and then waits for the gate to be closed (or
// the test to time out); a call listed in panics panics instead of
// returning.
type fakeConn struct {
	entered chan call // buffered; receives every call that has a gate
	reply   func(c call, i int) valkey.ValkeyResult

	mu     sync.Mutex
	gates  map[int]chan struct{}
	panics map[int]any
	calls  []call
	closed int
}

var _ drivers.ValkeyConn = (*fakeConn)(nil)

func newFakeConn() *fakeConn {
	return &fakeConn{
		entered: make(chan call, 16),
		gates:   map[int]chan struct{}{},
		panics:  map[int]any{},
	}
}

// gate makes call number i block until the returned channel is closed.
func (f *fakeConn) gate(i int) chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := make(chan struct{})
	f.gates[i] = g
	return g
}

// panicOn makes call number i panic with v.
func (f *fakeConn) panicOn(i int, v any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.panics[i] = v
}

func (f *fakeConn) B() valkey.Builder {
	panic("fakeConn.B: the connection actor must not build commands")
}

func (f *fakeConn) Do(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResult {
	return f.do(false, 1)[0]
}

func (f *fakeConn) DoMulti(ctx context.Context, cmds ...valkey.Completed) []valkey.ValkeyResult {
	return f.do(true, len(cmds))
}

func (f *fakeConn) do(multi bool, n int) []valkey.ValkeyResult {
	f.mu.Lock()
	c := call{index: len(f.calls), multi: multi, size: n}
	f.calls = append(f.calls, c)
	g := f.gates[c.index]
	p, doPanic := f.panics[c.index]
	f.mu.Unlock()

	if g != nil {
		f.entered <- c
		select {
		case <-g:
		case <-time.After(waitTimeout):
			// Let the test fail on its own wait instead of hanging here.
		}
	}
	if doPanic {
		panic(p)
	}
	out := make([]valkey.ValkeyResult, n)
	for i := range out {
		if f.reply != nil {
			out[i] = f.reply(c, i)
		} else {
			out[i] = strReply(fmt.Sprintf("c%d-%d", c.index, i))
		}
	}
	return out
}

func (f *fakeConn) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed++
	return nil
}

// closedCount returns the number of Close calls so far.
func (f *fakeConn) closedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// callLog returns the calls so far, as "Do(1)" and "DoMulti(n)".
func (f *fakeConn) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.calls))
	for i, c := range f.calls {
		out[i] = c.String()
	}
	return out
}

// waitEntered waits for the gated call number i to start and checks what
// it is ("Do(1)", "DoMulti(4)").
func (f *fakeConn) waitEntered(t *testing.T, i int, want string) {
	t.Helper()
	select {
	case c := <-f.entered:
		if c.index != i || c.String() != want {
			t.Fatalf("call %d, %v, entered; want call %d, %s", c.index, c, i, want)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("driver call %d never started", i)
	}
}

// ---------------------------------------------------------------------------
// Actor system and supervisor
// ---------------------------------------------------------------------------

// newSystem returns a silent actor system.
func newSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
}

// newState returns a ConnState over conn with a fresh mailbox.
func newState(addr string, conn drivers.ValkeyConn, closeErr error) *actors.ConnState {
	return &actors.ConnState{
		Addr:     addr,
		Mailbox:  mailbox.New(mailbox.Options{}),
		Driver:   conn,
		CloseErr: closeErr,
	}
}

// harness is a running supervisor over some connection states.
type harness struct {
	system *actor.ActorSystem
	sup    *actors.Supervisor
	pid    *actor.PID
}

// start spawns a supervisor over states in a new actor system and waits
// until it is ready.
func start(t *testing.T, states ...*actors.ConnState) *harness {
	t.Helper()
	h := &harness{system: newSystem(), sup: actors.NewSupervisor(states)}
	select {
	case <-h.sup.Ready():
		t.Fatal("Ready() closed before the supervisor was spawned")
	default:
	}
	pid, err := h.sup.Spawn(h.system)
	if err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	h.pid = pid
	select {
	case <-h.sup.Ready():
	case <-time.After(waitTimeout):
		t.Fatal("Ready() not closed after Spawn")
	}
	return h
}

// stop stops the supervisor and waits until Stopped() is closed.
func (h *harness) stop(t *testing.T) {
	t.Helper()
	h.system.Root.Stop(h.pid)
	h.waitStopped(t)
}

func (h *harness) waitStopped(t *testing.T) {
	t.Helper()
	select {
	case <-h.sup.Stopped():
	case <-time.After(waitTimeout):
		t.Fatal("Stopped() not closed after the supervisor was stopped")
	}
}

// shutdown stops the supervisor (if it still runs), shuts the system down
// and checks that no goroutine started since snapshot is left.
func (h *harness) shutdown(t *testing.T, snapshot goleak.Option) {
	t.Helper()
	select {
	case <-h.sup.Stopped():
	default:
		h.stop(t)
	}
	h.system.Shutdown()
	// VerifyNone retries for a while: goroutines of the default dispatcher
	// exit shortly after their mailbox goes idle.
	goleak.VerifyNone(t, snapshot)
}

// eventually polls cond until it holds or waitTimeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
