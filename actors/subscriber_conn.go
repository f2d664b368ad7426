package actors

// The subscriber actor's connection: dialling, reconnecting with backoff,
// shard channels the server drops when their slot moves, and the session
// whose hooks report messages and confirmations.

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
)

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
		s.retry(m.err, m.addr)
		return
	}
	ps, ok := m.conn.(drivers.ValkeyPubSub)
	if !ok {
		s.release(m.conn)
		s.retry(ErrNoPubSub, m.addr)
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
	var moved, refused []string
	if len(cmds) > 0 {
		off := len(cmds) - len(shard)
		var bad error
		for i, err := range s.exec(cmds) {
			switch {
			case err == nil:
			case i >= off && s.Moved != nil && isMovedErr(err):
				moved = append(moved, shard[i-off])
			case i >= off && s.Refused != nil && isServerErr(err):
				// Cluster: the node refuses this shard channel (the actor
				// follows its set's slots, so this may be a node the
				// channel just moved to, with an ACL of its own). It
				// leaves the set, for the engine to try on its own,
				// rather than keeping the whole set cycling on it.
				refused = append(refused, shard[i-off])
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
	if len(refused) > 0 {
		since := sess.down
		if since.IsZero() {
			since = time.Now()
		}
		for _, n := range refused {
			delete(s.want[SubShard], n)
		}
		s.Refused(refused, since)
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
	sess.complete = true
	s.failures = 0
	s.refused = nil
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

// fail gives up the current connection after an error of ours; its
// watcher then reports subLost, which schedules the reconnect.
func (s *SubscriberState) fail(err error) {
	s.up = false
	if s.failErr == nil {
		s.failErr = err
	}
	_ = s.conn.Close()
}

// CloseCauser is the optional interface of a connection its owner may
// close for a reason of its own (the engine's sentinel switch):
// CloseCause returns err, the connection's failure, wrapped in that
// reason, or err itself when the owner did not close it.
type CloseCauser interface {
	CloseCause(err error) error
}

// lost handles the end of the current connection.
func (s *SubscriberState) lost(err error) {
	if s.failErr != nil {
		err, s.failErr = s.failErr, nil
	} else if cc, ok := s.conn.(CloseCauser); ok && err != nil {
		err = cc.CloseCause(err)
	}
	s.release(s.conn)
	s.conn = nil
	s.up = false
	var addr string
	if s.sess != nil {
		addr = s.sess.addr
		if s.sess.announced.Load() {
			s.down = time.Now()
			s.Emit(SubEvent{Kind: SubDisconnected, Err: err, Addr: addr})
		}
		if s.sess.complete {
			// The backoff starts again after a connection that had the
			// whole set; not after one the server refused part of (a
			// pattern the ACL no longer allows: its first confirmation
			// announced it, the refusal closed it), which reconnected at
			// the minimum backoff, ~80 times a second (review-36 R36-1).
			s.failures = 0
			s.refused = nil
		}
	}
	s.sess = nil
	s.retry(err, addr)
}

// retry schedules the next connection attempt after err (addr the node
// it came from, "" if unknown). Before the first subscription was ever
// confirmed, the parked operations fail with err instead of waiting
// (Subscribe fails fast when no server answers). After it, a refusal by
// the server (an error reply: NOPERM after an ACL change, WRONGPASS at
// the handshake, ...) is reported as a SubRefused, once per distinct
// error until the set is subscribed again: without it a subscription the
// server denies for good would retry forever with only the Disconnected's
// EOF to show for it (qa-BB BB-1). Transport errors are not reported:
// the Disconnected said the connection was lost, and a server that does
// not answer is what the reconnect waits out.
func (s *SubscriberState) retry(err error, addr string) {
	if !s.subscribed.Load() {
		for _, op := range s.parked {
			op.Done <- err
		}
		s.parked = nil
	} else if serverRefusal(err) { // err may be nil (a connection closed without error)
		// Each distinct text once: in cluster mode the channels'
		// connection tries the nodes in turn, and each node's refusal
		// names it (review-36 R36-2: the last text only, alternating,
		// made an event per retry).
		if _, seen := s.refused[err.Error()]; !seen && len(s.refused) < maxRefusedTexts {
			if s.refused == nil {
				s.refused = map[string]struct{}{}
			}
			s.refused[err.Error()] = struct{}{}
			s.Emit(SubEvent{Kind: SubRefused, Err: err, Addr: addr})
		}
	}
	d := s.Backoff.Delay(s.failures)
	s.failures++
	gen, self := s.gen, s.self
	s.timer = time.AfterFunc(d, func() { s.tell(self, subRetry{gen: gen}) })
}

// maxRefusedTexts bounds the SubRefused events of one outage.
const maxRefusedTexts = 16

// serverRefusal reports whether err carries an error reply of the server
// (a refused command or handshake), not a transport failure.
func serverRefusal(err error) bool {
	var ve *valkey.ValkeyError
	return errors.As(err, &ve)
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
	complete  bool  // the whole set was subscribed on the connection (actor only)
	g         int64 // the reader goroutine's id, from Goid at the first message (reader only)

	rmu    sync.Mutex
	resume map[string]time.Time // handed-over shard channels awaiting their confirmation -> unsubscribed since

	// The reader's progress through the hooks (see watch): busy while a
	// hook call is in progress, calls counts those that ended.
	busy  atomic.Int32
	calls atomic.Uint64
}

// enter and leave follow the reader through a hook call.
func (ss *subSession) enter() { ss.busy.Add(1) }

func (ss *subSession) leave() {
	ss.calls.Add(1)
	ss.busy.Add(-1)
}

// watch calls expire once the connection's reader has made no progress
// for d: no hook call in progress and none ended within d (see exec). It
// returns stop, which ends the watch and returns once it has ended.
func (ss *subSession) watch(d time.Duration, expire func()) (stop func()) {
	if ss == nil { // no session: the bound is d
		t := time.AfterFunc(d, expire)
		return func() { t.Stop() }
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		seen := ss.calls.Load()
		t := time.NewTimer(d)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				if n := ss.calls.Load(); n != seen || ss.busy.Load() != 0 {
					seen = n
					t.Reset(d)
					continue
				}
				expire()
				return
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

func (ss *subSession) message(m valkey.PubSubMessage) {
	ss.enter()
	defer ss.leave()
	if ss.g == 0 && ss.s.Goid != nil {
		ss.g = ss.s.Goid()
	}
	ss.s.Emit(SubEvent{Kind: SubMessage, Msg: m, Addr: ss.addr, G: ss.g})
}

func (ss *subSession) confirmed(c valkey.PubSubSubscription) {
	ss.enter()
	defer ss.leave()
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
