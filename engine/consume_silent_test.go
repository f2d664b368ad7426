package engine_test

import (
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
)

// TestConsumeSilentServerFound: a stream consumer whose server goes
// silent (SIGSTOP) finds out within BLOCK plus the read timeout, says why
// in Stats().LastError and reconnects, and handles the entries added once
// the server is back; with the default config and ConsumeOptions. Before,
// its XREADGROUP BLOCK had no bound: no error, no reconnect for as long as
// the silence lasted (QA-O 2: 20 s).
func TestConsumeSilentServerFound(t *testing.T) {
	eng, srv := newEngine(t)
	ctx := ctxT(t)
	c, handled := countingConsumer(t, eng, ctx, "silent", engine.ConsumeOptions{})
	waitCond(t, 5*time.Second, "the first entry handled", func() bool { return handled.Load() == 1 })
	resume := pauseServer(t, srv)
	frozen := time.Now()
	cfg := config.DefaultConfig()
	bound := engine.DefaultConsumeBlock + max(cfg.ReadTimeout, cfg.WriteTimeout) + 2*time.Second
	waitCond(t, bound, "the consumer to find the silent server", func() bool { return c.Stats().LastError != nil })
	t.Logf("found %v after the freeze: %v", time.Since(frozen).Round(time.Millisecond), c.Stats().LastError)
	resume()
	if _, err := eng.XAdd(ctx, "silent", "n", "2").Await(ctx); err != nil {
		t.Fatal(err)
	}
	waitCond(t, 15*time.Second, "the entry added after the resume handled", func() bool { return handled.Load() == 2 })
	if st := c.Stats(); st.Reconnects == 0 {
		t.Errorf("Reconnects 0 after the silence: %+v", st)
	}
}
