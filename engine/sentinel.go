package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/policies"
)

// Sentinel mode. The sentinel actor (actors.SentinelState) owns what the
// engine knows of the primary; this file connects it to the rest of the
// engine:
//
//   - the primary's connection actors (e.first) are created once and keep
//     their mailboxes across failovers; their Node.Dial asks the sentinel
//     actor to resolve the primary again (Sync), dials the address it
//     names and checks ROLE, so every reconnect goes to the current
//     primary;
//   - when a failover of the primary starts, their mailboxes are paused:
//     new commands wait there (bounded by their contexts and the mailbox
//     capacity), and each actor sends WAIT on its connection so that the
//     writes already acknowledged reach the replicas before one is
//     promoted. At the switch each actor replaces its connection (nothing
//     is in flight: the pause stopped the pipelines) and the held commands
//     go to the new primary, in order; if the failover aborts they go on
//     to the old one;
//   - a READONLY or MASTERDOWN reply means the connection reached a
//     former primary: the actor resends the command after reconnecting
//     (ConnState.NotPrimary), so callers never see it;
//   - dedicated connections (subscribers, stream consumers, Tx, Watch,
//     Dedicated, the batch writer) dial the current primary and are
//     closed at a switch, so their owners reconnect to the new one; Tx,
//     Watch, Dedicated and blocking commands wait while a failover is
//     held (settled), and the batch writer's lanes and the pooled
//     connections of Tx, Watch and Dedicated are held as the connection
//     actors are, WAIT included (batchwriter_hold.go, tx_hold.go);
//   - with ReadFrom replica, read-only commands go to the replicas the
//     sentinels see healthy, each with connection actors of its own.

// sentinelHoldWait bounds the WAIT each connection of the primary sends
// when a failover starts.
const sentinelHoldWait = 100 * time.Millisecond

// sentinelEvents turns the sentinel event subscriptions on; tests turn
// them off to exercise the READONLY path.
var sentinelEvents = true

// sentinelHoldLimit is the longest a failover is held: at most the
// primary's failover-timeout.
const sentinelHoldLimit = 10 * time.Second

// sentinel is the engine's sentinel-mode state. Safe for concurrent use.
type sentinel struct {
	e     *Engine
	state actors.SentinelState
	node  *actors.Node    // the primary's (e.first's) node
	opts  drivers.Options // to the sentinels, Addr left empty

	holding  atomic.Bool
	waitOK   atomic.Uint64 // WAITs at the start of a failover that all replicas acknowledged
	waitLate atomic.Uint64 // those that did not, or failed

	// heldCh is held, for the batch writer's lanes: one atomic load per
	// pipeline, no lock. holdSeq counts the OnHold calls (a lane sends
	// WAIT once per call while its writes are not known replicated);
	// holdN is the number of replicas the current hold waits for.
	heldCh  atomic.Pointer[chan struct{}]
	holdSeq atomic.Uint64
	holdN   atomic.Int64

	mu       sync.Mutex
	held     chan struct{}             // while a failover is held; closed when it ends
	renewed  chan struct{}             // closed (and replaced) by each call of hold
	tracked  map[*trackedConn]struct{} // dedicated connections, closed at a switch
	replicas map[string]bool           // replica pools dialled or being dialled
	readers  atomic.Pointer[[][]*actors.ConnState]
	dials    sync.WaitGroup
	closes   sync.WaitGroup // closeTracked's closes in progress; Close waits
}

// newSentinel asks the sentinels for the primary (in turn, staggered: see
// actors.SentinelState.Discover; each answer checked with ROLE), then
// dials the primary's connection actors, whose Node.Dial resolves the
// primary again on every reconnect.
func (e *Engine) newSentinel(ctx context.Context) ([]*actors.ConnState, error) {
	cfg := *e.cfg
	sn := &sentinel{e: e}
	sn.opts = *e.opts
	sn.opts.Username, sn.opts.Password = cfg.SentinelUsername, cfg.SentinelPassword
	sn.opts.Credentials = nil
	if cfg.SentinelCredentialsProvider != nil {
		sn.opts.Credentials = cfg.SentinelCredentialsProvider
	}
	sn.opts.DB = 0 // a sentinel accepts no SELECT
	sn.state = actors.SentinelState{
		MasterName: cfg.SentinelMasterName,
		Sentinels:  slices.Clone(cfg.SentinelAddrs),
		Dial:       sn.dialSentinel,
		Interval:   cfg.SentinelRefreshInterval,
		Timeout:    cfg.DialTimeout,
		Backoff:    policies.Backoff{Min: cfg.MinRetryBackoff, Max: cfg.MaxRetryBackoff},
		HoldLimit:  sentinelHoldLimit,
		OnHold:     sn.hold,
		OnSwitch:   sn.switched,
		OnRelease:  sn.release,
		OnReplicas: sn.setReplicas,
		OnTick:     sn.tick,
		NoEvents:   !sentinelEvents,
	}
	sn.state.Aliases = sentinelAliases(ctx, cfg.SentinelAddrs)
	verify := func(ctx context.Context, addr string) error {
		conn, err := sn.dialRole(ctx, addr)
		if err == nil {
			_ = conn.Close()
		}
		return err
	}
	if err := sn.state.Discover(ctx, verify); err != nil {
		sn.state.Stop()
		return nil, err // ErrNoPrimary's text begins with "vactor: "
	}
	// The primary's connection actors carry a logical name (they keep
	// their mailboxes across failovers); the hooks' events name the
	// primary they go to now.
	conns, err := e.newNodeWith(ctx, "sentinel:"+cfg.SentinelMasterName, sn.primary, sn.dialPrimary, func(c *actors.ConnState) {
		c.NotPrimary = sn.state.Request
		c.MaxResends = cfg.MaxRedirects
	})
	if err != nil {
		sn.state.Stop()
		return nil, err
	}
	sn.node = conns[0].Node
	e.sn = sn
	return conns, nil
}

// sentinelAliases resolves the configured sentinels given by host name
// (actors.SentinelState.Aliases): each address a name resolves to maps to
// the configured address. A name that does not resolve is left out (its
// dial says why). Bounded by ctx and a second.
func sentinelAliases(ctx context.Context, addrs []string) map[string]string {
	var aliases map[string]string
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil || net.ParseIP(host) != nil {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, time.Second)
		ips, err := net.DefaultResolver.LookupHost(lctx, host)
		cancel()
		if err != nil {
			continue
		}
		for _, ip := range ips {
			if aliases == nil {
				aliases = map[string]string{}
			}
			if alias := net.JoinHostPort(ip, port); alias != a {
				aliases[alias] = a
			}
		}
	}
	return aliases
}

// start spawns the sentinel actor (once the engine's actors run) and dials
// the replicas for ReadFrom.
func (sn *sentinel) start(ctx context.Context) error {
	if err := sn.state.Spawn(sn.e.system); err != nil {
		return fmt.Errorf("vactor: %w", err)
	}
	sn.setReplicas(sn.state.View())
	// Follow the sentinels' events before returning, so that a failover
	// right after New is held from its start too. A sentinel that does
	// not answer (frozen) costs at most sentinelSubscribeWait.
	t := time.NewTimer(sentinelSubscribeWait)
	defer t.Stop()
	select {
	case <-sn.state.Subscribed():
	case <-ctx.Done():
	case <-t.C:
	}
	return nil
}

// sentinelSubscribeWait bounds New's wait for the event subscriptions.
const sentinelSubscribeWait = time.Second

// stop stops the sentinel actor and waits for the replica dials.
func (sn *sentinel) stop() {
	sn.state.Stop()
	sn.endHold() // no switch will end it
	sn.dials.Wait()
}

// settled returns at once unless a failover of the primary is held: then
// it waits until the switch (or the abort), or until ctx ends. Tx, Watch,
// Dedicated and blocking commands call it before they pick the primary's
// address, so that they are held as the connection actors' commands are.
func (sn *sentinel) settled(ctx context.Context) error {
	sn.mu.Lock()
	ch := sn.held
	sn.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// endHold wakes the callers waiting in settled.
func (sn *sentinel) endHold() {
	sn.mu.Lock()
	if sn.held != nil {
		sn.heldCh.Store(nil)
		close(sn.held)
		sn.held = nil
	}
	sn.mu.Unlock()
}

// settled is sentinel.settled in sentinel mode; nil otherwise.
func (e *Engine) settled(ctx context.Context) error {
	if e.sn == nil {
		return nil
	}
	return e.sn.settled(ctx)
}

// dialSentinel opens a connection to a sentinel with the sentinels'
// credentials; a failed dial is a *ConnectError that says what is wrong
// when it can tell (a refused connection, TLS, ACL), as for data nodes.
func (sn *sentinel) dialSentinel(ctx context.Context, addr string) (drivers.ValkeyConn, error) {
	opts := sn.opts
	opts.Addr = addr
	// Through the PreConnection and PostConnection hooks (Sentinel set):
	// a sentinel that refuses the engine after New (its password
	// rotated) left it unable to follow a failover, and nothing said so
	// but Stats().Sentinel (qa-AD 8).
	return sn.e.hookedDialAs(ctx, hooks.Dial{Node: addr, Dedicated: true, Sentinel: true}, func(ctx context.Context) (drivers.ValkeyConn, error) {
		conn, err := sn.e.open(ctx, opts)
		if err != nil && !errors.Is(err, ErrClosed) {
			reason, extra := explainConnect(err, opts.TLS != nil)
			return nil, &ConnectError{Addr: addr, Reason: reason, Err: err, extra: extra}
		}
		return conn, err
	})
}

// dialRole dials the data node at addr and checks that it says it is a
// primary (ROLE).
func (sn *sentinel) dialRole(ctx context.Context, addr string) (drivers.ValkeyConn, error) {
	opts := *sn.e.opts
	opts.Addr = addr
	conn, err := sn.e.open(ctx, opts)
	if err != nil {
		// A *ConnectError that says why (a wrong data-node password, a
		// refused certificate), as New reports it in standalone mode.
		return nil, sn.e.connectError(addr, err)
	}
	// ROLE fails at once when ctx ends (New's deadline, or Discover giving
	// up on this check once another sentinel's primary passed): the driver
	// may wait for a frozen node's reply until the connection's own
	// deadline, whatever ctx says; closing the connection ends it now.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	role, err := roleOf(ctx, conn)
	if !stop() {
		err = fmt.Errorf("ROLE on %s: %w", addr, ctx.Err()) // the connection is closed
	}
	if err == nil && role != "master" {
		err = fmt.Errorf("%w: %s says it is a %s", ErrNotPrimary, addr, role)
	}
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return conn, nil
}

// roleOf returns the first field of ROLE: "master", "slave", "sentinel".
// ROLE is an @admin command: an ACL user that may not run it (a data-only
// "~* +@read +@write" user) gets NOPERM, and the role then comes from
// HELLO without arguments, which every user may send (the "role" of its
// reply: "master" or "replica", the latter returned as "slave").
func roleOf(ctx context.Context, conn drivers.ValkeyConn) (string, error) {
	arr, err := conn.Do(ctx, conn.B().Role().Build()).ToArray()
	if err != nil && actors.PingRefused(err) {
		return helloRole(ctx, conn, err)
	}
	if err != nil {
		return "", fmt.Errorf("ROLE: %w", err)
	}
	if len(arr) == 0 {
		return "", errors.New("ROLE: empty reply")
	}
	return arr[0].ToString()
}

// helloRole is roleOf from HELLO's reply; refused is ROLE's refusal, which
// the error names when HELLO does not tell either.
func helloRole(ctx context.Context, conn drivers.ValkeyConn, refused error) (string, error) {
	m, err := conn.Do(ctx, conn.B().Arbitrary("HELLO").Build()).AsMap()
	if err != nil {
		return "", fmt.Errorf("ROLE: %w; HELLO: %w", refused, err)
	}
	r, ok := m["role"]
	if !ok {
		return "", fmt.Errorf("ROLE: %w; HELLO's reply has no role", refused)
	}
	role, err := r.ToString()
	if err != nil {
		return "", fmt.Errorf("ROLE: %w; HELLO's role: %w", refused, err)
	}
	if role == "replica" {
		role = "slave"
	}
	return role, nil
}

// dialPrimary is the Node.Dial of the primary's connection actors: it has
// the sentinels asked again (a resolution that starts now; several dials
// at once share one), dials the primary they name, checks ROLE, and makes
// sure the primary did not change meanwhile.
func (sn *sentinel) dialPrimary(ctx context.Context) (drivers.ValkeyConn, error) {
	// Half the dial's time at most: with no answer by then (the sentinels
	// slow or frozen), dial the primary the engine knows, checked by ROLE.
	sctx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(ctx, time.Until(dl)/2)
		defer cancel()
	}
	sn.state.Sync(sctx)
	v := sn.state.View()
	conn, err := sn.dialRole(ctx, v.Master)
	if err != nil {
		if errors.Is(err, ErrNotPrimary) {
			sn.state.Request()
		}
		return nil, err
	}
	if now := sn.state.View(); now.Gen != v.Gen {
		_ = conn.Close()
		return nil, fmt.Errorf("vactor: the primary changed from %s to %s while dialling it", v.Master, now.Master)
	}
	return conn, nil
}

// hold runs on the sentinel actor when a failover of the primary starts
// (and again when its candidate becomes known): the primary's connection
// actors stop sending (their mailboxes keep the commands) and each sends
// WAIT for the replicas, once its pipeline in flight has completed; the
// batch writers' lanes and the pooled connections of Tx, Watch and
// Dedicated do the same (batchwriter_hold.go, tx_hold.go).
func (sn *sentinel) hold(_ string, replicas []string) {
	sn.holding.Store(true)
	n := max(len(replicas), 1)
	sn.holdN.Store(int64(n))
	sn.holdSeq.Add(1)
	sn.mu.Lock()
	if sn.held == nil {
		ch := make(chan struct{})
		sn.held = ch
		sn.heldCh.Store(&ch)
	}
	if sn.renewed != nil { // after holdSeq: a lent connection waiting in holdLent sends WAIT again
		close(sn.renewed)
	}
	sn.renewed = make(chan struct{})
	sn.mu.Unlock()
	for _, c := range sn.e.first {
		c.Mailbox.Pause()
	}
	for _, c := range sn.e.first {
		if c.Down() {
			continue // its writes were acknowledged before it failed, long enough ago
		}
		c.SyncReplicas(n, sentinelHoldWait, func(acked int64, err error) {
			sn.countWait(int64(n), acked, err)
		})
	}
	sn.e.holdWriters()
	sn.e.tx.holdSync(sn)
	sn.e.ded.holdSync(sn)
}

// countWait counts a WAIT sent for a hold that n replicas were to
// acknowledge in Stats().Sentinel: SyncedWaits when they all did
// (reported true: the connection's writes are then on the replicas),
// LateWaits otherwise.
func (sn *sentinel) countWait(n, acked int64, err error) bool {
	if err == nil && acked >= n {
		sn.waitOK.Add(1)
		return true
	}
	sn.waitLate.Add(1)
	return false
}

// waitReplicas sends WAIT on conn, a dedicated connection to the
// primary (a batch writer's lane's, a pooled one of Tx, Watch or
// Dedicated), with the connection actors' policy: the replicas of the
// hold (holdN), sentinelHoldWait, and 1 s more for the reply (bounded by
// ctx too). It counts the WAIT (countWait) and reports whether every
// replica acknowledged the connection's writes, and the error.
func (sn *sentinel) waitReplicas(ctx context.Context, conn drivers.ValkeyConn) (bool, error) {
	n := sn.holdN.Load()
	ctx, cancel := context.WithTimeout(ctx, sentinelHoldWait+time.Second)
	defer cancel()
	cmd := conn.B().Arbitrary("WAIT").Args(strconv.FormatInt(n, 10), strconv.FormatInt(sentinelHoldWait.Milliseconds(), 10)).Build()
	acked, err := conn.Do(ctx, cmd).AsInt64()
	return sn.countWait(n, acked, err), err
}

// switched runs on the sentinel actor when the primary changed: the
// primary's connection actors replace their connections (the new dial
// reaches the new primary), cutting a pipeline still in flight to the old
// one (actors.ConnState.Retire: its failures wrap ErrPrimaryChanged), and
// then send what they hold; the dedicated connections to the old primary
// are closed, so their owners reconnect.
func (sn *sentinel) switched(from string, to *actors.SentinelView) {
	sn.e.sentinelSwitched(sn.e.cfg.SentinelMasterName, from, to.Master) // never blocks
	sn.e.supervisor.Reset(sn.node)
	for _, c := range sn.e.first {
		c.Retire(switchedCause)
	}
	for _, c := range sn.e.first {
		c.Mailbox.Unpause()
	}
	sn.holding.Store(false)
	sn.closeTracked(from)
	sn.e.tx.retire() // the pools forget the old primary's connections
	sn.e.ded.retire()
	sn.endHold()
	sn.setReplicas(to)
}

// release runs on the sentinel actor when a held failover ended without a
// switch: the held commands go on to the primary.
func (sn *sentinel) release() {
	for _, c := range sn.e.first {
		c.Mailbox.Unpause()
	}
	sn.holding.Store(false)
	sn.endHold()
}

// tick runs every 50ms while a failover is held: commands whose context
// ended leave the paused mailboxes (their futures already failed), which
// frees their room.
func (sn *sentinel) tick() {
	for _, c := range sn.e.first {
		if c.Mailbox.Paused() {
			c.Mailbox.Expire()
		}
	}
}

// primary returns the current primary's address.
func (sn *sentinel) primary() string { return sn.state.View().Master }

// setReplicas follows the healthy replicas with connection actors of
// their own when reads go to replicas: new ones are dialled (off the
// sentinel actor), gone ones stopped.
func (sn *sentinel) setReplicas(v *actors.SentinelView) {
	e := sn.e
	if e.cfg.ReadFrom == config.ReadFromPrimary || e.closed.Load() {
		return
	}
	want := map[string]bool{}
	for _, r := range v.Replicas {
		if r != v.Master {
			want[r] = true
		}
	}
	sn.mu.Lock()
	if sn.replicas == nil {
		sn.replicas = map[string]bool{}
	}
	var add, gone []string
	for r := range want {
		if !sn.replicas[r] {
			sn.replicas[r] = true
			add = append(add, r)
		}
	}
	for r := range sn.replicas {
		if !want[r] {
			delete(sn.replicas, r)
			gone = append(gone, r)
		}
	}
	sn.mu.Unlock()
	sn.publishReaders()
	for _, r := range gone {
		sn.dials.Go(func() {
			e.removeNode(r)
			sn.publishReaders()
		})
	}
	for _, r := range add {
		sn.dials.Go(func() {
			ctx, cancel := context.WithTimeout(e.closing, e.cfg.DialTimeout)
			defer cancel()
			pool, err := e.newNode(ctx, r, false)
			if err != nil {
				sn.mu.Lock()
				delete(sn.replicas, r) // dialled again on the next change
				sn.mu.Unlock()
				return
			}
			e.supervisor.Add(pool)
			sn.mu.Lock()
			keep := sn.replicas[r]
			sn.mu.Unlock()
			if !keep {
				e.removeNode(r) // gone meanwhile
			}
			sn.publishReaders()
		})
	}
}

// publishReaders makes the replica pools that are dialled and wanted the
// ones reads go to.
func (sn *sentinel) publishReaders() {
	e := sn.e
	sn.mu.Lock()
	e.mu.Lock()
	var out [][]*actors.ConnState
	for r := range sn.replicas {
		if p := e.pools[r]; len(p) > 0 {
			out = append(out, p)
		}
	}
	e.mu.Unlock()
	sn.mu.Unlock()
	slices.SortFunc(out, func(a, b []*actors.ConnState) int {
		switch {
		case a[0].Addr < b[0].Addr:
			return -1
		case a[0].Addr > b[0].Addr:
			return 1
		}
		return 0
	})
	sn.readers.Store(&out)
}

// reader returns the connection actor of a healthy replica for a read
// routed by route, or nil to read from the primary.
func (sn *sentinel) reader(route string) *actors.ConnState {
	p := sn.readers.Load()
	if p == nil || len(*p) == 0 {
		return nil
	}
	pools := *p
	h := fnv(route)
	for i := range pools {
		pool := pools[(int(h)+i)%len(pools)]
		c := pool[h%uint32(len(pool))]
		if c.Node == nil || !c.Node.Open() {
			return c
		}
	}
	return nil
}

// reading reports whether conn, a replica's connection actor, is one of
// those reads go to now.
func (sn *sentinel) reading(conn *actors.ConnState) bool {
	p := sn.readers.Load()
	if p == nil {
		return false
	}
	for _, pool := range *p {
		if slices.Contains(pool, conn) {
			return true
		}
	}
	return false
}

// scan runs a sentinel-mode Scan (see Engine.Scan) on one node for the
// whole iteration: the replica reads routed by "" go to when it starts
// (ReadFrom replica or prefer-replica), otherwise the primary. The
// primary's connection actors follow failovers, so a change of the
// sentinel view's Gen, before a page is sent or by the time its reply
// came back, ends the iteration: the page may have been served by the new
// primary, whose buckets the cursor does not name.
func (sn *sentinel) scan(ctx context.Context, match string, count int64, yield func(string, error) bool) {
	e := sn.e
	v := sn.state.View()
	conn, replica := e.pick(""), false
	if e.cfg.ReadFrom != config.ReadFromPrimary {
		if rc := sn.reader(""); rc != nil {
			conn, replica = rc, true
		}
	}
	// left returns the error that ends the iteration once its node left
	// (nil while it is there); cause is the page's error, if any.
	left := func(cause error) error {
		var err error
		if replica {
			if !sn.reading(conn) {
				err = fmt.Errorf("%w: replica %s left the replicas the sentinels see healthy mid-iteration; a SCAN cursor is valid only on the node that returned it, so the iteration stops rather than go on elsewhere: start a new one", ErrScanNodeChanged, conn.Addr)
			}
		} else if now := sn.state.View(); now.Gen != v.Gen {
			err = fmt.Errorf("%w: the primary changed from %s to %s mid-iteration; a SCAN cursor is valid only on the node that returned it, so the iteration stops rather than go on elsewhere: start a new one", ErrScanNodeChanged, v.Master, now.Master)
		}
		if err != nil && cause != nil {
			err = fmt.Errorf("%w (the page failed: %w)", err, cause)
		}
		return err
	}
	var cursor uint64
	for {
		if err := left(nil); err != nil {
			yield("", err)
			return
		}
		page, err := post(e, conn, newSlotRequest(e, ctx, e.scanCmd(cursor, match, count), decodeScanPage)).Await(ctx)
		if gone := left(err); gone != nil && (err != nil || !replica) {
			// A replica's page that came back is its own: yield it and
			// stop at the next one. The primary's may be another node's.
			yield("", gone)
			return
		}
		if err != nil {
			yield("", err)
			return
		}
		for _, k := range page.Keys {
			if !yield(k, nil) {
				return
			}
		}
		if page.Cursor == 0 {
			return
		}
		cursor = page.Cursor
	}
}

// fnv is FNV-1a of s: cheap, allocation-free, stable.
func fnv(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// trackedConn is a dedicated connection (subscriber, consumer, Tx, Watch,
// Dedicated, batch writer) in sentinel mode: the engine closes it when the
// primary it reaches is replaced, so that its owner reconnects to the new
// one, as after any connection failure.
type trackedConn struct {
	drivers.ValkeyConn
	sn   *sentinel
	addr string
	once sync.Once
	// A pooled connection's (Tx, Watch, Dedicated; tx_hold.go) state for
	// held failovers, owned by whoever has the connection (its borrower,
	// or the pool under txConns.mu while it is idle): dirty, it was lent
	// since the last WAIT that every replica acknowledged; seq, the call
	// of hold (holdSeq) for which it last sent WAIT.
	dirty bool
	seq   uint64
	// switched is set before a switch closes the connection (closeTracked):
	// its failures from then on wrap ErrPrimaryChanged.
	switched atomic.Bool
}

// track registers conn, dialled to addr.
func (sn *sentinel) track(conn drivers.ValkeyConn, addr string) drivers.ValkeyConn {
	t := &trackedConn{ValkeyConn: conn, sn: sn, addr: addr}
	sn.mu.Lock()
	if sn.tracked == nil {
		sn.tracked = map[*trackedConn]struct{}{}
	}
	sn.tracked[t] = struct{}{}
	sn.mu.Unlock()
	return t
}

// Close implements drivers.ValkeyConn.
func (t *trackedConn) Close() error {
	t.once.Do(func() {
		t.sn.mu.Lock()
		delete(t.sn.tracked, t)
		t.sn.mu.Unlock()
	})
	return t.ValkeyConn.Close()
}

// Do implements drivers.ValkeyConn: a failure after a switch closed the
// connection says so (CloseCause).
func (t *trackedConn) Do(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResult {
	r := t.ValkeyConn.Do(ctx, cmd)
	if t.switched.Load() {
		if err := r.NonValkeyError(); err != nil {
			if c := t.CloseCause(err); c != err {
				return valkey.NewErrorResult(c)
			}
		}
	}
	return r
}

// DoMulti implements drivers.ValkeyConn, as Do.
func (t *trackedConn) DoMulti(ctx context.Context, cmds ...valkey.Completed) []valkey.ValkeyResult {
	rs := t.ValkeyConn.DoMulti(ctx, cmds...)
	if t.switched.Load() {
		for i, r := range rs {
			if err := r.NonValkeyError(); err != nil {
				if c := t.CloseCause(err); c != err {
					rs[i] = valkey.NewErrorResult(c)
				}
			}
		}
	}
	return rs
}

// CloseCause implements actors.CloseCauser: once a switch closed the
// connection, err (not the caller's context's end) wraps
// ErrPrimaryChanged.
func (t *trackedConn) CloseCause(err error) error {
	if !t.switched.Load() {
		return err
	}
	return switchedCause(err)
}

// switchedCause wraps err, the failure of a connection a switch closed,
// in ErrPrimaryChanged (not the caller's context's end).
func switchedCause(err error) error {
	if errors.Is(err, ErrPrimaryChanged) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &primaryChangedError{err}
}

// primaryChangedError is a failure of a connection closed by a switch.
type primaryChangedError struct{ err error }

func (e *primaryChangedError) Error() string {
	return ErrPrimaryChanged.Error() + ": " + e.err.Error()
}

func (e *primaryChangedError) Unwrap() []error { return []error{ErrPrimaryChanged, e.err} }

// ListenValkey implements drivers.ValkeyPubSub when the driver's
// connection does.
func (t *trackedConn) ListenValkey(h valkey.PubSubHooks) <-chan error {
	ps, ok := t.ValkeyConn.(drivers.ValkeyPubSub)
	if !ok {
		ch := make(chan error, 1)
		ch <- actors.ErrNoPubSub
		close(ch)
		return ch
	}
	return ps.ListenValkey(h)
}

var (
	_ drivers.ValkeyPubSub = (*trackedConn)(nil)
	_ actors.CloseCauser   = (*trackedConn)(nil)
)

// closeTracked closes the dedicated connections to addr, all at once, on
// a goroutine of its own (Close waits for it): it runs on the sentinel
// actor, whose switch ends the hold of Tx, Watch, Dedicated and blocking
// commands only after it, and a stalled former primary made each close
// wait a second before the valkeygo driver closed its sockets first (and
// may with another driver: see Engine.closeDrivers): one after another on
// the actor, ten subscribers held those commands ten seconds after the
// switch.
func (sn *sentinel) closeTracked(addr string) {
	sn.mu.Lock()
	var list []drivers.ValkeyConn
	for t := range sn.tracked {
		if t.addr == addr {
			t.switched.Store(true)
			list = append(list, t)
		}
	}
	if len(list) > 0 {
		sn.closes.Add(1)
	}
	sn.mu.Unlock()
	if len(list) == 0 {
		return
	}
	go func() {
		defer sn.closes.Done()
		closeAll(list)
	}()
}

// submitSentinel queues cmd on the primary's connection actor chosen by
// route, or a replica's for a read with ReadFrom replica. The request
// keeps what it takes to send cmd again after a READONLY or MASTERDOWN
// reply (see newSlotRequest).
func submitSentinel[T any](e *Engine, ctx context.Context, route string, cmd valkey.Completed, decode func(valkey.ValkeyResult) (T, error)) *futures.Future[T] {
	if ctx == nil {
		ctx = context.Background()
	}
	conn := e.pick(route)
	if e.cfg.ReadFrom != config.ReadFromPrimary && cmd.IsReadOnly() {
		if rc := e.sn.reader(route); rc != nil {
			conn = rc
		}
	}
	at := fired(e)
	return post(e, conn, firedAt(newSlotRequest(e, ctx, cmd, decode), at))
}

// SentinelStats is what the engine did in sentinel mode (Stats.Sentinel).
type SentinelStats struct {
	// Primary is the primary's address as the engine knows it now.
	Primary string
	// Replicas are the replicas the sentinels see healthy.
	Replicas []string
	// Switches counts the primaries the engine switched to after New.
	Switches uint64
	// Holds counts the failovers seen starting, for which commands to the
	// primary were held until the switch; Aborts those that ended without
	// a switch, HoldTimeouts those held for the longest allowed (the
	// primary's failover-timeout, at most 10 s). Holding reports whether
	// commands are held now.
	Holds, Aborts, HoldTimeouts uint64
	Holding                     bool
	// SyncedWaits counts the WAITs sent for a held failover (by the
	// primary's connection actors, the batch writers' lanes and the
	// pooled connections of Tx, Watch and Dedicated) that every replica
	// acknowledged in time; LateWaits those that some did not (or that
	// failed).
	SyncedWaits, LateWaits uint64
	// Resolutions counts the times the sentinels were asked for the
	// primary; FailedResolutions those no sentinel answered acceptably.
	Resolutions, FailedResolutions uint64
	// Subscribed is the number of sentinels whose events are followed.
	Subscribed int
}

// sentinelStats returns Stats.Sentinel.
func (sn *sentinel) stats() *SentinelStats {
	v := sn.state.View()
	st := sn.state.Stats()
	return &SentinelStats{
		Primary: v.Master, Replicas: slices.Clone(v.Replicas),
		Switches: st.Switches, Holds: st.Holds, Aborts: st.Aborts, HoldTimeouts: st.HoldTimeouts,
		Holding: sn.holding.Load(), SyncedWaits: sn.waitOK.Load(), LateWaits: sn.waitLate.Load(),
		Resolutions: st.Resolutions, FailedResolutions: st.Failed, Subscribed: st.Subscribed,
	}
}
