package engine_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
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
	eval := func(src string) engine.Reply { return evalReply(t, eng, ctx, src) }
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

// A map reply whose keys are integers (LATENCY HISTOGRAM's
// histogram_usec counts calls by bucket; a script's map) reads through
// Map and Any with each key as its text, integers in decimal, as Map
// reads a flat array's: both failed with ErrReplyType, and so did %v,
// leaving only Message, whose ToMap fails the same way (qa45 F4). Keys
// that have no text (an array, a boolean, a nil) or two keys with the
// same text still fail with ErrReplyType.
func TestReplyMapIntegerKeys(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{Args: []string{"--latency-tracking", "yes"}})
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	ctx := ctxT(t)
	if _, err := eng.Do(ctx, "SET", "rp:k", "v").Await(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := eng.Do(ctx, "LATENCY", "HISTOGRAM", "set").Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, err := r.Any()
	if err != nil {
		t.Fatalf("Any of LATENCY HISTOGRAM: %v", err)
	}
	set, _ := a.(map[string]any)["set"].(map[string]any)
	hist, _ := set["histogram_usec"].(map[string]any)
	if set["calls"] != int64(1) || len(hist) != 1 {
		t.Fatalf("Any of LATENCY HISTOGRAM = %#v; want set's calls 1 and one bucket", a)
	}
	for bucket, n := range hist {
		if _, err := strconv.ParseInt(bucket, 10, 64); err != nil || n != int64(1) {
			t.Fatalf("histogram_usec = %#v; want {<bucket>: 1}", hist)
		}
	}
	if s := fmt.Sprint(r); !strings.HasPrefix(s, "map[set:map[calls:1 histogram_usec:map[") {
		t.Fatalf("Sprint of LATENCY HISTOGRAM = %q", s)
	}
	hr, err := r.Array() // not a map accessor: still refused
	if !errors.Is(err, engine.ErrReplyType) {
		t.Fatalf("Array of a map = %v, %v; want ErrReplyType", hr, err)
	}

	eval := func(src string) engine.Reply { return evalReply(t, eng, ctx, src) }
	r = eval("return {map={[1]='x', [20]={double=2.5}, k={big_number='7'}}}")
	if m, err := r.Map(); err != nil || !reflect.DeepEqual(m, map[string]string{"1": "x", "20": "2.5", "k": "7"}) {
		t.Fatalf("Map of a map with integer keys = %q, %v", m, err)
	}
	if a, err := r.Any(); err != nil || !reflect.DeepEqual(a, map[string]any{"1": "x", "20": 2.5, "k": "7"}) {
		t.Fatalf("Any of a map with integer keys = %#v, %v", a, err)
	}
	// Error values keep their meaning: Map fails, Any holds the error.
	r = eval("return {map={[1]=redis.error_reply('MYERR v')}}")
	if _, err := r.Map(); !errors.Is(err, &engine.ServerError{Prefix: "MYERR"}) {
		t.Fatalf("Map of {1: error}: %v; want the MYERR *ServerError", err)
	}
	if a, err := r.Any(); err != nil || !errors.Is(a.(map[string]any)["1"].(error), &engine.ServerError{Prefix: "MYERR"}) {
		t.Fatalf("Any of {1: error} = %#v, %v", a, err)
	}
	for _, src := range []string{
		"return {map={[1]='x', ['1']='y'}}",                       // two keys read as "1"
		"return {map={[{1}]='x'}}",                                // an array as a key
		"redis.setresp(3); return {map={[true]='x'}}",             // a boolean as a key
		"return {map={[{double=1}]='x', [{big_number='1'}]='y'}}", // two keys read as "1"
	} {
		r := eval(src)
		_, errM := r.Map()
		_, errA := r.Any()
		if !errors.Is(errM, engine.ErrReplyType) || !errors.Is(errA, engine.ErrReplyType) {
			t.Fatalf("%s: Map %v, Any %v; want ErrReplyType", src, errM, errA)
		}
	}
}

// evalReply returns the Reply of a script with no keys (EVAL src 0).
func evalReply(t *testing.T, eng *engine.Engine, ctx context.Context, src string) engine.Reply {
	t.Helper()
	r, err := eng.Do(ctx, "EVAL", src, "0").Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
