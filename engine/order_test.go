package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// busyScript keeps the server busy for 300 ms.
const busyScript = `local t = redis.call('TIME')
local s = t[1] * 1000000 + t[2]
repeat local n = redis.call('TIME') until n[1] * 1000000 + n[2] - s >= 300000
return 1`

// holdActor keeps conn's actor inside a round trip (the server runs
// busyScript) and returns once the script is in flight; commands posted to
// conn meanwhile go out in its next batch, after the script's reply.
func holdActor(ctx context.Context, t *testing.T, e *Engine, conn *actors.ConnState) *futures.Future[Reply] {
	t.Helper()
	f := submitTo(e, conn, ctx, e.b.Arbitrary("EVAL", busyScript, "0").Build(), decodeReply)
	for conn.Stats().InFlight == 0 {
		if f.IsDone() {
			t.Fatalf("the busy script ended before it was seen in flight: %v", f.Err(ctx))
		}
		time.Sleep(time.Millisecond)
	}
	return f
}

// standalonePool starts a server and an engine with PoolSize 4.
func standalonePool(t *testing.T) *Engine {
	t.Helper()
	srv := valkeytest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := New(ctx, config.DefaultConfig().WithAddrs(srv.Addr()).WithPoolSize(4))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// keyOn returns a key routed to a different connection actor than avoid's.
func keyOn(e *Engine, prefix, avoid string) string {
	for i := 0; ; i++ {
		k := fmt.Sprintf("%s%d", prefix, i)
		if e.pick(k) != e.pick(avoid) {
			return k
		}
	}
}

// With PoolSize > 1, Do routes a command by its key, not its first
// argument: OBJECT ENCODING k and EVAL ... 1 k issued after SET k by the
// same goroutine see the write, even while k's connection actor is busy
// and the others are idle.
func TestStandaloneDoKeepsOrderPerKey(t *testing.T) {
	e := standalonePool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// k's actor is not the one "ENCODING" or the script text would pick.
	const get = "return redis.call('GET', KEYS[1])"
	k := "order:0"
	for i := 1; e.pick(k) == e.pick("ENCODING") || e.pick(k) == e.pick(get); i++ {
		k = fmt.Sprintf("order:%d", i)
	}
	busy := holdActor(ctx, t, e, e.pick(k))
	set := e.Set(ctx, k, "v", 0)
	enc := e.Do(ctx, "OBJECT", "ENCODING", k)
	eval := e.Do(ctx, "EVAL", get, "1", k)
	if err := set.Err(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := enc.Await(ctx); err != nil {
		t.Fatalf("OBJECT ENCODING after SET: %v (it overtook the SET)", err)
	} else if s, _ := r.String(); s != "embstr" {
		t.Fatalf("OBJECT ENCODING = %q", s)
	}
	if r, err := eval.Await(ctx); err != nil || r.IsNil() {
		t.Fatalf("EVAL GET after SET: %v, nil %v (it overtook the SET)", err, r.IsNil())
	}
	if err := busy.Err(ctx); err != nil {
		t.Fatal(err)
	}
}

// The order engine/doc.go promises with PoolSize > 1: a multi-key command
// is ordered with the commands routed by its first key. SET b, then
// MGET b a (and Do MGET b a, and MSET b ... read back) see the write.
func TestStandaloneMultiKeyOrderedByFirstKey(t *testing.T) {
	e := standalonePool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b := "mk:b"
	a := keyOn(e, "mk:a", b)
	busy := holdActor(ctx, t, e, e.pick(b))
	set := e.Set(ctx, b, "vb", 0)
	mget := e.MGet(ctx, b, a)
	do := e.Do(ctx, "MGET", b, a)
	if err := set.Err(ctx); err != nil {
		t.Fatal(err)
	}
	vs, err := mget.Await(ctx)
	if err != nil || len(vs) != 2 || vs[0] == nil || *vs[0] != "vb" || vs[1] != nil {
		t.Fatalf("MGET %s %s after SET %s: %v, %v", b, a, b, vs, err)
	}
	r, err := do.Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Array(); len(got) != 2 {
		t.Fatalf("Do MGET: %v", got)
	} else if s, _ := got[0].String(); s != "vb" {
		t.Fatalf("Do MGET %s %s after SET %s: %q", b, a, b, s)
	}
	if err := busy.Err(ctx); err != nil {
		t.Fatal(err)
	}
}
