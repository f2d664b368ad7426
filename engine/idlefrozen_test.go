package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
)

// lostEvents passes each ConnectionLost event on.
type lostEvents chan hooks.Lost

func (l lostEvents) OnConnectionLost(ev hooks.Lost) {
	select {
	case l <- ev:
	default:
	}
}

// TestIdleFrozenServerFound: an idle engine whose server freezes finds out
// by itself, within a second of silence plus the read timeout (the
// driver's idle PING), reports the connection lost and replaces it, with
// the default config; before, nothing happened until a command came, which
// then waited at the PING's gate or out its deadline (QA-N 3: no event
// within 6 s). Once the server is back, commands are served again.
func TestIdleFrozenServerFound(t *testing.T) {
	lost := make(lostEvents, 16)
	eng, srv := newEngine(t, func(c config.Config) config.Config { return c.WithHooks(lost) })
	ctx := ctxT(t)
	if _, err := eng.Set(ctx, "k", "v", 0).Await(ctx); err != nil {
		t.Fatal(err)
	}
	before := eng.Stats()
	resume := pauseServer(t, srv)
	frozen := time.Now()
	rt := config.DefaultConfig().ReadTimeout
	// The PING goes out 1-2 s after the last command (its timer checks
	// every second for a second without one), then waits up to rt.
	bound := 2*time.Second + rt + 2*time.Second
	select {
	case ev := <-lost:
		t.Logf("connection lost reported %v after the freeze: %v", time.Since(frozen).Round(time.Millisecond), ev.Err)
		if ev.Err == nil {
			t.Error("ConnectionLost without an error")
		}
	case <-time.After(bound):
		t.Fatalf("no ConnectionLost within %v of the freeze of an idle engine's server", bound)
	}
	if st := eng.Stats(); st.Commands != before.Commands {
		t.Fatalf("%d commands sent while idle", st.Commands-before.Commands)
	}
	resume()
	c, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		v, err := eng.Get(c, "k").Await(c)
		if err == nil {
			if v != "v" {
				t.Fatalf("GET k = %q after the resume", v)
			}
			break
		}
		if c.Err() != nil {
			t.Fatalf("not served again within 15 s of the resume: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := eng.Stats(); st.Reconnects <= before.Reconnects {
		t.Errorf("Reconnects %d -> %d: the lost connection was not replaced", before.Reconnects, st.Reconnects)
	}
}

// TestIdlePingGateNotSent: a command fired while the driver's idle PING
// waits on a frozen server is never written before the PING fails; it
// must not then fail as possibly run (QA-O 1: it waited at the PING's
// gate, went to a connection valkey-go dialled on its own, and that
// connection's handshake timing out failed it with ErrOutcomeUnknown
// after ~5.3 s, though the server never saw it). With the default config
// it is sent again on the engine's new connection once the server is
// back, or fails as not sent.
func TestIdlePingGateNotSent(t *testing.T) {
	eng, srv := newEngine(t)
	ctx := ctxT(t)
	if _, err := eng.Set(ctx, "k", "v", 0).Await(ctx); err != nil {
		t.Fatal(err)
	}
	resume := pauseServer(t, srv)
	// The idle PING goes out 1-2 s after the SET and waits ReadTimeout
	// (3 s) for its reply: at 2.5 s it is in flight.
	time.Sleep(2500 * time.Millisecond)
	incr := eng.Incr(context.Background(), "n")
	// Frozen past the PING's timeout (by 5 s after the SET) and past the
	// 3 s handshake of a connection dialled then (by 8 s).
	time.Sleep(7500 * time.Millisecond)
	resume()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := incr.Await(c)
	if c.Err() != nil {
		t.Fatal("the INCR did not complete within 30 s of the resume")
	}
	if errors.Is(err, engine.ErrOutcomeUnknown) {
		t.Fatalf("INCR failed as possibly run, though it waited for the PING and was never written: %v", err)
	}
	n, gerr := eng.Get(ctx, "n").Await(ctx)
	switch {
	case err == nil:
		if v != 1 || n != "1" {
			t.Fatalf("INCR = %d, n = %q (%v); want 1 and \"1\"", v, n, gerr)
		}
	case !errors.Is(gerr, engine.ErrNil):
		t.Fatalf("INCR failed (%v) yet n = %q (%v): it ran", err, n, gerr)
	default:
		t.Logf("INCR failed as not run: %v", err)
	}
}
