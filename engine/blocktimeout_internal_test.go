package engine

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A blocking pop's server timeout ends before its ctx's deadline: half
// the time left, at most blockMargin, early (review-32b B1: with 50 ms
// the server, answering its timeouts up to 91 ms late, lost the race to
// the ctx on almost every idle poll).
func TestBlockTimeoutWithinDeadline(t *testing.T) {
	seconds := func(ctx context.Context, timeout time.Duration) float64 {
		t.Helper()
		s, err := blockTimeout(ctx, "BLPOP", timeout)
		if err != nil {
			t.Fatal(err)
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("timeout %q: %v", s, err)
		}
		return f
	}
	deadline := func(d time.Duration) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		t.Cleanup(cancel)
		return ctx
	}
	for _, c := range []struct {
		name     string
		ctx      context.Context
		timeout  time.Duration
		min, max float64
	}{
		{"no deadline, for ever", context.Background(), 0, 0, 0},
		{"no deadline", context.Background(), 1500 * time.Millisecond, 1.5, 1.5},
		{"sub-millisecond", context.Background(), time.Microsecond, 0.001, 0.001},
		{"deadline in 2s, for ever", deadline(2 * time.Second), 0, 1.7, 1.8},
		{"deadline in 2s, timeout 1s", deadline(2 * time.Second), time.Second, 1, 1},
		{"deadline in 200ms", deadline(200 * time.Millisecond), 0, 0.05, 0.1},
		{"deadline passed", deadline(time.Nanosecond), 0, 0.001, 0.001},
		{"nil ctx", nil, 0, 0, 0},
	} {
		if got := seconds(c.ctx, c.timeout); got < c.min || got > c.max {
			t.Errorf("%s: timeout %vs, want %v..%v", c.name, got, c.min, c.max)
		}
	}
	if _, err := blockTimeout(context.Background(), "BLPOP", -time.Second); err == nil {
		t.Error("a negative timeout was taken")
	}
}

// A blocking command sent again after a redirect has its timeout kept
// within its ctx's deadline, wherever the command keeps it (qa-AO AO5);
// without a deadline, or with a timeout it cannot read, it goes as given.
func TestRetimedKeepsTimeoutWithinDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, c := range []struct {
		name string
		args []string
		at   int
		ms   bool
	}{
		{"BLPOP", []string{"a", "b", "0"}, 2, false},
		{"BLPOP", []string{"a", "0x0"}, 1, false}, // forever, as the server reads it (qa-AW AW1)
		{"BLMOVE", []string{"a", "b", "LEFT", "RIGHT", "10"}, 4, false},
		{"BZMPOP", []string{"5.5", "1", "z", "MIN"}, 0, false},
		{"XREADGROUP", []string{"GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"}, 4, true},
		{"xread", []string{"COUNT", "1", "block", "60000", "STREAMS", "s", "$"}, 3, true},
	} {
		got := retimed(ctx, c.name, c.args)
		v, err := strconv.ParseFloat(got[c.at], 64)
		if c.ms {
			v /= 1000
		}
		if err != nil || v < 1.6 || v > 1.8 {
			t.Errorf("%s %q: retimed %q, want its timeout within the deadline (1.6-1.8 s)", c.name, c.args, got)
		}
		if c.args[c.at] == got[c.at] {
			t.Errorf("%s: the caller's arguments changed", c.name)
		}
	}
	for _, c := range [][]string{{"BLPOP", "a", "x"}, {"XREAD", "STREAMS", "s", "BLOCK"}, {"BLPOP", "a", "NaN"}} {
		if got := retimed(ctx, c[0], c[1:]); !slices.Equal(got, c[1:]) {
			t.Errorf("%q: retimed %q, want it as given", c, got)
		}
	}
	if got := retimed(context.Background(), "BLPOP", []string{"a", "0"}); got[1] != "0" {
		t.Errorf("no deadline: retimed %q, want it as given", got)
	}
}

// XREAD's and XREADGROUP's options are found by position: a group or a
// consumer named like an option is a name (review-33 F1: a consumer named
// "noack" made a plain XREADGROUP an outcome unknown at its ctx's end, a
// group named "streams" hid BLOCK, so the read held up a pipelined
// connection).
func TestXReadOptionsByPosition(t *testing.T) {
	cancelled := func(name string, args ...string) bool {
		return errors.Is(cutByCtx(name, args, context.Canceled), ErrOutcomeUnknown)
	}
	for _, c := range []struct {
		name      string
		args      []string
		key       string // "" when not blocking
		noack     bool
		blockArgs int // index of BLOCK's value, -1 without
	}{
		{"XREADGROUP", []string{"GROUP", "g", "noack", "BLOCK", "0", "STREAMS", "s", ">"}, "s", false, 4},
		{"XREADGROUP", []string{"GROUP", "streams", "c", "BLOCK", "10", "NOACK", "STREAMS", "s", ">"}, "s", true, 4},
		{"XREADGROUP", []string{"GROUP", "block", "c", "STREAMS", "s", ">"}, "", false, -1},
		{"xreadgroup", []string{"group", "g", "c", "count", "5", "noack", "block", "0", "streams", "a", "b", ">", ">"}, "a", true, 7},
		{"XREAD", []string{"COUNT", "1", "BLOCK", "5", "STREAMS", "s", "$"}, "s", false, 3},
		{"XREAD", []string{"STREAMS", "block", "0"}, "", false, -1},
		{"XREAD", []string{"BLOCK", "0"}, "", false, -1},
		{"XREADGROUP", []string{"g", "c", "BLOCK", "0", "STREAMS", "s", ">"}, "s", false, 3},
		// GROUP anywhere, as the server takes it (review-33b B1).
		{"XREADGROUP", []string{"BLOCK", "0", "GROUP", "g", "c", "STREAMS", "s", ">"}, "s", false, 1},
		{"XREADGROUP", []string{"COUNT", "1", "GROUP", "g", "noack", "NOACK", "BLOCK", "5", "STREAMS", "s", ">"}, "s", true, 7},
		// An option unknown here (Redis 8.4's CLAIM): BLOCK still seen
		// (review-33b B2).
		{"XREADGROUP", []string{"GROUP", "g", "c", "CLAIM", "100", "BLOCK", "0", "STREAMS", "s", ">"}, "s", false, 6},
	} {
		key, ok := blockingKey(c.name, c.args)
		if key != c.key || ok != (c.key != "") {
			t.Errorf("%s %q: blockingKey %q %v, want %q", c.name, c.args, key, ok, c.key)
		}
		if got := cancelled(c.name, c.args...); got != (c.noack && strings.EqualFold(c.name, "XREADGROUP")) {
			t.Errorf("%s %q: cut by its ctx, outcome unknown %v, want %v", c.name, c.args, got, c.noack)
		}
		if o := parseXReadArgs(c.name, c.args); o.block != c.blockArgs {
			t.Errorf("%s %q: BLOCK's value at %d, want %d", c.name, c.args, o.block, c.blockArgs)
		}
	}
}

// A timeout in seconds reads as the server's strtold reads it: a C
// hexadecimal float needs no exponent (qa-AW AW1: "0x0", forever, got
// past the pipelined connection's check).
func TestParseSecondsAsServer(t *testing.T) {
	for s, want := range map[string]float64{"0x0": 0, "0X0": 0, "0x.0": 0, "-0x0": 0, "+0x10": 16, "0x1p-1": 0.5, "0.5": 0.5, "1e1": 10} {
		if v, err := parseSeconds(s); err != nil || v != want {
			t.Errorf("parseSeconds(%q) = %v, %v; want %v", s, v, err, want)
		}
	}
	for _, s := range []string{"", "x", "0x", " 0", "0x0 ", "0xg", "0x_0", "0x_0p0", "1_0"} {
		if v, err := parseSeconds(s); err == nil {
			t.Errorf("parseSeconds(%q) = %v, want an error (the server refuses it)", s, v)
		}
	}
	// The server's reading: milliseconds rounded up, 0 forever (review-34
	// R34-1: -0.0005 rounds up to 0, forever; R34-5: 1e-400 is 1 ms).
	for s, want := range map[string]time.Duration{
		"0": 0, "0x0": 0, "-0.0005": 0, "-0.001": time.Duration(0), "-0x0.001": 0, "-1e-400": 0,
		"1e-400": time.Millisecond, "0.0001": time.Millisecond, "0.0015": 2 * time.Millisecond, "2": 2 * time.Second,
	} {
		if d, ok := serverSeconds(s); !ok || d != want {
			t.Errorf("serverSeconds(%q) = %v, %t; want %v", s, d, ok, want)
		}
	}
	for _, s := range []string{"-0.0015", "-1", "nan", "inf", "x"} {
		if d, ok := serverSeconds(s); ok {
			t.Errorf("serverSeconds(%q) = %v; want it refused, as the server does", s, d)
		}
	}
}
