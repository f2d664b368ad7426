package engine

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
)

// The engine's logging: Config.Logger filtered by Config.LogLevel, fed by
// the hooks.Logging hook (the engine's events), by the hook bus (a hook's
// panic, dropped events), by a few engine messages, and by the actor
// library, whose attributes are reduced to their types where they could
// carry a command (see actorHandler).

// newLogger returns the engine's logger: cfg.Logger behind a level filter, or
// a logger that discards everything (nil reports that there is none).
func newLogger(l *slog.Logger, min slog.Level) (*slog.Logger, bool) {
	if l == nil {
		return slog.New(slog.DiscardHandler), false
	}
	return slog.New(levelHandler{min: min, h: l.Handler()}), true
}

// levelHandler drops records below min.
type levelHandler struct {
	min slog.Level
	h   slog.Handler
}

func (h levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.h.Enabled(ctx, l)
}

func (h levelHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < h.min {
		return nil
	}
	return h.h.Handle(ctx, r)
}

func (h levelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return levelHandler{min: h.min, h: h.h.WithAttrs(as)}
}

func (h levelHandler) WithGroup(name string) slog.Handler {
	return levelHandler{min: h.min, h: h.h.WithGroup(name)}
}

// actorHandler is the handler the actor library logs through. Its records
// carry messages and actors as slog.Any attributes ("[DeadLetter]"
// message=..., "[Supervision]" message=...): a message may be a command
// batch, whose printing could show keys and values. Attributes of kind
// Any are replaced by their type unless they are errors, actor PIDs or
// plain values, so that no command reaches the log.
type actorHandler struct{ h slog.Handler }

func (h actorHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h actorHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(safeAttr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h actorHandler) WithAttrs(as []slog.Attr) slog.Handler {
	safe := make([]slog.Attr, len(as))
	for i, a := range as {
		safe[i] = safeAttr(a)
	}
	return actorHandler{h.h.WithAttrs(safe)}
}

func (h actorHandler) WithGroup(name string) slog.Handler { return actorHandler{h.h.WithGroup(name)} }

// safeAttr keeps a's value when it cannot hold a command.
func safeAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindAny:
	case slog.KindGroup:
		g := v.Group()
		safe := make([]slog.Attr, len(g))
		for i, x := range g {
			safe[i] = safeAttr(x)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(safe...)}
	default:
		return slog.Attr{Key: a.Key, Value: v}
	}
	switch x := v.Any().(type) {
	case error:
		return slog.String(a.Key, x.Error())
	case *actor.PID:
		return slog.String(a.Key, x.String())
	}
	return slog.String(a.Key, fmt.Sprintf("%T", v.Any()))
}
