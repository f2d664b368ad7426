package engine_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// A user-side audit of cluster mode through the public API: multi-key
// commands over several slots (typed, Do, pipelines, Tx), keyless
// commands through Do, unusual keys, and bad seeds. One cluster serves
// every subtest of TestAuditCluster.

// auditKeys returns n keys, each in a slot of its own.
func auditKeys(t *testing.T, eng *engine.Engine, prefix string, n int) []string {
	t.Helper()
	seen := map[int]bool{}
	var keys []string
	for i := 0; len(keys) < n; i++ {
		k := fmt.Sprintf("%s:%d", prefix, i)
		s := valkeytest.HashSlot(k)
		if seen[s] {
			continue
		}
		seen[s] = true
		keys = append(keys, k)
	}
	return keys
}

func TestAuditCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	// A long node timeout: ScanFrozenNode pauses a primary, and no
	// failover must follow.
	c := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{NodeTimeout: 15 * time.Second})
	eng := clusterEngine(t, c)
	ctx := ctxT(t)

	// MGET, MSET, DEL, EXISTS and UNLINK over keys of several slots are
	// split and merged in key order, duplicates included.
	t.Run("TypedMultiKeySplit", func(t *testing.T) {
		keys := auditKeys(t, eng, "audit:split", 6)
		a, b := keys[0], keys[1]
		// A key named twice: MSET's last value wins, as on one node.
		if _, err := eng.MSet(ctx, a, "1", b, "2", a, "3").Await(ctx); err != nil {
			t.Fatal(err)
		}
		vals, err := eng.MGet(ctx, b, a, keys[2], a).Await(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"2", "3", "<nil>", "3"}
		for i, v := range vals {
			got := "<nil>"
			if v != nil {
				got = *v
			}
			if got != want[i] {
				t.Fatalf("MGET entry %d = %s, want %s (all %v)", i, got, want[i], want)
			}
		}
		if n, err := eng.Exists(ctx, a, b, a, keys[3]).Await(ctx); err != nil || n != 3 {
			t.Fatalf("EXISTS a b a missing = %d, %v; want 3", n, err)
		}
		if n, err := eng.Del(ctx, a, keys[4], b).Await(ctx); err != nil || n != 2 {
			t.Fatalf("DEL = %d, %v; want 2", n, err)
		}
		if _, err := eng.MSet(ctx, keys[4], "x", keys[5], "y").Await(ctx); err != nil {
			t.Fatal(err)
		}
		if n, err := eng.Unlink(ctx, keys[4], keys[5], a).Await(ctx); err != nil || n != 2 {
			t.Fatalf("UNLINK = %d, %v; want 2", n, err)
		}
	})

	// The empty key is a key (slot 0): commands on it go straight to
	// slot 0's primary, not to the primaries in turn and then redirected.
	t.Run("EmptyKeyRoutedBySlot", func(t *testing.T) {
		defer func() { _, _ = eng.Del(ctx, "").Await(ctx) }()
		before := eng.Stats().Redirects
		for i := range 12 {
			v := strconv.Itoa(i)
			if _, err := eng.Set(ctx, "", v, 0).Await(ctx); err != nil {
				t.Fatal(err)
			}
			if got, err := eng.Get(ctx, "").Await(ctx); err != nil || got != v {
				t.Fatalf("GET \"\" = %q, %v; want %q", got, err, v)
			}
			if got, err := eng.Do(ctx, "GET", "").Await(ctx); err != nil {
				t.Fatal(err)
			} else if s, _ := got.String(); s != v {
				t.Fatalf("Do GET \"\" = %q; want %q", s, v)
			}
		}
		if n := eng.Stats().Redirects - before; n != 0 {
			t.Fatalf("%d commands on the empty key were redirected, want 0 (routed by slot 0)", n)
		}
	})

	// Other commands whose keys span slots fail with ErrCrossSlot: typed
	// ones unsent (Rename: qa-AN AN3; it had the server's CROSSSLOT
	// reply), Do unsent.
	t.Run("CrossSlotTypedError", func(t *testing.T) {
		keys := auditKeys(t, eng, "audit:xs", 2)
		if _, err := eng.Set(ctx, keys[0], "v", 0).Await(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := eng.Rename(ctx, keys[0], keys[1]).Await(ctx)
		if !errors.Is(err, engine.ErrCrossSlot) {
			t.Fatalf("RENAME over two slots: %v, want ErrCrossSlot", err)
		}
		var se *engine.ServerError
		if errors.As(err, &se) {
			t.Fatalf("RENAME over two slots: %v, want it refused unsent", err)
		}
		for _, args := range [][]string{
			{"MGET", keys[0], keys[1]},
			{"SUNIONSTORE", keys[0], keys[1]},
			{"EVAL", "return 1", "2", keys[0], keys[1]},
			{"MSETNX", keys[0], "a", keys[1], "b"},
		} {
			_, err := eng.Do(ctx, args[0], args[1:]...).Await(ctx)
			if !errors.Is(err, engine.ErrCrossSlot) {
				t.Fatalf("Do %v: %v, want ErrCrossSlot", args, err)
			}
		}
		// The same through a hash tag works.
		if _, err := eng.Do(ctx, "MSETNX", "{audit:t}a", "1", "{audit:t}b", "2").Await(ctx); err != nil {
			t.Fatalf("MSETNX with a hash tag: %v", err)
		}
	})

	// A pipeline splits its MGET/MSET/DEL/EXISTS over several slots, fails
	// only a cross-slot Do, and runs the rest.
	t.Run("PipelineCrossSlot", func(t *testing.T) {
		keys := auditKeys(t, eng, "audit:pipe", 4)
		p := eng.Pipeline()
		mset := p.MSet(keys[0], "a", keys[1], "b", keys[2], "c")
		mget := p.MGet(keys[2], keys[0], keys[3], keys[1])
		ex := p.Exists(keys[0], keys[1], keys[3])
		bad := p.Do("SUNION", keys[0], keys[1])
		get := p.Get(keys[1])
		del := p.Del(keys[0], keys[1], keys[2], keys[3])
		// Exec reports the rejected Do (the others run).
		if err := p.Exec(ctx); !errors.Is(err, engine.ErrCrossSlot) {
			t.Fatalf("Exec: %v, want the cross-slot Do's ErrCrossSlot", err)
		}
		if _, err := mset.Await(ctx); err != nil {
			t.Fatal(err)
		}
		vals, err := mget.Await(ctx)
		if err != nil || len(vals) != 4 || vals[0] == nil || *vals[0] != "c" || vals[1] == nil || *vals[1] != "a" || vals[2] != nil || vals[3] == nil || *vals[3] != "b" {
			t.Fatalf("pipelined MGET = %v, %v", vals, err)
		}
		if n, err := ex.Await(ctx); err != nil || n != 2 {
			t.Fatalf("pipelined EXISTS = %d, %v; want 2", n, err)
		}
		if _, err := bad.Await(ctx); !errors.Is(err, engine.ErrCrossSlot) {
			t.Fatalf("pipelined cross-slot Do: %v, want ErrCrossSlot", err)
		}
		if v, err := get.Await(ctx); err != nil || v != "b" {
			t.Fatalf("pipelined GET = %q, %v", v, err)
		}
		if n, err := del.Await(ctx); err != nil || n != 3 {
			t.Fatalf("pipelined DEL = %d, %v; want 3", n, err)
		}
	})

	// The pipeline's later typed commands in cluster mode: UNLINK over
	// several slots split, RENAME and an EVAL across slots refused unsent
	// (Exec returns the first), LMOVE in one slot, PUBLISH and SPUBLISH
	// by their channel's slot, a Tx's PUBLISH with its keys' node.
	t.Run("PipelineTwinsCrossSlot", func(t *testing.T) {
		keys := auditKeys(t, eng, "audit:twins", 3)
		for _, k := range keys {
			if _, err := eng.Set(ctx, k, "v", 0).Await(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := eng.RPush(ctx, "{audit:tw}l", "x", "y").Await(ctx); err != nil {
			t.Fatal(err)
		}
		p := eng.Pipeline()
		ren := p.Rename(keys[0], keys[1])
		eval := p.Eval("return 1", []string{keys[0], keys[1]})
		move := p.LMove("{audit:tw}l", "{audit:tw}m", engine.Left, engine.Right)
		pub := p.Publish("audit:ch", "m")
		spub := p.SPublish("audit:ch", "m")
		unl := p.Unlink(keys...)
		if err := p.Exec(ctx); !errors.Is(err, engine.ErrCrossSlot) {
			t.Fatalf("Exec: %v, want the cross-slot Rename's ErrCrossSlot", err)
		}
		for name, f := range map[string]interface{ Err(context.Context) error }{"Rename": ren, "Eval": eval} {
			if err := f.Err(ctx); !errors.Is(err, engine.ErrCrossSlot) {
				t.Errorf("pipelined cross-slot %s: %v, want ErrCrossSlot", name, err)
			}
		}
		if v, err := move.Await(ctx); err != nil || v != "x" {
			t.Errorf("pipelined LMove in one slot = %q, %v", v, err)
		}
		for name, f := range map[string]*futures.Future[int64]{"Publish": pub, "SPublish": spub} {
			if n, err := f.Await(ctx); err != nil || n != 0 {
				t.Errorf("pipelined %s = %d, %v; want 0 receivers", name, n, err)
			}
		}
		if n, err := unl.Await(ctx); err != nil || n != 3 {
			t.Errorf("pipelined Unlink over three slots = %d, %v; want 3 (Rename not sent)", n, err)
		}
		tx := eng.Tx()
		push := tx.RPush("{audit:tw}q", "a")
		txPub := tx.Publish("audit:ch", "m")
		if err := tx.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if n, err := push.Await(ctx); err != nil || n != 1 {
			t.Errorf("Tx RPush = %d, %v", n, err)
		}
		if n, err := txPub.Await(ctx); err != nil || n != 0 {
			t.Errorf("Tx Publish = %d, %v", n, err)
		}
	})

	// A transaction over several slots sends nothing and fails with
	// ErrCrossSlot; with a hash tag it runs.
	t.Run("TxCrossSlot", func(t *testing.T) {
		keys := auditKeys(t, eng, "audit:tx", 2)
		tx := eng.Tx()
		s1 := tx.Set(keys[0], "1", 0)
		s2 := tx.Set(keys[1], "2", 0)
		if err := tx.Exec(ctx); !errors.Is(err, engine.ErrCrossSlot) {
			t.Fatalf("Tx over two slots: %v, want ErrCrossSlot", err)
		}
		for _, f := range []interface{ Err(context.Context) error }{s1, s2} {
			if err := f.Err(ctx); err == nil {
				t.Fatal("a command of a refused transaction succeeded")
			}
		}
		if n, err := eng.Exists(ctx, keys...).Await(ctx); err != nil || n != 0 {
			t.Fatalf("EXISTS after a refused transaction = %d, %v; want 0 (nothing sent)", n, err)
		}
		tx = eng.Tx()
		tx.Set("{audit:tx}a", "1", 0)
		inc := tx.Incr("{audit:tx}b")
		mg := tx.MGet("{audit:tx}a", "{audit:tx}b")
		if err := tx.Exec(ctx); err != nil {
			t.Fatalf("Tx with a hash tag: %v", err)
		}
		if n, err := inc.Await(ctx); err != nil || n != 1 {
			t.Fatalf("INCR in Tx = %d, %v", n, err)
		}
		if v, err := mg.Await(ctx); err != nil || len(v) != 2 || v[0] == nil || *v[0] != "1" {
			t.Fatalf("MGET in Tx = %v, %v", v, err)
		}
	})

	// Keyless commands through Do go to a primary and answer sensibly.
	t.Run("KeylessDo", func(t *testing.T) {
		for _, args := range [][]string{
			{"PING"}, {"DBSIZE"}, {"KEYS", "audit:nomatch:*"}, {"INFO", "server"},
			{"CLIENT", "ID"}, {"CLIENT", "INFO"}, {"TIME"}, {"LASTSAVE"},
			{"PUBLISH", "audit:chan", "m"}, {"SPUBLISH", "audit:chan", "m"},
			{"WAIT", "0", "10"}, {"SCAN", "0"}, {"CLUSTER", "INFO"},
			{"COMMAND", "COUNT"}, {"RANDOMKEY"},
		} {
			r, err := eng.Do(ctx, args[0], args[1:]...).Await(ctx)
			if err != nil {
				t.Fatalf("Do %v: %v", args, err)
			}
			switch args[0] {
			case "PING":
				if s, _ := r.String(); s != "PONG" {
					t.Fatalf("PING = %q", s)
				}
			case "DBSIZE", "PUBLISH", "SPUBLISH", "WAIT", "CLIENT ID", "COMMAND":
				if _, err := r.Int64(); err != nil {
					t.Fatalf("Do %v: not an integer: %v", args, err)
				}
			}
		}
		// SCRIPT LOAD then EVALSHA of a key: the script must be loaded on
		// the key's node; the engine tells NOSCRIPT apart as a
		// *ServerError when it is not.
		r, err := eng.Do(ctx, "SCRIPT", "LOAD", "return 7").Await(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sha, _ := r.String()
		if len(sha) != 40 {
			t.Fatalf("SCRIPT LOAD = %q", sha)
		}
		for i := range 6 {
			r, err := eng.Do(ctx, "EVALSHA", sha, "0").Await(ctx)
			var se *engine.ServerError
			switch {
			case err == nil:
				if n, _ := r.Int64(); n != 7 {
					t.Fatalf("EVALSHA #%d = %v", i, r)
				}
			case errors.As(err, &se) && se.Prefix == "NOSCRIPT":
			default:
				t.Fatalf("EVALSHA #%d: %v, want 7 or NOSCRIPT", i, err)
			}
		}
		if r, err := eng.Do(ctx, "EVAL", "return 8", "0").Await(ctx); err != nil {
			t.Fatal(err)
		} else if n, _ := r.Int64(); n != 8 {
			t.Fatalf("EVAL 0 keys = %v", r)
		}
		// SPUBLISH routes by its shard channel: the channel's node.
		if _, err := eng.Do(ctx, "SPUBLISH", "{audit}ch", "x").Await(ctx); err != nil {
			t.Fatal(err)
		}
	})

	// ScriptLoad loads the script on every primary (SCRIPT LOAD through Do
	// reaches one), so EVALSHA of a key on any node finds it.
	t.Run("ScriptLoadEveryPrimary", func(t *testing.T) {
		const script = "return {KEYS[1], 'script-load-every-primary'}"
		sha, err := eng.ScriptLoad(ctx, script).Await(ctx)
		if err != nil || len(sha) != 40 {
			t.Fatalf("ScriptLoad = %q, %v", sha, err)
		}
		for _, p := range c.Primaries() {
			if got, err := p.Do("SCRIPT", "EXISTS", sha); err != nil || fmt.Sprint(got) != "[1]" {
				t.Fatalf("SCRIPT EXISTS on primary %s = %v, %v: not loaded there", p.Addr(), got, err)
			}
		}
		for _, k := range auditKeys(t, eng, "audit:sha", 12) {
			r, err := eng.Do(ctx, "EVALSHA", sha, "1", k).Await(ctx)
			if err != nil {
				t.Fatalf("EVALSHA of %q: %v", k, err)
			}
			if vals, err := r.Strings(); err != nil || len(vals) != 2 || vals[0] != k {
				t.Fatalf("EVALSHA of %q = %v, %v", k, vals, err)
			}
		}
	})

	// Hash tags, the empty key, a long key and binary keys reach the node
	// that owns their slot, and read back.
	t.Run("UnusualKeys", func(t *testing.T) {
		long := strings.Repeat("k", 100_000)
		keys := []string{
			"", "{}", "{}x", "{", "}", "{a}b", "x{a}", "{a}{b}", "{{a}}",
			"\x00", "\x00{\xff}\x00", "\r\n", "ключ", long,
		}
		for i, k := range keys {
			v := fmt.Sprint("v", i)
			if _, err := eng.Set(ctx, k, v, 0).Await(ctx); err != nil {
				t.Fatalf("SET %q: %v", trunc(k), err)
			}
			slot, err := c.KeySlot(k)
			if err != nil {
				t.Fatal(err)
			}
			if slot != valkeytest.HashSlot(k) {
				t.Fatalf("slot of %q: server %d, ours %d", trunc(k), slot, valkeytest.HashSlot(k))
			}
			owner, err := c.NodeForSlot(slot)
			if err != nil {
				t.Fatal(err)
			}
			got, err := owner.Do("GET", k)
			if err != nil || got != v {
				t.Fatalf("GET %q on its owner = %v, %v; want %s", trunc(k), got, err, v)
			}
			if s, err := eng.Get(ctx, k).Await(ctx); err != nil || s != v {
				t.Fatalf("engine GET %q = %q, %v", trunc(k), s, err)
			}
			if r, err := eng.Do(ctx, "GET", k).Await(ctx); err != nil {
				t.Fatalf("Do GET %q: %v", trunc(k), err)
			} else if s, _ := r.String(); s != v {
				t.Fatalf("Do GET %q = %q", trunc(k), s)
			}
		}
		vals, err := eng.MGet(ctx, keys...).Await(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if v == nil || *v != fmt.Sprint("v", i) {
				t.Fatalf("MGET entry %d (%q) = %v", i, trunc(keys[i]), v)
			}
		}
		if n, err := eng.Del(ctx, keys...).Await(ctx); err != nil || n != int64(len(keys)) {
			t.Fatalf("DEL = %d, %v; want %d", n, err, len(keys))
		}
	})

	// A command's ctx bounds it in cluster mode too: an ended ctx fails it
	// unsent, for typed, split, keyless and pipelined commands.
	t.Run("ContextEnded", func(t *testing.T) {
		done, cancel := context.WithCancel(ctx)
		cancel()
		keys := auditKeys(t, eng, "audit:ctx", 3)
		errs := []error{
			eng.Set(done, keys[0], "v", 0).Err(ctx),
			eng.MSet(done, keys[0], "v", keys[1], "v").Err(ctx),
			eng.Do(done, "DBSIZE").Err(ctx),
			eng.Do(done, "SET", keys[2], "v").Err(ctx),
			eng.ScanPage(done, 0, "", 0).Err(ctx),
		}
		p := eng.Pipeline()
		pf := p.Set(keys[1], "v", 0)
		if err := p.Exec(done); !errors.Is(err, context.Canceled) {
			t.Fatalf("pipeline Exec with an ended ctx: %v", err)
		}
		errs = append(errs, pf.Err(ctx))
		for i, err := range errs {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("command %d with an ended ctx: %v, want context.Canceled", i, err)
			}
		}
		if n, err := eng.Exists(ctx, keys...).Await(ctx); err != nil || n != 0 {
			t.Fatalf("EXISTS = %d, %v: a command with an ended ctx was written", n, err)
		}
	})

	// Blocking commands take their own path (a dedicated connection): keys
	// over several slots still fail with ErrCrossSlot, one slot works.
	t.Run("BlockingCrossSlot", func(t *testing.T) {
		keys := auditKeys(t, eng, "audit:blk", 2)
		for _, args := range [][]string{
			{"BLPOP", keys[0], keys[1], "0.05"},
			{"BLMPOP", "0.05", "2", keys[0], keys[1], "LEFT"},
			{"XREAD", "BLOCK", "50", "STREAMS", keys[0], keys[1], "0", "0"},
			{"BLMOVE", keys[0], keys[1], "LEFT", "LEFT", "0.05"},
		} {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := eng.Do(cctx, args[0], args[1:]...).Await(cctx)
			cancel()
			if !errors.Is(err, engine.ErrCrossSlot) {
				t.Fatalf("Do %v: %v, want ErrCrossSlot", args, err)
			}
		}
		// One slot, on whichever node serves it: a nil reply at the timeout.
		for _, k := range auditKeys(t, eng, "audit:blk1", 3) {
			r, err := eng.Do(ctx, "BLMPOP", "0.05", "2", "{"+k+"}a", "{"+k+"}b", "LEFT").Await(ctx)
			if err != nil || !r.IsNil() {
				t.Fatalf("BLMPOP of one slot = %v, %v; want nil", r, err)
			}
			if _, err := eng.RPush(ctx, k, "x").Await(ctx); err != nil {
				t.Fatal(err)
			}
			r, err = eng.Do(ctx, "BLPOP", k, "1").Await(ctx)
			if err != nil {
				t.Fatalf("BLPOP %s: %v", k, err)
			}
			if v, _ := r.Strings(); len(v) != 2 || v[1] != "x" {
				t.Fatalf("BLPOP %s = %v", k, v)
			}
		}
	})

	// Watch over keys of several slots fails with ErrCrossSlot and runs
	// nothing; a keyless transaction runs on some primary; a keyless
	// command beside keyed ones follows the keys.
	t.Run("TxKeylessAndWatch", func(t *testing.T) {
		keys := auditKeys(t, eng, "audit:w", 2)
		ran := false
		err := eng.Watch(ctx, func(tx *engine.Tx) error {
			ran = true
			return nil
		}, keys...)
		if !errors.Is(err, engine.ErrCrossSlot) || ran {
			t.Fatalf("Watch over two slots: %v (fn ran: %v), want ErrCrossSlot unrun", err, ran)
		}
		tx := eng.Tx()
		ping := tx.Do("PING")
		tm := tx.Do("TIME")
		if err := tx.Exec(ctx); err != nil {
			t.Fatalf("keyless Tx: %v", err)
		}
		if r, err := ping.Await(ctx); err != nil {
			t.Fatal(err)
		} else if s, _ := r.String(); s != "PONG" {
			t.Fatalf("PING in Tx = %q", s)
		}
		if _, err := tm.Await(ctx); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			tx := eng.Tx()
			tx.Do("PING")
			tx.Set(k, "tx", 0)
			db := tx.Do("DBSIZE")
			if err := tx.Exec(ctx); err != nil {
				t.Fatalf("Tx with PING and SET %s: %v", k, err)
			}
			if _, err := db.Await(ctx); err != nil {
				t.Fatal(err)
			}
			owner, err := c.NodeForSlot(valkeytest.HashSlot(k))
			if err != nil {
				t.Fatal(err)
			}
			if v, err := owner.Do("GET", k); err != nil || v != "tx" {
				t.Fatalf("GET %s on its owner = %v, %v", k, v, err)
			}
		}
	})

	// Malformed key counts reach the server as they are and come back as
	// its error: no panic, no hang, no misrouting.
	t.Run("MalformedKeyCounts", func(t *testing.T) {
		for _, args := range [][]string{
			{"EVAL", "return 1", "5", "a"},
			{"EVAL", "return 1", "-1"},
			{"EVAL", "return 1", "x", "a"},
			{"EVAL", "return 1"},
			{"FCALL", "nofn", "99999999999999999999", "a"},
			{"ZUNIONSTORE", "{z}d", "3", "{z}a"},
			{"XREAD", "STREAMS", "a"},
			{"XREAD", "COUNT", "1", "STREAMS"},
			{"LMPOP", "2", "a"},
			{"MGET"}, {"MSET", "a"}, {"OBJECT"}, {"GET"},
			{"SORT", "a", "STORE"},
		} {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := eng.Do(cctx, args[0], args[1:]...).Await(cctx)
			cancel()
			var se *engine.ServerError
			if err == nil || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Do %q: %v, want an error reply", args, err)
			}
			if !errors.As(err, &se) && !errors.Is(err, engine.ErrCrossSlot) && !errors.Is(err, engine.ErrInvalidArgument) {
				t.Fatalf("Do %q: %v (%T), want a *ServerError", args, err, err)
			}
		}
	})

	// Scan and ScanPage end with ctx; a broken-off Scan sends nothing more.
	t.Run("ScanContext", func(t *testing.T) {
		var ks []string
		for i := range 300 {
			ks = append(ks, fmt.Sprint("audit:scan:", i))
		}
		kv := make([]string, 0, 2*len(ks))
		for _, k := range ks {
			kv = append(kv, k, "v")
		}
		if _, err := eng.MSet(ctx, kv...).Await(ctx); err != nil {
			t.Fatal(err)
		}
		n := 0
		for k, err := range eng.Scan(ctx, "audit:scan:*", 10) {
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(k, "audit:scan:") {
				t.Fatalf("Scan yielded %q", k)
			}
			n++
		}
		if n != len(ks) {
			t.Fatalf("Scan yielded %d keys, want %d", n, len(ks))
		}
		sctx, cancel := context.WithCancel(ctx)
		n = 0
		var last error
		for _, err := range eng.Scan(sctx, "audit:scan:*", 10) {
			if err != nil {
				last = err
				continue
			}
			if n++; n == 5 {
				cancel()
			}
		}
		cancel()
		if !errors.Is(last, context.Canceled) || n >= len(ks) {
			t.Fatalf("Scan with ctx cancelled after 5 keys: %d keys, last error %v", n, last)
		}
		if _, err := eng.Del(ctx, ks...).Await(ctx); err != nil {
			t.Fatal(err)
		}
	})

	// A cluster node given in standalone mode: the engine works on it; a
	// key the node does not serve fails with its MOVED reply, at once.
	t.Run("NodeAsStandalone", func(t *testing.T) {
		p := c.Primaries()[0]
		eng := engineOn(t, config.DefaultConfig().WithAddrs(p.Addr()))
		defer eng.Close()
		var mine, other string
		for i := 0; mine == "" || other == ""; i++ {
			k := fmt.Sprint("audit:sa:", i)
			owner, err := c.NodeForSlot(valkeytest.HashSlot(k))
			if err != nil {
				t.Fatal(err)
			}
			if owner.Addr() == p.Addr() {
				mine = k
			} else {
				other = k
			}
		}
		if _, err := eng.Set(ctx, mine, "v", 0).Await(ctx); err != nil {
			t.Fatalf("SET of a key the node serves: %v", err)
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := eng.Set(cctx, other, "v", 0).Await(cctx)
		var se *engine.ServerError
		if !errors.As(err, &se) || se.Prefix != "MOVED" {
			t.Fatalf("SET of another node's key in standalone mode: %v, want a MOVED *ServerError", err)
		}
	})

	// A seed that is down beside one that works: New succeeds.
	t.Run("OneSeedDown", func(t *testing.T) {
		down := freeAddr(t)
		start := time.Now()
		eng := engineOn(t, config.DefaultConfig().WithAddrs(down, c.Addrs()[0]).WithClusterMode(true))
		defer eng.Close()
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("New with the first seed down took %s", d)
		}
		if _, err := eng.Set(ctx, "audit:seed", "v", 0).Await(ctx); err != nil {
			t.Fatal(err)
		}
	})

	// Scan's ctx bounds it while it reaches a primary the engine has not
	// dialled yet and that does not answer (paused): the iteration ends
	// with ctx's error at about the deadline, not after DialTimeout.
	t.Run("ScanFrozenNode", func(t *testing.T) {
		fresh := engineOn(t, config.DefaultConfig().WithAddrs(c.Addrs()[0]).WithClusterMode(true))
		defer fresh.Close()
		dialled := map[string]bool{}
		for _, n := range fresh.Stats().Nodes {
			dialled[n.Addr] = true
		}
		var victim *valkeytest.ClusterNode
		for _, p := range c.Primaries() {
			if !dialled[p.Addr()] {
				victim = p
			}
		}
		if victim == nil {
			t.Fatalf("every primary dialled already: %v", dialled)
		}
		if err := victim.Pause(); err != nil {
			t.Fatal(err)
		}
		defer victim.Resume()
		sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		var last error
		for _, err := range fresh.Scan(sctx, "", 100) {
			if err != nil {
				last = err
			}
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Fatalf("Scan with a 300ms ctx took %s with a primary paused (%v)", d, last)
		}
		if !errors.Is(last, context.DeadlineExceeded) {
			t.Fatalf("Scan with a paused primary ended with %v, want the ctx's error", last)
		}
	})
}

// trunc shortens a key for messages.
func trunc(k string) string {
	if len(k) > 20 {
		return k[:20] + "..."
	}
	return k
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// New's ctx bounds it in cluster mode: a seed that accepts connections
// and never answers costs New its ctx, not the dial timeout.
func TestAuditClusterNewContextDeadline(t *testing.T) {
	bl := blackHole(t)
	defer noLeakWithin(t, lingerDial, goleak.IgnoreCurrent())
	nctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	eng, err := open(nctx, t, config.DefaultConfig().WithAddrs(bl).WithClusterMode(true))
	if err == nil {
		eng.Close()
		t.Fatal("New succeeded against a silent seed")
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("New took %s with a 300ms ctx", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), bl) {
		t.Fatalf("New: %v, want the ctx's error naming %s", err, bl)
	}
}

// Every seed down: New fails within the dial timeout, names the seeds,
// and leaves no goroutine.
func TestAuditClusterAllSeedsDown(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	a, b := freeAddr(t), freeAddr(t)
	start := time.Now()
	eng, err := open(context.Background(), t, config.DefaultConfig().WithAddrs(a, b).WithClusterMode(true))
	if err == nil {
		eng.Close()
		t.Fatal("New succeeded with every seed down")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("New took %s with every seed refusing connections", d)
	}
	if !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), b) {
		t.Fatalf("error %q does not name both seeds", err)
	}
	var ce *engine.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *ConnectError", err)
	}
}

// A standalone server given as a cluster seed, and a cluster-enabled
// server that serves no slot: New fails at once with an error that says
// so, and leaves no goroutine.
func TestAuditClusterNotACluster(t *testing.T) {
	srv := valkeytest.Start(t)
	empty := valkeytest.Start(t, valkeytest.Options{Args: []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"}})
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, tc := range []struct {
		name, addr, want string
	}{
		{"standalone", srv.Addr(), "cluster support disabled"},
		{"standalone", srv.Addr(), "leave ClusterMode off"},
		{"no slots", empty.Addr(), "no cluster topology"},
	} {
		start := time.Now()
		eng, err := open(context.Background(), t, config.DefaultConfig().WithAddrs(tc.addr).WithClusterMode(true))
		if err == nil {
			eng.Close()
			t.Fatalf("%s: New succeeded", tc.name)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%s: New took %s to fail", tc.name, d)
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.addr) {
			t.Fatalf("%s: error %q does not say %q about %s", tc.name, err, tc.want, tc.addr)
		}
	}
}

// Close while the slot map is being reloaded all the time: Close returns
// promptly, every future completes, no goroutine is left.
func TestAuditClusterCloseWhileReloading(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	defer engine.SetClusterRefreshInterval(time.Millisecond)() // below Config's floor
	ctx := ctxT(t)
	for range 3 {
		cfg := config.DefaultConfig().WithAddrs(c.Addrs()...).WithClusterMode(true)
		eng := engineOn(t, cfg)
		for i := range 200 {
			eng.Set(ctx, fmt.Sprint("audit:reload:", i), "v", 0)
		}
		time.Sleep(20 * time.Millisecond) // let reloads run: what is tested is Close among them
		closeOutstanding(t, ctx, eng, 2000, 3*time.Second)
		if _, err := eng.Get(ctx, "audit:reload:0").Await(ctx); !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("GET after Close: %v, want ErrClosed", err)
		}
	}
}
