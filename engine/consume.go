package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/policies"
)

// ConsumeOptions configures Consume. The zero value takes every default:
// a field left at 0 takes its default. ClaimIdle and ClaimInterval can be
// set to zero itself with ConsumeZero (any negative duration means zero
// there). Other negative values are rejected with ErrInvalidArgument.
type ConsumeOptions struct {
	// Count is the most entries one read returns (XREADGROUP COUNT) and
	// one reclaim round claims (XAUTOCLAIM COUNT); their acknowledgements
	// go out as one XACK. Default 100 (0 takes it); at most 1,000,000
	// (the server allocates XAUTOCLAIM's COUNT slots up front, and refuses
	// a huge COUNT).
	Count int64
	// Block is how long one read waits for new entries (XREADGROUP BLOCK,
	// millisecond precision). Reclaim rounds run between reads, so Block
	// also bounds how late one starts. Default 1s (0 takes it); at least
	// 1ms (a shorter one is rounded up: BLOCK 0 would wait for ever, and
	// a read that does not wait would have the consumer spin).
	Block time.Duration
	// ClaimIdle is how long an entry must have been pending (delivered and
	// not acknowledged, to any consumer of the group, this one included)
	// before a reclaim round takes it over and hands it to the handler
	// again: entries whose handler failed, and entries of consumers that
	// died. Millisecond precision, rounded up. Default 30s (0 takes it); ConsumeZero
	// (or any negative duration): every pending entry, however recently
	// delivered (XAUTOCLAIM MIN-IDLE-TIME 0), including those another live
	// consumer of the group is handling at that moment.
	ClaimIdle time.Duration
	// ClaimInterval is the time between reclaim rounds (XAUTOCLAIM over the
	// whole pending list). One also runs after every (re)connect.
	// Default 10s (0 takes it); ConsumeZero (or any negative duration): a
	// round before every read (one more round trip per read, two with
	// ConsumerEvents hooks, which get a Lag event after each round). With
	// ClaimIdle ConsumeZero too, an entry whose handler keeps failing is
	// handed to it again before every read, with no backoff.
	ClaimInterval time.Duration
	// StartID is where a group that does not exist yet starts: "$" (only
	// entries added from now on) or "0" (the whole stream). An existing
	// group keeps its position; a group that vanishes while the consumer
	// runs is created again at "0" (see Engine.Consume). Default "$".
	StartID string
}

// maxConsumeCount bounds ConsumeOptions.Count: XAUTOCLAIM allocates COUNT
// slots on the server before it claims anything (16 MB at this bound) and
// refuses a COUNT it cannot allocate or above LONG_MAX/16 ("COUNT must be >
// 0"), which failed every session of the consumer.
const maxConsumeCount = 1_000_000

// Defaults of ConsumeOptions.
const (
	DefaultConsumeCount         = 100
	DefaultConsumeBlock         = time.Second
	DefaultConsumeClaimIdle     = 30 * time.Second
	DefaultConsumeClaimInterval = 10 * time.Second
)

// ConsumeZero sets ConsumeOptions.ClaimIdle or ClaimInterval to zero,
// whose 0 takes the default: ClaimIdle ConsumeZero reclaims pending
// entries at once, ClaimInterval ConsumeZero runs a reclaim round before
// every read. Any negative duration does the same; ConsumeZero says so.
const ConsumeZero time.Duration = -1

func (o ConsumeOptions) check() (ConsumeOptions, error) {
	switch {
	case o.Count < 0:
		return o, fmt.Errorf("%w: ConsumeOptions.Count %d is negative", ErrInvalidArgument, o.Count)
	case o.Count > maxConsumeCount:
		return o, fmt.Errorf("%w: ConsumeOptions.Count %d is over %d", ErrInvalidArgument, o.Count, maxConsumeCount)
	case o.Block < 0:
		return o, fmt.Errorf("%w: ConsumeOptions.Block %s is negative (0 takes the default, %s; the least is 1ms)",
			ErrInvalidArgument, o.Block, DefaultConsumeBlock)
	}
	if o.Count == 0 {
		o.Count = DefaultConsumeCount
	}
	if o.Block == 0 {
		o.Block = DefaultConsumeBlock
	}
	if o.Block < time.Millisecond {
		o.Block = time.Millisecond // BLOCK 0 would wait forever
	}
	// From here on ClaimIdle and ClaimInterval 0 mean zero.
	switch {
	case o.ClaimIdle == 0:
		o.ClaimIdle = DefaultConsumeClaimIdle
	case o.ClaimIdle < 0: // ConsumeZero
		o.ClaimIdle = 0
	}
	switch {
	case o.ClaimInterval == 0:
		o.ClaimInterval = DefaultConsumeClaimInterval
	case o.ClaimInterval < 0: // ConsumeZero
		o.ClaimInterval = 0
	}
	if o.StartID == "" {
		o.StartID = "$"
	}
	return o, nil
}

// ConsumerStats is a snapshot of a Consumer's counters.
type ConsumerStats struct {
	// Handled counts handler calls that returned nil; Failed those that
	// returned an error or panicked (the entry stays pending).
	Handled, Failed uint64
	// Acked counts entries acknowledged (removed from the pending list).
	Acked uint64
	// Claimed counts entries taken over by reclaim rounds (XAUTOCLAIM),
	// also this consumer's own.
	Claimed uint64
	// Reconnects counts the attempts to connect again after a failure
	// (dials that failed included).
	Reconnects uint64
	// LastError is the consumer's last connection error (nil when none
	// has happened): the one that cost it its connection, or a later
	// failed attempt to connect again (a refused dial, its timeout),
	// whichever came last. It stays once the consumer reads again: the
	// ConsumerEvents hooks' Resumed says when it did.
	LastError error
}

// Consumer reads a stream as one consumer of a consumer group and hands
// each entry to a handler; see Engine.Consume. Its methods are safe for
// concurrent use.
//
// It is a supervised loop owned by this type (one goroutine, one handler
// call at a time), not a protoactor actor: it owns its dedicated
// connection, and after any failure closes it and starts again with a new
// one after a backoff, the way the engine's supervisor restarts a
// connection actor.
type Consumer struct {
	// Its state is behind this one pointer: fmt of a value holding a
	// *Consumer (printed with %s) then prints an address instead of
	// reading the state without its locks (see Engine).
	*consumerState
}

// consumerState is a Consumer's state (see Consumer).
type consumerState struct {
	e        *Engine
	stream   string
	group    string
	name     string
	handler  func(context.Context, XEntry) error
	opts     ConsumeOptions
	ackLimit time.Duration

	// instance numbers the consumer for the hooks (hooks.Consumer.Instance);
	// addr is the node it reads from, set by session: both read by tell,
	// which only the consumer's goroutine calls.
	instance uint64
	addr     string
	ask      string // the node of the last session's ASK (session)
	// down is when the consumer's connection failed, zero while it reads
	// (the Interrupted and Resumed events); the loop's own.
	down time.Time

	ctx    context.Context // cancelled by stop; the handler's context
	cancel context.CancelFunc
	done   chan struct{}
	// loop is the id of the goroutine that runs the loop and the handler
	// (set when it starts): a Close it calls does not wait for itself.
	loop atomic.Int64

	handled, failed, acked, claimed, reconnects atomic.Uint64
	lastErr                                     atomic.Pointer[error]
}

// errHandlerPanic wraps the value a handler panicked with.
var errHandlerPanic = errors.New("vactor: stream handler panicked")

// Consume starts a consumer named consumer in group on stream and returns
// it running. It creates the group when missing (XGROUP CREATE ... MKSTREAM
// at opts.StartID; an existing group is kept), then, on a connection of its
// own to the node serving stream (so blocking reads never hold up the
// pipelined connections):
//
//   - reads this consumer's own pending entries first (XREADGROUP from ID
//     0): entries delivered before a crash or a lost connection;
//   - reclaims entries pending longer than opts.ClaimIdle (XAUTOCLAIM),
//     after connecting and every opts.ClaimInterval;
//   - otherwise waits for new entries (XREADGROUP ... BLOCK opts.Block >).
//
// handler is called once per entry, one at a time, on the consumer's
// goroutine, with a context that is cancelled when the consumer stops. It
// may call the Consumer's Close, or the engine's, to stop the consumer
// after this entry: see Consumer.Close. An entry whose handler returns nil is
// acknowledged (one XACK per read); an entry whose handler fails or panics
// (the panic is recovered) stays pending and is handed to a handler again
// by a reclaim round once opts.ClaimIdle has passed (or sooner, when the
// consumer reconnects and re-reads its own pending entries). Such an entry
// is retried until its handler succeeds. Entries deleted from the stream
// while pending are acknowledged without calling handler.
//
// Delivery is at least once: nothing acknowledged is lost, and an entry
// can be handled more than once (its handler succeeded but the XACK was
// lost with the connection; or it was reclaimed while slow). After any
// failure (connection lost, server restart, error reply) the consumer
// closes its connection and starts again with a new one after a backoff
// (Config.MinRetryBackoff doubling up to MaxRetryBackoff, with jitter);
// Stats counts these reconnects.
//
// If the group disappears while the consumer runs (the stream deleted,
// the server restarted without persistence, XGROUP DESTROY), the consumer
// creates it again at ID 0 when it reconnects: every entry then in the
// stream is handled (at least once; after an XGROUP DESTROY that includes
// entries handled before), whatever opts.StartID says.
//
// ctx bounds the group creation only; the consumer runs until Close or the
// engine's Close (values of ctx reach the handler's context). An engine
// that is closed fails it with ErrClosed, before any other check; invalid
// arguments (empty names, nil handler, a negative Count or Block, Count
// over its bound) with ErrInvalidArgument; a failed group creation (server unreachable, stream
// key of another type) with its error. In cluster mode the consumer reads
// from the primary serving stream's slot.
func (e *Engine) Consume(ctx context.Context, stream, group, consumer string, handler func(context.Context, XEntry) error, opts ConsumeOptions) (*Consumer, error) {
	if err := e.need(drivers.Capabilities{Blocking: true}, "Consume (XREADGROUP BLOCK)"); err != nil {
		return nil, err
	}
	switch {
	case stream == "":
		return nil, errStream("Consume", "stream key")
	case group == "":
		return nil, errStream("Consume", "group")
	case consumer == "":
		return nil, errStream("Consume", "consumer name")
	case handler == nil:
		return nil, fmt.Errorf("%w: Consume needs a handler", ErrInvalidArgument)
	}
	opts, err := opts.check()
	if err != nil {
		return nil, err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if e.closed.Load() {
		return nil, ErrClosed
	}
	// The engine's own command, as the consumer's later ones: not
	// reported to the command hooks (a BUSYGROUP reply when the group
	// exists is no failure of the program's).
	create := submitInternal(e, ctx, stream, xgroupCreate(e.b, stream, group, opts.StartID, true), decodeOK)
	if _, err := create.Await(ctx); err != nil && !isBusyGroup(err) {
		return nil, fmt.Errorf("vactor: consume %s: create group %s: %w", stream, group, err)
	}
	c := &Consumer{&consumerState{
		e: e, stream: stream, group: group, name: consumer, handler: handler, opts: opts,
		ackLimit: max(e.cfg.ReadTimeout, time.Second),
		done:     make(chan struct{}),
		instance: consumers.Add(1),
	}}
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if err := e.track(c); err != nil {
		c.cancel()
		return nil, err
	}
	go c.run()
	return c, nil
}

// consumers numbers the process's consumers (hooks.Consumer.Instance).
var consumers atomic.Uint64

func isBusyGroup(err error) bool {
	return errors.Is(err, &ServerError{Prefix: "BUSYGROUP"})
}

// Close stops the consumer: it cancels the handler's context, waits for
// the handler call in progress to return (its entry is acknowledged if it
// succeeded), and closes the connection. Entries read but not handled yet
// stay pending for the next consumer of the group. The ConsumerEvents
// hooks get a hooks.Stopped event, the consumer's last (also when the
// engine's Close stops it). Close is idempotent and always returns nil.
//
// A blocked read (XREADGROUP ... BLOCK) is ended on the server before
// Close returns: CLIENT UNBLOCK from the consumer's other connection to
// the node, then its nil reply awaited. An entry added once Close has
// returned goes to the group's other consumers, never to the closed one's
// read. When that cannot be done, Close closes the read's connection
// instead and returns at once; the server may then hold the read until it
// notices the closed connection, and an entry added meanwhile is delivered
// to it and stays pending for the closed consumer (XPENDING and reclaims
// see it; a consumer of the same name gets it when it starts): for an ACL
// user refused CLIENT ID or CLIENT UNBLOCK, a driver whose blocking
// connection cannot be told, a read the driver sent on a new connection
// since the last read (the server's timeout, or a kill, closed the old one
// while a handler ran: the id known is the old one's), or a server that
// does not end the read
// within 250 ms (unblockWait: a server gone silent delays Close that
// long, no more).
//
// Close may be called from the handler, to stop after the entry it is
// handling: it then stops the consumer the same way but cannot wait for
// the handler, which is its caller. It returns at once; no other entry is
// handed to a handler; the entry in hand is acknowledged if the handler
// then returns nil (and stays pending if it fails), as with a Close from
// elsewhere; once the handler has returned, the connection is closed, the
// Stopped event sent and Done closed. The engine's Close called from the
// handler likewise stops this consumer without waiting for it (and every
// other service as always) and returns while the handler still runs: the
// acknowledgement and the Stopped event then come after the engine's
// Close, and the hooks, which it closed, do not get them.
func (c *Consumer) Close() error {
	if c == nil || c.consumerState == nil || c.e == nil {
		return errZeroConsumer
	}
	c.e.untrack(c)
	c.stopFrom(ErrClosed, goid())
	return nil
}

// stop implements service.
func (c *Consumer) stop(err error) { c.stopFrom(err, 0) }

// runsHandler implements handlerService: the loop's goroutine runs the
// handler.
func (c *Consumer) runsHandler(g int64) bool { return g != 0 && g == c.loop.Load() }

// stopFrom implements handlerService: called from the consumer's own
// goroutine (its handler), it does not wait for that goroutine; the loop
// ends when the handler returns.
func (c *Consumer) stopFrom(_ error, caller int64) {
	c.cancel()
	if caller != 0 && caller == c.loop.Load() {
		return
	}
	<-c.done
}

// Done is closed once the consumer has stopped.
func (c *Consumer) Done() <-chan struct{} {
	if c == nil || c.consumerState == nil || c.e == nil {
		return closedDone // it never ran
	}
	return c.done
}

// errZeroConsumer fails Close of a Consumer the engine did not make;
// closedDone is its Done.
var (
	errZeroConsumer = notMade("a zero Consumer: make one with Engine.Consume")
	closedDone      = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()
)

// Stats returns a snapshot of the consumer's counters.
func (c *Consumer) Stats() ConsumerStats {
	if c == nil || c.consumerState == nil || c.e == nil {
		return ConsumerStats{}
	}
	s := ConsumerStats{
		Handled:    c.handled.Load(),
		Failed:     c.failed.Load(),
		Acked:      c.acked.Load(),
		Claimed:    c.claimed.Load(),
		Reconnects: c.reconnects.Load(),
	}
	if p := c.lastErr.Load(); p != nil {
		s.LastError = *p
	}
	return s
}

// run is the supervision loop: one session per connection, a backoff
// between them, until stopped.
func (c *Consumer) run() {
	c.loop.Store(goid())
	defer func() {
		// Before done: once Close returns, the event is queued (the
		// engine's Close delivers it).
		c.tell(hooks.Consumer{Kind: hooks.Stopped})
		close(c.done)
	}()
	backoff := policies.Backoff{Min: c.e.cfg.MinRetryBackoff, Max: c.e.cfg.MaxRetryBackoff}
	attempt := 0
	for {
		connected, err := c.session()
		if c.ctx.Err() != nil {
			return
		}
		if err != nil && !strings.HasPrefix(err.Error(), "vactor: ") {
			// A bare transport error ("EOF"): say whose and where.
			err = fmt.Errorf("vactor: consumer: connection to %s: %w", c.addr, err)
		}
		c.lastErr.Store(&err)
		if c.down.IsZero() {
			c.down = time.Now()
			c.tell(hooks.Consumer{Kind: hooks.Interrupted, Err: err})
		}
		if a, ok := askAddr(err); ok && c.e.cl != nil && c.addr != a {
			// Read from the importing node at once (see session).
			c.ask = a
			c.reconnects.Add(1)
			continue
		}
		if c.e.cl != nil {
			// The slot may have moved or its primary failed over: have the
			// slot map reloaded (in the background, rate-limited) before
			// the next addrOf.
			c.e.cl.Stale(c.e.slotOf(c.stream))
		}
		if connected || errors.Is(err, ErrPrimaryChanged) {
			// A sentinel switch closed the connection: the new primary is
			// up, so the shortest backoff (the failures of the outage
			// before it had grown it to MaxRetryBackoff: the consumer
			// resumed 0.6-1.05 s after the switch, QA-AB 5).
			attempt = 0
		}
		t := time.NewTimer(backoff.Delay(attempt))
		attempt++
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		c.reconnects.Add(1)
	}
}

// session connects, recovers what is pending and reads until a failure
// or stop. connected reports whether it got through one whole round
// (pending entries, a reclaim, a read): only then does the next session
// start over from the shortest backoff, so that an error every session
// hits at once (NOPERM for XREADGROUP, ...) does not have the consumer
// re-dial at the shortest backoff forever.
//
// After a session ended by ASK (cluster mode: the stream's slot is being
// migrated and the stream is on the importing node already), the next
// one reads from the node ASK named, each command sent after ASKING,
// instead of waiting for the migration to end (the slot map names the
// owner until then).
func (c *Consumer) session() (connected bool, err error) {
	addr, ask := c.ask, c.ask != ""
	c.ask = ""
	if !ask {
		if addr, err = c.e.addrOf(c.stream); err != nil {
			return false, err
		}
	}
	c.addr = addr
	conn, err := c.e.dial(c.ctx, addr)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	// Stopping while a blocked read is out ends it with CLIENT UNBLOCK and
	// waits for it, so that the server delivers nothing to it after Close
	// (see readStop). It closes the connection instead while the read's
	// connection is being dialled (probeReadConn): the driver may be
	// dialling it (valkey-go opens one of its own for blocking commands),
	// and its handshake heeds no ctx, so a server that accepts and does
	// not answer held Consumer.Close and the engine's Close for the
	// handshake's read timeout (qa-AZ AZ3: 2.8 s with the defaults,
	// whatever DrainTimeout). Only while a read is out: a handler running
	// when the consumer stops still gets its entries acknowledged on this
	// connection.
	rd := newReadStop(conn, unblockWait)
	stopRead := context.AfterFunc(c.ctx, rd.stop)
	defer func() {
		if !stopRead() {
			<-rd.fin
		}
	}()
	if ask {
		conn = askingConn{conn}
	}
	b := conn.B()
	// The group again: it was there when Consume returned (created at
	// StartID, or existing), so if it is missing now it vanished under the
	// consumer (the stream deleted, a server restart without persistence,
	// XGROUP DESTROY). Entries may have been added since (the XADD that
	// recreated a deleted stream is what fails the blocked read with
	// NOGROUP): create it at 0, so that none of them is skipped, as StartID
	// "$" would.
	create := b.XgroupCreate().Key(c.stream).Group(c.group).Id("0").Mkstream().Build()
	res := conn.Do(c.ctx, create)
	if err := replyError(&res, res.Error()); err != nil && !isBusyGroup(err) {
		return false, err
	}
	if err := c.readPending(conn); err != nil {
		return false, err
	}
	if !c.down.IsZero() {
		// Reading again: the new connection answered the group's check
		// and the pending read. (Told after the first blocked read
		// instead, Resumed came up to Block late on an idle stream, after
		// the new connection's Lag: qa-AK AK2.)
		c.tell(hooks.Consumer{Kind: hooks.Resumed, Gap: time.Since(c.down)})
		c.down = time.Time{}
	}
	// The id of the connection the blocked reads go on, for readStop.
	if ok, err := c.probeReadConn(conn, rd); !ok {
		return false, err
	}
	next := time.Now()
	for c.ctx.Err() == nil {
		if !time.Now().Before(next) {
			if err := c.reclaim(conn); err != nil {
				return connected, err
			}
			next = time.Now().Add(c.opts.ClaimInterval)
		}
		cmd := b.Xreadgroup().Group(c.group, c.name).Count(c.opts.Count).Block(c.opts.Block.Milliseconds()).
			Streams().Key(c.stream).Id(">").Build()
		// The blocked read is bounded by BLOCK plus the silence a round
		// trip may have (no driver timeout bounds a blocking command): a
		// server or network gone silent ends the session, which then
		// reconnects, instead of stalling the consumer for as long as the
		// silence lasts. Entries delivered to a read cut this way stay
		// pending for this consumer and are handed over after the
		// reconnect (readPending). Stopping does not cancel it: readStop
		// has the server end it (a cancelled blocking call returns at once
		// and the driver closes its connection, while the server may
		// still hold the read).
		out, ok := rd.begin()
		if !ok {
			break // stopping
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), readBound(c.opts.Block, c.e.silenceBound()))
		var res valkey.ValkeyResult
		if rd.asks() {
			rr := conn.DoMulti(rctx, clientID(b), cmd)
			rd.end(out)
			rd.setID(rr[0])
			res = rr[1]
		} else {
			// CLIENT ID refused: one refusal per session, not per read.
			res = conn.Do(rctx, cmd)
			rd.end(out)
		}
		silent := errors.Is(rctx.Err(), context.DeadlineExceeded) // before cancel, which ends rctx too
		cancel()
		got, err := decodeXRead(res)
		if err != nil {
			if c.ctx.Err() == nil && silent {
				return connected, fmt.Errorf("vactor: consumer: no reply to XREADGROUP within BLOCK %s + %s (the server or the network went silent): %w",
					c.opts.Block, c.e.silenceBound(), err)
			}
			return connected, replyError(&res, err)
		}
		connected = true
		if err := c.process(conn, got[c.stream]); err != nil {
			return true, err
		}
	}
	return true, nil
}

// probeReadConn asks the CLIENT ID of the connection the session's
// blocked reads go on, for readStop: a blocking-flagged CLIENT ID, which
// the driver runs on that connection (dialling it first). An error reply
// (an ACL user without CLIENT ID) leaves the id unknown. ok is false when
// the session must end: stopping (err nil), or the probe got no reply.
func (c *Consumer) probeReadConn(conn drivers.ValkeyConn, rd *readStop) (ok bool, err error) {
	out, ok := rd.begin()
	if !ok {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.e.silenceBound())
	res := conn.Do(ctx, clientID(conn.B()))
	cancel()
	rd.end(out)
	if err := res.NonValkeyError(); err != nil {
		return false, err
	}
	rd.setID(res)
	return true, nil
}

// readPending hands this consumer's own pending entries to the handler
// again: those delivered before the last connection was lost.
func (c *Consumer) readPending(conn drivers.ValkeyConn) error {
	b := conn.B()
	last := "0"
	for c.ctx.Err() == nil {
		cmd := b.Xreadgroup().Group(c.group, c.name).Count(c.opts.Count).Streams().Key(c.stream).Id(last).Build()
		res := conn.Do(c.ctx, cmd)
		got, err := decodeXRead(res)
		if err != nil {
			return replyError(&res, err)
		}
		entries := got[c.stream]
		if len(entries) == 0 {
			return nil
		}
		c.tell(hooks.Consumer{Kind: hooks.Redelivered, Count: len(entries)})
		if err := c.process(conn, entries); err != nil {
			return err
		}
		last = entries[len(entries)-1].ID
	}
	return nil
}

// reclaim runs XAUTOCLAIM over the whole pending list, handing what it
// claims to the handler.
func (c *Consumer) reclaim(conn drivers.ValkeyConn) error {
	b := conn.B()
	start := "0-0"
	idle := ms(c.opts.ClaimIdle)
	for c.ctx.Err() == nil {
		cmd := b.Xautoclaim().Key(c.stream).Group(c.group).Consumer(c.name).MinIdleTime(idle).Start(start).Count(c.opts.Count).Build()
		res := conn.Do(c.ctx, cmd)
		r, err := decodeXAutoClaim(res)
		if err != nil {
			return replyError(&res, err)
		}
		c.claimed.Add(uint64(len(r.Entries)))
		if len(r.Entries) > 0 {
			c.tell(hooks.Consumer{Kind: hooks.Claimed, Count: len(r.Entries)})
			c.tell(hooks.Consumer{Kind: hooks.Redelivered, Count: len(r.Entries)})
		}
		if err := c.process(conn, r.Entries); err != nil {
			return err
		}
		if r.Next == "0-0" || r.Next == "0" {
			c.lag(conn)
			return nil
		}
		start = r.Next
	}
	return nil
}

// process hands entries to the handler, one at a time, and acknowledges
// those it handled with one XACK. Once stopping, the entries not handled
// yet stay pending.
func (c *Consumer) process(conn drivers.ValkeyConn, entries []XEntry) error {
	if len(entries) == 0 {
		return nil
	}
	ids := make([]string, 0, len(entries))
	for _, x := range entries {
		if c.ctx.Err() != nil {
			break
		}
		if x.Fields == nil { // deleted from the stream while pending
			ids = append(ids, x.ID)
			continue
		}
		if err := c.call(x); err != nil {
			c.failed.Add(1)
			c.tell(hooks.Consumer{Kind: hooks.HandlerFailed, ID: x.ID, Err: err})
			continue
		}
		c.handled.Add(1)
		ids = append(ids, x.ID)
	}
	if len(ids) == 0 {
		return nil
	}
	// Acknowledge also when stopping: bounded, not cancelled by stop.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), c.ackLimit)
	defer cancel()
	res := conn.Do(ctx, conn.B().Xack().Key(c.stream).Group(c.group).Id(ids...).Build())
	n, err := res.AsInt64()
	if err != nil {
		return replyError(&res, err)
	}
	c.acked.Add(uint64(n))
	c.tell(hooks.Consumer{Kind: hooks.Acked, Count: int(n)})
	return nil
}

// tell reports ev (its names, node and instance filled in) to the
// ConsumerEvents hooks.
func (c *Consumer) tell(ev hooks.Consumer) {
	if !c.e.bus.WantsConsumer() {
		return
	}
	ev.Stream, ev.Group, ev.Consumer, ev.Node, ev.Instance = c.stream, c.group, c.name, c.addr, c.instance
	c.e.bus.Emit(ev)
}

// readBound is how long a blocked read may take: block plus the silence
// a round trip may have, saturated. Block is not capped (the server takes
// BLOCK up to about 292 years from now), and the sum overflowed for the
// longest ones (time.Duration's maximum, a Go idiom for "until an entry
// comes") into a deadline already past: every read failed at once as
// "no reply within BLOCK", and the consumer reconnected about three times
// a second (TestConsumeLongestBlock). A bound that long detects no
// silence, as for any Block of years.
func readBound(block, silence time.Duration) time.Duration {
	if block > math.MaxInt64-silence {
		return math.MaxInt64
	}
	return block + silence
}

// lag reports the group's lag and pending count (XINFO GROUPS) to the
// ConsumerEvents hooks after a reclaim round; nothing without such hooks
// or when the server does not answer.
func (c *Consumer) lag(conn drivers.ValkeyConn) {
	if !c.e.bus.WantsConsumer() {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.ackLimit)
	defer cancel()
	groups, err := parseXGroups(conn.Do(ctx, conn.B().XinfoGroups().Key(c.stream).Build()))
	if err != nil {
		return
	}
	for _, g := range groups {
		if g.Name == c.group {
			c.tell(hooks.Consumer{Kind: hooks.Lag, Lag: g.Lag, Pending: g.Pending})
			return
		}
	}
}

// call runs the handler, turning a panic into an error.
func (c *Consumer) call(x XEntry) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errHandlerPanic, r)
		}
	}()
	return c.handler(c.ctx, x)
}

// askingConn sends ASKING before each command on a connection to the node
// an ASK redirect named (a consumer's session during a slot migration, a
// Watch run, a blocking command). An ASKING refused (an ACL user without
// it) changes nothing for the command behind it, which ran: its own reply
// is returned.
type askingConn struct{ drivers.ValkeyConn }

func (a askingConn) Do(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResult {
	return a.DoMulti(ctx, cmd)[0]
}

func (a askingConn) DoMulti(ctx context.Context, cmds ...valkey.Completed) []valkey.ValkeyResult {
	all := make([]valkey.Completed, 0, 2*len(cmds))
	for _, cmd := range cmds {
		all = append(all, a.B().Asking().Build(), cmd)
	}
	rs := a.ValkeyConn.DoMulti(ctx, all...)
	out := make([]valkey.ValkeyResult, len(cmds))
	for i := range out {
		if 2*i+1 >= len(rs) {
			out[i] = valkey.NewResult(valkey.ValkeyMessage{}, errShortAskReply)
			continue
		}
		out[i] = rs[2*i+1] // an ASKING refused changes nothing for the command, which ran
	}
	return out
}
