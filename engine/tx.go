package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/policies"
)

// Tx is a transaction: commands collected like a Pipeline's and sent as
// MULTI, the commands, EXEC, so the server runs them atomically, with no
// other client's command in between.
//
//	tx := eng.Tx()
//	n := tx.Incr("stock:42")
//	tx.RPush("orders", "42")
//	if err := tx.Exec(ctx); err != nil { ... }
//	left, err := n.Await(ctx) // from EXEC's reply
//
// The command methods are the Pipeline's (see Pipeline for their rules);
// each future completes with its command's element of EXEC's reply.
// In cluster mode every key of a transaction must hash to one slot (use
// hash tags: "{user:7}:name", "{user:7}:visits"); Exec fails with
// ErrCrossSlot, sending nothing, when they do not.
//
// A transaction goes out on one of the engine's dedicated transaction
// connections (a small pool per node, not the pipelined connections of the
// connection actors: at most 256 per node, waited for at most
// Config.DialTimeout, see ErrPoolExhausted), as one write, and is never
// retried after a transport failure: that fails its futures with
// ErrOutcomeUnknown once EXEC may have been written (it may have run), or
// with the error when it was not. (In cluster mode one the server refused
// whole because its slot moved or is moving, which says nothing ran, is
// sent again: see Exec.)
//
// Inside Engine.Watch a Tx also reads, at once, on the watched connection:
// see Read.
//
// A Tx's command methods, Exec, Discard and Len are safe for concurrent
// use, as a Pipeline's (a command added while Exec runs fails with
// ErrInvalidArgument); its Read is not (see TxReader). Call Exec or
// Discard once, as for a Pipeline.
type Tx struct {
	commands
	w       *watchState // set inside Watch
	execErr error       // what Exec returned, for Watch
}

// Tx returns an empty transaction on e. It allocates; it sends nothing.
func (e *Engine) Tx() *Tx {
	tx := &Tx{commands: commands{e: e, tx: true, pend: &pending{}}}
	tx.dropCleanup(tx)
	return tx
}

// Exec sends MULTI, the commands and EXEC, and completes every future
// before it returns. It returns nil when the transaction ran; each
// command's own error reply (a WRONGTYPE raised while EXEC ran the
// command) fails only that command's future. Otherwise every future fails
// and Exec returns:
//
//   - ErrTxAborted (inside Watch) when a watched key changed: nothing ran;
//   - the EXECABORT *ServerError when the server refused a command while
//     queueing it (an unknown command, a wrong number of arguments):
//     nothing ran; that command's future fails with its own error reply,
//     the others with the EXECABORT error. In cluster mode, when the
//     commands were refused with redirects (MOVED or ASK: the slot moved
//     or is moving; or TRYAGAIN: its keys are split between the two
//     nodes of a migration), or EXEC was, nothing ran and Exec sends the
//     transaction again, as a single command's redirects are followed:
//     to the node MOVED names (the engine reloads its slot map), to the
//     node ASK names with ASKING before MULTI, to the slot's owner after
//     a backoff for TRYAGAIN; up to Config.MaxRedirects times, after
//     which the error matches ErrTooManyRedirects and the last reply
//     (errors.Is(err, &ServerError{Prefix: "MOVED"})). Inside Watch
//     nothing is sent again (the watch is on the first node): the error
//     matches the redirect, and WatchRetry reruns the run. When it was
//     refused for a passing reason (LOADING while the server loads its
//     data after a restart, CLUSTERDOWN, MASTERDOWN, READONLY; TRYAGAIN
//     inside Watch or in standalone mode) the error matches that reply
//     too and is retryable (policies.IsRetryable): send the transaction
//     again;
//   - ErrInvalidArgument when a command method rejected its arguments:
//     nothing was sent;
//   - ErrCrossSlot (cluster mode) when the keys span slots: nothing was
//     sent;
//   - ErrPoolExhausted when every connection of the node's pool stayed
//     lent for Config.DialTimeout: nothing was sent;
//   - a transport error, ErrClosed, or ctx's error (wrapped in
//     ErrOutcomeUnknown when EXEC may have been written). The
//     transaction's futures fail with ctx's error as soon as ctx ends,
//     as any future does: Exec's error is the one that tells whether the
//     transaction may have run.
//
// ctx bounds getting a connection and the round trip: its deadline, and
// its cancellation too (the connection is then closed to end the round
// trip, and not reused). Exec on a
// transaction already executed or discarded returns ErrInvalidArgument;
// an empty transaction sends nothing and returns nil.
func (tx *Tx) Exec(ctx context.Context) error {
	if tx.e == nil {
		return errZeroCommands
	}
	q, bad, err := tx.begin()
	if err != nil {
		return err
	}
	tx.execErr = tx.exec(ctx, q, bad)
	return tx.execErr
}

func (tx *Tx) exec(ctx context.Context, q []entry, bad error) (err error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if bad != nil {
		err := fmt.Errorf("vactor: transaction not sent: %w", bad)
		failAll(q, err)
		return err
	}
	if len(q) == 0 {
		return nil
	}
	e := tx.e
	// Close waits for the futures of an Exec in progress (execGate), but
	// not for this one when one of its PreExecution hooks, run before
	// anything is sent, calls Close: this Exec then finds the engine
	// closed.
	g := e.execEnter()
	defer e.execs.leave(g)
	if err := e.sendable(ctx); err != nil {
		e.failEnded(ctx, q, err)
		return err
	}
	for _, en := range q {
		// Pinned in cluster mode: sent again after a redirect, valid
		// after the server answered it.
		en.cmd.prepare(e, ctx, e.cl != nil, false)
	}
	if err := e.sendable(ctx); err != nil { // a hook closed the engine
		failAll(q, err)
		return err
	}
	// One watch of ctx for all the commands, as a Pipeline's (watchAll).
	var tw txWatch // tw.sent: EXEC is on its way (execOn)
	sent := &tw
	if stop := watchAllSent(ctx, q, &tw); stop != nil {
		defer func() {
			stopped := stop()
			if n := tw.unknowns(); n > 0 {
				e.unknown.Add(uint64(n)) // for Stats
			}
			if !stopped && err == nil && tw.failedAny() {
				// The transaction ran, and ctx ended before its futures
				// had their replies: they failed with ctx's error (as
				// ErrOutcomeUnknown, EXEC being on its way), and Exec
				// says the same rather than "ran" beside them.
				err = &policies.OutcomeUnknownError{Cause: ctx.Err()}
			}
		}()
	}
	slot, key, err := e.txSlot(q, tx.w)
	if err != nil {
		failAll(q, err)
		return err
	}
	if w := tx.w; w != nil {
		if w.broken != nil {
			failAll(q, w.broken)
			return w.broken
		}
		// Sentinel mode, a failover held: WAIT on the watched
		// connection, then wait for the hold's end.
		if err := e.tx.holdLent(ctx, w.conn, w.addr, true); err != nil {
			if errors.Is(err, ErrNotPrimary) {
				w.broken = err
			}
			failAll(q, err)
			return err
		}
		healthy, err := e.execOn(ctx, w.addr, w.conn, q, txOpts{asking: w.asking, sent: sent})
		w.execd = true
		if !healthy {
			w.broken = err
		}
		return err
	}
	if err := e.settled(ctx); err != nil { // sentinel mode: a failover is held
		failAll(q, err)
		return err
	}
	addr, err := e.txAddr(slot, key)
	if err != nil {
		failAll(q, err)
		return err
	}
	// In cluster mode a transaction refused whole because its slot moved
	// or is moving (MOVED, ASK, TRYAGAIN: nothing ran) is sent again, to
	// the node named (ASKING first for ASK) or after a backoff, at most
	// Config.MaxRedirects times, as a single command's redirects are.
	asking := false
	for hop := 0; ; hop++ {
		err = e.execAt(ctx, addr, q, asking, e.cl != nil, sent)
		var rd *txRedirect
		if !errors.As(err, &rd) {
			return err
		}
		gaveUp := hop >= e.cfg.MaxRedirects
		e.txRedirected(q, slot, addr, rd, gaveUp)
		if gaveUp {
			err = fmt.Errorf("%w: transaction sent %d times: %w", ErrTooManyRedirects, hop+1, rd.cause)
			e.tx.failed.Add(1)
			failAll(q, err)
			return err
		}
		switch rd.kind {
		case hooks.RedirectTryAgain:
			// The slot's keys are split between the two nodes of a
			// migration: wait for it to move on, then ask the map.
			if err := e.sleepCtx(ctx, e.txBackoff().Delay(hop)); err != nil {
				e.tx.failed.Add(1)
				failAll(q, err)
				return err
			}
			if addr, err = e.txAddr(slot, key); err != nil {
				e.tx.failed.Add(1)
				failAll(q, err)
				return err
			}
			asking = false
		default:
			addr, asking = rd.addr, rd.kind == hooks.RedirectAsk
		}
	}
}

// execAt sends q as a transaction on a connection of addr's pool (see
// execOn), on a second one when the first was found dead before anything
// was written.
func (e *Engine) execAt(ctx context.Context, addr string, q []entry, asking, follow bool, sent *txWatch) error {
	conn, err := e.tx.get(e, ctx, addr)
	if err != nil {
		failAll(q, err)
		return err
	}
	healthy, err := e.execOn(ctx, addr, conn, q, txOpts{retry: true, asking: asking, follow: follow, sent: sent})
	e.tx.put(addr, conn, healthy)
	if err == errTxUnsent {
		// The pooled connection was dead (the server closed it while it
		// was idle: a restart, CLIENT KILL, a timeout) and nothing was
		// written: once more on a new one, as the connection actors do.
		e.tx.dropIdle(addr) // the others likely are dead too
		if conn, err = e.tx.get(e, ctx, addr); err != nil {
			failAll(q, err)
			return err
		}
		healthy, err = e.execOn(ctx, addr, conn, q, txOpts{asking: asking, follow: follow, sent: sent})
		e.tx.put(addr, conn, healthy)
	}
	return err
}

// txRedirect is execOn's error, with follow, for a transaction the server
// refused whole because its slot moved (MOVED), is moving (ASK), or has
// its keys split between the two nodes of a migration (TRYAGAIN): nothing
// ran, and its futures are not failed: exec sends it again.
type txRedirect struct {
	kind  string // hooks.RedirectMoved, RedirectAsk or RedirectTryAgain
	addr  string // the node MOVED or ASK names
	cause error  // the reply that says so, a *ServerError
}

func (r *txRedirect) Error() string { return "vactor: transaction redirected: " + r.cause.Error() }

// txRedirected counts a redirect of the transaction q (sent to from) in
// its commands' Executed events and reports it to the Redirected hooks,
// as for commands fired alone (gaveUp: not followed, MaxRedirects were).
// Stats.Redirects counts the connection actors' commands only, as
// Commands and Errors do.
func (e *Engine) txRedirected(q []entry, slot int, from string, rd *txRedirect, gaveUp bool) {
	tell := e.bus.WantsRedirects()
	for _, en := range q {
		en.cmd.Redirected()
		if tell {
			ev := hooks.Redirect{Kind: rd.kind, Slot: slot, From: from, To: rd.addr, GaveUp: gaveUp}
			if cmd := en.cmd.Cmd(); len(cmd.Commands()) > 0 {
				parts := cmd.Commands()
				ev.Name = parts[0]
			}
			e.bus.Emit(ev)
		}
	}
}

// txBackoff is the backoff between the runs of a transaction sent again.
func (e *Engine) txBackoff() policies.Backoff {
	return policies.Backoff{Min: e.cfg.MinRetryBackoff, Max: e.cfg.MaxRetryBackoff}
}

// sleepCtx waits d, or until ctx ends (its error) or the engine closes
// (ErrClosed).
func (e *Engine) sleepCtx(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-e.closing.Done():
		return ErrClosed
	}
}

// errTxUnsent is execOn's error, with retry, for a transaction of which
// nothing was written: its futures are not failed.
var errTxUnsent = errors.New("vactor: transaction not written")

// Discard drops the transaction's commands unsent; their futures fail with
// ErrDiscarded. Discard after Exec or Discard does nothing. Inside Watch,
// Watch then ends the WATCH (UNWATCH) and returns nil.
func (tx *Tx) Discard() {
	if tx.e != nil {
		tx.discard(ErrDiscarded)
	}
}

// Len returns the number of commands queued and not yet sent.
func (tx *Tx) Len() int {
	if tx.e == nil {
		return 0
	}
	return tx.pend.len()
}

// txSlot returns the one slot of the keys of q (and of the watched keys)
// and one of those keys; -1 in standalone mode or when no command has a
// key; ErrCrossSlot when they span slots.
func (e *Engine) txSlot(q []entry, w *watchState) (int, string, error) {
	if e.cl == nil {
		return -1, "", nil
	}
	slot, first := -1, ""
	if w != nil {
		slot, first = w.slot, w.key
	}
	check := func(k string) error {
		s := int(e.slotOf(k))
		switch {
		case slot < 0:
			slot, first = s, k
		case s != slot:
			return fmt.Errorf("%w: transaction keys %q (slot %d) and %q (slot %d); use a hash tag", ErrCrossSlot, first, slot, k, s)
		}
		return nil
	}
	for _, en := range q {
		if en.keys != nil {
			for _, k := range en.keys {
				if err := check(k); err != nil {
					return 0, "", err
				}
			}
		} else if !en.keyless {
			if err := check(en.route); err != nil {
				return 0, "", err
			}
		}
	}
	return slot, first, nil
}

// txAddr returns the node for a transaction on slot, whose key is key
// (slot -1: no key: the configured node in standalone mode, the primary
// whose turn it is in cluster mode, see keyless.go).
func (e *Engine) txAddr(slot int, key string) (string, error) {
	if slot < 0 {
		if e.cl != nil {
			return e.cl.Owner(e.cl.keylessSlot())
		}
		return e.addrOf("")
	}
	return e.addrOf(key)
}

// txOpts are execOn's options.
type txOpts struct {
	// retry: a transaction of which nothing could be written (the
	// connection was found closed before its first byte) fails with
	// errTxUnsent, its futures left to the caller, which sends it again.
	retry bool
	// asking sends ASKING first (an ASK redirect is followed).
	asking bool
	// follow: a transaction refused whole because its slot moved or is
	// moving fails with a *txRedirect, its futures left to the caller,
	// which sends it again.
	follow bool
	// sent, when not nil, is set before the part holding EXEC is
	// written (watchAllSent).
	sent *txWatch // nil, or the transaction's watch of its ctx: sent says EXEC is on its way
}

// execOn sends MULTI, q's commands and EXEC on conn and completes q's
// futures, unless o says otherwise. healthy is false when conn must not
// be used again.
func (e *Engine) execOn(ctx context.Context, addr string, conn drivers.ValkeyConn, q []entry, o txOpts) (healthy bool, err error) {
	defer func() {
		if o.sent != nil && (err == errTxUnsent || isTxRedirect(err)) {
			// Nothing of it ran: until the next try writes its EXEC, a
			// ctx that ends fails the futures with its bare error.
			o.sent.sent.Store(false)
		}
		switch {
		case err == errTxUnsent:
		case isTxRedirect(err): // sent again: counted then
		case err == nil:
			e.tx.execs.Add(1)
		case errors.Is(err, ErrTxAborted):
			e.tx.aborted.Add(1)
		default:
			e.tx.failed.Add(1)
		}
	}()
	answering, err := e.tx.enterCall() // MULTI ... EXEC: never blocks
	if err != nil {
		failAll(q, err)
		return false, err
	}
	defer e.tx.leaveCall(answering)
	base := 0 // the index of MULTI's reply
	cmds := make([]valkey.Completed, 0, len(q)+3)
	if o.asking {
		cmds = append(cmds, e.b.Asking().Build())
		base = 1
	}
	cmds = append(cmds, e.b.Multi().Build())
	var sent *actors.Sent // for the command hooks: the node and the MULTI..EXEC as their pipeline
	if e.bus.WantsPost() {
		sent = &actors.Sent{Node: addr, Seq: e.bus.NextPipeline(), Size: len(q) + 2, Bus: e.bus}
	}
	for _, en := range q { // prepared by exec
		cmds = append(cmds, en.cmd.Cmd())
		if o, ok := en.cmd.(actors.Observed); ok && sent != nil {
			o.SentOn(sent)
		}
	}
	cmds = append(cmds, e.b.Exec().Build())
	// valkey-go moves a DoMulti longer than the connection's pipeline
	// limit to another connection: send a long transaction in parts. The
	// connection is ours alone, so nothing comes between them. A driver
	// that takes pipelines of any length gets it whole (glide must: it
	// sends MULTI..EXEC as its atomic batch).
	part := max(e.opts.MaxPipeline, 2)
	if e.caps.LongPipelines {
		part = len(cmds)
	}
	res := make([]valkey.ValkeyResult, 0, len(cmds))
	var terr error
	execTried, firstPart := false, false
	for from := 0; from < len(cmds) && terr == nil; from += part {
		to := min(from+part, len(cmds))
		execTried, firstPart = to == len(cmds), from == 0
		if execTried && o.sent != nil {
			o.sent.sent.Store(true)
			if err := ctx.Err(); err != nil {
				// ctx ended before EXEC was written, and the futures
				// may have failed with its bare error: not sent.
				execTried, terr = false, err
				break
			}
		}
		stop := e.tx.cutOnDone(ctx, conn)
		rs := conn.DoMulti(ctx, cmds[from:to]...)
		if cerr := stop(); cerr != nil {
			rs = cutResults(rs, cerr)
		}
		res = append(res, rs...)
		for _, r := range rs {
			if err := r.NonValkeyError(); err != nil {
				terr = err
				break
			}
		}
	}
	if terr == nil && len(res) != len(cmds) {
		terr = errShortTxReply
	}
	if terr != nil {
		if o.retry && firstPart && policies.NotSent(terr) && ctx.Err() == nil {
			return false, errTxUnsent
		}
		if execTried && !policies.NotSent(terr) {
			// EXEC may have reached the server: the transaction may have run.
			terr = &policies.OutcomeUnknownError{Cause: terr}
			if o.sent != nil {
				// The ctx's watch, which counts the futures it fails,
				// waits: each failed future is counted once.
				o.sent.mu.Lock()
				defer o.sent.mu.Unlock()
			}
			n := 0
			for _, en := range q {
				if !en.cmd.isDone() {
					n++
				}
			}
			e.unknown.Add(uint64(n)) // for Stats
		} else {
			// EXEC was not written: the server drops the transaction with
			// the connection. Nothing ran: the error says so (ErrNotSent,
			// retryable), unless it is ctx's, which says why (qa-BD F4:
			// a long transaction whose first part met a closed connection
			// failed with a bare EOF that callers had to read the text of).
			terr = fmt.Errorf("vactor: transaction not executed: %w", terr)
			if !errors.Is(terr, context.Canceled) && !errors.Is(terr, context.DeadlineExceeded) {
				terr = unsentDial(terr)
			}
		}
		failAll(q, terr)
		return false, terr
	}
	// An ASKING refused (an ACL user without it) changes nothing for
	// what follows it: MULTI ... EXEC ran without it (refused with MOVED
	// or ASK, or run if the migration ended meanwhile): read those.
	res = res[base:] // MULTI, the commands, EXEC
	if err := res[0].Error(); err != nil {
		// MULTI refused: the connection was not in the state we left it.
		err = fmt.Errorf("vactor: transaction: MULTI: %w", replyError(&res[0], err))
		failAll(q, err)
		return false, err
	}
	ex := res[len(res)-1]
	if err := ex.Error(); err != nil {
		if valkey.IsValkeyNil(err) {
			failAll(q, ErrTxAborted)
			return true, ErrTxAborted
		}
		if o.follow {
			if rd := txRedirectOf(res); rd != nil {
				if rd.kind == hooks.RedirectMoved {
					e.cl.refresh()
				}
				return true, rd
			}
		}
		abort := replyError(&ex, err)
		var redirect error // the first queued command's MOVED or ASK
		var passing error  // the first queued command's LOADING, TRYAGAIN, ...
		for i, en := range q {
			if qerr := res[1+i].Error(); qerr != nil {
				qe := replyError(&res[1+i], qerr)
				if redirect == nil && isRedirect(qe) {
					redirect = qe
				}
				if passing == nil && policies.IsRetryable(qe) {
					passing = qe
				}
				en.cmd.Fail(qe)
				continue
			}
			en.cmd.Fail(abort)
		}
		if redirect != nil {
			if e.cl != nil {
				e.cl.refresh()
			}
			return true, &redirectedAbort{abort: abort, redirect: redirect}
		}
		if passing != nil {
			if e.cl != nil && policies.ServerErrorCode(passing) == "CLUSTERDOWN" {
				e.cl.refresh() // the retry should find the map as it is now
			}
			return true, &passingAbort{abort: abort, cause: passing}
		}
		return true, abort
	}
	arr, err := ex.ToArray()
	if err != nil || len(arr) != len(q) {
		err = fmt.Errorf("vactor: transaction: EXEC replied %d results for %d commands: %w", len(arr), len(q), errors.Join(err, errShortTxReply))
		failAll(q, err)
		return false, err
	}
	for i, en := range q {
		en.cmd.completeWith(arr[i])
	}
	return true, nil
}

// redirectedAbort is the error of an EXEC the server refused (EXECABORT)
// because queued commands were redirected (MOVED or ASK: the slot moved
// before the transaction reached the node, or between WATCH and EXEC).
// Nothing ran. It matches both replies' *ServerError (errors.As finds the
// EXECABORT); WatchRetry reruns such a run.
type redirectedAbort struct{ abort, redirect error }

func (e *redirectedAbort) Error() string {
	return e.abort.Error() + " (a queued command was redirected: " + replyText(e.redirect) + ")"
}

// replyText is the server's text of an error reply (its *ServerError's
// Message), or err's text.
func replyText(err error) string {
	var se *ServerError
	if errors.As(err, &se) {
		return se.Message
	}
	return err.Error()
}

func (e *redirectedAbort) Unwrap() []error { return []error{e.abort, e.redirect} }

// passingAbort is the error of an EXEC the server refused (EXECABORT)
// because it refused a queued command for a passing reason (LOADING after
// a restart, TRYAGAIN, CLUSTERDOWN, MASTERDOWN, READONLY). Nothing ran:
// it is retryable (policies.IsRetryable), and errors.As finds the
// EXECABORT and then that reply as *ServerError.
type passingAbort struct{ abort, cause error }

func (e *passingAbort) Error() string {
	return e.abort.Error() + " (a queued command was refused: " + replyText(e.cause) + "; nothing ran, try again)"
}

func (e *passingAbort) Unwrap() []error { return []error{e.abort, e.cause, errPassingAbort} }

// errPassingAbort marks a passingAbort retryable.
var errPassingAbort = policies.NewRetryable("vactor: transaction refused for a passing reason")

// isRedirect reports whether err is a MOVED or ASK reply.
func isRedirect(err error) bool {
	var se *ServerError
	return errors.As(err, &se) && (se.Prefix == "MOVED" || se.Prefix == "ASK")
}

// txRedirectOf returns the redirect to follow for a transaction whose
// EXEC was refused, res its replies from MULTI's to EXEC's: when EXEC was
// refused with MOVED, ASK or TRYAGAIN (the slot moved after the commands
// were queued), or with EXECABORT and every queued command the server
// refused was refused with one of those (the first MOVED or ASK wins over
// TRYAGAIN). Nothing ran in either case. nil for any other refusal.
func txRedirectOf(res []valkey.ValkeyResult) *txRedirect {
	if rd := movingReply(&res[len(res)-1]); rd != nil {
		return rd
	}
	var found *txRedirect
	for i := 1; i < len(res)-1; i++ {
		if res[i].Error() == nil {
			continue
		}
		rd := movingReply(&res[i])
		if rd == nil {
			return nil // refused for another reason: that is the answer
		}
		if found == nil || found.kind == hooks.RedirectTryAgain {
			found = rd
		}
	}
	return found
}

// movingReply returns r, an error reply, as a redirect to follow: MOVED or
// ASK with the node it names, or TRYAGAIN; nil for anything else.
func movingReply(r *valkey.ValkeyResult) *txRedirect {
	err := r.Error()
	ve, ok := valkey.IsValkeyErr(err)
	if !ok {
		return nil
	}
	rd := &txRedirect{cause: replyError(r, err)}
	if addr, ok := actors.MovedAddr(ve); ok {
		rd.kind, rd.addr = hooks.RedirectMoved, addr
	} else if addr, ok := actors.AskAddr(ve); ok {
		rd.kind, rd.addr = hooks.RedirectAsk, addr
	} else if ve.IsTryAgain() {
		rd.kind = hooks.RedirectTryAgain
	} else {
		return nil
	}
	return rd
}

// txMoving reports whether err, a transaction's, says its slot moved or
// is moving (MOVED, ASK or TRYAGAIN).
func txMoving(err error) bool {
	var ra *redirectedAbort
	return isRedirect(err) || errors.As(err, &ra) || errors.Is(err, &ServerError{Prefix: "TRYAGAIN"})
}

// isTxRedirect reports whether err is execOn's *txRedirect.
func isTxRedirect(err error) bool {
	_, ok := err.(*txRedirect)
	return ok
}

// errShortTxReply fails a transaction whose replies did not match its
// commands (a driver or server fault).
var errShortTxReply = errors.New("vactor: transaction reply does not match its commands")
