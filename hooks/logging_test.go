package hooks_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/hooks"
)

// Failed connects are logged at most once a second per node, with the
// number suppressed; successes are not limited.
func TestLoggingRateLimits(t *testing.T) {
	var buf lockedBuf
	l := hooks.NewLogging(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	for range 5 {
		l.PostConnection(hooks.Dialed{Node: "a:1", Err: errors.New("refused")})
		l.PostConnection(hooks.Dialed{Node: "b:1", Err: errors.New("refused")})
		l.PostConnection(hooks.Dialed{Node: "a:1", Initial: true})
	}
	out := buf.String()
	if n := strings.Count(out, hooks.MsgDialFailed); n != 2 {
		t.Fatalf("%d failed connects logged, want 2 (one per node):\n%s", n, out)
	}
	if n := strings.Count(out, hooks.MsgConnected); n != 5 {
		t.Fatalf("%d connects logged, want 5", n)
	}
}

// lockedBuf is a bytes.Buffer safe for the trailing lines' timer.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuf) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// countRedirects returns the redirects a log's lines account for: one per
// line plus its "suppressed" (a trailing line too: it is the last of
// those suppressed, with the count of the others).
func countRedirects(t *testing.T, lines []string) int {
	t.Helper()
	total := 0
	for _, line := range lines {
		if !strings.Contains(line, hooks.MsgRedirected) {
			continue
		}
		total++
		if _, v, ok := strings.Cut(line, "suppressed="); ok {
			k, err := strconv.Atoi(strings.Fields(v)[0])
			if err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			total += k
		}
	}
	return total
}

// Redirects are logged at most redirectBurst (10) a second per node that
// redirected: a slot migration redirects every command of the slots on the
// move, and each used to be a line (tens of thousands a second). Every
// redirect is either logged or counted in a "suppressed": of the node's
// next line, or of a trailing line at the end of the window when no line
// came (a burst that ended within the second was never counted before).
func TestLoggingRedirectsRateLimited(t *testing.T) {
	var buf lockedBuf
	l := hooks.NewLogging(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	const n = 1000
	start := time.Now()
	for i := range n {
		l.OnRedirected(hooks.Redirect{Kind: hooks.RedirectMoved, Name: "GET", Slot: i, From: "a:1", To: "b:1"})
	}
	windows := int(time.Since(start)/time.Second) + 1
	logged := strings.Count(buf.String(), hooks.MsgRedirected)
	if logged < 10 || logged > 10*windows {
		t.Fatalf("%d of %d redirects logged in %d one-second windows, want 10 to %d", logged, n, windows, 10*windows)
	}
	// The window's end logs a trailing line with the count.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(buf.String(), "trailing=true") {
		if time.Now().After(deadline) {
			t.Fatalf("no trailing line 5 s after the burst:\n%s", buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if got := countRedirects(t, lines); got != n {
		t.Errorf("the log accounts for %d redirects, want %d:\n%s", got, n, lines[len(lines)-1])
	}
	// Nothing suppressed since: the next lines carry no count.
	l.OnRedirected(hooks.Redirect{Kind: hooks.RedirectMoved, Name: "GET", From: "a:1", To: "b:1"})
	l.OnRedirected(hooks.Redirect{Kind: hooks.RedirectAsk, Name: "SET", From: "c:1", To: "b:1"})
	lines = strings.Split(strings.TrimSpace(buf.String()), "\n")
	for _, last := range lines[len(lines)-2:] {
		if strings.Contains(last, "suppressed=") {
			t.Errorf("a redirect after the trailing line: %q, want nothing suppressed", last)
		}
	}
	if got := countRedirects(t, lines); got != n+2 {
		t.Errorf("the log accounts for %d redirects, want %d", got, n+2)
	}
}

// A burst of failed connects that ends within the second (5 lines, 4
// suppressed) is counted by a trailing line at the window's end; before,
// the count waited for the next line of that node, which may never come.
func TestLoggingTrailingCount(t *testing.T) {
	var buf lockedBuf
	l := hooks.NewLogging(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	for range 5 {
		l.PostConnection(hooks.Dialed{Node: "a:1", Err: errors.New("refused")})
	}
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(buf.String(), hooks.MsgDialFailed) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no trailing line 5 s after the burst:\n%s", buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "suppressed=3") || !strings.Contains(lines[1], "trailing=true") {
		t.Fatalf("lines %q, want the first and a trailing one (the last, 3 others suppressed)", lines)
	}
	// Flush logs the trailing line due at once (Engine.Close calls it).
	for range 3 {
		l.PostConnection(hooks.Dialed{Node: "b:1", Err: errors.New("refused")})
	}
	l.Flush()
	lines = strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[3], "node=b:1") || !strings.Contains(lines[3], "suppressed=1") || !strings.Contains(lines[3], "trailing=true") {
		t.Fatalf("lines after Flush %q, want b:1's first and its trailing one (1 other suppressed)", lines)
	}
	time.Sleep(1500 * time.Millisecond) // the window whose timer Flush stopped: the subject of the check
	if n := len(strings.Split(strings.TrimSpace(buf.String()), "\n")); n != 4 {
		t.Fatalf("%d lines 1.5 s after Flush, want 4 (nothing more)", n)
	}
}

// Keys (a stream's name, a shard channel) appear only at debug level.
func TestLoggingKeysOnlyAtDebug(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var buf bytes.Buffer
		l := hooks.NewLogging(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level})))
		l.OnConsumerEvent(hooks.Consumer{Kind: hooks.HandlerFailed, Stream: "stream-key", Group: "g", Node: "10.0.0.1:6379", Err: errors.New("boom")})
		l.OnSubscriberEvent(hooks.Subscriber{Kind: hooks.Resubscribed, ShardChannel: "shard-key"})
		// The server's NOGROUP reply names the stream (review rv45s: the
		// warn line of the interruption carried it at every level).
		l.OnConsumerEvent(hooks.Consumer{Kind: hooks.Interrupted, Stream: "stream-key", Group: "g",
			Err: errors.New("vactor: server error: NOGROUP No such key 'stream-key' or consumer group 'g' in XREADGROUP with GROUP option")})
		l.OnConsumerEvent(hooks.Consumer{Kind: hooks.Interrupted, Stream: "stream-key", Group: "g",
			Err: errors.New("vactor: server error: ERR unknown command `XAUTOCLAIM`, with args beginning with: `stream-key`, `g`, ")})
		out := buf.String()
		if !strings.Contains(out, hooks.MsgConsumerInterrupted) || !strings.Contains(out, "NOGROUP No such key") {
			t.Fatalf("%s: the interruption is not logged with its error:\n%s", level, out)
		}
		if !strings.Contains(out, hooks.MsgConsumerFailed) || !strings.Contains(out, hooks.MsgResubscribed) {
			t.Fatalf("%s: not logged:\n%s", level, out)
		}
		if !strings.Contains(out, "node=10.0.0.1:6379") {
			t.Errorf("%s: the consumer's node is not logged:\n%s", level, out)
		}
		keys := strings.Contains(out, "stream-key") || strings.Contains(out, "shard-key")
		if keys != (level == slog.LevelDebug) {
			t.Fatalf("%s: keys in the log: %t:\n%s", level, keys, out)
		}
	}
}

// The subscriber lines name the subscription (Subscriber.Instance): two
// subscriptions on one node are told apart in the log.
func TestLoggingSubscriberInstance(t *testing.T) {
	var buf bytes.Buffer
	l := hooks.NewLogging(slog.New(slog.NewTextHandler(&buf, nil)))
	l.OnSubscriberEvent(hooks.Subscriber{Kind: hooks.Disconnected, Node: "a:1", Instance: 7, Err: errors.New("EOF")})
	l.OnSubscriberEvent(hooks.Subscriber{Kind: hooks.Disconnected, Node: "a:1", Instance: 8, Err: errors.New("EOF")})
	out := buf.String()
	if !strings.Contains(out, "subscription=7") || !strings.Contains(out, "subscription=8") {
		t.Fatalf("the subscriptions are not named:\n%s", out)
	}
}

func TestImplements(t *testing.T) {
	if hooks.Implements(42) || hooks.Implements(nil) || !hooks.Implements(hooks.NewLogging(nil)) {
		t.Fatal("Implements")
	}
}

// A node that stays down has its breaker try it every
// CircuitBreakerOpenTimeout (open -> half-open -> open): two warn lines a
// second per node for the whole outage. The opening and the closing are
// always logged; the trials once per 30 s and direction, their count
// given before the closing's line.
func TestLoggingBreakerTrialsLimited(t *testing.T) {
	var buf lockedBuf
	l := hooks.NewLogging(slog.New(slog.NewTextHandler(&buf, nil)))
	change := func(node, from, to string) { l.OnBreakerChanged(hooks.BreakerChange{Node: node, From: from, To: to}) }
	for _, node := range []string{"a:1", "b:1"} {
		change(node, hooks.BreakerClosed, hooks.BreakerOpen)
		for range 20 {
			change(node, hooks.BreakerOpen, hooks.BreakerHalfOpen)
			change(node, hooks.BreakerHalfOpen, hooks.BreakerOpen)
		}
		change(node, hooks.BreakerOpen, hooks.BreakerHalfOpen)
	}
	change("a:1", hooks.BreakerHalfOpen, hooks.BreakerClosed)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var a []string
	for _, line := range lines {
		if strings.Contains(line, "node=a:1") {
			a = append(a, line)
		}
	}
	// a:1: its opening, the first of each trial direction, the trailing
	// counts of both (20 open->half-open suppressed: the last with
	// suppressed=19; 19 half-open->open: the last with suppressed=18),
	// its closing.
	want := []string{
		"from=closed to=open",
		"from=open to=half-open",
		"from=half-open to=open",
		"from=open to=half-open suppressed=19 trailing=true",
		"from=half-open to=open suppressed=18 trailing=true",
		"from=half-open to=closed",
	}
	if len(a) != len(want) {
		t.Fatalf("a:1's lines:\n%s\nwant %d", strings.Join(a, "\n"), len(want))
	}
	for i, w := range want {
		if !strings.Contains(a[i], w) || !strings.Contains(a[i], hooks.MsgBreakerChanged) {
			t.Errorf("line %d: %s, want %q", i, a[i], w)
		}
	}
	// b:1, still down: its opening and the first trials, nothing more yet.
	if n := len(lines) - len(a); n != 3 {
		t.Fatalf("%d lines for b:1, want 3:\n%s", n, buf.String())
	}
	// Flush (Engine.Close) reports b:1's trials.
	l.Flush()
	if n := strings.Count(buf.String(), "node=b:1"); n != 5 {
		t.Fatalf("%d lines for b:1 after Flush, want 5:\n%s", n, buf.String())
	}
}

// A dial abandoned (context.Canceled: another node answered first, the
// primary changed meanwhile, the caller gave up) is no failure: not
// logged at warn as one.
func TestLoggingAbandonedDialQuiet(t *testing.T) {
	var buf lockedBuf
	l := hooks.NewLogging(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.PostConnection(hooks.Dialed{Node: "a:1", Err: fmt.Errorf("vactor: connect to a:1: %w", context.Canceled)})
	l.PostConnection(hooks.Dialed{Node: "b:1", Err: errors.New("connection refused")})
	out := buf.String()
	if strings.Contains(out, "node=a:1") || !strings.Contains(out, "node=b:1") {
		t.Fatalf("log:\n%s\nwant the refused dial only", out)
	}
}

// A connection the client closed because its commands' deadline passed
// says so: "connection lost" alone sent operators looking for a network
// fault (qa-AR AR4); a transport error has no reason.
func TestLoggingConnectionLostByDeadline(t *testing.T) {
	var buf lockedBuf
	l := hooks.NewLogging(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.OnConnectionLost(hooks.Lost{Node: "a:1", Err: context.DeadlineExceeded})
	l.OnConnectionLost(hooks.Lost{Node: "b:1", Err: errors.New("EOF")})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "reason=") || strings.Contains(lines[1], "reason=") {
		t.Fatalf("log:\n%s\nwant a reason on a:1's line only", buf.String())
	}
}
