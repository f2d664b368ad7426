package valkeygo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
)

// valkey-go PINGs a connection after a second of silence, with a Do on a
// goroutine of its own (pipe.backgroundPing). A call the connection actor
// made during that PING's round trip (50-100 µs) found a second call in
// progress and was queued, and valkey-go then started its background
// writer and reader for the connection, which it never stops (a pipe only
// goes from its synchronous state to the background one): from then on
// every round trip paid their two hand-offs for good (GET p50 at 1
// goroutine 66-84 µs against 44-46; a low-traffic service met the window a
// few times a day per connection).
//
// So the driver turns valkey-go's PING off (Dialer.KeepAlive -1, which
// also turns TCP keep-alive off: the dialer turns it on again, see
// newDialer) and sends the PING itself, through a gate that orders it with
// the Conn's calls: valkey-go never sees two at once on the connection. As
// valkey-go's, it goes out after pingGap without a call, and only when no
// call is in progress; it waits for its reply up to the connection's
// timeout (ConnWriteTimeout), and one that fails or times out breaks the
// connection as valkey-go's did (valkey-go closes it, and dials a new one
// for the next call). A listening Conn's dedicated connection (pub/sub)
// gets the same PING, without the gate (it is on valkey-go's background
// path anyway), and told apart from a reader held up by a slow consumer
// (see pingListener); valkey-go's pooled connections for blocking commands get
// none: they are on the background path too, whose reader sees a close at
// once, and TCP keep-alive finds a peer gone.

// pingGap is the silence after which the driver PINGs a connection:
// valkey-go's own default (tests shorten it).
var pingGap = valkey.DefaultTCPKeepAlive

// gate orders a Conn's calls on its first connection with the driver's
// PING. Calls do not wait for each other (n counts those in progress); a
// call waits while the PING holds the gate (n == -1), or until its ctx
// ends.
type gate struct {
	n    atomic.Int64
	used atomic.Bool // a call entered since the last PING check

	mu   sync.Mutex
	free chan struct{} // closed when the PING in progress releases the gate
}

// enter lets a call in; it fails only when ctx ends first.
func (g *gate) enter(ctx context.Context) error {
	g.used.Store(true)
	for {
		n := g.n.Load()
		if n >= 0 {
			if g.n.CompareAndSwap(n, n+1) {
				return nil
			}
			continue
		}
		g.mu.Lock()
		free := g.free
		g.mu.Unlock()
		if free == nil {
			continue // released meanwhile
		}
		select {
		case <-free:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (g *gate) exit() { g.n.Add(-1) }

// lockIdle takes the gate for a PING if no call entered since the last
// check and none is in progress.
func (g *gate) lockIdle() bool {
	if g.used.Swap(false) {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.n.CompareAndSwap(0, -1) {
		return false
	}
	g.free = make(chan struct{})
	return true
}

func (g *gate) unlock() {
	g.mu.Lock()
	g.n.Store(0)
	close(g.free)
	g.free = nil
	g.mu.Unlock()
}

// errNotSentCtx fails the commands of a call whose ctx ended while it
// waited for the driver's PING: none was written.
func errNotSentCtx(err error) error { return fmt.Errorf("%w: %w", drivers.ErrNotSent, err) }

// startPing arms the Conn's idle PING.
func (c *Conn) startPing(timeout time.Duration) {
	c.pingTimeout = timeout
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	c.pingTimer = time.AfterFunc(pingGap, c.idlePing)
}

// stopPing disarms it (Close); a PING in progress fails with the sockets
// Close closes.
func (c *Conn) stopPing() {
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	c.pingStopped = true
}

// idlePing is the PING timer's function: see above.
//
// A listening Conn's first connection is left alone: nothing uses it
// once Listen ran (Do and DoMulti go to the dedicated one), and waiting
// for its PING first added a second timeout to the time a subscriber took
// to find a silent server (1 s + 2 × ReadTimeout instead of 1 s +
// ReadTimeout).
func (c *Conn) idlePing() {
	if d := c.ded.Load(); d != nil {
		c.pingListener(*d)
	} else if c.gate.lockIdle() {
		ctx, cancel := context.WithTimeout(c.closing, c.pingTimeout)
		c.begin(ctx)
		err := c.c.Do(ctx, c.c.B().Ping().Build()).NonValkeyError()
		c.end()
		cancel()
		if err != nil && c.closing.Err() == nil {
			// Before the gate opens: a call waiting there fails as not
			// sent rather than go to a connection valkey-go would dial
			// on its own (see dead).
			err = lostError(err, c.pingTimeout)
			c.dead.Store(&err)
			c.gate.unlock()
			c.lost(err)
			return // no more PINGs: each would dial afresh
		}
		c.gate.unlock()
	}
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	if !c.pingStopped {
		c.pingTimer.Reset(pingGap)
	}
}

// lostError is the error of the calls after a failed idle PING (err):
// not sent, saying why.
func lostError(err error, timeout time.Duration) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: connection lost while idle: no reply to PING within %s (the server or the network went silent): %w", drivers.ErrNotSent, timeout, err)
	}
	return fmt.Errorf("%w: connection lost while idle (PING failed): %w", drivers.ErrNotSent, err)
}

// lost reports the failed idle PING (err, from lostError) to the OnLost
// function, once.
func (c *Conn) lost(err error) {
	if f := c.onLost.Swap(nil); f != nil {
		(*f)(err)
	}
}

// pingListener PINGs a listening Conn's dedicated connection. On
// valkey-go's background path a ctx that ends gives up on the reply but
// leaves the connection be, so, as valkey-go's own PING, it waits on a
// timer, and a PING unanswered by then closes the Conn's sockets: the
// listener's done channel then reports the error, as it did when
// valkey-go's PING failed, saying that the PING went unanswered (see
// ListenValkey).
//
// Unlike valkey-go's, it tells a silent server from a slow reader. The
// connection's reader calls the pub/sub hooks, and a hook that waits (the
// engine's OverflowBlock waits for the application to take an item) holds
// the reader, and the PING's reply behind the messages, up: that is
// backpressure, which the server buffers, not a dead server. So no PING
// goes out while a hook call is in progress, and the timeout counts only
// while no hook runs and none was called: a reply late behind messages
// being delivered does not close the connection. TCP keep-alive still finds
// a peer gone meanwhile.
func (c *Conn) pingListener(d valkey.DedicatedClient) {
	if c.hooked.busy.Load() != 0 {
		return
	}
	done := make(chan error, 1)
	go func() { done <- d.Do(context.Background(), d.B().Ping().Build()).NonValkeyError() }()
	seen := c.hooked.calls.Load()
	t := time.NewTimer(c.pingTimeout)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if n := c.hooked.calls.Load(); n != seen || c.hooked.busy.Load() != 0 {
				seen = n
				t.Reset(c.pingTimeout)
				continue
			}
			c.pingLost.Store(true)
			c.open.closeSockets()
			return
		case <-c.closing.Done():
			return
		}
	}
}

// hookCalls follows a listening Conn's reader through the pub/sub hooks:
// busy while a hook call is in progress, calls counts those that ended.
type hookCalls struct {
	busy  atomic.Int32
	calls atomic.Uint64
}

func (k *hookCalls) enter() { k.busy.Add(1) }

func (k *hookCalls) leave() {
	k.calls.Add(1)
	k.busy.Add(-1)
}

// wrap returns h with every hook counted.
func (k *hookCalls) wrap(h valkey.PubSubHooks) valkey.PubSubHooks {
	if f := h.OnMessage; f != nil {
		h.OnMessage = func(m valkey.PubSubMessage) {
			k.enter()
			defer k.leave()
			f(m)
		}
	}
	if f := h.OnSubscription; f != nil {
		h.OnSubscription = func(s valkey.PubSubSubscription) {
			k.enter()
			defer k.leave()
			f(s)
		}
	}
	return h
}
