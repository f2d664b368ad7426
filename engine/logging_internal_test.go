package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
)

// batchMsg stands for an actor message that carries commands: printed as
// it is, it would show keys and values.
type batchMsg struct{ Key, Value string }

// The actor library's records go through actorHandler, which replaces
// what could hold a command (attributes of kind Any, also inside groups
// and in WithAttrs) by its type, and keeps errors, PIDs and plain values.
func TestActorHandlerScrubsMessages(t *testing.T) {
	const key, value = "user:secret-key", "secret-value-42"
	var buf bytes.Buffer
	h := actorHandler{slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})}
	log := slog.New(h.WithAttrs([]slog.Attr{slog.Any("bound", batchMsg{key, value})}))
	pid := actor.NewPID("nonhost", "conn/1")
	log.Error("[Supervision]",
		slog.Any("message", batchMsg{key, value}),
		slog.Any("ptr", &batchMsg{key, value}),
		slog.Group("g", slog.Any("inner", []batchMsg{{key, value}}), slog.Int("n", 7)),
		slog.Any("reason", errors.New("connection reset")),
		slog.Any("actor", pid),
		slog.String("plain", "kept"))
	out := buf.String()
	pidJSON, _ := json.Marshal(pid.String())
	if strings.Contains(out, key) || strings.Contains(out, value) {
		t.Fatalf("a command's key or value reached the log: %s", out)
	}
	for _, want := range []string{`"message":"engine.batchMsg"`, `"ptr":"*engine.batchMsg"`, `"bound":"engine.batchMsg"`,
		`"inner":"[]engine.batchMsg"`, `"n":7`, `"reason":"connection reset"`, `"actor":` + string(pidJSON), `"plain":"kept"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log line lacks %s: %s", want, out)
		}
	}
	if !h.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("actorHandler does not pass Enabled through")
	}
}
