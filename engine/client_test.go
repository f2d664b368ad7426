package engine_test

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
)

func TestSyncClientRoundTrip(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	var c engine.Client = eng.Sync()

	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// Strings and keys.
	check("Set", c.Set(ctx, "k", "v\x00", 0))
	if v, err := c.Get(ctx, "k"); err != nil || v != "v\x00" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if _, err := c.Get(ctx, "missing"); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("Get missing err = %v, want ErrNil", err)
	}
	if ok, err := c.SetNX(ctx, "k", "other", 0); err != nil || ok {
		t.Fatalf("SetNX existing = %v, %v; want false", ok, err)
	}
	if ok, err := c.SetNX(ctx, "nx", "1", time.Minute); err != nil || !ok {
		t.Fatalf("SetNX new = %v, %v; want true", ok, err)
	}
	if ttl, err := c.TTL(ctx, "nx"); err != nil || !ttl.HasExpiry || ttl.Remaining <= 0 || ttl.Remaining > time.Minute {
		t.Fatalf("TTL nx = %+v, %v", ttl, err)
	}
	if ttl, err := c.TTL(ctx, "missing"); err != nil || ttl.Exists {
		t.Fatalf("TTL missing = %+v, %v", ttl, err)
	}
	if ok, err := c.Expire(ctx, "k", 10*time.Second); err != nil || !ok {
		t.Fatalf("Expire = %v, %v", ok, err)
	}
	if ok, err := c.Expire(ctx, "missing", 10*time.Second); err != nil || ok {
		t.Fatalf("Expire missing = %v, %v; want false", ok, err)
	}
	if v, err := c.GetDel(ctx, "k"); err != nil || v != "v\x00" {
		t.Fatalf("GetDel = %q, %v", v, err)
	}
	if _, err := c.GetDel(ctx, "k"); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("GetDel again err = %v, want ErrNil", err)
	}
	check("MSet", c.MSet(ctx, "m1", "a", "m2", ""))
	if vs, err := c.MGet(ctx, "m1", "missing", "m2"); err != nil || len(vs) != 3 || vs[0] == nil || *vs[0] != "a" || vs[1] != nil || vs[2] == nil || *vs[2] != "" {
		t.Fatalf("MGet = %v, %v", vs, err)
	}
	if err := c.MSet(ctx, "odd"); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("MSet odd err = %v, want ErrInvalidArgument", err)
	}
	if n, err := c.Incr(ctx, "n"); err != nil || n != 1 {
		t.Fatalf("Incr = %d, %v", n, err)
	}
	if n, err := c.IncrBy(ctx, "n", 10); err != nil || n != 11 {
		t.Fatalf("IncrBy = %d, %v", n, err)
	}
	if n, err := c.Decr(ctx, "n"); err != nil || n != 10 {
		t.Fatalf("Decr = %d, %v", n, err)
	}
	if n, err := c.Exists(ctx, "n", "m1", "missing"); err != nil || n != 2 {
		t.Fatalf("Exists = %d, %v", n, err)
	}
	if n, err := c.Del(ctx, "n", "m1", "missing"); err != nil || n != 2 {
		t.Fatalf("Del = %d, %v", n, err)
	}
	r, err := c.Do(ctx, "GET", "m2")
	if s, err2 := r.String(); err != nil || err2 != nil || s != "" || r.IsNil() {
		t.Fatalf("Do GET m2 = %v (%q, %v), %v", r, s, err2, err)
	}
	if r, err := c.Do(ctx, "GET", "missing"); err != nil || !r.IsNil() {
		t.Fatalf("Do GET missing = %v, %v; want a nil Reply", r, err)
	}

	// Hashes.
	if n, err := c.HSet(ctx, "h", "f1", "v1", "f2", "v2"); err != nil || n != 2 {
		t.Fatalf("HSet = %d, %v", n, err)
	}
	if v, err := c.HGet(ctx, "h", "f1"); err != nil || v != "v1" {
		t.Fatalf("HGet = %q, %v", v, err)
	}
	if _, err := c.HGet(ctx, "h", "nope"); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("HGet missing err = %v, want ErrNil", err)
	}
	if m, err := c.HGetAll(ctx, "h"); err != nil || !maps.Equal(m, map[string]string{"f1": "v1", "f2": "v2"}) {
		t.Fatalf("HGetAll = %v, %v", m, err)
	}
	if n, err := c.HDel(ctx, "h", "f1", "nope"); err != nil || n != 1 {
		t.Fatalf("HDel = %d, %v", n, err)
	}
	if _, err := c.HSet(ctx, "h", "odd"); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("HSet odd err = %v, want ErrInvalidArgument", err)
	}

	// Lists.
	if n, err := c.RPush(ctx, "l", "b", "c"); err != nil || n != 2 {
		t.Fatalf("RPush = %d, %v", n, err)
	}
	if n, err := c.LPush(ctx, "l", "a"); err != nil || n != 3 {
		t.Fatalf("LPush = %d, %v", n, err)
	}
	if vs, err := c.LRange(ctx, "l", 0, -1); err != nil || !slices.Equal(vs, []string{"a", "b", "c"}) {
		t.Fatalf("LRange = %q, %v", vs, err)
	}
	if v, err := c.LPop(ctx, "l"); err != nil || v != "a" {
		t.Fatalf("LPop = %q, %v", v, err)
	}
	if v, err := c.RPop(ctx, "l"); err != nil || v != "c" {
		t.Fatalf("RPop = %q, %v", v, err)
	}
	if _, err := c.LPop(ctx, "missing"); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("LPop missing err = %v, want ErrNil", err)
	}
	if _, err := c.RPop(ctx, "missing"); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("RPop missing err = %v, want ErrNil", err)
	}

	// Sets.
	if n, err := c.SAdd(ctx, "s", "x", "y", ""); err != nil || n != 3 {
		t.Fatalf("SAdd = %d, %v", n, err)
	}
	if ok, err := c.SIsMember(ctx, "s", ""); err != nil || !ok {
		t.Fatalf("SIsMember empty = %v, %v", ok, err)
	}
	if n, err := c.SRem(ctx, "s", "x", "nope"); err != nil || n != 1 {
		t.Fatalf("SRem = %d, %v", n, err)
	}
	if ms, err := c.SMembers(ctx, "s"); err != nil || !slices.Equal(dsSorted(ms), []string{"", "y"}) {
		t.Fatalf("SMembers = %q, %v", ms, err)
	}
	if ok, err := c.SIsMember(ctx, "s", "x"); err != nil || ok {
		t.Fatalf("SIsMember removed = %v, %v", ok, err)
	}

	// Sorted sets.
	if n, err := c.ZAdd(ctx, "z", engine.Z{Member: "b", Score: 2}, engine.Z{Member: "a", Score: 1}); err != nil || n != 2 {
		t.Fatalf("ZAdd = %d, %v", n, err)
	}
	if zs, err := c.ZRangeWithScores(ctx, "z", 0, -1); err != nil || !slices.Equal(zs, []engine.Z{{Member: "a", Score: 1}, {Member: "b", Score: 2}}) {
		t.Fatalf("ZRangeWithScores = %v, %v", zs, err)
	}
	if s, err := c.ZScore(ctx, "z", "b"); err != nil || s != 2 {
		t.Fatalf("ZScore = %v, %v", s, err)
	}
	if _, err := c.ZScore(ctx, "z", "nope"); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("ZScore missing err = %v, want ErrNil", err)
	}

	// Server errors come through typed.
	var se *engine.ServerError
	if _, err := c.LPop(ctx, "z"); !errors.As(err, &se) || se.Prefix != "WRONGTYPE" {
		t.Fatalf("LPop on a zset err = %v, want WRONGTYPE", err)
	}

	// Pub/sub, health.
	if n, err := c.Publish(ctx, "chan", "msg"); err != nil || n != 0 {
		t.Fatalf("Publish = %d, %v; want 0 receivers", n, err)
	}
	check("Ping", c.Ping(ctx))
	if !c.IsHealthy(ctx) {
		t.Fatal("IsHealthy = false")
	}

	// Close closes the engine: later calls fail with ErrClosed.
	check("Close", c.Close())
	if err := c.Close(); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
	if _, err := c.Get(ctx, "k"); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Get after Close err = %v, want ErrClosed", err)
	}
	if _, err := eng.Get(ctx, "k").Await(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("engine Get after Client.Close err = %v, want ErrClosed", err)
	}
	if c.IsHealthy(ctx) {
		t.Fatal("IsHealthy after Close = true")
	}
}

func TestSyncClientContextErrors(t *testing.T) {
	// One connection, so a blocking command holds up everything queued.
	eng, srv := newEngine(t, func(c config.Config) config.Config { return c.WithPoolSize(1) })
	ctx := ctxT(t)
	c := eng.Sync()
	// A second engine watches the server while the first is blocked.
	obs, err := open(ctx, t, config.DefaultConfig().WithAddrs(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = obs.Close() })
	waitBlocked := func() {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			r := dsAwait(t, ctx, "INFO clients", obs.Do(ctx, "INFO", "clients"))
			if s, _ := r.String(); strings.Contains(s, "blocked_clients:1") {
				return
			}
		}
		t.Fatal("the WAIT never blocked")
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.Set(cctx, "never", "x", 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Set with cancelled ctx = %v, want context.Canceled", err)
	}
	if _, err := c.Get(cctx, "never"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with cancelled ctx = %v, want context.Canceled", err)
	}
	if _, err := c.HSet(cctx, "never", "f", "v"); !errors.Is(err, context.Canceled) {
		t.Fatalf("HSet with cancelled ctx = %v, want context.Canceled", err)
	}
	if err := c.Ping(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Ping with cancelled ctx = %v, want context.Canceled", err)
	}
	if c.IsHealthy(cctx) {
		t.Fatal("IsHealthy with cancelled ctx = true")
	}
	if n, err := c.Exists(ctx, "never"); err != nil || n != 0 {
		t.Fatalf("a command with a cancelled ctx was written: EXISTS = %d, %v", n, err)
	}

	// The ctx bounds the wait. A WAIT for a replica the server does not
	// have keeps the connection busy for 600ms (blocking commands such as
	// BLPOP no longer do: Do sends them on a connection of their own); a
	// call queued behind it returns when its own 50ms deadline passes,
	// and, still queued then, is never written.
	blk := eng.WaitReplicas(context.Background(), "blk", 1, 600*time.Millisecond)
	waitBlocked()
	dctx, dcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer dcancel()
	start := time.Now()
	err = c.Set(dctx, "blk-queued", "x", 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Set behind WAIT = %v, want context.DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 400*time.Millisecond {
		t.Fatalf("Set behind WAIT returned after %s; its 50ms deadline should bound the wait", el)
	}
	if n, err := blk.Await(ctx); err != nil || n != 0 {
		t.Fatalf("WAIT = %d, %v; want 0 replicas after its timeout", n, err)
	}
	if n, err := c.Exists(ctx, "blk-queued"); err != nil || n != 0 {
		t.Fatalf("Set whose ctx ended while queued was written: EXISTS = %d, %v", n, err)
	}

	// A written command whose ctx ends bounds the round trip: when every
	// command of the pipeline is past its deadline, the engine abandons the
	// connection (treated as failed, then re-dialled) instead of waiting
	// for the server.
	wctx, wcancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer wcancel()
	start = time.Now()
	if _, err := c.Do(wctx, "WAIT", "1", "1000"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do WAIT with 200ms ctx = %v, want context.DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 700*time.Millisecond {
		t.Fatalf("Do WAIT returned after %s; want about 200ms", el)
	}

	// The Client works normally afterwards.
	if err := c.Set(ctx, "after", "ok", 0); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "after"); err != nil || v != "ok" {
		t.Fatalf("Get after = %q, %v", v, err)
	}
}

// The Client is safe for concurrent use.
func TestSyncClientConcurrent(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	c := eng.Sync()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Go(func() {
			for range 100 {
				if _, err := c.Incr(ctx, "ctr"); err != nil {
					errs <- err
					return
				}
				if _, err := c.SAdd(ctx, "set", "m"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "ctr"); err != nil || v != "6400" {
		t.Fatalf("ctr = %q, %v; want 6400", v, err)
	}
	if eng.Sync() != c {
		t.Fatal("Sync returned a different Client for the same engine")
	}
}

// The typed commands added to Client for users of a blocking API (QA-R 8:
// HExists, XAdd, XRead, ... were only futures) answer as their Engine
// methods do.
func TestSyncClientMoreCommands(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	c := eng.Sync()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err := c.HSet(ctx, "h", "f", "1")
	must("HSet", err)
	if ok, err := c.HExists(ctx, "h", "f"); err != nil || !ok {
		t.Fatalf("HExists = %v, %v", ok, err)
	}
	if n, err := c.HIncrBy(ctx, "h", "f", 4); err != nil || n != 5 {
		t.Fatalf("HIncrBy = %d, %v", n, err)
	}
	if n, err := c.Append(ctx, "s", "abc"); err != nil || n != 3 {
		t.Fatalf("Append = %d, %v", n, err)
	}
	must("Rename", c.Rename(ctx, "s", "s2"))
	if typ, err := c.Type(ctx, "s2"); err != nil || typ != "string" {
		t.Fatalf("Type = %q, %v", typ, err)
	}
	id, err := c.XAdd(ctx, "st", "a", "1")
	must("XAdd", err)
	if n, err := c.XLen(ctx, "st"); err != nil || n != 1 {
		t.Fatalf("XLen = %d, %v", n, err)
	}
	got, err := c.XRead(ctx, 10, map[string]string{"st": "0"})
	if err != nil || len(got["st"]) != 1 || got["st"][0].ID != id {
		t.Fatalf("XRead = %v, %v; want the entry %s", got, err, id)
	}
	if _, err := c.ZRank(ctx, "nozset", "m"); !errors.Is(err, engine.ErrNil) {
		t.Fatalf("ZRank of a missing member: %v, want ErrNil", err)
	}
}

// Every command of the Engine that returns a future has its awaited twin
// in the Client (qa-AN AN4: 27 were missing, the leaderboard and stream
// groups among them).
func TestSyncClientCoversEngineCommands(t *testing.T) {
	client := reflect.TypeFor[engine.Client]()
	eng := reflect.TypeFor[*engine.Engine]()
	skip := map[string]bool{"PingFuture": true} // Ping is the Client's
	for i := range eng.NumMethod() {
		m := eng.Method(i)
		if skip[m.Name] || m.Type.NumOut() != 1 || !strings.HasPrefix(m.Type.Out(0).String(), "*futures.Future[") {
			continue
		}
		if _, ok := client.MethodByName(m.Name); !ok {
			t.Errorf("Engine.%s has no Client twin", m.Name)
		}
	}
}

// The Client's stream-group, leaderboard and scan calls, as the Engine's.
func TestSyncClientGroupsAndLeaderboard(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	c := eng.Sync()
	if err := c.XGroupCreate(ctx, "s", "g", "$", true); err != nil {
		t.Fatal(err)
	}
	id, err := c.XAdd(ctx, "s", "f", "v")
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.XReadGroup(ctx, "g", "c", 10, map[string]string{"s": ">"})
	if err != nil || len(got["s"]) != 1 || got["s"][0].ID != id {
		t.Fatalf("XReadGroup = %v, %v; want the entry %s", got, err, id)
	}
	if n, err := c.XAck(ctx, "s", "g", id); err != nil || n != 1 {
		t.Fatalf("XAck = %d, %v", n, err)
	}
	if _, err := c.ZAdd(ctx, "lb", engine.Z{Member: "a", Score: 1}, engine.Z{Member: "b", Score: 2}); err != nil {
		t.Fatal(err)
	}
	if m, err := c.ZRevRange(ctx, "lb", 0, 0); err != nil || !slices.Equal(m, []string{"b"}) {
		t.Fatalf("ZRevRange = %v, %v", m, err)
	}
	if r, err := c.ZRevRank(ctx, "lb", "a"); err != nil || r != 1 {
		t.Fatalf("ZRevRank = %d, %v", r, err)
	}
	if f, err := c.IncrByFloat(ctx, "f", 1.5); err != nil || f != 1.5 {
		t.Fatalf("IncrByFloat = %v, %v", f, err)
	}
	var keys []string
	for k, err := range c.Scan(ctx, "lb*", 0) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if !slices.Equal(keys, []string{"lb"}) {
		t.Fatalf("Scan lb* = %q", keys)
	}
}
