package engine

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/internal/hookbus"
)

// The engine's side of the hooks (Config.Hooks, package hooks): where each
// event comes from. Without hooks e.bus is nil and every call below is
// skipped by a nil check (on the hot path: one in submit, one at
// completion, one per batch in the connection actor).

// observed is what a command carries when a PreExecution or PostExecution
// hook is registered. It lives in the request's allocation
// (observedRequest): the hooks cost no allocation per command. 40 bytes:
// a hooked GET is 192 B (the bus and the DB are reached through sent).
type observed struct {
	start time.Duration // hookbus.Now at firing
	name  string
	// sent is the pipeline that carried the command, set by the
	// connection actor that writes it (SentOn) before its completion;
	// until then the engine's unsent (Seq 0), and nil only before observe.
	// One per pipeline, shared by its commands (actors.Sent), which also
	// holds the bus.
	sent *actors.Sent
	args int32
	done atomic.Bool // the PostExecution event was sent
}

// observedRequest and observedSlotRequest are a request and its
// observation in one allocation.
type (
	observedRequest[T any] struct {
		request[T]
		x requestExt
		o observed
	}
	observedSlotRequest[T any] struct {
		slotRequest[T]
		o observed
	}
)

// newRequest returns a request, with room for its observation when
// command hooks are registered (r.obs set).
func newRequest[T any](e *Engine, ctx context.Context, cmd valkey.Completed, decode func(valkey.ValkeyResult) (T, error)) *request[T] {
	if !e.bus.WantsCommands() {
		return &request[T]{ctx: ctx, cmd: cmd, decode: decode}
	}
	or := &observedRequest[T]{request: request[T]{ctx: ctx, cmd: cmd, decode: decode}}
	or.x.obs = &or.o
	or.request.x = &or.x
	return &or.request
}

// observe fills r.obs in and runs PreExecution, whose context replaces
// r's. Called once per command (r.obs set), before it is posted (and
// before watch, which then follows the hook's context).
func observe[T any](e *Engine, r *request[T]) {
	name, args := nameArgs(r.cmd)
	start := r.x.obs.start // read before the request's allocation (fired), or now
	if start == 0 {
		start = hookbus.Now()
	}
	*r.x.obs = observed{start: start, name: name, args: int32(len(args)), sent: e.unsent}
	if e.bus.WantsPre() {
		r.ctx = e.bus.Fire(r.ctx, hooks.Command{Name: name, Args: args})
	}
}

// fired returns the firing time of a command about to be made into a
// request, for the command hooks (0 without them): the paths that fire a
// command at once read the clock before they allocate its request, and
// firedAt hands the reading to observe. The clock reading here waits for
// the memory operations in flight (kvm-clock's ordered TSC read), and
// after the allocation those include the request's zeroing. Measured
// with BenchmarkHooksRatio, three times 3 rounds of each binary,
// alternated: the metrics hook's ratio to the engine without hooks for
// GET at 2,048 goroutines went up each time (0.885 to 0.93, 0.90 to 0.94,
// 0.84 to 0.90); GET at 256 and SET moved within the noise (±0.03).
func fired(e *Engine) time.Duration {
	if e.bus.WantsCommands() {
		return hookbus.Now()
	}
	return 0
}

// firedAt gives r, when observed, the firing time at (fired's).
func firedAt[T any](r *request[T], at time.Duration) *request[T] {
	if at != 0 {
		if o := r.observation(); o != nil {
			o.start = at
		}
	}
	return r
}

// nameArgs splits cmd into its name and arguments (valkey-go's slices:
// not to be modified).
func nameArgs(cmd valkey.Completed) (string, []string) {
	parts := cmd.Commands()
	if len(parts) == 0 {
		return "", nil
	}
	return parts[0], parts[1:]
}

// SentOn implements actors.Observed: the connection actor records where
// the command went; the pipeline's Answered time spares the completion a
// clock reading of its own.
func (r *request[T]) SentOn(s *actors.Sent) {
	if o := r.observation(); o != nil {
		o.sent = s
	}
}

// finish sends the PostExecution event once, when r's future has
// completed. It is built here, on the goroutine that completed r, not on
// the hook goroutine from r: a queued reference to r would keep its
// reply (and, in cluster mode, its arguments) alive until the hooks take
// the event, so that hooks falling behind held as many replies as the
// queue holds events, whatever their size (review rv44: 64 GETs of
// 1 MiB kept 64 MiB alive behind a slow hook). A command answered in a
// pipeline completed at its Answered time; the others (failed unsent,
// or their pipeline not answered: a Tx's) now.
func (r *request[T]) finish() {
	o := r.x.obs
	s := o.sent
	if s == nil || !s.Bus.WantsPost() || !o.done.CompareAndSwap(false, true) {
		return
	}
	_, err, _ := r.promise.Future().Result()
	done := s.Answered
	if s.Seq == 0 || done == 0 {
		done = hookbus.Now()
	}
	ev := r.executed(o, s, err, done)
	if s.Seq == 0 && err != nil {
		ev.Node = refusedBy(err)
	}
	s.Bus.Executed(r.ctx, ev)
}

// executed returns r's event, sent on s (Seq 0: on none), completed with
// err at done (hookbus.Now).
func (r *request[T]) executed(o *observed, s *actors.Sent, err error, done time.Duration) hooks.Executed {
	return hooks.Executed{Name: o.name, Args: int(o.args), Err: err, Retries: int(r.retries), Redirects: int(r.redirects), DB: s.Bus.DB(),
		Node: s.Node, Pipeline: s.Seq, PipelineSize: s.Size, Duration: done - o.start, Done: hookbus.Time(done)}
}

// refusedBy returns the node whose open circuit breaker refused a
// command that no connection actor carried (err a *CircuitOpenError), ""
// otherwise: the hooks then see which node's breaker failed it.
func refusedBy(err error) string {
	if co, ok := err.(*CircuitOpenError); ok {
		return co.Addr
	}
	var co *CircuitOpenError
	if errors.As(err, &co) {
		return co.Addr
	}
	return ""
}

// fireBlocking runs the command hooks' side of a blocking command (sent
// outside the actors, blocking.go): PreExecution now, and the returned
// function sends the PostExecution event.
func (e *Engine) fireBlocking(ctx context.Context, node string, cmd valkey.Completed) (context.Context, func(error)) {
	return e.fireBlockingHops(ctx, node, cmd, nil)
}

// fireBlockingHops is fireBlocking for a command whose cluster redirects
// hops counts (doBlocking's), reported as the event's Redirects.
func (e *Engine) fireBlockingHops(ctx context.Context, node string, cmd valkey.Completed, hops *atomic.Int32) (context.Context, func(error)) {
	name, args := nameArgs(cmd)
	start, n := hookbus.Now(), len(args)
	if e.bus.WantsPre() {
		ctx = e.bus.Fire(ctx, hooks.Command{Name: name, Args: args})
	}
	return ctx, func(err error) {
		now := hookbus.Now()
		ev := hooks.Executed{Name: name, Args: n, Node: node, Err: err, Duration: now - start, Done: hookbus.Time(now), DB: e.cfg.DB}
		if hops != nil {
			ev.Redirects = int(hops.Load())
		}
		e.bus.Executed(ctx, ev)
	}
}

// refused reports cmd, refused after it was fired (by the state of the
// engine, a connection or a slot, not by its arguments), to the command
// hooks: PreExecution, then PostExecution failed with err, on node (""
// when no node carries it). A command refused because the engine is
// closed reaches no hook; without command hooks this is one nil check.
func (e *Engine) refused(ctx context.Context, node string, err error, cmds ...valkey.Completed) {
	if !e.bus.WantsCommands() || e.closed.Load() {
		return
	}
	for _, cmd := range cmds {
		_, done := e.fireBlocking(ctx, node, cmd)
		done(err)
	}
}

// hookedDial wraps dial with the PreConnection and PostConnection events.
// A failed dial's error is a *ConnectError (connecterr.go), reconnects
// included, so that hooks and logs see a refusal (WRONGPASS, a TLS
// alert) typed and explained as New reports it.
func (e *Engine) hookedDial(ctx context.Context, node string, dedicated, initial bool, dial func(context.Context) (drivers.ValkeyConn, error)) (drivers.ValkeyConn, error) {
	return e.hookedDialAs(ctx, hooks.Dial{Node: node, Dedicated: dedicated, Initial: initial}, dial)
}

// hookedDialAs is hookedDial with the event's fields given (TLS and Probe
// are set here).
func (e *Engine) hookedDialAs(ctx context.Context, ev hooks.Dial, dial func(context.Context) (drivers.ValkeyConn, error)) (drivers.ValkeyConn, error) {
	begun := time.Now()
	if !e.bus.WantsDials() {
		conn, err := dial(ctx)
		return conn, e.connectErrorSince(ev.Node, err, begun)
	}
	ev.TLS, ev.Probe = e.opts.TLS != nil, actors.IsProbe(ctx)
	e.bus.Emit(ev)
	start := hookbus.Now()
	conn, err := dial(ctx)
	err = e.connectErrorSince(ev.Node, err, begun)
	e.bus.Emit(hooks.Dialed{Node: ev.Node, TLS: ev.TLS, Dedicated: ev.Dedicated, Initial: ev.Initial, Probe: ev.Probe, Sentinel: ev.Sentinel,
		Err: err, Duration: hookbus.Now() - start})
	return conn, err
}

// SentinelSwitched reports a switch to a new primary named by the
// sentinels (sentinel mode) to the SentinelSwitched hooks and the log:
// master is the monitored name, from the previous primary ("" at the
// first), to the new one. The sentinel code calls it once per switch, from
// any goroutine; it never blocks.
func (e *Engine) sentinelSwitched(master, from, to string) {
	e.bus.Emit(hooks.SentinelSwitch{Master: master, From: from, To: to})
}
