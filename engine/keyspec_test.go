package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/valkeytest"
)

// keySpecCases are command lines whose keys the parsed command table must
// find: with the keys the server itself finds (COMMAND GETKEYS), checked
// too. nil: no keys.
var keySpecCases = []struct {
	argv []string
	keys []string
}{
	{[]string{"GET", "k"}, []string{"k"}},
	{[]string{"get", "k"}, []string{"k"}},
	{[]string{"SET", "k", "v", "EX", "10"}, []string{"k"}},
	{[]string{"MSET", "a", "1", "b", "2"}, []string{"a", "b"}},
	{[]string{"MGET", "a", "b", "c"}, []string{"a", "b", "c"}},
	{[]string{"DEL", "a"}, []string{"a"}},
	{[]string{"EVAL", "return 1", "2", "k1", "k2", "arg"}, []string{"k1", "k2"}},
	{[]string{"Eval", "return 1", "1", "k1"}, []string{"k1"}},
	{[]string{"EVAL", "return 1", "0"}, nil},
	{[]string{"EVAL", "return 1", "0", "notakey"}, nil},
	{[]string{"EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "1", "k"}, []string{"k"}},
	{[]string{"EVAL_RO", "return 1", "1", "k"}, []string{"k"}},
	{[]string{"FCALL", "f", "2", "k1", "k2", "a"}, []string{"k1", "k2"}},
	{[]string{"FCALL_RO", "f", "0"}, nil},
	{[]string{"XREAD", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"}, []string{"s1", "s2"}},
	{[]string{"XREAD", "streams", "s", "$"}, []string{"s"}},
	{[]string{"XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"}, []string{"s"}},
	{[]string{"OBJECT", "ENCODING", "k"}, []string{"k"}},
	{[]string{"object", "encoding", "k"}, []string{"k"}},
	{[]string{"OBJECT", "FREQ", "k"}, []string{"k"}},
	{[]string{"MEMORY", "USAGE", "k", "SAMPLES", "5"}, []string{"k"}},
	{[]string{"XINFO", "STREAM", "k", "FULL"}, []string{"k"}},
	{[]string{"XINFO", "GROUPS", "k"}, []string{"k"}},
	{[]string{"GEORADIUS", "g", "0", "0", "10", "km", "STORE", "dst"}, []string{"g", "dst"}},
	{[]string{"GEORADIUS", "g", "0", "0", "10", "km", "STOREDIST", "dst"}, []string{"g", "dst"}},
	{[]string{"GEORADIUS", "g", "0", "0", "10", "km"}, []string{"g"}},
	{[]string{"ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"}, []string{"d", "a", "b"}},
	{[]string{"ZUNION", "2", "a", "b"}, []string{"a", "b"}},
	{[]string{"LMPOP", "2", "a", "b", "LEFT"}, []string{"a", "b"}},
	{[]string{"SINTERCARD", "2", "a", "b", "LIMIT", "1"}, []string{"a", "b"}},
	{[]string{"BITOP", "AND", "d", "a", "b"}, []string{"d", "a", "b"}},
	{[]string{"RENAME", "a", "b"}, []string{"a", "b"}},
	{[]string{"LMOVE", "a", "b", "LEFT", "RIGHT"}, []string{"a", "b"}},
	{[]string{"SPUBLISH", "ch", "m"}, []string{"ch"}},
	{[]string{"PING"}, nil},
	{[]string{"INFO", "server"}, nil},
	{[]string{"CONFIG", "GET", "maxmemory"}, nil},
	{[]string{"DBSIZE"}, nil},
	{[]string{"PUBLISH", "ch", "m"}, nil},
	{[]string{"SCRIPT", "LOAD", "return 1"}, nil},
	{[]string{"CLIENT", "ID"}, nil},
}

// serverKeys asks the server which keys of argv are keys (COMMAND
// GETKEYS); nil when it says there are none. SPUBLISH's channel is not a
// key to GETKEYS, but the cluster routes the command by it.
func serverKeys(ctx context.Context, t *testing.T, c valkey.Client, argv []string) []string {
	t.Helper()
	if strings.EqualFold(argv[0], "SPUBLISH") {
		return argv[1:2]
	}
	keys, err := c.Do(ctx, c.B().Arbitrary("COMMAND", "GETKEYS").Args(argv...).Build()).AsStrSlice()
	if err != nil {
		if _, ok := valkey.IsValkeyErr(err); ok {
			return nil // "no key arguments", "Invalid arguments"
		}
		t.Fatalf("COMMAND GETKEYS %v: %v", argv, err)
	}
	return keys
}

// tableKeys returns the keys the table finds in argv.
func tableKeys(t commandTable, argv []string) ([]string, bool) {
	pos, ok := t.keys(nil, argv[0], argv[1:])
	var keys []string
	for _, p := range pos {
		keys = append(keys, argv[1+p])
	}
	return keys, ok
}

// The key specs parsed from a real server's COMMAND reply, in RESP3 and
// in RESP2, find the keys the server finds.
func TestKeySpecsFromServer(t *testing.T) {
	srv := valkeytest.Start(t)
	for _, resp2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("resp2=%v", resp2), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := valkey.NewClient(valkey.ClientOption{
				InitAddress: []string{srv.Addr()}, DisableCache: true, AlwaysRESP2: resp2, ForceSingleClient: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			msg, err := c.Do(ctx, c.B().Command().Build()).ToMessage()
			if err != nil {
				t.Fatal(err)
			}
			table, err := parseCommandTable(msg)
			if err != nil {
				t.Fatal(err)
			}
			if len(table) < 2*200 {
				t.Fatalf("%d names in the table; want the server's 200+ commands in two cases", len(table))
			}
			for _, tc := range keySpecCases {
				got, ok := tableKeys(table, tc.argv)
				if !ok {
					t.Fatalf("%v: command not in the table", tc.argv)
				}
				if !slices.Equal(got, tc.keys) {
					t.Errorf("%v: keys %q, want %q", tc.argv, got, tc.keys)
				}
				if want := serverKeys(ctx, t, c, tc.argv); !slices.Equal(got, want) {
					t.Errorf("%v: keys %q, the server finds %q", tc.argv, got, want)
				}
			}
			if _, ok := tableKeys(table, []string{"NOSUCHCOMMAND", "k"}); ok {
				t.Fatal("an unknown command is in the table")
			}
		})
	}
}

// Without key specs (servers before Redis 7), the legacy first key, last
// key and step of the same reply find the keys of commands whose keys do
// not move.
func TestKeySpecsLegacy(t *testing.T) {
	srv := valkeytest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{srv.Addr()}, DisableCache: true, ForceSingleClient: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg, err := c.Do(ctx, c.B().Command().Build()).ToMessage()
	if err != nil {
		t.Fatal(err)
	}
	table, err := parseCommandTable(msg)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[*commandKeys]bool{}
	var strip func(commandTable)
	strip = func(t commandTable) {
		for _, c := range t {
			if !seen[c] {
				seen[c] = true
				c.specs = nil
				strip(c.subs)
			}
		}
	}
	strip(table)
	for _, argv := range [][]string{
		{"GET", "k"}, {"MSET", "a", "1", "b", "2"}, {"MGET", "a", "b"}, {"RENAME", "a", "b"},
		{"OBJECT", "ENCODING", "k"}, {"MEMORY", "USAGE", "k"}, {"XINFO", "STREAM", "k"},
		{"PING"}, {"INFO"},
	} {
		got, _ := tableKeys(table, argv)
		if want := serverKeys(ctx, t, c, argv); !slices.Equal(got, want) {
			t.Errorf("%v: legacy keys %q, the server finds %q", argv, got, want)
		}
	}
}

// parseCommandTable refuses what is not an array and skips entries it
// cannot read; lookups never panic on odd arguments.
func TestKeySpecsBadInput(t *testing.T) {
	if _, err := parseCommandTable(valkey.ValkeyMessage{}); err == nil {
		t.Fatal("parsed an empty message")
	}
	tbl := commandTable{}
	tbl.put("eval", &commandKeys{specs: []keySpec{{begin: beginIndex, index: 2, find: findKeynum, keyNumIdx: 0, firstKey: 1, keyStep: 1}}})
	tbl.put("xread", &commandKeys{specs: []keySpec{{begin: beginKeyword, keyword: "STREAMS", startFrom: 1, find: findRange, lastKey: -1, keyStep: 1, limit: 2}}})
	tbl.put("odd", &commandKeys{specs: []keySpec{{begin: beginKeyword, keyword: "K", startFrom: -1, find: findRange, lastKey: 5, keyStep: 0}}})
	for _, argv := range [][]string{
		{"EVAL"}, {"EVAL", "s"}, {"EVAL", "s", "x"}, {"EVAL", "s", "-1", "k"}, {"EVAL", "s", "3", "k"},
		{"EVAL", "s", "99999999999999999999", "k"},
		{"XREAD"}, {"XREAD", "STREAMS"}, {"XREAD", "COUNT", "STREAMS"}, {"XREAD", "STREAMS", "a"},
		{"ODD", "K"}, {"ODD", "K", "a"}, {"ODD"},
	} {
		if got, _ := tableKeys(tbl, argv); got != nil {
			t.Errorf("%v: keys %q, want none", argv, got)
		}
	}
	if got, _ := tableKeys(tbl, []string{"EVAL", "s", "1", "k"}); !slices.Equal(got, []string{"k"}) {
		t.Errorf("EVAL s 1 k: keys %q", got)
	}
	if c := tbl.get(strings.Repeat("x", 200)); c != nil {
		t.Fatal("a long unknown name found an entry")
	}
}

// Finding a command's keys allocates nothing, whatever the name's case.
func TestKeySpecsLookupAllocs(t *testing.T) {
	tbl := commandTable{}
	tbl.put("eval", &commandKeys{specs: []keySpec{{begin: beginIndex, index: 2, find: findKeynum, keyNumIdx: 0, firstKey: 1, keyStep: 1}}})
	obj := &commandKeys{subs: commandTable{}}
	obj.subs.put("encoding", &commandKeys{specs: []keySpec{{begin: beginIndex, index: 2, find: findRange}}})
	tbl.put("object", obj)
	for _, argv := range [][]string{
		{"EVAL", "s", "2", "a", "b"}, {"eval", "s", "1", "a"}, {"Eval", "s", "1", "a"},
		{"OBJECT", "ENCODING", "k"}, {"Object", "Encoding", "k"},
	} {
		var n int
		allocs := testing.AllocsPerRun(100, func() {
			var buf [8]int
			pos, _ := tbl.keys(buf[:0], argv[0], argv[1:])
			n = len(pos)
		})
		if allocs != 0 || n == 0 {
			t.Errorf("%v: %v allocations, %d keys", argv, allocs, n)
		}
	}
}
