package hooks_test

import (
	"context"
	"log/slog"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/hooks"
)

// slowCommands logs commands slower than a threshold, and the node's
// breaker changes: it implements two of the hook interfaces, so the
// engine calls it for those events only.
type slowCommands struct {
	log       *slog.Logger
	threshold time.Duration
}

func (h slowCommands) PostExecution(_ context.Context, ev hooks.Executed) {
	if ev.Duration > h.threshold {
		h.log.Warn("slow command", "command", ev.Name, "node", ev.Node, "duration", ev.Duration, "pipeline_size", ev.PipelineSize)
	}
}

func (h slowCommands) OnBreakerChanged(ev hooks.BreakerChange) {
	h.log.Warn("breaker", "node", ev.Node, "from", ev.From, "to", ev.To)
}

func Example() {
	h := slowCommands{log: slog.Default(), threshold: 50 * time.Millisecond}
	cfg := config.DefaultConfig().WithAddrs("127.0.0.1:6379").WithHooks(h)
	_ = cfg // engine.New(ctx, cfg)
}
