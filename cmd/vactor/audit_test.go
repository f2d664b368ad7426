package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
		{[]string{"load", "-give-up", "-1s"}, "must not be negative"},
		{[]string{"load", "-max-pending", "99999999999999999999"}, "value out of range"},
		// QA-L 6: these exited 1, -conns 300 after a summary of a load
		// that never ran, and named library fields.
		{[]string{"load", "-addr", "127.0.0.1:1", "-conns", "300"}, "-conns 300: at most 256"},
		{[]string{"ping", "-addr", "127.0.0.1:1", "-tls", "-tls-ca", "/nonexistent/ca.pem"}, `invalid -tls-ca "/nonexistent/ca.pem": cannot be read`},
		{[]string{"info", "-addr", "127.0.0.1:1", "-tls", "-tls-cert", "/nonexistent/c.pem", "-tls-key", "/nonexistent/k.pem"}, `invalid -tls-cert "/nonexistent/c.pem": cannot load the client certificate (with -tls-key)`},
		{[]string{"ping", "-addr", "127.0.0.1:1", "-tls", "-tls-cert", "/nonexistent/c.pem"}, `"/nonexistent/c.pem": needs -tls-key too: give both`},
		{[]string{"help", "nope"}, `unknown command "nope"`},
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
		// QA-L 11: help COMMAND is COMMAND -h (it printed the top-level
		// usage).
		{[]string{"help", "load"}, "usage: vactor load"},
		{[]string{"help", "bench"}, "-keyspace-prefix"},
		{[]string{"help", "ping"}, "usage: vactor ping"},
		{[]string{"help", "info"}, "usage: vactor info"},
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
		// QA-L 11: the hint names the CLI's flags, not Config fields.
		{[]string{"-addr", auth.Addr()}, nil, "requires authentication (give -password"},
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

// loadCase is one input of vactor load and what the server must hold
// after it: exactly want (no other key), with the malformed records on
// the given lines.
type loadCase struct {
	name      string // file name; "-" for standard input
	text      string
	want      map[string]string
	malformed []int
}

func respOf(args ...string) string {
	s, _ := respCmd(args...)
	return s
}

// Inputs as they come from other tools: no final line end, CRLF, long
// lines, binary values, repeated keys, standard input. What the server
// holds afterwards is read back.
func TestLoadInputEdges(t *testing.T) {
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	binary := string(allBytes)
	long := strings.Repeat("0123456789", 250_000) // 2.5 MB, beyond every buffer
	cases := []loadCase{
		{"empty.csv", "", map[string]string{}, nil},
		{"blank.jsonl", "\n\r\n\n", map[string]string{}, nil},
		{"nofinal.csv", "a,1\nb,2", map[string]string{"a": "1", "b": "2"}, nil},
		{"crlf.csv", "key,value\r\na,1\r\nb,\"x,y\"\r\nc,3,60\r\n", map[string]string{"a": "1", "b": "x,y", "c": "3"}, nil},
		{"repeat.csv", "a,1\nb,2\na,3\nb,4\na,5\n", map[string]string{"a": "5", "b": "4"}, nil},
		{"binary.csv", "k\x00\xff,\"v\x00\xfe\x01\"\n", map[string]string{"k\x00\xff": "v\x00\xfe\x01"}, nil},
		{"long.csv", "a," + long + "\nb,2\n", map[string]string{"a": long, "b": "2"}, nil},
		{"nofinal.jsonl", `{"key":"a","value":"1"}` + "\n" + `{"key":"b","value":2}`, map[string]string{"a": "1", "b": "2"}, nil},
		{"crlf.jsonl", `{"key":"a","value":"1"}` + "\r\n" + `{"key":"b","value":"2"}` + "\r\n", map[string]string{"a": "1", "b": "2"}, nil},
		{"long.jsonl", `{"key":"a","value":"` + long + `"}` + "\n" + `{"key":"b","value":"\u0000\n"}` + "\n", map[string]string{"a": long, "b": "\x00\n"}, nil},
		// JSON is UTF-8: a byte that is not would reach the server as
		// U+FFFD, another value than the file's.
		{"utf8.jsonl", `{"key":"a","value":"1"}` + "\n" + "{\"key\":\"b\",\"value\":\"x\xffy\"}\n" + `{"key":"c","value":"é"}` + "\n",
			map[string]string{"a": "1", "c": "é"}, []int{2}},
		{"binary.resp", respOf("SET", binary, binary) + respOf("SET", "b", "\r\n") + respOf("SET", "long", long),
			map[string]string{binary: binary, "b": "\r\n", "long": long}, nil},
		{"lf.resp", "*3\n$3\nSET\n$1\na\n$1\n1\n*3\n$3\nSET\n$1\nb\n$1\n2\n", map[string]string{"a": "1", "b": "2"}, nil},
		// The last value whole, without its line end.
		{"nofinal.resp", respOf("SET", "a", "1") + "*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2", map[string]string{"a": "1", "b": "2"}, nil},
		{"nofinalcr.resp", respOf("SET", "a", "1") + "*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r", map[string]string{"a": "1", "b": "2"}, nil},
		// A value cut short is not loaded.
		{"cut.resp", respOf("SET", "a", "1") + "*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$5\r\n12", map[string]string{"a": "1"}, []int{8}},
		{"-", respOf("SET", "a", "1") + respOf("SET", "b", binary), map[string]string{"a": "1", "b": binary}, nil},
	}
	srv := valkeytest.Start(t)
	eng := connect(t, false, srv.Addr())
	dir := t.TempDir()
	for _, tc := range cases {
		do(t, eng, "FLUSHALL")
		path, stdin := "-", tc.text
		if tc.name != "-" {
			path, stdin = filepath.Join(dir, tc.name), ""
			if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		errPath := filepath.Join(dir, tc.name+".errors")
		r := vactor(t, nil, stdin, "load", "-addr", srv.Addr(), "-quiet", "-errors", errPath, path)
		wantCode := exitOK
		if len(tc.malformed) > 0 {
			wantCode = exitFailed
		}
		if r.code != wantCode {
			t.Errorf("%s: exit %d, want %d\n%s%s", tc.name, r.code, wantCode, r.stdout, r.stderr)
			continue
		}
		summary(t, r.stdout, len(tc.want)+strings.Count(tc.name, "repeat")*3, len(tc.want)+strings.Count(tc.name, "repeat")*3, 0, len(tc.malformed))
		if n := do(t, eng, "DBSIZE"); n != int64(len(tc.want)) {
			t.Errorf("%s: DBSIZE %v, want %d", tc.name, n, len(tc.want))
		}
		for k, v := range tc.want {
			if got := do(t, eng, "GET", k); got != v {
				t.Errorf("%s: GET %q = %.40q, want %.40q", tc.name, k, got, v)
			}
		}
		if len(tc.malformed) == 0 {
			if _, err := os.Stat(errPath); !os.IsNotExist(err) {
				t.Errorf("%s: an errors file after a clean load: %v", tc.name, err)
			}
			continue
		}
		malformed, failed := errorLines(t, errPath)
		if !slices.Equal(malformed, tc.malformed) || len(failed) > 0 {
			t.Errorf("%s: malformed lines %v, want %v; failed %q", tc.name, malformed, tc.malformed, failed)
		}
	}
	// A missing file, or a directory: one line, before any server is
	// needed (a directory was read after connecting, with a summary of 0
	// commands before the error: qa45c).
	for _, tc := range []struct{ path, msg string }{
		{filepath.Join(dir, "missing.csv"), "no such file"},
		{dir, "is a directory"},
	} {
		r := vactor(t, nil, "", "load", tc.path)
		if r.code != exitFailed || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%s: exit %d\nstdout: %s\nstderr: %s", tc.path, r.code, r.stdout, r.stderr)
		}
	}
}

// started is a vactor command running in a process of its own.
type started struct {
	cmd         *exec.Cmd
	exited      chan struct{}
	out         bytes.Buffer
	errb        syncBuffer // read while the command runs
	stdinWriter *os.File
}

// start starts vactor args with a pipe as its standard input, in a
// clean environment as vactor() runs it.
func start(t *testing.T, args ...string) *started {
	t.Helper()
	s := &started{exited: make(chan struct{})}
	s.cmd = exec.Command(os.Args[0], args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VALKEY_") {
			s.cmd.Env = append(s.cmd.Env, kv)
		}
	}
	s.cmd.Env = append(s.cmd.Env, cliEnv+"=1", raceExitEnv())
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdin, s.stdinWriter = pr, pw
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.errb
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = pr.Close()
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		_ = s.stdinWriter.Close()
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
	return s
}

// syncBuffer is a bytes.Buffer safe for a writer and readers at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// signalAndWait sends sig and waits for the exit, at most within.
func (s *started) signalAndWait(t *testing.T, sig os.Signal, within time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
		return time.Since(t0)
	case <-time.After(within):
		_ = s.cmd.Process.Kill()
		<-s.exited
		t.Fatalf("%v: no exit within %s\nstdout: %s\nstderr: %s", sig, within, s.out.String(), s.errb.String())
	}
	return 0
}

// waitFor polls cond until it holds, failing after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within a minute", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A load from a pipe that has nothing more to say yet (a producer
// still working, tail -f) ends at SIGINT or SIGTERM: what was read is
// loaded, a record cut short is not, the summary says so and the exit
// status is 130.
func TestLoadInterruptedWhileReading(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := connect(t, false, srv.Addr())
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		do(t, eng, "FLUSHALL")
		s := start(t, "load", "-addr", srv.Addr(), "-quiet")
		if _, err := s.stdinWriter.WriteString("a,1\nb,2\nc,3"); err != nil { // c's line goes on
			t.Fatal(err)
		}
		waitFor(t, "key b", func() bool { return do(t, eng, "EXISTS", "b") == int64(1) })
		s.signalAndWait(t, sig, 20*time.Second)
		if code := s.cmd.ProcessState.ExitCode(); code != exitInterrupted {
			t.Fatalf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", sig, code, exitInterrupted, s.out.String(), s.errb.String())
		}
		summary(t, s.out.String(), 2, 2, 0, 0)
		mustContain(t, "stdout", s.out.String(), "interrupted: nothing after line 2 was sent") // where to resume (qa-AM F6)
		if n := do(t, eng, "DBSIZE"); n != int64(2) {
			t.Fatalf("%v: DBSIZE %v, want 2 (a and b, not c)", sig, n)
		}
	}
}

// SIGTERM stops a bench at once, like SIGINT: its worker process is
// killed and reaped, the partial table printed, the keys deleted, exit
// 130.
func TestBenchTerminated(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := connect(t, false, srv.Addr())
	s := start(t, benchArgs(srv.Addr(), "-duration", "5m", "-concurrency", "2", "-contenders", "vactor,go-redis", "-op", "get")...)
	var workers []int
	waitFor(t, "worker process", func() bool {
		workers = childPIDs(s.cmd.Process.Pid)
		return len(workers) > 0
	})
	s.signalAndWait(t, syscall.SIGTERM, 30*time.Second)
	if code := s.cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitInterrupted, s.out.String(), s.errb.String())
	}
	for _, pid := range workers {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			t.Errorf("worker %d is still there after the bench exited", pid)
		}
	}
	mustContain(t, "stdout", s.out.String(), "GET, 2 goroutine(s)", "no result")
	mustContain(t, "stderr", s.errb.String(), "interrupted", "deleted the keys")
	if n := do(t, eng, "DBSIZE"); n != int64(0) {
		t.Fatalf("DBSIZE %v after the bench", n)
	}
}

// childPIDs lists the processes whose parent is pid (Linux /proc).
func childPIDs(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces; cut at the last ')'.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}

// The examples of docs/cli.md hold: every flag its synopses name exists,
// and the errors of vactor load look as the page shows them, line numbers
// included.
func TestDocExamples(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "cli.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	flagRe := regexp.MustCompile(`\[(-[a-z-]+)`)
	for _, sub := range []string{"bench", "load"} {
		i := strings.Index(doc, "\nvactor "+sub+" [")
		j := strings.Index(doc[i:], "```")
		if i < 0 || j < 0 {
			t.Fatalf("docs/cli.md has no synopsis of vactor %s", sub)
		}
		help := vactor(t, nil, "", sub, "-h").stdout
		for _, m := range flagRe.FindAllStringSubmatch(doc[i:i+j], -1) {
			if !strings.Contains(help, "\n  "+m[1]+" ") && !strings.Contains(help, "\n  "+m[1]+"\n") {
				t.Errorf("docs/cli.md: vactor %s has no flag %s", sub, m[1])
			}
		}
	}
	for _, f := range []string{"-count", "-timeout"} {
		if help := vactor(t, nil, "", "ping", "-h").stdout; !strings.Contains(help, "\n  "+f+" ") {
			t.Errorf("docs/cli.md: vactor ping has no flag %s", f)
		}
	}

	// The two lines of the errors example, made to happen.
	var want []string
	for line := range strings.Lines(doc) {
		if strings.HasPrefix(line, "line 7: ") || strings.HasPrefix(line, "line 2119: ") {
			want = append(want, strings.TrimSpace(line))
		}
	}
	if len(want) != 2 {
		t.Fatalf("docs/cli.md: the errors example is gone: %q", want)
	}
	srv := valkeytest.Start(t)
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "a.csv")
	if err := os.WriteFile(csvPath, []byte("a,1\nb,2\nc,3\nd,4\ne,5\nf,6\ng,7,8,9\nh,8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var resp strings.Builder
	resp.WriteString("\r\n\r\n\n\n") // blank lines, skipped
	for i := range 302 {             // 7 lines each: the next command starts on line 4+2114+1
		resp.WriteString(respOf("SET", "k"+strconv.Itoa(i), "v"))
	}
	resp.WriteString(respOf("LPUSH", "k5", "x"))
	respPath := filepath.Join(dir, "b.resp")
	if err := os.WriteFile(respPath, []byte(resp.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, path := range []string{csvPath, respPath} {
		r := vactor(t, nil, "", "load", "-addr", srv.Addr(), "-quiet", path)
		if r.code != exitFailed || !strings.Contains(r.stderr, "vactor load: "+want[i]+"\n") {
			t.Errorf("%s: exit %d, want %d and %q on stderr:\n%s", path, r.code, exitFailed, want[i], r.stderr)
		}
		if got, _ := os.ReadFile(path + ".errors"); string(got) != want[i]+"\n" {
			t.Errorf("%s.errors: %q, want %q", path, got, want[i])
		}
	}
}
