package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/internal/resptest"
	"github.com/vactor-io/vactor/valkeytest"
)

// The reply-parser audit end to end: a fake RESP3 server answers chosen
// commands with replies of unexpected shapes, and the engine fails those
// commands alone, with ErrReplyType, completes the others of the same
// pipeline with their values and keeps serving.

// fakeServer starts a resptest.Server answering "NAME key" with
// replies[NAME key] (then replies[NAME]); the other commands get its
// defaults. It stops at cleanup (Close it before checking for leaks:
// Close may be called twice).
func fakeServer(t *testing.T, replies map[string]string) *resptest.Server {
	srv, _ := fakeServerSet(t, replies)
	return srv
}

// fakeEngine is an engine with the default config on a fakeServer
// answering replies, and a context for the test.
func fakeEngine(t *testing.T, replies map[string]string) (*engine.Engine, context.Context) {
	t.Helper()
	srv := fakeServer(t, replies)
	return engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr())), ctxT(t)
}

// fakeServerSet is fakeServer and a function that sets a reply (to one
// the test can write only once it knows the server's address).
func fakeServerSet(t *testing.T, replies map[string]string) (*resptest.Server, func(cmd, reply string)) {
	t.Helper()
	var mu sync.Mutex
	set := func(cmd, reply string) {
		mu.Lock()
		defer mu.Unlock()
		replies[cmd] = reply
	}
	srv, err := resptest.NewServer(func(args []string) (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		name := strings.ToUpper(args[0])
		if len(args) > 1 {
			if r, ok := replies[name+" "+args[1]]; ok {
				return r, true
			}
		}
		r, ok := replies[name]
		return r, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv, set
}

// halfSlotsServer is a fake cluster node whose CLUSTER SHARDS serves
// slots 0-8191 only (GET answers "ok"), with a key of a served slot and
// one of a slot no node serves.
func halfSlotsServer(t *testing.T) (srv *resptest.Server, served, orphan string) {
	t.Helper()
	srv, set := fakeServerSet(t, map[string]string{"COMMAND": "*0\r\n", "GET": "$2\r\nok\r\n"})
	host, port, _ := strings.Cut(srv.Addr(), ":")
	set("CLUSTER SHARDS", "*1\r\n%2\r\n+slots\r\n*2\r\n:0\r\n:8191\r\n+nodes\r\n*1\r\n%5\r\n"+
		"+id\r\n+n1\r\n+port\r\n:"+port+"\r\n+ip\r\n+"+host+"\r\n+role\r\n+master\r\n+health\r\n+online\r\n")
	for i := 0; served == "" || orphan == ""; i++ {
		k := "k" + strconv.Itoa(i)
		if valkeytest.HashSlot(k) < 8192 {
			served = k
		} else {
			orphan = k
		}
	}
	return srv, served, orphan
}

func wantValue[T any](t *testing.T, ctx context.Context, what string, f *futures.Future[T], want string) {
	t.Helper()
	v, err := f.Await(ctx)
	if err != nil || fmt.Sprint(v) != want {
		t.Errorf("%s = %v, %v; want %s", what, v, err, want)
	}
}

func wantReplyType[T any](t *testing.T, ctx context.Context, what string, f *futures.Future[T]) {
	t.Helper()
	if v, err := f.Await(ctx); !errors.Is(err, engine.ErrReplyType) {
		t.Errorf("%s = %v, %v; want an error wrapping ErrReplyType", what, v, err)
	}
}

func TestAuditRepliesPipeline(t *testing.T) {
	defer noLeakWithin(t, lingerDial, goleak.IgnoreCurrent())
	srv := fakeServer(t, map[string]string{
		"GET good":    "$2\r\nok\r\n",
		"GET arr":     "*2\r\n:1\r\n:2\r\n",
		"GET map":     "%1\r\n+a\r\n+b\r\n",
		"INCR n":      ":5\r\n",
		"INCR s":      "+not-a-number\r\n",
		"INCR big":    "(123456789012345678901234567890\r\n",
		"MGET a":      "*2\r\n$1\r\nx\r\n_\r\n",
		"MGET c":      "*2\r\n*0\r\n:1\r\n",
		"HGETALL h":   "%1\r\n$1\r\nf\r\n$1\r\nv\r\n",
		"HGETALL odd": "*3\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\nw\r\n",
		"WEIRD":       "*3\r\n(99999999999999999999999\r\n%1\r\n+k\r\n~1\r\n#t\r\n=7\r\ntxt:abc\r\n",
		"XPENDING s":  "*3\r\n:1\r\n_\r\n_\r\n",
		"XRANGE s":    "*2\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n*3\r\n$3\r\n1-2\r\n*0\r\n*0\r\n",
		"XRANGE t":    "*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n",
		"TTL k":       "$3\r\nabc\r\n",
		"TTL huge":    ":9223372037\r\n",
		"SMEMBERS s":  "~2\r\n*0\r\n:1\r\n",
		"SMEMBERS ok": "~2\r\n$1\r\na\r\n$1\r\nb\r\n",
		"LRANGE l":    "*2\r\n$1\r\na\r\n*1\r\n$1\r\nb\r\n",
	})
	defer srv.Close() // before the leak check
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	p := eng.Pipeline()
	good := p.Get("good")
	badArr, badMap := p.Get("arr"), p.Get("map")
	inc, badInc, bigInc := p.Incr("n"), p.Incr("s"), p.Incr("big")
	mget, badMget := p.MGet("a", "b"), p.MGet("c", "d")
	hg, badHg := p.HGetAll("h"), p.HGetAll("odd")
	weird := p.Do("WEIRD")
	last := p.Get("good")
	if err := p.Exec(ctx); err != nil {
		t.Fatalf("Exec: %v", err)
	}
	wantValue(t, ctx, "GET good", good, "ok")
	wantReplyType(t, ctx, "GET of an array", badArr)
	wantReplyType(t, ctx, "GET of a map", badMap)
	wantValue(t, ctx, "INCR n", inc, "5")
	wantReplyType(t, ctx, "INCR of a status", badInc)
	wantReplyType(t, ctx, "INCR of a big number", bigInc)
	if v, err := mget.Await(ctx); err != nil || len(v) != 2 || v[0] == nil || *v[0] != "x" || v[1] != nil {
		t.Errorf("MGET a b = %v, %v", v, err)
	}
	wantReplyType(t, ctx, "MGET of arrays", badMget)
	wantValue(t, ctx, "HGETALL h", hg, "map[f:v]")
	wantReplyType(t, ctx, "HGETALL of an odd array", badHg)
	wantValue(t, ctx, "GET good, last", last, "ok")
	r, err := weird.Await(ctx)
	if err != nil {
		t.Fatalf("Do WEIRD: %v", err)
	}
	if _, err := r.Int64(); !errors.Is(err, engine.ErrReplyType) {
		t.Errorf("Int64 of an array: %v", err)
	}
	if v, err := r.Any(); err != nil || fmt.Sprint(v) != "[99999999999999999999999 map[k:[true]] abc]" {
		t.Errorf("Any of the odd reply = %v, %v", v, err)
	}
	// Outside a pipeline too; and the engine keeps serving.
	wantReplyType(t, ctx, "XPENDING of 3 fields", eng.XPending(ctx, "s", "g"))
	wantReplyType(t, ctx, "XRANGE with an entry of 3 items", eng.XRange(ctx, "s", "-", "+", 0))
	wantValue(t, ctx, "XRANGE t", eng.XRange(ctx, "t", "-", "+", 0), "[{1-1 map[f:v]}]")
	wantReplyType(t, ctx, "TTL of a string", eng.TTL(ctx, "k"))
	// The seconds of a TTL set to MaxInt64 nanoseconds, rounded up: beyond
	// a Duration, read as the longest one rather than a negative one.
	if ttl, err := eng.TTL(ctx, "huge").Await(ctx); err != nil || ttl.Remaining != math.MaxInt64 || !ttl.HasExpiry {
		t.Errorf("TTL huge = %+v, %v; want the longest Duration", ttl, err)
	}
	// Typed string lists refuse elements of another type, as Reply.Strings.
	wantReplyType(t, ctx, "SMEMBERS with an array and an integer", eng.SMembers(ctx, "s"))
	wantReplyType(t, ctx, "LRANGE with an array", eng.LRange(ctx, "l", 0, -1))
	wantValue(t, ctx, "SMEMBERS ok", eng.SMembers(ctx, "ok"), "[a b]")
	wantValue(t, ctx, "GET good after", eng.Get(ctx, "good"), "ok")
	if st := eng.Stats(); st.Restarts != 0 || st.Reconnects != 0 {
		t.Errorf("odd replies cost restarts %d, reconnects %d; want none", st.Restarts, st.Reconnects)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
}

// shardsOf is a CLUSTER SHARDS reply: one shard serving every slot, its
// primary at addr.
// fakeCluster starts a fake server answering as a one-node cluster
// (CLUSTER SHARDS) and with replies, and an engine in cluster mode on it.
func fakeCluster(t *testing.T, replies map[string]string) (*resptest.Server, *engine.Engine) {
	t.Helper()
	srv, set := fakeServerSet(t, replies)
	set("CLUSTER SHARDS", shardsOf(srv.Addr()))
	return srv, engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithClusterMode(true))
}

func shardsOf(addr string) string {
	host, port, _ := strings.Cut(addr, ":")
	return "*1\r\n%2\r\n+slots\r\n*2\r\n:0\r\n:16383\r\n+nodes\r\n*1\r\n%5\r\n" +
		"+id\r\n+n1\r\n+port\r\n:" + port + "\r\n+ip\r\n+" + host + "\r\n+role\r\n+master\r\n+health\r\n+online\r\n"
}

// A cluster seed whose slot map is of no usable shape: New fails at once
// with ErrNoTopology naming the seed, and leaves no goroutine.
func TestAuditRepliesClusterSeed(t *testing.T) {
	for _, c := range []struct{ name, shards, slots string }{
		{"null shard", "*1\r\n_\r\n", ""},
		{"status", "+OK\r\n", ""},
		{"map", "%1\r\n+slots\r\n*0\r\n", ""},
		{"no port", "*1\r\n%2\r\n+slots\r\n*2\r\n:0\r\n:16383\r\n+nodes\r\n*1\r\n%3\r\n+ip\r\n+h\r\n+role\r\n+master\r\n+health\r\n+online\r\n", ""},
		{"slots of a map", "-ERR unknown subcommand 'SHARDS'\r\n", "%1\r\n+a\r\n+b\r\n"},
		{"slots without nodes", "-ERR unknown subcommand 'SHARDS'\r\n", "*1\r\n*2\r\n:0\r\n:16383\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer noLeakWithin(t, lingerDial, goleak.IgnoreCurrent())
			replies := map[string]string{"CLUSTER SHARDS": c.shards}
			if c.slots != "" {
				replies["CLUSTER SLOTS"] = c.slots
			}
			srv := fakeServer(t, replies)
			defer srv.Close() // before the leak check
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			eng, err := open(ctx, t, config.DefaultConfig().WithAddrs(srv.Addr()).WithClusterMode(true))
			if err == nil {
				eng.Close()
				t.Fatal("New succeeded on a seed without a usable slot map")
			}
			if !errors.Is(err, actors.ErrNoTopology) || !strings.Contains(err.Error(), srv.Addr()) {
				t.Errorf("New: %v; want ErrNoTopology naming %s", err, srv.Addr())
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("New took %s to fail", d)
			}
		})
	}
}

// A cluster whose command table (COMMAND) holds key specs with numbers no
// server sends: Do with such a command neither panics nor routes by a
// key outside its arguments; the engine keeps serving.
func TestAuditRepliesClusterCommandTable(t *testing.T) {
	defer noLeakWithin(t, lingerDial, goleak.IgnoreCurrent())
	spec := func(begin, find string) string {
		return "*10\r\n$5\r\nknidx\r\n:-1\r\n*0\r\n:1\r\n:-1\r\n:1\r\n*0\r\n*0\r\n*1\r\n" +
			"%2\r\n+begin_search\r\n" + begin + "+find_keys\r\n" + find + "*0\r\n"
	}
	table := "*3\r\n" +
		spec("%2\r\n+type\r\n+index\r\n+spec\r\n%1\r\n+index\r\n:1\r\n",
			"%2\r\n+type\r\n+keynum\r\n+spec\r\n%3\r\n+keynumidx\r\n:9223372036854775807\r\n+firstkey\r\n:1\r\n+keystep\r\n:1\r\n") +
		"*2\r\n:1\r\n:2\r\n" + // not an entry
		"*6\r\n$3\r\nget\r\n:2\r\n*0\r\n:1\r\n:1\r\n:1\r\n"
	srv, eng := fakeCluster(t, map[string]string{
		"COMMAND":  table,
		"KNIDX":    "+OK\r\n",
		"GET good": "$2\r\nok\r\n",
	})
	defer srv.Close() // before the leak check
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, args := range [][]string{{"a"}, {"a", "b", "c"}} {
		var f *futures.Future[engine.Reply]
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("Do KNIDX %q panicked: %v", args, p)
				}
			}()
			f = eng.Do(ctx, "KNIDX", args...)
		}()
		if r, err := f.Await(ctx); err != nil {
			t.Errorf("Do KNIDX %q: %v", args, err)
		} else if s, _ := r.String(); s != "OK" {
			t.Errorf("Do KNIDX %q = %q", args, s)
		}
	}
	wantValue(t, ctx, "GET good", eng.Get(ctx, "good"), "ok")
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
}

// Replies around the protocol's edges: an attribute or a push before a
// reply is skipped; bytes that are no RESP break the connection: the
// commands on it fail (none hangs), and the engine reconnects and serves.
func TestAuditRepliesBrokenWire(t *testing.T) {
	defer noLeakWithin(t, lingerDial, goleak.IgnoreCurrent())
	srv := fakeServer(t, map[string]string{
		"GET good":  "$2\r\nok\r\n",
		"GET attr":  "|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n$2\r\nok\r\n",
		"GET push":  ">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n$2\r\nok\r\n",
		"GET inval": ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n$2\r\nok\r\n",
		"GET junk":  "?what\r\n",
	})
	defer srv.Close() // before the leak check
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	p := eng.Pipeline()
	edges := []*futures.Future[string]{p.Get("attr"), p.Get("push"), p.Get("inval")}
	if err := p.Exec(ctx); err != nil {
		t.Fatalf("Exec: %v", err)
	}
	for i, f := range edges {
		wantValue(t, ctx, fmt.Sprintf("GET edge %d", i), f, "ok")
	}

	p = eng.Pipeline()
	before, junk, after := p.Get("good"), p.Get("junk"), p.Get("good")
	_ = p.Exec(ctx)
	if ctx.Err() != nil {
		t.Fatal("the pipeline with a broken reply did not complete")
	}
	if v, err := junk.Await(ctx); err == nil {
		t.Errorf("GET junk = %q, want an error", v)
	}
	// valkey-go fails every command of a pipeline whose replies it could
	// not read to the end, those it had read included: the others get
	// their value or an error, never a wrong value.
	for _, f := range []*futures.Future[string]{before, after} {
		if v, err := f.Await(ctx); err == nil && v != "ok" {
			t.Errorf("GET good next to the junk = %q", v)
		}
	}
	// The engine reconnects and serves again.
	for {
		v, err := eng.Get(ctx, "good").Await(ctx)
		if err == nil && v == "ok" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the engine does not serve after a broken reply: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling the reconnect, bounded by ctx
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
}

// In cluster mode, error replies that start like a redirect but are none
// ("MOVED" alone, "ASK me"): the command fails with its *ServerError; the
// other commands of its pipeline complete, and the connection actor is
// not restarted (valkey-go's IsMoved and IsAsk index the third word of
// the text unchecked: a panic on the connection actor failed the whole
// batch with mailbox.ErrActorFailed).
func TestAuditRepliesClusterBadRedirect(t *testing.T) {
	defer noLeakWithin(t, lingerDial, goleak.IgnoreCurrent())
	srv, eng := fakeCluster(t, map[string]string{
		"GET good":  "$2\r\nok\r\n",
		"GET moved": "-MOVED\r\n",
		"GET ask":   "-ASK me\r\n",
		"GET askx":  "-ASKEW 1\r\n",
		"COMMAND":   "*0\r\n",
	})
	defer srv.Close() // before the leak check
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, key := range []string{"moved", "ask", "askx"} {
		p := eng.Pipeline()
		before, bad, after := p.Get("good"), p.Get(key), p.Get("good")
		_ = p.Exec(ctx)
		wantValue(t, ctx, "GET good before "+key, before, "ok")
		wantValue(t, ctx, "GET good after "+key, after, "ok")
		var se *engine.ServerError
		if v, err := bad.Await(ctx); !errors.As(err, &se) {
			t.Errorf("GET %s = %q, %v; want its *ServerError", key, v, err)
		}
	}
	if st := eng.Stats(); st.Restarts != 0 {
		t.Errorf("odd redirects cost %d actor restarts", st.Restarts)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
}

// In cluster mode an MGET split by slot whose node answers with fewer
// values than keys fails with ErrReplyType (it indexed the short reply:
// a panic on a futures callback goroutine, which ended the process).
func TestAuditRepliesClusterShortMGet(t *testing.T) {
	defer noLeakWithin(t, lingerDial, goleak.IgnoreCurrent())
	srv, eng := fakeCluster(t, map[string]string{
		"MGET":     "*1\r\n$1\r\nx\r\n",
		"GET good": "$2\r\nok\r\n",
		"COMMAND":  "*0\r\n",
	})
	defer srv.Close() // before the leak check
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Keys of different slots, two of them in one: MGET is split, and the
	// part of two keys gets one value.
	wantReplyType(t, ctx, "MGET split, short", eng.MGet(ctx, "a{1}", "b{1}", "c{2}"))
	wantValue(t, ctx, "GET good", eng.Get(ctx, "good"), "ok")
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
}

// A server (or a proxy) that speaks RESP2 only: valkey-go falls back to
// RESP2, and the decoders read RESP2's shapes (flat arrays for maps and
// scores, arrays of pairs for XREAD, flat arrays for XINFO GROUPS).
func TestAuditRepliesRESP2(t *testing.T) {
	defer noLeakWithin(t, lingerDial, goleak.IgnoreCurrent())
	srv := fakeServer(t, map[string]string{
		"HELLO":       "-ERR unknown command 'HELLO'\r\n",
		"HGETALL h":   "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n",
		"ZRANGE z":    "*4\r\n$1\r\nm\r\n$3\r\n1.5\r\n$1\r\nn\r\n$1\r\n2\r\n",
		"XREAD":       "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n",
		"XINFO":       "*1\r\n*12\r\n$4\r\nname\r\n$1\r\ng\r\n$9\r\nconsumers\r\n:2\r\n$7\r\npending\r\n:3\r\n$17\r\nlast-delivered-id\r\n$3\r\n1-1\r\n$12\r\nentries-read\r\n$-1\r\n$3\r\nlag\r\n:4\r\n",
		"GET nothing": "$-1\r\n",
		"HGETALL odd": "*3\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n",
	})
	defer srv.Close() // before the leak check
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wantValue(t, ctx, "HGETALL h", eng.HGetAll(ctx, "h"), "map[a:1 b:2]")
	wantValue(t, ctx, "ZRANGE WITHSCORES", eng.ZRangeWithScores(ctx, "z", 0, -1), "[{m 1.5} {n 2}]")
	wantValue(t, ctx, "XREAD", eng.XRead(ctx, 10, map[string]string{"s": "0"}), "map[s:[{1-1 map[f:v]}]]")
	wantValue(t, ctx, "XINFO GROUPS", eng.XInfoGroups(ctx, "s"), "[{g 2 3 1-1 -1 4}]") // entries-read nil: -1
	if v, err := eng.Get(ctx, "nothing").Await(ctx); !errors.Is(err, engine.ErrNil) {
		t.Errorf("GET of a RESP2 null = %q, %v; want ErrNil", v, err)
	}
	wantReplyType(t, ctx, "HGETALL of an odd array", eng.HGetAll(ctx, "odd"))
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
}
