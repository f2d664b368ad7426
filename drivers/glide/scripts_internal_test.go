package glide

import (
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/drivers"
)

// How commands are judged: the servers' own commands in any case are
// sent as they are (harmless scripts too), and so are a module's
// command, FCALL and EVALSHA of a script not seen until the driver
// learned them (TestLearn); scripts that may return a map or a set, and
// DEBUG PROTOCOL map and set, go alone; DEBUG PROTOCOL bignum and attrib,
// and scripts that may return a big number, are refused.
func TestRisk(t *testing.T) {
	loaded := "-- TestRisk loaded\nreturn 1"
	remember([]string{"script", "load", loaded})
	sum := sha1.Sum([]byte(loaded))
	loadedSHA := strings.ToUpper(hex.EncodeToString(sum[:]))
	cases := []struct {
		args []string
		want scriptRisk
	}{
		{[]string{"GET", "k"}, riskNone},
		{[]string{"get", "k"}, riskNone},
		{[]string{"GeoRadiusByMember_RO", "k"}, riskNone},
		{[]string{"restore-asking", "k"}, riskNone},
		{[]string{"HGETEX", "k"}, riskNone},
		{[]string{""}, riskNone},
		{[]string{"EVAL"}, riskNone},
		{[]string{"EVAL", "return 1", "0"}, riskNone},
		{[]string{"eval_ro", "return {map={}}", "0"}, riskAlone},
		{[]string{"EVAL", "redis.setresp(3) return redis.call('HGETALL', 'h')", "0"}, riskAlone},
		{[]string{"EVAL", "return {big_number='1'}", "0"}, riskRefuse},
		{[]string{"EVALSHA", strings.Repeat("ab", 20), "0"}, riskNone},
		{[]string{"EVALSHA", "short", "0"}, riskNone},
		{[]string{"evalsha_ro", loadedSHA, "0"}, riskNone},
		{[]string{"FCALL", "f", "0"}, riskNone},
		{[]string{"fcall_ro", "f", "0"}, riskNone},
		{[]string{"JSON.GET", "k"}, riskNone},
		{[]string{"FT.SEARCH", "idx", "*"}, riskNone},
		{[]string{"NOSUCHCOMMANDATALLINTHISTABLE", "k"}, riskNone},
		{[]string{"DEBUG", "PROTOCOL", "bignum"}, riskRefuse},
		{[]string{"debug", "protocol", "ATTRIB"}, riskRefuse},
		{[]string{"DEBUG", "PROTOCOL", "map"}, riskAlone},
		{[]string{"DEBUG", "PROTOCOL", "Set"}, riskAlone},
		{[]string{"DEBUG", "PROTOCOL", "double"}, riskNone},
		{[]string{"DEBUG", "PROTOCOL"}, riskNone},
		{[]string{"DEBUG", "SLEEP", "0"}, riskNone},
	}
	for _, c := range cases {
		if got := risk(c.args); got != c.want {
			t.Errorf("risk(%q) = %d, want %d", c.args, got, c.want)
		}
	}
	// The name and digest look-ups of every command do not allocate.
	for _, args := range [][]string{{"GET", "k"}, {"hset", "h", "f", "v"}, {"EVALSHA", loadedSHA, "0"}, {"JSON.GET", "k"}} {
		if n := testing.AllocsPerRun(100, func() { risk(args) }); n != 0 {
			t.Errorf("risk(%q): %v allocations", args, n)
		}
	}
}

// BenchmarkRisk is what judging costs each command of a pipeline.
func BenchmarkRisk(b *testing.B) {
	for _, args := range [][]string{{"GET", "k"}, {"get", "k"}, {"EVAL", "return redis.call('GET', KEYS[1])", "1", "k"}} {
		b.Run(args[0], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				risk(args)
			}
		})
	}
}

// BenchmarkRemember is what an EVAL costs more than another command: its
// digest, once per EVAL.
func BenchmarkRemember(b *testing.B) {
	args := []string{"EVAL", "local v = redis.call('GET', KEYS[1]) if v then return redis.call('INCRBY', KEYS[1], ARGV[1]) end return 0", "1", "k", "1"}
	b.ReportAllocs()
	for b.Loop() {
		remember(args)
	}
}

// A batch whose replies glide could not convert teaches the driver its
// suspects: the unseen digests (any case), the functions and the
// non-core command names in it go alone from then on; its other commands,
// and suspects that were not in it, do not. Lookups stay free of
// allocations.
func TestLearn(t *testing.T) {
	learned.mu.Lock()
	saved := learned.m
	learned.m = nil
	learned.n.Store(0)
	learned.mu.Unlock()
	t.Cleanup(func() {
		learned.mu.Lock()
		learned.m = saved
		learned.n.Store(int64(len(saved)))
		learned.mu.Unlock()
	})
	digest := strings.Repeat("Ab", 20)
	batch := []drivers.Command{
		{Args: []string{"SET", "k", "v"}},
		{Args: []string{"EVALSHA", digest, "0"}},
		{Args: []string{"FCALL", "fmap", "0"}},
		{Args: []string{"json.get", "k"}},
		{Args: []string{"EVAL", "return 1", "0"}},
	}
	if !learn(batch) {
		t.Fatal("learned nothing")
	}
	if learn(batch) {
		t.Error("learned the same batch twice")
	}
	cases := []struct {
		args []string
		want scriptRisk
	}{
		{[]string{"SET", "k", "v"}, riskNone},
		{[]string{"EVAL", "return 1", "0"}, riskNone},
		{[]string{"evalsha_ro", strings.ToLower(digest), "1", "x"}, riskAlone},
		{[]string{"EVALSHA", strings.Repeat("cd", 20), "0"}, riskNone},
		{[]string{"fcall_ro", "fmap", "0"}, riskAlone},
		{[]string{"FCALL", "fother", "0"}, riskNone},
		{[]string{"JSON.GET", "k2"}, riskAlone},
		{[]string{"JSON.SET", "k", "$", "1"}, riskNone},
	}
	for _, c := range cases {
		if got := risk(c.args); got != c.want {
			t.Errorf("risk(%q) = %d, want %d", c.args, got, c.want)
		}
	}
	for _, args := range [][]string{{"GET", "k"}, {"EVALSHA", digest, "0"}, {"JSON.GET", "k"}} {
		if n := testing.AllocsPerRun(100, func() { risk(args) }); n != 0 {
			t.Errorf("risk(%q): %v allocations", args, n)
		}
	}
}
