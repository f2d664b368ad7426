package engine_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/vactor-io/vactor/config"
)

// recorder is a slog.Handler that keeps every record.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// The actor system logs through the user's logger when one is given.
func TestUserLoggerReceivesActorLogs(t *testing.T) {
	rec := &recorder{}
	eng, _ := newEngine(t, func(c config.Config) config.Config { return c.WithLogger(slog.New(rec)) })
	ctx := ctxT(t)
	if err := eng.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	n := len(rec.msgs)
	rec.mu.Unlock()
	if n == 0 {
		t.Fatal("the user's logger received nothing from the actor system")
	}
}
