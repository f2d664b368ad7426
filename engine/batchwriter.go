package engine

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/policies"
)

// Defaults of BatchWriterOptions, used for zero fields.
const (
	// DefaultWriterMaxPending is the default of BatchWriterOptions.MaxPending.
	DefaultWriterMaxPending = 100_000
	// DefaultWriterBatchSize is the default of BatchWriterOptions.BatchSize:
	// the largest pipeline valkey-go keeps on the connection (its
	// DefaultBlockingPipeline is 2,000). Measured against 1,000: +2-4%
	// throughput at 1M SETs (server CPU per command falls as pipelines grow).
	DefaultWriterBatchSize = 1999
	// DefaultWriterConns is the default of BatchWriterOptions.ConnsPerNode.
	DefaultWriterConns = 2
	// DefaultWriterMaxRetries is the default of BatchWriterOptions.MaxRetries.
	DefaultWriterMaxRetries = 5
	// DefaultWriterRetryTimeout is the default of
	// BatchWriterOptions.RetryTimeout.
	DefaultWriterRetryTimeout = 10 * time.Second
)

// maxWriterConns bounds BatchWriterOptions.ConnsPerNode: a node's lanes
// (a connection and a goroutine each) all start on its first command.
const maxWriterConns = 256

// BatchWriterOptions configures a BatchWriter. The zero value takes every
// default. Negative sizes and counts are rejected with ErrInvalidArgument.
type BatchWriterOptions struct {
	// MaxPending bounds the commands written to the BatchWriter and not yet
	// acknowledged or failed (queued plus in flight). Default 100,000.
	MaxPending int
	// Backpressure says what Write does when MaxPending commands are
	// pending: config.BackpressureBlock (the default) waits until there is
	// room or the Write's ctx ends; config.BackpressureReject fails at once
	// with ErrBackpressure.
	Backpressure config.BackpressurePolicy
	// BatchSize is the largest pipeline sent at once on one connection, in
	// commands. Default 1,999. It is capped so that valkey-go never moves
	// the pipeline to a connection of its own: below the larger of
	// Config.MaxBatchSize+1 and valkey-go's DefaultBlockingPipeline (2,000).
	BatchSize int
	// ConnsPerNode is the number of dedicated connections the writer opens
	// to each node it writes to, each with one pipeline in flight. Commands
	// are spread over them by key, so commands for one key keep their
	// order. Default 2; at most 256 (more is rejected with
	// ErrInvalidArgument: each is a connection and a goroutine). In
	// cluster mode the writer also keeps, per connection index in use, a
	// table of 16,384 slot routes (12 B each, no pointers: 192 KiB,
	// 384 KiB with the default 2, 48 MiB with 256) for one key's order
	// across slot moves.
	ConnsPerNode int
	// Idempotent says the commands may be repeated: a command written on a
	// connection that failed before its reply came back is sent again
	// after the reconnect instead of being reported failed with
	// ErrOutcomeUnknown. Default false.
	Idempotent bool
	// NoMSet keeps every SET a SET. By default, in standalone mode, runs of
	// consecutive plain SETs (no TTL or other option) in one pipeline go
	// out as one MSET of up to 128 keys: the same writes in the same
	// order, at a fraction of the server's CPU per key. Each SET is still
	// acknowledged or reported failed on its own (an MSET's error fails
	// all its SETs, each reported with an error that wraps the MSET's
	// *ServerError and says "SET merged into an MSET": the server's text
	// names 'mset'). If the server refuses MSET (an ACL without it), the
	// writer sends those SETs again as SETs and stops merging.
	NoMSet bool
	// MaxRetries is the number of times one command is sent again: after
	// it was not written (the connection failed first), after a passing
	// refusal (LOADING, TRYAGAIN, CLUSTERDOWN, MASTERDOWN, READONLY;
	// after a backoff), after a MOVED redirect (to the new owner) or an ASK
	// redirect (to the importing node, after ASKING), or (Idempotent) after
	// its reply was lost. Then it is reported failed. Default 5; 0 takes
	// the default.
	MaxRetries int
	// RetryTimeout bounds how long a connection keeps being re-dialled
	// (with the engine's retry backoff, Config.MinRetryBackoff to
	// MaxRetryBackoff) while it has commands to send; past it every command
	// it holds is reported failed with the dial error. Default 10s.
	RetryTimeout time.Duration
	// OnError, when set, is called once for each command that failed, with
	// the command (name and arguments; the slice belongs to the callback)
	// and its error: a *ServerError for an error reply (WRONGTYPE, ...), an
	// error matching ErrOutcomeUnknown for a command whose reply was lost,
	// ErrClosed for commands still queued when the writer or the engine
	// closed, or the transport error. It runs on the writer's goroutines
	// (a connection's, or the one stopping the writer, for the commands
	// still queued), before the command counts as done (a Flush that
	// returns saw its callbacks return): keep it short. Calls may be
	// concurrent. A panic in it is recovered (the command still counts as
	// failed) and counted in Stats.OnErrorPanics; the writer's first is
	// logged at error level.
	//
	// It may call the writer's Close, which then stops the writer without
	// waiting (the callback's own command is done only once it returns:
	// see BatchWriter.Close), and the engine's Close, which does likewise
	// for this writer (see Engine.Close). The writer's Flush called from
	// it returns ErrInOnError at once. A Write from it never waits for
	// room, under either Backpressure (the commands queued behind the one
	// being reported wait for the callback): it may use the room of the
	// failed commands being reported, which count as pending until their
	// callbacks return, so that a callback that writes each failed command
	// again (a retry) finds room; beyond that it fails with
	// ErrBackpressure at once.
	OnError func(cmd []string, err error)
}

// BatchWriter streams writes to Valkey without waiting for replies: Write
// and the typed helpers queue a command and return; the writer sends the
// queued commands in large pipelines on dedicated connections, several per
// node (grouped by hash-slot owner in cluster mode), and counts each
// reply. Failures are reported per command through
// BatchWriterOptions.OnError and counted in Stats.
//
// Every command written is eventually acknowledged (the server replied
// without error) or failed: never dropped silently, and never repeated
// after it may have run unless the writer is Idempotent.
//
// A BatchWriter is safe for concurrent use. Create it with
// Engine.NewBatchWriter and end it with Close; Engine.Close also stops it,
// failing what is still queued with ErrClosed.
type BatchWriter struct {
	// Its state is behind this one pointer: fmt of a value holding a
	// *BatchWriter (printed with %s) then prints an address instead of
	// reading the state without its locks (see Engine).
	*writerState
}

// writerState is a BatchWriter's state (see BatchWriter).
type writerState struct {
	e      *Engine
	opts   BatchWriterOptions
	back   policies.Backoff
	noMSet atomic.Bool // MSET refused (or NoMSet): plain SETs go as SETs
	// msetOK: an MSET was acknowledged. Until then a pipeline merges only
	// the run of SETs that ends it, so that a refused MSET (an ACL
	// without it) has nothing after it in its pipeline that ran: its
	// SETs sent again as SETs keep their place (qa-BD F5).
	msetOK atomic.Bool

	onErrorPanics atomic.Uint64 // OnError calls that panicked (report)
	holdWaits     atomic.Uint64 // WAITs its lanes sent at held failovers (tests)
	panicked      atomic.Bool   // the first was logged
	// ownClose is set by the writer's own Close: the commands it fails by
	// stopping then fail with errWriterClosed, not the engine's ErrClosed
	// (see closeCause).
	ownClose atomic.Bool

	mu        sync.Mutex
	closed    bool // no more writes
	stopping  bool // the lanes end once idle
	nodes     map[string]*writerNode
	routes    [][]slotRoute         // cluster mode: per lane index, one per slot, made on first use (see slotRoute)
	nodeNames []string              // cluster mode: the nodes routes point at, by slotRoute.node ("" at 0)
	nodeIDs   map[string]uint32     // cluster mode: nodeNames' index of each address
	moves     map[uint32]*slotMoves // cluster mode: routes with commands moved away from them
	single    *writerNode           // standalone mode: the only node
	room      chan struct{}
	waiting   int // Writes waiting for room
	flushed   chan struct{}
	gen       uint64         // current Flush generation
	genCount  int            // pending commands of gen
	older     map[uint64]int // pending commands of earlier generations
	free      [][]writerItem // spare queue chunks
	written   uint64
	acked     uint64
	failed    uint64
	reporting uint64 // failed, in OnError calls, not counted yet (finish)
	retries   uint64
	redirects uint64
	rejected  uint64
	batches   uint64
	reconnect uint64
	start     time.Time
	lastAt    time.Time
	lastAcked uint64

	nudge chan struct{} // closed and replaced when a failover is held (held)

	stopCh  chan struct{} // closed when the stop begins (haltLocked): ends backoff waits
	stopped chan struct{} // closed once the stop is over (drain)
	wg      sync.WaitGroup

	// The goroutines reporting failures through OnError (finish), each
	// with its number of reports in progress: Close, Flush and the
	// engine's Close called from the callback must not wait for their own
	// goroutine (runsHandler). inOnError is the sum, so that the check
	// costs one atomic load while no OnError call runs.
	inOnError atomic.Int32
	cbMu      sync.Mutex
	cbRuns    map[int64]int
}

// errZeroWriter fails the methods of a BatchWriter the engine did not make.
var errZeroWriter = notMade("a zero BatchWriter: make one with Engine.NewBatchWriter")

// NewBatchWriter returns a BatchWriter over the engine's nodes with opts.
// It fails with ErrInvalidArgument for negative options (or ConnsPerNode
// over 256) and with ErrClosed
// when the engine is closed. No connection is opened until the first
// command for a node is sent.
func (e *Engine) NewBatchWriter(opts BatchWriterOptions) (*BatchWriter, error) {
	if opts.MaxPending < 0 || opts.BatchSize < 0 || opts.ConnsPerNode < 0 || opts.MaxRetries < 0 || opts.RetryTimeout < 0 {
		return nil, fmt.Errorf("%w: negative BatchWriterOptions (MaxPending %d, BatchSize %d, ConnsPerNode %d, MaxRetries %d, RetryTimeout %s)",
			ErrInvalidArgument, opts.MaxPending, opts.BatchSize, opts.ConnsPerNode, opts.MaxRetries, opts.RetryTimeout)
	}
	if opts.ConnsPerNode > maxWriterConns {
		return nil, fmt.Errorf("%w: BatchWriterOptions.ConnsPerNode %d is over %d", ErrInvalidArgument, opts.ConnsPerNode, maxWriterConns)
	}
	if opts.Backpressure != config.BackpressureBlock && opts.Backpressure != config.BackpressureReject {
		return nil, fmt.Errorf("%w: BatchWriterOptions.Backpressure %s", ErrInvalidArgument, opts.Backpressure)
	}
	if opts.MaxPending == 0 {
		opts.MaxPending = DefaultWriterMaxPending
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultWriterBatchSize
	}
	// valkey-go sends a DoMulti of BlockingPipeline commands or more on a
	// connection of its own: stay below (see drivers/valkeygo).
	opts.BatchSize = min(opts.BatchSize, max(e.opts.MaxPipeline+1, valkey.DefaultBlockingPipeline)-1)
	if opts.ConnsPerNode == 0 {
		opts.ConnsPerNode = DefaultWriterConns
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = DefaultWriterMaxRetries
	}
	if opts.RetryTimeout == 0 {
		opts.RetryTimeout = DefaultWriterRetryTimeout
	}
	w := &BatchWriter{&writerState{
		e:       e,
		opts:    opts,
		back:    policies.Backoff{Min: e.cfg.MinRetryBackoff, Max: e.cfg.MaxRetryBackoff},
		nodes:   map[string]*writerNode{},
		room:    make(chan struct{}),
		flushed: make(chan struct{}),
		nudge:   make(chan struct{}),
		older:   map[uint64]int{},
		stopCh:  make(chan struct{}),
		stopped: make(chan struct{}),
	}}
	w.noMSet.Store(opts.NoMSet)
	if err := e.track(w); err != nil {
		return nil, err
	}
	return w, nil
}

// Write queues one command: its name and arguments as the server expects
// them, for example Write(ctx, "HSET", "h", "f", "v"). The second
// argument, when there is one, is taken as the key: it picks the node (in
// cluster mode) and the connection, so commands whose first argument is
// the same key keep their order. Write does not wait for the reply.
// Blocking commands (BLPOP, ...) and WAIT hold up the connection they are
// sent on and the commands behind them: do not write them here. One whose
// timeout is 0 (forever) or not below Config.ReadTimeout is refused with
// ErrInvalidArgument, as Pipeline.Do refuses it: the connection's read
// would time out, closing it under every command in flight.
//
// It returns nil once the command is queued, or: ErrInvalidArgument (no
// command name, or such a blocking command), a *ConnectionStateError (ErrConnectionState, which wraps
// ErrInvalidArgument) for a command that changes its connection's state
// (MULTI, SELECT, CLIENT REPLY, the SUBSCRIBE family, ...: see Engine.Do),
// ErrClosed (the writer or the engine is closed), ErrBackpressure
// (full, with BackpressureReject, or called from OnError: see
// BatchWriterOptions.OnError), or ctx.Err() when ctx ends while Write
// waits for room. ctx bounds only the wait for room (and, in cluster
// mode, the wait while no node serves the key's slot during a failover, at
// most RetryTimeout): a queued command is sent even if ctx ends later. The
// writer keeps no reference to args.
func (w *BatchWriter) Write(ctx context.Context, args ...string) error {
	if w == nil || w.writerState == nil || w.e == nil {
		return errZeroWriter
	}
	if len(args) == 0 || args[0] == "" {
		return fmt.Errorf("%w: Write needs a command name", ErrInvalidArgument)
	}
	if err := checkShared(args[0], args[1:]); err != nil {
		return err
	}
	if err := w.e.checkPipelined(args[0], args[1:]); err != nil {
		return err
	}
	if len(args) == 1 {
		return w.enqueue(ctx, writerItem{name: args[0]})
	}
	return w.enqueue(ctx, writerItem{name: args[0], key: args[1], flags: hasKey, args: clone(args[2:])})
}

// clone copies s (nil when empty).
func clone(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}

// Set queues SET key value with a time to live: 0 for none, KeepTTL to
// keep the current one (see Engine.Set). Returns as Write.
func (w *BatchWriter) Set(ctx context.Context, key, value string, ttl time.Duration) error {
	if w == nil || w.writerState == nil || w.e == nil {
		return errZeroWriter
	}
	ex, err := ttlArgs(ttl)
	if err != nil {
		return err
	}
	return w.enqueue(ctx, writerItem{name: "SET", key: key, val: value, flags: hasKey | hasVal, args: ex})
}

// HSet queues HSET key with alternating field/value arguments; an empty
// or odd-length fieldValues fails with ErrInvalidArgument. Returns as
// Write.
func (w *BatchWriter) HSet(ctx context.Context, key string, fieldValues ...string) error {
	if w == nil || w.writerState == nil || w.e == nil {
		return errZeroWriter
	}
	if len(fieldValues) == 0 || len(fieldValues)%2 != 0 {
		return fmt.Errorf("%w: HSET needs field/value pairs, got %d arguments", ErrInvalidArgument, len(fieldValues))
	}
	return w.enqueue(ctx, writerItem{name: "HSET", key: key, flags: hasKey, args: clone(fieldValues)})
}

// Del queues DEL of keys (at least one, else ErrInvalidArgument). In
// cluster mode keys in different slots go out as one DEL per slot; the
// first error stops queueing the rest. Returns as Write.
func (w *BatchWriter) Del(ctx context.Context, keys ...string) error {
	if w == nil || w.writerState == nil || w.e == nil {
		return errZeroWriter
	}
	if len(keys) == 0 {
		return fmt.Errorf("%w: DEL needs at least one key", ErrInvalidArgument)
	}
	if groups := w.e.bySlot(keys); groups != nil {
		for _, g := range groups {
			ks := make([]string, len(g))
			for i, j := range g {
				ks[i] = keys[j]
			}
			if err := w.enqueue(ctx, writerItem{name: "DEL", key: ks[0], flags: hasKey, args: clone(ks[1:])}); err != nil {
				return err
			}
		}
		return nil
	}
	return w.enqueue(ctx, writerItem{name: "DEL", key: keys[0], flags: hasKey, args: clone(keys[1:])})
}

// Incr queues INCR key. Returns as Write.
func (w *BatchWriter) Incr(ctx context.Context, key string) error {
	if w == nil || w.writerState == nil || w.e == nil {
		return errZeroWriter
	}
	return w.enqueue(ctx, writerItem{name: "INCR", key: key, flags: hasKey})
}

// IncrBy queues INCRBY key n. Returns as Write.
func (w *BatchWriter) IncrBy(ctx context.Context, key string, n int64) error {
	if w == nil || w.writerState == nil || w.e == nil {
		return errZeroWriter
	}
	return w.enqueue(ctx, writerItem{name: "INCRBY", key: key, val: strconv.FormatInt(n, 10), flags: hasKey | hasVal})
}

// Expire queues PEXPIRE key ttl (milliseconds, at least 1); a ttl of 0 or
// less fails with ErrInvalidArgument. Returns as Write.
func (w *BatchWriter) Expire(ctx context.Context, key string, ttl time.Duration) error {
	if w == nil || w.writerState == nil || w.e == nil {
		return errZeroWriter
	}
	if ttl <= 0 {
		return fmt.Errorf("%w: Expire needs a positive ttl (sent as PEXPIRE, to the millisecond), got %s", ErrInvalidArgument, ttl)
	}
	ms := strconv.FormatInt(max(int64(ttl/time.Millisecond), 1), 10)
	return w.enqueue(ctx, writerItem{name: "PEXPIRE", key: key, val: ms, flags: hasKey | hasVal})
}

// RPush queues RPUSH key values... (at least one value, else
// ErrInvalidArgument). Returns as Write.
func (w *BatchWriter) RPush(ctx context.Context, key string, values ...string) error {
	if w == nil || w.writerState == nil || w.e == nil {
		return errZeroWriter
	}
	if len(values) == 0 {
		return fmt.Errorf("%w: RPUSH needs at least one value", ErrInvalidArgument)
	}
	return w.enqueue(ctx, writerItem{name: "RPUSH", key: key, flags: hasKey, args: clone(values)})
}

// SAdd queues SADD key members... (at least one member, else
// ErrInvalidArgument). Returns as Write.
func (w *BatchWriter) SAdd(ctx context.Context, key string, members ...string) error {
	if w == nil || w.writerState == nil || w.e == nil {
		return errZeroWriter
	}
	if len(members) == 0 {
		return fmt.Errorf("%w: SADD needs at least one member", ErrInvalidArgument)
	}
	return w.enqueue(ctx, writerItem{name: "SADD", key: key, flags: hasKey, args: clone(members)})
}

// XAdd queues XADD stream * with alternating field/value arguments (an
// empty or odd-length fieldValues fails with ErrInvalidArgument); the
// server picks the entry ID. Returns as Write.
func (w *BatchWriter) XAdd(ctx context.Context, stream string, fieldValues ...string) error {
	if w == nil || w.writerState == nil || w.e == nil {
		return errZeroWriter
	}
	if stream == "" {
		return fmt.Errorf("%w: XADD needs a non-empty stream key", ErrInvalidArgument) // as Engine.XAdd's (qa-AN AN3)
	}
	if len(fieldValues) == 0 || len(fieldValues)%2 != 0 {
		return fmt.Errorf("%w: XADD needs field/value pairs, got %d arguments", ErrInvalidArgument, len(fieldValues))
	}
	return w.enqueue(ctx, writerItem{name: "XADD", key: stream, val: "*", flags: hasKey | hasVal, args: clone(fieldValues)})
}

// Flush waits until every command written before it was called is
// acknowledged or failed (its OnError callback returned), or until ctx
// ends (then it returns ctx.Err()). Commands written meanwhile do not
// delay it. Safe for concurrent use; it does not stop the writer.
//
// Called from OnError, Flush returns ErrInOnError at once and changes
// nothing: the commands written before it include the one being reported,
// done only once the callback returns (and the commands queued behind it
// on its connection, which wait for it).
func (w *BatchWriter) Flush(ctx context.Context) error {
	if w == nil || w.writerState == nil || w.e == nil {
		return errZeroWriter
	}
	if w.calledFromOnError() {
		return ErrInOnError
	}
	if ctx == nil {
		ctx = context.Background()
	}
	w.mu.Lock()
	g := w.gen
	if w.genCount > 0 {
		w.older[g] = w.genCount
	}
	w.gen++
	w.genCount = 0
	for {
		left := false
		for k := range w.older {
			if k <= g {
				left = true
				break
			}
		}
		if !left {
			w.mu.Unlock()
			return nil
		}
		ch := w.flushed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		w.mu.Lock()
	}
}

// Close stops taking writes (Write then fails with ErrClosed), flushes,
// and stops the writer's connections and goroutines. When ctx ends before
// the flush completes, Close stops anyway: commands still queued are
// reported failed with ErrClosed, those in flight get their replies (or
// are reported failed once Config.DrainTimeout passes), and Close returns
// ctx.Err(). Every command written is acknowledged or reported failed when
// Close returns: so Close waits for the OnError calls in progress and for
// those it makes for the commands it fails, whatever ctx says, and may
// return up to Config.DrainTimeout after ctx ends (a server that holds
// the writes in flight: paused, frozen). An OnError
// that blocks until something done after Close (a send on an unbuffered
// channel read once Close returns) blocks Close, and the engine's Close,
// for as long: give such a channel room, or read it on another goroutine.
// The commands the writer fails because it stopped report an error that
// matches ErrClosed: "vactor: batch writer closed" after its own Close,
// "vactor: engine closed" after the engine's. Calling Close again returns
// ErrClosed once the first Close (or the engine's) has stopped the writer,
// or ctx.Err() if ctx ends first.
//
// Close may be called from OnError, to stop at a failure. There it can
// neither flush nor wait for the writer to stop: the command being
// reported, and the commands queued behind it on its connection, are done
// only once the callback returns. So it stops the writer without
// waiting, as a Close whose ctx has ended: Write fails with ErrClosed
// from then on; nothing more is sent but the pipelines the writer's
// connections have already taken (they get their replies, or are
// reported failed once Config.DrainTimeout passes); the commands still
// queued are reported failed with ErrClosed (through OnError, on a
// goroutine of the writer's, possibly while the call in progress still
// runs); the connections close and the goroutines end once the callbacks
// in progress have returned. It returns nil, or ErrClosed at once if the
// writer was already closed or closing. A Close from elsewhere, or the
// engine's Close, waits for the stop, after which every command written
// is acknowledged or reported failed exactly once.
func (w *BatchWriter) Close(ctx context.Context) error {
	if w == nil || w.writerState == nil || w.e == nil {
		return errZeroWriter
	}
	if w.calledFromOnError() {
		return w.closeFromOnError()
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		if ctx == nil {
			ctx = context.Background()
		}
		select {
		case <-w.stopped:
			return errWriterClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.closed = true
	close(w.room) // waiting Writes see closed
	w.room = make(chan struct{})
	w.waiting = 0
	w.mu.Unlock()
	w.ownClose.Store(true)
	err := w.Flush(ctx)
	w.stop(w.closeCause())
	w.e.untrack(w)
	return err
}

// closeCause is the error of the commands the writer fails because it
// stops: errWriterClosed after its own Close, so that OnError does not
// say that the engine closed while it still serves; ErrClosed after the
// engine's. Both match ErrClosed.
func (w *BatchWriter) closeCause() error {
	if w.ownClose.Load() {
		return errWriterClosed
	}
	return ErrClosed
}

// closeFromOnError is Close called from OnError: it stops the writer
// without waiting for it (see Close).
func (w *BatchWriter) closeFromOnError() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errWriterClosed
	}
	w.ownClose.Store(true)
	lanes, queued, _ := w.haltLocked() // first: stopping implies closed
	w.mu.Unlock()
	go func() {
		w.drain(w.closeCause(), lanes, queued)
		// Tracked until stopped: the engine's Close waits for the stop.
		w.e.untrack(w)
	}()
	return nil
}

// stop implements service: queued commands are reported failed with err,
// in-flight pipelines get DrainTimeout to finish, then the connections are
// closed; it returns once the lanes' goroutines ended. Safe to call more
// than once, concurrently: the calls after the first wait for it.
func (w *BatchWriter) stop(err error) {
	w.mu.Lock()
	lanes, queued, first := w.haltLocked()
	w.mu.Unlock()
	if first {
		w.drain(err, lanes, queued)
	}
	<-w.stopped
}

var _ handlerService = (*BatchWriter)(nil)

// stopFrom implements handlerService (the engine's Close): called from
// an OnError call of this writer, it stops the writer as stop does
// without waiting for it (the stop waits for that call, its caller): the
// stop goes on on a goroutine of its own and is over once the callbacks
// in progress have returned.
func (w *BatchWriter) stopFrom(err error, caller int64) {
	if !w.runsHandler(caller) {
		w.stop(err)
		return
	}
	w.mu.Lock()
	lanes, queued, first := w.haltLocked()
	w.mu.Unlock()
	if first {
		go w.drain(err, lanes, queued)
	}
}

// haltLocked begins the stop: no more writes, the lanes end once idle,
// and the commands queued are taken out, for drain to fail. first is
// false (and nothing is taken) if the stop had already begun.
func (w *BatchWriter) haltLocked() (lanes []*writerLane, queued [][]writerItem, first bool) {
	w.closed = true
	close(w.room) // waiting Writes see closed
	w.room = make(chan struct{})
	w.waiting = 0
	if w.stopping {
		return nil, nil, false
	}
	w.stopping = true
	for _, n := range w.nodes {
		for _, l := range n.lanes {
			lanes = append(lanes, l)
			queued = append(queued, l.queue...)
			l.queue = nil
			l.cond.Signal()
		}
	}
	close(w.stopCh)
	return lanes, queued, true
}

// drain ends the stop haltLocked began: queued is reported failed with
// err, the in-flight pipelines get DrainTimeout to finish, then the
// connections are closed; once the lanes' goroutines have ended it
// closes stopped.
func (w *BatchWriter) drain(err error, lanes []*writerLane, queued [][]writerItem) {
	defer close(w.stopped)
	for _, c := range queued {
		w.finish(c, nil, nil, err)
	}
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	t := time.NewTimer(w.e.drainLeft())
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		// Fails the pipelines still in flight. All at once: a close
		// may wait for a stalled server with a driver other than
		// valkeygo (see Engine.closeDrivers).
		var closes sync.WaitGroup
		for _, l := range lanes {
			closes.Go(l.closeConn)
		}
		closes.Wait()
		<-done
	}
}

// runsHandler implements handlerService: goroutine g is in an OnError
// call of this writer.
func (w *BatchWriter) runsHandler(g int64) bool {
	if g == 0 || w.inOnError.Load() == 0 {
		return false
	}
	w.cbMu.Lock()
	defer w.cbMu.Unlock()
	return w.cbRuns[g] > 0
}

// calledFromOnError reports whether the calling goroutine is in an
// OnError call of this writer. While no call runs it costs one atomic
// load; else a goid (about 2 µs: failure paths only).
func (w *BatchWriter) calledFromOnError() bool {
	return w.inOnError.Load() != 0 && w.runsHandler(goid())
}

// enterOnError records that the calling goroutine, whose id it returns,
// begins OnError calls; leaveOnError(g) that they are over.
func (w *BatchWriter) enterOnError() int64 {
	g := goid()
	w.cbMu.Lock()
	if w.cbRuns == nil {
		w.cbRuns = map[int64]int{}
	}
	w.cbRuns[g]++
	w.cbMu.Unlock()
	w.inOnError.Add(1)
	return g
}

func (w *BatchWriter) leaveOnError(g int64) {
	w.inOnError.Add(-1)
	w.cbMu.Lock()
	if n := w.cbRuns[g] - 1; n > 0 {
		w.cbRuns[g] = n
	} else {
		delete(w.cbRuns, g)
	}
	w.cbMu.Unlock()
}
