package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/engine/enginetest"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// proxied starts a server, a fault proxy in front of it and an engine that
// talks through the proxy.
func proxied(t *testing.T) (*engine.Engine, *valkeytest.Server, *valkeytest.Proxy) {
	t.Helper()
	srv := valkeytest.Start(t)
	px := valkeytest.ProxyFor(t, srv.Addr())
	eng, err := open(context.Background(), t, faultConfig(px.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	return eng, srv, px
}

// Fault test 3: INCR through a proxy that resets connections after the
// request reached the server. The counter never exceeds the futures that
// succeeded plus those that failed with ErrOutcomeUnknown: nothing is
// applied twice. Marked idempotent, the same INCR is sent again after the
// reconnect and succeeds.
func TestFaultResetAfterWriteNoDoubleApply(t *testing.T) {
	enginetest.FaultResetAfterWrite(t, checked(enginetest.Options{}))
}

// Fault test 4: each proxy toxic, its documented behaviour, and recovery
// within 1s of its removal.
func TestFaultToxics(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: skipped with -short")
	}
	big := strings.Repeat("v", 8000)
	cases := []struct {
		name  string
		apply func(px *valkeytest.Proxy) error
		check func(t *testing.T, eng *engine.Engine)
	}{
		{
			// Replies arrive 300ms late: commands succeed, slower; a
			// deadline shorter than the delay expires; the breaker stays
			// closed while deadlines allow the round trip.
			name:  "latency 300ms",
			apply: func(px *valkeytest.Proxy) error { return px.Latency(300 * time.Millisecond) },
			check: func(t *testing.T, eng *engine.Engine) {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				start := time.Now()
				if _, err := eng.Set(ctx, "lat", "x", 0).Await(ctx); err != nil {
					t.Fatalf("SET under 300ms latency: %v", err)
				}
				if el := time.Since(start); el < 300*time.Millisecond {
					t.Fatalf("SET under 300ms latency took %s", el)
				}
				if b := eng.Stats().Nodes[0].Breaker; b != "closed" {
					t.Fatalf("breaker %s under latency", b)
				}
			},
		},
		{
			// Nothing comes back: commands fail at their deadlines, the
			// connection is treated as failed, and after the threshold the
			// breaker opens and calls fail fast.
			name:  "blackhole",
			apply: func(px *valkeytest.Proxy) error { return px.Timeout(0) },
			check: func(t *testing.T, eng *engine.Engine) {
				for i := 0; ; i++ {
					ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
					start := time.Now()
					_, err := eng.Set(ctx, "bh", "x", 0).Await(ctx)
					el := time.Since(start)
					cancel()
					if errors.Is(err, engine.ErrCircuitOpen) {
						return // opened: fail-fast reached
					}
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Fatalf("SET into a blackhole: %v, want a deadline error", err)
					}
					if el > 150*time.Millisecond {
						t.Fatalf("SET into a blackhole returned after %s, deadline 100ms", el)
					}
					if i > 100 {
						t.Fatal("breaker never opened against a blackhole")
					}
				}
			},
		},
		{
			// Connections are reset: a written command fails with
			// ErrOutcomeUnknown (or ErrCircuitOpen once the breaker
			// opens); a read is sent again after the reconnect.
			name:  "reset",
			apply: func(px *valkeytest.Proxy) error { return px.ResetPeer(0) },
			check: func(t *testing.T, eng *engine.Engine) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_, err := eng.Incr(ctx, "rst").Await(ctx)
				if !errors.Is(err, engine.ErrOutcomeUnknown) && !errors.Is(err, engine.ErrCircuitOpen) && !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("INCR through resets: %v", err)
				}
			},
		},
		{
			// 16 KB/s: an 8 KB value takes about half a second each way;
			// commands succeed within deadlines that allow for it.
			name:  "bandwidth 16KB/s",
			apply: func(px *valkeytest.Proxy) error { return px.Bandwidth(16) },
			check: func(t *testing.T, eng *engine.Engine) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				start := time.Now()
				if _, err := eng.Set(ctx, "bw", big, 0).Await(ctx); err != nil {
					t.Fatalf("SET 8KB at 16KB/s: %v", err)
				}
				if el := time.Since(start); el < 300*time.Millisecond {
					t.Fatalf("SET 8KB at 16KB/s took only %s", el)
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			eng, _, px := proxied(t)
			ctx := ctxT(t)
			if err := eng.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			// Background load throughout.
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						cctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
						if _, err := eng.Get(cctx, "load").Await(cctx); err != nil && !errors.Is(err, engine.ErrNil) {
							time.Sleep(time.Millisecond) // pacing while failing
						}
						cancel()
					}
				}()
			}
			if err := c.apply(px); err != nil {
				t.Fatal(err)
			}
			c.check(t, eng)
			if err := px.RemoveToxics(); err != nil {
				t.Fatal(err)
			}
			d := enginetest.WaitServing(t, eng, 2*time.Second)
			close(stop)
			wg.Wait()
			t.Logf("%s: serving again %s after the toxic was removed (stats: retries %d, unknown %d, reconnects %d)",
				c.name, d, eng.Stats().Retries, eng.Stats().OutcomeUnknown, eng.Stats().Reconnects)
			if d > time.Second {
				t.Fatalf("%s: serving again only %s after removal, want < 1s", c.name, d)
			}
		})
	}
}

func atoiT(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("not a number: %q", s)
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// Retried commands keep their per-key order: RPUSHes of increasing values
// to one list, fired from one goroutine without waiting and marked
// idempotent, while connections are reset (the proxy drops the requests, so
// a retry never duplicates). The list on the server must be strictly
// increasing and hold every acknowledged value.
func TestFaultRetriesKeepOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: skipped with -short")
	}
	eng, _, px := proxied(t)
	ctx := ctxT(t)
	if err := eng.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	ictx := engine.WithIdempotent(ctx)
	const n = 3000
	fs := make([]*futures.Future[int64], 0, n)
	fire := func(k int) {
		for range k {
			fs = append(fs, eng.RPush(ictx, "ordered", itoa(len(fs))))
		}
	}
	fire(n / 3)
	if err := px.ResetPeer(0); err != nil {
		t.Fatal(err)
	}
	fire(n / 3)
	// Keep firing until the resets have made the engine keep commands.
	for start := time.Now(); eng.Stats().Retries == 0; {
		if time.Since(start) > 5*time.Second {
			t.Fatal("no command was kept for a retry within 5s of the resets")
		}
		fire(1)
		time.Sleep(time.Millisecond)
	}
	if err := px.RemoveToxics(); err != nil {
		t.Fatal(err)
	}
	fire(n / 3)
	acked := map[int]bool{}
	for i, f := range fs {
		if _, err := f.Await(ctx); err == nil {
			acked[i] = true
		}
	}
	enginetest.WaitServing(t, eng, time.Second)
	list, err := eng.LRange(ctx, "ordered", 0, -1).Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prev := -1
	for _, v := range list {
		x := atoiT(t, v)
		if x <= prev {
			t.Fatalf("list goes from %d to %d: order broken (or a duplicate)", prev, x)
		}
		prev = x
		delete(acked, x)
	}
	st := eng.Stats()
	t.Logf("%d pushed, %d on the server in order; %d retries", len(fs), len(list), st.Retries)
	if len(acked) > 0 {
		t.Fatalf("%d acknowledged values missing from the list", len(acked))
	}
	if st.Retries == 0 {
		t.Fatal("nothing was retried")
	}
}
