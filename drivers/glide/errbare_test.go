package glide_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// TestBareErrorReply: an error reply of one word (a script's
// {err='ERR'}) is the server's error, as with valkey-go: the command is
// not taken for a lost connection, nothing reconnects, and an idempotent
// write is not sent again (QA-P 2: ErrOutcomeUnknown, a reconnect per
// reply, a script run 4 times under WithIdempotent, then the node's
// breaker open for every caller).
func TestBareErrorReply(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := glideEngine(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	before := eng.Stats()
	for _, code := range []string{"ERR", "NOSCRIPT", "MOVED", "boom"} {
		_, err := eng.Do(engine.WithIdempotent(ctx), "EVAL", "redis.call('INCR', KEYS[1]); return {err=ARGV[1]}", "1", "w:"+code, code).Await(ctx)
		var se *engine.ServerError
		if !errors.As(err, &se) || se.Prefix != code || errors.Is(err, engine.ErrOutcomeUnknown) {
			t.Errorf("script error reply %q: %v (%T); want a *ServerError with prefix %q", code, err, err, code)
		}
		if n, err := eng.Get(ctx, "w:"+code).Await(ctx); err != nil || n != "1" {
			t.Errorf("the script replying %q ran %s times (%v), want 1", code, n, err)
		}
	}
	// Replies whose first word is empty, spaced, or one of redis-rs's own
	// error kinds, which glide writes as it writes its own errors (qa-BC
	// BC1: read as a lost connection; five opened the breaker). Six of
	// them, one more than the breaker's threshold.
	for i, text := range []string{"", " lead", "IoError", "FatalReceiveError", "x\ty", ""} {
		key := fmt.Sprintf("w:odd%d", i)
		_, err := eng.Do(engine.WithIdempotent(ctx), "EVAL", "redis.call('INCR', KEYS[1]); return {err=ARGV[1]}", "1", key, text).Await(ctx)
		var se *engine.ServerError
		if !errors.As(err, &se) || errors.Is(err, engine.ErrOutcomeUnknown) || strings.TrimSpace(se.Message) != strings.TrimSpace(text) {
			t.Errorf("script error reply %q: %v (%T); want a *ServerError with that text", text, err, err)
		}
		if n, err := eng.Get(ctx, key).Await(ctx); err != nil || n != "1" {
			t.Errorf("the script replying %q ran %s times (%v), want 1", text, n, err)
		}
	}
	if _, err := eng.Set(ctx, "after", "1", 0).Await(ctx); err != nil {
		t.Fatalf("SET after the error replies: %v", err)
	}
	if st := eng.Stats(); st.Reconnects != before.Reconnects || st.Retries != before.Retries || st.OutcomeUnknown != before.OutcomeUnknown {
		t.Errorf("reconnects %d -> %d, retries %d -> %d, outcome unknown %d -> %d: an error reply was taken for a lost connection",
			before.Reconnects, st.Reconnects, before.Retries, st.Retries, before.OutcomeUnknown, st.OutcomeUnknown)
	}
}
