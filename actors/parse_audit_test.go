package actors

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/internal/resptest"
)

// The reply-parser audit of the actors: the cluster slot map (CLUSTER
// SHARDS, CLUSTER SLOTS) and the sentinels' answers, given replies of
// shapes no server of ours sends (another version's, a proxy's, a broken
// server's): no panic, a clear error or the usable part of the reply.

// scriptConn answers each command with the RESP text its name (the first
// two words, "CLUSTER SHARDS") maps to; an unknown command gets an error
// reply.
type scriptConn struct {
	replies map[string]string
}

func (c *scriptConn) B() valkey.Builder { return valkey.Builder{} }
func (c *scriptConn) Close() error      { return nil }

func (c *scriptConn) Do(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResult {
	return c.DoMulti(ctx, cmd)[0]
}

func (c *scriptConn) DoMulti(_ context.Context, cmds ...valkey.Completed) []valkey.ValkeyResult {
	out := make([]valkey.ValkeyResult, len(cmds))
	for i, cmd := range cmds {
		args := cmd.Commands()
		name := strings.ToUpper(strings.Join(args[:min(2, len(args))], " "))
		r, ok := c.replies[name]
		if !ok {
			r = "-ERR unknown command '" + name + "'\r\n"
		}
		out[i] = resptest.Result(r)
	}
	return out
}

// shardNode is a CLUSTER SHARDS node map.
func shardNode(kv ...string) string {
	s := fmt.Sprintf("%%%d\r\n", len(kv)/2)
	for i, v := range kv {
		if i%2 == 0 {
			s += "+" + v + "\r\n"
		} else {
			s += strings.TrimSuffix(v, "\r\n") + "\r\n"
		}
	}
	return s
}

func bulk(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }

var (
	goodNode = shardNode("id", bulk("a"), "port", ":7000", "ip", bulk("10.0.0.1"), "endpoint", bulk("10.0.0.1"),
		"role", bulk("master"), "replication-offset", ":1", "health", bulk("online"))
	goodShard  = "%2\r\n+slots\r\n*2\r\n:0\r\n:16383\r\n+nodes\r\n*1\r\n" + goodNode
	goodShards = "*1\r\n" + goodShard
)

// oddShards are CLUSTER SHARDS replies of other shapes.
var oddShards = []string{
	"*0\r\n", "_\r\n", "+OK\r\n", ":1\r\n", "%0\r\n", "*1\r\n_\r\n", "*1\r\n*0\r\n", "*1\r\n%0\r\n", "*1\r\n*1\r\n:1\r\n",
	"*1\r\n%2\r\n+slots\r\n:1\r\n+nodes\r\n:1\r\n",
	"*1\r\n%2\r\n+slots\r\n*3\r\n:0\r\n:100\r\n:200\r\n+nodes\r\n*1\r\n" + goodNode,
	"*1\r\n%2\r\n+slots\r\n*2\r\n:100\r\n:0\r\n+nodes\r\n*1\r\n" + goodNode,
	"*1\r\n%2\r\n+slots\r\n*2\r\n:-5\r\n:99999\r\n+nodes\r\n*1\r\n" + goodNode,
	"*1\r\n%2\r\n+slots\r\n*2\r\n$1\r\n0\r\n$5\r\n16383\r\n+nodes\r\n*1\r\n" + goodNode, // numbers as strings: usable
	"*1\r\n%2\r\n+slots\r\n*2\r\n,0\r\n#t\r\n+nodes\r\n*1\r\n" + goodNode,
	"*1\r\n%2\r\n+slots\r\n*2\r\n:0\r\n:16383\r\n+nodes\r\n*2\r\n_\r\n*1\r\n:1\r\n",
	"*1\r\n%2\r\n+slots\r\n*2\r\n:0\r\n:16383\r\n+nodes\r\n*1\r\n" + shardNode("port", bulk("x"), "ip", ":5", "role", ":1", "health", bulk("online")),
	"*1\r\n%2\r\n+slots\r\n*2\r\n:0\r\n:16383\r\n+nodes\r\n*1\r\n" + shardNode("port", ":-1", "ip", bulk("h"), "role", bulk("master"), "health", bulk("online")),
	"*1\r\n%2\r\n+slots\r\n*2\r\n:0\r\n:16383\r\n+nodes\r\n*1\r\n" + shardNode("port", ":99999999", "ip", bulk("h"), "role", bulk("master"), "health", bulk("online")),
	"*1\r\n%2\r\n+slots\r\n*2\r\n:0\r\n:16383\r\n+nodes\r\n*1\r\n" + shardNode("port", "*1\r\n:1\r\n", "ip", "%0\r\n", "role", bulk("master"), "health", bulk("online")),
	"*1\r\n*4\r\n+slots\r\n*2\r\n:0\r\n:16383\r\n+nodes\r\n*1\r\n*8\r\n+port\r\n:7000\r\n+ip\r\n$1\r\nh\r\n+role\r\n+master\r\n+health\r\n+online\r\n", // RESP2: usable
	"*2\r\n" + goodShard + ":1\r\n",
	"*1\r\n%3\r\n+slots\r\n*2\r\n:0\r\n:16383\r\n+nodes\r\n*1\r\n" + goodNode + "+availability-zone\r\n%1\r\n+x\r\n*0\r\n", // a future field
}

// oddSlots are CLUSTER SLOTS replies of other shapes.
var oddSlots = []string{
	"*0\r\n", "_\r\n", "+OK\r\n", "*1\r\n_\r\n", "*1\r\n*2\r\n:0\r\n:1\r\n", "*1\r\n*3\r\n:0\r\n:1\r\n_\r\n",
	"*1\r\n*3\r\n:0\r\n:16383\r\n*0\r\n", "*1\r\n*3\r\n:0\r\n:16383\r\n*1\r\n$1\r\nh\r\n",
	"*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$1\r\nh\r\n$1\r\nx\r\n", "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n:1\r\n:7000\r\n",
	"*1\r\n*3\r\n:16383\r\n:0\r\n*2\r\n$1\r\nh\r\n:7000\r\n", "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:7000\r\n",
	"*1\r\n*3\r\n$1\r\na\r\n:1\r\n*2\r\n$1\r\nh\r\n:7000\r\n", "*1\r\n*4\r\n:0\r\n:16383\r\n*2\r\n$1\r\nh\r\n:7000\r\n:1\r\n",
	"*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n$1\r\nh\r\n:7000\r\n$2\r\nid\r\n%1\r\n+hostname\r\n$1\r\nx\r\n",         // RESP3 7.0+ extra node fields: usable
	"*2\r\n*3\r\n:0\r\n:8000\r\n*2\r\n$1\r\nh\r\n:7000\r\n*3\r\n:8001\r\n:16383\r\n*2\r\n$1\r\nh\r\n:7000\r\n", // one primary, two ranges
}

// checkTopology fails t unless fetching the slot map from a node
// answering shards (and slots, when CLUSTER SHARDS is refused) gives a
// map whose every slot owner is a shard with a primary, or an error.
func checkTopology(t *testing.T, shards, slots string) {
	t.Helper()
	replies := map[string]string{"CLUSTER SHARDS": shards}
	if slots != "" {
		replies = map[string]string{"CLUSTER SHARDS": "-ERR unknown subcommand\r\n", "CLUSTER SLOTS": slots}
	}
	var (
		top *Topology
		err error
	)
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("FetchTopology(%q, %q) panicked: %v", shards, slots, p)
			}
		}()
		top, err = FetchTopology(context.Background(), &scriptConn{replies: replies}, "127.0.0.1:7000", false)
	}()
	if err != nil {
		if !strings.Contains(err.Error(), "127.0.0.1:7000") {
			t.Errorf("FetchTopology(%q, %q): %v, want an error naming the node", shards, slots, err)
		}
		return
	}
	if len(top.Shards) == 0 {
		t.Fatalf("FetchTopology(%q, %q): a map without shards", shards, slots)
	}
	for slot := range uint16(Slots) {
		if s, ok := top.Owner(slot); ok && (s.Primary == "" || len(s.Ranges) == 0) {
			t.Fatalf("FetchTopology(%q, %q): slot %d owned by %+v", shards, slots, slot, s)
		}
	}
	for _, s := range top.Shards {
		for _, a := range append([]string{s.Primary}, s.Replicas...) {
			if _, port, err := net.SplitHostPort(a); err != nil || !validPort(port) {
				t.Fatalf("FetchTopology(%q, %q): node address %q", shards, slots, a)
			}
		}
	}
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n <= 65535
}

func TestAuditTopologyOddReplies(t *testing.T) {
	checkTopology(t, goodShards, "")
	for _, r := range oddShards {
		checkTopology(t, r, "")
	}
	for _, r := range oddSlots {
		checkTopology(t, "", r)
	}
	// What is usable is used: numbers sent as strings, RESP2 flat maps,
	// future fields.
	for _, r := range []string{oddShards[13], oddShards[20], oddShards[21], oddShards[22]} {
		top, err := FetchTopology(context.Background(), &scriptConn{replies: map[string]string{"CLUSTER SHARDS": r}}, "127.0.0.1:7000", false)
		if err != nil {
			t.Errorf("FetchTopology(%q): %v", r, err)
		} else if top.Covered() != Slots {
			t.Errorf("FetchTopology(%q): covered %d", r, top.Covered())
		}
	}
	// Nothing usable: ErrNoTopology, naming the node.
	_, err := FetchTopology(context.Background(), &scriptConn{replies: map[string]string{"CLUSTER SHARDS": "*1\r\n_\r\n"}}, "127.0.0.1:7000", false)
	if !errors.Is(err, ErrNoTopology) {
		t.Errorf("FetchTopology of a null shard: %v, want ErrNoTopology", err)
	}
}

// FuzzTopology parses any CLUSTER SHARDS or CLUSTER SLOTS reply. Under
// `go test` only the seeds run.
func FuzzTopology(f *testing.F) {
	for _, r := range append(append([]string{goodShards}, oddShards...), oddSlots...) {
		f.Add([]byte(r))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := resptest.Parse(b); err != nil {
			return
		}
		checkTopology(t, string(b), "")
		checkTopology(t, "", string(b))
	})
}

// sentinelReplies answers querySentinel's four commands.
func sentinelReplies(addr, master, replicas, sentinels string) *scriptConn {
	return &scriptConn{replies: map[string]string{
		"SENTINEL GET-MASTER-ADDR-BY-NAME": addr,
		"SENTINEL MASTER":                  master,
		"SENTINEL REPLICAS":                replicas,
		"SENTINEL SENTINELS":               sentinels,
	}}
}

func TestAuditSentinelOddReplies(t *testing.T) {
	const good = "*2\r\n$8\r\n10.0.0.1\r\n$4\r\n6379\r\n"
	replica := func(ip, port string) string {
		return "%4\r\n+ip\r\n" + bulk(ip) + "+port\r\n" + bulk(port) + "+flags\r\n+slave\r\n+master-link-status\r\n+ok\r\n"
	}
	// Master addresses no sentinel sends: an error naming the sentinel,
	// never an address to dial (":6379" is this host's port 6379).
	for _, addr := range []string{
		"*2\r\n$0\r\n\r\n$0\r\n\r\n", "*2\r\n$0\r\n\r\n$4\r\n6379\r\n", "*2\r\n$1\r\nh\r\n$1\r\nx\r\n",
		"*2\r\n$1\r\nh\r\n$1\r\n0\r\n", "*2\r\n$1\r\nh\r\n$6\r\n165536\r\n", "*2\r\n*0\r\n*0\r\n", "*2\r\n:1\r\n:2\r\n",
		"*3\r\n$1\r\nh\r\n$1\r\n1\r\n$1\r\n1\r\n", "*0\r\n", "+OK\r\n", ":1\r\n", "%1\r\n$1\r\nh\r\n$1\r\n1\r\n",
	} {
		a, err := querySentinel(context.Background(), sentinelReplies(addr, "*0\r\n", "*0\r\n", "*0\r\n"), "s:1", "m")
		if err == nil || !strings.Contains(err.Error(), "s:1") {
			t.Errorf("GET-MASTER-ADDR-BY-NAME %q: master %q, err %v; want an error naming the sentinel", addr, a.master, err)
		}
	}
	// The optional answers of odd shapes are ignored; entries with no
	// usable address are skipped.
	for _, odd := range []string{"_\r\n", "+OK\r\n", ":1\r\n", "*1\r\n:1\r\n", "*1\r\n*1\r\n:1\r\n", "%1\r\n+a\r\n+b\r\n",
		"*2\r\n" + replica("", "1") + replica("h", "x"), "*1\r\n" + replica("h", "0"), "-ERR no\r\n"} {
		a, err := querySentinel(context.Background(), sentinelReplies(good, odd, odd, odd), "s:1", "m")
		if err != nil || a.master != "10.0.0.1:6379" || len(a.replicas) != 0 || len(a.sentinels) != 0 || a.epoch != -1 {
			t.Errorf("optional answers %q: %+v, %v; want the master only", odd, a, err)
		}
	}
	a, err := querySentinel(context.Background(), sentinelReplies(good, "*0\r\n", "*1\r\n"+replica("10.0.0.2", "6380"), "*1\r\n"+replica("10.0.0.9", "26379")), "s:1", "m")
	if err != nil || a.master != "10.0.0.1:6379" || len(a.replicas) != 1 || a.replicas[0] != "10.0.0.2:6380" || len(a.sentinels) != 1 {
		t.Errorf("good answers: %+v, %v", a, err)
	}
	// A sentinel that does not monitor the name: no master, no error.
	if a, err := querySentinel(context.Background(), sentinelReplies("_\r\n", "-ERR No such master\r\n", "-ERR x\r\n", "-ERR x\r\n"), "s:1", "m"); err != nil || a.master != "" {
		t.Errorf("unknown name: %+v, %v", a, err)
	}
}

// FuzzSentinelEvents parses any event payload.
func FuzzSentinelEvents(f *testing.F) {
	for _, s := range []string{"master mymaster 10.0.0.1 6379", "slave 10.0.0.2:6379 10.0.0.2 6379 @ mymaster 10.0.0.1 6379",
		"mymaster 10.0.0.1 6379 10.0.0.2 6380", "", "slave a b c @", "master  x", "master m h x", "m h 1 h 99999", "slave a h 1 @ m h -1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if in, ok := parseInstance(s); ok && (!dialable(in.addr) || !dialable(in.master)) {
			t.Fatalf("parseInstance(%q) = %+v", s, in)
		}
		if _, from, to, ok := parseSwitch(s); ok && (!dialable(from) || !dialable(to)) {
			t.Fatalf("parseSwitch(%q) = %q, %q", s, from, to)
		}
	})
}

func dialable(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	return err == nil && host != "" && validPort(port)
}

func TestAuditRedirectAddr(t *testing.T) {
	for _, c := range []struct {
		reply, moved, ask string
	}{
		{"-MOVED 3999 127.0.0.1:6381\r\n", "127.0.0.1:6381", ""},
		{"-ASK 3999 127.0.0.1:6381\r\n", "", "127.0.0.1:6381"},
		{"-MOVED 1 ::1:7000\r\n", "[::1]:7000", ""},
		{"-MOVED\r\n", "", ""}, {"-MOVED 1\r\n", "", ""}, {"-ASK\r\n", "", ""}, {"-ASK me\r\n", "", ""},
		{"-ASKEW 1 2\r\n", "", ""}, {"-MOVEDX 1 2\r\n", "", ""},
	} {
		r := resptest.Result(c.reply)
		ve, ok := valkey.IsValkeyErr(r.Error())
		if !ok {
			t.Fatalf("%q: not an error reply", c.reply)
		}
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("%q panicked: %v", c.reply, p)
				}
			}()
			m, mok := MovedAddr(ve)
			a, aok := AskAddr(ve)
			if m != c.moved || mok != (c.moved != "") || a != c.ask || aok != (c.ask != "") {
				t.Errorf("%q: MovedAddr %q %v, AskAddr %q %v; want %q, %q", c.reply, m, mok, a, aok, c.moved, c.ask)
			}
		}()
	}
}
