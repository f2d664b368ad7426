package engine_test

import (
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// A subscription with a channel and a pattern; the ACL then allows the
// channel but not the pattern. Each resubscribe: SUBSCRIBE confirmed
// (Resubscribed), PSUBSCRIBE NOPERM (Disconnected). It reconnected at the
// minimum backoff, ~80 times a second, with a Refused each time
// (review-36 R36-1: 250 Disconnected and 249 Refused in 3 s): the backoff
// now grows (to MaxRetryBackoff, 512 ms) and the refusal is told once.
func TestR36PartialRefusalFlood(t *testing.T) {
	srv := valkeytest.Start(t)
	if err := srv.AddUser("app", "app-pass", "~*", "&*", "+@all"); err != nil {
		t.Fatal(err)
	}
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithUsername("app").WithPassword("app-pass"))
	defer eng.Close()
	ctx := ctxT(t)
	sub, err := eng.Subscribe(ctx, "rf:ch")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	subExpect(t, sub.Channel(), engine.Subscribed)
	if err := sub.PSubscribe(ctx, "rf:p*"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Do("ACL", "SETUSER", "app", "resetchannels", "&rf:ch"); err != nil {
		t.Fatal(err)
	}
	counts := map[engine.SubEventKind]int{}
	var seq []string
	end := time.After(3 * time.Second)
loop:
	for {
		select {
		case ev := <-sub.Channel():
			counts[ev.Kind]++
			if len(seq) < 12 {
				s := ev.Kind.String()
				if ev.Err != nil {
					s += "(" + ev.Err.Error() + ")"
				}
				seq = append(seq, s)
			}
		case <-end:
			break loop
		}
	}
	t.Logf("in 3 s: %v; first events: %q", counts, seq)
	if counts[engine.Refused] != 1 {
		t.Errorf("%d Refused events in 3 s for one unchanged refusal, want 1", counts[engine.Refused])
	}
	if counts[engine.Disconnected] > 40 {
		t.Errorf("%d reconnects in 3 s of a partly refused set: the backoff did not grow", counts[engine.Disconnected])
	}
}
