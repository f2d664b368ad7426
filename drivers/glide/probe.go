package glide

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
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
//   - a client name (o.ClientName; the engine's default is "vactor")
//     the ACL user may not set: glide sets the name with CLIENT SETNAME
//     after HELLO (valkey-go sets it inside HELLO, which any user may
//     send), and retries the whole handshake on its NOPERM until
//     DialTimeout. When a name is set, the probe authenticates as the
//     dial will (AUTH) and sends CLIENT SETNAME itself: a NOPERM reply
//     fails the dial at once with the server's reply (a refusedError,
//     which the engine reports as it reports a refused handshake).
//
// Every other outcome of the second step (a refused AUTH, a failed TLS
// handshake, a timeout) is left to glide's own dial, which reports it as
// before. Cost: one more TCP connection per dial, and with a client name
// one round trip on it (and a TLS handshake with TLS).
func probe(ctx context.Context, o drivers.Options, user, pass string) error {
	d := net.Dialer{Timeout: o.DialTimeout}
	c, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if o.ClientName == "" {
		return nil
	}
	return setnameRefused(ctx, c, o, user, pass)
}

// setnameRefused returns a refusedError when the server refuses CLIENT
// SETNAME o.ClientName to user on c with NOPERM, nil otherwise.
func setnameRefused(ctx context.Context, c net.Conn, o drivers.Options, user, pass string) error {
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
			return nil // glide's dial reports it
		}
		c = t
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
		return nil
	}
	r := bufio.NewReader(c)
	if pass != "" {
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+") {
			return nil // glide's dial reports a refused AUTH
		}
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return nil
	}
	text, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "-")
	if !ok || !strings.HasPrefix(text, "NOPERM") {
		return nil
	}
	return &refusedError{
		err: fmt.Errorf("the server refused CLIENT SETNAME %q, which glide sends after HELLO when a client name is set "+
			"(give the ACL user +client|setname, or set no ClientName): %s", o.ClientName, text),
		reply: drivers.ToValkey([]drivers.Result{{Value: drivers.Error(text)}})[0].Error(),
	}
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
