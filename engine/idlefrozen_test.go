package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
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
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = srv.Resume()
		}
	}()
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
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
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
