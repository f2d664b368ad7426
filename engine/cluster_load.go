package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/internal/stagger"
	"github.com/vactor-io/vactor/policies"
)

// Reading the cluster slot map. A node that accepts connections and never
// answers (frozen, or a black hole in the network) must not stall a load:
// the nodes are asked in turn, the next one as soon as the previous fails
// or after loadStagger without an answer, the earlier ones still running,
// and the first map that comes back wins (the others are cancelled). A node
// the engine has a healthy connection actor for is asked through it (one
// more command in its next pipeline, no dial); the others over a
// connection of their own, closed afterwards. The whole load is bounded by
// its context (the topology actor's Timeout, DialTimeout) and by Close.

// loadStagger is how long a load waits for one node before it asks the
// next as well.
var loadStagger = 100 * time.Millisecond

// degradedWatch is how often, while a node the slot map routes to is
// down, the map is reloaded to follow a failover.
var degradedWatch = 250 * time.Millisecond

// mapSource is a node to read the slot map from: through conn, its
// connection actor, when set; else over a new connection to addr.
type mapSource struct {
	addr string
	conn *actors.ConnState
}

// discover reads the slot map from the seeds (see fetchMap).
func (e *Engine) discover(ctx context.Context) (*actors.Topology, error) {
	var srcs []mapSource
	for _, seed := range e.cfg.Addresses() {
		srcs = append(srcs, mapSource{addr: seed})
	}
	t, err := e.fetchMap(ctx, srcs)
	if err != nil {
		if policies.ServerErrorCode(err) == "NOPERM" {
			return nil, fmt.Errorf("vactor: no cluster seed answered: %w (%s)", err, clusterACLHint)
		}
		if strings.Contains(err.Error(), "cluster support disabled") {
			return nil, fmt.Errorf("vactor: no cluster seed answered: %w (%s)", err, notClusterHint)
		}
		return nil, fmt.Errorf("vactor: no cluster seed answered: %w", err)
	}
	return t, nil
}

// notClusterHint is the fix for seeds that answer as standalone servers
// ("ERR This instance has cluster support disabled").
const notClusterHint = "a seed runs without cluster mode: to reach a standalone server, leave ClusterMode off " +
	"(VALKEY_CLUSTER_MODE unset or false); for a cluster, give the addresses of its nodes"

// clusterACLHint says which commands an ACL user needs beyond its data
// commands in cluster mode: the slot map (CLUSTER SHARDS, or CLUSTER
// SLOTS before 7.0), ASKING during slot migrations and READONLY for
// replica reads; a "~* +@read +@write" user has none of them.
const clusterACLHint = "cluster mode needs the ACL user to run CLUSTER SHARDS or CLUSTER SLOTS to read the slot map, " +
	"ASKING during slot migrations and READONLY for replica reads: grant +cluster|shards +cluster|slots +asking +readonly"

// load reads the slot map again (the topology actor's Load): from the
// primaries of the current map whose connections are healthy, starting
// with a different one each time, then from the other nodes of the map
// and the seeds, and from nodes known to be down last.
func (c *cluster) load(ctx context.Context) (*actors.Topology, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.e.closing, cancel)()
	return c.e.fetchMap(ctx, c.mapSources())
}

// mapSources lists the nodes to read the slot map from, best first.
func (c *cluster) mapSources() []mapSource {
	t := c.topo.Load()
	var live, other, down []mapSource
	seen := map[string]bool{}
	add := func(addr string) {
		if addr == "" || seen[addr] {
			return
		}
		seen[addr] = true
		pool := c.pool(addr)
		switch {
		case pool == nil:
			other = append(other, mapSource{addr: addr})
		case healthy(pool):
			live = append(live, mapSource{addr: addr, conn: pool[0]})
		default:
			down = append(down, mapSource{addr: addr})
		}
	}
	for _, s := range t.Shards {
		add(s.Primary)
	}
	if n := len(live); n > 1 {
		// Spread the loads over the healthy primaries.
		k := int(c.loads.Add(1) % uint64(n))
		live = append(live[k:], live[:k]...)
	}
	for _, s := range t.Shards {
		for _, r := range s.Replicas {
			add(r)
		}
	}
	for _, a := range c.e.cfg.Addresses() {
		add(a)
	}
	return slices.Concat(live, other, down)
}

// pool returns the connection actors of the node at addr, or nil.
func (c *cluster) pool(addr string) []*actors.ConnState {
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	return c.e.pools[addr]
}

// healthy reports whether a node's connection actors can take a command
// now: its breaker is closed and none of its connections is down.
func healthy(pool []*actors.ConnState) bool {
	if n := pool[0].Node; n != nil && n.Open() {
		return false
	}
	for _, st := range pool {
		if st.Down() {
			return false
		}
	}
	return true
}

// degraded reports whether a primary of the current slot map that the
// engine has dialled is down, or a shard has no primary (the node asked
// listed its primary as failed: a replica's promotion is due; the
// topology actor's Degraded).
func (c *cluster) degraded() bool {
	t := c.topo.Load()
	if len(t.Orphaned) > 0 {
		return true
	}
	for _, s := range t.Shards {
		if pool := c.pool(s.Primary); pool != nil && !healthy(pool) {
			return true
		}
	}
	return false
}

// fetchMap asks srcs for the slot map, in order, staggered (see the top of
// the file; stagger.First), and returns the first map, or the errors of
// the nodes asked, in the order of srcs, then ctx's when it ended.
func (e *Engine) fetchMap(ctx context.Context, srcs []mapSource) (*actors.Topology, error) {
	if len(srcs) == 0 {
		return nil, errors.New("no node to ask")
	}
	won, out := stagger.First(ctx, len(srcs), loadStagger, func(ctx context.Context, i int) (*actors.Topology, error) {
		return e.fetchFrom(ctx, srcs[i])
	})
	if won >= 0 {
		return out[won].V, nil
	}
	var errs []error
	for _, o := range out {
		if o.Asked {
			errs = append(errs, o.Err)
		}
	}
	if err := ctx.Err(); err != nil { // also for the nodes not asked
		errs = append(errs, err)
	}
	return nil, policies.JoinLine(errs...)
}

// fetchFrom reads the slot map from one node: through its connection
// actor, or over a connection of its own. Either way its commands are the
// engine's own: the command hooks do not see them (the SlotMapLoaded hooks
// see the load).
func (e *Engine) fetchFrom(ctx context.Context, src mapSource) (*actors.Topology, error) {
	if src.conn == nil {
		return e.fetchTopology(ctx, src.addr)
	}
	do := func(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResult {
		r, err := postInternal(e, src.conn, ctx, cmd, rawResult).Await(ctx)
		if err != nil {
			return valkey.NewErrorResult(err)
		}
		return r
	}
	return actors.FetchTopologyWith(ctx, e.b, do, src.addr, e.opts.TLS != nil)
}

// rawResult is the decoder that keeps a reply as it is.
func rawResult(r valkey.ValkeyResult) (valkey.ValkeyResult, error) { return r, nil }

// fetchTopology reads the slot map from addr over a new connection.
func (e *Engine) fetchTopology(ctx context.Context, addr string) (*actors.Topology, error) {
	opts := *e.opts
	opts.Addr = addr
	conn, err := e.open(ctx, opts)
	if err != nil {
		return nil, e.connectError(addr, err)
	}
	defer conn.Close()
	return actors.FetchTopology(ctx, conn, addr, e.opts.TLS != nil)
}
