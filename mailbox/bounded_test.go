package mailbox_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/mailbox"
)

// waitTimeout bounds every wait in these tests: nothing here should take
// more than a fraction of it, so reaching it means a lost wakeup or a hang.
const waitTimeout = 10 * time.Second

// ---------------------------------------------------------------------------
// Fakes
// ---------------------------------------------------------------------------

// msg is a fake command. The first completion (Fail or succeed) wins; later
// ones are counted and otherwise ignored, as mailbox.Message requires.
type msg struct {
	poster, id int
	ctx        context.Context

	mu       sync.Mutex
	done     bool
	err      error
	fails    int           // number of Fail calls, including ignored ones
	finished chan struct{} // closed on the first completion
}

var _ mailbox.Message = (*msg)(nil)

func newMsg(ctx context.Context, poster, id int) *msg {
	return &msg{ctx: ctx, poster: poster, id: id, finished: make(chan struct{})}
}

func (m *msg) Context() context.Context { return m.ctx }

func (m *msg) Fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fails++
	if !m.done {
		m.done, m.err = true, err
		close(m.finished)
	}
}

// succeed completes the command without error (as an actor that wrote it
// would) unless it already completed.
func (m *msg) succeed() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.done {
		m.done = true
		close(m.finished)
	}
}

func (m *msg) result() (done bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.done, m.err
}

func (m *msg) failCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fails
}

func (m *msg) String() string { return fmt.Sprintf("p%d#%d", m.poster, m.id) }

// deadlineCtx is a context whose deadline passes when the test says so:
// Err is nil until end, then context.DeadlineExceeded. Unlike a timer it
// cannot expire early on a loaded machine.
type deadlineCtx struct {
	context.Context
	done chan struct{}
	once sync.Once
}

func newDeadlineCtx() *deadlineCtx {
	return &deadlineCtx{Context: context.Background(), done: make(chan struct{})}
}

func (c *deadlineCtx) Done() <-chan struct{} { return c.done }

func (c *deadlineCtx) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

func (c *deadlineCtx) end() { c.once.Do(func() { close(c.done) }) }

// delivery is one InvokeUserMessage call: a copied batch, or another message.
type delivery struct {
	batch []*msg // non-nil for a *mailbox.Batch
	other any
}

type escalation struct {
	reason  any
	message any
	batch   []*msg // copy of message's commands when it is a *mailbox.Batch
}

// invoker is a fake actor.MessageInvoker. It records everything it is handed
// (copying batches, whose slice the mailbox reuses), then calls hook (user
// messages) or sysHook (system messages), which may block or panic.
type invoker struct {
	hook    func(m any) // set before the mailbox is used
	sysHook func(m any)

	mu          sync.Mutex
	system      []any
	user        []delivery
	escalations []escalation
	changed     chan struct{} // closed and replaced on every record
}

var _ actor.MessageInvoker = (*invoker)(nil)

func newInvoker() *invoker { return &invoker{changed: make(chan struct{})} }

func (inv *invoker) notifyLocked() {
	close(inv.changed)
	inv.changed = make(chan struct{})
}

func copyBatch(b *mailbox.Batch) []*msg {
	out := make([]*msg, len(b.Messages))
	for i, m := range b.Messages {
		if m != nil {
			out[i] = m.(*msg)
		}
	}
	return out
}

func (inv *invoker) InvokeSystemMessage(m any) {
	inv.mu.Lock()
	inv.system = append(inv.system, m)
	inv.notifyLocked()
	inv.mu.Unlock()
	if inv.sysHook != nil {
		inv.sysHook(m)
	}
}

func (inv *invoker) InvokeUserMessage(m any) {
	d := delivery{other: m}
	if b, ok := m.(*mailbox.Batch); ok {
		d = delivery{batch: copyBatch(b)}
	}
	inv.mu.Lock()
	inv.user = append(inv.user, d)
	inv.notifyLocked()
	inv.mu.Unlock()
	if inv.hook != nil {
		inv.hook(m)
	}
}

func (inv *invoker) EscalateFailure(reason, message any) {
	e := escalation{reason: reason, message: message}
	if b, ok := message.(*mailbox.Batch); ok {
		e.batch = copyBatch(b)
	}
	inv.mu.Lock()
	inv.escalations = append(inv.escalations, e)
	inv.notifyLocked()
	inv.mu.Unlock()
}

// waitUntil waits until cond (called with inv.mu held) holds.
func (inv *invoker) waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		inv.mu.Lock()
		ok := cond()
		ch := inv.changed
		inv.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// deliveredLocked counts the commands delivered in batches.
func (inv *invoker) deliveredLocked() int {
	n := 0
	for _, d := range inv.user {
		n += len(d.batch)
	}
	return n
}

func (inv *invoker) waitDelivered(t *testing.T, n int) {
	t.Helper()
	inv.waitUntil(t, fmt.Sprintf("%d delivered commands", n), func() bool { return inv.deliveredLocked() >= n })
}

// batches returns the batches delivered so far.
func (inv *invoker) batches() [][]*msg {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	var out [][]*msg
	for _, d := range inv.user {
		if d.batch != nil {
			out = append(out, d.batch)
		}
	}
	return out
}

// delivered returns the commands delivered so far, in delivery order.
func (inv *invoker) delivered() []*msg {
	var out []*msg
	for _, b := range inv.batches() {
		out = append(out, b...)
	}
	return out
}

// userLog describes the user deliveries so far: batches as [ids], others
// with %v.
func (inv *invoker) userLog() []string {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	out := make([]string, 0, len(inv.user))
	for _, d := range inv.user {
		if d.batch != nil {
			out = append(out, fmt.Sprint(ids(d.batch)))
		} else {
			out = append(out, fmt.Sprint(d.other))
		}
	}
	return out
}

func (inv *invoker) systemMessages() []any {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return append([]any(nil), inv.system...)
}

func (inv *invoker) escalationList() []escalation {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return append([]escalation(nil), inv.escalations...)
}

func ids(ms []*msg) []int {
	out := make([]int, len(ms))
	for i, m := range ms {
		if m == nil {
			out[i] = -1
			continue
		}
		out[i] = m.id
	}
	return out
}

// gate blocks the actor in its first batch until released, so that the
// next batch builds up in the mailbox.
type gate struct {
	entered chan *mailbox.Batch // receives the first batch (live, not a copy)
	release chan struct{}
	first   atomic.Bool
	once    sync.Once
}

func newGate() *gate {
	return &gate{entered: make(chan *mailbox.Batch, 1), release: make(chan struct{})}
}

// hold blocks if m is the first batch; it reports whether it did.
func (g *gate) hold(m any) bool {
	b, ok := m.(*mailbox.Batch)
	if !ok || !g.first.CompareAndSwap(false, true) {
		return false
	}
	g.entered <- b
	<-g.release
	return true
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// waitEntered waits until the actor holds the first batch and returns it.
func (g *gate) waitEntered(t *testing.T) *mailbox.Batch {
	t.Helper()
	select {
	case b := <-g.entered:
		return b
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for the actor to receive the first batch")
		return nil
	}
}

// manualDispatcher runs scheduled functions only when told to, so the
// mailbox's content at drain time is fully under the test's control.
type manualDispatcher struct {
	mu  sync.Mutex
	fns []func()
}

func (d *manualDispatcher) Schedule(fn func()) {
	d.mu.Lock()
	d.fns = append(d.fns, fn)
	d.mu.Unlock()
}

func (d *manualDispatcher) Throughput() int { return 300 }

// run runs everything scheduled, including what gets scheduled meanwhile.
func (d *manualDispatcher) run() {
	for {
		d.mu.Lock()
		if len(d.fns) == 0 {
			d.mu.Unlock()
			return
		}
		fn := d.fns[0]
		d.fns = d.fns[1:]
		d.mu.Unlock()
		fn()
	}
}

func (d *manualDispatcher) scheduled() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.fns)
}

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

type dispatcherCase struct {
	name string
	new  func() actor.Dispatcher
}

var dispatchers = []dispatcherCase{
	{"sync", func() actor.Dispatcher { return actor.NewSynchronizedDispatcher(300) }},
	{"goroutine", func() actor.Dispatcher { return actor.NewDefaultDispatcher(300) }},
}

// forEachDispatcher runs f with the synchronous and the goroutine dispatcher.
// Every subtest checks that no goroutine it started is left running.
func forEachDispatcher(t *testing.T, f func(t *testing.T, d actor.Dispatcher)) {
	t.Helper()
	for _, dc := range dispatchers {
		t.Run(dc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			f(t, dc.new())
		})
	}
}

func newMailbox(opts mailbox.Options, d actor.Dispatcher) (*mailbox.Bounded, *invoker) {
	mb := mailbox.New(opts)
	inv := newInvoker()
	mb.RegisterHandlers(inv, d)
	mb.Start()
	return mb, inv
}

// goPost posts m from a new goroutine (with the synchronous dispatcher that
// goroutine then runs the actor) and returns a channel closed when Post
// returns.
func goPost(mb *mailbox.Bounded, m mailbox.Message) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		mb.Post(m)
	}()
	return done
}

// waitPosters waits for poster goroutines; if they are stuck it closes the
// mailbox to release them before failing.
func waitPosters(t *testing.T, wg *sync.WaitGroup, mb *mailbox.Bounded) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		mb.Close(errors.New("test timed out"))
		<-done
		t.Fatalf("timed out waiting for posters (stats %+v)", mb.Stats())
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func notClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s returned, want it still blocked", what)
	default:
	}
}

// waitStat polls a counter with a deadline: the only way to see that a
// poster has started waiting for room.
func waitStat(t *testing.T, what string, get func() uint64, want uint64) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for get() < want {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s >= %d (have %d)", what, want, get())
		}
		time.Sleep(50 * time.Microsecond)
	}
}

func wantFailed(t *testing.T, m *msg, want error) {
	t.Helper()
	done, err := m.result()
	if !done {
		t.Fatalf("%v: not completed, want failed with %v", m, want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("%v: failed with %v, want %v", m, err, want)
	}
}

func wantPending(t *testing.T, m *msg) {
	t.Helper()
	if done, err := m.result(); done {
		t.Fatalf("%v: completed (err %v), want still pending", m, err)
	}
}

func wantNotDelivered(t *testing.T, inv *invoker, ms ...*msg) {
	t.Helper()
	for _, d := range inv.delivered() {
		for _, m := range ms {
			if d == m {
				t.Fatalf("%v was delivered to the actor", m)
			}
		}
	}
}

func sumBuckets(s mailbox.Stats) uint64 {
	var n uint64
	for _, v := range s.BatchSizes {
		n += v
	}
	return n
}

// checkStatsConsistent checks the invariants between Stats fields.
func checkStatsConsistent(t *testing.T, s mailbox.Stats) {
	t.Helper()
	if got := sumBuckets(s); got != s.Batches {
		t.Errorf("histogram buckets sum to %d, Batches = %d (%+v)", got, s.Batches, s)
	}
	if s.Batches > 0 && (s.MaxBatch == 0 || s.MaxBatch > s.Batched) {
		t.Errorf("MaxBatch = %d with Batched = %d", s.MaxBatch, s.Batched)
	}
	if s.Batches > 0 && float64(s.MaxBatch) < s.MeanBatch() {
		t.Errorf("MaxBatch %d < MeanBatch %v", s.MaxBatch, s.MeanBatch())
	}
}

// ---------------------------------------------------------------------------
// Order
// ---------------------------------------------------------------------------

func TestFIFOSinglePoster(t *testing.T) {
	forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
		const n = 5000
		mb, inv := newMailbox(mailbox.Options{Capacity: 64, MaxBatch: 7}, d)
		ms := make([]*msg, n)
		for i := range ms {
			ms[i] = newMsg(context.Background(), 0, i)
		}
		var wg sync.WaitGroup
		wg.Go(func() { // the queue fills up, so Post blocks now and then
			for _, m := range ms {
				mb.Post(m)
			}
		})
		waitPosters(t, &wg, mb)
		inv.waitDelivered(t, n)

		got := inv.delivered()
		if len(got) != n {
			t.Fatalf("delivered %d commands, want %d", len(got), n)
		}
		for i, m := range got {
			if m != ms[i] {
				t.Fatalf("delivery %d is %v, want %v", i, m, ms[i])
			}
			if done, err := m.result(); done {
				t.Fatalf("%v failed by the mailbox: %v", m, err)
			}
		}
		for _, b := range inv.batches() {
			if len(b) == 0 || len(b) > 7 {
				t.Fatalf("batch of %d commands, want 1..7", len(b))
			}
		}
		s := mb.Stats()
		if s.Posted != n || s.Batched != n || s.Queued != 0 || s.Expired != 0 || s.Rejected != 0 {
			t.Fatalf("stats = %+v, want Posted = Batched = %d and nothing queued, expired or rejected", s, n)
		}
		if s.Batches != uint64(len(inv.batches())) {
			t.Fatalf("Stats.Batches = %d, actor got %d batches", s.Batches, len(inv.batches()))
		}
		checkStatsConsistent(t, s)
	})
}

func TestFIFOConcurrentPosters(t *testing.T) {
	for _, policy := range []mailbox.Policy{mailbox.Block, mailbox.Reject} {
		t.Run(policy.String(), func(t *testing.T) {
			forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
				const posters, per = 8, 2000
				capacity := 32 // small, so that Block really blocks
				if policy == mailbox.Reject {
					capacity = posters * per // never full: nothing may be rejected
				}
				mb, inv := newMailbox(mailbox.Options{Capacity: capacity, MaxBatch: 16, Policy: policy}, d)

				var wg sync.WaitGroup
				start := make(chan struct{})
				for p := range posters {
					wg.Go(func() {
						<-start
						for i := range per {
							mb.Post(newMsg(context.Background(), p, i))
						}
					})
				}
				close(start)
				waitPosters(t, &wg, mb)
				inv.waitDelivered(t, posters*per)

				got := inv.delivered()
				if len(got) != posters*per {
					t.Fatalf("delivered %d commands, want %d", len(got), posters*per)
				}
				next := make([]int, posters)
				for _, m := range got {
					if m.id != next[m.poster] {
						t.Fatalf("poster %d: got command %d, want %d (lost, duplicated or reordered)", m.poster, m.id, next[m.poster])
					}
					next[m.poster]++
					if done, err := m.result(); done {
						t.Fatalf("%v failed by the mailbox: %v", m, err)
					}
				}
				for p, n := range next {
					if n != per {
						t.Fatalf("poster %d: %d commands delivered, want %d", p, n, per)
					}
				}
				s := mb.Stats()
				if s.Posted != posters*per || s.Batched != posters*per || s.Rejected != 0 || s.Expired != 0 {
					t.Fatalf("stats = %+v", s)
				}
				if s.MaxBatch > 16 {
					t.Fatalf("MaxBatch = %d, cap was 16", s.MaxBatch)
				}
				checkStatsConsistent(t, s)
			})
		})
	}
}

// ---------------------------------------------------------------------------
// Batching
// ---------------------------------------------------------------------------

func TestBatchBuildsWhileActorBusy(t *testing.T) {
	forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
		mb, inv := newMailbox(mailbox.Options{}, d)
		g := newGate()
		inv.hook = func(m any) { g.hold(m) }
		defer g.open()

		m0 := newMsg(context.Background(), 0, 0)
		posted := goPost(mb, m0)
		live := g.waitEntered(t)

		ms := make([]*msg, 5)
		for i := range ms {
			ms[i] = newMsg(context.Background(), 0, i+1)
			mb.Post(ms[i])
		}
		if got := mb.Len(); got != 5 {
			t.Fatalf("Len() = %d while the actor is busy, want 5", got)
		}
		if got := mb.UserMessageCount(); got != 5 {
			t.Fatalf("UserMessageCount() = %d, want 5", got)
		}
		if got := mb.Stats().Queued; got != 5 {
			t.Fatalf("Stats().Queued = %d, want 5", got)
		}
		// The batch the actor holds must not be touched by later posts.
		if len(live.Messages) != 1 || live.Messages[0] != mailbox.Message(m0) {
			t.Fatalf("the batch in the actor's hands changed to %v while it was busy", live.Messages)
		}
		g.open()
		inv.waitDelivered(t, 6)
		waitClosed(t, posted, "first Post")

		got := inv.batches()
		if len(got) != 2 {
			t.Fatalf("got %d batches %v, want 2", len(got), inv.userLog())
		}
		if fmt.Sprint(ids(got[0])) != "[0]" || fmt.Sprint(ids(got[1])) != "[1 2 3 4 5]" {
			t.Fatalf("batches = %v, want [[0] [1 2 3 4 5]]", inv.userLog())
		}

		s := mb.Stats()
		if s.Batches != 2 || s.Batched != 6 || s.MaxBatch != 5 || s.MeanBatch() != 3 || s.Posted != 6 || s.Queued != 0 {
			t.Fatalf("stats = %+v (mean %v), want 2 batches, 6 batched, max 5, mean 3", s, s.MeanBatch())
		}
		if s.BatchSizes[0] != 1 || s.BatchSizes[2] != 1 {
			t.Fatalf("BatchSizes = %v, want one batch in [1,2) and one in [4,8)", s.BatchSizes)
		}
		checkStatsConsistent(t, s)
	})
}

func TestMaxBatchSplitsInOrder(t *testing.T) {
	forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
		mb, inv := newMailbox(mailbox.Options{MaxBatch: 4}, d)
		g := newGate()
		inv.hook = func(m any) { g.hold(m) }
		defer g.open()

		posted := goPost(mb, newMsg(context.Background(), 0, 0))
		g.waitEntered(t)
		for i := 1; i <= 10; i++ {
			mb.Post(newMsg(context.Background(), 0, i))
		}
		g.open()
		inv.waitDelivered(t, 11)
		waitClosed(t, posted, "first Post")

		want := []string{"[0]", "[1 2 3 4]", "[5 6 7 8]", "[9 10]"}
		if got := inv.userLog(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("batches = %v, want %v", got, want)
		}
		s := mb.Stats()
		if s.Batches != 4 || s.Batched != 11 || s.MaxBatch != 4 {
			t.Fatalf("stats = %+v", s)
		}
		// sizes 1, 4, 4, 2
		if s.BatchSizes[0] != 1 || s.BatchSizes[1] != 1 || s.BatchSizes[2] != 2 {
			t.Fatalf("BatchSizes = %v", s.BatchSizes)
		}
		checkStatsConsistent(t, s)
	})
}

// A deterministic split with everything queued before the first drain: a
// queue larger than MaxBatch keeps its tail across drains.
func TestMaxBatchManual(t *testing.T) {
	d := &manualDispatcher{}
	mb, inv := newMailbox(mailbox.Options{MaxBatch: 3}, d)
	for i := range 8 {
		mb.Post(newMsg(context.Background(), 0, i))
	}
	if got := d.scheduled(); got != 1 {
		t.Fatalf("%d runs scheduled for 8 posts to an idle mailbox, want 1", got)
	}
	d.run()
	want := []string{"[0 1 2]", "[3 4 5]", "[6 7]"}
	if got := inv.userLog(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("batches = %v, want %v", got, want)
	}
	// Reuse of the spare slice across drains must not mix batches up.
	for round := 1; round <= 3; round++ {
		for i := range 5 {
			mb.Post(newMsg(context.Background(), round, 10*round+i))
		}
		d.run()
	}
	want = append(want, "[10 11 12]", "[13 14]", "[20 21 22]", "[23 24]", "[30 31 32]", "[33 34]")
	if got := inv.userLog(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("batches = %v, want %v", got, want)
	}
	if d.scheduled() != 0 || mb.Len() != 0 {
		t.Fatalf("left %d scheduled runs and %d queued commands", d.scheduled(), mb.Len())
	}
}

func TestDefaults(t *testing.T) {
	t.Run("MaxBatch", func(t *testing.T) {
		d := &manualDispatcher{}
		mb, inv := newMailbox(mailbox.Options{}, d)
		m := newMsg(context.Background(), 0, 0)
		for range mailbox.DefaultMaxBatch + 1 {
			mb.Post(m) // the same command many times: only counts matter here
		}
		d.run()
		b := inv.batches()
		if len(b) != 2 || len(b[0]) != mailbox.DefaultMaxBatch || len(b[1]) != 1 {
			t.Fatalf("got %d batches, want %d + 1 commands", len(b), mailbox.DefaultMaxBatch)
		}
	})
	t.Run("Capacity", func(t *testing.T) {
		d := &manualDispatcher{}
		mb, _ := newMailbox(mailbox.Options{Policy: mailbox.Reject}, d)
		m := newMsg(context.Background(), 0, 0)
		for range mailbox.DefaultCapacity {
			mb.Post(m)
		}
		wantPending(t, m)
		over := newMsg(context.Background(), 0, 1)
		waitClosed(t, goPost(mb, over), "Post to a full mailbox under Reject")
		wantFailed(t, over, mailbox.ErrBackpressure)
		if got := mb.Len(); got != mailbox.DefaultCapacity {
			t.Fatalf("Len() = %d, want %d", got, mailbox.DefaultCapacity)
		}
	})
}

// Commands and messages posted before Start (even before RegisterHandlers)
// wait and are delivered, in order, once the mailbox has started.
func TestPostBeforeStart(t *testing.T) {
	forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
		mb := mailbox.New(mailbox.Options{})
		early := newMsg(context.Background(), 0, 1)
		mb.Post(early) // no handlers yet: must neither panic nor run
		inv := newInvoker()
		mb.RegisterHandlers(inv, d)
		mb.Post(newMsg(context.Background(), 0, 2))
		mb.PostUserMessage("x")
		started := &actor.Started{}
		mb.PostSystemMessage(started)
		if got := mb.Len(); got != 2 {
			t.Fatalf("Len() = %d before Start, want 2", got)
		}
		if got := inv.userLog(); len(got) != 0 || len(inv.systemMessages()) != 0 {
			t.Fatalf("delivered before Start: user %v, system %v", got, inv.systemMessages())
		}
		wantPending(t, early)

		mb.Start()
		inv.waitDelivered(t, 2)
		if got := inv.userLog(); fmt.Sprint(got) != "[x [1 2]]" {
			t.Fatalf("user deliveries = %v, want [x [1 2]]", got)
		}
		if sys := inv.systemMessages(); len(sys) != 1 || sys[0] != started {
			t.Fatalf("system deliveries = %v", sys)
		}
		// And it runs normally afterwards.
		mb.Post(newMsg(context.Background(), 0, 3))
		inv.waitDelivered(t, 3)
	})
}

func TestPolicyString(t *testing.T) {
	for p, want := range map[mailbox.Policy]string{mailbox.Block: "block", mailbox.Reject: "reject", 7: "Policy(7)"} {
		if got := p.String(); got != want {
			t.Errorf("Policy(%d).String() = %q, want %q", int(p), got, want)
		}
	}
}

// ---------------------------------------------------------------------------
// Deadlines
// ---------------------------------------------------------------------------

func TestExpiredAtPost(t *testing.T) {
	forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
		mb, inv := newMailbox(mailbox.Options{}, d)

		canceled, cancel := context.WithCancel(context.Background())
		cancel()
		past, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel2()

		a := newMsg(canceled, 0, 1)
		b := newMsg(past, 0, 2)
		mb.Post(a) // fails before Post returns
		wantFailed(t, a, context.Canceled)
		mb.Post(b)
		wantFailed(t, b, context.DeadlineExceeded)

		live := newMsg(context.Background(), 0, 3)
		mb.Post(live)
		inv.waitDelivered(t, 1)
		if got := inv.userLog(); fmt.Sprint(got) != "[[3]]" {
			t.Fatalf("deliveries = %v, want only [3]", got)
		}
		s := mb.Stats()
		if s.Expired != 2 || s.Posted != 1 || s.Batched != 1 {
			t.Fatalf("stats = %+v, want Expired 2, Posted 1, Batched 1", s)
		}
	})
}

func TestExpiredWhileQueued(t *testing.T) {
	forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
		mb, inv := newMailbox(mailbox.Options{}, d)
		g := newGate()
		inv.hook = func(m any) { g.hold(m) }
		defer g.open()

		posted := goPost(mb, newMsg(context.Background(), 0, 0))
		g.waitEntered(t)

		cctx, cancel := context.WithCancel(context.Background())
		tctx := newDeadlineCtx()
		a := newMsg(cctx, 0, 1)
		b := newMsg(context.Background(), 0, 2)
		c := newMsg(tctx, 0, 3)
		e := newMsg(context.Background(), 0, 4)
		for _, m := range []*msg{a, b, c, e} {
			mb.Post(m)
		}
		if got := mb.Stats().Posted; got != 5 {
			t.Fatalf("Posted = %d, want 5 (live contexts are accepted)", got)
		}
		cancel()
		tctx.end()
		// Nothing fails a queued command before it is drained.
		wantPending(t, a)
		wantPending(t, c)

		g.open()
		inv.waitDelivered(t, 3)
		waitClosed(t, posted, "first Post")

		wantFailed(t, a, context.Canceled)
		wantFailed(t, c, context.DeadlineExceeded)
		wantNotDelivered(t, inv, a, c)
		if got := inv.userLog(); fmt.Sprint(got) != "[[0] [2 4]]" {
			t.Fatalf("deliveries = %v, want [[0] [2 4]]", got)
		}
		s := mb.Stats()
		if s.Expired != 2 || s.Batched != 3 || s.Batches != 2 || s.MaxBatch != 2 {
			t.Fatalf("stats = %+v, want Expired 2, Batched 3, Batches 2, MaxBatch 2", s)
		}
		checkStatsConsistent(t, s)
	})
}

// When every drained command has expired, the actor gets no (empty) batch.
func TestAllExpiredNoEmptyBatch(t *testing.T) {
	d := &manualDispatcher{}
	mb, inv := newMailbox(mailbox.Options{}, d)
	ctx, cancel := context.WithCancel(context.Background())
	ms := []*msg{newMsg(ctx, 0, 1), newMsg(ctx, 0, 2), newMsg(ctx, 0, 3)}
	for _, m := range ms {
		mb.Post(m)
	}
	cancel()
	d.run()
	for _, m := range ms {
		wantFailed(t, m, context.Canceled)
	}
	if got := inv.userLog(); len(got) != 0 {
		t.Fatalf("deliveries = %v, want none", got)
	}
	s := mb.Stats()
	if s.Expired != 3 || s.Batches != 0 || s.Batched != 0 || s.Queued != 0 {
		t.Fatalf("stats = %+v", s)
	}
	// The mailbox still works afterwards.
	live := newMsg(context.Background(), 0, 4)
	mb.Post(live)
	d.run()
	if got := inv.userLog(); fmt.Sprint(got) != "[[4]]" {
		t.Fatalf("deliveries = %v, want [[4]]", got)
	}
}

// ---------------------------------------------------------------------------
// Backpressure
// ---------------------------------------------------------------------------

func TestRejectPolicy(t *testing.T) {
	t.Run("idle actor", func(t *testing.T) {
		d := &manualDispatcher{} // the actor does not run until d.run
		mb, inv := newMailbox(mailbox.Options{Capacity: 2, Policy: mailbox.Reject}, d)
		a, b, c := newMsg(context.Background(), 0, 1), newMsg(context.Background(), 0, 2), newMsg(context.Background(), 0, 3)
		mb.Post(a)
		mb.Post(b)
		waitClosed(t, goPost(mb, c), "Post to a full mailbox under Reject")
		wantFailed(t, c, mailbox.ErrBackpressure)
		wantPending(t, a)
		wantPending(t, b)
		if s := mb.Stats(); s.Rejected != 1 || s.Posted != 2 || s.Queued != 2 {
			t.Fatalf("stats = %+v, want Rejected 1, Posted 2, Queued 2", s)
		}
		d.run()
		if got := inv.userLog(); fmt.Sprint(got) != "[[1 2]]" {
			t.Fatalf("deliveries = %v, want [[1 2]]", got)
		}
		// Room again after the drain.
		e := newMsg(context.Background(), 0, 4)
		mb.Post(e)
		wantPending(t, e)
		d.run()
		if got := inv.userLog(); fmt.Sprint(got) != "[[1 2] [4]]" {
			t.Fatalf("deliveries = %v, want [[1 2] [4]]", got)
		}
	})
	t.Run("busy actor", func(t *testing.T) {
		forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
			mb, inv := newMailbox(mailbox.Options{Capacity: 2, Policy: mailbox.Reject}, d)
			g := newGate()
			inv.hook = func(m any) { g.hold(m) }
			defer g.open()

			posted := goPost(mb, newMsg(context.Background(), 0, 0))
			g.waitEntered(t) // command 0 is with the actor, not in the queue

			a, b, c := newMsg(context.Background(), 0, 1), newMsg(context.Background(), 0, 2), newMsg(context.Background(), 0, 3)
			mb.Post(a)
			mb.Post(b)
			waitClosed(t, goPost(mb, c), "Post to a full mailbox under Reject")
			wantFailed(t, c, mailbox.ErrBackpressure)
			if s := mb.Stats(); s.Rejected != 1 || s.Queued != 2 {
				t.Fatalf("stats = %+v, want Rejected 1, Queued 2", s)
			}
			g.open()
			inv.waitDelivered(t, 3)
			waitClosed(t, posted, "first Post")
			wantNotDelivered(t, inv, c)
			if got := inv.userLog(); fmt.Sprint(got) != "[[0] [1 2]]" {
				t.Fatalf("deliveries = %v", got)
			}
			if c.failCount() != 1 {
				t.Fatalf("rejected command failed %d times, want 1", c.failCount())
			}
		})
	})
}

func TestBlockPolicy(t *testing.T) {
	t.Run("proceeds when drained", func(t *testing.T) {
		forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
			mb, inv := newMailbox(mailbox.Options{Capacity: 2}, d) // Block is the default
			g := newGate()
			inv.hook = func(m any) { g.hold(m) }
			defer g.open()

			first := goPost(mb, newMsg(context.Background(), 0, 0))
			g.waitEntered(t)
			mb.Post(newMsg(context.Background(), 0, 1))
			mb.Post(newMsg(context.Background(), 0, 2))

			blocked := newMsg(context.Background(), 0, 3)
			returned := goPost(mb, blocked)
			waitStat(t, "Stats.Blocked", func() uint64 { return mb.Stats().Blocked }, 1)
			// The actor is held, so nothing can make room: the poster waits.
			notClosed(t, returned, "blocked Post")
			wantPending(t, blocked)
			if got := mb.Len(); got != 2 {
				t.Fatalf("Len() = %d while full, want 2", got)
			}
			// The blocked poster's command is pending, not queued:
			// Stats counts it as Waiting (it was in no counter).
			if s := mb.Stats(); s.Queued != 2 || s.Waiting != 1 {
				t.Fatalf("Stats while full: Queued %d, Waiting %d; want 2 and 1", s.Queued, s.Waiting)
			}

			g.open()
			waitClosed(t, returned, "blocked Post after a drain")
			inv.waitDelivered(t, 4)
			waitClosed(t, first, "first Post")

			got := ids(inv.delivered())
			if fmt.Sprint(got) != "[0 1 2 3]" {
				t.Fatalf("delivered %v, want [0 1 2 3]", got)
			}
			wantPending(t, blocked) // delivered, not failed
			s := mb.Stats()
			if s.Posted != 4 || s.Expired != 0 || s.Rejected != 0 || s.Blocked < 1 || s.Waiting != 0 {
				t.Fatalf("stats = %+v", s)
			}
		})
	})
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc, func())
		want error
	}{
		{"canceled", func() (context.Context, context.CancelFunc, func()) {
			ctx, cancel := context.WithCancel(context.Background())
			return ctx, cancel, cancel
		}, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc, func()) {
			ctx := newDeadlineCtx()
			return ctx, ctx.end, ctx.end
		}, context.DeadlineExceeded},
	} {
		t.Run("context ends while blocked/"+tc.name, func(t *testing.T) {
			forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
				mb, inv := newMailbox(mailbox.Options{Capacity: 1}, d)
				g := newGate()
				inv.hook = func(m any) { g.hold(m) }
				defer g.open()

				first := goPost(mb, newMsg(context.Background(), 0, 0))
				g.waitEntered(t)
				queued := newMsg(context.Background(), 0, 1)
				mb.Post(queued)

				ctx, cancel, end := tc.ctx()
				defer cancel()
				blocked := newMsg(ctx, 0, 2)
				returned := goPost(mb, blocked)
				waitStat(t, "Stats.Blocked", func() uint64 { return mb.Stats().Blocked }, 1)
				end()
				waitClosed(t, returned, "blocked Post after its context ended")
				wantFailed(t, blocked, tc.want)
				if got := mb.Stats().Expired; got != 1 {
					t.Fatalf("Expired = %d, want 1", got)
				}

				g.open()
				inv.waitDelivered(t, 2)
				waitClosed(t, first, "first Post")
				wantNotDelivered(t, inv, blocked)
				if got := ids(inv.delivered()); fmt.Sprint(got) != "[0 1]" {
					t.Fatalf("delivered %v, want [0 1]", got)
				}
				if s := mb.Stats(); s.Posted != 2 {
					t.Fatalf("Posted = %d, want 2", s.Posted)
				}
			})
		})
	}
}

// ---------------------------------------------------------------------------
// Close
// ---------------------------------------------------------------------------

func TestClose(t *testing.T) {
	forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
		mb, inv := newMailbox(mailbox.Options{Capacity: 2}, d)
		g := newGate()
		inv.hook = func(m any) { g.hold(m) }
		defer g.open()

		first := goPost(mb, newMsg(context.Background(), 0, 0))
		g.waitEntered(t)
		a, b := newMsg(context.Background(), 0, 1), newMsg(context.Background(), 0, 2)
		mb.Post(a)
		mb.Post(b)
		blocked := newMsg(context.Background(), 0, 3)
		returned := goPost(mb, blocked)
		waitStat(t, "Stats.Blocked", func() uint64 { return mb.Stats().Blocked }, 1)

		if mb.Closed() {
			t.Fatal("Closed() = true before Close")
		}
		errShutdown := errors.New("shutting down")
		if n := mb.Close(errShutdown); n != 2 {
			t.Fatalf("Close returned %d, want 2 (the queued commands)", n)
		}
		if !mb.Closed() {
			t.Fatal("Closed() = false after Close")
		}
		wantFailed(t, a, errShutdown)
		wantFailed(t, b, errShutdown)
		waitClosed(t, returned, "blocked Post after Close")
		wantFailed(t, blocked, errShutdown)

		later := newMsg(context.Background(), 0, 4)
		mb.Post(later)
		wantFailed(t, later, errShutdown)
		viaMailbox := newMsg(context.Background(), 0, 5)
		mb.PostUserMessage(viaMailbox) // the actor.Mailbox door works the same
		wantFailed(t, viaMailbox, errShutdown)
		if mb.Len() != 0 || mb.Stats().Queued != 0 {
			t.Fatalf("Len() = %d after Close, want 0", mb.Len())
		}

		if n := mb.Close(errors.New("again")); n != 0 {
			t.Fatalf("second Close returned %d, want 0", n)
		}
		if n := mb.Close(nil); n != 0 {
			t.Fatalf("third Close returned %d, want 0", n)
		}
		// The first error sticks.
		again := newMsg(context.Background(), 0, 6)
		mb.Post(again)
		wantFailed(t, again, errShutdown)
		for _, m := range []*msg{a, b, blocked, later} {
			if m.failCount() != 1 {
				t.Fatalf("%v failed %d times, want 1", m, m.failCount())
			}
		}

		// Other user and system messages still run after Close.
		mb.PostUserMessage("after-close")
		mb.PostSystemMessage(&actor.Started{})
		g.open()
		inv.waitUntil(t, "the non-command message", func() bool { return len(inv.user) == 2 && len(inv.system) == 1 })
		waitClosed(t, first, "first Post")
		if got := inv.userLog(); fmt.Sprint(got) != "[[0] after-close]" {
			t.Fatalf("deliveries = %v, want [[0] after-close]", got)
		}
		wantNotDelivered(t, inv, a, b, blocked, later, viaMailbox, again)
	})
}

func TestFlush(t *testing.T) {
	forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
		mb, inv := newMailbox(mailbox.Options{Capacity: 2}, d)
		g := newGate()
		inv.hook = func(m any) { g.hold(m) }
		defer g.open()

		first := goPost(mb, newMsg(context.Background(), 0, 0))
		g.waitEntered(t)
		a, b := newMsg(context.Background(), 0, 1), newMsg(context.Background(), 0, 2)
		mb.Post(a)
		mb.Post(b)
		c := newMsg(context.Background(), 0, 3)
		returned := goPost(mb, c)
		waitStat(t, "Stats.Blocked", func() uint64 { return mb.Stats().Blocked }, 1)

		errMoved := errors.New("slot moved")
		if n := mb.Flush(errMoved); n != 2 {
			t.Fatalf("Flush returned %d, want 2", n)
		}
		wantFailed(t, a, errMoved)
		wantFailed(t, b, errMoved)
		// Unlike Close, the blocked poster gets the room and is queued.
		waitClosed(t, returned, "blocked Post after Flush")
		wantPending(t, c)
		if mb.Closed() {
			t.Fatal("Closed() = true after Flush")
		}
		e := newMsg(context.Background(), 0, 4)
		mb.Post(e)
		wantPending(t, e)

		g.open()
		inv.waitDelivered(t, 3)
		waitClosed(t, first, "first Post")
		if got := inv.userLog(); fmt.Sprint(got) != "[[0] [3 4]]" {
			t.Fatalf("deliveries = %v, want [[0] [3 4]]", got)
		}
		if n := mb.Flush(errMoved); n != 0 {
			t.Fatalf("Flush of an empty mailbox returned %d, want 0", n)
		}
		if a.failCount() != 1 || b.failCount() != 1 {
			t.Fatalf("flushed commands failed %d and %d times, want once", a.failCount(), b.failCount())
		}
	})
}

func TestCloseNilUsesErrClosed(t *testing.T) {
	d := &manualDispatcher{}
	mb, inv := newMailbox(mailbox.Options{}, d)
	a, b := newMsg(context.Background(), 0, 1), newMsg(context.Background(), 0, 2)
	mb.Post(a)
	mb.Post(b)
	if n := mb.Close(nil); n != 2 {
		t.Fatalf("Close(nil) returned %d, want 2", n)
	}
	wantFailed(t, a, mailbox.ErrClosed)
	wantFailed(t, b, mailbox.ErrClosed)
	later := newMsg(context.Background(), 0, 3)
	mb.Post(later)
	wantFailed(t, later, mailbox.ErrClosed)
	d.run() // the run scheduled by the first Post finds nothing
	if got := inv.userLog(); len(got) != 0 {
		t.Fatalf("deliveries = %v after Close, want none", got)
	}
	if n := mb.Close(nil); n != 0 {
		t.Fatalf("second Close(nil) returned %d, want 0", n)
	}
}

// slowFailMsg is a msg whose Fail, the first time, says so on entered and
// waits for release.
type slowFailMsg struct {
	*msg
	once             sync.Once
	entered, release chan struct{}
}

func (m *slowFailMsg) Fail(err error) {
	m.once.Do(func() {
		close(m.entered)
		<-m.release
	})
	m.msg.Fail(err)
}

// A second Close returns only once the first has failed every queued
// command: the engine's Close and a connection actor's stop both close
// the mailbox, and the engine's Close returned while the other call was
// still failing thousands of queued commands, their futures pending
// (TestClusterCloseZeroDrainCompletesHeld, under a CPU hog).
func TestCloseWaitsForCloseInProgress(t *testing.T) {
	d := &manualDispatcher{}
	mb, _ := newMailbox(mailbox.Options{}, d)
	slow := &slowFailMsg{msg: newMsg(context.Background(), 0, 0), entered: make(chan struct{}), release: make(chan struct{})}
	mb.Post(slow)
	rest := make([]*msg, 100)
	for i := range rest {
		rest[i] = newMsg(context.Background(), 0, i+1)
		mb.Post(rest[i])
	}
	first := make(chan int, 1)
	go func() { first <- mb.Close(nil) }()
	<-slow.entered // the first Close is failing the queue
	pendingAtReturn := make(chan int, 1)
	go func() {
		mb.Close(nil)
		n := 0
		for _, m := range rest {
			if done, _ := m.result(); !done {
				n++
			}
		}
		pendingAtReturn <- n
	}()
	select {
	case n := <-pendingAtReturn:
		close(slow.release)
		t.Fatalf("the second Close returned while the first was failing the queue (%d of %d commands pending)", n, len(rest))
	case <-time.After(100 * time.Millisecond):
		// Still waiting, as it should (it cannot return before release).
	}
	close(slow.release)
	if n := <-pendingAtReturn; n != 0 {
		t.Fatalf("%d of %d commands pending when the second Close returned", n, len(rest))
	}
	if n := <-first; n != len(rest)+1 {
		t.Fatalf("first Close returned %d, want %d", n, len(rest)+1)
	}
	d.run()
}

// Every command completes exactly once, delivered or failed, while posters,
// the actor and Close race.
func TestCloseRace(t *testing.T) {
	forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
		const posters, per = 6, 1500
		mb, inv := newMailbox(mailbox.Options{Capacity: 16, MaxBatch: 8}, d)
		all := make([][]*msg, posters)
		var wg sync.WaitGroup
		var sent atomic.Int64
		closeAt := int64(posters * per / 2)
		closed := make(chan struct{})
		for p := range posters {
			all[p] = make([]*msg, per)
			for i := range per {
				all[p][i] = newMsg(context.Background(), p, i)
			}
			wg.Go(func() {
				for _, m := range all[p] {
					mb.Post(m)
					if sent.Add(1) == closeAt {
						close(closed)
					}
				}
			})
		}
		select {
		case <-closed:
		case <-time.After(waitTimeout):
			t.Errorf("posters stuck before Close (stats %+v)", mb.Stats())
		}
		mb.Close(nil)
		waitPosters(t, &wg, mb)
		if t.Failed() {
			return
		}

		// Close and Post fail synchronously; everything else is with the actor.
		failed := 0
		for _, ms := range all {
			for _, m := range ms {
				if done, err := m.result(); done {
					if !errors.Is(err, mailbox.ErrClosed) {
						t.Fatalf("%v failed with %v, want ErrClosed", m, err)
					}
					failed++
				}
			}
		}
		inv.waitDelivered(t, posters*per-failed)

		seen := make(map[*msg]int)
		for _, m := range inv.delivered() {
			seen[m]++
		}
		for _, ms := range all {
			for _, m := range ms {
				done, _ := m.result()
				switch {
				case seen[m] > 1:
					t.Fatalf("%v delivered %d times", m, seen[m])
				case seen[m] == 1 && done:
					t.Fatalf("%v both delivered and failed", m)
				case seen[m] == 0 && !done:
					t.Fatalf("%v neither delivered nor failed", m)
				}
			}
		}
		if failed == 0 || failed == posters*per {
			t.Logf("Close failed %d of %d commands", failed, posters*per)
		}
	})
}

// ---------------------------------------------------------------------------
// Other user messages, system messages, suspension
// ---------------------------------------------------------------------------

func TestOtherUserMessagesAndSystemMessages(t *testing.T) {
	forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
		mb, inv := newMailbox(mailbox.Options{}, d)
		g := newGate()
		inv.hook = func(m any) { g.hold(m) }
		defer g.open()

		first := goPost(mb, newMsg(context.Background(), 0, 0))
		g.waitEntered(t)

		started := &actor.Started{}
		mb.Post(newMsg(context.Background(), 0, 1))
		mb.PostUserMessage("x")
		mb.PostUserMessage(newMsg(context.Background(), 0, 2))
		mb.PostSystemMessage(started)
		mb.PostUserMessage(42)
		if got := mb.UserMessageCount(); got != 4 {
			t.Fatalf("UserMessageCount() = %d, want 4 (2 commands, 2 others)", got)
		}
		if got := mb.Len(); got != 2 {
			t.Fatalf("Len() = %d, want 2 commands", got)
		}
		g.open()
		inv.waitUntil(t, "all messages", func() bool { return len(inv.user) == 4 && len(inv.system) == 1 })
		waitClosed(t, first, "first Post")

		// System first, then the other user messages one by one ahead of
		// the batch, each kind in its own order.
		if got := inv.userLog(); fmt.Sprint(got) != "[[0] x 42 [1 2]]" {
			t.Fatalf("user deliveries = %v, want [[0] x 42 [1 2]]", got)
		}
		if sys := inv.systemMessages(); len(sys) != 1 || sys[0] != started {
			t.Fatalf("system deliveries = %v, want the Started message", sys)
		}
		if got := mb.UserMessageCount(); got != 0 {
			t.Fatalf("UserMessageCount() = %d after draining, want 0", got)
		}
	})
}

func TestSystemMessagesFirst(t *testing.T) {
	d := &manualDispatcher{}
	mb, inv := newMailbox(mailbox.Options{}, d)
	var order []string
	inv.hook = func(m any) { order = append(order, fmt.Sprintf("user:%v", m)) }
	inv.sysHook = func(m any) { order = append(order, fmt.Sprintf("sys:%T", m)) }
	mb.Post(newMsg(context.Background(), 0, 1))
	mb.PostUserMessage("u")
	mb.PostSystemMessage(&actor.Started{})
	mb.PostSystemMessage(&actor.Stop{})
	d.run()
	want := "[sys:*actor.Started sys:*actor.Stop user:u user:&{[p0#1]}]"
	if got := fmt.Sprint(order); got != want {
		t.Fatalf("order = %v, want %v", got, want)
	}
}

func TestSuspendResume(t *testing.T) {
	forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
		mb, inv := newMailbox(mailbox.Options{}, d)
		mb.PostSystemMessage(&actor.SuspendMailbox{})
		mb.Post(newMsg(context.Background(), 0, 1))
		mb.PostUserMessage("x")
		mb.Post(newMsg(context.Background(), 0, 2))
		// A system message posted after them is still handled while
		// suspended; once it is, the user messages have been passed over.
		marker := &actor.Started{}
		mb.PostSystemMessage(marker)
		inv.waitUntil(t, "the marker system message", func() bool { return len(inv.system) == 1 })

		if sys := inv.systemMessages(); sys[0] != marker {
			t.Fatalf("system deliveries = %v: SuspendMailbox must not reach the actor", sys)
		}
		if got := inv.userLog(); len(got) != 0 {
			t.Fatalf("user deliveries while suspended: %v", got)
		}
		if got := mb.UserMessageCount(); got != 3 {
			t.Fatalf("UserMessageCount() = %d while suspended, want 3", got)
		}
		// More posts while suspended still wait.
		mb.Post(newMsg(context.Background(), 0, 3))
		mb.PostSystemMessage(marker)
		inv.waitUntil(t, "the second marker", func() bool { return len(inv.system) == 2 })
		if got := inv.userLog(); len(got) != 0 {
			t.Fatalf("user deliveries while suspended: %v", got)
		}

		mb.PostSystemMessage(&actor.ResumeMailbox{})
		inv.waitUntil(t, "delivery after resume", func() bool { return len(inv.user) == 2 })
		if got := inv.userLog(); fmt.Sprint(got) != "[x [1 2 3]]" {
			t.Fatalf("user deliveries after resume = %v, want [x [1 2 3]]", got)
		}
		if got := len(inv.systemMessages()); got != 2 {
			t.Fatalf("%d system messages reached the actor, want 2 (Suspend/Resume are the mailbox's)", got)
		}
	})
}

// ---------------------------------------------------------------------------
// Panics
// ---------------------------------------------------------------------------

func TestPanicInBatch(t *testing.T) {
	forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
		mb, inv := newMailbox(mailbox.Options{}, d)
		g := newGate()
		var m1 *msg
		inv.hook = func(m any) {
			if g.hold(m) {
				return
			}
			b, ok := m.(*mailbox.Batch)
			if !ok || len(b.Messages) == 0 || b.Messages[0] != mailbox.Message(m1) {
				return
			}
			m1.succeed() // the actor completed the first command, then failed
			panic("boom")
		}
		defer g.open()

		first := goPost(mb, newMsg(context.Background(), 0, 0))
		g.waitEntered(t)
		m1 = newMsg(context.Background(), 0, 1)
		m2, m3 := newMsg(context.Background(), 0, 2), newMsg(context.Background(), 0, 3)
		mb.Post(m1)
		mb.Post(m2)
		mb.Post(m3)
		g.open()
		inv.waitUntil(t, "EscalateFailure", func() bool { return len(inv.escalations) == 1 })
		waitClosed(t, first, "first Post (the panic must not reach the poster)")

		if done, err := m1.result(); !done || err != nil {
			t.Fatalf("m1 = (done %v, err %v), want completed by the actor without error", done, err)
		}
		for _, m := range []*msg{m2, m3} {
			wantFailed(t, m, mailbox.ErrActorFailed)
			if _, err := m.result(); !strings.Contains(err.Error(), "boom") {
				t.Fatalf("%v failed with %q, want the panic value in it", m, err)
			}
		}

		e := inv.escalationList()[0]
		if e.reason != "boom" {
			t.Fatalf("EscalateFailure reason = %v, want boom", e.reason)
		}
		if _, ok := e.message.(*mailbox.Batch); !ok {
			t.Fatalf("EscalateFailure message = %T, want *mailbox.Batch", e.message)
		}
		if fmt.Sprint(ids(e.batch)) != "[1 2 3]" {
			t.Fatalf("EscalateFailure got batch %v, want the failed batch [1 2 3]", ids(e.batch))
		}

		// The mailbox keeps delivering.
		m4 := newMsg(context.Background(), 0, 4)
		mb.Post(m4)
		inv.waitDelivered(t, 5)
		wantPending(t, m4)
		if got := inv.userLog(); fmt.Sprint(got) != "[[0] [1 2 3] [4]]" {
			t.Fatalf("deliveries = %v", got)
		}
		// The batch handed to EscalateFailure is the supervisor's to keep:
		// the next batch must not have changed it.
		if b := e.message.(*mailbox.Batch); fmt.Sprint(ids(copyBatch(b))) != "[1 2 3]" {
			t.Fatalf("the failed batch changed to %v after the next drain", ids(copyBatch(b)))
		}
		if s := mb.Stats(); s.Batches != 3 || s.Batched != 5 {
			t.Fatalf("stats = %+v", s)
		}
	})
}

func TestPanicInOtherMessages(t *testing.T) {
	forEachDispatcher(t, func(t *testing.T, d actor.Dispatcher) {
		mb, inv := newMailbox(mailbox.Options{}, d)
		inv.hook = func(m any) {
			if m == "poison" {
				panic("user boom")
			}
		}
		inv.sysHook = func(m any) {
			if _, ok := m.(*actor.Stop); ok {
				panic("sys boom")
			}
		}
		stop := &actor.Stop{}
		mb.PostUserMessage("poison")
		mb.PostSystemMessage(stop)
		inv.waitUntil(t, "two escalations", func() bool { return len(inv.escalations) == 2 })
		mb.PostUserMessage("fine")
		a := newMsg(context.Background(), 0, 1)
		mb.Post(a)
		inv.waitDelivered(t, 1)
		inv.waitUntil(t, "the fine message", func() bool { return len(inv.user) == 3 })

		es := inv.escalationList()
		got := map[any]any{}
		for _, e := range es {
			got[e.reason] = e.message
		}
		if got["user boom"] != "poison" || got["sys boom"] != any(stop) {
			t.Fatalf("escalations = %+v, want each with the message that panicked", es)
		}
		wantPending(t, a)
		if log := inv.userLog(); fmt.Sprint(log) != "[poison fine [1]]" {
			t.Fatalf("deliveries = %v", log)
		}
	})
}

// ---------------------------------------------------------------------------
// Stats
// ---------------------------------------------------------------------------

func TestStatsHistogram(t *testing.T) {
	d := &manualDispatcher{}
	mb, _ := newMailbox(mailbox.Options{Capacity: 10000, MaxBatch: 5000}, d)
	sizes := []int{1, 2, 3, 4, 7, 8, 5000}
	total := 0
	for _, n := range sizes {
		for i := range n {
			mb.Post(newMsg(context.Background(), 0, i))
		}
		d.run()
		total += n
	}
	s := mb.Stats()
	want := [mailbox.BatchBuckets]uint64{}
	want[0] = 1  // 1
	want[1] = 2  // 2, 3
	want[2] = 2  // 4, 7
	want[3] = 1  // 8
	want[11] = 1 // 5000: the last bucket takes everything larger
	if s.BatchSizes != want {
		t.Fatalf("BatchSizes = %v, want %v", s.BatchSizes, want)
	}
	if s.Batches != uint64(len(sizes)) || s.Batched != uint64(total) || s.Posted != uint64(total) || s.MaxBatch != 5000 {
		t.Fatalf("stats = %+v", s)
	}
	if got, wantMean := s.MeanBatch(), float64(total)/float64(len(sizes)); got != wantMean {
		t.Fatalf("MeanBatch = %v, want %v", got, wantMean)
	}
	checkStatsConsistent(t, s)
}

func TestStatsMeanZero(t *testing.T) {
	var s mailbox.Stats
	if got := s.MeanBatch(); got != 0 {
		t.Fatalf("MeanBatch of no batches = %v, want 0", got)
	}
	mb := mailbox.New(mailbox.Options{})
	if got := mb.Stats(); got != (mailbox.Stats{}) {
		t.Fatalf("fresh mailbox stats = %+v, want zero", got)
	}
}

func TestStatsAdd(t *testing.T) {
	a := mailbox.Stats{Queued: 1, Posted: 10, Expired: 2, Rejected: 3, Blocked: 4, Batches: 5, Batched: 10, MaxBatch: 4}
	a.BatchSizes[0], a.BatchSizes[2] = 3, 2
	b := mailbox.Stats{Queued: 2, Posted: 20, Expired: 1, Rejected: 1, Blocked: 1, Batches: 2, Batched: 20, MaxBatch: 16}
	b.BatchSizes[2], b.BatchSizes[4] = 1, 1

	sum := a
	sum.Add(b)
	want := mailbox.Stats{Queued: 3, Posted: 30, Expired: 3, Rejected: 4, Blocked: 5, Batches: 7, Batched: 30, MaxBatch: 16}
	want.BatchSizes[0], want.BatchSizes[2], want.BatchSizes[4] = 3, 3, 1
	if sum != want {
		t.Fatalf("a.Add(b) = %+v, want %+v", sum, want)
	}
	if sum.MeanBatch() != 30.0/7 {
		t.Fatalf("MeanBatch = %v", sum.MeanBatch())
	}
	// MaxBatch takes the larger either way round.
	sum2 := b
	sum2.Add(a)
	if sum2 != want {
		t.Fatalf("b.Add(a) = %+v, want %+v", sum2, want)
	}
	// Adding the zero value changes nothing.
	z := want
	z.Add(mailbox.Stats{})
	if z != want {
		t.Fatalf("Add(zero) changed %+v to %+v", want, z)
	}
}

// ---------------------------------------------------------------------------
// With a real protoactor actor
// ---------------------------------------------------------------------------

// A panicking actor is escalated by the mailbox, restarted by protoactor's
// default supervisor (SuspendMailbox, then ResumeMailbox after the restart)
// and then gets the commands that came later.
func TestProtoactorRestart(t *testing.T) {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer system.Shutdown()

	mb := mailbox.New(mailbox.Options{})
	var (
		mu       sync.Mutex
		got      []int
		restarts int
	)
	okDone := make(chan struct{})
	props := actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case *actor.Restarting:
			mu.Lock()
			restarts++
			mu.Unlock()
		case *mailbox.Batch:
			for _, cmd := range m.Messages {
				cmd := cmd.(*msg)
				if cmd.id < 0 {
					panic("poison")
				}
				mu.Lock()
				got = append(got, cmd.id)
				mu.Unlock()
				cmd.succeed()
				if cmd.id == 2 {
					close(okDone)
				}
			}
		}
	}, actor.WithMailbox(func() actor.Mailbox { return mb }))
	pid := system.Root.Spawn(props)

	poison := newMsg(context.Background(), 0, -1)
	system.Root.Send(pid, poison)
	// Wait for the failure before sending more, so that they are not in the
	// poisoned batch.
	waitClosed(t, poison.finished, "the poisoned command to fail")
	wantFailed(t, poison, mailbox.ErrActorFailed)
	system.Root.Send(pid, newMsg(context.Background(), 0, 1))
	system.Root.Send(pid, newMsg(context.Background(), 0, 2))
	waitClosed(t, okDone, "commands after the restart")
	if err := system.Root.StopFuture(pid).Wait(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != "[1 2]" || restarts != 1 {
		t.Fatalf("got %v with %d restarts, want [1 2] after 1 restart", got, restarts)
	}
}

// Seal closes the mailbox at once (Post refuses, no drain takes a queued
// command) and leaves failing what it took to the func it returns; a
// Close while that has not run waits for it. The engine's Close relies on
// it: it seals every mailbox, then closes the connections while the
// queued commands are failed (failing 16,000 futures took up to a second
// under -race and a CPU hog, and the connections' closes waited for it).
func TestSealClosesBeforeFailing(t *testing.T) {
	d := &manualDispatcher{}
	mb, inv := newMailbox(mailbox.Options{}, d)
	queued := make([]*msg, 10)
	for i := range queued {
		queued[i] = newMsg(context.Background(), 0, i)
		mb.Post(queued[i])
	}
	fail := mb.Seal(nil)
	if !mb.Closed() || mb.Len() != 0 {
		t.Fatalf("after Seal: Closed %v, Len %d; want closed and empty", mb.Closed(), mb.Len())
	}
	late := newMsg(context.Background(), 1, 0)
	if mb.Post(late) {
		t.Fatal("Post after Seal accepted a command")
	}
	if done, err := late.result(); !done || !errors.Is(err, mailbox.ErrClosed) {
		t.Fatalf("command posted after Seal: done %v, err %v; want ErrClosed", done, err)
	}
	d.run()
	if b := inv.batches(); len(b) != 0 {
		t.Fatalf("the actor got %d batches after Seal, want none", len(b))
	}
	for i, m := range queued {
		if done, _ := m.result(); done {
			t.Fatalf("queued command %d failed by Seal itself, want it left to fail", i)
		}
	}
	closed := make(chan int, 1)
	go func() { closed <- mb.Close(nil) }()
	select {
	case n := <-closed:
		t.Fatalf("Close returned %d before Seal's fail ran", n)
	case <-time.After(50 * time.Millisecond):
	}
	if n := fail(); n != len(queued) {
		t.Fatalf("fail() = %d, want %d", n, len(queued))
	}
	for i, m := range queued {
		if done, err := m.result(); !done || !errors.Is(err, mailbox.ErrClosed) {
			t.Fatalf("queued command %d: done %v, err %v; want ErrClosed", i, done, err)
		}
	}
	if n := <-closed; n != 0 {
		t.Fatalf("Close after Seal returned %d, want 0", n)
	}
}
