package engine

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/drivers"
	_ "github.com/vactor-io/vactor/drivers/valkeygo" // the default driver
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/internal/hookbus"
	"github.com/vactor-io/vactor/policies"
)

// Engine is a Valkey client: every command method returns a future at once
// and the engine's connection actors send whatever is queued as one
// pipeline per round trip.
//
// An Engine is safe for concurrent use by any number of goroutines. Create
// it with New and release it with Close.
type Engine struct {
	// Everything is behind this one pointer, so that fmt of a value
	// holding an *Engine (a program's struct printed with %s, whose
	// pointer fmt then dumps field by field) prints an address: fmt reads
	// none of the engine's state, which would race with its use (a
	// concurrent map read is fatal) and could print secrets.
	*engineState
}

// engineState is an Engine's state (see Engine).
type engineState struct {
	cfg    *config.Config // a pointer: fmt of an Engine (or of anything holding one) prints its address, not the password
	closed atomic.Bool
	// closing ends when Close starts: dials of new connections (cluster
	// nodes dialled on first use) are bounded by it, so that none
	// completes after Close and leaks its connection.
	closing   context.Context
	stopDials context.CancelFunc

	system     *actor.ActorSystem
	supervisor *actors.Supervisor
	supPID     *actor.PID
	b          valkey.Builder
	drv        drivers.Driver
	opts       *drivers.Options // per node, Addr left empty (a pointer, as cfg)
	retry      *actors.Policy
	cl         *cluster            // nil in standalone mode
	sn         *sentinel           // nil unless in sentinel mode
	cmds       commandTable        // the server's, for Do's routing; nil when not needed or refused
	first      []*actors.ConnState // the first node's connection actors (cluster mode: unused once running)

	mu    sync.Mutex // guards conns, nodes and pools as nodes are added
	conns []*actors.ConnState
	nodes []*actors.Node
	pools map[string][]*actors.ConnState // node address -> its connection actors

	svc   services      // subscribers, consumers, batch writers: stopped first by Close
	block blockingCalls // blocking commands sent by Do outside the actors
	tx    txConns       // dedicated connections for Tx and Watch (tx_conns.go)
	ded   txConns       // connections lent by Dedicated (dedicated.go)
	subs  subCounters   // pub/sub counters for Stats (subscribe.go)
	execs execGate      // Pipeline and Tx Execs in progress: Close waits for them (exec_gate.go)
	creds credsCalls    // the credentials provider's calls under way (connecterr.go)
	// unknown counts the commands failed with ErrOutcomeUnknown outside
	// the connection actors (blocking calls, Tx, Dedicated), for Stats.
	unknown atomic.Uint64

	log *slog.Logger // Config.Logger filtered by LogLevel, or a discarding one
	bus *hookbus.Bus // the hooks (the Logging hook included); nil without any
	// unsent is where an observed command's observation points until a
	// pipeline carries it (observed.sent): Seq 0, the bus.
	unsent *actors.Sent
	// logHooks are the *hooks.Logging among them, flushed by Close.
	logHooks []*hooks.Logging
	// closeDone is closed when the first Close has finished: a later Close
	// waits for it.
	closeDone chan struct{}
	// drainBy is when Close's drain ends (Close's start + DrainTimeout):
	// set once, as Close begins; nil before.
	drainBy atomic.Pointer[time.Time]
	caps    drivers.Capabilities // the driver's (capabilities.go); last, so the hot fields keep their offsets
}

// New validates cfg, dials every connection the engine needs (PoolSize
// connections to the configured node), and starts the actors. It fails,
// within cfg.DialTimeout or ctx's deadline, when no server answers. A
// connection that cannot be opened fails it with a *ConnectError that says
// why (a TLS certificate refused on either side, a wrong password, ...)
// and unwraps to the cause; New does not retry, and leaves nothing behind
// that dials again.
//
// Standalone mode uses the first of cfg.Addresses(). In cluster mode the
// addresses are seeds: the engine reads the slot map from the first that
// answers and dials each primary when it first has a command for it. In
// sentinel mode the engine asks the sentinels (cfg.SentinelAddrs) in turn
// for the primary of cfg.SentinelMasterName, checks with ROLE that it is
// one, and follows it through failovers (see docs/sentinel.md).
func New(ctx context.Context, cfg config.Config) (*Engine, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vactor: %w", err)
	}
	drv, err := drivers.Lookup(cfg.Driver)
	if err != nil {
		return nil, fmt.Errorf("vactor: %w", err)
	}
	caps := drivers.CapabilitiesOf(drv)
	if err := checkDriver(cfg, caps); err != nil {
		return nil, fmt.Errorf("vactor: %w", err)
	}
	tlsCfg, err := cfg.TLS.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("vactor: %w", err)
	}
	pem, err := rootPEM(cfg, caps)
	if err != nil {
		return nil, fmt.Errorf("vactor: %w", err)
	}
	ecfg := cfg
	e := &Engine{&engineState{cfg: &ecfg, drv: drv, caps: caps, closeDone: make(chan struct{})}}
	e.startHooks()
	e.ded.noIdlePing = true
	e.closing, e.stopDials = context.WithCancel(context.Background())
	e.opts = &drivers.Options{
		Username:     cfg.Username,
		Password:     cfg.Password,
		Credentials:  e.credentialsFunc(),
		DB:           cfg.DB,
		ClientName:   cfg.ClientName,
		DialTimeout:  cfg.DialTimeout,
		ReadTimeout:  cfg.ReadTimeout,
		WriteTimeout: cfg.WriteTimeout,
		TLS:          tlsCfg,
		TLSRootPEM:   pem,
		MaxPipeline:  cfg.MaxBatchSize,
	}
	// Budget: one per node (newNodeWith).
	e.retry = &actors.Policy{
		MaxRetries:  min(cfg.MaxRetries, math.MaxInt16), // request.retries is an int16
		Backoff:     policies.Backoff{Min: cfg.MinRetryBackoff, Max: cfg.MaxRetryBackoff},
		ReadTimeout: max(cfg.ReadTimeout, cfg.WriteTimeout),
	}
	dialCtx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	var topo *actors.Topology
	addr := cfg.Addresses()[0]
	if cfg.ClusterMode {
		if topo, err = e.discover(dialCtx); err != nil {
			e.bus.Close(hookWait)
			return nil, err
		}
		addr = topo.Shards[0].Primary
	}
	var conns []*actors.ConnState
	if cfg.SentinelMode {
		conns, err = e.newSentinel(dialCtx) // the primary the sentinels name
	} else {
		conns, err = e.newNode(dialCtx, addr, false)
	}
	if err != nil {
		e.closeDrivers()
		e.bus.Close(hookWait)
		return nil, err
	}
	e.b = conns[0].Driver.B()
	e.first = conns

	e.loadCommands(dialCtx, conns[0].Driver, e.log)
	actorLog := slog.New(actorHandler{e.log.Handler()}).With("lib", "protoactor")
	e.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return actorLog }),
		actor.WithDeadLetterThrottleInterval(deadLetterInterval))
	e.supervisor = actors.NewSupervisor(conns)
	if e.supPID, err = e.supervisor.Spawn(e.system); err != nil {
		e.closeDrivers()
		e.system.Shutdown()
		e.bus.Close(hookWait)
		return nil, fmt.Errorf("vactor: %w", err)
	}
	<-e.supervisor.Ready()
	if e.sn != nil {
		if err = e.sn.start(dialCtx); err != nil {
			e.sn.stop()
			e.system.Root.Stop(e.supPID)
			e.closeDrivers()
			e.system.Shutdown()
			e.bus.Close(hookWait)
			return nil, err
		}
	}
	if cfg.ClusterMode {
		if e.cl, err = newCluster(e, topo); err != nil {
			e.system.Root.Stop(e.supPID)
			e.closeDrivers()
			e.system.Shutdown()
			e.bus.Close(hookWait)
			return nil, err
		}
	}
	return e, nil
}

// startHooks sets up the engine's logger and its hooks: the Logging hook
// over the logger first (when there is a logger), then Config.Hooks.
func (e *Engine) startHooks() {
	var logged bool
	level, _ := e.cfg.LogLevel.Level() // checked by Validate
	e.log, logged = newLogger(e.cfg.Logger, level)
	hs := e.cfg.Hooks
	if logged {
		hs = append([]hooks.Hook{hooks.NewLogging(e.log)}, hs...)
	}
	for _, h := range hs {
		if l, ok := h.(*hooks.Logging); ok {
			e.logHooks = append(e.logHooks, l)
		}
	}
	e.bus = hookbus.NewOwn(hs, len(hs)-len(e.cfg.Hooks), e.log, hookQueue)
	e.bus.SetDB(e.cfg.DB)
	if e.bus.WantsCommands() {
		e.unsent = &actors.Sent{Bus: e.bus}
	}
	e.bus.Start()
}

// hookQueue is how many events wait for the hook goroutine before new ones
// are dropped.
var hookQueue = hookbus.DefaultCapacity

// Config returns the engine's configuration (a copy).
func (e *Engine) Config() config.Config {
	if e == nil || e.cfg == nil {
		return config.Config{} // not made by New
	}
	return *e.cfg
}

// pick returns the connection actor for a routing key: commands with the
// same key always go through the same actor, which keeps their order.
func (e *Engine) pick(route string) *actors.ConnState {
	conns := e.first
	if len(conns) == 1 {
		return conns[0]
	}
	// FNV-1a: cheap, allocation-free, stable.
	h := uint32(2166136261)
	for i := 0; i < len(route); i++ {
		h ^= uint32(route[i])
		h *= 16777619
	}
	return conns[h%uint32(len(conns))]
}

// Close stops the engine. It stops accepting commands (they fail with
// ErrClosed), fails every command still queued with ErrClosed, lets the
// pipelines already written finish for up to Config.DrainTimeout (then
// closes the connections, failing what is still in flight: with
// ErrOutcomeUnknown what may have run, a blocking command (BLPOP, XREAD
// BLOCK, ...) cut while it was being sent included, as the driver cannot
// always tell it from one cut after its write), and stops every
// actor and goroutine the engine started. DrainTimeout is one deadline
// for the whole Close, counted from its start: the batch writers'
// pipelines and then the connection actors' get what is left of it, so
// a stalled server costs Close about DrainTimeout, however many writers
// and connections had commands written to it. Every future the engine
// returned is complete when Close returns (a Pipeline's or a Tx's once
// its Exec has been called: nothing of them is sent before, and an Exec
// after Close fails them with ErrClosed), but for those it combines from
// several commands' futures: in cluster mode MGet, MSet, Del, Exists and
// Unlink whose keys span slots (a Pipeline's too) and ScriptLoad, and a
// Script's Run or RunRO that got NOSCRIPT. Those complete on the futures
// package's callback goroutines once their parts have, which Close does
// not wait for: behind callbacks that block, just after Close returns.
// Close closes its connections
// all at once, and the valkeygo driver closes their sockets first, so a
// server that does not answer adds no wait of its own (valkey-go's close
// of a connection waits up to a second for the reply to a PING; another
// driver's close may wait). Calling Close again returns ErrClosed,
// once the first Close has finished. Close is safe for concurrent use. It
// waits up to 5 s for the hooks to take the events queued before it: the
// hooks are given up on after that (a hook that did not return, or hooks
// slower than the events came and far behind them): the events still
// queued are dropped, and Close returns an error saying so. Then the
// Logging hooks (the engine's own and any *hooks.Logging in Config.Hooks)
// log the counts their rate limits still hold (hooks.Logging.Flush), so
// that no line of theirs comes after Close has returned.
//
// Close waits for the engine's goroutines, except the one it is called
// on, so it may be called from:
//   - a hook (Config.Hooks, on the engine's hook goroutine): it does not
//     wait for the hooks; the event being delivered still reaches the
//     hooks after the calling one, nothing after it reaches any (those
//     events are counted in Stats.HookDropped, not logged), and the hook
//     goroutine ends when they return;
//   - a future's callback (OnComplete, Then, Join: the futures package's
//     callback goroutines, which Close never waits for);
//   - a stream consumer's handler or a subscription's Handler (see
//     Consumer.Close and SubscribeOptions.Handler): it does not wait for
//     that handler;
//   - a BatchWriter's OnError (BatchWriterOptions.OnError): it stops that
//     writer as the writer's own Close from OnError does, without waiting
//     for it (its commands still queued are reported failed with
//     ErrClosed; its connections close and its goroutines end once the
//     callbacks in progress have returned), and every other service as
//     always.
//
// Called from a hook or such a handler or callback while another
// goroutine's Close runs, it returns ErrClosed at once, without waiting
// for that Close (which waits for the hook, the handler or the callback,
// its caller).
//
// It may also be called from a PreExecution hook, which runs on the
// goroutine that fires the command: Close does not wait for what that
// goroutine is doing (a Pipeline's or a Tx's Exec, a blocking call), so it
// returns at once, and the command, or the Exec's commands, fail with
// ErrClosed, unsent.
func (e *Engine) Close() error {
	if e == nil || e.engineState == nil || e.closeDone == nil {
		// A zero Engine, or a nil one: New returns nil with its error, and
		// a "defer eng.Close()" before the error check must not panic.
		return ErrNotCreated
	}
	if !e.closed.CompareAndSwap(false, true) {
		// A hook's or a consumer's or subscription's handler's or a
		// batch writer's OnError's Close while another runs: that Close
		// waits for this goroutine, so this one must not wait for it.
		if g := goid(); e.bus.Runs(g) || e.inHandler(g) {
			return ErrClosed
		}
		<-e.closeDone
		return ErrClosed
	}
	defer close(e.closeDone)
	// One drain for the whole Close: the batch writers', the slot
	// actors' and the connection actors' waits for written commands all
	// end by this time (drainLeft), one after another as they are.
	by := time.Now().Add(e.cfg.DrainTimeout)
	e.drainBy.Store(&by)
	e.stopDials()
	if e.sn != nil {
		e.sn.stop() // no switch from now on
	}
	// The services (batch writers, the Tx and Dedicated pools,
	// subscriptions, consumers) stop before the connection actors, which
	// go on sending their queued commands meanwhile; the drains share
	// the one deadline above, so a stalled server costs Close one
	// DrainTimeout, not one per drain. With DrainTimeout 0 there is no
	// drain: the services stop while the actors do, so that the closes
	// of their connections (a driver's close may wait for a stalled
	// server: see closeDrivers) run at the same time as the actors'
	// instead of before them. Either way they have stopped, and their
	// futures are complete, before Close returns.
	// A consumer's handler, a subscription's Handler or a batch writer's
	// OnError may be what calls Close: its service is stopped without
	// waiting for it (it is this goroutine).
	closer := goid()
	var services sync.WaitGroup
	if e.cfg.DrainTimeout > 0 {
		e.stopServices(closer)
	} else {
		services.Go(func() { e.stopServices(closer) })
	}
	if e.cl != nil {
		// Slot actors first: they fail what they hold and stop forwarding.
		// Their in-flight batches complete as the connection actors drain.
		go func() {
			for _, c := range e.connStates() {
				c.Mailbox.Close(ErrClosed)
			}
		}()
		e.cl.close(e.drainLeft())
	}
	// The mailboxes are closed at once; failing the commands they held
	// (every future completes, thousands of them) goes on while the
	// actors drain and the connections close: with DrainTimeout 0 the
	// second a close to a stalled server may take starts now, not after.
	mailboxesFailed := e.closeMailboxes()
	e.system.Root.Stop(e.supPID)
	drain := time.NewTimer(e.drainLeft())
	defer drain.Stop()
	var err error
	select {
	case <-e.supervisor.Stopped():
	case <-drain.C:
		// Written commands did not finish in time: closing the connections
		// fails them and unblocks the actors. Close reports it only when
		// some were in flight (with DrainTimeout 0 the timer fires before
		// idle actors have stopped).
		var inFlight int64
		for _, c := range e.connStates() {
			inFlight += c.Stats().InFlight
		}
		e.closeDrivers()
		select {
		case <-e.supervisor.Stopped():
		case <-time.After(stuckActorWait):
			// An actor is stuck outside the driver (a bug): its mailbox is
			// closed, so every future is complete; give up on it.
		}
		if inFlight > 0 {
			err = fmt.Errorf("vactor: close: %d in-flight commands did not finish within the drain timeout (%s) and were failed", inFlight, e.cfg.DrainTimeout)
		}
	}
	e.closeDrivers()
	if e.cl != nil {
		// The drain timeout bounds how long in-flight commands may still
		// succeed, not whether the futures complete: the slot actors
		// still stopping fail what they hold first.
		e.cl.wait()
	}
	services.Wait()
	if e.sn != nil {
		e.sn.closes.Wait() // a switch's closes of the former primary's connections
	}
	// An Exec that found the engine open before Close began posts to
	// closed mailboxes or asks a closed pool now, failing its futures:
	// wait for it, so that they are complete when Close returns.
	select {
	case <-e.execs.wait(closer): // not for an Exec whose hook called Close
	case <-time.After(stuckActorWait):
		// An Exec stuck with every actor and pool closed (a bug).
		if err == nil {
			err = fmt.Errorf("vactor: close: a Pipeline or Tx Exec has not finished within %s", stuckActorWait)
		}
	}
	mailboxesFailed()
	e.closeBlocking() // the closed drivers end them
	e.system.Shutdown()
	// After everything that emits events. Called from a hook (closer is
	// the hook goroutine), it does not wait for the hooks.
	finished := e.bus.CloseFrom(hookWait, closer)
	for _, l := range e.logHooks {
		l.Flush() // their rate limits' last counts, now rather than after Close returned
	}
	if !finished {
		e.log.Warn(hooks.MsgHookStuck, "wait", hookWait)
		if err == nil {
			err = fmt.Errorf("vactor: close: the hooks did not take the queued events within %s (a hook did not return, or the hooks fell behind the events): those not yet delivered were dropped", hookWait)
		}
	}
	return err
}

// deadLetterInterval is protoactor's dead-letter throttle period. A
// message to an actor that has stopped (a dead letter: rare, and possible
// while Close stops the actors) starts a goroutine that counts the dead
// letters for that long; with protoactor's default, a second, it could
// outlive Close by up to a second, which leak checks (goleak) report.
// Dead letters are still logged, at most three per period.
const deadLetterInterval = 10 * time.Millisecond

// stuckActorWait bounds Close's wait for actors after the drivers closed.
const stuckActorWait = 5 * time.Second

// hookWait bounds Close's (and a failed New's) wait for the hook goroutine
// to deliver the events queued before it: a hook that blocks for longer
// (a dead exporter) does not hold up the shutdown for good. A variable
// for the tests.
var hookWait = 5 * time.Second

// closeMailboxes closes the connection actors' mailboxes, failing the
// commands queued in them with ErrClosed, all at once (with many queued
// commands, failing them takes a while).
func (e *Engine) closeMailboxes() (wait func()) {
	conns := e.connStates()
	fails := make([]func() int, len(conns))
	for i, c := range conns {
		fails[i] = c.Mailbox.Seal(ErrClosed)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if len(fails) == 1 {
			fails[0]()
			return
		}
		var wg sync.WaitGroup
		for _, fail := range fails {
			wg.Go(func() { fail() })
		}
		wg.Wait()
	}()
	return func() { <-done }
}

// drainLeft returns how long a drain that begins now may wait for
// written commands: while the engine closes, the time left until Close's
// deadline (Close's drains share one DrainTimeout; 0 once it passed);
// before, the whole DrainTimeout (a BatchWriter's own Close).
func (e *Engine) drainLeft() time.Duration {
	if by := e.drainBy.Load(); by != nil {
		return max(time.Until(*by), 0)
	}
	return e.cfg.DrainTimeout
}

// closeDrivers closes every connection actor's driver connection, all at
// once, and returns when every close has returned. A close may take a
// while: valkey-go's pipe.Close sends a PING and waits up to 1 s for its
// reply before it closes the socket, a second per connection to a stalled
// server, which one after another would add up with PoolSize and the
// cluster's nodes. The valkeygo driver closes its sockets first, so that
// no such wait happens there (drivers/valkeygo, openConns); another
// driver's close may still wait, so the closes stay concurrent.
func (e *Engine) closeDrivers() {
	conns := e.connStates()
	if len(conns) == 1 {
		conns[0].CloseDriver()
		return
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(c.CloseDriver)
	}
	wg.Wait()
}

// connStates returns the connection actors' states (nodes may be added
// in cluster mode).
func (e *Engine) connStates() []*actors.ConnState {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.conns)
}

// credentialsFunc returns the drivers.Options.Credentials of the data
// nodes' connections: Config.CredentialsProvider, its errors marked for
// connectError; nil without a provider (Username and Password are used).
func (e *Engine) credentialsFunc() func(context.Context) (string, string, error) {
	if e.cfg.CredentialsProvider == nil {
		return nil
	}
	return e.credentials
}
