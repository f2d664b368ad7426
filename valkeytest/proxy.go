package valkeytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/rs/zerolog"
	zlog "github.com/rs/zerolog/log"
)

// ErrProxyClosed is returned by the methods of a [Proxy] after
// [Proxy.Close].
var ErrProxyClosed = errors.New("valkeytest: proxy closed")

// A Toxic names a kind of fault that a [Proxy] method sets, for
// [Proxy.RemoveToxic].
type Toxic string

// The toxics a [Proxy] can set, one per method.
const (
	ToxicLatency         Toxic = "latency"           // [Proxy.Latency]
	ToxicTimeout         Toxic = "timeout"           // [Proxy.Timeout]
	ToxicResetPeer       Toxic = "reset_peer"        // [Proxy.ResetPeer]
	ToxicBandwidth       Toxic = "bandwidth"         // [Proxy.Bandwidth]
	ToxicResetAfterWrite Toxic = "reset_after_write" // [Proxy.ResetAfterWrite]
)

const (
	proxyDialTimeout  = 5 * time.Second        // proxy to upstream
	proxyCloseTimeout = 10 * time.Second       // Close waits for the connections
	acceptBackoffMax  = 100 * time.Millisecond // between failed Accepts

	// The two directions of a connection, as toxiproxy names them.
	upstream   = "upstream"   // client to server: requests
	downstream = "downstream" // server to client: replies

	// Toxic types registered with toxiproxy by this package.
	resetToxicType   = "valkeytest_reset_peer"
	timeoutToxicType = "valkeytest_timeout"
)

// Proxy is an in-process TCP proxy that injects faults between a client
// and a server: latency, a blackhole, connection resets, a bandwidth
// limit, lost replies. It is built on toxiproxy
// (github.com/Shopify/toxiproxy/v2): toxiproxy's toxics and its toxic
// chains, which apply a change to open connections at once, move the
// bytes. The proxy does not start toxiproxy's HTTP API, and it accepts,
// dials and closes the connections itself, so that [Proxy.Close] can
// wait until every goroutine of every connection has returned (stock
// toxiproxy can leave goroutines blocked forever when a connection breaks
// while data is in flight).
//
// A client dials [Proxy.Addr] instead of the server. Every accepted
// connection gets its own connection to the upstream address; bytes are
// copied both ways through the toxics set. The methods that set a toxic
// replace the toxic of the same kind if one is set; toxics of different
// kinds are chained, in the order they were set. A toxic applies to the
// connections already open and to new ones.
//
// Safe for concurrent use. Its methods return [ErrProxyClosed] after
// [Proxy.Close].
type Proxy struct {
	upstream string
	addr     string
	server   *toxiproxy.ApiServer       // metrics and logger for the links
	toxics   *toxiproxy.ToxicCollection // the toxic chains of every link

	// opMu serialises the operations: toxic changes, Enable, Disable and
	// Close. It is held while waiting; mu never is.
	opMu   sync.Mutex
	closed bool
	set    []setToxic // in the order they were set, the chains' order

	mu     sync.Mutex
	lis    *proxyListener // nil while disabled or closed
	conns  map[*proxyConn]struct{}
	resets int    // reset toxics set: connections close with an RST
	seq    uint64 // names links

	connWG sync.WaitGroup // one per connection in conns
}

// setToxic is one kind of toxic set, and the toxiproxy names of its
// toxics (one per direction it applies to).
type setToxic struct {
	kind  Toxic
	names []string
}

// proxyListener is one period of listening, from StartProxy or Enable to
// Disable or Close.
type proxyListener struct {
	ln     net.Listener
	ctx    context.Context // cancelled when it stops: dials give up
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and the dials it started
}

// proxyConn is a client connection and its connection to the upstream.
// Each direction is a toxiproxy link: a reader goroutine, one goroutine
// per toxic, a writer goroutine.
type proxyConn struct {
	p       *Proxy
	client  *net.TCPConn
	server  *net.TCPConn
	running atomic.Int32 // link readers and writers that have not ended
}

var (
	proxySeq           atomic.Uint64
	registerToxicsOnce sync.Once
)

// StartProxy starts a proxy listening on 127.0.0.1 at a free port and
// forwarding every connection to upstream, a "host:port" address. The
// upstream is dialled when a client connects; when that fails, the
// client's connection is closed. The caller owns the proxy and must
// [Proxy.Close] it; in tests, [ProxyFor] does that.
func StartProxy(upstream string) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(upstream); err != nil {
		return nil, fmt.Errorf("valkeytest: proxy upstream: %w", err)
	}
	registerToxicsOnce.Do(func() {
		toxics.Register(resetToxicType, new(resetToxic))
		toxics.Register(timeoutToxicType, new(timeoutToxic))
		// zerolog's init sets its global level to trace, and toxiproxy's
		// bandwidth toxic writes a trace line to zerolog's global logger,
		// on stderr, each time it is interrupted. Drop trace lines there,
		// before any proxy runs; vactor does not use zerolog otherwise.
		zlog.Logger = zlog.Logger.Level(zerolog.DebugLevel)
	})
	ln, err := net.Listen("tcp", net.JoinHostPort(Host, "0"))
	if err != nil {
		return nil, fmt.Errorf("valkeytest: proxy to %s: %w", upstream, err)
	}
	p := &Proxy{
		upstream: upstream,
		addr:     ln.Addr().String(),
		conns:    make(map[*proxyConn]struct{}),
	}
	// The toxiproxy Proxy is never started: it only holds the toxic
	// collection, and names the links in toxiproxy's (silenced) logs.
	p.server = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	name := "valkeytest-proxy-" + strconv.FormatUint(proxySeq.Add(1), 10)
	p.toxics = toxiproxy.NewProxy(p.server, name, p.addr, upstream).Toxics
	p.listen(ln)
	return p, nil
}

// ProxyFor starts a proxy to upstream for the test with [StartProxy],
// fails the test with tb.Fatal when it cannot, and closes the proxy when
// the test ends.
func ProxyFor(tb testing.TB, upstream string) *Proxy {
	tb.Helper()
	p, err := StartProxy(upstream)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Errorf("valkeytest: proxy %s: close: %v", p.Addr(), err)
		}
	})
	return p
}

// Addr returns the address the proxy listens on, "127.0.0.1:PORT". It
// stays the same for the proxy's whole life, across Disable and Enable.
func (p *Proxy) Addr() string { return p.addr }

// Upstream returns the address the proxy forwards to.
func (p *Proxy) Upstream() string { return p.upstream }

// Close stops listening, closes every connection through the proxy and
// removes the toxics, and returns once the goroutines that served the
// connections have returned (the last of each connection's toxic
// goroutines returns a moment later). Should some not return within 10
// seconds (a toxiproxy bug), it stops waiting and returns an error. Calling
// Close again does nothing and returns nil.
func (p *Proxy) Close() error {
	p.opMu.Lock()
	defer p.opMu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.stopListening()
	p.closeConns()
	// Removing the toxics interrupts those that hold data back (latency,
	// bandwidth), so that the links see their connections closed now
	// rather than once the data they hold has been sent.
	err := p.removeAllLocked()
	done := make(chan struct{})
	go func() {
		p.connWG.Wait()
		close(done)
	}()
	t := time.NewTimer(proxyCloseTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		err = errors.Join(err, fmt.Errorf("valkeytest: proxy %s: close: %d connections still served after %v",
			p.addr, len(p.snapshot()), proxyCloseTimeout))
	}
	return err
}

// Disable stops the proxy, as toxiproxy's "enabled": false does: it stops
// listening, so that new connections are refused, and closes every open
// connection. The toxics stay set. Disabling a disabled proxy does
// nothing.
func (p *Proxy) Disable() error {
	p.opMu.Lock()
	defer p.opMu.Unlock()
	if p.closed {
		return ErrProxyClosed
	}
	p.stopListening()
	p.closeConns()
	return nil
}

// Enable undoes Disable: the proxy listens again, on the same address. It
// fails when another process took the port in between. Enabling an
// enabled proxy does nothing.
func (p *Proxy) Enable() error {
	p.opMu.Lock()
	defer p.opMu.Unlock()
	if p.closed {
		return ErrProxyClosed
	}
	p.mu.Lock()
	enabled := p.lis != nil
	p.mu.Unlock()
	if enabled {
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("valkeytest: proxy %s: enable: %w", p.addr, err)
	}
	p.listen(ln)
	return nil
}

// Latency delays every reply (server to client data) by d, rounded up to
// whole milliseconds; requests are not delayed. A request and its reply
// take at least d longer.
func (p *Proxy) Latency(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("valkeytest: proxy latency %v: negative", d)
	}
	return p.setToxic(ToxicLatency, toxicSpec{"latency", downstream, map[string]any{"latency": millis(d)}})
}

// Timeout blackholes the connections, with toxiproxy's timeout toxic on
// both directions: data stops flowing both ways (it is read and dropped),
// and a connection is closed once one of its directions has carried
// nothing for d, rounded up to whole milliseconds. For a client that sends
// a request and waits, that is d after the request (the server, which
// never got it, sends nothing); setting another toxic restarts the wait.
// With d = 0 connections are never closed: a client waits for its replies
// forever. Removing the toxic closes the connections it held, since they
// lost data; new connections work again.
func (p *Proxy) Timeout(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("valkeytest: proxy timeout %v: negative", d)
	}
	attrs := map[string]any{"timeout": millis(d)}
	return p.setToxic(ToxicTimeout,
		toxicSpec{timeoutToxicType, upstream, attrs},
		toxicSpec{timeoutToxicType, downstream, attrs})
}

// ResetPeer resets connections, with toxiproxy's reset_peer toxic on the
// client to server direction: on each connection, the next data the
// client sends is dropped, so that the server never sees that request,
// and after the given time (0: at once, rounded up to whole milliseconds)
// the connection is closed with a TCP RST on both sides. The client sees
// "connection reset by peer". An idle connection is not reset until the
// client sends. While a ResetPeer or ResetAfterWrite toxic is set, every
// connection is closed with an RST (SO_LINGER 0), whatever closes it.
func (p *Proxy) ResetPeer(after time.Duration) error {
	if after < 0 {
		return fmt.Errorf("valkeytest: proxy reset after %v: negative", after)
	}
	return p.setToxic(ToxicResetPeer, toxicSpec{resetToxicType, upstream, map[string]any{"timeout": millis(after)}})
}

// Bandwidth limits every connection to kbPerSec kilobytes (1000 bytes)
// per second in each direction, with toxiproxy's bandwidth toxic. Data
// is not lost when a toxic changes: replacing or removing a toxic that
// was set before Bandwidth waits until the bandwidth toxic has taken what
// the other one holds (toxiproxy waits up to 5 seconds per chunk).
// Removing Bandwidth itself, RemoveToxics and Close do not wait.
func (p *Proxy) Bandwidth(kbPerSec int64) error {
	if kbPerSec <= 0 {
		return fmt.Errorf("valkeytest: proxy bandwidth %d KB/s: not positive", kbPerSec)
	}
	attrs := map[string]any{"rate": kbPerSec}
	return p.setToxic(ToxicBandwidth,
		toxicSpec{"bandwidth", upstream, attrs},
		toxicSpec{"bandwidth", downstream, attrs})
}

// ResetAfterWrite lets requests reach the server and loses their replies:
// it sets toxiproxy's reset_peer toxic, with no delay, on the server to
// client direction only. Requests pass through unchanged; on each
// connection, the first reply data that comes back from the server is
// dropped and the connection is reset at once (a TCP RST on both sides).
// So the server has executed the command, and the client sees "connection
// reset by peer" instead of its reply: the case in which a client must
// not blindly retry a non-idempotent command. A connection whose requests
// get no reply (a blocking command) is not reset.
func (p *Proxy) ResetAfterWrite() error {
	return p.setToxic(ToxicResetAfterWrite, toxicSpec{resetToxicType, downstream, map[string]any{"timeout": 0}})
}

// RemoveToxic removes the toxic of the given kind. Removing a toxic that
// is not set does nothing and returns nil.
func (p *Proxy) RemoveToxic(t Toxic) error {
	p.opMu.Lock()
	defer p.opMu.Unlock()
	if p.closed {
		return ErrProxyClosed
	}
	return p.removeLocked(t)
}

// RemoveToxics removes every toxic: data flows through unchanged again.
func (p *Proxy) RemoveToxics() error {
	p.opMu.Lock()
	defer p.opMu.Unlock()
	if p.closed {
		return ErrProxyClosed
	}
	return p.removeAllLocked()
}

// listen starts accepting on ln.
func (p *Proxy) listen(ln net.Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	l := &proxyListener{ln: ln, ctx: ctx, cancel: cancel}
	p.mu.Lock()
	p.lis = l
	p.mu.Unlock()
	l.wg.Add(1)
	go p.accept(l)
}

// stopListening closes the listener, and returns once the accept loop and
// the dials it started have returned.
func (p *Proxy) stopListening() {
	p.mu.Lock()
	l := p.lis
	p.lis = nil
	if l != nil {
		l.cancel() // under mu: no connection is added after this
	}
	p.mu.Unlock()
	if l == nil {
		return
	}
	_ = l.ln.Close()
	l.wg.Wait()
}

func (p *Proxy) closeConns() {
	for _, c := range p.snapshot() {
		_ = c.client.Close()
		_ = c.server.Close()
	}
}

func (p *Proxy) snapshot() []*proxyConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	conns := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	return conns
}

func (p *Proxy) accept(l *proxyListener) {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if l.ctx.Err() != nil {
				return // stopped
			}
			// Out of file descriptors and the like: try again soon.
			backoff = min(max(2*backoff, time.Millisecond), acceptBackoffMax)
			t := time.NewTimer(backoff)
			select {
			case <-l.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		backoff = 0
		l.wg.Add(1)
		go p.connect(l, conn.(*net.TCPConn))
	}
}

// connect dials the upstream for client and starts the two links.
func (p *Proxy) connect(l *proxyListener, client *net.TCPConn) {
	defer l.wg.Done()
	d := net.Dialer{Timeout: proxyDialTimeout}
	conn, err := d.DialContext(l.ctx, "tcp", p.upstream)
	if err != nil {
		_ = client.Close()
		return
	}
	server := conn.(*net.TCPConn)

	p.mu.Lock()
	if l.ctx.Err() != nil { // disabled or closed while dialling
		p.mu.Unlock()
		_ = client.Close()
		_ = server.Close()
		return
	}
	c := &proxyConn{p: p, client: client, server: server}
	c.running.Store(4)
	p.conns[c] = struct{}{}
	p.connWG.Add(1)
	if p.resets > 0 {
		c.setLinger(0)
	}
	p.seq++
	name := strconv.FormatUint(p.seq, 10) + "-"
	p.mu.Unlock()

	// Not under mu: StartLink takes the toxic collection's lock, which a
	// toxic change holds while it waits for the links.
	p.toxics.StartLink(p.server, name+upstream,
		&linkReader{c: c, conn: client}, &linkWriter{c: c, conn: server}, stream.Upstream)
	p.toxics.StartLink(p.server, name+downstream,
		&linkReader{c: c, conn: server}, &linkWriter{c: c, conn: client}, stream.Downstream)
}

// ended is called once by each link reader and writer as it ends; the last
// one forgets the connection.
func (c *proxyConn) ended() {
	if c.running.Add(-1) != 0 {
		return
	}
	c.p.mu.Lock()
	delete(c.p.conns, c)
	c.p.mu.Unlock()
	c.p.connWG.Done()
}

// setLinger sets SO_LINGER on both connections: 0 makes Close send an RST,
// -1 restores the default (a FIN).
func (c *proxyConn) setLinger(sec int) {
	_ = c.client.SetLinger(sec)
	_ = c.server.SetLinger(sec)
}

// linkReader is the source of a link: one side's connection.
type linkReader struct {
	c    *proxyConn
	conn *net.TCPConn
	once sync.Once
}

func (r *linkReader) Read(b []byte) (int, error) {
	n, err := r.conn.Read(b)
	if err != nil {
		r.once.Do(r.c.ended)
	}
	return n, err
}

// linkWriter is the destination of a link: the other side's connection.
// A failed write closes the connection and reports success, so that the
// link goes on draining its toxic chain until its source ends: a toxiproxy
// link whose writer stops reading leaves its toxics blocked forever.
type linkWriter struct {
	c      *proxyConn
	conn   *net.TCPConn
	failed bool // only the link's writer goroutine uses it
}

func (w *linkWriter) Write(b []byte) (int, error) {
	if !w.failed {
		if _, err := w.conn.Write(b); err != nil {
			w.failed = true
			_ = w.conn.Close()
		}
	}
	return len(b), nil
}

// Close is called by the link when its chain has ended.
func (w *linkWriter) Close() error {
	_ = w.conn.Close()
	w.c.ended()
	return nil
}

// toxicSpec is one toxiproxy toxic: its type, direction and attributes.
type toxicSpec struct {
	typ    string
	stream string
	attrs  map[string]any
}

func isReset(t Toxic) bool { return t == ToxicResetPeer || t == ToxicResetAfterWrite }

// setToxic replaces the toxics of kind t with specs.
func (p *Proxy) setToxic(t Toxic, specs ...toxicSpec) error {
	p.opMu.Lock()
	defer p.opMu.Unlock()
	if p.closed {
		return ErrProxyClosed
	}
	if err := p.removeLocked(t); err != nil {
		return err
	}
	if isReset(t) {
		// Before the toxic is added, so that every connection it closes
		// is reset.
		p.mu.Lock()
		p.resets++
		first := p.resets == 1
		p.mu.Unlock()
		if first {
			for _, c := range p.snapshot() {
				c.setLinger(0)
			}
		}
	}
	p.set = append(p.set, setToxic{kind: t})
	set := &p.set[len(p.set)-1]
	for _, s := range specs {
		name := string(t) + "_" + s.stream
		body, err := json.Marshal(map[string]any{
			"name":       name,
			"type":       s.typ,
			"stream":     s.stream,
			"toxicity":   1.0,
			"attributes": s.attrs,
		})
		if err == nil {
			_, err = p.toxics.AddToxicJson(bytes.NewReader(body))
		}
		if err != nil {
			err = fmt.Errorf("valkeytest: proxy %s: %s: %w", p.addr, t, err)
			return errors.Join(err, p.removeLocked(t))
		}
		set.names = append(set.names, name)
	}
	return nil
}

// removeLocked removes the toxics of kind t, if set.
func (p *Proxy) removeLocked(t Toxic) error {
	i := slices.IndexFunc(p.set, func(s setToxic) bool { return s.kind == t })
	if i < 0 {
		return nil
	}
	names := p.set[i].names
	p.set = slices.Delete(p.set, i, i+1)
	var errs []error
	for _, name := range names {
		if err := p.toxics.RemoveToxic(context.Background(), name); err != nil {
			errs = append(errs, fmt.Errorf("valkeytest: proxy %s: remove %s: %w", p.addr, name, err))
		}
	}
	if isReset(t) {
		p.mu.Lock()
		p.resets--
		last := p.resets == 0
		p.mu.Unlock()
		if last {
			for _, c := range p.snapshot() {
				c.setLinger(-1)
			}
		}
	}
	return errors.Join(errs...)
}

// removeAllLocked removes the toxics last first: the last toxic of a
// chain hands what it holds to the link's writer, which always takes it,
// while one before a bandwidth toxic would wait for that to take it.
func (p *Proxy) removeAllLocked() error {
	var errs []error
	for len(p.set) > 0 {
		errs = append(errs, p.removeLocked(p.set[len(p.set)-1].kind))
	}
	return errors.Join(errs...)
}

// millis returns d in whole milliseconds, rounded up.
func millis(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// resetToxic is toxiproxy's reset_peer toxic, except that once it has
// closed its connection it goes on reading and dropping what reaches it
// until the connection's source ends. The stock toxic stops reading, and
// the toxic before it in the chain then blocks forever on its next send.
type resetToxic struct{ toxics.ResetToxic }

func (t *resetToxic) Pipe(stub *toxics.ToxicStub) {
	t.ResetToxic.Pipe(stub)
	drainClosed(stub)
}

// timeoutToxic is toxiproxy's timeout toxic, draining like resetToxic
// once it has closed its connection.
type timeoutToxic struct{ toxics.TimeoutToxic }

func (t *timeoutToxic) Pipe(stub *toxics.ToxicStub) {
	t.TimeoutToxic.Pipe(stub)
	drainClosed(stub)
}

// Cleanup is called when the toxic is removed: it closes the connection,
// as the stock toxic does, and drains. Not synchronously: the chain's
// source ends only after the link has been updated.
func (t *timeoutToxic) Cleanup(stub *toxics.ToxicStub) {
	t.TimeoutToxic.Cleanup(stub)
	go drainClosed(stub)
}

func drainClosed(stub *toxics.ToxicStub) {
	if !stub.Closed() {
		return // interrupted: the link runs the toxic again, or removes it
	}
	for range stub.Input {
	}
}
