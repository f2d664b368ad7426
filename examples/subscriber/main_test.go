package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/config"
)

// The whole example against its own throwaway server, restarted twice
// during a 3 s run: the subscription resubscribes after each restart,
// every acknowledged stream entry is handled, and no goroutine is left.
func TestSubscriberExampleRestarts(t *testing.T) {
	for _, v := range config.ServerEnvVars {
		t.Setenv(v, "") // so that run starts (and may restart) its own server
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	var out bytes.Buffer
	start := time.Now()
	err := run(ctx, []string{"-restarts", "2", "-duration", "3s"}, &out)
	text := out.String()
	t.Logf("run took %s; output:\n%s", time.Since(start).Round(time.Millisecond), text)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if n := strings.Count(text, "Resubscribed"); n != 2 {
		t.Fatalf("%d Resubscribed lines, want 2", n)
	}
	if n := strings.Count(text, "server: restarting"); n != 2 {
		t.Fatalf("%d restarts, want 2", n)
	}
	m := regexp.MustCompile(`stream: (\d+) produced \(acknowledged\), (\d+) handled, (\d+) lost, (\d+) duplicates, (\d+) consumer reconnects`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("no stream summary line")
	}
	produced, _ := strconv.Atoi(m[1])
	handled, _ := strconv.Atoi(m[2])
	if m[3] != "0" {
		t.Fatalf("%s acknowledged entries lost", m[3])
	}
	if produced == 0 || produced != handled {
		t.Fatalf("%d entries produced, %d distinct entries handled", produced, handled)
	}
	if reconnects, _ := strconv.Atoi(m[5]); reconnects < 2 {
		t.Fatalf("consumer reconnected %d times over 2 restarts", reconnects)
	}
}

// Bad flags are refused before anything starts.
func TestSubscriberExampleBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-duration", "0s"}, {"-restarts", "-1"}, {"-every", "-1ms"}, {"extra"}, {"-nope"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, &out); err == nil {
			t.Fatalf("run %q: no error", args)
		}
	}
}
