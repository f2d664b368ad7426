package engine_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// pipeWant awaits f and fails the test unless it completed with want.
func pipeWant[T any](t *testing.T, ctx context.Context, what string, f *futures.Future[T], want T) {
	t.Helper()
	got, err := f.Await(ctx)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s = %#v, want %#v", what, got, want)
	}
}

// A pipeline of mixed commands: nothing is sent before Exec, Exec sends
// them as one batch, each future holds its own command's result in order,
// and an error reply fails only its own future.
func TestPipelineMixedResults(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	if _, err := eng.RPush(ctx, "pipe:list", "a").Await(ctx); err != nil {
		t.Fatal(err)
	}
	before := eng.Stats().Batches

	p := eng.Pipeline()
	set := p.Set("pipe:s", "v", 0)
	incrs := []*futures.Future[int64]{p.Incr("pipe:n"), p.Incr("pipe:n"), p.IncrBy("pipe:n", 10)}
	get := p.Get("pipe:s")
	wrong := p.LPush("pipe:s", "x") // WRONGTYPE: pipe:s is a string
	missing := p.Get("pipe:missing")
	hset := p.HSet("pipe:h", "f1", "a", "f2", "b")
	hget := p.HGet("pipe:h", "f2")
	hall := p.HGetAll("pipe:h")
	rpush := p.RPush("pipe:list", "b", "c")
	lrange := p.LRange("pipe:list", 0, -1)
	sadd := p.SAdd("pipe:set", "x", "y", "x")
	zadd := p.ZAdd("pipe:z", engine.Z{Member: "m", Score: 1.5})
	zscore := p.ZScore("pipe:z", "m")
	exists := p.Exists("pipe:s", "pipe:h", "pipe:nope")
	mget := p.MGet("pipe:s", "pipe:nope", "pipe:n")
	expire := p.Expire("pipe:s", time.Minute)
	ping := p.Do("PING")
	del := p.Del("pipe:h")
	bad := p.HSet("pipe:h", "odd") // rejected at once, not queued; Exec returns its error
	if p.Len() != 20 {
		t.Fatalf("Len = %d, want 20 queued", p.Len())
	}
	if err := bad.Err(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("odd HSET: %v, want ErrInvalidArgument", err)
	}
	// Nothing sent yet.
	if n, err := eng.Exists(ctx, "pipe:s", "pipe:n", "pipe:h").Await(ctx); err != nil || n != 0 {
		t.Fatalf("before Exec: EXISTS = %d, %v; want 0 (nothing sent)", n, err)
	}
	if set.IsDone() || get.IsDone() {
		t.Fatal("futures complete before Exec")
	}
	batches := eng.Stats().Batches
	// Exec reports the rejected command (it was not sent); the 20 others
	// were.
	if err := p.Exec(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("Exec: %v, want the odd HSET's ErrInvalidArgument", err)
	}
	st := eng.Stats()
	if st.Batches != batches+1 || st.MaxBatch < 20 {
		t.Fatalf("Exec sent %d batches (max batch %d), want the 20 commands in one", st.Batches-batches, st.MaxBatch)
	}
	t.Logf("batches before the pipeline: %d, 20 commands in %d batch", batches-before, st.Batches-batches)

	pipeWant(t, ctx, "SET", set, struct{}{})
	for i, want := range []int64{1, 2, 12} {
		pipeWant(t, ctx, fmt.Sprintf("INCR %d", i), incrs[i], want)
	}
	pipeWant(t, ctx, "GET", get, "v")
	if err := wrong.Err(ctx); !errors.Is(err, &engine.ServerError{Prefix: "WRONGTYPE"}) {
		t.Fatalf("LPUSH on a string: %v, want WRONGTYPE", err)
	}
	if err := missing.Err(ctx); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("GET missing: %v, want ErrNil", err)
	}
	pipeWant(t, ctx, "HSET", hset, int64(2))
	pipeWant(t, ctx, "HGET", hget, "b")
	pipeWant(t, ctx, "HGETALL", hall, map[string]string{"f1": "a", "f2": "b"})
	pipeWant(t, ctx, "RPUSH", rpush, int64(3))
	pipeWant(t, ctx, "LRANGE", lrange, []string{"a", "b", "c"})
	pipeWant(t, ctx, "SADD", sadd, int64(2))
	pipeWant(t, ctx, "ZADD", zadd, int64(1))
	pipeWant(t, ctx, "ZSCORE", zscore, 1.5)
	pipeWant(t, ctx, "EXISTS", exists, int64(2))
	vals, err := mget.Await(ctx)
	if err != nil || len(vals) != 3 || *vals[0] != "v" || vals[1] != nil || *vals[2] != "12" {
		t.Fatalf("MGET = %v, %v", vals, err)
	}
	pipeWant(t, ctx, "EXPIRE", expire, true)
	r, err := ping.Await(ctx)
	if s, _ := r.String(); err != nil || s != "PONG" {
		t.Fatalf("PING = %q, %v", s, err)
	}
	pipeWant(t, ctx, "DEL", del, int64(1))

	// Used up: Exec again fails, commands added later fail at once.
	if err := p.Exec(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("second Exec: %v, want ErrInvalidArgument", err)
	}
	if err := p.Get("pipe:s").Err(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("GET after Exec: %v, want ErrInvalidArgument", err)
	}

	// Discard fails the futures and sends nothing.
	d := eng.Pipeline()
	f := d.Set("pipe:discarded", "x", 0)
	d.Discard()
	if err := f.Err(ctx); !errors.Is(err, engine.ErrDiscarded) {
		t.Fatalf("discarded SET: %v, want ErrDiscarded", err)
	}
	if err := d.Exec(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("Exec after Discard: %v, want ErrInvalidArgument", err)
	}
	if n, _ := eng.Exists(ctx, "pipe:discarded").Await(ctx); n != 0 {
		t.Fatal("a discarded command was sent")
	}
	// An empty pipeline sends nothing; nil ctx is Background.
	if err := eng.Pipeline().Exec(txNilCtx); err != nil {
		t.Fatalf("empty Exec: %v", err)
	}
}

// Commands to one key from a pipeline keep their order with the Engine's
// own commands to that key, across several connection actors.
func TestPipelineOrderWithEngine(t *testing.T) {
	eng, _ := newEngine(t, func(c config.Config) config.Config { return c.WithPoolSize(4) })
	ctx := ctxT(t)
	const keys, rounds = 16, 50
	var fs []*futures.Future[int64]
	var want []int64
	for r := range rounds {
		p := eng.Pipeline()
		for k := range keys {
			key := fmt.Sprintf("pipe:order:%d", k)
			fs = append(fs, eng.Incr(ctx, key), p.Incr(key))
			want = append(want, int64(2*r+1), int64(2*r+2))
		}
		if err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got, err := futures.All(ctx, fs...)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("INCR results out of order: got %v...", got[:min(len(got), 8)])
	}
}

// The server dies before Exec: Exec returns an error that is not a reply,
// and every future has completed with an error when it returns.
func TestPipelineExecTransportError(t *testing.T) {
	srv := valkeytest.Start(t)
	eng, err := open(context.Background(), t, faultConfig(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	ctx := ctxT(t)
	if err := eng.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	p := eng.Pipeline()
	var sets []*futures.Future[struct{}]
	var gets []*futures.Future[string]
	for i := range 50 {
		sets = append(sets, p.Set(fmt.Sprintf("pipe:dead:%d", i), "v", 0))
		gets = append(gets, p.Get(fmt.Sprintf("pipe:dead:%d", i)))
	}
	start := time.Now()
	err = p.Exec(ctx)
	if err == nil {
		t.Fatal("Exec against a killed server returned nil")
	}
	var se *engine.ServerError
	if errors.As(err, &se) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Exec error %v: want a transport error, not a reply or the ctx", err)
	}
	for i := range sets {
		if !sets[i].IsDone() || !gets[i].IsDone() {
			t.Fatalf("future %d pending after Exec returned", i)
		}
		if sets[i].Err(ctx) == nil || gets[i].Err(ctx) == nil {
			t.Fatalf("command %d succeeded against a killed server", i)
		}
	}
	t.Logf("Exec with the server killed: %v after %s", err, time.Since(start).Round(time.Millisecond))
}

// Cluster mode: commands go through their slots' actors, in order per
// key; a multi-key command spanning slots is split; keyless ones work.
func TestPipelineCluster(t *testing.T) {
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	p := eng.Pipeline()
	const n = 300
	keys := make([]string, n)
	var incrs []*futures.Future[int64]
	for i := range keys {
		keys[i] = fmt.Sprintf("pipe:c:%d", i)
		p.Set(keys[i], fmt.Sprint(i), 0)
		incrs = append(incrs, p.Incr(keys[i]))
	}
	mget := p.MGet(keys...)
	del := p.Del(keys[:100]...)
	exists := p.Exists(keys...)
	ping := p.Do("PING")
	wrong := p.HGet(keys[n-1], "f") // WRONGTYPE: a string
	if err := p.Exec(ctx); err != nil {
		t.Fatalf("Exec: %v", err)
	}
	for i, f := range incrs {
		pipeWant(t, ctx, "INCR "+keys[i], f, int64(i+1))
	}
	vals, err := mget.Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if v == nil || *v != fmt.Sprint(i+1) {
			t.Fatalf("MGET[%d] = %v, want %d", i, v, i+1)
		}
	}
	pipeWant(t, ctx, "DEL", del, int64(100))
	pipeWant(t, ctx, "EXISTS", exists, int64(n-100))
	if r, err := ping.Await(ctx); err != nil || r.IsNil() {
		t.Fatalf("PING: %v", err)
	}
	if err := wrong.Err(ctx); !errors.Is(err, &engine.ServerError{Prefix: "WRONGTYPE"}) {
		t.Fatalf("HGET on a string: %v, want WRONGTYPE", err)
	}
	t.Logf("cluster pipeline of %d commands over %d slot actors", 2*n+5, eng.Stats().SlotActors)
}

// A Pipeline or Tx dropped without Exec or Discard: once collected, its
// futures fail with ErrDiscarded instead of staying pending.
func TestPipelineDroppedFuturesFail(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	fs := pipeDropped(eng)
	deadline := time.Now().Add(10 * time.Second)
	for _, f := range fs {
		for !f.IsDone() {
			if time.Now().After(deadline) {
				t.Fatal("the futures of a dropped pipeline did not complete after GC")
			}
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
		if err := f.Err(ctx); !errors.Is(err, engine.ErrDiscarded) {
			t.Fatalf("future of a dropped pipeline: %v; want ErrDiscarded", err)
		}
	}
	if n, err := eng.Exists(ctx, "drop:p", "drop:t").Await(ctx); err != nil || n != 0 {
		t.Fatalf("EXISTS = %d, %v: a dropped pipeline's command was sent", n, err)
	}
}

// pipeDropped queues a command on a Pipeline and on a Tx and drops both.
//
//go:noinline
func pipeDropped(eng *engine.Engine) []*futures.Future[struct{}] {
	p := eng.Pipeline()
	tx := eng.Tx()
	return []*futures.Future[struct{}]{p.Set("drop:p", "v", 0), tx.Set("drop:t", "v", 0)}
}

// A lock taken in a pipeline or a transaction: SetNX with a ttl, as
// Engine.SetNX (qa-AL AL4: it took none, so the lock needed Do).
func TestPipelineSetNXWithTTL(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	p := eng.Pipeline()
	first, second := p.SetNX("lock", "a", 10*time.Second), p.SetNX("lock", "b", 10*time.Second)
	plain := p.SetNX("plain", "x", 0)
	if err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		f    *futures.Future[bool]
		want bool
	}{"first": {first, true}, "second": {second, false}, "plain": {plain, true}} {
		if ok, err := c.f.Await(ctx); err != nil || ok != c.want {
			t.Fatalf("%s SetNX = %v, %v; want %v", name, ok, err, c.want)
		}
	}
	if ttl, err := eng.PTTL(ctx, "lock").Await(ctx); err != nil || !ttl.HasExpiry || ttl.Remaining > 10*time.Second {
		t.Fatalf("PTTL lock = %+v, %v; want a ttl of at most 10s", ttl, err)
	}
	tx := eng.Tx()
	again := tx.SetNX("lock2", "c", 1500*time.Millisecond)
	if err := tx.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := again.Await(ctx); err != nil || !ok {
		t.Fatalf("Tx SetNX = %v, %v", ok, err)
	}
	if ttl, err := eng.PTTL(ctx, "lock2").Await(ctx); err != nil || !ttl.HasExpiry || ttl.Remaining > 1500*time.Millisecond {
		t.Fatalf("PTTL lock2 = %+v, %v; want a ttl of at most 1.5s", ttl, err)
	}
	if err := eng.Pipeline().SetNX("k", "v", -time.Second).Err(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("negative ttl: %v, want ErrInvalidArgument", err)
	}
}

// A rate limiter's window in a pipeline or a transaction: PExpire to the
// millisecond (qa-AP 5: a sub-second Expire was refused while the
// pipeline's INCR ran, leaving the key without a ttl; there was no
// PExpire but Do). Expire's refusal names PExpire.
func TestPipelinePExpire(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	p := eng.Pipeline()
	n := p.Incr("rl")
	exp := p.PExpire("rl", 500*time.Millisecond)
	bad := p.Expire("rl2", 500*time.Millisecond)
	if err := p.Exec(ctx); err != nil && !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatal(err)
	}
	if v, err := n.Await(ctx); err != nil || v != 1 {
		t.Fatalf("INCR = %d, %v", v, err)
	}
	if ok, err := exp.Await(ctx); err != nil || !ok {
		t.Fatalf("PEXPIRE = %v, %v", ok, err)
	}
	if _, err := bad.Await(ctx); !errors.Is(err, engine.ErrInvalidArgument) || !strings.Contains(err.Error(), "PExpire") {
		t.Fatalf("sub-second Expire: %v, want ErrInvalidArgument naming PExpire", err)
	}
	if ttl, err := eng.PTTL(ctx, "rl").Await(ctx); err != nil || !ttl.HasExpiry || ttl.Remaining > 500*time.Millisecond {
		t.Fatalf("PTTL rl = %+v, %v; want a ttl of at most 500ms", ttl, err)
	}
	tx := eng.Tx()
	texp := tx.PExpire("rl", 250*time.Millisecond)
	zero := tx.PExpire("rl", 0)
	if err := tx.Exec(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("Tx with a PExpire of 0: %v, want ErrInvalidArgument (nothing sent)", err)
	}
	if _, err := texp.Await(ctx); err == nil {
		t.Fatal("a Tx refused whole ran its PExpire")
	}
	if _, err := zero.Await(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("PExpire 0: %v, want ErrInvalidArgument", err)
	}
}
