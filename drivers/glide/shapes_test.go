package glide_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/drivers/glide"
	"github.com/vactor-io/vactor/drivers/valkeygo"
	"github.com/vactor-io/vactor/valkeytest"
)

// shapeCases are commands whose replies glide's core converts, or which
// the engine decodes, in the order they run (later ones read what earlier
// ones wrote).
var shapeCases = [][]string{
	{"SET", "s", "v"}, {"GET", "s"}, {"EXPIRE", "s", "100"}, {"PERSIST", "s"}, {"TTL", "s"},
	{"SETNX", "s", "w"}, {"MSETNX", "m1", "a", "m2", "b"}, {"COPY", "s", "s2"}, {"RENAMENX", "s2", "s3"},
	{"INCRBYFLOAT", "f", "1.5"}, {"INCRBYFLOAT", "f", "123456789.25"},
	{"HSET", "h", "a", "1", "b", "2", "c", "3"}, {"HGETALL", "h"}, {"HSETNX", "h", "a", "9"}, {"HEXISTS", "h", "a"},
	{"HINCRBYFLOAT", "h", "a", "0.5"}, {"HMGET", "h", "a", "zz"}, {"HKEYS", "h"}, {"HRANDFIELD", "h", "-5", "WITHVALUES"},
	{"SADD", "st", "x", "y", "z"}, {"SISMEMBER", "st", "x"}, {"SMISMEMBER", "st", "x", "q"}, {"SMEMBERS", "st"},
	{"SINTER", "st", "st"}, {"SMOVE", "st", "st2", "x"}, {"SCARD", "st"},
	{"ZADD", "z", "1", "b", "1", "a", "2", "c", "0.5", "d", "3", "e"},
	{"ZRANGE", "z", "0", "-1"}, {"ZRANGE", "z", "0", "-1", "WITHSCORES"}, {"ZRANGE", "z", "0", "-1", "REV", "WITHSCORES"},
	{"ZRANGE", "z", "(0.5", "+inf", "BYSCORE", "WITHSCORES"}, {"ZRANGEBYSCORE", "z", "-inf", "+inf", "WITHSCORES"},
	{"ZREVRANGE", "z", "0", "2", "WITHSCORES"}, {"ZREVRANGEBYSCORE", "z", "+inf", "-inf", "WITHSCORES"},
	{"ZSCORE", "z", "a"}, {"ZMSCORE", "z", "a", "nope"}, {"ZINCRBY", "z", "0.25", "a"}, {"ZRANK", "z", "c"},
	{"ZUNION", "1", "z", "WITHSCORES"}, {"ZINTER", "1", "z", "WITHSCORES"}, {"ZDIFF", "1", "z", "WITHSCORES"},
	{"ZPOPMIN", "z"}, {"ZPOPMAX", "z"}, {"ZPOPMIN", "z", "2"}, {"ZADD", "z", "5", "p", "6", "q"}, {"ZPOPMAX", "z", "2"},
	{"ZADD", "z2", "1", "a", "2", "b", "3", "c"}, {"ZMPOP", "1", "z2", "MIN", "COUNT", "2"},
	{"ZADD", "z2", "4", "d"}, {"ZMPOP", "1", "z2", "MAX", "COUNT", "5"},
	{"XADD", "x", "1-1", "f", "v", "g", "w"}, {"XADD", "x", "2-1", "f", "v2"}, {"XADD", "x", "10-1", "f", "v3"},
	{"XRANGE", "x", "-", "+"}, {"XREVRANGE", "x", "+", "-"}, {"XRANGE", "x", "-", "+", "COUNT", "2"}, {"XLEN", "x"},
	{"XADD", "y", "5-0", "a", "b"}, {"XREAD", "COUNT", "10", "STREAMS", "x", "y", "0", "0"},
	{"XREAD", "STREAMS", "y", "x", "0", "0"},
	{"XGROUP", "CREATE", "x", "g", "0"}, {"XREADGROUP", "GROUP", "g", "c1", "COUNT", "10", "STREAMS", "x", ">"},
	{"XPENDING", "x", "g"}, {"XCLAIM", "x", "g", "c2", "0", "10-1", "1-1"}, {"XCLAIM", "x", "g", "c2", "0", "2-1", "JUSTID"},
	{"XAUTOCLAIM", "x", "g", "c3", "0", "0"}, {"XACK", "x", "g", "1-1"}, {"XDEL", "x", "2-1"},
	{"XREADGROUP", "GROUP", "g", "c1", "STREAMS", "x", "0"},
	{"RPUSH", "l", "a", "b", "c"}, {"LRANGE", "l", "0", "-1"}, {"LPOP", "l", "2"}, {"LPOS", "l", "c"},
	{"MGET", "s", "nope"}, {"EXISTS", "s", "nope"}, {"TYPE", "h"}, {"OBJECT", "ENCODING", "s"},
	{"PUBSUB", "NUMSUB", "c1", "c2"}, {"PUBSUB", "CHANNELS"},
	{"SCAN", "0", "COUNT", "1000"}, {"HSCAN", "h", "0"}, {"ZSCAN", "z", "0"},
	{"EVAL", "return {1, 'a', {2, 'b'}}", "0"}, {"EVAL", "redis.setresp(3); return true", "0"},
	{"EVAL", "redis.setresp(3); return {double=1.5}", "0"},
	{"CONFIG", "GET", "maxmemory"}, {"DBSIZE"}, {"PING"}, {"ECHO", "e"},
	{"COMMAND", "INFO", "GET", "EVAL", "MSET"},
	{"CLIENT", "GETNAME"}, {"TIME"},
	// Replies a user reaches through Do.
	{"COMMAND", "INFO", "SET", "nosuchcommand", "LMOVE", "SORT", "XREADGROUP"}, {"COMMAND", "DOCS", "GET"}, {"COMMAND", "DOCS", "SET", "XADD", "CLIENT", "nosuchcommand"},
	{"COMMAND", "GETKEYSANDFLAGS", "SET", "k", "v"}, {"COMMAND", "GETKEYS", "SET", "k", "v"}, {"COMMAND", "COUNT"},
	{"FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('f', function(keys, args) return {map={a={set={x=true}}}} end)"},
	{"FCALL", "f", "0"}, {"FUNCTION", "LIST"}, {"FUNCTION", "LIST", "WITHCODE"},
	{"CONFIG", "GET", "maxmemory*"}, {"OBJECT", "FREQ", "s"}, {"OBJECT", "HELP"},
	{"SET", "lcs1", "ohmytext"}, {"SET", "lcs2", "mynewtext"}, {"LCS", "lcs1", "lcs2", "IDX", "MINMATCHLEN", "2", "WITHMATCHLEN"},
	{"GEOADD", "g2", "13.361389", "38.115556", "Palermo"}, {"GEOPOS", "g2", "Palermo", "nope"}, {"GEOHASH", "g2", "Palermo"},
	{"BITFIELD", "bf", "INCRBY", "u8", "0", "1", "GET", "u8", "0"}, {"XINFO", "GROUPS", "x"},
	{"EVAL", "return {double=1/0}", "0"}, {"EVAL", "return {double=-1/0}", "0"}, {"EVAL", "return {double=0/0}", "0"},
	{"EVAL", "redis.setresp(3); return {map={a={map={b=1.5}}, c={set={x=true, y=true}}, d={1, {map={}}}}}", "0"},
	{"EVAL", "return {set={}}", "0"}, {"ACL", "WHOAMI"}, {"MODULE", "LIST"}, {"SLOWLOG", "LEN"},
	{"CLIENT", "INFO"}, {"CLIENT", "LIST"}, {"CLIENT", "ID"}, {"CLIENT", "TRACKINGINFO"}, {"HELLO"}, {"HELLO", "3"},
	{"MEMORY", "STATS"}, {"XINFO", "STREAM", "x"}, {"XINFO", "STREAM", "x", "FULL"}, {"XINFO", "CONSUMERS", "x", "g"},
	{"INFO", "server"}, {"LATENCY", "LATEST"},
}

// unstable are commands (a name, or a name and a subcommand) whose
// replies differ between two runs (time, counters, random, client IDs):
// their structure is compared (kinds, map keys, lengths), not their
// values. SLOWLOG LEN counts the commands that took more than 10 ms,
// which a busy machine makes on one server and not the other.
var unstable = map[string]bool{
	"TIME": true, "SLOWLOG LEN": true, "HRANDFIELD": true, "SCAN": true,
	"CLIENT INFO": true, "CLIENT LIST": true, "CLIENT ID": true, "HELLO": true, "MEMORY STATS": true,
	"XINFO STREAM": true, "XINFO CONSUMERS": true, "INFO": true,
}

func isUnstable(args []string) bool {
	name := strings.ToUpper(args[0])
	return unstable[name] || len(args) > 1 && unstable[name+" "+strings.ToUpper(args[1])]
}

// structure describes v without its scalar values: kinds, lengths, map
// keys (in sorted order; every kind of string alike).
func structure(v drivers.Value) string {
	switch {
	case isStr(v):
		return "str"
	case v.Kind == drivers.KindArray:
		parts := make([]string, len(v.Elems))
		for i, e := range v.Elems {
			parts[i] = structure(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case v.Kind == drivers.KindSet:
		return fmt.Sprintf("set(%d)", len(v.Elems))
	case v.Kind == drivers.KindMap:
		parts := make([]string, 0, len(v.Elems)/2)
		for i := 0; i+1 < len(v.Elems); i += 2 {
			parts = append(parts, canonical(v.Elems[i])+":"+structure(v.Elems[i+1]))
		}
		slices.Sort(parts)
		return "map{" + strings.Join(parts, " ") + "}"
	case v.Kind == drivers.KindFloat:
		return "num" // glide makes doubles of some strings (INCRBYFLOAT)
	}
	return fmt.Sprint(v.Kind)
}

// TestReplyShapes runs the same commands on two servers in the same state,
// one through the valkey-go driver (valkey-go parses RESP3 as the server
// sent it) and one through the glide driver, and compares the replies as
// the engine reads them (through drivers.Fast). They must be equal but
// for what is documented: simple and bulk strings alike, doubles for
// INCRBYFLOAT's strings, sets and maps in another order, verbatim strings
// without their format.
func TestReplyShapes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ref := dialFast(t, valkeygo.Driver{}, valkeytest.Start(t).Addr())
	got := dialFast(t, glide.Driver{}, valkeytest.Start(t).Addr())
	for _, args := range shapeCases {
		want := drivers.FromValkey(ref.Do(ctx, ref.B().Arbitrary(args...).Build()))
		have := drivers.FromValkey(got.Do(ctx, got.B().Arbitrary(args...).Build()))
		if want.Err != nil || have.Err != nil {
			t.Errorf("%q: valkey-go %v, glide %v", args, want.Err, have.Err)
			continue
		}
		if isUnstable(args) {
			if ws, hs := structure(want.Value), structure(have.Value); ws != hs {
				t.Errorf("%q: structure\n  valkey-go %s\n  glide     %s", args, ws, hs)
			}
			continue
		}
		if !alike(want.Value, have.Value) {
			t.Errorf("%q:\n  valkey-go %v\n  glide     %v", args, want.Value, have.Value)
		}
	}
}

func dialFast(t *testing.T, d drivers.Driver, addr string) drivers.ValkeyConn {
	t.Helper()
	c, err := d.Dial(context.Background(), drivers.Options{Addr: addr, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	f, err := drivers.Fast(c)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func isStr(v drivers.Value) bool {
	return v.Kind == drivers.KindString || v.Kind == drivers.KindStatus || v.Kind == drivers.KindVerbatim
}

// alike is Value.Equal with the documented differences allowed.
func alike(a, b drivers.Value) bool {
	if isStr(a) && isStr(b) {
		return text(a) == text(b)
	}
	if a.Kind == drivers.KindFloat || b.Kind == drivers.KindFloat {
		fa, oka := num(a)
		fb, okb := num(b)
		return oka && okb && (fa == fb || math.IsNaN(fa) && math.IsNaN(fb))
	}
	if a.Kind != b.Kind {
		return false
	}
	switch a.Kind {
	case drivers.KindSet:
		return sameMembers(a.Elems, b.Elems)
	case drivers.KindMap:
		return sameMembers(pairs(a.Elems), pairs(b.Elems))
	case drivers.KindArray:
		if len(a.Elems) != len(b.Elems) {
			return false
		}
		for i := range a.Elems {
			if !alike(a.Elems[i], b.Elems[i]) {
				return false
			}
		}
		return true
	}
	return a.Equal(b)
}

func text(v drivers.Value) string {
	if v.Kind == drivers.KindVerbatim && len(v.Str) >= 4 && v.Str[3] == ':' {
		return v.Str[4:]
	}
	return v.Str
}

func num(v drivers.Value) (float64, bool) {
	switch v.Kind {
	case drivers.KindFloat:
		return v.Float, true
	case drivers.KindString, drivers.KindStatus:
		f, err := strconv.ParseFloat(v.Str, 64)
		return f, err == nil
	}
	return 0, false
}

// pairs groups a map's elements into [key, value] arrays.
func pairs(elems []drivers.Value) []drivers.Value {
	out := make([]drivers.Value, 0, len(elems)/2)
	for i := 0; i+1 < len(elems); i += 2 {
		out = append(out, drivers.Array(elems[i], elems[i+1]))
	}
	return out
}

// sameMembers compares two lists as multisets.
func sameMembers(a, b []drivers.Value) bool {
	if len(a) != len(b) {
		return false
	}
	ka := make([]string, len(a))
	kb := make([]string, len(b))
	for i := range a {
		ka[i], kb[i] = canonical(a[i]), canonical(b[i])
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

// canonical formats v with every kind of string as one kind and maps and
// sets in sorted order, for sameMembers.
func canonical(v drivers.Value) string {
	switch {
	case isStr(v):
		return strconv.Quote(text(v))
	case v.Kind == drivers.KindFloat:
		return strconv.FormatFloat(v.Float, 'g', -1, 64)
	case v.Kind == drivers.KindArray:
		parts := make([]string, len(v.Elems))
		for i, e := range v.Elems {
			parts[i] = canonical(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case v.Kind == drivers.KindSet:
		parts := make([]string, len(v.Elems))
		for i, e := range v.Elems {
			parts[i] = canonical(e)
		}
		slices.Sort(parts)
		return "set[" + strings.Join(parts, " ") + "]"
	case v.Kind == drivers.KindMap:
		parts := make([]string, 0, len(v.Elems)/2)
		for i := 0; i+1 < len(v.Elems); i += 2 {
			parts = append(parts, canonical(v.Elems[i])+":"+canonical(v.Elems[i+1]))
		}
		slices.Sort(parts)
		return "map[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprint(v)
}

// The topology commands the engine reads on a cluster node, and an ASK
// redirect followed with ASKING in the same pipeline, come back alike.
func TestReplyShapesCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := valkeytest.StartClusterT(t)
	addr := c.Primaries()[0].Addr()
	ref := dialFast(t, valkeygo.Driver{}, addr)
	got := dialFast(t, glide.Driver{}, addr)
	for _, args := range [][]string{{"CLUSTER", "SHARDS"}, {"CLUSTER", "SLOTS"}, {"CLUSTER", "KEYSLOT", "k"}, {"CLUSTER", "MYID"}, {"READONLY"}} {
		want := drivers.FromValkey(ref.Do(ctx, ref.B().Arbitrary(args...).Build()))
		have := drivers.FromValkey(got.Do(ctx, got.B().Arbitrary(args...).Build()))
		// CLUSTER SHARDS gives each node's replication offset and health,
		// which change between the two calls when a primary first pings
		// its replicas (10 s after they synced: a replica at offset 0 is
		// "loading", then "online") or a node learns a newer offset
		// through the cluster bus: those two compared by kind only.
		want.Value, have.Value = withoutReplState(want.Value), withoutReplState(have.Value)
		if want.Err != nil || have.Err != nil || !alike(want.Value, have.Value) {
			t.Errorf("%q:\n  valkey-go %s\n  glide     %s", args, want.Value, have.Value)
		}
	}
}

var replState = map[string]bool{"replication-offset": true, "health": true}

// withoutReplState is v with the value of every "replication-offset" and
// "health" field (a map's, or a flat key-value array's as RESP2 gives
// it) made the zero value of its kind.
func withoutReplState(v drivers.Value) drivers.Value {
	if len(v.Elems) == 0 {
		return v
	}
	out := v
	out.Elems = make([]drivers.Value, len(v.Elems))
	for i, e := range v.Elems {
		if i > 0 && (v.Kind == drivers.KindMap && i%2 == 1 || v.Kind == drivers.KindArray) &&
			isStr(v.Elems[i-1]) && replState[text(v.Elems[i-1])] {
			out.Elems[i] = drivers.Value{Kind: e.Kind}
			continue
		}
		out.Elems[i] = withoutReplState(e)
	}
	return out
}

// ASKING applies to the command after it in the same pipeline.
func TestAskingInPipeline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := valkeytest.StartClusterT(t)
	_, _, dst := halfMigrate(t, c, "ask:k")
	got := dialFast(t, glide.Driver{}, dst.Addr())
	for i := range 200 {
		rs := got.DoMulti(ctx, got.B().Asking().Build(), got.B().Set().Key("ask:k").Value(strconv.Itoa(i)).Build())
		if err := rs[1].Error(); err != nil {
			t.Fatalf("round %d: SET after ASKING on the importing node: %v", i, err)
		}
	}
	if err := got.Do(ctx, got.B().Get().Key("ask:k").Build()).Error(); err == nil || !strings.HasPrefix(err.Error(), "MOVED") {
		t.Fatalf("GET without ASKING on the importing node: %v, want MOVED", err)
	}
}

// halfMigrate starts moving key's slot from its owner (src) to another
// primary (dst), and leaves it half way: src MIGRATING, dst IMPORTING,
// so that a key of the slot missing on src gets ASK to dst.
func halfMigrate(t *testing.T, c *valkeytest.Cluster, key string) (slot int, src, dst *valkeytest.ClusterNode) {
	t.Helper()
	slot, err := c.KeySlot(key)
	if err != nil {
		t.Fatal(err)
	}
	if src, err = c.NodeForSlot(slot); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Primaries() {
		if p.ID != src.ID {
			dst = p
			break
		}
	}
	if _, err := dst.Do("CLUSTER", "SETSLOT", strconv.Itoa(slot), "IMPORTING", src.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Do("CLUSTER", "SETSLOT", strconv.Itoa(slot), "MIGRATING", dst.ID); err != nil {
		t.Fatal(err)
	}
	return slot, src, dst
}
