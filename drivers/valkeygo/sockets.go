package valkeygo

import (
	"errors"
	"sync"
)

// valkey-go's close of a connection sends a PING and waits up to 1 s for
// its reply before it closes the socket (pipe.Close), and its Client's
// Close closes its connections one after another: the first one, and
// those of the pool it keeps for blocking commands and pipelines of
// ClientOption.BlockingPipeline commands or more (mux.dpool), idle
// between calls. A Conn whose server is stalled took a second to close
// for each connection it ever held (measured: four seconds with three
// pooled), and one whose calls had all returned still took a second,
// whatever the engine's DrainTimeout. valkey-go has no option to close
// without that wait (only its connections without a background worker
// skip it, those of DisableAutoPipelining's pool, which serve every
// command and do not hear a cancelled ctx).
//
// So the driver closes the sockets itself: the dialer registers every
// connection it opens for the Conn in the Conn's openConns (a connection
// takes itself out when closed), and Conn.Close closes every registered
// socket before it calls valkey-go's Close, which then closes each
// connection at once (its PING fails). Close fails the calls in flight by
// contract (drivers.Conn): the engine calls it once its connection actors
// have drained (or DrainTimeout passed), so nothing it waits for is cut.

// errDialClosed fails a connection dialled after Close.
var errDialClosed = errors.New("valkey-go: connection closed")

// openConns holds the open connections a Conn dialled. The nil value
// registers nothing.
type openConns struct {
	mu     sync.Mutex
	conns  map[*idleConn]struct{}
	closed bool
}

// add registers c; it reports false once closeAll ran (the caller
// closes c).
func (p *openConns) add(c *idleConn) bool {
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
	c.open = p
	return true
}

// remove unregisters c (idleConn.Close).
func (p *openConns) remove(c *idleConn) {
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
func (p *openConns) closeAll() {
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

// closeSockets closes the sockets of the registered connections, as
// closeAll, but leaves later ones be: a listening Conn's PING that went
// unanswered (see pingListener).
func (p *openConns) closeSockets() {
	if p == nil {
		return
	}
	p.mu.Lock()
	conns := make([]*idleConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.Conn.Close()
	}
}
