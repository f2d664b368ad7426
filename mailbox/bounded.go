package mailbox

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Policy says what Bounded does with a command posted while it is full.
type Policy int

const (
	// Block makes the posting goroutine wait until there is room or the
	// command's context ends (the command then fails with ctx.Err()).
	Block Policy = iota
	// Reject fails the command at once with ErrBackpressure.
	Reject
)

func (p Policy) String() string {
	switch p {
	case Block:
		return "block"
	case Reject:
		return "reject"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// Defaults used by New for zero Options fields.
const (
	DefaultCapacity = 65536 // commands queued per mailbox
	DefaultMaxBatch = 1024  // commands per batch
)

// Options configures a Bounded mailbox. Zero fields take the defaults.
type Options struct {
	// Capacity is the number of commands the mailbox holds before Policy
	// applies. Default DefaultCapacity.
	Capacity int
	// Policy applies when the mailbox is full. Default Block.
	Policy Policy
	// MaxBatch caps the number of commands handed to the actor at once.
	// Default DefaultMaxBatch.
	MaxBatch int
	// IdleSpins is how many times the run loop yields, waiting for more
	// work, before it goes idle: worth it for a busy actor (a caller woken
	// by the batch just completed usually posts again within
	// microseconds), wasted on many lightly used ones. It also bounds the
	// yields after a batch that let the callers it woke post before the
	// next batch is drained, while fewer commands are queued than it held
	// and each yield adds some. 0 means
	// DefaultIdleSpins; negative means none.
	IdleSpins int
	// KeepExpired hands commands whose context has ended to the actor
	// like the others instead of failing them at drain, for a forwarding
	// actor that accounts for every command it was given and whose
	// downstream mailbox drops them. Default false.
	KeepExpired bool
	// HoldDrained keeps the commands handed to the actor counted against
	// Capacity until the actor calls Release for them: for a forwarding
	// actor that may keep commands it cannot pass on yet, so that what it
	// holds stays within the bound. Default false: a command stops
	// counting once drained.
	HoldDrained bool
	// OnFull, when set, is called each time commands find the mailbox
	// full: rejected (Reject; n commands failed with ErrBackpressure) or
	// made to wait (Block: a Post, PostAll or Forward of n commands). It
	// runs on the posting goroutine, outside the mailbox's lock, and must
	// not block. Default nil.
	OnFull func(rejected bool, n int)
	// ClaimDelay bounds how long commands queued by PostClaim wait for an
	// awaiting caller to run them (Assist) before the run loop is
	// dispatched as for Post: what a command fired and not awaited at
	// once may wait more than with Post, when the mailbox was idle. It is
	// a Go timer: in a process with nothing else to run the runtime may
	// fire it up to about a millisecond late. Default DefaultClaimDelay.
	ClaimDelay time.Duration
}

// DefaultIdleSpins is the default of Options.IdleSpins.
const DefaultIdleSpins = 32

const (
	idle int32 = iota
	running
	// scheduled: handed to the dispatcher, not begun; Assist may take it.
	scheduled
	// claimed (PostClaim): commands wait for a caller's Assist, a wait
	// that does not assist (Dispatch) or Options.ClaimDelay, whichever comes first.
	claimed
)

// DefaultClaimDelay is the default of Options.ClaimDelay.
const DefaultClaimDelay = 20 * time.Microsecond

// Bounded is a bounded, batching, deadline-aware protoactor mailbox.
// PostUserMessage and PostSystemMessage are safe for concurrent use; the run
// loop is driven by protoactor's dispatcher, one batch at a time.
type Bounded struct {
	capacity int
	maxBatch int
	policy   Policy
	spins    int

	keepExpired bool
	hold        bool
	onFull      func(rejected bool, n int)

	mu       sync.Mutex
	queue    []Message // commands, FIFO
	held     int       // drained commands not yet released (HoldDrained)
	waiters  []*waiter // posters waiting for room, FIFO: admitted in order
	others   []any     // non-command user messages, FIFO
	system   []any     // system messages, FIFO
	closed   bool
	closeErr error
	// failed is closed once the first Close has failed every command it
	// took: a later Close waits for it.
	failed chan struct{}
	// posted counts the commands accepted into the queue (Stats.Posted):
	// a plain counter under mu, which every poster holds anyway, rather
	// than one more contended atomic per command.
	posted uint64

	spare    []Message // the previous batch's slice, reused by the next drain
	batch    Batch
	status   atomic.Int32
	pending  atomic.Int32 // queued commands + others + system, for the idle check
	suspend  atomic.Bool
	paused   atomic.Bool // Pause: commands stay queued, other messages run
	started  atomic.Bool // set by Start, after RegisterHandlers
	invoker  actor.MessageInvoker
	dispatch actor.Dispatcher
	run1     func() // m.process, bound once so scheduling allocates nothing
	// claimTimer dispatches a claimed run loop nobody assisted within
	// ClaimDelay (one per mailbox: one claim at a time).
	claimTimer *time.Timer
	claimDelay time.Duration

	stats counters
}

var _ actor.Mailbox = (*Bounded)(nil)

// New returns a Bounded mailbox. Use it with protoactor as
// actor.WithMailbox(func() actor.Mailbox { return mb }) and keep mb to post
// commands and read Stats.
func New(opts Options) *Bounded {
	if opts.Capacity <= 0 {
		opts.Capacity = DefaultCapacity
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	switch {
	case opts.IdleSpins == 0:
		opts.IdleSpins = DefaultIdleSpins
	case opts.IdleSpins < 0:
		opts.IdleSpins = 0
	}
	m := &Bounded{capacity: opts.Capacity, maxBatch: opts.MaxBatch, policy: opts.Policy, spins: opts.IdleSpins, keepExpired: opts.KeepExpired, hold: opts.HoldDrained, onFull: opts.OnFull}
	m.run1 = m.process
	m.claimDelay = opts.ClaimDelay
	if m.claimDelay <= 0 {
		m.claimDelay = DefaultClaimDelay
	}
	m.claimTimer = time.AfterFunc(time.Hour, m.Dispatch)
	m.claimTimer.Stop()
	return m
}

// waiter is a poster waiting for room: a blocked Post or PostAll, or a
// Forward. Admission moves its messages into the queue in one piece, in
// the order the waiters came.
type waiter struct {
	msgs  []Message
	one   [1]Message    // msgs of a single Post
	ready chan struct{} // blocked posters: closed once admitted or failed
	done  func()        // Forward: called once admitted or failed
	state uint8         // waiting, admitted or refused; guarded by Bounded.mu
}

const (
	waiting uint8 = iota
	admitted
	refused // failed by Close or Purge
)

// fits reports whether n more commands may be queued now: they fit within
// Capacity, or the mailbox is empty (a group larger than Capacity goes in
// alone). Called with mu held.
func (m *Bounded) fits(n int) bool {
	used := len(m.queue) + m.held
	return used+n <= m.capacity || used == 0
}

// Post queues a command and reports whether it did. It never drops a
// command silently: when the command cannot be queued (its context has
// ended, the mailbox is full under Reject, or closed) it is failed at once
// and Post returns false. Under Block it waits for room. Posters waiting
// for room are let in first come, first served: a command does not
// overtake one posted earlier that is still waiting.
func (m *Bounded) Post(msg Message) bool { return m.post(msg, false) }

// PostClaim is Post for a command whose poster is about to await it on
// a context that never ends: when the run loop is idle, it is not
// dispatched (which starts a goroutine and wakes an idle processor's
// thread) but claimed, so that the awaiting caller runs the next batch
// on its own goroutine (Assist), as a synchronous client would. A claim
// nobody assists is dispatched by Dispatch (any other wait) or after
// Options.ClaimDelay. Everything else is as Post.
func (m *Bounded) PostClaim(msg Message) bool { return m.post(msg, true) }

func (m *Bounded) post(msg Message, claim bool) bool {
	ctx := msg.Context()
	if err := ctx.Err(); err != nil {
		m.stats.expired.Add(1)
		msg.Fail(err)
		return false
	}
	m.mu.Lock()
	if m.closed {
		err := m.closeErr
		m.mu.Unlock()
		msg.Fail(err)
		return false
	}
	if len(m.waiters) == 0 && len(m.queue)+m.held < m.capacity {
		m.queue = append(m.queue, msg)
		m.posted++
		m.pending.Add(1)
		m.mu.Unlock()
		if claim {
			m.claim()
		} else {
			m.scheduleCommands()
		}
		return true
	}
	if m.policy == Reject {
		m.mu.Unlock()
		m.stats.rejected.Add(1)
		m.full(true, 1)
		msg.Fail(ErrBackpressure)
		return false
	}
	w := &waiter{ready: make(chan struct{})}
	w.one[0] = msg
	w.msgs = w.one[:]
	m.waiters = append(m.waiters, w)
	m.mu.Unlock()
	m.stats.blocked.Add(1)
	m.full(false, 1)
	return m.await(ctx, w)
}

// PostAll queues msgs contiguously, in order, all or none: no other
// poster's message comes between them, and the Policy applies to the group
// as a whole. Under Block it waits until the whole group fits or ctx ends
// (the group then fails with ctx.Err()); under Reject a group that does
// not fit fails at once with ErrBackpressure. A group larger than Capacity
// fits only into an empty mailbox, which then holds it alone: the queue
// may exceed Capacity by that group, never more. Messages whose own
// context has ended fail at once and the others go on; all fail when the
// mailbox is closed. PostAll reports whether it queued every message. It
// does not keep msgs. A nil ctx waits without bound.
func (m *Bounded) PostAll(ctx context.Context, msgs ...Message) bool {
	if ctx == nil {
		ctx = context.Background()
	}
	live := m.live(msgs)
	if len(live) == 0 {
		return false
	}
	all := len(live) == len(msgs)
	if err := ctx.Err(); err != nil {
		m.failExpired(live, err)
		return false
	}
	m.mu.Lock()
	if m.closed {
		err := m.closeErr
		m.mu.Unlock()
		failEach(live, err)
		return false
	}
	if len(m.waiters) == 0 && m.fits(len(live)) {
		m.enqueueLocked(live)
		m.mu.Unlock()
		m.scheduleCommands()
		return all
	}
	if m.policy == Reject {
		m.mu.Unlock()
		m.stats.rejected.Add(uint64(len(live)))
		m.full(true, len(live))
		failEach(live, ErrBackpressure)
		return false
	}
	w := &waiter{msgs: slices.Clone(live), ready: make(chan struct{})}
	m.waiters = append(m.waiters, w)
	m.mu.Unlock()
	m.stats.blocked.Add(1)
	m.full(false, len(live))
	return m.await(ctx, w) && all
}

// Forward queues msgs contiguously, in order, for an internal forwarder
// (an actor passing on commands it already took in through a mailbox of
// its own) that must neither block nor see its commands rejected. When the
// group fits (see PostAll) it is queued at once; else it waits, outside the
// queue, until it fits, and is let in ahead of anything posted after it
// without blocking the caller. done, when not nil, is called once the
// group is queued or failed (at once, on the caller's goroutine, when it
// fits; later on the goroutine that made room): the forwarder keeps what
// it has forwarded counted in its own bound until then. Messages whose
// context has ended fail at once; all fail when the mailbox is closed.
// Forward does not keep msgs.
func (m *Bounded) Forward(done func(), msgs ...Message) {
	live := m.live(msgs)
	m.mu.Lock()
	switch {
	case m.closed:
		err := m.closeErr
		m.mu.Unlock()
		failEach(live, err)
	case len(live) == 0:
		m.mu.Unlock()
	case len(m.waiters) == 0 && m.fits(len(live)):
		m.enqueueLocked(live)
		m.mu.Unlock()
		m.scheduleCommands()
	default:
		m.waiters = append(m.waiters, &waiter{msgs: slices.Clone(live), done: done})
		m.mu.Unlock()
		m.stats.blocked.Add(1)
		m.full(false, len(live))
		return
	}
	if done != nil {
		done()
	}
}

// full calls OnFull, when set.
func (m *Bounded) full(rejected bool, n int) {
	if m.onFull != nil {
		m.onFull(rejected, n)
	}
}

// live fails the messages of msgs whose context has ended and returns the
// others: msgs itself when none has ended, else a copy.
func (m *Bounded) live(msgs []Message) []Message {
	for i, msg := range msgs {
		if msg.Context().Err() == nil {
			continue
		}
		live := append([]Message(nil), msgs[:i]...)
		for _, msg := range msgs[i:] {
			if err := msg.Context().Err(); err != nil {
				m.stats.expired.Add(1)
				msg.Fail(err)
				continue
			}
			live = append(live, msg)
		}
		return live
	}
	return msgs
}

// CountExpired counts n commands that the actor, having drained them,
// failed before writing them because their context had ended meanwhile:
// Stats.Expired counts every command failed that way, wherever it was.
func (m *Bounded) CountExpired(n int) { m.stats.expired.Add(uint64(n)) }

func (m *Bounded) failExpired(msgs []Message, err error) {
	m.stats.expired.Add(uint64(len(msgs)))
	failEach(msgs, err)
}

func failEach(msgs []Message, err error) {
	for _, msg := range msgs {
		msg.Fail(err)
	}
}

// enqueueLocked appends msgs to the queue. Called with mu held; the caller
// schedules the run loop after unlocking.
func (m *Bounded) enqueueLocked(msgs []Message) {
	m.queue = append(m.queue, msgs...)
	m.pending.Add(int32(len(msgs)))
	m.posted += uint64(len(msgs))
}

// await waits until w is admitted or failed, or until ctx ends; it reports
// whether w's messages were queued.
func (m *Bounded) await(ctx context.Context, w *waiter) bool {
	select {
	case <-w.ready:
		return w.state == admitted
	case <-ctx.Done():
	}
	m.mu.Lock()
	switch w.state {
	case admitted:
		m.mu.Unlock()
		return true // queued after all: dropped at drain if ctx ended
	case refused:
		m.mu.Unlock()
		return false // failed by Close or Purge
	}
	m.waiters = slices.DeleteFunc(m.waiters, func(x *waiter) bool { return x == w })
	ws := m.admitLocked() // w may have held up the ones behind it
	m.mu.Unlock()
	m.wake(ws)
	m.failExpired(w.msgs, ctx.Err())
	return false
}

// admitLocked moves waiters into the queue, in order, while the first one
// fits, and returns them to be woken once mu is released. Called with mu
// held whenever room may have freed up.
func (m *Bounded) admitLocked() []*waiter {
	if len(m.waiters) == 0 || m.closed {
		return nil
	}
	n := 0
	for n < len(m.waiters) && m.fits(len(m.waiters[n].msgs)) {
		w := m.waiters[n]
		m.enqueueLocked(w.msgs)
		w.state = admitted
		n++
	}
	if n == 0 {
		return nil
	}
	ws := slices.Clone(m.waiters[:n])
	k := copy(m.waiters, m.waiters[n:])
	clear(m.waiters[k:])
	m.waiters = m.waiters[:k]
	if k == 0 {
		m.waiters = nil
	}
	return ws
}

// wake tells admitted (or refused) waiters, outside mu, and schedules the
// run loop for what was admitted.
func (m *Bounded) wake(ws []*waiter) {
	if len(ws) == 0 {
		return
	}
	for _, w := range ws {
		if w.ready != nil {
			close(w.ready)
		}
		if w.done != nil {
			w.done()
		}
	}
	m.scheduleCommands()
}

// Release counts n commands handed to the actor as no longer held, with
// HoldDrained: the actor has passed them on or failed them. It lets in
// posters waiting for the room this frees. Safe for concurrent use; without
// HoldDrained it does nothing.
func (m *Bounded) Release(n int) {
	if !m.hold || n <= 0 {
		return
	}
	m.mu.Lock()
	m.held = max(m.held-n, 0)
	ws := m.admitLocked()
	m.mu.Unlock()
	m.wake(ws)
}

// PostUserMessage implements actor.Mailbox: a Message is queued as by Post,
// anything else is delivered on its own ahead of the next batch.
func (m *Bounded) PostUserMessage(message any) {
	if msg, ok := message.(Message); ok {
		m.Post(msg)
		return
	}
	m.mu.Lock()
	m.others = append(m.others, message)
	m.pending.Add(1)
	m.mu.Unlock()
	m.schedule()
}

// PostSystemMessage implements actor.Mailbox.
func (m *Bounded) PostSystemMessage(message any) {
	m.mu.Lock()
	m.system = append(m.system, message)
	m.pending.Add(1)
	m.mu.Unlock()
	m.schedule()
}

// RegisterHandlers implements actor.Mailbox.
func (m *Bounded) RegisterHandlers(invoker actor.MessageInvoker, dispatcher actor.Dispatcher) {
	m.invoker = invoker
	m.dispatch = dispatcher
}

// Start implements actor.Mailbox. Messages posted before Start wait in the
// queue and are delivered once the actor has started.
func (m *Bounded) Start() {
	m.started.Store(true)
	m.schedule()
}

// UserMessageCount implements actor.Mailbox: queued commands plus other
// user messages.
func (m *Bounded) UserMessageCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.queue) + len(m.others)
}

// Queued returns the number of messages queued (commands and others),
// read without the lock: a hint for the actor, which may find more or
// fewer when it drains.
func (m *Bounded) Queued() int { return int(m.pending.Load()) }

// Len returns the number of queued commands.
func (m *Bounded) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.queue)
}

// Close fails every queued command with err (ErrClosed when err is nil),
// and every command waiting for room, makes every later Post fail the same
// way, and wakes blocked posters. It returns the number of queued commands
// it failed. Close is idempotent: later calls
// fail nothing new and return 0, once the first one has failed every
// command it took (so that every caller of Close may rely on those
// futures being complete when it returns: the engine's Close and the
// connection actor's stop both close the mailbox, and whichever came
// second returned while the first was still failing thousands of
// commands). Other user and system messages still run.
func (m *Bounded) Close(err error) int {
	return m.Seal(err)()
}

// Seal is Close in two steps: it closes the mailbox at once (every later
// Post fails, no drain takes a command from now on) and returns fail,
// which fails the commands Seal took (the queued ones and those waiting
// for room), wakes blocked posters and returns how many queued commands
// it failed. Failing many commands takes a while (every future
// completes); Seal lets a caller do other work in the meantime (the
// engine's Close starts closing its connections). fail must be called
// exactly once. Until it has returned, a later Close or fail of a later
// Seal waits for it.
func (m *Bounded) Seal(err error) (fail func() int) {
	if err == nil {
		err = ErrClosed
	}
	m.mu.Lock()
	if m.closed {
		failed := m.failed
		m.mu.Unlock()
		return func() int {
			<-failed
			return 0
		}
	}
	m.closed, m.closeErr = true, err
	failed := make(chan struct{})
	m.failed = failed
	q := m.queue
	m.queue = nil
	ws := m.waiters
	m.waiters = nil
	for _, w := range ws {
		w.state = refused
	}
	m.pending.Add(-int32(len(q)))
	m.mu.Unlock()
	// A claim has nothing left to run: its commands fail below.
	if m.status.CompareAndSwap(claimed, idle) {
		m.claimTimer.Stop()
	}
	return func() int {
		defer close(failed)
		failEach(q, err)
		for _, w := range ws {
			failEach(w.msgs, err)
		}
		m.wake(ws)
		return len(q)
	}
}

// Flush fails every queued command with err and returns how many it
// failed; unlike Close, the mailbox keeps accepting commands, and those
// waiting for room are let in.
func (m *Bounded) Flush(err error) int {
	m.mu.Lock()
	q := m.queue
	m.queue = nil
	m.pending.Add(-int32(len(q)))
	ws := m.admitLocked()
	m.mu.Unlock()
	failEach(q, err)
	m.wake(ws)
	return len(q)
}

// Purge fails every queued command with err, then every command waiting
// for room (blocked posters' and forwarded groups', in the order they
// came), and returns how many it failed in all; as with Flush, the
// mailbox keeps accepting commands. It is Flush for a queue whose actor
// will not run for a while (a connection actor whose node's circuit
// breaker opened): Flush would let the waiting posters into the room it
// frees, where they would wait, stuck, until the next flush, though they
// were posted before commands that Purge fails. A blocked Post or PostAll
// refused by Purge returns false, as after Close.
func (m *Bounded) Purge(err error) int {
	return m.PurgeFunc(func(msg Message) { msg.Fail(err) })
}

// PurgeFunc is Purge failing each command with fail, on the caller's
// goroutine, in the same order (a caller that fails commands differently,
// by what they are).
func (m *Bounded) PurgeFunc(fail func(Message)) int {
	m.mu.Lock()
	q := m.queue
	m.queue = nil
	m.pending.Add(-int32(len(q)))
	ws := m.waiters
	m.waiters = nil
	for _, w := range ws {
		w.state = refused
	}
	m.mu.Unlock()
	for _, msg := range q {
		fail(msg)
	}
	n := len(q)
	for _, w := range ws {
		for _, msg := range w.msgs {
			fail(msg)
		}
		n += len(w.msgs)
	}
	m.wake(ws)
	return n
}

// Expire fails the queued commands whose context has ended, each with its
// context's error, removes them from the queue and returns how many it
// failed, and how many of those had their deadline pass (the others'
// callers cancelled them). Drains do the same as they take commands;
// Expire is for a mailbox that is not drained for a while (its actor
// suspended while its connection is re-established), so that the room
// those commands hold is freed and they complete now. It scans the whole
// queue.
func (m *Bounded) Expire() (failed, timedOut int) {
	m.mu.Lock()
	var dead []Message
	kept := m.queue[:0]
	for _, msg := range m.queue {
		if msg.Context().Err() != nil {
			dead = append(dead, msg)
			continue
		}
		kept = append(kept, msg)
	}
	clear(m.queue[len(kept):])
	m.queue = kept
	var ws []*waiter
	if len(dead) > 0 {
		m.pending.Add(-int32(len(dead)))
		ws = m.admitLocked()
	}
	m.mu.Unlock()
	for _, msg := range dead {
		m.stats.expired.Add(1)
		err := msg.Context().Err()
		if errors.Is(err, context.DeadlineExceeded) {
			timedOut++
		}
		msg.Fail(err)
	}
	m.wake(ws)
	return len(dead), timedOut
}

// Closed reports whether Close has been called.
func (m *Bounded) Closed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// Pause stops handing commands to the actor: they stay queued (posters
// are let in as usual up to Capacity, Expire and Close still fail them),
// while system and other user messages are still delivered. Unpause
// hands them on again, in order. Pausing a paused mailbox does nothing.
// A batch being handed over when Pause is called still reaches the actor:
// a message posted after Pause (PostUserMessage) is delivered after it.
// Used while the engine holds commands back, as during a sentinel
// failover. Safe for concurrent use; independent of the suspension
// protoactor applies while the actor restarts.
func (m *Bounded) Pause() { m.paused.Store(true) }

// Unpause ends Pause: queued commands are handed to the actor again.
func (m *Bounded) Unpause() {
	if m.paused.CompareAndSwap(true, false) {
		m.schedule()
	}
}

// Paused reports whether the mailbox is paused.
func (m *Bounded) Paused() bool { return m.paused.Load() }

// scheduleCommands schedules the run loop for newly queued commands,
// unless the mailbox is paused (they wait for Unpause).
func (m *Bounded) scheduleCommands() {
	if !m.paused.Load() {
		m.schedule()
	}
}

func (m *Bounded) schedule() {
	if !m.started.Load() {
		return // Start schedules what arrived before it
	}
	// A running loop sees what was just queued (it checks pending after
	// marking itself idle, and this call follows the pending update): a
	// plain load spares every post to a busy mailbox the CAS's exclusive
	// claim on a cache line the run loop keeps reading.
	for {
		switch s := m.status.Load(); s {
		case idle, claimed:
			if m.status.CompareAndSwap(s, scheduled) {
				m.dispatch.Schedule(m.run1)
				return
			}
		default: // running or scheduled
			return
		}
	}
}

// claim claims an idle run loop for PostClaim: the commands wait for an
// Assist, a Dispatch or ClaimDelay.
func (m *Bounded) claim() {
	if !m.started.Load() || m.paused.Load() {
		return // Start and Unpause schedule what is queued
	}
	// A running loop sees what was just queued (see schedule); a scheduled
	// or claimed one will run.
	if m.status.Load() == idle && m.status.CompareAndSwap(idle, claimed) {
		m.claimTimer.Reset(m.claimDelay)
	}
}

// Dispatch hands a claimed run loop to the dispatcher, as Post would
// have: for a wait on a PostClaim's command that will not Assist (an
// await whose context can end, a callback), and after
// Options.ClaimDelay.
func (m *Bounded) Dispatch() {
	if m.status.Load() == claimed && m.status.CompareAndSwap(claimed, scheduled) {
		m.dispatch.Schedule(m.run1)
	}
}

// Assist runs one batch on the calling goroutine when the run loop is
// claimed (PostClaim) or dispatched but not begun, and reports whether
// it did: for a caller about to block on a future of a command posted
// here, whose wait cannot end before the future completes. The batch is
// what the run loop would have run (system and other messages first, then
// up to MaxBatch commands, in order); what is queued after it is
// dispatched as usual.
func (m *Bounded) Assist() bool {
	for {
		s := m.status.Load()
		if s != claimed && s != scheduled {
			return false
		}
		if m.status.CompareAndSwap(s, running) {
			break
		}
	}
	m.stats.assisted.Add(1)
	m.run(true)
	m.status.Store(idle)
	if m.pending.Load() == 0 || (m.suspend.Load() && !m.hasSystem()) || (m.paused.Load() && !m.hasMessages()) {
		return true
	}
	m.schedule()
	return true
}

func (m *Bounded) process() {
	if !m.status.CompareAndSwap(scheduled, running) {
		return // Assist took it
	}
	for {
		m.run(false)
		// Before going idle, yield a few times: a caller woken by the batch
		// just completed usually posts again within microseconds, and
		// finding the loop still running saves starting a goroutine and a
		// scheduler hand-off per round trip under light load.
		for i := 0; i < m.spins && m.pending.Load() == 0; i++ {
			runtime.Gosched()
		}
		if m.pending.Load() > 0 && !m.suspend.Load() && !m.paused.Load() {
			continue
		}
		m.status.Store(idle)
		if m.pending.Load() == 0 || (m.suspend.Load() && !m.hasSystem()) || (m.paused.Load() && !m.hasMessages()) {
			return
		}
		if !m.status.CompareAndSwap(idle, running) {
			return // another goroutine took over
		}
	}
}

func (m *Bounded) hasSystem() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.system) > 0
}

// hasMessages reports whether system or other user messages are queued
// (what a paused mailbox still delivers).
func (m *Bounded) hasMessages() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.system) > 0 || len(m.others) > 0
}

// run runs batches until none is left, or one batch when once is set.
func (m *Bounded) run(once bool) {
	var current any
	var batch []Message
	defer func() {
		if r := recover(); r != nil {
			if batch != nil {
				// The supervisor gets a batch of its own: m.batch and its
				// slice are cleared below and reused by the next drain.
				current = &Batch{Messages: slices.Clone(batch)}
				m.batch.Messages = nil
			}
			// Every command of the batch in hand completes: those the actor
			// already completed ignore this.
			for _, msg := range batch {
				msg.Fail(fmt.Errorf("%w: %v", ErrActorFailed, r))
			}
			// With HoldDrained the actor may have released some of
			// them already: Release stops at zero.
			m.Release(len(batch))
			m.recycle(batch)
			m.invoker.EscalateFailure(r, current)
		}
	}()
	for {
		if sys, ok := m.pop(&m.system); ok {
			current = sys
			switch sys.(type) {
			case *actor.SuspendMailbox:
				m.suspend.Store(true)
			case *actor.ResumeMailbox:
				m.suspend.Store(false)
			default:
				m.invoker.InvokeSystemMessage(sys)
			}
			continue
		}
		if m.suspend.Load() {
			return
		}
		if other, ok := m.pop(&m.others); ok {
			current = other
			m.invoker.InvokeUserMessage(other)
			continue
		}
		if m.paused.Load() {
			return
		}
		batch = m.drain()
		if len(batch) == 0 {
			m.recycle(batch)
			return
		}
		current = &m.batch
		m.batch.Messages = batch
		m.invoker.InvokeUserMessage(&m.batch)
		m.batch.Messages = nil
		handled := len(batch)
		m.recycle(batch)
		batch = nil
		if once {
			return
		}
		m.refill(handled)
	}
}

// refill yields the processor, up to IdleSpins times, before the next
// batch is drained, while fewer commands are queued than the batch just
// handled held and each yield adds some. The callers that batch's
// completions woke are readied on this processor and post their next
// commands only once it yields: without this, the few commands queued
// during the round trip would go alone and the rest would wait a whole
// round trip behind them, so that a steady set of callers (16 goroutines,
// one command each in flight) is split into two half batches per cycle.
// A busy actor (as many queued as just handled) does not wait.
func (m *Bounded) refill(handled int) {
	p := m.pending.Load()
	for i := 0; i < m.spins && int(p) < handled && int(p) < m.maxBatch && !m.paused.Load(); i++ {
		runtime.Gosched()
		q := m.pending.Load()
		if q == p {
			return // nobody else posted: go
		}
		p = q
	}
}

func (m *Bounded) pop(q *[]any) (any, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(*q) == 0 {
		return nil, false
	}
	v := (*q)[0]
	(*q)[0] = nil
	m.pending.Add(-1)
	*q = (*q)[1:]
	if len(*q) == 0 {
		*q = nil
	}
	return v, true
}

// drain takes up to maxBatch queued commands and drops those whose context
// has ended.
func (m *Bounded) drain() []Message {
	m.mu.Lock()
	var out []Message
	if len(m.queue) <= m.maxBatch {
		out = m.queue
		m.queue = m.spare
		m.spare = nil
	} else {
		// Take the head by re-slicing, not by moving the rest down: with
		// n commands queued, moving would copy O(n) under the lock at
		// every drain, O(n²/maxBatch) to empty a deep mailbox. The
		// taken slots are cleared; append reallocates (copying only what
		// is left) once the array's tail is used up.
		out = append(m.spare, m.queue[:m.maxBatch]...)
		m.spare = nil
		clear(m.queue[:m.maxBatch])
		m.queue = m.queue[m.maxBatch:]
	}
	m.pending.Add(-int32(len(out)))
	if m.hold {
		m.held += len(out)
	}
	var ws []*waiter
	if len(out) > 0 {
		ws = m.admitLocked()
	}
	m.mu.Unlock()
	m.wake(ws)

	if m.keepExpired {
		if len(out) > 0 {
			m.stats.observeBatch(len(out))
		}
		return out
	}
	kept := out[:0]
	for _, msg := range out {
		if err := msg.Context().Err(); err != nil {
			m.stats.expired.Add(1)
			msg.Fail(err)
			continue
		}
		kept = append(kept, msg)
	}
	clear(out[len(kept):])
	m.Release(len(out) - len(kept)) // failed here: the actor never holds them
	if len(kept) > 0 {
		m.stats.observeBatch(len(kept))
	}
	return kept
}

// recycle keeps a handled batch's slice for the next drain.
func (m *Bounded) recycle(batch []Message) {
	if cap(batch) == 0 || cap(batch) > 4*m.maxBatch {
		return
	}
	clear(batch)
	m.mu.Lock()
	if m.spare == nil {
		m.spare = batch[:0]
	}
	m.mu.Unlock()
}
