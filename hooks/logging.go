package hooks

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// The messages the engine logs (through Logging, and a few of its own),
// stable across releases: match on them, not on their wording elsewhere.
// Every line also carries stable attributes: node, slot, attempt, error,
// and the others named in the Logging methods' docs.
const (
	MsgConnected       = "vactor: connected"
	MsgReconnected     = "vactor: reconnected"
	MsgProbeOK         = "vactor: probe connected"
	MsgDialFailed      = "vactor: connect failed"
	MsgConnLost        = "vactor: connection lost"
	MsgActorRestarted  = "vactor: connection actor restarted"
	MsgMailboxFull     = "vactor: mailbox full"
	MsgBreakerChanged  = "vactor: circuit breaker changed"
	MsgRetryScheduled  = "vactor: retry scheduled"
	MsgRedirected      = "vactor: cluster redirect"
	MsgSlotMapChanged  = "vactor: slot map changed"
	MsgSlotMapLoaded   = "vactor: slot map loaded"
	MsgSlotMapFailed   = "vactor: slot map load failed"
	MsgSentinelSwitch  = "vactor: failover: new primary"
	MsgSubscribed      = "vactor: subscribed"
	MsgSubDisconnected = "vactor: subscriber disconnected"
	MsgSubRefused      = "vactor: resubscribe refused"
	MsgResubscribed    = "vactor: resubscribed"
	MsgSubDropped      = "vactor: pub/sub messages dropped"
	MsgSubPanicked     = "vactor: subscription handler panicked"
	MsgWriterPanicked  = "vactor: batch writer OnError panicked"
	MsgConsumerFailed  = "vactor: stream handler failed"
	MsgConsumerEvent   = "vactor: stream consumer"
	// MsgConsumerInterrupted and MsgConsumerResumed: a stream consumer's
	// connection failed, and it read again.
	MsgConsumerInterrupted = "vactor: stream consumer interrupted"
	MsgConsumerResumed     = "vactor: stream consumer resumed"
	// MsgHookPanicked (error) is a hook's first panic (later ones are
	// counted in engine.Stats.HookPanics, not logged); attributes hook
	// (its type), index (in Config.Hooks, whether or not Config.Logger is
	// set; the engine's own logging over Config.Logger, which panics when
	// that logger's handler does, has engine=true instead), method, panic
	// (the panic's value, as the hook gave it). MsgHookDropped (warn, at
	// most once a second) reports hook events dropped because the hooks
	// fell behind; attributes dropped (since the last line) and total. It
	// is logged on a timer the first drop starts, not by the hook
	// goroutine, so it comes within a second also when a hook never
	// returns; Close logs the drops not reported yet. The engine logs them
	// itself, not through Logging. MsgHookStuck (warn) is Close giving up
	// on the hooks after 5 s (attribute wait): a hook had not returned, or
	// the hooks were slower than the events came and had not taken all of
	// them; the hook events not yet delivered were dropped.
	MsgHookPanicked = "vactor: hook panicked"
	MsgHookDropped  = "vactor: hook events dropped: the hooks fall behind"
	MsgHookStuck    = "vactor: close: the hooks did not take the queued events in time; the rest are dropped"
)

// Logging is the hook that logs the engine's events to Logger, with the
// Msg* messages and stable attributes: connects and reconnects at info,
// failed connects and lost connections at warn (at most one line a second
// per node and message, with the number of lines suppressed), breaker
// transitions at warn, retries, redirects (at most 10 lines a second per
// node) and actor restarts at debug,
// slot-map changes and failovers at info, dropped pub/sub messages and full
// mailboxes at warn (rate-limited like connects), stream handler failures
// at warn. It logs no command, key or value, and no password: the errors
// it logs come from the engine and the driver, except a stream handler's
// own error.
//
// The engine installs one over config.Config.Logger (filtered by
// Config.LogLevel) by itself: this is that logger, not a second logging
// path. Register a Logging yourself only to log the events to another
// logger as well. Safe for concurrent use.
type Logging struct {
	Logger *slog.Logger

	mu    sync.Mutex
	limit map[limitKey]*limited
	// sweepFrom is len(limit) at which the next sweep of the idle limits
	// runs (sweepLocked).
	sweepFrom int
}

type limitKey struct{ msg, node string }

type limited struct {
	window     time.Duration // every, or breakerEvery for a breaker's trials
	start      time.Time     // of the current window
	n          int           // lines logged in it
	suppressed int
	// trailing is armed at the first line suppressed in a window: at the
	// window's end it logs the count if no line has (with the last
	// suppressed line's level and attributes).
	trailing *time.Timer
	level    slog.Level
	attrs    []slog.Attr
}

// NewLogging returns a Logging hook over l.
func NewLogging(l *slog.Logger) *Logging { return &Logging{Logger: l} }

// every is the window of the rate limit: at most one line (redirectBurst
// for MsgRedirected) per window with the same message and node.
const every = time.Second

// redirectBurst is how many MsgRedirected lines a node's redirects may log
// per second: a slot migration or a resharding redirects every command of
// the slots on the move, tens of thousands of lines a second otherwise.
const redirectBurst = 10

// breakerEvery is the window of a node's breaker trials: while a node
// stays down its breaker goes open -> half-open -> open once every
// CircuitBreakerOpenTimeout (1 s by default), two warn lines a second per
// node for the whole outage. Its opening and its closing are always
// logged; the trials in between at most once per window each, with the
// number suppressed.
const breakerEvery = 30 * time.Second

// allow reports whether a rate-limited line may be logged now (at most
// burst lines per window of every), and how many were suppressed since
// the last one logged. A line suppressed is kept (level, attrs) for the
// trailing line that reports the count when the burst ends within the
// window (trail).
func (l *Logging) allow(k limitKey, window time.Duration, burst int, level slog.Level, attrs []slog.Attr) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limit == nil {
		l.limit = map[limitKey]*limited{}
	}
	now := time.Now()
	s := l.limit[k]
	if s == nil {
		if len(l.limit) >= l.sweepFrom {
			l.sweepLocked(now)
		}
		s = &limited{window: window}
		l.limit[k] = s
	}
	if s.start.IsZero() || now.Sub(s.start) >= s.window {
		n := s.suppressed
		s.start, s.n, s.suppressed = now, 1, 0
		return true, n
	}
	if s.n < burst {
		s.n++
		return true, 0
	}
	s.suppressed++
	s.level, s.attrs = level, attrs
	if s.trailing == nil {
		s.trailing = time.AfterFunc(s.window-now.Sub(s.start), func() { l.trail(k) })
	} else if s.suppressed == 1 {
		s.trailing.Reset(s.window - now.Sub(s.start))
	}
	return false, 0
}

// sweepLocked forgets the limits whose window has ended with no line
// suppressed (the next line of theirs would start a new window, as a
// new limit does): a cluster whose nodes are replaced over weeks, each
// under a new address, would otherwise make the hook keep a limit per
// message and address it ever logged. It runs when a new limit finds as
// many as sweepFrom, twice those it kept (at least 64), so that its cost
// per limit made stays constant. l.mu is held.
func (l *Logging) sweepLocked(now time.Time) {
	for k, s := range l.limit {
		if s.suppressed == 0 && now.Sub(s.start) >= s.window {
			if s.trailing != nil {
				s.trailing.Stop()
			}
			delete(l.limit, k)
		}
	}
	l.sweepFrom = max(64, 2*len(l.limit))
}

// trail logs, at the end of a window in which lines of msg and node were
// suppressed, the last of them, with trailing=true and, as any line, the
// number of the others suppressed before it, unless a line logged since
// reported them: a burst that ends within a second is counted too.
func (l *Logging) trail(k limitKey) {
	l.mu.Lock()
	s := l.limit[k]
	if s == nil || s.suppressed == 0 {
		l.mu.Unlock()
		return
	}
	n, level, attrs := s.suppressed, s.level, s.attrs
	s.start, s.n, s.suppressed, s.attrs = time.Now(), 1, 0, nil
	l.mu.Unlock()
	l.logTrailing(level, k.msg, attrs, n)
}

// settle ends k's window: its suppressed lines, if any, are logged now as
// a trailing line, and its next line is logged at once.
func (l *Logging) settle(k limitKey) {
	l.mu.Lock()
	s := l.limit[k]
	if s == nil {
		l.mu.Unlock()
		return
	}
	delete(l.limit, k)
	if s.trailing != nil {
		s.trailing.Stop()
	}
	n, level, attrs := s.suppressed, s.level, s.attrs
	l.mu.Unlock()
	if n > 0 {
		l.logTrailing(level, k.msg, attrs, n)
	}
}

// logTrailing logs a trailing line: the last of n lines suppressed.
func (l *Logging) logTrailing(level slog.Level, msg string, attrs []slog.Attr, n int) {
	if n > 1 {
		attrs = append(attrs, slog.Int("suppressed", n-1))
	}
	l.Logger.LogAttrs(context.Background(), level, msg, append(attrs, slog.Bool("trailing", true))...)
}

// Flush logs now the trailing lines due at the end of the current
// windows (see the rate limits): Engine.Close calls it for the engine's
// Logging hooks once the hooks are done, so that no line comes after
// Close returned, up to a second later, to a logger the application may
// have closed.
func (l *Logging) Flush() {
	type due struct {
		msg   string
		level slog.Level
		attrs []slog.Attr
		n     int
	}
	var lines []due
	l.mu.Lock()
	for k, s := range l.limit {
		if s.trailing != nil {
			s.trailing.Stop()
		}
		if s.suppressed > 0 {
			lines = append(lines, due{k.msg, s.level, s.attrs, s.suppressed})
			s.start, s.n, s.suppressed, s.attrs = time.Now(), 1, 0, nil
		}
	}
	l.mu.Unlock()
	for _, d := range lines {
		l.logTrailing(d.level, d.msg, d.attrs, d.n)
	}
}

func (l *Logging) log(level slog.Level, msg string, attrs ...slog.Attr) {
	if l.Logger == nil || !l.Logger.Enabled(context.Background(), level) {
		return
	}
	l.Logger.LogAttrs(context.Background(), level, msg, attrs...)
}

// limited logs a rate-limited line: at most one a second per message and
// node.
func (l *Logging) limited(level slog.Level, msg, node string, attrs ...slog.Attr) {
	l.limitedN(level, msg, node, 1, attrs...)
}

// limitedN logs a line rate-limited to burst a second per message and node.
func (l *Logging) limitedN(level slog.Level, msg, node string, burst int, attrs ...slog.Attr) {
	if l.Logger == nil || !l.Logger.Enabled(context.Background(), level) {
		return
	}
	l.limitedIn(limitKey{msg, node}, every, level, burst, attrs...)
}

// limitedIn logs a line of k rate-limited to burst per window.
func (l *Logging) limitedIn(k limitKey, window time.Duration, level slog.Level, burst int, attrs ...slog.Attr) {
	ok, n := l.allow(k, window, burst, level, attrs)
	if !ok {
		return
	}
	if n > 0 {
		attrs = append(attrs, slog.Int("suppressed", n))
	}
	l.Logger.LogAttrs(context.Background(), level, k.msg, attrs...)
}

func errAttr(err error) slog.Attr { return slog.String("error", err.Error()) }

// PostConnection logs a connection actor's connect (MsgConnected, info) and
// reconnect (MsgReconnected, info), a successful probe of a node whose
// breaker is open (MsgProbeOK, debug), a dedicated connection (MsgConnected,
// debug), and failures (MsgDialFailed, warn, rate-limited; not a dial
// abandoned, whose error is context.Canceled). Attributes:
// node, tls, dedicated, duration, error.
func (l *Logging) PostConnection(ev Dialed) {
	attrs := []slog.Attr{slog.String("node", ev.Node), slog.Bool("tls", ev.TLS), slog.Bool("dedicated", ev.Dedicated), slog.Duration("duration", ev.Duration)}
	if ev.Sentinel {
		attrs = append(attrs, slog.Bool("sentinel", true))
	}
	switch {
	case ev.Err != nil && errors.Is(ev.Err, context.Canceled):
		// Abandoned, not failed: another node answered first (a
		// subscription dials the next primary after 250 ms), the primary
		// changed meanwhile, or the caller gave up.
	case ev.Err != nil:
		l.limited(slog.LevelWarn, MsgDialFailed, ev.Node, append(attrs, errAttr(ev.Err))...)
	case ev.Dedicated:
		l.log(slog.LevelDebug, MsgConnected, attrs...)
	case ev.Probe:
		l.log(slog.LevelDebug, MsgProbeOK, attrs...)
	case ev.Initial:
		l.log(slog.LevelInfo, MsgConnected, attrs...)
	default:
		l.log(slog.LevelInfo, MsgReconnected, attrs...)
	}
}

// OnConnectionLost logs MsgConnLost at warn (rate-limited). Attributes:
// node, error, kept, and reason when the client itself closed the
// connection because its commands' deadline passed before their replies
// (context.DeadlineExceeded: not a network fault, qa-AR AR4).
func (l *Logging) OnConnectionLost(ev Lost) {
	attrs := []slog.Attr{slog.String("node", ev.Node), errAttr(ev.Err), slog.Int("kept", ev.Kept)}
	if errors.Is(ev.Err, context.DeadlineExceeded) {
		attrs = append(attrs, slog.String("reason", "the commands' deadline passed before their replies: the client closed the connection"))
	}
	l.limited(slog.LevelWarn, MsgConnLost, ev.Node, attrs...)
}

// OnActorRestarted logs MsgActorRestarted at debug. Attributes: node,
// restarts.
func (l *Logging) OnActorRestarted(ev Restart) {
	l.log(slog.LevelDebug, MsgActorRestarted, slog.String("node", ev.Node), slog.Uint64("restarts", ev.Restarts))
}

// OnMailboxFull logs MsgMailboxFull at warn (rate-limited). Attributes:
// node, rejected, commands.
func (l *Logging) OnMailboxFull(ev Backpressure) {
	l.limited(slog.LevelWarn, MsgMailboxFull, ev.Node, slog.String("node", ev.Node), slog.Bool("rejected", ev.Rejected), slog.Int("commands", ev.Commands))
}

// OnBreakerChanged logs MsgBreakerChanged at warn. Attributes: node, from,
// to. A breaker's opening (from closed) and closing are always logged; its
// trials while the node stays down (open -> half-open -> open, once every
// CircuitBreakerOpenTimeout) at most once every 30 s per node and
// direction, with the number suppressed (a trailing line at the window's
// end, or at the closing, before its line).
func (l *Logging) OnBreakerChanged(ev BreakerChange) {
	if l.Logger == nil || !l.Logger.Enabled(context.Background(), slog.LevelWarn) {
		return
	}
	attrs := []slog.Attr{slog.String("node", ev.Node), slog.String("from", ev.From), slog.String("to", ev.To)}
	trial := limitKey{MsgBreakerChanged, ev.Node + "\x00" + ev.From + ">" + ev.To}
	switch {
	case ev.From == BreakerClosed || ev.To == BreakerClosed:
		// The node failing or recovered: the trials' counts first.
		l.settle(limitKey{MsgBreakerChanged, ev.Node + "\x00" + BreakerOpen + ">" + BreakerHalfOpen})
		l.settle(limitKey{MsgBreakerChanged, ev.Node + "\x00" + BreakerHalfOpen + ">" + BreakerOpen})
		l.Logger.LogAttrs(context.Background(), slog.LevelWarn, MsgBreakerChanged, attrs...)
	default:
		l.limitedIn(trial, breakerEvery, slog.LevelWarn, 1, attrs...)
	}
}

// OnRetryScheduled logs MsgRetryScheduled at debug. Attributes: node,
// commands, attempt, backoff, error.
func (l *Logging) OnRetryScheduled(ev Retry) {
	attrs := []slog.Attr{slog.String("node", ev.Node), slog.Int("commands", ev.Commands), slog.Int("attempt", ev.Attempt), slog.Duration("backoff", ev.Backoff)}
	if ev.Reason != nil {
		attrs = append(attrs, errAttr(ev.Reason))
	}
	l.log(slog.LevelDebug, MsgRetryScheduled, attrs...)
}

// OnRedirected logs MsgRedirected at debug, at most 10 lines a second per
// node that redirected (the first line after a suppressed one counts them
// in "suppressed"). Attributes: kind, command, slot, from, to, gave_up.
func (l *Logging) OnRedirected(ev Redirect) {
	l.limitedN(slog.LevelDebug, MsgRedirected, ev.From, redirectBurst, slog.String("kind", ev.Kind), slog.String("command", ev.Name), slog.Int("slot", ev.Slot),
		slog.String("from", ev.From), slog.String("to", ev.To), slog.Bool("gave_up", ev.GaveUp))
}

// OnSlotMapLoaded logs MsgSlotMapChanged at info when slots changed owner,
// MsgSlotMapLoaded at debug when none did, and MsgSlotMapFailed at warn
// (rate-limited). Attributes: epoch, shards, moved, duration, error.
func (l *Logging) OnSlotMapLoaded(ev SlotMap) {
	attrs := []slog.Attr{slog.Uint64("epoch", ev.Epoch), slog.Int("shards", ev.Shards), slog.Int("moved", ev.Moved), slog.Duration("duration", ev.Duration)}
	switch {
	case ev.Err != nil:
		l.limited(slog.LevelWarn, MsgSlotMapFailed, "", append(attrs, errAttr(ev.Err))...)
	case ev.Moved > 0:
		l.log(slog.LevelInfo, MsgSlotMapChanged, attrs...)
	default:
		l.log(slog.LevelDebug, MsgSlotMapLoaded, attrs...)
	}
}

// OnSentinelSwitched logs MsgSentinelSwitch at info. Attributes: master,
// from, to.
func (l *Logging) OnSentinelSwitched(ev SentinelSwitch) {
	l.log(slog.LevelInfo, MsgSentinelSwitch, slog.String("master", ev.Master), slog.String("from", ev.From), slog.String("to", ev.To))
}

// OnSubscriberEvent logs MsgSubscribed at debug, MsgSubDisconnected and
// MsgSubRefused at warn, MsgResubscribed at info and MsgSubDropped at
// warn (rate-limited).
// Attributes: node, subscription (Subscriber.Instance, which tells two
// subscriptions apart), error, gap, count; shard_channel when one shard
// channel moved and debug is enabled (a shard channel is named like a key).
func (l *Logging) OnSubscriberEvent(ev Subscriber) {
	attrs := []slog.Attr{slog.String("node", ev.Node)}
	if ev.Instance != 0 {
		attrs = append(attrs, slog.Uint64("subscription", ev.Instance))
	}
	level := slog.LevelInfo
	var msg string
	switch ev.Kind {
	case Subscribed:
		msg, level = MsgSubscribed, slog.LevelDebug
	case Disconnected, Refused:
		msg, level = MsgSubDisconnected, slog.LevelWarn
		if ev.Kind == Refused {
			msg = MsgSubRefused
		}
		if ev.Err != nil {
			attrs = append(attrs, errAttr(ev.Err))
		}
	case Resubscribed:
		msg = MsgResubscribed
		attrs = append(attrs, slog.Duration("gap", ev.Gap))
	case MessagesDropped:
		l.limited(slog.LevelWarn, MsgSubDropped, ev.Node, append(attrs, slog.Uint64("count", ev.Count))...)
		return
	default:
		return
	}
	if ev.Shards {
		attrs = append(attrs, slog.Bool("shards", true))
	}
	if ev.ShardChannel != "" && l.enabled(slog.LevelDebug) {
		attrs = append(attrs, slog.String("shard_channel", ev.ShardChannel))
	}
	l.log(level, msg, attrs...)
}

func (l *Logging) enabled(level slog.Level) bool {
	return l.Logger != nil && l.Logger.Enabled(context.Background(), level)
}

// OnConsumerEvent logs MsgConsumerFailed at warn (with the handler's error
// and the entry ID), MsgConsumerInterrupted at warn (with the error, in
// which the stream's quoted name, as a NOGROUP reply has it, is cut unless
// debug is enabled), MsgConsumerResumed at info (with the gap) and the
// other consumer events as MsgConsumerEvent at debug. Attributes: kind, group, consumer, node
// (when known), count, id, error, lag, pending, gap; stream (a key) when
// debug is enabled.
func (l *Logging) OnConsumerEvent(ev Consumer) {
	attrs := []slog.Attr{slog.String("group", ev.Group), slog.String("consumer", ev.Consumer)}
	if ev.Node != "" {
		attrs = append(attrs, slog.String("node", ev.Node))
	}
	if l.enabled(slog.LevelDebug) {
		attrs = append(attrs, slog.String("stream", ev.Stream))
	}
	switch ev.Kind {
	case HandlerFailed:
		attrs = append(attrs, slog.String("id", ev.ID))
		if ev.Err != nil {
			attrs = append(attrs, errAttr(ev.Err))
		}
		l.log(slog.LevelWarn, MsgConsumerFailed, attrs...)
	case Lag:
		l.log(slog.LevelDebug, MsgConsumerEvent, append(attrs, slog.String("kind", ev.Kind.String()), slog.Int64("lag", ev.Lag), slog.Int64("pending", ev.Pending))...)
	case Stopped:
		l.log(slog.LevelDebug, MsgConsumerEvent, append(attrs, slog.String("kind", ev.Kind.String()))...)
	case Interrupted:
		if ev.Err != nil {
			attrs = append(attrs, l.streamErrAttr(ev.Err, ev.Stream))
		}
		l.log(slog.LevelWarn, MsgConsumerInterrupted, attrs...)
	case Resumed:
		l.log(slog.LevelInfo, MsgConsumerResumed, append(attrs, slog.Duration("gap", ev.Gap))...)
	default:
		l.log(slog.LevelDebug, MsgConsumerEvent, append(attrs, slog.String("kind", ev.Kind.String()), slog.Int("count", ev.Count))...)
	}
}

// streamErrAttr is the error attribute of a consumer's interruption:
// the server's NOGROUP reply names the stream, a key ("NOGROUP No such
// key 'orders' or consumer group 'g' in XREADGROUP with GROUP option",
// and XAUTOCLAIM's likewise; an "unknown command" reply quotes it among
// the arguments it echoes, in backquotes before Redis 7), so its quoted
// name is cut from the text unless debug is enabled, as the stream
// attribute is.
func (l *Logging) streamErrAttr(err error, stream string) slog.Attr {
	text := err.Error()
	if stream != "" && !l.enabled(slog.LevelDebug) {
		text = strings.ReplaceAll(text, "'"+stream+"'", "(the stream)")
		text = strings.ReplaceAll(text, "`"+stream+"`", "(the stream)")
	}
	return slog.String("error", text)
}

var (
	_ PostConnection   = (*Logging)(nil)
	_ ConnectionLost   = (*Logging)(nil)
	_ ActorRestarted   = (*Logging)(nil)
	_ MailboxFull      = (*Logging)(nil)
	_ BreakerChanged   = (*Logging)(nil)
	_ RetryScheduled   = (*Logging)(nil)
	_ Redirected       = (*Logging)(nil)
	_ SlotMapLoaded    = (*Logging)(nil)
	_ SentinelSwitched = (*Logging)(nil)
	_ SubscriberEvents = (*Logging)(nil)
	_ ConsumerEvents   = (*Logging)(nil)
)
