package valkeytest

// Cluster faults: manual failover, killing a primary, waiting for its
// replica to take over, and restarting a node.

import (
	"fmt"
	"time"
)

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
	// Any node another running node sees replicating p counts too: p's
	// own view may not yet show a replica that joined it lately.
	for _, n := range c.nodes {
		if n == p || n.Pid() == 0 {
			continue
		}
		if nv, err := n.observe(); err == nil {
			for id, e := range nv.entries {
				if e.master == p.ID {
					rec.replicas[id] = true
				}
			}
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
