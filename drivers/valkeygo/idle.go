package valkeygo

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vactor-io/vactor/drivers"
)

// valkey-go bounds a synchronous round trip (syncDo, syncDoMulti) with one
// conn.SetDeadline(now + ConnWriteTimeout), or the caller's ctx deadline
// when that comes first, set before the pipeline is written and kept until
// its last reply is read. A pipeline whose replies take longer than that to
// arrive and decode (1,000 MGETs of 1,000 keys: 70 MB) was failed while
// bytes were still flowing. valkey-go has no option for an idle timeout, so
// the driver dials the connection itself (ClientOption.DialCtxFn) and hands
// valkey-go an idleConn, under TLS when TLS is on, that turns valkey-go's
// default deadline into an idle one:
//
//   - a deadline valkey-go derives from ConnWriteTimeout (now + timeout)
//     becomes "no Read or Write waits longer than timeout": a wait that
//     hits the deadline is given until timeout after it began, and a
//     pipeline that keeps moving bytes runs to its end;
//   - a deadline that comes from the caller's ctx (the driver records the
//     deadline of the call it passes to valkey-go, and valkey-go passes it
//     through unchanged), the zero deadline of blocking commands and of
//     valkey-go's background mode, and any other deadline (a dial's
//     handshake) are kept as set.
//
// When the caller's deadline is later than valkey-go's default, valkey-go
// sets the default; the idle deadline is then capped at the caller's: by
// then every command of the call has expired and nobody waits for it.
//
// The kernel deadline is only moved when it fires (a wait is rarely that
// long), so a round trip costs a time.Now in SetDeadline and in each Read
// and Write (a few tens of ns each; per pipeline, not per command), and
// nothing else: no allocation, no syscall, no timer. Taking the time at
// each Read and Write keeps the bound exact (a wait fails a timeout after
// it began, ±scheduling); counting progress between kernel deadlines
// instead would save those calls but fail up to a re-arm interval late.

// writeChunk is the most an idle-mode Write hands the socket at once, so
// that the time a Write waits is measured from its last progress within
// 128 KiB rather than from the start of a multi-megabyte write.
const writeChunk = 128 << 10

// Modes of an idleConn (idleConn.mode): modeFixed, modeIdle, or a
// positive value, which is modeIdle capped at that time (UnixNano).
const (
	modeFixed int64 = 0  // the deadline in force is kept as set
	modeIdle  int64 = -1 // idle deadline, no cap
)

// idleConn is the net.Conn the driver gives valkey-go: see above. Its
// Read and Write may be called concurrently with each other (valkey-go's
// background reader and writer) and with Close; SetDeadline is called by
// the goroutine that then reads and writes (valkey-go's synchronous path).
type idleConn struct {
	net.Conn
	timeout time.Duration // valkey-go's ConnWriteTimeout, the idle bound
	call    *atomic.Int64 // deadline (UnixNano) of the driver call in progress; 0 if none
	mode    atomic.Int64
	open    *openConns  // where it is registered, if it is (see openConns)
	first   *firstRead  // without TLS, the first bytes read, while dialling (refusal.go)
	head    firstHeader // without TLS, the first reply's header (refusal.go)

	// lastRT is when the last synchronous round trip began (UnixNano, at
	// its SetDeadline); peek asks the next Write to check first that the
	// server has not closed the connection meanwhile (see checkPeer).
	lastRT atomic.Int64
	peek   atomic.Bool
}

// peekGap is the pause between two round trips after which the first
// Write of the next one checks that the server has not closed the
// connection meanwhile. A restart, a failover or CLIENT KILL closes an
// idle connection; nothing reads it until the next round trip (valkey-go's
// synchronous path has no reader, and the keep-alive PING (ping.go) comes
// after a second of silence), which wrote its pipeline into the closed connection
// and read EOF: its commands then failed as possibly run
// (policies.OutcomeUnknownError) though none had reached the server. The
// check is one non-blocking system call, paid only after such a pause.
const peekGap = 10 * time.Millisecond

// errPeerClosed fails the pipeline a Write found the server had closed
// the connection for: nothing was written, so its commands may be sent
// again.
var errPeerClosed = fmt.Errorf("%w: the server had closed the connection (EOF while idle)", drivers.ErrNotSent)

// newDialer returns the ClientOption.DialCtxFn of a Conn: it dials as
// valkey-go would (its Dialer, then TLS with cfg when cfg is not nil) and
// puts an idleConn between TCP and TLS, so that TLS records are read and
// written through it; a TLS connection is an alertConn (tlsalert.go).
//
// With a guard, each TCP connection dialled before the guard finished is
// registered with it, and one dialled after it was aborted is closed.
// With open, each one is registered with it, and one dialled after it
// closed them is closed.
func newDialer(timeout time.Duration, call *atomic.Int64, guard *dialGuard, open *openConns) func(context.Context, string, *net.Dialer, *tls.Config) (net.Conn, error) {
	return func(ctx context.Context, addr string, d *net.Dialer, cfg *tls.Config) (net.Conn, error) {
		if cfg != nil && d.Timeout != 0 { // as tls.Dialer: the timeout bounds the handshake too
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d.Timeout)
			defer cancel()
		}
		if d.KeepAlive < 0 {
			// Off to turn valkey-go's PING off (see ping.go): TCP
			// keep-alive sends no command, so it stays on.
			dd := *d
			dd.KeepAlive = tcpKeepAlive
			d = &dd
		}
		raw, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		first, ok := guard.add(raw)
		if !ok {
			raw.Close()
			return nil, errDialAbandoned
		}
		ic := &idleConn{Conn: raw, timeout: timeout, call: call}
		if cfg == nil {
			ic.first = first
		}
		if !open.add(ic) {
			raw.Close()
			return nil, errDialClosed
		}
		conn := net.Conn(ic)
		if cfg == nil {
			return conn, nil
		}
		if cfg.ServerName == "" { // as tls.Dialer
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				host = addr
			}
			cfg = cfg.Clone()
			cfg.ServerName = host
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			ic.Close()
			return nil, err
		}
		return &alertConn{Conn: tc, first: first}, nil
	}
}

// Close implements net.Conn: it closes the connection and takes it out of
// the openConns it is registered with.
func (c *idleConn) Close() error {
	c.open.remove(c)
	return c.Conn.Close()
}

// SetDeadline sets the deadline and decides, from t, which mode the
// reads and writes up to the next SetDeadline run in.
func (c *idleConn) SetDeadline(t time.Time) error {
	c.mode.Store(c.modeFor(t))
	if !t.IsZero() { // a synchronous round trip begins (see peekGap)
		now := time.Now().UnixNano()
		if prev := c.lastRT.Swap(now); prev != 0 && now-prev > int64(peekGap) {
			c.peek.Store(true)
		}
	}
	return c.Conn.SetDeadline(t)
}

// checkPeer is the check peekGap describes, made once by the first Write
// after a pause.
func (c *idleConn) checkPeer() error {
	if c.peek.Load() && c.peek.Swap(false) && peerClosed(c.Conn) {
		return errPeerClosed
	}
	return nil
}

// SetReadDeadline and SetWriteDeadline are not used by valkey-go (tls.Conn
// uses SetWriteDeadline when closing): their deadline is kept as set.
func (c *idleConn) SetReadDeadline(t time.Time) error {
	c.mode.Store(modeFixed)
	return c.Conn.SetReadDeadline(t)
}

func (c *idleConn) SetWriteDeadline(t time.Time) error {
	c.mode.Store(modeFixed)
	return c.Conn.SetWriteDeadline(t)
}

// modeFor tells valkey-go's default deadline (now + timeout, computed by
// valkey-go a moment before) from the others.
func (c *idleConn) modeFor(t time.Time) int64 {
	if t.IsZero() || c.timeout <= 0 {
		return modeFixed
	}
	dl := t.UnixNano()
	call := c.call.Load()
	if dl == call {
		return modeFixed // the caller's ctx deadline, passed through
	}
	// Not the default but a shorter deadline of valkey-go's own, such as
	// a handshake's (bounded by the dial timeout). Half the timeout leaves
	// room for valkey-go's goroutine being descheduled between computing
	// the default and setting it.
	if t.Before(time.Now().Add(c.timeout / 2)) {
		return modeFixed
	}
	if call > dl {
		return call // the caller's later deadline caps the idle one
	}
	return modeIdle
}

// Read implements net.Conn.
func (c *idleConn) Read(b []byte) (int, error) {
	if c.first != nil {
		n, err := c.read(b)
		c.first.note(b[:n])
		if herr := c.head.check(b[:n]); herr != nil {
			return 0, herr
		}
		return n, err
	}
	return c.read(b)
}

func (c *idleConn) read(b []byte) (int, error) {
	m := c.mode.Load()
	if m == modeFixed {
		return c.Conn.Read(b)
	}
	start := time.Now()
	for {
		n, err := c.Conn.Read(b)
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		if n > 0 { // data and the deadline at once: progress, wait afresh next time
			start = time.Now()
		}
		next, ok := c.extend(m, start)
		if !ok || c.Conn.SetReadDeadline(next) != nil {
			return n, err
		}
		if n > 0 {
			return n, nil
		}
	}
}

// Write implements net.Conn.
func (c *idleConn) Write(b []byte) (int, error) {
	if err := c.checkPeer(); err != nil {
		return 0, err
	}
	m := c.mode.Load()
	if m == modeFixed {
		return c.Conn.Write(b)
	}
	written := 0
	for written < len(b) {
		chunk := b[written:min(len(b), written+writeChunk)]
		start := time.Now()
		for len(chunk) > 0 {
			n, err := c.Conn.Write(chunk)
			written += n
			chunk = chunk[n:]
			if err == nil {
				break
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return written, err
			}
			if n > 0 { // it moved bytes before the deadline: a new wait
				start = time.Now()
			}
			next, ok := c.extend(m, start)
			if !ok || c.Conn.SetWriteDeadline(next) != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// extend returns the deadline of a wait that began at start in mode m,
// and false if it has passed.
func (c *idleConn) extend(m int64, start time.Time) (time.Time, bool) {
	next := start.Add(c.timeout)
	if m > 0 {
		if limit := time.Unix(0, m); limit.Before(next) {
			next = limit
		}
	}
	return next, time.Now().Before(next)
}

// dialGuard ends a Dial's connection attempt when its caller gave up on
// it: valkey.NewClient takes no context, so without it the handshake on a
// silent server ran on until DialTimeout, after Dial had returned (and
// after the engine had closed).
type dialGuard struct {
	mu    sync.Mutex
	conns []net.Conn
	reads []*firstRead // the first bytes each of conns read (refusal.go)
	state int          // guardDialling, guardDone or guardAborted
}

const (
	guardDialling = iota
	guardDone
	guardAborted
)

// errDialAbandoned fails a connection dialled after its Dial gave up.
var errDialAbandoned = errors.New("valkey-go: dial abandoned: its context ended")

// add registers c while the dial is under way, with the record of its
// first read that the connection keeps (nil once the dial is over); it
// reports false once the guard was aborted (the caller closes c). A nil
// guard takes everything.
func (g *dialGuard) add(c net.Conn) (*firstRead, bool) {
	if g == nil {
		return nil, true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch g.state {
	case guardAborted:
		return nil, false
	case guardDialling:
		first := new(firstRead) // read back if the Dial fails
		g.conns = append(g.conns, c)
		g.reads = append(g.reads, first)
		return first, true
	}
	return nil, true
}

// refused returns err with the error reply a connection of the dial read
// before the server closed it (see withRefusal). Before finish.
func (g *dialGuard) refused(err error) error {
	g.mu.Lock()
	reads := slices.Clone(g.reads)
	g.mu.Unlock()
	return withRefusal(err, reads)
}

// finish ends the guard's watch: the connections are the client's from
// now on, and later dials (valkey-go's own) are left alone.
func (g *dialGuard) finish() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == guardDialling {
		g.state, g.conns, g.reads = guardDone, nil, nil
	}
}

// abort closes the connections dialled so far and refuses later ones.
func (g *dialGuard) abort() {
	g.mu.Lock()
	if g.state != guardDialling {
		g.mu.Unlock()
		return
	}
	conns := g.conns
	g.state, g.conns, g.reads = guardAborted, nil, nil
	g.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}
