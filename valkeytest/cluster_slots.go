package valkeytest

// Cluster slots: which node serves a key or a slot, and moving slots
// between primaries (resharding).

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

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

// HashSlot returns the cluster hash slot of key as the server computes it
// (CRC16-XMODEM of the hash tag, or of the whole key, mod 16384), without
// a server: for tests that pick keys by slot before any client exists.
// (valkey-go computes slots only inside a cluster client's Builder.)
func HashSlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) & 16383
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
