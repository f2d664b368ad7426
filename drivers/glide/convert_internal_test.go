package glide

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/drivers"
)

// Glide's texts of error replies (as glide 2.5.3 writes them, seen
// against a server) read back as the server's.
func TestServerText(t *testing.T) {
	cases := []struct{ glide, server string }{
		{"An error was signalled by the server: - ResponseError: unknown command 'X', with args beginning with: ", "ERR unknown command 'X', with args beginning with: "},
		{"An error was signalled by the server: - Moved: 3999 127.0.0.1:6381", "MOVED 3999 127.0.0.1:6381"},
		{"An error was signalled by the server: - Ask: 3999 127.0.0.1:6381", "ASK 3999 127.0.0.1:6381"},
		{"An error was signalled by the server: - TryAgain: x", "TRYAGAIN x"},
		{"An error was signalled by the server: - ClusterDown: x", "CLUSTERDOWN x"},
		{"An error was signalled by the server: - CrossSlot: x", "CROSSSLOT x"},
		{"An error was signalled by the server: - MasterDown: x", "MASTERDOWN x"},
		{"An error was signalled by the server: - ReadOnly: x", "READONLY x"},
		{"An error was signalled by the server: - BusyLoadingError: x", "LOADING x"},
		{"An error was signalled by the server: - NoScriptError: x", "NOSCRIPT x"},
		{"An error was signalled by the server: - ExecAbortError: x", "EXECABORT x"},
		{"An error was signalled by the server: - NotBusy: x", "NOTBUSY x"},
		{"An error was signalled by the server: - PermissionDenied: x", "NOPERM x"},
		{"WRONGTYPE: Operation against a key holding the wrong kind of value", "WRONGTYPE Operation against a key holding the wrong kind of value"},
		{"BUSYGROUP: Consumer Group name already exists", "BUSYGROUP Consumer Group name already exists"},
		{"NOAUTH: x", "NOAUTH x"},
		{"OOM: x", "OOM x"},
		// A script's or a module's error reply may start with any word.
		{"lowercase: thing", "lowercase thing"},
		{"Mixed: Case: thing", "Mixed Case: thing"},
		{"OOPS", "OOPS"},
		// Error replies of one word (a script's {err='ERR'}, a module's):
		// glide 2.5.3 writes the codes it knows without a space and the
		// others with its own text appended (QA-P 2: these were taken for
		// connection failures, or kept glide's text).
		{"An error was signalled by the server:- ResponseError", "ERR"},
		{"An error was signalled by the server:- NoScriptError", "NOSCRIPT"},
		{"An error was signalled by the server:- Moved", "MOVED"},
		{"An error was signalled by the server:- ExecAbortError", "EXECABORT"},
		{"boom: Unknown extension error encountered", "boom"},
		{"BUSY: Unknown extension error encountered", "BUSY"},
		{"-: Unknown extension error encountered", "-"},
		{"X:y: Unknown extension error encountered", "X:y"},
	}
	for _, c := range cases {
		got, ok := serverText(c.glide)
		if !ok || got != c.server {
			t.Errorf("%q read as %q, %v; want %q", c.glide, got, ok, c.server)
		}
	}
	// Failures of the connection or of glide are not error replies.
	for _, text := range []string{
		"Received connection error `Failed to receive a response due to a fatal error - FatalReceiveError: channel closed`. Will attempt to reconnect",
		"An error was signalled by the server: - IoError: broken pipe",
		"An error was signalled by the server:- IoError",
		"timed out",
		"ExecuteCommand failed: the client is closed",
		"IoError: reset",
	} {
		if got, ok := serverText(text); ok {
			t.Errorf("%q taken for the error reply %q", text, got)
		}
	}
	if _, err := reply([]string{"GET", "k"}, errors.New("timed out")); err == nil {
		t.Error("a transport error inline became a reply")
	}
}

// Replies glide converted come back in the server's shape.
func TestRestore(t *testing.T) {
	scores := map[string]any{"b": float64(1), "a": float64(1), "c": float64(2), "d": 0.5}
	v, _ := reply([]string{"ZRANGE", "z", "0", "-1", "WITHSCORES"}, scores)
	want := drivers.Array(
		drivers.Array(drivers.String("d"), drivers.Float(0.5)),
		drivers.Array(drivers.String("a"), drivers.Float(1)),
		drivers.Array(drivers.String("b"), drivers.Float(1)),
		drivers.Array(drivers.String("c"), drivers.Float(2)),
	)
	if !v.Equal(want) {
		t.Errorf("ZRANGE WITHSCORES: %v", v)
	}
	v, _ = reply([]string{"ZRANGE", "z", "0", "-1", "REV", "WITHSCORES"}, scores)
	if v.Elems[0].Elems[0].Str != "c" || v.Elems[1].Elems[0].Str != "b" || v.Elems[3].Elems[0].Str != "d" {
		t.Errorf("ZRANGE REV WITHSCORES: %v", v)
	}
	v, _ = reply([]string{"EXPIRE", "k", "10"}, true)
	if !v.Equal(drivers.Int(1)) {
		t.Errorf("EXPIRE: %v", v)
	}
	v, _ = reply([]string{"EVAL", "return true", "0"}, true)
	if !v.Equal(drivers.Bool(true)) {
		t.Errorf("a script's boolean: %v", v)
	}
	x := map[string]any{"10-1": []any{[]any{"f", "c"}}, "2-1": []any{[]any{"f", "b"}}, "1-1": []any{[]any{"f", "a"}, []any{"g", "z"}}}
	v, _ = reply([]string{"XRANGE", "s", "-", "+"}, x)
	if len(v.Elems) != 3 || v.Elems[0].Elems[0].Str != "1-1" || v.Elems[2].Elems[0].Str != "10-1" || len(v.Elems[0].Elems[1].Elems) != 4 {
		t.Errorf("XRANGE: %v", v)
	}
	v, _ = reply([]string{"XREAD", "STREAMS", "b", "a", "0", "0"}, map[string]any{"a": x, "b": x})
	if v.Kind != drivers.KindMap || v.Elems[0].Str != "b" || v.Elems[2].Str != "a" {
		t.Errorf("XREAD streams out of the request's order: %v", v)
	}
	v, _ = reply([]string{"ZPOPMIN", "z"}, map[string]any{"a": float64(1)})
	if !v.Equal(drivers.Array(drivers.String("a"), drivers.Float(1))) {
		t.Errorf("ZPOPMIN: %v", v)
	}
}

// oneLine drops the line break glide's errors end in, keeping the error
// reachable (qa-BB BB-2).
func TestOneLine(t *testing.T) {
	base := errors.New("WRONGPASS: invalid username-password pair or user is disabled.\n")
	err := oneLine(base)
	if err.Error() != "WRONGPASS: invalid username-password pair or user is disabled." || !errors.Is(err, base) {
		t.Fatalf("oneLine: %q (Is %t)", err, errors.Is(err, base))
	}
	if plain := errors.New("timed out"); oneLine(plain) != plain || oneLine(nil) != nil {
		t.Fatal("oneLine changed an error of one line, or nil")
	}
	ref := handshakeError(fmt.Errorf("Received error for address `127.0.0.1:1`: %w", base))
	if strings.ContainsAny(ref.Error(), "\r\n") {
		t.Fatalf("handshakeError: %q", ref)
	}
}
