package engine_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// A user-side audit of sentinel mode through the public API: bad master
// names and addresses, sentinels down, and a primary that dies with no
// replica to take over. Every failure must be clear, bounded in time with
// the default configuration, and leave no goroutine. One setup (1
// primary, no replica, 3 sentinels) serves every subtest.

func TestAuditSentinel(t *testing.T) {
	s := valkeytest.StartSentinelT(t, valkeytest.SentinelOptions{Replicas: -1})
	plain := valkeytest.Start(t)
	ctx := ctxT(t)

	// failNew runs New with cfg, which must fail within limit with an
	// error matching target and containing every one of want.
	failNew := func(t *testing.T, cfg config.Config, limit time.Duration, target error, want ...string) error {
		t.Helper()
		defer noLeakWithin(t, lingerDial, goleak.IgnoreCurrent())
		start := time.Now()
		eng, err := open(ctx, t, cfg)
		if err == nil {
			eng.Close()
			t.Fatal("New succeeded")
		}
		d := time.Since(start)
		if d > limit {
			t.Fatalf("New took %s to fail (%v), want < %s", d, err, limit)
		}
		t.Logf("New failed in %s: %v", d.Round(time.Millisecond), err)
		if target != nil && !errors.Is(err, target) {
			t.Fatalf("New: %v, want %v", err, target)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("New: %q does not say %q", err, w)
			}
		}
		return err
	}

	t.Run("UnknownMasterName", func(t *testing.T) {
		cfg := config.DefaultConfig().WithSentinel("nosuchmaster", s.Addrs()...)
		failNew(t, cfg, 2*time.Second, engine.ErrNoPrimary, "nosuchmaster", "does not monitor")
	})

	t.Run("SentinelsDown", func(t *testing.T) {
		a, b := freeAddr(t), freeAddr(t)
		cfg := config.DefaultConfig().WithSentinel(s.MasterName(), a, b)
		// Each sentinel's dial error says what is wrong, as a data
		// node's does (a *ConnectError with a Reason).
		err := failNew(t, cfg, 2*time.Second, engine.ErrNoPrimary, a, b, "no server listens at the address")
		var ce *engine.ConnectError
		if !errors.As(err, &ce) || ce.Reason == "" || (ce.Addr != a && ce.Addr != b) {
			t.Fatalf("New: %v; want a *engine.ConnectError with a Reason for a sentinel", err)
		}
	})

	t.Run("SilentSentinelOnly", func(t *testing.T) {
		bl := blackHole(t)
		cfg := config.DefaultConfig().WithSentinel(s.MasterName(), bl)
		failNew(t, cfg, 3*time.Second, engine.ErrNoPrimary, bl)
	})

	t.Run("NotASentinel", func(t *testing.T) {
		cfg := config.DefaultConfig().WithSentinel(s.MasterName(), plain.Addr())
		failNew(t, cfg, 2*time.Second, engine.ErrNoPrimary, plain.Addr(), "SENTINEL")
	})

	// New's ctx bounds it even when the configured timeouts are longer.
	t.Run("NewContextDeadline", func(t *testing.T) {
		bl := blackHole(t)
		defer noLeakWithin(t, lingerDial, goleak.IgnoreCurrent())
		cfg := config.DefaultConfig().WithSentinel(s.MasterName(), bl, bl)
		nctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		eng, err := open(nctx, t, cfg)
		if err == nil {
			eng.Close()
			t.Fatal("New succeeded")
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Fatalf("New took %s with a 300ms ctx", d)
		}
	})

	// The primary dies and no replica can take over: commands fail, each
	// within its ctx and the default timeouts, never hang; New fails
	// clearly; Close is prompt and leaves no goroutine.
	t.Run("PrimaryDownNoReplica", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		eng := engineOn(t, config.DefaultConfig().WithSentinel(s.MasterName(), s.Addrs()...))
		if _, err := eng.Set(ctx, "audit:pd", "v", 0).Await(ctx); err != nil {
			t.Fatal(err)
		}
		p, err := s.KillPrimary()
		if err != nil {
			t.Fatal(err)
		}
		// Without a deadline of its own a command fails within the
		// default timeouts.
		start := time.Now()
		for range 3 {
			_, err := eng.Set(context.Background(), "audit:pd", "w", 0).Await(ctx)
			if err == nil {
				t.Fatal("SET succeeded with the primary dead")
			}
			t.Logf("SET at +%s: %v", time.Since(start).Round(time.Millisecond), err)
		}
		if d := time.Since(start); d > 12*time.Second {
			t.Fatalf("3 SETs took %s to fail with the primary dead", d)
		}
		// A 200ms deadline ends a command at about its deadline.
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		start = time.Now()
		_, err = eng.Get(cctx, "audit:pd").Await(ctx)
		cancel()
		if err == nil {
			t.Fatal("GET succeeded with the primary dead")
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Fatalf("GET with a 200ms ctx took %s (%v)", d, err)
		}
		start = time.Now()
		if err := eng.Close(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("Close took %s with the primary dead", d)
		}
		failNew(t, config.DefaultConfig().WithSentinel(s.MasterName(), s.Addrs()...), 7*time.Second, engine.ErrNoPrimary, p.Addr())
	})
}

// lingerDial is how long a dial abandoned by the engine (its ctx ended:
// the 1 s bound of a sentinel query, or New's ctx) may still run in the
// valkey-go driver: its handshake is bounded by DialTimeout (default 5 s),
// not by the dial's ctx.
const lingerDial = 6 * time.Second

// noLeakWithin fails t if goroutines beyond opts' are still there after
// limit (goleak.VerifyNone alone waits about a second).
func noLeakWithin(t *testing.T, limit time.Duration, opts ...goleak.Option) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := goleak.Find(opts...)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left after %s: %v", limit, err)
		}
		time.Sleep(50 * time.Millisecond) // polling other goroutines' end
	}
}

// blackHole returns the address of a listener that accepts connections
// and never answers; it closes at cleanup.
func blackHole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return l.Addr().String()
}

// TestSentinelWrongDataPassword: the sentinels answer, the primary they
// name refuses the password: New fails with ErrNoPrimary that holds the
// primary's *ConnectError with its Reason, as in standalone mode (before:
// the driver's bare text, under "no sentinel names a primary").
func TestSentinelWrongDataPassword(t *testing.T) {
	s := valkeytest.StartSentinelT(t, valkeytest.SentinelOptions{Password: "datapw"})
	cfg := config.DefaultConfig().WithSentinel(s.MasterName(), s.Addrs()...).WithPassword("not-the-data-Pa55word")
	eng, err := open(ctxT(t), t, cfg)
	if err == nil {
		eng.Close()
		t.Fatal("New succeeded with a wrong data-node password")
	}
	p, perr := s.Primary()
	if perr != nil {
		t.Fatal(perr)
	}
	var ce *engine.ConnectError
	if !errors.Is(err, engine.ErrNoPrimary) || !errors.As(err, &ce) || ce.Addr != p.Addr() || !strings.Contains(ce.Reason, "authentication failed") {
		t.Fatalf("New: %v; want ErrNoPrimary holding the primary's *ConnectError (authentication failed)", err)
	}
	if !strings.Contains(err.Error(), "no sentinel names a usable primary") {
		t.Fatalf("New: %q", err)
	}
}

// TestSentinelHostNamesFollowedOnce: sentinels configured by host name
// ("localhost:port") are followed once each: the sentinels name each
// other by IP address, and those addresses are the configured sentinels,
// not more of them (before: 5-6 subscriptions for 3 sentinels, each
// sentinel followed and asked twice).
func TestSentinelHostNamesFollowedOnce(t *testing.T) {
	s := valkeytest.StartSentinelT(t)
	var named []string
	for _, a := range s.Addrs() {
		_, port, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		named = append(named, net.JoinHostPort("localhost", port))
	}
	eng, err := open(ctxT(t), t, config.DefaultConfig().WithSentinel(s.MasterName(), named...))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	// The resolutions New's subscriptions start learn the sentinels the
	// answers name, and subscribe to those not followed yet: watch for a
	// while (the window is what is tested: nothing to wait for).
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if n := eng.Stats().Sentinel.Subscribed; n > 3 {
			t.Fatalf("%d sentinels followed, 3 configured (by host name)", n)
		}
	}
	if n := eng.Stats().Sentinel.Subscribed; n != 3 {
		t.Fatalf("%d sentinels followed, want 3", n)
	}
}
