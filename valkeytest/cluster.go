package valkeytest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// A cluster is formed with plain commands (CLUSTER MEET, ADDSLOTSRANGE,
// REPLICATE), spoken in RESP by hand like the readiness probe: this is
// test tooling, not a client.

const (
	clusterSlots       = 16384
	clusterWaitTimeout = 15 * time.Second      // forming, failover, restart, slot moves
	clusterPoll        = 15 * time.Millisecond // between health polls
	clusterObserveIO   = time.Second           // one health observation of a node
	clusterMigrateIO   = 15 * time.Second      // one MIGRATE reply (5s server-side timeout)
	clusterKeysBatch   = 1000                  // keys per GETKEYSINSLOT and MIGRATE
	clusterLogTail     = 15                    // log lines per node in StartCluster errors
)

// Roles reported by [Server.Role].
const (
	RolePrimary = "primary" // the server says "master"
	RoleReplica = "replica" // the server says "slave"
)

// ClusterOptions configures a cluster started by [StartCluster] or
// [StartClusterT]. The zero value is 3 primaries with 1 replica each and
// a node timeout of 1 second.
type ClusterOptions struct {
	// Primaries is the number of primaries; the 16384 hash slots are
	// divided evenly among them in order. Default 3.
	Primaries int

	// ReplicasPerPrimary is the number of replicas of each primary.
	// Default 1; a negative value means none.
	ReplicasPerPrimary int

	// NodeTimeout is cluster-node-timeout: how long a node may not answer
	// before the others consider it failing, which bounds how soon a
	// replica takes over from a crashed primary. Rounded down to whole
	// milliseconds. Default 1 second.
	NodeTimeout time.Duration

	// AppendOnly sets Options.AppendOnly on every node.
	AppendOnly bool

	// Username and Password set Options.Username and Options.Password on
	// every node; replicas use them with their primary (masteruser,
	// masterauth) and MIGRATE with the target (AUTH or AUTH2). Default:
	// none.
	Username, Password string

	// TLS makes every node accept TLS only (Options.TLS), and the cluster
	// bus and replication use TLS (tls-cluster yes, tls-replication yes):
	// the ports the nodes announce (CLUSTER SLOTS, MOVED) are their TLS
	// ports. Default: nil (plain TCP).
	TLS *TLSOptions
}

func (o ClusterOptions) withDefaults() (ClusterOptions, error) {
	switch {
	case o.Primaries == 0:
		o.Primaries = 3
	case o.Primaries < 0 || o.Primaries > clusterSlots:
		return o, fmt.Errorf("valkeytest: ClusterOptions.Primaries = %d, want 1 to %d", o.Primaries, clusterSlots)
	}
	switch {
	case o.ReplicasPerPrimary == 0:
		o.ReplicasPerPrimary = 1
	case o.ReplicasPerPrimary < 0:
		o.ReplicasPerPrimary = 0
	}
	switch {
	case o.NodeTimeout == 0:
		o.NodeTimeout = time.Second
	case o.NodeTimeout < time.Millisecond:
		return o, fmt.Errorf("valkeytest: ClusterOptions.NodeTimeout = %v, want at least 1ms", o.NodeTimeout)
	}
	if o.Username != "" && o.Password == "" {
		return o, errors.New("valkeytest: ClusterOptions.Username needs Password")
	}
	return o, nil
}

// Cluster is a running cluster started by [StartCluster] or
// [StartClusterT]: every node is a [Server] on 127.0.0.1 in its own
// directory, with cluster mode on. Its methods are safe for concurrent use
// (but two slot moves or failovers that touch the same slots or nodes at
// once are the caller's problem). After [Cluster.Stop] they return
// [ErrStopped].
type Cluster struct {
	opts  ClusterOptions
	nodes []*ClusterNode // in start order; fixed
	byID  map[string]*ClusterNode

	mu        sync.Mutex
	primaries []*ClusterNode // roles last seen by a health wait
	replicas  []*ClusterNode
	killed    map[*ClusterNode]killRecord // by KillPrimary, for WaitFailover
	stopped   bool
}

// killRecord is what a primary served when KillPrimary killed it.
type killRecord struct {
	slots    []int
	replicas map[string]bool // node IDs
}

// ClusterNode is one node of a [Cluster]. Its ID (the cluster node ID) and
// its address stay the same across Kill and Restart: the node keeps both
// in its nodes.conf.
type ClusterNode struct {
	*Server
	ID string

	c       *Cluster
	busPort int
}

// BusPort returns the node's cluster bus port (cluster-port).
func (n *ClusterNode) BusPort() int { return n.busPort }

// StartCluster starts a cluster and waits until it is ready: every node
// knows every other, the slots are divided evenly among the primaries,
// each replica follows its primary with the link up, and every node
// reports cluster_state:ok and sees all 16384 slots served by running
// primaries. It takes about 2-3 seconds (a new primary waits 2 seconds
// before it accepts writes), and gives up after 15 seconds. Primaries are
// the first nodes started, then the replicas of primary 0, 1, ... in turn.
// The caller owns the cluster and stops it with [Cluster.Stop]. On error
// nothing keeps running, and the error quotes the end of every node's log.
//
// Every node is started by [StartServer] with cluster mode on, its own
// temporary directory (removed by Stop), a free port, a free cluster bus
// port given by cluster-port (so no port+10000 is assumed), diskless
// replication without delay, cluster-require-full-coverage no and
// cluster-allow-reads-when-down yes. It needs Redis 7.0 or Valkey.
func StartCluster(opts ClusterOptions) (*Cluster, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	n := opts.Primaries * (1 + opts.ReplicasPerPrimary)
	c := &Cluster{
		opts:   opts,
		nodes:  make([]*ClusterNode, n),
		byID:   make(map[string]*ClusterNode, n),
		killed: make(map[*ClusterNode]killRecord),
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { c.nodes[i], errs[i] = c.startNode(i) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, node := range c.nodes {
			if node != nil {
				_ = node.Stop()
			}
		}
		return nil, err
	}
	if err := c.form(); err != nil {
		err = fmt.Errorf("%w%s", err, c.logTails(clusterLogTail))
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

// StartClusterT starts a cluster for the test with [StartCluster] and the
// given options (at most one; none means the zero ClusterOptions), and
// fails the test with tb.Fatal when it cannot. When the test ends, the end
// of every node's log is printed with tb.Logf if the test failed, and the
// cluster is stopped.
func StartClusterT(tb testing.TB, opts ...ClusterOptions) *Cluster {
	tb.Helper()
	var o ClusterOptions
	switch len(opts) {
	case 0:
	case 1:
		o = opts[0]
	default:
		tb.Fatalf("valkeytest.StartClusterT: at most one ClusterOptions, got %d", len(opts))
	}
	c, err := StartCluster(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			for _, n := range c.nodes {
				tb.Logf("%s (id %s): end of %s:\n%s", n.label(), n.ID, n.LogPath(), tail(n.Log(), logTailLines))
			}
		}
		if err := c.Stop(); err != nil {
			tb.Errorf("valkeytest: cluster stop: %v", err)
		}
	})
	return c
}

func (c *Cluster) startNode(i int) (*ClusterNode, error) {
	var err error
	for range startAttempts {
		var bus int
		if bus, err = freePort(); err != nil {
			return nil, err
		}
		args := []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.FormatInt(c.opts.NodeTimeout.Milliseconds(), 10),
			"--cluster-port", strconv.Itoa(bus),
			"--repl-diskless-sync", "yes",
			"--repl-diskless-sync-delay", "0",
			"--cluster-require-full-coverage", "no",
			"--cluster-allow-reads-when-down", "yes",
		}
		if c.opts.Password != "" {
			args = append(args, "--masterauth", c.opts.Password)
		}
		if c.opts.Username != "" {
			args = append(args, "--masteruser", c.opts.Username)
		}
		if c.opts.TLS != nil {
			args = append(args, "--tls-cluster", "yes")
		}
		var srv *Server
		srv, err = StartServer(Options{
			Name:       "cluster node " + strconv.Itoa(i),
			AppendOnly: c.opts.AppendOnly,
			Username:   c.opts.Username,
			Password:   c.opts.Password,
			TLS:        c.opts.TLS,
			Args:       args,
		})
		if err == nil {
			return &ClusterNode{Server: srv, c: c, busPort: bus}, nil
		}
		if !errors.Is(err, errBind) {
			break
		}
		// Most likely the bus port was taken: try another.
	}
	return nil, err
}

// form joins the started nodes into a cluster and waits until it is ready.
func (c *Cluster) form() error {
	deadline := time.Now().Add(clusterWaitTimeout)
	nPrim := c.opts.Primaries

	// IDs, distinct config epochs (so that primaries need not resolve
	// epoch collisions), and the slots of each primary.
	for i, n := range c.nodes {
		cmds := [][]string{
			{"CLUSTER", "MYID"},
			{"CLUSTER", "SET-CONFIG-EPOCH", strconv.Itoa(i + 1)},
		}
		if i < nPrim {
			lo, hi := i*clusterSlots/nPrim, (i+1)*clusterSlots/nPrim-1
			cmds = append(cmds, []string{"CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi)})
		}
		replies, err := n.pipeline(cmds, toolIOTimeout)
		if err != nil {
			return err
		}
		id, _ := replies[0].(string)
		if id == "" {
			return fmt.Errorf("%s: CLUSTER MYID = %v", n.label(), replies[0])
		}
		for j, r := range replies[1:] {
			if err := replyErr(r); err != nil {
				return fmt.Errorf("%s: %s: %w", n.label(), strings.Join(cmds[j+1], " "), err)
			}
		}
		n.ID = id
		c.byID[id] = n
	}

	// Every pair meets directly: no waiting for gossip to spread.
	for i, n := range c.nodes {
		var cmds [][]string
		for _, m := range c.nodes[i+1:] {
			cmds = append(cmds, []string{"CLUSTER", "MEET", Host, strconv.Itoa(m.Port()), strconv.Itoa(m.busPort)})
		}
		if len(cmds) == 0 {
			continue
		}
		if err := n.pipelineOK(cmds, toolIOTimeout); err != nil {
			return err
		}
	}
	if err := c.poll(deadline, "nodes did not all meet", func() error {
		for _, n := range c.nodes {
			v, err := n.observe()
			if err != nil {
				return err
			}
			if err := v.knowsAll(c); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}

	// Replicas: each one knows its primary now.
	want := make(map[*ClusterNode]*ClusterNode) // replica -> primary
	for i, n := range c.nodes[nPrim:] {
		p := c.nodes[i%nPrim]
		want[n] = p
		if _, err := n.do(toolIOTimeout, "CLUSTER", "REPLICATE", p.ID); err != nil {
			return fmt.Errorf("%s: CLUSTER REPLICATE %s: %w", n.label(), p.ID, err)
		}
	}
	return c.waitHealthy(deadline, nil, func(s *clusterSnapshot) error {
		for r, p := range want {
			v := s.view(r)
			if self := v.entries[r.ID]; self.master != p.ID {
				return fmt.Errorf("%s follows %q, want %s", r.label(), self.master, p.ID)
			}
		}
		return nil
	})
}

// poll calls check every clusterPoll until it returns nil or the deadline
// passes.
func (c *Cluster) poll(deadline time.Time, what string, check func() error) error {
	start := time.Now()
	for {
		if c.isStopped() {
			return ErrStopped
		}
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("valkeytest: cluster: %s within %v: %w", what, time.Since(start).Round(time.Millisecond), err)
		}
		time.Sleep(clusterPoll)
	}
}

func (c *Cluster) isStopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

func (c *Cluster) logTails(lines int) string {
	var b strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "\n--- %s (id %s), end of %s:\n%s", n.label(), n.ID, n.LogPath(), tail(n.Log(), lines))
	}
	return b.String()
}

// Stop stops every node (in parallel, each like [Server.Stop]) and
// removes their directories. It returns once every process is reaped.
// Calling Stop again does nothing and returns nil.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	c.mu.Unlock()
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() { errs[i] = n.Stop() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Nodes returns every node, in start order (primaries first, as started).
func (c *Cluster) Nodes() []*ClusterNode { return slices.Clone(c.nodes) }

// ClientTLS returns a new client TLS configuration for the cluster
// (ClusterOptions.TLS.Certs.TLSConfig()), or nil without TLS.
func (c *Cluster) ClientTLS() *tls.Config {
	if c.opts.TLS == nil {
		return nil
	}
	return c.opts.TLS.Certs.TLSConfig()
}

// Addrs returns the addresses of every node, in the order of Nodes.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// Primaries returns the nodes serving as primaries when the cluster was
// last seen healthy: by StartCluster, Failover, WaitFailover, RestartNode
// or WaitHealthy. A primary killed and not yet replaced is still one. For
// the live role ask [Server.Role].
func (c *Cluster) Primaries() []*ClusterNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.primaries)
}

// Replicas returns the other nodes, as for Primaries: replicas, and
// primaries killed and replaced (which rejoin as replicas when restarted).
func (c *Cluster) Replicas() []*ClusterNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.replicas)
}

// anyNode runs one command on the first running node that answers it.
func (c *Cluster) anyNode(args ...string) (any, error) {
	if c.isStopped() {
		return nil, ErrStopped
	}
	var errs []error
	for _, n := range c.nodes {
		if n.Pid() == 0 {
			continue
		}
		r, err := n.do(toolIOTimeout, args...)
		if err == nil {
			return r, nil
		}
		var re replyError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("%s: %s: %w", n.label(), strings.Join(args, " "), err)
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("valkeytest: cluster: no running node answered %s: %w", strings.Join(args, " "), errors.Join(errs...))
}

// KeySlot returns the hash slot of key, asking a running node (CLUSTER
// KEYSLOT).
func (c *Cluster) KeySlot(key string) (int, error) {
	r, err := c.anyNode("CLUSTER", "KEYSLOT", key)
	if err != nil {
		return 0, err
	}
	slot, ok := r.(int64)
	if !ok {
		return 0, fmt.Errorf("valkeytest: CLUSTER KEYSLOT = %v: %w", r, errProtocol)
	}
	return int(slot), nil
}

// slotRanges returns the slot ranges and the ID of the primary serving
// each, from CLUSTER SLOTS on a running node.
func (c *Cluster) slotRanges() ([]slotRange, error) {
	r, err := c.anyNode("CLUSTER", "SLOTS")
	if err != nil {
		return nil, err
	}
	arr, ok := r.([]any)
	if !ok {
		return nil, fmt.Errorf("valkeytest: CLUSTER SLOTS = %v: %w", r, errProtocol)
	}
	ranges := make([]slotRange, 0, len(arr))
	for _, e := range arr {
		f, _ := e.([]any)
		if len(f) < 3 {
			return nil, fmt.Errorf("valkeytest: CLUSTER SLOTS entry %v: %w", e, errProtocol)
		}
		lo, ok1 := f[0].(int64)
		hi, ok2 := f[1].(int64)
		primary, _ := f[2].([]any)
		if !ok1 || !ok2 || len(primary) < 3 {
			return nil, fmt.Errorf("valkeytest: CLUSTER SLOTS entry %v: %w", e, errProtocol)
		}
		id, _ := primary[2].(string)
		ranges = append(ranges, slotRange{int(lo), int(hi), id})
	}
	slices.SortFunc(ranges, func(a, b slotRange) int { return a.lo - b.lo })
	return ranges, nil
}

type slotRange struct {
	lo, hi int
	id     string
}

// NodeForSlot returns the primary serving slot, as a running node sees
// it (CLUSTER SLOTS).
func (c *Cluster) NodeForSlot(slot int) (*ClusterNode, error) {
	if slot < 0 || slot >= clusterSlots {
		return nil, fmt.Errorf("valkeytest: slot %d out of range", slot)
	}
	ranges, err := c.slotRanges()
	if err != nil {
		return nil, err
	}
	for _, r := range ranges {
		if r.lo <= slot && slot <= r.hi {
			if n := c.byID[r.id]; n != nil {
				return n, nil
			}
			return nil, fmt.Errorf("valkeytest: slot %d is served by unknown node %q", slot, r.id)
		}
	}
	return nil, fmt.Errorf("valkeytest: slot %d is not served by any node", slot)
}

// SlotsOf returns the slot ranges, [first, last] inclusive and in order,
// that node serves as a primary, as a running node sees it (CLUSTER
// SLOTS). A replica serves none.
func (c *Cluster) SlotsOf(node *ClusterNode) ([][2]int, error) {
	ranges, err := c.slotRanges()
	if err != nil {
		return nil, err
	}
	var out [][2]int
	for _, r := range ranges {
		if r.id != node.ID {
			continue
		}
		if k := len(out); k > 0 && out[k-1][1]+1 == r.lo {
			out[k-1][1] = r.hi
		} else {
			out = append(out, [2]int{r.lo, r.hi})
		}
	}
	return out, nil
}

// WaitHealthy waits up to timeout until the cluster is healthy on every
// running node: each one reports cluster_state:ok, knows every node of
// the cluster (none in handshake), sees no running node as failing, agrees
// with the others on the owner of every one of the 16384 slots, each a
// running primary, and on every running node's role; and every running
// replica has its link to its primary up. It also updates Primaries and
// Replicas.
func (c *Cluster) WaitHealthy(timeout time.Duration) error {
	return c.waitHealthy(time.Now().Add(timeout), nil, nil)
}

// MigrateSlots moves slots from one primary to another, keys included,
// the way a resharding tool does: for each slot CLUSTER SETSLOT IMPORTING
// on to, MIGRATING on from, GETKEYSINSLOT and MIGRATE (REPLACE, 1000 keys
// at a time) until from holds no key in it, then SETSLOT NODE on to, on
// from and on every other running primary. Each step is pipelined over
// all slots on one connection per node. It then waits (up to 15 seconds)
// until every running node sees to as the owner of the slots. from must
// serve every one of slots; duplicates are ignored.
func (c *Cluster) MigrateSlots(from, to *ClusterNode, slots []int) error {
	if c.isStopped() {
		return ErrStopped
	}
	if err := c.member(from); err != nil {
		return err
	}
	if err := c.member(to); err != nil {
		return err
	}
	if from == to {
		return fmt.Errorf("valkeytest: MigrateSlots: from and to are the same node %s", from.Addr())
	}
	slots = slices.Clone(slots)
	slices.Sort(slots)
	slots = slices.Compact(slots)
	if len(slots) == 0 {
		return nil
	}
	if slots[0] < 0 || slots[len(slots)-1] >= clusterSlots {
		return fmt.Errorf("valkeytest: MigrateSlots: slots must be 0 to %d", clusterSlots-1)
	}

	fv, err := from.observe()
	if err != nil {
		return err
	}
	owned := make(map[int]bool)
	for _, r := range fv.entries[from.ID].slots {
		for s := r[0]; s <= r[1]; s++ {
			owned[s] = true
		}
	}
	for _, s := range slots {
		if !owned[s] {
			return fmt.Errorf("valkeytest: MigrateSlots: %s does not serve slot %d", from.label(), s)
		}
	}
	if e, ok := fv.entries[to.ID]; !ok || !e.has("master") {
		return fmt.Errorf("valkeytest: MigrateSlots: %s is not a primary in the view of %s", to.label(), from.label())
	}

	src, err := from.dial()
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := to.dial()
	if err != nil {
		return err
	}
	defer dst.Close()

	setslot := func(args ...string) [][]string {
		cmds := make([][]string, len(slots))
		for i, s := range slots {
			cmds[i] = append([]string{"CLUSTER", "SETSLOT", strconv.Itoa(s)}, args...)
		}
		return cmds
	}
	if err := dst.pipelineOK(setslot("IMPORTING", from.ID), toolIOTimeout); err != nil {
		return err
	}
	if err := src.pipelineOK(setslot("MIGRATING", to.ID), toolIOTimeout); err != nil {
		c.unsetMigrating(src, dst, slots)
		return err
	}
	if err := c.moveKeys(src, to, slots); err != nil {
		c.unsetMigrating(src, dst, slots)
		return err
	}

	// The new owner first, then the old one, then everybody else.
	node := setslot("NODE", to.ID)
	if err := dst.pipelineOK(node, toolIOTimeout); err != nil {
		return err
	}
	if err := src.pipelineOK(node, toolIOTimeout); err != nil {
		return err
	}
	for _, n := range c.nodes {
		e, ok := fv.entries[n.ID]
		if n == from || n == to || n.Pid() == 0 || !ok || !e.has("master") || e.has("fail") {
			continue
		}
		if err := n.pipelineOK(node, toolIOTimeout); err != nil {
			return err
		}
	}

	return c.poll(time.Now().Add(clusterWaitTimeout), "moved slots not seen everywhere", func() error {
		for _, n := range c.nodes {
			if n.Pid() == 0 {
				continue
			}
			v, err := n.observe()
			if err != nil {
				return err
			}
			owners := v.owners()
			for _, s := range slots {
				if owners[s] != to.ID {
					return fmt.Errorf("%s sees slot %d served by %q, want %s", n.label(), s, owners[s], to.ID)
				}
			}
		}
		return nil
	})
}

// moveKeys migrates every key of slots from src to the node to, batch by
// batch, until src has none left in them.
func (c *Cluster) moveKeys(src *toolConn, to *ClusterNode, slots []int) error {
	pending := slots
	for len(pending) > 0 {
		get := make([][]string, len(pending))
		for i, s := range pending {
			get[i] = []string{"CLUSTER", "GETKEYSINSLOT", strconv.Itoa(s), strconv.Itoa(clusterKeysBatch)}
		}
		replies, err := src.pipeline(get, toolIOTimeout)
		if err != nil {
			return err
		}
		var migrate [][]string
		var next []int
		for i, r := range replies {
			if err := replyErr(r); err != nil {
				return fmt.Errorf("%s: %s: %w", src.label, strings.Join(get[i], " "), err)
			}
			keys, _ := r.([]any)
			if len(keys) == 0 {
				continue // nothing (left) in this slot
			}
			cmd := []string{"MIGRATE", Host, strconv.Itoa(to.Port()), "", "0", "5000", "REPLACE"}
			switch {
			case c.opts.Username != "":
				cmd = append(cmd, "AUTH2", c.opts.Username, to.Password())
			case c.opts.Password != "":
				cmd = append(cmd, "AUTH", to.Password())
			}
			cmd = append(cmd, "KEYS")
			for _, k := range keys {
				key, _ := k.(string)
				cmd = append(cmd, key)
			}
			migrate = append(migrate, cmd)
			next = append(next, pending[i])
		}
		if len(migrate) > 0 {
			replies, err := src.pipeline(migrate, clusterMigrateIO)
			if err != nil {
				return err
			}
			for i, r := range replies {
				if err := replyErr(r); err != nil {
					nkeys := len(migrate[i]) - slices.Index(migrate[i], "KEYS") - 1
					return fmt.Errorf("%s: MIGRATE of %d keys of slot %d: %w", src.label, nkeys, next[i], err)
				}
			}
		}
		pending = next // look again: more than a batch, or written meanwhile
	}
	return nil
}

// unsetMigrating undoes IMPORTING and MIGRATING after a failed move, as
// far as it can.
func (c *Cluster) unsetMigrating(src, dst *toolConn, slots []int) {
	cmds := make([][]string, len(slots))
	for i, s := range slots {
		cmds[i] = []string{"CLUSTER", "SETSLOT", strconv.Itoa(s), "STABLE"}
	}
	_, _ = src.pipeline(cmds, toolIOTimeout)
	_, _ = dst.pipeline(cmds, toolIOTimeout)
}

func (c *Cluster) member(n *ClusterNode) error {
	if n == nil || n.c != c {
		return errors.New("valkeytest: node is not part of this cluster")
	}
	return nil
}

// Failover makes replica take over from its primary with a manual
// failover (CLUSTER FAILOVER, which needs the primary to be running and
// answering), then waits up to 15 seconds until replica reports itself
// primary, its former primary serves no slot, and the cluster is healthy
// as for WaitHealthy.
func (c *Cluster) Failover(replica *ClusterNode) error {
	if c.isStopped() {
		return ErrStopped
	}
	if err := c.member(replica); err != nil {
		return err
	}
	v, err := replica.observe()
	if err != nil {
		return err
	}
	old := c.byID[v.entries[replica.ID].master]
	if v.role != "slave" || old == nil {
		return fmt.Errorf("valkeytest: Failover: %s is not a replica", replica.label())
	}
	r, err := replica.do(toolIOTimeout, "CLUSTER", "FAILOVER")
	if err != nil {
		return fmt.Errorf("%s: CLUSTER FAILOVER: %w", replica.label(), err)
	}
	if r != "OK" {
		return fmt.Errorf("%s: CLUSTER FAILOVER = %v", replica.label(), r)
	}
	return c.waitHealthy(time.Now().Add(clusterWaitTimeout), nil, func(s *clusterSnapshot) error {
		if v := s.view(replica); v.role != "master" {
			return fmt.Errorf("%s is still a replica", replica.label())
		}
		return s.servesNone(old)
	})
}

// KillPrimary kills the primary p with SIGKILL ([Server.Kill]), as a
// crash would, after noting which slots it serves and which nodes
// replicate it, for WaitFailover.
func (c *Cluster) KillPrimary(p *ClusterNode) error {
	if c.isStopped() {
		return ErrStopped
	}
	if err := c.member(p); err != nil {
		return err
	}
	v, err := p.observe()
	if err != nil {
		return err
	}
	if v.role != "master" {
		return fmt.Errorf("valkeytest: KillPrimary: %s is not a primary", p.label())
	}
	rec := killRecord{replicas: make(map[string]bool)}
	for _, r := range v.entries[p.ID].slots {
		for s := r[0]; s <= r[1]; s++ {
			rec.slots = append(rec.slots, s)
		}
	}
	for id, e := range v.entries {
		if e.master == p.ID {
			rec.replicas[id] = true
		}
	}
	if err := p.Kill(); err != nil {
		return err
	}
	c.mu.Lock()
	c.killed[p] = rec
	c.mu.Unlock()
	return nil
}

// WaitFailover waits up to timeout until a former replica of the primary
// p, which was killed or paused, serves p's slots, no running node sees p
// serving any, and the cluster is healthy on every other running node as
// for WaitHealthy. p is treated as down even when it still runs (paused).
// When p was killed by KillPrimary, its slots and replicas are the ones
// noted then; otherwise they are read now from a running node.
func (c *Cluster) WaitFailover(p *ClusterNode, timeout time.Duration) error {
	if c.isStopped() {
		return ErrStopped
	}
	if err := c.member(p); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	c.mu.Lock()
	rec, ok := c.killed[p]
	c.mu.Unlock()
	if !ok {
		rec = killRecord{replicas: make(map[string]bool)}
		for _, n := range c.nodes {
			if n == p || n.Pid() == 0 {
				continue
			}
			v, err := n.observe()
			if err != nil {
				continue
			}
			for _, r := range v.entries[p.ID].slots {
				for s := r[0]; s <= r[1]; s++ {
					rec.slots = append(rec.slots, s)
				}
			}
			for id, e := range v.entries {
				if e.master == p.ID {
					rec.replicas[id] = true
				}
			}
			break
		}
	}
	down := map[*ClusterNode]bool{p: true}
	err := c.waitHealthy(deadline, down, func(s *clusterSnapshot) error {
		if err := s.servesNone(p); err != nil {
			return err
		}
		for _, slot := range rec.slots {
			if id := s.owners[slot]; !rec.replicas[id] {
				return fmt.Errorf("slot %d of %s is served by %s, not by a former replica", slot, p.Addr(), id)
			}
		}
		return nil
	})
	if err == nil {
		c.mu.Lock()
		delete(c.killed, p)
		c.mu.Unlock()
	}
	return err
}

// RestartNode brings node back ([Server.Restart]: stopped first if it
// runs) with its nodes.conf, then waits up to 15 seconds until it has
// rejoined and the cluster is healthy as for WaitHealthy. A primary that
// was replaced meanwhile rejoins as a replica of the node that replaced it.
func (c *Cluster) RestartNode(node *ClusterNode) error {
	if c.isStopped() {
		return ErrStopped
	}
	if err := c.member(node); err != nil {
		return err
	}
	if err := node.Restart(); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.killed, node)
	c.mu.Unlock()
	return c.waitHealthy(time.Now().Add(clusterWaitTimeout), nil, nil)
}

// --- health ---

// clusterEntry is one line of CLUSTER NODES.
type clusterEntry struct {
	id     string
	flags  []string
	master string // the primary's ID, or "-"
	slots  [][2]int
}

func (e clusterEntry) has(flag string) bool { return slices.Contains(e.flags, flag) }

// clusterView is what one node says about the cluster.
type clusterView struct {
	node    *ClusterNode
	state   string // cluster_state
	entries map[string]clusterEntry
	role    string // "master" or "slave", from INFO replication
	linkUp  bool   // master_link_status:up
}

// observe asks the node for CLUSTER INFO, CLUSTER NODES and INFO
// replication in one round trip.
func (n *ClusterNode) observe() (*clusterView, error) {
	replies, err := n.pipeline([][]string{
		{"CLUSTER", "INFO"},
		{"CLUSTER", "NODES"},
		{"INFO", "replication"},
	}, clusterObserveIO)
	if err != nil {
		return nil, err
	}
	var text [3]string
	for i, r := range replies {
		if err := replyErr(r); err != nil {
			return nil, fmt.Errorf("%s: %w", n.label(), err)
		}
		text[i], _ = r.(string)
	}
	v := &clusterView{
		node:    n,
		state:   infoField(text[0], "cluster_state"),
		role:    infoField(text[2], "role"),
		linkUp:  infoField(text[2], "master_link_status") == "up",
		entries: make(map[string]clusterEntry),
	}
	for line := range strings.Lines(text[1]) {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		e := clusterEntry{id: f[0], flags: strings.Split(f[2], ","), master: f[3]}
		for _, tok := range f[8:] {
			if strings.HasPrefix(tok, "[") {
				continue // [slot->-id] or [slot-<-id]: migrating, importing
			}
			lo, hi, found := strings.Cut(tok, "-")
			if !found {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("%s: CLUSTER NODES slot %q: %w", n.label(), tok, errProtocol)
			}
			e.slots = append(e.slots, [2]int{a, b})
		}
		v.entries[e.id] = e
	}
	return v, nil
}

func infoField(info, name string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// knowsAll reports whether the view holds exactly the cluster's nodes,
// none of them still in handshake.
func (v *clusterView) knowsAll(c *Cluster) error {
	if len(v.entries) != len(c.nodes) {
		return fmt.Errorf("%s knows %d nodes, want %d", v.node.label(), len(v.entries), len(c.nodes))
	}
	for _, n := range c.nodes {
		e, ok := v.entries[n.ID]
		if !ok {
			return fmt.Errorf("%s does not know %s (%s)", v.node.label(), n.Addr(), n.ID)
		}
		if e.has("handshake") || e.has("noaddr") {
			return fmt.Errorf("%s sees %s as %s", v.node.label(), n.Addr(), strings.Join(e.flags, ","))
		}
	}
	return nil
}

// owners maps every slot to the ID of the node the view says serves it.
func (v *clusterView) owners() []string {
	owners := make([]string, clusterSlots)
	for id, e := range v.entries {
		for _, r := range e.slots {
			for s := max(r[0], 0); s <= r[1] && s < clusterSlots; s++ {
				owners[s] = id
			}
		}
	}
	return owners
}

// clusterSnapshot is the views of the running nodes taken in one health
// poll, and the slot owners they agree on.
type clusterSnapshot struct {
	views  []*clusterView // of the live nodes, in node order
	live   map[*ClusterNode]bool
	owners []string
}

func (s *clusterSnapshot) view(n *ClusterNode) *clusterView {
	for _, v := range s.views {
		if v.node == n {
			return v
		}
	}
	return &clusterView{node: n, entries: map[string]clusterEntry{}}
}

// servesNone reports whether no live node sees n serving a slot.
func (s *clusterSnapshot) servesNone(n *ClusterNode) error {
	for _, v := range s.views {
		if slots := v.entries[n.ID].slots; len(slots) > 0 {
			return fmt.Errorf("%s sees %s serving slots %v", v.node.label(), n.Addr(), slots)
		}
	}
	return nil
}

// snapshot observes every running node not in down.
func (c *Cluster) snapshot(down map[*ClusterNode]bool) (*clusterSnapshot, error) {
	s := &clusterSnapshot{live: make(map[*ClusterNode]bool)}
	for _, n := range c.nodes {
		if n.Pid() != 0 && !down[n] {
			s.live[n] = true
		}
	}
	if len(s.live) == 0 {
		return nil, errors.New("no node is running")
	}
	for _, n := range c.nodes {
		if !s.live[n] {
			continue
		}
		v, err := n.observe()
		if err != nil {
			return nil, err
		}
		s.views = append(s.views, v)
	}
	return s, nil
}

// healthy checks everything WaitHealthy promises and fills s.owners.
func (c *Cluster) healthy(s *clusterSnapshot) error {
	roles := make(map[string]string) // live node ID -> its own role
	for _, v := range s.views {
		roles[v.node.ID] = v.role
	}
	for _, v := range s.views {
		name := v.node.label()
		if v.state != "ok" {
			return fmt.Errorf("%s: cluster_state:%s", name, v.state)
		}
		if err := v.knowsAll(c); err != nil {
			return err
		}
		for id, role := range roles {
			e := v.entries[id]
			if e.has("fail") || e.has("fail?") {
				return fmt.Errorf("%s sees running %s as %s", name, c.byID[id].Addr(), strings.Join(e.flags, ","))
			}
			if e.has("master") != (role == "master") {
				return fmt.Errorf("%s sees %s as %s, but it says %s", name, c.byID[id].Addr(), strings.Join(e.flags, ","), role)
			}
		}
		owners := v.owners()
		for slot, id := range owners {
			if id == "" {
				return fmt.Errorf("%s sees slot %d served by no node", name, slot)
			}
			if s.owners != nil && s.owners[slot] != id {
				return fmt.Errorf("%s sees slot %d served by %s, %s by %s", name, slot, id, s.views[0].node.label(), s.owners[slot])
			}
			if s.owners == nil {
				if n := c.byID[id]; n == nil || !s.live[n] {
					return fmt.Errorf("%s sees slot %d served by %s, which is down", name, slot, id)
				}
			}
		}
		if s.owners == nil {
			s.owners = owners
		}
		if v.role == "slave" {
			if !v.linkUp {
				return fmt.Errorf("%s: master_link_status is not up", name)
			}
			if p := c.byID[v.entries[v.node.ID].master]; p == nil || !s.live[p] {
				return fmt.Errorf("%s replicates %q, which is down", name, v.entries[v.node.ID].master)
			}
		} else if v.role != "master" {
			return fmt.Errorf("%s: role:%s", name, v.role)
		}
	}
	return nil
}

// waitHealthy polls until the cluster is healthy on every running node
// not in down and extra (if any) agrees, then notes the roles.
func (c *Cluster) waitHealthy(deadline time.Time, down map[*ClusterNode]bool, extra func(*clusterSnapshot) error) error {
	var snap *clusterSnapshot
	err := c.poll(deadline, "not healthy", func() error {
		s, err := c.snapshot(down)
		if err != nil {
			return err
		}
		if err := c.healthy(s); err != nil {
			return err
		}
		if extra != nil {
			if err := extra(s); err != nil {
				return err
			}
		}
		snap = s
		return nil
	})
	if err != nil {
		return err
	}
	c.noteRoles(snap)
	return nil
}

// noteRoles sets Primaries and Replicas from a healthy snapshot: a node
// is a primary when the first live node sees it as one and it runs, or
// when it serves slots.
func (c *Cluster) noteRoles(s *clusterSnapshot) {
	v := s.views[0]
	var prim, repl []*ClusterNode
	for _, n := range c.nodes {
		e := v.entries[n.ID]
		if len(e.slots) > 0 || (e.has("master") && s.live[n]) {
			prim = append(prim, n)
		} else {
			repl = append(repl, n)
		}
	}
	c.mu.Lock()
	c.primaries, c.replicas = prim, repl
	c.mu.Unlock()
}
