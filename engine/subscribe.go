package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/futures"
)

// SubEventKind says what a SubEvent reports.
type SubEventKind uint8

const (
	// SubMessage is a published message: SubEvent.Message.
	SubMessage SubEventKind = iota
	// Subscribed: a connection's subscriptions were confirmed for the
	// first time. One per connection: one in standalone mode; in cluster
	// mode one more for each node that shard channels first needed (not
	// for a connection opened only for channels whose slot moved, or kept
	// after a Refused (see Refused): their Resubscribed stands for it).
	Subscribed
	// Disconnected: a connection was lost (SubEvent.Err says why), or,
	// with SubEvent.ShardChannel set, that one shard channel was dropped
	// because its slot moved (Err ErrSlotMoved). Messages published from
	// now until the matching Resubscribed are not delivered. When the
	// server or the network went silent (a frozen server, a lost route)
	// rather than closing the connection, the loss is found by the idle
	// PING, up to 1 s + ReadTimeout (4 s by default) after the silence
	// began, and messages published in that time may be missing too (Err
	// then says that the PING went unanswered).
	Disconnected
	// Resubscribed: after a Disconnected, a new connection subscribed to
	// the whole set again, or (ShardChannel set) the moved shard channel
	// was subscribed on its new owner, or (ShardChannel set, after a
	// Refused with a *ConnectError: see Refused) a shard channel whose
	// node could not be reached when it was asked for was subscribed once
	// the node answered. SubEvent.Gap is the time from the disconnect (for
	// the latter: from the call) to the confirmation: the window in which
	// messages may have been missed, plus, after a silent outage, the time it took to
	// find it (see Disconnected), which Gap does not include. A reader
	// held up by a full channel (OverflowBlock: nothing read it) reads
	// nothing from its connection meanwhile, so it finds a connection the
	// server dropped (at its pub/sub output limit, 32 MB by default) only
	// once the channel has room: Gap then starts when the channel filled
	// up, the earliest the server may have dropped it. A slow Handler
	// holds its reader up the same way, and that time is not in Gap.
	Resubscribed
	// Refused: after a Disconnected, the server refused to subscribe the
	// set again on a new connection: SubEvent.Err is its error reply (a
	// *ServerError such as NOPERM after an ACL change, or a *ConnectError
	// for a refused handshake such as WRONGPASS). The subscription keeps
	// trying at the reconnect backoff (MaxRetryBackoff apart) and a
	// Resubscribed follows once the server accepts; one Refused per
	// distinct error (at most 16) until the whole set is subscribed
	// again. A set the server refuses in part (a pattern the ACL no
	// longer allows, its channels allowed) is confirmed in part on each
	// try: a Resubscribed and a Disconnected then come with each try, the
	// tries MaxRetryBackoff apart. A connection that merely cannot be made
	// (a server down, a timeout) is not a refusal: the Disconnected stands
	// for the whole outage. In cluster mode a shard channel whose slot
	// moved to a node that refuses it (an ACL that differs between nodes)
	// gets a Refused with ShardChannel set, after its Disconnected, once
	// per distinct error; it is tried on the new owner at the same backoff
	// until a Resubscribed, or until it is unsubscribed. The same for a
	// shard channel a node refuses when its connection subscribes the set
	// again (an ACL change, or a node the set's slots moved to): it leaves
	// the connection's set, whose other channels stay subscribed, and gets
	// its own Refused and tries. A Refused also
	// tells of a Subscribe, PSubscribe or SSubscribe nobody waited for
	// that the server refused: one made from the Handler (it returns
	// before the answer) or one whose ctx ended first; those names are
	// not subscribed and not tried again, as after a refusal the caller
	// saw (a shard channel's Refused has ShardChannel set). In cluster
	// mode such a call may need a new connection (to a shard channel's
	// node, or for channels and patterns when the subscription had none):
	// when that connection cannot be made (the node is down), the
	// Refused's Err is a *ConnectError, one per shard channel, and the
	// shard channels are kept and tried again in the background, as a
	// moved channel is (the slot map reloaded, the reconnect backoff
	// apart, silently while the node stays unreachable, a Refused per
	// distinct error reply if a node refuses them), until they are
	// subscribed (a Resubscribed with their ShardChannel), unsubscribed,
	// or the subscription ends. The channels and patterns whose connection
	// could not be made (no node answered) are kept likewise (one Refused
	// for them, ShardChannel "") and subscribed once a node answers: the
	// Subscribed of their new connection follows (when another call has
	// opened that connection meanwhile, its Subscribed came first and they
	// are subscribed at the next try, with no event of their own).
	Refused
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
	case Refused:
		return "refused"
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
	Err     error         // Disconnected and Refused only
	// ShardChannel is set on the Disconnected (Err ErrSlotMoved), the
	// Refused and the Resubscribed of one shard channel whose slot moved
	// to another node
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
	// (Subscription.Dropped): the newest ones go, those in the channel
	// stay, and nothing in the channel marks where messages are missing
	// (the MessagesDropped hook reports the count, at most once a
	// second). Events are never dropped: they wait.
	OverflowDrop
)

// DefaultSubscribeBuffer is the channel capacity when
// SubscribeOptions.Buffer is 0.
const DefaultSubscribeBuffer = 1024

// maxSubscribeBuffer bounds SubscribeOptions.Buffer: the channel is
// allocated whole, and make panics (or exhausts memory) on a huge size.
const maxSubscribeBuffer = 1 << 20

// SubscribeOptions configures SubscribeWith. The zero value subscribes
// to nothing (at least one name is required) with a 1,024-item channel
// that blocks when full.
type SubscribeOptions struct {
	Channels      []string // SUBSCRIBE
	Patterns      []string // PSUBSCRIBE (glob-style)
	ShardChannels []string // SSUBSCRIBE: in cluster mode, one connection per node owning them

	// Buffer is the capacity of the channel returned by
	// Subscription.Channel, in items. 0 means DefaultSubscribeBuffer;
	// negative, or more than 1,048,576 (1<<20: the channel is allocated
	// at once), is invalid. Ignored with Handler.
	//
	// Until SubscribeWith returns nobody can read the channel, and
	// SubscribeWith does not wait for a reader: the items that arrive
	// before it has every confirmation and do not fit in the channel are
	// held in memory, beyond Buffer (with OverflowDrop the messages among
	// them are dropped and counted instead; events are held), and go into
	// the channel once it has them all, in order and before any later
	// item. So a small Buffer on a busy channel does not hold
	// SubscribeWith up.
	Buffer int
	// Overflow says what happens to a message when the channel is full.
	// Default OverflowBlock. Ignored with Handler.
	Overflow Overflow
	// Handler, when set, receives every item instead of a channel
	// (Channel returns nil), one call at a time, in order (a connection's
	// Subscribed event before its messages), on the connection's reader
	// goroutine; while it runs nothing more is read (backpressure, as
	// OverflowBlock).
	//
	// SubscribeWith neither calls it nor waits for it: the items that
	// arrive before the server confirmed everything SubscribeWith asked
	// for are held in memory, then handed to it in order on a goroutine
	// of the subscription's once SubscribeWith has every confirmation;
	// the readers wait for that, and hand it the later items afterwards.
	// So a call can start before SubscribeWith has returned to its
	// caller: a Handler that uses the Subscription must wait for it (on a
	// channel closed once SubscribeWith returned, say), which it may do
	// without holding SubscribeWith up.
	//
	// It may call the Subscription's methods and the engine's Close. The
	// Subscription's Subscribe and Unsubscribe methods called from it
	// send the change and return without waiting for the server's
	// confirmation (read by the goroutine the Handler holds up): see
	// Subscription.Subscribe. A Close called from it ends the
	// subscription without waiting for the Handler (see
	// Subscription.Close). Other engine calls that wait for a reply on
	// this subscription's connection cannot be made from it. A panic in
	// it is recovered: that item is lost, the subscription goes on, and
	// the panic is counted (Stats.SubPanics) and, the first time, logged.
	// Close (the Subscription's or the engine's) called from any other
	// goroutine waits for a call in progress to return: a Handler that
	// blocks for ever (on a channel nobody reads any more, say) blocks
	// Close for ever.
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
// Disconnected and Resubscribed around the outage, and Refused when the
// server refuses the set meanwhile.
//
// Its methods are safe for concurrent use. With OverflowBlock, keep
// reading the channel while calling Subscribe or Unsubscribe from another
// goroutine: their confirmations come behind the messages.
type Subscription struct {
	// Its state is behind this one pointer: fmt of a value holding a
	// *Subscription (printed with %s) then prints an address instead of
	// reading the state without its locks (see Engine).
	*subscriptionState
}

// subscriptionState is a Subscription's state (see Subscription).
type subscriptionState struct {
	e       *Engine
	ch      chan SubEvent
	quit    chan struct{}
	handler func(SubEvent)
	hmu     sync.Mutex
	// hg is the id of the goroutine running a Handler call, 0 between
	// calls (see deliver).
	hg atomic.Int64
	// panicked is set by the Handler's first panic (logged once).
	panicked atomic.Bool
	drop     bool
	dropped  atomic.Uint64
	// told is dropped's value when the last MessagesDropped event went
	// out (tmu), and toldAt when (unix nanoseconds): at most one a
	// second. tail, when set, tells the drops made within that second
	// once it has passed (see droppedMessage); finish tells what is left.
	tmu    sync.Mutex
	told   uint64
	toldAt atomic.Int64
	tail   *time.Timer // tmu
	// backlog is when (unix nanoseconds) the channel filled up and held
	// up its readers (OverflowBlock), 0 once they have caught up (see
	// caughtUp). A reader held up does not read its connection, so the
	// server may have dropped it (its pub/sub output limit) at any time
	// since: Resubscribed's Gap starts there rather than when the reader
	// found out (qa-AK AK1: a Gap of 16 ms for a subscription gone 2.2 s;
	// see emit). unblocked is when the latest delivery that waited for
	// room ended.
	backlog, unblocked atomic.Int64

	life   context.Context // ends with the subscription: bounds background routing
	cancel context.CancelFunc
	bg     sync.WaitGroup // background routing, actor stops and the release of held items

	// The gate (see hold): shut until SubscribeWith has the server's
	// confirmations, open once the items held meanwhile are handed over.
	opened   atomic.Bool // gate == gateOpen, read without gmu by every delivery
	gmu      sync.Mutex
	gate     gateState
	held     []SubEvent    // items held while the gate is shut, in order
	released chan struct{} // closed once the held items are handed over

	// instance numbers the subscription for the hooks
	// (hooks.Subscriber.Instance).
	instance uint64

	mu     sync.Mutex
	actors []*subActor
	shards map[string]*subActor // cluster mode: shard channel -> the actor subscribing it
	moving map[string]moveClaim // cluster mode: shard channels a move routes to a new owner -> that move (the latest to claim it; see move)
	moves  uint64               // numbers the moves
	// lastOp is, per homed shard channel, the number of the last
	// operation that subscribed it on its home (ops numbers them): a
	// refusal of an earlier one does not unhome it (see settle).
	lastOp map[string]uint64
	ops    uint64
	// fresh is, per channel and pattern sent to a connection not
	// subscribed yet (cluster mode: opened after SubscribeWith), the
	// number of the operation that sent it, until its answer; an
	// unsubscribe removes it. pending is, per channel and pattern of an
	// operation nobody waited for whose connection could not be made, the
	// retry keeping it (see retryOthers); an unsubscribe removes it.
	fresh   map[subName]uint64
	pending map[subName]uint64
	closed  bool
	err     error
	done    chan struct{}
}

// subscriptions numbers the process's subscriptions
// (hooks.Subscriber.Instance).
var subscriptions atomic.Uint64

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
	panics                                atomic.Uint64
}

// Subscribe subscribes to channels (SUBSCRIBE) on a dedicated connection
// and returns the subscription, whose items arrive on Channel. It returns
// once the server confirmed the subscription: ctx bounds only that
// (dialling and the first confirmation); afterwards the subscription lives
// until Close or the engine's Close, reconnecting as needed. It fails when
// no server answers or the connection is lost before the server confirmed
// (a *ConnectError: call it again), or the server refuses the command; at least one
// name is required, and any empty name fails the whole call with
// ErrInvalidArgument (the server would take "": the engine refuses it as a
// likely mistake; Publish to "" is not refused). After the engine's
// Close it fails with ErrClosed, before any other check (the driver's
// lack of pub/sub included). When it fails (ctx's error when ctx ended
// first) nothing is left subscribed.
//
// It does not wait for the channel's reader nor for the Handler, whatever
// Buffer, Overflow and the message rate: the items that arrive before it
// returns are held and delivered afterwards, in order (see
// SubscribeOptions.Buffer and SubscribeOptions.Handler).
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

// subscribeName is the method a program called to subscribe to o, for the
// error of a driver without pub/sub.
func subscribeName(o SubscribeOptions) string {
	switch {
	case len(o.Channels) > 0 && len(o.Patterns)+len(o.ShardChannels) == 0:
		return "Subscribe"
	case len(o.Patterns) > 0 && len(o.Channels)+len(o.ShardChannels) == 0:
		return "PSubscribe"
	case len(o.ShardChannels) > 0 && len(o.Channels)+len(o.Patterns) == 0:
		return "SSubscribe"
	}
	return "SubscribeWith"
}

// SubscribeWith subscribes to everything in o, with o's delivery options.
// It returns once the server confirmed every channel, pattern and shard
// channel of o, or when ctx ends (with ctx's error, and nothing left
// subscribed). See Subscribe.
func (e *Engine) SubscribeWith(ctx context.Context, o SubscribeOptions) (*Subscription, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := e.need(drivers.Capabilities{PubSub: true}, subscribeName(o)); err != nil {
		return nil, err
	}
	if len(o.Channels)+len(o.Patterns)+len(o.ShardChannels) == 0 {
		return nil, fmt.Errorf("%w: subscribe: no channel or pattern", ErrInvalidArgument)
	}
	if o.Buffer < 0 || o.Buffer > maxSubscribeBuffer {
		return nil, fmt.Errorf("%w: SubscribeOptions.Buffer %d: from 0 (the default, %d) to %d", ErrInvalidArgument, o.Buffer, DefaultSubscribeBuffer, maxSubscribeBuffer)
	}
	if o.Overflow > OverflowDrop {
		return nil, fmt.Errorf("%w: SubscribeOptions.Overflow %d: OverflowBlock or OverflowDrop", ErrInvalidArgument, o.Overflow)
	}
	for _, names := range [][]string{o.Channels, o.Patterns, o.ShardChannels} {
		if err := checkNames(names); err != nil {
			return nil, err
		}
	}
	s := &Subscription{&subscriptionState{e: e, quit: make(chan struct{}), done: make(chan struct{}), handler: o.Handler, shards: map[string]*subActor{}, moving: map[string]moveClaim{}, lastOp: map[string]uint64{},
		fresh: map[subName]uint64{}, pending: map[subName]uint64{},
		instance: subscriptions.Add(1)}}
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
	// Until the gate opens, the items are held rather than handed over
	// (see hold): the connection's reader must not wait for a reader of
	// the channel (the caller has no Subscription yet) nor for the
	// Handler (which may wait for it), since it has the confirmations
	// still to read.
	err := errors.Join(
		s.change(ctx, actors.SubChannel, false, o.Channels),
		s.change(ctx, actors.SubPattern, false, o.Patterns),
		s.change(ctx, actors.SubShard, false, o.ShardChannels),
	)
	if err != nil {
		_ = s.Close() // the held items go with it
		return nil, err
	}
	s.release()
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
func (s *Subscription) Channel() <-chan SubEvent {
	if s == nil || s.subscriptionState == nil || s.e == nil {
		return closedSubEvents // a range over it ends at once
	}
	return s.ch
}

// errZeroSubscription fails the methods of a Subscription the engine did
// not make; closedSubEvents is its Channel.
var (
	errZeroSubscription = notMade("a zero Subscription: make one with Engine.Subscribe or SubscribeWith")
	closedSubEvents     = func() chan SubEvent { ch := make(chan SubEvent); close(ch); return ch }()
)

// Dropped returns how many messages OverflowDrop dropped so far.
func (s *Subscription) Dropped() uint64 {
	if s == nil || s.subscriptionState == nil {
		return 0
	}
	return s.dropped.Load()
}

// Err returns why the subscription ended: nil while it runs and after
// Close, ErrClosed after the engine's Close.
func (s *Subscription) Err() error {
	if s == nil || s.subscriptionState == nil || s.e == nil {
		return errZeroSubscription
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Subscribe adds channels to the subscription and waits until the server
// confirmed them or ctx ends. The set survives reconnects. While the
// connection is down it waits for the next one; if ctx ends first it
// returns ctx's error and the channels are still subscribed once
// connected. In cluster mode a call that needs a new connection (the
// first channels or patterns of a subscription that had only shard
// channels, a shard channel on a node the subscription had no connection
// to) fails with a *ConnectError when that connection cannot be made,
// and nothing is left subscribed or tried again; nobody waiting (ctx
// ended, or called from the Handler), that is a Refused event, and the
// shard channels are kept and subscribed once their node answers (a
// Resubscribed with their ShardChannel follows: see Refused), the
// channels and patterns once a node answers (their connection's
// Subscribed follows).
//
// Called from the subscription's Handler, the change is sent and Subscribe
// returns nil without waiting (the confirmation is read by the goroutine
// the Handler holds up): the channels' messages follow once the Handler
// has returned and the server has confirmed them. The same holds for the
// other Subscribe and Unsubscribe methods; an error is returned only when
// nothing could be sent (the subscription has ended, or in cluster mode
// a shard channel's owner is unknown). A refusal by the server (NOPERM)
// arrives later as a Refused event, and the names are not subscribed; the
// same for a call whose ctx ended before the server answered.
func (s *Subscription) Subscribe(ctx context.Context, channels ...string) error {
	if s == nil || s.subscriptionState == nil || s.e == nil {
		return errZeroSubscription
	}
	return s.runtime(ctx, actors.SubChannel, false, channels)
}

// PSubscribe adds patterns; see Subscribe.
func (s *Subscription) PSubscribe(ctx context.Context, patterns ...string) error {
	if s == nil || s.subscriptionState == nil || s.e == nil {
		return errZeroSubscription
	}
	return s.runtime(ctx, actors.SubPattern, false, patterns)
}

// SSubscribe adds shard channels; see Subscribe. In cluster mode a
// channel whose owner has no connection yet gets a new one.
func (s *Subscription) SSubscribe(ctx context.Context, shardChannels ...string) error {
	if s == nil || s.subscriptionState == nil || s.e == nil {
		return errZeroSubscription
	}
	return s.runtime(ctx, actors.SubShard, false, shardChannels)
}

// Unsubscribe removes channels from the subscription; they are not
// subscribed again after a reconnect. When connected it waits for the
// server's confirmation (or ctx); messages already read may still follow.
func (s *Subscription) Unsubscribe(ctx context.Context, channels ...string) error {
	if s == nil || s.subscriptionState == nil || s.e == nil {
		return errZeroSubscription
	}
	return s.runtime(ctx, actors.SubChannel, true, channels)
}

// PUnsubscribe removes patterns; see Unsubscribe.
func (s *Subscription) PUnsubscribe(ctx context.Context, patterns ...string) error {
	if s == nil || s.subscriptionState == nil || s.e == nil {
		return errZeroSubscription
	}
	return s.runtime(ctx, actors.SubPattern, true, patterns)
}

// SUnsubscribe removes shard channels; see Unsubscribe.
func (s *Subscription) SUnsubscribe(ctx context.Context, shardChannels ...string) error {
	if s == nil || s.subscriptionState == nil || s.e == nil {
		return errZeroSubscription
	}
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
	if s.hg.Load() != 0 && s.runsHandler(goid()) {
		// From the Handler: the server's confirmation is read by the
		// goroutine the Handler holds up, so it cannot be waited for.
		return s.changeNoWait(kind, unsub, names)
	}
	return s.change(ctx, kind, unsub, names)
}

// Close ends the subscription: it stops its actors, closes their
// connections and then the channel (after the last item), and returns
// once every goroutine it started is gone; it waits for a Handler call in
// progress to return. It returns ErrClosed if the subscription had
// already ended.
//
// Called from the Handler, Close cannot wait for the call in progress (its
// caller): it ends the subscription (no item is handed to the Handler
// after the call in progress) and returns at once; the actors stop and
// their connections close once the Handler has returned. The engine's
// Close called from the Handler does the same for this subscription (and
// stops every other service as always) and returns while the Handler
// still runs.
func (s *Subscription) Close() error {
	if s == nil || s.subscriptionState == nil || s.e == nil {
		return errZeroSubscription
	}
	s.e.untrack(s)
	var caller int64
	if s.hg.Load() != 0 { // a Handler call in progress: maybe the caller
		caller = goid()
	}
	if !s.end(nil, caller) {
		return errSubscriptionClosed
	}
	return nil
}

// stop implements service: the engine's Close ends the subscription.
func (s *Subscription) stop(err error) { s.end(err, 0) }

// stopFrom implements handlerService.
func (s *Subscription) stopFrom(err error, caller int64) { s.end(err, caller) }

// runsHandler implements handlerService: g is in a Handler call.
func (s *Subscription) runsHandler(g int64) bool { return g != 0 && g == s.hg.Load() }

// end stops everything once; false if it had already ended (it then
// waits until that ending is over). caller is the id of the calling
// goroutine (0: unknown): when it runs the Handler call in progress, end
// does not wait for the actors (one of which, or its connection's reader,
// is that goroutine): they stop on a goroutine of their own, and that
// call is the last.
func (s *Subscription) end(err error, caller int64) bool {
	inHandler := caller != 0 && caller == s.hg.Load()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		if !inHandler {
			<-s.done
		}
		return false
	}
	s.closed = true
	s.err = err
	as := s.actors
	s.mu.Unlock()
	s.cancel()
	close(s.quit)
	if inHandler {
		go s.finish(as)
		return true
	}
	s.finish(as)
	return true
}

// finish stops the actors and the background routing, and closes the
// channel and done.
func (s *Subscription) finish(as []*subActor) {
	var wg sync.WaitGroup
	for _, a := range as {
		wg.Go(a.st.Stop)
	}
	wg.Wait()
	s.bg.Wait()
	s.tellDropped()
	s.e.subs.live.Add(-1)
	if s.ch != nil {
		close(s.ch)
	}
	close(s.done)
}

// SPublish posts message on a shard channel (SPUBLISH, Valkey 7+) and
// returns the number of subscribers that received it (on the node owning
// the channel's slot in cluster mode).
func (e *Engine) SPublish(ctx context.Context, channel, message string) *futures.Future[int64] {
	cmd, err := spublishCmd(e.b, channel, message)
	if err != nil {
		return fail[int64](err)
	}
	return submit(e, ctx, channel, cmd, decodeInt64)
}

// spublishCmd builds SPublish's command (shared with Pipeline and Tx).
func spublishCmd(b valkey.Builder, channel, message string) (valkey.Completed, error) {
	if channel == "" {
		return valkey.Completed{}, fmt.Errorf("%w: SPUBLISH: empty channel", ErrInvalidArgument)
	}
	return b.Spublish().Channel(channel).Message(message).Build(), nil
}
