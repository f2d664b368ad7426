package engine

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/internal/resptest"
)

// The reply-parser audit: every decoder of the engine, given a reply of
// a shape it does not expect (another server version's, a proxy's, a
// broken server's), fails the command with a clear error and never
// panics: a panic in a decoder running on a connection actor fails the
// whole batch (mailbox.ErrActorFailed) and restarts the actor.

// oddReplies are replies of every RESP3 type and of shapes no command
// returns, in RESP text.
var oddReplies = []string{
	"+OK\r\n", "$3\r\nabc\r\n", "$0\r\n\r\n", "_\r\n", "$-1\r\n", ":7\r\n", ":-1\r\n", ":0\r\n",
	",1.5\r\n", ",nan\r\n", ",inf\r\n", ",x\r\n", "#t\r\n", "#f\r\n", "(123456789012345678901234567890\r\n",
	"=7\r\ntxt:abc\r\n", "=3\r\nab:\r\n", "-ERR boom\r\n", "-WRONGTYPE no\r\n", "!3\r\nBAD\r\n",
	"*0\r\n", "~0\r\n", "%0\r\n",
	"*1\r\n_\r\n", "*1\r\n:1\r\n", "*1\r\n*0\r\n", "*1\r\n%0\r\n", "*1\r\n-ERR inner\r\n", "*1\r\n#t\r\n",
	"*2\r\n$1\r\na\r\n$1\r\nb\r\n", "*2\r\n:1\r\n$1\r\nb\r\n", "*2\r\n*0\r\n*0\r\n", "*2\r\n_\r\n_\r\n",
	"*2\r\n$1\r\nx\r\n*1\r\n$1\r\na\r\n", "*2\r\n$1\r\nx\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",
	"*2\r\n$1\r\n0\r\n:5\r\n", "*2\r\n$2\r\n-1\r\n*1\r\n*0\r\n", "*2\r\n:9\r\n%1\r\n$1\r\na\r\n$1\r\nb\r\n",
	"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", "*3\r\n*1\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",
	"*3\r\n*2\r\n$1\r\na\r\n,1\r\n$1\r\nb\r\n$1\r\nc\r\n", "*2\r\n*2\r\n$1\r\na\r\n,1\r\n*1\r\n$1\r\nb\r\n",
	"*2\r\n*2\r\n$1\r\na\r\n$1\r\nz\r\n*2\r\n$1\r\nb\r\n,2\r\n",
	"*4\r\n:1\r\n$1\r\na\r\n$1\r\nb\r\n*1\r\n*1\r\n$1\r\nc\r\n", "*4\r\n$1\r\nx\r\n_\r\n_\r\n_\r\n",
	"*4\r\n:1\r\n_\r\n_\r\n*1\r\n*2\r\n*0\r\n:1\r\n", "*4\r\n:1\r\n:2\r\n:3\r\n%1\r\n+c\r\n:1\r\n",
	"*1\r\n*4\r\n$3\r\n1-1\r\n$1\r\nc\r\n$1\r\nx\r\n:1\r\n", "*1\r\n*4\r\n:1\r\n:2\r\n:3\r\n:4\r\n", "*1\r\n*3\r\n:1\r\n:2\r\n:3\r\n",
	"*3\r\n$3\r\n0-0\r\n*1\r\n*2\r\n$3\r\n1-1\r\n:5\r\n*1\r\n*0\r\n", "*3\r\n*0\r\n*0\r\n*0\r\n", "*2\r\n$3\r\n0-0\r\n+x\r\n",
	"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*1\r\n$1\r\nf\r\n", "*1\r\n*2\r\n:1\r\n:2\r\n", "*1\r\n*3\r\n$1\r\ns\r\n*0\r\n*0\r\n",
	"%1\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n", "%1\r\n$1\r\ns\r\n:1\r\n", "%1\r\n$1\r\ns\r\n*1\r\n:1\r\n",
	"%2\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n*0\r\n", "%1\r\n:1\r\n$1\r\nb\r\n", "%1\r\n*0\r\n$1\r\nb\r\n",
	"*1\r\n%4\r\n+name\r\n:1\r\n+consumers\r\n+x\r\n+pending\r\n*0\r\n+last-delivered-id\r\n:1\r\n",
	"*1\r\n%1\r\n+name\r\n*1\r\n:1\r\n", "*1\r\n*1\r\n+name\r\n", "*1\r\n:1\r\n",
	"~2\r\n$1\r\na\r\n:2\r\n", "*2\r\n$20\r\n18446744073709551616\r\n*0\r\n", "*2\r\n$1\r\n-\r\n*0\r\n",
}

// decodeAll runs every decoder of the engine on res, and every accessor
// of Reply, and returns their errors as the futures would give them.
func decodeAll(res valkey.ValkeyResult) map[string]error {
	errs := map[string]error{}
	run := func(name string, f func(valkey.ValkeyResult) error) {
		errs[name] = replyError(&res, f(res))
	}
	run("String", func(r valkey.ValkeyResult) error { _, err := decodeString(r); return err })
	run("Int64", func(r valkey.ValkeyResult) error { _, err := decodeInt64(r); return err })
	run("Float64", func(r valkey.ValkeyResult) error { _, err := decodeFloat64(r); return err })
	run("Bool", func(r valkey.ValkeyResult) error { _, err := decodeBool(r); return err })
	run("Strings", func(r valkey.ValkeyResult) error { _, err := decodeStrings(r); return err })
	run("StrMap", func(r valkey.ValkeyResult) error { _, err := decodeStrMap(r); return err })
	run("OK", func(r valkey.ValkeyResult) error { _, err := decodeOK(r); return err })
	run("IntBool", func(r valkey.ValkeyResult) error { _, err := decodeIntBool(r); return err })
	run("NullableStrings", func(r valkey.ValkeyResult) error { _, err := decodeNullableStrings(r); return err })
	run("Zs", func(r valkey.ValkeyResult) error { _, err := decodeZs(r); return err })
	run("ScanPage", func(r valkey.ValkeyResult) error { _, err := decodeScanPage(r); return err })
	run("XEntries", func(r valkey.ValkeyResult) error { _, err := decodeXEntries(r); return err })
	run("XRead", func(r valkey.ValkeyResult) error { _, err := decodeXRead(r); return err })
	run("XPendingSummary", func(r valkey.ValkeyResult) error { _, err := decodeXPendingSummary(r); return err })
	run("XPendingEntries", func(r valkey.ValkeyResult) error { _, err := decodeXPendingEntries(r); return err })
	run("XAutoClaim", func(r valkey.ValkeyResult) error { _, err := decodeXAutoClaim(r); return err })
	run("XGroups", func(r valkey.ValkeyResult) error { _, err := decodeXGroups(r); return err })
	run("TTL", func(r valkey.ValkeyResult) error { _, err := decodeTTLSeconds(r); return err })
	reply, err := decodeReply(res)
	errs["Reply"] = replyError(&res, err)
	if err != nil {
		return errs
	}
	acc := func(name string, err error) { errs["Reply."+name] = err }
	_, err = reply.String()
	acc("String", err)
	_, err = reply.Int64()
	acc("Int64", err)
	_, err = reply.Float64()
	acc("Float64", err)
	_, err = reply.Bool()
	acc("Bool", err)
	_, err = reply.Strings()
	acc("Strings", err)
	_, err = reply.Map()
	acc("Map", err)
	_, err = reply.Array()
	acc("Array", err)
	_, err = reply.Any()
	acc("Any", err)
	acc("Err", nil)
	_ = reply.Err()
	// Printing never panics, whatever the shape (elements included:
	// an error reply inside an array prints through its own branch).
	_ = fmt.Sprintf("%v %s %d %q %x %#v %+v %f", reply, reply, reply, reply, reply, reply, reply, reply)
	if arr, err := reply.Array(); err == nil {
		for _, el := range arr {
			_ = fmt.Sprintf("%v %d %#v", el, el, el)
		}
	}
	return errs
}

// checkDecodeErrors fails t unless each error is one a caller can tell
// apart: the reply's own error (*ServerError), ErrNil for a nil reply, or
// ErrReplyType for any reply of another shape.
func checkDecodeErrors(t *testing.T, reply string, errs map[string]error) {
	t.Helper()
	for name, err := range errs {
		if err == nil {
			continue
		}
		var se *ServerError
		if errors.Is(err, ErrReplyType) || errors.Is(err, ErrNil) || errors.As(err, &se) {
			continue
		}
		t.Errorf("%s of %q: %v (%T), want an error wrapping ErrReplyType (or ErrNil, *ServerError)", name, reply, err, err)
	}
}

func TestAuditDecodeOddReplies(t *testing.T) {
	for _, r := range oddReplies {
		var errs map[string]error
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("decoding %q panicked: %v", r, p)
				}
			}()
			errs = decodeAll(resptest.Result(r))
		}()
		checkDecodeErrors(t, r, errs)
	}
}

// An error reply and a nil reply keep their meaning through every
// decoder: *ServerError with the text as sent, ErrNil.
func TestAuditDecodeErrorAndNil(t *testing.T) {
	for name, err := range decodeAll(resptest.Result("-WRONGTYPE Operation against a key\r\n")) {
		var se *ServerError
		if !errors.As(err, &se) || se.Prefix != "WRONGTYPE" {
			t.Errorf("%s of an error reply: %v, want *ServerError WRONGTYPE", name, err)
		}
	}
	for name, err := range decodeAll(resptest.Result("_\r\n")) {
		if err != nil && !errors.Is(err, ErrNil) && !strings.HasPrefix(name, "Reply.") {
			t.Errorf("%s of a nil reply: %v, want ErrNil or a value", name, err)
		}
	}
}

// FuzzDecodeReply feeds every decoder any RESP value. Under `go test`
// only the seeds run (the odd replies above).
func FuzzDecodeReply(f *testing.F) {
	for _, r := range oddReplies {
		f.Add([]byte(r))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := resptest.Parse(b)
		if err != nil {
			return
		}
		checkDecodeErrors(t, fmt.Sprintf("%q", b), decodeAll(valkey.NewResult(m, nil)))
	})
}

// commandEntry is a COMMAND entry of name with the legacy first/last/step
// and one key spec (RESP3 maps) with the given begin_search and find_keys.
func commandEntry(name string, first, last, step int64, begin, find string) string {
	spec := "%2\r\n+begin_search\r\n" + begin + "+find_keys\r\n" + find
	return fmt.Sprintf("*10\r\n$%d\r\n%s\r\n:-1\r\n*0\r\n:%d\r\n:%d\r\n:%d\r\n*0\r\n*0\r\n*1\r\n%s*0\r\n",
		len(name), name, first, last, step, spec)
}

func typedSpecText(typ string, kv ...any) string {
	s := fmt.Sprintf("%%%d\r\n", len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		s += fmt.Sprintf("+%s\r\n", kv[i])
		switch v := kv[i+1].(type) {
		case int64:
			s += fmt.Sprintf(":%d\r\n", v)
		case string:
			s += fmt.Sprintf("$%d\r\n%s\r\n", len(v), v)
		}
	}
	return fmt.Sprintf("%%2\r\n+type\r\n$%d\r\n%s\r\n+spec\r\n%s", len(typ), typ, s)
}

// Key specs with values no server sends (huge steps, negative offsets)
// find keys inside the arguments or none: Do used to index its arguments
// with a position out of range, a panic on the caller's goroutine.
func TestAuditKeySpecsOutOfRange(t *testing.T) {
	const big = int64(1<<63 - 1)
	idx := func(i int64) string { return typedSpecText("index", "index", i) }
	rng := func(last, step, limit int64) string {
		return typedSpecText("range", "lastkey", last, "keystep", step, "limit", limit)
	}
	keynum := func(numIdx, first, step int64) string {
		return typedSpecText("keynum", "keynumidx", numIdx, "firstkey", first, "keystep", step)
	}
	none := "%0\r\n"
	entries := []string{
		commandEntry("rstep", 1, -1, 1, idx(1), rng(-1, big, 0)),
		commandEntry("rstep2", 1, -1, 1, idx(1), rng(2, big-1, 0)),
		commandEntry("rbig", 1, -1, 1, idx(big), rng(big, 1, 0)),
		commandEntry("rneg", 1, -1, 1, idx(1), rng(-1<<62, 1, -5)),
		commandEntry("knidx", 1, -1, 1, idx(1), keynum(big, 1, 1)),
		commandEntry("knfirst", 1, -1, 1, idx(2), keynum(0, -10, 1)),
		commandEntry("knstep", 1, -1, 1, idx(1), keynum(0, 1, big)),
		commandEntry("kwfrom", 1, -1, 1, typedSpecText("keyword", "keyword", "K", "startfrom", -big), rng(0, 1, 0)),
		commandEntry("kwfrom2", 1, -1, 1, typedSpecText("keyword", "keyword", "K", "startfrom", big), rng(0, 1, 0)),
		// Legacy first/last/step only (no spec understood).
		commandEntry("lstep", 1, -1, big, none, none),
		commandEntry("lfirst", big, big, 1, none, none),
		commandEntry("llast", 1, -big, 1, none, none),
	}
	table, err := parseCommandTable(resptest.Message(fmt.Sprintf("*%d\r\n%s", len(entries), strings.Join(entries, ""))))
	if err != nil {
		t.Fatal(err)
	}
	if len(table) != 2*len(entries) {
		t.Fatalf("parsed %d names, want %d", len(table), 2*len(entries))
	}
	for name := range table {
		for n := range 6 {
			args := []string{"3", "K", "a", "b", "c", "K"}[:n]
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Errorf("keys of %s %q panicked: %v", name, args, p)
					}
				}()
				pos, _ := table.keys(nil, name, args)
				for _, p := range pos {
					if p < 0 || p >= len(args) {
						t.Errorf("keys of %s %q: position %d out of range", name, args, p)
					}
				}
			}()
		}
	}
}

// FuzzCommandTable parses any COMMAND reply and looks up keys with it:
// no panic, every position inside the arguments. Under `go test` only the
// seeds run.
func FuzzCommandTable(f *testing.F) {
	f.Add([]byte("*1\r\n" + commandEntry("get", 1, 1, 1, typedSpecText("index", "index", int64(1)), typedSpecText("range", "lastkey", int64(0), "keystep", int64(1), "limit", int64(0)))))
	f.Add([]byte("*1\r\n" + commandEntry("eval", 0, 0, 0, typedSpecText("index", "index", int64(2)), typedSpecText("keynum", "keynumidx", int64(0), "firstkey", int64(1), "keystep", int64(1)))))
	f.Add([]byte("*1\r\n" + commandEntry("xread", 0, 0, 0, typedSpecText("keyword", "keyword", "STREAMS", "startfrom", int64(1)), typedSpecText("range", "lastkey", int64(-1), "keystep", int64(1), "limit", int64(2)))))
	f.Add([]byte("*1\r\n*6\r\n$4\r\nmget\r\n:-2\r\n*0\r\n:1\r\n:-1\r\n:1\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := resptest.Parse(b)
		if err != nil {
			return
		}
		table, err := parseCommandTable(m)
		if err != nil {
			return
		}
		for name := range table {
			for n := range 7 {
				args := []string{"2", "STREAMS", "a", "b", "-1", "c", "STREAMS"}[:n]
				pos, _ := table.keys(nil, name, args)
				for _, p := range pos {
					if p < 0 || p >= len(args) {
						t.Fatalf("keys of %s %q: position %d out of range", name, args, p)
					}
				}
			}
		}
	})
}
