package valkeytest

// Cluster health: every node's view of the cluster, and waiting until the
// views agree.

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

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

// --- health ---

// clusterEntry is one line of CLUSTER NODES.
type clusterEntry struct {
	id     string
	flags  []string
	master string // the primary's ID, or "-"
	epoch  string // config epoch
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
		e := clusterEntry{id: f[0], flags: strings.Split(f[2], ","), master: f[3], epoch: f[6]}
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
				return fmt.Errorf("%s sees slot %d served by no node (seen as %s): %w", name, slot, c.slotViews(s, slot), ErrSlotUnserved)
			}
			if s.owners != nil && s.owners[slot] != id {
				return fmt.Errorf("%s sees slot %d served by %s, %s by %s (seen as %s)", name, slot, id, s.views[0].node.label(), s.owners[slot], c.slotViews(s, slot))
			}
			if s.owners == nil {
				if n := c.byID[id]; n == nil || !s.live[n] {
					return fmt.Errorf("%s sees slot %d served by %s, which is down (seen as %s)", name, slot, id, c.slotViews(s, slot))
				}
				if roles[id] != "master" {
					return fmt.Errorf("%s sees slot %d served by %s, which says it is a %s (seen as %s)", name, slot, id, roles[id], c.slotViews(s, slot))
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

// slotViews says which node each view sees serving slot, for messages:
// "node 0: node 4 epoch 9, ..., node 4: none".
func (c *Cluster) slotViews(s *clusterSnapshot, slot int) string {
	parts := make([]string, len(s.views))
	for i, v := range s.views {
		parts[i] = v.node.short() + ": " + v.ownerText(c, slot)
	}
	return strings.Join(parts, ", ")
}

// ownerText names the node the view sees serving slot, with the config
// epoch it knows for it, or says "none".
func (v *clusterView) ownerText(c *Cluster, slot int) string {
	for id, e := range v.entries {
		for _, r := range e.slots {
			if r[0] <= slot && slot <= r[1] {
				name := id
				if n := c.byID[id]; n != nil {
					name = n.short()
				}
				return name + " epoch " + e.epoch
			}
		}
	}
	return "none"
}

// short names the node in messages about many nodes: "node 4".
func (n *ClusterNode) short() string {
	return strings.TrimPrefix(n.opts.Name, "cluster ")
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
