package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

// ConnState is what a connection actor keeps across restarts: its node,
// mailbox, driver connection, the commands it must send again first, and
// its counters. The engine creates it, posts commands to Mailbox and reads
// the counters; the actor instance is replaced on restart, the state is
// not. Safe for concurrent use.
type ConnState struct {
	Addr    string
	Mailbox *mailbox.Bounded
	Driver  drivers.ValkeyConn
	// CloseErr fails the commands still queued when the actor stops.
	CloseErr error
	// Node and Policy, when set, enable reconnects, retries and the
	// circuit breaker; without them a transport failure only fails the
	// commands it hit.
	Node   *Node
	Policy *Policy

	mu       sync.Mutex
	stash    []held       // commands to send again first, in order
	broken   bool         // the driver connection failed: the supervisor re-dials
	closed   bool         // CloseDriver ran: no driver is installed any more
	failures atomic.Int64 // consecutive failed rounds, for the backoff

	commands   atomic.Uint64 // commands whose reply (or error) came back
	errors     atomic.Uint64 // of those, the ones that failed
	inFlight   atomic.Int64  // commands written and awaiting replies
	restarts   atomic.Uint64
	reconnects atomic.Uint64
	retries    atomic.Uint64
	unknown    atomic.Uint64 // commands failed with ErrOutcomeUnknown
}

// ConnStats is a snapshot of one connection actor's counters.
type ConnStats struct {
	Addr       string
	Commands   uint64
	Errors     uint64
	InFlight   int64
	Restarts   uint64
	Reconnects uint64
	Retries    uint64
	// OutcomeUnknown counts commands failed with policies.ErrOutcomeUnknown.
	OutcomeUnknown uint64
	Mailbox        mailbox.Stats
}

// Stats returns a snapshot of the counters.
func (s *ConnState) Stats() ConnStats {
	return ConnStats{
		Addr:           s.Addr,
		Commands:       s.commands.Load(),
		Errors:         s.errors.Load(),
		InFlight:       s.inFlight.Load(),
		Restarts:       s.restarts.Load(),
		Reconnects:     s.reconnects.Load(),
		Retries:        s.retries.Load(),
		OutcomeUnknown: s.unknown.Load(),
		Mailbox:        s.Mailbox.Stats(),
	}
}

// held is a command kept to be sent again after a reconnect. sent is the
// transport error that hit it when it may have run (nil when it surely was
// not written): failed instead of resent, it then fails with an
// outcome-unknown error, never with one that says it was not sent.
type held struct {
	cmd  Command
	sent error
}

// fail fails h with err, as an outcome-unknown error wrapping err when h
// may have run.
func (h held) fail(err error) {
	if h.sent != nil {
		err = &policies.OutcomeUnknownError{Cause: errors.Join(err, h.sent)}
	}
	h.cmd.Fail(err)
}

// takeStash returns the held commands and forgets them.
func (s *ConnState) takeStash() []held {
	s.mu.Lock()
	defer s.mu.Unlock()
	stash := s.stash
	s.stash = nil
	return stash
}

// FailHeld fails the commands held for resending and the queued ones with
// err (the mailbox stays open). Used when the node's breaker opens. A held
// command that may have run fails with an outcome-unknown error wrapping
// err.
func (s *ConnState) FailHeld(err error) {
	for _, h := range s.takeStash() {
		h.fail(err)
	}
	s.Mailbox.Flush(err)
}

// CurrentDriver returns the actor's current driver connection; the actor
// replaces it when it reconnects (and closes the old one).
func (s *ConnState) CurrentDriver() drivers.ValkeyConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Driver
}

// CloseDriver closes the current driver connection (idempotent). From then
// on no new connection is installed: one dialled later is closed at once.
func (s *ConnState) CloseDriver() {
	s.mu.Lock()
	d := s.Driver
	s.closed = true
	s.mu.Unlock()
	if d != nil {
		_ = d.Close()
	}
}

// install makes conn the driver connection after a reconnect and closes
// the old one. It reports false, and leaves conn to the caller to close,
// when CloseDriver ran first.
func (s *ConnState) install(conn drivers.ValkeyConn) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	old := s.Driver
	s.Driver = conn
	s.broken = false
	s.mu.Unlock()
	if old != nil && old != conn {
		_ = old.Close()
	}
	s.reconnects.Add(1)
	return true
}

// Down reports whether the driver connection failed and no new one is
// installed yet (the supervisor is re-dialling, or waits for the node's
// breaker).
func (s *ConnState) Down() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.broken
}

// Props returns the props of a connection actor over st, wired to st's
// mailbox.
func (s *ConnState) Props() *actor.Props {
	return actor.PropsFromProducer(
		func() actor.Actor { return &Conn{state: s} },
		actor.WithMailbox(func() actor.Mailbox { return s.Mailbox }),
	)
}

// escalator is implemented by protoactor's actor context: it suspends the
// mailbox and reports the failure to the supervisor, without a panic (a
// panic would make the mailbox fail the batch in hand, including the
// commands kept for resending).
type escalator interface {
	EscalateFailure(reason any, message any)
}

// Conn is the connection actor. It is driven by protoactor on one goroutine
// at a time.
type Conn struct {
	state *ConnState
	cmds  []valkey.Completed // reused per batch
	live  []Command          // reused per batch
}

// Receive implements actor.Actor.
func (c *Conn) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *mailbox.Batch:
		c.run(ctx, m.Messages)
	case *actor.Started:
		c.start(ctx)
	case *actor.Restarting:
		c.state.restarts.Add(1)
	case *actor.Stopping:
		// protoactor drops the messages of a stopped actor: fail them.
		c.state.Mailbox.Close(c.state.CloseErr)
		err := c.state.CloseErr
		if err == nil {
			err = mailbox.ErrClosed
		}
		for _, h := range c.state.takeStash() {
			h.fail(err)
		}
	}
}

// start runs when the actor starts or restarts: it sends the held commands
// first. It never dials: the supervisor replaces a broken connection off
// the actor before it restarts it (see Supervisor), so no actor goroutine
// waits on a handshake. A broken connection still in place (a restart
// that skipped the supervisor's reconnect) is reported back to it as a
// failure.
func (c *Conn) start(ctx actor.Context) {
	st := c.state
	st.mu.Lock()
	broken := st.broken && st.Node != nil
	st.mu.Unlock()
	if broken {
		c.escalate(ctx, errNotConnected)
		return
	}
	stash := st.takeStash()
	if len(stash) == 0 {
		return
	}
	batch := make([]mailbox.Message, len(stash))
	for i, h := range stash {
		batch[i] = h.cmd
	}
	c.run(ctx, batch)
}

// escalate reports the actor as failed: the supervisor restarts it after a
// backoff; its mailbox is suspended meanwhile.
func (c *Conn) escalate(ctx actor.Context, reason error) {
	c.state.failures.Add(1)
	if e, ok := ctx.(escalator); ok {
		e.EscalateFailure(reason, nil)
		return
	}
	panic(fmt.Sprintf("actors: cannot escalate %v: context %T", reason, ctx))
}

// run writes one batch as one pipeline and completes each command in order.
// A transport failure fails or keeps each command (see settle) and restarts
// the actor.
func (c *Conn) run(ctx actor.Context, batch []mailbox.Message) {
	st := c.state
	cmds, live := c.cmds[:0], c.live[:0]
	for _, m := range batch {
		cmd, ok := m.(Command)
		if !ok {
			m.Fail(ErrNotCommand)
			continue
		}
		if err := cmd.Context().Err(); err != nil {
			cmd.Fail(err)
			continue
		}
		cmds = append(cmds, cmd.Cmd())
		live = append(live, cmd)
	}
	defer func() {
		clear(cmds)
		clear(live)
		c.cmds, c.live = cmds[:0], live[:0]
	}()
	if len(live) == 0 {
		return
	}
	n := st.Node
	if n != nil && (n.Open() || !n.Breaker.TryAcquirePermit()) {
		for _, cmd := range live {
			cmd.Fail(policies.ErrCircuitOpen)
		}
		return
	}
	dctx, cancel := c.batchContext(live)
	var failed uint64
	var broken error
	var hit []hitCmd // commands a transport error hit, in batch order
	settle := func(cmd Command, r valkey.ValkeyResult) {
		err := r.NonValkeyError()
		if err == nil {
			if r.Error() != nil && !valkey.IsValkeyNil(r.Error()) {
				failed++
			}
			cmd.Complete(r)
			return
		}
		failed++
		broken = err
		hit = append(hit, hitCmd{cmd: cmd, err: err})
	}
	if len(live) == 1 {
		// A batch of one: Do spares valkey-go's per-pipeline allocations.
		settle(live[0], c.do(dctx, cmds[0]))
	} else {
		results := c.doMulti(dctx, cmds)
		for i, cmd := range live {
			r := shortReply
			if i < len(results) {
				r = results[i]
			}
			settle(cmd, r)
		}
	}
	if cancel != nil {
		cancel()
	}
	keep := c.sortOut(hit)
	st.commands.Add(uint64(len(live)))
	if failed > 0 {
		st.errors.Add(failed)
	}
	if n == nil {
		return
	}
	if broken == nil {
		n.Breaker.RecordSuccess()
		st.failures.Store(0)
		if p := st.Policy; p != nil {
			p.Budget.Earn(len(live))
		}
		return
	}
	// Stash before the breaker hears of the failure: the failure may open
	// it, and the opening fails what is held (FailHeld) then and there.
	st.mu.Lock()
	st.broken = true
	st.stash = append(st.stash, keep...)
	st.mu.Unlock()
	n.Breaker.RecordFailure()
	if n.Open() {
		// Opened, here or by another connection of the node whose
		// FailHeld may have run before the stash above: what is held
		// will not be sent soon either.
		for _, h := range st.takeStash() {
			h.fail(policies.ErrCircuitOpen)
		}
	}
	c.escalate(ctx, broken)
}

// hitCmd is a command of a batch that a transport error hit.
type hitCmd struct {
	cmd  Command
	err  error
	keep bool
}

// sortOut decides which of the commands a transport error hit are kept to
// be sent again after the reconnect (returned, in order) and fails the
// others, in order. A command is kept when retry allows it and no later
// command of the batch that may have run is failed rather than kept: a
// resent command would land after that one (order rule 2), so a SET k v1
// marked idempotent, resent after a SET k v2 that may have run, could
// leave k at v1. Such a command fails too, as an outcome unknown when it
// may have run itself. Later commands that surely did not run (not
// written) or only read are no barrier. The walk goes from the last
// command back so that each decision knows what comes after it.
func (c *Conn) sortOut(hit []hitCmd) []held {
	if len(hit) == 0 {
		return nil
	}
	barrier, kept := false, 0
	for i := len(hit) - 1; i >= 0; i-- {
		h := &hit[i]
		if !barrier && c.retry(h.cmd, h.err) {
			h.keep = true
			kept++
			continue
		}
		if cmd := h.cmd.Cmd(); !policies.NotSent(h.err) && !cmd.IsReadOnly() {
			barrier = true // a write that may have run stays behind
		}
	}
	var keep []held
	if kept > 0 {
		keep = make([]held, 0, kept)
	}
	for _, h := range hit {
		if !h.keep {
			h.cmd.Fail(c.failure(h.cmd, h.err))
			continue
		}
		var sent error
		if !policies.NotSent(h.err) {
			sent = h.err
		}
		keep = append(keep, held{cmd: h.cmd, sent: sent})
	}
	return keep
}

// retry decides whether cmd, hit by the transport error err, is kept to be
// sent again after the reconnect: it must still be wanted (its context
// alive), have retries left within the budget, and either not have been
// written or be repeatable.
func (c *Conn) retry(cmd Command, err error) bool {
	p := c.state.Policy
	if p == nil || c.state.Node == nil || cmd.Context().Err() != nil {
		return false
	}
	if !policies.NotSent(err) && !policies.Repeatable(cmd.Context(), cmd.Cmd()) {
		return false
	}
	if cmd.Attempts() >= p.MaxRetries || !p.Budget.Spend(1) {
		return false
	}
	cmd.Retrying()
	c.state.retries.Add(1)
	return true
}

// failure is the error of a command that failed on transport error err and
// is not sent again.
func (c *Conn) failure(cmd Command, err error) error {
	if cerr := cmd.Context().Err(); cerr != nil {
		return cerr
	}
	if policies.NotSent(err) {
		return err
	}
	c.state.unknown.Add(1)
	return &policies.OutcomeUnknownError{Cause: err}
}

// batchContext bounds a pipeline by its commands' deadlines when every
// command has one and the latest comes before the read timeout: nobody
// waits longer, so the round trip is abandoned then and the connection
// treated as failed. Otherwise the driver's read timeout applies.
func (c *Conn) batchContext(live []Command) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, cmd := range live {
		dl, ok := cmd.Context().Deadline()
		if !ok {
			return context.Background(), nil
		}
		if dl.After(latest) {
			latest = dl
		}
	}
	if p := c.state.Policy; p != nil && p.ReadTimeout > 0 && time.Until(latest) > p.ReadTimeout {
		return context.Background(), nil
	}
	return context.WithDeadline(context.Background(), latest)
}

// shortReply completes the commands a driver returned no result for.
var shortReply = valkey.NewResult(valkey.ValkeyMessage{}, ErrShortReply)

// do and doMulti run the driver call with the in-flight gauge held, also
// when the driver panics.
func (c *Conn) do(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResult {
	c.state.inFlight.Add(1)
	defer c.state.inFlight.Add(-1)
	return c.driver().Do(ctx, cmd)
}

func (c *Conn) doMulti(ctx context.Context, cmds []valkey.Completed) []valkey.ValkeyResult {
	n := int64(len(cmds))
	c.state.inFlight.Add(n)
	defer c.state.inFlight.Add(-n)
	return c.driver().DoMulti(ctx, cmds...)
}

func (c *Conn) driver() drivers.ValkeyConn {
	c.state.mu.Lock()
	defer c.state.mu.Unlock()
	return c.state.Driver
}
