package engine_test

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// holdProxy forwards connections to upstream; once holding, past the
// allow next ones, it accepts new connections and holds them, forwarding
// and answering nothing (a server whose kernel accepts while the process
// does not answer: stopped, overloaded). Connections made before keep
// working.
type holdProxy struct {
	ln       net.Listener
	upstream string
	holding  atomic.Bool
	allow    atomic.Int64
	held     atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
}

func newHoldProxy(t *testing.T, upstream string) *holdProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holdProxy{ln: ln, upstream: upstream}
	go p.loop()
	t.Cleanup(p.close)
	return p
}

func (p *holdProxy) loop() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		if p.holding.Load() && p.allow.Add(-1) < 0 {
			p.held.Add(1)
			continue
		}
		u, err := net.Dial("tcp", p.upstream)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, u)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(u, c); _ = u.Close() }()
		go func() { _, _ = io.Copy(c, u); _ = c.Close() }()
	}
}

func (p *holdProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

// A consumer whose blocked read's connection is being dialled to a server
// that accepts and never answers stops at once: Consumer.Close and the
// engine's Close do not wait out the handshake's read timeout (qa-AZ AZ3:
// 2.8 s with the default 3 s, whatever DrainTimeout).
func TestConsumerCloseDuringStalledReadDial(t *testing.T) {
	srv := valkeytest.Start(t)
	bg := context.Background()
	for _, engineClose := range []bool{false, true} {
		p := newHoldProxy(t, srv.Addr())
		ctx, cancel := context.WithTimeout(bg, 10*time.Second)
		eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(p.ln.Addr().String()))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		// The engine's connection is up; the consumer's own is let
		// through, the next (its blocked read's) held.
		p.allow.Store(1)
		p.holding.Store(true)
		c, err := eng.Consume(bg, "s", "g", "c", func(context.Context, engine.XEntry) error { return nil },
			engine.ConsumeOptions{Block: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		// Wait for the blocked read's dial to be held.
		deadline := time.Now().Add(5 * time.Second)
		for p.held.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the consumer's blocked read never dialled")
			}
			time.Sleep(5 * time.Millisecond)
		}
		start := time.Now()
		if engineClose {
			_ = eng.Close()
		} else {
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		}
		took := time.Since(start)
		if !engineClose {
			_ = eng.Close()
		}
		// DrainTimeout is 5 s, the handshake's read bound 3 s: a Close that
		// waits for the dial takes ~3 s; one that cuts it, milliseconds.
		if took > time.Second {
			t.Errorf("engine Close %v: Close with the blocked read's dial held took %v, want well under the 3 s read bound", engineClose, took)
		}
		p.close()
	}
}
