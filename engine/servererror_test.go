package engine_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/policies"
)

// serverErrorCase is a command that a real server refuses, and the start
// of the error reply it sends (its first word is the code).
type serverErrorCase struct {
	name string
	cmd  []string
	want string // the reply's first words, as the server sends them
}

// checkServerError checks that err is the *ServerError of a reply that
// starts with want: Prefix its first word, Message the whole reply.
func checkServerError(t *testing.T, what string, err error, want string) {
	t.Helper()
	var se *engine.ServerError
	if !errors.As(err, &se) {
		t.Errorf("%s: err = %v, want a *ServerError %q", what, err, want)
		return
	}
	code, _, _ := strings.Cut(want, " ")
	if se.Prefix != code || !strings.HasPrefix(se.Message, want) {
		t.Errorf("%s: Prefix %q Message %q, want Prefix %q and a Message starting %q", what, se.Prefix, se.Message, code, want)
	}
	if got := policies.ServerErrorCode(err); got != code {
		t.Errorf("%s: policies.ServerErrorCode = %q, want %q", what, got, code)
	}
	if !errors.Is(err, &engine.ServerError{Prefix: code}) {
		t.Errorf("%s: errors.Is(err, &ServerError{Prefix: %q}) is false", what, code)
	}
	if policies.IsRetryable(err) {
		t.Errorf("%s: IsRetryable(%v) = true", what, err)
	}
}

// Error replies from a real server keep their code as the server sent it,
// also when the text after "ERR" starts with an upper-case word (which
// valkey-go's own error, stripped of "ERR ", makes look like a code):
// through Do, a Pipeline, a Tx (queued and at EXEC), the sync Client, and
// a Reply's elements.
func TestServerErrorPrefix(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	for _, c := range [][]string{
		{"SET", "str", "v"},
		{"RPUSH", "list", "a"},
		{"XGROUP", "CREATE", "stream", "g", "$", "MKSTREAM"},
	} {
		if _, err := eng.Do(ctx, c[0], c[1:]...).Await(ctx); err != nil {
			t.Fatalf("%v: %v", c, err)
		}
	}
	dump, err := eng.Do(ctx, "DUMP", "str").Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := dump.String()
	if err != nil {
		t.Fatal(err)
	}
	cases := []serverErrorCase{
		{"unknown command", []string{"NOSUCHCMD", "x"}, "ERR unknown command"},
		{"wrong arity", []string{"GET"}, "ERR wrong number of arguments"},
		{"syntax", []string{"SET", "k", "v", "XX", "NX"}, "ERR syntax error"},
		{"not an integer", []string{"INCR", "str"}, "ERR value is not an integer"},
		// "ERR" followed by an upper-case word: valkey-go hands over
		// "DB index ...", "RANK can't ...", "XX and NX ...".
		{"SWAPDB out of range", []string{"SWAPDB", "0", "99999"}, "ERR DB index is out of range"},
		{"LPOS RANK 0", []string{"LPOS", "list", "a", "RANK", "0"}, "ERR RANK can't be zero"},
		{"ZADD NX XX", []string{"ZADD", "zset", "NX", "XX", "1", "m"}, "ERR XX and NX options"},
		{"EXPIRE NX XX", []string{"EXPIRE", "str", "10", "NX", "XX"}, "ERR NX and XX"},
		{"WRONGTYPE", []string{"LPUSH", "str", "x"}, "WRONGTYPE Operation against a key holding the wrong kind of value"},
		{"NOSCRIPT", []string{"EVALSHA", strings.Repeat("f", 40), "0"}, "NOSCRIPT"},
		{"BUSYKEY", []string{"RESTORE", "str", "0", payload}, "BUSYKEY"},
		{"BUSYGROUP", []string{"XGROUP", "CREATE", "stream", "g", "$"}, "BUSYGROUP"},
		{"NOGROUP", []string{"XREADGROUP", "GROUP", "nogroup", "c", "STREAMS", "stream", ">"}, "NOGROUP"},
		{"NOTBUSY", []string{"SCRIPT", "KILL"}, "NOTBUSY"},
	}
	client := eng.Sync()
	for _, c := range cases {
		_, err := eng.Do(ctx, c.cmd[0], c.cmd[1:]...).Await(ctx)
		checkServerError(t, "Do "+c.name, err, c.want)

		_, err = client.Do(ctx, c.cmd[0], c.cmd[1:]...)
		checkServerError(t, "Client.Do "+c.name, err, c.want)

		p := eng.Pipeline()
		f := p.Do(c.cmd[0], c.cmd[1:]...)
		if err := p.Exec(ctx); err != nil {
			t.Fatalf("pipeline %s: %v", c.name, err)
		}
		checkServerError(t, "Pipeline "+c.name, f.Err(ctx), c.want)
	}

	// A Tx: refused while queueing (EXECABORT), and refused at EXEC.
	tx := eng.Tx()
	bad := tx.Do("SWAPDB", "0")
	ok := tx.Do("GET", "str")
	err = tx.Exec(ctx)
	checkServerError(t, "Tx.Exec with a bad command", err, "EXECABORT Transaction discarded")
	checkServerError(t, "Tx queued SWAPDB", bad.Err(ctx), "ERR wrong number of arguments")
	checkServerError(t, "Tx other command", ok.Err(ctx), "EXECABORT")
	tx = eng.Tx()
	ranked := tx.Do("LPOS", "list", "a", "RANK", "0")
	if err := tx.Exec(ctx); err != nil {
		t.Fatalf("Tx: %v", err)
	}
	checkServerError(t, "Tx element", ranked.Err(ctx), "ERR RANK can't be zero")

	// An error inside an array reply, read through Reply.Array.
	r, err := eng.Do(ctx, "EVAL", "return {1, redis.error_reply('ERR BAD thing')}", "0").Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	arr, err := r.Array()
	if err != nil || len(arr) != 2 {
		t.Fatalf("EVAL array = %v, %v", arr, err)
	}
	_, err = arr[1].String()
	checkServerError(t, "Reply element", err, "ERR BAD thing")

	// A code the engine does not know (a module's, a script's) is kept as
	// the server sent it, at the top and inside an array.
	_, err = eng.Do(ctx, "EVAL", "return redis.error_reply('MYCODE custom failure')", "0").Await(ctx)
	checkServerError(t, "script error code", err, "MYCODE custom failure")
	r, err = eng.Do(ctx, "EVAL", "return {redis.error_reply('MYCODE in array')}", "0").Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if arr, err = r.Array(); err != nil || len(arr) != 1 {
		t.Fatalf("EVAL array = %v, %v", arr, err)
	}
	_, err = arr[0].Any()
	checkServerError(t, "script error code in an array", err, "MYCODE in array")

	// Typed methods go through the same path.
	_, err = eng.Incr(ctx, "str").Await(ctx)
	checkServerError(t, "Incr", err, "ERR value is not an integer")

	// The connection is fine after all of it.
	if err := eng.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// IsRetryable reads the same code: a replica's READONLY reply is
// retryable (the node was demoted), through the engine's *ServerError.
func TestServerErrorRetryableCode(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	// A replica of a primary that is not there: it refuses writes.
	if err := eng.Do(ctx, "REPLICAOF", "127.0.0.1", "1").Err(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := eng.Do(ctx, "SET", "k", "v").Await(ctx)
	var se *engine.ServerError
	if !errors.As(err, &se) || se.Prefix != "READONLY" || !strings.HasPrefix(se.Message, "READONLY ") || !policies.IsRetryable(err) {
		t.Fatalf("write on a replica: err = %v, want a retryable READONLY *ServerError", err)
	}
	if err := eng.Do(ctx, "REPLICAOF", "NO", "ONE").Err(ctx); err != nil {
		t.Fatal(err)
	}
}

// Errors only a connection of one's own can provoke (the shared ones
// refuse the commands): through Dedicated, with their code as sent.
func TestServerErrorPrefixDedicated(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	if err := eng.Do(ctx, "ACL", "SETUSER", "limited", "on", ">limpw", "~*", "+get").Err(ctx); err != nil {
		t.Fatal(err)
	}
	err := eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		do := func(args ...string) error {
			_, err := c.Do(ctx, args[0], args[1:]...)
			return err
		}
		checkServerError(t, "EXEC without MULTI", do("EXEC"), "ERR EXEC without MULTI")
		checkServerError(t, "DISCARD without MULTI", do("DISCARD"), "ERR DISCARD without MULTI")
		checkServerError(t, "HELLO 4", do("HELLO", "4"), "NOPROTO")
		checkServerError(t, "AUTH wrong", do("AUTH", "nobody", "wrong"), "WRONGPASS")
		if err := do("MULTI"); err != nil {
			return err
		}
		checkServerError(t, "MULTI in MULTI", do("MULTI"), "ERR MULTI calls can not be nested")
		checkServerError(t, "WATCH in MULTI", do("WATCH", "k"), "ERR WATCH inside MULTI is not allowed")
		checkServerError(t, "queued unknown command", do("NOSUCHCMD"), "ERR unknown command")
		checkServerError(t, "EXEC after a refused command", do("EXEC"), "EXECABORT Transaction discarded")
		if err := do("AUTH", "limited", "limpw"); err != nil {
			return err
		}
		checkServerError(t, "SET as limited", do("SET", "k", "v"), "NOPERM")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The engine's errors for commands it could not send for a passing reason
// are retryable (policies.IsRetryable), as documented, also wrapped and
// joined with a redirect's reply; once a command was written they are
// not (ErrOutcomeUnknown).
func TestEngineErrorsRetryable(t *testing.T) {
	for _, err := range []error{
		engine.ErrNoPrimary, engine.ErrNotPrimary, engine.ErrTooManyRedirects,
		engine.ErrNodeRemoved, engine.ErrPoolExhausted, engine.ErrNoSlotOwner,
		fmt.Errorf("vactor: dial: %w", engine.ErrNotPrimary),
		errors.Join(engine.ErrTooManyRedirects, &engine.ServerError{Prefix: "MOVED", Message: "MOVED 1 127.0.0.1:1"}),
	} {
		if !policies.IsRetryable(err) {
			t.Errorf("IsRetryable(%v) = false, want true", err)
		}
	}
	for _, err := range []error{
		&policies.OutcomeUnknownError{Cause: engine.ErrNodeRemoved},
		engine.ErrClosed, engine.ErrCircuitOpen, engine.ErrInvalidArgument, engine.ErrTxAborted,
	} {
		if policies.IsRetryable(err) {
			t.Errorf("IsRetryable(%v) = true, want false", err)
		}
	}
}
