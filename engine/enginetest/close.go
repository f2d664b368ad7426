package enginetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// CloseIdleStalledMax bounds Close against a stalled server (or cluster
// node, or sentinel primary) while nothing is in flight: no close of a
// connection may wait for the server. (valkey-go's close of a connection
// waits up to 1 s for a PING reply: the valkeygo driver closes its
// sockets first.)
const CloseIdleStalledMax = 500 * time.Millisecond

// CloseIdleStalled closes eng, whose server (node, primary) is stalled
// and resume resumes, and fails the test unless Close took less than
// CloseIdleStalledMax without an error; then eng refuses commands with
// ErrClosed.
func CloseIdleStalled(t *testing.T, ctx context.Context, eng *engine.Engine, resume func() error) {
	t.Helper()
	start := time.Now()
	closeErr := eng.Close()
	took := time.Since(start)
	if closeErr != nil {
		t.Errorf("Close with nothing in flight: %v", closeErr)
	}
	if took >= CloseIdleStalledMax {
		t.Errorf("Close against a stalled server took %s with nothing in flight, want < %s: it waited for the server", took, CloseIdleStalledMax)
	}
	if err := eng.Get(ctx, "closestalled:k").Err(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("GET after Close: %v, want ErrClosed", err)
	}
	if err := resume(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close in %s", took)
}

// CloseStalledServer: with the default config, an engine whose server is
// stalled (SIGSTOP) while nothing is in flight closes without waiting for
// it (CloseIdleStalled).
func CloseStalledServer(t *testing.T, o Options) {
	srv := valkeytest.Start(t)
	eng := o.newEngine(t, o.Config(srv.Addr()))
	ctx := ctxT(t)
	if err := eng.Set(ctx, "closestalled:k", "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Resume() }()
	CloseIdleStalled(t, ctx, eng, srv.Resume)
}
