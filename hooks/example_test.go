package hooks_test

import (
	"context"
	"log/slog"
	"strings"
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

// slowKeys logs the key of each slow command. Executed carries only the
// number of arguments; a hook that wants them at completion copies them
// in PreExecution into the context it returns, which PostExecution gets
// back. Only a hook that does so pays for the copy. Keys are logged at
// debug level only, and values never.
type slowKeys struct {
	log       *slog.Logger
	threshold time.Duration
}

// firstArg is the context key of the copied key.
type firstArg struct{}

func (h slowKeys) PreExecution(ctx context.Context, cmd hooks.Command) context.Context {
	if len(cmd.Args) == 0 {
		return ctx
	}
	// cmd.Args belong to the engine: copy what is kept.
	return context.WithValue(ctx, firstArg{}, strings.Clone(cmd.Args[0]))
}

func (h slowKeys) PostExecution(ctx context.Context, ev hooks.Executed) {
	if ev.Duration <= h.threshold {
		return
	}
	key, _ := ctx.Value(firstArg{}).(string)
	h.log.Debug("slow command", "command", ev.Name, "key", key, "duration", ev.Duration, "retries", ev.Retries)
}

// A hook that has each command's arguments at completion.
func Example_argumentsAtCompletion() {
	h := slowKeys{log: slog.Default(), threshold: 10 * time.Millisecond}
	cfg := config.DefaultConfig().WithAddrs("127.0.0.1:6379").WithHooks(h)
	_ = cfg // engine.New(ctx, cfg)
}
