package glide

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vactor-io/vactor/drivers"
)

// probe runs before each glide dial, so that the dials glide would
// retry until its connection timeout fail at once with what is wrong,
// as with valkey-go:
//
//   - a refused TCP connection: glide retries it until DialTimeout and
//     then says "timed out"; the probe's connect fails at once with
//     ECONNREFUSED.
//
//   - a client name (o.ClientName; the engine's default is "vactor")
//     the ACL user may not set: glide sets the name with CLIENT SETNAME
//     after HELLO (valkey-go sets it inside HELLO, which any user may
//     send), and retries the whole handshake on its NOPERM until
//     DialTimeout. When a name is set, the probe authenticates as the
//     dial will (AUTH) and sends CLIENT SETNAME itself: a NOPERM reply
//     fails the dial at once with the server's reply (a refusedError,
//     which the engine reports as it reports a refused handshake).
//
//   - with TLS, a failed TLS handshake (a certificate the client does
//     not trust, expired or for another name; the server's refusal of
//     the client's certificate, which TLS 1.3 reports at the first
//     read): glide retries it until DialTimeout and then says "timed
//     out"; the probe makes the handshake (and one round trip, a PING
//     when no client name is set) and fails with crypto/tls's error, so
//     the engine says what is wrong as it does with valkey-go.
//
//   - a server at its maxclients limit answers the first command with
//     "-ERR max number of clients reached" and closes: glide retries
//     until DialTimeout and then says "timed out"; the probe fails at
//     once with the server's reply (a refusedError). It sends PING when
//     no client name is set.
//
// Every other outcome of the second step (a refused AUTH, a timeout) is
// left to glide's own dial, which reports it as before. Cost: one more
// TCP connection per dial and one round trip on it (and a TLS handshake
// with TLS).
func probe(ctx context.Context, o drivers.Options, user, pass string) error {
	err := probeOnce(ctx, o, user, pass, false)
	if errors.Is(err, errResetAfterTLS) {
		// The server reset the connection right after the TLS handshake:
		// a server that refuses the client's certificate sends its alert
		// and closes, and the request the probe had written, unread,
		// turns the close into a reset that may discard the alert. Listen
		// first on a second connection, writing nothing.
		err = probeOnce(ctx, o, user, pass, true)
	}
	if errors.Is(err, errResetAfterTLS) {
		return nil // glide's dial reports it
	}
	return err
}

// errResetAfterTLS: the connection was reset or closed after the TLS
// handshake, before any reply.
var errResetAfterTLS = errors.New("connection reset after the TLS handshake")

// probeOnce dials o.Addr and checks it (handshakeRefused); with listen,
// after the TLS handshake it only reads, for a short while, an alert the
// server would send (listenForAlert).
func probeOnce(ctx context.Context, o drivers.Options, user, pass string, listen bool) error {
	d := net.Dialer{Timeout: o.DialTimeout}
	c, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return handshakeRefused(ctx, c, o, user, pass, listen)
}

// listenForAlert bounds the read of listen: a server that refuses the
// client's certificate sends its alert as soon as the handshake ends.
const listenForAlert = 500 * time.Millisecond

// handshakeRefused returns crypto/tls's error when the TLS handshake on c
// fails, or the server ends it with an alert at the first round trip, and
// a refusedError when the server refuses CLIENT SETNAME o.ClientName to
// user with NOPERM; nil otherwise.
func handshakeRefused(ctx context.Context, c net.Conn, o drivers.Options, user, pass string, listen bool) error {
	deadline := time.Now().Add(defaultTimeout)
	if o.DialTimeout > 0 {
		deadline = time.Now().Add(o.DialTimeout)
	}
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if o.TLS != nil {
		host, _, _ := net.SplitHostPort(o.Addr)
		tc := o.TLS.Clone()
		if tc.ServerName == "" {
			tc.ServerName = host
		}
		t := tls.Client(c, tc)
		if err := t.HandshakeContext(ctx); err != nil {
			if isTimeout(err) {
				return nil // glide's dial reports it (as valkey-go's: no answer)
			}
			return err
		}
		c = t
		if listen {
			_ = c.SetReadDeadline(time.Now().Add(listenForAlert))
			_, err := c.Read(make([]byte, 1))
			return alertOnly(err)
		}
	}
	tlsOn := o.TLS != nil
	if o.ClientName == "" { // one round trip shows a refused client certificate, a full server
		if _, err := c.Write(appendCommand(nil, "PING")); err != nil {
			return alertOrReset(err, tlsOn)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return alertOrReset(err, tlsOn)
		}
		return full(line)
	}
	var req []byte
	if pass != "" {
		if user != "" {
			req = appendCommand(req, "AUTH", user, pass)
		} else {
			req = appendCommand(req, "AUTH", pass)
		}
	}
	req = appendCommand(req, "CLIENT", "SETNAME", o.ClientName)
	if _, err := c.Write(req); err != nil {
		return alertOrReset(err, tlsOn)
	}
	r := bufio.NewReader(c)
	if pass != "" {
		line, err := r.ReadString('\n')
		if err != nil {
			return alertOrReset(err, tlsOn)
		}
		if !strings.HasPrefix(line, "+") {
			return full(line) // else glide's dial reports a refused AUTH
		}
	}
	line, err := r.ReadString('\n')
	if err != nil {
		if pass != "" {
			return alertOnly(err) // a reply came: not the handshake's refusal
		}
		return alertOrReset(err, tlsOn)
	}
	text, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "-")
	if !ok || !strings.HasPrefix(text, "NOPERM") {
		return full(line)
	}
	return &refusedError{
		err: fmt.Errorf("the server refused CLIENT SETNAME %q, which glide sends after HELLO when a client name is set "+
			"(give the ACL user +client|setname, or set no ClientName): %s", o.ClientName, text),
		reply: drivers.ToValkey([]drivers.Result{{Value: drivers.Error(text)}})[0].Error(),
	}
}

// full returns a refusedError when line is the error reply of a server at
// its maxclients limit ("-ERR max number of clients reached", sent before
// it closes the connection; glide retries the dial until DialTimeout and
// then says "timed out"), nil otherwise.
func full(line string) error {
	text, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "-")
	if !ok || !strings.Contains(text, "max number of clients") {
		return nil
	}
	return &refusedError{
		err:   fmt.Errorf("the server refused the connection: %s", text),
		reply: drivers.ToValkey([]drivers.Result{{Value: drivers.Error(text)}})[0].Error(),
	}
}

// alertOnly returns err when it is a TLS alert the server ended the
// connection with (crypto/tls's *net.OpError "remote error"), nil for any
// other error, which glide's dial reports itself.
func alertOnly(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		return err
	}
	return nil
}

// alertOrReset is alertOnly, except that with TLS a reset or closed
// connection before any reply is errResetAfterTLS (see probe).
func alertOrReset(err error, tlsOn bool) error {
	if a := alertOnly(err); a != nil || !tlsOn {
		return a
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) {
		return errResetAfterTLS
	}
	return nil
}

// isTimeout reports whether err is a timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// appendCommand appends args to b as a RESP array of bulk strings.
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
