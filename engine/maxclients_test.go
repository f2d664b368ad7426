package engine_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// A server at its maxclients limit answers a new connection with
// "-ERR max number of clients reached" and closes it. valkey-go reported
// only the EOF of its pipelined handshake: New said "the server closed
// the connection during the handshake" with three guesses. The server's
// reply is now the error: a *ServerError, and a Reason that names the
// limit. Over TLS the server closes the connection in the TLS handshake
// without a reply: the Reason names the limit among its guesses.
func TestNewAtMaxClients(t *testing.T) {
	certs := valkeytest.NewCertsT(t)
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"plain", false}, {"TLS", true}} {
		t.Run(tc.name, func(t *testing.T) {
			opts := valkeytest.Options{Args: []string{"--maxclients", "1"}}
			cfg := config.DefaultConfig()
			if tc.tls {
				opts.TLS = &valkeytest.TLSOptions{Certs: certs, AuthClients: valkeytest.AuthClientsOptional}
				cfg.TLS = config.TLSConfig{Enabled: true, CAFile: certs.CA.CertFile}
			}
			srv := valkeytest.Start(t, opts)
			cfg = cfg.WithAddrs(srv.Addr())
			held := holdConn(t, srv, tc.tls) // the one connection allowed
			err := wantNewFails(t, cfg, "maxclients limit", 2*time.Second)
			var se *engine.ServerError
			if tc.tls {
				if errors.As(err, &se) {
					t.Errorf("error %v unwraps to a *ServerError: a TLS server sends none", err)
				}
			} else if !errors.As(err, &se) || se.Prefix != "ERR" || !strings.Contains(se.Message, "max number of clients") {
				t.Errorf("error %v does not unwrap to the server's ERR max number of clients *ServerError", err)
			}
			held.Close()
			roomAgain(t, srv, tc.tls) // the server frees the client a moment later
			eng := engineOn(t, cfg)
			defer eng.Close()
			if err := eng.Ping(ctxT(t)); err != nil {
				t.Fatalf("PING once the held connection closed: %v", err)
			}
		})
	}
}

// roomAgain waits (up to 10 s) until srv takes a new connection again.
func roomAgain(t *testing.T, srv *valkeytest.Server, withTLS bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := pingConn(srv, withTLS)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room on the server 10 s after the held connection closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// holdConn opens a connection to srv and returns once the server answered
// a PING on it (it counts against maxclients from then on).
func holdConn(t *testing.T, srv *valkeytest.Server, withTLS bool) net.Conn {
	t.Helper()
	c, err := pingConn(srv, withTLS)
	if err != nil {
		t.Fatalf("held connection: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// pingConn opens a connection to srv and returns it once the server
// answered PING on it.
func pingConn(srv *valkeytest.Server, withTLS bool) (net.Conn, error) {
	var c net.Conn
	var err error
	if withTLS {
		c, err = tls.Dial("tcp", srv.Addr(), srv.ClientTLS())
	} else {
		c, err = net.Dial("tcp", srv.Addr())
	}
	if err != nil {
		return nil, err
	}
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		c.Close()
		return nil, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "+PONG\r\n" {
		c.Close()
		return nil, fmt.Errorf("PING answered %q, %v", line, err)
	}
	return c, c.SetDeadline(time.Time{})
}
