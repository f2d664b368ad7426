package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/policies"
)

// Blocking commands (BLPOP, XREAD ... BLOCK, ...) wait on the server for
// as long as their timeout says. Sent through a connection actor, one
// would hold up every command pipelined behind it, so Do sends them
// outside the actors: on the driver's connection for blocking commands
// (valkey-go keeps a pool of dedicated connections for them), one
// goroutine per blocking call, completed when the server answers, the
// command's ctx ends, the engine closes, or its finite timeout and the
// read bound passed without a reply (boundBlocking).

// blockingKey reports whether the command name/args may block on the
// server and, if so, the key that routes it.
func blockingKey(name string, args []string) (key string, ok bool) {
	switch strings.ToUpper(name) {
	case "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BZPOPMIN", "BZPOPMAX":
		if len(args) > 0 {
			return args[0], true
		}
	case "BLMPOP", "BZMPOP": // timeout numkeys key ...
		if len(args) > 2 {
			return args[2], true
		}
	case "XREAD", "XREADGROUP":
		if o := parseXReadArgs(name, args); o.block >= 0 && o.streams >= 0 && o.streams < len(args) {
			return args[o.streams], true
		}
	}
	return "", false
}

// xreadOpts are the positions of an XREAD's or XREADGROUP's options in its
// arguments: block, the index of BLOCK's milliseconds (-1 without BLOCK);
// streams, the index of the first key after STREAMS (-1 when the
// arguments do not parse, which the server refuses); noack, NOACK given.
type xreadOpts struct {
	block, streams int
	noack          bool
}

// parseXReadArgs parses XREAD's ([COUNT n] [BLOCK ms] STREAMS ...) or
// XREADGROUP's (GROUP group consumer [COUNT n] [BLOCK ms] [NOACK]
// STREAMS ...) options by position, in any order, as the server does: a
// group or a consumer named "noack", "block" or "streams" is a name
// (review-33 F1: scanning for the words took a consumer named noack for
// NOACK). An option it does not know (a newer server's, such as Redis
// 8.4's CLAIM) falls back to the words before STREAMS (scanXRead), so
// that such a command with BLOCK is still sent as a blocking one
// (review-33b B1, B2).
func parseXReadArgs(name string, args []string) xreadOpts {
	group := strings.EqualFold(name, "XREADGROUP")
	o := xreadOpts{block: -1, streams: -1}
	for i := 0; i < len(args); {
		switch a := strings.ToUpper(args[i]); {
		case a == "COUNT":
			i += 2
		case a == "BLOCK":
			o.block = i + 1
			i += 2
		case group && a == "GROUP":
			i += 3
		case group && a == "NOACK":
			o.noack = true
			i++
		case a == "STREAMS":
			o.streams = i + 1
			if o.block >= len(args) {
				o.block = -1
			}
			return o
		default:
			return scanXRead(args)
		}
	}
	return xreadOpts{block: -1, streams: -1}
}

// scanXRead is parseXReadArgs for arguments it cannot parse: BLOCK and
// NOACK are the words before the first STREAMS.
func scanXRead(args []string) xreadOpts {
	o := xreadOpts{block: -1, streams: -1}
	for i, a := range args {
		switch strings.ToUpper(a) {
		case "BLOCK":
			if i+1 < len(args) {
				o.block = i + 1
			}
		case "NOACK":
			o.noack = true
		case "STREAMS":
			o.streams = i + 1
			return o
		}
	}
	return xreadOpts{block: -1, streams: -1}
}

// blockingCalls tracks the goroutines of blocking calls in progress.
type blockingCalls struct {
	mu     sync.Mutex
	wg     sync.WaitGroup
	closed bool
	// sent is the number of blocking calls in the driver (see
	// boundBlocking).
	sent atomic.Int64
}

// blockingPool is the number of connections valkey-go keeps for blocking
// commands per node (its default BlockingPoolSize): past it, a call waits
// for a free one before it is sent.
const blockingPool = valkey.DefaultPoolSize

// doBlocking sends a blocking command on the driver connection of the
// connection actor that serves key, outside the actor.
func (e *Engine) doBlocking(ctx context.Context, key, name string, args []string) *futures.Future[Reply] {
	return doBlockingAs(e, ctx, key, name, args, asReply)
}

// asReply is doBlockingAs's conversion for Do: the Reply itself.
func asReply(r Reply) (Reply, error) { return r, nil }

// doBlockingAs is doBlocking for a typed command (BLPop, BLMove, ...):
// the call's goroutine converts the Reply with conv when there is no
// error, and completes the future with the result. A conversion chained
// on Do's future (futures.Then) would run on the futures package's
// callback goroutines instead, behind every callback queued before it
// (a program's that block delay it), and after the engine's Close has
// returned, which does not wait for them: the future would still be
// pending then, against Close's promise that every future is complete.
func doBlockingAs[T any](e *Engine, ctx context.Context, key, name string, args []string, conv func(Reply) (T, error)) *futures.Future[T] {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return fail[T](err) // never sent
	}
	if err := e.need(drivers.Capabilities{Blocking: true}, "blocking command "+strings.ToUpper(name)); err != nil {
		return fail[T](err)
	}
	var conn *actors.ConnState
	var slot uint16
	if e.cl != nil {
		slot = e.slotOf(key)
		addr, err := e.cl.Owner(slot)
		if err == nil {
			conn, err = e.cl.Conn(addr, slot)
		}
		if err != nil { // no owner yet, or its connection failed: as a command the slot actors refuse
			if e.bus.WantsCommands() {
				e.refused(ctx, "", err, e.b.Arbitrary(name).Args(args...).Blocking())
			}
			return fail[T](err)
		}
	} else {
		conn = e.pick(key)
	}
	if conn.Node != nil && conn.Node.Open() {
		err := conn.Node.OpenError()
		if e.bus.WantsCommands() { // as for a command the actors refuse
			e.refused(ctx, conn.Addr, err, e.b.Arbitrary(name).Args(args...).Blocking())
		}
		return fail[T](err)
	}
	drv := conn.CurrentDriver()
	if drv == nil {
		return fail[T](ErrClosed)
	}
	cmd := drv.B().Arbitrary(name).Args(args...).Blocking()
	// PreExecution before the call counts as in progress: a hook that
	// calls Close then closes the engine instead of waiting for its own
	// call (closeBlocking), which then finds the engine closed.
	var done func(error)
	var hops atomic.Int32 // the cluster redirects followed, for the hooks
	if e.bus.WantsCommands() {
		ctx, done = e.fireBlockingHops(ctx, conn.Addr, cmd, &hops)
	}
	e.block.mu.Lock()
	if e.block.closed || e.closed.Load() {
		e.block.mu.Unlock()
		if done != nil {
			done(ErrClosed)
		}
		return fail[T](ErrClosed)
	}
	e.block.wg.Add(1)
	e.block.mu.Unlock()
	var p futures.Promise[T]
	var completed atomic.Bool
	complete := func(v Reply, err error) {
		if !completed.CompareAndSwap(false, true) {
			return // the ctx ended first, or the call returned first
		}
		// The hooks below see the command's outcome, as for Do; only
		// the future sees what conv makes of the reply.
		if err == nil {
			t, cerr := conv(v)
			p.Complete(t, cerr)
		} else {
			var zero T
			p.Complete(zero, err)
		}
		if err != nil && errors.Is(err, policies.ErrOutcomeUnknown) {
			e.unknown.Add(1) // for Stats
		}
		if done != nil {
			done(err)
		}
	}
	// The ctx ends the future at once, whoever awaits it: the driver's call
	// may take longer to give up (valkey-go's, on a server that stopped
	// answering, ends seconds after its ctx), and the goroutine waits for
	// it on its own.
	// sending is set as the call goes to the driver: a pop its ctx ends
	// before then never ran (review-32b B3: it said "may have popped").
	var sending atomic.Bool
	stop := context.AfterFunc(ctx, func() {
		if sending.Load() {
			complete(Reply{}, cutByCtx(name, args, ctx.Err()))
		} else {
			complete(Reply{}, ctx.Err())
		}
	})
	var end func(error) error // LiveDriver's (sentinel mode)
	go func() {
		defer e.block.wg.Done()
		defer stop()
		if e.sn != nil {
			// A failover held: wait for the switch, then take the
			// connection of the primary it leads to, once the actor has
			// it (until its reconnect, the actor's connection is the
			// former primary's, which may still acknowledge writes the
			// failover drops: a BLMOVE woken by the switch ran there).
			if err := e.sn.settled(ctx); err != nil {
				complete(Reply{}, err)
				return
			}
			var err error
			if drv, end, err = conn.LiveDriver(ctx); err != nil || drv == nil {
				complete(Reply{}, cmp.Or(err, ErrClosed))
				return
			}
		}
		if e.closed.Load() {
			// Close began before it was sent: it never ran.
			if end != nil {
				_ = end(nil) // LiveDriver's call ends
			}
			complete(Reply{}, ErrClosed)
			return
		}
		sending.Store(true)
		e.block.sent.Add(1)
		defer e.block.sent.Add(-1)
		callCtx, cancel := e.boundBlocking(ctx, name, args)
		res := drv.Do(callCtx, cmd)
		silent := callCtx.Err() != nil && ctx.Err() == nil && res.NonValkeyError() != nil
		cancel()
		if end != nil {
			// Cut by the switch (the former primary's connection closed
			// under it): its error wraps ErrPrimaryChanged.
			if terr := end(res.NonValkeyError()); terr != nil {
				res = valkey.NewErrorResult(terr)
			}
		}
		node := conn.Addr
		if e.cl != nil {
			var ferr error
			if silent {
				// Not followed: no reply came.
			} else if res, node, silent, ferr = e.followBlocking(ctx, slot, conn.Addr, name, args, res, &hops); ferr != nil {
				complete(Reply{}, ferr)
				return
			}
		}
		v, err := decodeReply(res)
		if terr := res.NonValkeyError(); terr != nil && ctx.Err() == nil {
			switch {
			case silent && !e.closed.Load():
				err = e.silentError(name, args, node)
			case !policies.NotSent(terr) && !errors.Is(terr, ErrClosed):
				// Written, and its connection lost (CLIENT KILL, a
				// restart, the switch of a sentinel failover, Close):
				// the server may have popped the item. As for every
				// other command (before: the driver's bare text, such as
				// "EOF" or valkey-go's "valkey client is closing"; cut
				// by Close, ErrClosed, which says it never ran: items
				// popped in the last milliseconds were lost unseen).
				if e.closed.Load() {
					// Or while it was on its way: a driver cannot always
					// tell a call cut before its write from one cut after
					// (valkey-go dials a blocking command's connection,
					// and its Close reports both the same), so the doubt
					// goes to "may have run", never to "never ran".
					terr = fmt.Errorf("vactor: engine closed while %s was sent or blocked: %w", strings.ToUpper(name), terr)
				}
				err = &policies.OutcomeUnknownError{Cause: terr}
			case e.closed.Load():
				err = ErrClosed
			case policies.NotSent(terr):
				// Not written: its connection was down, or could not be
				// made (valkey-go dials a blocking command's connection
				// for the call). Named as the connection actors' dials
				// are, and matching ErrNotSent (qa-AO AO3: the bare
				// "dial tcp ...: connection refused").
				var op *net.OpError
				if errors.As(terr, &op) && op.Op == "dial" {
					terr = e.connectError(node, terr) // the node it last went to (review-33 F4)
				}
				err = unsentDial(terr)
			}
		}
		if err != nil && ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || res.NonValkeyError() != nil) {
			// The driver saw the ctx end before the AfterFunc did, and
			// said so with the ctx's error, or with its connection's
			// (cut to end the call: review-32b B4, it failed bare).
			err = cutByCtx(name, args, ctx.Err())
		}
		complete(v, replyError(&res, err))
	}()
	return p.Future()
}

// cutByCtx is the error of a blocking command its ctx ended (err): err
// itself, but for a command that pops (BLPOP, BRPOP, BLMPOP, BZPOPMIN,
// BZPOPMAX, BZMPOP) an outcome unknown wrapping it: the server may have
// popped an element for it as the ctx ended, and the reply that carried
// it goes to nobody (review-32 R3: 5 of 300 BRPops whose ctx ended as an
// item came lost it and said context.DeadlineExceeded, which reads as
// "did not run"). errors.Is(err, context.DeadlineExceeded) still holds.
// (BLMOVE and BRPOPLPUSH move the element, which stays in the
// destination; XREADGROUP leaves it pending, but with NOACK, which
// acknowledges what it reads, it may have read entries lost with its
// reply: an outcome unknown too.) The typed BLPop, BRPop and BLMove keep
// the server's timeout within the ctx's deadline, so that the server
// gives up first.
func cutByCtx(name string, args []string, err error) error {
	switch name = strings.ToUpper(name); name {
	case "BLPOP", "BRPOP", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP":
		return &policies.OutcomeUnknownError{Cause: fmt.Errorf("vactor: %s cut by its context: it may have popped an element, lost with its reply: %w", name, err)}
	case "XREADGROUP":
		if parseXReadArgs(name, args).noack {
			return &policies.OutcomeUnknownError{Cause: fmt.Errorf("vactor: XREADGROUP NOACK cut by its context: it may have read entries, acknowledged and lost with its reply: %w", err)}
		}
	}
	return err
}

// followBlocking follows the cluster's redirects of a blocking command
// whose reply was res (cluster mode): MOVED (sent to the node it names,
// the slot map reloaded: the engine's map was stale, or the slot moved
// while the command blocked, which the server ends with MOVED), ASK (sent
// with ASKING to the importing node), and the UNBLOCKED with which Redis
// 7 and Valkey before 9 end a command blocked on a primary that a
// failover demotes (sent to the primary the reloaded map names), TRYAGAIN
// and CLUSTERDOWN (sent to the slot's owner after a backoff); up to
// Config.MaxRedirects times. Nothing ran before any of these replies, so
// the command is sent again whole (its timeout starts again, within what
// is left of ctx's deadline: retimed). It returns
// the last reply, or the error to fail the command with, unsent
// (ErrTooManyRedirects joined with the reply, the target's breaker open,
// ...); silent when the last call got no reply within boundBlocking's
// bound.
func (e *Engine) followBlocking(ctx context.Context, slot uint16, from, name string, args []string, res valkey.ValkeyResult, hops *atomic.Int32) (_ valkey.ValkeyResult, node string, silent bool, _ error) {
	for hop := 0; ; hop++ {
		ve, ok := valkey.IsValkeyErr(res.Error())
		if !ok || ctx.Err() != nil {
			return res, from, false, nil
		}
		ev := hooks.Redirect{Slot: int(slot), From: from, Name: strings.ToUpper(name)}
		demoted := false
		if addr, ok := actors.MovedAddr(ve); ok {
			ev.Kind, ev.To = hooks.RedirectMoved, addr
		} else if addr, ok := actors.AskAddr(ve); ok {
			ev.Kind, ev.To = hooks.RedirectAsk, addr
		} else if ve.IsTryAgain() {
			ev.Kind = hooks.RedirectTryAgain
		} else if ve.IsClusterDown() {
			ev.Kind = hooks.RedirectClusterDown
		} else if demoted = demotedUnblock(ve); !demoted {
			return res, from, false, nil
		}
		hops.Add(1) // Executed.Redirects: each redirect reply, the one given up on included (as the actors count)
		gaveUp := hop >= e.cfg.MaxRedirects
		if !demoted && e.bus.WantsRedirects() {
			ev.GaveUp = gaveUp
			e.bus.Emit(ev)
		}
		if gaveUp {
			return res, from, false, errors.Join(ErrTooManyRedirects, replyError(&res, res.Error()))
		}
		switch {
		case demoted:
			// A failover under way: wait a backoff, then for a map newer
			// than the one that named the demoted node (a replica still
			// named answers MOVED, followed above).
			if err := e.sleepCtx(ctx, e.txBackoff().Delay(hop)); err != nil {
				return res, from, false, err
			}
			addr, err := e.cl.Refresh(slot)
			if err != nil {
				return res, from, false, err
			}
			ev.To = addr
		case ev.Kind == hooks.RedirectTryAgain || ev.Kind == hooks.RedirectClusterDown:
			// The slot's keys are split between the two nodes of a
			// migration (TRYAGAIN), or the cluster is down: wait a
			// backoff, as for any other command (qa-AO AO2: a BLMOVE
			// failed at once with the bare TRYAGAIN, and a worker loop
			// spun on it), then send it to the slot's owner.
			if err := e.sleepCtx(ctx, e.txBackoff().Delay(hop)); err != nil {
				return res, from, false, err
			}
			addr, err := e.cl.Owner(slot)
			if err != nil {
				return res, from, false, err
			}
			ev.To = addr
		case ev.Kind == hooks.RedirectMoved:
			e.cl.refresh()
		}
		conn, err := e.cl.Conn(ev.To, slot)
		if err != nil {
			return res, from, false, err
		}
		if conn.Node != nil && conn.Node.Open() {
			return res, from, false, conn.Node.OpenError()
		}
		drv := conn.CurrentDriver()
		if drv == nil || e.closed.Load() {
			return res, from, false, ErrClosed
		}
		if ev.Kind == hooks.RedirectAsk {
			drv = askingConn{drv}
		}
		args = retimed(ctx, name, args)
		callCtx, cancel := e.boundBlocking(ctx, name, args)
		res = drv.Do(callCtx, drv.B().Arbitrary(name).Args(args...).Blocking())
		silent := callCtx.Err() != nil && ctx.Err() == nil && res.NonValkeyError() != nil
		cancel()
		from = ev.To
		if silent {
			return res, from, true, nil
		}
	}
}

// retimed returns the arguments with which to send the blocking command
// name (args) again under ctx: its timeout, which starts again on the
// node it goes to, kept within ctx's deadline as blockTimeout keeps the
// typed pops' (qa-AO AO5: a BLPop whose slot moved while it waited was
// sent again with its first timeout, which then ended after its ctx, and
// an idle pop failed as an outcome unknown instead of ErrNil). args
// itself when ctx has no deadline or the timeout is not where expected.
func retimed(ctx context.Context, name string, args []string) []string {
	if _, ok := ctx.Deadline(); !ok {
		return args
	}
	i, ms := blockArg(name, args)
	if i < 0 {
		return args
	}
	d, ok := blockDuration(args[i], ms)
	if !ok {
		return args
	}
	t, err := blockTimeout(ctx, name, d)
	if err != nil {
		return args
	}
	if ms {
		sec, _ := strconv.ParseFloat(t, 64)
		t = strconv.FormatInt(max(time.Duration(sec*float64(time.Second)).Round(time.Millisecond).Milliseconds(), 1), 10)
	}
	out := slices.Clone(args)
	out[i] = t
	return out
}

// blockArg returns the index in args of the blocking command name's
// timeout, and whether it is in milliseconds (XREAD and XREADGROUP's
// BLOCK) rather than seconds; -1 when name has none or args are too few.
func blockArg(name string, args []string) (i int, ms bool) {
	i = -1
	switch strings.ToUpper(name) {
	case "BLPOP", "BRPOP", "BZPOPMIN", "BZPOPMAX", "BRPOPLPUSH", "BLMOVE":
		i = len(args) - 1
	case "BLMPOP", "BZMPOP":
		i = 0
	case "XREAD", "XREADGROUP":
		i, ms = parseXReadArgs(name, args).block, true
	}
	if i < 0 || i >= len(args) {
		return -1, false
	}
	return i, ms
}

// blockDuration reads a blocking command's timeout s as the server
// does: seconds (serverSeconds) or, with ms, whole milliseconds; 0 is
// forever. ok is false for what the server refuses.
func blockDuration(s string, ms bool) (time.Duration, bool) {
	if !ms {
		return serverSeconds(s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/int64(time.Millisecond) {
		return 0, false
	}
	return time.Duration(n) * time.Millisecond, true
}

// errBlockingSilent is the cause of the ctx boundBlocking gives a
// blocking call: the server did not answer within the command's own
// timeout and the connection's silence bound.
var errBlockingSilent = errors.New("vactor: no reply within the blocking command's timeout and the read bound")

// boundBlocking returns the ctx to send the blocking command name (args)
// with: ctx, or, when the command's own timeout is finite and ctx's
// deadline (if any) is later, one that also ends once that timeout and
// the connection's silence bound (silenceBound) passed (qa-BA BA1: a
// BLPOP with a 10 s timeout, sent on a kept blocking connection to a
// server that froze, waited until the server woke: valkey-go bounds no
// read of a blocking command but by its ctx). The server answers a
// blocking command by its timeout at the latest (nil), so a reply later
// than the bound will not come from a live server. A timeout of 0
// (forever) gets no bound: only ctx ends such a call. Nor does a call
// made while more blocking calls than the driver's blocking pool holds
// are out (counted over the engine, not per node: on the safe side):
// it may wait for a connection first, for as long as the others block,
// and the bound, which starts when the call goes to the driver, would
// fail it as an outcome unknown though it was never sent (review-35b
// R35b-3: a BLPOP behind 1,024 blocked ones, after 3.1 s).
func (e *Engine) boundBlocking(ctx context.Context, name string, args []string) (context.Context, context.CancelFunc) {
	i, ms := blockArg(name, args)
	if i < 0 || e.block.sent.Load() > blockingPool {
		return ctx, func() {}
	}
	d, ok := blockDuration(args[i], ms)
	bound := e.silenceBound()
	if !ok || d == 0 || d > time.Duration(math.MaxInt64)-bound {
		return ctx, func() {}
	}
	limit := d + bound
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= limit {
		return ctx, func() {}
	}
	return context.WithTimeoutCause(ctx, limit, errBlockingSilent)
}

// silentError is the error of a blocking call that boundBlocking's ctx
// ended while the caller's ctx was live.
func (e *Engine) silentError(name string, args []string, node string) error {
	i, _ := blockArg(name, args)
	return &policies.OutcomeUnknownError{Cause: fmt.Errorf("vactor: %s to %s got no reply within its timeout (%s) and the read bound (%s: the larger of Config.ReadTimeout and WriteTimeout): "+
		"the server may be frozen or unreachable; it may have run, its reply lost: %w",
		strings.ToUpper(name), node, args[i], e.silenceBound(), errBlockingSilent)}
}

// demotedUnblock reports whether ve is the reply with which Redis 7 (and
// Valkey before 9, which answers MOVED instead) ends a blocking command
// on a primary turned replica: "UNBLOCKED force unblock from blocking
// operation, instance state changed (master -> replica?)". Not the
// UNBLOCKED of a stream key deleted under XREADGROUP, which is final.
func demotedUnblock(ve *valkey.ValkeyError) bool {
	text := ve.Error()
	return strings.HasPrefix(text, "UNBLOCKED") && strings.Contains(text, "instance state changed")
}

// errShortAskReply fails a command sent after ASKING whose replies did
// not match the commands (a driver fault).
var errShortAskReply = errors.New("vactor: ASKING and a command got no matching replies")

// closeBlocking stops new blocking calls and waits for those in progress
// (Close calls it once the driver connections are closed, which ends them).
func (e *Engine) closeBlocking() {
	e.block.mu.Lock()
	e.block.closed = true
	e.block.mu.Unlock()
	e.block.wg.Wait()
}

// checkWait refuses WAIT and WAITAOF whose timeout would hold up a
// pipelined connection longer than its ReadTimeout: they run on the
// connection that made the writes they wait for, a connection actor's,
// shared with other callers. WAIT n 0 waits forever; with no replicas
// to answer, the connection's read timed out after ReadTimeout, which
// closed it and failed every command in flight on it (ErrOutcomeUnknown)
// and held them all up until then. Other arguments (a timeout that is not
// a number, a missing one) are left to the server to refuse.
func (e *Engine) checkWait(name string, args []string) error {
	var i int
	switch {
	case strings.EqualFold(name, "WAIT"):
		i = 1
	case strings.EqualFold(name, "WAITAOF"):
		i = 2
	default:
		return nil
	}
	if len(args) <= i || args[0] == "0" && (i == 1 || args[1] == "0") {
		return nil // nothing to wait for: the server answers at once
	}
	ms, err := strconv.ParseInt(args[i], 10, 64)
	if err != nil || ms < 0 {
		return nil
	}
	// Saturated: a timeout beyond what a Duration holds (about 292 years)
	// is the longest one. Multiplied as it was, it wrapped around, and
	// some huge timeouts the server takes (WAIT 1 288230376151711745,
	// 2⁵⁸+1 ms) wrapped to a millisecond, which passed the check: the
	// WAIT went out on the shared connection and held it until its read
	// timed out (TestDoWaitTimeoutBeyondDuration).
	d := time.Duration(math.MaxInt64)
	if ms <= math.MaxInt64/int64(time.Millisecond) {
		d = time.Duration(ms) * time.Millisecond
	}
	return e.checkHold(name, args[i], d)
}

// silenceBound is how long a connection may be silent during a round
// trip: the larger of the read and write timeouts, or the driver's
// default.
func (e *Engine) silenceBound() time.Duration {
	if b := max(e.cfg.ReadTimeout, e.cfg.WriteTimeout); b > 0 {
		return b
	}
	return driverReadTimeout
}

// checkHold refuses a command that may hold up its pipelined connection
// for d (0: forever) when d is not below the connection's read bound.
func (e *Engine) checkHold(name, timeout string, d time.Duration) error {
	bound := e.silenceBound()
	if d > 0 && d < bound {
		return nil
	}
	return fmt.Errorf("%w: %s with timeout %s would hold up the connection it shares with other callers "+
		"until its read bound (%s: the larger of Config.ReadTimeout and WriteTimeout) closed it, if the server "+
		"took that long: give a timeout below that bound (0 waits forever) or raise ReadTimeout; Engine.Do "+
		"runs blocking commands but WAIT on connections of their own",
		ErrInvalidArgument, strings.ToUpper(name), timeout, bound)
}

// checkPipelined is checkWait for a command added to a Pipeline, whose
// commands all go through the pipelined connection actors: blocking
// commands too (Engine.Do sends those on connections of their own). A
// blocking command whose timeout is 0 (forever) or not below ReadTimeout
// is refused as WAIT is. In a Tx they do not block (the server runs them
// at once inside MULTI): do not call it for a Tx.
func (e *Engine) checkPipelined(name string, args []string) error {
	if err := e.checkWait(name, args); err != nil {
		return err
	}
	if _, ok := blockingKey(name, args); !ok {
		return nil
	}
	var timeout string
	scale := float64(time.Second)
	switch strings.ToUpper(name) {
	case "BLMPOP", "BZMPOP":
		timeout = args[0]
	case "XREAD", "XREADGROUP":
		timeout = args[parseXReadArgs(name, args).block] // blockingKey found it
		scale = float64(time.Millisecond)
	default:
		timeout = args[len(args)-1]
	}
	if scale == float64(time.Second) {
		d, ok := serverSeconds(timeout)
		if !ok {
			return nil // the server refuses it
		}
		return e.checkHold(name, timeout, d)
	}
	v, err := strconv.ParseFloat(timeout, 64) // the server's milliseconds are integers
	if err != nil || v < 0 || math.IsNaN(v) {
		return nil // the server refuses it
	}
	return e.checkHold(name, timeout, time.Duration(min(v*scale, float64(math.MaxInt64))))
}

// serverSeconds is how the server reads a blocking command's timeout in
// seconds (getTimeoutFromObjectOrReply): a long double (strtold: a C
// hexadecimal float needs no exponent, so "0x0" is 0), in milliseconds
// rounded up, 0 meaning forever. ok is false for a timeout the server
// refuses (not a number, negative after the rounding, too large). So
// "0x0" and "-0.0005" (rounded up to 0) wait forever, and "1e-400", which
// underflows a float64 but not a long double, waits 1 ms (qa-AW AW1 and
// review-34 R34-1: those two were sent on the shared connection and held
// it until its read timed out).
func serverSeconds(s string) (d time.Duration, ok bool) {
	v, err := parseSeconds(s)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	ms := math.Ceil(v * 1000)
	switch {
	case v == 0 && !strings.HasPrefix(s, "-") && nonZeroMantissa(s):
		ms = 1 // below float64's range, above 0 for the server's long double
	case v < 0 && v >= -0.001:
		ms = 0 // -0.001 too: in long double it may round up to 0 (Redis 7.0 waits forever)
	}
	switch {
	case ms < 0:
		return 0, false
	case ms >= float64(math.MaxInt64/int64(time.Millisecond)):
		return time.Duration(math.MaxInt64), true
	}
	return time.Duration(ms) * time.Millisecond, true
}

// parseSeconds parses a timeout's number as the server's strtold does
// (see serverSeconds). An underscore, which Go's ParseFloat may take
// between digits and strtold does not, is refused.
func parseSeconds(s string) (float64, error) {
	if strings.ContainsRune(s, '_') {
		return 0, strconv.ErrSyntax
	}
	v, err := strconv.ParseFloat(s, 64)
	if err == nil {
		return v, nil
	}
	h := strings.TrimLeft(s, "+-")
	if len(h) > 2 && h[0] == '0' && (h[1] == 'x' || h[1] == 'X') && !strings.ContainsAny(h, "pP") {
		if v, herr := strconv.ParseFloat(s+"p0", 64); herr == nil {
			return v, nil
		}
	}
	return v, err
}

// nonZeroMantissa reports whether the number s has a digit other than 0
// before its exponent.
func nonZeroMantissa(s string) bool {
	s = strings.TrimLeft(s, "+-")
	hex := len(s) > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')
	if hex {
		s = s[2:]
	}
	for _, c := range s {
		switch {
		case !hex && (c == 'e' || c == 'E'), hex && (c == 'p' || c == 'P'):
			return false
		case c >= '1' && c <= '9', hex && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'):
			return true
		}
	}
	return false
}

// driverReadTimeout is valkey-go's own bound on a read, the engine's when
// ReadTimeout and WriteTimeout are 0.
const driverReadTimeout = 10 * time.Second
