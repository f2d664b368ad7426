package actors

import (
	"context"
	"errors"
	"slices"
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
)

// SubEvent is what a subscriber actor reports through
// SubscriberState.Emit.
type SubEvent struct {
	Kind SubEventKind
	Msg  valkey.PubSubMessage // SubMessage
	Gap  time.Duration        // SubResubscribed: from the disconnect to the first confirmation on the new connection
	Err  error                // SubDisconnected
	Addr string               // the node
	// ShardChannel is set on the SubDisconnected and SubResubscribed of
	// one shard channel whose slot moved (SubscriberState.Moved): the
	// event is about that channel only, not about the connection.
	ShardChannel string
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

// ErrSlotMoved is the Err of the SubDisconnected reported when the server
// unsubscribed shard channels of the set on its own: their slot moved to
// another node (failover, resharding). The actor reconnects to the new
// owner and resubscribes.
var ErrSlotMoved = errors.New("actors: the server dropped shard channels: their slot moved")

// ErrNoPubSub fails a subscriber whose driver connection does not
// implement drivers.ValkeyPubSub.
var ErrNoPubSub = errors.New("actors: the driver does not support pub/sub")

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
	// Conns, when set, counts the connections the actor holds open (+1
	// per dial that succeeded, -1 when it is closed).
	Conns *atomic.Int64

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
	failErr  error          // why fail closed the connection
	unsubbed map[string]int // SUNSUBSCRIBEs sent on conn whose sunsubscribe was not seen yet
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

// hint returns a shard channel of the set or of a parked op, "" if none.
func (s *SubscriberState) hint() string {
	for n := range s.want[SubShard] {
		return n
	}
	for _, op := range s.parked {
		if op.Kind == SubShard && !op.Unsub && len(op.Names) > 0 {
			return op.Names[0]
		}
	}
	return s.Hint
}

// connect dials on a goroutine; the result comes back as subDialed.
func (s *SubscriberState) connect() {
	s.gen++
	gen, hint, failures, self := s.gen, s.hint(), s.failures, s.self
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		conn, addr, err := s.Dial(s.life, hint, failures)
		if err == nil && !s.adopt(conn) {
			_ = conn.Close()
			return
		}
		s.tell(self, subDialed{gen: gen, conn: conn, addr: addr, err: err})
	}()
}

func (s *SubscriberState) dialed(m subDialed) {
	if m.gen != s.gen {
		if m.conn != nil {
			s.release(m.conn)
		}
		return
	}
	if m.err != nil {
		s.retry(m.err)
		return
	}
	ps, ok := m.conn.(drivers.ValkeyPubSub)
	if !ok {
		s.release(m.conn)
		s.retry(ErrNoPubSub)
		return
	}
	s.mu.Lock()
	s.addr = m.addr
	s.mu.Unlock()
	sess := &subSession{s: s, first: !s.subscribed.Load(), down: s.down, addr: m.addr, gen: s.gen, self: s.self, resume: map[string]time.Time{}}
	done := ps.ListenValkey(valkey.PubSubHooks{OnMessage: sess.message, OnSubscription: sess.confirmed})
	s.conn, s.sess = m.conn, sess
	s.unsubbed = map[string]int{}
	gen, self := s.gen, s.self
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := <-done
		s.tell(self, subLost{gen: gen, err: err})
	}()

	// Everything in the set, then the parked operations. Shard channels
	// come last, one command each.
	var cmds []valkey.Completed
	var shard []string
	for k := range s.want {
		names := keys(s.want[k])
		if SubKind(k) == SubShard {
			shard = names
		}
		cmds = append(cmds, subCmds(m.conn.B(), SubKind(k), false, names)...)
	}
	var moved []string
	if len(cmds) > 0 {
		off := len(cmds) - len(shard)
		var bad error
		for i, err := range s.exec(cmds) {
			switch {
			case err == nil:
			case i >= off && s.Moved != nil && isMovedErr(err):
				moved = append(moved, shard[i-off])
			case bad == nil:
				bad = err
			}
		}
		if bad != nil {
			// A refusal (NOPERM, MOVED without Moved, ...) or a broken
			// connection: start again on a new one.
			s.fail(bad)
			return
		}
	}
	s.up = true
	if len(moved) > 0 {
		// The rest of the set is subscribed again; the channels whose slot
		// moved while disconnected go to their new owner.
		sess.announce()
		since := sess.down
		if since.IsZero() {
			since = time.Now()
		}
		s.handOver(moved, since)
	}
	parked := s.parked
	s.parked = nil
	for i, op := range parked {
		s.op(op)
		if !s.up { // the connection broke: the rest stays parked
			s.parked = append(s.parked, parked[i+1:]...)
			return
		}
	}
	if !sess.first || s.size() > 0 {
		sess.announce() // when nothing was sent there is nothing to confirm
	}
	s.failures = 0
}

// kicked handles a sunsubscribe push of the current connection.
func (s *SubscriberState) kicked(channel string) {
	if s.unsubbed[channel] > 0 { // the answer to our SUNSUBSCRIBE
		s.unkick(channel)
		return
	}
	if _, ok := s.want[SubShard][channel]; !ok {
		return
	}
	// The server's own: the slot moved.
	if s.Moved == nil {
		s.fail(ErrSlotMoved)
		return
	}
	s.handOver([]string{channel}, time.Now())
}

func (s *SubscriberState) unkick(channel string) {
	if s.unsubbed[channel]--; s.unsubbed[channel] <= 0 {
		delete(s.unsubbed, channel)
	}
}

// handOver takes shard channels out of the set and gives them to Moved.
func (s *SubscriberState) handOver(names []string, since time.Time) {
	for _, n := range names {
		delete(s.want[SubShard], n)
		s.Emit(SubEvent{Kind: SubDisconnected, Err: ErrSlotMoved, Addr: s.sess.addr, ShardChannel: n})
	}
	s.Moved(names, since)
}

// size returns the number of names in the set.
func (s *SubscriberState) size() int {
	n := 0
	for k := range s.want {
		n += len(s.want[k])
	}
	return n
}

// op runs an operation now when subscribed, or parks it.
func (s *SubscriberState) op(op SubOp) {
	if op.Kind >= subKinds {
		op.Done <- errors.New("actors: unknown subscription kind")
		return
	}
	set := s.want[op.Kind]
	if op.Unsub {
		s.unsub(op, set)
		return
	}
	var names []string
	seen := map[string]bool{}
	for _, n := range op.Names {
		if seen[n] {
			continue
		}
		seen[n] = true
		if _, ok := set[n]; !ok {
			names = append(names, n)
		} else if !op.Since.IsZero() && s.up {
			// Already subscribed here: nothing to confirm.
			s.Emit(SubEvent{Kind: SubResubscribed, Gap: time.Since(op.Since), Addr: s.sess.addr, ShardChannel: n})
		}
	}
	if len(names) == 0 {
		op.Done <- nil
		return
	}
	if !s.up {
		s.parked = append(s.parked, op)
		return
	}
	if !op.Since.IsZero() {
		s.sess.expect(names, op.Since)
	}
	errs := s.exec(subCmds(s.conn.B(), op.Kind, false, names))
	var moved []string
	var bad, broken error
	for i, err := range errs {
		// One command per shard channel, one for all the others.
		these := names
		if op.Kind == SubShard {
			these = names[i : i+1]
		}
		switch {
		case err == nil:
			for _, n := range these {
				set[n] = struct{}{}
			}
			continue
		case !isServerErr(err):
			broken = err
		case op.Kind == SubShard && s.Moved != nil && isMovedErr(err):
			moved = append(moved, these...)
		case bad == nil:
			bad = err
		}
		s.sess.unexpect(these)
	}
	if broken != nil {
		s.parked = append(s.parked, op) // what is in the set now is skipped next time
		s.fail(broken)
		return
	}
	if len(moved) > 0 {
		op.Done <- errors.Join(bad, &MovedError{Names: moved})
		return
	}
	op.Done <- bad
}

// unsub runs an unsubscribe operation.
func (s *SubscriberState) unsub(op SubOp, set map[string]struct{}) {
	for _, n := range op.Names {
		delete(set, n)
	}
	if !s.up {
		s.unpark(op.Kind, op.Names)
		op.Done <- nil
		return
	}
	if op.Kind == SubShard {
		for _, n := range op.Names {
			s.unsubbed[n]++
		}
	}
	var res error
	for i, err := range s.exec(subCmds(s.conn.B(), op.Kind, true, op.Names)) {
		if err == nil {
			continue
		}
		if op.Kind == SubShard {
			s.unkick(op.Names[i]) // no sunsubscribe comes for it
		}
		switch {
		case !isServerErr(err):
			s.fail(err)
			op.Done <- nil // not subscribed again on the next connection
			return
		case op.Kind == SubShard && isMovedErr(err):
			// Served elsewhere: not subscribed here.
		case res == nil:
			res = err
		}
	}
	op.Done <- res
}

// unpark removes names from the parked subscribe operations of kind.
func (s *SubscriberState) unpark(kind SubKind, names []string) {
	for i, op := range s.parked {
		if op.Kind != kind || op.Unsub {
			continue
		}
		kept := op.Names[:0:0]
		for _, n := range op.Names {
			if !slices.Contains(names, n) {
				kept = append(kept, n)
			}
		}
		s.parked[i].Names = kept
	}
}

// exec sends cmds on the connection and returns each one's error.
func (s *SubscriberState) exec(cmds []valkey.Completed) []error {
	ctx, cancel := context.WithTimeout(s.life, s.Timeout)
	defer cancel()
	errs := make([]error, len(cmds))
	for i, r := range s.conn.DoMulti(ctx, cmds...) {
		errs[i] = r.Error()
	}
	return errs
}

// fail gives up the current connection after an error of ours; its
// watcher then reports subLost, which schedules the reconnect.
func (s *SubscriberState) fail(err error) {
	s.up = false
	if s.failErr == nil {
		s.failErr = err
	}
	_ = s.conn.Close()
}

// lost handles the end of the current connection.
func (s *SubscriberState) lost(err error) {
	if s.failErr != nil {
		err, s.failErr = s.failErr, nil
	}
	s.release(s.conn)
	s.conn = nil
	s.up = false
	if s.sess != nil && s.sess.announced.Load() {
		s.down = time.Now()
		s.failures = 0
		s.Emit(SubEvent{Kind: SubDisconnected, Err: err, Addr: s.sess.addr})
	}
	s.sess = nil
	s.retry(err)
}

// retry schedules the next connection attempt. Before the first
// subscription was ever confirmed, the parked operations fail with err
// instead of waiting (Subscribe fails fast when no server answers).
func (s *SubscriberState) retry(err error) {
	if !s.subscribed.Load() {
		for _, op := range s.parked {
			op.Done <- err
		}
		s.parked = nil
	}
	d := s.Backoff.Delay(s.failures)
	s.failures++
	gen, self := s.gen, s.self
	s.timer = time.AfterFunc(d, func() { s.tell(self, subRetry{gen: gen}) })
}

// subSession is one connection's view for its hooks, which run on the
// connection's reader goroutine.
type subSession struct {
	s         *SubscriberState
	gen       uint64
	self      *actor.PID
	first     bool
	down      time.Time
	addr      string
	announced atomic.Bool

	rmu    sync.Mutex
	resume map[string]time.Time // handed-over shard channels awaiting their confirmation -> unsubscribed since
}

func (ss *subSession) message(m valkey.PubSubMessage) {
	ss.s.Emit(SubEvent{Kind: SubMessage, Msg: m, Addr: ss.addr})
}

func (ss *subSession) confirmed(c valkey.PubSubSubscription) {
	if c.Kind == "sunsubscribe" {
		// Ours, or the server's own when the slot moved: the actor knows.
		ss.s.tell(ss.self, subKicked{gen: ss.gen, channel: c.Channel})
	}
	if strings.HasSuffix(c.Kind, "unsubscribe") {
		return
	}
	if c.Kind == "ssubscribe" {
		ss.rmu.Lock()
		since, ok := ss.resume[c.Channel]
		delete(ss.resume, c.Channel)
		ss.rmu.Unlock()
		if ok {
			if !ss.first {
				ss.announce()
			} else if !ss.announced.Swap(true) {
				// A connection opened for handed-over channels: their
				// Resubscribed stands for its Subscribed.
				ss.s.subscribed.Store(true)
			}
			ss.s.Emit(SubEvent{Kind: SubResubscribed, Gap: time.Since(since), Addr: ss.addr, ShardChannel: c.Channel})
			return
		}
	}
	ss.announce()
}

// expect notes handed-over channels about to be subscribed.
func (ss *subSession) expect(names []string, since time.Time) {
	ss.rmu.Lock()
	defer ss.rmu.Unlock()
	for _, n := range names {
		ss.resume[n] = since
	}
}

func (ss *subSession) unexpect(names []string) {
	ss.rmu.Lock()
	defer ss.rmu.Unlock()
	for _, n := range names {
		delete(ss.resume, n)
	}
}

// announce reports the connection's first confirmation, once.
func (ss *subSession) announce() {
	if ss.announced.Swap(true) {
		return
	}
	if ss.first {
		ss.s.subscribed.Store(true)
		ss.s.Emit(SubEvent{Kind: SubSubscribed, Addr: ss.addr})
		return
	}
	ss.s.Emit(SubEvent{Kind: SubResubscribed, Gap: time.Since(ss.down), Addr: ss.addr})
}

// subCmds builds the commands for names: one per name for shard channels
// (SSUBSCRIBE takes one slot per command in cluster mode), one for the
// rest.
func subCmds(b valkey.Builder, kind SubKind, unsub bool, names []string) []valkey.Completed {
	if len(names) == 0 {
		return nil
	}
	switch kind {
	case SubChannel:
		if unsub {
			return []valkey.Completed{b.Unsubscribe().Channel(names...).Build()}
		}
		return []valkey.Completed{b.Subscribe().Channel(names...).Build()}
	case SubPattern:
		if unsub {
			return []valkey.Completed{b.Punsubscribe().Pattern(names...).Build()}
		}
		return []valkey.Completed{b.Psubscribe().Pattern(names...).Build()}
	}
	cmds := make([]valkey.Completed, len(names))
	for i, n := range names {
		if unsub {
			cmds[i] = b.Sunsubscribe().Channel(n).Build()
		} else {
			cmds[i] = b.Ssubscribe().Channel(n).Build()
		}
	}
	return cmds
}

func keys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func isServerErr(err error) bool {
	_, ok := valkey.IsValkeyErr(err)
	return ok
}

func isMovedErr(err error) bool {
	ve, ok := valkey.IsValkeyErr(err)
	if !ok {
		return false
	}
	_, moved := ve.IsMoved()
	return moved
}
