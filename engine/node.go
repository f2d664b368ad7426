package engine

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

// newNode dials PoolSize connections to addr and returns their connection
// actor states, sharing one Node (breaker) and the engine's retry policy.
// The actors are not spawned here.
//
// A cluster replica serves reads only on READONLY connections. With
// ReadFrom other than primary every node's connections send READONLY,
// the primaries' too (it changes nothing for a primary's own slots): a
// primary's connections serve replica reads once a failover made it a
// replica (before, only the nodes that were replicas when first dialled
// had them, and reads routed to a former primary met MOVED until they
// ran out of redirects, for good).
func (e *Engine) newNode(ctx context.Context, addr string, replica bool) ([]*actors.ConnState, error) {
	opts := *e.opts
	opts.Addr = addr
	readonly := replica || e.cfg.ClusterMode && e.cfg.ReadFrom != config.ReadFromPrimary
	connect := func(ctx context.Context) (drivers.ValkeyConn, error) {
		conn, err := e.open(ctx, opts)
		if err != nil || !readonly {
			return conn, err
		}
		if err := conn.Do(ctx, conn.B().Readonly().Build()).Error(); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("READONLY on %s: %w", addr, err)
		}
		return conn, nil
	}
	return e.newNodeWith(ctx, addr, nil, connect, nil)
}

// The retry budget of each node: the resends of written (repeatable)
// commands past their first are charged to it; it earns 10% of the
// commands of the node's round trips that came back, with a burst of 100
// (see policies.Budget).
const (
	retryBudgetRatio = 0.1
	retryBudgetBurst = 100
)

// newNodeWith is newNode with the node's dial function (connect): addr
// names the node (the key of e.pools, the connection actors' Addr). tune,
// when not nil, adjusts each connection actor's state before it is
// registered.
func (e *Engine) newNodeWith(ctx context.Context, addr string, where func() string, connect func(context.Context) (drivers.ValkeyConn, error), tune func(*actors.ConnState)) ([]*actors.ConnState, error) {
	cfg := *e.cfg
	node := &actors.Node{
		Addr:        addr,
		Where:       where,
		DialTimeout: cfg.DialTimeout,
	}
	dial := func(ctx context.Context, initial bool) (drivers.ValkeyConn, error) {
		return e.hookedDial(ctx, node.Current(), false, initial, connect)
	}
	node.Dial = func(ctx context.Context) (drivers.ValkeyConn, error) { return dial(ctx, false) }
	var conns []*actors.ConnState
	var report func(from, to circuitbreaker.State)
	if e.bus != nil {
		report = func(from, to circuitbreaker.State) {
			e.bus.Emit(hooks.BreakerChange{Node: node.Current(), From: from.String(), To: to.String()})
		}
	}
	node.Breaker = policies.NewBreaker(policies.BreakerOptions{
		Threshold:   uint(cfg.CircuitBreakerThreshold),
		OpenTimeout: cfg.CircuitBreakerOpenTimeout,
		FailureRate: cfg.CircuitBreakerFailureRate,
		Period:      cfg.CircuitBreakerPeriod,
		OnStateChanged: func(_, to circuitbreaker.State) {
			// The breaker's state of now, not to: this listener may run
			// after that of a later transition (Node.SyncOpen). The hook
			// event reports the change recorded, so that the events form
			// a chain in order whatever order the listeners run in.
			now := node.SyncOpenReport(report)
			if to == circuitbreaker.OpenState && now != circuitbreaker.ClosedState {
				// Nothing queued for the node will be sent soon: fail it
				// now (unless a Reset has closed the breaker since: what
				// is queued is sent then).
				for _, c := range conns {
					c.FailIfOpen()
				}
			}
		},
	})
	// A retry budget per node: an outage of one node does not spend the
	// others' (qa-AJ: with one engine-wide budget, the first node of a
	// cluster restart took all 100 tokens).
	retry := *e.retry
	retry.Budget = policies.NewBudget(retryBudgetRatio, retryBudgetBurst)
	policy := mailbox.Block
	if cfg.Backpressure == config.BackpressureReject {
		policy = mailbox.Reject
	}
	var onFull func(bool, int)
	if e.bus.WantsMailboxFull() {
		onFull = func(rejected bool, n int) {
			e.bus.Emit(hooks.Backpressure{Node: addr, Rejected: rejected, Commands: n})
		}
	}
	// The pool's connections are dialled at once: one after another, a
	// pool of 4 whose credentials provider took 250 ms each did not fit
	// in one DialTimeout (review-29).
	dialled := make([]drivers.ValkeyConn, cfg.PoolSize)
	errs := make([]error, cfg.PoolSize)
	var wg sync.WaitGroup
	for i := range dialled {
		wg.Go(func() {
			began := time.Now()
			if dialled[i], errs[i] = dial(ctx, true); errs[i] == nil {
				// A connect (Node.connect) is the dial and a PING: one
				// round trip more than the dial, whose handshake ends
				// with one. Twice the dial bounds it; the dial alone
				// gave a node whose delay is in its replies a grace
				// about its re-dial's length (review-40 3).
				node.NoteConnect(2 * time.Since(began))
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			continue
		}
		for _, conn := range dialled {
			if conn != nil {
				_ = conn.Close()
			}
		}
		return nil, e.connectError(addr, err)
	}
	for _, conn := range dialled {
		conns = append(conns, &actors.ConnState{
			Addr:     addr,
			Driver:   conn,
			CloseErr: ErrClosed,
			Node:     node,
			Policy:   &retry,
			Hooks:    e.bus,
			Mailbox: mailbox.New(mailboxOptions(mailbox.Options{
				Capacity: cfg.MailboxCapacity,
				Policy:   policy,
				MaxBatch: cfg.MaxBatchSize,
				OnFull:   onFull,
			})),
		})
		if tune != nil {
			tune(conns[len(conns)-1])
		}
	}
	e.mu.Lock()
	if e.closed.Load() {
		// Close has begun: it may have closed the drivers it knows of
		// already, so these would never be closed.
		e.mu.Unlock()
		for _, c := range conns {
			c.CloseDriver()
		}
		return nil, ErrClosed
	}
	e.conns = append(e.conns, conns...)
	e.nodes = append(e.nodes, node)
	if e.pools == nil {
		e.pools = map[string][]*actors.ConnState{}
	}
	e.pools[addr] = conns
	e.mu.Unlock()
	return conns, nil
}

// removeNode stops the connection actors of the node at addr and forgets
// it; commands still queued for it fail with ErrNodeRemoved.
func (e *Engine) removeNode(addr string) {
	e.mu.Lock()
	pool := e.pools[addr]
	delete(e.pools, addr)
	if pool == nil {
		e.mu.Unlock()
		return
	}
	e.conns = slices.DeleteFunc(e.conns, func(c *actors.ConnState) bool { return c.Addr == addr })
	e.nodes = slices.DeleteFunc(e.nodes, func(n *actors.Node) bool { return n.Addr == addr })
	e.mu.Unlock()
	e.supervisor.Remove(pool, ErrNodeRemoved)
}

// nodeOpen reports whether the circuit breaker of the node at addr is open
// (false for a node the engine has not dialled).
func (e *Engine) nodeOpen(addr string) bool { return e.nodeOpenError(addr) != nil }

// nodeOpenError is the error of a command to addr when the node's circuit
// breaker is open (Node.OpenError), nil otherwise.
func (e *Engine) nodeOpenError(addr string) error {
	if sn := e.sn; sn != nil && sn.node != nil && addr == sn.primary() {
		// Sentinel mode: the primary's breaker is its connection actors'
		// node, kept under the logical name "sentinel:<name>", not under
		// its address (qa-AU AU1: a Tx or Dedicated dialled a dead
		// primary while the breaker was open).
		if sn.node.Open() {
			return sn.node.OpenError()
		}
		return nil
	}
	e.mu.Lock()
	pool := e.pools[addr]
	e.mu.Unlock()
	if len(pool) > 0 && pool[0].Node != nil && pool[0].Node.Open() {
		return pool[0].Node.OpenError()
	}
	return nil
}

// tuneMailbox, when set (tests only), adjusts the options of the
// connection actors' mailboxes.
var tuneMailbox func(*mailbox.Options)

func mailboxOptions(o mailbox.Options) mailbox.Options {
	if tuneMailbox != nil {
		tuneMailbox(&o)
	}
	return o
}
