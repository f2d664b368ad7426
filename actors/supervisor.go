package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

// Supervisor owns the connection actors. It spawns one per ConnState when
// it starts and stops them all when it is stopped. When a connection actor
// fails (its connection broke, or it panicked), the supervisor restarts it
// after an exponential backoff with jitter (Policy.Backoff), scheduled on a
// timer, never by sleeping; while a node's circuit breaker is open it
// keeps the node's actors down and, on a timer, asks the breaker for a
// permit and probes the node with a PING of its own, restarting the
// actors once the probe succeeds and the breaker closes.
//
// A broken connection is replaced by the supervisor, not by the actor: it
// dials the node (and checks PING) on a goroutine of its own, bounded by
// the node's DialTimeout, installs the new connection and only then
// restarts the actor, which sends the commands it kept for a retry first.
// Until then the actor's mailbox stays suspended: nothing is written on
// the dead connection, and no actor goroutine waits on a handshake. The
// commands queued meanwhile are failed by their own contexts (the engine
// registers each deadline); on every probe tick the supervisor drops the
// ones whose context has ended from the mailboxes of the connections that
// are down, and counts a breaker failure for each such node that had
// some whose deadline passed (not only cancelled by their callers: that
// says nothing about the node) while a dial of it is under way, once the
// connection has been down for dialGrace (see there: a healthy node's
// slow dial is not its failure, nor is a reconnect backoff, during which
// it was asked nothing): commands to it keep failing, so the breaker opens within
// dialGrace and a few ticks even when each dial takes the whole
// DialTimeout (a frozen server accepts TCP connections and never
// answers), or each fails sooner (its handshake's read timeout).
//
// Ready is closed once every connection actor has been spawned, Stopped
// once the supervisor and all of them have stopped.
type Supervisor struct {
	conns []*ConnState
	nodes []*Node
	// ProbeInterval is how often open breakers are asked for a permit.
	// Default 50ms.
	ProbeInterval time.Duration

	ready     chan struct{}
	stopped   chan struct{}
	readyOnce sync.Once
	stopOnce  sync.Once

	system  *actor.ActorSystem
	self    *actor.PID
	byID    map[string]*ConnState // child PID id -> state
	removed map[string]*ConnState // stopping children whose driver closes once they stopped
	waiting map[*actor.PID]*ConnState
	dialing map[*actor.PID]*ConnState // children whose connection is being re-dialled
	// dialStop ends the re-dial of a child (a Reset of its node: the
	// address now leads to another server).
	dialStop map[*actor.PID]dialRun
	// pending holds the children whose restart waits out its backoff
	// (restartAfter): a Reset of their node restarts them at once.
	pending map[*actor.PID]pendingRestart
	seq     uint64            // numbers the restarts scheduled, so that a stale one is told apart
	probing map[*Node]dialRun // the probe under way of each node
	// down holds the outage of each connection seen down at a probe tick
	// (expire): the grace before what expires behind its re-dial counts.
	down map[*ConnState]outage

	probes     sync.WaitGroup     // probe and re-dial goroutines
	probeCtx   context.Context    // cancelled when the supervisor stops
	stopProbes context.CancelFunc //

	tmu       sync.Mutex
	timers    map[*time.Timer]struct{}
	timersOff bool // set when stopping: no new timers
}

// NewSupervisor returns a supervisor for conns.
func NewSupervisor(conns []*ConnState) *Supervisor {
	s := &Supervisor{
		conns:    conns,
		ready:    make(chan struct{}),
		stopped:  make(chan struct{}),
		byID:     map[string]*ConnState{},
		removed:  map[string]*ConnState{},
		waiting:  map[*actor.PID]*ConnState{},
		dialing:  map[*actor.PID]*ConnState{},
		dialStop: map[*actor.PID]dialRun{},
		pending:  map[*actor.PID]pendingRestart{},
		probing:  map[*Node]dialRun{},
		down:     map[*ConnState]outage{},
		timers:   map[*time.Timer]struct{}{},
	}
	s.probeCtx, s.stopProbes = context.WithCancel(context.Background())
	seen := map[*Node]bool{}
	for _, c := range conns {
		if c.Node != nil && !seen[c.Node] {
			seen[c.Node] = true
			s.nodes = append(s.nodes, c.Node)
		}
	}
	return s
}

// Ready is closed once every connection actor has been spawned.
func (s *Supervisor) Ready() <-chan struct{} { return s.ready }

// Stopped is closed when the supervisor and every connection actor have
// stopped.
func (s *Supervisor) Stopped() <-chan struct{} { return s.stopped }

// Spawn starts the supervisor in system. It returns its PID.
func (s *Supervisor) Spawn(system *actor.ActorSystem) (*actor.PID, error) {
	s.system = system
	props := actor.PropsFromProducer(
		func() actor.Actor { return s },
		actor.WithSupervisor(strategy{s}),
	)
	pid, err := system.Root.SpawnNamed(props, fmt.Sprintf("vactor-supervisor-%p", s))
	if err != nil {
		return nil, fmt.Errorf("actors: spawn supervisor: %w", err)
	}
	return pid, nil
}

// Add spawns connection actors for states under the running supervisor
// (cluster mode: a node seen for the first time) and waits until they run.
func (s *Supervisor) Add(states []*ConnState) {
	done := make(chan struct{})
	s.system.Root.Send(s.self, addConns{states: states, done: done})
	select {
	case <-done:
	case <-s.stopped:
	}
}

// Remove stops the connection actors of states (cluster mode: a node that
// left the cluster): their queued commands fail with err, the pipelines
// they have written complete, then their connections close. It returns
// once the actors are told to stop.
func (s *Supervisor) Remove(states []*ConnState, err error) {
	done := make(chan struct{})
	s.system.Root.Send(s.self, removeConns{states: states, err: err, done: done})
	select {
	case <-done:
	case <-s.stopped:
	}
}

// Reset closes node's circuit breaker and restarts at once the connection
// actors of node it keeps down, while the breaker is open or while their
// reconnect waits out its backoff: the node's address now leads to
// another server (sentinel mode: the primary changed), so its failures
// say nothing about the new one. (Left to its backoff, up to
// MaxRetryBackoff, a down actor kept the node's expired commands counting
// against the fresh breaker, which could open again and hold the writes
// for its whole open timeout: 1.6 s after the switch in one chaos run.) It
// returns at once. Safe for concurrent use.
//
// The node's Reset count changes before Reset returns: a connection
// dialled before (see ConnState.install) and a failure of one (see
// strategy.HandleFailure) are known to concern the former server from
// then on, whenever the supervisor handles the Reset.
//
// The breaker is closed before Reset returns too: the commands the
// switch's Retire cuts and keeps for the new primary never meet the
// former server's open breaker (which failed them with ErrCircuitOpen
// when the supervisor had not handled the Reset yet).
func (s *Supervisor) Reset(node *Node) {
	// Under refuseMu: a refusal's purge that found the former server's
	// breaker open ends before it closes, and one that comes after finds
	// it closed (ConnState.FailIfOpen). Nothing here may open the breaker:
	// its opening's listener takes refuseMu (review-41 1: a RecordSuccess
	// here opened a failure-rate breaker whose failures were just under
	// the rate, and the listener waited for this goroutine).
	node.refuseMu.Lock()
	gen := node.resets.Add(1)
	if b, ok := node.Breaker.(interface{ Reset() }); ok {
		// failsafe-go's: closes it (OnStateChanged reports it: SyncOpen)
		// and forgets the former server's failures, which, kept, opened
		// it with one of the new server's (a closed breaker keeps its
		// counts).
		b.Reset()
	} else if !node.Breaker.IsClosed() {
		node.Breaker.Close()
	}
	node.refuseMu.Unlock()
	s.tell(resetNode{node: node, gen: gen})
}

// dialRun is a re-dial under way: stop ends it; gen is its node's Reset
// count when it began.
type dialRun struct {
	stop context.CancelFunc
	gen  uint64
}

// outage is when the supervisor first saw a connection down (at a probe
// tick), for the node's server of Reset count gen: a Reset (a switch to
// a new server) starts a new one.
type outage struct {
	since time.Time
	gen   uint64
}

// minDialGrace is dialGrace's least: twice the slowest healthy dial
// seen on a loaded 2-core machine (255 ms, a new primary's in a
// sentinel chaos run).
const minDialGrace = 500 * time.Millisecond

// dialGrace is how long a connection of n may be down before the
// commands that expire behind its re-dial count against n's breaker (see
// expire): until then the node has not failed to answer, and the
// commands' deadlines are their callers' own. Twice the node's last
// connect (a remote node's dial takes several round trips, TLS's
// included), at least minDialGrace, at most half the DialTimeout.
// Without it a dial that took 250 ms (CircuitBreakerThreshold probe
// ticks) opened the breaker of a node that answered it, when callers
// used short deadlines: a new primary refused every command for
// CircuitBreakerOpenTimeout once its connection was up. It runs from the
// start of the outage, not of each dial: a dial that fails sooner (its
// handshake's read timeout) would otherwise never let them count.
func dialGrace(n *Node) time.Duration {
	return min(max(minDialGrace, 2*time.Duration(n.connectTime.Load())), n.DialTimeout/2)
}

// Messages the supervisor sends itself.
type (
	resetNode struct {
		node *Node
		gen  uint64 // the node's Reset count this Reset made
	}
	addConns struct {
		states []*ConnState
		done   chan struct{}
	}
	removeConns struct {
		states []*ConnState
		err    error
		done   chan struct{}
	}
	restartChild struct {
		pid *actor.PID
		seq uint64 // the pending restart it ends (see restartAfter)
	}
	redialed struct {
		pid *actor.PID
		err error
		// stale: the dial began before a Reset of the node and failed
		// (it may have aimed at the former server): dialled again at once.
		stale bool
		// resets is the node's Reset count when the dial began: a Reset
		// handled between the dial's failure and this message makes the
		// failure stale too.
		resets uint64
	}
	probeTick   struct{}
	probeResult struct {
		node *Node
		err  error
		gen  uint64 // the node's Reset count when the probe began
	}
)

// Receive implements actor.Actor.
func (s *Supervisor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.self = ctx.Self()
		for i, st := range s.conns {
			pid := ctx.SpawnPrefix(st.Props(), fmt.Sprintf("conn-%d-", i))
			s.byID[pid.Id] = st
		}
		s.readyOnce.Do(func() { close(s.ready) })
		if len(s.nodes) > 0 {
			s.after(s.probeInterval(), probeTick{})
		}
	case addConns:
		for _, st := range m.states {
			pid := ctx.SpawnPrefix(st.Props(), fmt.Sprintf("conn-%d-", len(s.byID)))
			s.byID[pid.Id] = st
			s.conns = append(s.conns, st)
			if st.Node != nil && !slices.Contains(s.nodes, st.Node) {
				s.nodes = append(s.nodes, st.Node)
			}
		}
		close(m.done)
	case removeConns:
		s.remove(ctx, m)
	case resetNode:
		// A dial under way goes to the server the address led to before
		// (a frozen former primary answers no handshake: the dial waited
		// for the read timeout, the writes with it, and the breaker
		// opened): end it; its result, stale, starts a dial of the new
		// one (see redialed). First: the dials started below reach the
		// new server (one ended here, its failure counted, reopened the
		// breaker just closed), and so does one begun after Reset
		// counted this one (its gen), before this message.
		for pid, st := range s.dialing {
			if d, ok := s.dialStop[pid]; ok && st.Node == m.node && d.gen < m.gen {
				d.stop()
			}
		}
		// So does a probe of the former server (its failure, counted,
		// reopened the breaker; while it hung, the new server was not
		// probed): ended, its result ignored, the node free to be probed.
		if p, ok := s.probing[m.node]; ok && p.gen < m.gen {
			p.stop()
			delete(s.probing, m.node)
		}
		m.node.refuseMu.Lock() // as in Reset: a refusal's purge and this close are one step apart
		if !m.node.Breaker.IsClosed() {
			m.node.Breaker.Close() // OnStateChanged reports it (SyncOpen)
		}
		m.node.refuseMu.Unlock()
		for pid, st := range s.waiting {
			if st.Node == m.node {
				delete(s.waiting, pid)
				s.revive(ctx.(actor.Supervisor), pid, st)
			}
		}
		for pid, p := range s.pending {
			if p.st.Node == m.node {
				delete(s.pending, pid) // its timer's restartChild is then ignored
				if s.byID[pid.Id] != nil {
					s.revive(ctx.(actor.Supervisor), pid, p.st)
				}
			}
		}
	case *actor.Terminated:
		if st := s.removed[m.Who.Id]; st != nil {
			delete(s.removed, m.Who.Id)
			st.CloseDriver()
		}
	case restartChild:
		if p, ok := s.pending[m.pid]; !ok || p.seq != m.seq {
			return // restarted earlier by a Reset of its node
		}
		delete(s.pending, m.pid)
		st := s.byID[m.pid.Id]
		if st == nil {
			return // removed meanwhile
		}
		if st.Node != nil && st.Node.Open() {
			s.waiting[m.pid] = st // restarted when the node's breaker closes
			return
		}
		s.revive(ctx.(actor.Supervisor), m.pid, st)
	case redialed:
		delete(s.dialing, m.pid)
		if d, ok := s.dialStop[m.pid]; ok {
			d.stop()
			delete(s.dialStop, m.pid)
		}
		st := s.byID[m.pid.Id]
		if st == nil {
			return // removed meanwhile; its driver is closed with it
		}
		if errors.Is(m.err, mailbox.ErrClosed) {
			return // being closed: the stop follows
		}
		if m.stale || (m.err != nil && st.Node.resets.Load() != m.resets) {
			// The node's address leads to another server since the dial
			// began (a Reset handled after the dial failed, before this
			// message, found no dial to end and no restart pending): its
			// failure says nothing about the new server, and waiting out
			// the backoff (up to MaxRetryBackoff) held every command of
			// the actor that long after the switch.
			s.revive(ctx.(actor.Supervisor), m.pid, st)
			return
		}
		if m.err != nil {
			st.failures.Add(1)
			d := s.backoff(st)
			s.retrying(st, d, m.err)
			s.restartAfter(d, m.pid, st)
			return
		}
		delete(s.down, st) // connected: the outage is over, the next has a grace of its own
		if st.Node.Open() {
			s.waiting[m.pid] = st
			return
		}
		ctx.(actor.Supervisor).RestartChildren(m.pid)
	case probeTick:
		for _, n := range s.nodes {
			if _, busy := s.probing[n]; !busy && n.Open() && n.Breaker.TryAcquirePermit() {
				ctx, stop := context.WithCancel(context.WithValue(s.probeCtx, probeKey{}, true))
				gen := n.resets.Load()
				s.probing[n] = dialRun{stop: stop, gen: gen}
				s.probes.Add(1)
				go s.probe(ctx, n, gen)
			}
		}
		s.expire()
		s.after(s.probeInterval(), probeTick{})
	case probeResult:
		if p, ok := s.probing[m.node]; ok && p.gen == m.gen {
			p.stop()
			delete(s.probing, m.node)
		}
		if m.gen != m.node.resets.Load() {
			// A probe of the node's former server (begun before a
			// Reset): its result says nothing about the new one.
			return
		}
		if m.err != nil {
			m.node.RecordFailure(m.err)
			return
		}
		m.node.Breaker.RecordSuccess()
		if m.node.Open() {
			return
		}
		for pid, st := range s.waiting {
			if st.Node == m.node {
				delete(s.waiting, pid)
				s.revive(ctx.(actor.Supervisor), pid, st)
			}
		}
	case *actor.Stopping:
		s.stopTimers()
		s.stopProbes()
	case *actor.Stopped:
		s.stopTimers()
		s.stopProbes()
		s.stopOnce.Do(func() {
			s.probes.Wait() // cancelled above: they end within a dial
			close(s.stopped)
		})
	}
}

// remove stops the actors of m.states and forgets them and their nodes.
func (s *Supervisor) remove(ctx actor.Context, m removeConns) {
	defer close(m.done)
	gone := map[*ConnState]bool{}
	for _, st := range m.states {
		gone[st] = true
		// Queued commands fail with m.err, and so do the held ones when
		// the actor stops (CloseErr is read on its goroutine after the
		// stop message, which the mailbox orders after this write).
		st.CloseErr = m.err
		st.Mailbox.Close(m.err)
	}
	for _, child := range ctx.Children() {
		st := s.byID[child.Id]
		if !gone[st] {
			continue
		}
		delete(s.byID, child.Id)
		delete(s.waiting, child)
		delete(s.dialing, child)
		if d, ok := s.dialStop[child]; ok {
			d.stop()
			delete(s.dialStop, child)
		}
		s.removed[child.Id] = st
		ctx.Stop(child)
	}
	s.conns = slices.DeleteFunc(s.conns, func(st *ConnState) bool { return gone[st] })
	for st := range gone {
		delete(s.down, st)
	}
	s.nodes = slices.DeleteFunc(s.nodes, func(n *Node) bool {
		return !slices.ContainsFunc(s.conns, func(st *ConnState) bool { return st.Node == n })
	})
}

func (s *Supervisor) probeInterval() time.Duration {
	if s.ProbeInterval > 0 {
		return s.ProbeInterval
	}
	return 50 * time.Millisecond
}

// probe dials the node afresh and sends PING; it reports to the supervisor.
// It runs on its own goroutine, bounded by the dial timeout, so a slow node
// never blocks the supervisor.
func (s *Supervisor) probe(ctx context.Context, n *Node, gen uint64) {
	defer s.probes.Done()
	conn, err := n.connect(ctx)
	if err == nil {
		_ = conn.Close()
	}
	s.tell(probeResult{node: n, err: err, gen: gen})
}

// revive restarts the child pid, after replacing its connection when it
// broke: the dial runs on a goroutine (redial) whose result comes back as
// a redialed message. Runs on the supervisor's goroutine.
func (s *Supervisor) revive(sup actor.Supervisor, pid *actor.PID, st *ConnState) {
	if st.Node == nil || !st.Down() {
		sup.RestartChildren(pid)
		return
	}
	if s.dialing[pid] != nil {
		return // a dial is under way; its result restarts the actor
	}
	s.dialing[pid] = st
	ctx, stop := context.WithCancel(s.probeCtx)
	gen := st.Node.resets.Load()
	s.dialStop[pid] = dialRun{stop: stop, gen: gen}
	s.probes.Add(1)
	go s.redial(ctx, pid, st, gen)
}

// redial connects st's node again and installs the new connection in st.
// A failure counts against the node's breaker (not while the server is
// loading, nor when the supervisor is stopping). A connection dialled
// while the ConnState is being closed is closed at once (install).
func (s *Supervisor) redial(ctx context.Context, pid *actor.PID, st *ConnState, resets uint64) {
	defer s.probes.Done()
	conn, err := st.Node.connect(ctx)
	stale := false
	switch {
	case err == nil:
		if !st.install(conn, resets) {
			_ = conn.Close()
			err = mailbox.ErrClosed
		}
	case s.probeCtx.Err() != nil: // the supervisor stops
	case st.Node.resets.Load() != resets:
		// The node was Reset while this dial ran: its failure says
		// nothing about the node's new server; not counted, dialled again.
		stale = true
	case !errors.Is(err, errLoading):
		st.Node.RecordFailure(err)
	}
	s.tell(redialed{pid: pid, err: err, stale: stale, resets: resets})
}

// tell sends msg to the supervisor from one of its goroutines, unless it
// is stopping (a message to a stopped actor becomes a dead letter, which
// protoactor reports on a goroutine of its own).
func (s *Supervisor) tell(msg any) {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if !s.timersOff {
		s.system.Root.Send(s.self, msg)
	}
}

// expire runs on each probe tick: the mailboxes of the connections that
// broke and are not replaced yet (suspended until the new connection is in
// place) drop the commands whose context has ended, failing them with its
// error, which frees their room at once; a node with such commands gets
// one breaker failure per tick (see the type's doc) when some of their
// deadlines passed behind a dial of it, once the connection has been down
// for dialGrace. Commands their callers cancelled are not counted: a
// caller that gave up (a client's request aborted, a shutdown) says
// nothing about the node, and a burst of them, past the grace, opened
// the breaker of a node whose dial was merely slow.
func (s *Supervisor) expire() {
	var failing map[*Node]bool
	// The connections whose dial of the node's server is under way. Not
	// one whose dial of the node's former server outlives the Reset's
	// cancel (a driver's handshake that does not end with its ctx): it
	// cannot dial the new server yet, and what expires meanwhile says
	// nothing about the new one (counted, it opened a healthy new
	// primary's breaker). Nor a connection waiting out its reconnect
	// backoff: the node was asked nothing (counted, short deadlines
	// opened a healthy node's breaker within a MinRetryBackoff of 600 ms).
	var dialing map[*ConnState]bool
	for pid, st := range s.dialing {
		if d, ok := s.dialStop[pid]; ok && st.Node != nil && d.gen == st.Node.resets.Load() {
			if dialing == nil {
				dialing = map[*ConnState]bool{}
			}
			dialing[st] = true
		}
	}
	now := time.Now()
	for _, st := range s.conns {
		if st.Node == nil || !st.Down() {
			delete(s.down, st)
			continue
		}
		gen := st.Node.resets.Load()
		o, ok := s.down[st]
		if !ok || o.gen != gen {
			o = outage{since: now, gen: gen}
			s.down[st] = o
		}
		// A connection Retire took out of service is replaced at once:
		// what expires meanwhile says nothing about the node. One to the
		// former server that failed after a switch is counted, though:
		// its re-dials go to the new server, and a frozen new primary
		// must open the breaker within dialGrace and a few ticks, not
		// after Threshold dial timeouts (review-28 2).
		if _, timedOut := st.Mailbox.Expire(); timedOut > 0 && !st.moving.Load() && dialing[st] && now.Sub(o.since) >= dialGrace(st.Node) && !st.Node.Open() {
			if failing == nil {
				failing = map[*Node]bool{}
			}
			failing[st.Node] = true
		}
	}
	for n := range failing {
		n.RecordFailure(nil) // the connection's own failure was counted
	}
}

// backoff returns the delay before st's actor is restarted (or re-dialled)
// after its latest failure.
func (s *Supervisor) backoff(st *ConnState) time.Duration {
	b := defaultBackoff
	if st.Policy != nil {
		b = st.Policy.Backoff
	}
	n := int(st.failures.Load()) - 1
	return b.Delay(max(n, 0))
}

// defaultBackoff spaces the reconnects of connection actors without a
// Policy.
var defaultBackoff = policies.Backoff{Min: 10 * time.Millisecond, Max: time.Second}

// after sends msg to the supervisor after d, unless it stops first.
func (s *Supervisor) after(d time.Duration, msg any) {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if s.timersOff {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		s.tmu.Lock()
		_, live := s.timers[t]
		delete(s.timers, t)
		s.tmu.Unlock()
		if live {
			s.system.Root.Send(s.self, msg)
		}
	})
	s.timers[t] = struct{}{}
}

func (s *Supervisor) stopTimers() {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	s.timersOff = true
	for t := range s.timers {
		t.Stop()
		delete(s.timers, t)
	}
}

// strategy restarts a failed connection actor after Policy.Backoff for its
// number of consecutive failures (not protoactor's backoff strategy, whose
// delay grows linearly).
type strategy struct{ s *Supervisor }

// HandleFailure implements actor.SupervisorStrategy. It runs on the
// supervisor's goroutine.
func (st strategy) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason any, _ any) {
	cs := st.s.byID[child.Id]
	if cs == nil {
		sup.RestartChildren(child)
		return
	}
	if cs.Policy == nil && !cs.Down() {
		st.s.revive(sup, child, cs) // a panic: restart at once
		return
	}
	if cs.Down() && (cs.moving.Swap(false) || cs.stale()) {
		// Retired for a new primary (sentinel switch), or its connection
		// to the former one failed and the failure is handled after the
		// switch's Reset (which found no restart pending): dial the new
		// primary now. Left to the backoff (MinRetryBackoff, perhaps
		// seconds), the writes waited that long after every failover,
		// and the commands that expired meanwhile opened the new
		// primary's breaker.
		cs.failures.Store(0)
		st.s.revive(sup, child, cs)
		return
	}
	d := st.s.backoff(cs)
	st.s.retrying(cs, d, reason)
	st.s.restartAfter(d, child, cs)
}

// pendingRestart is a child's restart waiting out its backoff.
type pendingRestart struct {
	st  *ConnState
	seq uint64
}

// restartAfter restarts child (state st) after d, unless a Reset of its
// node restarts it first. Runs on the supervisor's goroutine.
func (s *Supervisor) restartAfter(d time.Duration, child *actor.PID, st *ConnState) {
	s.seq++
	s.pending[child] = pendingRestart{st: st, seq: s.seq}
	s.after(d, restartChild{pid: child, seq: s.seq})
}

// retrying reports a RetryScheduled event when st holds commands to send
// again once its actor restarts after d.
func (s *Supervisor) retrying(st *ConnState, d time.Duration, reason any) {
	if st.Hooks == nil {
		return
	}
	n := st.held()
	if n == 0 {
		return
	}
	err, ok := reason.(error)
	if !ok && reason != nil {
		err = fmt.Errorf("%v", reason)
	}
	st.Hooks.Emit(hooks.Retry{Node: st.NodeAddr(), Commands: n, Attempt: int(st.failures.Load()), Backoff: d, Reason: err})
}

var _ actor.SupervisorStrategy = strategy{}
