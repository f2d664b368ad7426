package valkeygo

import (
	"context"
	"errors"
	"sync"
)

// valkey-go sends blocking commands (and, with no other pool in use,
// pipelines of ClientOption.BlockingPipeline commands or more) on
// connections from a pool of its own (mux.dpool), which keeps them open
// and idle between calls. Its Close closes the pool's idle connections one
// after another (pool.Close), and the close of each sends a PING and waits
// up to 1 s for the reply before it closes the socket (pipe.Close): a Conn
// whose server is stalled took a second to close for each connection it
// ever held in the pool, on top of the second of its first connection
// (measured: four seconds with three pooled). valkey-go has no option to
// close without that wait (only its connections without a background
// worker skip it, those of DisableAutoPipelining's pool, which serve every
// command and do not hear a cancelled ctx).
//
// So the driver closes those sockets itself: the calls that may go to the
// pool (blocking commands, large pipelines) pass valkey-go a ctx marked by
// markPooled, which valkey-go hands to the dialer when it opens a pool
// connection for them; the dialer registers the connection in the Conn's
// pooledConns, and Conn.Close closes every registered socket before it
// calls valkey-go's Close. An idle pool connection whose socket is closed
// closes at once (its PING fails), and a blocking call in flight, which
// Close cancels, was failed anyway (Close makes every call return).
// Nothing is lost: the pool's connections carry no pipeline of other
// callers, and Close fails the calls in flight on them by contract.

// pooledKey marks the ctx of a call that valkey-go may send on a
// connection of its pool.
type pooledKey struct{}

// markPooled marks ctx: a connection dialled for a call with it is
// registered in the Conn's pooledConns.
func markPooled(ctx context.Context) context.Context {
	return context.WithValue(ctx, pooledKey{}, true)
}

func isPooled(ctx context.Context) bool {
	return ctx.Value(pooledKey{}) != nil
}

// errPooledClosed fails a pool connection dialled after Close.
var errPooledClosed = errors.New("valkey-go: connection closed")

// pooledConns holds the open connections a Conn dialled for valkey-go's
// pool. The nil value registers nothing.
type pooledConns struct {
	mu     sync.Mutex
	conns  map[*idleConn]struct{}
	closed bool
}

// add registers c; it reports false once closeAll ran (the caller
// closes c).
func (p *pooledConns) add(c *idleConn) bool {
	if p == nil {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	if p.conns == nil {
		p.conns = make(map[*idleConn]struct{})
	}
	p.conns[c] = struct{}{}
	c.pooled = p
	return true
}

// remove unregisters c (idleConn.Close).
func (p *pooledConns) remove(c *idleConn) {
	if p == nil {
		return
	}
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// closeAll closes the sockets of the registered connections and refuses
// later ones. The TCP socket is closed under TLS, without a close_notify
// to a server that may not read it.
func (p *pooledConns) closeAll() {
	if p == nil {
		return
	}
	p.mu.Lock()
	conns := p.conns
	p.conns, p.closed = nil, true
	p.mu.Unlock()
	for c := range conns {
		c.Conn.Close()
	}
}
