package actors

import (
	"fmt"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// Supervisor owns the connection actors: it spawns one per ConnState when
// it starts, restarts a connection actor that panics (its ConnState, and so
// its mailbox and driver connection, survive), and stops them all when it is
// stopped. Stopped is closed once the supervisor and all its children have
// stopped.
type Supervisor struct {
	conns     []*ConnState
	ready     chan struct{}
	stopped   chan struct{}
	readyOnce sync.Once
	stopOnce  sync.Once
}

// NewSupervisor returns a supervisor for conns.
func NewSupervisor(conns []*ConnState) *Supervisor {
	return &Supervisor{conns: conns, ready: make(chan struct{}), stopped: make(chan struct{})}
}

// Ready is closed once every connection actor has been spawned.
func (s *Supervisor) Ready() <-chan struct{} { return s.ready }

// Stopped is closed when the supervisor and every connection actor have
// stopped.
func (s *Supervisor) Stopped() <-chan struct{} { return s.stopped }

// Spawn starts the supervisor in system. It returns its PID.
func (s *Supervisor) Spawn(system *actor.ActorSystem) (*actor.PID, error) {
	props := actor.PropsFromProducer(
		func() actor.Actor { return s },
		actor.WithSupervisor(actor.NewRestartingStrategy()),
	)
	pid, err := system.Root.SpawnNamed(props, fmt.Sprintf("vactor-supervisor-%p", s))
	if err != nil {
		return nil, fmt.Errorf("actors: spawn supervisor: %w", err)
	}
	return pid, nil
}

// Receive implements actor.Actor.
func (s *Supervisor) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		for i, st := range s.conns {
			ctx.SpawnPrefix(st.Props(), fmt.Sprintf("conn-%d-", i))
		}
		s.readyOnce.Do(func() { close(s.ready) })
	case *actor.Stopped:
		s.stopOnce.Do(func() { close(s.stopped) })
	}
}
