package engine

// The pool of dedicated transaction connections, per node.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
)

// Transaction connections: at most txMaxOpen per node, of which up to
// txMaxIdle are kept open between uses; more concurrent transactions on
// one node wait (bounded by their context) for a connection to come back.
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
	freed   chan struct{}                    // closed (and replaced) when a connection is given back
	tracked bool
	closed  bool
	ops     sync.WaitGroup // calls on the connections, and dials, in progress
	// noIdlePing dials connections on which the driver sends nothing of
	// its own (drivers.Options.NoIdlePing): set before first use.
	noIdlePing bool

	execs, aborted, failed atomic.Uint64 // EXECs that ran, aborted (WATCH), failed: for Stats
}

// enter counts a call on a connection; it fails once the pool is closed.
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

// call sends one command on conn, counted by enter/leave.
func (p *txConns) call(ctx context.Context, conn drivers.ValkeyConn, cmd valkey.Completed) valkey.ValkeyResult {
	if err := p.enter(); err != nil {
		return valkey.NewResult(valkey.ValkeyMessage{}, err)
	}
	defer p.leave()
	return conn.Do(ctx, cmd)
}

// get returns an idle connection to addr, or dials one, or waits for one
// when txMaxOpen are in use.
func (p *txConns) get(e *Engine, ctx context.Context, addr string) (drivers.ValkeyConn, error) {
	if err := e.nodeOpenError(addr); err != nil {
		return nil, err
	}
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
			if err := p.call(ctx, c, c.B().Ping().Build()).Error(); err == nil {
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
		select {
		case <-freed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// dial opens a connection for get; the caller counted it in count and ops.
func (p *txConns) dial(e *Engine, ctx context.Context, addr string) (drivers.ValkeyConn, error) {
	defer p.ops.Done()
	dctx, cancel := context.WithTimeout(ctx, e.cfg.DialTimeout)
	conn, err := e.dialConn(dctx, addr, p.noIdlePing)
	cancel()
	p.mu.Lock()
	if err == nil && p.closed {
		err = ErrClosed
		_ = conn.Close()
	}
	if err != nil {
		p.count[addr]--
		p.signalLocked()
		p.mu.Unlock()
		return nil, err
	}
	p.open[conn] = addr
	p.mu.Unlock()
	return conn, nil
}

// put gives conn back: kept idle when healthy and there is room, closed
// otherwise.
func (p *txConns) put(addr string, conn drivers.ValkeyConn, healthy bool) {
	p.mu.Lock()
	if _, ok := p.open[conn]; !ok { // closed by stop
		p.mu.Unlock()
		return
	}
	if healthy && !p.closed && len(p.idle[addr]) < txMaxIdle {
		p.idle[addr] = append(p.idle[addr], conn)
		p.since[conn] = time.Now()
		p.signalLocked()
		p.mu.Unlock()
		return
	}
	delete(p.open, conn)
	delete(p.since, conn)
	p.count[addr]--
	p.signalLocked()
	p.mu.Unlock()
	_ = conn.Close()
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
	p.signalLocked()
	p.mu.Unlock()
	for _, c := range l {
		_ = c.Close()
	}
}

func (p *txConns) signalLocked() {
	if p.freed != nil {
		close(p.freed)
		p.freed = nil
	}
}

// stop implements service: it closes every connection, idle or in use,
// fails later calls with ErrClosed, and waits for the calls in progress
// (they return once their connection is closed).
func (p *txConns) stop(error) {
	p.mu.Lock()
	p.closed = true
	conns := make([]drivers.ValkeyConn, 0, len(p.open))
	for c := range p.open {
		conns = append(conns, c)
	}
	p.open, p.idle = nil, nil
	p.signalLocked()
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	p.ops.Wait()
}
