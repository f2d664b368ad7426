package actors

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
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
	probing map[*Node]bool

	probes     sync.WaitGroup     // probe goroutines
	probeCtx   context.Context    // cancelled when the supervisor stops
	stopProbes context.CancelFunc //

	tmu       sync.Mutex
	timers    map[*time.Timer]struct{}
	timersOff bool // set when stopping: no new timers
}

// NewSupervisor returns a supervisor for conns.
func NewSupervisor(conns []*ConnState) *Supervisor {
	s := &Supervisor{
		conns:   conns,
		ready:   make(chan struct{}),
		stopped: make(chan struct{}),
		byID:    map[string]*ConnState{},
		removed: map[string]*ConnState{},
		waiting: map[*actor.PID]*ConnState{},
		probing: map[*Node]bool{},
		timers:  map[*time.Timer]struct{}{},
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

// Messages the supervisor sends itself.
type (
	addConns struct {
		states []*ConnState
		done   chan struct{}
	}
	removeConns struct {
		states []*ConnState
		err    error
		done   chan struct{}
	}
	restartChild struct{ pid *actor.PID }
	probeTick    struct{}
	probeResult  struct {
		node *Node
		err  error
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
	case *actor.Terminated:
		if st := s.removed[m.Who.Id]; st != nil {
			delete(s.removed, m.Who.Id)
			st.CloseDriver()
		}
	case restartChild:
		st := s.byID[m.pid.Id]
		if st != nil && st.Node != nil && st.Node.Open() {
			s.waiting[m.pid] = st // restarted when the node's breaker closes
			return
		}
		ctx.(actor.Supervisor).RestartChildren(m.pid)
	case probeTick:
		for _, n := range s.nodes {
			if n.Open() && !s.probing[n] && n.Breaker.TryAcquirePermit() {
				s.probing[n] = true
				s.probes.Add(1)
				go s.probe(n)
			}
		}
		s.after(s.probeInterval(), probeTick{})
	case probeResult:
		delete(s.probing, m.node)
		if m.err != nil {
			m.node.Breaker.RecordFailure()
			return
		}
		m.node.Breaker.RecordSuccess()
		if m.node.Open() {
			return
		}
		var pids []*actor.PID
		for pid, st := range s.waiting {
			if st.Node == m.node {
				pids = append(pids, pid)
				delete(s.waiting, pid)
			}
		}
		if len(pids) > 0 {
			ctx.(actor.Supervisor).RestartChildren(pids...)
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
		s.removed[child.Id] = st
		ctx.Stop(child)
	}
	s.conns = slices.DeleteFunc(s.conns, func(st *ConnState) bool { return gone[st] })
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
func (s *Supervisor) probe(n *Node) {
	defer s.probes.Done()
	ctx, cancel := context.WithTimeout(s.probeCtx, n.DialTimeout)
	defer cancel()
	conn, err := n.Dial(ctx)
	if err == nil {
		err = conn.Do(ctx, conn.B().Ping().Build()).Error()
		_ = conn.Close()
	}
	s.system.Root.Send(s.self, probeResult{node: n, err: err})
}

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
func (st strategy) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, _ any, _ any) {
	cs := st.s.byID[child.Id]
	if cs == nil || cs.Policy == nil {
		sup.RestartChildren(child)
		return
	}
	n := int(cs.failures.Load()) - 1
	st.s.after(cs.Policy.Backoff.Delay(max(n, 0)), restartChild{pid: child})
}

var _ actor.SupervisorStrategy = strategy{}
