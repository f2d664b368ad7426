package hooks_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/hooks"
)

// Failed connects are logged at most once a second per node, with the
// number suppressed; successes are not limited.
func TestLoggingRateLimits(t *testing.T) {
	var buf bytes.Buffer
	l := hooks.NewLogging(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	for range 5 {
		l.PostConnection(hooks.Dialed{Node: "a:1", Err: errors.New("refused")})
		l.PostConnection(hooks.Dialed{Node: "b:1", Err: errors.New("refused")})
		l.PostConnection(hooks.Dialed{Node: "a:1", Initial: true})
	}
	out := buf.String()
	if n := strings.Count(out, hooks.MsgDialFailed); n != 2 {
		t.Fatalf("%d failed connects logged, want 2 (one per node):\n%s", n, out)
	}
	if n := strings.Count(out, hooks.MsgConnected); n != 5 {
		t.Fatalf("%d connects logged, want 5", n)
	}
}

// Keys (a stream's name, a shard channel) appear only at debug level.
func TestLoggingKeysOnlyAtDebug(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var buf bytes.Buffer
		l := hooks.NewLogging(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level})))
		l.OnConsumerEvent(hooks.Consumer{Kind: hooks.HandlerFailed, Stream: "stream-key", Group: "g", Node: "10.0.0.1:6379", Err: errors.New("boom")})
		l.OnSubscriberEvent(hooks.Subscriber{Kind: hooks.Resubscribed, ShardChannel: "shard-key"})
		out := buf.String()
		if !strings.Contains(out, hooks.MsgConsumerFailed) || !strings.Contains(out, hooks.MsgResubscribed) {
			t.Fatalf("%s: not logged:\n%s", level, out)
		}
		if !strings.Contains(out, "node=10.0.0.1:6379") {
			t.Errorf("%s: the consumer's node is not logged:\n%s", level, out)
		}
		keys := strings.Contains(out, "stream-key") || strings.Contains(out, "shard-key")
		if keys != (level == slog.LevelDebug) {
			t.Fatalf("%s: keys in the log: %t:\n%s", level, keys, out)
		}
	}
}

// The subscriber lines name the subscription (Subscriber.Instance): two
// subscriptions on one node are told apart in the log.
func TestLoggingSubscriberInstance(t *testing.T) {
	var buf bytes.Buffer
	l := hooks.NewLogging(slog.New(slog.NewTextHandler(&buf, nil)))
	l.OnSubscriberEvent(hooks.Subscriber{Kind: hooks.Disconnected, Node: "a:1", Instance: 7, Err: errors.New("EOF")})
	l.OnSubscriberEvent(hooks.Subscriber{Kind: hooks.Disconnected, Node: "a:1", Instance: 8, Err: errors.New("EOF")})
	out := buf.String()
	if !strings.Contains(out, "subscription=7") || !strings.Contains(out, "subscription=8") {
		t.Fatalf("the subscriptions are not named:\n%s", out)
	}
}

func TestImplements(t *testing.T) {
	if hooks.Implements(42) || hooks.Implements(nil) || !hooks.Implements(hooks.NewLogging(nil)) {
		t.Fatal("Implements")
	}
}
