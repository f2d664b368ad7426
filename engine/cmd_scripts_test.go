package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
)

// The typed script commands a rate limiter or a lock needs (qa-AL AL4:
// only Do and ScriptLoad were there): Eval, EvalSha, EvalRO, and Script,
// which sends the script itself only when the server answers NOSCRIPT.
func TestScripts(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	const limiter = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`
	r, err := eng.Eval(ctx, limiter, []string{"rl"}, "10000").Await(ctx)
	if n, cerr := r.Int64(); err != nil || cerr != nil || n != 1 {
		t.Fatalf("Eval = %v (%v, %v), want 1", r, err, cerr)
	}
	if pttl, _ := eng.PTTL(ctx, "rl").Await(ctx); !pttl.HasExpiry {
		t.Fatalf("PTTL rl = %+v: the script's PEXPIRE did not run", pttl)
	}
	s := engine.NewScript(limiter)
	if len(s.Hash()) != 40 || s.Source() != limiter {
		t.Fatalf("Hash %q, Source %q", s.Hash(), s.Source())
	}
	// Not cached (EVAL cached it: flushed): EVALSHA alone says NOSCRIPT;
	// Run then sends the script.
	if _, err := eng.Do(ctx, "SCRIPT", "FLUSH").Await(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = eng.EvalSha(ctx, s.Hash(), []string{"rl"}, "10000").Await(ctx)
	var se *engine.ServerError
	if !errors.As(err, &se) || se.Prefix != "NOSCRIPT" {
		t.Fatalf("EvalSha of a flushed script: %v, want NOSCRIPT", err)
	}
	for want := int64(2); want <= 4; want++ { // the first Run falls back to EVAL; the others find it
		r, err = s.Run(ctx, eng, []string{"rl"}, "10000").Await(ctx)
		if n, _ := r.Int64(); err != nil || n != want {
			t.Fatalf("Run = %v, %v; want %d", r, err, want)
		}
	}
	if r, err = eng.Sync().RunScript(ctx, s, []string{"rl"}, "10000"); err != nil || fmt.Sprint(r) != "5" {
		t.Fatalf("RunScript = %v, %v; want 5", r, err)
	}
	if r, err = eng.Sync().EvalSha(ctx, s.Hash(), []string{"rl"}, "10000"); err != nil || fmt.Sprint(r) != "6" {
		t.Fatalf("Sync EvalSha = %v, %v; want 6", r, err)
	}
	if r, err = eng.Sync().EvalRO(ctx, "return redis.call('GET', KEYS[1])", []string{"rl"}); err != nil || fmt.Sprint(r) != "6" {
		t.Fatalf("Sync EvalRO = %v, %v; want 6", r, err)
	}
	if r, err = eng.Sync().EvalShaRO(ctx, engine.NewScript("return 7").Hash(), nil); !errors.As(err, &se) || se.Prefix != "NOSCRIPT" {
		t.Fatalf("Sync EvalShaRO of an unknown script = %v, %v; want NOSCRIPT", r, err)
	}
	if res, err := eng.Sync().SetArgs(ctx, "k", "v", engine.SetOptions{NX: true, TTL: time.Minute}); err != nil || !res.Written {
		t.Fatalf("Sync SetArgs NX = %+v, %v", res, err)
	}
	if v, err := eng.Sync().GetEx(ctx, "k", 2*time.Minute); err != nil || v != "v" {
		t.Fatalf("Sync GetEx = %q, %v", v, err)
	}
	// Read-only forms: a read runs, a write is refused by the server.
	ro := engine.NewScript("return redis.call('GET', KEYS[1])")
	if r, err = ro.RunRO(ctx, eng, []string{"rl"}).Await(ctx); err != nil || fmt.Sprint(r) != "6" {
		t.Fatalf("RunRO = %v, %v", r, err)
	}
	if _, err = eng.EvalRO(ctx, "return redis.call('SET', KEYS[1], 'x')", []string{"rl"}).Await(ctx); !errors.As(err, &se) {
		t.Fatalf("EvalRO of a write: %v, want a server error", err)
	}
	// A script's error reply keeps its prefix; nil and false are nil.
	if _, err = eng.Eval(ctx, "return redis.error_reply('LIMITED over quota')", nil).Await(ctx); !errors.As(err, &se) || se.Prefix != "LIMITED" {
		t.Fatalf("error_reply: %v", err)
	}
	if r, err = eng.Eval(ctx, "return false", nil).Await(ctx); err != nil || !r.IsNil() || fmt.Sprint(r) != "<nil>" {
		t.Fatalf("return false = %v, %v; want a nil reply", r, err)
	}
	var nilScript *engine.Script
	if _, err = nilScript.Run(ctx, eng, nil).Await(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("nil Script: %v", err)
	}
	// A zero Script is the empty script (returns nil).
	if r, err = (&engine.Script{}).Run(ctx, eng, nil).Await(ctx); err != nil || !r.IsNil() {
		t.Fatalf("zero Script = %v, %v", r, err)
	}
	// Reply prints as its value and converts an integer to a float (qa-AL
	// AL5: %v printed valkey-go's struct, Float64 of INCR's reply failed).
	r, err = eng.Eval(ctx, "return {1, 'two', {3}}", nil).Await(ctx)
	if err != nil || fmt.Sprint(r) != "[1 two [3]]" || fmt.Sprintf("%q", r) != `['\x01' "two" ['\x03']]` {
		t.Fatalf("Reply prints %v / %q (%v)", r, r, err)
	}
	if f, err := (engine.Reply{}).Any(); err == nil || !strings.Contains(err.Error(), "an empty Reply") || f != nil {
		t.Fatalf("zero Reply Any = %v, %v", f, err)
	}
	if s := fmt.Sprintf("%v", engine.Reply{}); s != "<none>" {
		t.Fatalf("zero Reply prints %s, want <none> (qa-AN AN5)", s)
	}
	r, _ = eng.Do(ctx, "INCR", "n").Await(ctx)
	if f, err := r.Float64(); err != nil || f != 1 {
		t.Fatalf("Float64 of INCR's reply = %v, %v", f, err)
	}
}

// The list commands of a reliable job queue (qa-AL AL4): LTrim and LIndex
// on the engine, LMove, and the blocking BLPop, BRPop and BLMove, which
// wait for an element and fail with ErrNil when none came in time.
func TestListQueueCommands(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	c := eng.Sync()
	if _, err := c.RPush(ctx, "q", "a", "b", "c", "d"); err != nil {
		t.Fatal(err)
	}
	if err := c.LTrim(ctx, "q", 0, 2); err != nil {
		t.Fatal(err)
	}
	if v, err := c.LIndex(ctx, "q", -1); err != nil || v != "c" {
		t.Fatalf("LIndex -1 = %q, %v; want c (LTrim kept a b c)", v, err)
	}
	if _, err := c.LIndex(ctx, "q", 7); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("LIndex out of range: %v, want ErrNil", err)
	}
	if v, err := c.LMove(ctx, "q", "work", engine.Left, engine.Right); err != nil || v != "a" {
		t.Fatalf("LMove = %q, %v", v, err)
	}
	if _, err := c.LMove(ctx, "empty", "work", engine.Left, engine.Right); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("LMove of an empty list: %v, want ErrNil", err)
	}
	if _, err := c.LMove(ctx, "q", "work", engine.ListSide(7), engine.Right); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("LMove UP: %v, want ErrInvalidArgument", err)
	}
	if kv, err := c.BLPop(ctx, time.Second, "none", "q"); err != nil || kv != (engine.KeyValue{Key: "q", Value: "b"}) {
		t.Fatalf("BLPop = %+v, %v", kv, err)
	}
	if kv, err := c.BRPop(ctx, 0, "q"); err != nil || kv != (engine.KeyValue{Key: "q", Value: "c"}) {
		t.Fatalf("BRPop = %+v, %v", kv, err)
	}
	start := time.Now()
	if _, err := c.BLPop(ctx, 50*time.Millisecond, "q"); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("BLPop of an empty list: %v, want ErrNil", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("BLPop with a 50ms timeout returned after %v", d)
	}
	if _, err := c.BLMove(ctx, "q", "work", engine.Right, engine.Left, 10*time.Millisecond); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("BLMove of an empty list: %v, want ErrNil", err)
	}
	for _, err := range []error{
		eng.BLPop(ctx, -time.Second, "q").Err(ctx),
		eng.BRPop(ctx, time.Second).Err(ctx),
		eng.BLMove(ctx, "q", "w", engine.Left, engine.ListSide(2), time.Second).Err(ctx),
	} {
		if !errors.Is(err, engine.ErrInvalidArgument) {
			t.Fatalf("bad arguments: %v, want ErrInvalidArgument", err)
		}
	}
	// Workers blocked in BLMove and BRPop take what is pushed later, each
	// element once.
	var wg sync.WaitGroup
	got := make(chan string, 4)
	for i := range 4 {
		wg.Go(func() {
			var v string
			var err error
			if i%2 == 0 {
				v, err = eng.BLMove(ctx, "jobs", "doing", engine.Right, engine.Left, 0).Await(ctx)
			} else {
				var kv engine.KeyValue
				kv, err = eng.BRPop(ctx, 0, "jobs").Await(ctx)
				v = kv.Value
			}
			if err != nil {
				t.Error(err)
			}
			got <- v
		})
	}
	waitCond(t, 10*time.Second, "4 blocked clients", func() bool {
		info, _ := eng.Do(ctx, "INFO", "clients").Await(ctx)
		s, _ := info.String()
		return strings.Contains(s, "blocked_clients:4")
	})
	if _, err := c.LPush(ctx, "jobs", "j1", "j2", "j3", "j4"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(got)
	seen := map[string]bool{}
	for v := range got {
		seen[v] = true
	}
	if len(seen) != 4 {
		t.Fatalf("workers took %v, want j1..j4 once each", seen)
	}
	if n, _ := c.Do(ctx, "LLEN", "doing"); fmt.Sprint(n) != "2" {
		t.Fatalf("LLEN doing = %v, want the 2 BLMoved jobs", n)
	}
}

// A BRPop whose ctx ends as an element comes never loses it without a
// word: the server's timeout is kept within the ctx's deadline (it
// answers nil first), and a call its ctx cuts all the same fails with
// ErrOutcomeUnknown (still matching the ctx's error), never with the
// ctx's error alone (review-32 R3: 5 of 300 elements popped and lost,
// their calls failed with context.DeadlineExceeded).
func TestBRPopCtxEndLosesNothingSilently(t *testing.T) {
	eng, srv := newEngine(t)
	ctx := ctxT(t)
	const n = 100
	got, timedOut, unknown := 0, 0, 0
	for i := range n {
		c, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		f := eng.BRPop(c, 0, "q")
		time.Sleep(time.Duration(14000+(i%40)*200) * time.Microsecond) // around the deadline: what the test is about
		if err := eng.LPush(ctx, "q", fmt.Sprint(i)).Err(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := f.Await(ctx)
		cancel()
		switch {
		case err == nil:
			got++
		case errors.Is(err, engine.ErrNil):
			timedOut++ // the server gave up first: the element stays in the list
		case errors.Is(err, engine.ErrOutcomeUnknown) && errors.Is(err, context.DeadlineExceeded):
			unknown++
		default:
			t.Fatalf("round %d: %v, want the element, ErrNil or ErrOutcomeUnknown", i, err)
		}
	}
	waitCond(t, 10*time.Second, "no BRPOP left blocked", func() bool {
		info, err := srv.Do("INFO", "clients")
		s, _ := info.(string)
		return err == nil && strings.Contains(s, "blocked_clients:0")
	})
	left, err := eng.LLen(ctx, "q").Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lost := n - got - int(left); lost > unknown {
		t.Fatalf("%d elements popped and lost, %d calls said their outcome was unknown (returned %d, server timeouts %d, left %d)",
			lost, unknown, got, timedOut, left)
	}
	if s := eng.Stats(); s.OutcomeUnknown != uint64(unknown) {
		t.Errorf("Stats.OutcomeUnknown = %d, want the %d pops that failed so (review-32b B4: blocking calls were not counted)", s.OutcomeUnknown, unknown)
	}
}

// An XREADGROUP ... NOACK its ctx cuts may have read entries the server
// acknowledged at once, lost with its reply: ErrOutcomeUnknown (still
// matching the ctx's error), counted in Stats; without NOACK what it read
// stays pending, and the ctx's error alone says so (review-32b B4).
func TestXReadGroupNoAckCutByCtx(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	if _, err := eng.Do(ctx, "XGROUP", "CREATE", "s", "g", "$", "MKSTREAM").Await(ctx); err != nil {
		t.Fatal(err)
	}
	for _, noack := range []bool{true, false} {
		args := []string{"GROUP", "g", "c"}
		if noack {
			args = append(args, "noack")
		}
		args = append(args, "BLOCK", "0", "STREAMS", "s", ">")
		c, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err := eng.Do(c, "XREADGROUP", args...).Await(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, engine.ErrOutcomeUnknown) != noack {
			t.Errorf("XREADGROUP (NOACK %v) cut by its ctx: %v; want DeadlineExceeded, ErrOutcomeUnknown %v", noack, err, noack)
		}
	}
	if s := eng.Stats(); s.OutcomeUnknown != 1 {
		t.Errorf("Stats.OutcomeUnknown = %d, want 1 (the NOACK read)", s.OutcomeUnknown)
	}
}

// An idle poll whose ctx has a deadline ends with ErrNil: the server was
// told to give up first (review-32b B1: 75 of 76 such polls failed as
// outcomes unknown); a pop whose ctx ended before it was sent fails with
// the ctx's error alone, its element still there (B3).
func TestBlockingPopIdleAndEndedCtx(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := eng.BLPop(c, 0, "idle").Await(ctx)
	cancel()
	if !errors.Is(err, engine.ErrNil) {
		t.Fatalf("idle BLPop with a 2s ctx: %v, want ErrNil (the server's timeout first)", err)
	}
	if _, err := eng.RPush(ctx, "q", "x").Await(ctx); err != nil {
		t.Fatal(err)
	}
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := eng.BRPop(ended, 0, "q").Await(ctx); !errors.Is(err, context.Canceled) || errors.Is(err, engine.ErrOutcomeUnknown) {
		t.Fatalf("BRPop with an ended ctx: %v, want context.Canceled alone", err)
	}
	if n, err := eng.LLen(ctx, "q").Await(ctx); err != nil || n != 1 {
		t.Fatalf("LLEN q = %d, %v; want the element still there", n, err)
	}
}

// A blocking pop whose connection cannot be made (the server is gone)
// fails as unsent, named as the connection actors' dials are (qa-AO AO3:
// the bare "dial tcp ...: connection refused", not matching ErrNotSent).
func TestBlockingPopServerGoneNotSent(t *testing.T) {
	eng, srv := newEngine(t)
	ctx := ctxT(t)
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err := eng.BLPop(c, 0, "q").Await(ctx)
	var ce *engine.ConnectError
	if !errors.Is(err, engine.ErrNotSent) || !errors.As(err, &ce) || ce.Addr != srv.Addr() {
		t.Fatalf("BLPop with the server gone: %v, want ErrNotSent and a ConnectError for %s", err, srv.Addr())
	}
}
