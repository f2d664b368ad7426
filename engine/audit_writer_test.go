package engine_test

// User-side audit of the BatchWriter in standalone mode, default config:
// exactly-once across a crash, Flush, Close, errors reported once, huge
// values, writes after Close.

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// auditInts returns the integer values of keys (0 for a missing key).
func auditInts(t *testing.T, ctx context.Context, eng *engine.Engine, keys []string) []int {
	t.Helper()
	out := make([]int, 0, len(keys))
	for i := 0; i < len(keys); i += 1000 {
		vals, err := eng.MGet(ctx, keys[i:min(i+1000, len(keys))]...).Await(ctx)
		if err != nil {
			t.Fatalf("MGET: %v", err)
		}
		for _, v := range vals {
			n := 0
			if v != nil {
				if n, err = strconv.Atoi(*v); err != nil {
					t.Fatalf("value %q: %v", *v, err)
				}
			}
			out = append(out, n)
		}
	}
	return out
}

// A crash (SIGKILL) and restart of the server while INCRs of unique keys
// stream through a default (non-idempotent) writer: every INCR is
// acknowledged or reported once; an acknowledged one ran exactly once, one
// reported with ErrOutcomeUnknown ran at most once, any other failure
// never ran; no key is ever incremented twice (nothing is silently sent
// again after it may have run).
func TestAuditWriterExactlyOnceAcrossCrash(t *testing.T) {
	const n = 60_000
	srv := valkeytest.Start(t, valkeytest.Options{AppendOnly: true})
	ctx := bulkCtxT(t)
	eng, err := open(ctx, t, config.DefaultConfig().WithAddrs(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	errs := &bwErrors{}
	w := bwWriter(t, eng, engine.BatchWriterOptions{OnError: errs.on})
	keys := make([]string, n)
	crashed := make(chan error, 1)
	for i := range n {
		keys[i] = bwKey("once", i)
		if i == n/4 {
			go func() {
				if err := srv.Kill(); err != nil {
					crashed <- err
					return
				}
				crashed <- srv.Restart()
			}()
		}
		if err := w.Incr(ctx, keys[i]); err != nil {
			t.Fatalf("Incr %d: %v", i, err)
		}
	}
	if err := <-crashed; err != nil {
		t.Fatalf("kill/restart: %v", err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	bwCheckDone(t, st, errs.len())
	if st.Written != n {
		t.Fatalf("written %d, want %d", st.Written, n)
	}
	kind := map[string]error{}
	errs.mu.Lock()
	for i, cmd := range errs.cmds {
		if len(cmd) != 2 || cmd[0] != "INCR" {
			t.Fatalf("OnError got %q", cmd)
		}
		if _, dup := kind[cmd[1]]; dup {
			t.Fatalf("OnError reported %q twice", cmd)
		}
		kind[cmd[1]] = errs.errs[i]
	}
	errs.mu.Unlock()
	check, err := open(ctx, t, config.DefaultConfig().WithAddrs(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	vals := auditInts(t, ctx, check, keys)
	unknownRan, unknown := 0, 0
	for i, v := range vals {
		e, failed := kind[keys[i]]
		switch {
		case v > 1:
			t.Fatalf("%s incremented %d times (failed: %v)", keys[i], v, e)
		case !failed && v != 1:
			t.Fatalf("%s acknowledged but its value is %d", keys[i], v)
		case failed && errors.Is(e, engine.ErrOutcomeUnknown):
			unknown++
			unknownRan += v
		case failed && v != 0:
			t.Fatalf("%s failed with %v (not outcome-unknown) but ran", keys[i], e)
		}
	}
	t.Logf("%s; %d outcome unknown (%d of them ran), %d other failures", st, unknown, unknownRan, len(kind)-unknown)
}

// Flush waits for what was written before it; with a ctx already done it
// returns the ctx's error; Close flushes; after Close every helper fails
// with ErrClosed and nothing more reaches the server.
func TestAuditWriterFlushCloseAfterClose(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := subEngine(t, srv)
	ctx := ctxT(t)
	w := bwWriter(t, eng, engine.BatchWriterOptions{})
	for range 5000 {
		if err := w.Incr(ctx, "fl:count"); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if v := auditInts(t, ctx, eng, []string{"fl:count"})[0]; v != 5000 {
		t.Fatalf("after Flush fl:count = %d, want 5000", v)
	}
	// A Flush whose ctx is already done, with work pending, must not
	// claim success it did not wait for.
	for range 20000 {
		if err := w.Incr(ctx, "fl:count2"); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(canceledCtx()); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Flush(canceled) = %v", err)
	}
	// Close flushes what is queued.
	for i := range 3000 {
		if err := w.Set(ctx, bwKey("fl:set", i), strings.Repeat("x", i%50), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if v := auditInts(t, ctx, eng, []string{"fl:count2"})[0]; v != 20000 {
		t.Fatalf("after Close fl:count2 = %d, want 20000", v)
	}
	keys := make([]string, 3000)
	for i := range keys {
		keys[i] = bwKey("fl:set", i)
	}
	if lost := bwMissing(t, ctx, eng, keys); len(lost) > 0 {
		t.Fatalf("Close did not flush %d SETs, first %s", len(lost), lost[0])
	}
	st := w.Stats()
	if st.Written != 28000 || st.Acknowledged != 28000 || st.Pending != 0 {
		t.Fatalf("stats after Close: %s", st)
	}
	after := map[string]error{
		"Write":  w.Write(ctx, "INCR", "fl:after"),
		"Set":    w.Set(ctx, "fl:after", "1", 0),
		"Incr":   w.Incr(ctx, "fl:after"),
		"IncrBy": w.IncrBy(ctx, "fl:after", 2),
		"HSet":   w.HSet(ctx, "fl:afterh", "f", "v"),
		"Del":    w.Del(ctx, "fl:count"),
		"RPush":  w.RPush(ctx, "fl:afterl", "a"),
		"SAdd":   w.SAdd(ctx, "fl:afters", "a"),
		"XAdd":   w.XAdd(ctx, "fl:afterx", "f", "v"),
		"Expire": w.Expire(ctx, "fl:count", time.Second),
	}
	for name, err := range after {
		if !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatalf("Flush after Close = %v", err)
	}
	if err := w.Close(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
	if n := bwDBSize(t, ctx, eng); n != 3002 {
		t.Fatalf("DBSIZE %d after writes following Close, want 3002", n)
	}
	if st2 := w.Stats(); st2.Written != st.Written {
		t.Fatalf("writes after Close counted: %s", st2)
	}
}

// Each failing command is reported exactly once, with its own arguments,
// and its neighbours in the same pipeline are not affected; a huge value
// (8 MB) and values with binary bytes arrive intact.
func TestAuditWriterErrorsOnceAndHugeValues(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := subEngine(t, srv)
	ctx := ctxT(t)
	if _, err := eng.Do(ctx, "RPUSH", "er:list", "x").Await(ctx); err != nil {
		t.Fatal(err)
	}
	errs := &bwErrors{}
	w := bwWriter(t, eng, engine.BatchWriterOptions{OnError: errs.on})
	const n = 3000
	for i := range n {
		var err error
		switch i % 3 {
		case 0:
			err = w.Set(ctx, bwKey("er:k", i), "v"+strconv.Itoa(i), 0)
		case 1:
			err = w.Write(ctx, "INCR", "er:list", strconv.Itoa(i)) // wrong arity: an error reply
		case 2:
			err = w.Incr(ctx, "er:list") // WRONGTYPE
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	huge := strings.Repeat("0123456789abcdef", 8<<20/16)
	bin := "\x00\xff\r\n$*-+日本\x00"
	if err := w.Set(ctx, "er:huge", huge, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Set(ctx, "er:bin\x00\xff", bin, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	bwCheckDone(t, st, errs.len())
	if st.Failed != 2*n/3 {
		t.Fatalf("failed %d, want %d", st.Failed, 2*n/3)
	}
	arity, wrongType := map[string]int{}, 0
	errs.mu.Lock()
	for i, cmd := range errs.cmds {
		var se *engine.ServerError
		if !errors.As(errs.errs[i], &se) {
			t.Fatalf("%q: %v is not a *ServerError", cmd, errs.errs[i])
		}
		switch {
		case len(cmd) == 3 && cmd[0] == "INCR" && cmd[1] == "er:list":
			arity[cmd[2]]++
		case len(cmd) == 2 && cmd[0] == "INCR" && cmd[1] == "er:list" && se.Prefix == "WRONGTYPE":
			wrongType++
		default:
			t.Fatalf("OnError got %q: %v", cmd, se)
		}
	}
	errs.mu.Unlock()
	if len(arity) != n/3 || wrongType != n/3 {
		t.Fatalf("reported %d distinct wrong-arity INCRs and %d WRONGTYPE, want %d each", len(arity), wrongType, n/3)
	}
	for arg, c := range arity {
		if c != 1 {
			t.Fatalf("INCR er:list %s reported %d times", arg, c)
		}
	}
	keys := make([]string, 0, n/3)
	for i := 0; i < n; i += 3 {
		keys = append(keys, bwKey("er:k", i))
	}
	if lost := bwMissing(t, ctx, eng, keys); len(lost) > 0 {
		t.Fatalf("%d SETs next to failing commands missing, first %s", len(lost), lost[0])
	}
	got, err := eng.Get(ctx, "er:huge").Await(ctx)
	if err != nil || got != huge {
		t.Fatalf("huge value: %d bytes, %v; want %d bytes", len(got), err, len(huge))
	}
	got, err = eng.Get(ctx, "er:bin\x00\xff").Await(ctx)
	if err != nil || got != bin {
		t.Fatalf("binary value %q, %v", got, err)
	}
}

// Write refuses a blocking command or a WAIT whose timeout is 0 (forever)
// or not below ReadTimeout, sending nothing: it held up the writer's
// connection until the read timed out, which closed it and failed the
// commands in flight (ErrOutcomeUnknown). Short ones are written.
func TestAuditWriterRefusesUnboundedBlocking(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := subEngine(t, srv)
	ctx := ctxT(t)
	errs := &bwErrors{}
	w := bwWriter(t, eng, engine.BatchWriterOptions{OnError: errs.on})
	for _, args := range [][]string{
		{"BLPOP", "bl:list", "0"},
		{"blpop", "bl:list", "60"},
		{"XREAD", "BLOCK", "0", "STREAMS", "bl:s", "$"},
		{"WAIT", "1", "0"},
	} {
		if err := w.Write(ctx, args...); !errors.Is(err, engine.ErrInvalidArgument) {
			t.Errorf("Write(%q) = %v; want ErrInvalidArgument", args, err)
		}
	}
	if err := w.Write(ctx, "BLPOP", "bl:list", "0.05"); err != nil {
		t.Fatalf("Write of a short BLPOP: %v", err)
	}
	if err := w.Set(ctx, "bl:after", "v", 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := eng.Get(ctx, "bl:after").Await(ctx); err != nil || got != "v" {
		t.Fatalf("GET bl:after = %q, %v", got, err)
	}
	if st := w.Stats(); st.Failed != 0 {
		t.Fatalf("stats %+v: a command failed", st)
	}
}
