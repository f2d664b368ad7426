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
	return startT(tb, "cluster", opts, StartCluster)
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
	// A node learns another's slots and role only from a packet that other
	// sends it, and with gossip refreshing how recently each node answered,
	// nodes ping each other at random: with a long node timeout some node
	// saw a replica as a primary for over 12 s (and slots unserved for 4 s).
	// A MEET from every node to every other carries both at once.
	for _, n := range c.nodes {
		var cmds [][]string
		for _, m := range c.nodes {
			if m != n {
				cmds = append(cmds, []string{"CLUSTER", "MEET", Host, strconv.Itoa(m.Port()), strconv.Itoa(m.busPort)})
			}
		}
		if err := n.pipelineOK(cmds, toolIOTimeout); err != nil {
			return err
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

func (c *Cluster) member(n *ClusterNode) error {
	if n == nil || n.c != c {
		return errors.New("valkeytest: node is not part of this cluster")
	}
	return nil
}
