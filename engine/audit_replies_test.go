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
