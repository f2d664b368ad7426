package valkeygo

import (
	"crypto/tls"
	"errors"
	"net"
	"sync/atomic"
	"time"
)

// With TLS 1.3 the client's side of the handshake is done before the
// server has checked the client's certificate: a server that requires a
// certificate the client did not send (or refuses the one it sent) says
// so with an alert after the handshake, and closes the connection. The
// client's first write, valkey-go's HELLO, then often fails with
// "connection reset by peer", and the alert, still readable, is never
// read: the cause is lost. alertConn reads it in that case.

// alertWait bounds the read of a pending alert after a failed write. The
// alert, if any, arrived before the reset that failed the write, so the
// read returns at once; the bound only guards against a connection that
// is not dead after all.
const alertWait = 100 * time.Millisecond

// alertConn is the TLS connection the driver gives valkey-go. Until the
// first byte of a reply arrived, a failed Write reads what the server
// sent and returns the alert it finds (crypto/tls's "remote error: tls:
// ..." *net.OpError) instead of the write's error. Afterwards it only
// passes calls through (an atomic load per Read and on failed Writes).
type alertConn struct {
	*tls.Conn
	replied atomic.Bool
	first   *firstRead // the first bytes read, while dialling (refusal.go)
}

// Read implements net.Conn.
func (c *alertConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.replied.Load() {
		c.replied.Store(true)
		c.first.note(b[:n])
	}
	return n, err
}

// Write implements net.Conn.
func (c *alertConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil && !c.replied.Load() {
		if alert := c.pendingAlert(); alert != nil {
			return n, alert
		}
	}
	return n, err
}

// pendingAlert returns the alert the server sent before the connection
// failed, or nil.
func (c *alertConn) pendingAlert() error {
	if c.Conn.SetReadDeadline(time.Now().Add(alertWait)) != nil {
		return nil
	}
	var buf [1]byte
	_, err := c.Conn.Read(buf[:])
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		return err
	}
	return nil
}
