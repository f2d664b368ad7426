package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/internal/hookbus"
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
	// NotPrimary, when set (sentinel mode: the primary's connections),
	// makes a READONLY or MASTERDOWN reply mean that the server is no
	// longer the primary and the command did not run: the actor keeps
	// such commands (and the read-only ones answered after them in the
	// same pipeline) to send them again, in order, calls NotPrimary (the
	// engine resolves the primary again) and has its connection replaced
	// as after a transport failure; Node.Dial then reaches the new
	// primary. A command is sent again at most MaxResends times and only
	// if it is Resendable; otherwise it completes with the reply. Needs
	// Node.
	NotPrimary func()
	MaxResends int
	// Hooks, when set, receive the actor's events (pipelines, lost
	// connections, restarts, retries) and the commands learn where they
	// were sent (Observed). Nil: none, and nothing is computed for them.
	Hooks *hookbus.Bus

	// failMu is held while FailHeld (or the actor, once the breaker
	// opened) fails what it took, so that one who finds nothing left to
	// fail returns only once those are failed (Order).
	failMu sync.Mutex
	mu     sync.Mutex
	stash  []held // commands to send again first, in order
	broken bool   // the driver connection failed: the supervisor re-dials
	closed bool   // CloseDriver ran: no driver is installed any more
	// swapped, when not nil, is closed (and cleared) when a connection is
	// installed, CloseDriver runs or the breaker opens (FailHeld):
	// LiveDriver's waiters.
	swapped chan struct{}
	// sideCalls counts the calls under way on the driver beside the
	// actor (LiveDriver's): Retire cuts them as it cuts a pipeline.
	sideCalls int
	// retired is the connection Retire took out of service (nil: none);
	// retiredWrap wraps the transport errors of what it cut.
	retired     drivers.ValkeyConn
	retiredWrap func(error) error
	// cut and cutWrap are the retired connection and its wrap once a new
	// one is installed, for the calls beside the actor still on it.
	cut     drivers.ValkeyConn
	cutWrap func(error) error
	// moving is set by Retire until the actor fails over to the new
	// connection: the supervisor then dials at once, without a backoff
	// and without counting the failure (see strategy.HandleFailure).
	moving atomic.Bool
	// gen is the node's Reset count (Node.resets) when the installed
	// connection was dialled: once the node is Reset, a connection of an
	// older gen leads to the former server (see stale).
	gen      atomic.Uint64
	failures atomic.Int64 // consecutive failed rounds, for the backoff

	commands   atomic.Uint64 // commands whose reply (or error) came back
	errors     atomic.Uint64 // of those, the ones that failed
	inFlight   atomic.Int64  // commands written and awaiting replies
	restarts   atomic.Uint64
	reconnects atomic.Uint64
	retries    atomic.Uint64
	unknown    atomic.Uint64 // commands failed with ErrOutcomeUnknown
	budget     atomic.Uint64 // of those, the ones the retry budget refused
	refused    atomic.Uint64 // commands the open breaker failed unwritten

	// done completes a busy actor's answered pipelines while the next
	// one is in flight (see completer).
	done completer
}

// ConnStats is a snapshot of one connection actor's counters.
type ConnStats struct {
	Addr string
	// Connected is true while the actor holds a working connection: false
	// once it failed (until a new one is installed) and after Close.
	Connected bool
	Commands  uint64
	Errors    uint64
	InFlight  int64
	// Held is the number of commands a transport error hit that the actor
	// keeps to send again once it has a connection (in no mailbox and not
	// in flight meanwhile).
	Held       int
	Restarts   uint64
	Reconnects uint64
	Retries    uint64
	// OutcomeUnknown counts commands failed with policies.ErrOutcomeUnknown.
	OutcomeUnknown uint64
	// RetryBudget counts, among those, the repeatable commands failed
	// because the node's retry budget was spent (their error matches
	// policies.ErrRetryBudget): sent again, they might have been served.
	// A node that keeps losing what it was sent shows here.
	RetryBudget uint64
	// CircuitOpen counts commands failed with the node's open-breaker
	// error before they were written: refused when fired, queued,
	// waiting for room in the mailbox or drained when the breaker opened
	// (see CountRefused).
	CircuitOpen uint64
	Mailbox     mailbox.Stats
}

// Stats returns a snapshot of the counters.
func (s *ConnState) Stats() ConnStats {
	s.mu.Lock()
	connected := s.Driver != nil && !s.broken && !s.closed
	held := len(s.stash)
	s.mu.Unlock()
	return ConnStats{
		Addr:           s.Addr,
		Connected:      connected,
		Held:           held,
		Commands:       s.commands.Load(),
		Errors:         s.errors.Load(),
		InFlight:       s.inFlight.Load(),
		Restarts:       s.restarts.Load(),
		Reconnects:     s.reconnects.Load(),
		Retries:        s.retries.Load(),
		OutcomeUnknown: s.unknown.Load(),
		RetryBudget:    s.budget.Load(),
		CircuitOpen:    s.refused.Load(),
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
	// uncounted: not in Commands (moved by a READONLY or MASTERDOWN
	// reply); refused unwritten, it counts in CircuitOpen.
	uncounted bool
}

// fail fails h with err, as an outcome-unknown error wrapping err when h
// may have run (written before this failure, or on an earlier try),
// counted in s's OutcomeUnknown then.
func (h held) fail(s *ConnState, err error) {
	switch {
	case h.sent != nil:
		err = &policies.OutcomeUnknownError{Cause: errors.Join(err, h.sent)}
		s.unknown.Add(1)
	case h.cmd.Rewrites() > 0:
		err = &policies.OutcomeUnknownError{Cause: errors.Join(err, errWrittenBefore)}
		s.unknown.Add(1)
	case h.uncounted && errors.Is(err, policies.ErrCircuitOpen):
		s.CountRefused(1)
	}
	h.cmd.Fail(err)
}

// errWrittenBefore is in the error of a command that failed unsent on its
// last try after an earlier try was written and its reply lost: it may
// have run, and its error must not say "not sent" (a WithIdempotent SET
// reported ErrNotSent or ErrCircuitOpen though it may have been applied).
var errWrittenBefore = errors.New("vactor: written on an earlier try, whose reply was lost")

// held returns the number of commands held for resending.
func (s *ConnState) held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.stash)
}

// takeStash returns the held commands and forgets them.
func (s *ConnState) takeStash() []held {
	s.mu.Lock()
	defer s.mu.Unlock()
	stash := s.stash
	s.stash = nil
	return stash
}

// FailHeld fails the commands held for resending, the queued ones and
// those waiting for room in the mailbox (Backpressure block) with err
// (the mailbox stays open). Used when the node's breaker opens, and
// before a command is refused because it is open. A held command that
// may have run fails with an outcome-unknown error wrapping err. (A
// poster waiting for room is failed, not let into the room the queue
// frees: the actor stays down while the breaker is open, and it waited
// there until the next refusal or OpenTimeout: review-35 R35-3.) It
// returns once the commands a concurrent FailHeld took are failed too: a
// command refused after it cannot complete before one issued earlier.
func (s *ConnState) FailHeld(err error) {
	s.mu.Lock()
	s.wakeLocked() // a LiveDriver waiting for a new connection fails too
	s.mu.Unlock()
	s.failMu.Lock()
	defer s.failMu.Unlock()
	for _, h := range s.takeStash() {
		h.fail(s, err) // counted in Commands when they were sent
	}
	// A queued command written on an earlier try (kept, then redirected
	// here) may have run: it fails as held.fail fails it, never as
	// refused unwritten (review-35b R35b-1). Each refusal is counted
	// before its future fails, so that Stats never lags what a caller
	// awaiting the command saw.
	counted := func() { s.CountRefused(1) }
	s.Mailbox.PurgeFunc(func(m mailbox.Message) {
		if c, ok := m.(Command); ok && c.Rewrites() > 0 {
			held{cmd: c}.fail(s, err)
			return
		}
		if r, ok := m.(Refusable); ok {
			r.Refuse(err, counted) // not counted here if the slot moves it
			return
		}
		counted()
		m.Fail(err)
	})
}

// RefuseIfOpen is for a caller that posted to s's mailbox after it found
// the node's breaker closed: when the breaker has opened since, the
// opening's FailHeld may have run before the post landed, and the command
// would wait in the mailbox (the actor kept down, or busy on a round
// trip) until the next opening, an OpenTimeout and a probe later, instead
// of failing with the open error. It fails what s holds and queues with
// that error now, as the opening does (hunt40: a GET routed just before
// every node's breaker opened waited 1 s; review-35's S-d). One atomic
// load when the breaker is closed. Safe for concurrent use.
func (s *ConnState) RefuseIfOpen() { s.FailIfOpen() }

// FailIfOpen fails what s holds and queues with its node's open error,
// as FailHeld does, when the node's breaker is open, and reports whether
// it did. The look and the purge are one step against Supervisor.Reset
// (Node.refuseMu): found open and then closed by a Reset (a sentinel
// switch: the new primary's breaker) before the purge, it fails nothing
// (review-40 2: the purge failed the commands queued for the new
// primary after the Reset, and the stash its Retire keeps for it, with
// the former server's open error). One atomic load when the breaker is
// closed. Safe for concurrent use.
func (s *ConnState) FailIfOpen() bool {
	n := s.Node
	if n == nil || !n.Open() {
		return false
	}
	if f := testBeforeRefuse.Load(); f != nil {
		(*f)(s)
	}
	return s.failOpen(n.Open)
}

// failUnlessClosed is start's FailIfOpen for the moment an opening's
// listener has not marked the node open yet: it fails what s holds and
// queues unless the breaker is closed (IsClosed only reads its state:
// safe under refuseMu).
func (s *ConnState) failUnlessClosed() bool {
	n := s.Node
	return s.failOpen(func() bool { return !n.Breaker.IsClosed() })
}

// failOpen fails what s holds and queues with the node's open error, as
// FailHeld does, when open reports the breaker open, the look and the
// purge one step against Supervisor.Reset (refuseMu); it reports whether
// it did.
func (s *ConnState) failOpen(open func() bool) bool {
	n := s.Node
	n.refuseMu.Lock()
	defer n.refuseMu.Unlock()
	if !open() {
		return false
	}
	s.FailHeld(n.OpenError())
	return true
}

// testBeforeRefuse, when set (tests), runs in FailIfOpen between its
// first look at the breaker and its purge.
var testBeforeRefuse atomic.Pointer[func(*ConnState)]

// CountRefused counts n commands failed with the node's open-breaker
// error before they were written (ConnStats.CircuitOpen), for those the
// engine refuses when they are fired. Safe for concurrent use.
func (s *ConnState) CountRefused(n int) {
	if n > 0 {
		s.refused.Add(uint64(n))
	}
}

// NodeAddr returns the address the hooks' events name for s: its node's
// current address (sentinel mode: the primary's), or Addr.
func (s *ConnState) NodeAddr() string {
	if s.Node != nil {
		return s.Node.Current()
	}
	return s.Addr
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
	s.wakeLocked()
	s.mu.Unlock()
	if d != nil {
		_ = d.Close()
	}
}

// install makes conn, dialled when the node's Reset count was gen, the
// driver connection after a reconnect and closes the old one. It reports
// false, and leaves conn to the caller to close, when CloseDriver ran
// first. A connection dialled before a Reset of the node (a sentinel
// switch while the dial ran: it may lead to the former primary, still up
// and accepting writes the failover drops) is installed retired, as if
// Retire had found it: the actor sends nothing on it and dials again at
// once. (Retire, which follows the Reset, found the actor's connection
// broken and did nothing.)
func (s *ConnState) install(conn drivers.ValkeyConn, gen uint64) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	old := s.Driver
	s.Driver = conn
	s.broken = false
	s.gen.Store(gen)
	if s.retired != nil && s.retired != conn {
		// Kept for the calls beside the actor it cut (LiveDriver's end).
		s.cut, s.cutWrap = s.retired, s.retiredWrap
		s.retired, s.retiredWrap = nil, nil
	}
	stale := s.Node != nil && s.Node.resets.Load() != gen
	if stale {
		s.retired, s.retiredWrap = conn, func(err error) error { return err }
		s.moving.Store(true)
	}
	s.wakeLocked()
	s.mu.Unlock()
	if stale {
		s.Mailbox.PostUserMessage(reconnect{conn: conn})
	}
	if old != nil && old != conn {
		_ = old.Close()
	}
	s.reconnects.Add(1)
	return true
}

// LiveDriver returns the driver connection once it leads to the node's
// current server, for a call made on it beside the actor (a blocking
// command), and end, to call with the call's error (nil too) once it
// returned: end returns that error, wrapped as Retire's wrap does when
// Retire cut the call. While the connection is retired (Retire) or was
// dialled before the node's last Reset (a sentinel switch: it leads to
// the former primary, which may still acknowledge writes the failover
// then drops), LiveDriver waits for the reconnect to install the new
// one, bounded by ctx (whose error it returns); it fails with the node's
// open-breaker error once the breaker is open meanwhile (the new server
// does not answer). A Retire while the call runs closes the connection,
// cutting it (a blocking call on a frozen former primary would wait for
// ever). It returns a nil connection and no error once CloseDriver ran.
// A connection that merely failed is returned: the call fails on it as
// it would have. Safe for concurrent use.
func (s *ConnState) LiveDriver(ctx context.Context) (d drivers.ValkeyConn, end func(error) error, err error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, nil, nil
		}
		d := s.Driver
		if d != nil && d != s.retired && !s.stale() {
			s.sideCalls++
			s.mu.Unlock()
			return d, func(err error) error {
				s.mu.Lock()
				s.sideCalls--
				var wrap func(error) error
				switch d {
				case s.retired:
					wrap = s.retiredWrap
				case s.cut:
					wrap = s.cutWrap
				}
				s.mu.Unlock()
				if err != nil && wrap != nil {
					return wrap(err)
				}
				return err
			}, nil
		}
		if s.Node != nil && s.Node.Open() {
			s.mu.Unlock()
			return nil, nil, s.Node.OpenError()
		}
		if s.swapped == nil {
			s.swapped = make(chan struct{})
		}
		ch := s.swapped
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
}

// wakeLocked wakes LiveDriver's waiters. Called with mu held.
func (s *ConnState) wakeLocked() {
	if s.swapped != nil {
		close(s.swapped)
		s.swapped = nil
	}
}

// stale reports whether the node was Reset since the installed
// connection was dialled: the connection leads to the node's former
// server (sentinel mode), so its failure says nothing about the node.
func (s *ConnState) stale() bool {
	return s.Node != nil && s.gen.Load() != s.Node.resets.Load()
}

// Down reports whether the driver connection failed and no new one is
// installed yet (the supervisor is re-dialling, or waits for the node's
// breaker).
func (s *ConnState) Down() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.broken
}

// Retire takes the actor's connection out of service now, for a server
// that no longer is the one to send to (sentinel mode: the sentinels
// named a new primary), and has the actor reconnect. A
// pipeline in flight on it is cut: the connection is closed (on a
// goroutine of its own: a frozen server's close must not hold the
// caller), and its commands fail or are kept as after any transport
// failure, their errors wrapped by wrap. (Left alone, a pipeline to a
// frozen primary waited for the read timeout, or for the old primary to
// wake and acknowledge writes the failover then dropped, and the commands
// held for the new primary waited behind it.) A pipeline the actor would
// start on it before its reconnect is not sent: its commands are kept for
// the new connection. Neither counts against the node's circuit breaker.
// Safe for concurrent use; without Node it does nothing.
func (s *ConnState) Retire(wrap func(error) error) {
	if s.Node == nil {
		return
	}
	s.mu.Lock()
	d := s.Driver
	if d == nil || s.closed {
		s.mu.Unlock()
		return
	}
	if s.broken {
		// Being replaced already: the dial reaches the new server. A
		// call beside the actor may still wait on the connection (a
		// blocking command on a frozen former primary, whose other
		// calls failed): cut it, its error wrapped.
		cut := s.sideCalls > 0
		if cut {
			s.cut, s.cutWrap = d, wrap
		}
		s.mu.Unlock()
		if cut {
			go func() { _ = d.Close() }()
		}
		return
	}
	s.retired, s.retiredWrap = d, wrap
	s.moving.Store(true)
	// doMulti counts its commands in flight before it takes the driver
	// under mu: either it finds the connection retired, or the count
	// shows here and the close cuts its round trip. So does a call
	// beside the actor (LiveDriver).
	inFlight := s.inFlight.Load() > 0 || s.sideCalls > 0
	s.mu.Unlock()
	if inFlight {
		go func() { _ = d.Close() }()
	}
	s.Mailbox.PostUserMessage(reconnect{conn: d})
}

// SyncReplicas has the connection actor send WAIT replicas timeout on its
// connection between two pipelines while its mailbox is paused (the
// commands held back), and call done with the number of replicas that
// acknowledged every write the connection made, or the error. Once the
// mailbox is no longer paused, or when the connection is down, done gets
// errNotHeld or errNotConnected at once and nothing is sent. done is not
// called if the actor stops first. Safe for concurrent use.
func (s *ConnState) SyncReplicas(replicas int, timeout time.Duration, done func(acked int64, err error)) {
	s.Mailbox.PostUserMessage(syncReplicas{n: replicas, timeout: timeout, done: done})
}

// Messages of the connection actor other than batches.
type (
	// reconnect replaces conn (a message for a connection replaced
	// since is ignored).
	reconnect struct{ conn drivers.ValkeyConn }
	// connLost is the driver's report that conn failed while idle
	// (drivers.LostNotifier).
	connLost struct {
		conn drivers.ValkeyConn
		err  error
	}
	syncReplicas struct {
		n       int
		timeout time.Duration
		done    func(int64, error)
	}
)

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
	pipe  pipeObs            // reused per batch (hooks only)
	sent  drivers.ValkeyConn // the connection of the last round trip (do, doMulti)
}

// Receive implements actor.Actor.
func (c *Conn) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *mailbox.Batch:
		c.run(ctx, m.Messages, false)
	case reconnect:
		c.reconnect(ctx, m)
	case connLost:
		c.lost(ctx, m)
	case syncReplicas:
		c.syncReplicas(m)
	case *actor.Started:
		c.start(ctx)
	case *actor.Restarting:
		n := c.state.restarts.Add(1)
		c.state.Hooks.Emit(hooks.Restart{Node: c.state.NodeAddr(), Restarts: n})
	case *actor.Stopping:
		// protoactor drops the messages of a stopped actor: fail them,
		// after the pipelines answered before.
		c.state.done.wait()
		c.state.Mailbox.Close(c.state.CloseErr)
		err := c.state.CloseErr
		if err == nil {
			err = mailbox.ErrClosed
		}
		for _, h := range c.state.takeStash() {
			h.fail(c.state, err)
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
	d := st.Driver
	st.mu.Unlock()
	if broken {
		c.escalate(ctx, errNotConnected)
		return
	}
	if ln, ok := d.(drivers.LostNotifier); ok && st.Node != nil {
		mb := st.Mailbox
		ln.OnLost(func(err error) { mb.PostUserMessage(connLost{conn: d, err: err}) })
	}
	if st.held() == 0 {
		return
	}
	permitted := false
	if n := st.Node; n != nil && !(st.moving.Load() && c.retiredNow()) {
		// The breaker is asked before the held commands leave the stash
		// (run asks it for the others): refused, they fail from the
		// stash through FailHeld, as the opening's FailHeld fails them,
		// each as it may have run (held.fail: an outcome unknown when
		// written once) and before the commands queued behind them. Taken
		// first, a breaker opening then found the stash empty and failed
		// the queued commands first, and run failed the taken ones with
		// the bare open error, "not sent" (review-35 R35-1). (A retired
		// connection's run keeps them, past an open breaker, for the new
		// one.)
		if n.Open() || !n.Breaker.TryAcquirePermit() {
			st.done.wait()
			switch {
			case st.FailIfOpen():
				return
			case st.failUnlessClosed():
				// Opened, and its listener has not marked the node open
				// yet (Open lags the breaker: Node.SyncOpen): fail what
				// is held, stash first, as the listener will (review-41
				// 3: falling through, run failed the stash while the
				// listener purged the queue, in either order).
				return
			}
			// Closed since (a Reset: a new server): what is held goes to
			// it, run asking the breaker for them.
		} else {
			permitted = true
		}
	}
	stash := st.takeStash()
	if len(stash) == 0 {
		return // a FailHeld took them meanwhile (the breaker opened)
	}
	batch := make([]mailbox.Message, len(stash))
	for i, h := range stash {
		batch[i] = h.cmd
	}
	c.run(ctx, batch, permitted)
}

// reconnect marks the connection broken and reports it: the supervisor
// dials again (Node.Dial) and restarts the actor. Nothing is in flight.
func (c *Conn) reconnect(ctx actor.Context, m reconnect) {
	st := c.state
	st.mu.Lock()
	if st.broken || st.Driver != m.conn {
		st.mu.Unlock()
		return // being replaced already, or replaced since
	}
	st.broken = true
	st.mu.Unlock()
	c.escalate(ctx, ErrReconnect)
}

// lost handles the driver's report that the connection failed while
// idle (its PING went unanswered): as after a failed round trip with
// nothing in flight, the connection is reported lost (hooks.Lost), the
// breaker records a failure and the supervisor dials again, now rather
// than when the next command finds it broken. A report about a
// connection already replaced is ignored.
func (c *Conn) lost(ctx actor.Context, m connLost) {
	st := c.state
	st.mu.Lock()
	if st.broken || st.Driver != m.conn {
		st.mu.Unlock()
		return
	}
	st.broken = true
	st.mu.Unlock()
	st.Hooks.Emit(hooks.Lost{Node: st.NodeAddr(), Err: m.err})
	if n := st.Node; n != nil && !st.stale() {
		n.RecordFailure(m.err)
	}
	c.escalate(ctx, m.err)
}

// syncReplicas sends WAIT on the actor's connection: it waits for the
// replicas to acknowledge this connection's writes (the server tracks the
// offset per client).
func (c *Conn) syncReplicas(m syncReplicas) {
	if c.state.Down() {
		m.done(0, errNotConnected)
		return
	}
	if !c.state.Mailbox.Paused() {
		m.done(0, errNotHeld) // the hold it was for is over
		return
	}
	// In flight before the driver is taken, as doMulti: Retire cuts it.
	c.state.inFlight.Add(1)
	defer c.state.inFlight.Add(-1)
	d, _ := c.sendOn()
	if d == nil {
		m.done(0, errNotConnected) // retired: the reconnect comes next
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.timeout+time.Second)
	defer cancel()
	cmd := d.B().Arbitrary("WAIT").Args(strconv.Itoa(m.n), strconv.FormatInt(m.timeout.Milliseconds(), 10)).Build()
	n, err := d.Do(ctx, cmd).AsInt64()
	m.done(n, err)
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
// the actor. permitted: the node's breaker gave the batch its permit
// already (start's resend).
func (c *Conn) run(ctx actor.Context, batch []mailbox.Message, permitted bool) {
	st := c.state
	cmds, live := c.cmds[:0], c.live[:0]
	for _, m := range batch {
		cmd, ok := m.(Command)
		if !ok {
			m.Fail(ErrNotCommand)
			continue
		}
		if err := cmd.Context().Err(); err != nil {
			if st.Mailbox != nil {
				st.Mailbox.CountExpired(1) // ended after the drain: Expired still (it was uncounted)
			}
			cmd.Fail(err)
			continue
		}
		cmds = append(cmds, cmd.Cmd())
		live = append(live, cmd)
	}
	holding := false // a hookbus Hold is under way
	defer func() {
		clear(cmds)
		clear(live)
		c.cmds, c.live = cmds[:0], live[:0]
		if holding { // a completion panicked
			st.Hooks.Release()
		}
	}()
	if len(live) == 0 {
		return
	}
	if st.moving.Load() && c.retiredNow() {
		// Retire took the connection out of service before this
		// pipeline: keep it, unsent and as it is (no attempt spent, no
		// lost connection reported), for the new connection, which the
		// reconnect dials at once.
		st.mu.Lock()
		st.broken = true
		for _, cmd := range live {
			// Not marked uncounted: a batch start resends from the stash
			// holds commands already counted (kept after a not-sent
			// error), and marked, a breaker's failure counted those twice
			// (review-41d 1); fresh ones failed so are counted nowhere.
			st.stash = append(st.stash, held{cmd: cmd})
		}
		st.mu.Unlock()
		c.escalate(ctx, ErrReconnect)
		return
	}
	n := st.Node
	if n != nil && !permitted && (n.Open() || !n.Breaker.TryAcquirePermit()) {
		// A command written on an earlier try (kept, then redirected
		// here: start's resend asks the breaker itself) may have run: it
		// fails as held.fail fails it, an outcome unknown wrapping the
		// open error, counted in OutcomeUnknown, never as refused
		// unwritten (CircuitOpen); in cluster mode that also keeps it
		// from being rerouted to another node as a command that did not
		// run (see unrun). (review-35 R35-1.)
		err := n.OpenError()
		st.done.wait()
		// Each counted just before its future fails (as FailHeld counts):
		// a cluster command Fail reroutes is counted where it is refused
		// in the end (Refusable), not here as well (review-41b 1).
		counted := func() { st.CountRefused(1) }
		for _, cmd := range live {
			if cmd.Rewrites() > 0 {
				held{cmd: cmd}.fail(st, err)
				continue
			}
			if r, ok := cmd.(Refusable); ok {
				r.Refuse(err, counted)
				continue
			}
			counted()
			cmd.Fail(err)
		}
		return
	}
	dctx, cancel := c.batchContext(live)
	var pipe *pipeObs
	if st.Hooks != nil {
		pipe = c.observe(live, cmds)
	}
	var broken error
	var hit []hitCmd     // commands a transport error hit, in batch order
	var moved []held     // commands a former primary refused, in batch order
	var at time.Duration // when the round trip ended (hooks only)
	demoted := false
	watchRole := st.NotPrimary != nil && n != nil
	// The commands are counted once their replies are back and before any
	// future completes, so that a caller who has awaited one finds it in
	// Stats (a command moved to the new primary is taken back below); an
	// error reply is counted before its future completes, a transport
	// error before sortOut fails its command.
	var retired func(error) error // the connection was retired (Retire)
	looked := false               // for retired, at the first transport error
	settle := func(cmd Command, r valkey.ValkeyResult) {
		err := r.NonValkeyError()
		if err != nil {
			if !looked {
				looked = true
				if retired == nil {
					retired = st.retiredWrapOf(c.sent)
				}
			}
			if retired != nil {
				err = retired(err)
			}
		}
		if err == nil {
			if watchRole && c.notPrimary(cmd, r, &demoted) {
				moved = append(moved, held{cmd: cmd, uncounted: true})
				return
			}
			if errorReply(r) {
				st.errors.Add(1)
			}
			cmd.Complete(r)
			return
		}
		broken = err
		hit = append(hit, hitCmd{cmd: cmd, err: err})
	}
	if len(live) == 1 {
		// A batch of one: Do spares valkey-go's per-pipeline allocations.
		var r valkey.ValkeyResult
		r, retired = c.do(dctx, cmds[0])
		st.done.wait()
		st.commands.Add(1)
		if pipe != nil {
			at = hookbus.Now()
			pipe.back(at)
			st.Hooks.Hold()
			holding = true
		}
		settle(live[0], r)
	} else {
		var results []valkey.ValkeyResult
		results, retired = c.doMulti(dctx, cmds)
		if !watchRole && c.handOff(live, results, pipe) {
			if cancel != nil {
				cancel()
			}
			if n != nil {
				st.succeeded(n, len(live))
			}
			return
		}
		st.done.wait()
		st.commands.Add(uint64(len(live)))
		if pipe != nil {
			at = hookbus.Now()
			pipe.back(at)
			st.Hooks.Hold()
			holding = true
		}
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
	if pipe != nil {
		c.answered(pipe, at, broken)
	}
	if len(hit) > 0 {
		st.errors.Add(uint64(len(hit)))
	}
	keep := c.sortOut(hit)
	if holding {
		st.Hooks.Release()
		holding = false
	}
	if len(moved) > 0 {
		st.commands.Add(-uint64(len(moved)))
	}
	if n == nil {
		return
	}
	if len(moved) > 0 {
		// The server is no longer the primary: what it refused is sent
		// again, first, once the connection reaches the new one.
		keep = append(moved, keep...)
		st.NotPrimary()
	}
	if broken == nil {
		st.succeeded(n, len(live))
		if len(moved) == 0 {
			return
		}
		st.mu.Lock()
		st.broken = true
		st.stash = append(st.stash, keep...)
		st.mu.Unlock()
		c.escalate(ctx, ErrNotPrimary)
		return
	}
	st.Hooks.Emit(hooks.Lost{Node: st.NodeAddr(), Err: broken, Kept: len(keep)})
	// Stash before the breaker hears of the failure: the failure may open
	// it, and the opening fails what is held (FailHeld) then and there.
	st.mu.Lock()
	st.broken = true
	st.stash = append(st.stash, keep...)
	st.mu.Unlock()
	// Retired: the engine's own doing, not the node's; stale: a
	// connection to the node's former server (its failure, handled after
	// a switch's Reset, says nothing about the new one).
	if retired == nil && !st.stale() {
		n.RecordFailure(broken)
	}
	if n.Open() && retired == nil && !st.stale() {
		// Opened, here or by another connection of the node whose
		// FailHeld may have run before the stash above: what is held
		// will not be sent soon either. (Not for a connection to the
		// node's former server: the open state is the former server's,
		// the switch's Reset closes it, and what is held goes to the new
		// one.)
		// Under refuseMu, as FailIfOpen: a Reset since closed the former
		// server's breaker, and what is held goes to the new one.
		n.refuseMu.Lock()
		if n.Open() && !st.stale() {
			err := n.OpenError()
			st.failMu.Lock()
			for _, h := range st.takeStash() {
				h.fail(st, err)
			}
			st.failMu.Unlock()
		}
		n.refuseMu.Unlock()
	}
	c.escalate(ctx, broken)
}

// succeeded records a round trip of n commands that came back without a
// transport error: the breaker's success, the backoff's reset and the
// retry budget's share.
func (s *ConnState) succeeded(n *Node, commands int) {
	n.Breaker.RecordSuccess()
	s.failures.Store(0)
	if p := s.Policy; p != nil {
		p.Budget.Earn(commands)
	}
}

// errorReply reports whether r, a reply read from the server, is an error
// reply (a nil reply is not).
func errorReply(r valkey.ValkeyResult) bool {
	err := r.Error()
	return err != nil && !valkey.IsValkeyNil(err)
}

// handoffMin is the smallest pipeline a busy actor hands to its completer:
// below it, a goroutine start and a wake-up of another processor per
// pipeline cost more than the completions.
const handoffMin = 64

// handOff hands an answered pipeline to the completer (see completer) and
// reports whether it did: when every command got a reply (no transport
// error: those need the actor), the pipeline is big, and about as many
// commands wait in the mailbox as it held, so that the actor has a next
// pipeline to send at once. Otherwise the actor completes it itself, its
// callers woken in time to join the next pipeline (see mailbox's refill).
// The commands are counted first, as run does; hooks' events are as when
// the actor completes the pipeline itself.
func (c *Conn) handOff(live []Command, results []valkey.ValkeyResult, pipe *pipeObs) bool {
	st := c.state
	if len(live) < handoffMin || len(results) != len(live) || st.Mailbox == nil || st.Mailbox.Queued() < len(live)/2 {
		return false
	}
	errs := 0
	for _, r := range results {
		if r.NonValkeyError() != nil {
			return false
		}
		if errorReply(r) {
			errs++
		}
	}
	st.commands.Add(uint64(len(live)))
	if errs > 0 {
		st.errors.Add(uint64(errs))
	}
	h := handoff{cmds: slices.Clone(live), results: results}
	if pipe != nil {
		// As run does inline: the events of the pipeline's commands wake
		// the hook goroutine once (Hold until the completer's Release),
		// and PipelineAnswered follows them.
		at := hookbus.Now()
		pipe.back(at)
		st.Hooks.Hold()
		h.bus = st.Hooks
		if pipe.pipeline {
			ev := pipe.ev
			ev.RTT = at - pipe.start
			h.answered = &ev
		}
	}
	st.done.hand(h)
	return true
}

// notPrimary reports whether cmd, answered r, is kept to be sent again
// because the server is no longer the primary (see ConnState.NotPrimary):
// a READONLY or MASTERDOWN reply, or, after one in the same pipeline
// (demoted), a read-only command the former primary answered (resent so
// that it does not complete ahead of an earlier write of the pipeline).
// A kept command is renewed (valkey-go recycled it) and counted.
func (c *Conn) notPrimary(cmd Command, r valkey.ValkeyResult, demoted *bool) bool {
	if isNotPrimary(r.Error()) {
		*demoted = true
	} else if cc := cmd.Cmd(); !*demoted || !cc.IsReadOnly() {
		return false
	}
	rs, ok := cmd.(Resendable)
	if !ok || !rs.Resendable() || rs.Redirects() >= c.state.MaxResends || cmd.Context().Err() != nil {
		return false
	}
	rs.Renew()
	rs.Redirected()
	return true
}

// isNotPrimary reports whether err is a READONLY or MASTERDOWN reply.
func isNotPrimary(err error) bool {
	ve, ok := valkey.IsValkeyErr(err)
	if !ok {
		return false
	}
	msg := ve.Error()
	return strings.HasPrefix(msg, "READONLY") || strings.HasPrefix(msg, "MASTERDOWN")
}

// hitCmd is a command of a batch that a transport error hit.
type hitCmd struct {
	cmd   Command
	err   error
	keep  bool
	spent bool // repeatable, refused by the retry budget alone
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
	// barrierSpent: the barrier is a write the spent budget kept from
	// being resent; the repeatable commands it holds back fail for the
	// budget too, and say so.
	barrier, barrierSpent, kept := false, false, 0
	for i := len(hit) - 1; i >= 0; i-- {
		h := &hit[i]
		if !barrier {
			if h.keep, h.spent = c.retry(h.cmd, h.err); h.keep {
				kept++
				continue
			}
		} else if barrierSpent && !policies.NotSent(h.err) && policies.Repeatable(h.cmd.Context(), h.cmd.Cmd()) {
			h.spent = true
		}
		if cmd := h.cmd.Cmd(); !barrier && !policies.NotSent(h.err) && !cmd.IsReadOnly() {
			barrier, barrierSpent = true, h.spent // a write that may have run stays behind
		}
	}
	var keep []held
	if kept > 0 {
		keep = make([]held, 0, kept)
	}
	for _, h := range hit {
		if !h.keep {
			err := h.err
			if h.spent {
				err = fmt.Errorf("%w: %w", policies.ErrRetryBudget, err)
			}
			err = c.failure(h.cmd, err)
			if h.spent && errors.Is(err, policies.ErrRetryBudget) {
				c.state.budget.Add(1)
			}
			h.cmd.Fail(err)
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
// alive), have retries left, and either not have been written or be
// repeatable and within the retry budget. A command never written does not
// spend the budget, which bounds the load retries add to a failing server:
// its resend is the first the server sees of it. (It did: a pipeline of
// 1,000 found closed by the server while idle failed up to 990 of them,
// not sent, once the burst of 100 was spent.) Nor does the first resend
// of a command that was written: a lost connection costs its node at most
// one more send of what was in flight on it (a batch, MaxBatchSize
// commands at most), as with valkey-go and go-redis, which resend reads
// without a budget; the budget bounds the attempts after that, on a node
// that keeps failing what is resent. (Before, 900 of 1,000 GETs in flight
// when their connection was cut failed with ErrOutcomeUnknown once the
// engine-wide burst of 100 was spent, where both peers served them all:
// qa-AJ.) spent reports a repeatable command that only the budget kept
// from being resent: its error then names the budget
// (policies.ErrRetryBudget), so that a read failed as an outcome unknown
// says why it was not simply sent again.
func (c *Conn) retry(cmd Command, err error) (keep, spent bool) {
	p := c.state.Policy
	if p == nil || c.state.Node == nil || ended(cmd.Context()) != nil {
		return false, false
	}
	notSent := policies.NotSent(err)
	if !notSent && !policies.Repeatable(cmd.Context(), cmd.Cmd()) {
		return false, false
	}
	if cmd.Attempts() >= p.MaxRetries {
		return false, false
	}
	if !notSent && cmd.Rewrites() > 0 && !p.Budget.Spend(1) {
		return false, true
	}
	cmd.Retrying(!notSent)
	c.state.retries.Add(1)
	return true, false
}

// failure is the error of a command that failed on transport error err and
// is not sent again.
func (c *Conn) failure(cmd Command, err error) error {
	if cerr := ended(cmd.Context()); cerr != nil {
		return cerr
	}
	if policies.NotSent(err) {
		if cmd.Rewrites() == 0 {
			return err
		}
		// This try was not sent, an earlier one was: the error must not
		// match drivers.ErrNotSent (%v, not %w).
		err = fmt.Errorf("%w (this try was not sent: %v)", errWrittenBefore, err)
	}
	c.state.unknown.Add(1)
	return &policies.OutcomeUnknownError{Cause: err}
}

// ended returns ctx's error, or context.DeadlineExceeded when its deadline
// has passed and the timer that ends it has not fired yet (a driver that
// watches the deadline itself, glide, can give up on the round trip in
// between): the caller's deadline, not the transport, ended the command.
// Failure paths only.
func ended(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
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
// Both record the connection used in c.sent (run asks whether Retire took
// it out of service during the call, at a transport error), and return
// the wrap of a connection retired before the call, whose commands they
// fail unsent (see ConnState.Retire).
func (c *Conn) do(ctx context.Context, cmd valkey.Completed) (valkey.ValkeyResult, func(error) error) {
	c.state.inFlight.Add(1)
	defer c.state.inFlight.Add(-1)
	d, wrap := c.sendOn()
	c.sent = d
	if d == nil {
		return notSentRetired, wrap
	}
	return d.Do(ctx, cmd), nil
}

func (c *Conn) doMulti(ctx context.Context, cmds []valkey.Completed) ([]valkey.ValkeyResult, func(error) error) {
	n := int64(len(cmds))
	c.state.inFlight.Add(n)
	defer c.state.inFlight.Add(-n)
	d, wrap := c.sendOn()
	c.sent = d
	if d == nil {
		rs := make([]valkey.ValkeyResult, len(cmds))
		for i := range rs {
			rs[i] = notSentRetired
		}
		return rs, wrap
	}
	return d.DoMulti(ctx, cmds...), nil
}

// retiredNow reports whether Retire took the connection out of service
// (the actor has not reconnected since).
func (c *Conn) retiredNow() bool {
	d, _ := c.sendOn()
	return d == nil
}

// sendOn returns the connection to send on, or nil and the wrap when
// Retire took it out of service.
func (c *Conn) sendOn() (drivers.ValkeyConn, func(error) error) {
	st := c.state
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.Driver != nil && st.Driver == st.retired {
		return nil, st.retiredWrap
	}
	return st.Driver, nil
}

// retiredWrapOf returns the wrap of d if Retire took it out of service.
func (s *ConnState) retiredWrapOf(d drivers.ValkeyConn) func(error) error {
	if d == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d == s.retired {
		return s.retiredWrap
	}
	return nil
}

// errRetired fails, unsent, the commands of a pipeline the actor would
// have started on a connection Retire took out of service: they are kept
// for the new connection.
var errRetired = fmt.Errorf("%w: the connection was retired (the server it reaches is no longer the one to send to)", drivers.ErrNotSent)

var notSentRetired = valkey.NewErrorResult(errRetired)
