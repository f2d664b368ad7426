package main

import (
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/valkeytest"
)

// An operator's command lines that must not run: each exits 2 with a
// message on stderr, nothing on stdout, no panic or stack trace, and
// before any server is started or reached (no throwaway server note).
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{}, "usage: vactor COMMAND"},
		{[]string{"nope"}, `unknown command "nope"`},
		{[]string{"BENCH"}, `unknown command "BENCH"`},
		{[]string{"ping", "-nope"}, "flag provided but not defined: -nope"},
		{[]string{"ping", "-addr"}, "flag needs an argument: -addr"},
		{[]string{"ping", "-count", "0"}, "-count must be at least 1"},
		{[]string{"ping", "-count", "-1"}, "-count must be at least 1"},
		{[]string{"ping", "-count", "99999999999999999999"}, "value out of range"},
		{[]string{"ping", "-timeout", "0"}, "-timeout must be positive"},
		{[]string{"ping", "-timeout", "-1s"}, "-timeout must be positive"},
		{[]string{"ping", "-timeout", "soon"}, `invalid value "soon" for flag -timeout`},
		{[]string{"ping", "extra"}, `unexpected argument "extra"`},
		{[]string{"info", "-timeout", "0"}, "-timeout must be positive"},
		{[]string{"info", "extra"}, `unexpected argument "extra"`},
		{[]string{"bench", "extra"}, `unexpected argument "extra"`},
		{[]string{"bench", "-duration", "0"}, "-duration must be positive"},
		{[]string{"bench", "-duration", "-1s"}, "-duration must be positive"},
		{[]string{"bench", "-warmup", "-1s"}, "-warmup must not be negative"},
		{[]string{"bench", "-rounds", "0"}, "-rounds must be at least 1"},
		{[]string{"bench", "-keys", "-5"}, "-keys must be between"},
		{[]string{"bench", "-keys", "1000000000"}, "-keys must be between"},
		{[]string{"bench", "-value-size", "-1"}, "-value-size must be between"},
		{[]string{"bench", "-value-size", "99999999999"}, "-value-size must be between"},
		{[]string{"bench", "-concurrency", ","}, "-concurrency"},
		{[]string{"bench", "-concurrency", "0"}, "-concurrency"},
		{[]string{"bench", "-concurrency", "2000000"}, "-concurrency"},
		{[]string{"bench", "-op", "del"}, `-op: unknown operation "del"`},
		{[]string{"bench", "-op", ""}, "-op: unknown operation"},
		{[]string{"bench", "-contenders", "jedis"}, `unknown contender "jedis"`},
		{[]string{"bench", "-contenders", ","}, "-contenders"},
		{[]string{"bench", "-ratio", "1.5"}, "-ratio must be between 0 and 1"},
		{[]string{"bench", "-ratio", "NaN"}, "-ratio must be between 0 and 1"},
		{[]string{"bench", "-keyspace-prefix", ""}, "-keyspace-prefix must not be empty"},
		{[]string{"bench", "-json"}, "flag needs an argument: -json"},
		{[]string{"load", "a", "b"}, "one input file at most"},
		{[]string{"load", "-format", "xml"}, `-format "xml"`},
		{[]string{"load", "-conns", "-1"}, "must not be negative"},
		{[]string{"load", "-max-pending", "-1"}, "must not be negative"},
		{[]string{"load", "-max-pending", "99999999999999999999"}, "value out of range"},
	} {
		r := vactor(t, nil, "", tc.args...)
		if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, tc.msg) ||
			strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "started a throwaway") {
			t.Errorf("%q: exit %d, want %d with %q on stderr\nstdout: %s\nstderr: %s", tc.args, r.code, exitUsage, tc.msg, r.stdout, r.stderr)
		}
	}
}

// Asking for help is not an error: -h, -help and --help print the usage
// of the command on stdout and exit 0, for every subcommand as for
// vactor itself.
func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"help"}, "usage: vactor COMMAND"},
		{[]string{"-h"}, "usage: vactor COMMAND"},
		{[]string{"--help"}, "usage: vactor COMMAND"},
		{[]string{"bench", "-h"}, "usage: vactor bench"},
		{[]string{"bench", "--help"}, "-keyspace-prefix"},
		{[]string{"load", "-h"}, "usage: vactor load"},
		{[]string{"load", "-help"}, "-max-pending"},
		{[]string{"ping", "-h"}, "usage: vactor ping"},
		{[]string{"info", "--help"}, "usage: vactor info"},
	} {
		r := vactor(t, nil, "", tc.args...)
		if r.code != exitOK || !strings.Contains(r.stdout, tc.want) || r.stderr != "" {
			t.Errorf("%q: exit %d, want 0 with %q on stdout\nstdout: %s\nstderr: %s", tc.args, r.code, tc.want, r.stdout, r.stderr)
		}
	}
}

// A server that cannot be used: every subcommand fails within a bound
// with one line on stderr that says why, and a non-zero exit.
func TestUnusableServer(t *testing.T) {
	refused := "127.0.0.1:1" // nothing listens on port 1
	plain := valkeytest.Start(t)
	const pw = "audit-pw"
	auth := valkeytest.Start(t, valkeytest.Options{Password: pw})
	for _, tc := range []struct {
		args []string
		env  []string
		msg  string
	}{
		{[]string{"-addr", refused}, nil, "connection refused"},
		{[]string{"-addr", auth.Addr()}, nil, "requires authentication"},
		{[]string{"-addr", auth.Addr(), "-password", "wrong"}, nil, "authentication failed"},
		{[]string{"-url", "valkey://:wrong@" + auth.Addr()}, nil, "authentication failed"},
		// TLS to a plain port: bounded by the dial timeout.
		{[]string{"-addr", plain.Addr(), "-tls"}, []string{"VALKEY_DIAL_TIMEOUT=1s"}, "TLS handshake"},
	} {
		for _, cmd := range [][]string{{"ping"}, {"info"}, {"bench", "-duration", "1s"}, {"load", "-quiet"}} {
			args := append(append([]string{}, cmd...), tc.args...)
			if cmd[0] == "load" {
				args = append(args, "-") // stdin, after the flags
			}
			start := time.Now()
			r := vactor(t, tc.env, "k,v\n", args...)
			took := time.Since(start)
			errLines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if r.code != exitFailed || len(errLines) != 1 || !strings.Contains(r.stderr, tc.msg) ||
				!strings.HasPrefix(r.stderr, "vactor "+cmd[0]+": ") || strings.Contains(r.stdout+r.stderr, pw) {
				t.Errorf("%q: exit %d, want %d and one line with %q on stderr\nstdout: %s\nstderr: %s", args, r.code, exitFailed, tc.msg, r.stdout, r.stderr)
			}
			if took > 20*time.Second {
				t.Errorf("%q: took %s", args, took)
			}
		}
	}
}
