package glide_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/drivers/glide"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// TestTLSMisconfigFailsFast: with glide, as with valkey-go, a TLS
// handshake that fails (a server certificate the client does not trust,
// expired, or for another name; a server that requires a client
// certificate, which glide cannot present) fails engine.New at once with a
// *engine.ConnectError that says what is wrong and unwraps to crypto/tls's
// error. Before, glide retried the handshake until DialTimeout (5 s) and
// the Reason said "a plain TCP port does not answer a TLS handshake".
func TestTLSMisconfigFailsFast(t *testing.T) {
	certs := valkeytest.NewCertsT(t)
	issue := func(f func() (*valkeytest.KeyPair, error)) *valkeytest.KeyPair {
		kp, err := f()
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}
	unknownCA, wrongName, expired := issue(certs.UnknownCACert), issue(certs.WrongNameCert), issue(certs.ExpiredCert)
	caOnly := config.TLSConfig{Enabled: true, CAFile: certs.CA.CertFile}
	for _, tc := range []struct {
		name   string
		srv    valkeytest.Options
		reason string
		check  func(error) bool
	}{
		{"unknown CA", valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs, Cert: unknownCA}},
			"signed by an authority the client does not trust",
			func(err error) bool { var e x509.UnknownAuthorityError; return errors.As(err, &e) }},
		{"wrong server name", valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs, Cert: wrongName}},
			`not valid for "127.0.0.1"`,
			func(err error) bool { var e x509.HostnameError; return errors.As(err, &e) }},
		{"expired certificate", valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs, Cert: expired}},
			"has expired",
			func(err error) bool {
				var e x509.CertificateInvalidError
				return errors.As(err, &e) && e.Reason == x509.Expired
			}},
		{"client certificate required", valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs, AuthClients: valkeytest.AuthClientsYes}},
			"requires a client certificate",
			func(err error) bool { var e tls.AlertError; return errors.As(err, &e) && e == 116 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := valkeytest.Start(t, tc.srv)
			cfg := config.DefaultConfig().WithAddrs(srv.Addr()).WithDriver(glide.Name).WithTLS(caOnly)
			start := time.Now()
			eng, err := engine.New(context.Background(), cfg)
			took := time.Since(start)
			if err == nil {
				eng.Close()
				t.Fatal("engine.New succeeded")
			}
			if took > time.Second {
				t.Errorf("engine.New failed after %s, want at once (DialTimeout %s): %v", took.Round(time.Millisecond), cfg.DialTimeout, err)
			}
			var ce *engine.ConnectError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T) is not a *engine.ConnectError", err, err)
			}
			if !strings.Contains(ce.Reason, tc.reason) {
				t.Errorf("reason %q, want it to contain %q", ce.Reason, tc.reason)
			}
			if !tc.check(err) {
				t.Errorf("error %v does not unwrap to the cause", err)
			}
		})
	}
}
