package engine_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/hooks"
)

// A stream consumer whose group vanished under it between two reads
// (XGROUP DESTROY; a stream deleted and recreated) is interrupted by a
// NOGROUP reply, which names the stream: "NOGROUP No such key 'orders:...'
// or consumer group 'g' in XREADGROUP with GROUP option". Its warn line
// said so at every log level (review rv45s), while a key is logged only
// when debug is enabled (the line's stream attribute is debug-only).
func TestConsumerInterruptedLogsNoKey(t *testing.T) {
	logs := newLogCheck(t)
	const stream = "orders:tenant-key-s3cr3t"
	logs.Key(stream)
	eng, _ := newEngine(t, func(c config.Config) config.Config {
		return c.WithLogger(logs.Logger()).WithLogLevel(config.LogLevelInfo)
	})
	ctx := ctxT(t)
	// The handler holds the consumer between two reads while the group is
	// destroyed: its next XREADGROUP finds no group.
	handling, release := make(chan struct{}, 1), make(chan struct{})
	c, err := eng.Consume(ctx, stream, "g", "c1", func(context.Context, engine.XEntry) error {
		select {
		case handling <- struct{}{}:
			<-release
		default:
		}
		return nil
	}, engine.ConsumeOptions{Block: 20 * time.Millisecond, ClaimInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dsAwait(t, ctx, "XADD", eng.XAdd(ctx, stream, "f", "v"))
	<-handling
	if _, err := eng.XGroupDestroy(ctx, stream, "g").Await(ctx); err != nil {
		t.Fatal(err)
	}
	close(release)
	var line *logLine
	for deadline := time.Now().Add(10 * time.Second); line == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, l := range logs.Lines() {
			if l.Msg == hooks.MsgConsumerInterrupted {
				line = &l
				break
			}
		}
	}
	if line == nil {
		t.Fatalf("no %q line; stats %+v", hooks.MsgConsumerInterrupted, c.Stats())
	}
	if line.Level != slog.LevelWarn {
		t.Errorf("%q at %s, want warn", line.Msg, line.Level)
	}
	if !strings.Contains(line.Text, "NOGROUP No such key (the stream)") {
		t.Errorf("the line does not say why, without the key: %s", line.Text)
	}
	if strings.Contains(line.Text, stream) {
		t.Errorf("the warn line names the stream (a key): %s", line.Text)
	}
	// The consumer's own error keeps the server's text: the caller's.
	if le := c.Stats().LastError; le == nil || !strings.Contains(le.Error(), stream) {
		t.Errorf("Stats().LastError = %v, want the server's NOGROUP naming the stream", le)
	}
}

// ZADD's refusal of a NaN score names the member by its position, not by
// its value: a member is a value (an e-mail, a user's id), and the error
// is the library's own text, which programs log (review rv45s: it quoted
// the member).
func TestZAddNaNErrorShowsNoMember(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	const member = "alice@example.com-s3cr3t"
	members := []engine.Z{{Member: "a", Score: 1}, {Member: member, Score: math.NaN()}}
	p := eng.Pipeline()
	for what, f := range map[string]*futures.Future[int64]{
		"Engine.ZAdd":   eng.ZAdd(ctx, "z", members...),
		"Pipeline.ZAdd": p.ZAdd("z", members...),
	} {
		_, err := f.Await(ctx)
		if !errors.Is(err, engine.ErrInvalidArgument) {
			t.Fatalf("%s with a NaN score: %v, want ErrInvalidArgument", what, err)
		}
		if strings.Contains(err.Error(), member) {
			t.Errorf("%s: the error quotes the member: %v", what, err)
		}
		if !strings.Contains(err.Error(), "member 2 of 2") {
			t.Errorf("%s: the error does not say which member: %v", what, err)
		}
	}
}
