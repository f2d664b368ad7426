package valkeygo_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/drivers/valkeygo"
	"github.com/vactor-io/vactor/valkeytest"
)

// rotatingCreds is a credentials provider whose password can be changed;
// it records each call's deadline.
type rotatingCreds struct {
	mu        sync.Mutex
	user      string
	pass      string
	err       error
	calls     int
	deadlines []time.Duration // time left to each call's ctx deadline; -1 for none
}

func (c *rotatingCreds) get(ctx context.Context) (string, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	left := time.Duration(-1)
	if d, ok := ctx.Deadline(); ok {
		left = time.Until(d)
	}
	c.deadlines = append(c.deadlines, left)
	return c.user, c.pass, c.err
}

func (c *rotatingCreds) set(pass string) {
	c.mu.Lock()
	c.pass = pass
	c.mu.Unlock()
}

func (c *rotatingCreds) snapshot() (int, []time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls, append([]time.Duration(nil), c.deadlines...)
}

// Options.Credentials is asked on every connection the driver opens, the
// reconnect valkey-go makes on its own after the connection died included,
// with a ctx bounded by DialTimeout: a password rotated on the server and
// in the provider is used from the next connection on.
func TestCredentialsOnEveryConnect(t *testing.T) {
	srv := valkeytest.Start(t)
	if err := srv.AddUser("app", "old", "~*", "+@all"); err != nil {
		t.Fatal(err)
	}
	creds := &rotatingCreds{user: "app", pass: "old"}
	const dialTimeout = 3 * time.Second
	conn := dial(t, drivers.Options{Addr: srv.Addr(), Credentials: creds.get, DialTimeout: dialTimeout})
	ctx := context.Background()
	whoami := func() (string, error) {
		return conn.Do(ctx, conn.B().AclWhoami().Build()).ToString()
	}
	if who, err := whoami(); err != nil || who != "app" {
		t.Fatalf("ACL WHOAMI = %q, %v; want app", who, err)
	}

	// Rotate, then end the connection: valkey-go reconnects on the next
	// command, with the new password.
	if err := srv.SetUserPassword("app", "new"); err != nil {
		t.Fatal(err)
	}
	creds.set("new")
	if _, err := srv.Do("CLIENT", "KILL", "USER", "app"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		who, err := whoami()
		if err == nil && who == "app" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ACL WHOAMI after the rotation = %q, %v", who, err)
		}
	}
	calls, deadlines := creds.snapshot()
	if calls < 2 {
		t.Fatalf("provider called %d times, want once per connection (2 or more)", calls)
	}
	for i, left := range deadlines {
		if left <= 0 || left > dialTimeout {
			t.Errorf("call %d: ctx deadline %v away, want within DialTimeout %v", i, left, dialTimeout)
		}
	}
}

// A provider's error fails the dial, wrapped.
func TestCredentialsErrorFailsDial(t *testing.T) {
	srv := valkeytest.Start(t)
	boom := errors.New("vault unreachable")
	creds := &rotatingCreds{err: boom}
	_, err := valkeygo.Driver{}.Dial(context.Background(), drivers.Options{Addr: srv.Addr(), Credentials: creds.get, DialTimeout: 5 * time.Second})
	if !errors.Is(err, boom) {
		t.Fatalf("Dial with a failing provider = %v, want it wrapped", err)
	}
}

// The driver dials TLS through its own dialer (the idle-timeout conn under
// TLS): a mutual-TLS server accepts it, with the dialled host checked
// against the certificate.
func TestDialTLS(t *testing.T) {
	certs := valkeytest.NewCertsT(t)
	srv := valkeytest.Start(t, valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs, AuthClients: valkeytest.AuthClientsYes}})
	conn := dial(t, drivers.Options{Addr: srv.Addr(), TLS: certs.TLSConfig(), ReadTimeout: time.Second})
	ctx := context.Background()
	b := conn.B()
	rs := conn.DoMulti(ctx, b.Set().Key("k").Value("v").Build(), b.Get().Key("k").Build())
	if v, err := rs[1].ToString(); err != nil || v != "v" {
		t.Fatalf("GET over TLS = %q, %v", v, err)
	}
}

// A server that requires a client certificate the client does not have
// refuses it after the TLS 1.3 handshake, and often resets the connection
// before the client's HELLO is read: the dial's error is the server's
// alert, not the reset.
func TestDialTLSMissingClientCertIsAlert(t *testing.T) {
	certs := valkeytest.NewCertsT(t)
	srv := valkeytest.Start(t, valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs, AuthClients: valkeytest.AuthClientsYes}})
	for i := range 5 {
		_, err := valkeygo.Driver{}.Dial(context.Background(), drivers.Options{Addr: srv.Addr(), TLS: certs.TLSConfigNoCert(), DialTimeout: 5 * time.Second})
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "remote error" || !strings.Contains(err.Error(), "certificate required") {
			t.Fatalf("dial %d without the client certificate = %v, want the server's alert (remote error: tls: certificate required)", i, err)
		}
	}
}
