package engine_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/valkeytest"
)

// appSubscription starts a server with the ACL user "app" (every key,
// channel and command), an engine of cfg connected as app, and a
// subscription to "rf:ch" whose Subscribed it has read; both are closed
// at the test's end.
func appSubscription(t *testing.T, cfg config.Config) (*valkeytest.Server, *engine.Engine, *engine.Subscription) {
	t.Helper()
	srv := valkeytest.Start(t)
	if err := srv.AddUser("app", "app-pass", "~*", "&*", "+@all"); err != nil {
		t.Fatal(err)
	}
	eng := engineOn(t, cfg.WithAddrs(srv.Addr()).WithUsername("app").WithPassword("app-pass"))
	t.Cleanup(func() { _ = eng.Close() })
	sub, err := eng.Subscribe(ctxT(t), "rf:ch")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	subExpect(t, sub.Channel(), engine.Subscribed)
	return srv, eng, sub
}

// A subscription whose resubscribes the server refuses (the ACL no
// longer allows its channel: Redis drops the subscriber, then answers
// each SUBSCRIBE NOPERM) reports the refusal: a Refused event with the
// server's error, to its channel, to the SubscriberEvents hooks and to
// the log, once however many times the refusal repeats; it keeps trying,
// and resubscribes once the ACL allows the channel again (qa-BB BB-1:
// the refusals went nowhere, the Disconnected's EOF was all there was).
func TestSubscribeRefusedReported(t *testing.T) {
	rec := &recHook{}
	var logs syncBuf
	srv, eng, sub := appSubscription(t, config.DefaultConfig().
		WithHooks(rec).WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))

	if _, err := srv.Do("ACL", "SETUSER", "app", "resetchannels"); err != nil {
		t.Fatal(err)
	}
	subExpect(t, sub.Channel(), engine.Disconnected)
	ref := subExpect(t, sub.Channel(), engine.Refused)
	var se *engine.ServerError
	if !errors.As(ref.Err, &se) || se.Prefix != "NOPERM" || ref.Addr != srv.Addr() {
		t.Fatalf("Refused: err %v (%T) addr %q; want a NOPERM *ServerError from %s", ref.Err, ref.Err, ref.Addr, srv.Addr())
	}
	// It keeps trying: wait for three more refused SUBSCRIBEs, none of
	// which may add an event (the same error).
	base := cmdStat(t, srv, "subscribe", "rejected_calls")
	deadline := time.Now().Add(15 * time.Second)
	for cmdStat(t, srv, "subscribe", "rejected_calls") < base+3 {
		if time.Now().After(deadline) {
			t.Fatalf("the subscription stopped trying: %d refused SUBSCRIBEs in 15 s after the first", cmdStat(t, srv, "subscribe", "rejected_calls")-base)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case ev := <-sub.Channel():
		t.Fatalf("after the same refusal again: %s %v, want no event", ev.Kind, ev.Err)
	default:
	}

	if _, err := srv.Do("ACL", "SETUSER", "app", "allchannels"); err != nil {
		t.Fatal(err)
	}
	subExpect(t, sub.Channel(), engine.Resubscribed)
	if n := subPublish(t, eng, "rf:ch", "back"); n != 1 {
		t.Fatalf("PUBLISH after the ACL was restored reached %d subscribers, want 1", n)
	}
	subExpect(t, sub.Channel(), engine.SubMessage)

	// A refused handshake (the password changed, the connection killed):
	// a Refused with the *ConnectError naming WRONGPASS.
	if _, err := srv.Do("ACL", "SETUSER", "app", "resetpass", ">new-pass"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil {
		t.Fatal(err)
	}
	subExpect(t, sub.Channel(), engine.Disconnected)
	ref = subExpect(t, sub.Channel(), engine.Refused)
	var ce *engine.ConnectError
	if !errors.As(ref.Err, &ce) || !strings.Contains(ref.Err.Error(), "WRONGPASS") {
		t.Fatalf("Refused after the password changed: %v (%T), want a *ConnectError naming WRONGPASS", ref.Err, ref.Err)
	}
	if _, err := srv.Do("ACL", "SETUSER", "app", "resetpass", ">app-pass"); err != nil {
		t.Fatal(err)
	}
	subExpect(t, sub.Channel(), engine.Resubscribed)

	rec.eventually(t, "Resubscribed hook events", func() bool { return len(rec.subsOf(hooks.Resubscribed)) == 2 })
	rec.with(func() {
		refused := rec.subsOf(hooks.Refused)
		if len(refused) != 2 || !strings.Contains(refused[0].Err.Error(), "NOPERM") || !strings.Contains(refused[1].Err.Error(), "WRONGPASS") || refused[0].Node != srv.Addr() {
			t.Errorf("Refused hook events %+v, want one with the NOPERM error from %s, then one naming WRONGPASS", refused, srv.Addr())
		}
	})
	if got := strings.Count(logs.String(), hooks.MsgSubRefused); got != 2 || !strings.Contains(logs.String(), "NOPERM") {
		t.Errorf("log has %d %q lines, want 2, the first naming NOPERM:\n%s", got, hooks.MsgSubRefused, logs.String())
	}
}

// A subscription with a channel and a pattern; the ACL then allows the
// channel but not the pattern. Each resubscribe: SUBSCRIBE confirmed
// (Resubscribed), PSUBSCRIBE NOPERM (Disconnected). It reconnected at the
// minimum backoff, ~80 times a second, with a Refused each time
// (review-36 R36-1: 250 Disconnected and 249 Refused in 3 s): the backoff
// now grows (to MaxRetryBackoff, 512 ms) and the refusal is told once.
func TestR36PartialRefusalFlood(t *testing.T) {
	srv, _, sub := appSubscription(t, config.DefaultConfig())
	ctx := ctxT(t)
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

// A subscribe a Handler makes returns before the server's answer: when
// the server refuses it (NOPERM: the ACL does not allow the channel), a
// Refused event with the server's error reaches the Handler, and the
// channel is not subscribed; a channel the ACL allows, subscribed the
// same way, is (review-37 R37-2: the refusal went nowhere, the Handler's
// call had returned nil).
func TestSubscribeFromHandlerRefusedReported(t *testing.T) {
	srv := valkeytest.Start(t)
	if err := srv.AddUser("app", "app-pass", "~*", "&ok:*", "+@all"); err != nil {
		t.Fatal(err)
	}
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithUsername("app").WithPassword("app-pass"))
	t.Cleanup(func() { _ = eng.Close() })
	ctx := ctxT(t)

	events := make(chan engine.SubEvent, 16)
	ready := make(chan *engine.Subscription, 1)
	handlerErr := make(chan error, 1)
	sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{
		Channels: []string{"ok:ctl"},
		Handler: func(ev engine.SubEvent) {
			if ev.Kind == engine.SubMessage && ev.Message.Payload == "go" {
				s := <-ready
				handlerErr <- errors.Join(s.Subscribe(ctx, "no:ch"), s.Subscribe(ctx, "ok:more"))
			}
			events <- ev
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	ready <- sub
	if n := subPublish(t, eng, "ok:ctl", "go"); n != 1 {
		t.Fatalf("PUBLISH ok:ctl reached %d, want 1", n)
	}
	if err := <-handlerErr; err != nil {
		t.Fatalf("Subscribe from the Handler: %v", err)
	}
	var refused engine.SubEvent
	for refused.Kind != engine.Refused {
		select {
		case refused = <-events:
		case <-time.After(10 * time.Second):
			t.Fatal("no Refused within 10 s")
		}
	}
	var se *engine.ServerError
	if !errors.As(refused.Err, &se) || se.Prefix != "NOPERM" || refused.Addr != srv.Addr() {
		t.Fatalf("Refused: err %v (%T) addr %q; want a NOPERM *ServerError from %s", refused.Err, refused.Err, refused.Addr, srv.Addr())
	}
	subWaitFor(t, 10*time.Second, "ok:more subscribed", func() bool { return subPublish(t, eng, "ok:more", "m") == 1 })
	if n, err := srv.Do("PUBSUB", "NUMSUB", "no:ch"); err != nil {
		t.Fatal(err)
	} else if r, _ := n.([]any); len(r) != 2 || r[1] != int64(0) {
		t.Fatalf("PUBSUB NUMSUB no:ch = %#v; want 0 subscribers", n)
	}
}
