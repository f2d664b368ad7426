package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/internal/resptest"
)

// The reply-parser audit end to end: a fake RESP3 server answers chosen
// commands with replies of unexpected shapes, and the engine fails those
// commands alone, with ErrReplyType, completes the others of the same
// pipeline with their values and keeps serving.

// fakeServer starts a resptest.Server answering "NAME key" with
// replies[NAME key] (then replies[NAME]); the other commands get its
// defaults. It stops at cleanup (Close it before checking for leaks:
// Close may be called twice).
func fakeServer(t *testing.T, replies map[string]string) *resptest.Server {
	t.Helper()
	var mu sync.Mutex
	srv, err := resptest.NewServer(func(args []string) (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		name := strings.ToUpper(args[0])
		if len(args) > 1 {
			if r, ok := replies[name+" "+args[1]]; ok {
				return r, true
			}
		}
		r, ok := replies[name]
		return r, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func wantValue[T any](t *testing.T, ctx context.Context, what string, f *futures.Future[T], want string) {
	t.Helper()
	v, err := f.Await(ctx)
	if err != nil || fmt.Sprint(v) != want {
		t.Errorf("%s = %v, %v; want %s", what, v, err, want)
	}
}

func wantReplyType[T any](t *testing.T, ctx context.Context, what string, f *futures.Future[T]) {
	t.Helper()
	if v, err := f.Await(ctx); !errors.Is(err, engine.ErrReplyType) {
		t.Errorf("%s = %v, %v; want an error wrapping ErrReplyType", what, v, err)
	}
}

func TestAuditRepliesPipeline(t *testing.T) {
	defer noLeakWithin(t, lingerDial, goleak.IgnoreCurrent())
	srv := fakeServer(t, map[string]string{
		"GET good":    "$2\r\nok\r\n",
		"GET arr":     "*2\r\n:1\r\n:2\r\n",
		"GET map":     "%1\r\n+a\r\n+b\r\n",
		"INCR n":      ":5\r\n",
		"INCR s":      "+not-a-number\r\n",
		"INCR big":    "(123456789012345678901234567890\r\n",
		"MGET a":      "*2\r\n$1\r\nx\r\n_\r\n",
		"MGET c":      "*2\r\n*0\r\n:1\r\n",
		"HGETALL h":   "%1\r\n$1\r\nf\r\n$1\r\nv\r\n",
		"HGETALL odd": "*3\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\nw\r\n",
		"WEIRD":       "*3\r\n(99999999999999999999999\r\n%1\r\n+k\r\n~1\r\n#t\r\n=7\r\ntxt:abc\r\n",
		"XPENDING s":  "*3\r\n:1\r\n_\r\n_\r\n",
		"XRANGE s":    "*2\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n*3\r\n$3\r\n1-2\r\n*0\r\n*0\r\n",
		"XRANGE t":    "*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n",
		"TTL k":       "$3\r\nabc\r\n",
	})
	defer srv.Close() // before the leak check
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	p := eng.Pipeline()
	good := p.Get("good")
	badArr, badMap := p.Get("arr"), p.Get("map")
	inc, badInc, bigInc := p.Incr("n"), p.Incr("s"), p.Incr("big")
	mget, badMget := p.MGet("a", "b"), p.MGet("c", "d")
	hg, badHg := p.HGetAll("h"), p.HGetAll("odd")
	weird := p.Do("WEIRD")
	last := p.Get("good")
	if err := p.Exec(ctx); err != nil {
		t.Fatalf("Exec: %v", err)
	}
	wantValue(t, ctx, "GET good", good, "ok")
	wantReplyType(t, ctx, "GET of an array", badArr)
	wantReplyType(t, ctx, "GET of a map", badMap)
	wantValue(t, ctx, "INCR n", inc, "5")
	wantReplyType(t, ctx, "INCR of a status", badInc)
	wantReplyType(t, ctx, "INCR of a big number", bigInc)
	if v, err := mget.Await(ctx); err != nil || len(v) != 2 || v[0] == nil || *v[0] != "x" || v[1] != nil {
		t.Errorf("MGET a b = %v, %v", v, err)
	}
	wantReplyType(t, ctx, "MGET of arrays", badMget)
	wantValue(t, ctx, "HGETALL h", hg, "map[f:v]")
	wantReplyType(t, ctx, "HGETALL of an odd array", badHg)
	wantValue(t, ctx, "GET good, last", last, "ok")
	r, err := weird.Await(ctx)
	if err != nil {
		t.Fatalf("Do WEIRD: %v", err)
	}
	if _, err := r.Int64(); !errors.Is(err, engine.ErrReplyType) {
		t.Errorf("Int64 of an array: %v", err)
	}
	if v, err := r.Any(); err != nil || fmt.Sprint(v) != "[99999999999999999999999 map[k:[true]] abc]" {
		t.Errorf("Any of the odd reply = %v, %v", v, err)
	}
	// Outside a pipeline too; and the engine keeps serving.
	wantReplyType(t, ctx, "XPENDING of 3 fields", eng.XPending(ctx, "s", "g"))
	wantReplyType(t, ctx, "XRANGE with an entry of 3 items", eng.XRange(ctx, "s", "-", "+", 0))
	wantValue(t, ctx, "XRANGE t", eng.XRange(ctx, "t", "-", "+", 0), "[{1-1 map[f:v]}]")
	wantReplyType(t, ctx, "TTL of a string", eng.TTL(ctx, "k"))
	wantValue(t, ctx, "GET good after", eng.Get(ctx, "good"), "ok")
	if st := eng.Stats(); st.Restarts != 0 || st.Reconnects != 0 {
		t.Errorf("odd replies cost restarts %d, reconnects %d; want none", st.Restarts, st.Reconnects)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
}
