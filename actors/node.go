package actors

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/policies"
)

// Node is what the connection actors of one server share: how to dial it,
// its circuit breaker, and whether commands to it fail fast. Safe for
// concurrent use.
type Node struct {
	Addr string
	// Where, when set, returns the address the node's connections go to
	// now, Addr being a logical name (sentinel mode: the primary, whichever
	// server it is); hooks' events name that address (Current).
	Where func() string
	// Dial opens a new driver connection, bounded by the dial timeout.
	Dial func(ctx context.Context) (drivers.ValkeyConn, error)
	// DialTimeout bounds Dial and the supervisor's probe.
	DialTimeout time.Duration
	// Breaker is the node's circuit breaker. Its state changes must be
	// reported with SyncOpen (the engine wires OnStateChanged to it).
	Breaker policies.Breaker

	syncMu   sync.Mutex           // makes SyncOpen's read of Breaker and store of open one step
	reported circuitbreaker.State // the state SyncOpen recorded last (zero: closed); under syncMu
	open     atomic.Bool
	openErr  atomic.Pointer[policies.CircuitOpenError]
	resets   atomic.Uint64 // Supervisor.Reset calls: tells a dial (a connection) begun before one
	// refuseMu makes a refusal's look at the breaker and its purge one
	// step against Supervisor.Reset, which closes the breaker holding it
	// (see ConnState.FailIfOpen): a purge that found the breaker open
	// never fails what was queued for the new server after a Reset.
	// Whoever holds it must not call what can open the breaker
	// (RecordFailure, RecordSuccess, TryAcquirePermit, Open): the
	// opening's listener takes it. Reading its state (State, IsClosed)
	// changes nothing and is safe.
	refuseMu sync.Mutex
	// connectTime is how long the last successful connect (a re-dial or
	// a probe: dial and PING; the engine's first dials, NoteConnect,
	// estimate it)
	// took, in nanoseconds: dialGrace's measure of the node's healthy
	// dial.
	connectTime atomic.Int64
}

// NoteConnect records d as the time a successful connect of the node
// took, for a dial made outside the supervisor (the engine's first dials
// of a node's connections): the grace a re-dial of the node gets before
// commands expiring behind it count against its breaker follows it (see
// Supervisor). Without it a node's first outage had the least grace,
// however slow its dials.
func (n *Node) NoteConnect(d time.Duration) { n.connectTime.Store(int64(d)) }

// Open reports whether the node's breaker is not closed: commands to it
// fail at once with OpenError.
func (n *Node) Open() bool { return n.open.Load() }

// OpenError is the error of a command failed because the node's breaker
// is open: a *policies.CircuitOpenError naming the node and the last
// failure counted (errors.Is(err, policies.ErrCircuitOpen) holds).
func (n *Node) OpenError() error {
	if e := n.openErr.Load(); e != nil {
		return e
	}
	return &policies.CircuitOpenError{Addr: n.Current()}
}

// RecordFailure counts a failure of the node in its breaker; err, when
// not nil, is kept as the cause that OpenError reports.
func (n *Node) RecordFailure(err error) {
	if err != nil {
		n.openErr.Store(&policies.CircuitOpenError{Addr: n.Current(), Cause: err})
	}
	n.Breaker.RecordFailure()
}

// SyncOpen sets Open from the breaker's state of now (open for open and
// half-open, as before) and returns that state. The breaker's
// OnStateChanged calls it on every transition. failsafe-go calls that
// listener after releasing its lock, so the listeners of two transitions
// racing (a Reset closing the breaker while a failure opens it) can run
// in the opposite order to the transitions: recording each event's new
// state would leave the last listener's, possibly stale (a node refused
// for good while its breaker is closed). Reading the state of now, with
// the read and the store under one mutex, leaves Open matching the
// breaker once the last listener has returned. Only transitions pay for
// it: Open stays one atomic load. Safe for concurrent use; never call it
// while holding the breaker's lock (a listener never does).
func (n *Node) SyncOpen() circuitbreaker.State { return n.SyncOpenReport(nil) }

// SyncOpenReport is SyncOpen that also reports the change it records:
// when the breaker's state of now differs from the state recorded last,
// report(last, now) runs under the same mutex, so the changes reported
// form a chain in the order they were recorded (each one's from is the
// previous one's to, the first one's from is closed) even when the
// listeners of racing transitions cross; the event a listener was called
// for is not what it reports. A state the breaker left before any
// listener read it is not reported (as Open never showed it either).
// report must not block: it runs with the node's mutex held (the engine
// queues a hook event).
func (n *Node) SyncOpenReport(report func(from, to circuitbreaker.State)) circuitbreaker.State {
	n.syncMu.Lock()
	defer n.syncMu.Unlock()
	s := n.Breaker.State()
	n.open.Store(s != circuitbreaker.ClosedState)
	if last := n.reported; s != last {
		n.reported = s
		if report != nil {
			report(last, s)
		}
	}
	return s
}

// SetOpen forces Open to open, whatever the breaker's state: tests use it
// to stand for the moment between a transition and its listener's
// SyncOpen. The engine's breakers report their state with SyncOpen.
func (n *Node) SetOpen(open bool) { n.open.Store(open) }

// connect dials the node and checks that it answers PING, bounded by
// DialTimeout and ctx. A server still loading its dataset fails with
// errLoading (the connection is closed). It runs off the actors: the
// supervisor calls it on goroutines of its own.
func (n *Node) connect(ctx context.Context) (drivers.ValkeyConn, error) {
	ctx, cancel := context.WithTimeout(ctx, n.DialTimeout)
	defer cancel()
	began := time.Now()
	conn, err := n.Dial(ctx)
	if err != nil {
		return nil, err
	}
	if err := conn.Do(ctx, conn.B().Ping().Build()).Error(); err != nil && !PingRefused(err) {
		_ = conn.Close()
		var ve *valkey.ValkeyError
		if errors.As(err, &ve) && ve.IsLoading() {
			return nil, errLoading
		}
		return nil, err
	}
	n.connectTime.Store(int64(time.Since(began)))
	return conn, nil
}

// PingRefused reports whether err is the server's refusal of PING itself:
// an ACL user without it (NOPERM; a "+@read +@write" user is one) or a
// server that renamed it away (unknown command). The server answered, so
// the connection works: a check of a connection or a node with PING takes
// it as an answer. Without this, such a user's node never came back once
// its connection broke (every redial failed its PING, and the breaker
// stayed open for good).
func PingRefused(err error) bool {
	var ve *valkey.ValkeyError
	if !errors.As(err, &ve) {
		return false
	}
	msg := ve.Error()
	return strings.HasPrefix(msg, "NOPERM") || strings.HasPrefix(msg, "ERR unknown command")
}

// probeKey marks the context of a probe's dial (IsProbe).
type probeKey struct{}

// IsProbe reports whether ctx is the context of a dial that probes a node
// whose breaker is open (the connection is closed once it answered PING),
// rather than one that connects an actor.
func IsProbe(ctx context.Context) bool {
	v, _ := ctx.Value(probeKey{}).(bool)
	return v
}

// Policy is the retry and timing policy the connection actors apply. It is
// read-only once the actors run.
type Policy struct {
	// MaxRetries is how many times one command is sent again after a
	// retryable failure.
	MaxRetries int
	// Backoff spaces reconnect attempts and retries.
	Backoff policies.Backoff
	// Budget bounds retries; nil means unbounded.
	Budget *policies.Budget
	// ReadTimeout bounds one pipeline's round trip (0: the driver's).
	ReadTimeout time.Duration
}

// Current returns the address n's connections go to now: Where's, or Addr.
func (n *Node) Current() string {
	if n.Where != nil {
		if a := n.Where(); a != "" {
			return a
		}
	}
	return n.Addr
}
