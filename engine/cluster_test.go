package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/engine/enginetest"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

func clusterEngine(t *testing.T, c *valkeytest.Cluster) *engine.Engine {
	t.Helper()
	cfg, _ := withLogCheck(t, config.DefaultConfig().WithAddrs(c.Addrs()[0]).WithClusterMode(true))
	eng, err := open(context.Background(), t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	return eng
}

// Commands reach the node that owns their key's slot; replies come back in
// order; keyless commands work.
func TestClusterRouting(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	const n = 2000
	fs := make([]*futures.Future[struct{}], n)
	for i := range fs {
		fs[i] = eng.Set(ctx, fmt.Sprintf("key:%d", i), fmt.Sprint(i), 0)
	}
	if _, err := futures.All(ctx, fs...); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 97 {
		k := fmt.Sprintf("key:%d", i)
		slot, err := c.KeySlot(k)
		if err != nil {
			t.Fatal(err)
		}
		owner, err := c.NodeForSlot(slot)
		if err != nil {
			t.Fatal(err)
		}
		v, err := owner.Do("GET", k)
		if err != nil || v != fmt.Sprint(i) {
			t.Fatalf("GET %s on its owner %s = %v, %v", k, owner.Addr(), v, err)
		}
		got, err := eng.Get(ctx, k).Await(ctx)
		if err != nil || got != fmt.Sprint(i) {
			t.Fatalf("engine GET %s = %q, %v", k, got, err)
		}
	}
	if err := eng.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// Per-key order from one goroutine, fired before awaiting.
	incs := make([]*futures.Future[int64], 5000)
	for i := range incs {
		incs[i] = eng.Incr(ctx, fmt.Sprintf("ctr:%d", i%7))
	}
	next := map[int]int64{}
	for i, f := range incs {
		v, err := f.Await(ctx)
		if err != nil {
			t.Fatal(err)
		}
		next[i%7]++
		if v != next[i%7] {
			t.Fatalf("INCR #%d on ctr:%d = %d, want %d", i, i%7, v, next[i%7])
		}
	}
	if st := eng.Stats(); len(st.Nodes) != 3 {
		t.Fatalf("%d nodes in Stats, want the 3 primaries: %+v", len(st.Nodes), st.Nodes)
	}
	// A retry budget per node, shared by its connection actors: an outage
	// of one node does not spend the others' (qa-AJ: one budget for the
	// engine, the first node of a cluster restart took all of it).
	budgets, shared := engine.RetryBudgets(eng)
	distinct := map[any]bool{}
	for _, b := range budgets {
		distinct[b] = true
	}
	if len(budgets) != 3 || len(distinct) != 3 || !shared {
		t.Fatalf("retry budgets: %d nodes, %d budgets, shared within a node %t; want 3, 3, true", len(budgets), len(distinct), shared)
	}
}

// Cluster test 1: 2,000 slots are resharded while 32 goroutines INCR their
// own keys. No error reaches a caller, every INCR returns the next value
// (per-key order held), and the final counters equal the acknowledged
// INCRs (no write lost or doubled).
func TestClusterReshardingUnderLoad(t *testing.T) {
	enginetest.ClusterResharding(t, checked(enginetest.Options{}))
}

// Cluster test 2: CLUSTER FAILOVER of each primary in turn under load: no
// error reaches a caller and the longest gap between successful commands
// stays under 200ms.
func TestClusterFailoverUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var lastOK atomic.Int64
	var worstGap atomic.Int64
	lastOK.Store(time.Now().UnixNano())
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := eng.Set(cctx, fmt.Sprintf("f%d:%d", g, i%50), "v", 0).Await(cctx)
				cancel()
				if err != nil {
					errs <- err
					return
				}
				now := time.Now().UnixNano()
				if gap := now - lastOK.Swap(now); gap > worstGap.Load() {
					worstGap.Store(gap)
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	replicas := c.Replicas()
	for _, r := range replicas {
		if err := c.Failover(r); err != nil {
			t.Fatalf("failover of %s: %v", r.Addr(), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a caller saw an error during failovers: %v", err)
	}
	gap := time.Duration(worstGap.Load())
	st := eng.Stats()
	t.Logf("%d failovers; longest gap between successful commands %s; %d redirects followed", len(replicas), gap, st.Redirects)
	if gap > 200*time.Millisecond {
		t.Fatalf("longest gap %s, want < 200ms", gap)
	}
}

// Cluster test 3: kill -9 of a primary under load. Errors reach callers
// only inside the failover window, traffic to the lost slots resumes
// within node-timeout + 3s, and no future hangs.
func TestClusterKillPrimaryUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	victim := c.Primaries()[0]
	var stop atomic.Bool
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr, lastErr time.Time
	var nerr int
	var lastMsg string
	var pending atomic.Int64
	var confirmed []string // keys whose write a replica acknowledged (WAIT)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				pending.Add(1)
				_, err := eng.Set(cctx, fmt.Sprintf("k%d:%d", g, i%200), "v", 0).Await(context.Background())
				pending.Add(-1)
				cancel()
				if err != nil {
					now := time.Now()
					mu.Lock()
					if firstErr.IsZero() {
						firstErr = now
					}
					lastErr = now
					lastMsg = err.Error()
					nerr++
					mu.Unlock()
					time.Sleep(time.Millisecond) // pacing while failing
				}
			}
		}()
	}
	// Writes confirmed by a replica (WAIT) before the kill.
	{
		ctx := ctxT(t)
		for i := range 500 {
			key := fmt.Sprintf("confirmed:%d", i)
			set := eng.Set(ctx, key, "v", 0)
			n, err := eng.WaitReplicas(ctx, key, 1, time.Second).Await(ctx)
			if serr := set.Err(ctx); serr != nil || err != nil {
				t.Fatalf("SET+WAIT %s: %v, %v", key, serr, err)
			}
			if n >= 1 {
				confirmed = append(confirmed, key)
			}
		}
	}
	victimSlots, err := c.SlotsOf(victim)
	if err != nil || len(victimSlots) == 0 {
		t.Fatalf("slots of the victim: %v %v", victimSlots, err)
	}
	time.Sleep(200 * time.Millisecond)
	killed := time.Now()
	if err := c.KillPrimary(victim); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitFailover(victim, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	failedOver := time.Since(killed)
	// Traffic to the victim's former slots resumes.
	var resumed time.Duration
	// A key of one of the victim's former slots.
	probe := ""
	for i := 0; probe == ""; i++ {
		k := fmt.Sprintf("probe:%d", i)
		slot, err := c.KeySlot(k)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range victimSlots {
			if slot >= r[0] && slot <= r[1] {
				probe = k
			}
		}
	}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := eng.Set(ctx, probe, "x", 0).Await(ctx)
		cancel()
		if err == nil {
			resumed = time.Since(killed)
			break
		}
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("traffic not resumed 10s after the kill: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // traffic after recovery: no more errors
	stop.Store(true)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%d futures still pending", pending.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("failover took %s; traffic resumed %s after the kill; %d errors between +%s and +%s (last: %s)",
		failedOver, resumed, nerr, firstErr.Sub(killed), lastErr.Sub(killed), lastMsg)
	// Every write a replica acknowledged survived the failover.
	ctx := ctxT(t)
	lost := enginetest.Missing(t, ctx, eng, confirmed)
	t.Logf("%d writes confirmed by WAIT, %d lost", len(confirmed), lost)
	if len(confirmed) == 0 || lost > 0 {
		t.Fatalf("%d WAIT-confirmed writes, %d lost", len(confirmed), lost)
	}
	limit := time.Second + 3*time.Second // node-timeout 1s + 3s
	if resumed > limit {
		t.Fatalf("traffic resumed %s after the kill, want < %s", resumed, limit)
	}
	if nerr > 0 && (firstErr.Before(killed) || lastErr.Sub(killed) > limit) {
		t.Fatalf("errors outside the failover window: first +%s, last +%s", firstErr.Sub(killed), lastErr.Sub(killed))
	}
}

// Cluster test 4: MGET, MSET, DEL and EXISTS over 1,000 keys in many slots
// return correct results in the caller's key order.
func TestClusterCrossSlotMultiKey(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	keys := make([]string, 1000)
	kv := make([]string, 0, 2000)
	for i := range keys {
		keys[i] = fmt.Sprintf("mk:%d", i)
		if i%10 != 0 { // every tenth key stays missing
			kv = append(kv, keys[i], fmt.Sprint(i))
		}
	}
	if _, err := eng.MSet(ctx, kv...).Await(ctx); err != nil {
		t.Fatalf("MSET across slots: %v", err)
	}
	vals, err := eng.MGet(ctx, keys...).Await(ctx)
	if err != nil {
		t.Fatalf("MGET across slots: %v", err)
	}
	for i, v := range vals {
		if i%10 == 0 {
			if v != nil {
				t.Fatalf("MGET[%d] = %q, want nil", i, *v)
			}
			continue
		}
		if v == nil || *v != fmt.Sprint(i) {
			t.Fatalf("MGET[%d] = %v, want %d", i, v, i)
		}
	}
	if n, err := eng.Exists(ctx, keys...).Await(ctx); err != nil || n != 900 {
		t.Fatalf("EXISTS = %d, %v; want 900", n, err)
	}
	if n, err := eng.Del(ctx, keys[:500]...).Await(ctx); err != nil || n != 450 {
		t.Fatalf("DEL = %d, %v; want 450", n, err)
	}
	if n, err := eng.Unlink(ctx, keys...).Await(ctx); err != nil || n != 450 {
		t.Fatalf("UNLINK = %d, %v; want 450", n, err)
	}
	// A cross-slot command the engine does not split: the server's CROSSSLOT.
	_, err = eng.Do(ctx, "SUNIONSTORE", "a", "b", "c").Await(ctx)
	if !errors.Is(err, engine.ErrCrossSlot) {
		t.Fatalf("SUNIONSTORE across slots: %v, want ErrCrossSlot", err)
	}
}

// Cluster test 6: the core behaviours hold in cluster mode: a command
// cancelled before it is written is never written; Close with 50,000
// futures outstanding completes them all and leaves no goroutine.
func TestClusterCoreBehaviours(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := ctxT(t)
	eng, err := open(ctx, t, config.DefaultConfig().WithAddrs(c.Addrs()...).WithClusterMode(true))
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := eng.Set(cctx, "never", "x", 0).Err(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled SET: %v", err)
	}
	if n, err := eng.Exists(ctx, "never").Await(ctx); err != nil || n != 0 {
		t.Fatalf("EXISTS never = %d, %v", n, err)
	}
	// A Script runs on whichever node serves its keys, loading itself
	// there (EVALSHA, then EVAL on NOSCRIPT); a queue's BLMove with keys
	// of one slot works as standalone.
	incr := engine.NewScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
	for i := range 12 {
		k := fmt.Sprintf("script:%d", i) // spread over the nodes
		for want := int64(5); want <= 10; want += 5 {
			if r, err := incr.Run(ctx, eng, []string{k}, "5").Await(ctx); err != nil || fmt.Sprint(r) != fmt.Sprint(want) {
				t.Fatalf("Run on %s = %v, %v; want %d", k, r, err, want)
			}
		}
	}
	// Keys of two slots: refused unsent, by the keys as given (not the
	// server's command table, which a user denied COMMAND lacks).
	if _, err := eng.Eval(ctx, "return 1", []string{"script:1", "script:2"}).Await(ctx); !errors.Is(err, engine.ErrCrossSlot) {
		t.Fatalf("cross-slot Eval: %v, want ErrCrossSlot", err)
	}
	if _, err := eng.BLPop(ctx, time.Second, "script:1", "script:2").Await(ctx); !errors.Is(err, engine.ErrCrossSlot) {
		t.Fatalf("cross-slot BLPop: %v, want ErrCrossSlot", err)
	}
	if _, err := eng.BLMove(ctx, "script:1", "script:2", engine.Left, engine.Right, time.Second).Await(ctx); !errors.Is(err, engine.ErrCrossSlot) {
		t.Fatalf("cross-slot BLMove: %v, want ErrCrossSlot", err)
	}
	// Refused unsent (no *ServerError: the server's CROSSSLOT), as Do's
	// (qa-AN AN3).
	var se *engine.ServerError
	if _, err := eng.Rename(ctx, "script:1", "script:2").Await(ctx); !errors.Is(err, engine.ErrCrossSlot) || errors.As(err, &se) {
		t.Fatalf("cross-slot Rename: %v, want ErrCrossSlot, unsent", err)
	}
	if _, err := eng.LPush(ctx, "{q}:jobs", "j").Await(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := eng.BLMove(ctx, "{q}:jobs", "{q}:doing", engine.Right, engine.Left, time.Second).Await(ctx); err != nil || v != "j" {
		t.Fatalf("BLMove in cluster = %q, %v", v, err)
	}
	closeOutstanding(t, ctx, eng, 50000, 5*time.Second)
}

// Cluster test 5: with ReadFrom replica, reads are served by the replicas
// (INFO commandstats on the nodes) and writes by the primaries.
func TestClusterReadFromReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t)
	ctx := ctxT(t)
	// Writes first, so that the replicas' offsets move and they report
	// themselves online in CLUSTER SHARDS.
	w := clusterEngine(t, c)
	keys := make([]string, 300)
	for i := range keys {
		keys[i] = fmt.Sprintf("rk:%d", i)
		if err := w.Set(ctx, keys[i], "v", 0).Err(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := w.WaitReplicas(ctx, keys[i], 1, time.Second).Await(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Replicas show as online in CLUSTER SHARDS once gossip carries their
	// replication offsets; until then the engine reads from primaries.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		v, err := c.Nodes()[0].Do("CLUSTER", "SHARDS")
		if err == nil && strings.Count(fmt.Sprint(v), "health online") == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas never reported online: %v %v", v, err)
		}
	}
	eng, err := open(ctx, t, config.DefaultConfig().WithAddrs(c.Addrs()[0]).WithClusterMode(true).
		WithReadFrom(config.ReadFromReplica))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	fs := make([]*futures.Future[string], len(keys))
	for i, k := range keys {
		fs[i] = eng.Get(ctx, k)
	}
	for i, f := range fs {
		if v, err := f.Await(ctx); err != nil || v != "v" {
			t.Fatalf("GET %s from a replica = %q, %v", keys[i], v, err)
		}
	}
	gets := func(n *valkeytest.ClusterNode) int {
		v, err := n.Do("INFO", "commandstats")
		if err != nil {
			t.Fatal(err)
		}
		s := fmt.Sprint(v)
		var calls int
		if i := strings.Index(s, "cmdstat_get:calls="); i >= 0 {
			fmt.Sscanf(s[i+len("cmdstat_get:calls="):], "%d", &calls)
		}
		return calls
	}
	onReplicas, onPrimaries := 0, 0
	for _, r := range c.Replicas() {
		onReplicas += gets(r)
	}
	for _, p := range c.Primaries() {
		onPrimaries += gets(p)
	}
	t.Logf("GETs served: %d by replicas, %d by primaries", onReplicas, onPrimaries)
	if onReplicas < len(keys) || onPrimaries > 0 {
		t.Fatalf("GETs: %d on replicas, %d on primaries; want all %d on replicas", onReplicas, onPrimaries, len(keys))
	}
}

// Slot actors exist only while their slot needs one: a moved slot gets one
// to follow the redirects, and it stops once idle; traffic to the slot
// goes on (directly, then through a new slot actor after the next move).
func TestClusterSlotActorsStopWhenIdle(t *testing.T) {
	defer engine.SetSlotIdleTimeout(200 * time.Millisecond)()
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	key := "idle:k"
	slot, err := c.KeySlot(key)
	if err != nil {
		t.Fatal(err)
	}
	waitIdle := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for eng.Stats().SlotActors != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the slot actor did not stop within 10 s of idleness (timeout 200 ms)", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The first command may need a slot actor to dial the key's node.
	if err := eng.Set(ctx, key, "0", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	waitIdle("after the first command")
	if err := eng.Set(ctx, key, "1", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	if n := eng.Stats().SlotActors; n != 0 {
		t.Fatalf("%d slot actors after a command to a dialled node; want 0 (direct path)", n)
	}
	move := func(round int) {
		from, to := ownerAndOther(t, c, slot)
		if err := c.MigrateSlots(from, to, []int{slot}); err != nil {
			t.Fatal(err)
		}
		// The engine's map still says from: the next command is redirected
		// and its slot actor follows.
		v, err := eng.Incr(ctx, key).Await(ctx)
		answered := time.Now()
		if err != nil || v != int64(round+1) {
			t.Fatalf("INCR after move %d = %d, %v; want %d", round, v, err, round+1)
		}
		st := eng.Stats()
		// The slot actor may stop 200 ms after the INCR: on a machine that
		// paused the test that long, its count says nothing.
		if st.Redirects == 0 || (st.SlotActors != 1 && time.Since(answered) < 150*time.Millisecond) {
			t.Fatalf("after move %d: %d slot actors, %d redirects; want 1 actor following a redirect", round, st.SlotActors, st.Redirects)
		}
		waitIdle(fmt.Sprintf("after move %d", round))
	}
	move(1)
	move(2)
	if v, err := eng.Get(ctx, key).Await(ctx); err != nil || v != "3" {
		t.Fatalf("GET = %q, %v; want 3", v, err)
	}
}

// A node that leaves the slot map for good (here: a killed primary,
// replaced by its replica) has its connection actors stopped; traffic goes
// on to the rest of the cluster.
func TestClusterNodeLeaves(t *testing.T) {
	defer engine.SetNodeGoneAfter(300 * time.Millisecond)()
	c := valkeytest.StartClusterT(t)
	eng, err := open(context.Background(), t, config.DefaultConfig().WithAddrs(c.Addrs()[0]).
		WithClusterMode(true).WithClusterRefreshInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ctx := ctxT(t)
	keys := make([]string, 200)
	for i := range keys {
		keys[i] = fmt.Sprintf("leave:%d", i)
		if err := eng.Set(ctx, keys[i], "v", 0).Err(ctx); err != nil {
			t.Fatal(err)
		}
	}
	dialled := func() map[string]bool {
		m := map[string]bool{}
		for _, n := range eng.Stats().Nodes {
			m[n.Addr] = true
		}
		return m
	}
	if n := len(dialled()); n != 3 {
		t.Fatalf("%d nodes dialled after writes to every shard; want 3", n)
	}
	// The first node dialled, which once carried every keyless command,
	// is stopped like any other.
	first := eng.Stats().Nodes[0].Addr
	var victim *valkeytest.ClusterNode
	for _, p := range c.Primaries() {
		if p.Addr() == first {
			victim = p
			break
		}
	}
	if victim == nil {
		t.Fatalf("the first node dialled, %s, is not a primary", first)
	}
	if err := c.KillPrimary(victim); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitFailover(victim, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); dialled()[victim.Addr()]; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the killed node %s is still dialled 10 s after its failover: %v", victim.Addr(), eng.Stats().Nodes)
		}
	}
	for _, cs := range eng.Stats().Conns {
		if cs.Addr == victim.Addr() {
			t.Fatalf("a connection actor for the removed node %s remains", victim.Addr())
		}
	}
	for _, k := range keys {
		if err := eng.Set(ctx, k, "w", 0).Err(ctx); err != nil {
			t.Fatalf("SET %s after the node left: %v", k, err)
		}
	}
	if n := len(dialled()); n != 3 {
		t.Fatalf("%d nodes dialled after the failover; want 3 (the promoted replica replaces the killed primary)", n)
	}
}

// Scan in cluster mode yields the keys of every primary, each once.
func TestClusterScan(t *testing.T) {
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	want := map[string]bool{}
	fs := make([]*futures.Future[struct{}], 0, 1000)
	for i := range 1000 {
		k := fmt.Sprintf("scan:%d", i)
		want[k] = true
		fs = append(fs, eng.Set(ctx, k, "v", 0))
	}
	if _, err := futures.All(ctx, fs...); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for k, err := range eng.Scan(ctx, "scan:*", 100) {
		if err != nil {
			t.Fatal(err)
		}
		got[k]++
	}
	for k := range want {
		if got[k] != 1 {
			t.Fatalf("key %s yielded %d times; want once (%d keys yielded)", k, got[k], len(got))
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d keys yielded; want %d", len(got), len(want))
	}
}

// ownerAndOther returns the primary that owns slot and another primary,
// for tests that move the slot or half-move it.
func ownerAndOther(t *testing.T, c *valkeytest.Cluster, slot int) (owner, other *valkeytest.ClusterNode) {
	t.Helper()
	owner, err := c.NodeForSlot(slot)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Primaries() {
		if p != owner {
			return owner, p
		}
	}
	t.Fatalf("no primary other than %s", owner.Addr())
	return nil, nil
}

// With ReadFrom replica, a shard's reads work again after a failover: the
// former primary, now the replica reads go to, answers them on
// connections that sent READONLY. Before, only nodes that were replicas
// when first dialled had READONLY connections, and the former primary
// answered every read with MOVED until it ran out of redirects, for good.
func TestClusterReadFromReplicaAfterFailover(t *testing.T) {
	c := valkeytest.StartClusterT(t)
	ctx := ctxT(t)
	eng, err := open(ctx, t, config.DefaultConfig().WithAddrs(c.Addrs()[0]).WithClusterMode(true).
		WithReadFrom(config.ReadFromReplica))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	const key = "rf:k"
	if err := eng.Set(ctx, key, "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	slot, err := c.KeySlot(key)
	if err != nil {
		t.Fatal(err)
	}
	primary, err := c.NodeForSlot(slot)
	if err != nil {
		t.Fatal(err)
	}
	// Reads of the shard reach the primary's connections too (the
	// engine dials the replica only once it is online in the map).
	if _, err := eng.Get(ctx, key).Await(ctx); err != nil {
		t.Fatal(err)
	}
	var replica *valkeytest.ClusterNode
	for _, r := range c.Replicas() {
		role, err := r.Do("ROLE")
		if arr, ok := role.([]any); err == nil && ok && len(arr) > 2 && fmt.Sprint(arr[2]) == fmt.Sprint(primary.Port()) {
			replica = r
		}
	}
	if replica == nil {
		t.Fatalf("no replica of %s", primary.Addr())
	}
	if err := c.Failover(replica); err != nil {
		t.Fatal(err)
	}
	// Once the engine's map shows the failover, every read works.
	const want = 20
	streak := 0
	var last error
	for deadline := time.Now().Add(20 * time.Second); streak < want; {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		v, err := eng.Get(rctx, key).Await(rctx)
		cancel()
		if err != nil || v != "v" {
			streak, last = 0, err
			if time.Now().After(deadline) {
				t.Fatalf("GET %s still fails 20 s after the failover of %s to %s: %v", key, primary.Addr(), replica.Addr(), last)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		streak++
	}
}
