package engine_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
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
	w := bwWriter(t, eng, engine.BatchWriterOptions{BatchSize: 8, MaxPending: 50_000, // ConnsPerNode: the default (2)
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
	if s := engine.WriterRouteLeaks(w); s != "" {
		t.Errorf("routes still counting after Flush: %s", s)
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

// Cluster mode: a multi-key DEL refused with TRYAGAIN (its keys split
// between the two nodes of a migration) is sent again after the backoff,
// and must not run after a later write of one of its keys that ran at once
// in the same pipeline: DEL {t}1 {t}2 then SET {t}1 v must leave {t}1 = v.
func TestQABDWriterClusterTryAgainOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	// With Engine methods and a Pipeline the slot actor sent the
	// TRYAGAIN'd DEL again after the SET that ran (qa-BD F3).
	for _, via := range []string{"writer", "engine", "pipeline"} {
		t.Run(via, func(t *testing.T) { qabdTryAgainOrder(t, via) })
	}
}

func qabdTryAgainOrder(t *testing.T, via string) {
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	src, dst := c.Primaries()[0], c.Primaries()[1]
	tag, slot := tagServedBy(t, c, src, "qabd")
	k1, k2 := tag+"1", tag+"2"
	for _, k := range []string{k1, k2} {
		if _, err := src.Do("SET", k, "before"); err != nil {
			t.Fatal(err)
		}
	}
	mig := beginMigration(t, c, src, dst, slot, k2)
	var delErr error // the DEL's failure, when it failed
	var w *engine.BatchWriter
	if via == "writer" {
		w = bwWriter(t, eng, engine.BatchWriterOptions{ConnsPerNode: 1, OnError: func(cmd []string, err error) {
			if cmd[0] == "DEL" {
				delErr = err
			} else {
				t.Errorf("OnError(%q, %v)", cmd, err)
			}
		}})
	}
	// The migration ends a moment later: the DEL's resend then runs (on
	// the new owner, after a MOVED).
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(30 * time.Millisecond)
		mig.move(k1)
		mig.end()
	}()
	switch via {
	case "writer":
		if err := w.Del(ctx, k1, k2); err != nil {
			t.Fatal(err)
		}
		if err := w.Set(ctx, k1, "after", 0); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		st := w.Stats()
		t.Logf("%s; %d resent, %d redirects", st, st.Retries, st.Redirects)
	case "engine":
		del := eng.Del(ctx, k1, k2)
		set := eng.Set(ctx, k1, "after", 0)
		_, derr := del.Await(ctx)
		serr := set.Err(ctx)
		t.Logf("DEL: %v; SET: %v", derr, serr)
		if serr != nil {
			t.Fatalf("SET: %v", serr)
		}
		delErr = derr
	case "pipeline":
		p := eng.Pipeline()
		del := p.Del(k1, k2)
		set := p.Set(k1, "after", 0)
		err := p.Exec(ctx)
		_, derr := del.Await(ctx)
		serr := set.Err(ctx)
		t.Logf("Exec: %v; DEL: %v; SET: %v", err, derr, serr)
		if serr != nil {
			t.Fatalf("SET: %v", serr)
		}
		delErr = derr
	}
	<-done
	v, err := eng.Get(ctx, k1).Await(ctx)
	if err != nil || v != "after" {
		t.Fatalf("DEL %s %s (error %v) then SET %s acknowledged: GET %s = %q, %v (the DEL ran after the SET)", k1, k2, delErr, k1, k1, v, err)
	}
	// The DEL may fail, unsent again, with its TRYAGAIN (nothing ran).
	if delErr != nil && !errors.Is(delErr, &engine.ServerError{Prefix: "TRYAGAIN"}) {
		t.Errorf("DEL failed with %v, want its TRYAGAIN reply", delErr)
	}
	t.Logf("DEL: %v; %s = %q", delErr, k1, v)
}

// Standalone, a server that refuses MSET (an ACL without it): the plain
// SETs the writer merged into the refused MSET are sent again as SETs,
// and must not land after a later write of their key that ran in the
// same pipeline: SET k a, SET k2 b, DEL k must leave k deleted.
func TestQABDWriterMSetRefusedOrder(t *testing.T) {
	srv := valkeytest.Start(t)
	ctx := ctxT(t)
	if _, err := srv.Do("ACL", "SETUSER", "nomset", "on", ">nomset-Pa55word-3e8", "~*", "+@all", "-mset"); err != nil {
		t.Fatal(err)
	}
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithUsername("nomset").WithPassword("nomset-Pa55word-3e8"))
	defer eng.Close()
	var mu sync.Mutex
	var failed []string
	w := bwWriter(t, eng, engine.BatchWriterOptions{ConnsPerNode: 1, OnError: func(cmd []string, err error) {
		mu.Lock()
		defer mu.Unlock()
		failed = append(failed, fmt.Sprintf("%q: %v", cmd, err))
	}})
	// Many rounds: each must be one pipeline for the inversion; the
	// first pipeline is the one that meets the refusal.
	for i := range 200 {
		k := fmt.Sprintf("qabd:m:%d", i)
		if err := w.Set(ctx, k, "a", 0); err != nil {
			t.Fatal(err)
		}
		if err := w.Set(ctx, k+":2", "b", 0); err != nil {
			t.Fatal(err)
		}
		if err := w.Del(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s; failed %v", w.Stats(), failed)
	for i := range 200 {
		k := fmt.Sprintf("qabd:m:%d", i)
		if v, err := srv.Do("GET", k); err != nil || v != nil {
			t.Fatalf("SET %s a then DEL %s: GET %s = %v, %v (the SET landed after the DEL)", k, k, k, v, err)
		}
	}
}
