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

// Float64 and Bool read a verbatim string's text without its format
// prefix, as String and Int64 do: Float64 of "txt:2.5" parsed the prefix
// and failed, Bool refused the type, while String gave "2.5" and Int64
// of "txt:1" gave 1 (qa45 F3).
func TestReplyVerbatimNumbers(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	eval := func(src string) engine.Reply {
		t.Helper()
		r, err := eng.Do(ctx, "EVAL", src, "0").Await(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	verbatim := func(text string) engine.Reply {
		return eval("return {verbatim_string={format='txt', string='" + text + "'}}")
	}
	if f, err := verbatim("2.5").Float64(); err != nil || f != 2.5 {
		t.Errorf("Float64 of verbatim 2.5 = %v, %v; want 2.5", f, err)
	}
	if f, err := verbatim("-7").Float64(); err != nil || f != -7 {
		t.Errorf("Float64 of verbatim -7 = %v, %v; want -7", f, err)
	}
	if _, err := verbatim("abc").Float64(); !errors.Is(err, engine.ErrReplyType) {
		t.Errorf("Float64 of verbatim abc: %v; want ErrReplyType", err)
	}
	for text, want := range map[string]bool{"1": true, "0": false, "OK": true} {
		if b, err := verbatim(text).Bool(); err != nil || b != want {
			t.Errorf("Bool of verbatim %s = %v, %v; want %v", text, b, err, want)
		}
	}
	if _, err := verbatim("yes").Bool(); !errors.Is(err, engine.ErrReplyType) {
		t.Errorf("Bool of verbatim yes: %v; want ErrReplyType", err)
	}
	// A big number is a number's text, as Int64 and Float64 read it.
	if b, err := eval("return {big_number='0'}").Bool(); err != nil || b {
		t.Errorf("Bool of big number 0 = %v, %v; want false", b, err)
	}
	if f, err := eval("return {big_number='12'}").Float64(); err != nil || f != 12 {
		t.Errorf("Float64 of big number 12 = %v, %v; want 12", f, err)
	}
	// Doubles keep their meaning: Float64, and no Bool.
	if f, err := eval("return {double=0/0}").Float64(); err != nil || f == f {
		t.Errorf("Float64 of a NaN double = %v, %v; want NaN", f, err)
	}
	if _, err := eval("return {double=1}").Bool(); !errors.Is(err, engine.ErrReplyType) {
		t.Errorf("Bool of a double: %v; want ErrReplyType", err)
	}
}
