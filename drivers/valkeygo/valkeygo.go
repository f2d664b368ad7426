// Package valkeygo is vactor's default driver, built on
// github.com/valkey-io/valkey-go. Importing it registers the driver under
// the name "valkey-go".
//
// Each Conn is one valkey-go client forced onto a single TCP connection
// (ForceSingleClient, PipelineMultiplex -1) with valkey-go's own retries
// and client-side cache off: vactor's actors do the batching and its
// policies the retrying. A batch goes out as one DoMulti, which valkey-go
// writes, flushes and reads on the calling goroutine when nothing else uses
// the connection.
//
// The driver dials the TCP (and TLS) connection itself and hands valkey-go
// a net.Conn that turns valkey-go's per-round-trip deadline into an idle
// one: ReadTimeout bounds silence on the connection, not a whole pipeline
// (see drivers.Options.ReadTimeout).
package valkeygo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
)

// Name is the registry name of this driver.
const Name = "valkey-go"

func init() { drivers.Register(Name, Driver{}) }

// Driver dials valkey-go connections. The zero value is ready to use and
// safe for concurrent use.
type Driver struct{}

var (
	_ drivers.Driver       = Driver{}
	_ drivers.Capable      = Driver{}
	_ drivers.Conn         = (*Conn)(nil)
	_ drivers.PubSub       = (*Conn)(nil)
	_ drivers.ValkeyConn   = (*Conn)(nil)
	_ drivers.ValkeyPubSub = (*Conn)(nil)
)

// Capabilities implements drivers.Capable: the driver supports all of
// them.
func (Driver) Capabilities() drivers.Capabilities {
	return drivers.Capabilities{
		TLS: true, TLSConfig: true, Credentials: true, Blocking: true,
		PubSub: true, NoIdlePing: true, Sentinel: true,
	}
}

// Dial implements drivers.Driver.
func (Driver) Dial(ctx context.Context, o drivers.Options) (drivers.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	call := new(atomic.Int64)
	guard := new(dialGuard)
	open := new(openConns)
	opt := clientOption(o, call, guard, open)
	// The driver sends the idle PING itself (ping.go).
	opt.Dialer.KeepAlive = -1
	// NewClient dials synchronously: bound it by ctx as well as the dialer.
	type result struct {
		c   valkey.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			// valkey-go's reader trusts what the server sends: bytes no
			// Valkey server sends in its handshake made it panic here,
			// on a goroutine of ours (firstHeader turns away the lengths
			// it would allocate; this catches the rest).
			if r := recover(); r != nil {
				done <- result{nil, fmt.Errorf("%w: the handshake's reply could not be read (not a Valkey or Redis server at the address?): %v", drivers.ErrNotSent, r)}
			}
		}()
		c, err := valkey.NewClient(opt)
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			r.err = guard.refused(r.err)
			// valkey-go closes what it dialled when it fails, but not
			// after a panic (recovered above): close what is left.
			guard.abort()
			return nil, fmt.Errorf("valkey-go: dial %s: %w", o.Addr, r.err)
		}
		guard.finish()
		c := newConn(r.c, call, open)
		if !o.NoIdlePing {
			c.startPing(connWriteTimeout(max(o.ReadTimeout, o.WriteTimeout)))
		}
		return c, nil
	case <-ctx.Done():
		// NewClient takes no ctx: closing the connection it is
		// handshaking on ends it now, rather than at DialTimeout.
		guard.abort()
		go func() {
			if r := <-done; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, fmt.Errorf("valkey-go: dial %s: %w", o.Addr, ctx.Err())
	}
}

// ClientOption returns the valkey-go options the driver uses for o. Its
// DialCtxFn dials connections whose deadline valkey-go derives from
// ConnWriteTimeout is an idle one (see ReadTimeout in drivers.Options).
// Outside the driver, which tells it the deadline of each call, a caller's
// ctx deadline within ConnWriteTimeout but more than half of it away is
// taken for valkey-go's own and made an idle one too.
func ClientOption(o drivers.Options) valkey.ClientOption {
	return clientOption(o, new(atomic.Int64), nil, nil)
}

// tcpKeepAlive is the TCP keep-alive period of the connections the
// driver dials: valkey-go's default (Dialer.KeepAlive), which the driver
// turns off to turn valkey-go's PING off (see ping.go).
const tcpKeepAlive = valkey.DefaultTCPKeepAlive

// clientOption is ClientOption whose connections read the deadline of the
// call in progress from call (see idleConn), with a guard are closed when
// the guard is aborted before the dial finished, and with open are
// registered there (see openConns).
func clientOption(o drivers.Options, call *atomic.Int64, guard *dialGuard, open *openConns) valkey.ClientOption {
	timeout := max(o.ReadTimeout, o.WriteTimeout)
	idle := connWriteTimeout(timeout)
	blocking := max(o.MaxPipeline+1, valkey.DefaultBlockingPipeline)
	keepAlive := valkey.DefaultTCPKeepAlive
	if o.NoIdlePing {
		// valkey-go PINGs every KeepAlive of silence; negative turns the
		// PINGs (and TCP keep-alive) off.
		keepAlive = -1
	}
	return valkey.ClientOption{
		DialCtxFn:         newDialer(idle, call, guard, open),
		AuthCredentialsFn: authCredentials(o.Credentials, o.DialTimeout),
		InitAddress:       []string{o.Addr},
		Username:          o.Username,
		Password:          o.Password,
		ClientName:        o.ClientName,
		SelectDB:          o.DB,
		TLSConfig:         o.TLS,
		Dialer:            net.Dialer{Timeout: o.DialTimeout, KeepAlive: keepAlive},
		ConnWriteTimeout:  timeout,
		ForceSingleClient: true,
		PipelineMultiplex: -1,
		BlockingPipeline:  blocking,
		DisableRetry:      true,
		DisableCache:      true,
		RingScaleEachConn: ringScale,
	}
}

// connWriteTimeout is the ConnWriteTimeout valkey-go uses for timeout:
// timeout, or its default for 0 (10 times its default keep-alive).
func connWriteTimeout(timeout time.Duration) time.Duration {
	if timeout <= 0 {
		return 10 * valkey.DefaultTCPKeepAlive
	}
	return timeout
}

// ringScale sizes valkey-go's per-connection ring: 2^ringScale calls
// queued or in flight at once on one connection, a caller past that
// waiting for a slot. valkey-go's default, 10, allocates 1,024 slots, each
// with a channel and two condition variables, for every connection it
// opens: about two thirds of a new connection's client CPU (64 Dedicated
// connections opened in turn: 1.85-2.0 ms each, 0.65 ms with 5). The
// driver's connections never have that many calls at once: a connection
// actor has one pipeline in flight (or the driver's idle PING), a
// blocking or dedicated connection one call, a subscriber connection its
// subscription changes.
const ringScale = 5

// credsError marks the error of Options.Credentials: the dial failed
// before the handshake was sent, so no error reply the connection read
// then (valkey-go's Close sends a PING, which a server requiring
// authentication answers NOAUTH) is the reason (see withRefusal).
type credsError struct{ err error }

func (e *credsError) Error() string { return e.err.Error() }
func (e *credsError) Unwrap() error { return e.err }

// authCredentials returns valkey-go's AuthCredentialsFn for creds (nil
// for nil: valkey-go then uses Username and Password). valkey-go calls it
// for every connection it opens, after the dial and before HELLO, with no
// context: each call gets one that ends after timeout (the dial's own
// context is not at hand there, and a provider must not run unbounded).
func authCredentials(creds func(context.Context) (string, string, error), timeout time.Duration) func(valkey.AuthCredentialsContext) (valkey.AuthCredentials, error) {
	if creds == nil {
		return nil
	}
	if timeout <= 0 {
		timeout = valkey.DefaultDialTimeout
	}
	return func(valkey.AuthCredentialsContext) (valkey.AuthCredentials, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		user, pass, err := creds(ctx)
		if err != nil {
			return valkey.AuthCredentials{}, &credsError{err}
		}
		return valkey.AuthCredentials{Username: user, Password: pass}, nil
	}
}

// Conn is one valkey-go client on one TCP connection. It implements
// drivers.ValkeyConn, the engine's fast path, and drivers.Conn over it
// (Exec builds valkey-go commands from the arguments and converts the
// replies: for the conformance suite and other callers that want the
// neutral interface; the engine does not use it).
//
// valkey-go runs blocking commands (BLPOP, XREAD BLOCK, ...) on a
// connection of their own and its Close does not interrupt them: Conn
// gives such calls a context that Close cancels.
//
// Close closes the sockets of every connection it dialled itself (see
// openConns) before valkey-go's Close, which would wait up to a second
// for each.
type Conn struct {
	c       valkey.Client
	call    *atomic.Int64 // the deadline of the call in progress (idleConn)
	open    *openConns    // the connections it dialled, closed by Close
	closing context.Context
	cancel  context.CancelFunc
	once    sync.Once

	// The driver's idle PING (ping.go): gate orders it with the calls on
	// the first connection.
	gate        gate
	pingTimeout time.Duration
	pingMu      sync.Mutex
	pingTimer   *time.Timer
	pingStopped bool

	// ded, once Listen ran, is the dedicated pub/sub connection: Do and
	// DoMulti use it from then on.
	ded    atomic.Pointer[valkey.DedicatedClient]
	hooked hookCalls // its reader's calls of the pub/sub hooks (pingListener)
	// pingLost is set when the dedicated connection's PING went
	// unanswered and pingListener closed the sockets.
	pingLost atomic.Bool
	mu       sync.Mutex // orders Listen and Close
	closed   bool

	// onLost, set by OnLost, is called once when the idle PING on the
	// first connection fails (drivers.LostNotifier).
	onLost atomic.Pointer[func(error)]
	// dead, set before the gate opens after a failed idle PING, fails
	// every later call on the first connection as not sent: valkey-go
	// would dial a new connection for it behind its owner's back, whose
	// handshake failing against a silent server read as a write that may
	// have run.
	dead atomic.Pointer[error]
}

var _ drivers.LostNotifier = (*Conn)(nil)

// OnLost implements drivers.LostNotifier: f is called once, on the
// driver's PING goroutine, when the idle PING on the Conn's connection
// gets no reply within the connection's timeout or fails (the server
// froze, closed the connection or went away while nothing was sent). The
// connection is broken by then: valkey-go would dial a new one for the
// next call. A later OnLost replaces f.
func (c *Conn) OnLost(f func(error)) {
	if f == nil {
		c.onLost.Store(nil)
		return
	}
	c.onLost.Store(&f)
}

func newConn(c valkey.Client, call *atomic.Int64, open *openConns) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &Conn{c: c, call: call, open: open, closing: ctx, cancel: cancel}
}

// begin tells the connections the deadline of the call about to be made
// with ctx (0: none), so that they keep it as the caller's rather than
// take it for valkey-go's default (see idleConn). Calls are made by one
// goroutine at a time; end clears it.
func (c *Conn) begin(ctx context.Context) {
	var dl int64
	if d, ok := ctx.Deadline(); ok {
		dl = d.UnixNano()
	}
	c.call.Store(dl)
}

func (c *Conn) end() { c.call.Store(0) }

// callCtx returns the context for a call: ctx itself, unless the call
// holds a blocking command, which gets a context that Close also cancels.
// (A ctx with a Done channel moves valkey-go off its synchronous path, so
// ordinary calls keep the caller's.)
func (c *Conn) callCtx(ctx context.Context, cmds ...valkey.Completed) (context.Context, context.CancelFunc) {
	for _, cmd := range cmds {
		if cmd.IsBlock() {
			// Without a deadline: valkey-go then waits for the reply on
			// its background path, which a cancel interrupts (with one it
			// reads synchronously until the deadline, deaf to Close). ctx's
			// deadline and cancellation still end the call, through cancel.
			cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			stopClose := context.AfterFunc(c.closing, cancel)
			stopCaller := context.AfterFunc(ctx, cancel)
			return cctx, func() { stopClose(); stopCaller(); cancel() }
		}
	}
	return ctx, nil
}

// Client returns the underlying valkey-go client, for capabilities the
// driver interface does not cover yet.
func (c *Conn) Client() valkey.Client { return c.c }

// B implements drivers.ValkeyConn.
func (c *Conn) B() valkey.Builder { return c.c.B() }

// Do implements drivers.ValkeyConn.
func (c *Conn) Do(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResult {
	if d := c.ded.Load(); d != nil {
		return (*d).Do(ctx, cmd)
	}
	if cmd.IsBlock() {
		if c.closing.Err() != nil {
			return valkey.NewErrorResult(errClosedNotSent)
		}
		cctx, done := c.callCtx(ctx, cmd)
		defer done()
		return c.cause(ctx, c.c.Do(cctx, cmd))
	}
	if err := c.gate.enter(ctx); err != nil {
		return valkey.NewErrorResult(errNotSentCtx(err))
	}
	if dead := c.dead.Load(); dead != nil {
		c.gate.exit()
		return valkey.NewErrorResult(*dead)
	}
	c.begin(ctx)
	r := c.c.Do(ctx, cmd)
	c.end()
	c.gate.exit()
	return r
}

// errClosedNotSent fails a blocking call made after Close began: nothing
// was written (without the check, valkey-go's cancelled call read as
// possibly run: the engine reported BLPOPs that never ran as
// ErrOutcomeUnknown).
var errClosedNotSent = fmt.Errorf("%w: %w", drivers.ErrNotSent, drivers.ErrClosed)

// cause replaces the cancellation of a blocking call's own context with
// its reason: the caller's context error, or ErrClosing after Close.
func (c *Conn) cause(ctx context.Context, r valkey.ValkeyResult) valkey.ValkeyResult {
	if r.NonValkeyError() != context.Canceled {
		return r
	}
	if err := ctx.Err(); err != nil {
		return valkey.NewErrorResult(err)
	}
	if c.closing.Err() != nil {
		return valkey.NewErrorResult(valkey.ErrClosing)
	}
	return r
}

// DoMulti implements drivers.ValkeyConn.
func (c *Conn) DoMulti(ctx context.Context, cmds ...valkey.Completed) []valkey.ValkeyResult {
	if d := c.ded.Load(); d != nil {
		return (*d).DoMulti(ctx, cmds...)
	}
	if cctx, done := c.callCtx(ctx, cmds...); done != nil {
		defer done()
		if c.closing.Err() != nil {
			rs := make([]valkey.ValkeyResult, len(cmds))
			for i := range rs {
				rs[i] = valkey.NewErrorResult(errClosedNotSent)
			}
			return rs
		}
		rs := c.c.DoMulti(cctx, cmds...)
		for i, r := range rs {
			rs[i] = c.cause(ctx, r)
		}
		return rs
	}
	err := c.gate.enter(ctx)
	if err != nil {
		err = errNotSentCtx(err)
	} else if dead := c.dead.Load(); dead != nil {
		c.gate.exit()
		err = *dead
	}
	if err != nil {
		rs := make([]valkey.ValkeyResult, len(cmds))
		for i := range rs {
			rs[i] = valkey.NewErrorResult(err)
		}
		return rs
	}
	c.begin(ctx)
	rs := c.c.DoMulti(ctx, cmds...)
	c.end()
	c.gate.exit()
	return rs
}

// Exec implements drivers.Conn through DoMulti. Results after Close wrap
// drivers.ErrClosed, those of a failed dial drivers.ErrNotSent.
func (c *Conn) Exec(ctx context.Context, cmds []drivers.Command, out []drivers.Result) {
	b := c.B()
	vcmds := make([]valkey.Completed, 0, len(cmds))
	idx := make([]int, 0, len(cmds))
	for i, cmd := range cmds {
		vc, err := build(b, cmd)
		if err != nil {
			out[i] = drivers.Result{Err: err}
			continue
		}
		vcmds = append(vcmds, vc)
		idx = append(idx, i)
	}
	if len(vcmds) == 0 {
		return
	}
	for j, r := range c.DoMulti(ctx, vcmds...) {
		res := drivers.FromValkey(r)
		if res.Err != nil {
			res.Err = c.neutralError(res.Err)
		}
		out[idx[j]] = res
	}
}

var errEmptyCommand = errors.New("valkey-go: empty command")

// build makes the valkey-go command of cmd. valkey-go's Arbitrary refuses
// (P|S)(UN)SUBSCRIBE, which need the flags of their own builders, and an
// empty name.
func build(b valkey.Builder, cmd drivers.Command) (valkey.Completed, error) {
	if len(cmd.Args) == 0 || cmd.Args[0] == "" {
		return valkey.Completed{}, errEmptyCommand
	}
	names := cmd.Args[1:]
	switch strings.ToUpper(cmd.Args[0]) {
	case "SUBSCRIBE":
		return b.Subscribe().Channel(names...).Build(), nil
	case "UNSUBSCRIBE":
		return b.Unsubscribe().Channel(names...).Build(), nil
	case "PSUBSCRIBE":
		return b.Psubscribe().Pattern(names...).Build(), nil
	case "PUNSUBSCRIBE":
		return b.Punsubscribe().Pattern(names...).Build(), nil
	case "SSUBSCRIBE":
		return b.Ssubscribe().Channel(names...).Build(), nil
	case "SUNSUBSCRIBE":
		return b.Sunsubscribe().Channel(names...).Build(), nil
	}
	if strings.HasSuffix(strings.ToUpper(cmd.Args[0]), "SUBSCRIBE") {
		return valkey.Completed{}, fmt.Errorf("valkey-go: %s is not supported", cmd.Args[0])
	}
	a := b.Arbitrary(cmd.Args...)
	switch {
	case cmd.Flags&drivers.Blocking != 0:
		return a.Blocking(), nil
	case cmd.Flags&drivers.ReadOnly != 0:
		return a.ReadOnly(), nil
	}
	return a.Build(), nil
}

// neutralError marks valkey-go's errors with the drivers sentinels: after
// Close every transport error is ErrClosed (valkey-go reports a closed
// socket as net.ErrClosed or its own ErrClosing).
func (c *Conn) neutralError(err error) error {
	var op *net.OpError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, valkey.ErrClosing), c.closing.Err() != nil:
		return fmt.Errorf("%w: %w", drivers.ErrClosed, err)
	case errors.As(err, &op) && op.Op == "dial":
		return fmt.Errorf("%w: %w", drivers.ErrNotSent, err)
	}
	return err
}

// Listen implements drivers.PubSub over ListenValkey.
func (c *Conn) Listen(h drivers.PubSubHooks) <-chan error {
	var vh valkey.PubSubHooks
	if h.OnMessage != nil {
		vh.OnMessage = func(m valkey.PubSubMessage) {
			h.OnMessage(drivers.Message{Channel: m.Channel, Message: m.Message, Pattern: m.Pattern})
		}
	}
	if h.OnSubscription != nil {
		vh.OnSubscription = func(s valkey.PubSubSubscription) {
			h.OnSubscription(drivers.Subscription{Kind: s.Kind, Channel: s.Channel, Count: s.Count})
		}
	}
	return c.ListenValkey(vh)
}

// ListenValkey implements drivers.ValkeyPubSub with valkey-go's pub/sub
// hooks on a dedicated connection (DedicatedClient.SetPubSubHooks).
// valkey-go holds that connection apart from the one the client dialled
// first, which stays open and idle until Close: a listening Conn uses two
// TCP connections.
func (c *Conn) ListenValkey(h valkey.PubSubHooks) <-chan error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.ded.Load() != nil {
		ch := make(chan error, 1)
		if c.closed {
			ch <- valkey.ErrClosing
		} else {
			ch <- errors.New("valkey-go: Listen called twice")
		}
		close(ch)
		return ch
	}
	if h.OnMessage == nil && h.OnSubscription == nil {
		h.OnMessage = func(valkey.PubSubMessage) {} // valkey-go ignores empty hooks
	}
	h = c.hooked.wrap(h)
	d, _ := c.c.Dedicate() // released by Close (DedicatedClient.Close)
	done := d.SetPubSubHooks(h)
	c.ded.Store(&d)
	// The error of a connection closed for an unanswered PING says so
	// (valkey-go's reads "use of closed network connection").
	out := make(chan error, 1)
	go func() {
		defer close(out)
		for err := range done {
			if c.pingLost.Load() {
				err = fmt.Errorf("valkey-go: no reply to PING within %s (the server or the network went silent): %w", c.pingTimeout, err)
			}
			out <- err
		}
	}()
	return out
}

// Close implements drivers.Conn: calls in flight fail. It first closes
// the sockets of every connection the Conn dialled (openConns: the first
// one, those valkey-go pooled for blocking commands and large pipelines,
// a listening Conn's dedicated pub/sub one), so that valkey-go's close of
// each, which sends a PING and waits up to 1 s for its reply, fails its
// PING at once instead of waiting for a stalled server. A listening
// Conn's two valkey-go clients are then closed at the same time.
func (c *Conn) Close() error {
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		c.stopPing()
		c.cancel()
		c.open.closeAll()
		d := c.ded.Load()
		if d == nil {
			c.c.Close()
			return
		}
		var wg sync.WaitGroup
		wg.Go((*d).Close)
		c.c.Close()
		wg.Wait()
	})
	return nil
}
