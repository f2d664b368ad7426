// Package hookbus delivers the engine's events to the hooks of
// config.Config.Hooks (package hooks): PreExecution on the caller's
// goroutine, everything else through a bounded queue drained by one
// goroutine per engine, so that no engine goroutine (a connection actor
// above all) ever waits for a hook.
package hookbus

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/internal/goid"
)

// DefaultCapacity is the number of events the queue holds before it drops
// new ones.
const DefaultCapacity = 1 << 16

// base is the origin of Now: one reading of the clock, wall and monotonic.
var base = time.Now()

// Now returns the monotonic time since the process's base: cheaper than
// time.Now (one clock reading, not two), for the hooks' timestamps.
func Now() time.Duration { return time.Since(base) }

// Time turns a Now reading into a wall-clock time.
func Time(d time.Duration) time.Time { return base.Add(d) }

// entry is a hook of one kind and its position in the list given to
// NewOwn (for the log-once-per-hook rule and a panic's report).
type entry[T any] struct {
	h T
	i int
}

// Bus holds the hooks sorted by kind and the queue to the hook goroutine.
// A nil *Bus has no hooks: every method is safe to call on it and the
// Wants methods report false. Safe for concurrent use.
type Bus struct {
	pre      []entry[hooks.PreExecution]
	post     []entry[hooks.PostExecution]
	preConn  []entry[hooks.PreConnection]
	postConn []entry[hooks.PostConnection]
	lost     []entry[hooks.ConnectionLost]
	restart  []entry[hooks.ActorRestarted]
	written  []entry[hooks.PipelineWritten]
	answered []entry[hooks.PipelineAnswered]
	full     []entry[hooks.MailboxFull]
	breaker  []entry[hooks.BreakerChanged]
	retry    []entry[hooks.RetryScheduled]
	redirect []entry[hooks.Redirected]
	slotMap  []entry[hooks.SlotMapLoaded]
	sentinel []entry[hooks.SentinelSwitched]
	sub      []entry[hooks.SubscriberEvents]
	consumer []entry[hooks.ConsumerEvents]

	// Flags read on hot paths, set once by New.
	commands  bool // PreExecution or PostExecution
	pipelines bool // PipelineWritten or PipelineAnswered
	async     bool // anything delivered through the queue

	log      *slog.Logger
	db       int           // SetDB's
	own      int           // the hooks before this index are the engine's own (NewOwn)
	panicked []atomic.Bool // per hook given to NewOwn: its first panic was logged
	seq      atomic.Uint64 // pipeline sequence numbers

	events, dropped, panics atomic.Uint64
	holds                   atomic.Int32 // Hold sections under way: pushes do not wake
	abandoned               atomic.Bool  // Close gave up waiting, or ran on the hook goroutine: deliver nothing more
	runner                  atomic.Int64 // the hook goroutine's id (0 until it runs)

	// The reports of dropped events (MsgDropped), made on a timer of
	// their own so that a hook stuck for good does not hide them: armed
	// by the first drop after a report, at most one a second.
	dropArmed atomic.Bool // a report is scheduled (or the bus closed)
	repMu     sync.Mutex
	repTimer  *time.Timer
	reported  uint64    // dropped at the last report
	lastRep   time.Time // when it was made
	repClosed bool      // Close made the last report

	mu      sync.Mutex
	buf     []item
	max     int
	state   []item // lifecycle events that found buf full (see push)
	idle    bool   // the hook goroutine waits on wake
	closed  bool
	wake    chan struct{}
	done    chan struct{}
	started bool
}

// lifecycle reports whether ev changes a state that observers keep from
// the events, so that losing it would leave them wrong for good rather
// than short of a count: a stream consumer's Stopped (its lag series
// ends), Interrupted and Resumed, a breaker's change, a connection actor's connection lost, dialled
// or restarted, a subscriber connection's Disconnected, Refused (a
// refusal that a log or an alert shows until the Resubscribed) and
// Resubscribed, a slot map loaded, a sentinel switch. Per-command and per-pipeline
// events, counts (retries, redirects, full mailboxes, acks, dropped
// messages), the consumer's Lag (the next round's replaces it) and the
// dials of dedicated connections (one per transaction or blocking call
// while a node refuses connections) are not: they may be dropped.
func lifecycle(ev any) bool {
	switch ev := ev.(type) {
	case hooks.Consumer:
		return ev.Kind == hooks.Stopped || ev.Kind == hooks.Interrupted || ev.Kind == hooks.Resumed
	case hooks.Subscriber:
		return ev.Kind == hooks.Disconnected || ev.Kind == hooks.Refused || ev.Kind == hooks.Resubscribed
	case hooks.Dial:
		return !ev.Dedicated
	case hooks.Dialed:
		return !ev.Dedicated
	case hooks.BreakerChange, hooks.Lost, hooks.Restart, hooks.SlotMap, hooks.SentinelSwitch:
		return true
	}
	return false
}

// kind says which field of an item holds the event.
type kind uint8

const (
	kindExecuted kind = iota + 1
	kindOther         // ev holds the event
)

// item is one queued event. Executed events, one per command, are kept
// inline (no allocation), built by the goroutine that completed the
// command: an item holds no reference to the command (its request, its
// reply), so that the queue's capacity bounds the memory it holds
// whatever the replies' sizes while the hooks fall behind (a queued
// reference to the request kept every reply behind a slow hook alive:
// review rv44). The rarer events are boxed in ev.
type item struct {
	kind kind
	ctx  context.Context
	exec hooks.Executed
	ev   any
}

// New sorts hs by the interfaces they implement. It returns nil when none
// implements any (no hooks: the engine skips every hook call). log
// receives the bus's own reports (a hook's first panic, dropped events);
// nil discards them. The hook goroutine starts with Start. Every hook of
// hs is taken as configured (config.Config.Hooks): New is
// NewOwn(hs, 0, log, capacity).
func New(hs []hooks.Hook, log *slog.Logger, capacity int) *Bus { return NewOwn(hs, 0, log, capacity) }

// NewOwn is New for a list whose first own hooks are the engine's own
// (the Logging hook over config.Config.Logger) and the rest
// config.Config.Hooks, in order: the report of a hook's first panic
// (MsgPanicked) gives a configured hook's index in Config.Hooks (its index
// in hs less own), as config.Config.Validate names them, rather than its
// index in hs; and one of the engine's own hooks is reported with
// engine=true and no index. The hooks are called in hs's order.
func NewOwn(hs []hooks.Hook, own int, log *slog.Logger, capacity int) *Bus {
	b := &Bus{log: log, own: max(own, 0), max: capacity}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.max <= 0 {
		b.max = DefaultCapacity
	}
	any := false
	for i, h := range hs {
		if h == nil {
			continue
		}
		if x, ok := h.(hooks.PreExecution); ok {
			b.pre = append(b.pre, entry[hooks.PreExecution]{x, i})
		}
		if x, ok := h.(hooks.PostExecution); ok {
			b.post = append(b.post, entry[hooks.PostExecution]{x, i})
		}
		if x, ok := h.(hooks.PreConnection); ok {
			b.preConn = append(b.preConn, entry[hooks.PreConnection]{x, i})
		}
		if x, ok := h.(hooks.PostConnection); ok {
			b.postConn = append(b.postConn, entry[hooks.PostConnection]{x, i})
		}
		if x, ok := h.(hooks.ConnectionLost); ok {
			b.lost = append(b.lost, entry[hooks.ConnectionLost]{x, i})
		}
		if x, ok := h.(hooks.ActorRestarted); ok {
			b.restart = append(b.restart, entry[hooks.ActorRestarted]{x, i})
		}
		if x, ok := h.(hooks.PipelineWritten); ok {
			b.written = append(b.written, entry[hooks.PipelineWritten]{x, i})
		}
		if x, ok := h.(hooks.PipelineAnswered); ok {
			b.answered = append(b.answered, entry[hooks.PipelineAnswered]{x, i})
		}
		if x, ok := h.(hooks.MailboxFull); ok {
			b.full = append(b.full, entry[hooks.MailboxFull]{x, i})
		}
		if x, ok := h.(hooks.BreakerChanged); ok {
			b.breaker = append(b.breaker, entry[hooks.BreakerChanged]{x, i})
		}
		if x, ok := h.(hooks.RetryScheduled); ok {
			b.retry = append(b.retry, entry[hooks.RetryScheduled]{x, i})
		}
		if x, ok := h.(hooks.Redirected); ok {
			b.redirect = append(b.redirect, entry[hooks.Redirected]{x, i})
		}
		if x, ok := h.(hooks.SlotMapLoaded); ok {
			b.slotMap = append(b.slotMap, entry[hooks.SlotMapLoaded]{x, i})
		}
		if x, ok := h.(hooks.SentinelSwitched); ok {
			b.sentinel = append(b.sentinel, entry[hooks.SentinelSwitched]{x, i})
		}
		if x, ok := h.(hooks.SubscriberEvents); ok {
			b.sub = append(b.sub, entry[hooks.SubscriberEvents]{x, i})
		}
		if x, ok := h.(hooks.ConsumerEvents); ok {
			b.consumer = append(b.consumer, entry[hooks.ConsumerEvents]{x, i})
		}
		any = any || hooks.Implements(h)
	}
	if !any {
		return nil
	}
	b.panicked = make([]atomic.Bool, len(hs))
	b.commands = len(b.pre) > 0 || len(b.post) > 0
	b.pipelines = len(b.written) > 0 || len(b.answered) > 0
	b.async = len(b.post)+len(b.preConn)+len(b.postConn)+len(b.lost)+len(b.restart)+len(b.written)+
		len(b.answered)+len(b.full)+len(b.breaker)+len(b.retry)+len(b.redirect)+len(b.slotMap)+
		len(b.sentinel)+len(b.sub)+len(b.consumer) > 0
	b.wake = make(chan struct{}, 1)
	b.done = make(chan struct{})
	return b
}

// Start starts the hook goroutine (when some hook needs it). Close stops it.
func (b *Bus) Start() {
	if b == nil || !b.async {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.started {
		return
	}
	b.started = true
	go b.run()
}

// Close delivers the events queued so far, then stops the hook goroutine
// and drops later events. It waits for the hook goroutine for up to wait:
// when a hook has not returned by then (it blocks on a dead exporter, it
// never returns), Close reports false and gives up on it: the events not
// yet delivered are dropped (counted in Stats.Dropped) and the hook
// goroutine ends when that hook returns, if ever. Idempotent; a later
// call waits the same way. The events still queued when it gives up
// are counted in Stats.Dropped before it returns. It logs the drops not
// reported yet (MsgDropped) before it returns; none is reported
// afterwards. Close is CloseFrom with an unknown caller: called from a
// hook it waits for itself (see CloseFrom).
func (b *Bus) Close(wait time.Duration) (finished bool) { return b.CloseFrom(wait, 0) }

// CloseFrom is Close called by the goroutine whose id (internal/goid) is
// caller (0: unknown, as Close). When that is the hook goroutine (a hook
// closes the engine), it does not wait for itself: it closes the bus and
// returns true at once, and the hook goroutine delivers nothing after the
// event in hand: that event still reaches the hooks after the calling one
// (in the configured order), nothing queued behind it reaches any, and
// the goroutine ends once the hooks of that event have returned. The
// events not delivered are counted in Stats.Dropped but not logged
// (MsgDropped says that the hooks fall behind: they did not).
func (b *Bus) CloseFrom(wait time.Duration, caller int64) (finished bool) {
	if b == nil {
		return true
	}
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		if !b.started {
			close(b.done)
		} else if b.idle {
			b.idle = false
			b.signal()
		}
	}
	b.mu.Unlock()
	defer b.finalReport()
	select {
	case <-b.done:
		return true
	default:
	}
	if b.Runs(caller) {
		b.stopFromHook()
		return true
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-b.done:
		return true
	case <-t.C:
		b.abandon()
		return false
	}
}

// Runs reports whether g (a goroutine id, internal/goid) is the hook
// goroutine: whether a hook is the caller. False for 0 and for a nil Bus
// or one whose hook goroutine has not started.
func (b *Bus) Runs(g int64) bool { return b != nil && g != 0 && b.runner.Load() == g }

// stopFromHook is CloseFrom's stop on the hook goroutine: deliver nothing
// after the event in hand, the events still queued counted as dropped
// and as reported (no MsgDropped for them). Those of the batch in hand
// are counted when the hook returns (only the hook goroutine knows how
// far it got), after the final report: not logged either.
func (b *Bus) stopFromHook() {
	b.repMu.Lock()
	b.mu.Lock()
	b.abandoned.Store(true)
	n := uint64(len(b.buf) + len(b.state))
	clear(b.buf)
	b.buf = b.buf[:0]
	clear(b.state)
	b.state = b.state[:0]
	b.mu.Unlock()
	b.dropped.Add(n)
	b.reported += n
	b.repMu.Unlock()
}

// abandon gives up on the hook goroutine: it delivers nothing more, and
// the events still queued (lifecycle events included) are dropped and
// counted now, so that Stats.Dropped holds them when Close returns rather
// than when the stuck hook returns, if ever. (Those of the batch the
// hook goroutine is delivering are counted when the hook returns: only
// that goroutine knows how far it got.)
func (b *Bus) abandon() {
	b.mu.Lock()
	b.abandoned.Store(true)
	n := len(b.buf) + len(b.state)
	clear(b.buf)
	b.buf = b.buf[:0]
	clear(b.state)
	b.state = b.state[:0]
	b.mu.Unlock()
	b.dropped.Add(uint64(n))
}

// signal wakes the hook goroutine (the wake channel holds one token).
func (b *Bus) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Stats are the bus's counters.
type Stats struct {
	// Events counts the events handed to the hooks: the hook goroutine
	// counts a batch when it takes it from the queue (one atomic add per
	// batch, not per event), and when it then stops before the end of the
	// batch (Close gave up on a stuck hook, or a hook closed the bus), it
	// moves the events it did not deliver from Events to Dropped. Dropped
	// counts the events that found the queue full or closed, and those
	// that Close or a stop from a hook left undelivered. Each event queued
	// is counted once, in Events or in Dropped (once the hook goroutine has
	// finished the batch in hand). Panics counts the hook calls that
	// panicked.
	Events, Dropped, Panics uint64
}

// Stats returns the counters (zero for a nil Bus).
func (b *Bus) Stats() Stats {
	if b == nil {
		return Stats{}
	}
	return Stats{Events: b.events.Load(), Dropped: b.dropped.Load(), Panics: b.panics.Load()}
}

// WantsCommands reports whether a PreExecution or PostExecution hook is
// registered.
func (b *Bus) WantsCommands() bool { return b != nil && b.commands }

// WantsPre reports whether a PreExecution hook is registered.
func (b *Bus) WantsPre() bool { return b != nil && len(b.pre) > 0 }

// WantsPost reports whether a PostExecution hook is registered.
func (b *Bus) WantsPost() bool { return b != nil && len(b.post) > 0 }

// WantsPipelines reports whether a PipelineWritten or PipelineAnswered
// hook is registered.
func (b *Bus) WantsPipelines() bool { return b != nil && b.pipelines }

// WantsWritten reports whether a PipelineWritten hook is registered.
func (b *Bus) WantsWritten() bool { return b != nil && len(b.written) > 0 }

// WantsDials reports whether a PreConnection or PostConnection hook is
// registered.
func (b *Bus) WantsDials() bool { return b != nil && len(b.preConn)+len(b.postConn) > 0 }

// WantsMailboxFull reports whether a MailboxFull hook is registered.
func (b *Bus) WantsMailboxFull() bool { return b != nil && len(b.full) > 0 }

// WantsRedirects reports whether a Redirected hook is registered.
func (b *Bus) WantsRedirects() bool { return b != nil && len(b.redirect) > 0 }

// WantsSlotMaps reports whether a SlotMapLoaded hook is registered.
func (b *Bus) WantsSlotMaps() bool { return b != nil && len(b.slotMap) > 0 }

// WantsSubscriber reports whether a SubscriberEvents hook is registered.
func (b *Bus) WantsSubscriber() bool { return b != nil && len(b.sub) > 0 }

// WantsConsumer reports whether a ConsumerEvents hook is registered.
func (b *Bus) WantsConsumer() bool { return b != nil && len(b.consumer) > 0 }

// NextPipeline returns the next pipeline sequence number (from 1).
func (b *Bus) NextPipeline() uint64 {
	if b == nil {
		return 0
	}
	return b.seq.Add(1)
}

// Fire runs the PreExecution hooks on the calling goroutine and returns
// the context the command goes on with. A hook that panics leaves the
// context as it was.
func (b *Bus) Fire(ctx context.Context, cmd hooks.Command) context.Context {
	if b == nil {
		return ctx
	}
	for _, e := range b.pre {
		ctx = b.pre1(e, ctx, cmd)
	}
	return ctx
}

func (b *Bus) pre1(e entry[hooks.PreExecution], ctx context.Context, cmd hooks.Command) (out context.Context) {
	out = ctx
	defer func() {
		if r := recover(); r != nil {
			out = ctx
			b.recovered(e.i, e.h, "PreExecution", r)
		}
	}()
	if c := e.h.PreExecution(ctx, cmd); c != nil {
		out = c
	}
	return out
}

// Executed queues a PostExecution event.
func (b *Bus) Executed(ctx context.Context, ev hooks.Executed) {
	if b == nil || len(b.post) == 0 {
		return
	}
	b.push(item{kind: kindExecuted, ctx: ctx, exec: ev})
}

// SetDB sets the database index that DB reports (the engine's
// Config.DB), for the PostExecution events of its commands, whose
// observation keeps no DB of its own. Call it before Start.
func (b *Bus) SetDB(db int) {
	if b != nil {
		b.db = db
	}
}

// DB returns the index given to SetDB (0 on a nil Bus).
func (b *Bus) DB() int {
	if b == nil {
		return 0
	}
	return b.db
}

// Emit queues an event of one of the hooks package's types (other than
// Command and Executed) for the hooks that implement its interface;
// nothing when none does.
func (b *Bus) Emit(ev any) {
	if b == nil || !b.wants(ev) {
		return
	}
	b.push(item{kind: kindOther, ev: ev})
}

// wants reports whether a hook takes ev.
func (b *Bus) wants(ev any) bool {
	switch ev.(type) {
	case hooks.Dial:
		return len(b.preConn) > 0
	case hooks.Dialed:
		return len(b.postConn) > 0
	case hooks.Lost:
		return len(b.lost) > 0
	case hooks.Restart:
		return len(b.restart) > 0
	case written:
		return len(b.written) > 0
	case hooks.Pipeline:
		return len(b.answered) > 0
	case hooks.Backpressure:
		return len(b.full) > 0
	case hooks.BreakerChange:
		return len(b.breaker) > 0
	case hooks.Retry:
		return len(b.retry) > 0
	case hooks.Redirect:
		return len(b.redirect) > 0
	case hooks.SlotMap:
		return len(b.slotMap) > 0
	case hooks.SentinelSwitch:
		return len(b.sentinel) > 0
	case hooks.Subscriber:
		return len(b.sub) > 0
	case hooks.Consumer:
		return len(b.consumer) > 0
	}
	return false
}

// written marks a Pipeline event as PipelineWritten's (a plain
// hooks.Pipeline is PipelineAnswered's).
type written hooks.Pipeline

// Written queues a PipelineWritten event.
func (b *Bus) Written(ev hooks.Pipeline) { b.Emit(written(ev)) }

// Answered queues a PipelineAnswered event.
func (b *Bus) Answered(ev hooks.Pipeline) { b.Emit(ev) }

// push queues it, or drops it when the queue is full or closed. It never
// blocks beyond the queue's mutex (and, for the first drop after a report
// of drops, the mutex of the reports, to start their timer).
//
// A lifecycle event (see lifecycle) that finds the queue full is not
// dropped: it waits in b.state, a second queue of the same capacity that
// only such events use, and the hook goroutine delivers it after the
// events of the full queue, which all happened before it (buf only
// empties when the hook goroutine takes it, b.state with it). So an
// observer that keeps state from these events (a consumer's lag series,
// a breaker's state, a connection that is down) never misses the event
// that ends or changes it, however far the hooks fall behind. The engine
// makes these events at a bounded rate (once per consumer, per reconnect
// or breaker transition after a backoff, ...), so b.state stays small;
// its bound only matters while a hook never returns, and then drops
// them like the rest. The check costs nothing while the queue has room.
func (b *Bus) push(it item) {
	b.mu.Lock()
	if b.closed || !b.started {
		b.mu.Unlock()
		return
	}
	if len(b.buf) < b.max {
		b.buf = append(b.buf, it)
	} else if len(b.state) < b.max && it.kind == kindOther && lifecycle(it.ev) {
		b.state = append(b.state, it)
	} else {
		b.mu.Unlock()
		b.drop()
		return
	}
	wake := b.idle && b.holds.Load() == 0
	if wake {
		b.idle = false
	}
	b.mu.Unlock()
	if wake {
		b.signal()
	}
}

// drop counts an event dropped because the queue is full and, unless one
// is scheduled, schedules a report of the drops (the cost of a drop, not
// of a push).
func (b *Bus) drop() {
	b.dropped.Add(1)
	if !b.dropArmed.Load() && b.dropArmed.CompareAndSwap(false, true) {
		b.scheduleReport()
	}
}

// scheduleReport has reportDrops run a second after the last report (at
// once when there was none for a second), on a timer: neither the
// goroutine that dropped an event (a connection actor) nor the hook
// goroutine (stuck in a hook, perhaps) writes the log line.
func (b *Bus) scheduleReport() {
	b.repMu.Lock()
	defer b.repMu.Unlock()
	if b.repClosed {
		return
	}
	b.repTimer = time.AfterFunc(max(time.Until(b.lastRep.Add(dropReportEvery)), 0), b.reportDrops)
}

// dropReportEvery is the shortest time between two reports of dropped
// events.
const dropReportEvery = time.Second

// reportDrops logs MsgDropped with the events dropped since the last
// report. The next drop schedules the next report.
func (b *Bus) reportDrops() {
	b.repMu.Lock()
	if b.repClosed {
		b.repMu.Unlock()
		return
	}
	b.dropArmed.Store(false) // before the count: a later drop schedules a report
	n, total := b.takeDropsLocked()
	b.repMu.Unlock()
	b.logDrops(n, total)
}

// takeDropsLocked returns the events dropped since the last report and
// their total, and makes them reported.
func (b *Bus) takeDropsLocked() (n, total uint64) {
	total = b.dropped.Load()
	n = total - b.reported
	if n > 0 {
		b.reported, b.lastRep = total, time.Now()
	}
	return n, total
}

func (b *Bus) logDrops(n, total uint64) {
	if n > 0 {
		b.log.Warn(MsgDropped, "dropped", n, "total", total)
	}
}

// finalReport stops the report timer and logs the drops not reported yet:
// Close's report. No report is scheduled afterwards.
func (b *Bus) finalReport() {
	b.repMu.Lock()
	b.repClosed = true
	if b.repTimer != nil {
		b.repTimer.Stop()
	}
	n, total := b.takeDropsLocked()
	b.repMu.Unlock()
	b.logDrops(n, total)
}

// Hold makes the events pushed until the matching Release wake the hook
// goroutine once, at Release, rather than at the first of them: a
// connection actor holds while it completes a pipeline's commands, so
// that the hook goroutine takes the pipeline's events in one go instead
// of waking and sleeping between them. Holds may overlap.
func (b *Bus) Hold() {
	if b != nil {
		b.holds.Add(1)
	}
}

// Release ends a Hold.
func (b *Bus) Release() {
	if b == nil || b.holds.Add(-1) != 0 {
		return
	}
	b.mu.Lock()
	wake := b.idle && len(b.buf) > 0
	if wake {
		b.idle = false
	}
	b.mu.Unlock()
	if wake {
		b.signal()
	}
}

// run is the hook goroutine: it takes the queued events in one piece and
// delivers them in order, until Close.
func (b *Bus) run() {
	defer close(b.done)
	b.runner.Store(goid.Get()) // for CloseFrom: once per bus, about 2 µs
	var spare []item
	for {
		b.mu.Lock()
		for len(b.buf) == 0 && len(b.state) == 0 {
			if b.closed {
				b.mu.Unlock()
				return
			}
			b.idle = true
			b.mu.Unlock()
			<-b.wake
			b.mu.Lock()
		}
		batch := b.buf
		b.buf = spare[:0]
		if len(b.state) > 0 {
			// They came after every event of batch: buf was full when
			// each was pushed, and only this swap empties it.
			batch = append(batch, b.state...)
			clear(b.state)
			b.state = b.state[:0]
		}
		b.mu.Unlock()
		if b.abandoned.Load() {
			b.dropped.Add(uint64(len(batch)))
			clear(batch)
			continue
		}
		b.events.Add(uint64(len(batch)))
		b.deliverAll(batch)
		clear(batch)
		spare = batch[:0]
	}
}

// Messages the bus logs itself.
const (
	MsgDropped  = "vactor: hook events dropped: the hooks fall behind"
	MsgPanicked = "vactor: hook panicked"
)

// cursor is where deliverAll is: the item and, within it, the next hook
// to call, with the one being called (for a panic's report). Only the hook
// goroutine touches it.
type cursor struct {
	item, next int
	hook       int // configured index of the hook being called
	h          any
	method     string
}

// deliverAll calls the hooks for every item of batch, in order. A panic
// is recovered once per batch rather than once per call (a deferred
// recover per call costs more than some hooks): after one, delivery goes
// on with the hook after the one that panicked.
func (b *Bus) deliverAll(batch []item) {
	var c cursor
	for !b.deliverFrom(batch, &c) {
		c.next++ // skip the hook that panicked
	}
}

// deliverFrom delivers from c on; it returns false after a panic (c then
// names the hook that panicked).
func (b *Bus) deliverFrom(batch []item, c *cursor) (done bool) {
	defer func() {
		if !done {
			b.recovered(c.hook, c.h, c.method, recover())
		}
	}()
	for ; c.item < len(batch); c.item, c.next = c.item+1, 0 {
		if c.next == 0 && b.abandoned.Load() {
			// run counted the whole batch in Events when it took it: the
			// rest, not delivered, moves to Dropped (Events first, so
			// that Events+Dropped never exceeds the events queued).
			n := uint64(len(batch) - c.item)
			b.events.Add(^(n - 1)) // -n
			b.dropped.Add(n)
			return true
		}
		b.deliver(&batch[c.item], c)
	}
	return true
}

// deliver calls the hooks that take it, from c.next on.
func (b *Bus) deliver(it *item, c *cursor) {
	if it.kind == kindExecuted {
		for ; c.next < len(b.post); c.next++ {
			e := b.post[c.next]
			c.hook, c.h, c.method = e.i, e.h, "PostExecution"
			e.h.PostExecution(it.ctx, it.exec)
		}
		return
	}
	switch ev := it.ev.(type) {
	case hooks.Dial:
		each(c, b.preConn, "PreConnection", ev, hooks.PreConnection.PreConnection)
	case hooks.Dialed:
		each(c, b.postConn, "PostConnection", ev, hooks.PostConnection.PostConnection)
	case hooks.Lost:
		each(c, b.lost, "OnConnectionLost", ev, hooks.ConnectionLost.OnConnectionLost)
	case hooks.Restart:
		each(c, b.restart, "OnActorRestarted", ev, hooks.ActorRestarted.OnActorRestarted)
	case written:
		each(c, b.written, "OnPipelineWritten", hooks.Pipeline(ev), hooks.PipelineWritten.OnPipelineWritten)
	case hooks.Pipeline:
		each(c, b.answered, "OnPipelineAnswered", ev, hooks.PipelineAnswered.OnPipelineAnswered)
	case hooks.Backpressure:
		each(c, b.full, "OnMailboxFull", ev, hooks.MailboxFull.OnMailboxFull)
	case hooks.BreakerChange:
		each(c, b.breaker, "OnBreakerChanged", ev, hooks.BreakerChanged.OnBreakerChanged)
	case hooks.Retry:
		each(c, b.retry, "OnRetryScheduled", ev, hooks.RetryScheduled.OnRetryScheduled)
	case hooks.Redirect:
		each(c, b.redirect, "OnRedirected", ev, hooks.Redirected.OnRedirected)
	case hooks.SlotMap:
		each(c, b.slotMap, "OnSlotMapLoaded", ev, hooks.SlotMapLoaded.OnSlotMapLoaded)
	case hooks.SentinelSwitch:
		each(c, b.sentinel, "OnSentinelSwitched", ev, hooks.SentinelSwitched.OnSentinelSwitched)
	case hooks.Subscriber:
		each(c, b.sub, "OnSubscriberEvent", ev, hooks.SubscriberEvents.OnSubscriberEvent)
	case hooks.Consumer:
		each(c, b.consumer, "OnConsumerEvent", ev, hooks.ConsumerEvents.OnConsumerEvent)
	}
}

// each calls method on es's hooks from c.next on, with ev.
func each[H, E any](c *cursor, es []entry[H], name string, ev E, method func(H, E)) {
	for ; c.next < len(es); c.next++ {
		e := es[c.next]
		c.hook, c.h, c.method = e.i, e.h, name
		method(e.h, ev)
	}
}

// recovered counts a hook's panic and logs the first one of each hook,
// i its index in the list given to NewOwn: a configured hook's line has
// its index in config.Config.Hooks, one of the engine's own (the Logging
// hook over Config.Logger) engine=true instead. (A hook that panics with
// nil is reported as panicking with nil.)
func (b *Bus) recovered(i int, h any, method string, r any) {
	b.panics.Add(1)
	if !b.panicked[i].CompareAndSwap(false, true) {
		return
	}
	where := slog.Int("index", i-b.own)
	if i < b.own {
		where = slog.Bool("engine", true)
	}
	// The engine's own hook panics when Config.Logger's handler does, and
	// b.log is that handler too: a panic while reporting the panic would
	// end the process (it runs in a deferred recovery). It is counted
	// above; the line is lost.
	defer func() { _ = recover() }()
	b.log.Error(MsgPanicked, "hook", fmt.Sprintf("%T", h), where, "method", method,
		"panic", fmt.Sprint(r), "note", "later panics of this hook are counted, not logged")
}
