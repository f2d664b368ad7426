package engine_test

import (
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/hooks"
)

// logCheck records every log line of the engines it is given to, at debug
// level, and when the test ends fails it if a line holds a secret
// (passwords, values: never logged) or, above debug level, a key. Every
// engine newEngine or engineOn starts without a Logger of its own gets one
// (withLogCheck), with the configured passwords as secrets; a test adds
// the values and keys it uses with Secret and Key.
type logCheck struct {
	t       testing.TB
	mu      sync.Mutex
	lines   []logLine
	secrets []string
	keys    []string
	// noKeep checks each line as it is written and keeps none: a soak
	// that measures its heap (the kept lines grew it with every fault).
	noKeep bool
}

// msgLevels are the levels the engine's messages are logged at (issue 11:
// connects and reconnects info, breaker transitions warn, retries and
// redirects debug, failovers and slot-map changes info, dropped pub/sub
// messages warn), checked for every line of every engine under a
// logCheck. Dedicated connections and probes connect at debug.
var msgLevels = map[string][]slog.Level{
	hooks.MsgConnected:       {slog.LevelInfo, slog.LevelDebug},
	hooks.MsgReconnected:     {slog.LevelInfo},
	hooks.MsgProbeOK:         {slog.LevelDebug},
	hooks.MsgDialFailed:      {slog.LevelWarn},
	hooks.MsgConnLost:        {slog.LevelWarn},
	hooks.MsgActorRestarted:  {slog.LevelDebug},
	hooks.MsgMailboxFull:     {slog.LevelWarn},
	hooks.MsgBreakerChanged:  {slog.LevelWarn},
	hooks.MsgRetryScheduled:  {slog.LevelDebug},
	hooks.MsgRedirected:      {slog.LevelDebug},
	hooks.MsgSlotMapChanged:  {slog.LevelInfo},
	hooks.MsgSlotMapLoaded:   {slog.LevelDebug},
	hooks.MsgSlotMapFailed:   {slog.LevelWarn},
	hooks.MsgSentinelSwitch:  {slog.LevelInfo},
	hooks.MsgSubscribed:      {slog.LevelDebug},
	hooks.MsgSubDisconnected: {slog.LevelWarn},
	hooks.MsgResubscribed:    {slog.LevelInfo},
	hooks.MsgSubDropped:      {slog.LevelWarn},
	hooks.MsgSubPanicked:     {slog.LevelError},
	hooks.MsgWriterPanicked:  {slog.LevelError},
	hooks.MsgConsumerFailed:  {slog.LevelWarn},
	hooks.MsgConsumerEvent:   {slog.LevelDebug},
	hooks.MsgHookPanicked:    {slog.LevelError},
	hooks.MsgHookDropped:     {slog.LevelWarn},
	hooks.MsgHookStuck:       {slog.LevelWarn},
}

// logLine is one recorded line: its level, message, and its JSON text.
type logLine struct {
	Level slog.Level
	Msg   string
	Attrs map[string]any
	Text  string
	Time  time.Time
}

// newLogCheck returns a check that runs when t ends.
func newLogCheck(t testing.TB, secrets ...string) *logCheck {
	c := &logCheck{t: t}
	c.Secret(secrets...)
	t.Cleanup(c.check)
	return c
}

// withLogCheck gives cfg a checked logger at debug level unless it has a
// logger already; the passwords are its secrets.
func withLogCheck(t testing.TB, cfg config.Config) (config.Config, *logCheck) {
	if cfg.Logger != nil {
		return cfg, nil
	}
	c := newLogCheck(t, cfg.Password, cfg.SentinelPassword)
	return cfg.WithLogger(c.Logger()).WithLogLevel(config.LogLevelDebug), c
}

// Secret adds strings no line may contain ("" is ignored).
func (c *logCheck) Secret(s ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range s {
		if x != "" {
			c.secrets = append(c.secrets, x)
		}
	}
}

// Key adds strings only debug lines may contain.
func (c *logCheck) Key(s ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys = append(c.keys, s...)
}

// Logger returns a logger that records into c.
func (c *logCheck) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(logWriter{c}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Lines returns the lines recorded so far.
func (c *logCheck) Lines() []logLine {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]logLine(nil), c.lines...)
}

// Between returns the text of the lines logged from from to to, at most
// limit of them (the first ones), for a failure's message.
func (c *logCheck) Between(from, to time.Time, limit int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, l := range c.lines {
		if l.Time.Before(from) || l.Time.After(to) {
			continue
		}
		if len(out) == limit {
			out = append(out, "...")
			break
		}
		out = append(out, strings.TrimSpace(l.Text))
	}
	return out
}

// Count returns how many recorded lines have message msg.
func (c *logCheck) Count(msg string) int {
	n := 0
	for _, l := range c.Lines() {
		if l.Msg == msg {
			n++
		}
	}
	return n
}

type logWriter struct{ c *logCheck }

func (w logWriter) Write(p []byte) (int, error) {
	var m map[string]any
	l := logLine{Text: string(p)}
	if err := json.Unmarshal(p, &m); err == nil {
		l.Msg, _ = m["msg"].(string)
		if s, ok := m["level"].(string); ok {
			_ = l.Level.UnmarshalText([]byte(s))
		}
		delete(m, "msg")
		delete(m, "level")
		if s, ok := m["time"].(string); ok {
			l.Time, _ = time.Parse(time.RFC3339Nano, s)
		}
		delete(m, "time")
		l.Attrs = m
	}
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	if w.c.noKeep {
		w.c.checkLine(l)
	} else {
		w.c.lines = append(w.c.lines, l)
	}
	return len(p), nil
}

// check fails the test for every line with a secret, or a key above debug.
func (c *logCheck) check() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.lines {
		c.checkLine(l)
	}
}

// checkLine is check for one line. Called with mu held.
func (c *logCheck) checkLine(l logLine) {
	if want, ok := msgLevels[l.Msg]; ok && !slices.Contains(want, l.Level) {
		c.t.Errorf("%q logged at %s, want one of %v: %s", l.Msg, l.Level, want, l.Text)
	}
	for _, s := range c.secrets {
		if strings.Contains(l.Text, s) {
			c.t.Errorf("a log line holds the secret %q: %s", s, l.Text)
		}
	}
	if l.Level <= slog.LevelDebug {
		return
	}
	for _, k := range c.keys {
		if strings.Contains(l.Text, k) {
			c.t.Errorf("a %s log line holds the key %q: %s", l.Level, k, l.Text)
		}
	}
}
