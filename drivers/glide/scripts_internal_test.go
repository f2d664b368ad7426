package glide

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// How commands are judged: the servers' own commands in any case are
// sent as they are (harmless scripts too); a module's command, FCALL,
// and EVALSHA of a script not seen go alone; DEBUG PROTOCOL bignum and
// attrib, and scripts that may return a big number, are refused.
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
		{[]string{"EVALSHA", strings.Repeat("ab", 20), "0"}, riskAlone},
		{[]string{"EVALSHA", "short", "0"}, riskAlone},
		{[]string{"evalsha_ro", loadedSHA, "0"}, riskNone},
		{[]string{"FCALL", "f", "0"}, riskAlone},
		{[]string{"fcall_ro", "f", "0"}, riskAlone},
		{[]string{"JSON.GET", "k"}, riskAlone},
		{[]string{"FT.SEARCH", "idx", "*"}, riskAlone},
		{[]string{"NOSUCHCOMMANDATALLINTHISTABLE", "k"}, riskAlone},
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

// Many harmless scripts (texts built with their values) fill the table
// of digests for harmless ones only: a big-number script loaded after
// them is still known by its digest, and its EVALSHA is refused (not
// sent: it would abort the process), not taken for one unseen.
func TestSeenHarmlessDoNotPushOutRisky(t *testing.T) {
	seen.mu.Lock()
	saved := seen.risk
	savedHarm, savedRisky := seen.harmN, seen.riskyN
	seen.risk, seen.harmN, seen.riskyN = nil, 0, 0
	seen.full.Store(false)
	seen.mu.Unlock()
	t.Cleanup(func() {
		seen.mu.Lock()
		seen.risk, seen.harmN, seen.riskyN = saved, savedHarm, savedRisky
		seen.full.Store(savedHarm >= maxSeen)
		seen.mu.Unlock()
	})
	for i := range maxSeen + 10 {
		remember([]string{"EVAL", fmt.Sprintf("return %d", i), "0"})
	}
	big := "return {big_number='123456789012345678901234567890'}"
	remember([]string{"SCRIPT", "LOAD", big})
	sum := sha1.Sum([]byte(big))
	if r := risk([]string{"EVALSHA", hex.EncodeToString(sum[:]), "0"}); r != riskRefuse {
		t.Errorf("EVALSHA of a big-number script loaded after %d harmless ones: risk %d, want %d (refused)", maxSeen, r, riskRefuse)
	}
	// Harmless scripts past the limit are not kept: unseen, alone.
	last := fmt.Sprintf("return %d", maxSeen+5)
	sum = sha1.Sum([]byte(last))
	if r := risk([]string{"EVALSHA", hex.EncodeToString(sum[:]), "0"}); r != riskAlone {
		t.Errorf("EVALSHA of a harmless script past the limit: risk %d, want %d (alone)", r, riskAlone)
	}
}
