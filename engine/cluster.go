package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

// ErrCrossSlot matches the CROSSSLOT error of a multi-key command whose
// keys hash to different slots in cluster mode (errors.Is on the
// *ServerError). MGET, MSET, DEL, EXISTS and UNLINK never get it: the
// engine splits them by slot. Not retryable.
var ErrCrossSlot = errors.New("vactor: keys in different cluster slots")

// cluster is the engine's cluster-mode state: the slot map, one slot actor
// per slot with traffic, and the connection to the seed used for slot-map
// refreshes.
type cluster struct {
	e    *Engine
	topo atomic.Pointer[actors.Topology]

	slots   [actors.Slots]atomic.Pointer[actors.SlotState]
	closing atomic.Bool
	stopped chan struct{} // closed once every slot actor stopped (close, wait)

	pruneMu sync.Mutex
	absent  map[string]time.Time // dialled node -> when it left the slot map

	dialMu      sync.Mutex           // guards dials
	dials       map[string]*nodeDial // node dials in progress, by address
	keylessNext atomic.Uint64        // round robin of keyless commands (keyless.go)
	epoch       atomic.Uint64
	topology    actors.TopologyState // the topology actor: reloads the map
	loads       atomic.Uint64        // slot-map loads, to spread them (cluster_load.go)
}

func newCluster(e *Engine, topo *actors.Topology) (*cluster, error) {
	c := &cluster{e: e}
	c.setTopology(topo)
	c.topology = actors.TopologyState{
		Load: func(ctx context.Context) error {
			start := time.Now()
			t, err := c.load(ctx)
			old := c.topo.Load()
			if err == nil {
				c.setTopology(t)
			}
			if e.bus.WantsSlotMaps() {
				ev := hooks.SlotMap{Epoch: c.epoch.Load(), Duration: time.Since(start), Err: err}
				if err == nil {
					ev.Shards, ev.Moved = len(t.Shards), movedSlots(old, t)
				}
				e.bus.Emit(ev)
			}
			return err
		},
		Epoch:    c.Epoch,
		Interval: cmp.Or(refreshInterval, e.cfg.ClusterRefreshInterval),
		MinGap:   minRefreshGap,
		SyncGap:  syncRefreshGap,
		Timeout:  e.cfg.DialTimeout,
		Degraded: c.degraded,
		Watch:    degradedWatch,
	}
	if err := c.topology.Spawn(e.system); err != nil {
		return nil, fmt.Errorf("vactor: spawn topology actor: %w", err)
	}
	return c, nil
}

func (c *cluster) setTopology(t *actors.Topology) {
	c.topo.Store(t)
	c.epoch.Add(1)
	c.prune(t)
	// Dedicated connections to former primaries close (tx_conns.go).
	c.e.tx.retire()
	c.e.ded.retire()
}

// prune stops the connection actors of nodes absent from the slot map
// for nodeGoneAfter or longer (removed from the cluster, or down for good;
// a node that comes back is dialled again on first use). Keyless commands
// follow the slot map (keyless.go), so no node is kept for them.
func (c *cluster) prune(t *actors.Topology) {
	in := map[string]bool{}
	for _, sh := range t.Shards {
		in[sh.Primary] = true
		for _, r := range sh.Replicas {
			in[r] = true
		}
	}
	now := time.Now()
	var gone []string
	c.pruneMu.Lock()
	if c.absent == nil {
		c.absent = map[string]time.Time{}
	}
	c.e.mu.Lock()
	for addr := range c.e.pools {
		switch {
		case in[addr]:
			delete(c.absent, addr)
		case c.absent[addr].IsZero():
			c.absent[addr] = now
		case now.Sub(c.absent[addr]) >= nodeGoneAfter:
			delete(c.absent, addr)
			gone = append(gone, addr)
		}
	}
	c.e.mu.Unlock()
	c.pruneMu.Unlock()
	for _, addr := range gone {
		c.e.removeNode(addr)
	}
}

// nodeGoneAfter is how long a node must be absent from the slot map before
// its connection actors are stopped.
var nodeGoneAfter = 30 * time.Second

// Epoch implements actors.Router.
func (c *cluster) Epoch() uint64 { return c.epoch.Load() }

// Refresh implements actors.Router: have the topology actor reload the map
// now (unless a reload ended since the caller looked) and return the slot's
// owner.
func (c *cluster) Refresh(slot uint16) (string, error) {
	if !c.e.closed.Load() {
		c.topology.Sync(c.epoch.Load())
	}
	return c.Owner(slot)
}

// slot returns the routing state of slot, creating it on first use. Its
// slot actor is spawned only when the slot needs one.
func (c *cluster) slot(slot uint16) *actors.SlotState {
	if st := c.slots[slot].Load(); st != nil {
		return st
	}
	cfg := *c.e.cfg
	st := &actors.SlotState{
		Slot:         slot,
		Router:       c,
		MaxRedirects: cfg.MaxRedirects,
		Backoff:      policies.Backoff{Min: cfg.MinRetryBackoff, Max: cfg.MaxRetryBackoff},
		CloseErr:     ErrClosed,
		IdleTimeout:  slotIdleTimeout,
		NewMailbox: func() *mailbox.Bounded {
			return mailbox.New(mailbox.Options{
				Capacity:    cfg.MailboxCapacity,
				Policy:      mailboxPolicy(cfg.Backpressure),
				MaxBatch:    cfg.MaxBatchSize,
				IdleSpins:   -1,   // thousands of slot actors: never spin
				KeepExpired: true, // the connection actor drops them
				HoldDrained: true, // what the slot actor holds stays bounded
				OnFull:      c.slotOnFull(),
			})
		},
		System: c.e.system,
		Hooks:  c.e.bus,
	}
	if !c.slots[slot].CompareAndSwap(nil, st) {
		return c.slots[slot].Load()
	}
	if c.closing.Load() {
		// close may have passed this slot already.
		st.Close(ErrClosed)
	}
	return st
}

// slotOnFull returns what reports a full slot actor mailbox to the
// MailboxFull hooks (nil without any).
func (c *cluster) slotOnFull() func(bool, int) {
	if !c.e.bus.WantsMailboxFull() {
		return nil
	}
	return func(rejected bool, n int) {
		c.e.bus.Emit(hooks.Backpressure{Rejected: rejected, Commands: n})
	}
}

// movedSlots counts the slots whose primary differs between two maps.
func movedSlots(old, t *actors.Topology) int {
	if old == nil {
		return 0
	}
	n := 0
	for slot := range uint16(actors.Slots) {
		a, okA := old.Owner(slot)
		b, okB := t.Owner(slot)
		if okA != okB || (okA && a.Primary != b.Primary) {
			n++
		}
	}
	return n
}

// refreshInterval, when set (tests only), replaces
// Config.ClusterRefreshInterval, which is at least 100ms.
var refreshInterval time.Duration

// slotIdleTimeout is how long a slot actor without work lives on.
var slotIdleTimeout = 30 * time.Second

// Owner implements actors.Router.
func (c *cluster) Owner(slot uint16) (string, error) {
	if s, ok := c.topo.Load().Owner(slot); ok {
		return s.Primary, nil
	}
	c.refresh()
	return "", fmt.Errorf("%w: slot %d", ErrNoSlotOwner, slot)
}

// ReadConn implements actors.Router: the connection actor of a replica of
// slot's shard for read-only commands, or nil to read from the primary
// (ReadFrom primary, or no replica online).
func (c *cluster) ReadConn(slot uint16) (*actors.ConnState, error) {
	if c.e.cfg.ReadFrom == config.ReadFromPrimary {
		return nil, nil
	}
	addr := c.ReplicaAddr(slot)
	if addr == "" {
		return nil, nil
	}
	return c.conn(addr, slot, true)
}

// ReplicaAddr implements actors.Router: the replica of slot's shard that
// read-only commands go to, or "" to read from the primary.
func (c *cluster) ReplicaAddr(slot uint16) string {
	if c.e.cfg.ReadFrom == config.ReadFromPrimary {
		return ""
	}
	s, ok := c.topo.Load().Owner(slot)
	if !ok || len(s.Replicas) == 0 {
		return ""
	}
	return s.Replicas[int(slot)%len(s.Replicas)]
}

// Cached implements actors.Router.
func (c *cluster) Cached(addr string, slot uint16) *actors.ConnState {
	e := c.e
	e.mu.Lock()
	pool := e.pools[addr]
	e.mu.Unlock()
	if pool == nil {
		return nil
	}
	return pool[int(slot)%len(pool)]
}

// ReplicaReads implements actors.Router.
func (c *cluster) ReplicaReads() bool { return c.e.cfg.ReadFrom != config.ReadFromPrimary }

// Conn implements actors.Router: the connection actor for slot on addr,
// dialling the node on first use.
func (c *cluster) Conn(addr string, slot uint16) (*actors.ConnState, error) {
	return c.conn(addr, slot, false)
}

func (c *cluster) conn(addr string, slot uint16, replica bool) (*actors.ConnState, error) {
	e := c.e
	e.mu.Lock()
	pool := e.pools[addr]
	e.mu.Unlock()
	if pool == nil {
		var err error
		if pool, err = c.dial(addr, replica); err != nil {
			return nil, err
		}
	}
	return pool[int(slot)%len(pool)], nil
}

// nodeDial is a dial of a node in progress; callers for the same node wait
// for it (done) rather than dial again.
type nodeDial struct {
	done chan struct{}
	pool []*actors.ConnState
	err  error
}

// dial dials the node at addr and starts its connection actors, once for
// any number of concurrent callers. Dials of different nodes do not wait
// for each other: a node that never answers holds up only its own callers
// (a slot actor for its slots), for DialTimeout or until Close.
func (c *cluster) dial(addr string, replica bool) ([]*actors.ConnState, error) {
	e := c.e
	c.dialMu.Lock()
	if d := c.dials[addr]; d != nil {
		c.dialMu.Unlock()
		<-d.done
		return d.pool, d.err
	}
	e.mu.Lock()
	pool := e.pools[addr]
	e.mu.Unlock()
	if pool != nil {
		c.dialMu.Unlock()
		return pool, nil
	}
	if e.closed.Load() {
		c.dialMu.Unlock()
		return nil, ErrClosed
	}
	d := &nodeDial{done: make(chan struct{})}
	if c.dials == nil {
		c.dials = map[string]*nodeDial{}
	}
	c.dials[addr] = d
	c.dialMu.Unlock()

	ctx, cancel := context.WithTimeout(e.closing, e.cfg.DialTimeout)
	d.pool, d.err = e.newNode(ctx, addr, replica)
	cancel()
	if d.err == nil {
		e.supervisor.Add(d.pool)
	}
	c.dialMu.Lock()
	delete(c.dials, addr)
	c.dialMu.Unlock()
	close(d.done)
	return d.pool, d.err
}

// Asking implements actors.Router.
func (c *cluster) Asking() actors.Command {
	r := &request[struct{}]{ctx: context.Background(), cmd: c.e.b.Asking().Build(), decode: decodeOK}
	return r
}

// Moved implements actors.Router: a slot moved, so the map is stale.
func (c *cluster) Moved(uint16, string) { c.refresh() }

// Stale implements actors.Router: a node failed; a failover may follow.
func (c *cluster) Stale(uint16) { c.refresh() }

// refresh has the slot map reloaded in the background (the topology actor
// coalesces requests and spaces them by minRefreshGap).
func (c *cluster) refresh() {
	if !c.e.closed.Load() {
		c.topology.Request()
	}
}

// minRefreshGap spaces slot-map refreshes while a node is failing.
const minRefreshGap = 50 * time.Millisecond

// syncRefreshGap spaces the loads commands wait for (actors.TopologyState
// SyncGap): at most ten a second per engine while a shard has no primary.
const syncRefreshGap = 100 * time.Millisecond

// close fails what the slots hold and stops their actors, waiting up to d
// for them to stop; wait waits for the rest.
func (c *cluster) close(d time.Duration) {
	c.closing.Store(true)
	c.topology.Stop()
	var live []*actors.SlotState
	for i := range c.slots {
		if st := c.slots[i].Load(); st != nil {
			st.Close(ErrClosed)
			live = append(live, st)
		}
	}
	done := make(chan struct{})
	c.stopped = done
	go func() {
		for _, st := range live {
			st.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// wait waits, after close, until every slot actor has stopped, and so has
// failed the commands it held (a slot actor fails them as it stops, on its
// own goroutine): Close must not return before, whatever the drain timeout.
// It cannot wait long: a slot actor never blocks, but for the slot's lock
// held by a Submit blocked on a full connection mailbox, which Close has
// closed by then. An actor stuck for longer than stuckActorWait would be
// a bug: Close gives up on it, as on a stuck connection actor.
func (c *cluster) wait() {
	select {
	case <-c.stopped:
	case <-time.After(stuckActorWait):
	}
}

// submitCluster routes a command by its key's slot (a command without
// keys goes through submitKeyless).
func submitCluster[T any](e *Engine, ctx context.Context, route string, cmd valkey.Completed, decode func(valkey.ValkeyResult) (T, error)) *futures.Future[T] {
	return submitSlot(e, ctx, cmd.Slot()&(actors.Slots-1), cmd, decode)
}

// submitKeyless is submit for a command without keys: in cluster mode it
// goes to the primary whose turn it is (keyless.go), elsewhere as submit
// with the route "". The engine's builder is a single node's, whose slot
// for a command without keys (valkey-go's NoSlot) is also the empty
// key's: submit cannot tell them apart, the caller can.
func submitKeyless[T any](e *Engine, ctx context.Context, cmd valkey.Completed, decode func(valkey.ValkeyResult) (T, error)) *futures.Future[T] {
	if e.cl != nil {
		return submitSlot(e, ctx, e.cl.keylessSlot(), cmd, decode)
	}
	return submit(e, ctx, "", cmd, decode)
}

// submitSlot routes cmd for slot: straight to the owner's connection
// actor, or through the slot actor while the slot needs it. A redirected
// command is sent again, but valkey-go recycles a command once the server
// has replied: the request keeps a short command's parts to build it again
// (see newSlotRequest), a longer one is pinned.
func submitSlot[T any](e *Engine, ctx context.Context, slot uint16, cmd valkey.Completed, decode func(valkey.ValkeyResult) (T, error)) *futures.Future[T] {
	if ctx == nil {
		ctx = context.Background()
	}
	at := fired(e)
	return postSlot(e, slot, firedAt(newSlotRequest(e, ctx, cmd, decode), at))
}

// postSlot routes r for slot (submitSlot).
func postSlot[T any](e *Engine, slot uint16, r *request[T]) *futures.Future[T] {
	f := r.promise.Future()
	if e.closed.Load() {
		r.promise.Reject(ErrClosed)
		return f
	}
	if r.observation() != nil {
		observe(e, r)
	}
	r.watchLazily()
	e.cl.slot(slot).Submit(r)
	return f
}
