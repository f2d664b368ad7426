package valkeytest

// Cluster repair: giving every slot an owner again, as redis-cli
// --cluster fix does.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SlotFix is one repair made by [Cluster.FixSlots]: the slots First to
// Last (inclusive) now belong to Owner.
type SlotFix struct {
	First, Last int
	Owner       *ClusterNode
	// Why says what the running nodes saw before (which node each one
	// saw serving the slots, with its config epoch, or none), why Owner
	// was chosen, and any primary that refused to give the slots up.
	Why string
}

func (f SlotFix) String() string {
	slots := "slot " + strconv.Itoa(f.First)
	if f.Last != f.First {
		slots = fmt.Sprintf("slots %d-%d", f.First, f.Last)
	}
	return fmt.Sprintf("%s -> %s (%s): %s", slots, f.Owner.short(), f.Owner.Addr(), f.Why)
}

// FixSlots repairs slot ownership the way redis-cli --cluster fix does
// for uncovered slots. A slot needs repair when some running node sees it
// served by no node (the state [ErrSlotUnserved] reports, which Redis 7.0
// may not leave by itself: a node that stopped claiming a slot is not
// taken to have dropped it by the others, and nobody else claims it), by
// a node that is not a running primary, or when the running nodes
// disagree on its owner. For each such slot FixSlots chooses an owner:
// the running primary most running nodes name (ties go to the first in
// node order); else the running primary holding the most keys in the slot
// (CLUSTER COUNTKEYSINSLOT); else the first running primary. It makes
// each owner claim its slots (CLUSTER SETSLOT slot NODE owner on it, then
// CLUSTER BUMPEPOCH, so that its claim beats older ones), tells every
// other running primary (SETSLOT slot NODE owner), and then waits up to
// 15 seconds until the cluster is healthy as for [Cluster.WaitHealthy]
// with the chosen owners serving the slots. A primary that refuses to
// give a slot up because it still holds keys in it is noted in the
// repair's Why, not an error: the owner's newer config epoch wins.
// Slots left migrating or importing are not touched.
//
// It returns the repairs made, consecutive slots with the same owner and
// the same Why in one, or none when every slot was fine (it still waits
// for health then). Use it only where a test is about something other
// than the cluster's own consistency, and say so in the test's log.
func (c *Cluster) FixSlots() ([]SlotFix, error) {
	if c.isStopped() {
		return nil, ErrStopped
	}
	s, err := c.snapshot(nil)
	if err != nil {
		return nil, err
	}
	var prims []*ClusterNode // running primaries by their own word, in node order
	isPrim := make(map[string]bool)
	for _, v := range s.views {
		if v.role == "master" {
			prims = append(prims, v.node)
			isPrim[v.node.ID] = true
		}
	}
	if len(prims) == 0 {
		return nil, errors.New("valkeytest: FixSlots: no running primary")
	}
	owners := make([][]string, len(s.views))
	for i, v := range s.views {
		owners[i] = v.owners()
	}

	// The slots to repair, and their owners by vote where there is one.
	var bad []int
	chosen := make(map[int]*ClusterNode)
	why := make(map[int]string)
	var unvoted []int
	for slot := range clusterSlots {
		id0 := owners[0][slot]
		ok := isPrim[id0]
		for _, o := range owners[1:] {
			ok = ok && o[slot] == id0
		}
		if ok {
			continue
		}
		bad = append(bad, slot)
		votes := make(map[string]int)
		for _, o := range owners {
			if isPrim[o[slot]] {
				votes[o[slot]]++
			}
		}
		var best *ClusterNode
		for _, p := range prims {
			if votes[p.ID] > 0 && (best == nil || votes[p.ID] > votes[best.ID]) {
				best = p
			}
		}
		if best != nil {
			chosen[slot] = best
			why[slot] = fmt.Sprintf("named by %d of %d nodes", votes[best.ID], len(s.views))
		} else {
			unvoted = append(unvoted, slot)
		}
	}
	if len(bad) == 0 {
		return nil, c.waitHealthy(time.Now().Add(clusterWaitTimeout), nil, nil)
	}

	// Slots no node names a running primary for: the one with the most
	// keys in it, else the first.
	if len(unvoted) > 0 {
		cmds := make([][]string, len(unvoted))
		for i, slot := range unvoted {
			cmds[i] = []string{"CLUSTER", "COUNTKEYSINSLOT", strconv.Itoa(slot)}
		}
		keys := make(map[*ClusterNode][]any)
		for _, p := range prims {
			replies, err := p.pipeline(cmds, toolIOTimeout)
			if err != nil {
				return nil, err
			}
			keys[p] = replies
		}
		for i, slot := range unvoted {
			best, most := prims[0], int64(0)
			for _, p := range prims {
				if n, _ := keys[p][i].(int64); n > most {
					best, most = p, n
				}
			}
			chosen[slot] = best
			if most > 0 {
				why[slot] = "no node names a running primary; it holds keys in the slot"
			} else {
				why[slot] = "no node names a running primary, none holds keys in the slot: the first primary"
			}
		}
	}
	for _, slot := range bad {
		why[slot] = "seen as " + c.slotViews(s, slot) + "; " + why[slot]
	}

	// Each owner claims its slots and bumps its epoch; then the others.
	for _, p := range prims {
		var cmds [][]string
		for _, slot := range bad {
			if chosen[slot] == p {
				cmds = append(cmds, []string{"CLUSTER", "SETSLOT", strconv.Itoa(slot), "NODE", p.ID})
			}
		}
		if len(cmds) == 0 {
			continue
		}
		if err := p.pipelineOK(cmds, toolIOTimeout); err != nil {
			return nil, err
		}
		if _, err := p.do(toolIOTimeout, "CLUSTER", "BUMPEPOCH"); err != nil {
			return nil, fmt.Errorf("%s: CLUSTER BUMPEPOCH: %w", p.label(), err)
		}
	}
	for _, p := range prims {
		var cmds [][]string
		var slots []int
		for _, slot := range bad {
			if chosen[slot] != p {
				cmds = append(cmds, []string{"CLUSTER", "SETSLOT", strconv.Itoa(slot), "NODE", chosen[slot].ID})
				slots = append(slots, slot)
			}
		}
		if len(cmds) == 0 {
			continue
		}
		replies, err := p.pipeline(cmds, toolIOTimeout)
		if err != nil {
			return nil, err
		}
		for i, r := range replies {
			if err := replyErr(r); err != nil {
				why[slots[i]] += fmt.Sprintf("; %s refused it: %v", p.short(), err)
			}
		}
	}

	var fixes []SlotFix
	for _, slot := range bad {
		if k := len(fixes) - 1; k >= 0 && fixes[k].Last+1 == slot && fixes[k].Owner == chosen[slot] && fixes[k].Why == why[slot] {
			fixes[k].Last = slot
			continue
		}
		fixes = append(fixes, SlotFix{First: slot, Last: slot, Owner: chosen[slot], Why: why[slot]})
	}
	err = c.waitHealthy(time.Now().Add(clusterWaitTimeout), nil, func(s *clusterSnapshot) error {
		for _, slot := range bad {
			if s.owners[slot] != chosen[slot].ID {
				return fmt.Errorf("slot %d is served by %s, want %s", slot, s.owners[slot], chosen[slot].label())
			}
		}
		return nil
	})
	if err != nil {
		return fixes, fmt.Errorf("valkeytest: FixSlots (%s): %w", fixesText(fixes), err)
	}
	return fixes, nil
}

func fixesText(fixes []SlotFix) string {
	parts := make([]string, len(fixes))
	for i, f := range fixes {
		parts[i] = f.String()
	}
	return strings.Join(parts, "; ")
}
