package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/hooks"
)

// SubEventKind says what a SubEvent reports.
type SubEventKind uint8

const (
	// SubMessage is a published message: SubEvent.Message.
	SubMessage SubEventKind = iota
	// Subscribed: a connection's subscriptions were confirmed for the
	// first time. One per connection: one in standalone mode; in cluster
	// mode one more for each node that shard channels first needed (not
	// for a connection opened only for channels whose slot moved: their
	// Resubscribed stands for it).
	Subscribed
	// Disconnected: a connection was lost (SubEvent.Err says why), or,
	// with SubEvent.ShardChannel set, that one shard channel was dropped
	// because its slot moved (Err ErrSlotMoved). Messages published from
	// now until the matching Resubscribed are not delivered.
	Disconnected
	// Resubscribed: after a Disconnected, a new connection subscribed to
	// the whole set again, or (ShardChannel set) the moved shard channel
	// was subscribed on its new owner. SubEvent.Gap is the time from the
	// disconnect to the confirmation: the window in which messages may
	// have been missed.
	Resubscribed
)

func (k SubEventKind) String() string {
	switch k {
	case SubMessage:
		return "message"
	case Subscribed:
		return "subscribed"
	case Disconnected:
		return "disconnected"
	case Resubscribed:
		return "resubscribed"
	}
	return fmt.Sprintf("SubEventKind(%d)", uint8(k))
}

// Message is one published message.
type Message struct {
	Channel string // the channel it was published on
	Pattern string // the pattern that matched (PSubscribe), else ""
	Payload string
}

// SubEvent is one item of a subscription's stream: a message or an event
// about the connection, in the order they happened on it (a Disconnected
// comes after the last message of the old connection, a Resubscribed
// before the first message of the new one).
type SubEvent struct {
	Kind    SubEventKind
	Message Message       // SubMessage only
	Addr    string        // the node whose connection the item came from
	Gap     time.Duration // Resubscribed only
	Err     error         // Disconnected only
	// ShardChannel is set on the Disconnected (Err ErrSlotMoved) and the
	// Resubscribed of one shard channel whose slot moved to another node
	// (cluster resharding or failover): the event is about that channel
	// only; the connection and its other channels were not interrupted.
	// "" when the event is about a whole connection.
	ShardChannel string
}

// Overflow says what a subscription does with a message when its channel
// is full.
type Overflow uint8

const (
	// OverflowBlock (the default) waits until the reader takes an item:
	// nothing is lost, but while it waits nothing more is read from the
	// connection, so the server buffers the messages. A reader too slow
	// for too long makes the server drop the connection
	// (client-output-buffer-limit pubsub, 32 MB by default): a
	// Disconnected and a Resubscribed follow.
	OverflowBlock Overflow = iota
	// OverflowDrop drops a message when the channel is full and counts it
	// (Subscription.Dropped). Events are never dropped: they wait.
	OverflowDrop
)

// DefaultSubscribeBuffer is the channel capacity when
// SubscribeOptions.Buffer is 0.
const DefaultSubscribeBuffer = 1024

// SubscribeOptions configures SubscribeWith. The zero value subscribes
// to nothing (at least one name is required) with a 1,024-item channel
// that blocks when full.
type SubscribeOptions struct {
	Channels      []string // SUBSCRIBE
	Patterns      []string // PSUBSCRIBE (glob-style)
	ShardChannels []string // SSUBSCRIBE: in cluster mode, one connection per node owning them

	// Buffer is the capacity of the channel returned by
	// Subscription.Channel, in items. 0 means DefaultSubscribeBuffer;
	// negative is invalid. Ignored with Handler.
	Buffer int
	// Overflow says what happens to a message when the channel is full.
	// Default OverflowBlock. Ignored with Handler.
	Overflow Overflow
	// Handler, when set, receives every item instead of a channel
	// (Channel returns nil). It is called on the connection's reader
	// goroutine, one call at a time, in order; while it runs nothing more
	// is read (backpressure, as OverflowBlock). It must not call the
	// Subscription's methods (except Dropped and Err): they wait for the
	// connection it holds up. Hand such work to another goroutine.
	Handler func(SubEvent)
}

// ErrNoPubSub fails Subscribe when the configured driver cannot dedicate
// a connection to pub/sub (does not implement drivers.ValkeyPubSub).
var ErrNoPubSub = actors.ErrNoPubSub

// ErrSlotMoved is the Err of a Disconnected event when the server
// dropped a shard channel of the subscription because its slot moved
// (cluster failover or resharding), or refused it with MOVED when the
// connection resubscribed: the event names the channel (ShardChannel),
// which the subscription reloads the slot map for and subscribes on its
// new owner's connection (a Resubscribed with the same ShardChannel
// follows). The connection's other channels stay subscribed.
var ErrSlotMoved = actors.ErrSlotMoved

// Subscription is a supervised pub/sub subscription: one subscriber actor
// per connection (one in standalone mode; in cluster mode one for
// channels and patterns and one per node owning shard channels), each on
// a dedicated connection. After a disconnect the actor reconnects with
// the engine's retry backoff (MinRetryBackoff to MaxRetryBackoff, with
// jitter) and subscribes to the whole set again; the stream reports
// Disconnected and Resubscribed around the outage.
//
// Its methods are safe for concurrent use. With OverflowBlock, keep
// reading the channel while calling Subscribe or Unsubscribe from another
// goroutine: their confirmations come behind the messages.
type Subscription struct {
	e       *Engine
	ch      chan SubEvent
	quit    chan struct{}
	handler func(SubEvent)
	hmu     sync.Mutex
	drop    bool
	dropped atomic.Uint64
	// told is dropped's value when the last MessagesDropped event went
	// out, and toldAt when (unix nanoseconds): at most one a second.
	told, toldAt atomic.Int64
	life         context.Context // ends with the subscription: bounds background routing
	cancel       context.CancelFunc
	bg           sync.WaitGroup // background routing and actor stops

	mu     sync.Mutex
	actors []*subActor
	shards map[string]*subActor // cluster mode: shard channel -> the actor subscribing it
	closed bool
	err    error
	done   chan struct{}
}

// subActor is one subscriber actor of a subscription.
type subActor struct {
	st      *actors.SubscriberState
	global  bool   // channels and patterns (cluster mode); standalone: everything
	addr    string // the node it was created for
	pending int    // operations sent and not answered yet (Subscription.mu)
	names   int    // shard channels whose home it is (Subscription.mu)
}

// subCounters are the engine's pub/sub counters (Stats).
type subCounters struct {
	live, conns                           atomic.Int64
	messages, dropped, reconnects, movers atomic.Uint64
}

// Subscribe subscribes to channels (SUBSCRIBE) on a dedicated connection
// and returns the subscription, whose items arrive on Channel. It returns
// once the server confirmed the subscription: ctx bounds only that
// (dialling and the first confirmation); afterwards the subscription lives
// until Close or the engine's Close, reconnecting as needed. It fails when
// no server answers or the server refuses the command; at least one
// non-empty name is required (ErrInvalidArgument).
func (e *Engine) Subscribe(ctx context.Context, channels ...string) (*Subscription, error) {
	return e.SubscribeWith(ctx, SubscribeOptions{Channels: channels})
}

// PSubscribe is Subscribe for glob-style patterns (PSUBSCRIBE); each
// message carries the pattern it matched.
func (e *Engine) PSubscribe(ctx context.Context, patterns ...string) (*Subscription, error) {
	return e.SubscribeWith(ctx, SubscribeOptions{Patterns: patterns})
}

// SSubscribe is Subscribe for shard channels (SSUBSCRIBE, Valkey 7+):
// messages published with SPUBLISH. In cluster mode the channels are
// grouped by the primary owning their slot, one connection per primary;
// after a failover the connection to the new primary resubscribes.
func (e *Engine) SSubscribe(ctx context.Context, shardChannels ...string) (*Subscription, error) {
	return e.SubscribeWith(ctx, SubscribeOptions{ShardChannels: shardChannels})
}

// SubscribeWith subscribes to everything in o, with o's delivery options.
// See Subscribe.
func (e *Engine) SubscribeWith(ctx context.Context, o SubscribeOptions) (*Subscription, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := e.need(drivers.Capabilities{PubSub: true}, "Subscribe"); err != nil {
		return nil, err
	}
	if len(o.Channels)+len(o.Patterns)+len(o.ShardChannels) == 0 {
		return nil, fmt.Errorf("%w: subscribe: no channel or pattern", ErrInvalidArgument)
	}
	if o.Buffer < 0 || o.Overflow > OverflowDrop {
		return nil, fmt.Errorf("%w: subscribe: buffer %d, overflow %d", ErrInvalidArgument, o.Buffer, o.Overflow)
	}
	for _, names := range [][]string{o.Channels, o.Patterns, o.ShardChannels} {
		if err := checkNames(names); err != nil {
			return nil, err
		}
	}
	s := &Subscription{e: e, quit: make(chan struct{}), done: make(chan struct{}), handler: o.Handler, shards: map[string]*subActor{}}
	s.life, s.cancel = context.WithCancel(context.Background())
	if o.Handler == nil {
		n := o.Buffer
		if n == 0 {
			n = DefaultSubscribeBuffer
		}
		s.ch = make(chan SubEvent, n)
		s.drop = o.Overflow == OverflowDrop
	}
	if err := e.track(s); err != nil {
		s.cancel()
		return nil, err
	}
	e.subs.live.Add(1)
	err := errors.Join(
		s.change(ctx, actors.SubChannel, false, o.Channels),
		s.change(ctx, actors.SubPattern, false, o.Patterns),
		s.change(ctx, actors.SubShard, false, o.ShardChannels),
	)
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

func checkNames(names []string) error {
	for _, n := range names {
		if n == "" {
			return fmt.Errorf("%w: subscribe: empty channel name", ErrInvalidArgument)
		}
	}
	return nil
}

// Channel returns the stream of messages and events, closed after the
// last item once the subscription ended (Close, or the engine's Close).
// nil when the subscription has a Handler.
func (s *Subscription) Channel() <-chan SubEvent { return s.ch }

// Dropped returns how many messages OverflowDrop dropped so far.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Err returns why the subscription ended: nil while it runs and after
// Close, ErrClosed after the engine's Close.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Subscribe adds channels to the subscription and waits until the server
// confirmed them or ctx ends. The set survives reconnects. While the
// connection is down it waits for the next one; if ctx ends first it
// returns ctx's error and the channels are still subscribed once
// connected.
func (s *Subscription) Subscribe(ctx context.Context, channels ...string) error {
	return s.runtime(ctx, actors.SubChannel, false, channels)
}

// PSubscribe adds patterns; see Subscribe.
func (s *Subscription) PSubscribe(ctx context.Context, patterns ...string) error {
	return s.runtime(ctx, actors.SubPattern, false, patterns)
}

// SSubscribe adds shard channels; see Subscribe. In cluster mode a
// channel whose owner has no connection yet gets a new one.
func (s *Subscription) SSubscribe(ctx context.Context, shardChannels ...string) error {
	return s.runtime(ctx, actors.SubShard, false, shardChannels)
}

// Unsubscribe removes channels from the subscription; they are not
// subscribed again after a reconnect. When connected it waits for the
// server's confirmation (or ctx); messages already read may still follow.
func (s *Subscription) Unsubscribe(ctx context.Context, channels ...string) error {
	return s.runtime(ctx, actors.SubChannel, true, channels)
}

// PUnsubscribe removes patterns; see Unsubscribe.
func (s *Subscription) PUnsubscribe(ctx context.Context, patterns ...string) error {
	return s.runtime(ctx, actors.SubPattern, true, patterns)
}

// SUnsubscribe removes shard channels; see Unsubscribe.
func (s *Subscription) SUnsubscribe(ctx context.Context, shardChannels ...string) error {
	return s.runtime(ctx, actors.SubShard, true, shardChannels)
}

func (s *Subscription) runtime(ctx context.Context, kind actors.SubKind, unsub bool, names []string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if len(names) == 0 {
		return fmt.Errorf("%w: subscribe: no channel or pattern", ErrInvalidArgument)
	}
	if err := checkNames(names); err != nil {
		return err
	}
	return s.change(ctx, kind, unsub, names)
}

// change subscribes or unsubscribes names and waits for the answers; see
// apply.
func (s *Subscription) change(ctx context.Context, kind actors.SubKind, unsub bool, names []string) error {
	if len(names) == 0 {
		return nil
	}
	return s.apply(ctx, kind, unsub, names, time.Time{}, false, "")
}

// subSent is an operation sent to an actor.
type subSent struct {
	a  *subActor
	op actors.SubOp
}

// apply routes names to their actors, sends the operations and waits for
// them. Shard channels the server redirected (MOVED) are routed again
// after a slot-map reload, with the engine's backoff between attempts,
// until they are subscribed, ctx ends (they are then left to a background
// goroutine) or the subscription ends. moved says that names are shard
// channels handed back after their slot moved: they are routed by the
// reloaded slot map, and since is when they stopped being subscribed.
//
// from, with moved, is the node that gave the names up: it no longer owns
// them, so while the slot map still says it does, the map is stale (a
// replica accepts SSUBSCRIBE too: subscribing there would look fine and
// receive nothing) and the names wait for a fresher map.
func (s *Subscription) apply(ctx context.Context, kind actors.SubKind, unsub bool, names []string, since time.Time, moved bool, from string) error {
	var errs []error
	for try := 0; len(names) > 0; try++ {
		if try > 0 && !s.pause(ctx, try-1) {
			s.movedFrom(names, since, from) // still wanted: keep trying in the background
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return ErrClosed
		}
		if moved {
			_, _ = s.e.cl.Refresh(s.e.slotOf(names[0])) // the map is stale: the server said so
		}
		sent, err := s.send(kind, unsub, names, since, moved, from)
		if err != nil {
			if moved && !errors.Is(err, ErrClosed) {
				continue // no owner known yet: try again after the backoff
			}
			return errors.Join(append(errs, err)...)
		}
		names, moved = nil, true
		for i, o := range sent {
			var err error
			select {
			case err = <-o.op.Done:
			case <-o.a.st.Stopped():
				err = ErrClosed
			case <-s.quit:
				return ErrClosed
			case <-ctx.Done():
				s.abandon(sent[i:], since)
				return ctx.Err()
			}
			names = append(names, s.settle(o, err)...)
			if err = withoutMoved(err); err != nil {
				errs = append(errs, mapError(err))
			}
		}
		s.reap()
	}
	return errors.Join(errs...)
}

// pause waits the engine's backoff for attempt n; false if ctx or the
// subscription ended first.
func (s *Subscription) pause(ctx context.Context, n int) bool {
	t := time.NewTimer(s.e.retry.Backoff.Delay(n))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-s.quit:
	}
	return false
}

// send routes names to the actors that serve them, creating actors as
// needed (not for unsubscribing), and posts the operations. In cluster
// mode a shard channel stays with the actor that subscribed it (its home)
// until it moves; moved routes by the slot map instead, skipping names
// unsubscribed meanwhile.
func (s *Subscription) send(kind actors.SubKind, unsub bool, names []string, since time.Time, moved bool, from string) ([]subSent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	groups := map[*subActor][]string{}
	var order []*subActor
	add := func(a *subActor, ns ...string) {
		if _, ok := groups[a]; !ok {
			order = append(order, a)
		}
		groups[a] = append(groups[a], ns...)
	}
	if s.e.cl == nil || kind != actors.SubShard {
		a := s.find(true, "")
		if a == nil {
			if unsub {
				return nil, nil
			}
			a = s.spawn(true, "", "")
		}
		add(a, names...)
	} else {
		// Resolve the owners first: nothing changes when one is unknown.
		owner := map[string]string{}
		for _, n := range names {
			if unsub || (s.shards[n] != nil && !moved) {
				continue
			}
			addr, err := s.e.addrOf(n)
			if err != nil {
				return nil, err
			}
			if moved && addr == from {
				return nil, errStaleSlotMap
			}
			owner[n] = addr
		}
		for _, n := range names {
			home := s.shards[n]
			switch {
			case unsub:
				if home != nil {
					s.unhome(n)
					add(home, n)
				}
			case home != nil && !moved:
				add(home, n) // already subscribed (or being subscribed) there
			case home == nil && moved:
				// unsubscribed meanwhile
			default:
				a := s.find(false, owner[n])
				if a == nil {
					a = s.spawn(false, owner[n], n)
				}
				s.rehome(n, a)
				add(a, n)
			}
		}
	}
	sent := make([]subSent, 0, len(order))
	for _, a := range order {
		op := actors.SubOp{Kind: kind, Unsub: unsub, Names: groups[a], Done: make(chan error, 1), Since: since}
		a.pending++
		a.st.Send(op)
		sent = append(sent, subSent{a, op})
	}
	return sent, nil
}

// rehome makes a the home of shard channel n (s.mu held).
func (s *Subscription) rehome(n string, a *subActor) {
	if old := s.shards[n]; old != nil {
		old.names--
	}
	s.shards[n] = a
	a.names++
}

// unhome forgets shard channel n (s.mu held).
func (s *Subscription) unhome(n string) {
	if old := s.shards[n]; old != nil {
		old.names--
		delete(s.shards, n)
	}
}

// settle records the answer to an operation and returns the shard
// channels the server redirected (MOVED), which still need a home. An
// actor whose connection never subscribed anything (a failed dial, a
// refusal) keeps none of the names it failed, so that reap stops it.
func (s *Subscription) settle(o subSent, err error) []string {
	var me *actors.MovedError
	var moved []string
	if errors.As(err, &me) {
		moved = me.Names
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o.a.pending--
	if o.op.Unsub || o.op.Kind != actors.SubShard || withoutMoved(err) == nil || o.a.st.Subscribed() {
		return moved
	}
	for _, n := range o.op.Names {
		if s.shards[n] == o.a && !slices.Contains(moved, n) {
			s.unhome(n)
		}
	}
	return moved
}

// withoutMoved returns err without its *actors.MovedError (nil if that
// was all).
func withoutMoved(err error) error {
	var me *actors.MovedError
	if !errors.As(err, &me) {
		return err
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return nil
	}
	var rest []error
	for _, e := range j.Unwrap() {
		if !errors.As(e, &me) {
			rest = append(rest, e)
		}
	}
	return errors.Join(rest...)
}

// abandon leaves the answers to sent, which the caller stopped waiting
// for, to a background goroutine: it settles them and routes the shard
// channels the server redirected.
func (s *Subscription) abandon(sent []subSent, since time.Time) {
	s.background(func() {
		var moved []string
		for _, o := range sent {
			select {
			case err := <-o.op.Done:
				moved = append(moved, s.settle(o, err)...)
			case <-o.a.st.Stopped():
				s.settle(o, ErrClosed)
			case <-s.quit:
				return
			}
		}
		s.reap()
		if len(moved) > 0 {
			_ = s.apply(s.life, actors.SubShard, false, moved, since, true, "")
		}
	})
}

// movedFrom is an actor's SubscriberState.Moved: the shard channels it
// gave up because their slot moved (from is its node) are routed to their
// new owner in the background.
func (s *Subscription) movedFrom(names []string, since time.Time, from string) {
	s.background(func() {
		_ = s.apply(s.life, actors.SubShard, false, names, since, true, from)
		s.reap()
	})
}

// errStaleSlotMap: the slot map still names the node that gave a shard
// channel up as its owner.
var errStaleSlotMap = errors.New("vactor: the slot map still shows the old owner")

// background runs f on a goroutine that end waits for, unless the
// subscription is ending.
func (s *Subscription) background(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		f()
	}()
}

// reap stops the actors left without work: a shard-channel actor with no
// channel and no operation in flight (its connection is closed), and an
// actor whose connection never subscribed anything (its first operations
// failed: the next Subscribe starts afresh).
func (s *Subscription) reap() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	var gone []*subActor
	s.actors = slices.DeleteFunc(s.actors, func(a *subActor) bool {
		idle := a.pending == 0 && ((!a.global && a.names == 0) || !a.st.Subscribed())
		if idle {
			gone = append(gone, a)
		}
		return idle
	})
	if len(gone) == 0 {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		for _, a := range gone {
			a.st.Stop()
		}
	}()
}

func (s *Subscription) find(global bool, addr string) *subActor {
	for _, a := range s.actors {
		if a.global != global {
			continue
		}
		if global {
			return a
		}
		if cur := a.st.Addr(); cur == addr || (cur == "" && a.addr == addr) {
			return a
		}
	}
	return nil
}

// spawn starts a subscriber actor (s.mu held).
func (s *Subscription) spawn(global bool, addr, hint string) *subActor {
	e := s.e
	st := &actors.SubscriberState{
		Dial:     s.dial,
		Hint:     hint,
		Backoff:  e.retry.Backoff,
		Timeout:  e.retry.ReadTimeout,
		Emit:     s.emit,
		CloseErr: ErrClosed,
		Conns:    &e.subs.conns,
	}
	if e.cl != nil && !global {
		st.Moved = func(names []string, since time.Time) { s.movedFrom(names, since, st.Addr()) }
	}
	st.Spawn(e.system)
	a := &subActor{st: st, global: global, addr: addr}
	s.actors = append(s.actors, a)
	return a
}

// dial opens a pub/sub connection: to the configured node in standalone
// mode; in cluster mode to the primary owning hint's slot (slot 0 for
// channels and patterns), reloading the slot map after a failure.
func (s *Subscription) dial(ctx context.Context, hint string, failures int) (drivers.ValkeyConn, string, error) {
	e := s.e
	addr, err := e.addrOf(hint)
	if e.cl != nil && failures > 0 {
		addr, err = e.cl.Refresh(e.slotOf(hint))
	}
	if err != nil {
		return nil, "", err
	}
	dctx, cancel := context.WithTimeout(ctx, e.cfg.DialTimeout)
	defer cancel()
	conn, err := e.dial(dctx, addr)
	if err != nil {
		return nil, addr, err
	}
	return conn, addr, nil
}

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
		s.e.bus.Emit(hooks.Subscriber{Kind: kind, Node: out.Addr, Err: out.Err, Gap: out.Gap, ShardChannel: out.ShardChannel})
	}
	if s.deliver(out) && out.Kind == SubMessage {
		s.e.subs.messages.Add(1)
	}
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
	s.e.bus.Emit(hooks.Subscriber{Kind: hooks.MessagesDropped, Count: n - uint64(prev)})
}

// deliver hands out one item; false if it was dropped.
func (s *Subscription) deliver(out SubEvent) bool {
	if s.handler != nil {
		s.hmu.Lock()
		defer s.hmu.Unlock()
		select {
		case <-s.quit:
			return false
		default:
		}
		s.handler(out)
		return true
	}
	if s.drop && out.Kind == SubMessage {
		select {
		case s.ch <- out:
			return true
		default:
			s.droppedMessage()
			return false
		}
	}
	select {
	case s.ch <- out:
		return true
	case <-s.quit:
		return false
	}
}

// Close ends the subscription: it stops its actors, closes their
// connections and then the channel (after the last item), and returns
// once every goroutine it started is gone. It returns ErrClosed if the
// subscription had already ended. Do not call it from a Handler.
func (s *Subscription) Close() error {
	s.e.untrack(s)
	if !s.end(nil) {
		return ErrClosed
	}
	return nil
}

// stop implements service: the engine's Close ends the subscription.
func (s *Subscription) stop(err error) { s.end(err) }

// end stops everything once; false if it had already ended (it then
// waits until that ending is over).
func (s *Subscription) end(err error) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return false
	}
	s.closed = true
	s.err = err
	as := s.actors
	s.mu.Unlock()
	s.cancel()
	close(s.quit)
	var wg sync.WaitGroup
	for _, a := range as {
		wg.Go(a.st.Stop)
	}
	wg.Wait()
	s.bg.Wait()
	s.e.subs.live.Add(-1)
	if s.ch != nil {
		close(s.ch)
	}
	close(s.done)
	return true
}

// SPublish posts message on a shard channel (SPUBLISH, Valkey 7+) and
// returns the number of subscribers that received it (on the node owning
// the channel's slot in cluster mode).
func (e *Engine) SPublish(ctx context.Context, channel, message string) *futures.Future[int64] {
	if channel == "" {
		return fail[int64](fmt.Errorf("%w: SPUBLISH: empty channel", ErrInvalidArgument))
	}
	return submit(e, ctx, channel, e.b.Spublish().Channel(channel).Message(message).Build(), decodeInt64)
}
