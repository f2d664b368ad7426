package engine

import (
	"context"
	"fmt"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/futures"
)

// Cluster mode splits MGET, MSET, DEL, EXISTS and UNLINK whose keys span
// slots into one command per slot, sent in parallel through the slot
// actors, and merges the replies in the caller's key order.

// slotOf returns the hash slot of key, computed by valkey-go's builder
// (hash tags included).
func (e *Engine) slotOf(key string) uint16 {
	cmd := e.b.Exists().Key(key).Build()
	return cmd.Slot() & (actors.Slots - 1)
}

// bySlot groups the positions of keys by slot, in first-seen slot order;
// it returns nil when all keys share one slot (nothing to split).
func (e *Engine) bySlot(keys []string) [][]int {
	if e.cl == nil || len(keys) < 2 {
		return nil
	}
	index := map[uint16]int{}
	var groups [][]int
	for i, k := range keys {
		s := e.slotOf(k)
		g, ok := index[s]
		if !ok {
			g = len(groups)
			index[s] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	if len(groups) == 1 {
		return nil
	}
	return groups
}

func pick(keys []string, idx []int) []string {
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = keys[j]
	}
	return out
}

// splitCount runs one counting command (DEL, EXISTS, UNLINK) per slot and
// sums the replies.
func (e *Engine) splitCount(keys []string, groups [][]int, one func([]string) *futures.Future[int64]) *futures.Future[int64] {
	fs := make([]*futures.Future[int64], len(groups))
	for i, g := range groups {
		fs[i] = one(pick(keys, g))
	}
	return futures.Then(futures.Join(fs...), func(ns []int64) (int64, error) {
		var sum int64
		for _, n := range ns {
			sum += n
		}
		return sum, nil
	})
}

func (e *Engine) splitMGet(ctx context.Context, keys []string, groups [][]int) *futures.Future[[]*string] {
	fs := make([]*futures.Future[[]*string], len(groups))
	for i, g := range groups {
		fs[i] = e.MGet(ctx, pick(keys, g)...)
	}
	return futures.Then(futures.Join(fs...), func(parts [][]*string) ([]*string, error) {
		out := make([]*string, len(keys))
		for i, g := range groups {
			if len(parts[i]) != len(g) { // a broken server's or a proxy's
				return nil, fmt.Errorf("%w: MGET of %d keys answered with %d values", ErrReplyType, len(g), len(parts[i]))
			}
			for j, pos := range g {
				out[pos] = parts[i][j]
			}
		}
		return out, nil
	})
}

func (e *Engine) splitMSet(ctx context.Context, keyValues []string) (*futures.Future[struct{}], bool) {
	keys := make([]string, len(keyValues)/2)
	for i := range keys {
		keys[i] = keyValues[2*i]
	}
	groups := e.bySlot(keys)
	if groups == nil {
		return nil, false
	}
	fs := make([]*futures.Future[struct{}], len(groups))
	for i, g := range groups {
		kv := make([]string, 0, 2*len(g))
		for _, pos := range g {
			kv = append(kv, keyValues[2*pos], keyValues[2*pos+1])
		}
		fs[i] = e.MSet(ctx, kv...)
	}
	return futures.Then(futures.Join(fs...), func([]struct{}) (struct{}, error) { return struct{}{}, nil }), true
}
