package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/drivers"
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
	// order. Default 2.
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
	// all its SETs). If the server refuses MSET (an ACL without it), the
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
	// closed, or the transport error. It runs on the writer's goroutines,
	// before the command counts as done (a Flush that returns saw its
	// callbacks return): keep it short, and do not call Flush or Close
	// from it. Calls may be concurrent.
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
	e      *Engine
	opts   BatchWriterOptions
	back   policies.Backoff
	noMSet atomic.Bool // MSET refused (or NoMSet): plain SETs go as SETs

	mu        sync.Mutex
	closed    bool // no more writes
	stopping  bool // the lanes end once idle
	nodes     map[string]*writerNode
	single    *writerNode // standalone mode: the only node
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
	retries   uint64
	redirects uint64
	rejected  uint64
	batches   uint64
	reconnect uint64
	start     time.Time
	lastAt    time.Time
	lastAcked uint64

	stopOnce sync.Once
	stopCh   chan struct{} // closed by stop: ends backoff waits
	wg       sync.WaitGroup
}

// writerItem is one queued command: its parts, from which the lane builds
// the valkey-go command when it sends it (built commands go back to
// valkey-go's pool once answered, so the parts are kept for reporting a
// failure and for sending again).
type writerItem struct {
	cmd   valkey.Completed // built at Write in cluster mode (for the slot); zero once sent
	name  string
	key   string   // when hasKey
	val   string   // when hasVal: the one argument after the key (SET's value, ...)
	args  []string // the further arguments; owned by the item
	flags uint8
	slot  uint16 // cluster mode
	tries int32
	gen   uint64
}

const (
	hasKey uint8 = 1 << iota
	hasVal
	asking // send ASKING first (an ASK redirect): cluster mode
)

// build returns the command of it, from valkey-go's pool.
func (w *BatchWriter) build(it *writerItem) valkey.Completed {
	b := w.e.b
	if w.e.cl == nil {
		// Standalone: nothing routes by slot, so skip valkey-go's CRC16 of
		// every key (Keys computes it): ~8% of the writer's CPU.
		a := b.Arbitrary(it.name)
		if it.flags&hasKey != 0 {
			a = a.Args(it.key)
		}
		if it.flags&hasVal != 0 {
			a = a.Args(it.val)
		}
		return a.Args(it.args...).Build()
	}
	switch {
	case it.flags == hasKey|hasVal && it.args == nil && it.name == "SET":
		return b.Set().Key(it.key).Value(it.val).Build()
	case it.flags&hasKey == 0:
		return b.Arbitrary(it.name).Args(it.args...).Build()
	case it.flags&hasVal != 0:
		return b.Arbitrary(it.name).Keys(it.key).Args(it.val).Args(it.args...).Build()
	default:
		return b.Arbitrary(it.name).Keys(it.key).Args(it.args...).Build()
	}
}

// argv returns the command line of it, for OnError.
func (it *writerItem) argv() []string {
	s := make([]string, 0, 3+len(it.args))
	s = append(s, it.name)
	if it.flags&hasKey != 0 {
		s = append(s, it.key)
	}
	if it.flags&hasVal != 0 {
		s = append(s, it.val)
	}
	return append(s, it.args...)
}

// writerNode is one node's connections.
type writerNode struct {
	addr  string
	lanes []*writerLane
}

// writerLane is one dedicated connection with its queue and goroutine.
// Its fields but conn are guarded by BatchWriter.mu; conn is the
// goroutine's own (closeConn may close it from stop).
type writerLane struct {
	w     *BatchWriter
	addr  string
	queue [][]writerItem // chunks of up to BatchSize commands, in order
	cond  *sync.Cond
	idle  bool
	ok    []bool // per batch: acknowledged; the lane goroutine's own

	connMu sync.Mutex
	conn   drivers.ValkeyConn
}

// NewBatchWriter returns a BatchWriter over the engine's nodes with opts.
// It fails with ErrInvalidArgument for negative options and with ErrClosed
// when the engine is closed. No connection is opened until the first
// command for a node is sent.
func (e *Engine) NewBatchWriter(opts BatchWriterOptions) (*BatchWriter, error) {
	if opts.MaxPending < 0 || opts.BatchSize < 0 || opts.ConnsPerNode < 0 || opts.MaxRetries < 0 || opts.RetryTimeout < 0 {
		return nil, fmt.Errorf("%w: negative BatchWriterOptions (MaxPending %d, BatchSize %d, ConnsPerNode %d, MaxRetries %d, RetryTimeout %s)",
			ErrInvalidArgument, opts.MaxPending, opts.BatchSize, opts.ConnsPerNode, opts.MaxRetries, opts.RetryTimeout)
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
	w := &BatchWriter{
		e:       e,
		opts:    opts,
		back:    policies.Backoff{Min: e.cfg.MinRetryBackoff, Max: e.cfg.MaxRetryBackoff},
		nodes:   map[string]*writerNode{},
		room:    make(chan struct{}),
		flushed: make(chan struct{}),
		older:   map[uint64]int{},
		stopCh:  make(chan struct{}),
	}
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
// Blocking commands (BLPOP, ...) hold up the connection they are sent on
// and the commands behind them: do not write them here.
//
// It returns nil once the command is queued, or: ErrInvalidArgument (no
// command name), a *ConnectionStateError (ErrConnectionState, which wraps
// ErrInvalidArgument) for a command that changes its connection's state
// (MULTI, SELECT, CLIENT REPLY, the SUBSCRIBE family, ...: see Engine.Do),
// ErrClosed (the writer or the engine is closed), ErrBackpressure
// (full, with BackpressureReject), or ctx.Err() when ctx ends while Write
// waits for room. ctx bounds only the wait for room (and, in cluster
// mode, the wait while no node serves the key's slot during a failover, at
// most RetryTimeout): a queued command is sent even if ctx ends later. The
// writer keeps no reference to args.
func (w *BatchWriter) Write(ctx context.Context, args ...string) error {
	if len(args) == 0 || args[0] == "" {
		return fmt.Errorf("%w: Write needs a command name", ErrInvalidArgument)
	}
	if err := checkShared(args[0], args[1:]); err != nil {
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
	if len(fieldValues) == 0 || len(fieldValues)%2 != 0 {
		return fmt.Errorf("%w: HSET needs field/value pairs, got %d arguments", ErrInvalidArgument, len(fieldValues))
	}
	return w.enqueue(ctx, writerItem{name: "HSET", key: key, flags: hasKey, args: clone(fieldValues)})
}

// Del queues DEL of keys (at least one, else ErrInvalidArgument). In
// cluster mode keys in different slots go out as one DEL per slot; the
// first error stops queueing the rest. Returns as Write.
func (w *BatchWriter) Del(ctx context.Context, keys ...string) error {
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
	return w.enqueue(ctx, writerItem{name: "INCR", key: key, flags: hasKey})
}

// IncrBy queues INCRBY key n. Returns as Write.
func (w *BatchWriter) IncrBy(ctx context.Context, key string, n int64) error {
	return w.enqueue(ctx, writerItem{name: "INCRBY", key: key, val: strconv.FormatInt(n, 10), flags: hasKey | hasVal})
}

// Expire queues PEXPIRE key ttl (milliseconds, at least 1); a ttl of 0 or
// less fails with ErrInvalidArgument. Returns as Write.
func (w *BatchWriter) Expire(ctx context.Context, key string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("%w: EXPIRE needs a positive ttl, got %s", ErrInvalidArgument, ttl)
	}
	ms := strconv.FormatInt(max(int64(ttl/time.Millisecond), 1), 10)
	return w.enqueue(ctx, writerItem{name: "PEXPIRE", key: key, val: ms, flags: hasKey | hasVal})
}

// RPush queues RPUSH key values... (at least one value, else
// ErrInvalidArgument). Returns as Write.
func (w *BatchWriter) RPush(ctx context.Context, key string, values ...string) error {
	if len(values) == 0 {
		return fmt.Errorf("%w: RPUSH needs at least one value", ErrInvalidArgument)
	}
	return w.enqueue(ctx, writerItem{name: "RPUSH", key: key, flags: hasKey, args: clone(values)})
}

// SAdd queues SADD key members... (at least one member, else
// ErrInvalidArgument). Returns as Write.
func (w *BatchWriter) SAdd(ctx context.Context, key string, members ...string) error {
	if len(members) == 0 {
		return fmt.Errorf("%w: SADD needs at least one member", ErrInvalidArgument)
	}
	return w.enqueue(ctx, writerItem{name: "SADD", key: key, flags: hasKey, args: clone(members)})
}

// XAdd queues XADD stream * with alternating field/value arguments (an
// empty or odd-length fieldValues fails with ErrInvalidArgument); the
// server picks the entry ID. Returns as Write.
func (w *BatchWriter) XAdd(ctx context.Context, stream string, fieldValues ...string) error {
	if len(fieldValues) == 0 || len(fieldValues)%2 != 0 {
		return fmt.Errorf("%w: XADD needs field/value pairs, got %d arguments", ErrInvalidArgument, len(fieldValues))
	}
	return w.enqueue(ctx, writerItem{name: "XADD", key: stream, val: "*", flags: hasKey | hasVal, args: clone(fieldValues)})
}

// enqueue queues it, routed by its key, waiting for room under Block.
func (w *BatchWriter) enqueue(ctx context.Context, it writerItem) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	addr := ""
	if w.e.cl != nil {
		// Build now for the slot (valkey-go's hashing); sent as is first.
		it.cmd = w.build(&it)
		it.slot = it.cmd.Slot() & (actors.Slots - 1)
		a, err := w.owner(ctx, it.slot)
		if err != nil {
			return err
		}
		addr = a
	}
	h := laneHash(it.key)
	w.mu.Lock()
	for {
		if w.closed {
			w.mu.Unlock()
			return ErrClosed
		}
		if w.pendingLocked() < uint64(w.opts.MaxPending) {
			break
		}
		if w.opts.Backpressure == config.BackpressureReject {
			w.rejected++
			w.mu.Unlock()
			return ErrBackpressure
		}
		room := w.room
		w.waiting++
		w.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
		w.mu.Lock()
	}
	if w.written == 0 {
		w.start = time.Now()
		w.lastAt = w.start
	}
	w.written++
	w.genCount++
	it.gen = w.gen
	w.laneLocked(addr, h).pushLocked(it)
	w.mu.Unlock()
	return nil
}

// owner returns the primary serving slot. While no node serves it (a
// failover in progress) it waits, re-reading the slot map with backoff,
// until one does, ctx ends, the writer closes or RetryTimeout passes.
func (w *BatchWriter) owner(ctx context.Context, slot uint16) (string, error) {
	addr, err := w.e.cl.Owner(slot)
	if err == nil {
		return addr, nil
	}
	deadline := time.Now().Add(w.opts.RetryTimeout)
	for i := 0; time.Now().Before(deadline); i++ {
		t := time.NewTimer(w.back.Delay(i))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return "", ctx.Err()
		case <-w.stopCh:
			t.Stop()
			return "", ErrClosed
		}
		if addr, err = w.e.cl.Owner(slot); err == nil {
			return addr, nil
		}
	}
	return "", err
}

func (w *BatchWriter) pendingLocked() uint64 { return w.written - w.acked - w.failed }

// laneLocked returns the lane for key hash h on addr ("" in standalone mode),
// starting the node's lanes on first use.
func (w *BatchWriter) laneLocked(addr string, h uint32) *writerLane {
	n := w.single
	if w.e.cl != nil {
		n = w.nodes[addr]
	}
	if n == nil {
		if w.e.cl == nil {
			addr, _ = w.e.addrOf("") // the only node: never fails
		}
		n = &writerNode{addr: addr}
		for range w.opts.ConnsPerNode {
			l := &writerLane{w: w, addr: addr}
			l.cond = sync.NewCond(&w.mu)
			n.lanes = append(n.lanes, l)
			w.wg.Add(1)
			go l.run()
		}
		w.nodes[addr] = n
		if w.e.cl == nil {
			w.single = n
		}
	}
	return n.lanes[h%uint32(len(n.lanes))]
}

// laneHash spreads keys over a node's lanes.
func laneHash(key string) uint32 {
	return uint32(maphash.String(laneSeed, key))
}

// laneSeed is fixed for the process: a key always maps to the same lane.
var laneSeed = maphash.MakeSeed()

// pushLocked appends it to the lane's queue and wakes the lane.
func (l *writerLane) pushLocked(it writerItem) {
	w := l.w
	q := l.queue
	if len(q) == 0 || len(q[len(q)-1]) == w.opts.BatchSize {
		var c []writerItem
		if n := len(w.free); n > 0 {
			c, w.free = w.free[n-1], w.free[:n-1]
		} else {
			c = make([]writerItem, 0, w.opts.BatchSize)
		}
		l.queue = append(q, append(c, it))
	} else {
		q[len(q)-1] = append(q[len(q)-1], it)
	}
	if l.idle {
		l.idle = false
		l.cond.Signal()
	}
}

// requeueLocked puts items back at the front of the lane's queue, in
// order, ahead of everything queued since.
func (l *writerLane) requeueLocked(items []writerItem) {
	if len(items) == 0 {
		return
	}
	bs := l.w.opts.BatchSize
	var chunks [][]writerItem
	for len(items) > 0 {
		n := min(len(items), bs)
		chunks = append(chunks, append(make([]writerItem, 0, bs), items[:n]...))
		items = items[n:]
	}
	l.queue = append(chunks, l.queue...)
	if l.idle {
		l.idle = false
		l.cond.Signal()
	}
}

// run is the lane's goroutine: it takes one chunk at a time and sends it
// as one pipeline, until the writer stops and the queue is empty.
func (l *writerLane) run() {
	w := l.w
	defer w.wg.Done()
	defer l.closeConn()
	cmds := make([]valkey.Completed, 0, w.opts.BatchSize)
	var idx []int                    // batch item -> its command in cmds
	var picked []valkey.ValkeyResult // results without the ASKING replies
	var mset []string                // an MSET's arguments, reused
	var down time.Time               // when the connection first failed, zero while up
	failures := 0                    // consecutive failed dials
	for {
		w.mu.Lock()
		for len(l.queue) == 0 && !w.stopping {
			l.idle = true
			l.cond.Wait()
		}
		if len(l.queue) == 0 { // stopping, nothing left
			w.mu.Unlock()
			return
		}
		batch := l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
		stopping := w.stopping
		w.mu.Unlock()
		if stopping { // stop fails what is queued; this is a straggler
			w.finish(batch, nil, nil, ErrClosed)
			continue
		}

		conn, err := l.connect(failures)
		if err != nil {
			if down.IsZero() {
				down = time.Now()
			}
			failures++
			if time.Since(down) >= w.opts.RetryTimeout {
				// Give up on everything this lane holds.
				w.mu.Lock()
				rest := l.queue
				l.queue = nil
				w.mu.Unlock()
				w.finish(batch, nil, nil, err)
				for _, c := range rest {
					w.finish(c, nil, nil, err)
				}
				down, failures = time.Time{}, 0
				continue
			}
			w.mu.Lock()
			late := w.rerouteLocked(l, batch)
			w.mu.Unlock()
			w.finish(late, nil, nil, ErrClosed)
			continue
		}
		down, failures = time.Time{}, 0

		cmds = cmds[:0]
		idx = idx[:0]
		merged := false
		for i := 0; i < len(batch); i++ {
			it := &batch[i]
			if n := w.setRun(batch[i:]); n >= 2 {
				// Consecutive plain SETs: one MSET, same order.
				mset = mset[:0]
				for k := i; k < i+n; k++ {
					mset = append(mset, batch[k].key, batch[k].val)
					batch[k].cmd = valkey.Completed{}
				}
				cmds = append(cmds, w.e.b.Arbitrary("MSET").Args(mset...).Build())
				for range n {
					idx = append(idx, len(cmds)-1)
				}
				clear(mset)
				i += n - 1
				merged = true
				continue
			}
			if it.flags&asking != 0 {
				cmds = append(cmds, w.e.b.Asking().Build())
				it.flags &^= asking
			}
			if it.cmd.IsEmpty() {
				it.cmd = w.build(it)
			}
			cmds = append(cmds, it.cmd)
			idx = append(idx, len(cmds)-1)
			// valkey-go recycles answered commands: the parts stay.
			it.cmd = valkey.Completed{}
		}
		results := conn.DoMulti(context.Background(), cmds...)
		clear(cmds)
		if len(cmds) != len(batch) { // drop the ASKING replies
			picked = picked[:0]
			for _, j := range idx {
				r := shortResult
				if j < len(results) {
					r = results[j]
				}
				picked = append(picked, r)
			}
			results = picked
		}
		if merged {
			if batch, results = w.msetRefused(l, batch, results, idx); len(batch) == 0 {
				continue
			}
		}
		if broken := w.settle(l, batch, results); broken {
			l.closeConn()
		}
	}
}

// maxMSet is the most SETs merged into one MSET.
const maxMSet = 128

// setRun returns how many items at the start of items are plain SETs
// that may be merged into one MSET (standalone mode only).
func (w *BatchWriter) setRun(items []writerItem) int {
	if w.e.cl != nil || w.noMSet.Load() {
		return 0
	}
	n := 0
	for n < len(items) && n < maxMSet {
		it := &items[n]
		if it.name != "SET" || it.flags != hasKey|hasVal || it.args != nil || !it.cmd.IsEmpty() {
			break
		}
		n++
	}
	return n
}

// msetRefused handles a server that refuses MSET (NOPERM, or a renamed
// command): merging stops, and the SETs of the refused MSETs go back to
// the front of the lane to be sent as SETs (they did not run). It returns
// the rest of the batch with their results.
func (w *BatchWriter) msetRefused(l *writerLane, batch []writerItem, results []valkey.ValkeyResult, idx []int) ([]writerItem, []valkey.ValkeyResult) {
	refused := func(i int) bool {
		inMSet := i < len(idx) && ((i > 0 && idx[i-1] == idx[i]) || (i+1 < len(idx) && idx[i+1] == idx[i]))
		if !inMSet || i >= len(results) {
			return false
		}
		err := results[i].Error()
		ve, ok := valkey.IsValkeyErr(err)
		return ok && (strings.HasPrefix(ve.Error(), "NOPERM") || strings.Contains(ve.Error(), "unknown command"))
	}
	found := false
	for i := range batch {
		if refused(i) {
			found = true
			break
		}
	}
	if !found {
		return batch, results
	}
	w.noMSet.Store(true)
	var keep []writerItem
	var keepRes []valkey.ValkeyResult
	var again []writerItem
	for i := range batch {
		if refused(i) {
			again = append(again, batch[i])
			continue
		}
		keep = append(keep, batch[i])
		keepRes = append(keepRes, results[i])
	}
	w.mu.Lock()
	l.requeueLocked(again)
	w.mu.Unlock()
	return keep, keepRes
}

// rerouteLocked puts batch, not sent because l's node did not answer,
// back at the front of l; in cluster mode the commands whose slot has a
// new owner (after a failover) go to that owner's lanes instead. Once the
// writer stops it returns the batch, to be failed.
func (w *BatchWriter) rerouteLocked(l *writerLane, batch []writerItem) (late []writerItem) {
	if w.stopping {
		return batch
	}
	if w.e.cl == nil {
		l.queue = append([][]writerItem{batch}, l.queue...)
		return nil
	}
	w.e.cl.Stale(batch[0].slot)
	var stay []writerItem
	for _, it := range batch {
		addr, err := w.e.cl.Owner(it.slot)
		if err != nil || addr == l.addr {
			stay = append(stay, it)
			continue
		}
		w.laneLocked(addr, laneHash(it.key)).pushLocked(it)
	}
	l.requeueLocked(stay)
	return nil
}

// connect returns the lane's connection, dialling one (after a backoff
// when the previous dials failed) that answers PING without LOADING.
func (l *writerLane) connect(failures int) (drivers.ValkeyConn, error) {
	l.connMu.Lock()
	conn := l.conn
	l.connMu.Unlock()
	if conn != nil {
		return conn, nil
	}
	w := l.w
	if failures > 0 {
		t := time.NewTimer(w.back.Delay(failures - 1))
		select {
		case <-t.C:
		case <-w.stopCh:
			t.Stop()
			return nil, ErrClosed
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.e.cfg.DialTimeout)
	defer cancel()
	go func() { // stop ends a dial in progress
		select {
		case <-w.stopCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	addr := l.addr
	if w.e.sn != nil {
		addr = w.e.sn.primary() // the primary may have changed since
	}
	conn, err := w.e.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	if err := conn.Do(ctx, conn.B().Ping().Build()).Error(); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("vactor: batch writer: connect to %s: %w", addr, mapError(err))
	}
	l.connMu.Lock()
	if w.isStopped() { // stop already closed the lane's connection
		l.connMu.Unlock()
		_ = conn.Close()
		return nil, ErrClosed
	}
	l.conn = conn
	l.connMu.Unlock()
	w.mu.Lock()
	w.reconnect++
	w.mu.Unlock()
	return conn, nil
}

func (w *BatchWriter) isStopped() bool {
	select {
	case <-w.stopCh:
		return true
	default:
		return false
	}
}

func (l *writerLane) closeConn() {
	l.connMu.Lock()
	c := l.conn
	l.conn = nil
	l.connMu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// shortResult stands for a reply the driver did not return.
var shortResult = valkey.NewErrorResult(actors.ErrShortReply)

// settle sorts a sent batch's results: acknowledged, failed, sent again
// (on this lane, or on the lane of a MOVED or ASK target). It reports whether
// the connection broke.
func (w *BatchWriter) settle(l *writerLane, batch []writerItem, results []valkey.ValkeyResult) (broken bool) {
	var failed []writerItem
	var errs []error
	var again []writerItem            // this lane, front
	var moved map[string][]writerItem // MOVED or ASK target -> commands
	acked := 0
	stopping := w.isStopped()
	ok := l.ok[:0]
	for range batch {
		ok = append(ok, false)
	}
	l.ok = ok
	for i := range batch {
		it := &batch[i] // modified in place: the batch is recycled after
		r := &shortResult
		if i < len(results) {
			r = &results[i]
		}
		err := r.NonValkeyError()
		if err != nil { // transport: the connection is gone
			broken = true
			notSent := policies.NotSent(err)
			if (notSent || w.opts.Idempotent) && int(it.tries) < w.opts.MaxRetries && !stopping {
				it.tries++
				again = append(again, *it)
				continue
			}
			if !notSent {
				err = &policies.OutcomeUnknownError{Cause: err}
			}
			failed, errs = append(failed, *it), append(errs, err)
			continue
		}
		err = r.Error()
		if err == nil || valkey.IsValkeyNil(err) {
			ok[i] = true
			acked++
			continue
		}
		var ve *valkey.ValkeyError
		if errors.As(err, &ve) && int(it.tries) < w.opts.MaxRetries && !stopping {
			if addr, ok := ve.IsMoved(); ok && w.e.cl != nil {
				w.e.cl.Moved(it.slot, addr)
				it.tries++
				if moved == nil {
					moved = map[string][]writerItem{}
				}
				moved[addr] = append(moved[addr], *it)
				continue
			}
			if addr, ok := ve.IsAsk(); ok && w.e.cl != nil {
				it.tries++
				it.flags |= asking
				if moved == nil {
					moved = map[string][]writerItem{}
				}
				moved[addr] = append(moved[addr], *it)
				continue
			}
			if ve.IsLoading() || ve.IsTryAgain() || ve.IsClusterDown() || policies.IsRetryable(err) {
				it.tries++
				again = append(again, *it)
				continue
			}
		}
		failed, errs = append(failed, *it), append(errs, replyError(r, err))
	}
	if len(again) > 0 && !broken {
		// A passing refusal: give the server a moment.
		t := time.NewTimer(w.back.Delay(int(again[0].tries) - 1))
		select {
		case <-t.C:
		case <-w.stopCh:
			t.Stop()
		}
	}
	w.finish(batch, failed, errs, nil)
	w.mu.Lock()
	w.batches++
	w.acked += uint64(acked)
	for i := range batch {
		if ok[i] {
			w.doneLocked(batch[i].gen)
		}
	}
	late := w.resendLocked(l, again, moved)
	w.roomLocked()
	w.mu.Unlock()
	w.recycle(batch)
	w.finish(late, nil, nil, ErrClosed)
	return broken
}

// resendLocked queues again at the front of l and each moved command on
// its target's lane; once the writer stops it returns them instead, to be
// failed.
func (w *BatchWriter) resendLocked(l *writerLane, again []writerItem, moved map[string][]writerItem) (late []writerItem) {
	if w.stopping {
		late = append(late, again...)
		for _, items := range moved {
			late = append(late, items...)
		}
		return late
	}
	w.retries += uint64(len(again))
	for addr, items := range moved {
		w.retries += uint64(len(items))
		w.redirects += uint64(len(items))
		for _, it := range items {
			w.laneLocked(addr, laneHash(it.key)).pushLocked(it)
		}
	}
	l.requeueLocked(again)
	return nil
}

// finish reports failed[i] with errs[i] (or every item of all with err)
// through OnError, then counts them as done.
func (w *BatchWriter) finish(all []writerItem, failed []writerItem, errs []error, err error) {
	if all != nil && err != nil {
		failed = all
		errs = nil
	}
	if len(failed) == 0 {
		return
	}
	// Reported before counted: a Flush that returns saw the callbacks.
	if w.opts.OnError != nil {
		for i := range failed {
			e := err
			if errs != nil {
				e = errs[i]
			}
			w.opts.OnError(failed[i].argv(), e)
		}
	}
	w.mu.Lock()
	w.failed += uint64(len(failed))
	for _, it := range failed {
		w.doneLocked(it.gen)
	}
	w.roomLocked()
	w.mu.Unlock()
	if err != nil {
		w.recycle(all)
	}
}

// doneLocked counts one command of generation gen as done.
func (w *BatchWriter) doneLocked(gen uint64) {
	if gen == w.gen {
		w.genCount--
		return
	}
	n := w.older[gen] - 1
	if n > 0 {
		w.older[gen] = n
		return
	}
	delete(w.older, gen)
	close(w.flushed)
	w.flushed = make(chan struct{})
}

// roomLocked wakes the Writes waiting for room once there is some.
func (w *BatchWriter) roomLocked() {
	if w.waiting > 0 && w.pendingLocked() < uint64(w.opts.MaxPending) {
		close(w.room)
		w.room = make(chan struct{})
		w.waiting = 0
	}
}

// recycle keeps a sent chunk's storage for the queues.
func (w *BatchWriter) recycle(chunk []writerItem) {
	if cap(chunk) != w.opts.BatchSize {
		return
	}
	clear(chunk)
	w.mu.Lock()
	if len(w.free) < 64 {
		w.free = append(w.free, chunk[:0])
	}
	w.mu.Unlock()
}

// Flush waits until every command written before it was called is
// acknowledged or failed (its OnError callback returned), or until ctx
// ends (then it returns ctx.Err()). Commands written meanwhile do not
// delay it. Safe for concurrent use; it does not stop the writer.
func (w *BatchWriter) Flush(ctx context.Context) error {
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
// Close returns. Calling Close again returns ErrClosed.
func (w *BatchWriter) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	w.closed = true
	close(w.room) // waiting Writes see closed
	w.room = make(chan struct{})
	w.waiting = 0
	w.mu.Unlock()
	err := w.Flush(ctx)
	w.stop(ErrClosed)
	w.e.untrack(w)
	return err
}

// stop implements service: queued commands are reported failed with err,
// in-flight pipelines get DrainTimeout to finish, then the connections are
// closed; it returns once the lanes' goroutines ended.
func (w *BatchWriter) stop(err error) {
	w.stopOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.stopping = true
		close(w.room)
		w.room = make(chan struct{})
		w.waiting = 0
		var lanes []*writerLane
		var queued [][]writerItem
		for _, n := range w.nodes {
			for _, l := range n.lanes {
				lanes = append(lanes, l)
				queued = append(queued, l.queue...)
				l.queue = nil
				l.cond.Signal()
			}
		}
		w.mu.Unlock()
		close(w.stopCh)
		for _, c := range queued {
			w.finish(c, nil, nil, err)
		}
		done := make(chan struct{})
		go func() { w.wg.Wait(); close(done) }()
		t := time.NewTimer(w.e.cfg.DrainTimeout)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			for _, l := range lanes {
				l.closeConn() // fails the pipelines still in flight
			}
			<-done
		}
	})
}

// BatchWriterStats is a snapshot of a BatchWriter's counters.
type BatchWriterStats struct {
	// Written counts commands queued by Write and the helpers (not those
	// they rejected). Acknowledged counts those the server answered
	// without an error (a nil reply is not an error); Failed those
	// reported through OnError. Pending = Written - Acknowledged - Failed.
	Written, Acknowledged, Failed uint64
	Pending                       uint64
	// Retries counts commands sent again, Redirects those of them sent to
	// another node after MOVED or ASK (cluster mode); Rejected the Writes
	// that failed with ErrBackpressure; Batches the pipelines sent;
	// Connects the connections opened.
	Retries, Redirects, Rejected, Batches, Connects uint64
	// Elapsed is the time since the first Write; Rate the acknowledged
	// commands per second over it. RecentRate is the rate since the
	// previous call of Stats (or the first Write).
	Elapsed          time.Duration
	Rate, RecentRate float64
}

// Stats returns a snapshot of the writer's counters. Safe for concurrent
// use.
func (w *BatchWriter) Stats() BatchWriterStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := BatchWriterStats{
		Written: w.written, Acknowledged: w.acked, Failed: w.failed, Pending: w.pendingLocked(),
		Retries: w.retries, Redirects: w.redirects, Rejected: w.rejected, Batches: w.batches, Connects: w.reconnect,
	}
	if w.written == 0 {
		return s
	}
	now := time.Now()
	s.Elapsed = now.Sub(w.start)
	if sec := s.Elapsed.Seconds(); sec > 0 {
		s.Rate = float64(w.acked) / sec
	}
	if sec := now.Sub(w.lastAt).Seconds(); sec > 0 {
		s.RecentRate = float64(w.acked-w.lastAcked) / sec
	}
	w.lastAt, w.lastAcked = now, w.acked
	return s
}

// String formats the main counters on one line, for logs.
func (s BatchWriterStats) String() string {
	return "written=" + strconv.FormatUint(s.Written, 10) +
		" acked=" + strconv.FormatUint(s.Acknowledged, 10) +
		" failed=" + strconv.FormatUint(s.Failed, 10) +
		" pending=" + strconv.FormatUint(s.Pending, 10) +
		" rate=" + strconv.FormatFloat(s.Rate, 'f', 0, 64) + "/s"
}
