package engine

// The pool of dedicated transaction connections, per node.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/drivers"
)

// Transaction connections: at most txMaxOpen per node, of which up to
// txMaxIdle are kept open between uses; more concurrent transactions on
// one node wait (bounded by their context and by Config.DialTimeout:
// ErrPoolExhausted) for a connection to come back.
// An idle connection unused for txCheckIdle or longer is checked with a
// PING before a transaction is written on it.
const (
	txMaxIdle   = 16
	txMaxOpen   = 256
	txCheckIdle = time.Second
)

// txConns is the engine's pool of dedicated transaction connections, per
// node address. The zero value is ready; it registers itself with the
// engine's services on first use, so Close closes every connection (idle
// or busy) and waits for the calls on them to return. Safe for concurrent
// use.
type txConns struct {
	mu      sync.Mutex
	idle    map[string][]drivers.ValkeyConn
	open    map[drivers.ValkeyConn]string    // every open connection -> its address
	count   map[string]int                   // open or being dialled, per address
	since   map[drivers.ValkeyConn]time.Time // when an idle connection was given back
	cut     map[drivers.ValkeyConn]struct{}  // closed by the end of a round trip's ctx (cutOnDone): never kept
	freed   chan struct{}                    // closed (and replaced) when a connection is given back
	tracked bool
	closed  bool
	e       *Engine        // set on first use, for keeps
	ops     sync.WaitGroup // calls on the connections, and dials, in progress
	// answering counts the calls in progress that wait for a prompt reply
	// (not a blocking command's): Close gives them the engine's drain
	// before it closes their connections (stop). drained, when set, is
	// closed when it falls to 0.
	answering int
	drained   chan struct{}
	// noIdlePing dials connections on which the driver sends nothing of
	// its own (drivers.Options.NoIdlePing): set before first use.
	noIdlePing bool

	execs, aborted, failed atomic.Uint64 // EXECs that ran, aborted (WATCH), failed: for Stats
	holdWaits              atomic.Uint64 // WAITs sent at held sentinel failovers (tests; tx_hold.go)
}

// enter counts a call on a connection (or work that closes one); it
// fails once the pool is closed.
func (p *txConns) enter() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	p.ops.Add(1)
	return nil
}

func (p *txConns) leave() { p.ops.Done() }

// enterCall is enter for a round trip of cmds, which Close lets finish
// within the engine's drain (Config.DrainTimeout) unless one of them
// blocks (BLPOP, XREAD BLOCK, WAIT, ...): a round trip already written
// is answered rather than cut, which would leave its outcome unknown.
// leaveCall(answering) ends it.
func (p *txConns) enterCall(cmds ...valkey.Completed) (answering bool, err error) {
	answering = true
	for _, c := range cmds {
		if blocks(c) {
			answering = false
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false, ErrClosed
	}
	p.ops.Add(1)
	if answering {
		p.answering++
	}
	return answering, nil
}

// blocks reports whether cmd may wait on the server as long as its
// timeout says (BLPOP, XREAD ... BLOCK, WAIT, ...), however it was built
// (a Dedicated call's Arbitrary commands are not marked).
func blocks(cmd valkey.Completed) bool {
	if cmd.IsBlock() {
		return true
	}
	args := cmd.Commands()
	if len(args) == 0 {
		return false
	}
	if _, ok := blockingKey(args[0], args[1:]); ok {
		return true
	}
	switch strings.ToUpper(args[0]) {
	case "WAIT", "WAITAOF":
		return true
	}
	return false
}

func (p *txConns) leaveCall(answering bool) {
	if answering {
		p.mu.Lock()
		if p.answering--; p.answering == 0 && p.drained != nil {
			close(p.drained)
			p.drained = nil
		}
		p.mu.Unlock()
	}
	p.ops.Done()
}

// call sends one command on conn, counted by enterCall/leaveCall.
func (p *txConns) call(ctx context.Context, conn drivers.ValkeyConn, cmd valkey.Completed) valkey.ValkeyResult {
	answering, err := p.enterCall(cmd)
	if err != nil {
		return valkey.NewResult(valkey.ValkeyMessage{}, err)
	}
	defer p.leaveCall(answering)
	stop := p.cutOnDone(ctx, conn)
	r := conn.Do(ctx, cmd)
	if cerr := stop(); cerr != nil {
		r = cutResult(r, cerr)
	}
	return r
}

// cutOnDone makes the end of ctx close conn while a round trip runs on
// it, and returns the function to call once the round trip returned: it
// reports ctx's error when ctx closed conn, nil otherwise. valkey-go's
// synchronous round trip is bounded by a ctx's deadline but does not
// hear its cancellation: without this, a Tx, Watch or DedicatedConn call
// whose ctx was cancelled (an HTTP request's, when its client went away)
// returned only when Config.ReadTimeout closed a silent connection. A
// connection so closed is never kept by the pool (give), also when its
// round trip had completed just before.
func (p *txConns) cutOnDone(ctx context.Context, conn drivers.ValkeyConn) func() error {
	if ctx.Done() == nil {
		return noCut
	}
	if a, ok := conn.(askingConn); ok {
		conn = a.ValkeyConn // the pool's
	}
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(closed)
		p.mu.Lock()
		if p.cut == nil {
			p.cut = make(map[drivers.ValkeyConn]struct{})
		}
		p.cut[conn] = struct{}{}
		p.mu.Unlock()
		_ = conn.Close()
	})
	return func() error {
		if stop() {
			return nil
		}
		<-closed
		return ctx.Err()
	}
}

func noCut() error { return nil }

// cutResult is r, whose connection cutOnDone closed when its ctx ended
// with cerr: a transport error becomes one that matches cerr (and says
// why the connection closed); a reply read before the close is kept.
func cutResult(r valkey.ValkeyResult, cerr error) valkey.ValkeyResult {
	if err := r.NonValkeyError(); err != nil && !errors.Is(err, cerr) {
		return valkey.NewErrorResult(fmt.Errorf("%w (the connection was closed to end the round trip: %v)", cerr, err))
	}
	return r
}

// cutResults is cutResult for each of rs.
func cutResults(rs []valkey.ValkeyResult, cerr error) []valkey.ValkeyResult {
	for i := range rs {
		rs[i] = cutResult(rs[i], cerr)
	}
	return rs
}

// askCall is call, with ASKING sent first when asking (see Engine.watch):
// cmd's reply (an ASKING refused, by an ACL user without it, changes
// nothing for cmd, which ran: its reply says how).
func (p *txConns) askCall(ctx context.Context, conn drivers.ValkeyConn, asking bool, cmd valkey.Completed) valkey.ValkeyResult {
	if !asking {
		return p.call(ctx, conn, cmd)
	}
	return p.call(ctx, askingConn{conn}, cmd)
}

// get returns an idle connection to addr, or dials one, or waits for one
// when txMaxOpen are in use: up to Config.DialTimeout (a wait for a
// connection is bounded as a dial is), then it fails with
// ErrPoolExhausted. The bound holds also for a ctx without deadline: a
// caller that waits while holding a connection of the pool (a Watch
// function calling Watch, Tx.Exec or Dedicated) would otherwise wait for
// ever once every connection is held so.
func (p *txConns) get(e *Engine, ctx context.Context, addr string) (drivers.ValkeyConn, error) {
	if err := e.nodeOpenError(addr); err != nil {
		return nil, err
	}
	if sn := e.sn; sn != nil {
		// Sentinel mode: never lend a connection to a former primary (a
		// caller that picked addr before a switch), which acknowledges
		// writes until the sentinels reconfigure it, and loses them then.
		if now := sn.primary(); addr != now {
			return nil, fmt.Errorf("%w: %s is no longer the primary (now %s)", ErrNotPrimary, addr, now)
		}
	}
	var wait *time.Timer // the bound of the wait for a connection
	defer func() {
		if wait != nil {
			wait.Stop()
		}
	}()
	for {
		p.mu.Lock()
		if p.closed || e.closed.Load() {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		if !p.tracked {
			if err := e.track(p); err != nil {
				p.mu.Unlock()
				return nil, err
			}
			p.tracked = true
			p.e = e
			p.idle = map[string][]drivers.ValkeyConn{}
			p.open = map[drivers.ValkeyConn]string{}
			p.count = map[string]int{}
			p.since = map[drivers.ValkeyConn]time.Time{}
		}
		if l := p.idle[addr]; len(l) > 0 {
			c := l[len(l)-1]
			l[len(l)-1] = nil
			p.idle[addr] = l[:len(l)-1]
			since := p.since[c]
			p.mu.Unlock()
			if time.Since(since) < txCheckIdle {
				return c, nil
			}
			// Idle for a while: the server may have closed it (restart,
			// timeout). A transaction written on a dead connection would
			// end with an unknown outcome, so check it first.
			if err := p.call(ctx, c, c.B().Ping().Build()).Error(); err == nil || actors.PingRefused(err) {
				return c, nil
			} else if ctx.Err() != nil {
				p.put(addr, c, false)
				return nil, ctx.Err()
			}
			p.put(addr, c, false)
			p.dropIdle(addr) // the others likely are broken too
			continue
		}
		if p.count[addr] < txMaxOpen {
			p.count[addr]++
			p.ops.Add(1)
			p.mu.Unlock()
			return p.dial(e, ctx, addr)
		}
		if p.freed == nil {
			p.freed = make(chan struct{})
		}
		freed := p.freed
		p.mu.Unlock()
		if wait == nil {
			wait = time.NewTimer(e.cfg.DialTimeout)
		}
		select {
		case <-freed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wait.C:
			return nil, fmt.Errorf("%w: all %d connections to %s were in use for %v (Config.DialTimeout)",
				ErrPoolExhausted, txMaxOpen, addr, e.cfg.DialTimeout)
		}
	}
}

// dial opens a connection for get; the caller counted it in count and ops.
func (p *txConns) dial(e *Engine, ctx context.Context, addr string) (drivers.ValkeyConn, error) {
	defer p.ops.Done()
	dctx, cancel := context.WithTimeout(ctx, e.cfg.DialTimeout)
	stop := context.AfterFunc(e.closing, cancel) // Close ends a dial in progress
	// Its callers keep WATCH, MULTI and SELECT state across calls.
	conn, err := e.dialConn(dctx, addr, p.noIdlePing, true)
	stop()
	cancel()
	p.mu.Lock()
	if p.closed || err != nil && e.closing.Err() != nil {
		if err == nil {
			_ = conn.Close()
		}
		err = ErrClosed
	}
	if err != nil {
		p.count[addr]--
		p.forgetLocked(addr)
		p.signalLocked()
		p.mu.Unlock()
		switch cerr := ctx.Err(); {
		case cerr == nil:
			err = unsentDial(err) // nothing was sent
		case !errors.Is(err, cerr) && !errors.Is(err, ErrClosed):
			// ctx ended during the dial, which failed its own way (glide's
			// cannot be cut: "dial tcp ...: i/o timeout", qa-AS AS3): the
			// caller's ctx's error first.
			err = fmt.Errorf("%w: %w", cerr, err)
		}
		return nil, err
	}
	p.open[conn] = addr
	p.mu.Unlock()
	return conn, nil
}

// put gives conn back after a loan: kept idle when healthy and there is
// room, closed otherwise; while a sentinel failover is held, it sends
// WAIT first (returned).
func (p *txConns) put(addr string, conn drivers.ValkeyConn, healthy bool) {
	if healthy && p.returned(addr, conn) {
		return
	}
	p.give(addr, conn, healthy)
}

// give puts conn back in the pool: kept idle when healthy and there is
// room (and its node is one the pool keeps), closed otherwise.
func (p *txConns) give(addr string, conn drivers.ValkeyConn, healthy bool) {
	p.mu.Lock()
	if _, cut := p.cut[conn]; cut { // closed by cutOnDone
		delete(p.cut, conn)
		healthy = false
	}
	if _, ok := p.open[conn]; !ok { // closed by stop
		p.mu.Unlock()
		return
	}
	if healthy && !p.closed && len(p.idle[addr]) < txMaxIdle && p.e.keeps(addr) {
		p.idle[addr] = append(p.idle[addr], conn)
		p.since[conn] = time.Now()
		p.signalLocked()
		p.mu.Unlock()
		return
	}
	delete(p.open, conn)
	delete(p.since, conn)
	p.count[addr]--
	p.forgetLocked(addr)
	p.signalLocked()
	p.mu.Unlock()
	_ = conn.Close()
}

// forgetLocked drops the entries of addr once no connection to it is
// open or being dialled, so that the maps do not grow with every address
// the pool ever served.
func (p *txConns) forgetLocked(addr string) {
	if p.count[addr] <= 0 {
		delete(p.count, addr)
		delete(p.idle, addr)
	}
}

// dropIdle closes the idle connections to addr (after one was found
// broken: the others likely are too).
func (p *txConns) dropIdle(addr string) {
	p.mu.Lock()
	l := p.idle[addr]
	delete(p.idle, addr)
	for _, c := range l {
		delete(p.open, c)
		delete(p.since, c)
		p.count[addr]--
	}
	p.forgetLocked(addr)
	p.signalLocked()
	if len(l) == 0 {
		p.mu.Unlock()
		return
	}
	p.ops.Add(1) // Close waits for these closes
	p.mu.Unlock()
	// On a goroutine, all at once, as retire does: the caller, about to
	// dial a new connection, does not wait a stalled node's second per
	// idle connection.
	go func() {
		defer p.ops.Done()
		closeAll(l)
	}()
}

// retire closes the idle connections to the nodes that are no longer
// the primary of anything (keeps), so that the pool does not keep, until
// Close, up to txMaxIdle connections per address that ever was a primary
// (failovers, nodes removed or replaced at new addresses), nor hands them
// out again. It runs when the engine's view of the primaries changed (a
// new cluster slot map, a sentinel switch); a connection lent at the time
// is closed when it is given back (put). The connections are closed on a
// goroutine of their own (a driver's Close may wait for a round trip),
// all at once (closeAll): retire does not block its caller, the topology
// actor, and Close, which waits for these closes, waits for a stalled
// node's second once, not once per connection.
func (p *txConns) retire() {
	p.mu.Lock()
	if p.e == nil || p.closed {
		p.mu.Unlock()
		return
	}
	var drop []drivers.ValkeyConn
	for addr, l := range p.idle {
		if p.e.keeps(addr) {
			continue
		}
		delete(p.idle, addr)
		for _, c := range l {
			delete(p.open, c)
			delete(p.since, c)
			p.count[addr]--
			drop = append(drop, c)
		}
		p.forgetLocked(addr)
	}
	if len(drop) == 0 {
		p.mu.Unlock()
		return
	}
	p.signalLocked()
	p.ops.Add(1) // Close waits for these closes
	p.mu.Unlock()
	go func() {
		defer p.ops.Done()
		closeAll(drop)
	}()
}

// closeAll closes conns all at once and returns when every close has
// returned: a close may wait for a stalled server with a driver other
// than valkeygo (see Engine.closeDrivers), which one after another would
// add up with the number of connections.
func closeAll(conns []drivers.ValkeyConn) {
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { _ = c.Close() })
	}
	wg.Wait()
}

// keeps reports whether a dedicated connection to addr may be kept idle
// for later use: in cluster mode addr must be a primary of the current
// slot map, in sentinel mode the primary the engine follows (the
// connections are lent for transactions and Dedicated calls, which go to
// primaries only); in standalone mode it always may.
func (e *Engine) keeps(addr string) bool {
	switch {
	case e == nil:
		return true
	case e.cl != nil:
		t := e.cl.topo.Load()
		return t == nil || isPrimary(t, addr)
	case e.sn != nil:
		return addr == e.sn.primary()
	}
	return true
}

func (p *txConns) signalLocked() {
	if p.freed != nil {
		close(p.freed)
		p.freed = nil
	}
}

// stop implements service: it fails later calls with ErrClosed, lets the
// round trips in progress (but blocking commands) finish within the
// engine's drain (what is left of Config.DrainTimeout), then closes every
// connection, idle or in use, and waits for the calls still in progress
// (they return once their connection is closed; their commands, written,
// fail with ErrOutcomeUnknown).
func (p *txConns) stop(error) {
	p.mu.Lock()
	p.closed = true
	drained := p.drained // a stop in progress already waits
	if drained == nil && p.answering > 0 && p.e != nil {
		drained = make(chan struct{})
		p.drained = drained
	}
	p.signalLocked()
	p.mu.Unlock()
	if drained != nil {
		if left := p.e.drainLeft(); left > 0 {
			t := time.NewTimer(left)
			select {
			case <-drained:
			case <-t.C:
			}
			t.Stop()
		}
	}
	p.mu.Lock()
	conns := make([]drivers.ValkeyConn, 0, len(p.open))
	for c := range p.open {
		conns = append(conns, c)
	}
	p.open, p.idle = nil, nil
	p.signalLocked()
	p.mu.Unlock()
	closeAll(conns)
	p.ops.Wait()
}
