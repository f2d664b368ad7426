package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

// Pipeline collects commands and sends them together when Exec runs:
//
//	p := eng.Pipeline()
//	set := p.Set("user:1:name", "ada", 0)
//	visits := p.Incr("user:1:visits")
//	name := p.Get("user:1:name")
//	if err := p.Exec(ctx); err != nil { ... } // a transport error
//	n, err := visits.Await(ctx)               // each command's own result
//
// Each command method returns its future at once, typed as the Engine's
// method of the same name (every typed command of the Engine has one,
// with its arguments after ctx, except the blocking ones (BLPop, BRPop,
// BLMove), WaitReplicas, ScanPage, ScriptLoad and PingFuture: Do sends
// those); nothing is sent before Exec. Exec posts the
// commands contiguously, in order, onto the connection actors that carry
// their keys (one actor, so one pipeline, with the default PoolSize of 1),
// so no other caller's command comes between them and commands to the same
// key keep their order with the Engine's. In cluster mode the commands are
// grouped by hash slot and each group goes through its slot actor, so the
// order per key is kept too; MGet, MSet, Del, Exists and Unlink whose keys
// span slots are split as the Engine splits them.
//
// A pipeline is not a transaction: other clients' commands may run between
// its commands on the server, and each command succeeds or fails on its
// own (see Tx for MULTI/EXEC).
//
// A Pipeline is safe for concurrent use: several goroutines may add
// commands (commands added concurrently go in the order they were
// recorded; build it from one goroutine when their order matters), and a
// command added while another goroutine calls Exec or Discard either goes
// with it or fails at once with ErrInvalidArgument. Its futures may be
// awaited from any goroutine. Call Exec or Discard once: the futures of a
// Pipeline dropped without either fail with ErrDiscarded once the garbage
// collector has collected it. Commands added after Exec or Discard fail
// at once with ErrInvalidArgument. A command whose arguments are rejected
// (ErrInvalidArgument, ...) fails at once and is not sent; Exec returns
// its error (see Exec). Arguments are copied into the commands
// as they are added: the caller keeps its slices.
type Pipeline struct {
	commands
}

// Pipeline returns an empty pipeline on e. It allocates; it sends nothing.
func (e *Engine) Pipeline() *Pipeline {
	p := &Pipeline{commands{e: e, pend: &pending{}}}
	p.dropCleanup(p)
	return p
}

// Exec sends the pipeline's commands and waits until every future has
// completed (or ctx ends). ctx travels with each command as the context of
// an Engine method does: a command still queued when ctx ends is dropped
// unsent and its future fails with ctx's error. A command already written
// when ctx ends still runs on the server, but its future fails with ctx's
// error too: after a cancelled Exec, a write whose future failed with
// ctx's error may or may not have run (measured: 20,000 INCRs cancelled
// after the first reply, about 110 futures succeeded while 480 INCRs ran).
//
// Each future carries its own command's result: an error reply (WRONGTYPE,
// ...), ErrNil or a reply of another shape (ErrReplyType) fails only that
// future. Exec returns the first other
// failure in command order: a command rejected when it was added (bad
// arguments: ErrInvalidArgument, ErrCrossSlot, a *ConnectionStateError;
// it was not sent, the others were), a transport error
// (ErrOutcomeUnknown, ...), ErrCircuitOpen, ErrClosed, or ctx's error;
// nil when every command got a reply. When ctx ends before every reply
// came back Exec returns ctx's error at once; the remaining futures still
// complete.
//
// Backpressure (Config.Backpressure) applies to the commands for one
// connection actor as a whole: under BackpressureReject those that do not
// all fit in its mailbox fail together with ErrBackpressure, which Exec
// returns; under BackpressureBlock Exec waits for room for all of them
// while ctx allows (a run larger than MailboxCapacity waits for an empty
// mailbox; under BackpressureReject such a run is accepted only by an
// empty mailbox). In cluster mode keyed commands go through their slots one by
// one, each under the same policy.
//
// Exec on a pipeline already executed or discarded returns
// ErrInvalidArgument and sends nothing. An empty pipeline sends nothing.
func (p *Pipeline) Exec(ctx context.Context) error {
	if p.e == nil {
		return errZeroCommands
	}
	q, bad, err := p.begin()
	if err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if bad != nil {
		// The first rejected command, before q[p.badAt] in command order.
		bad = fmt.Errorf("vactor: pipeline command %d not sent: %w", p.badAt, bad)
	}
	if len(q) == 0 {
		return bad
	}
	// q is this Exec's alone once begin took it (the actors hold its
	// commands, not the slice): it serves another pipeline after, unless
	// the end of ctx has started failing its futures (watchAll).
	var stop func() bool
	defer func() {
		if stop == nil || stop() {
			putEntries(q)
		}
	}()
	if err := p.post(ctx, q, &stop); err != nil {
		if bad != nil && p.badAt == 0 {
			return bad
		}
		return err
	}
	at, first := awaitAll(ctx, q)
	if bad != nil && (first == nil || p.badAt <= at) {
		return bad
	}
	return first
}

// entryPool holds the slices Pipelines record their commands in, so that
// a pipeline of n commands does not regrow one (and allocate about twice
// its size) each time: a Pipeline takes one at its first command and its
// Exec puts it back, emptied.
var entryPool = sync.Pool{New: func() any { q := make([]entry, 0, 16); return &q }}

// maxPooledEntries bounds the slices put back: a huge pipeline's is left
// to the garbage collector.
const maxPooledEntries = 1 << 14

func getEntries() []entry { return (*entryPool.Get().(*[]entry))[:0] }

// putEntries empties q (its commands and closures become collectable)
// and pools it.
func putEntries(q []entry) {
	if q == nil || cap(q) > maxPooledEntries {
		return
	}
	clear(q)
	q = q[:0]
	entryPool.Put(&q)
}

// post hands q to the actors, or fails it when nothing can be sent; Close
// waits for it (execGate). The commands are prepared (their PreExecution
// hooks run) before anything is sent: a hook that calls Close closes the
// engine without waiting for this Exec (its goroutine's), which then finds
// the engine closed and fails the commands with ErrClosed.
func (p *Pipeline) post(ctx context.Context, q []entry, stop *func() bool) error {
	g := p.e.execEnter()
	defer p.e.execs.leave(g)
	if err := p.e.sendable(ctx); err != nil {
		p.e.failEnded(ctx, q, err)
		return err
	}
	p.e.prepareAll(ctx, q)
	if err := p.e.sendable(ctx); err != nil { // a hook closed the engine
		failAll(q, err)
		return err
	}
	*stop = watchAll(ctx, q)
	if p.e.cl != nil {
		p.e.postCluster(ctx, q)
	} else {
		p.e.postStandalone(ctx, q)
	}
	return nil
}

// execEnter enters the Exec gate, with the goroutine's id when
// PreExecution hooks, which may call Close, will run (see execGate).
func (e *Engine) execEnter() int64 {
	var g int64
	if e.bus.WantsPre() {
		g = goid()
	}
	e.execs.enter(g)
	return g
}

// prepareAll prepares q's commands for sending: pinned where they may be
// sent again (sentinel mode: after READONLY; cluster mode: after a
// redirect), observed by the hooks. A command split across slots is
// prepared by its split.
func (e *Engine) prepareAll(ctx context.Context, q []entry) {
	pin := e.cl != nil || e.sn != nil
	for _, en := range q {
		if en.split == nil {
			en.cmd.prepare(e, ctx, pin, false)
		}
	}
}

// watchAll makes the end of ctx fail the futures of q's commands at once
// (a command split across slots has its parts' own watch), as each
// command of an Engine method watches its own ctx (request.watch), with
// one registration for the whole Exec instead of three allocations per
// command. stop drops it and reports whether q is the caller's again (the
// registration had not run); nil when ctx cannot end or has ended.
func watchAll(ctx context.Context, q []entry) (stop func() bool) { return watchAllSent(ctx, q, nil) }

// txWatch is a transaction's side of watchAllSent: sent is set before its
// EXEC is written, expired once the watch failed a future.
type txWatch struct {
	sent    atomic.Bool
	mu      sync.Mutex // held by the watch while it fails futures
	expired bool       // under mu
	unknown int        // under mu: futures it failed with ErrOutcomeUnknown
}

// unknowns returns, once the watch is stopped or has run, the number of
// futures it failed with ErrOutcomeUnknown.
func (tw *txWatch) unknowns() int {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	return tw.unknown
}

// failedAny reports, once the watch is stopped or has run, whether it
// failed a future (waiting for it to finish when it is running).
func (tw *txWatch) failedAny() bool {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	return tw.expired
}

// watchAllSent is watchAll for a transaction: once tw.sent is set (its EXEC
// is on its way), the futures fail with ctx's error wrapped in
// ErrOutcomeUnknown, as Exec then returns, rather than with the bare one,
// which a caller may read as "did not run" (qa-AG 1: Exec returned nil,
// the transaction having run, and its futures said the deadline passed).
func watchAllSent(ctx context.Context, q []entry, tw *txWatch) (stop func() bool) {
	if ctx.Done() == nil || ctx.Err() != nil {
		return nil
	}
	return context.AfterFunc(ctx, func() {
		var err error = ctx.Err()
		sent := false
		if tw != nil {
			tw.mu.Lock()
			defer tw.mu.Unlock()
			if sent = tw.sent.Load(); sent {
				err = &policies.OutcomeUnknownError{Cause: err}
			}
		}
		for _, en := range q {
			if en.split == nil && en.cmd.expireWith(err) && tw != nil {
				tw.expired = true
				if sent {
					tw.unknown++
				}
			}
		}
	})
}

// failEnded fails q's commands unsent with err, the engine's closing or
// ctx's error when ctx ended before their Exec (a Pipeline's or a Tx's)
// sent them. With ctx's error each reaches the command hooks, failed, as
// a command of an Engine method whose ctx had ended does: prepared
// (prepareAll), and a command split across slots (a Pipeline's, cluster
// mode) sent through its split with the ended ctx, which fails each
// part unsent, one event per part as when it is sent. A command fired on
// a closed engine reaches no hook; without command hooks this is one nil
// check.
func (e *Engine) failEnded(ctx context.Context, q []entry, err error) {
	hooked := e.bus.WantsCommands() && !e.closed.Load()
	if hooked {
		e.prepareAll(ctx, q)
	}
	failAll(q, err)
	if hooked {
		for _, en := range q {
			if en.split != nil {
				en.split(ctx) // its future failed above: the parts only report
			}
		}
	}
}

// Discard drops the pipeline's commands unsent; their futures fail with
// ErrDiscarded. Discard after Exec or Discard does nothing.
func (p *Pipeline) Discard() {
	if p.e != nil {
		p.discard(ErrDiscarded)
	}
}

// Len returns the number of commands queued and not yet sent.
func (p *Pipeline) Len() int {
	if p.e == nil {
		return 0
	}
	return p.pend.len()
}

// sendable reports why nothing can be sent now: the engine is closed or
// ctx has ended.
func (e *Engine) sendable(ctx context.Context) error {
	if e.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// postStandalone posts the commands onto the connection actors of their
// keys, one contiguous run per actor.
func (e *Engine) postStandalone(ctx context.Context, q []entry) {
	var groups []postGroup
	for _, en := range q {
		conn := e.pick(en.route)
		groups = addToGroup(groups, conn.Mailbox, conn, en.cmd)
	}
	for _, g := range groups {
		g.post()
		// The mailbox copied the messages (or failed them): the slice
		// serves another Exec.
		putMsgs(g.msgs)
	}
}

// msgPool holds the slices postStandalone groups messages in.
var msgPool = sync.Pool{New: func() any { m := make([]mailbox.Message, 0, 16); return &m }}

func putMsgs(m []mailbox.Message) {
	if cap(m) > maxPooledEntries {
		return
	}
	clear(m)
	m = m[:0]
	msgPool.Put(&m)
}

// postCluster routes keyed commands by slot (each slot keeps their order),
// and keyless ones, in order, through the slot of one primary picked for
// them (keyless.go). A command split across slots goes out through the
// Engine's splitting method, after the commands before it.
func (e *Engine) postCluster(ctx context.Context, q []entry) {
	keyless := -1
	for _, en := range q {
		if en.split != nil {
			en.split(ctx)
			continue
		}
		cmd := en.cmd.Cmd()
		slot := cmd.Slot() & (actors.Slots - 1)
		if cmd.Slot() >= actors.Slots && en.route != "" {
			slot = e.slotOf(en.route) // no key, routed by an argument (PUBLISH's channel)
		}
		if en.keyless {
			if keyless < 0 {
				keyless = int(e.cl.keylessSlot())
			}
			slot = uint16(keyless)
		}
		// Per slot, in order: straight to the owner's connection actor or
		// through the slot actor, as any cluster command.
		e.cl.slot(slot).Submit(en.cmd)
	}
}

// postGroup is a run of commands for one mailbox.
type postGroup struct {
	mb   *mailbox.Bounded
	conn *actors.ConnState // set for a connection actor: its breaker is checked
	msgs []mailbox.Message
}

func addToGroup(groups []postGroup, mb *mailbox.Bounded, conn *actors.ConnState, m mailbox.Message) []postGroup {
	for i := range groups {
		if groups[i].mb == mb {
			groups[i].msgs = append(groups[i].msgs, m)
			return groups
		}
	}
	msgs := append((*msgPool.Get().(*[]mailbox.Message))[:0], m)
	return append(groups, postGroup{mb: mb, conn: conn, msgs: msgs})
}

func (g postGroup) post() {
	if g.conn != nil && g.conn.Node != nil && g.conn.Node.Open() {
		if err := failOpen(g.conn, len(g.msgs)); err != nil {
			for _, m := range g.msgs {
				m.Fail(err)
			}
			return
		}
		// Closed again meanwhile (a sentinel switch's Reset): queued.
	}
	// Backpressure applies to the run as a whole (see mailbox.PostAll);
	// its commands share Exec's ctx.
	g.mb.PostAll(g.msgs[0].Context(), g.msgs...)
	if g.conn != nil {
		g.conn.RefuseIfOpen() // opened since the check above (as post)
	}
}

// awaitAll waits for every entry's future and returns the first failure
// that is not the command's own reply, or ctx's error, with the index of
// the entry it came from (len(q) when none).
func awaitAll(ctx context.Context, q []entry) (int, error) {
	var first error
	at := len(q)
	for i, en := range q {
		err := en.cmd.wait(ctx)
		if err != nil && first == nil && !isReplyError(err) {
			if cerr := ctx.Err(); cerr != nil && !en.cmd.isDone() {
				return i, cerr
			}
			first, at = err, i
		}
	}
	return at, first
}

// isReplyError reports whether err is a command's own reply: an error
// reply, a nil reply or one of another shape than the command's
// (ErrReplyType), as opposed to a failure to get a reply.
func isReplyError(err error) bool {
	var se *ServerError
	return errors.Is(err, ErrNil) || errors.Is(err, ErrReplyType) || errors.As(err, &se)
}

// commands records the commands of a Pipeline or a Tx. Its methods are
// the Pipeline's and the Tx's; see Pipeline for their rules.
type commands struct {
	e     *Engine
	pend  *pending // apart from the Pipeline or Tx, for dropCleanup
	state uint8    // cmdsOpen, cmdsExecuted or cmdsDiscarded
	tx    bool     // a transaction: keys must share a slot, a bad argument fails all
	bad   error    // the first rejected command's error (a Tx fails whole, a Pipeline's Exec returns it)
	badAt int      // commands recorded before it: its index in command order
}

// errZeroCommands fails the methods of a zero Pipeline or Tx.
var errZeroCommands = notMade("a zero Pipeline or Tx: make one with Engine.Pipeline or Engine.Tx")

// pending is the commands recorded and not yet sent or discarded.
type pending struct {
	// mu guards q and the state and bad of the commands: a Pipeline or
	// Tx filled from several goroutines, or one goroutine adding while
	// another calls Exec, loses no command and cannot panic.
	mu sync.Mutex
	q  []entry
}

func (p *pending) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.q)
}

// dropCleanup makes the commands of owner (a *Pipeline or *Tx) fail with
// ErrDiscarded once owner is garbage collected without Exec or Discard:
// their futures complete instead of staying pending for ever.
func (c *commands) dropCleanup(owner any) {
	switch o := owner.(type) {
	case *Pipeline:
		runtime.AddCleanup(o, dropped, c.pend)
	case *Tx:
		runtime.AddCleanup(o, dropped, c.pend)
	}
}

func dropped(p *pending) {
	p.mu.Lock()
	q := p.q
	p.q = nil
	p.mu.Unlock()
	failAll(q, ErrDiscarded)
}

const (
	cmdsOpen uint8 = iota
	cmdsExecuted
	cmdsDiscarded
)

// entry is one recorded command.
type entry struct {
	cmd     queued
	route   string   // the key that routes it (the empty key too)
	keyless bool     // a command without a key (route ""), sent to any primary
	keys    []string // every key, when there is more than one
	// split, set in cluster mode for a multi-key command spanning slots
	// (pipelines only), sends it through the Engine's splitting method and
	// completes cmd from the result.
	split func(ctx context.Context)
}

// queued is a recorded command: the engine's request with a few more
// methods.
type queued interface {
	actors.Hooked
	prepare(e *Engine, ctx context.Context, pin, watch bool)
	expireWith(err error) bool
	wait(ctx context.Context) error
	isDone() bool
	completeWith(msg valkey.ValkeyMessage)
}

// prepare gives r the ctx of its Exec; with watch, the end of ctx fails
// r's future at once (request.watch; a Pipeline watches ctx once for all
// its commands instead: watchAll).
func (r *request[T]) prepare(e *Engine, ctx context.Context, pin, watch bool) {
	r.ctx = ctx
	if pin {
		r.cmd = r.cmd.Pin()
		if r.x == nil {
			r.x = new(requestExt) // not reached: add gives x where pin is used
		}
		if r.x.ext == nil {
			r.x.ext = pinnedCmd
		}
	}
	if r.observation() != nil {
		observe(e, r)
	}
	if watch {
		r.watch()
	}
}

// expireWith fails r's future with err, the end of its Exec's ctx (as
// expire does for a command that watches its own ctx).
func (r *request[T]) expireWith(err error) bool { return r.promise.Reject(err) }

func (r *request[T]) wait(ctx context.Context) error { return r.promise.Future().Err(ctx) }
func (r *request[T]) isDone() bool                   { return r.promise.IsDone() }

// completeWith completes r from one element of an EXEC reply.
func (r *request[T]) completeWith(msg valkey.ValkeyMessage) {
	r.Complete(valkey.NewResult(msg, nil))
}

// begin marks the commands executed and takes them, with a transaction's
// first rejected argument; it fails when they already were executed, or
// were discarded. Commands added from then on fail at once.
func (c *commands) begin() ([]entry, error, error) {
	c.pend.mu.Lock()
	defer c.pend.mu.Unlock()
	switch c.state {
	case cmdsExecuted:
		return nil, nil, fmt.Errorf("%w: Exec called again: a Pipeline or Tx runs once (a Watch function's Tx ends when the function returns)", ErrInvalidArgument)
	case cmdsDiscarded:
		return nil, nil, fmt.Errorf("%w: Exec after Discard", ErrInvalidArgument)
	}
	c.state = cmdsExecuted
	q := c.pend.q
	c.pend.q = nil
	return q, c.bad, nil
}

// stateNow returns c's state (cmdsOpen, cmdsExecuted or cmdsDiscarded).
func (c *commands) stateNow() uint8 {
	c.pend.mu.Lock()
	defer c.pend.mu.Unlock()
	return c.state
}

func (c *commands) discard(err error) {
	c.pend.mu.Lock()
	if c.state != cmdsOpen {
		c.pend.mu.Unlock()
		return
	}
	c.state = cmdsDiscarded
	q := c.pend.q
	c.pend.q = nil
	c.pend.mu.Unlock()
	failAll(q, err)
}

func failAll(q []entry, err error) {
	for _, en := range q {
		en.cmd.Fail(err)
	}
}

// add records a command with one key.
func add[T any](c *commands, key string, cmd valkey.Completed, decode func(valkey.ValkeyResult) (T, error)) *futures.Future[T] {
	return record(c, entry{route: key}, cmd, decode, nil)
}

// addKeyless records a command without a key.
func addKeyless[T any](c *commands, cmd valkey.Completed, decode func(valkey.ValkeyResult) (T, error)) *futures.Future[T] {
	return record(c, entry{keyless: true}, cmd, decode, nil)
}

// errAddedLate fails a command added after Exec or Discard.
var errAddedLate = fmt.Errorf("%w: command added to a pipeline or transaction already executed or discarded", ErrInvalidArgument)

// record records en (route, keys) with a request for cmd; split, when not
// nil, sends it through the Engine's splitting method instead (see
// addKeys).
func record[T any](c *commands, en entry, cmd valkey.Completed, decode func(valkey.ValkeyResult) (T, error), split func(ctx context.Context) *futures.Future[T]) *futures.Future[T] {
	var r *request[T]
	switch {
	case c.e.cl != nil:
		// Sent through slot actors, which number it (resendable.seq).
		r = newOrderedRequest(c.e, context.Background(), cmd, decode)
	case c.e.sn != nil:
		// Sent again after READONLY: x is used.
		r = newExtRequest(c.e, context.Background(), cmd, decode)
	default:
		r = newRequest(c.e, context.Background(), cmd, decode)
	}
	en.cmd = r
	if split != nil {
		en.split = func(ctx context.Context) {
			split(ctx).OnComplete(func(v T, err error) { r.promise.Complete(v, err) })
		}
	}
	c.pend.mu.Lock()
	if c.state != cmdsOpen { // after Exec or Discard: r is dropped unsent
		c.pend.mu.Unlock()
		return fail[T](errAddedLate)
	}
	if c.pend.q == nil {
		c.pend.q = getEntries()
	}
	c.pend.q = append(c.pend.q, en)
	c.pend.mu.Unlock()
	return r.promise.Future()
}

// addKeys records a command with several keys. In a cluster pipeline,
// split (when not nil) sends a command whose keys span slots through the
// Engine's method, which splits it.
func addKeys[T any](c *commands, keys []string, cmd valkey.Completed, decode func(valkey.ValkeyResult) (T, error), split func(ctx context.Context) *futures.Future[T]) *futures.Future[T] {
	if len(keys) == 1 {
		return add(c, keys[0], cmd, decode)
	}
	en := entry{route: keys[0], keys: append([]string(nil), keys...)}
	if c.tx || c.e.bySlot(keys) == nil {
		split = nil
	}
	return record(c, en, cmd, decode, split)
}

// reject fails a command whose arguments are invalid. In a transaction it
// also fails the whole transaction at Exec (as the server's EXECABORT
// would): nothing of it is sent. A pipeline's Exec returns it, in command
// order, and sends the other commands.
func reject[T any](c *commands, err error) *futures.Future[T] {
	c.pend.mu.Lock()
	if c.bad == nil && c.state == cmdsOpen {
		c.bad, c.badAt = err, len(c.pend.q)
	}
	c.pend.mu.Unlock()
	return fail[T](err)
}

func (c *commands) b() valkey.Builder { return c.e.b }

// Do adds any command, as Engine.Do: name and its arguments, routed by
// its keys as Engine.Do routes them. Its future completes with the Reply.
// A command that changes its connection's state (MULTI, SELECT, ...: see
// Engine.Do) fails at once with a *ConnectionStateError; in a Tx it also
// fails the transaction at Exec, which sends nothing (inside MULTI the
// server would run SELECT or CLIENT REPLY on the pooled connection, and
// EXEC or DISCARD would end the transaction early).
//
// In a Pipeline, blocking commands (BLPOP, BLMOVE, XREAD or XREADGROUP
// with BLOCK, ...) and WAIT or WAITAOF are checked by their timeout:
// one whose timeout is 0 (forever) or not below the connection's read
// bound (the larger of Config.ReadTimeout and Config.WriteTimeout, or
// valkey-go's 10s when both are 0) fails at once with
// ErrInvalidArgument, unsent (Exec returns that error and sends the
// pipeline's other commands): the pipeline's connection is shared with
// other callers, and its read would time out, closing it under every
// command in flight. One with a shorter timeout is sent and runs on that
// shared connection, holding up every command behind it there (this
// pipeline's and other callers') until the server answers, up to its
// timeout. A WAIT for 0 replicas (WAITAOF 0 0), which the server answers
// at once, runs whatever its timeout. Engine.Do runs blocking commands on
// connections of their own (not WAIT). In a Tx none of them is checked:
// the server does not block inside MULTI, it answers them at once.
func (c *commands) Do(name string, args ...string) *futures.Future[Reply] {
	if c.e == nil {
		return fail[Reply](errZeroCommands)
	}
	if name == "" {
		return reject[Reply](c, fmt.Errorf("%w: Do needs a command name", ErrInvalidArgument))
	}
	if err := checkShared(name, args); err != nil {
		return reject[Reply](c, err)
	}
	if !c.tx {
		if err := c.e.checkPipelined(name, args); err != nil {
			return reject[Reply](c, err)
		}
	}
	if len(args) == 0 {
		return addKeyless(c, c.b().Arbitrary(name).Build(), decodeReply)
	}
	var buf [8]int
	pos := c.e.doKeys(buf[:0], name, args)
	cmd, route, err := c.e.buildDo(name, args, pos)
	if err != nil {
		return reject[Reply](c, err)
	}
	if len(pos) == 0 {
		if c.e.cl != nil && !c.tx && strings.EqualFold(name, "PUBLISH") {
			return add(c, args[0], cmd, decodeReply) // by its channel's slot, as Engine.Publish
		}
		return addKeyless(c, cmd, decodeReply)
	}
	en := entry{route: route}
	if len(pos) > 1 {
		en.keys = make([]string, len(pos))
		for i, p := range pos {
			en.keys[i] = args[p]
		}
	}
	return record(c, en, cmd, decodeReply, nil)
}

// Get adds GET key; its future fails with ErrNil when the key is missing.
func (c *commands) Get(key string) *futures.Future[string] {
	if c.e == nil {
		return fail[string](errZeroCommands)
	}
	return add(c, key, c.b().Get().Key(key).Build(), decodeString)
}

// Set adds SET key value with a time to live: 0 for none, KeepTTL to keep
// the current one (see Engine.Set).
func (c *commands) Set(key, value string, ttl time.Duration) *futures.Future[struct{}] {
	if c.e == nil {
		return fail[struct{}](errZeroCommands)
	}
	if ttl == 0 {
		return add(c, key, c.b().Set().Key(key).Value(value).Build(), decodeOK)
	}
	ex, err := ttlArgs(ttl)
	if err != nil {
		return reject[struct{}](c, err)
	}
	return add(c, key, c.b().Arbitrary("SET").Keys(key).Args(value).Args(ex...).Build(), decodeOK)
}

// SetNX adds SETNX key value, or SET key value NX with a time to live
// (ttl as for Set), as Engine.SetNX; its future reports whether the key
// was set.
func (c *commands) SetNX(key, value string, ttl time.Duration) *futures.Future[bool] {
	if c.e == nil {
		return fail[bool](errZeroCommands)
	}
	if ttl == 0 {
		return add(c, key, c.b().Setnx().Key(key).Value(value).Build(), decodeIntBool)
	}
	ex, err := ttlArgs(ttl)
	if err != nil {
		return reject[bool](c, err)
	}
	return add(c, key, c.b().Arbitrary("SET").Keys(key).Args(value, "NX").Args(ex...).Build(), decodeSetNX)
}

// decodeSetNX reads SET ... NX's reply: OK when it set the key, nil when
// the key existed.
func decodeSetNX(res valkey.ValkeyResult) (bool, error) {
	err := res.Error()
	if valkey.IsValkeyNil(err) {
		return false, nil
	}
	return err == nil, err
}

// MGet adds MGET keys; a missing key is a nil entry.
func (c *commands) MGet(keys ...string) *futures.Future[[]*string] {
	if c.e == nil {
		return fail[[]*string](errZeroCommands)
	}
	if len(keys) == 0 {
		return reject[[]*string](c, fmt.Errorf("%w: MGET needs at least one key", ErrInvalidArgument))
	}
	e := c.e
	return addKeys(c, keys, c.b().Mget().Key(keys...).Build(), decodeNullableStrings,
		func(ctx context.Context) *futures.Future[[]*string] { return e.MGet(ctx, keys...) })
}

// MSet adds MSET with alternating key/value arguments.
func (c *commands) MSet(keyValues ...string) *futures.Future[struct{}] {
	if c.e == nil {
		return fail[struct{}](errZeroCommands)
	}
	if len(keyValues) == 0 || len(keyValues)%2 != 0 {
		return reject[struct{}](c, fmt.Errorf("%w: MSET needs key/value pairs, got %d arguments", ErrInvalidArgument, len(keyValues)))
	}
	keys := make([]string, len(keyValues)/2)
	kv := c.b().Mset().KeyValue()
	for i := range keys {
		keys[i] = keyValues[2*i]
		kv = kv.KeyValue(keyValues[2*i], keyValues[2*i+1])
	}
	e := c.e
	kvs := append([]string(nil), keyValues...)
	return addKeys(c, keys, kv.Build(), decodeOK,
		func(ctx context.Context) *futures.Future[struct{}] { return e.MSet(ctx, kvs...) })
}

// MSetNX adds MSETNX with alternating key/value arguments, as
// Engine.MSetNX: all or none; its future reports whether they were set.
// In cluster mode its keys must share a hash slot (ErrCrossSlot).
func (c *commands) MSetNX(keyValues ...string) *futures.Future[bool] {
	if c.e == nil {
		return fail[bool](errZeroCommands)
	}
	cmd, err := c.e.msetNXCmd(c.b(), keyValues)
	if err != nil {
		return reject[bool](c, err)
	}
	return add(c, keyValues[0], cmd, decodeBool)
}

// Incr adds INCR key; its future holds the new value.
func (c *commands) Incr(key string) *futures.Future[int64] {
	if c.e == nil {
		return fail[int64](errZeroCommands)
	}
	return add(c, key, c.b().Incr().Key(key).Build(), decodeInt64)
}

// IncrBy adds INCRBY key n; its future holds the new value.
func (c *commands) IncrBy(key string, n int64) *futures.Future[int64] {
	if c.e == nil {
		return fail[int64](errZeroCommands)
	}
	return add(c, key, c.b().Incrby().Key(key).Increment(n).Build(), decodeInt64)
}

// Decr adds DECR key; its future holds the new value.
func (c *commands) Decr(key string) *futures.Future[int64] {
	if c.e == nil {
		return fail[int64](errZeroCommands)
	}
	return add(c, key, c.b().Decr().Key(key).Build(), decodeInt64)
}

// Del adds DEL keys; its future holds how many existed.
func (c *commands) Del(keys ...string) *futures.Future[int64] {
	if c.e == nil {
		return fail[int64](errZeroCommands)
	}
	if len(keys) == 0 {
		return reject[int64](c, fmt.Errorf("%w: DEL needs at least one key", ErrInvalidArgument))
	}
	e := c.e
	return addKeys(c, keys, c.b().Del().Key(keys...).Build(), decodeInt64,
		func(ctx context.Context) *futures.Future[int64] { return e.Del(ctx, keys...) })
}

// Exists adds EXISTS keys; its future holds how many exist.
func (c *commands) Exists(keys ...string) *futures.Future[int64] {
	if c.e == nil {
		return fail[int64](errZeroCommands)
	}
	if len(keys) == 0 {
		return reject[int64](c, fmt.Errorf("%w: EXISTS needs at least one key", ErrInvalidArgument))
	}
	e := c.e
	return addKeys(c, keys, c.b().Exists().Key(keys...).Build(), decodeInt64,
		func(ctx context.Context) *futures.Future[int64] { return e.Exists(ctx, keys...) })
}

// Expire adds EXPIRE key with ttl in whole seconds (at least 1s); its
// future reports whether the key exists.
func (c *commands) Expire(key string, ttl time.Duration) *futures.Future[bool] {
	if c.e == nil {
		return fail[bool](errZeroCommands)
	}
	if ttl < time.Second {
		return reject[bool](c, fmt.Errorf("%w: EXPIRE needs a ttl of at least 1s, got %s %s", ErrInvalidArgument, ttl, expireHint(ttl, time.Second)))
	}
	return add(c, key, c.b().Expire().Key(key).Seconds(int64(ttl/time.Second)).Build(), decodeIntBool)
}

// PExpire adds PEXPIRE key with ttl to the millisecond (at least 1ms,
// else it is refused as Expire's; see Engine.PExpire).
func (c *commands) PExpire(key string, ttl time.Duration) *futures.Future[bool] {
	if c.e == nil {
		return fail[bool](errZeroCommands)
	}
	if ttl < time.Millisecond {
		return reject[bool](c, fmt.Errorf("%w: PEXPIRE needs a ttl of at least 1ms, got %s %s", ErrInvalidArgument, ttl, expireHint(ttl, time.Millisecond)))
	}
	return add(c, key, c.b().Pexpire().Key(key).Milliseconds(int64(ttl/time.Millisecond)).Build(), decodeIntBool)
}

// TTL adds TTL key (see Engine.TTL).
func (c *commands) TTL(key string) *futures.Future[TTL] {
	if c.e == nil {
		return fail[TTL](errZeroCommands)
	}
	// Decoded with the reply, not through futures.Then: Exec returns with
	// every future complete.
	return add(c, key, c.b().Ttl().Key(key).Build(), decodeTTLSeconds)
}

// HSet adds HSET key with alternating field/value arguments; its future
// holds how many fields were added.
func (c *commands) HSet(key string, fieldValues ...string) *futures.Future[int64] {
	if c.e == nil {
		return fail[int64](errZeroCommands)
	}
	if len(fieldValues) == 0 || len(fieldValues)%2 != 0 {
		return reject[int64](c, fmt.Errorf("%w: HSET needs field/value pairs, got %d arguments", ErrInvalidArgument, len(fieldValues)))
	}
	fv := c.b().Hset().Key(key).FieldValue()
	for i := 0; i < len(fieldValues); i += 2 {
		fv = fv.FieldValue(fieldValues[i], fieldValues[i+1])
	}
	return add(c, key, fv.Build(), decodeInt64)
}

// HSetMap adds HSET key with the fields and values of m (see
// Engine.HSetMap); its future holds how many fields were added.
func (c *commands) HSetMap(key string, m map[string]string) *futures.Future[int64] {
	if c.e == nil {
		return fail[int64](errZeroCommands)
	}
	if len(m) == 0 {
		return reject[int64](c, fmt.Errorf("%w: HSET needs at least one field, got an empty map", ErrInvalidArgument))
	}
	fv := c.b().Hset().Key(key).FieldValue()
	for f, v := range m {
		fv = fv.FieldValue(f, v)
	}
	return add(c, key, fv.Build(), decodeInt64)
}

// HGet adds HGET key field; its future fails with ErrNil when missing.
func (c *commands) HGet(key, field string) *futures.Future[string] {
	if c.e == nil {
		return fail[string](errZeroCommands)
	}
	return add(c, key, c.b().Hget().Key(key).Field(field).Build(), decodeString)
}

// HGetAll adds HGETALL key; a missing key is an empty map.
func (c *commands) HGetAll(key string) *futures.Future[map[string]string] {
	if c.e == nil {
		return fail[map[string]string](errZeroCommands)
	}
	return add(c, key, c.b().Hgetall().Key(key).Build(), decodeStrMap)
}

// HDel adds HDEL key fields; its future holds how many existed.
func (c *commands) HDel(key string, fields ...string) *futures.Future[int64] {
	if c.e == nil {
		return fail[int64](errZeroCommands)
	}
	if len(fields) == 0 {
		return reject[int64](c, fmt.Errorf("%w: HDEL needs at least one field", ErrInvalidArgument))
	}
	return add(c, key, c.b().Hdel().Key(key).Field(fields...).Build(), decodeInt64)
}

// HIncrBy adds HINCRBY key field n; its future holds the new value.
func (c *commands) HIncrBy(key, field string, n int64) *futures.Future[int64] {
	if c.e == nil {
		return fail[int64](errZeroCommands)
	}
	return add(c, key, c.b().Hincrby().Key(key).Field(field).Increment(n).Build(), decodeInt64)
}

// LPush adds LPUSH key values; its future holds the list's new length.
func (c *commands) LPush(key string, values ...string) *futures.Future[int64] {
	if c.e == nil {
		return fail[int64](errZeroCommands)
	}
	if len(values) == 0 {
		return reject[int64](c, fmt.Errorf("%w: LPUSH needs at least one value", ErrInvalidArgument))
	}
	return add(c, key, c.b().Lpush().Key(key).Element(values...).Build(), decodeInt64)
}

// RPush adds RPUSH key values; its future holds the list's new length.
func (c *commands) RPush(key string, values ...string) *futures.Future[int64] {
	if c.e == nil {
		return fail[int64](errZeroCommands)
	}
	if len(values) == 0 {
		return reject[int64](c, fmt.Errorf("%w: RPUSH needs at least one value", ErrInvalidArgument))
	}
	return add(c, key, c.b().Rpush().Key(key).Element(values...).Build(), decodeInt64)
}

// LPop adds LPOP key; its future fails with ErrNil when the list is empty.
func (c *commands) LPop(key string) *futures.Future[string] {
	if c.e == nil {
		return fail[string](errZeroCommands)
	}
	return add(c, key, c.b().Lpop().Key(key).Build(), decodeString)
}

// LRange adds LRANGE key start stop (inclusive; negative from the end).
func (c *commands) LRange(key string, start, stop int64) *futures.Future[[]string] {
	if c.e == nil {
		return fail[[]string](errZeroCommands)
	}
	return add(c, key, c.b().Lrange().Key(key).Start(start).Stop(stop).Build(), decodeStrings)
}

// LTrim adds LTRIM key start stop, keeping only that range of the list.
func (c *commands) LTrim(key string, start, stop int64) *futures.Future[struct{}] {
	if c.e == nil {
		return fail[struct{}](errZeroCommands)
	}
	return add(c, key, c.b().Ltrim().Key(key).Start(start).Stop(stop).Build(), decodeOK)
}

// SAdd adds SADD key members; its future holds how many were new.
func (c *commands) SAdd(key string, members ...string) *futures.Future[int64] {
	if c.e == nil {
		return fail[int64](errZeroCommands)
	}
	if len(members) == 0 {
		return reject[int64](c, fmt.Errorf("%w: SADD needs at least one member", ErrInvalidArgument))
	}
	return add(c, key, c.b().Sadd().Key(key).Member(members...).Build(), decodeInt64)
}

// SRem adds SREM key members; its future holds how many were removed.
func (c *commands) SRem(key string, members ...string) *futures.Future[int64] {
	if c.e == nil {
		return fail[int64](errZeroCommands)
	}
	if len(members) == 0 {
		return reject[int64](c, fmt.Errorf("%w: SREM needs at least one member", ErrInvalidArgument))
	}
	return add(c, key, c.b().Srem().Key(key).Member(members...).Build(), decodeInt64)
}

// SMembers adds SMEMBERS key.
func (c *commands) SMembers(key string) *futures.Future[[]string] {
	if c.e == nil {
		return fail[[]string](errZeroCommands)
	}
	return add(c, key, c.b().Smembers().Key(key).Build(), decodeStrings)
}

// ZAdd adds ZADD key with scored members; its future holds how many were
// added. A NaN score is rejected.
func (c *commands) ZAdd(key string, members ...Z) *futures.Future[int64] {
	if c.e == nil {
		return fail[int64](errZeroCommands)
	}
	if len(members) == 0 {
		return reject[int64](c, fmt.Errorf("%w: ZADD needs at least one member", ErrInvalidArgument))
	}
	sm := c.b().Zadd().Key(key).ScoreMember()
	for i, m := range members {
		if math.IsNaN(m.Score) {
			return reject[int64](c, zaddNaN(i, len(members)))
		}
		sm = sm.ScoreMember(m.Score, m.Member)
	}
	return add(c, key, sm.Build(), decodeInt64)
}

// ZScore adds ZSCORE key member; its future fails with ErrNil when missing.
func (c *commands) ZScore(key, member string) *futures.Future[float64] {
	if c.e == nil {
		return fail[float64](errZeroCommands)
	}
	return add(c, key, c.b().Zscore().Key(key).Member(member).Build(), decodeFloat64)
}

// ZIncrBy adds ZINCRBY key incr member; its future holds the new score.
func (c *commands) ZIncrBy(key string, incr float64, member string) *futures.Future[float64] {
	if c.e == nil {
		return fail[float64](errZeroCommands)
	}
	if math.IsNaN(incr) {
		return reject[float64](c, fmt.Errorf("%w: ZINCRBY increment is NaN", ErrInvalidArgument))
	}
	return add(c, key, c.b().Zincrby().Key(key).Increment(incr).Member(member).Build(), decodeFloat64)
}

// ZRangeWithScores adds ZRANGE key start stop WITHSCORES.
func (c *commands) ZRangeWithScores(key string, start, stop int64) *futures.Future[[]Z] {
	if c.e == nil {
		return fail[[]Z](errZeroCommands)
	}
	return add(c, key, c.b().Zrange().Key(key).Min(strconv.FormatInt(start, 10)).Max(strconv.FormatInt(stop, 10)).Withscores().Build(), decodeZs)
}
