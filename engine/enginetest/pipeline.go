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
	if ps, ok := v.([]*string); ok { // pointers: print what they point to
		s := make([]string, len(ps))
		for i, p := range ps {
			s[i] = "<nil>"
			if p != nil {
				s[i] = *p
			}
		}
		v = s
	}
	return fmt.Sprintf("%+v", v), nil
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

// keyState describes key's type and value.
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
		v, err = eng.XRange(ctx, key, "-", "+", 0).Await(ctx)
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
