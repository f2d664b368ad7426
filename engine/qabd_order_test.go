package engine_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// Cluster mode: the batch writer's RPUSHes of increasing numbers to a few
// lists, written from one goroutine, while the lists' slot moves (a
// manual failover of its primary, or a migration of the slots): each list
// must hold its numbers in the order they were written ("commands for one
// key keep their order"), none twice, none missing (nothing failed).
func TestQABDWriterClusterOrderAcrossMove(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	for _, how := range []string{"failover", "migrate"} {
		t.Run(how, func(t *testing.T) { qabdWriterClusterOrder(t, how) })
	}
}

func qabdWriterClusterOrder(t *testing.T, how string) {
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	victim := c.Primaries()[0]
	ranges, err := c.SlotsOf(victim)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	var slots []int
	for i := 0; len(keys) < 4 && i < 100000; i++ {
		k := fmt.Sprintf("qabd:o:%d", i)
		s, err := c.KeySlot(k)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range ranges {
			if s >= r[0] && s <= r[1] {
				keys = append(keys, k)
				slots = append(slots, s)
			}
		}
	}
	var replica *valkeytest.ClusterNode
	for _, r := range c.Replicas() {
		info, err := r.Do("INFO", "replication")
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := info.(string); strings.Contains(s, fmt.Sprintf("master_port:%d\r\n", victim.Port())) {
			replica = r
		}
	}
	if replica == nil {
		t.Fatal("no replica of the victim")
	}
	var mu sync.Mutex
	var failures []string
	w := bwWriter(t, eng, engine.BatchWriterOptions{BatchSize: 8, ConnsPerNode: 1, MaxPending: 50_000,
		OnError: func(cmd []string, err error) {
			mu.Lock()
			defer mu.Unlock()
			failures = append(failures, fmt.Sprintf("%q: %v", cmd, err))
		}})
	const n = 40_000
	moved := make(chan error, 1)
	for i := range n {
		if i == n/4 {
			go func() {
				if how == "failover" {
					moved <- c.Failover(replica)
				} else {
					moved <- c.MigrateSlots(victim, c.Primaries()[1], slots)
				}
			}()
		}
		if err := w.RPush(ctx, keys[i%len(keys)], fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		if i%2000 == 0 {
			time.Sleep(10 * time.Millisecond) // span the move
		}
	}
	if err := <-moved; err != nil {
		t.Fatalf("%s: %v", how, err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	t.Logf("%s under %d RPUSHes: %s, %d resent, %d redirects", how, n, st, st.Retries, st.Redirects)
	for _, f := range failures[:min(len(failures), 5)] {
		t.Errorf("failed: %s", f)
	}
	inversions := 0
	for ki, k := range keys {
		vals, err := eng.LRange(ctx, k, 0, -1).Await(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		prev := -1
		for _, v := range vals {
			var x int
			fmt.Sscan(v, &x)
			if seen[v] {
				t.Errorf("%s: %s twice", k, v)
			}
			seen[v] = true
			if x < prev {
				if inversions < 5 {
					t.Errorf("%s: %d after %d: written in the other order", k, x, prev)
				}
				inversions++
			}
			prev = x
		}
		for i := ki; i < n; i += len(keys) {
			if !seen[fmt.Sprint(i)] && len(failures) == 0 {
				t.Errorf("%s: %d missing", k, i)
				break
			}
		}
	}
	if inversions > 0 {
		t.Errorf("%d order inversions", inversions)
	}
}
