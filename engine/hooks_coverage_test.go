package engine_test

// Which commands reach the command hooks (PreExecution, PostExecution):
// every public path that sends a command, and what each reports (the
// table in docs/hooks-observability.md, "Which commands reach the command
// hooks").

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/valkeytest"
)

// coverage reads a recHook's command events step by step.
type coverage struct {
	t   *testing.T
	rec *recHook
}

// take waits until every command fired since the previous take has
// completed (as many PostExecution events as PreExecution calls, at least
// want; up to 10 s, then it takes what came), checks that as many
// commands reached PreExecution as PostExecution, each event with a
// positive duration, and returns the events since the previous take.
func (c *coverage) take(what string, want int) []hooks.Executed {
	c.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var done bool
		c.rec.with(func() { done = len(c.rec.executed) >= want && len(c.rec.executed) == len(c.rec.fired) })
		if done {
			break
		}
	}
	var evs []hooks.Executed
	c.rec.with(func() {
		evs = slices.Clone(c.rec.executed)
		var fired []string
		for _, f := range c.rec.fired {
			fired = append(fired, f.Name)
		}
		if len(fired) != len(evs) {
			c.t.Errorf("%s: PreExecution for %v, PostExecution for %d commands", what, fired, len(evs))
		}
		for _, ev := range evs {
			if ev.Duration <= 0 {
				c.t.Errorf("%s: %s: Duration %v", what, ev.Name, ev.Duration)
			}
		}
		// The next step starts from nothing, whatever this one saw.
		c.rec.executed, c.rec.execCtx, c.rec.fired = nil, nil, nil
	})
	return evs
}

// step takes the step's events (take) and checks that they are exactly
// want ("NAME@node", in any order: a split command's parts complete in
// any order).
func (c *coverage) step(what string, want ...string) []hooks.Executed {
	c.t.Helper()
	evs := c.take(what, len(want))
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Name+"@"+ev.Node)
	}
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		c.t.Errorf("%s: command hooks saw %v, want %v", what, got, want)
	}
	return evs
}

// at names each command as sent to node.
func at(node string, names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + "@" + node
	}
	return out
}

func mustNoErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

var errStopWatch = errors.New("stop the watch")

// Standalone: each command a user issues reaches PreExecution and
// PostExecution once, named as sent, on the server's address; the
// commands the engine sends for its own framing (MULTI, EXEC, WATCH,
// UNWATCH, a Dedicated's RESET) and those of the batch writer, stream
// consumers and subscriptions do not.
func TestHooksCoverageStandalone(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{})
	rec := &recHook{}
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithPoolSize(2).WithHooks(rec))
	defer eng.Close()
	ctx := ctxT(t)
	node := srv.Addr()
	cv := &coverage{t: t, rec: rec}

	mustNoErr(t, "SET", eng.Set(ctx, "cov:s", "1", 0).Err(ctx))
	_, err := eng.Do(ctx, "GET", "cov:s").Await(ctx)
	mustNoErr(t, "Do GET", err)
	cv.step("a typed command and Do", at(node, "SET", "GET")...)

	p := eng.Pipeline()
	p.Incr("cov:n")
	p.Do("LPUSH", "cov:n", "x") // one key: one connection actor, one pipeline
	mustNoErr(t, "Pipeline.Exec", p.Exec(ctx))
	evs := cv.step("a pipeline", at(node, "INCR", "LPUSH")...)
	for _, ev := range evs {
		if ev.Pipeline == 0 || ev.Pipeline != evs[0].Pipeline {
			t.Errorf("pipeline's %s: pipeline %d, want the same as %s's (%d)", ev.Name, ev.Pipeline, evs[0].Name, evs[0].Pipeline)
		}
		var se *engine.ServerError
		if (ev.Name == "LPUSH") != errors.As(ev.Err, &se) {
			t.Errorf("pipeline's %s: Err %v", ev.Name, ev.Err)
		}
	}

	tx := eng.Tx()
	tx.Incr("cov:n")
	tx.Get("cov:s")
	mustNoErr(t, "Tx.Exec", tx.Exec(ctx))
	for _, ev := range cv.step("a transaction: its commands, not MULTI and EXEC", at(node, "INCR", "GET")...) {
		if ev.PipelineSize != 4 || ev.Err != nil {
			t.Errorf("transaction's %s: pipeline size %d (want 4: MULTI, 2 commands, EXEC), Err %v", ev.Name, ev.PipelineSize, ev.Err)
		}
	}

	mustNoErr(t, "Watch", eng.Watch(ctx, func(tx *engine.Tx) error {
		if _, err := tx.Read().Get(ctx, "cov:n"); err != nil {
			return err
		}
		tx.Incr("cov:n")
		return nil
	}, "cov:n"))
	cv.step("a Watch: its read and its queued command, not WATCH, MULTI, EXEC", at(node, "GET", "INCR")...)
	if err := eng.Watch(ctx, func(tx *engine.Tx) error {
		if _, err := tx.Read().Do(ctx, "GET", "cov:n"); err != nil {
			return err
		}
		return errStopWatch
	}, "cov:n"); !errors.Is(err, errStopWatch) {
		t.Fatalf("Watch: %v, want the function's error", err)
	}
	cv.step("a Watch whose function failed: its read, not WATCH and UNWATCH", at(node, "GET")...)

	mustNoErr(t, "Dedicated", eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		if _, err := c.Do(ctx, "SELECT", "1"); err != nil {
			return err
		}
		_, err := c.DoMulti(ctx, []string{"PING"}, []string{"GET", "cov:s"})
		return err
	}))
	cv.step("a Dedicated: its commands, not the RESET that ends it", at(node, "SELECT", "PING", "GET")...)

	if _, err := eng.Do(ctx, "BLPOP", "cov:l", "0.01").Await(ctx); err != nil && !errors.Is(err, engine.ErrNil) {
		t.Fatalf("BLPOP: %v", err)
	}
	cv.step("a blocking command", at(node, "BLPOP")...)

	_, err = eng.ScanPage(ctx, 0, "cov:*", 0).Await(ctx)
	mustNoErr(t, "ScanPage", err)
	cv.step("ScanPage", at(node, "SCAN")...)
	pages := 0
	for _, err := range eng.Scan(ctx, "cov:*", 1) {
		mustNoErr(t, "Scan", err)
	}
	for _, ev := range cv.take("Scan", 1) {
		if ev.Name != "SCAN" || ev.Node != node {
			t.Errorf("Scan: %s@%s reached the hooks", ev.Name, ev.Node)
		}
		pages++
	}
	if pages == 0 {
		t.Error("Scan: no SCAN reached the hooks")
	}

	// No script helper retries EVALSHA: its NOSCRIPT is one event, and
	// the caller's SCRIPT LOAD and second EVALSHA are events of their own.
	const script = "return 1"
	sum := sha1.Sum([]byte(script))
	sha := hex.EncodeToString(sum[:])
	_, err = eng.Do(ctx, "EVALSHA", sha, "0").Await(ctx)
	var se *engine.ServerError
	if !errors.As(err, &se) || se.Prefix != "NOSCRIPT" {
		t.Fatalf("EVALSHA of a script not loaded: %v, want NOSCRIPT", err)
	}
	evs = cv.step("EVALSHA of a script not loaded", at(node, "EVALSHA")...)
	if len(evs) == 1 && !errors.As(evs[0].Err, &se) {
		t.Errorf("EVALSHA's Err %v, want the NOSCRIPT reply", evs[0].Err)
	}
	_, err = eng.ScriptLoad(ctx, script).Await(ctx)
	mustNoErr(t, "ScriptLoad", err)
	_, err = eng.Do(ctx, "EVALSHA", sha, "0").Await(ctx)
	mustNoErr(t, "EVALSHA", err)
	cv.step("ScriptLoad and EVALSHA", at(node, "SCRIPT", "EVALSHA")...)

	_, err = eng.Publish(ctx, "cov:ch", "m").Await(ctx)
	mustNoErr(t, "Publish", err)
	_, err = eng.SPublish(ctx, "cov:ch", "m").Await(ctx)
	mustNoErr(t, "SPublish", err)
	cv.step("Publish and SPublish", at(node, "PUBLISH", "SPUBLISH")...)

	mustNoErr(t, "Ping", eng.Ping(ctx))
	cv.step("Ping: one per connection actor", at(node, "PING", "PING")...)

	_, err = eng.XAdd(ctx, "cov:x", "f", "v").Await(ctx)
	mustNoErr(t, "XADD", err)
	cv.step("XAdd", at(node, "XADD")...)

	// The engine's own commands for a BatchWriter, a stream consumer and
	// a subscription: none reaches the command hooks, Consume's first
	// XGROUP CREATE included (before, it was reported as XGroupCreate's,
	// with a BUSYGROUP error when the group existed: the second Consume).
	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{})
	mustNoErr(t, "NewBatchWriter", err)
	mustNoErr(t, "BatchWriter.Set", w.Set(ctx, "cov:w", "1", 0))
	mustNoErr(t, "BatchWriter.Write", w.Write(ctx, "INCR", "cov:wn"))
	mustNoErr(t, "BatchWriter.Close", w.Close(ctx))
	acked := make(chan struct{}, 1)
	c, err := eng.Consume(ctx, "cov:x", "cov:g", "cov:c", func(context.Context, engine.XEntry) error {
		select {
		case acked <- struct{}{}:
		default:
		}
		return nil
	}, engine.ConsumeOptions{StartID: "0", Block: 10 * time.Millisecond})
	mustNoErr(t, "Consume", err)
	<-acked
	csWait(t, 10*time.Second, "the entry acknowledged", func() bool { return c.Stats().Acked == 1 })
	mustNoErr(t, "Consumer.Close", c.Close())
	c, err = eng.Consume(ctx, "cov:x", "cov:g", "cov:c", func(context.Context, engine.XEntry) error { return nil },
		engine.ConsumeOptions{Block: 10 * time.Millisecond})
	mustNoErr(t, "Consume of an existing group", err)
	mustNoErr(t, "Consumer.Close", c.Close())
	sub, err := eng.Subscribe(ctx, "cov:ch")
	mustNoErr(t, "Subscribe", err)
	mustNoErr(t, "Subscription.Subscribe", sub.Subscribe(ctx, "cov:ch2"))
	mustNoErr(t, "Subscription.Unsubscribe", sub.Unsubscribe(ctx, "cov:ch"))
	mustNoErr(t, "Subscription.Close", sub.Close())
	// One more command, whose event comes after any the above made.
	mustNoErr(t, "GET", eng.Get(ctx, "cov:w").Err(ctx))
	cv.step("a batch writer, two stream consumers and a subscription (then a GET)", at(node, "GET")...)

	// Commands whose ctx ended before they were sent: each reaches the
	// hooks once, failed with ctx's error, on every path (before, those
	// of a Pipeline's or a Tx's Exec and a DedicatedConn's reached none).
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if err := eng.Get(ended, "cov:s").Err(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("GET with an ended ctx: %v", err)
	}
	p = eng.Pipeline()
	p.Get("cov:s")
	p.Incr("cov:n")
	if err := p.Exec(ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("Pipeline.Exec with an ended ctx: %v", err)
	}
	tx = eng.Tx()
	tx.Incr("cov:n")
	if err := tx.Exec(ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("Tx.Exec with an ended ctx: %v", err)
	}
	mustNoErr(t, "Dedicated", eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		if _, err := c.Do(ended, "GET", "cov:s"); !errors.Is(err, context.Canceled) {
			t.Errorf("DedicatedConn.Do with an ended ctx: %v", err)
		}
		if _, err := c.DoMulti(ended, []string{"PING"}, []string{"GET", "cov:s"}); !errors.Is(err, context.Canceled) {
			t.Errorf("DedicatedConn.DoMulti with an ended ctx: %v", err)
		}
		return nil
	}))
	// Nothing carried the shared connections' commands (Node ""); a
	// DedicatedConn's are on its own connection's node, as a blocking
	// command's.
	want := append(at("", "GET", "GET", "INCR", "INCR"), at(node, "GET", "PING", "GET")...)
	for _, ev := range cv.step("commands whose ctx had ended", want...) {
		if !errors.Is(ev.Err, context.Canceled) {
			t.Errorf("%s with an ended ctx: Err %v, want context.Canceled", ev.Name, ev.Err)
		}
	}

	// Commands refused, unsent, on a connection that failed earlier (here
	// a BLPOP whose ctx ended while it blocked): each reaches the hooks
	// once, failed with the call's error, on the connection's node (before,
	// a DedicatedConn's and a Watch read's reached none).
	refusedErrs := map[string]error{}
	_ = eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if _, err := c.Do(short, "BLPOP", "cov:none", "2"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("DedicatedConn BLPOP past its ctx: %v, want context.DeadlineExceeded", err)
		}
		var err error
		if _, err = c.Do(ctx, "GET", "cov:s"); err == nil {
			t.Error("DedicatedConn.Do on a failed connection: no error")
		}
		refusedErrs["dedicated"] = err
		if _, err := c.DoMulti(ctx, []string{"PING"}, []string{"GET", "cov:s"}); err == nil {
			t.Error("DedicatedConn.DoMulti on a failed connection: no error")
		}
		return nil
	})
	_ = eng.Watch(ctx, func(tx *engine.Tx) error {
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if _, err := tx.Read().Do(short, "BLPOP", "cov:none", "2"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Watch read BLPOP past its ctx: %v, want context.DeadlineExceeded", err)
		}
		var err error
		if _, err = tx.Read().Get(ctx, "cov:n"); err == nil {
			t.Error("Watch read on a failed connection: no error")
		}
		refusedErrs["watch"] = err
		return nil
	}, "cov:n")
	evs = cv.step("commands refused on a connection that failed earlier", at(node, "BLPOP", "GET", "PING", "GET", "BLPOP", "GET")...)
	for _, ev := range evs {
		if ev.Err == nil {
			t.Errorf("%s refused on a failed connection: no Err", ev.Name)
		}
		if ev.Name == "BLPOP" && !errors.Is(ev.Err, context.DeadlineExceeded) {
			t.Errorf("BLPOP past its ctx: Err %v, want context.DeadlineExceeded", ev.Err)
		}
	}
	for what, err := range refusedErrs {
		if err == nil {
			continue
		}
		found := false
		for _, ev := range evs {
			found = found || (ev.Name == "GET" && ev.Err != nil && ev.Err.Error() == err.Error())
		}
		if !found {
			t.Errorf("%s: no GET event carries the refusal %q", what, err)
		}
	}
}

// Cluster mode: a multi-key command whose keys span slots is reported
// once per slot's part, each on the node that served it (as a Pipeline's);
// ScriptLoad once per primary, Ping once per connection; the slot-map
// loads are not (before, a load read through a connection actor reached
// PreExecution and PostExecution as CLUSTER SHARDS, every reload, every
// 250 ms while a primary was down).
func TestHooksCoverageCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c, rec, _, _, eng := hookedCluster(t)
	defer eng.Close()
	ctx := ctxT(t)
	cv := &coverage{t: t, rec: rec}

	// One key per primary (hash tags, so that a key's list is on its node).
	primaries := c.Primaries()
	keys := make([]string, len(primaries))
	nodes := make([]string, len(primaries))
	for i, found := 0, 0; found < len(primaries); i++ {
		k := fmt.Sprintf("{cov%d}", i)
		slot, err := c.KeySlot(k)
		mustNoErr(t, "KEYSLOT", err)
		n, err := c.NodeForSlot(slot)
		mustNoErr(t, "slot owner", err)
		j := slices.Index(primaries, n)
		if j >= 0 && keys[j] == "" {
			keys[j], nodes[j] = k, n.Addr()
			found++
		}
	}
	var each []string // one command per primary
	for i, k := range keys {
		mustNoErr(t, "SET", eng.Set(ctx, k, "v", 0).Err(ctx))
		each = append(each, "SET@"+nodes[i])
	}
	cv.step("a SET per primary", each...)
	perNode := func(name string) []string {
		var out []string
		for _, n := range nodes {
			out = append(out, name+"@"+n)
		}
		return out
	}

	_, err := eng.Do(ctx, "GET", keys[1]).Await(ctx)
	mustNoErr(t, "Do GET", err)
	cv.step("Do", "GET@"+nodes[1])

	vs, err := eng.MGet(ctx, keys...).Await(ctx)
	if err != nil || len(vs) != len(keys) {
		t.Fatalf("MGET across slots: %v, %v", vs, err)
	}
	cv.step("MGET across slots: one per slot", perNode("MGET")...)
	kv := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		kv = append(kv, k, "w")
	}
	mustNoErr(t, "MSET", eng.MSet(ctx, kv...).Err(ctx))
	cv.step("MSET across slots", perNode("MSET")...)
	n, err := eng.Exists(ctx, keys...).Await(ctx)
	if err != nil || n != int64(len(keys)) {
		t.Fatalf("EXISTS across slots: %d, %v", n, err)
	}
	cv.step("EXISTS across slots", perNode("EXISTS")...)

	p := eng.Pipeline()
	p.Get(keys[0])
	p.MGet(keys...)
	mustNoErr(t, "Pipeline.Exec", p.Exec(ctx))
	cv.step("a pipeline with an MGET across slots", append(perNode("MGET"), "GET@"+nodes[0])...)

	// The same pipeline with a ctx that had ended: every command, each
	// part of the split one included, reaches the hooks once, failed
	// (before, the split command reached none).
	ended, cancel := context.WithCancel(ctx)
	cancel()
	p = eng.Pipeline()
	get := p.Get(keys[0])
	mget := p.MGet(keys...)
	if err := p.Exec(ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("Pipeline.Exec with an ended ctx: %v", err)
	}
	if err := get.Err(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("GET of a pipeline with an ended ctx: %v", err)
	}
	if _, err := mget.Await(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("MGET across slots of a pipeline with an ended ctx: %v", err)
	}
	endedWant := []string{"GET@"}
	for range nodes {
		endedWant = append(endedWant, "MGET@")
	}
	for _, ev := range cv.step("a pipeline with an MGET across slots, ctx ended", endedWant...) {
		if !errors.Is(ev.Err, context.Canceled) {
			t.Errorf("%s with an ended ctx: Err %v, want context.Canceled", ev.Name, ev.Err)
		}
	}

	tx := eng.Tx()
	tx.Incr(keys[2] + ":n")
	mustNoErr(t, "Tx.Exec", tx.Exec(ctx))
	cv.step("a transaction", "INCR@"+nodes[2])

	mustNoErr(t, "Watch", eng.Watch(ctx, func(tx *engine.Tx) error {
		if _, err := tx.Read().Get(ctx, keys[0]); err != nil {
			return err
		}
		tx.Set(keys[0], "x", 0)
		return nil
	}, keys[0]))
	cv.step("a Watch", at(nodes[0], "GET", "SET")...)

	if _, err := eng.Do(ctx, "BLPOP", keys[1]+":l", "0.01").Await(ctx); err != nil && !errors.Is(err, engine.ErrNil) {
		t.Fatalf("BLPOP: %v", err)
	}
	cv.step("a blocking command", "BLPOP@"+nodes[1])

	// Consume's XGROUP CREATE, routed by the stream's slot, is the
	// engine's own command.
	cons, err := eng.Consume(ctx, keys[1]+":x", "g", "c", func(context.Context, engine.XEntry) error { return nil },
		engine.ConsumeOptions{Block: 10 * time.Millisecond})
	mustNoErr(t, "Consume", err)
	mustNoErr(t, "Consumer.Close", cons.Close())
	if n, err := eng.XLen(ctx, keys[1]+":x").Await(ctx); err != nil || n != 0 {
		t.Fatalf("XLEN of the stream Consume created: %d, %v", n, err)
	}
	cv.step("a stream consumer (then an XLEN)", "XLEN@"+nodes[1])

	// Every primary is dialled: a load asks one through its connection
	// actor. The engine's own command is no user's.
	for range 3 {
		mustNoErr(t, "ReloadSlotMap", engine.ReloadSlotMap(ctx, eng))
	}
	mustNoErr(t, "GET", eng.Get(ctx, keys[2]).Err(ctx))
	cv.step("three slot-map loads (then a GET)", "GET@"+nodes[2])

	_, err = eng.ScriptLoad(ctx, "return 2").Await(ctx)
	mustNoErr(t, "ScriptLoad", err)
	cv.step("ScriptLoad: on every primary", perNode("SCRIPT")...)

	chSlot, err := c.KeySlot("cov:ch")
	mustNoErr(t, "KEYSLOT", err)
	chNode, err := c.NodeForSlot(chSlot)
	mustNoErr(t, "slot owner", err)
	_, err = eng.SPublish(ctx, "cov:ch", "m").Await(ctx)
	mustNoErr(t, "SPublish", err)
	cv.step("SPublish", "SPUBLISH@"+chNode.Addr())
	// PUBLISH has no key: it goes to a primary (any: the cluster
	// forwards it to every node).
	_, err = eng.Publish(ctx, "cov:ch", "m").Await(ctx)
	mustNoErr(t, "Publish", err)
	if evs := cv.take("Publish", 1); len(evs) != 1 || evs[0].Name != "PUBLISH" || !slices.Contains(nodes, evs[0].Node) {
		t.Errorf("Publish: %+v reached the hooks, want one PUBLISH on a primary", evs)
	}

	mustNoErr(t, "Ping", eng.Ping(ctx))
	pinged := map[string]int{}
	for _, ev := range cv.take("Ping", len(nodes)) {
		if ev.Name != "PING" || ev.Err != nil {
			t.Errorf("Ping: %s@%s (%v) reached the hooks", ev.Name, ev.Node, ev.Err)
		}
		pinged[ev.Node]++
	}
	for _, n := range nodes {
		if pinged[n] == 0 {
			t.Errorf("Ping: no PING of %s reached the hooks: %v", n, pinged)
		}
	}
}

// Cluster mode, a slot no node serves in the engine's slot map (a map
// that leaves half the slots unassigned): a command on it fails with
// ErrNoSlotOwner and reaches the hooks once, failed, on no node; a
// blocking command too (before, it reached none).
func TestHooksCoverageNoSlotOwner(t *testing.T) {
	srv, served, orphan := halfSlotsServer(t)
	rec := &recHook{}
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithClusterMode(true).WithHooks(rec))
	ctx := ctxT(t)
	cv := &coverage{t: t, rec: rec}
	mustNoErr(t, "GET of a served slot", eng.Get(ctx, served).Err(ctx))
	cv.step("GET of a served slot", "GET@"+srv.Addr())

	if err := eng.Get(ctx, orphan).Err(ctx); !errors.Is(err, engine.ErrNoSlotOwner) {
		t.Fatalf("GET of a slot no node serves: %v, want ErrNoSlotOwner", err)
	}
	if _, err := eng.Do(ctx, "BLPOP", orphan, "1").Await(ctx); !errors.Is(err, engine.ErrNoSlotOwner) {
		t.Fatalf("BLPOP of a slot no node serves: %v, want ErrNoSlotOwner", err)
	}
	for _, ev := range cv.step("GET and BLPOP of a slot no node serves", "GET@", "BLPOP@") {
		if !errors.Is(ev.Err, engine.ErrNoSlotOwner) {
			t.Errorf("%s: Err %v, want ErrNoSlotOwner", ev.Name, ev.Err)
		}
	}
}
