package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/valkeytest"
)

// QA-L 1: RESP input whose commands touch other keys than their first
// (RENAME, MSET) loads as redis-cli --pipe loads it: in the input's
// order. Before, the batch writer spread the commands over its two
// connections by their first key, and a quarter of the keys ended with
// the wrong value (a RENAME overtook the SET before it, an APPEND
// overtook the RENAME, the SET of a$i overtook nothing but the MSET
// did).
func TestLoadRESPKeepsOrderOfMultiKeyCommands(t *testing.T) {
	const n = 5000
	var b strings.Builder
	for i := range n {
		for _, c := range [][]string{
			{"SET", fmt.Sprintf("s%d", i), "v"},
			{"RENAME", fmt.Sprintf("s%d", i), fmt.Sprintf("d%d", i)},
			{"APPEND", fmt.Sprintf("d%d", i), "X"},
			{"SET", fmt.Sprintf("a%d", i), "1"},
			{"MSET", fmt.Sprintf("b%d", i), "x", fmt.Sprintf("a%d", i), "2"},
		} {
			text, _ := respCmd(c...)
			b.WriteString(text)
		}
	}
	// Plain SETs first: they go over the fast writer, then the barrier.
	var head strings.Builder
	for i := range 20000 {
		text, _ := respCmd("SET", fmt.Sprintf("p%d", i), "1")
		head.WriteString(text)
	}
	srv := valkeytest.Start(t)
	path := filepath.Join(t.TempDir(), "order.resp")
	if err := os.WriteFile(path, []byte(head.String()+b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	r := vactor(t, nil, "", "load", "-quiet", "-addr", srv.Addr(), path)
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	summary(t, r.stdout, 20000+5*n, 20000+5*n, 0, 0)
	eng := connect(t, false, srv.Addr())
	if got := do(t, eng, "DBSIZE"); got != int64(20000+3*n) {
		t.Errorf("DBSIZE %v, want %d", got, 20000+3*n)
	}
	wrong := 0
	for i := 0; i < n; i += 500 {
		var keys []string
		for j := i; j < i+500; j++ {
			keys = append(keys, fmt.Sprintf("d%d", j), fmt.Sprintf("a%d", j))
		}
		vals := do(t, eng, "MGET", keys...).([]any)
		for j := 0; j < len(vals); j += 2 {
			if vals[j] != "vX" || vals[j+1] != "2" {
				if wrong < 5 {
					t.Errorf("%s = %v, %s = %v; want vX, 2", keys[j], vals[j], keys[j+1], vals[j+1])
				}
				wrong++
			}
		}
	}
	if wrong > 0 {
		t.Fatalf("%d of %d pairs of keys loaded out of order", wrong, n)
	}
	mustContain(t, "summary", r.stdout, fmt.Sprintf("from line %d (RENAME) on, in the input's order", 20000*7+7+1))

	// A file of single-key writes keeps the fast path (no note).
	srv2 := valkeytest.Start(t)
	var plain strings.Builder
	for i := range 1000 {
		for _, c := range [][]string{{"SET", fmt.Sprintf("k%d", i), "v"}, {"RPUSH", fmt.Sprintf("l%d", i), "x"}, {"del", fmt.Sprintf("k%d", i)}} {
			text, _ := respCmd(c...)
			plain.WriteString(text)
		}
	}
	r = vactor(t, nil, plain.String(), "load", "-quiet", "-addr", srv2.Addr())
	if r.code != exitOK || strings.Contains(r.stdout, "input's order") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// The commands that keep the fast path are plain writes of one key.
func TestSingleKeyWrite(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"SET", "k", "v"}, true},
		{[]string{"set", "k", "v", "EX", "10"}, true},
		{[]string{"HSET", "h", "f", "v"}, true},
		{[]string{"Rpush", "l", "a", "b"}, true},
		{[]string{"DEL", "k"}, true},
		{[]string{"DEL", "a", "b"}, false},
		{[]string{"UNLINK", "a", "b"}, false},
		{[]string{"RENAME", "a", "b"}, false},
		{[]string{"MSET", "a", "1", "b", "2"}, false},
		{[]string{"SMOVE", "a", "b", "m"}, false},
		{[]string{"SUNIONSTORE", "d", "a", "b"}, false},
		{[]string{"EVAL", "return 1", "0"}, false},
		{[]string{"FLUSHALL"}, false},
		{[]string{"INCR"}, false},
		{[]string{"GET", "k"}, false},
	} {
		if got := singleKeyWrite(tc.args); got != tc.want {
			t.Errorf("singleKeyWrite(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}
