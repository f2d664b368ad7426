package engine_test

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/hooks"
)

// syncBuf is a strings.Builder safe for concurrent writers.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuf) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// Close has the engine's Logging hooks log the counts their rate limits
// still hold (the trailing line due at the end of the second) before it
// returns: it came up to a second after Close, to a logger the
// application may have closed by then.
func TestCloseFlushesLoggingCounts(t *testing.T) {
	var buf syncBuf
	lh := hooks.NewLogging(slog.New(slog.NewTextHandler(&buf, nil)))
	eng, _ := newEngine(t, func(c config.Config) config.Config { return c.WithHooks(lh) })
	// A burst of a rate-limited line (as the hook goroutine would deliver
	// it): the first logged, two suppressed.
	for range 3 {
		lh.PostConnection(hooks.Dialed{Node: "burst:1", Err: errors.New("refused")})
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if n := strings.Count(out, hooks.MsgDialFailed); n != 2 || !strings.Contains(out, "trailing=true") || !strings.Contains(out, "suppressed=1") {
		t.Fatalf("log at Close's return:\n%s\nwant the first line and the trailing one (1 other suppressed)", out)
	}
}
