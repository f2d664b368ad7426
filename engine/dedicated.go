package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/policies"
)

// Dedicated runs fn with a connection of its own: every command fn sends
// through c goes on that connection, in order, and no other caller's
// command comes between them. It is for command sequences that change the
// connection's state, which the engine's shared connections refuse
// (ErrConnectionState): MULTI ... EXEC sent by hand, SELECT then commands
// on another database, CLIENT TRACKING, WATCH, AUTH as another user,
// CLIENT SETNAME, CLIENT NO-EVICT, HELLO, RESET, ... It returns fn's
// error, or the error of getting a connection (ErrClosed, ErrCircuitOpen,
// a dial error, ErrPoolExhausted, ctx's error).
//
//	err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
//		if _, err := c.Do(ctx, "SELECT", "1"); err != nil {
//			return err
//		}
//		_, err := c.Do(ctx, "SET", "k", "v") // in database 1
//		return err
//	})
//
// The connection comes from a small pool per node (at most 256 open per
// node, 16 kept idle; more concurrent calls wait, bounded by ctx and by
// Config.DialTimeout, then fail with ErrPoolExhausted) and is
// dialled with the engine's configuration (auth, Config.DB, ClientName,
// TLS, timeouts), with the driver's idle PINGs off (a PING of valkey-go's
// would otherwise join a MULTI left open for a second). When fn returns,
// the connection is put back as it was dialled: one round trip of RESET
// (which ends MULTI, WATCH, CLIENT TRACKING, READONLY, NO-EVICT, ... and
// selects database 0 as the default user), then HELLO 3 with the
// configured user, password and client name, and SELECT Config.DB (when
// ctx has ended by then, in the background on a context of its own bounded
// to a second: Dedicated returns at once). It is closed instead, and never
// reused, when that fails, when a command on it had a transport error,
// when fn sent a command whose
// effect RESET does not undo everywhere (CLIENT NO-EVICT, NO-TOUCH,
// SETINFO, CAPA), or when fn panics (the panic goes on after the
// connection is closed). RESET needs Valkey, or Redis 6.2 or later;
// without it every connection is closed after use.
//
// In standalone mode the connection goes to the configured node; in
// cluster mode to a primary (use DedicatedFor to choose the node serving a
// key); in sentinel mode to the primary, and while a failover is held a
// command waits for its end (after WAIT for the replicas, so that what
// the connection wrote is not lost): it fails unsent with an error
// matching ErrNotPrimary when the primary changed meanwhile, as do the
// later ones (docs/sentinel.md). No redirect is followed on it: a MOVED
// or ASK reply is returned as a *ServerError (and has the engine reload
// its slot map).
//
// Commands whose replies do not come one per command cannot run on it
// either (the SUBSCRIBE family, MONITOR, CLIENT REPLY OFF|SKIP, SYNC,
// PSYNC, REPLCONF): c refuses them with a *ConnectionStateError, sending
// nothing. Each command on it is bounded by Config.ReadTimeout (or its
// ctx's deadline, when earlier; a cancelled ctx ends it too, closing the
// connection): a blocking command (BLPOP, XREAD BLOCK,
// ...) must have a shorter server timeout, or the connection fails with
// a timeout (and is closed afterwards).
//
// Dedicated is safe for concurrent use; each call has its own connection.
// c is valid only while fn runs: afterwards its methods fail with
// ErrInvalidArgument. Close lets a call in progress on c be answered
// within Config.DrainTimeout (not a blocking command), then closes the
// connection: a call cut then fails with an error matching
// ErrOutcomeUnknown, later calls with ErrClosed, unsent. When the pooled
// connection is found closed by the server before fn's first command is
// written on it (a restart or CLIENT KILL while it was idle), that command
// goes out on a new connection instead.
func (e *Engine) Dedicated(ctx context.Context, fn func(c *DedicatedConn) error) error {
	return e.dedicated(ctx, "", false, fn)
}

// DedicatedFor is Dedicated on the node that serves key: in cluster mode
// the primary that owns key's slot (commands for keys of other slots get
// MOVED); in standalone mode it is Dedicated.
func (e *Engine) DedicatedFor(ctx context.Context, key string, fn func(c *DedicatedConn) error) error {
	return e.dedicated(ctx, key, true, fn)
}

func (e *Engine) dedicated(ctx context.Context, key string, keyed bool, fn func(c *DedicatedConn) error) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if e.closed.Load() {
		return ErrClosed // before the argument checks, as every call's
	}
	if fn == nil {
		return fmt.Errorf("%w: Dedicated needs a function", ErrInvalidArgument)
	}
	if err := e.sendable(ctx); err != nil {
		return err
	}
	if err := e.settled(ctx); err != nil { // sentinel mode: a failover is held
		return err
	}
	var addr string
	var err error
	if keyed {
		addr, err = e.addrOf(key)
	} else {
		addr, err = e.txAddr(-1, "")
	}
	if err != nil {
		return err
	}
	conn, err := e.ded.get(e, ctx, addr)
	if err != nil {
		return err
	}
	c := &DedicatedConn{e: e, conn: conn, addr: addr}
	finished := false
	defer func() {
		if !finished { // fn panicked: the connection's state is unknown
			c.release(ctx, false)
		}
	}()
	err = fn(c)
	finished = true
	c.release(ctx, true)
	return err
}

// DedicatedConn is the connection Engine.Dedicated lends to its function.
// Its methods are safe for concurrent use, but commands sent from several
// goroutines at once run in an order of their own: send a sequence from
// one goroutine. It is valid only while that function runs.
type DedicatedConn struct {
	e    *Engine
	addr string

	mu     sync.Mutex         // held for each round trip
	conn   drivers.ValkeyConn // nil once given back
	used   bool               // a command was sent: RESET before reuse
	sticky bool               // a command was sent whose effect RESET does not undo: close
	broken error              // the transport error that made conn unusable
}

// errDedicatedDone fails calls on a DedicatedConn after its function
// returned.
var errDedicatedDone = fmt.Errorf("%w: DedicatedConn used after its Dedicated function returned", ErrInvalidArgument)

// errDedicatedNil fails the calls on a nil *DedicatedConn.
var errDedicatedNil = fmt.Errorf("%w: a nil *DedicatedConn (use the one Dedicated passes to its function)", ErrNotCreated)

// Addr returns the address of the node the connection is to ("" for a nil
// *DedicatedConn).
func (c *DedicatedConn) Addr() string {
	if c == nil {
		return ""
	}
	return c.addr
}

// Do sends one command (its name and arguments, as the server expects
// them) and waits for its reply. Error replies return a *ServerError, a
// nil reply a Reply whose IsNil is true, as Engine.Do. A transport error
// (the connection failed, ctx ended while the command was on its way)
// returns an error matching ErrOutcomeUnknown when the command may have
// run, and makes every later call fail at once: the connection is closed
// when the function returns. Commands whose replies do not come one per
// command (SUBSCRIBE, MONITOR, CLIENT REPLY OFF, ...) fail with a
// *ConnectionStateError, unsent.
func (c *DedicatedConn) Do(ctx context.Context, name string, args ...string) (Reply, error) {
	if name == "" {
		return Reply{}, fmt.Errorf("%w: Do needs a command name", ErrInvalidArgument)
	}
	sticky, err := checkDedicated(name, args)
	if err != nil {
		return Reply{}, err
	}
	rs, err := c.round(ctx, sticky, func(b valkey.Builder) []valkey.Completed {
		return []valkey.Completed{b.Arbitrary(name).Args(args...).Build()}
	})
	if err != nil {
		return Reply{}, err
	}
	v, err := decodeReply(rs[0])
	err = replyError(&rs[0], err)
	c.redirected(err)
	return v, err
}

// DoMulti sends cmds, each a command name and its arguments, as one
// pipeline and waits for every reply: one Reply per command, in order.
// It returns the first error in command order: a command's error reply
// (a *ServerError, which that command's Reply.Err also returns; the other
// commands ran) or a transport error (as for Do; the Replies are then
// nil). Nothing is sent when a command is empty or refused (see Do). A
// pipeline longer than Config.MaxBatchSize goes out in parts, on this
// connection.
func (c *DedicatedConn) DoMulti(ctx context.Context, cmds ...[]string) ([]Reply, error) {
	sticky := false
	for _, cmd := range cmds {
		if len(cmd) == 0 || cmd[0] == "" {
			return nil, fmt.Errorf("%w: DoMulti needs a command name in every command", ErrInvalidArgument)
		}
		s, err := checkDedicated(cmd[0], cmd[1:])
		if err != nil {
			return nil, err
		}
		sticky = sticky || s
	}
	if len(cmds) == 0 {
		return nil, nil
	}
	rs, err := c.round(ctx, sticky, func(b valkey.Builder) []valkey.Completed {
		out := make([]valkey.Completed, len(cmds))
		for i, cmd := range cmds {
			out[i] = b.Arbitrary(cmd...).Build()
		}
		return out
	})
	if err != nil {
		return nil, err
	}
	replies := make([]Reply, len(rs))
	var first error
	for i := range rs {
		msg, err := rs[i].ToMessage()
		replies[i] = Reply{msg}
		if err != nil && !valkey.IsValkeyNil(err) && first == nil {
			first = msgError(&msg, err)
		}
		c.redirected(replies[i].Err())
	}
	return replies, first
}

// round sends the commands build returns on the connection, in parts of
// at most MaxPipeline (valkey-go sends a longer pipeline on a connection
// of its own), and returns their results, or the transport error that
// ended it. sticky marks the connection as not reusable (checkDedicated).
func (c *DedicatedConn) round(ctx context.Context, sticky bool, build func(valkey.Builder) []valkey.Completed) ([]valkey.ValkeyResult, error) {
	if c == nil {
		return nil, errDedicatedNil // qa-AN AN5: it panicked
	}
	if ctx == nil {
		ctx = context.Background()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return nil, errDedicatedDone
	}
	// Refused unsent: the connection failed earlier, ctx has ended, or a
	// sentinel failover held (WAIT first, then wait for its end) failed.
	// As a command refused on any other path, each reaches the command
	// hooks, failed.
	var err error
	if c.broken != nil {
		err = fmt.Errorf("vactor: dedicated connection failed earlier: %w", c.broken)
	} else if err = ctx.Err(); err == nil {
		if err = c.e.ded.holdLent(ctx, c.conn, c.addr, c.used); errors.Is(err, ErrNotPrimary) {
			c.broken = err
		}
	}
	if err != nil {
		if c.e.bus.WantsCommands() {
			c.e.refused(ctx, c.addr, err, build(c.conn.B())...)
		}
		return nil, err
	}
	first := !c.used // the connection holds no state of fn's yet
	cmds := build(c.conn.B())
	c.used = true
	c.sticky = c.sticky || sticky
	var obs []func(error) // the command hooks' PostExecution, one per command
	if c.e.bus.WantsCommands() {
		obs = make([]func(error), len(cmds))
		for i, cmd := range cmds {
			var cctx context.Context
			cctx, obs[i] = c.e.fireBlocking(ctx, c.addr, cmd)
			if len(cmds) == 1 {
				ctx = cctx // a lone command is sent under its hooks' context
			}
		}
	}
	if err := ctx.Err(); err != nil {
		// The hooks' context for the command had ended: nothing sent, the
		// connection kept (it was taken for a command written and lost,
		// and the connection thrown away).
		for _, done := range obs {
			done(err)
		}
		return nil, err
	}
	rs, err := c.send(ctx, cmds)
	if err != nil && first && len(rs) == 0 && policies.NotSent(err) && ctx.Err() == nil && c.swap(ctx) {
		// The pooled connection was dead (the server closed it while it
		// was idle: a restart, CLIENT KILL, a timeout) and nothing was
		// written: once more on a new one, as the connection actors do.
		rs, err = c.send(ctx, build(c.conn.B()))
	}
	if err != nil {
		c.broken = err
		if !errors.Is(err, ErrClosed) && !policies.NotSent(err) {
			// Written (or maybe): a Close that cut it after the drain
			// included, so the caller does not take it for unsent.
			err = &policies.OutcomeUnknownError{Cause: err}
			c.e.unknown.Add(uint64(len(cmds))) // for Stats
		}
		for _, done := range obs {
			done(err)
		}
		return nil, err
	}
	for i, done := range obs {
		_, err := decodeReply(rs[i])
		done(replyError(&rs[i], err))
	}
	return rs, nil
}

// send sends cmds on the connection in parts of at most MaxPipeline
// (valkey-go sends a longer pipeline on a connection of its own) and
// returns their results, or the results of the parts answered before the
// transport error that ended it, and that error.
func (c *DedicatedConn) send(ctx context.Context, cmds []valkey.Completed) ([]valkey.ValkeyResult, error) {
	part := max(c.e.opts.MaxPipeline, 1)
	rs := make([]valkey.ValkeyResult, 0, len(cmds))
	for from := 0; from < len(cmds); from += part {
		got := c.e.ded.callMulti(ctx, c.conn, cmds[from:min(from+part, len(cmds))]...)
		for _, r := range got {
			if err := r.NonValkeyError(); err != nil {
				return rs, err
			}
		}
		rs = append(rs, got...)
	}
	return rs, nil
}

// swap replaces the connection, found dead before fn's first command
// was written on it, by another of the pool or a new one; it reports
// whether it did (the dead one is closed either way).
func (c *DedicatedConn) swap(ctx context.Context) bool {
	c.e.ded.put(c.addr, c.conn, false)
	c.e.ded.dropIdle(c.addr) // the others likely are dead too
	conn, err := c.e.ded.get(c.e, ctx, c.addr)
	if err != nil {
		return false // c.conn, closed, fails the call and is not put back twice
	}
	c.conn = conn
	return true
}

// redirected has the slot map reloaded after a MOVED or ASK reply.
func (c *DedicatedConn) redirected(err error) {
	if err != nil && c.e.cl != nil && isRedirect(err) {
		c.e.cl.refresh()
	}
}

// release gives the connection back to the pool, clean, or closes it.
// It waits for a call in progress on another goroutine.
func (c *DedicatedConn) release(ctx context.Context, ok bool) {
	c.mu.Lock()
	conn := c.conn
	c.conn = nil
	healthy := ok && c.broken == nil && !c.sticky
	if healthy && c.used && conn != nil {
		if ctx.Err() != nil {
			// The caller's ctx ended: Dedicated returns now, the RESET
			// runs on a goroutine (Close waits for it).
			c.mu.Unlock()
			c.resetLater(ctx, conn)
			return
		}
		healthy = c.e.resetConn(ctx, conn)
	}
	c.mu.Unlock()
	if conn != nil {
		c.e.ded.put(c.addr, conn, healthy)
	}
}

// resetLater resets conn (resetConn) on a goroutine of its own, on a
// context with ctx's values bounded by cleanupTimeout, and gives it back
// (closed when the reset failed or the pool closed meanwhile): a
// Dedicated call whose ctx ended keeps its connection for the next one
// without waiting for the RESET.
func (c *DedicatedConn) resetLater(ctx context.Context, conn drivers.ValkeyConn) {
	e, addr := c.e, c.addr
	if e.ded.enter() != nil { // the pool closed: it closes conn
		e.ded.put(addr, conn, false)
		return
	}
	go func() {
		defer e.ded.leave()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		e.ded.put(addr, conn, e.resetConn(cctx, conn))
	}()
}

// resetConn puts conn back in the state it was dialled in: RESET, then
// the configured user, protocol, client name and database. It reports
// whether every step succeeded.
func (e *Engine) resetConn(ctx context.Context, conn drivers.ValkeyConn) bool {
	if ctx.Err() != nil {
		return false
	}
	b := conn.B()
	o := *e.opts
	user, pass, err := e.credentials(ctx)
	if err != nil {
		return false
	}
	hello := []string{"HELLO", "3"}
	switch {
	case user != "":
		hello = append(hello, "AUTH", user, pass)
	case pass != "":
		hello = append(hello, "AUTH", "default", pass)
	}
	if o.ClientName != "" {
		hello = append(hello, "SETNAME", o.ClientName)
	}
	cmds := []valkey.Completed{b.Arbitrary("RESET").Build(), b.Arbitrary(hello...).Build()}
	if o.DB != 0 {
		cmds = append(cmds, b.Arbitrary("SELECT", strconv.Itoa(o.DB)).Build())
	}
	for _, r := range e.ded.callMulti(ctx, conn, cmds...) {
		if r.Error() != nil {
			return false
		}
	}
	return true
}

// callMulti sends cmds on conn as one pipeline, counted by
// enterCall/leaveCall.
func (p *txConns) callMulti(ctx context.Context, conn drivers.ValkeyConn, cmds ...valkey.Completed) []valkey.ValkeyResult {
	answering, err := p.enterCall(cmds...)
	if err != nil {
		rs := make([]valkey.ValkeyResult, len(cmds))
		for i := range rs {
			rs[i] = valkey.NewErrorResult(err)
		}
		return rs
	}
	defer p.leaveCall(answering)
	stop := p.cutOnDone(ctx, conn)
	var rs []valkey.ValkeyResult
	if len(cmds) == 1 {
		rs = []valkey.ValkeyResult{conn.Do(ctx, cmds[0])}
	} else {
		rs = conn.DoMulti(ctx, cmds...)
	}
	if cerr := stop(); cerr != nil {
		rs = cutResults(rs, cerr)
	}
	return rs
}
