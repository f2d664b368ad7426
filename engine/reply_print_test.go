package engine_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/engine"
)

// An error reply inside an array (an EXEC reply's failed command, a
// script's redis.error_reply in a table, a DedicatedConn.DoMulti Reply)
// prints as its error, whatever the verb: it printed as "<none>", the
// zero Reply's text, as if the reply were missing (qa45 F1).
func TestReplyErrorElementPrints(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	r, err := eng.Do(ctx, "EVAL", "return {1, redis.error_reply('MYERR boom'), 'x'}", "0").Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	arr, err := r.Array()
	if err != nil || len(arr) != 3 {
		t.Fatalf("Array = %v, %v; want 3 elements", arr, err)
	}
	for _, verb := range []string{"%v", "%s", "%+v", "%q", "%d", "%#v", "%10v"} {
		if got := fmt.Sprintf(verb, arr[1]); !strings.Contains(got, "MYERR boom") || strings.Contains(got, "<none>") {
			t.Errorf("%s of an error element = %q; want its error text", verb, got)
		}
	}
	if got, want := fmt.Sprint(arr[1]), "vactor: server error: MYERR boom"; got != want {
		t.Errorf("Sprint of an error element = %q; want %q", got, want)
	}

	// DoMulti's Reply of a command that failed.
	err = eng.Dedicated(ctx, func(c *engine.DedicatedConn) error {
		rs, err := c.DoMulti(ctx, []string{"SET", "rp:s", "x"}, []string{"INCR", "rp:s"})
		var se *engine.ServerError
		if !errors.As(err, &se) || len(rs) != 2 {
			return fmt.Errorf("DoMulti = %v, %v; want 2 replies and INCR's *ServerError", rs, err)
		}
		if got := fmt.Sprint(rs[1]); !strings.Contains(got, "not an integer") {
			return fmt.Errorf("Sprint of INCR's failed Reply = %q; want its error text", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A verb fmt has no use for on an error (%d, %f, ...) prints an error
// element of an array or map as "%!d(error=<text>)", as fmt marks any
// wrong verb: fmt printed the *ServerError's pointer as a decimal number,
// which read as an integer element (qa45 F2: "[1 1971906608064 x]").
func TestReplyErrorElementWrongVerb(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	r, err := eng.Do(ctx, "EVAL", "return {1, redis.error_reply('MYERR boom'), 'x'}", "0").Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprintf("%d", r), "[1 %!d(error=vactor: server error: MYERR boom) %!d(string=x)]"; got != want {
		t.Errorf("%%d of an array holding an error = %q; want %q", got, want)
	}
	if got, want := fmt.Sprintf("%v", r), "[1 vactor: server error: MYERR boom x]"; got != want {
		t.Errorf("%%v of an array holding an error = %q; want %q", got, want)
	}
	if got := fmt.Sprintf("%#v", r); strings.Contains(got, "0x") {
		t.Errorf("%%#v of an array holding an error = %q; want no pointer", got)
	}
	m, err := eng.Do(ctx, "EVAL", "return {map={a=1, b=redis.error_reply('MYERR boom')}}", "0").Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprintf("%d", m), "map[%!d(string=a):1 %!d(string=b):%!d(error=vactor: server error: MYERR boom)]"; got != want {
		t.Errorf("%%d of a map holding an error = %q; want %q", got, want)
	}
	arr, _ := r.Array()
	if got, want := fmt.Sprintf("%d", arr[1]), "%!d(error=vactor: server error: MYERR boom)"; got != want {
		t.Errorf("%%d of an error element = %q; want %q", got, want)
	}
}
