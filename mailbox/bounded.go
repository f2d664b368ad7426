package mailbox

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

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
	// microseconds), wasted on many lightly used ones. 0 means
	// DefaultIdleSpins; negative means none.
	IdleSpins int
	// KeepExpired hands commands whose context has ended to the actor
	// like the others instead of failing them at drain, for a forwarding
	// actor that accounts for every command it was given and whose
	// downstream mailbox drops them. Default false.
	KeepExpired bool
}

// DefaultIdleSpins is the default of Options.IdleSpins.
const DefaultIdleSpins = 32

const (
	idle int32 = iota
	running
)

// Bounded is a bounded, batching, deadline-aware protoactor mailbox.
// PostUserMessage and PostSystemMessage are safe for concurrent use; the run
// loop is driven by protoactor's dispatcher, one batch at a time.
type Bounded struct {
	capacity int
	maxBatch int
	policy   Policy
	spins    int

	keepExpired bool

	mu       sync.Mutex
	queue    []Message     // commands, FIFO
	others   []any         // non-command user messages, FIFO
	system   []any         // system messages, FIFO
	space    chan struct{} // closed when room frees up; nil when nobody waits
	closed   bool
	closeErr error

	spare    []Message // the previous batch's slice, reused by the next drain
	batch    Batch
	status   atomic.Int32
	pending  atomic.Int32 // queued commands + others + system, for the idle check
	suspend  atomic.Bool
	started  atomic.Bool // set by Start, after RegisterHandlers
	invoker  actor.MessageInvoker
	dispatch actor.Dispatcher
	run1     func() // m.process, bound once so scheduling allocates nothing

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
	m := &Bounded{capacity: opts.Capacity, maxBatch: opts.MaxBatch, policy: opts.Policy, spins: opts.IdleSpins, keepExpired: opts.KeepExpired}
	m.run1 = m.process
	return m
}

// Post queues a command and reports whether it did. It never drops a
// command silently: when the command cannot be queued (its context has
// ended, the mailbox is full under Reject, or closed) it is failed at once
// and Post returns false. Under Block it waits for room.
func (m *Bounded) Post(msg Message) bool {
	ctx := msg.Context()
	if err := ctx.Err(); err != nil {
		m.stats.expired.Add(1)
		msg.Fail(err)
		return false
	}
	m.mu.Lock()
	for !m.closed && len(m.queue) >= m.capacity {
		if m.policy == Reject {
			m.mu.Unlock()
			m.stats.rejected.Add(1)
			msg.Fail(ErrBackpressure)
			return false
		}
		if m.space == nil {
			m.space = make(chan struct{})
		}
		space := m.space
		m.mu.Unlock()
		m.stats.blocked.Add(1)
		select {
		case <-space:
		case <-ctx.Done():
			m.stats.expired.Add(1)
			msg.Fail(ctx.Err())
			return false
		}
		m.mu.Lock()
	}
	if m.closed {
		err := m.closeErr
		m.mu.Unlock()
		msg.Fail(err)
		return false
	}
	m.queue = append(m.queue, msg)
	m.pending.Add(1)
	m.mu.Unlock()
	m.stats.posted.Add(1)
	m.schedule()
	return true
}

// PostAll queues msgs contiguously, in order: no other poster's message
// comes between them (an ASKING and its command, say). It does not wait
// for room: it is for internal forwarders whose own input is already
// bounded. Messages whose context has ended fail at once; all fail when
// the mailbox is closed.
func (m *Bounded) PostAll(msgs ...Message) {
	live := msgs
	for i, msg := range msgs {
		if msg.Context().Err() == nil {
			continue
		}
		// Some have expired: keep the others, in a copy (msgs is the
		// caller's).
		live = append([]Message(nil), msgs[:i]...)
		for _, msg := range msgs[i:] {
			if err := msg.Context().Err(); err != nil {
				m.stats.expired.Add(1)
				msg.Fail(err)
				continue
			}
			live = append(live, msg)
		}
		break
	}
	if len(live) == 0 {
		return
	}
	m.mu.Lock()
	if m.closed {
		err := m.closeErr
		m.mu.Unlock()
		for _, msg := range live {
			msg.Fail(err)
		}
		return
	}
	m.queue = append(m.queue, live...)
	m.pending.Add(int32(len(live)))
	m.mu.Unlock()
	m.stats.posted.Add(uint64(len(live)))
	m.schedule()
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

// Len returns the number of queued commands.
func (m *Bounded) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.queue)
}

// Close fails every queued command with err (ErrClosed when err is nil),
// makes every later Post fail the same way, and wakes blocked posters. It
// returns the number of commands it failed. Close is idempotent: later calls
// fail nothing new and return 0. Other user and system messages still run.
func (m *Bounded) Close(err error) int {
	if err == nil {
		err = ErrClosed
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return 0
	}
	m.closed, m.closeErr = true, err
	q := m.queue
	m.queue = nil
	if m.space != nil {
		close(m.space)
		m.space = nil
	}
	m.pending.Add(-int32(len(q)))
	m.mu.Unlock()
	for _, msg := range q {
		msg.Fail(err)
	}
	return len(q)
}

// Flush fails every queued command with err and returns how many it
// failed; unlike Close, the mailbox keeps accepting commands.
func (m *Bounded) Flush(err error) int {
	m.mu.Lock()
	q := m.queue
	m.queue = nil
	m.pending.Add(-int32(len(q)))
	if m.space != nil {
		close(m.space)
		m.space = nil
	}
	m.mu.Unlock()
	for _, msg := range q {
		msg.Fail(err)
	}
	return len(q)
}

// Expire fails the queued commands whose context has ended, each with its
// context's error, removes them from the queue and returns how many it
// failed. Drains do the same as they take commands; Expire is for a
// mailbox that is not drained for a while (its actor suspended while its
// connection is re-established), so that the room those commands hold is
// freed and they complete now. It scans the whole queue.
func (m *Bounded) Expire() int {
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
	if len(dead) > 0 {
		m.pending.Add(-int32(len(dead)))
		if m.space != nil {
			close(m.space)
			m.space = nil
		}
	}
	m.mu.Unlock()
	for _, msg := range dead {
		m.stats.expired.Add(1)
		msg.Fail(msg.Context().Err())
	}
	return len(dead)
}

// Closed reports whether Close has been called.
func (m *Bounded) Closed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

func (m *Bounded) schedule() {
	if !m.started.Load() {
		return // Start schedules what arrived before it
	}
	if m.status.CompareAndSwap(idle, running) {
		m.dispatch.Schedule(m.run1)
	}
}

func (m *Bounded) process() {
	for {
		m.run()
		// Before going idle, yield a few times: a caller woken by the batch
		// just completed usually posts again within microseconds, and
		// finding the loop still running saves starting a goroutine and a
		// scheduler hand-off per round trip under light load.
		for i := 0; i < m.spins && m.pending.Load() == 0; i++ {
			runtime.Gosched()
		}
		if m.pending.Load() > 0 && !m.suspend.Load() {
			continue
		}
		m.status.Store(idle)
		if m.pending.Load() == 0 || (m.suspend.Load() && !m.hasSystem()) {
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

func (m *Bounded) run() {
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
		batch = m.drain()
		if len(batch) == 0 {
			m.recycle(batch)
			return
		}
		current = &m.batch
		m.batch.Messages = batch
		m.invoker.InvokeUserMessage(&m.batch)
		m.batch.Messages = nil
		m.recycle(batch)
		batch = nil
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
		out = append(m.spare, m.queue[:m.maxBatch]...)
		m.spare = nil
		n := copy(m.queue, m.queue[m.maxBatch:])
		clear(m.queue[n:])
		m.queue = m.queue[:n]
	}
	if m.space != nil && len(out) > 0 {
		close(m.space)
		m.space = nil
	}
	m.pending.Add(-int32(len(out)))
	m.mu.Unlock()

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
