// Package hooks lets programs observe a vactor engine: commands fired and
// completed, connections dialled and lost, actor restarts, pipelines,
// full mailboxes, circuit breaker changes, retries, cluster redirects,
// slot-map loads, sentinel switches, subscriptions and stream consumers.
//
// A hook is any value that implements one or more of the small interfaces
// of this package; register it in config.Config.Hooks (or with
// Config.WithHooks). engine.New checks once which interfaces each hook
// implements, so an engine pays only for the events some hook takes, and
// nothing at all without hooks:
//
//	type slowCommands struct{ log *slog.Logger }
//
//	func (h slowCommands) PostExecution(ctx context.Context, ev hooks.Executed) {
//		if ev.Duration > 50*time.Millisecond {
//			h.log.Warn("slow command", "command", ev.Name, "node", ev.Node, "duration", ev.Duration)
//		}
//	}
//
//	eng, err := engine.New(ctx, cfg.WithHooks(slowCommands{logger}))
//
// The four hooks of the blocking module vactor replaces
// (docs/migrating.md) map onto PreExecution (it may return an enriched
// context), PostExecution (name, node, error, duration, retries,
// redirects, the pipeline), PreConnection and PostConnection.
//
// # Goroutines
//
// PreExecution runs on the goroutine that fires the command. Every other
// method runs on the engine's hook goroutine, one event at a time, in the
// order the events happened. The engine hands events over through a
// bounded queue and never waits for a hook: a hook that falls behind makes
// events be dropped (engine.Stats.HookDropped), never a connection actor
// wait. Lifecycle events (a consumer stopped, a breaker changed, a
// connection lost or made again, a subscriber disconnected or
// resubscribed, ...) are not dropped with the rest: they wait in a queue
// of their own, so that what a hook keeps from them is never left stale
// (see Hook). A panic in a hook is recovered, counted (engine.Stats.HookPanics)
// and logged once per hook; the other hooks still get the event.
//
// # Logging
//
// Logging is the hook the engine installs over config.Config.Logger
// (filtered by Config.LogLevel): its Msg* constants are the engine's log
// messages. The package otelvactor is the OpenTelemetry hook.
package hooks
