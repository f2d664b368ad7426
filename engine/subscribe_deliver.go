package engine

// Delivering a subscription's items to its channel or Handler: the items
// held until SubscribeWith has its confirmations, Overflow, dropped
// messages, the hooks and the pub/sub counters.

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/hooks"
)

// emit delivers one item of a subscriber actor (shards: the one of shard
// channels on a node, cluster mode); see SubscribeOptions and Overflow.
// down is the actor's own: the backlog's start a Disconnected of its
// connection found (0: none), which its Resubscribed's Gap then starts
// from (several actors share one channel: each has its connection).
func (s *Subscription) emit(ev actors.SubEvent, shards bool, down *atomic.Int64) {
	out := SubEvent{Addr: ev.Addr, Gap: ev.Gap, Err: ev.Err, ShardChannel: ev.ShardChannel}
	switch ev.Kind {
	case actors.SubMessage:
		out.Kind = SubMessage
		out.Message = Message{Channel: ev.Msg.Channel, Pattern: ev.Msg.Pattern, Payload: ev.Msg.Message}
	case actors.SubSubscribed:
		out.Kind = Subscribed
	case actors.SubDisconnected:
		out.Kind = Disconnected
		out.Err = mapError(ev.Err) // a refused part of the set: a *ServerError, as Refused's
		if out.ShardChannel == "" {
			// Held up when it found the connection lost: the server may
			// have dropped it any time since the channel filled up. A
			// reader caught up since (or a backlog left by a burst that
			// nothing followed) does not count.
			if b := s.backlog.Load(); b != 0 && !s.caughtUp() {
				down.Store(b)
			} else {
				down.Store(0)
			}
		}
	case actors.SubRefused:
		out.Kind = Refused
		out.Err = mapError(ev.Err) // a refused SUBSCRIBE's reply: a *ServerError
	case actors.SubResubscribed:
		out.Kind = Resubscribed
		if out.ShardChannel == "" {
			s.e.subs.reconnects.Add(1)
			if from := down.Swap(0); from != 0 {
				out.Gap = max(out.Gap, time.Since(time.Unix(0, from)))
			}
		} else {
			s.e.subs.movers.Add(1)
		}
	}
	if out.Kind != SubMessage && s.e.bus.WantsSubscriber() {
		kind := hooks.Subscribed
		switch out.Kind {
		case Disconnected:
			kind = hooks.Disconnected
		case Resubscribed:
			kind = hooks.Resubscribed
		case Refused:
			kind = hooks.Refused
		}
		s.e.bus.Emit(hooks.Subscriber{Kind: kind, Node: out.Addr, Instance: s.instance, Err: out.Err, Gap: out.Gap, ShardChannel: out.ShardChannel, Shards: shards})
	}
	s.deliver(out, ev.G)
}

// droppedMessage counts a message OverflowDrop dropped and reports the
// drops to the SubscriberEvents hooks, at most once a second: a drop
// within a second of the last report is told once that second has passed
// (a timer, one at a time), so that a burst that stops is reported in
// full; before, only its first drop was, and the rest waited for a drop
// more than a second later, for ever if none came (qa-BE BE2: 1 of 197).
func (s *Subscription) droppedMessage() {
	s.dropped.Add(1)
	s.e.subs.dropped.Add(1)
	if !s.e.bus.WantsSubscriber() {
		return
	}
	now := time.Now().UnixNano()
	last := s.toldAt.Load()
	if now-last >= int64(time.Second) && s.toldAt.CompareAndSwap(last, now) {
		s.tellDropped()
		return
	}
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if s.tail != nil {
		return // told when the timer fires
	}
	wait := time.Duration(s.toldAt.Load() + int64(time.Second) - now)
	s.tail = time.AfterFunc(max(wait, 0), func() {
		s.toldAt.Store(time.Now().UnixNano())
		s.tellDropped()
	})
}

// tellDropped emits a MessagesDropped event with the drops not told yet,
// if any, and stops the timer (the subscription's end calls it last).
func (s *Subscription) tellDropped() {
	if !s.e.bus.WantsSubscriber() {
		return
	}
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if s.tail != nil {
		s.tail.Stop()
		s.tail = nil
	}
	n := s.dropped.Load()
	if n <= s.told {
		return
	}
	s.e.bus.Emit(hooks.Subscriber{Kind: hooks.MessagesDropped, Instance: s.instance, Count: n - s.told})
	s.told = n
}

// call runs the Handler on out, recovering a panic: a bug in the
// Handler loses that one item (false), not the subscription, its
// connection or the program. Every panic is counted (Stats.SubPanics);
// the first of each subscription is logged at error level with the
// panic's value and the item's kind (never its payload).
func (s *Subscription) call(out SubEvent) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			ok = false
			s.e.subs.panics.Add(1)
			if s.panicked.CompareAndSwap(false, true) {
				s.e.log.Error(hooks.MsgSubPanicked, "panic", fmt.Sprint(r), "kind", out.Kind.String(),
					"note", "later panics of this subscription's handler are counted (Stats.SubPanics), not logged")
			}
		}
	}()
	s.handler(out)
	return true
}

// gateState is the state of a subscription's gate (see hold).
type gateState uint8

const (
	gateShut      gateState = iota // SubscribeWith waits for confirmations: items are held
	gateReleasing                  // the held items are being handed over: deliveries wait
	gateOpen                       // deliveries hand their items over themselves
)

// deliver hands out one item, or holds it while the gate is shut (see
// hold); false if it was dropped.
func (s *Subscription) deliver(out SubEvent, g int64) bool {
	if !s.opened.Load() {
		if done, ok := s.hold(out); done {
			return ok
		}
	}
	return s.hand(out, g)
}

// hold is deliver's gate, shut until SubscribeWith has the server's
// confirmation of everything it asked for. Meanwhile nothing may wait for
// the items to be taken: SubscribeWith's caller has no Subscription yet,
// so nobody reads the channel, and the Handler may wait for that
// Subscription, while the connection's reader, which delivers them, has
// the confirmations still to read (it would wait for ever, or until
// SubscribeWith's ctx ended). So while the gate is shut an item goes into
// the channel when the channel has room and nothing is held; otherwise a
// message is dropped with OverflowDrop (the channel is full, as nobody
// reads it yet) and every other item is held, in order, in memory, beyond
// Buffer; with a Handler every item is held. release then hands the held
// items over, in order; until it has, hold waits (the order and
// OverflowBlock's backpressure are kept), and afterwards it lets deliver
// hand the item over itself: done is then false. ok is deliver's result
// when done.
func (s *Subscription) hold(out SubEvent) (done, ok bool) {
	msg := out.Kind == SubMessage
	s.gmu.Lock()
	for s.gate == gateReleasing {
		released := s.released
		s.gmu.Unlock()
		select {
		case <-released:
		case <-s.quit:
			return true, false
		}
		s.gmu.Lock()
	}
	if s.gate == gateOpen {
		s.gmu.Unlock()
		return false, false
	}
	select {
	case <-s.quit: // nothing more is handed over
		s.gmu.Unlock()
		return true, false
	default:
	}
	if s.handler == nil && len(s.held) == 0 {
		s.counted(msg) // see hand
		select {
		case s.ch <- out:
			s.gmu.Unlock()
			return true, true
		default:
			s.uncounted(msg)
		}
	}
	if s.drop && msg {
		s.gmu.Unlock()
		s.droppedMessage()
		return true, false
	}
	s.held = append(s.held, out)
	s.gmu.Unlock()
	return true, true
}

// release opens the gate once SubscribeWith has its confirmations, and
// returns at once: the held items are handed over, in order, by a
// goroutine of the subscription's (its end waits for it), so that
// SubscribeWith waits neither for the channel's reader nor for the
// Handler. Until they all are, the deliveries of later items wait.
func (s *Subscription) release() {
	s.gmu.Lock()
	if len(s.held) == 0 {
		s.gate = gateOpen
		s.opened.Store(true)
		s.gmu.Unlock()
		return
	}
	s.gate = gateReleasing
	s.released = make(chan struct{})
	s.gmu.Unlock()
	// Not run when the subscription has just ended: the waiting
	// deliveries return on quit.
	s.background(s.handOverHeld)
}

// handOverHeld hands the held items over (the Handler's calls then run on
// this goroutine), then opens the gate. No item is held meanwhile: the
// deliveries wait for released.
func (s *Subscription) handOverHeld() {
	s.gmu.Lock()
	held := s.held
	s.held = nil
	s.gmu.Unlock()
	for _, out := range held {
		s.hand(out, 0)
	}
	s.gmu.Lock()
	s.gate = gateOpen
	s.opened.Store(true)
	close(s.released)
	s.gmu.Unlock()
}

// hand hands out one item; false if it was dropped. A message is counted
// (Stats.SubMessages) before it is handed out, and the count taken back if
// it is not: a reader that has it sees it counted (counted after the send,
// the message could be read, and Stats read, before its sender ran again
// to count it).
//
// g is the id of the calling goroutine when the caller knows it (a
// message: the connection's reader, looked up once per connection), else
// 0. A Handler call records it (s.hg) for the whole call, so that a Close
// from the Handler knows not to wait for its own goroutine; the events
// (rare, and emitted by the actor's goroutine too) and the held items
// (handed over by handOverHeld) have it looked up here.
func (s *Subscription) hand(out SubEvent, g int64) bool {
	msg := out.Kind == SubMessage
	if s.handler != nil {
		s.hmu.Lock()
		defer s.hmu.Unlock()
		select {
		case <-s.quit:
			return false
		default:
		}
		if g == 0 {
			g = goid()
		}
		s.hg.Store(g)
		defer s.hg.Store(0)
		s.counted(msg)
		if !s.call(out) {
			s.uncounted(msg)
			return false
		}
		return true
	}
	s.counted(msg)
	if s.drop && msg {
		select {
		case s.ch <- out:
			return true
		default:
			s.uncounted(msg) // before the drop is counted
			s.droppedMessage()
			return false
		}
	}
	if s.backlog.Load() != 0 && s.caughtUp() {
		s.backlog.Store(0)
	}
	select {
	case s.ch <- out:
		return true
	default:
	}
	if s.backlog.Load() == 0 {
		s.backlog.CompareAndSwap(0, time.Now().UnixNano())
	}
	select {
	case s.ch <- out:
		s.unblocked.Store(time.Now().UnixNano())
		return true
	case <-s.quit:
		s.uncounted(msg)
		return false
	}
}

// caughtUp reports whether a reader held up by the full channel has
// caught up with its connection: no delivery has waited for room for a
// second and the channel is empty, or none has for ten seconds. (The
// channel emptied at once is not enough: after a long wait the reader
// still has what the sockets buffered, megabytes, to read before it
// finds that the server dropped the connection meanwhile.)
func (s *Subscription) caughtUp() bool {
	quiet := time.Now().UnixNano() - s.unblocked.Load()
	return quiet >= int64(10*time.Second) || quiet >= int64(time.Second) && len(s.ch) == 0
}

// counted counts a message about to be delivered; uncounted takes it
// back when it was not.
func (s *Subscription) counted(msg bool) {
	if msg {
		s.e.subs.messages.Add(1)
	}
}

func (s *Subscription) uncounted(msg bool) {
	if msg {
		s.e.subs.messages.Add(^uint64(0))
	}
}
