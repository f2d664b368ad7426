package actors

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/policies"
)

// SubKind is the kind of a pub/sub subscription.
type SubKind uint8

const (
	SubChannel SubKind = iota // SUBSCRIBE / UNSUBSCRIBE
	SubPattern                // PSUBSCRIBE / PUNSUBSCRIBE
	SubShard                  // SSUBSCRIBE / SUNSUBSCRIBE
	subKinds
)

// SubEventKind says what a SubEvent reports.
type SubEventKind uint8

const (
	SubMessage      SubEventKind = iota // a message: Msg
	SubSubscribed                       // the first connection's subscriptions are confirmed
	SubDisconnected                     // the connection was lost (Err), or one shard channel moved away (ShardChannel)
	SubResubscribed                     // a new connection resubscribed (Gap), or one moved shard channel did (ShardChannel)
	SubRefused                          // after a SubDisconnected, the server refused to subscribe the set again (Err): the actor keeps trying
)

// SubEvent is what a subscriber actor reports through
// SubscriberState.Emit.
type SubEvent struct {
	Kind SubEventKind
	Msg  valkey.PubSubMessage // SubMessage
	Gap  time.Duration        // SubResubscribed: from the disconnect to the first confirmation on the new connection
	Err  error                // SubDisconnected, SubRefused
	Addr string               // the node
	// ShardChannel is set on the SubDisconnected and SubResubscribed of
	// one shard channel whose slot moved (SubscriberState.Moved): the
	// event is about that channel only, not about the connection.
	ShardChannel string
	// G is, on a SubMessage, the id of the goroutine Emit is called on
	// (the connection's reader) as SubscriberState.Goid returned it; 0
	// without Goid, and on the other kinds.
	G int64
}

// SubOp asks a subscriber actor to subscribe to or unsubscribe from Names
// of Kind. Done, buffered with capacity 1, receives the result once:
// nil once the server confirmed the command (a subscribe made while the
// actor is disconnected waits for the next connection), the server's error
// reply, or SubscriberState.CloseErr when the actor stops first. An
// unsubscribe made while disconnected completes at once: the names are
// not subscribed again.
//
// With SubscriberState.Moved set, shard channels whose SSUBSCRIBE the
// server answered with MOVED are not added: Done receives a *MovedError
// naming them (joined with any other error; the rest of Names is
// subscribed). Since, when not zero, marks Names as shard channels
// handed over from another connection after their slot moved, unsubscribed
// since then: the confirmation of each is reported as a SubResubscribed
// with its ShardChannel and the gap from Since.
type SubOp struct {
	Kind  SubKind
	Unsub bool
	Names []string
	Done  chan error
	Since time.Time
}

// MovedError is (or is joined in) the result of a SubOp whose shard
// channels the server redirected (MOVED): their slot is served by another
// node. Names were not subscribed.
type MovedError struct{ Names []string }

func (e *MovedError) Error() string {
	return "actors: shard channels served by another node (MOVED): " + strings.Join(e.Names, ", ")
}

// RefusedError is joined in the result of a shard-channel SubOp of a
// cluster subscriber (SubscriberState.Moved set) beside the first error
// reply: Names are the shard channels the server refused (NOPERM, ...),
// which were not subscribed. The engine forgets their home by it: a
// refusal on a connection that holds other channels left them homed
// there, and a moved channel's refusal looked subscribed (review-36
// R36-3). Errs holds each name's own error reply, in the order of Names
// (a set may be refused for different reasons: the engine reports each
// channel's own, review-37 R37-4).
type RefusedError struct {
	Names []string
	Errs  []error
}

func (e *RefusedError) Error() string {
	return "actors: shard channels refused: " + strings.Join(e.Names, ", ")
}

// ErrSlotMoved is the Err of the SubDisconnected reported when the server
// unsubscribed shard channels of the set on its own: their slot moved to
// another node (failover, resharding). The actor reconnects to the new
// owner and resubscribes.
var ErrSlotMoved = errors.New("vactor: the server dropped shard channels: their slot moved")

// ErrNoPubSub fails a subscriber whose driver connection does not
// implement drivers.ValkeyPubSub.
var ErrNoPubSub = errors.New("vactor: the driver does not support pub/sub")

// SubscriberState is a subscriber actor's configuration and what it keeps
// across restarts. The engine fills the exported fields before Spawn and
// must not change them afterwards; the rest belongs to the actor.
//
// The actor owns one dedicated pub/sub connection at a time. When it
// breaks, the actor reports SubDisconnected, dials again after Backoff
// (on a timer) and subscribes everything in its set again; the first
// confirmation on the new connection is reported as SubResubscribed with
// the gap. Messages are passed to Emit on the connection's reader
// goroutine, in arrival order; events are ordered with them (a
// SubDisconnected after the last message of the old connection, a
// SubResubscribed before the first of the new one).
type SubscriberState struct {
	// Dial opens a connection for the actor's subscriptions. hint is one
	// of its shard channels ("" when it has none), failures the number of
	// consecutive failed attempts so far (the engine refreshes its
	// cluster map when > 0). It returns the connection and its address.
	Dial func(ctx context.Context, hint string, failures int) (drivers.ValkeyConn, string, error)
	// Hint is passed to Dial while the actor has no shard channel in its
	// set or its parked operations: the shard channel it was created for.
	Hint string
	// Backoff spaces reconnect attempts: attempt n waits Backoff.Delay(n).
	Backoff policies.Backoff
	// Timeout bounds one (un)subscribe round trip; a timeout counts as a
	// broken connection. Default 10s.
	Timeout time.Duration
	// Emit receives messages and events: from the connection's reader
	// (messages, confirmations) and from the actor (disconnects, moved
	// channels), possibly at the same time: it must be safe for
	// concurrent use. Items about one channel come in order. It may
	// block: that stops reading from the connection (or the actor).
	Emit func(SubEvent)
	// CloseErr fails the operations still waiting when the actor stops.
	CloseErr error
	// Moved, when set, receives the shard channels the actor gave up
	// because their slot moved: the server unsubscribed them on its own
	// (a sunsubscribe the actor did not ask for), or answered MOVED when
	// the actor subscribed its set again on a new connection. They are
	// out of the set; the actor reported a SubDisconnected (ErrSlotMoved,
	// ShardChannel) for each, and the rest of the set stays subscribed.
	// since is when they stopped being subscribed. Called on the actor's
	// goroutine: it must not block nor wait for the actor. When nil, the
	// actor handles a moved slot as a broken connection: it reconnects
	// and subscribes the whole set again.
	Moved func(names []string, since time.Time)
	// Refused, in cluster mode, takes the shard channels of the set that
	// a new connection's node refused to subscribe again (an error reply
	// other than MOVED: NOPERM after its slot moved to a node whose ACL
	// differs, or after an ACL change): they are out of the set and the
	// rest of it stays subscribed; since is when they stopped being
	// subscribed. Called on the actor's goroutine: it must not block.
	// When nil, such a refusal drops the connection and the whole set is
	// tried again (a refused set retries at the backoff: see retry).
	Refused func(names []string, since time.Time)
	// Conns, when set, counts the connections the actor holds open (+1
	// per dial that succeeded, -1 when it is closed).
	Conns *atomic.Int64
	// Goid, when set, returns the id of the calling goroutine. Each
	// connection calls it once, on its reader goroutine, at its first
	// message, and passes the result with every message (SubEvent.G): the
	// driver calls the hooks on one goroutine (drivers.PubSub.Listen), and
	// the lookup is too costly to make per message.
	Goid func() int64

	life    context.Context
	cancel  context.CancelFunc
	stopped chan struct{}
	wg      sync.WaitGroup // dials and connection watchers
	system  *actor.ActorSystem
	pid     *actor.PID // for the engine's goroutines
	self    *actor.PID // for the actor's goroutines (set in Started)

	mu      sync.Mutex
	open    map[drivers.ValkeyConn]struct{} // dialled and not yet closed
	closing bool
	addr    string

	subscribed atomic.Bool // a first confirmation happened (SubSubscribed was emitted, unless only handed-over channels were confirmed)

	// Owned by the actor.
	want     [subKinds]map[string]struct{}
	conn     drivers.ValkeyConn
	sess     *subSession
	gen      uint64
	up       bool // the set is subscribed on conn
	failures int
	down     time.Time
	parked   []SubOp
	timer    *time.Timer
	failErr  error               // why fail closed the connection
	refused  map[string]struct{} // the SubRefused errors' texts since the set was last wholly subscribed (nil: none)
	unsubbed map[string]int      // SUNSUBSCRIBEs sent on conn whose sunsubscribe was not seen yet
}

// Spawn starts the actor in system.
func (s *SubscriberState) Spawn(system *actor.ActorSystem) *actor.PID {
	s.life, s.cancel = context.WithCancel(context.Background())
	s.stopped = make(chan struct{})
	s.open = map[drivers.ValkeyConn]struct{}{}
	for k := range s.want {
		s.want[k] = map[string]struct{}{}
	}
	if s.Timeout <= 0 {
		s.Timeout = 10 * time.Second
	}
	s.system = system
	props := actor.PropsFromProducer(func() actor.Actor { return &Subscriber{s} })
	s.pid = system.Root.SpawnPrefix(props, "vactor-subscriber-")
	return s.pid
}

// Send posts op to the actor. If the actor has stopped, op.Done never
// receives: wait on Stopped as well.
func (s *SubscriberState) Send(op SubOp) { s.system.Root.Send(s.pid, op) }

// Stopped is closed once the actor has stopped.
func (s *SubscriberState) Stopped() <-chan struct{} { return s.stopped }

// Subscribed reports whether a connection of the actor ever had a
// subscription confirmed.
func (s *SubscriberState) Subscribed() bool { return s.subscribed.Load() }

// Addr returns the address of the actor's current (or last) connection.
func (s *SubscriberState) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Stop stops the actor and waits until it, its dials and its connection
// watchers are gone and every connection it opened is closed: after Stop
// returns, Emit is not called again. Safe to call more than once.
func (s *SubscriberState) Stop() {
	s.cancel() // unblocks a round trip or a dial in progress
	s.system.Root.Stop(s.pid)
	<-s.stopped
	s.wg.Wait()
	s.mu.Lock()
	s.closing = true
	left := s.open
	s.open = map[drivers.ValkeyConn]struct{}{}
	s.mu.Unlock()
	for c := range left {
		_ = c.Close()
	}
	s.count(-len(left))
}

func (s *SubscriberState) count(n int) {
	if s.Conns != nil {
		s.Conns.Add(int64(n))
	}
}

// tell sends the actor a message of its own, unless it is stopping (so
// that nothing ends in protoactor's dead letters; a dialled connection
// is closed by Stop).
func (s *SubscriberState) tell(self *actor.PID, msg any) {
	if s.life.Err() == nil {
		s.system.Root.Send(self, msg)
	}
}

// adopt registers a dialled connection; false when the actor is stopping
// (the caller closes it).
func (s *SubscriberState) adopt(c drivers.ValkeyConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.open[c] = struct{}{}
	s.count(1)
	return true
}

func (s *SubscriberState) release(c drivers.ValkeyConn) {
	s.mu.Lock()
	_, ok := s.open[c]
	delete(s.open, c)
	s.mu.Unlock()
	if ok {
		s.count(-1)
	}
	_ = c.Close()
}

// Subscriber is the subscriber actor; its state is a *SubscriberState.
type Subscriber struct{ s *SubscriberState }

// Messages the actor sends itself.
type (
	subDialed struct {
		gen  uint64
		conn drivers.ValkeyConn
		addr string
		err  error
	}
	subLost struct {
		gen uint64
		err error
	}
	subRetry  struct{ gen uint64 }
	subKicked struct {
		gen     uint64
		channel string
	}
)

// Receive implements actor.Actor.
func (a *Subscriber) Receive(ctx actor.Context) {
	s := a.s
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.self = ctx.Self()
		if s.conn == nil && s.timer == nil {
			s.connect()
		}
	case SubOp:
		s.op(m)
	case subDialed:
		s.dialed(m)
	case subLost:
		if m.gen == s.gen && s.conn != nil {
			s.lost(m.err)
		}
	case subKicked:
		if m.gen == s.gen && s.conn != nil {
			s.kicked(m.channel)
		}
	case subRetry:
		if m.gen == s.gen {
			s.timer = nil
			s.connect()
		}
	case *actor.Stopping:
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		if s.timer != nil {
			s.timer.Stop()
		}
		if s.conn != nil {
			s.release(s.conn)
			s.conn = nil
		}
		err := s.CloseErr
		if err == nil {
			err = context.Canceled
		}
		for _, op := range s.parked {
			op.Done <- err
		}
		s.parked = nil
	case *actor.Stopped:
		close(s.stopped)
	}
}
