package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/policies"
	"github.com/vactor-io/vactor/valkeytest"
)

// When every node of a cluster refuses the engine (the password rotated on
// the servers, not yet in the config), commands on many slots at once fail
// fast with the refusal, not after their deadline. Each slot whose node
// failed asked for a slot-map load; a load that failed (every node
// refuses) left the map's epoch as it was, so each of the other slots
// waited for a load of its own, 100 ms apart (SyncGap): 200 slots, 20 s,
// their 3 s deadlines first (qa-AD 2). GETs written on a connection the
// kill closed before the engine noticed get their first resend whatever
// the retry budget, and fail with the refusal too (18 of 200 failed with
// a bare "outcome unknown: EOF" on a busy CI machine, the budget's burst
// of 100 spent, before that resend was free).
func TestClusterAllNodesRefuseFailFast(t *testing.T) {
	const adminPass, appPass, newPass = "admin-Pa55word-c1d7", "app-Pa55word-8e2b", "rotated-Pa55word-5a90"
	cl := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{Username: "admin", Password: adminPass, ReplicasPerPrimary: -1})
	for _, n := range cl.Nodes() {
		if err := n.AddUser("app", appPass, "~*", "&*", "+@all"); err != nil {
			t.Fatal(err)
		}
	}
	cfg, logs := withLogCheck(t, config.DefaultConfig().WithAddrs(cl.Addrs()...).WithClusterMode(true).WithUsername("app").WithPassword(appPass))
	eng := engineOn(t, cfg)
	defer eng.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	const n = 200
	var keys []string
	slots := map[int]bool{}
	for i := 0; len(keys) < n; i++ {
		if k := fmt.Sprintf("refused:%d", i); !slots[valkeytest.HashSlot(k)] {
			slots[valkeytest.HashSlot(k)] = true
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		if err := eng.Set(ctx, k, "v", 0).Err(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, node := range cl.Nodes() {
		if err := node.SetUserPassword("app", newPass); err != nil {
			t.Fatal(err)
		}
		if _, err := node.Do("CLIENT", "KILL", "USER", "app"); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 2 {
		errs := make([]error, n)
		took := make([]time.Duration, n)
		var wg sync.WaitGroup
		start := time.Now()
		for i, k := range keys {
			wg.Go(func() {
				c, cancel := context.WithTimeout(ctx, 3*time.Second)
				defer cancel()
				_, errs[i] = eng.Get(c, k).Await(c)
				took[i] = time.Since(start)
			})
		}
		wg.Wait()
		late := 0
		var first string // the first late GET, for the failure's message
		for i, err := range errs {
			switch {
			case err == nil:
				t.Fatalf("round %d: GET %s answered by a node that refuses the password", round, keys[i])
			case errors.Is(err, context.DeadlineExceeded):
				if late == 0 {
					first = fmt.Sprintf("%s after %v: %v", keys[i], took[i], err)
				}
				late++
			case !strings.Contains(err.Error(), "WRONGPASS"):
				t.Errorf("round %d: GET %s failed with %v, want the refusal (WRONGPASS)", round, keys[i], err)
			}
		}
		if late > 0 {
			// How long the round took and when it began say whether the
			// GETs waited (and where: hunt40) or the test's own ctx had
			// run out before it (its 30 s include the setup): the
			// check does not time them.
			t.Fatalf("round %d: %d of %d GETs waited out their 3 s deadline instead of failing with the refusal "+
				"(the round began %v after the test's ctx; the first: %s); the engine's log from the round's start:\n%s",
				round, late, n, start.Sub(began), first, strings.Join(logs.Between(start, time.Now(), 60), "\n"))
		}
	}
}

// An ACL user with its data commands only ("~* +@read +@write") cannot
// read the slot map: New fails naming the permissions cluster mode needs,
// and with them granted it works (qa-AD: "CLUSTER SLOTS ... NOPERM" named
// no fix).
func TestClusterUserWithoutClusterNamed(t *testing.T) {
	const adminPass, appPass = "admin-Pa55word-47be", "app-Pa55word-0d3c"
	cl := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{Username: "admin", Password: adminPass, ReplicasPerPrimary: -1})
	for _, n := range cl.Nodes() {
		if err := n.AddUser("app", appPass, "~*", "&*", "+@read", "+@write"); err != nil {
			t.Fatal(err)
		}
	}
	cfg := config.DefaultConfig().WithAddrs(cl.Addrs()...).WithClusterMode(true).WithUsername("app").WithPassword(appPass)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eng, err := engine.New(ctx, cfg)
	if err == nil {
		eng.Close()
		t.Fatal("New succeeded for a user that may not read the slot map")
	}
	if policies.ServerErrorCode(err) != "NOPERM" || strings.Count(err.Error(), "+cluster|shards +cluster|slots +asking +readonly") != 1 {
		t.Fatalf("New failed with %v, want the NOPERM refusal naming the permissions cluster mode needs", err)
	}
	for _, n := range cl.Nodes() {
		if _, err := n.Do("ACL", "SETUSER", "app", "+cluster|shards", "+cluster|slots", "+asking", "+readonly"); err != nil {
			t.Fatal(err)
		}
	}
	eng = engineOn(t, cfg)
	defer eng.Close()
	if err := eng.Set(ctx, "granted", "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
}
