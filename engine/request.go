package engine

import (
	"context"
	"errors"
	"math"
	"sync/atomic"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/mailbox"
)

// request is one command on its way: the future the caller holds, the
// command, and the decoder of its reply, in one allocation.
type request[T any] struct {
	promise futures.Promise[T]
	ctx     context.Context
	cmd     valkey.Completed
	decode  func(valkey.ValkeyResult) (T, error)
	// retries counts transport retries (only the connection actor touches
	// it; rewrites those after the command was written), redirects
	// cluster redirects (only the slot actor): each has its own budget,
	// MaxRetries and MaxRedirects. int16: MaxRetries is small, and the
	// three fit where two int32s were.
	retries, rewrites int16
	redirects         int32
	// stop unregisters the context.AfterFunc that fails the future when
	// ctx ends (see watch); nil when ctx cannot end.
	stop func() bool
	// x holds what only cluster, sentinel and observed requests use, in
	// the same allocation as theirs (slotRequest, extRequest,
	// observedRequest); nil for a plain standalone command without
	// command hooks, which keeps that request a size class smaller
	// (112 B for a SET, 128 for a GET, instead of 128 and 144).
	x *requestExt
}

// requestExt is the part of a request that cluster and sentinel mode and
// the command hooks use.
type requestExt struct {
	// hook, set by a slot actor (cluster mode), hears of the completion and
	// takes back redirect replies.
	hook atomic.Pointer[actors.Collector]
	// ext, in cluster and sentinel mode, keeps what it takes to send cmd
	// again after a redirect (or a READONLY reply), and in cluster mode
	// the request's place in its slot's order; pinnedCmd when cmd is
	// pinned (sentinel mode); nil otherwise: cmd cannot be sent again
	// once answered.
	ext *resendable
	// obs is set when command hooks are registered (hooks.go); nil
	// otherwise.
	obs *observed
}

// extRequest is a request with room for its requestExt.
type extRequest[T any] struct {
	request[T]
	x requestExt
}

// newExtRequest returns a request whose x is set (with room for its
// observation when command hooks are registered), for the modes that use
// x: one allocation, like newRequest.
func newExtRequest[T any](e *Engine, ctx context.Context, cmd valkey.Completed, decode func(valkey.ValkeyResult) (T, error)) *request[T] {
	if e.bus.WantsCommands() {
		return newRequest(e, ctx, cmd, decode) // observedRequest: has x
	}
	xr := &extRequest[T]{request: request[T]{ctx: ctx, cmd: cmd, decode: decode}}
	xr.request.x = &xr.x
	return &xr.request
}

// observation returns r's observation, nil when command hooks are not
// registered.
func (r *request[T]) observation() *observed {
	if r.x == nil {
		return nil
	}
	return r.x.obs
}

// watch makes the end of the command's context (deadline or cancellation)
// fail its future at once, whatever its connection actor is doing (a long
// pipeline, a reconnect, a backoff), also when the caller awaits with a
// context that never ends. Only the future is settled: the command itself
// completes through the actor as usual (it is then dropped unsent if it
// was still queued, and a slot actor's Collector counts it as usual), and
// the later completion is a no-op for the caller. A context that cannot
// end (context.Background, the benchmarks' case) costs nothing; one that
// can costs the registration, which completion removes (unwatch): no
// timer and no goroutine for the standard library's contexts (and those
// that wrap them), a goroutine while the command is pending for other
// context implementations (context.AfterFunc's rule). Call it once,
// before the command is posted.
func (r *request[T]) watch() {
	if r.ctx.Done() == nil || r.ctx.Err() != nil {
		return // never ends, or already ended: Post fails it
	}
	r.stop = context.AfterFunc(r.ctx, r.expire)
}

// expire runs on its own goroutine when the command's context ends first.
func (r *request[T]) expire() { r.promise.Reject(r.ctx.Err()) }

// watchLazily arranges what watch does, but registers on the context only
// when a wait needs it (futures.Watcher): an Await with the command's own
// context returns at its end by itself and then fails the future
// (WaitEnded), so the common eng.Get(ctx, k).Await(ctx) registers
// nothing; an Await with another context, OnComplete or Done registers
// (Waiting). A future nobody waits on completes when its connection actor
// answers or drops the command. Call it once, before the command is
// posted.
func (r *request[T]) watchLazily() {
	if r.ctx.Done() == nil || r.ctx.Err() != nil {
		return // never ends, or already ended: Post fails it
	}
	r.promise.Watch(r)
}

// Waiting implements futures.Watcher: a wait with the command's own
// context needs no registration; any other does (watch), once. It runs
// under the future's lock, before completion, so its write of stop
// happens before unwatch's read (after completion).
func (r *request[T]) Waiting(ctx context.Context) bool {
	if ctx == r.ctx {
		return true
	}
	// Unlike watch, also when r.ctx has ended by now: AfterFunc then runs
	// expire at once, on a goroutine (this one holds the future's lock).
	r.stop = context.AfterFunc(r.ctx, r.expire)
	return false
}

// WaitEnded implements futures.Watcher: an Await with the command's own
// context returns because it ended: the future fails with its error, as
// watch's registration would have failed it.
func (r *request[T]) WaitEnded(ctx context.Context) {
	if ctx == r.ctx {
		r.promise.Reject(ctx.Err())
	}
}

// Error implements futures.Watcher (a pending future holds its Watcher in
// its error field); it is never returned as an error.
func (r *request[T]) Error() string { return "vactor: command pending" }

// unwatch drops the registration of watch; the command is settled.
func (r *request[T]) unwatch() {
	if r.stop != nil {
		r.stop()
	}
}

// resendable keeps a short command's parts so that it can be built again
// once the server has answered it (valkey-go recycles an answered command
// unless it is pinned, and pinning costs two allocations per command).
// It lives in the same allocation as its request (slotRequest).
//
// In cluster mode it also holds seq, the request's place in its slot's
// order (actors.Hooked.SetHook), in what would otherwise be padding: a
// field in requestExt would move every hooked request and every cluster
// request into the next size class (TestRequestSizeClass). Every request
// a slot routes has a resendable of its own, then, a pinned one too (n
// 0: newSlotRequest, newOrderedRequest); only the shared pinnedCmd has
// none, and only sentinel mode uses it.
type resendable struct {
	parts [maxResendParts]string
	n     uint8 // parts kept; 0: the command is pinned, nothing to rebuild
	ro    bool
	b     valkey.Builder
	seq   uint32
}

// maxResendParts is the longest command kept as parts; longer ones are
// pinned.
const maxResendParts = 5

// pinnedCmd is the ext of a request whose command is pinned: valid after
// the server answered it, nothing to rebuild.
var pinnedCmd = &resendable{}

// slotRequest is a cluster-mode request with room for its parts.
type slotRequest[T any] struct {
	request[T]
	x   requestExt
	res resendable
}

// newSlotRequest returns the request for a cluster command: cmd's parts
// copied (string headers only) when it is short, else cmd pinned.
func newSlotRequest[T any](e *Engine, ctx context.Context, cmd valkey.Completed, decode func(valkey.ValkeyResult) (T, error)) *request[T] {
	parts := cmd.Commands()
	if len(parts) > maxResendParts {
		if e.cl == nil { // sentinel mode: no slot order to keep
			r := newExtRequest(e, ctx, cmd.Pin(), decode)
			r.x.ext = pinnedCmd
			return r
		}
		return &allocSlotRequest(e, ctx, cmd.Pin(), decode).request
	}
	sr := allocSlotRequest(e, ctx, cmd, decode)
	sr.res.n = uint8(copy(sr.res.parts[:], parts))
	sr.res.ro = cmd.IsReadOnly()
	sr.res.b = e.b
	return &sr.request
}

// newOrderedRequest returns a request a slot may route (cluster mode)
// whose command keeps no parts: the caller pins it before it is sent (a
// pipeline's commands, see prepare).
func newOrderedRequest[T any](e *Engine, ctx context.Context, cmd valkey.Completed, decode func(valkey.ValkeyResult) (T, error)) *request[T] {
	return &allocSlotRequest(e, ctx, cmd, decode).request
}

// allocSlotRequest returns a slotRequest (observed when command hooks are
// registered) whose ext is its own resendable, which keeps no parts yet.
func allocSlotRequest[T any](e *Engine, ctx context.Context, cmd valkey.Completed, decode func(valkey.ValkeyResult) (T, error)) *slotRequest[T] {
	var sr *slotRequest[T]
	if e.bus.WantsCommands() {
		or := &observedSlotRequest[T]{slotRequest: slotRequest[T]{request: request[T]{ctx: ctx, cmd: cmd, decode: decode}}}
		or.x.obs = &or.o
		sr = &or.slotRequest
	} else {
		sr = &slotRequest[T]{request: request[T]{ctx: ctx, cmd: cmd, decode: decode}}
	}
	sr.x.ext = &sr.res
	sr.request.x = &sr.x
	return sr
}

// Renew implements actors.Hooked: it builds cmd again from its parts
// (the server answered it, so valkey-go may have recycled it).
func (r *request[T]) Renew() {
	if r.x == nil {
		return
	}
	x := r.x.ext
	if x == nil || x.n == 0 {
		return // pinned: still valid
	}
	a := x.b.Arbitrary(x.parts[:x.n]...)
	if x.ro {
		r.cmd = a.ReadOnly()
	} else {
		r.cmd = a.Build()
	}
}

// Args implements actors.Argumented: the command's arguments after its
// name, valid once it is answered (the parts kept to send it again, or
// the pinned command's); nil outside cluster mode.
func (r *request[T]) Args() []string {
	if r.x == nil || r.x.ext == nil || r.x.ext == pinnedCmd {
		return nil
	}
	if x := r.x.ext; x.n > 0 {
		return x.parts[1:x.n]
	}
	if parts := r.cmd.Commands(); len(parts) > 0 { // pinned
		return parts[1:]
	}
	return nil
}

// Resendable implements actors.Resendable.
func (r *request[T]) Resendable() bool { return r.x != nil && r.x.ext != nil }

func (r *request[T]) Context() context.Context { return r.ctx }

// SetHook implements actors.Hooked. Every request that reaches a slot
// actor has x and a resendable of its own to keep seq in
// (newSlotRequest, newOrderedRequest: pipelines in cluster mode).
func (r *request[T]) SetHook(c *actors.Collector, seq uint32) {
	if r.x == nil {
		if c == nil {
			return
		}
		r.x = new(requestExt) // not reached: see above
	}
	if x := r.x.ext; x != nil && x != pinnedCmd {
		x.seq = seq // before the hook: read after it (Collector.Intercept)
	}
	r.x.hook.Store(c)
}

// Seq implements actors.Hooked.
func (r *request[T]) Seq() uint32 {
	if r.x == nil || r.x.ext == nil {
		return 0
	}
	return r.x.ext.seq
}

func (r *request[T]) Fail(err error) { r.fail(err, nil) }

var _ actors.Refusable = (*request[string])(nil)

// Refuse implements actors.Refusable: Fail, counting the refusal
// (counted) only when it fails r, not when it moves r to be sent again.
func (r *request[T]) Refuse(err error, counted func()) { r.fail(err, counted) }

// fail fails r with err (see Fail), counted first unless nil, and unless
// the slot actor takes r back to send it again.
func (r *request[T]) fail(err error, counted func()) {
	x := r.x
	var h *actors.Collector
	if x != nil && x.hook.Load() != nil { // cluster mode only
		h = x.hook.Swap(nil)
	}
	if h != nil && h.Reroute(r, err, counted) {
		return // failed unrun by its node: the slot actor sends it again
	}
	if h != nil && errors.Is(err, ErrOutcomeUnknown) {
		h.Ran(r) // it may have run (see Collector.Ran)
	}
	if counted != nil {
		counted() // before the future fails: Stats never lag what its caller saw
	}
	r.promise.Reject(failError(err))
	r.unwatch() // after: a lazy watch registers only while pending
	if x == nil {
		return
	}
	if x.obs != nil {
		r.finish()
	}
	if h != nil {
		if nodeFailure(err) {
			h.Failed()
		} else {
			h.Done()
		}
	}
}

// nodeFailure reports whether a command failed for a reason that may mean
// its node is gone (which makes its slot re-read the map), rather than its
// own context or a full mailbox.
func nodeFailure(err error) bool {
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) &&
		!errors.Is(err, ErrBackpressure)
}
func (r *request[T]) Cmd() valkey.Completed { return r.cmd }
func (r *request[T]) Attempts() int         { return int(r.retries) }
func (r *request[T]) Rewrites() int         { return int(r.rewrites) }

func (r *request[T]) Retrying(written bool) {
	if r.retries < math.MaxInt16 { // the engine bounds MaxRetries so
		r.retries++
	}
	if written && r.rewrites < math.MaxInt16 {
		r.rewrites++
	}
}
func (r *request[T]) Redirects() int { return int(r.redirects) }
func (r *request[T]) Redirected()    { r.redirects++ }

func (r *request[T]) Complete(res valkey.ValkeyResult) {
	x := r.x
	if x == nil { // standalone, no command hooks: the hot path
		v, err := r.decode(res)
		r.promise.Complete(v, replyError(&res, err))
		r.unwatch() // after: a lazy watch registers only while pending
		return
	}
	var h *actors.Collector
	if x.hook.Load() != nil { // cluster mode only: one plain load otherwise
		h = x.hook.Swap(nil)
	}
	if h != nil && h.Intercept(r, res) {
		return // redirected: the slot actor sends it again
	}
	if h != nil {
		h.Ran(r) // before its future completes (see Collector.Ran)
	}
	v, err := r.decode(res)
	r.promise.Complete(v, replyError(&res, err))
	r.unwatch()
	if x.obs != nil {
		r.finish()
	}
	if h != nil {
		h.Done()
	}
}

// submit queues cmd on the connection actor chosen by route and returns the
// future of its decoded reply.
func submit[T any](e *Engine, ctx context.Context, route string, cmd valkey.Completed, decode func(valkey.ValkeyResult) (T, error)) *futures.Future[T] {
	if e.cl != nil {
		return submitCluster(e, ctx, route, cmd, decode)
	}
	if e.sn != nil {
		return submitSentinel(e, ctx, route, cmd, decode)
	}
	return submitTo(e, e.pick(route), ctx, cmd, decode)
}

// submitTo queues cmd on one connection actor.
func submitTo[T any](e *Engine, conn *actors.ConnState, ctx context.Context, cmd valkey.Completed, decode func(valkey.ValkeyResult) (T, error)) *futures.Future[T] {
	if ctx == nil {
		ctx = context.Background()
	}
	at := fired(e)
	return post(e, conn, firedAt(newRequest(e, ctx, cmd, decode), at))
}

// postInternal queues the engine's own command (not a user's) on one
// connection actor: its request carries no observation, so the command
// hooks do not see it, hooks or not (as submitTo's without hooks).
func postInternal[T any](e *Engine, conn *actors.ConnState, ctx context.Context, cmd valkey.Completed, decode func(valkey.ValkeyResult) (T, error)) *futures.Future[T] {
	return post(e, conn, &request[T]{ctx: ctx, cmd: cmd, decode: decode})
}

// submitInternal is submit for the engine's own command (not a user's):
// routed as submit routes a write (cluster mode: by its slot; sentinel
// mode: to the primary), unobserved as postInternal's.
func submitInternal[T any](e *Engine, ctx context.Context, route string, cmd valkey.Completed, decode func(valkey.ValkeyResult) (T, error)) *futures.Future[T] {
	if ctx == nil {
		ctx = context.Background()
	}
	if e.cl == nil && e.sn == nil {
		return postInternal(e, e.pick(route), ctx, cmd, decode)
	}
	r := newSlotRequest(e, ctx, cmd, decode) // resendable after a redirect or READONLY
	r.x.obs = nil
	if e.sn != nil {
		return post(e, e.pick(route), r)
	}
	return postSlot(e, cmd.Slot()&(actors.Slots-1), r)
}

// post queues r on conn's mailbox, or fails it at once when the engine is
// closed or conn's breaker is open.
func post[T any](e *Engine, conn *actors.ConnState, r *request[T]) *futures.Future[T] {
	f := r.promise.Future()
	if e.closed.Load() {
		r.promise.Reject(ErrClosed)
		return f
	}
	if r.x != nil && r.x.obs != nil {
		observe(e, r)
	}
	if conn.Node != nil && conn.Node.Open() {
		if err := failOpen(conn, 1); err != nil {
			r.Fail(err)
			return f
		}
		// Closed again meanwhile (a sentinel switch's Reset): queued.
	}
	if r.ctx.Done() == nil {
		// Nothing to watch: an Await that cannot end may instead run the
		// connection actor's next batch itself (see claimWatcher).
		r.promise.Watch((*claimWatcher)(conn.Mailbox))
		conn.Mailbox.PostClaim(r)
		conn.RefuseIfOpen() // opened since the check above
		return f
	}
	r.watchLazily()
	conn.Mailbox.Post(r)
	conn.RefuseIfOpen() // opened since the check above
	return f
}

// claimWatcher is the futures.Assister of a command whose ctx never ends,
// posted with PostClaim: when the connection actor was idle, the command
// waits for its caller's Await to run the batch on the caller's goroutine
// (mailbox.Assist: no goroutine to start, no thread to wake, no hand-off
// back), as valkey-go's synchronous path does; any other wait hands the
// batch to the actor's goroutine at once (Dispatch), and nobody waiting
// within the mailbox's ClaimDelay (20 µs, a timer the runtime may fire
// up to about a millisecond late in an idle process) does too.
type claimWatcher mailbox.Bounded

func (w *claimWatcher) Assist() bool { return (*mailbox.Bounded)(w).Assist() }

// Waiting implements futures.Watcher: a wait that will not assist.
func (w *claimWatcher) Waiting(context.Context) bool {
	(*mailbox.Bounded)(w).Dispatch()
	return false
}

// WaitEnded implements futures.Watcher; Waiting drops the watcher, so it
// is never called.
func (w *claimWatcher) WaitEnded(context.Context) {}

// Error implements futures.Watcher (a pending future holds its Watcher in
// its error field); it is never returned as an error.
func (w *claimWatcher) Error() string { return "vactor: command pending" }

// failOpen fails what conn holds and queues with its node's OpenError
// and returns that error, for n commands refused (and counted) because
// the node's breaker is open. The breaker's opening fails them too, but only after
// it marked the node open: a command of the same goroutine issued before
// this one, still queued, must not complete after it (Order). It returns
// nil, failing and counting nothing, when the breaker is closed again by
// the time it looks (a sentinel switch's Reset, ConnState.FailIfOpen):
// the caller then queues the n commands as if it had found it closed,
// behind those it spared (review-41 2: refused, they completed before
// earlier commands the switch sent to the new primary).
func failOpen(conn *actors.ConnState, n int) error {
	if !conn.FailIfOpen() {
		return nil
	}
	conn.CountRefused(n)
	return conn.Node.OpenError()
}

// fail returns a future failed with err, for arguments rejected before
// anything is built or sent.
func fail[T any](err error) *futures.Future[T] { return futures.Failed[T](err) }
