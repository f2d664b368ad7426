package enginetest

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
)

// twin is a typed command run the three ways: setup are commands (Do's
// words, $a and $b standing for the case's two keys) that prepare its
// keys; args are the method's arguments after ctx, given the keys.
type twin struct {
	name  string
	setup [][]string
	args  func(a, b string) []any
}

const twinScript = "return redis.call('GET', KEYS[1])"

func twins() []twin {
	sha := sha1.Sum([]byte(twinScript))
	digest := hex.EncodeToString(sha[:])
	str := [][]string{{"SET", "$a", "1.5"}}
	hash := [][]string{{"HSET", "$a", "f", "1.5", "g", "x"}}
	list := [][]string{{"RPUSH", "$a", "x", "y", "x", "z"}}
	zset := [][]string{{"ZADD", "$a", "1", "m1", "2.5", "m2", "3", "m3"}}
	stream := [][]string{{"XADD", "$a", "1-1", "f", "v1"}, {"XADD", "$a", "2-1", "f", "v2"}, {"XADD", "$a", "3-1", "f", "v3"}}
	group := append(slices.Clone(stream), []string{"XGROUP", "CREATE", "$a", "g", "0"}, []string{"XREADGROUP", "GROUP", "g", "c", "STREAMS", "$a", ">"})
	// newGroup: nothing delivered yet; two: streams $a and $b, a group g
	// on each.
	newGroup := append(slices.Clone(stream), []string{"XGROUP", "CREATE", "$a", "g", "0"})
	two := append(slices.Clone(newGroup), []string{"XADD", "$b", "1-1", "h", "w1"}, []string{"XGROUP", "CREATE", "$b", "g", "0"})
	gone := append(slices.Clone(group), []string{"XDEL", "$a", "2-1"}) // 2-1 pending, deleted
	k := func(a, _ string) []any { return []any{a} }
	return []twin{
		{"GetDel", str, k},
		{"GetEx", str, func(a, _ string) []any { return []any{a, time.Hour} }},
		{"SetArgs", str, func(a, _ string) []any { return []any{a, "new", engine.SetOptions{XX: true, Get: true}} }},
		{"SetArgs", nil, func(a, _ string) []any { return []any{a, "new", engine.SetOptions{XX: true}} }},
		{"Append", str, func(a, _ string) []any { return []any{a, "00"} }},
		{"StrLen", str, k},
		{"IncrByFloat", str, func(a, _ string) []any { return []any{a, 2.25} }},
		{"IncrByFloat", hash, func(a, _ string) []any { return []any{a, 1.0} }}, // WRONGTYPE
		{"Unlink", str, func(a, b string) []any { return []any{a, b} }},
		{"Persist", [][]string{{"SET", "$a", "v", "EX", "100"}}, k},
		{"PTTL", str, k},
		{"Type", hash, k},
		{"Rename", str, func(a, b string) []any { return []any{a, b} }},
		{"Rename", nil, func(a, b string) []any { return []any{a, b} }}, // no such key
		{"HMGet", hash, func(a, _ string) []any { return []any{a, "f", "none", "g"} }},
		{"HExists", hash, func(a, _ string) []any { return []any{a, "g"} }},
		{"HLen", hash, k},
		{"HKeys", hash, k},
		{"HVals", hash, k},
		{"HSetNX", hash, func(a, _ string) []any { return []any{a, "h", "new"} }},
		{"HIncrByFloat", hash, func(a, _ string) []any { return []any{a, "f", -0.25} }},
		{"RPop", list, k},
		{"RPop", nil, k}, // ErrNil
		{"LLen", list, k},
		{"LRem", list, func(a, _ string) []any { return []any{a, int64(0), "x"} }},
		{"LIndex", list, func(a, _ string) []any { return []any{a, int64(-1)} }},
		{"LMove", list, func(a, b string) []any { return []any{a, b, engine.Left, engine.Right} }},
		{"SIsMember", [][]string{{"SADD", "$a", "m"}}, func(a, _ string) []any { return []any{a, "m"} }},
		{"SCard", [][]string{{"SADD", "$a", "m", "n"}}, k},
		{"ZRem", zset, func(a, _ string) []any { return []any{a, "m1", "none"} }},
		{"ZRange", zset, func(a, _ string) []any { return []any{a, int64(0), int64(-1)} }},
		{"ZRevRange", zset, func(a, _ string) []any { return []any{a, int64(0), int64(1)} }},
		{"ZRevRangeWithScores", zset, func(a, _ string) []any { return []any{a, int64(0), int64(1)} }},
		{"ZRangeArgs", zset, func(a, _ string) []any {
			return []any{engine.ZRangeArgs{Key: a, Start: "(1", Stop: "+inf", ByScore: true, Offset: 1}}
		}},
		{"ZRangeArgsWithScores", zset, func(a, _ string) []any {
			return []any{engine.ZRangeArgs{Key: a, Start: "+inf", Stop: "-inf", ByScore: true, Rev: true, Count: 2}}
		}},
		{"ZCard", zset, k},
		{"ZRank", zset, func(a, _ string) []any { return []any{a, "m2"} }},
		{"ZRevRank", zset, func(a, _ string) []any { return []any{a, "m2"} }},
		{"ZCount", zset, func(a, _ string) []any { return []any{a, "(1", "3"} }},
		{"XAddWith", stream, func(a, _ string) []any {
			return []any{a, engine.XAddOptions{ID: "9-1", Trim: &engine.XTrimOptions{MaxLen: 2}}, "f", "v9"}
		}},
		{"XTrim", stream, func(a, _ string) []any { return []any{a, engine.XTrimOptions{MinID: "2-1"}} }},
		{"XLen", stream, k},
		{"XRange", stream, func(a, _ string) []any { return []any{a, "(1-1", "+", int64(1)} }},
		{"XRevRange", stream, func(a, _ string) []any { return []any{a, "+", "-", int64(2)} }},
		{"XDel", stream, func(a, _ string) []any { return []any{a, "2-1", "7-7"} }},
		{"XAck", group, func(a, _ string) []any { return []any{a, "g", "1-1", "3-1"} }},
		{"XRead", two, func(a, b string) []any { return []any{int64(0), map[string]string{a: "0", b: "0"}} }},
		{"XRead", stream, func(a, _ string) []any { return []any{int64(1), map[string]string{a: "1-1"}} }},
		{"XRead", stream, func(a, _ string) []any { return []any{int64(0), map[string]string{a: "3-1"}} }}, // nothing: empty map
		{"XRead", hash, func(a, _ string) []any { return []any{int64(0), map[string]string{a: "0"}} }},     // WRONGTYPE
		{"XReadGroup", two, func(a, b string) []any { return []any{"g", "c", int64(0), map[string]string{a: ">", b: ">"}} }},
		{"XReadGroup", newGroup, func(a, _ string) []any { return []any{"g", "c2", int64(2), map[string]string{a: ">"}} }},
		{"XReadGroup", group, func(a, _ string) []any { return []any{"g", "c", int64(0), map[string]string{a: "1-1"}} }},   // c's pending
		{"XReadGroup", group, func(a, _ string) []any { return []any{"g", "c", int64(0), map[string]string{a: ">"}} }},     // nothing new
		{"XReadGroup", stream, func(a, _ string) []any { return []any{"none", "c", int64(0), map[string]string{a: ">"}} }}, // NOGROUP
		{"XPending", group, func(a, _ string) []any { return []any{a, "g"} }},
		{"XPending", newGroup, func(a, _ string) []any { return []any{a, "g"} }},  // nothing pending
		{"XPending", stream, func(a, _ string) []any { return []any{a, "none"} }}, // NOGROUP
		{"XPendingExt", group, func(a, _ string) []any { return []any{a, "g", engine.XPendingOptions{Count: 10}} }},
		{"XPendingExt", group, func(a, _ string) []any {
			return []any{a, "g", engine.XPendingOptions{Start: "2-1", End: "+", Count: 1, Consumer: "c"}}
		}},
		{"XPendingExt", group, func(a, _ string) []any { return []any{a, "g", engine.XPendingOptions{Count: 10, Idle: time.Hour}} }}, // none idle so long
		{"XPendingExt", stream, func(a, _ string) []any { return []any{a, "none", engine.XPendingOptions{Count: 10}} }},              // NOGROUP
		{"XClaim", group, func(a, _ string) []any { return []any{a, "g", "c2", time.Duration(0), "1-1", "3-1", "9-9"} }},
		{"XClaim", gone, func(a, _ string) []any { return []any{a, "g", "c2", time.Duration(0), "2-1", "3-1"} }},
		{"XClaim", group, func(a, _ string) []any { return []any{a, "g", "c2", time.Hour, "1-1"} }},            // not idle so long
		{"XClaim", stream, func(a, _ string) []any { return []any{a, "none", "c2", time.Duration(0), "1-1"} }}, // NOGROUP
		{"XAutoClaim", group, func(a, _ string) []any { return []any{a, "g", "c2", time.Duration(0), "0-0", int64(2)} }},
		{"XAutoClaim", gone, func(a, _ string) []any { return []any{a, "g", "c2", time.Duration(0), "0-0", int64(0)} }},
		{"XAutoClaim", group, func(a, _ string) []any { return []any{a, "g", "c2", time.Hour, "0-0", int64(0)} }},
		{"XAutoClaim", stream, func(a, _ string) []any { return []any{a, "none", "c2", time.Duration(0), "0-0", int64(0)} }}, // NOGROUP
		{"XGroupCreate", stream, func(a, _ string) []any { return []any{a, "g2", "$", false} }},
		{"XGroupCreate", nil, func(a, _ string) []any { return []any{a, "g", "0", true} }},
		{"XGroupCreate", nil, func(a, _ string) []any { return []any{a, "g", "0", false} }},   // no stream: ERR
		{"XGroupCreate", group, func(a, _ string) []any { return []any{a, "g", "0", false} }}, // BUSYGROUP
		{"XGroupDestroy", group, func(a, _ string) []any { return []any{a, "g"} }},
		{"XGroupDestroy", stream, func(a, _ string) []any { return []any{a, "g"} }},
		{"XInfoGroups", two, k},
		{"XInfoGroups", group, k},
		{"XInfoGroups", nil, k}, // no such key
		{"Publish", nil, func(a, _ string) []any { return []any{"chan:" + a, "m"} }},
		{"SPublish", nil, func(a, _ string) []any { return []any{"chan:" + a, "m"} }},
		{"Eval", str, func(a, _ string) []any { return []any{twinScript, []string{a}} }},
		{"EvalRO", str, func(a, _ string) []any { return []any{twinScript, []string{a}} }},
		{"EvalSha", [][]string{{"SET", "$a", "v"}, {"SCRIPT", "LOAD", twinScript}}, func(a, _ string) []any { return []any{digest, []string{a}} }},
		{"EvalShaRO", [][]string{{"SET", "$a", "v"}, {"SCRIPT", "LOAD", twinScript}}, func(a, _ string) []any { return []any{digest, []string{a}} }},
	}
}

// PipelineCommands: each typed command of Pipeline and Tx returns what
// the Engine's method of the same name returns, value or error, and
// leaves its keys as the Engine's does, on the same data.
func PipelineCommands(t *testing.T, o Options) {
	eng := o.newEngine(t, o.Config(startServer(t)))
	ctx := ctxT(t)
	for i, tc := range twins() {
		var got [3]string
		for j, via := range []string{"engine", "pipeline", "tx"} {
			a, b := fmt.Sprintf("{%d%s}a", i, via), fmt.Sprintf("{%d%s}b", i, via)
			for _, words := range tc.setup {
				w := slices.Clone(words)
				for n := range w {
					w[n] = strings.NewReplacer("$a", a, "$b", b).Replace(w[n])
				}
				if _, err := eng.Do(ctx, w[0], w[1:]...).Await(ctx); err != nil {
					t.Fatalf("%s setup %q: %v", tc.name, w, err)
				}
			}
			reply, err := runTwin(ctx, eng, via, tc.name, tc.args(a, b))
			if err != nil {
				t.Fatalf("%s via %s: %v", tc.name, via, err)
			}
			// Keys in a reply (XRead's map) differ by way: named alike.
			reply = strings.NewReplacer(a, "$a", b, "$b").Replace(reply)
			got[j] = reply + " | " + keyState(ctx, t, eng, a) + " | " + keyState(ctx, t, eng, b)
		}
		if got[1] != got[0] || got[2] != got[0] {
			t.Errorf("%s (case %d):\n engine   %s\n pipeline %s\n tx       %s", tc.name, i, got[0], got[1], got[2])
		}
	}
}

// runTwin runs the method name with args through the Engine, a Pipeline
// or a Tx (via) and returns its outcome as text; err is Exec's error or a
// harness failure.
func runTwin(ctx context.Context, eng *engine.Engine, via, name string, args []any) (string, error) {
	in := make([]reflect.Value, 0, len(args)+1)
	var recv reflect.Value
	var exec func(context.Context) error
	switch via {
	case "engine":
		recv = reflect.ValueOf(eng)
		in = append(in, reflect.ValueOf(ctx))
	case "pipeline":
		p := eng.Pipeline()
		recv, exec = reflect.ValueOf(p), p.Exec
	default:
		tx := eng.Tx()
		recv, exec = reflect.ValueOf(tx), tx.Exec
	}
	m := recv.MethodByName(name)
	if !m.IsValid() {
		return "", fmt.Errorf("no method %s", name)
	}
	for _, a := range args {
		in = append(in, reflect.ValueOf(a))
	}
	fut := m.Call(in)[0]
	if exec != nil {
		if err := exec(ctx); err != nil {
			return "", err
		}
	}
	out := fut.MethodByName("Await").Call([]reflect.Value{reflect.ValueOf(ctx)})
	if err, _ := out[1].Interface().(error); err != nil {
		return "error " + errClass(err), nil
	}
	v := out[0].Interface()
	switch vs := v.(type) {
	case []*string: // pointers: print what they point to
		s := make([]string, len(vs))
		for i, p := range vs {
			s[i] = "<nil>"
			if p != nil {
				s[i] = *p
			}
		}
		v = s
	case []engine.XPendingEntry:
		v = showPending(vs)
	}
	return fmt.Sprintf("%+v", v), nil
}

// shownPending is an XPendingEntry as compared: its Idle depends on when
// the way's set-up ran, so only whether it is recent (under a minute:
// every set-up runs just before its command) is compared.
type shownPending struct {
	ID, Consumer, Idle string
	Deliveries         int64
}

func showPending(es []engine.XPendingEntry) []shownPending {
	s := make([]shownPending, len(es))
	for i, e := range es {
		idle := "recent"
		if e.Idle < 0 || e.Idle >= time.Minute {
			idle = e.Idle.String() // differs: the twins are told apart
		}
		s[i] = shownPending{ID: e.ID, Consumer: e.Consumer, Idle: idle, Deliveries: e.Deliveries}
	}
	return s
}

// errClass is what must match of an error: ErrNil, a server error's
// prefix, or else its text.
func errClass(err error) string {
	var se *engine.ServerError
	switch {
	case errors.Is(err, engine.ErrNil):
		return "ErrNil"
	case errors.As(err, &se):
		return "server " + se.Prefix
	}
	return err.Error()
}

// streamState describes a stream: its entries, and its groups with their
// pending entries.
func streamState(ctx context.Context, eng *engine.Engine, key string) (string, error) {
	entries, err := eng.XRange(ctx, key, "-", "+", 0).Await(ctx)
	if err != nil {
		return "", err
	}
	groups, err := eng.XInfoGroups(ctx, key).Await(ctx)
	if err != nil {
		return "", err
	}
	s := fmt.Sprintf("%+v", entries)
	for _, g := range groups {
		pend, err := eng.XPendingExt(ctx, key, g.Name, engine.XPendingOptions{Count: 100}).Await(ctx)
		if err != nil {
			return "", err
		}
		s += fmt.Sprintf(" group %+v pending %+v", g, showPending(pend))
	}
	return s, nil
}

// keyState describes key's type and value (a stream's groups too).
func keyState(ctx context.Context, t *testing.T, eng *engine.Engine, key string) string {
	t.Helper()
	typ, err := eng.Type(ctx, key).Await(ctx)
	if err != nil {
		t.Fatalf("TYPE %s: %v", key, err)
	}
	var v any
	switch typ {
	case "none":
		return typ
	case "string":
		v, err = eng.Get(ctx, key).Await(ctx)
	case "hash":
		v, err = eng.HGetAll(ctx, key).Await(ctx)
	case "list":
		v, err = eng.LRange(ctx, key, 0, -1).Await(ctx)
	case "set":
		var m []string
		m, err = eng.SMembers(ctx, key).Await(ctx)
		slices.Sort(m)
		v = m
	case "zset":
		v, err = eng.ZRangeWithScores(ctx, key, 0, -1).Await(ctx)
	case "stream":
		v, err = streamState(ctx, eng, key)
	}
	if err != nil {
		t.Fatalf("reading %s %s: %v", typ, key, err)
	}
	ttl, err := eng.TTL(ctx, key).Await(ctx)
	if err != nil {
		t.Fatalf("TTL %s: %v", key, err)
	}
	return fmt.Sprintf("%s %+v ttl set: %t", typ, v, ttl.HasExpiry)
}
