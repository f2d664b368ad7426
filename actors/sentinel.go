package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/internal/stagger"
	"github.com/vactor-io/vactor/policies"
)

// SentinelView is what the sentinel actor believes about the primary at
// one moment: a value, replaced whole on every change.
type SentinelView struct {
	// Master is the primary's address, "host:port" as the sentinels give it.
	Master string
	// Gen changes (grows by one) whenever Master does.
	Gen uint64
	// Epoch is the primary's config epoch as the sentinels report it; -1
	// when unknown.
	Epoch int64
	// Replicas are the replicas the sentinels see healthy (not down, link
	// up), in the order a sentinel listed them.
	Replicas []string
	// floor: Epoch is a lower bound, set when the actor switched on an
	// event (events carry no epoch); a sentinel's answer confirms it.
	floor bool
}

// SentinelStats counts what the sentinel actor did.
type SentinelStats struct {
	// Switches counts changes of the primary the engine followed.
	Switches uint64
	// Holds counts failovers seen starting (commands were held from then
	// until the switch); Aborts those that ended without a switch
	// (-failover-abort-*), HoldTimeouts those held for HoldLimit.
	Holds, Aborts, HoldTimeouts uint64
	// Resolutions counts the times the sentinels were asked; Failed those
	// where no sentinel gave an acceptable answer.
	Resolutions, Failed uint64
	// Subscribed is the number of sentinels whose events are followed now.
	Subscribed int
}

// SentinelState is the sentinel topology actor's configuration and its
// handle for the engine. The actor owns what the engine knows of a
// sentinel-monitored primary (its view) and keeps it current:
//
//   - it asks the sentinels, in turn, for the primary (SENTINEL
//     GET-MASTER-ADDR-BY-NAME, with SENTINEL MASTER, REPLICAS and
//     SENTINELS in the same pipeline) on request (Request, Sync: the
//     engine's dials resolve again on every reconnect), after each
//     (re)subscription, and every Interval; one resolution at a time, on a
//     goroutine of its own (bounded by Timeout), its result coming back as
//     a message. The next sentinel is asked as soon as the previous one
//     failed or after Stagger without an answer, those asked before still
//     running (see askEach), so that a sentinel that accepts connections
//     and never answers delays the others by Stagger only. The first
//     acceptable answer wins (see acceptable): a sentinel leading a
//     failover, or one naming an older primary than the view's, is passed
//     over;
//   - it follows the events of every sentinel it knows (the configured
//     ones, and those the sentinels name), on one subscription per
//     sentinel, each re-established after a backoff when it fails (one
//     the sentinels named that an answer no longer names and that cannot
//     be reached is forgotten: see forget): the
//     events that start a failover come from its leader only, which may be
//     any sentinel. A failover of the current primary starting
//     (+try-failover, +selected-slave, +failover-state-send-slaveof-noone)
//     calls OnHold; the promotion (+promoted-slave) or a switch
//     (+switch-master) names the new primary: the view changes and
//     OnSwitch is called; the failover's abort (-failover-abort-*, once
//     every sentinel that started one aborted it) or HoldLimit without a
//     switch calls OnRelease.
//
// The callbacks run on the actor's goroutine: they must not block. The
// engine fills the exported fields before Spawn and does not change them
// afterwards. Its methods are safe for concurrent use.
type SentinelState struct {
	// MasterName is the name the sentinels monitor the primary under.
	MasterName string
	// Sentinels are the configured sentinel addresses, asked in this
	// order.
	Sentinels []string
	// Aliases maps the addresses a configured sentinel given by host name
	// resolves to ("127.0.0.1:26379" for "localhost:26379") to it: the
	// sentinels name each other by IP address (SENTINEL SENTINELS), and
	// one learnt that way under an alias is the configured one, not
	// another to follow. Set by the engine before Spawn; may be nil.
	Aliases map[string]string
	// Dial opens a connection to a sentinel (its own credentials, no
	// database).
	Dial func(ctx context.Context, addr string) (drivers.ValkeyConn, error)
	// Interval between resolutions when nothing asks for one; 0: none.
	Interval time.Duration
	// Timeout bounds one resolution, and one subscription's dial.
	Timeout time.Duration
	// AskTimeout bounds the dial and the query of one sentinel within a
	// resolution: a sentinel that accepts connections and never answers
	// (frozen) is given up after that long (at most what is left of the
	// resolution's time). Default 1s.
	AskTimeout time.Duration
	// Stagger is how long a resolution waits for one sentinel's answer
	// before it asks the next one as well (the first still running): a
	// frozen sentinel delays the others that long, not AskTimeout or the
	// whole resolution. Default 100ms.
	Stagger time.Duration
	// Backoff spaces the attempts to subscribe to a sentinel again.
	Backoff policies.Backoff
	// HoldLimit bounds how long a failover is held (OnHold until OnSwitch
	// or OnRelease): the primary's failover-timeout as the sentinels
	// report it plus a second, at most HoldLimit. Default 10s.
	HoldLimit time.Duration
	// TickEvery is how often OnTick runs while a failover is held.
	// Default 50ms.
	TickEvery time.Duration
	// NoEvents turns the event subscriptions off: the actor follows the
	// primary through resolutions only (tests of that path).
	NoEvents bool

	// OnHold is called when a failover of the current primary starts;
	// candidate is the replica chosen for promotion ("" when not known
	// yet) and replicas the healthy replicas of the view.
	OnHold func(candidate string, replicas []string)
	// OnSwitch is called when the primary changed, with the new view.
	OnSwitch func(from string, to *SentinelView)
	// OnRelease is called when a held failover ended without a switch.
	OnRelease func()
	// OnReplicas is called when the healthy replicas changed.
	OnReplicas func(v *SentinelView)
	// OnTick is called every TickEvery while a failover is held.
	OnTick func()

	view atomic.Pointer[SentinelView]

	life    context.Context // ends at Stop: dials and resolutions give up
	cancel  context.CancelFunc
	system  *actor.ActorSystem
	pid     *actor.PID
	stopped chan struct{}
	ready   chan struct{} // closed once the first subscription attempt to every configured sentinel, and to those Discover heard of, ended
	named   []string      // the sentinels the answers to Discover named (set before Spawn)
	once    sync.Once     // init
	stop    sync.Once
	wg      sync.WaitGroup // resolution and subscription goroutines

	tmu    sync.Mutex // timers and tell after Stop
	timers map[*time.Timer]struct{}
	off    bool

	cmu   sync.Mutex // command connections to sentinels, used by one resolution at a time
	cmds  map[string]drivers.ValkeyConn
	cdone bool

	switches, holds, aborts, holdTimeouts, resolutions, failed atomic.Uint64
	subscribed                                                 atomic.Int64
}

// View returns the current view (never nil after Discover or Spawn).
func (s *SentinelState) View() *SentinelView {
	if v := s.view.Load(); v != nil {
		return v
	}
	return &SentinelView{Epoch: -1}
}

// Stats returns the actor's counters.
func (s *SentinelState) Stats() SentinelStats {
	return SentinelStats{
		Switches: s.switches.Load(), Holds: s.holds.Load(), Aborts: s.aborts.Load(),
		HoldTimeouts: s.holdTimeouts.Load(), Resolutions: s.resolutions.Load(), Failed: s.failed.Load(),
		Subscribed: int(s.subscribed.Load()),
	}
}

// Discover asks the sentinels in turn for the primary (staggered, see
// askEach) and checks each answer with verify (the engine dials the
// address and checks ROLE), until one passes; it sets the first view. It
// runs on the caller's goroutine, before Spawn. Its error joins what
// each sentinel came to, in the order of Sentinels.
func (s *SentinelState) Discover(ctx context.Context, verify func(ctx context.Context, addr string) error) error {
	s.init()
	a, named, err := s.askEach(ctx, s.Sentinels, func(ctx context.Context, a sentinelAnswer) error {
		if a.master == "" {
			return fmt.Errorf("sentinel %s does not monitor %q", a.from, s.MasterName)
		}
		if err := verify(ctx, a.master); err != nil {
			return fmt.Errorf("sentinel %s names %s: %w", a.from, a.master, err)
		}
		return nil
	})
	if a == nil {
		return fmt.Errorf("%w %q: %w", ErrNoMaster, s.MasterName, err)
	}
	s.view.Store(&SentinelView{Master: a.master, Gen: 1, Epoch: a.epoch, Replicas: a.replicas})
	s.named = named
	return nil
}

// askEach asks the sentinels of order (each once) for the primary, in
// turn, staggered (stagger.First): the next one as soon as the previous
// one failed or after Stagger without an answer, those asked before still
// running. A sentinel that accepts connections and never answers (frozen)
// thus delays the others by Stagger, not by AskTimeout or the whole of
// ctx, and an answer from an earlier sentinel still counts while a later
// one is asked. check accepts (nil) or refuses an answer, on the goroutine
// that asked; the first answer accepted wins. askEach returns only once
// every sentinel it asked is done: on a winner, or when ctx ends, the
// others are cancelled (they end at once) and waited for, so nothing is
// left behind. It returns the winner (nil if none), the sentinels that the
// answers received name, and, without a winner, the error that joins what
// each sentinel came to, in order: those not asked before ctx ended say
// so.
func (s *SentinelState) askEach(ctx context.Context, order []string, check func(ctx context.Context, a sentinelAnswer) error) (*sentinelAnswer, []string, error) {
	var list []string
	for _, addr := range order {
		if !slices.Contains(list, addr) {
			list = append(list, addr) // one query per sentinel: they share its cached connection
		}
	}
	if len(list) == 0 {
		return nil, nil, errors.New("no sentinel to ask")
	}
	gap := s.Stagger
	if gap <= 0 {
		gap = 100 * time.Millisecond
	}
	type outcome struct {
		ans      sentinelAnswer
		answered bool // ans is the sentinel's answer (check may have refused it)
	}
	won, out := stagger.First(ctx, len(list), gap, func(ctx context.Context, i int) (outcome, error) {
		a, err := s.ask(ctx, list[i])
		if err != nil {
			return outcome{}, err
		}
		return outcome{a, true}, check(ctx, a)
	})
	var known []string
	for _, o := range out {
		if o.V.answered {
			known = append(known, o.V.ans.sentinels...)
		}
	}
	if won >= 0 {
		return &out[won].V.ans, known, nil
	}
	errs := make([]error, len(list))
	for i, o := range out {
		if o.Asked {
			errs[i] = o.Err
			continue
		}
		cause := ctx.Err()
		if cause == nil {
			cause = errors.New("no answer")
		}
		errs[i] = fmt.Errorf("sentinel %s: not asked: %w", list[i], cause)
	}
	return nil, known, policies.JoinLine(errs...)
}

// ask queries one sentinel over its cached command connection (dialled on
// first use; dropped when the query fails or ctx ends it).
func (s *SentinelState) ask(ctx context.Context, addr string) (sentinelAnswer, error) {
	d := s.AskTimeout
	if d <= 0 {
		d = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	s.cmu.Lock()
	conn := s.cmds[addr]
	closed := s.cdone
	s.cmu.Unlock()
	if closed {
		return sentinelAnswer{}, context.Canceled
	}
	if conn == nil {
		var err error
		if conn, err = s.Dial(ctx, addr); err != nil {
			return sentinelAnswer{}, fmt.Errorf("sentinel %s: %w", addr, err)
		}
		s.cmu.Lock()
		if s.cdone {
			s.cmu.Unlock()
			_ = conn.Close()
			return sentinelAnswer{}, context.Canceled
		}
		if s.cmds == nil {
			s.cmds = map[string]drivers.ValkeyConn{}
		}
		s.cmds[addr] = conn
		s.cmu.Unlock()
	}
	// A query that ctx ends (its bound, or askEach giving up on it once
	// another sentinel answered) fails at once: the driver may wait for a
	// frozen sentinel's reply until the connection's own deadline, whatever
	// ctx says; closing the connection ends the query now.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	a, err := querySentinel(ctx, conn, addr, s.MasterName)
	ended := !stop() // the connection is closed (an answer that came first stands)
	if ended && err != nil {
		err = fmt.Errorf("sentinel %s: %w", addr, ctx.Err()) // rather than the driver's "closed"
	}
	if err != nil || ended {
		s.cmu.Lock()
		if s.cmds[addr] == conn {
			delete(s.cmds, addr)
		}
		s.cmu.Unlock()
		_ = conn.Close()
	}
	return a, err
}

// Messages of the sentinel actor.
type (
	sentinelResolve  struct{ done chan struct{} } // done nil: background
	sentinelResolved struct {
		answer *sentinelAnswer // the first acceptable one; nil: none
		known  []string        // sentinels named by the answers
		err    error
	}
	sentinelPoll   struct{}
	sentinelTick   struct{ hold uint64 }
	sentinelExpiry struct{ hold uint64 }
	subUp          struct {
		addr string
		gen  uint64
		conn drivers.ValkeyConn
		err  error
		// leads: the sentinel said, once subscribed, that it leads a
		// failover of master (see subscribe).
		leads   bool
		master  string
		timeout time.Duration // its failover-timeout, 0 if unknown
	}
	subDown struct {
		addr string
		gen  uint64
		err  error
	}
	subAgain struct {
		addr string
		gen  uint64
	}
)

// init prepares what Discover, Spawn and Stop share; once.
func (s *SentinelState) init() {
	s.once.Do(func() {
		s.life, s.cancel = context.WithCancel(context.Background())
		s.stopped = make(chan struct{})
		s.ready = make(chan struct{})
		s.timers = map[*time.Timer]struct{}{}
	})
}

// Subscribed is closed once the first attempt to subscribe to each
// configured sentinel's events has ended (subscribed, or failed: a
// sentinel down is retried after a backoff): from then on, a failover
// that a reachable sentinel leads is followed from its start. New waits
// for it (bounded), so that a failover right after New is held too.
func (s *SentinelState) Subscribed() <-chan struct{} {
	s.init()
	return s.ready
}

// Spawn starts the actor in system, after Discover.
func (s *SentinelState) Spawn(system *actor.ActorSystem) error {
	s.init()
	if s.HoldLimit <= 0 {
		s.HoldLimit = 10 * time.Second
	}
	if s.TickEvery <= 0 {
		s.TickEvery = 50 * time.Millisecond
	}
	s.system = system
	pid, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &sentinelActor{s: s} }),
		fmt.Sprintf("vactor-sentinel-%p", s))
	if err != nil {
		return fmt.Errorf("actors: spawn sentinel actor: %w", err)
	}
	s.setPID(pid)
	return nil
}

// setPID records the actor's PID (Spawn, and Started, which may run
// first: its goroutines tell the actor).
func (s *SentinelState) setPID(pid *actor.PID) {
	s.tmu.Lock()
	s.pid = pid
	s.tmu.Unlock()
}

// Request asks for a resolution in the background; it returns at once.
// Requests made while one runs are coalesced into one more.
func (s *SentinelState) Request() { s.tell(sentinelResolve{}) }

// Sync has the sentinels asked for the primary and waits for the answer
// (or for ctx to end, or the actor to stop): a resolution running when
// it is called counts if it started after the primary last changed,
// else a new one follows it. The engine calls it before each dial of the
// primary; dials at the same time share one resolution.
func (s *SentinelState) Sync(ctx context.Context) {
	done := make(chan struct{})
	if !s.tell(sentinelResolve{done: done}) {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	case <-s.stopped:
	}
}

// Stop stops the actor, its subscriptions and resolutions, closes its
// connections, and waits for all of it.
func (s *SentinelState) Stop() {
	s.init()
	s.stop.Do(func() {
		s.tmu.Lock()
		s.off = true
		for t := range s.timers {
			t.Stop()
		}
		s.timers = nil
		s.tmu.Unlock()
		if s.cancel != nil {
			s.cancel()
		}
		s.tmu.Lock()
		pid := s.pid
		s.tmu.Unlock()
		if pid != nil {
			s.system.Root.Stop(pid)
			<-s.stopped
		}
		s.wg.Wait()
		s.cmu.Lock()
		s.cdone = true
		conns := s.cmds
		s.cmds = nil
		s.cmu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
}

// tell sends msg to the actor unless it is stopping; it reports whether
// it did.
func (s *SentinelState) tell(msg any) bool {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if s.off || s.pid == nil {
		return false
	}
	s.system.Root.Send(s.pid, msg)
	return true
}

// after sends msg to the actor after d, unless it stops first.
func (s *SentinelState) after(d time.Duration, msg any) {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if s.off {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		s.tmu.Lock()
		_, live := s.timers[t]
		delete(s.timers, t)
		off, pid := s.off, s.pid
		s.tmu.Unlock()
		if live && !off {
			s.system.Root.Send(pid, msg)
		}
	})
	s.timers[t] = struct{}{}
}

// sentinelSub is the actor's subscription to one sentinel's events.
type sentinelSub struct {
	gen      uint64
	conn     drivers.ValkeyConn // nil while (re)connecting
	failures int
	tried    bool // the first attempt ended
}

// sentinelActor is the sentinel topology actor.
type sentinelActor struct {
	s *SentinelState

	known     []string // sentinels to ask, preferred first
	subs      map[string]*sentinelSub
	untried   int // configured sentinels whose first subscription attempt has not ended
	resolving bool
	waiters   []chan struct{} // for the resolution running
	next      []chan struct{} // for the one after it
	again     bool            // another resolution was asked for meanwhile

	holding   map[string]bool // sentinels that started a failover of the primary
	candidate string          // the replica chosen for promotion, once known
	hold      uint64          // hold generation: ticks and the expiry of older holds are ignored
	holdLimit time.Duration
	runGen    uint64 // the view generation the running resolution started at
}

// Receive implements actor.Actor.
func (a *sentinelActor) Receive(ctx actor.Context) {
	s := a.s
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.setPID(ctx.Self())
		a.subs = map[string]*sentinelSub{}
		a.holdLimit = s.HoldLimit
		for _, addr := range s.Sentinels {
			if a.subs[addr] == nil {
				a.untried++
			}
			a.learn(addr)
		}
		// The sentinels the configured ones named are followed from the
		// start too: Subscribed waits for them (qa-AY AY-3: they were
		// learnt at the first resolution, after New returned, and a
		// failover one of them led in that second started no hold).
		for _, addr := range s.named {
			n := len(a.subs)
			if a.learn(addr); len(a.subs) > n {
				a.untried++
			}
		}
		if a.untried == 0 || s.NoEvents {
			close(s.ready)
			a.untried = -1
		}
		a.resolve(nil)
		if s.Interval > 0 {
			s.after(s.Interval, sentinelPoll{})
		}
	case sentinelResolve:
		a.resolve(m.done)
	case sentinelPoll:
		a.resolve(nil)
		s.after(s.Interval, sentinelPoll{})
	case sentinelResolved:
		a.resolved(m)
	case subUp:
		a.subUp(m)
	case subDown:
		if sub := a.subs[m.addr]; sub != nil && sub.gen == m.gen {
			if sub.conn != nil {
				_ = sub.conn.Close()
				sub.conn = nil
				s.subscribed.Add(-1)
			}
			a.retry(m.addr, sub)
		}
	case subAgain:
		if sub := a.subs[m.addr]; sub != nil && sub.gen == m.gen && sub.conn == nil {
			a.subscribe(m.addr, sub)
		}
	case sentinelEvent:
		a.event(m)
	case sentinelTick:
		if m.hold == a.hold && len(a.holding) > 0 {
			if s.OnTick != nil {
				s.OnTick()
			}
			s.after(s.TickEvery, sentinelTick{hold: a.hold})
		}
	case sentinelExpiry:
		if m.hold == a.hold && len(a.holding) > 0 {
			s.holdTimeouts.Add(1)
			a.release()
			a.resolve(nil)
		}
	case *actor.Stopping:
		for _, sub := range a.subs {
			if sub.conn != nil {
				_ = sub.conn.Close()
				sub.conn = nil
			}
		}
		s.subscribed.Store(0)
		for _, w := range append(a.waiters, a.next...) {
			close(w)
		}
		a.waiters, a.next = nil, nil
	case *actor.Stopped:
		close(s.stopped)
	}
}

// learn adds a sentinel to ask and subscribes to its events.
func (a *sentinelActor) learn(addr string) {
	if addr == "" || a.subs[addr] != nil {
		return
	}
	if c, ok := a.s.Aliases[addr]; ok && a.subs[c] != nil {
		return // a configured sentinel, under the address it resolves to
	}
	a.known = append(a.known, addr)
	sub := &sentinelSub{}
	a.subs[addr] = sub
	if !a.s.NoEvents {
		a.subscribe(addr, sub)
	}
}

// subscribe dials the sentinel and subscribes to its events on a
// goroutine; the outcome comes back as subUp, the end of the connection as
// subDown.
func (a *sentinelActor) subscribe(addr string, sub *sentinelSub) {
	s := a.s
	sub.gen++
	gen := sub.gen
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.life, s.Timeout)
		defer cancel()
		conn, err := s.Dial(ctx, addr)
		if err != nil {
			s.tell(subUp{addr: addr, gen: gen, err: err})
			return
		}
		ps, ok := conn.(drivers.ValkeyPubSub)
		if !ok {
			_ = conn.Close()
			s.tell(subUp{addr: addr, gen: gen, err: ErrNoPubSub})
			return
		}
		done := ps.ListenValkey(valkey.PubSubHooks{OnMessage: func(m valkey.PubSubMessage) {
			s.tell(sentinelEvent{from: addr, channel: m.Channel, payload: m.Message, at: time.Now()})
		}})
		b := conn.B()
		for _, r := range conn.DoMulti(ctx,
			b.Subscribe().Channel(sentinelChannels...).Build(),
			b.Psubscribe().Pattern(evAbortPrefix+"*").Build(),
		) {
			if err == nil {
				err = r.Error()
			}
		}
		if err != nil {
			_ = conn.Close()
			<-done
			s.tell(subUp{addr: addr, gen: gen, err: err})
			return
		}
		// A failover that started before the subscription sent its first
		// events unheard: ask the sentinel, now subscribed, whether it
		// leads one (on the same connection: RESP3 takes commands while
		// subscribed; an error only leaves the question open).
		up := subUp{addr: addr, gen: gen, conn: conn}
		if ans, err := querySentinel(ctx, conn, addr, s.MasterName); err == nil && ans.inFailover {
			up.leads, up.master, up.timeout = true, ans.master, ans.failoverTimeout
		}
		if !s.tell(up) {
			_ = conn.Close()
		}
		select {
		case err = <-done:
			s.tell(subDown{addr: addr, gen: gen, err: err})
		case <-s.life.Done():
			// Stopping: the actor may never see subUp (a stopped actor
			// drops its queued messages), so close the connection here.
			_ = conn.Close()
			<-done
		}
	}()
}

func (a *sentinelActor) subUp(m subUp) {
	sub := a.subs[m.addr]
	if sub == nil || sub.gen != m.gen {
		if m.conn != nil {
			_ = m.conn.Close()
		}
		return
	}
	if m.err != nil {
		a.retry(m.addr, sub)
	} else {
		sub.conn, sub.failures = m.conn, 0
		a.s.subscribed.Add(1)
		if m.leads && m.master == a.s.View().Master && !a.holding[m.addr] {
			// It leads a failover of the primary that began before the
			// engine heard its events (New during a failover, a
			// subscription re-established in the middle of one): hold as
			// on +try-failover. Before, the engine wrote to the old
			// primary unheld until the switch, and lost those writes.
			if m.timeout > 0 {
				a.holdLimit = holdFor(m.timeout, a.s.HoldLimit)
			}
			a.startHold(m.addr, "")
		}
	}
	// Only now, with the count updated: New reads Stats as soon as ready
	// closes (closing it first let New see one sentinel fewer).
	if !sub.tried {
		sub.tried = true
		if a.untried--; a.untried == 0 {
			close(a.s.ready)
		}
	}
	if m.err == nil {
		// Events may have been missed while not subscribed.
		a.resolve(nil)
	}
}

// retry subscribes to the sentinel again after a backoff.
func (a *sentinelActor) retry(addr string, sub *sentinelSub) {
	sub.gen++
	d := a.s.Backoff.Delay(sub.failures)
	sub.failures++
	a.s.after(d, subAgain{addr: addr, gen: sub.gen})
}

// resolve starts a resolution, or, when one runs, makes another follow
// it; done (if not nil) is closed once a resolution started after this
// call has ended.
func (a *sentinelActor) resolve(done chan struct{}) {
	if a.resolving && done != nil && a.runGen == a.s.View().Gen {
		// The one running started after the primary last changed: as
		// fresh as one started now, for a caller about to dial.
		a.waiters = append(a.waiters, done)
		return
	}
	if a.resolving {
		a.again = true
		if done != nil {
			a.next = append(a.next, done)
		}
		return
	}
	if done != nil {
		a.waiters = append(a.waiters, done)
	}
	a.resolving = true
	s := a.s
	s.resolutions.Add(1)
	order := slices.Clone(a.known)
	view := s.View()
	a.runGen = view.Gen
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.life, s.Timeout)
		defer cancel()
		ans, known, err := s.askEach(ctx, order, func(_ context.Context, a sentinelAnswer) error {
			switch {
			case a.master == "":
				return fmt.Errorf("sentinel %s does not monitor %q", a.from, s.MasterName)
			case a.inFailover:
				return fmt.Errorf("sentinel %s: passed over: it leads a failover of %s", a.from, a.master)
			case !acceptable(a, view):
				return fmt.Errorf("sentinel %s: passed over: it names %s (config epoch %d), not newer than the primary known, %s (epoch %d)", a.from, a.master, a.epoch, view.Master, view.Epoch)
			}
			return nil
		})
		res := sentinelResolved{answer: ans, known: known}
		if ans == nil {
			res.err = fmt.Errorf("%w %q: %w", ErrNoMaster, s.MasterName, err)
		}
		s.tell(res)
	}()
}

// holdFor is the hold limit for a primary whose sentinels have the
// given failover-timeout: a second longer, at most limit. Saturated: for
// the longest failover-timeouts timeout+1s overflowed into a negative
// limit, and every hold was released as soon as it began.
func holdFor(timeout, limit time.Duration) time.Duration {
	if timeout >= limit-time.Second {
		return limit
	}
	return timeout + time.Second
}

// resolved applies a resolution's answer.
func (a *sentinelActor) resolved(m sentinelResolved) {
	s := a.s
	for _, addr := range m.known {
		a.learn(addr)
	}
	if m.answer != nil {
		a.forget(m)
	}
	if ans := m.answer; ans != nil && acceptable(*ans, s.View()) {
		a.prefer(ans.from)
		if ans.failoverTimeout > 0 {
			// The sentinels abort a failover failover-timeout after its
			// last step: hold a little longer, so that the abort (or the
			// promotion) ends the hold rather than the limit.
			a.holdLimit = holdFor(ans.failoverTimeout, s.HoldLimit)
		}
		v := s.View()
		if ans.master != v.Master {
			a.switchTo(ans.master, ans.epoch, false, ans.replicas)
		} else {
			nv := *v
			if ans.epoch >= 0 {
				// Confirmed with an epoch; without one (SENTINEL MASTER
				// refused) a floor from an event stays, so that a lagging
				// sentinel naming the old primary is still passed over.
				nv.Epoch, nv.floor = ans.epoch, false
			}
			changed := !slices.Equal(nv.Replicas, ans.replicas)
			nv.Replicas = ans.replicas
			s.view.Store(&nv)
			if changed && s.OnReplicas != nil {
				s.OnReplicas(&nv)
			}
		}
	} else {
		s.failed.Add(1)
	}
	for _, w := range a.waiters {
		close(w)
	}
	a.waiters = nil
	a.resolving = false
	if a.again {
		a.again = false
		next := a.next
		a.next = nil
		a.resolve(nil)
		a.waiters = append(a.waiters, next...)
	}
}

// forget drops the sentinels learned from the answers (not configured)
// that the answers of m no longer name and whose subscription is down
// (after its first attempt), unless a failover it leads holds the
// primary: sentinels replaced over weeks at new addresses (pods
// rescheduled) would otherwise be kept for ever, each subscribed again
// at its backoff and asked at resolutions. One named again is learnt
// again. m has an answer (whose sentinel names the others it knows).
func (a *sentinelActor) forget(m sentinelResolved) {
	named := map[string]bool{m.answer.from: true}
	for _, addr := range m.known {
		named[addr] = true
	}
	for addr, sub := range a.subs {
		if named[addr] || sub.conn != nil || !sub.tried || a.holding[addr] || slices.Contains(a.s.Sentinels, addr) {
			continue
		}
		delete(a.subs, addr)
		a.known = slices.DeleteFunc(a.known, func(k string) bool { return k == addr })
		a.s.cmu.Lock()
		conn := a.s.cmds[addr]
		delete(a.s.cmds, addr)
		a.s.cmu.Unlock()
		if conn != nil {
			_ = conn.Close()
		}
	}
}

// prefer moves addr to the front of the sentinels asked.
func (a *sentinelActor) prefer(addr string) {
	if i := slices.Index(a.known, addr); i > 0 {
		a.known = slices.Insert(slices.Delete(a.known, i, i+1), 0, addr)
	}
}

// event handles one sentinel event.
func (a *sentinelActor) event(ev sentinelEvent) {
	s := a.s
	v := s.View()
	if ev.channel == evSwitchMaster {
		name, from, to, ok := parseSwitch(ev.payload)
		if ok && name == s.MasterName && from == v.Master && to != v.Master {
			a.switchTo(to, max(v.Epoch, 0)+1, true, nil)
		}
		return
	}
	in, ok := parseInstance(ev.payload)
	if !ok || in.name != s.MasterName {
		return
	}
	switch {
	case ev.channel == evTryFailover || ev.channel == evSelectedReplica || ev.channel == evSendReplicaOfNo:
		if in.master != v.Master {
			return
		}
		candidate := ""
		if in.addr != in.master {
			candidate = in.addr
		}
		a.startHold(ev.from, candidate)
	case ev.channel == evPromoted:
		if in.master == v.Master && in.addr != v.Master {
			a.switchTo(in.addr, max(v.Epoch, 0)+1, true, nil)
		}
	case len(ev.channel) > len(evAbortPrefix) && ev.channel[:len(evAbortPrefix)] == evAbortPrefix:
		if in.master != v.Master || !a.holding[ev.from] {
			return
		}
		delete(a.holding, ev.from)
		if len(a.holding) == 0 {
			s.aborts.Add(1)
			a.release()
		}
		a.resolve(nil)
	default:
		// The end of a failover, a replica or sentinel going down or
		// coming back, a new replica: ask again.
		a.resolve(nil)
	}
}

// startHold records that sentinel from started a failover of the primary;
// the first one calls OnHold and arms the hold's limit.
func (a *sentinelActor) startHold(from, candidate string) {
	s := a.s
	if a.holding == nil {
		a.holding = map[string]bool{}
	}
	first := len(a.holding) == 0
	a.holding[from] = true
	if !first {
		if candidate != "" && candidate != a.candidate && s.OnHold != nil {
			a.candidate = candidate // known now: the engine may sync again
			s.OnHold(candidate, s.View().Replicas)
		}
		return
	}
	s.holds.Add(1)
	a.hold++
	a.candidate = candidate
	if s.OnHold != nil {
		s.OnHold(candidate, s.View().Replicas)
	}
	s.after(a.holdLimit, sentinelExpiry{hold: a.hold})
	s.after(s.TickEvery, sentinelTick{hold: a.hold})
}

// release ends a hold without a switch.
func (a *sentinelActor) release() {
	clear(a.holding)
	a.hold++
	if a.s.OnRelease != nil {
		a.s.OnRelease()
	}
}

// switchTo makes to the primary and tells the engine. floor says epoch is
// a lower bound (from an event); replicas nil keeps the view's, less to.
func (a *sentinelActor) switchTo(to string, epoch int64, floor bool, replicas []string) {
	s := a.s
	old := s.View()
	if replicas == nil {
		replicas = slices.DeleteFunc(slices.Clone(old.Replicas), func(r string) bool { return r == to })
	}
	nv := &SentinelView{Master: to, Gen: old.Gen + 1, Epoch: epoch, Replicas: replicas, floor: floor}
	s.view.Store(nv)
	s.switches.Add(1)
	clear(a.holding)
	a.hold++ // ticks and expiry of the hold end
	if s.OnSwitch != nil {
		s.OnSwitch(old.Master, nv)
	}
	if floor {
		a.resolve(nil) // learn the epoch and the replicas
	}
}
