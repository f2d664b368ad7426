package driverstest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/drivers"
)

// bigPipeline is the size of the big pipelines (and the suite's
// Options.MaxPipeline).
const bigPipeline = 10000

// pipeline: replies come back in order, each with its own kind.
func (s *suite) pipeline(t *testing.T, x execer) {
	ctx := s.ctx(t)
	var cmds [][]string
	var want []drivers.Value
	for i := range 100 {
		k := fmt.Sprintf("pipe:%d", i)
		cmds = append(cmds, args("SET", k, "v"+strconv.Itoa(i)), args("GET", k), args("INCR", "pipe:n"), args("STRLEN", k))
		want = append(want, drivers.Status("OK"), drivers.String("v"+strconv.Itoa(i)), drivers.Int(int64(i+1)), drivers.Int(int64(len("v"+strconv.Itoa(i)))))
	}
	cmds = append(cmds, args("PING"), args("ECHO", "e"), args("EXISTS", "pipe:0", "pipe:1", "none"), args("DEL", "pipe:n"))
	want = append(want, drivers.Status("PONG"), drivers.String("e"), drivers.Int(2), drivers.Int(1))
	rs := do(t, ctx, x, cmds...)
	for i, r := range rs {
		if !sameReply(r.Value, want[i]) {
			t.Fatalf("command %d %q: %v, want %v", i, cmds[i], r.Value, want[i])
		}
	}
	// A batch of one, and an empty one.
	if rs := do(t, ctx, x, args("GET", "pipe:7")); rs[0].Value.Str != "v7" {
		t.Fatalf("GET alone: %v", rs[0].Value)
	}
	if rs := x.exec(ctx, nil); len(rs) != 0 {
		t.Fatalf("an empty pipeline returned %d results", len(rs))
	}
	// An aggregate.
	rs = do(t, ctx, x, args("RPUSH", "pipe:l", "a", "b", "c"), args("LRANGE", "pipe:l", "0", "-1"))
	if got := rs[1].Value; got.Kind != drivers.KindArray || len(got.Elems) != 3 || got.Elems[0].Str != "a" || got.Elems[2].Str != "c" {
		t.Fatalf("LRANGE: %v", got)
	}
}

// sameReply compares a reply with the expected one; a bulk and a simple
// string compare equal when the text is (drivers may not tell them apart,
// nor may the engine need it).
func sameReply(got, want drivers.Value) bool {
	isStr := func(k drivers.Kind) bool { return k == drivers.KindString || k == drivers.KindStatus }
	if isStr(got.Kind) && isStr(want.Kind) {
		return got.Str == want.Str
	}
	return got.Equal(want)
}

// errorReplies: an error reply fails only its command, as a reply (not a
// transport error) with the server's text, error code first: the engine
// reads MOVED, ASK, TRYAGAIN, LOADING, ... from it.
func (s *suite) errorReplies(t *testing.T, x execer) {
	ctx := s.ctx(t)
	reply := func(text string) []string {
		return args("EVAL", "return redis.error_reply(ARGV[1])", "0", text)
	}
	texts := []string{
		"MOVED 3999 127.0.0.1:6381", "ASK 3999 127.0.0.1:6381", "TRYAGAIN Multiple keys request during rehashing of slot",
		"CLUSTERDOWN The cluster is down", "LOADING Valkey is loading the dataset in memory", "READONLY You can't write against a read only replica.",
		"MASTERDOWN Link with MASTER is down", "NOSCRIPT No matching script.", "BUSY Valkey is busy running a script.",
		"NOPERM this user has no permissions", "CROSSSLOT Keys in request don't hash to the same slot", "EXECABORT Transaction discarded",
		"ERR some error", "BUSYGROUP Consumer Group name already exists", "NOGROUP No such key",
	}
	cmds := [][]string{args("SET", "err:s", "x"), args("LPUSH", "err:s", "y"), args("GET", "err:s"), args("NOSUCHCOMMAND", "a")}
	for _, text := range texts {
		cmds = append(cmds, reply(text))
	}
	cmds = append(cmds, args("PING"))
	rs := do(t, ctx, x, cmds...)
	if rs[0].Value.Str != "OK" || rs[2].Value.Str != "x" || rs[len(rs)-1].Value.Str != "PONG" {
		t.Fatalf("an error reply spoilt its neighbours: %v, %v, %v", rs[0].Value, rs[2].Value, rs[len(rs)-1].Value)
	}
	wantPrefix := func(i int, prefix string) {
		t.Helper()
		v := rs[i].Value
		if v.Kind != drivers.KindError || !strings.HasPrefix(v.Str, prefix) {
			t.Errorf("%q: %v, want an error reply starting %q", cmds[i], v, prefix)
		}
	}
	wantPrefix(1, "WRONGTYPE Operation against a key holding the wrong kind of value")
	wantPrefix(3, "ERR unknown command")
	for i, text := range texts {
		v := rs[4+i].Value
		if v.Kind != drivers.KindError || v.Str != text {
			t.Errorf("error reply %q read as %v", text, v)
		}
	}
}

// nilReplies: nulls are replies, at the top and inside arrays.
func (s *suite) nilReplies(t *testing.T, x execer) {
	ctx := s.ctx(t)
	rs := do(t, ctx, x, args("DEL", "nil:a"), args("SET", "nil:b", "b"), args("GET", "nil:a"), args("MGET", "nil:a", "nil:b"), args("HGET", "nil:h", "f"))
	if v := rs[2].Value; v.Kind != drivers.KindNull {
		t.Errorf("GET of a missing key: %v", v)
	}
	if v := rs[3].Value; v.Kind != drivers.KindArray || len(v.Elems) != 2 || v.Elems[0].Kind != drivers.KindNull || v.Elems[1].Str != "b" {
		t.Errorf("MGET missing, present: %v", v)
	}
	if v := rs[4].Value; v.Kind != drivers.KindNull {
		t.Errorf("HGET of a missing hash: %v", v)
	}
}

// binary: keys and values carry any bytes.
func (s *suite) binary(t *testing.T, x execer) {
	ctx := s.ctx(t)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	var cmds [][]string
	cmds = append(cmds, args("SET", string(all), string(all)), args("GET", string(all)))
	for i := range 256 {
		k := "bin:" + string([]byte{byte(i)})
		cmds = append(cmds, args("SET", k, string([]byte{byte(i), byte(255 - i)})), args("GET", k))
	}
	cmds = append(cmds, args("SET", "", ""), args("GET", ""), args("STRLEN", ""), args("DEL", ""))
	big := make([]byte, 512<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	cmds = append(cmds, args("SET", "bin:big", string(big)), args("GET", "bin:big"), args("STRLEN", "bin:big"))
	rs := do(t, ctx, x, cmds...)
	if rs[1].Value.Str != string(all) {
		t.Errorf("the 256 byte values as key and value came back as %q", rs[1].Value.Str)
	}
	for i := range 256 {
		if got := rs[3+2*i].Value.Str; got != string([]byte{byte(i), byte(255 - i)}) {
			t.Errorf("value of key byte %d: %q", i, got)
		}
	}
	n := 2 + 2*256
	if v := rs[n+1].Value; v.Kind != drivers.KindString || v.Str != "" {
		t.Errorf("GET of an empty value under an empty key: %v", v)
	}
	if v := rs[n+2].Value; v.Int != 0 || v.Kind != drivers.KindInt {
		t.Errorf("STRLEN of the empty value: %v", v)
	}
	if got := rs[n+5].Value.Str; got != string(big) {
		t.Errorf("512 KiB value came back with %d bytes, differing", len(got))
	}
	if v := rs[n+6].Value; v.Int != int64(len(big)) {
		t.Errorf("STRLEN of the 512 KiB value: %v", v)
	}
}

// bigPipeline: bigPipeline commands in one pipeline, in order, twice.
func (s *suite) bigPipeline(t *testing.T, x execer) {
	ctx := s.ctx(t)
	for round := range 2 {
		cmds := make([][]string, bigPipeline)
		for i := range cmds {
			cmds[i] = args("INCR", "big:n")
		}
		rs := do(t, ctx, x, cmds...)
		for i, r := range rs {
			if want := int64(round*bigPipeline + i + 1); r.Value.Kind != drivers.KindInt || r.Value.Int != want {
				t.Fatalf("round %d, INCR %d: %v, want %d", round, i, r.Value, want)
			}
		}
	}
}

// transportError checks that r failed without a reply, and for the
// neutral interface that it says why (wraps want when want is set).
func transportError(t *testing.T, x execer, what string, r drivers.Result, want error) {
	t.Helper()
	if r.Err == nil {
		t.Errorf("%s: %v, want a transport error", what, r.Value)
		return
	}
	if want != nil && x.neutral() && !errors.Is(r.Err, want) {
		t.Errorf("%s: %v, want an error wrapping %v", what, r.Err, want)
	}
}
