package valkeytest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// The readiness probe speaks just enough RESP by hand to tell whether the
// server on a port is up and is the process we started. It is test tooling,
// not a client.

const (
	probeDialTimeout = 250 * time.Millisecond
	probeIOTimeout   = 500 * time.Millisecond
)

type probeResult int

const (
	probeNotReady probeResult = iota // not answering, loading, or another process
	probeReady                       // answers PING and INFO shows our process id
	probeNoAuth                      // answers, but wants a password we do not have
)

// probe sends [AUTH ...] PING and INFO server to the server, over TLS
// when it serves TLS, and reports whether it is ready. The process id
// check guards against a port that another process took between picking
// it and the server binding it: that server would answer PING while ours
// fails to start.
func (s *Server) probe(pid int) probeResult {
	conn, err := s.dialRaw(probeDialTimeout)
	if err != nil {
		return probeNotReady
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(probeIOTimeout)); err != nil {
		return probeNotReady
	}
	var req []byte
	auth := s.authCommand()
	if auth != nil {
		req = appendCommand(req, auth...)
	}
	req = appendCommand(req, "PING")
	req = appendCommand(req, "INFO", "server")
	if _, err := conn.Write(req); err != nil {
		return probeNotReady
	}
	r := bufio.NewReader(conn)
	if auth != nil {
		// A failed AUTH shows again as -NOAUTH on PING.
		if _, err := readReply(r); err != nil {
			return probeNotReady
		}
	}
	ping, err := readReply(r)
	if err != nil {
		return probeNotReady
	}
	if strings.HasPrefix(ping, "-NOAUTH") {
		return probeNoAuth
	}
	if ping != "+PONG" {
		return probeNotReady // -LOADING and the like
	}
	info, err := readReply(r)
	if err != nil {
		return probeNotReady
	}
	if strings.Contains(info, "\nprocess_id:"+strconv.Itoa(pid)+"\r\n") {
		return probeReady
	}
	return probeNotReady
}

// appendCommand appends args encoded as a RESP array of bulk strings.
func appendCommand(b []byte, args ...string) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}

var errProtocol = errors.New("valkeytest: unexpected reply")

// readReply reads one simple reply: a simple string or error, returned
// with its type byte ("+PONG", "-ERR ..."), or a bulk string, returned as
// "\n" followed by its payload so that line searches also match its first
// line. Arrays and other types are not needed by the probe.
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errProtocol
	}
	switch line[0] {
	case '+', '-':
		return line, nil
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("%w: %q", errProtocol, line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return "\n" + string(buf[:n]), nil
	default:
		return "", fmt.Errorf("%w: %q", errProtocol, line)
	}
}
