package engine_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// TestACLUserWithoutPing: a common "data only" ACL user (~* +@read
// +@write) may not run PING (@connection). The engine checks connections
// and probes nodes with PING; the server's NOPERM is an answer, not a
// failure. Before, such a user's node never came back once its server
// restarted (every redial failed its PING and the breaker stayed open),
// IsHealthy was false for good, and a batch writer could not connect.
func TestACLUserWithoutPing(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{Username: "admin", Password: "adminpw"})
	rules := []string{"~*", "+@read", "+@write"}
	if err := srv.AddUser("rw", "rw-Pa55word-7c1", rules...); err != nil {
		t.Fatal(err)
	}
	cfg := config.DefaultConfig().WithAddrs(srv.Addr())
	cfg.Username, cfg.Password = "rw", "rw-Pa55word-7c1"
	ctx := ctxT(t)
	eng, err := open(ctx, t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if err := eng.Set(ctx, "k", "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	if !eng.IsHealthy(ctx) {
		t.Fatal("IsHealthy false for a user the server refuses PING, with the server serving it")
	}

	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Set(ctx, "bw", "1", 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatalf("batch writer: %v", err)
	}
	if v, err := eng.Get(ctx, "bw").Await(ctx); err != nil || v != "1" {
		t.Fatalf("batch writer's SET: %q, %v", v, err)
	}

	// The server crashes, and the breaker opens on the failed commands.
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50 && eng.Stats().Nodes[0].Breaker != "open"; i++ {
		c, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_ = eng.Set(c, "k", "v", 0).Err(c)
		cancel()
	}
	if b := eng.Stats().Nodes[0].Breaker; b != "open" {
		t.Fatalf("breaker %s after the server's crash, want open", b)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddUser("rw", "rw-Pa55word-7c1", rules...); err != nil { // ACL users live in memory
		t.Fatal(err)
	}
	// The breaker's probe runs after CircuitBreakerOpenTimeout (1 s).
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := eng.Set(c, "k", "v2", 0).Err(c)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node did not come back within 5 s of the restart: %v (breaker %s)", err, eng.Stats().Nodes[0].Breaker)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !eng.IsHealthy(ctx) {
		t.Fatal("IsHealthy false after the recovery")
	}
}

// TestACLUserWithoutRoleSentinel: in sentinel mode the engine checks that
// the node the sentinels name is the primary with ROLE, an @admin command
// a data-only user may not run: the role then comes from HELLO, which
// every user may send. The engine serves such a user, across a failover,
// with every acknowledged INCR kept.
func TestACLUserWithoutRoleSentinel(t *testing.T) {
	s := valkeytest.StartSentinelT(t, valkeytest.SentinelOptions{Username: "admin", Password: "adminpw"})
	rules := []string{"~*", "+@read", "+@write"}
	for _, n := range s.Nodes() {
		if err := n.AddUser("rw", "rw-Pa55word-7c1", rules...); err != nil {
			t.Fatal(err)
		}
	}
	eng := sentinelEngine(t, s, func(c config.Config) config.Config {
		c.Username, c.Password = "rw", "rw-Pa55word-7c1"
		return c
	})
	ctx := ctxT(t)
	var acked int64
	incr := func() {
		t.Helper()
		if _, err := eng.Incr(ctx, "n").Await(ctx); err != nil {
			t.Fatalf("INCR: %v", err)
		}
		acked++
	}
	incr()
	old, err := s.Primary()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := s.Failover(); done <- err }()
	for waiting := true; waiting; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			waiting = false
		default:
			incr()
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if p, err := s.Primary(); err == nil && p != old && eng.Stats().Sentinel.Primary == p.Addr() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the engine did not follow the failover within 10 s")
		}
		incr()
	}
	incr()
	p, err := s.Primary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Do("GET", "n")
	if err != nil {
		t.Fatal(err)
	}
	if got != strconv.FormatInt(acked, 10) {
		t.Fatalf("counter %v on the new primary, %d INCRs acknowledged", got, acked)
	}
}
