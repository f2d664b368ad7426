package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/policies"
	"github.com/vactor-io/vactor/valkeytest"
)

// A transaction sent while the server loads its data (after a restart;
// here DEBUG RELOAD) is refused: its queued commands get LOADING, EXEC
// EXECABORT. Exec returned the EXECABORT alone, which IsRetryable says no
// to, though nothing ran and the cause (LOADING) is retryable (QA-S 1).
// It now matches the LOADING reply too and is retryable.
func TestTxWhileLoadingRetryable(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{Args: []string{"--enable-debug-command", "yes"}})
	if _, err := srv.Do("DEBUG", "POPULATE", "1000000"); err != nil {
		t.Fatal(err)
	}
	eng, err := open(context.Background(), t, config.DefaultConfig().WithAddrs(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	// One transaction first: its connection, kept in the pool, carries
	// the ones sent while the server loads (a dial then could wait out the
	// load: a busy server answers the handshake only between chunks).
	warm := eng.Tx()
	warm.Incr("txctr")
	if err := warm.Exec(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	reloaded := make(chan error, 1)
	go func() {
		_, err := srv.Do("DEBUG", "RELOAD")
		reloaded <- err
	}()
	loading := 0
	for done := false; !done; {
		select {
		case err := <-reloaded:
			if err != nil {
				t.Fatalf("DEBUG RELOAD: %v", err)
			}
			done = true
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		tx := eng.Tx()
		tx.Incr("txctr")
		err := tx.Exec(ctx)
		cancel()
		var se *engine.ServerError
		switch {
		case err == nil:
		case errors.As(err, &se) && se.Prefix == "EXECABORT":
			if !errors.Is(err, &engine.ServerError{Prefix: "LOADING"}) || !policies.IsRetryable(err) {
				t.Fatalf("Exec while loading: %v (retryable %v), want EXECABORT matching LOADING, retryable",
					err, policies.IsRetryable(err))
			}
			loading++
		default:
			// Not the refusal checked here (a connection the load's
			// stall broke, say): told, not failed.
			t.Logf("Exec while loading: %v", err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if loading == 0 {
		t.Fatal("no transaction was sent while the server loaded: nothing checked")
	}
	t.Logf("%d transactions refused while loading", loading)
}
