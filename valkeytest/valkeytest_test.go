package valkeytest_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/valkeytest"
)

// rawConn speaks RESP by hand: enough for the tests, not a client.
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

func dial(addr string) (*rawConn, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	return &rawConn{Conn: c, r: bufio.NewReader(c)}, nil
}

// do sends one command and reads its reply within timeout. Simple strings
// and errors come back with their type byte ("+OK", "-ERR ..."), bulk
// strings as their payload, a null bulk string as "(nil)".
func (c *rawConn) do(timeout time.Duration, args ...string) (string, error) {
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		return "", err
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if strings.HasPrefix(line, "$") {
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", err
		}
		if n < 0 {
			return "(nil)", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return line, nil
}

// do dials addr, runs one command and closes the connection.
func do(addr string, args ...string) (string, error) {
	c, err := dial(addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.do(2*time.Second, args...)
}

func mustDo(t *testing.T, addr string, want string, args ...string) {
	t.Helper()
	got, err := do(addr, args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	if got != want {
		t.Fatalf("%v = %q, want %q", args, got, want)
	}
}

func TestStartAnswersPingOnLoopback(t *testing.T) {
	t.Parallel()
	srv := valkeytest.Start(t)
	mustDo(t, srv.Addr(), "+PONG", "PING")

	host, port, err := net.SplitHostPort(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if host != "127.0.0.1" || srv.Host() != "127.0.0.1" {
		t.Errorf("host = %q, Host() = %q, want 127.0.0.1", host, srv.Host())
	}
	if port != strconv.Itoa(srv.Port()) || srv.Port() == 0 {
		t.Errorf("Addr() = %q, Port() = %d", srv.Addr(), srv.Port())
	}
	if srv.Pid() <= 0 {
		t.Errorf("Pid() = %d", srv.Pid())
	}
	if srv.LogPath() != filepath.Join(srv.Dir(), "server.log") {
		t.Errorf("LogPath() = %q, Dir() = %q", srv.LogPath(), srv.Dir())
	}
	if log := srv.Log(); !strings.Contains(log, strconv.Itoa(srv.Port())) {
		t.Errorf("log does not mention the port %d:\n%s", srv.Port(), log)
	}
}

func TestRestartKeepsPortAndAppendOnlyData(t *testing.T) {
	t.Parallel()
	srv := valkeytest.Start(t, valkeytest.Options{Name: "aof", AppendOnly: true})
	port, pid := srv.Port(), srv.Pid()
	mustDo(t, srv.Addr(), "+OK", "SET", "a", "1")

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if srv.Port() != port || srv.Pid() == pid || srv.Pid() == 0 {
		t.Fatalf("after Restart: port %d pid %d, before: port %d pid %d", srv.Port(), srv.Pid(), port, pid)
	}
	mustDo(t, srv.Addr(), "1", "GET", "a")

	// appendfsync always: an acknowledged write survives a crash too.
	mustDo(t, srv.Addr(), "+OK", "SET", "b", "2")
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	mustDo(t, srv.Addr(), "2", "GET", "b")
}

func TestRestartWithoutAppendOnlyLosesData(t *testing.T) {
	t.Parallel()
	srv := valkeytest.Start(t)
	mustDo(t, srv.Addr(), "+OK", "SET", "a", "1")
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	mustDo(t, srv.Addr(), "(nil)", "GET", "a")
}

func TestPauseStopsAnswersAndResumeRestoresThem(t *testing.T) {
	t.Parallel()
	srv := valkeytest.Start(t)
	c, err := dial(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := c.do(time.Second, "PING"); err != nil || got != "+PONG" {
		t.Fatalf("PING before Pause = %q, %v", got, err)
	}

	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	_, err = c.do(200*time.Millisecond, "PING")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("PING while paused: err = %v, want a timeout", err)
	}

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	// The PING that timed out is answered first, then the new one.
	for i := range 2 {
		if got, err := c.do(2*time.Second, "PING"); err != nil || got != "+PONG" {
			t.Fatalf("PING %d after Resume = %q, %v", i, got, err)
		}
	}
}

func TestStopPausedServerDoesNotWaitForKill(t *testing.T) {
	t.Parallel()
	srv, err := valkeytest.StartServer(valkeytest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Stop of a paused server took %v: SIGTERM was not delivered", d)
	}
}

func TestKillClosesThePort(t *testing.T) {
	t.Parallel()
	srv := valkeytest.Start(t)
	mustDo(t, srv.Addr(), "+PONG", "PING")
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if got, err := do(srv.Addr(), "PING"); err == nil {
		t.Fatalf("PING after Kill = %q, want an error", got)
	}
	if srv.Pid() != 0 {
		t.Errorf("Pid() after Kill = %d, want 0", srv.Pid())
	}
	if err := srv.Kill(); err != nil {
		t.Errorf("second Kill: %v", err)
	}
	if err := srv.Pause(); !errors.Is(err, valkeytest.ErrNotRunning) {
		t.Errorf("Pause after Kill: %v, want ErrNotRunning", err)
	}
	if _, err := os.Stat(srv.Dir()); err != nil {
		t.Errorf("Kill removed the directory: %v", err)
	}
}

func TestStopTwiceAndRemovesTempDir(t *testing.T) {
	t.Parallel()
	srv, err := valkeytest.StartServer(valkeytest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := do(srv.Addr(), "PING"); err == nil {
		t.Error("PING after Stop succeeded")
	}
	if _, err := os.Stat(srv.Dir()); !os.IsNotExist(err) {
		t.Errorf("Stop left the temporary directory %s: %v", srv.Dir(), err)
	}
	if err := srv.Restart(); !errors.Is(err, valkeytest.ErrStopped) {
		t.Errorf("Restart after Stop: %v, want ErrStopped", err)
	}
	if err := srv.Pause(); !errors.Is(err, valkeytest.ErrStopped) {
		t.Errorf("Pause after Stop: %v, want ErrStopped", err)
	}
}

func TestStopKeepsGivenDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	srv, err := valkeytest.StartServer(valkeytest.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if srv.Dir() != dir {
		t.Errorf("Dir() = %q, want %q", srv.Dir(), dir)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "server.log")); err != nil || len(b) == 0 {
		t.Errorf("log in the given dir after Stop: %d bytes, %v", len(b), err)
	}
}

func TestTwoServersGetDifferentPorts(t *testing.T) {
	t.Parallel()
	a := valkeytest.Start(t, valkeytest.Options{Name: "a"})
	b := valkeytest.Start(t, valkeytest.Options{Name: "b"})
	if a.Port() == b.Port() {
		t.Fatalf("both servers on port %d", a.Port())
	}
	mustDo(t, a.Addr(), "+OK", "SET", "k", "a")
	mustDo(t, b.Addr(), "(nil)", "GET", "k")
	mustDo(t, a.Addr(), "a", "GET", "k")
}

func TestPassword(t *testing.T) {
	t.Parallel()
	srv := valkeytest.Start(t, valkeytest.Options{Password: "s3cret"})
	if got, err := do(srv.Addr(), "PING"); err != nil || !strings.HasPrefix(got, "-NOAUTH") {
		t.Fatalf("PING without AUTH = %q, %v; want -NOAUTH", got, err)
	}
	c, err := dial(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := c.do(time.Second, "AUTH", "s3cret"); err != nil || got != "+OK" {
		t.Fatalf("AUTH = %q, %v", got, err)
	}
	if got, err := c.do(time.Second, "PING"); err != nil || got != "+PONG" {
		t.Fatalf("PING after AUTH = %q, %v", got, err)
	}
}

func TestPasswordThroughArgs(t *testing.T) {
	t.Parallel()
	// The readiness check cannot authenticate and falls back to the log.
	srv := valkeytest.Start(t, valkeytest.Options{Args: []string{"--requirepass", "x"}})
	if got, err := do(srv.Addr(), "PING"); err != nil || !strings.HasPrefix(got, "-NOAUTH") {
		t.Fatalf("PING without AUTH = %q, %v; want -NOAUTH", got, err)
	}
}

func TestArgsArePassed(t *testing.T) {
	t.Parallel()
	srv := valkeytest.Start(t, valkeytest.Options{Args: []string{"--maxmemory", "12345678"}})
	c, err := dial(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// CONFIG GET replies with an array: read its elements one by one.
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$9\r\nmaxmemory\r\n"); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for range 5 { // *2, $9, maxmemory, $8, 12345678
		line, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.TrimSpace(line))
	}
	if lines[4] != "12345678" {
		t.Fatalf("CONFIG GET maxmemory = %q", lines)
	}
}

func TestStartFailureQuotesLog(t *testing.T) {
	t.Parallel()
	_, err := valkeytest.StartServer(valkeytest.Options{Args: []string{"--no-such-directive", "x"}})
	if err == nil {
		t.Fatal("StartServer with a bad directive succeeded")
	}
	if !strings.Contains(err.Error(), "no-such-directive") {
		t.Fatalf("error does not quote the log: %v", err)
	}
}

// A process that already listens on the port and answers PING must not
// be taken for the server.
func TestStartOnTakenPortFails(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer l.Close()
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				info := "# Server\r\nprocess_id:1\r\n"
				_, _ = fmt.Fprintf(c, "+PONG\r\n$%d\r\n%s\r\n", len(info), info)
				_ = c.SetReadDeadline(time.Now().Add(time.Second))
				_, _ = io.Copy(io.Discard, c)
			})
		}
	})
	port := l.Addr().(*net.TCPAddr).Port
	srv, err := valkeytest.StartServer(valkeytest.Options{Port: port})
	if err == nil {
		srv.Stop()
		t.Fatalf("StartServer on a taken port %d succeeded", port)
	}
	if !strings.Contains(strings.ToLower(err.Error()), "in use") {
		t.Fatalf("error does not say the port is in use: %v", err)
	}
}

func TestBinaryFromEnv(t *testing.T) {
	bin, err := valkeytest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Base(bin)
	if base != "valkey-server" && base != "redis-server" {
		t.Errorf("Binary() = %q", bin)
	}

	t.Setenv(valkeytest.BinaryEnv, bin)
	if got, err := valkeytest.Binary(); err != nil || got != bin {
		t.Errorf("with %s=%s: Binary() = %q, %v", valkeytest.BinaryEnv, bin, got, err)
	}

	t.Setenv(valkeytest.BinaryEnv, filepath.Join(t.TempDir(), "no-such-server"))
	if _, err := valkeytest.Binary(); err == nil {
		t.Error("Binary() with a missing VALKEY_SERVER_BIN succeeded")
	}
	if _, err := valkeytest.StartServer(valkeytest.Options{}); err == nil {
		t.Error("StartServer with a missing VALKEY_SERVER_BIN succeeded")
	}
}

func TestNoBinaryErrorNamesBothAndTheScript(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := valkeytest.Binary()
	if !errors.Is(err, valkeytest.ErrNoBinary) {
		t.Fatalf("Binary() with an empty PATH: %v, want ErrNoBinary", err)
	}
	for _, s := range []string{"valkey-server", "redis-server", "scripts/install-server.sh"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}
}

// fakeTB records what Start's cleanup does instead of acting on a test.
type fakeTB struct {
	testing.TB
	failed   bool
	cleanups []func()
	logs     []string
	errs     []string
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Failed() bool      { return f.failed }
func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Logf(format string, args ...any) {
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

func (f *fakeTB) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func TestStartCleanupPrintsLogOnlyWhenFailed(t *testing.T) {
	t.Parallel()
	for _, failed := range []bool{false, true} {
		tb := &fakeTB{TB: t, failed: failed}
		srv := valkeytest.Start(tb, valkeytest.Options{Name: "labelled"})
		log := srv.Log()
		if log == "" {
			t.Fatal("empty server log")
		}
		tb.runCleanups()
		if len(tb.errs) != 0 {
			t.Errorf("cleanup errors: %q", tb.errs)
		}
		if srv.Pid() != 0 {
			t.Errorf("server still running after cleanup: pid %d", srv.Pid())
		}
		if _, err := os.Stat(srv.Dir()); !os.IsNotExist(err) {
			t.Errorf("cleanup left %s: %v", srv.Dir(), err)
		}
		printed := strings.Join(tb.logs, "\n")
		if failed && (!strings.Contains(printed, log) || !strings.Contains(printed, "labelled")) {
			t.Errorf("failed test: cleanup printed %q, want the labelled log %q", printed, log)
		}
		if !failed && len(tb.logs) != 0 {
			t.Errorf("passing test: cleanup printed %q", tb.logs)
		}
	}
}

// Not parallel: it counts goroutines, so it runs alone.
func TestNothingRunsAfterStop(t *testing.T) {
	before := runtime.NumGoroutine()
	srv, err := valkeytest.StartServer(valkeytest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	// The reaper closes its channel as its last step; give it the moment
	// it needs to return.
	deadline := time.Now().Add(time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before StartServer, %d after Stop:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}
