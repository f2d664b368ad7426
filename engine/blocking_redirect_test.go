package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/valkeytest"
)

// In cluster mode a blocking command (sent outside the actors) follows
// the cluster's redirects: MOVED after its slot moved (the engine's map
// stale, or the move ending a BLPOP that was blocked, which the server
// does with MOVED) and ASK while the slot migrates. It failed with the
// MOVED reply (and a hint to set ClusterMode) until the map's periodic
// reload, and never followed ASK.
func TestClusterBlockingFollowsRedirects(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c, rec, eng := staleMapCluster(t)
	ctx := ctxT(t)

	// MOVED: the slot moved after the engine loaded its map.
	const key = "{blmoved}list"
	if err := eng.Do(ctx, "RPUSH", key, "a").Err(ctx); err != nil {
		t.Fatal(err)
	}
	slot := valkeytest.HashSlot(key)
	from, to := ownerAndOther(t, c, slot)
	if err := c.MigrateSlots(from, to, []int{slot}); err != nil {
		t.Fatal(err)
	}
	r, err := eng.Do(ctx, "BLPOP", key, "1").Await(ctx)
	if err != nil {
		t.Fatalf("BLPOP after its slot moved: %v", err)
	}
	if got, _ := r.Strings(); len(got) != 2 || got[1] != "a" {
		t.Fatalf("BLPOP after its slot moved: %v, want [%s a]", got, key)
	}

	// MOVED while blocked: the slot moves back, the server ends the
	// blocked BLPOP with MOVED; the engine sends it to the new owner,
	// where the RPUSH after the move wakes it.
	pop := blockedPop(t, ctx, eng, to, key)
	if err := c.MigrateSlots(to, from, []int{slot}); err != nil {
		t.Fatal(err)
	}
	waitCond(t, 10*time.Second, "the BLPOP blocked again on the new owner", func() bool {
		info, err := from.Do("INFO", "clients")
		s, _ := info.(string)
		return err == nil && strings.Contains(s, "blocked_clients:1")
	})
	if err := eng.Do(ctx, "RPUSH", key, "b").Err(ctx); err != nil {
		t.Fatal(err)
	}
	r, err = pop.Await(ctx)
	if err != nil {
		t.Fatalf("BLPOP blocked across a slot move: %v", err)
	}
	if got, _ := r.Strings(); len(got) != 2 || got[1] != "b" {
		t.Fatalf("BLPOP blocked across a slot move: %v, want [%s b]", got, key)
	}

	// ASK: the slot is migrating and the key is not on its owner: the
	// BLPOP blocks on the importing node (ASKING), where the RPUSH (also
	// following ASK) wakes it.
	const askKey = "{blask}list"
	_, _, askTo := halfMigrate(t, c, askKey)
	pop = blockedPop(t, ctx, eng, askTo, askKey)
	if err := eng.Do(ctx, "RPUSH", askKey, "c").Err(ctx); err != nil {
		t.Fatal(err)
	}
	r, err = pop.Await(ctx)
	if err != nil {
		t.Fatalf("BLPOP during a migration (ASK): %v", err)
	}
	if got, _ := r.Strings(); len(got) != 2 || got[1] != "c" {
		t.Fatalf("BLPOP during a migration (ASK): %v, want [%s c]", got, askKey)
	}

	// TRYAGAIN: the BLMOVE's source is on the owner of a migrating slot,
	// its destination nowhere: the engine waits a backoff and sends it
	// again, MaxRedirects times, then fails it with ErrTooManyRedirects
	// (qa-AO AO2: it failed at once with the bare TRYAGAIN, and a worker
	// loop spun on it); once the slot is stable it works.
	const tsrc, tdst = "{bltry}src", "{bltry}dst"
	if err := eng.RPush(ctx, tsrc, "x").Err(ctx); err != nil {
		t.Fatal(err)
	}
	tslot, tfrom, tto := halfMigrate(t, c, tsrc)
	_, err = eng.BLMove(ctx, tsrc, tdst, engine.Left, engine.Right, time.Second).Await(ctx)
	var se *engine.ServerError
	if !errors.Is(err, engine.ErrTooManyRedirects) || !errors.As(err, &se) || se.Prefix != "TRYAGAIN" {
		t.Fatalf("BLMOVE on a half-migrated slot: %v, want ErrTooManyRedirects with the TRYAGAIN reply", err)
	}
	for _, n := range []*valkeytest.ClusterNode{tfrom, tto} {
		if _, err := n.Do("CLUSTER", "SETSLOT", strconv.Itoa(tslot), "STABLE"); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := eng.BLMove(ctx, tsrc, tdst, engine.Left, engine.Right, time.Second).Await(ctx); err != nil || v != "x" {
		t.Fatalf("BLMOVE once the slot is stable: %q, %v", v, err)
	}

	// A typed BLPop with a deadline whose slot moves while it waits is
	// sent again with a timeout within what is left of its ctx: idle, it
	// ends with ErrNil (qa-AO AO5: sent again with its first timeout,
	// which ended after the ctx, it failed as an outcome unknown).
	const idleKey = "{blidle}list"
	islot := valkeytest.HashSlot(idleKey)
	ifrom, ito := ownerAndOther(t, c, islot)
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	idle := eng.BLPop(dctx, 0, idleKey)
	blockedOn := func(n *valkeytest.ClusterNode) func() bool {
		return func() bool {
			info, err := n.Do("INFO", "clients")
			s, _ := info.(string)
			return err == nil && strings.Contains(s, "blocked_clients:1")
		}
	}
	waitCond(t, 10*time.Second, "the BLPop blocked on its slot's owner", blockedOn(ifrom))
	time.Sleep(time.Second) // a third of its time waited before the move: what the test is about
	if err := c.MigrateSlots(ifrom, ito, []int{islot}); err != nil {
		t.Fatal(err)
	}
	if _, err := idle.Await(ctx); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("idle BLPop with a 3s ctx whose slot moved while it waited: %v, want ErrNil", err)
	}

	if err := eng.Close(); err != nil { // delivers the hooks' events
		t.Fatal(err)
	}
	rec.with(func() {
		// Each BLPOP that followed a redirect says so in its Executed
		// event, as a command of the actors does (qa-AR AR3: 0), and the
		// BLMOVE given up counts every TRYAGAIN it got.
		var blpops []int
		for _, ev := range rec.executed {
			switch {
			case ev.Name == "BLPOP" && ev.Err == nil:
				blpops = append(blpops, ev.Redirects)
			case ev.Name == "BLMOVE" && errors.Is(ev.Err, engine.ErrTooManyRedirects) && ev.Redirects != config.DefaultConfig().MaxRedirects+1:
				t.Errorf("BLMOVE given up: Redirects %d, want %d", ev.Redirects, config.DefaultConfig().MaxRedirects+1)
			}
		}
		// (The one blocked across the move may have met the stale map's
		// MOVED first, as the map reloads in the background.)
		if len(blpops) != 4 || slices.Contains(blpops, 0) {
			t.Errorf("the BLPOPs that followed MOVED, MOVED while blocked, ASK and the idle one's MOVED: Redirects %v, want 4 of at least 1", blpops)
		}
		if !slices.ContainsFunc(rec.redirects, func(r hooks.Redirect) bool { return r.Name == "BLMOVE" && r.Kind == hooks.RedirectTryAgain && r.GaveUp }) {
			t.Errorf("no TRYAGAIN redirect of a BLMOVE given up reported: %+v", rec.redirects)
		}
		for _, kind := range []string{hooks.RedirectMoved, hooks.RedirectAsk} {
			if !slices.ContainsFunc(rec.redirects, func(r hooks.Redirect) bool { return r.Name == "BLPOP" && r.Kind == kind && !r.GaveUp }) {
				t.Errorf("no %s redirect of a BLPOP reported: %+v", kind, rec.redirects)
			}
		}
	})
}

// A blocking command blocked on a primary that a manual failover demotes
// is ended by the server with "UNBLOCKED ... instance state changed"
// (Redis 7; Valkey 9 sends MOVED): nothing was popped, and the engine
// sends it again to the new primary, where an RPUSH wakes it. It failed
// with that reply.
func TestClusterBlockingFollowsFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	replica := c.Replicas()[0]
	role, err := replica.Do("ROLE")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := role.([]any)
	if len(r) < 3 {
		t.Fatalf("ROLE of a replica: %v", role)
	}
	port := fmt.Sprint(r[2])
	var primary *valkeytest.ClusterNode
	for _, p := range c.Primaries() {
		if strconv.Itoa(p.Port()) == port {
			primary = p
		}
	}
	if primary == nil {
		t.Fatalf("no primary on port %s (ROLE %v)", port, role)
	}
	key := "{" + keyOn(t, c, primary) + "}list"
	pop := blockedPop(t, ctx, eng, primary, key)
	if err := c.Failover(replica); err != nil {
		t.Fatal(err)
	}
	waitCond(t, 10*time.Second, "the BLPOP blocked again on the new primary", func() bool {
		info, err := replica.Do("INFO", "clients")
		s, _ := info.(string)
		return err == nil && strings.Contains(s, "blocked_clients:1")
	})
	if err := eng.Do(ctx, "RPUSH", key, "x").Err(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := pop.Await(ctx)
	if err != nil {
		t.Fatalf("BLPOP blocked across a failover: %v", err)
	}
	if v, _ := got.Strings(); len(v) != 2 || v[1] != "x" {
		t.Fatalf("BLPOP blocked across a failover: %v, want [%s x]", v, key)
	}
}
