package driverstest

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/valkeytest"
)

// handshake: the options of Dial take effect.
func (s *suite) handshake(t *testing.T) {
	t.Run("RESP3NameDB", func(t *testing.T) {
		srv := valkeytest.Start(t)
		o := s.options(srv)
		o.ClientName = "driverstest-name"
		o.DB = 3
		x := neutralExec{s.dial(t, o)}
		rs := do(t, s.ctx(t), x, args("CLIENT", "GETNAME"), args("CLIENT", "INFO"))
		if got := rs[0].Value; got.Str != o.ClientName {
			t.Errorf("CLIENT GETNAME = %v, want %q", got, o.ClientName)
		}
		info := rs[1].Value.Str
		for _, want := range []string{" db=3 ", " resp=3", " name=driverstest-name "} {
			if !strings.Contains(info, want) {
				t.Errorf("CLIENT INFO %q lacks %q", info, want)
			}
		}
	})
	t.Run("Password", func(t *testing.T) {
		srv := valkeytest.Start(t, valkeytest.Options{Password: "driverstest-secret"})
		x := neutralExec{s.dial(t, s.options(srv))}
		rs := do(t, s.ctx(t), x, args("ACL", "WHOAMI"))
		if got := rs[0].Value.Str; got != "default" {
			t.Errorf("ACL WHOAMI = %v", rs[0].Value)
		}
		o := s.options(srv)
		o.Password = "wrong"
		s.dialFails(t, o, "a wrong password")
	})
	t.Run("ACLUser", func(t *testing.T) {
		srv := valkeytest.Start(t, valkeytest.Options{Username: "driverstest-user", Password: "driverstest-pw"})
		x := neutralExec{s.dial(t, s.options(srv))}
		rs := do(t, s.ctx(t), x, args("ACL", "WHOAMI"))
		if got := rs[0].Value.Str; got != "driverstest-user" {
			t.Errorf("ACL WHOAMI = %v", rs[0].Value)
		}
	})
	t.Run("TLS", func(t *testing.T) {
		if !s.caps.TLS {
			t.Logf("%s does not support TLS: not checked", s.o.Name)
			return
		}
		certs := valkeytest.NewCertsT(t)
		srv := valkeytest.Start(t, valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs}})
		o := s.options(srv)
		o.TLS = certs.TLSConfigNoCert()
		pem, err := os.ReadFile(certs.CA.CertFile)
		if err != nil {
			t.Fatal(err)
		}
		o.TLSRootPEM = pem
		x := neutralExec{s.dial(t, o)}
		if rs := do(t, s.ctx(t), x, args("PING")); rs[0].Value.Str != "PONG" {
			t.Fatalf("PING over TLS: %v", describe(rs[0]))
		}
		// A server whose certificate the roots do not sign is refused.
		bad := s.options(srv)
		bad.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		s.dialFails(t, bad, "TLS against an unknown authority")
		if !s.caps.TLSConfig {
			return
		}
		mtls := valkeytest.Start(t, valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs, AuthClients: valkeytest.AuthClientsYes}})
		o = s.options(mtls)
		o.TLS = certs.TLSConfig()
		x = neutralExec{s.dial(t, o)}
		if rs := do(t, s.ctx(t), x, args("PING")); rs[0].Value.Str != "PONG" {
			t.Fatalf("PING over mutual TLS: %v", describe(rs[0]))
		}
		o.TLS = certs.TLSConfigNoCert()
		s.dialFails(t, o, "mutual TLS without a client certificate")
	})
}

// dialFails checks that Dial with o fails, within DialTimeout and a
// margin, and returns no Conn.
func (s *suite) dialFails(t *testing.T, o drivers.Options, what string) {
	t.Helper()
	var (
		c   drivers.Conn
		err error
	)
	within(t, o.DialTimeout+s.o.Timeout, "Dial with "+what, func() {
		c, err = s.d.Dial(context.Background(), o)
	})
	if err == nil {
		_ = c.Close()
		t.Fatalf("Dial with %s succeeded", what)
	}
}

// dialFailures: Dial fails within DialTimeout (and sooner when ctx ends)
// against a closed port and a server that does not answer.
func (s *suite) dialFailures(t *testing.T) {
	t.Run("Refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		o := drivers.Options{Addr: addr, DialTimeout: 2 * time.Second}
		start := time.Now()
		s.dialFails(t, o, "a closed port")
		if d := time.Since(start); d > o.DialTimeout+time.Second {
			t.Errorf("Dial to a closed port took %s, DialTimeout %s", d, o.DialTimeout)
		}
	})
	t.Run("Silent", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close() // held open, never answered, until the test ends
			}
		}()
		o := drivers.Options{Addr: ln.Addr().String(), DialTimeout: time.Second}
		start := time.Now()
		s.dialFails(t, o, "a silent server")
		if d := time.Since(start); d > o.DialTimeout+2*time.Second {
			t.Errorf("Dial to a silent server took %s, DialTimeout %s", d, o.DialTimeout)
		}
		// ctx ends the dial before DialTimeout.
		o.DialTimeout = time.Minute
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start = time.Now()
		var c drivers.Conn
		within(t, 5*time.Second, "Dial with an ending ctx", func() { c, err = s.d.Dial(ctx, o) })
		if err == nil {
			_ = c.Close()
			t.Fatal("Dial to a silent server succeeded")
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Logf("Dial error after ctx ended: %v (not wrapping ctx's error)", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Dial returned %s after a ctx of 500ms", d)
		}
	})
}
