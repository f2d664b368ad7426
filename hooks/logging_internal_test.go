package hooks

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"
)

// The rate limits of the nodes that no longer log are forgotten: a
// cluster whose nodes are replaced over weeks, each under a new address
// (a failed dial, a lost connection logged for each), made the hook keep
// a limit per message and address it ever logged, for ever.
func TestLoggingForgetsIdleLimits(t *testing.T) {
	l := NewLogging(slog.New(slog.NewTextHandler(io.Discard, nil)))
	const nodes = 300
	fail := func(round int) {
		for i := range nodes {
			l.PostConnection(Dialed{Node: fmt.Sprintf("10.%d.%d.%d:6379", round, i/250, i%250), Err: errors.New("refused")})
		}
	}
	fail(0)
	time.Sleep(every + 100*time.Millisecond) // the first round's windows end
	fail(1)
	l.mu.Lock()
	n := len(l.limit)
	l.mu.Unlock()
	if n > nodes {
		t.Errorf("%d rate limits kept after two rounds of %d nodes a second apart, want at most %d", n, nodes, nodes)
	}
}
