package actors

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// TopologyState is the topology actor's configuration and its handle for
// the engine. The actor reloads the cluster slot map: on request (a MOVED,
// a failed node, a slot without owner), and every Interval. It runs one
// load at a time by construction (loads happen on the actor's goroutine),
// coalesces requests (a burst of MOVED replies costs one load), and spaces
// background loads by MinGap. The engine fills the exported fields before
// Spawn and does not change them afterwards. Its methods are safe for
// concurrent use.
type TopologyState struct {
	// Load fetches the slot map and installs it (bumping Epoch); ctx is
	// bounded by Timeout.
	Load func(ctx context.Context) error
	// Epoch returns the current slot map's epoch.
	Epoch func() uint64
	// Interval between periodic loads; 0: none.
	Interval time.Duration
	// MinGap is the least time between two background loads.
	MinGap time.Duration
	// SyncGap is the least time between the start of a load and that of
	// one a Sync asks for: a Sync within it waits for the load at its end
	// (or returns once another made the map newer). Failing commands
	// (a slot without owner while a primary is down) ask for loads back to
	// back, ~170 a second per engine before; 0: not spaced.
	SyncGap time.Duration
	// Timeout bounds one load.
	Timeout time.Duration
	// Degraded, when set, reports whether a node the map routes to is
	// down (its connection broke, its breaker is open): a failover may be
	// under way, and the map must follow it soon. Every Watch while it
	// holds, the actor reloads the map (spaced by Watch from the last
	// load), so that a replica's promotion is seen within about Watch
	// of the first load that reports it, whatever callers do meanwhile.
	Degraded func() bool
	// Watch is how often Degraded is checked. 0: never.
	Watch time.Duration

	system *actor.ActorSystem
	pid    *actor.PID
	queued atomic.Bool // a background request is in the mailbox
	// loads counts the loads begun (on the actor's goroutine): a Sync
	// made before one began is answered by it, whether it changed the
	// map or failed.
	loads   atomic.Uint64
	stopped chan struct{}
	stop    sync.Once
	tmu     sync.Mutex
	timer   *time.Timer
	watch   *time.Timer
	off     bool
}

// Messages of the topology actor.
type (
	topoRequest struct {
		since uint64        // the epoch the caller saw; 0 for background
		loads uint64        // the loads begun when the caller asked
		done  chan struct{} // closed after the load; nil for background
	}
	topoTick  struct{}
	topoWatch struct{}
)

// Spawn starts the topology actor in system.
func (s *TopologyState) Spawn(system *actor.ActorSystem) error {
	s.system = system
	s.stopped = make(chan struct{})
	pid, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &topologyActor{s: s} }),
		fmt.Sprintf("vactor-topology-%p", s))
	if err != nil {
		return err
	}
	s.pid = pid
	s.schedule()
	s.scheduleWatch()
	return nil
}

// Request asks for a background reload; it returns at once. Requests made
// while one is queued, or within MinGap of the last load, are dropped.
func (s *TopologyState) Request() {
	if s.pid == nil || !s.queued.CompareAndSwap(false, true) {
		return
	}
	s.system.Root.Send(s.pid, topoRequest{})
}

// Sync reloads the map and returns once the slot map is newer than the
// epoch the caller saw (since), once a load begun after the call has
// ended (whether it changed the map or failed), or once the actor has
// stopped. A load that another caller asked for counts: when every node
// refuses the engine (a revoked password), the callers of a burst share
// one failed load instead of waiting for one each, SyncGap apart.
func (s *TopologyState) Sync(since uint64) {
	if s.pid == nil {
		return
	}
	done := make(chan struct{})
	s.system.Root.Send(s.pid, topoRequest{since: since, loads: s.loads.Load(), done: done})
	select {
	case <-done:
	case <-s.stopped:
	}
}

// Stop stops the actor (a load in progress finishes first) and waits.
func (s *TopologyState) Stop() {
	if s.pid == nil {
		return
	}
	s.stop.Do(func() {
		s.tmu.Lock()
		s.off = true
		if s.timer != nil {
			s.timer.Stop()
		}
		if s.watch != nil {
			s.watch.Stop()
		}
		s.tmu.Unlock()
		s.system.Root.Stop(s.pid)
	})
	<-s.stopped
}

// schedule arms the periodic reload.
func (s *TopologyState) schedule() {
	if s.Interval <= 0 {
		return
	}
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if s.off {
		return
	}
	s.timer = time.AfterFunc(s.Interval, func() { s.tell(topoTick{}) })
}

// scheduleWatch arms the next Degraded check.
func (s *TopologyState) scheduleWatch() {
	if s.Watch <= 0 || s.Degraded == nil {
		return
	}
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if s.off {
		return
	}
	s.watch = time.AfterFunc(s.Watch, func() { s.tell(topoWatch{}) })
}

// tell sends msg to the actor from a timer unless Stop ran (a message to
// a stopped actor becomes a dead letter, reported on a goroutine).
func (s *TopologyState) tell(msg any) {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if !s.off {
		s.system.Root.Send(s.pid, msg)
	}
}

// topologyActor runs the loads.
type topologyActor struct {
	s    *TopologyState
	last time.Time // when the last load started
}

// Receive implements actor.Actor.
func (a *topologyActor) Receive(ctx actor.Context) {
	s := a.s
	switch m := ctx.Message().(type) {
	case topoRequest:
		if m.done == nil {
			s.queued.Store(false)
			if time.Since(a.last) >= s.MinGap {
				a.load()
			}
			return
		}
		if s.Epoch() == m.since && s.loads.Load() == m.loads {
			// Nothing newer since the caller looked, and no load begun
			// since it asked: load, spaced by SyncGap (the request comes
			// back at the gap's end).
			if wait := s.SyncGap - time.Since(a.last); wait > 0 {
				time.AfterFunc(wait, func() { s.tell(m) })
				return
			}
			a.load()
		}
		close(m.done)
	case topoTick:
		a.load()
		s.schedule()
	case topoWatch:
		if time.Since(a.last) >= s.Watch && s.Degraded() {
			a.load()
		}
		s.scheduleWatch()
	case *actor.Stopped:
		close(s.stopped)
	}
}

func (a *topologyActor) load() {
	a.last = time.Now()
	a.s.loads.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), a.s.Timeout)
	defer cancel()
	_ = a.s.Load(ctx) // on failure the map stays; the next request tries again
}
