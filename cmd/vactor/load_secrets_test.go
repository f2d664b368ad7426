package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/valkeytest"
)

// The error report names the line and the reason, and the key of a plain
// single-key write, but no value and no password: the first ten entries
// go to the terminal (and CI logs), the errors file is shared to debug
// the load (qa45c: an AUTH in a RESP file printed its password, a
// WRONGTYPE its value, a JSON syntax error and an inline command the
// start of their line, the server's "unknown command" error the command's
// first arguments).
func TestLoadReportsNoValues(t *testing.T) {
	srv := valkeytest.Start(t)
	dir := t.TempDir()
	const secret = "hunter2-secret"
	resp := respOf("SET", "s1", "v") +
		respOf("LPUSH", "s1", "list-"+secret) + // line 8: WRONGTYPE
		respOf("AUTH", "pw-"+secret) + // line 15: refused by the client
		respOf("AUTHX", "x-"+secret) + // line 20: unknown command, with its args
		"SET k inline-" + secret + "\r\n" + // line 25: an inline command
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\nbare-" + secret + "\r\n" // line 26: no '$' before the value
	json := `{"key":"j","value":"json-` + secret + `"} trailing` + "\n" + // line 1: a syntax error
		"{\"key\":\"j\",\"value\":\"utf8-" + secret + "\xff\"}\n" // line 2: not UTF-8
	for _, tc := range []struct {
		name, text string
		lines      []string // entries that must be in the errors file
	}{
		{"in.resp", resp, []string{`line 8: failed: LPUSH "s1"`, "line 15: failed: AUTH", "line 20: failed: AUTHX", "line 25: malformed", "line 26: malformed"}},
		{"in.jsonl", json, []string{"line 1: malformed", "line 2: malformed"}},
	} {
		in := filepath.Join(dir, tc.name)
		if err := os.WriteFile(in, []byte(tc.text), 0o644); err != nil {
			t.Fatal(err)
		}
		r := vactor(t, nil, "", "load", "-quiet", "-addr", srv.Addr(), in)
		if r.code != exitFailed {
			t.Fatalf("%s: exit %d\n%s%s", tc.name, r.code, r.stdout, r.stderr)
		}
		b, err := os.ReadFile(in + ".errors")
		if err != nil {
			t.Fatal(err)
		}
		for what, s := range map[string]string{"stdout": r.stdout, "stderr": r.stderr, "errors file": string(b)} {
			if strings.Contains(s, secret) {
				t.Errorf("%s: the %s shows a value or a password:\n%s", tc.name, what, s)
			}
		}
		for _, want := range tc.lines {
			mustHaveLine(t, tc.name+" errors file", string(b), want, "")
		}
	}
}
