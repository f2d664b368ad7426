package valkeytest_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/valkeytest"
)

const pxIOTimeout = 5 * time.Second // bounds every read that should succeed

// pxConn speaks RESP by hand over one connection.
type pxConn struct {
	net.Conn
	r *bufio.Reader
}

func pxDial(t *testing.T, addr string) *pxConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, pxIOTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &pxConn{Conn: c, r: bufio.NewReader(c)}
}

func pxCommand(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// send writes one command.
func (c *pxConn) send(args ...string) error {
	if err := c.SetWriteDeadline(time.Now().Add(pxIOTimeout)); err != nil {
		return err
	}
	_, err := io.WriteString(c, pxCommand(args...))
	return err
}

// reply reads one reply within timeout: a simple string or error with its
// type byte ("+PONG"), an integer with its (":1"), a bulk string as its
// payload.
func (c *pxConn) reply(timeout time.Duration) (string, error) {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if !strings.HasPrefix(line, "$") {
		return line, nil
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 {
		return "", fmt.Errorf("bulk header %q", line)
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(c.r, buf); err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// do sends one command and reads its reply within timeout.
func (c *pxConn) do(timeout time.Duration, args ...string) (string, error) {
	if err := c.send(args...); err != nil {
		return "", err
	}
	return c.reply(timeout)
}

// must runs one command and fails the test unless the reply is want.
func (c *pxConn) must(t *testing.T, want string, args ...string) {
	t.Helper()
	got, err := c.do(pxIOTimeout, args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	if got != want {
		t.Fatalf("%v = %q, want %q", args, got, want)
	}
}

// timed runs one command and returns how long it took.
func (c *pxConn) timed(t *testing.T, want string, args ...string) time.Duration {
	t.Helper()
	start := time.Now()
	c.must(t, want, args...)
	return time.Since(start)
}

// fastest returns the shortest of n round trips of PING, so that one
// scheduling hiccup on a loaded machine does not count.
func (c *pxConn) fastest(t *testing.T, n int) time.Duration {
	t.Helper()
	best := time.Duration(1<<63 - 1)
	for range n {
		best = min(best, c.timed(t, "+PONG", "PING"))
	}
	return best
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// mustFail fails the test unless err reports a broken connection: a reset
// or EOF, not a timeout and not success.
func mustFail(t *testing.T, what string, got string, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("%s = %q, want a connection error", what, got)
	case isTimeout(err):
		t.Fatalf("%s: timed out, want the connection closed: %v", what, err)
	case !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF):
		t.Fatalf("%s: %v, want a reset or EOF", what, err)
	}
}

func TestProxyPassesThrough(t *testing.T) {
	t.Parallel()
	srv := valkeytest.Start(t)
	p := valkeytest.ProxyFor(t, srv.Addr())

	host, port, err := net.SplitHostPort(p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if host != "127.0.0.1" || port == "0" || port == strconv.Itoa(srv.Port()) {
		t.Fatalf("Addr() = %q, server on %q", p.Addr(), srv.Addr())
	}
	if p.Upstream() != srv.Addr() {
		t.Fatalf("Upstream() = %q, want %q", p.Upstream(), srv.Addr())
	}
	c := pxDial(t, p.Addr())
	c.must(t, "+PONG", "PING")
	c.must(t, "+OK", "SET", "k", "through the proxy")
	pxDial(t, srv.Addr()).must(t, "through the proxy", "GET", "k")
}

func TestProxyLatency(t *testing.T) {
	t.Parallel()
	srv := valkeytest.Start(t)
	p := valkeytest.ProxyFor(t, srv.Addr())
	c := pxDial(t, p.Addr()) // open before the toxic: it applies to it too

	if err := p.Latency(time.Second); err != nil {
		t.Fatal(err)
	}
	// Setting it again replaces it.
	if err := p.Latency(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for _, conn := range []*pxConn{c, pxDial(t, p.Addr())} {
		if d := conn.timed(t, "+PONG", "PING"); d < 100*time.Millisecond || d >= time.Second {
			t.Fatalf("PING with 100ms latency took %v", d)
		}
	}

	if err := p.RemoveToxics(); err != nil {
		t.Fatal(err)
	}
	if d := c.fastest(t, 5); d >= 50*time.Millisecond {
		t.Fatalf("PING after RemoveToxics took %v", d)
	}
	// Latency can also be removed on its own, and removing it twice is
	// not an error.
	if err := p.Latency(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := p.RemoveToxic(valkeytest.ToxicLatency); err != nil {
			t.Fatal(err)
		}
	}
	if d := c.fastest(t, 5); d >= 50*time.Millisecond {
		t.Fatalf("PING after RemoveToxic took %v", d)
	}
}

func TestProxyTimeoutZeroBlackholes(t *testing.T) {
	t.Parallel()
	srv := valkeytest.Start(t)
	p := valkeytest.ProxyFor(t, srv.Addr())
	direct := pxDial(t, srv.Addr())
	direct.must(t, "+OK", "SET", "n", "0")
	old := pxDial(t, p.Addr())
	old.must(t, "+PONG", "PING")

	if err := p.Timeout(0); err != nil {
		t.Fatal(err)
	}
	for i, c := range []*pxConn{old, pxDial(t, p.Addr())} {
		got, err := c.do(300*time.Millisecond, "INCR", "n")
		if !isTimeout(err) {
			t.Fatalf("connection %d: INCR through a blackhole = %q, %v; want a read timeout", i, got, err)
		}
	}
	// Requests are dropped too, not only replies.
	direct.must(t, "0", "GET", "n")

	// Removing the toxic closes the connections it held, and new ones
	// work again.
	if err := p.RemoveToxics(); err != nil {
		t.Fatal(err)
	}
	got, err := old.reply(pxIOTimeout)
	mustFail(t, "read on a blackholed connection after RemoveToxics", got, err)
	pxDial(t, p.Addr()).must(t, "+PONG", "PING")
}

func TestProxyTimeoutClosesAfterDuration(t *testing.T) {
	t.Parallel()
	srv := valkeytest.Start(t)
	p := valkeytest.ProxyFor(t, srv.Addr())

	const d = 200 * time.Millisecond
	if err := p.Timeout(d); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c := pxDial(t, p.Addr())
	got, err := c.do(pxIOTimeout, "PING")
	mustFail(t, "PING with Timeout(200ms)", got, err)
	if elapsed := time.Since(start); elapsed < d {
		t.Fatalf("connection closed after %v, want at least %v", elapsed, d)
	}
}

func TestProxyResetPeer(t *testing.T) {
	t.Parallel()
	srv := valkeytest.Start(t)
	p := valkeytest.ProxyFor(t, srv.Addr())
	direct := pxDial(t, srv.Addr())
	direct.must(t, "+OK", "SET", "n", "0")

	if err := p.ResetPeer(0); err != nil {
		t.Fatal(err)
	}
	got, err := pxDial(t, p.Addr()).do(pxIOTimeout, "INCR", "n")
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("INCR through ResetPeer(0) = %q, %v; want connection reset", got, err)
	}

	const after = 200 * time.Millisecond
	if err := p.ResetPeer(after); err != nil {
		t.Fatal(err)
	}
	c := pxDial(t, p.Addr())
	start := time.Now()
	got, err = c.do(pxIOTimeout, "INCR", "n")
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("INCR through ResetPeer(200ms) = %q, %v; want connection reset", got, err)
	}
	if elapsed := time.Since(start); elapsed < after {
		t.Fatalf("connection reset after %v, want at least %v", elapsed, after)
	}
	// The request that met the reset never reached the server.
	direct.must(t, "0", "GET", "n")

	if err := p.RemoveToxic(valkeytest.ToxicResetPeer); err != nil {
		t.Fatal(err)
	}
	pxDial(t, p.Addr()).must(t, ":1", "INCR", "n")
}

func TestProxyBandwidth(t *testing.T) {
	t.Parallel()
	srv := valkeytest.Start(t)
	p := valkeytest.ProxyFor(t, srv.Addr())
	const size = 100_000
	value := strings.Repeat("v", size)
	pxDial(t, srv.Addr()).must(t, "+OK", "SET", "big", value)
	c := pxDial(t, p.Addr())
	c.must(t, value, "GET", "big")

	const rate = 500 // KB/s: 100 KB take 200ms
	if err := p.Bandwidth(rate); err != nil {
		t.Fatal(err)
	}
	want := time.Duration(size) * time.Second / (rate * 1000)
	if d := c.timed(t, value, "GET", "big"); d < want*9/10 {
		t.Fatalf("GET of %d bytes at %d KB/s took %v, want at least %v", size, rate, d, want*9/10)
	}

	if err := p.RemoveToxic(valkeytest.ToxicBandwidth); err != nil {
		t.Fatal(err)
	}
	best := time.Duration(1<<63 - 1)
	for range 3 {
		best = min(best, c.timed(t, value, "GET", "big"))
	}
	if best >= want/2 {
		t.Fatalf("GET of %d bytes without a limit took %v", size, best)
	}
}

func TestProxyResetAfterWrite(t *testing.T) {
	t.Parallel()
	srv := valkeytest.Start(t)
	p := valkeytest.ProxyFor(t, srv.Addr())
	direct := pxDial(t, srv.Addr())
	direct.must(t, "+OK", "SET", "counter", "0")
	old := pxDial(t, p.Addr())
	old.must(t, "+PONG", "PING")

	if err := p.ResetAfterWrite(); err != nil {
		t.Fatal(err)
	}
	// A connection opened after the toxic is reset.
	got, err := pxDial(t, p.Addr()).do(pxIOTimeout, "INCR", "counter")
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("INCR through ResetAfterWrite = %q, %v; want connection reset", got, err)
	}
	direct.must(t, "1", "GET", "counter")

	// So is one that was open already.
	got, err = old.do(pxIOTimeout, "INCR", "counter")
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("INCR on an open connection through ResetAfterWrite = %q, %v; want connection reset", got, err)
	}
	direct.must(t, "2", "GET", "counter")

	if err := p.RemoveToxic(valkeytest.ToxicResetAfterWrite); err != nil {
		t.Fatal(err)
	}
	pxDial(t, p.Addr()).must(t, ":3", "INCR", "counter")
}

func TestProxyDisableEnable(t *testing.T) {
	t.Parallel()
	srv := valkeytest.Start(t)
	p := valkeytest.ProxyFor(t, srv.Addr())
	c := pxDial(t, p.Addr())
	c.must(t, "+PONG", "PING")

	for range 2 { // disabling twice is not an error
		if err := p.Disable(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.do(pxIOTimeout, "PING")
	mustFail(t, "PING on a connection open before Disable", got, err)
	if conn, err := net.DialTimeout("tcp", p.Addr(), pxIOTimeout); err == nil {
		conn.Close()
		t.Fatalf("dial %s: a disabled proxy accepted a connection", p.Addr())
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial a disabled proxy: %v, want connection refused", err)
	}

	addr := p.Addr()
	for range 2 { // enabling twice is not an error
		if err := p.Enable(); err != nil {
			t.Fatal(err)
		}
	}
	if p.Addr() != addr {
		t.Fatalf("Addr() = %q after Enable, was %q", p.Addr(), addr)
	}
	pxDial(t, p.Addr()).must(t, "+PONG", "PING")
}

func TestProxyRejectsBadArguments(t *testing.T) {
	t.Parallel()
	if _, err := valkeytest.StartProxy("no port"); err == nil {
		t.Fatal("StartProxy with an address without a port succeeded")
	}
	p, err := valkeytest.StartProxy("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for name, err := range map[string]error{
		"Latency(-1)":   p.Latency(-1),
		"Timeout(-1)":   p.Timeout(-1),
		"ResetPeer(-1)": p.ResetPeer(-1),
		"Bandwidth(0)":  p.Bandwidth(0),
	} {
		if err == nil {
			t.Errorf("%s succeeded", name)
		}
	}
}

// Not parallel: goleak must see only this test's goroutines. It drives
// the proxy through the cases in which stock toxiproxy leaves goroutines
// blocked: a client that resets its connection while a reply is on its
// way, and a reset toxic that closes a connection while more data comes.
func TestProxyCloseLeavesNothingRunning(t *testing.T) {
	srv := valkeytest.Start(t)
	direct := pxDial(t, srv.Addr())
	big := strings.Repeat("v", 1<<20)
	direct.must(t, "+OK", "SET", "big", big)
	snapshot := goleak.IgnoreCurrent()

	p, err := valkeytest.StartProxy(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		c := pxDial(t, p.Addr())
		if err := c.send("GET", "big"); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c.r, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		if err := c.Conn.(*net.TCPConn).SetLinger(0); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	idle := pxDial(t, p.Addr())
	idle.must(t, "+PONG", "PING")
	if err := p.Latency(time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := p.Bandwidth(100_000); err != nil {
		t.Fatal(err)
	}
	slow := pxDial(t, p.Addr())
	slow.must(t, big, "GET", "big")

	if err := p.ResetAfterWrite(); err != nil {
		t.Fatal(err)
	}
	// A pipeline of large replies, lost.
	var pipeline strings.Builder
	for range 20 {
		pipeline.WriteString(pxCommand("GET", "big"))
	}
	burst := pxDial(t, p.Addr())
	if _, err := io.WriteString(burst, pipeline.String()); err != nil {
		t.Fatal(err)
	}
	got, err := burst.reply(pxIOTimeout)
	mustFail(t, "pipelined GET through ResetAfterWrite", got, err)

	if err := p.Timeout(0); err != nil {
		t.Fatal(err)
	}
	blackholed := pxDial(t, p.Addr())
	if err := blackholed.send("PING"); err != nil {
		t.Fatal(err)
	}

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, c := range []*pxConn{idle, slow, blackholed} {
		got, err := c.reply(pxIOTimeout)
		mustFail(t, "read after Close", got, err)
	}
	if conn, err := net.DialTimeout("tcp", p.Addr(), pxIOTimeout); err == nil {
		conn.Close()
		t.Fatal("a closed proxy accepted a connection")
	}
	for name, err := range map[string]error{
		"Latency":      p.Latency(time.Millisecond),
		"RemoveToxic":  p.RemoveToxic(valkeytest.ToxicLatency),
		"RemoveToxics": p.RemoveToxics(),
		"Enable":       p.Enable(),
		"Disable":      p.Disable(),
	} {
		if !errors.Is(err, valkeytest.ErrProxyClosed) {
			t.Errorf("%s after Close: %v, want ErrProxyClosed", name, err)
		}
	}
	goleak.VerifyNone(t, snapshot)
}
