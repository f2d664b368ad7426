package valkeytest_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/valkeytest"
)

// tlsDial connects with cfg and completes the handshake.
func tlsDial(addr string, cfg *tls.Config) (*rawConn, error) {
	d := &net.Dialer{Timeout: time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	return &rawConn{Conn: c, r: bufio.NewReader(c)}, nil
}

// tlsDo dials with cfg, runs one command and closes the connection. With
// TLS 1.3 a server that refuses the client certificate says so after the
// handshake: the error then comes from the command.
func tlsDo(addr string, cfg *tls.Config, args ...string) (string, error) {
	c, err := tlsDial(addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.do(2*time.Second, args...)
}

func mustTLSPing(t *testing.T, addr string, cfg *tls.Config) {
	t.Helper()
	got, err := tlsDo(addr, cfg, "PING")
	if err != nil || got != "+PONG" {
		t.Fatalf("PING over TLS to %s = %q, %v; want +PONG", addr, got, err)
	}
}

// mustRefusePlain checks that a plain TCP client gets no answer.
func mustRefusePlain(t *testing.T, addr string) {
	t.Helper()
	got, err := do(addr, "PING")
	if err == nil {
		t.Fatalf("PING over plain TCP to the TLS port %s = %q, want an error", addr, got)
	}
}

func TestCertsFiles(t *testing.T) {
	t.Parallel()
	certs := valkeytest.NewCertsT(t)
	for _, f := range []string{certs.CA.CertFile, certs.Server.CertFile, certs.Server.KeyFile, certs.Client.CertFile, certs.Client.KeyFile} {
		if _, err := os.Stat(f); err != nil {
			t.Fatal(err)
		}
	}
	// The files load as a pair and verify against the CA, for both uses.
	for _, kp := range []*valkeytest.KeyPair{certs.Server, certs.Client} {
		pair, err := tls.LoadX509KeyPair(kp.CertFile, kp.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: certs.CA.Pool(), DNSName: "127.0.0.1", KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("%s: %v", kp.CertFile, err)
			}
		}
	}
	ca, err := os.ReadFile(certs.CA.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	if p := x509.NewCertPool(); !p.AppendCertsFromPEM(ca) {
		t.Fatalf("%s holds no PEM certificate", certs.CA.CertFile)
	}
	if _, err := certs.CA.Issue("server", valkeytest.CertOptions{}); err == nil {
		t.Error("Issue with a name used before: no error")
	}
	if _, err := certs.CA.Issue("../x", valkeytest.CertOptions{}); err == nil {
		t.Error("Issue with a path as name: no error")
	}
}

func TestTLSStandalone(t *testing.T) {
	t.Parallel()
	certs := valkeytest.NewCertsT(t)
	srv := valkeytest.Start(t, valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs}})

	mustTLSPing(t, srv.Addr(), srv.ClientTLS())
	mustTLSPing(t, srv.Addr(), certs.TLSConfigNoCert()) // tls-auth-clients no
	// localhost is in the certificate too.
	cfg := certs.TLSConfigNoCert()
	cfg.ServerName = "localhost"
	mustTLSPing(t, srv.Addr(), cfg)
	mustRefusePlain(t, srv.Addr())

	// The tooling speaks TLS too.
	if r, err := srv.Do("SET", "k", "v"); err != nil || r != "OK" {
		t.Fatalf("Do SET = %v, %v", r, err)
	}
	if got, err := tlsDo(srv.Addr(), srv.ClientTLS(), "GET", "k"); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v", got, err)
	}
	// Nothing listens in plain text: --port 0.
	if r, err := srv.Do("CONFIG", "GET", "port"); err != nil || r.([]any)[1] != "0" {
		t.Fatalf("CONFIG GET port = %v, %v", r, err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	mustTLSPing(t, srv.Addr(), srv.ClientTLS())
}

func TestTLSMutual(t *testing.T) {
	t.Parallel()
	certs := valkeytest.NewCertsT(t)
	srv := valkeytest.Start(t, valkeytest.Options{
		TLS: &valkeytest.TLSOptions{Certs: certs, AuthClients: valkeytest.AuthClientsYes},
	})
	mustTLSPing(t, srv.Addr(), certs.TLSConfig())

	refused := func(what string, cfg *tls.Config) {
		t.Helper()
		got, err := tlsDo(srv.Addr(), cfg, "PING")
		if err == nil {
			t.Errorf("%s: PING = %q, want the handshake refused", what, got)
		}
	}
	refused("no client certificate", certs.TLSConfigNoCert())
	unknown, err := certs.UnknownCACert()
	if err != nil {
		t.Fatal(err)
	}
	cfg := certs.TLSConfigNoCert()
	cfg.Certificates = []tls.Certificate{unknown.Certificate}
	refused("client certificate from an unknown CA", cfg)
	expired, err := certs.ExpiredCert()
	if err != nil {
		t.Fatal(err)
	}
	cfg = certs.TLSConfigNoCert()
	cfg.Certificates = []tls.Certificate{expired.Certificate}
	refused("expired client certificate", cfg)

	// optional: no certificate is fine, a bad one is not.
	opt := valkeytest.Start(t, valkeytest.Options{
		TLS: &valkeytest.TLSOptions{Certs: certs, AuthClients: valkeytest.AuthClientsOptional},
	})
	mustTLSPing(t, opt.Addr(), certs.TLSConfigNoCert())
	mustTLSPing(t, opt.Addr(), certs.TLSConfig())
	if got, err := tlsDo(opt.Addr(), cfg, "PING"); err == nil {
		t.Errorf("optional, expired client certificate: PING = %q, want refused", got)
	}
}

func TestTLSBadServerCertificates(t *testing.T) {
	t.Parallel()
	certs := valkeytest.NewCertsT(t)
	expired, err := certs.ExpiredCert()
	if err != nil {
		t.Fatal(err)
	}
	wrongName, err := certs.WrongNameCert()
	if err != nil {
		t.Fatal(err)
	}
	unknown, err := certs.UnknownCACert()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		cert  *valkeytest.KeyPair
		check func(error) bool
	}{
		{"expired", expired, func(err error) bool {
			var e x509.CertificateInvalidError
			return errors.As(err, &e) && e.Reason == x509.Expired
		}},
		{"wrong name", wrongName, func(err error) bool {
			var e x509.HostnameError
			return errors.As(err, &e)
		}},
		{"unknown CA", unknown, func(err error) bool {
			var e x509.UnknownAuthorityError
			return errors.As(err, &e)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The server starts (valkeytest's readiness check does not
			// verify the certificate) and a verifying client refuses it.
			srv := valkeytest.Start(t, valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs, Cert: tc.cert}})
			_, err := tlsDial(srv.Addr(), srv.ClientTLS())
			if err == nil || !tc.check(err) {
				t.Fatalf("dial = %v, want the %s error", err, tc.name)
			}
			if r, err := srv.Do("PING"); err != nil || r != "PONG" {
				t.Fatalf("Do PING = %v, %v", r, err)
			}
		})
	}
}

func TestBadTLSOptions(t *testing.T) {
	t.Parallel()
	if _, err := valkeytest.StartServer(valkeytest.Options{TLS: &valkeytest.TLSOptions{}}); err == nil || !strings.Contains(err.Error(), "Certs") {
		t.Errorf("TLS without Certs: %v", err)
	}
	certs := valkeytest.NewCertsT(t)
	if _, err := valkeytest.StartServer(valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs, AuthClients: "maybe"}}); err == nil {
		t.Error("AuthClients maybe: no error")
	}
}

func TestTLSCluster(t *testing.T) {
	t.Parallel()
	certs := valkeytest.NewCertsT(t)
	c := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{
		TLS: &valkeytest.TLSOptions{Certs: certs, AuthClients: valkeytest.AuthClientsYes},
	})
	// Healthy means the bus and replication work over TLS. The nodes
	// announce their TLS ports.
	r, err := c.Nodes()[0].Do("CLUSTER", "SLOTS")
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]bool{}
	for _, n := range c.Nodes() {
		ports[strconv.Itoa(n.Port())] = true
	}
	for _, e := range r.([]any) {
		primary := e.([]any)[2].([]any)
		if port := strconv.FormatInt(primary[1].(int64), 10); !ports[port] {
			t.Fatalf("CLUSTER SLOTS names port %s, not a node's TLS port", port)
		}
	}
	for _, n := range c.Nodes() {
		mustTLSPing(t, n.Addr(), c.ClientTLS())
		mustRefusePlain(t, n.Addr())
		if got, err := tlsDo(n.Addr(), certs.TLSConfigNoCert(), "PING"); err == nil {
			t.Fatalf("%s: PING without a client certificate = %q, want refused", n.Addr(), got)
		}
	}
	// Keys move over TLS too.
	prims := c.Primaries()
	ranges, err := c.SlotsOf(prims[0])
	if err != nil {
		t.Fatal(err)
	}
	slot := ranges[0][0]
	keys := clusterKeysIn(t, []int{slot}, 2)[slot]
	for _, k := range keys {
		clusterMustDo(t, prims[0], "OK", "SET", k, "v")
	}
	if err := c.MigrateSlots(prims[0], prims[1], []int{slot}); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		clusterMustDo(t, prims[1], "v", "GET", k)
	}
}

func TestTLSSentinel(t *testing.T) {
	t.Parallel()
	certs := valkeytest.NewCertsT(t)
	s := valkeytest.StartSentinelT(t, valkeytest.SentinelOptions{
		TLS: &valkeytest.TLSOptions{Certs: certs, AuthClients: valkeytest.AuthClientsYes},
	})
	for _, sn := range s.Sentinels() {
		got, err := tlsDo(sn.Addr(), s.ClientTLS(), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")
		if err != nil || !strings.HasPrefix(got, "*2") {
			t.Fatalf("%s over TLS: %q, %v", sn.Addr(), got, err)
		}
		mustRefusePlain(t, sn.Addr())
		if got, err := tlsDo(sn.Addr(), certs.TLSConfigNoCert(), "PING"); err == nil {
			t.Fatalf("%s: PING without a client certificate = %q, want refused", sn.Addr(), got)
		}
	}
	for _, n := range s.Nodes() {
		mustTLSPing(t, n.Addr(), s.ClientTLS())
		mustRefusePlain(t, n.Addr())
	}
	// The sentinels reach the nodes and each other over TLS: a failover
	// goes through.
	old, err := s.Primary()
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Failover()
	if err != nil {
		t.Fatal(err)
	}
	if p == old {
		t.Fatal("no new primary")
	}
	mustTLSPing(t, p.Addr(), s.ClientTLS())
}
