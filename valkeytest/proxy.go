package valkeytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// ErrProxyClosed is returned by the methods of a [Proxy] after
// [Proxy.Close].
var ErrProxyClosed = errors.New("valkeytest: proxy closed")

// A Toxic names a kind of fault that a [Proxy] method sets, for
// [Proxy.RemoveToxic].
type Toxic string

// The toxics a [Proxy] can set, one constant per method.
const (
	ToxicLatency         Toxic = "latency"           // [Proxy.Latency]
	ToxicTimeout         Toxic = "timeout"           // [Proxy.Timeout]
	ToxicResetPeer       Toxic = "reset_peer"        // [Proxy.ResetPeer]
	ToxicBandwidth       Toxic = "bandwidth"         // [Proxy.Bandwidth]
	ToxicResetAfterWrite Toxic = "reset_after_write" // [Proxy.ResetAfterWrite]
)

// The two directions of a connection, as toxiproxy names them: upstream
// is client to server (requests), downstream is server to client
// (replies).
const (
	upstream   = "upstream"
	downstream = "downstream"
)

// Proxy is an in-process TCP proxy that injects faults between a client
// and a server: latency, a blackhole, connection resets, a bandwidth
// limit, a lost reply. It runs a [toxiproxy] proxy
// (github.com/Shopify/toxiproxy/v2) inside the test process, without its
// HTTP API, listening on 127.0.0.1 at a free port.
//
// A client dials [Proxy.Addr] instead of the server. Every accepted
// connection gets its own connection to the upstream address, and bytes
// are copied both ways through the toxics set at the time. The methods
// that set a toxic replace the toxic of the same kind when one is set;
// toxics of different kinds are chained, in the order they were set. A
// toxic applies to connections already open and to new ones.
//
// Safe for concurrent use. Its methods return [ErrProxyClosed] after
// [Proxy.Close].
//
// [toxiproxy]: https://github.com/Shopify/toxiproxy
type Proxy struct {
	tp       *toxiproxy.Proxy
	addr     string
	upstream string

	mu     sync.Mutex // serialises toxic changes, Enable, Disable and Close
	closed bool
	set    map[Toxic][]string // toxiproxy toxic names of each kind set
}

var proxySeq atomic.Uint64

// StartProxy starts a proxy listening on 127.0.0.1 at a free port and
// forwarding every connection to upstream, a "host:port" address. Nothing
// is dialled until a client connects: a client of a proxy whose upstream
// does not answer sees its connection accepted and then closed. The caller
// owns the proxy and must [Proxy.Close] it; in tests, [ProxyFor] does that.
func StartProxy(upstream string) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(upstream); err != nil {
		return nil, fmt.Errorf("valkeytest: proxy upstream: %w", err)
	}
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	name := fmt.Sprintf("valkeytest-proxy-%d", proxySeq.Add(1))
	tp := toxiproxy.NewProxy(server, name, net.JoinHostPort(Host, "0"), upstream)
	if err := tp.Start(); err != nil {
		return nil, fmt.Errorf("valkeytest: proxy to %s: %w", upstream, err)
	}
	// Start has resolved ":0" to the port it listens on, and keeps
	// listening there across Disable and Enable.
	tp.Lock()
	addr := tp.Listen
	tp.Unlock()
	return &Proxy{tp: tp, addr: addr, upstream: upstream, set: make(map[Toxic][]string)}, nil
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

// Close stops listening and closes every connection through the proxy.
// The proxy's goroutines exit as soon as they see their connections
// closed. Calling Close again does nothing and returns nil.
func (p *Proxy) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.tp.Stop()
	return nil
}

// Disable stops the proxy, as toxiproxy's "enabled": false does: it stops
// listening, so that new connections are refused, and closes every open
// connection. Toxics stay set. Disabling a disabled proxy does nothing.
func (p *Proxy) Disable() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrProxyClosed
	}
	p.tp.Stop()
	return nil
}

// Enable undoes Disable: the proxy listens again on the same address. It
// fails when another process took the port in between. Enabling an
// enabled proxy does nothing.
func (p *Proxy) Enable() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrProxyClosed
	}
	err := p.tp.Start()
	if err != nil && !errors.Is(err, toxiproxy.ErrProxyAlreadyStarted) {
		return fmt.Errorf("valkeytest: proxy %s: enable: %w", p.addr, err)
	}
	return nil
}

// Latency delays every reply (server to client data) by d, rounded up to
// whole milliseconds. Requests are not delayed, so a request-reply round
// trip takes at least d longer.
func (p *Proxy) Latency(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("valkeytest: proxy latency %v: negative", d)
	}
	return p.setToxic(ToxicLatency, toxicSpec{"latency", downstream, map[string]any{"latency": millis(d)}})
}

// Timeout blackholes the connections: data stops flowing both ways (it is
// read and dropped), and each connection is closed d after the toxic was
// set, or after it opened when it opened later. With d = 0 connections
// are never closed: a client waits for its reply forever. d is rounded up
// to whole milliseconds. Removing the toxic closes the connections it
// held.
func (p *Proxy) Timeout(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("valkeytest: proxy timeout %v: negative", d)
	}
	attrs := map[string]any{"timeout": millis(d)}
	return p.setToxic(ToxicTimeout,
		toxicSpec{"timeout", upstream, attrs},
		toxicSpec{"timeout", downstream, attrs})
}

// ResetPeer resets connections: on each connection the next data the
// client sends is dropped, so the server never sees that request, and
// after that (after = 0: at once) the connection is closed. Connections
// opened after ResetPeer are closed with a TCP RST on both sides, so that
// the client sees "connection reset by peer"; a connection that was
// already open when ResetPeer was called is closed with a FIN instead (the
// client reads EOF), because toxiproxy sets SO_LINGER 0 only when a
// connection opens. after is rounded up to whole milliseconds.
func (p *Proxy) ResetPeer(after time.Duration) error {
	if after < 0 {
		return fmt.Errorf("valkeytest: proxy reset after %v: negative", after)
	}
	return p.setToxic(ToxicResetPeer, toxicSpec{"reset_peer", upstream, map[string]any{"timeout": millis(after)}})
}

// Bandwidth limits the data rate of every connection to kbPerSec
// kilobytes (1000 bytes) per second, in each direction.
func (p *Proxy) Bandwidth(kbPerSec int64) error {
	if kbPerSec <= 0 {
		return fmt.Errorf("valkeytest: proxy bandwidth %d KB/s: not positive", kbPerSec)
	}
	attrs := map[string]any{"rate": kbPerSec}
	return p.setToxic(ToxicBandwidth,
		toxicSpec{"bandwidth", upstream, attrs},
		toxicSpec{"bandwidth", downstream, attrs})
}

// ResetAfterWrite makes every request reach the server while its reply is
// lost: requests pass through, and on each connection the first reply
// data coming back from the server is dropped and the connection is
// closed at once (a toxiproxy reset_peer toxic with no delay on the
// server-to-client direction). So the server has executed the command,
// and the client sees its connection fail without the reply: "connection
// reset by peer" for connections opened after ResetAfterWrite, EOF for
// connections already open (see [Proxy.ResetPeer]). This is the case a
// client must not blindly retry non-idempotent commands in.
func (p *Proxy) ResetAfterWrite() error {
	return p.setToxic(ToxicResetAfterWrite, toxicSpec{"reset_peer", downstream, map[string]any{"timeout": 0}})
}

// RemoveToxic removes the toxic of the given kind. Removing a toxic that
// is not set does nothing and returns nil.
func (p *Proxy) RemoveToxic(t Toxic) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrProxyClosed
	}
	return p.removeLocked(t)
}

// RemoveToxics removes every toxic: data flows through unchanged again.
func (p *Proxy) RemoveToxics() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrProxyClosed
	}
	var errs []error
	for t := range p.set {
		errs = append(errs, p.removeLocked(t))
	}
	return errors.Join(errs...)
}

// toxicSpec is one toxiproxy toxic: its type, direction and attributes.
type toxicSpec struct {
	typ    string
	stream string
	attrs  map[string]any
}

// setToxic replaces the toxics of kind t with specs.
func (p *Proxy) setToxic(t Toxic, specs ...toxicSpec) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrProxyClosed
	}
	if err := p.removeLocked(t); err != nil {
		return err
	}
	for _, s := range specs {
		name := string(t) + "_" + s.stream
		body, err := json.Marshal(map[string]any{
			"name":       name,
			"type":       s.typ,
			"stream":     s.stream,
			"toxicity":   1.0,
			"attributes": s.attrs,
		})
		if err != nil {
			return fmt.Errorf("valkeytest: proxy %s: %s: %w", p.addr, t, err)
		}
		if _, err := p.tp.Toxics.AddToxicJson(bytes.NewReader(body)); err != nil {
			return errors.Join(fmt.Errorf("valkeytest: proxy %s: %s: %w", p.addr, t, err), p.removeLocked(t))
		}
		p.set[t] = append(p.set[t], name)
	}
	return nil
}

func (p *Proxy) removeLocked(t Toxic) error {
	var errs []error
	for _, name := range p.set[t] {
		err := p.tp.Toxics.RemoveToxic(context.Background(), name)
		if err != nil && !errors.Is(err, toxiproxy.ErrToxicNotFound) {
			errs = append(errs, fmt.Errorf("valkeytest: proxy %s: remove %s: %w", p.addr, name, err))
		}
	}
	delete(p.set, t)
	return errors.Join(errs...)
}

// millis returns d in whole milliseconds, rounded up.
func millis(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}
