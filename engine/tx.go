package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
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
// connection actors), as one write, and is never retried: a transport
// failure fails its futures with ErrOutcomeUnknown once EXEC may have been
// written (it may have run), or with the error when it was not.
//
// Inside Engine.Watch a Tx also reads, at once, on the watched connection:
// see Read.
//
// A Tx is not safe for concurrent use; call Exec or Discard once, as for a
// Pipeline.
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
//     the others with the EXECABORT error;
//   - ErrInvalidArgument when a command method rejected its arguments:
//     nothing was sent;
//   - ErrCrossSlot (cluster mode) when the keys span slots: nothing was
//     sent;
//   - a transport error, ErrClosed, or ctx's error (wrapped in
//     ErrOutcomeUnknown when EXEC may have been written).
//
// ctx bounds getting a connection and the round trip. Exec on a
// transaction already executed or discarded returns ErrInvalidArgument;
// an empty transaction sends nothing and returns nil.
func (tx *Tx) Exec(ctx context.Context) error {
	if err := tx.begin(); err != nil {
		return err
	}
	tx.execErr = tx.exec(ctx)
	return tx.execErr
}

func (tx *Tx) exec(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	q := tx.pend.q
	tx.pend.q = nil
	if tx.bad != nil {
		err := fmt.Errorf("vactor: transaction not sent: %w", tx.bad)
		failAll(q, err)
		return err
	}
	if len(q) == 0 {
		return nil
	}
	e := tx.e
	if err := e.sendable(ctx); err != nil {
		failAll(q, err)
		return err
	}
	slot, key, err := e.txSlot(q, tx.w)
	if err != nil {
		failAll(q, err)
		return err
	}
	if err := e.settled(ctx); err != nil { // sentinel mode: a failover is held
		failAll(q, err)
		return err
	}
	if w := tx.w; w != nil {
		if w.broken != nil {
			failAll(q, w.broken)
			return w.broken
		}
		healthy, err := e.execOn(ctx, w.conn, q)
		w.execd = true
		if !healthy {
			w.broken = err
		}
		return err
	}
	addr, err := e.txAddr(slot, key)
	if err != nil {
		failAll(q, err)
		return err
	}
	conn, err := e.tx.get(e, ctx, addr)
	if err != nil {
		failAll(q, err)
		return err
	}
	healthy, err := e.execOn(ctx, conn, q)
	e.tx.put(addr, conn, healthy)
	return err
}

// Discard drops the transaction's commands unsent; their futures fail with
// ErrDiscarded. Discard after Exec or Discard does nothing. Inside Watch,
// Watch then ends the WATCH (UNWATCH) and returns nil.
func (tx *Tx) Discard() { tx.discard(ErrDiscarded) }

// Len returns the number of commands queued and not yet sent.
func (tx *Tx) Len() int { return len(tx.pend.q) }

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
		} else if en.route != "" {
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

// execOn sends MULTI, q's commands and EXEC on conn and completes q's
// futures. healthy is false when conn must not be used again.
func (e *Engine) execOn(ctx context.Context, conn drivers.ValkeyConn, q []entry) (healthy bool, err error) {
	defer func() {
		switch {
		case err == nil:
			e.tx.execs.Add(1)
		case errors.Is(err, ErrTxAborted):
			e.tx.aborted.Add(1)
		default:
			e.tx.failed.Add(1)
		}
	}()
	if err := e.tx.enter(); err != nil {
		failAll(q, err)
		return false, err
	}
	defer e.tx.leave()
	cmds := make([]valkey.Completed, 0, len(q)+2)
	cmds = append(cmds, e.b.Multi().Build())
	for _, en := range q {
		en.cmd.prepare(e, ctx, false)
		cmds = append(cmds, en.cmd.Cmd())
	}
	cmds = append(cmds, e.b.Exec().Build())
	// valkey-go moves a DoMulti longer than the connection's pipeline
	// limit to another connection: send a long transaction in parts. The
	// connection is ours alone, so nothing comes between them.
	part := max(e.opts.MaxPipeline, 2)
	res := make([]valkey.ValkeyResult, 0, len(cmds))
	var terr error
	execTried := false
	for from := 0; from < len(cmds) && terr == nil; from += part {
		to := min(from+part, len(cmds))
		execTried = to == len(cmds)
		rs := conn.DoMulti(ctx, cmds[from:to]...)
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
		if execTried && !policies.NotSent(terr) {
			// EXEC may have reached the server: the transaction may have run.
			terr = &policies.OutcomeUnknownError{Cause: terr}
		} else {
			// EXEC was not written: the server drops the transaction with
			// the connection.
			terr = fmt.Errorf("vactor: transaction not executed: %w", terr)
		}
		failAll(q, terr)
		return false, terr
	}
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
		abort := replyError(&ex, err)
		moved := false
		for i, en := range q {
			if qerr := res[1+i].Error(); qerr != nil {
				qe := replyError(&res[1+i], qerr)
				moved = moved || isRedirect(qe)
				en.cmd.Fail(qe)
				continue
			}
			en.cmd.Fail(abort)
		}
		if moved && e.cl != nil {
			e.cl.refresh()
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

// isRedirect reports whether err is a MOVED or ASK reply.
func isRedirect(err error) bool {
	var se *ServerError
	return errors.As(err, &se) && (se.Prefix == "MOVED" || se.Prefix == "ASK")
}

// errShortTxReply fails a transaction whose replies did not match its
// commands (a driver or server fault).
var errShortTxReply = errors.New("vactor: transaction reply does not match its commands")

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
// (their futures fail with ErrDiscarded), the WATCH is dropped, and Watch
// returns fn's error. fn may call tx.Exec itself (to await the futures
// before returning); Watch then does not execute again and returns what
// Exec returned. When fn queues nothing, nothing is executed and Watch
// returns nil.
//
// The connection is dedicated to this call while it runs (the WATCH state
// of a connection would otherwise be shared with other callers), taken
// from the engine's pool of transaction connections and returned to it
// after UNWATCH or EXEC. In cluster mode keys, the keys fn reads and the
// keys it queues must share one slot (ErrCrossSlot otherwise).
//
// ctx bounds each round trip (WATCH, reads, EXEC) and the wait for a
// connection. Watch is safe for concurrent use; tx is not, and must not be
// used after fn returns (other than its futures). Close fails a Watch in
// progress: its round trips fail and Exec returns ErrClosed.
func (e *Engine) Watch(ctx context.Context, fn func(tx *Tx) error, keys ...string) error {
	if ctx == nil {
		ctx = context.Background()
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
	addr, err := e.addrOf(keys[0])
	if err != nil {
		return err
	}
	if err := w.watch(ctx, e, addr, keys); err != nil {
		return err
	}
	tx := &Tx{commands: commands{e: e, tx: true, pend: &pending{}}, w: w}
	finished := false
	defer func() {
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
	switch tx.state {
	case cmdsOpen:
		err2 = tx.Exec(ctx)
	case cmdsExecuted:
		err2 = tx.execErr
	}
	w.release(ctx, e)
	return err2
}

// WatchRetry runs Watch until a run is not aborted by a change to a watched
// key, at most attempts times (at least 1), waiting between runs with the
// engine's retry backoff: Config.MinRetryBackoff doubling per run up to
// Config.MaxRetryBackoff, with jitter, so contending callers spread out.
// fn runs once per run, each time with a new Tx: it must read what it
// needs through that Tx and have no other side effects.
//
// It returns nil once a run committed; fn's error or any other Watch error
// at once; ctx's error when ctx ends while waiting; and, after attempts
// aborted runs, an error that matches ErrTxAborted.
func (e *Engine) WatchRetry(ctx context.Context, attempts int, fn func(tx *Tx) error, keys ...string) error {
	if attempts < 1 {
		return fmt.Errorf("%w: WatchRetry needs at least 1 attempt, got %d", ErrInvalidArgument, attempts)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	b := policies.Backoff{Min: e.cfg.MinRetryBackoff, Max: e.cfg.MaxRetryBackoff}
	for n := 0; ; n++ {
		err := e.Watch(ctx, fn, keys...)
		if !errors.Is(err, ErrTxAborted) {
			return err
		}
		if n+1 >= attempts {
			return fmt.Errorf("%w (%d attempts)", err, attempts)
		}
		if d := b.Delay(n); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
	}
}

// watchState is a Watch's hold on its connection.
type watchState struct {
	conn   drivers.ValkeyConn
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
		res := e.tx.call(ctx, conn, e.b.Watch().Key(keys...).Build())
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
// connection back to the pool, or closes it when it failed.
func (w *watchState) release(ctx context.Context, e *Engine) {
	if w.conn == nil {
		return
	}
	conn := w.conn
	w.conn = nil
	healthy := w.broken == nil
	if healthy && !w.execd {
		healthy = e.tx.call(ctx, conn, e.b.Unwatch().Build()).Error() == nil
	}
	e.tx.put(w.addr, conn, healthy)
	if w.broken == nil {
		w.broken = ErrDiscarded // tx must not be used after Watch returns
	}
}

// TxReader reads inside Engine.Watch: each method sends its command at
// once on the watched connection, between WATCH and MULTI, and waits for
// the reply. Results and errors are those of the Engine's methods of the
// same name (ErrNil, *ServerError, ...). Outside Watch, after Exec, or
// after the Watch function returned, every method fails with
// ErrInvalidArgument. Not safe for concurrent use (it is the Tx's).
type TxReader struct{ tx *Tx }

// Read returns the reader of a transaction run by Engine.Watch.
func (tx *Tx) Read() TxReader { return TxReader{tx} }

// read sends cmd on the watched connection and decodes its reply.
func read[T any](r TxReader, ctx context.Context, keys []string, cmd valkey.Completed, decode func(valkey.ValkeyResult) (T, error)) (T, error) {
	var zero T
	tx := r.tx
	if tx == nil || tx.w == nil {
		return zero, fmt.Errorf("%w: Tx.Read outside Watch", ErrInvalidArgument)
	}
	w := tx.w
	if tx.state != cmdsOpen || w.conn == nil {
		return zero, fmt.Errorf("%w: Tx.Read after Exec, Discard or the end of Watch", ErrInvalidArgument)
	}
	if w.broken != nil {
		return zero, w.broken
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
	res := tx.e.tx.call(ctx, w.conn, cmd)
	if terr := res.NonValkeyError(); terr != nil {
		w.broken = terr
		return zero, terr
	}
	v, err := decode(res)
	return v, replyError(&res, err)
}

// Do sends any command at once, as Engine.Do; commands that change the
// connection's state fail with a *ConnectionStateError, as there (the
// connection goes back to the engine's pool after Watch).
func (r TxReader) Do(ctx context.Context, name string, args ...string) (Reply, error) {
	if name == "" {
		return Reply{}, fmt.Errorf("%w: Do needs a command name", ErrInvalidArgument)
	}
	if err := checkShared(name, args); err != nil {
		return Reply{}, err
	}
	b := r.builder()
	if len(args) == 0 {
		return read(r, ctx, nil, b.Arbitrary(name).Build(), decodeReply)
	}
	return read(r, ctx, args[:1], b.Arbitrary(name).Keys(args[0]).Args(args[1:]...).Build(), decodeReply)
}

func (r TxReader) builder() valkey.Builder {
	if r.tx == nil {
		return valkey.Builder{}
	}
	return r.tx.e.b
}

// Get returns the value of key, ErrNil when missing.
func (r TxReader) Get(ctx context.Context, key string) (string, error) {
	return read(r, ctx, []string{key}, r.builder().Get().Key(key).Build(), decodeString)
}

// MGet returns the values of keys; a missing key is a nil entry.
func (r TxReader) MGet(ctx context.Context, keys ...string) ([]*string, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: MGET needs at least one key", ErrInvalidArgument)
	}
	return read(r, ctx, keys, r.builder().Mget().Key(keys...).Build(), decodeNullableStrings)
}

// Exists returns how many of keys exist.
func (r TxReader) Exists(ctx context.Context, keys ...string) (int64, error) {
	if len(keys) == 0 {
		return 0, fmt.Errorf("%w: EXISTS needs at least one key", ErrInvalidArgument)
	}
	return read(r, ctx, keys, r.builder().Exists().Key(keys...).Build(), decodeInt64)
}

// HGet returns a field of the hash at key, ErrNil when missing.
func (r TxReader) HGet(ctx context.Context, key, field string) (string, error) {
	return read(r, ctx, []string{key}, r.builder().Hget().Key(key).Field(field).Build(), decodeString)
}

// HGetAll returns the hash at key, empty when missing.
func (r TxReader) HGetAll(ctx context.Context, key string) (map[string]string, error) {
	return read(r, ctx, []string{key}, r.builder().Hgetall().Key(key).Build(), decodeStrMap)
}

// LRange returns the list's elements from start to stop, inclusive.
func (r TxReader) LRange(ctx context.Context, key string, start, stop int64) ([]string, error) {
	return read(r, ctx, []string{key}, r.builder().Lrange().Key(key).Start(start).Stop(stop).Build(), decodeStrings)
}

// SMembers returns the members of the set at key.
func (r TxReader) SMembers(ctx context.Context, key string) ([]string, error) {
	return read(r, ctx, []string{key}, r.builder().Smembers().Key(key).Build(), decodeStrings)
}

// ZScore returns the score of member, ErrNil when missing.
func (r TxReader) ZScore(ctx context.Context, key, member string) (float64, error) {
	return read(r, ctx, []string{key}, r.builder().Zscore().Key(key).Member(member).Build(), decodeFloat64)
}

// Transaction connections: at most txMaxOpen per node, of which up to
// txMaxIdle are kept open between uses; more concurrent transactions on
// one node wait (bounded by their context) for a connection to come back.
// An idle connection unused for txCheckIdle or longer is checked with a
// PING before a transaction is written on it.
const (
	txMaxIdle   = 16
	txMaxOpen   = 256
	txCheckIdle = time.Second
)

// txConns is the engine's pool of dedicated transaction connections, per
// node address. The zero value is ready; it registers itself with the
// engine's services on first use, so Close closes every connection (idle
// or busy) and waits for the calls on them to return. Safe for concurrent
// use.
type txConns struct {
	mu      sync.Mutex
	idle    map[string][]drivers.ValkeyConn
	open    map[drivers.ValkeyConn]string    // every open connection -> its address
	count   map[string]int                   // open or being dialled, per address
	since   map[drivers.ValkeyConn]time.Time // when an idle connection was given back
	freed   chan struct{}                    // closed (and replaced) when a connection is given back
	tracked bool
	closed  bool
	ops     sync.WaitGroup // calls on the connections, and dials, in progress
	// noIdlePing dials connections on which the driver sends nothing of
	// its own (drivers.Options.NoIdlePing): set before first use.
	noIdlePing bool

	execs, aborted, failed atomic.Uint64 // EXECs that ran, aborted (WATCH), failed: for Stats
}

// enter counts a call on a connection; it fails once the pool is closed.
func (p *txConns) enter() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	p.ops.Add(1)
	return nil
}

func (p *txConns) leave() { p.ops.Done() }

// call sends one command on conn, counted by enter/leave.
func (p *txConns) call(ctx context.Context, conn drivers.ValkeyConn, cmd valkey.Completed) valkey.ValkeyResult {
	if err := p.enter(); err != nil {
		return valkey.NewResult(valkey.ValkeyMessage{}, err)
	}
	defer p.leave()
	return conn.Do(ctx, cmd)
}

// get returns an idle connection to addr, or dials one, or waits for one
// when txMaxOpen are in use.
func (p *txConns) get(e *Engine, ctx context.Context, addr string) (drivers.ValkeyConn, error) {
	if e.nodeOpen(addr) {
		return nil, ErrCircuitOpen
	}
	for {
		p.mu.Lock()
		if p.closed || e.closed.Load() {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		if !p.tracked {
			if err := e.track(p); err != nil {
				p.mu.Unlock()
				return nil, err
			}
			p.tracked = true
			p.idle = map[string][]drivers.ValkeyConn{}
			p.open = map[drivers.ValkeyConn]string{}
			p.count = map[string]int{}
			p.since = map[drivers.ValkeyConn]time.Time{}
		}
		if l := p.idle[addr]; len(l) > 0 {
			c := l[len(l)-1]
			l[len(l)-1] = nil
			p.idle[addr] = l[:len(l)-1]
			since := p.since[c]
			p.mu.Unlock()
			if time.Since(since) < txCheckIdle {
				return c, nil
			}
			// Idle for a while: the server may have closed it (restart,
			// timeout). A transaction written on a dead connection would
			// end with an unknown outcome, so check it first.
			if err := p.call(ctx, c, c.B().Ping().Build()).Error(); err == nil {
				return c, nil
			} else if ctx.Err() != nil {
				p.put(addr, c, false)
				return nil, ctx.Err()
			}
			p.put(addr, c, false)
			p.dropIdle(addr) // the others likely are broken too
			continue
		}
		if p.count[addr] < txMaxOpen {
			p.count[addr]++
			p.ops.Add(1)
			p.mu.Unlock()
			return p.dial(e, ctx, addr)
		}
		if p.freed == nil {
			p.freed = make(chan struct{})
		}
		freed := p.freed
		p.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// dial opens a connection for get; the caller counted it in count and ops.
func (p *txConns) dial(e *Engine, ctx context.Context, addr string) (drivers.ValkeyConn, error) {
	defer p.ops.Done()
	dctx, cancel := context.WithTimeout(ctx, e.cfg.DialTimeout)
	conn, err := e.dialConn(dctx, addr, p.noIdlePing)
	cancel()
	p.mu.Lock()
	if err == nil && p.closed {
		err = ErrClosed
		_ = conn.Close()
	}
	if err != nil {
		p.count[addr]--
		p.signalLocked()
		p.mu.Unlock()
		return nil, err
	}
	p.open[conn] = addr
	p.mu.Unlock()
	return conn, nil
}

// put gives conn back: kept idle when healthy and there is room, closed
// otherwise.
func (p *txConns) put(addr string, conn drivers.ValkeyConn, healthy bool) {
	p.mu.Lock()
	if _, ok := p.open[conn]; !ok { // closed by stop
		p.mu.Unlock()
		return
	}
	if healthy && !p.closed && len(p.idle[addr]) < txMaxIdle {
		p.idle[addr] = append(p.idle[addr], conn)
		p.since[conn] = time.Now()
		p.signalLocked()
		p.mu.Unlock()
		return
	}
	delete(p.open, conn)
	delete(p.since, conn)
	p.count[addr]--
	p.signalLocked()
	p.mu.Unlock()
	_ = conn.Close()
}

// dropIdle closes the idle connections to addr (after one was found
// broken: the others likely are too).
func (p *txConns) dropIdle(addr string) {
	p.mu.Lock()
	l := p.idle[addr]
	delete(p.idle, addr)
	for _, c := range l {
		delete(p.open, c)
		delete(p.since, c)
		p.count[addr]--
	}
	p.signalLocked()
	p.mu.Unlock()
	for _, c := range l {
		_ = c.Close()
	}
}

func (p *txConns) signalLocked() {
	if p.freed != nil {
		close(p.freed)
		p.freed = nil
	}
}

// stop implements service: it closes every connection, idle or in use,
// fails later calls with ErrClosed, and waits for the calls in progress
// (they return once their connection is closed).
func (p *txConns) stop(error) {
	p.mu.Lock()
	p.closed = true
	conns := make([]drivers.ValkeyConn, 0, len(p.open))
	for c := range p.open {
		conns = append(conns, c)
	}
	p.open, p.idle = nil, nil
	p.signalLocked()
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	p.ops.Wait()
}
