package engine_test

import (
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// TestSubscribeSlowReaderKeepsConnection: a reader that stops taking items
// for longer than the idle PING's timeout (default config: a PING after 1 s
// of quiet, 3 s for its reply) holds the connection's reader up, and the
// PING's reply with it, behind the messages it has not taken. That is
// OverflowBlock's backpressure, not a dead server: the connection stays,
// and every message comes, in order, with no Disconnected.
func TestSubscribeSlowReaderKeepsConnection(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := subEngine(t, srv)
	ctx := ctxT(t)
	sub, err := eng.SubscribeWith(ctx, engine.SubscribeOptions{Channels: []string{"slow"}, Buffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	const n = 20
	for i := range n {
		if err := eng.Publish(ctx, "slow", string(rune('a'+i))).Err(ctx); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(6 * time.Second) // the reader does not read: what the test is about
	if ev := subNext(t, sub.Channel(), 5*time.Second); ev.Kind != engine.Subscribed {
		t.Fatalf("first item: %v, want subscribed", ev.Kind)
	}
	for i := range n {
		ev := subNext(t, sub.Channel(), 5*time.Second)
		if ev.Kind != engine.SubMessage {
			t.Fatalf("item %d: %v (err %v), want message", i, ev.Kind, ev.Err)
		}
		if want := string(rune('a' + i)); ev.Message.Payload != want {
			t.Fatalf("item %d: %q, want %q", i, ev.Message.Payload, want)
		}
	}
}
