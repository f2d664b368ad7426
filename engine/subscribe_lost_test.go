package engine_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/internal/resptest"
)

// A first Subscribe whose connection the server closes before confirming
// it fails fast with a *ConnectError naming the node (the failure's own
// error still reachable), not with a bare EOF no engine error matches
// (qa-AV AV2: a CLIENT KILL landing in the subscribe).
func TestSubscribeLostBeforeConfirmed(t *testing.T) {
	srv, err := resptest.NewServer(func(args []string) (string, bool) {
		if strings.EqualFold(args[0], "SUBSCRIBE") {
			return resptest.Hangup, true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	defer func() { _ = eng.Close() }()
	ctx := ctxT(t)
	sub, err := eng.Subscribe(ctx, "ch")
	if err == nil {
		_ = sub.Close()
		t.Fatal("Subscribe succeeded on a server that hangs up on SUBSCRIBE")
	}
	var ce *engine.ConnectError
	if !errors.As(err, &ce) || ce.Addr != srv.Addr() || ctx.Err() != nil {
		t.Fatalf("Subscribe lost before the confirmation: %v (%T); want a *ConnectError for %s", err, err, srv.Addr())
	}
	if !strings.Contains(err.Error(), "before the server confirmed") {
		t.Errorf("Subscribe's error %q does not say what happened", err)
	}
}

// A first Subscribe the server never confirms fails once the read bound
// passed with a *ConnectError naming the node, not with a bare
// context.DeadlineExceeded while the caller's ctx is live (review-34b
// R34b-3: it read as the caller's own deadline).
func TestSubscribeNeverConfirmed(t *testing.T) {
	srv, err := resptest.NewServer(func(args []string) (string, bool) {
		if strings.EqualFold(args[0], "SUBSCRIBE") {
			return "", true // no answer
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithReadTimeout(300*time.Millisecond).WithWriteTimeout(300*time.Millisecond))
	defer func() { _ = eng.Close() }()
	ctx := ctxT(t)
	sub, err := eng.Subscribe(ctx, "ch")
	if err == nil {
		_ = sub.Close()
		t.Fatal("Subscribe succeeded on a server that never confirms")
	}
	var ce *engine.ConnectError
	if !errors.As(err, &ce) || ce.Addr != srv.Addr() || ctx.Err() != nil {
		t.Fatalf("Subscribe never confirmed: %v (%T); want a *ConnectError for %s", err, err, srv.Addr())
	}
}
