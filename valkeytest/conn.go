package valkeytest

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// The tooling (cluster forming, sentinel checks, Do) speaks RESP2 by hand
// over short-lived connections, like the readiness probe: it is test
// tooling, not a client. Over TLS it presents the client certificate of
// the server's Certs and does not verify the server's certificate, so that
// it also reaches servers started with a bad one on purpose.

const (
	toolDialTimeout = 500 * time.Millisecond // dialing a server, TLS handshake and AUTH included
	toolIOTimeout   = 5 * time.Second        // any single reply
	respMaxDepth    = 16                     // nesting of RESP arrays read
)

// replyError is an error reply, its text as the server sent it.
type replyError string

func (e replyError) Error() string { return string(e) }

// replyErr returns the reply as an error when it is an error reply.
func replyErr(r any) error {
	if e, ok := r.(replyError); ok {
		return e
	}
	return nil
}

// toolConn is one connection to a server, for pipelines.
type toolConn struct {
	net.Conn
	r     *bufio.Reader
	label string
}

// dialRaw connects to the server, over TLS when it serves TLS, without
// authenticating.
func (s *Server) dialRaw(timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.Dial("tcp", s.Addr())
	if err != nil {
		return nil, err
	}
	if s.opts.TLS == nil {
		return conn, nil
	}
	tc := tls.Client(conn, s.opts.TLS.toolConfig())
	if err := tc.SetDeadline(time.Now().Add(timeout)); err != nil {
		conn.Close()
		return nil, err
	}
	if err := tc.Handshake(); err != nil {
		conn.Close()
		return nil, err
	}
	if err := tc.SetDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

// dial connects to the server and authenticates with its credentials
// (Options.Username and Options.Password, or the password set since).
func (s *Server) dial() (*toolConn, error) {
	conn, err := s.dialRaw(toolDialTimeout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.label(), err)
	}
	cc := &toolConn{Conn: conn, r: bufio.NewReaderSize(conn, 64<<10), label: s.label()}
	if auth := s.authCommand(); auth != nil {
		if err := cc.pipelineOK([][]string{auth}, toolIOTimeout); err != nil {
			cc.Close()
			return nil, err
		}
	}
	return cc, nil
}

// pipeline writes every command, then reads every reply. Error replies
// come back as replyError values; the error is for I/O and protocol
// failures. Each reply must arrive within timeout.
func (cc *toolConn) pipeline(cmds [][]string, timeout time.Duration) ([]any, error) {
	var buf []byte
	for _, cmd := range cmds {
		buf = appendCommand(buf, cmd...)
	}
	if err := cc.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, fmt.Errorf("%s: %w", cc.label, err)
	}
	if _, err := cc.Write(buf); err != nil {
		return nil, fmt.Errorf("%s: %w", cc.label, err)
	}
	replies := make([]any, len(cmds))
	for i := range cmds {
		if err := cc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return nil, fmt.Errorf("%s: %w", cc.label, err)
		}
		r, err := readValue(cc.r, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", cc.label, commandText(cmds[i]), err)
		}
		replies[i] = r
	}
	return replies, nil
}

// pipelineOK runs a pipeline and fails on the first error reply.
func (cc *toolConn) pipelineOK(cmds [][]string, timeout time.Duration) error {
	replies, err := cc.pipeline(cmds, timeout)
	if err != nil {
		return err
	}
	for i, r := range replies {
		if err := replyErr(r); err != nil {
			return fmt.Errorf("%s: %s: %w", cc.label, commandText(cmds[i]), err)
		}
	}
	return nil
}

// commandText is a command as errors quote it: AUTH's arguments and the
// passwords of ACL SETUSER and CONFIG SET requirepass are left out.
func commandText(cmd []string) string {
	if len(cmd) == 0 {
		return ""
	}
	switch strings.ToUpper(cmd[0]) {
	case "AUTH":
		return "AUTH [redacted]"
	case "ACL", "CONFIG", "MIGRATE":
		var b strings.Builder
		for i, a := range cmd {
			if i > 0 {
				b.WriteByte(' ')
			}
			switch {
			case strings.HasPrefix(a, ">") || strings.HasPrefix(a, "<") || strings.HasPrefix(a, "#"):
				b.WriteString(a[:1] + "[redacted]")
			case i > 0 && (strings.EqualFold(cmd[i-1], "requirepass") || strings.EqualFold(cmd[i-1], "masterauth") ||
				strings.EqualFold(cmd[i-1], "AUTH") || strings.EqualFold(cmd[i-1], "AUTH2") ||
				(i > 1 && strings.EqualFold(cmd[i-2], "AUTH2"))):
				b.WriteString("[redacted]")
			default:
				b.WriteString(a)
			}
		}
		return b.String()
	}
	return strings.Join(cmd, " ")
}

func (s *Server) pipeline(cmds [][]string, timeout time.Duration) ([]any, error) {
	cc, err := s.dial()
	if err != nil {
		return nil, err
	}
	defer cc.Close()
	return cc.pipeline(cmds, timeout)
}

func (s *Server) pipelineOK(cmds [][]string, timeout time.Duration) error {
	cc, err := s.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	return cc.pipelineOK(cmds, timeout)
}

// do runs one command on a new connection; an error reply is the error.
func (s *Server) do(timeout time.Duration, args ...string) (any, error) {
	replies, err := s.pipeline([][]string{args}, timeout)
	if err != nil {
		return nil, err
	}
	if err := replyErr(replies[0]); err != nil {
		return nil, err
	}
	return replies[0], nil
}

// Do runs one command on the server over a new connection (TLS when the
// server serves TLS, authenticated with the server's credentials) and
// returns the reply: a simple or bulk string as string, an integer as
// int64, a null as nil, an array as []any of those. An error reply is
// returned as an error whose text is the server's ("MOVED 3999
// 127.0.0.1:41234"). Safe for concurrent use.
func (s *Server) Do(args ...string) (any, error) {
	return s.do(toolIOTimeout, args...)
}

// Role asks the server (ROLE) and returns [RolePrimary], [RoleReplica],
// or what the server said otherwise ("sentinel").
func (s *Server) Role() (string, error) {
	r, err := s.do(toolIOTimeout, "ROLE")
	if err != nil {
		return "", fmt.Errorf("%s: ROLE: %w", s.label(), err)
	}
	arr, _ := r.([]any)
	if len(arr) == 0 {
		return "", fmt.Errorf("%s: ROLE = %v: %w", s.label(), r, errProtocol)
	}
	switch role, _ := arr[0].(string); role {
	case "master":
		return RolePrimary, nil
	case "slave", "replica":
		return RoleReplica, nil
	default:
		return role, nil
	}
}

// info runs INFO section and returns its text.
func (s *Server) info(section string) (string, error) {
	r, err := s.do(toolIOTimeout, "INFO", section)
	if err != nil {
		return "", err
	}
	text, ok := r.(string)
	if !ok {
		return "", fmt.Errorf("%s: INFO %s = %v: %w", s.label(), section, r, errProtocol)
	}
	return text, nil
}

// readValue reads one RESP2 reply: a simple string or bulk string as
// string, an error as replyError, an integer as int64, a null as nil, an
// array as []any.
func readValue(r *bufio.Reader, depth int) (any, error) {
	if depth > respMaxDepth {
		return nil, fmt.Errorf("%w: arrays nested too deep", errProtocol)
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line, ok := strings.CutSuffix(line, "\r\n")
	if !ok || line == "" {
		return nil, fmt.Errorf("%w: %q", errProtocol, line)
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return replyError(line[1:]), nil
	case ':':
		n, err := strconv.ParseInt(line[1:], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: %q", errProtocol, line)
		}
		return n, nil
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, fmt.Errorf("%w: %q", errProtocol, line)
		}
		if n < 0 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		if buf[n] != '\r' || buf[n+1] != '\n' {
			return nil, fmt.Errorf("%w: bulk string not ended by CRLF", errProtocol)
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, fmt.Errorf("%w: %q", errProtocol, line)
		}
		if n < 0 {
			return nil, nil
		}
		arr := make([]any, n)
		for i := range arr {
			if arr[i], err = readValue(r, depth+1); err != nil {
				return nil, err
			}
		}
		return arr, nil
	default:
		return nil, fmt.Errorf("%w: %q", errProtocol, line)
	}
}

// fields turns a flat RESP2 array of alternating names and values (as
// SENTINEL MASTER returns) into a map.
func fields(r any) (map[string]string, error) {
	arr, ok := r.([]any)
	if !ok || len(arr)%2 != 0 {
		return nil, fmt.Errorf("%w: want a list of name/value pairs, got %v", errProtocol, r)
	}
	m := make(map[string]string, len(arr)/2)
	for i := 0; i < len(arr); i += 2 {
		k, _ := arr[i].(string)
		switch v := arr[i+1].(type) {
		case string:
			m[k] = v
		case int64:
			m[k] = strconv.FormatInt(v, 10)
		}
	}
	return m, nil
}
