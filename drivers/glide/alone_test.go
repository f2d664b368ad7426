package glide_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/drivers/glide"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// pipeline sends cmds through c as one pipeline and returns the replies
// and the sizes of the glide batches it went out in.
func pipeline(t *testing.T, c drivers.ValkeyConn, cmds [][]string) ([]valkey.ValkeyResult, []int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	var sizes []int
	restore := glide.OnBatch(func(n int) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() })
	defer restore()
	built := make([]valkey.Completed, len(cmds))
	for i, args := range cmds {
		built[i] = c.B().Arbitrary(args...).Build()
	}
	rs := c.DoMulti(ctx, built...)
	mu.Lock()
	defer mu.Unlock()
	return rs, slices.Clone(sizes)
}

// wantUnreadable checks that rs[i] is an error reply saying that the
// reply of cmds[i] cannot be read (it ran: no transport error).
func wantUnreadable(t *testing.T, cmds [][]string, rs []valkey.ValkeyResult, is ...int) {
	t.Helper()
	for _, i := range is {
		err := rs[i].Error()
		if err == nil || rs[i].NonValkeyError() != nil || !strings.Contains(err.Error(), "cannot be read") {
			t.Errorf("%q: %v (transport error: %v), want an error reply saying the reply cannot be read", cmds[i], err, rs[i].NonValkeyError())
		}
	}
}

// wantStrings checks that rs[i] reads as want[i] for each i in want.
func wantStrings(t *testing.T, cmds [][]string, rs []valkey.ValkeyResult, want map[int]string) {
	t.Helper()
	for i, w := range want {
		if v, err := rs[i].ToString(); err != nil || v != w {
			if n, ierr := rs[i].AsInt64(); ierr == nil && fmt.Sprint(n) == w {
				continue
			}
			t.Errorf("%q = %q, %v; want %q", cmds[i], v, err, w)
		}
	}
}

// unique makes a script's text unseen by the driver in this process
// (the digests it saw are shared by every Conn).
func unique(t *testing.T, body string) string {
	return fmt.Sprintf("-- %s %d\n%s", t.Name(), time.Now().UnixNano(), body)
}

// runs numbers the names fresh gives.
var runs atomic.Int64

// fresh returns name with a suffix of its own in the process: the
// driver learns functions and module commands by name for the process's
// life, so a test run again (-count) must not find them learned.
func fresh(name string) string { return fmt.Sprintf("%s_%d", name, runs.Add(1)) }

// wantLost checks that every reply of rs failed with the transport
// error of a batch whose replies glide could not convert.
func wantLost(t *testing.T, cmds [][]string, rs []valkey.ValkeyResult) {
	t.Helper()
	for i, r := range rs {
		if err := r.NonValkeyError(); err == nil || !strings.Contains(err.Error(), "conversion") {
			t.Errorf("%q: %v, want the batch's conversion failure", cmds[i], err)
		}
	}
}

// EVALSHA of scripts the driver has not seen (loaded by another client)
// and FCALL of functions go with the other commands: the first batch
// holding one whose reply glide cannot convert (a map with an integer
// key, after redis.setresp(3); a set of integers) loses its replies, and
// the driver learns its suspects (every such command of that batch).
// From then on each goes in a batch of its own, in the pipeline's order:
// it fails alone, with an error reply; the commands around it get their
// replies, and see its effects in order. Those it did not learn still go
// with the others.
func TestUnseenScriptAndFunctionLearned(t *testing.T) {
	srv := valkeytest.Start(t)
	fmap, fset, fstr, fother := fresh("fmap"), fresh("fset"), fresh("fstr"), fresh("fother")
	lib := "#!lua name=vactorlib\n" +
		"redis.register_function('" + fmap + "', function(keys, args) redis.setresp(3); redis.call('INCR', keys[1]); return {map={[1]=2}} end)\n" +
		"redis.register_function{function_name='" + fset + "', callback=function(keys, args) return {set={[7]=true}} end, flags={'no-writes'}}\n" +
		"redis.register_function('" + fstr + "', function(keys, args) return redis.call('GET', keys[1]) end)\n" +
		"redis.register_function('" + fother + "', function(keys, args) return redis.call('GET', keys[1]) end)"
	var shas []string
	for _, cmd := range [][]string{
		{"FUNCTION", "LOAD", lib},
		{"SCRIPT", "LOAD", unique(t, "return {map={[1]=2}}")},
		{"SCRIPT", "LOAD", unique(t, "return {set={[1]=true}}")},
		{"SCRIPT", "LOAD", unique(t, "return 'other'")},
	} {
		r, err := srv.Do(cmd...) // another client: the driver sees none of them
		if err != nil {
			t.Fatalf("%q: %v", cmd[:2], err)
		}
		if cmd[0] == "SCRIPT" {
			shas = append(shas, fmt.Sprint(r))
		}
	}
	c := dialFast(t, glide.Driver{}, srv.Addr())
	cmds := [][]string{
		{"SET", "k", "1"},
		{"FCALL", fmap, "1", "k"}, // k = 2
		{"INCR", "k"},             // 3
		{"fcall_ro", fset, "0"},
		{"FCALL", fstr, "1", "k"},
		{"EVALSHA", shas[0], "0"},
		{"GET", "k"},
		{"EVALSHA_RO", strings.ToUpper(shas[1]), "0"},
		{"INCR", "k"}, // 4
	}
	rs, sizes := pipeline(t, c, cmds)
	wantLost(t, cmds, rs)
	if want := []int{len(cmds)}; !slices.Equal(sizes, want) {
		t.Errorf("first time: batches of %v, want %v", sizes, want)
	}
	rs, sizes = pipeline(t, c, cmds)
	wantUnreadable(t, cmds, rs, 1, 3, 5, 7)
	wantStrings(t, cmds, rs, map[int]string{0: "OK", 2: "3", 4: "3", 6: "3", 8: "4"})
	if want := []int{1, 1, 1, 1, 1, 1, 1, 1, 1}; !slices.Equal(sizes, want) {
		t.Errorf("learned: batches of %v, want %v", sizes, want)
	}
	// Not in a batch that failed: with the others.
	others := [][]string{{"GET", "k"}, {"FCALL", fother, "1", "k"}, {"EVALSHA", shas[2], "0"}, {"GET", "k"}}
	rs, sizes = pipeline(t, c, others)
	wantStrings(t, others, rs, map[int]string{0: "4", 1: "4", 2: "other", 3: "4"})
	if want := []int{len(others)}; !slices.Equal(sizes, want) {
		t.Errorf("not learned: batches of %v, want %v", sizes, want)
	}
}

// A command that is not one of the server's own (a module's; here
// DEBUG renamed, so that its reply can be what a module's may be: a map
// with integer keys, a set of integers) goes with the others until a
// batch holding it loses its replies; then it goes alone, and fails
// alone with an error reply.
func TestUnknownCommandLearned(t *testing.T) {
	debug := fresh("VACTOR.DEBUG")
	srv := valkeytest.Start(t, valkeytest.Options{Args: []string{
		"--enable-debug-command", "yes", "--rename-command", "DEBUG", debug,
	}})
	c := dialFast(t, glide.Driver{}, srv.Addr())
	cmds := [][]string{
		{"SET", "k", "1"},
		{debug, "PROTOCOL", "map"},
		{"GET", "k"},
		{strings.ToLower(debug), "PROTOCOL", "set"},
		{debug, "PROTOCOL", "double"}, // convertible: read as sent
		{"INCR", "k"},
	}
	rs, sizes := pipeline(t, c, cmds)
	wantLost(t, cmds, rs)
	if want := []int{len(cmds)}; !slices.Equal(sizes, want) {
		t.Errorf("first time: batches of %v, want %v", sizes, want)
	}
	rs, sizes = pipeline(t, c, cmds)
	wantUnreadable(t, cmds, rs, 1, 3)
	wantStrings(t, cmds, rs, map[int]string{0: "OK", 2: "1", 5: "2"})
	if f, err := rs[4].AsFloat64(); err != nil || f != 3.141 {
		t.Errorf("%q = %v, %v", cmds[4], f, err)
	}
	if want := []int{1, 1, 1, 1, 1, 1}; !slices.Equal(sizes, want) {
		t.Errorf("learned: batches of %v, want %v", sizes, want)
	}
}

// DEBUG PROTOCOL bignum and attrib are not sent: glide 2.5.3's core
// aborts the process on a RESP3 big number or attribute ("not yet
// implemented"; this test binary died with it). They fail with an error
// reply that says why; inside MULTI the transaction is aborted. DEBUG
// PROTOCOL map and set go alone (glide's Go binding cannot convert
// them).
func TestDebugProtocolRefused(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{Args: []string{"--enable-debug-command", "yes"}})
	c := dialFast(t, glide.Driver{}, srv.Addr())
	cmds := [][]string{
		{"SET", "k", "1"},
		{"DEBUG", "PROTOCOL", "bignum"},
		{"GET", "k"},
		{"debug", "protocol", "Attrib"},
		{"DEBUG", "PROTOCOL", "map"},
		{"DEBUG", "PROTOCOL", "set"},
		{"MULTI"}, {"INCR", "k"}, {"DEBUG", "PROTOCOL", "BIGNUM"}, {"EXEC"},
		{"GET", "k"},
	}
	rs, _ := pipeline(t, c, cmds)
	for _, i := range []int{1, 3} {
		if err := rs[i].Error(); err == nil || rs[i].NonValkeyError() != nil || !strings.Contains(err.Error(), "not sent") {
			t.Errorf("%q: %v, want an error reply saying it was not sent", cmds[i], err)
		}
	}
	wantUnreadable(t, cmds, rs, 4, 5)
	if err := rs[9].Error(); err == nil || !strings.HasPrefix(err.Error(), "EXECABORT") {
		t.Errorf("EXEC: %v, want EXECABORT", err)
	}
	wantStrings(t, cmds, rs, map[int]string{0: "OK", 2: "1", 10: "1"})
}

// A pipeline of the server's own commands, of any case, with harmless
// scripts (EVAL, and EVALSHA of a script the driver saw loaded), a
// transaction, and commands the driver cannot judge but has not learned
// (an unseen EVALSHA, FCALL, a module's command), goes out as one glide
// batch.
func TestOrdinaryPipelineNotSplit(t *testing.T) {
	srv := valkeytest.Start(t)
	c := dialFast(t, glide.Driver{}, srv.Addr())
	body := unique(t, "return redis.call('GET', KEYS[1])")
	rs, _ := pipeline(t, c, [][]string{{"SCRIPT", "LOAD", body}})
	sum, err := rs[0].ToString()
	if err != nil {
		t.Fatal(err)
	}
	cmds := [][]string{
		{"SET", "s", "v"}, {"get", "s"}, {"Incr", "n"}, {"MGET", "s", "n"}, {"HSET", "h", "a", "1"},
		{"HGETALL", "h"}, {"SADD", "st", "x"}, {"SMEMBERS", "st"}, {"ZADD", "z", "1", "a"},
		{"ZRANGE", "z", "0", "-1", "WITHSCORES"}, {"XADD", "x", "1-1", "f", "v"}, {"XRANGE", "x", "-", "+"},
		{"EXPIRE", "s", "100"}, {"TTL", "s"}, {"EVAL", "return redis.call('GET', KEYS[1])", "1", "s"},
		{"EVALSHA", sum, "1", "s"}, {"evalsha_ro", strings.ToUpper(sum), "1", "s"},
		{"MULTI"}, {"INCR", "n"}, {"GET", "s"}, {"EXEC"},
		{"CONFIG", "GET", "maxmemory"}, {"CLIENT", "ID"}, {"INFO", "server"}, {"COMMAND", "COUNT"},
		{"DEBUG", "SLEEP", "0"}, {"PING"}, {"ECHO", "e"}, {"DEL", "s"},
		// Not judged, not learned: with the others.
		{"EVALSHA", strings.Repeat("ab", 20), "0"}, {"FCALL", "nosuchfunction", "0"}, {"NOSUCH.MODULECMD", "k"},
	}
	rs, sizes := pipeline(t, c, cmds)
	if !slices.Equal(sizes, []int{len(cmds)}) {
		t.Errorf("batches of %v, want one of %d", sizes, len(cmds))
	}
	wantStrings(t, cmds, rs, map[int]string{1: "v", 2: "1", 14: "v", 15: "v", 16: "v"})
	for i, r := range rs {
		if err := r.NonValkeyError(); err != nil {
			t.Errorf("%q: %v", cmds[i], err)
		}
	}
}

// Through the engine, a pipeline holding FCALL of a function whose reply
// glide cannot convert: the first time, the batch's replies are lost (its
// commands fail, the connection is opened again); after that the FCALL
// fails alone with a *ServerError, the other commands get their replies,
// nothing is retried or reconnected.
func TestFunctionLearnedEngine(t *testing.T) {
	eng, srv := parityEngine(t, "glide")
	fmap2 := fresh("fmap2")
	lib := "#!lua name=vactorlib2\nredis.register_function('" + fmap2 + "', function(keys, args) redis.setresp(3); return {map={[1]=2}} end)"
	if _, err := srv.Do("FUNCTION", "LOAD", lib); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	run := func() (n int64, exec, set, incr, fcall error) {
		p := eng.Pipeline()
		s := p.Set("k", "1", 0)
		f := p.Do("FCALL", fmap2, "0")
		i := p.Incr("k")
		exec = p.Exec(ctx)
		_, set = s.Await(ctx)
		_, fcall = f.Await(ctx)
		n, incr = i.Await(ctx)
		return n, exec, set, incr, fcall
	}
	start := eng.Stats()
	if _, exec, _, _, fcall := run(); exec == nil || fcall == nil {
		t.Fatalf("first pipeline: Exec %v, FCALL %v; want its batch's conversion failure", exec, fcall)
	}
	// The connection is opened again: wait for it before counting.
	deadline := time.Now().Add(10 * time.Second)
	for eng.Stats().Reconnects == start.Reconnects {
		if time.Now().After(deadline) {
			t.Fatal("no reconnect after the lost batch")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := eng.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	before := eng.Stats()
	n, exec, set, incr, fcall := run()
	if exec != nil {
		t.Errorf("Exec: %v", exec)
	}
	if set != nil {
		t.Errorf("SET: %v", set)
	}
	var se *engine.ServerError
	if !errors.As(fcall, &se) || !strings.Contains(se.Message, "cannot be read") {
		t.Errorf("FCALL: %v (%T), want a *ServerError saying the reply cannot be read", fcall, fcall)
	}
	if incr != nil || n != 2 {
		t.Errorf("INCR = %d, %v", n, incr)
	}
	if st := eng.Stats(); st.Reconnects != before.Reconnects || st.OutcomeUnknown != before.OutcomeUnknown {
		t.Errorf("%d reconnects, %d outcome-unknown failures after the driver learned",
			st.Reconnects-before.Reconnects, st.OutcomeUnknown-before.OutcomeUnknown)
	}
}

// A function whose reply glide cannot convert, called alone first (its
// error reply says why), teaches the driver as a lost batch does: the
// first pipeline holding it then sends it alone, and the commands around
// it keep their replies (qa-AE 2: before, that pipeline lost every reply,
// and its writes read as outcomes unknown though they ran).
func TestStandaloneFailureLearned(t *testing.T) {
	srv := valkeytest.Start(t)
	fmap := fresh("falone")
	lib := "#!lua name=vactoralone" + fmap + "\n" +
		"redis.register_function('" + fmap + "', function(keys, args) redis.setresp(3); redis.call('INCR', keys[1]); return {map={[1]=2}} end)"
	if _, err := srv.Do("FUNCTION", "LOAD", lib); err != nil {
		t.Fatal(err)
	}
	c := dialFast(t, glide.Driver{}, srv.Addr())
	alone := [][]string{{"FCALL", fmap, "1", "k"}} // k = 1
	rs, sizes := pipeline(t, c, alone)
	wantUnreadable(t, alone, rs, 0)
	if want := []int{1}; !slices.Equal(sizes, want) {
		t.Errorf("alone: batches of %v, want %v", sizes, want)
	}
	cmds := [][]string{{"INCR", "k"}, {"FCALL", fmap, "1", "k"}, {"INCR", "k"}} // 2, 3, 4
	rs, sizes = pipeline(t, c, cmds)
	wantUnreadable(t, cmds, rs, 1)
	wantStrings(t, cmds, rs, map[int]string{0: "2", 2: "4"})
	if want := []int{1, 1, 1}; !slices.Equal(sizes, want) {
		t.Errorf("after the failure alone: batches of %v, want %v", sizes, want)
	}
}
