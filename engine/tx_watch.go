package engine

// Optimistic transactions: Watch and WatchRetry, the hold on the watched
// connection, and TxReader, the reads between WATCH and MULTI.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/policies"
)

// Watch runs fn in an optimistic transaction on keys: it WATCHes keys on
// a connection of its own, calls fn, then sends the commands fn queued on
// tx as MULTI ... EXEC on that connection. When another client changed a
// watched key between WATCH and EXEC, nothing ran, every future of tx fails
// with ErrTxAborted, and Watch returns ErrTxAborted: read again and retry
// (WatchRetry does this).
//
//	err := eng.WatchRetry(ctx, 10, func(tx *engine.Tx) error {
//		n, err := tx.Read().Get(ctx, "counter")
//		if err != nil && !errors.Is(err, engine.ErrNil) {
//			return err
//		}
//		v, _ := strconv.Atoi(n)
//		tx.Set("counter", strconv.Itoa(v+1), 0)
//		return nil
//	}, "counter")
//
// fn reads the current values through tx.Read(), whose methods run at once
// on the watched connection, and queues the writes with tx's command
// methods. When fn returns an error, its queued commands are discarded
// (their futures fail with ErrDiscarded), the WATCH is dropped (UNWATCH;
// after ctx ended, in the background on a context of its own bounded to a
// second, so that Watch returns at once and the connection is reused),
// and Watch returns fn's error. fn may call tx.Exec itself (to await the
// futures before returning); Watch then does not execute again and
// returns what Exec returned. When fn queues nothing, nothing is executed
// and Watch returns nil.
//
// The connection is dedicated to this call while it runs (the WATCH state
// of a connection would otherwise be shared with other callers), taken
// from the engine's pool of transaction connections and returned to it
// after UNWATCH or EXEC. In cluster mode keys, the keys fn reads and the
// keys it queues must share one slot (ErrCrossSlot otherwise).
//
// ctx bounds each round trip (WATCH, reads, EXEC) and the wait for a
// connection, which Config.DialTimeout bounds too (ErrPoolExhausted: a fn
// that calls Watch, Tx.Exec or Dedicated holds its own connection
// meanwhile). Watch is safe for concurrent use; tx is not, and must not be
// used after fn returns (other than its futures). Close fails a Watch in
// progress: its round trips fail and Exec returns ErrClosed.
func (e *Engine) Watch(ctx context.Context, fn func(tx *Tx) error, keys ...string) error {
	return e.watch(ctx, fn, "", keys, nil)
}

// watchRun is what a run of watch did with its transaction, for
// WatchRetry: whether its EXEC was sent (on the watched connection), and
// with what result.
type watchRun struct {
	execd   bool
	execErr error
}

// mayHaveRun reports whether the run's transaction ran or may have: its
// EXEC was sent and did not fail in a way that says nothing ran (aborted
// by a watched key, refused for a redirect or TRYAGAIN, not written: its
// connection found closed). Such a run is never run again, whatever error
// its function returned.
func (r *watchRun) mayHaveRun() bool {
	if !r.execd {
		return false
	}
	err := r.execErr
	return err == nil || !(errors.Is(err, ErrTxAborted) || txMoving(err) || policies.NotSent(err))
}

// watch is Watch; with ask, a node an ASK redirect named (cluster mode: the
// watched slot is being migrated there and its keys are not on the
// owner), the run goes to that node with ASKING before the WATCH, each
// read and the MULTI.
func (e *Engine) watch(ctx context.Context, fn func(tx *Tx) error, ask string, keys []string, run *watchRun) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if e.closed.Load() {
		return ErrClosed // before the argument checks, as every call's
	}
	if fn == nil {
		return fmt.Errorf("%w: Watch needs a function", ErrInvalidArgument)
	}
	if len(keys) == 0 {
		return fmt.Errorf("%w: Watch needs at least one key", ErrInvalidArgument)
	}
	if err := e.sendable(ctx); err != nil {
		return err
	}
	w := &watchState{slot: -1, key: keys[0]}
	if e.cl != nil {
		w.slot = int(e.slotOf(keys[0]))
		for _, k := range keys[1:] {
			if s := int(e.slotOf(k)); s != w.slot {
				return fmt.Errorf("%w: watched keys %q (slot %d) and %q (slot %d); use a hash tag", ErrCrossSlot, keys[0], w.slot, k, s)
			}
		}
	}
	if err := e.settled(ctx); err != nil { // sentinel mode: a failover is held
		return err
	}
	addr := ask
	if addr == "" {
		a, err := e.addrOf(keys[0])
		if err != nil {
			return err
		}
		addr = a
	}
	w.asking = ask != ""
	if err := w.watch(ctx, e, addr, keys); err != nil {
		return err
	}
	tx := &Tx{commands: commands{e: e, tx: true, pend: &pending{}}, w: w}
	finished := false
	defer func() {
		if run != nil {
			run.execd, run.execErr = w.execd, tx.execErr
		}
		if !finished { // fn panicked: drop the connection, fail the futures
			tx.discard(ErrDiscarded)
			w.broken = ErrDiscarded
			w.release(ctx, e)
		}
	}()
	ferr := fn(tx)
	finished = true
	if ferr != nil {
		tx.discard(ErrDiscarded)
		w.release(ctx, e)
		return ferr
	}
	var err2 error
	switch tx.stateNow() {
	case cmdsOpen:
		err2 = tx.Exec(ctx)
	case cmdsExecuted:
		err2 = tx.execErr
	}
	w.release(ctx, e)
	return err2
}

// WatchRetry runs Watch until a run is not aborted by a change to a watched
// key, at most attempts times (attempts below 1 fail with ErrInvalidArgument, fn not run), waiting between runs with the
// engine's retry backoff: Config.MinRetryBackoff doubling per run up to
// Config.MaxRetryBackoff, with jitter, so contending callers spread out.
// In cluster mode a run that was redirected (MOVED or ASK: the slot moved,
// after a failover or while resharding; nothing ran) is rerun too: a run
// whose WATCH or read got MOVED or ASK (fn returned that error), or whose
// EXEC was refused (EXECABORT) because a queued command got one (the slot
// moved between WATCH and EXEC). After MOVED the rerun goes, after the
// backoff and once the engine has reloaded its slot map, to the node the
// new map names; after ASK (the slot is being migrated and the keys are on
// the importing node) at once to the node ASK names, with ASKING before
// its WATCH, each read and its MULTI; after TRYAGAIN (the watched keys
// are split between the two nodes of a migration) after the backoff.
// These reruns do not count against attempts; at most Config.MaxRedirects
// of them are made, then the run's error is returned joined to
// ErrTooManyRedirects. An EXECABORT for any other reason (a command the
// server refused while queueing it) is returned at once. In sentinel mode
// a run that failed unsent because the primary changed (ErrNotPrimary:
// its connection was held through a failover, fn's reads included) is
// rerun likewise, on the new primary, counted with the redirected runs;
// so is a run that failed unsent because its connection was found closed
// (policies.NotSent: the server dropped the WATCH, nothing ran).
// fn runs once per run, each time with a new Tx: it must read what it
// needs through that Tx and have no other side effects. A run whose fn
// sent its Tx itself (tx.Exec) and saw it run, or not know whether it
// ran, is never rerun, whatever fn returned after.
//
// It returns nil once a run committed; fn's error or any other Watch error
// at once; ctx's error when ctx ends while waiting; and, after attempts
// aborted runs, an error that matches ErrTxAborted.
func (e *Engine) WatchRetry(ctx context.Context, attempts int, fn func(tx *Tx) error, keys ...string) error {
	if e.closed.Load() {
		return ErrClosed // before the argument checks, as every call's
	}
	if attempts < 1 {
		return fmt.Errorf("%w: WatchRetry needs at least 1 attempt, got %d", ErrInvalidArgument, attempts)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	b := policies.Backoff{Min: e.cfg.MinRetryBackoff, Max: e.cfg.MaxRetryBackoff}
	aborted, redirects := 0, 0
	ask := "" // the node of the last run's ASK
	for {
		var run watchRun
		err := e.watch(ctx, fn, ask, keys, &run)
		ask = ""
		if err != nil && run.mayHaveRun() {
			// fn sent the transaction itself and it ran (or may have):
			// whatever fn returned after, never run it again.
			return err
		}
		var delay time.Duration
		resync := false
		var epoch uint64 // the slot map that was redirected
		switch {
		case e.cl != nil && redirectedRun(err):
			if redirects >= e.cfg.MaxRedirects {
				return fmt.Errorf("%w: WatchRetry: %d runs redirected: %w", ErrTooManyRedirects, redirects+1, err)
			}
			redirects++
			if a, ok := askAddr(err); ok {
				// The slot is being migrated and its keys are on the
				// importing node: rerun there at once, with ASKING (the
				// map names the owner until the migration ends).
				ask = a
				continue
			}
			resync, epoch = true, e.cl.Epoch()
			delay = b.Delay(redirects - 1)
		case e.cl != nil && errors.Is(err, &ServerError{Prefix: "TRYAGAIN"}):
			// The watched keys are split between the two nodes of a
			// migration (nothing ran): rerun once it has moved on.
			if redirects >= e.cfg.MaxRedirects {
				return fmt.Errorf("%w: WatchRetry: %d runs redirected: %w", ErrTooManyRedirects, redirects+1, err)
			}
			delay = b.Delay(redirects)
			redirects++
		case e.sn != nil && errors.Is(err, ErrNotPrimary):
			// Sentinel mode: the primary changed while this run was held
			// (or just before it picked the primary); nothing of it was
			// sent. Rerun, on the primary the sentinels name now.
			if redirects >= e.cfg.MaxRedirects {
				return fmt.Errorf("%w: WatchRetry: %d runs met a primary change: %w", ErrTooManyRedirects, redirects+1, err)
			}
			delay = b.Delay(redirects)
			redirects++
		case policies.NotSent(err):
			// Its connection was found closed before the run's next
			// command was written (a restart, CLIENT KILL): the server
			// dropped the WATCH and nothing of the transaction ran.
			// Rerun on another connection, counted with the redirected
			// runs.
			if redirects >= e.cfg.MaxRedirects {
				return err
			}
			delay = b.Delay(redirects)
			redirects++
		case errors.Is(err, ErrTxAborted):
			aborted++
			if aborted >= attempts {
				return fmt.Errorf("%w (%d attempts)", err, attempts)
			}
			delay = b.Delay(aborted - 1)
		default:
			return err
		}
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
		if resync {
			// A slot map newer than the one that was redirected (the
			// redirect asked for a reload; this waits for it, or loads),
			// waited for within ctx (a load is bounded by DialTimeout).
			synced := make(chan struct{})
			go func() {
				e.cl.topology.Sync(epoch)
				close(synced)
			}()
			select {
			case <-synced:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// redirectedRun reports whether a Watch run failed because it was
// redirected (MOVED or ASK) before anything ran: its WATCH or a read (fn
// returned the error), or queued commands (EXECABORT, redirectedAbort).
func redirectedRun(err error) bool {
	var ra *redirectedAbort
	return isRedirect(err) || errors.As(err, &ra)
}

// askAddr returns the node of an ASK redirect in err (a WATCH's or a
// read's reply, or the queued commands' behind an EXECABORT).
func askAddr(err error) (string, bool) {
	var se *ServerError
	if !errors.As(err, &se) || se.Prefix != "ASK" {
		var ra *redirectedAbort
		if !errors.As(err, &ra) || !errors.As(ra.redirect, &se) || se.Prefix != "ASK" {
			return "", false
		}
	}
	f := strings.Fields(se.Message) // ASK <slot> <host:port>
	if len(f) != 3 {
		return "", false
	}
	addr := f[2]
	// A bare IPv6 address gets brackets, exactly as valkey-go's IsAsk
	// reads it (so both name the node alike).
	if strings.IndexByte(addr, '.') < 0 && addr != "" && addr[0] != '[' {
		if i := strings.LastIndexByte(addr, ':'); i >= 0 {
			addr = net.JoinHostPort(addr[:i], addr[i+1:])
		}
	}
	return addr, true
}

// watchState is a Watch's hold on its connection.
type watchState struct {
	conn   drivers.ValkeyConn
	asking bool // ASKING goes before each command (see Engine.watch)
	addr   string
	slot   int    // the watched keys' slot; -1 in standalone mode
	key    string // a watched key, for error messages
	broken error  // a transport error made conn unusable
	execd  bool   // EXEC was sent: the WATCH is over
}

// watch takes a connection to addr and WATCHes keys on it. A pooled
// connection found broken is replaced once (WATCH is safe to repeat).
func (w *watchState) watch(ctx context.Context, e *Engine, addr string, keys []string) error {
	for attempt := 0; ; attempt++ {
		conn, err := e.tx.get(e, ctx, addr)
		if err != nil {
			return err
		}
		res := e.tx.askCall(ctx, conn, w.asking, e.b.Watch().Key(keys...).Build())
		if terr := res.NonValkeyError(); terr != nil {
			e.tx.put(addr, conn, false)
			e.tx.dropIdle(addr)
			if attempt == 0 && ctx.Err() == nil && !errors.Is(terr, ErrClosed) {
				continue
			}
			return fmt.Errorf("vactor: WATCH: %w", terr)
		}
		if err := res.Error(); err != nil {
			e.tx.put(addr, conn, true)
			err = replyError(&res, err)
			if isRedirect(err) && e.cl != nil {
				e.cl.refresh()
			}
			return err
		}
		w.conn, w.addr = conn, addr
		return nil
	}
}

// release ends the WATCH (UNWATCH unless EXEC ran) and gives the
// connection back to the pool, or closes it when it failed. The UNWATCH
// is bounded by ctx and cleanupTimeout. After a Watch whose ctx ended (its
// function returned ctx's error, or Exec found ctx done) it runs on a
// goroutine and a context of its own (unwatchLater): Watch returns at
// once, and the connection is reused, not closed and dialled again.
func (w *watchState) release(ctx context.Context, e *Engine) {
	if w.conn == nil {
		return
	}
	conn := w.conn
	w.conn = nil
	healthy := w.broken == nil
	if healthy && !w.execd {
		if ctx.Err() != nil {
			// The caller's ctx ended: Watch returns now, the UNWATCH
			// runs on a goroutine (Close waits for it) and gives the
			// connection back.
			w.unwatchLater(ctx, e, conn)
			w.broken = ErrDiscarded
			return
		}
		cctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
		healthy = e.tx.call(cctx, conn, e.b.Unwatch().Build()).Error() == nil
		cancel()
	}
	e.tx.put(w.addr, conn, healthy)
	if w.broken == nil {
		w.broken = ErrDiscarded // tx must not be used after Watch returns
	}
}

// unwatchLater ends the WATCH of conn on a goroutine of its own, on a
// context with ctx's values bounded by cleanupTimeout, and gives conn back
// (closed when the UNWATCH failed or the pool closed meanwhile).
func (w *watchState) unwatchLater(ctx context.Context, e *Engine, conn drivers.ValkeyConn) {
	if e.tx.enter() != nil { // the pool closed: it closes conn
		e.tx.put(w.addr, conn, false)
		return
	}
	addr := w.addr
	go func() {
		defer e.tx.leave()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		e.tx.put(addr, conn, e.tx.call(cctx, conn, e.b.Unwatch().Build()).Error() == nil)
	}()
}

// cleanupTimeout bounds the UNWATCH that ends a Watch whose EXEC did not
// run: a connection whose UNWATCH has not answered by then is closed.
const cleanupTimeout = time.Second

// TxReader reads inside Engine.Watch: each method sends its command at
// once on the watched connection, between WATCH and MULTI, and waits for
// the reply. Results and errors are those of the Engine's methods of the
// same name (ErrNil, *ServerError, ...). Outside Watch, after Exec, or
// after the Watch function returned, every method fails with
// ErrInvalidArgument. Not safe for concurrent use (one watched connection).
type TxReader struct{ tx *Tx }

// Read returns the reader of a transaction run by Engine.Watch.
func (tx *Tx) Read() TxReader { return TxReader{tx} }

// read sends cmd on the watched connection and decodes its reply.
func read[T any](r TxReader, ctx context.Context, keys []string, cmd valkey.Completed, decode func(valkey.ValkeyResult) (T, error)) (T, error) {
	var zero T
	tx := r.tx
	if tx == nil || tx.w == nil {
		return zero, errReadOutside
	}
	w := tx.w
	if tx.stateNow() != cmdsOpen || w.conn == nil {
		return zero, fmt.Errorf("%w: Tx.Read after Exec, Discard or the end of Watch", ErrInvalidArgument)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if tx.e.cl != nil {
		for _, k := range keys {
			if s := int(tx.e.slotOf(k)); s != w.slot {
				return zero, fmt.Errorf("%w: read of %q (slot %d) in a Watch of slot %d", ErrCrossSlot, k, s, w.slot)
			}
		}
	}
	// Refused unsent: the watched connection failed earlier, or a
	// sentinel failover held (WAIT on the watched connection, as a
	// command sent through Do may have written, then wait for the hold's
	// end) failed. The command hooks see it fail, as any command refused
	// after it was fired.
	err := w.broken
	if err == nil {
		if err = tx.e.tx.holdLent(ctx, w.conn, w.addr, true); errors.Is(err, ErrNotPrimary) {
			w.broken = err
		}
	}
	if err != nil {
		tx.e.refused(ctx, w.addr, err, cmd)
		return zero, err
	}
	// The command hooks see a read as any command sent outside the
	// actors (a Dedicated connection's): PreExecution before the round
	// trip, on this goroutine, whose context the read is sent under.
	var done func(error)
	if tx.e.bus.WantsCommands() {
		ctx, done = tx.e.fireBlocking(ctx, w.addr, cmd)
	}
	res := tx.e.tx.askCall(ctx, w.conn, w.asking, cmd)
	if terr := res.NonValkeyError(); terr != nil {
		// What comes after on this connection is refused unsent (later
		// reads, Exec, the transaction's commands): not with this read's
		// outcome unknown, which said they were sent and kept WatchRetry
		// from running fn again (review-33b B3).
		w.broken = unsentDial(fmt.Errorf("vactor: the watched connection failed earlier: %w", terr))
		if !errors.Is(terr, ErrClosed) && !policies.NotSent(terr) {
			// Written, or maybe (TxReader.Do may send a write): as a
			// Dedicated call's, not a bare transport error.
			terr = &policies.OutcomeUnknownError{Cause: terr}
			tx.e.unknown.Add(1) // for Stats (review-33 F3)
		}
		if done != nil {
			done(terr)
		}
		return zero, terr
	}
	v, err := decode(res)
	err = replyError(&res, err)
	if done != nil {
		done(err)
	}
	return v, err
}

// Do sends any command at once, as Engine.Do; commands that change the
// connection's state fail with a *ConnectionStateError, as there (the
// connection goes back to the engine's pool after Watch). Its keys are
// found as Engine.Do finds them; in cluster mode they must be in the
// watched keys' slot (ErrCrossSlot otherwise), and a keyless command
// (PING, TIME, ...) runs. A blocking command (BLPOP, XREAD ... BLOCK,
// ...) or WAIT whose timeout is 0 (forever) or not below
// Config.ReadTimeout fails at once with ErrInvalidArgument, as in a
// Pipeline: it would block the watched connection until its read timed
// out. Shorter timeouts run.
func (r TxReader) Do(ctx context.Context, name string, args ...string) (Reply, error) {
	if name == "" {
		return Reply{}, fmt.Errorf("%w: Do needs a command name", ErrInvalidArgument)
	}
	if err := checkShared(name, args); err != nil {
		return Reply{}, err
	}
	if r.tx == nil || r.tx.e == nil {
		return Reply{}, errReadOutside
	}
	// Between WATCH and MULTI a blocking command blocks the watched
	// connection: refused as in a Pipeline when it could outlast the
	// connection's ReadTimeout, which would close it.
	if err := r.tx.e.checkPipelined(name, args); err != nil {
		return Reply{}, err
	}
	// The keys, as Engine.Do finds them (PING's argument or OBJECT's
	// subcommand is none), for the cluster slot check.
	e := r.tx.e
	var buf [8]int
	pos := e.doKeys(buf[:0], name, args)
	cmd, _, err := e.buildDo(name, args, pos)
	if err != nil {
		return Reply{}, err
	}
	keys := make([]string, len(pos))
	for i, p := range pos {
		keys[i] = args[p]
	}
	return read(r, ctx, keys, cmd, decodeReply)
}

// errReadOutside fails a TxReader's reads outside Watch (a zero TxReader's
// too: each method checks before it builds its command).
var errReadOutside = fmt.Errorf("%w: Tx.Read outside Watch", ErrInvalidArgument)

func (r TxReader) builder() valkey.Builder { return r.tx.e.b }

// Get returns the value of key, ErrNil when missing.
func (r TxReader) Get(ctx context.Context, key string) (string, error) {
	if r.tx == nil || r.tx.e == nil {
		return "", errReadOutside
	}
	return read(r, ctx, []string{key}, r.builder().Get().Key(key).Build(), decodeString)
}

// MGet returns the values of keys; a missing key is a nil entry.
func (r TxReader) MGet(ctx context.Context, keys ...string) ([]*string, error) {
	if r.tx == nil || r.tx.e == nil {
		return nil, errReadOutside
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: MGET needs at least one key", ErrInvalidArgument)
	}
	return read(r, ctx, keys, r.builder().Mget().Key(keys...).Build(), decodeNullableStrings)
}

// Exists returns how many of keys exist.
func (r TxReader) Exists(ctx context.Context, keys ...string) (int64, error) {
	if r.tx == nil || r.tx.e == nil {
		return 0, errReadOutside
	}
	if len(keys) == 0 {
		return 0, fmt.Errorf("%w: EXISTS needs at least one key", ErrInvalidArgument)
	}
	return read(r, ctx, keys, r.builder().Exists().Key(keys...).Build(), decodeInt64)
}

// HGet returns a field of the hash at key, ErrNil when missing.
func (r TxReader) HGet(ctx context.Context, key, field string) (string, error) {
	if r.tx == nil || r.tx.e == nil {
		return "", errReadOutside
	}
	return read(r, ctx, []string{key}, r.builder().Hget().Key(key).Field(field).Build(), decodeString)
}

// HGetAll returns the hash at key, empty when missing.
func (r TxReader) HGetAll(ctx context.Context, key string) (map[string]string, error) {
	if r.tx == nil || r.tx.e == nil {
		return nil, errReadOutside
	}
	return read(r, ctx, []string{key}, r.builder().Hgetall().Key(key).Build(), decodeStrMap)
}

// LRange returns the list's elements from start to stop, inclusive.
func (r TxReader) LRange(ctx context.Context, key string, start, stop int64) ([]string, error) {
	if r.tx == nil || r.tx.e == nil {
		return nil, errReadOutside
	}
	return read(r, ctx, []string{key}, r.builder().Lrange().Key(key).Start(start).Stop(stop).Build(), decodeStrings)
}

// SMembers returns the members of the set at key.
func (r TxReader) SMembers(ctx context.Context, key string) ([]string, error) {
	if r.tx == nil || r.tx.e == nil {
		return nil, errReadOutside
	}
	return read(r, ctx, []string{key}, r.builder().Smembers().Key(key).Build(), decodeStrings)
}

// ZScore returns the score of member, ErrNil when missing.
func (r TxReader) ZScore(ctx context.Context, key, member string) (float64, error) {
	if r.tx == nil || r.tx.e == nil {
		return 0, errReadOutside
	}
	return read(r, ctx, []string{key}, r.builder().Zscore().Key(key).Member(member).Build(), decodeFloat64)
}
