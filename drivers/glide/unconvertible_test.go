package glide_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/drivers/glide"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// Scripts returning a map with a non-string key or a set of non-strings
// (glide 2.5.3's Go binding panics on them) fail alone, with an error
// reply that says so; the commands pipelined with them get their replies
// and the connection stays. The whole pipeline failed with the panic's
// error: through the engine every command batched with the script failed
// with ErrOutcomeUnknown and the connection was opened again.
func TestUnconvertibleReplyAlone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dialFast(t, glide.Driver{}, valkeytest.Start(t).Addr())
	pipe := [][]string{
		{"SET", "a", "1"},
		{"EVAL", "return {map={[1]=2}}", "0"},
		{"GET", "a"},
		{"EVAL", "return {set={[1]=true}}", "0"},
		{"EVAL", "return {map={a={set={x=true}}}}", "0"}, // converts: strings only
		{"INCR", "n"},
	}
	cmds := make([]valkey.Completed, len(pipe))
	for i, args := range pipe {
		cmds[i] = c.B().Arbitrary(args...).Build()
	}
	rs := c.DoMulti(ctx, cmds...)
	for _, i := range []int{1, 3} {
		err := rs[i].Error()
		if err == nil || rs[i].NonValkeyError() != nil || !strings.Contains(err.Error(), "cannot be read") {
			t.Errorf("%q: %v (transport error: %v), want an error reply saying the reply cannot be read", pipe[i], err, rs[i].NonValkeyError())
		}
	}
	if v, err := rs[2].ToString(); err != nil || v != "1" {
		t.Errorf("GET a = %q, %v", v, err)
	}
	if v := drivers.FromValkey(rs[4]).Value; v.Kind != drivers.KindMap || len(v.Elems) != 2 || v.Elems[1].Kind != drivers.KindSet {
		t.Errorf("%q = %v", pipe[4], v)
	}
	if n, err := rs[5].AsInt64(); err != nil || n != 1 {
		t.Errorf("INCR n = %d, %v", n, err)
	}
	// The connection is sound.
	if n, err := c.Do(ctx, c.B().Incr().Key("n").Build()).AsInt64(); err != nil || n != 2 {
		t.Errorf("INCR n after = %d, %v", n, err)
	}
}

// Through the engine, a script run by SHA1 (which the driver cannot look
// into) whose reply cannot be converted fails with a *ServerError when
// it is alone in its pipeline: no outcome-unknown failure, no reconnect.
func TestUnconvertibleReplyEngine(t *testing.T) {
	eng, _ := parityEngine(t, "glide")
	ctx := ctxT(t)
	sha, err := eng.Do(ctx, "SCRIPT", "LOAD", "return {map={[1]=2}}").Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := sha.String()
	for _, args := range [][]string{{"EVALSHA", s, "0"}, {"EVAL", "return {set={[1.5]=true}}", "0"}} {
		_, err := eng.Do(ctx, args[0], args[1:]...).Await(ctx)
		var se *engine.ServerError
		if !errors.As(err, &se) || !strings.Contains(se.Message, "cannot be read") {
			t.Errorf("%q: %v (%T), want a *ServerError saying the reply cannot be read", args, err, err)
		}
	}
	if _, err := eng.Do(ctx, "PING").Await(ctx); err != nil {
		t.Fatal(err)
	}
	if st := eng.Stats(); st.Reconnects != 0 || st.OutcomeUnknown != 0 {
		t.Errorf("%d reconnects, %d outcome-unknown failures", st.Reconnects, st.OutcomeUnknown)
	}
}

// A script that may return a RESP3 big number is not sent: glide's core
// aborts the whole process on one (a Rust todo!(); this test binary died
// with it). It fails with an error reply that says why; the commands
// around it run, and inside MULTI the transaction is aborted (EXECABORT)
// as for any command refused while queued.
func TestBigNumberScriptNotSent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dialFast(t, glide.Driver{}, valkeytest.Start(t).Addr())
	script := "return {big_number='1234567890123456789012345678901234567890'}"
	pipe := [][]string{
		{"SET", "a", "1"}, {"EVAL", script, "0"}, {"GET", "a"},
		{"MULTI"}, {"INCR", "a"}, {"eval_ro", script, "0"}, {"EXEC"}, {"GET", "a"},
	}
	cmds := make([]valkey.Completed, len(pipe))
	for i, args := range pipe {
		cmds[i] = c.B().Arbitrary(args...).Build()
	}
	rs := c.DoMulti(ctx, cmds...)
	for _, i := range []int{1, 5} {
		if err := rs[i].Error(); err == nil || rs[i].NonValkeyError() != nil || !strings.Contains(err.Error(), "big number") {
			t.Errorf("%q: %v, want an error reply about big numbers", pipe[i][0], err)
		}
	}
	if err := rs[6].Error(); err == nil || !strings.HasPrefix(err.Error(), "EXECABORT") {
		t.Errorf("EXEC: %v, want EXECABORT", err)
	}
	for _, i := range []int{2, 7} {
		if v, err := rs[i].ToString(); err != nil || v != "1" {
			t.Errorf("GET a (%d) = %q, %v", i, v, err)
		}
	}
}

// A transaction that queued a command whose reply glide cannot convert
// (LATENCY HISTOGRAM is not sent between HELLO 2 and HELLO 3 inside
// MULTI; a script returning a map with an integer key): its EXEC goes in
// a batch of its own, so that EXEC alone fails, with an error reply, and
// the commands around it get their replies. The whole pipeline failed.
func TestUnconvertibleExecAlone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dialFast(t, glide.Driver{}, valkeytest.Start(t).Addr())
	pipe := [][]string{
		{"SET", "a", "1"},
		{"MULTI"}, {"INCR", "a"}, {"LATENCY", "HISTOGRAM", "set"}, {"EXEC"},
		{"GET", "a"},
		{"MULTI"}, {"INCR", "a"}, {"EVAL", "return {map={[1]=2}}", "0"}, {"EXEC"},
		{"MULTI"}, {"INCR", "a"}, {"EXEC"},
	}
	cmds := make([]valkey.Completed, len(pipe))
	for i, args := range pipe {
		cmds[i] = c.B().Arbitrary(args...).Build()
	}
	rs := c.DoMulti(ctx, cmds...)
	for _, i := range []int{4, 9} {
		err := rs[i].Error()
		if err == nil || rs[i].NonValkeyError() != nil || !strings.Contains(err.Error(), "cannot be read") {
			t.Errorf("EXEC %d: %v (transport error: %v), want an error reply saying the reply cannot be read", i, err, rs[i].NonValkeyError())
		}
	}
	if v, err := rs[5].ToString(); err != nil || v != "2" {
		t.Errorf("GET a = %q, %v", v, err)
	}
	if v, err := rs[12].ToArray(); err != nil || len(v) != 1 {
		t.Errorf("last EXEC = %v, %v", v, err)
	} else if n, err := v[0].AsInt64(); err != nil || n != 4 {
		t.Errorf("last EXEC's INCR = %d, %v", n, err)
	}
}

// A risky script loaded with SCRIPT LOAD or run once with EVAL is judged
// by its text when it is run by SHA1 (as the engine's users do after
// ScriptLoad): EVALSHA of a script returning a big number is not sent
// (the process aborted), one returning a map with an integer key goes
// alone (the whole pipeline failed).
func TestRiskyScriptBySHA(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dialFast(t, glide.Driver{}, valkeytest.Start(t).Addr())
	big := "return {big_number='98765432109876543210987654321'}"
	intKey := "return {map={[7]=8}}"
	var shas []string
	for _, body := range []string{big, intKey} {
		sha, err := c.Do(ctx, c.B().ScriptLoad().Script(body).Build()).ToString()
		if err != nil {
			t.Fatalf("SCRIPT LOAD: %v", err)
		}
		shas = append(shas, sha)
	}
	pipe := [][]string{
		{"SET", "a", "1"}, {"EVALSHA", shas[0], "0"}, {"GET", "a"},
		{"evalsha_ro", strings.ToUpper(shas[1]), "0"}, {"INCR", "a"},
	}
	cmds := make([]valkey.Completed, len(pipe))
	for i, args := range pipe {
		cmds[i] = c.B().Arbitrary(args...).Build()
	}
	rs := c.DoMulti(ctx, cmds...)
	if err := rs[1].Error(); err == nil || rs[1].NonValkeyError() != nil || !strings.Contains(err.Error(), "big number") {
		t.Errorf("EVALSHA of a big number script: %v, want an error reply about big numbers", err)
	}
	if err := rs[3].Error(); err == nil || rs[3].NonValkeyError() != nil || !strings.Contains(err.Error(), "cannot be read") {
		t.Errorf("EVALSHA_RO of an integer-key map script: %v, want an error reply saying the reply cannot be read", err)
	}
	if v, err := rs[2].ToString(); err != nil || v != "1" {
		t.Errorf("GET a = %q, %v", v, err)
	}
	if n, err := rs[4].AsInt64(); err != nil || n != 2 {
		t.Errorf("INCR a = %d, %v", n, err)
	}
}
