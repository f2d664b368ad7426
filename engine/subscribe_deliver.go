package engine

// Delivering a subscription's items to its channel or Handler: Overflow,
// dropped messages, the hooks and the pub/sub counters.

import (
	"fmt"
	"time"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/hooks"
)

// emit delivers one item; see SubscribeOptions and Overflow.
func (s *Subscription) emit(ev actors.SubEvent) {
	out := SubEvent{Addr: ev.Addr, Gap: ev.Gap, Err: ev.Err, ShardChannel: ev.ShardChannel}
	switch ev.Kind {
	case actors.SubMessage:
		out.Kind = SubMessage
		out.Message = Message{Channel: ev.Msg.Channel, Pattern: ev.Msg.Pattern, Payload: ev.Msg.Message}
	case actors.SubSubscribed:
		out.Kind = Subscribed
	case actors.SubDisconnected:
		out.Kind = Disconnected
	case actors.SubResubscribed:
		out.Kind = Resubscribed
		if out.ShardChannel == "" {
			s.e.subs.reconnects.Add(1)
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
		}
		s.e.bus.Emit(hooks.Subscriber{Kind: kind, Node: out.Addr, Instance: s.instance, Err: out.Err, Gap: out.Gap, ShardChannel: out.ShardChannel})
	}
	s.deliver(out, ev.G)
}

// droppedMessage counts a message OverflowDrop dropped and reports the
// drops to the SubscriberEvents hooks, at most once a second.
func (s *Subscription) droppedMessage() {
	n := s.dropped.Add(1)
	s.e.subs.dropped.Add(1)
	if !s.e.bus.WantsSubscriber() {
		return
	}
	now := time.Now().UnixNano()
	last := s.toldAt.Load()
	if now-last < int64(time.Second) || !s.toldAt.CompareAndSwap(last, now) {
		return
	}
	prev := s.told.Swap(int64(n))
	s.e.bus.Emit(hooks.Subscriber{Kind: hooks.MessagesDropped, Instance: s.instance, Count: n - uint64(prev)})
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

// deliver hands out one item; false if it was dropped. A message is
// counted (Stats.SubMessages) before it is handed out, and the count taken
// back if it is not: a reader that has it sees it counted (counted after
// the send, the message could be read, and Stats read, before its sender
// ran again to count it).
//
// g is the id of the calling goroutine when the caller knows it (a
// message: the connection's reader, looked up once per connection), else
// 0. A Handler call records it (s.hg) for the whole call, so that a Close
// from the Handler knows not to wait for its own goroutine; the events
// (rare, and emitted by the actor's goroutine too) have it looked up here.
func (s *Subscription) deliver(out SubEvent, g int64) bool {
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
	select {
	case s.ch <- out:
		return true
	case <-s.quit:
		s.uncounted(msg)
		return false
	}
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
