package glide_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/drivers/glide"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// Close with the default config against a stalled server (SIGSTOP) while
// nothing is in flight, over the glide driver: it does not wait for the
// server.
func TestEngineCloseStalledServer(t *testing.T) {
	const closeIdleStalledMax = 500 * time.Millisecond
	srv := valkeytest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(srv.Addr()).WithDriver(glide.Name))
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Set(ctx, "gs:k", "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Resume() }()
	start := time.Now()
	closeErr := eng.Close()
	took := time.Since(start)
	if closeErr != nil {
		t.Errorf("Close with nothing in flight: %v", closeErr)
	}
	if took >= closeIdleStalledMax {
		t.Errorf("Close against a stalled server took %s with nothing in flight, want < %s", took, closeIdleStalledMax)
	}
	if err := eng.Get(ctx, "gs:k").Err(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("GET after Close: %v, want ErrClosed", err)
	}
	t.Logf("Close in %s", took)
}
