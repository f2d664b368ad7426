package engine_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// Close with 50,000 futures outstanding returns promptly, every future
// completes, and no goroutine the engine started remains.
func TestCloseWithOutstandingFutures(t *testing.T) {
	srv := valkeytest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	// Close's bound is the drain timeout (the written pipelines may take
	// that long); the -race build on a busy 2-core machine took 2.2 s.
	ok := closeOutstanding(t, ctx, eng, 50000, eng.Config().DrainTimeout)
	// The written ones really were written.
	if ok > 0 {
		c := rawConn(t, srv.Addr())
		if got := c.cmd(t, "DBSIZE"); got != fmt.Sprintf(":%d", ok) {
			t.Fatalf("DBSIZE = %s, want :%d", got, ok)
		}
	}
	// Later calls fail with ErrClosed.
	if _, err := eng.Get(ctx, "x").Await(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := eng.Ping(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Ping after Close: %v", err)
	}
	if err := eng.Close(); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

// A dead letter (a message to an actor that has stopped: rare, and
// possible while Close stops the actors) makes protoactor start a
// goroutine that counts dead letters for its throttle period; with the
// default period, a second, it outlived Close, and goleak reported it
// (TestCloseWithOutstandingFutures, once in a whole-package run under a
// CPU hog). Nothing the engine started may outlive Close for long.
func TestCloseAfterDeadLetterLeavesNothing(t *testing.T) {
	srv := valkeytest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	engine.SendDeadLetter(eng)
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
}

// New fails with a clear error within the dial timeout when no server
// answers, and leaves nothing running.
func TestNewFailsFastWithoutServer(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	start := time.Now()
	_, err = open(context.Background(), t, config.DefaultConfig().WithAddrs(addr).WithDialTimeout(500*time.Millisecond))
	if err == nil {
		t.Fatal("New succeeded without a server")
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("New took %s to fail, dial timeout 500ms", d)
	}
	if !contains(err.Error(), addr) {
		t.Fatalf("error %q does not name the address %s", err, addr)
	}

	// A server that accepts but never answers: bounded by the dial timeout.
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer bl.Close()
	go func() {
		for {
			c, err := bl.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start = time.Now()
	_, err = open(context.Background(), t, config.DefaultConfig().WithAddrs(bl.Addr().String()).WithDialTimeout(300*time.Millisecond))
	if err == nil {
		t.Fatal("New succeeded against a silent server")
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("New took %s against a silent server, dial timeout 300ms", d)
	}
	// The handshake after the TCP connect is bounded by the read timeout
	// too, when that is shorter (QA-N 1: documented, and the reason says
	// so rather than blaming only the dial timeout).
	start = time.Now()
	_, err = open(context.Background(), t, config.DefaultConfig().WithAddrs(bl.Addr().String()).
		WithDialTimeout(10*time.Second).WithReadTimeout(300*time.Millisecond).WithWriteTimeout(300*time.Millisecond))
	if err == nil {
		t.Fatal("New succeeded against a silent server")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("New took %s against a silent server, read timeout 300ms", d)
	}
	if !contains(err.Error(), "ReadTimeout/WriteTimeout") {
		t.Errorf("error %q does not name the read timeout that bounded the handshake", err)
	}
	bl.Close()
}

func TestPingHealthAndStats(t *testing.T) {
	eng, _ := newEngine(t, func(c config.Config) config.Config { return c.WithPoolSize(3) })
	ctx := ctxT(t)
	if err := eng.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if !eng.IsHealthy(ctx) {
		t.Fatal("IsHealthy false on a live server")
	}
	if v, err := eng.PingFuture(ctx).Await(ctx); err != nil || v != "PONG" {
		t.Fatalf("PingFuture = %q, %v", v, err)
	}
	sets := make([]*futures.Future[struct{}], 300)
	for i := range sets {
		sets[i] = eng.Set(ctx, fmt.Sprint("s", i), "v", 0)
	}
	if _, err := futures.All(ctx, sets...); err != nil {
		t.Fatal(err)
	}
	st := eng.Stats()
	if len(st.Conns) != 3 {
		t.Fatalf("Stats has %d conns, want 3", len(st.Conns))
	}
	if st.Commands < 300 || st.Batches == 0 || st.InFlight != 0 {
		t.Fatalf("unexpected stats %+v", st)
	}
	var hist uint64
	for _, b := range st.BatchSizes {
		hist += b
	}
	if hist != st.Batches {
		t.Fatalf("histogram sums to %d, batches %d", hist, st.Batches)
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// With DrainTimeout 0 (no waiting), Close of an idle engine returns nil:
// it reported in-flight commands failed when none were (the 0 timer fired
// before the idle actors had stopped). With the server paused and a GET
// written, Close reports that one in-flight command was failed.
func TestCloseDrainTimeoutZero(t *testing.T) {
	srv := valkeytest.Start(t)
	ctx := ctxT(t)
	cfg := config.DefaultConfig().WithAddrs(srv.Addr()).WithDrainTimeout(0)
	for i := range 20 {
		eng := engineOn(t, cfg)
		if err := eng.Set(ctx, "k", "v", 0).Err(ctx); err != nil {
			t.Fatal(err)
		}
		if err := eng.Close(); err != nil {
			t.Fatalf("Close %d of an idle engine with DrainTimeout 0: %v", i, err)
		}
	}
	eng := engineOn(t, cfg)
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Resume() }()
	f := eng.Get(ctx, "k")
	deadline := time.Now().Add(10 * time.Second)
	for eng.Stats().InFlight == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the GET was never written")
		}
		time.Sleep(time.Millisecond)
	}
	err := eng.Close()
	if err == nil || !strings.Contains(err.Error(), "1 in-flight commands did not finish") {
		t.Fatalf("Close with a GET in flight to a paused server = %v; want the drain timeout's error", err)
	}
	if _, err := f.Await(ctx); err == nil {
		t.Fatal("the in-flight GET succeeded on a paused server")
	}
}

// A command is counted in Stats (Commands, and Errors for an error reply)
// before its future completes: a caller who has awaited it finds it
// counted. Counted after the completions, the count was short by a
// pipeline about once in 70 rounds under -race.
func TestStatsCountAwaitedCommands(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	if err := eng.Set(ctx, "stats-await-str", "not a number", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	base := eng.Stats()
	for i := 1; i <= 500; i++ {
		get := eng.Get(ctx, "stats-await-str")
		incr := eng.Incr(ctx, "stats-await-str") // an error reply
		if _, err := get.Await(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := incr.Await(ctx); err == nil {
			t.Fatal("INCR of a string that is not a number succeeded")
		}
		st := eng.Stats()
		if got := st.Commands - base.Commands; got < uint64(2*i) {
			t.Fatalf("round %d: %d commands counted after awaiting %d", i, got, 2*i)
		}
		if got := st.Errors - base.Errors; got < uint64(i) {
			t.Fatalf("round %d: %d errors counted after awaiting %d error replies", i, got, i)
		}
	}
}
