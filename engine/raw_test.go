package engine_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// rawConn is a minimal RESP client for checking server state from tests
// independently of the engine.
type raw struct {
	c net.Conn
	r *bufio.Reader
}

func rawConn(t testing.TB, addr string) *raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &raw{c: c, r: bufio.NewReader(c)}
}

// cmd sends a command and returns its reply's first line (integers as
// ":n", simple strings as "+s", bulk strings as their content, nil as "nil").
func (r *raw) cmd(t testing.TB, args ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_ = r.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.c.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	line, err := r.r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "$") {
		if line == "$-1" {
			return "nil"
		}
		var n int
		fmt.Sscanf(line[1:], "%d", &n)
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r.r, buf); err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	return line
}
