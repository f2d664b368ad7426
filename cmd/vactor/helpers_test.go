package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
)

// connect returns an engine on addrs for checking a server's contents;
// it is closed when the test ends.
func connect(t *testing.T, cluster bool, addrs ...string) *engine.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(addrs...).WithClusterMode(cluster))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	return eng
}

// do runs one command and returns its reply as a Go value.
func do(t *testing.T, eng *engine.Engine, name string, args ...string) any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := eng.Do(ctx, name, args...).Await(ctx)
	if err != nil {
		t.Fatalf("%s %q: %v", name, args, err)
	}
	v, err := r.Any()
	if err != nil {
		t.Fatalf("%s %q: %v", name, args, err)
	}
	return v
}

// mustContain fails unless s contains every one of subs.
func mustContain(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !contains(s, sub) {
			t.Fatalf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}

func contains(s, sub string) bool {
	return strings.Contains(s, sub)
}

func itoa(n int) string { return strconv.Itoa(n) }

// mustHaveLine fails unless some line of s starts with prefix and
// contains sub.
func mustHaveLine(t *testing.T, what, s, prefix, sub string) {
	t.Helper()
	for line := range strings.Lines(s) {
		if strings.HasPrefix(line, prefix) && strings.Contains(line, sub) {
			return
		}
	}
	t.Fatalf("%s has no line starting with %q containing %q:\n%s", what, prefix, sub, s)
}
