package valkeytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Certificates are made in the test process with crypto/x509 (ECDSA P-256,
// fast to generate) and written as PEM files for the server to read; no
// file lives in the repository and no openssl is run.

// certValidity is how long certificates are valid by default.
const certValidity = 24 * time.Hour

// CertOptions describes a certificate issued by [CA.Issue]. The zero value
// is a certificate for 127.0.0.1 and localhost, valid from an hour ago for
// a day.
type CertOptions struct {
	// CommonName is the subject's common name. Default "valkeytest".
	CommonName string
	// DNSNames and IPAddresses are the subject alternative names checked
	// against the name a client dials. When both are empty: "localhost"
	// and 127.0.0.1.
	DNSNames    []string
	IPAddresses []net.IP
	// NotBefore and NotAfter bound the validity. Default: an hour ago, and
	// a day after NotBefore. Set both in the past for an expired
	// certificate.
	NotBefore, NotAfter time.Time
}

// CA is a certificate authority for tests: a self-signed certificate and
// its key, in its own directory. Safe for concurrent use.
type CA struct {
	// Cert is the CA certificate.
	Cert *x509.Certificate
	// CertFile is the PEM file of Cert (tls-ca-cert-file; a client's
	// TLSConfig.CAFile).
	CertFile string

	key *ecdsa.PrivateKey
	dir string

	mu     sync.Mutex
	issued map[string]bool // names given to Issue
}

// KeyPair is a certificate issued by a [CA] and its key, as PEM files and
// parsed.
type KeyPair struct {
	CertFile string // PEM certificate
	KeyFile  string // PEM private key (PKCS #8)
	// Certificate is the pair ready for tls.Config.Certificates.
	Certificate tls.Certificate
	// Leaf is the parsed certificate.
	Leaf *x509.Certificate
}

// NewCA makes a CA in a new directory under dir (which must exist) and
// writes its certificate there.
func NewCA(dir string) (*CA, error) {
	sub, err := os.MkdirTemp(dir, "ca-")
	if err != nil {
		return nil, fmt.Errorf("valkeytest: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("valkeytest: CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "valkeytest CA " + filepath.Base(sub), Organization: []string{"valkeytest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("valkeytest: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("valkeytest: CA certificate: %w", err)
	}
	ca := &CA{Cert: cert, CertFile: filepath.Join(sub, "ca.crt"), key: key, dir: sub, issued: map[string]bool{"ca": true}}
	if err := writePEM(ca.CertFile, "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	return ca, nil
}

// Pool returns a new pool holding the CA certificate, for
// tls.Config.RootCAs or ClientCAs.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Issue makes a certificate signed by the CA, usable by a server and by a
// client (extended key usages serverAuth and clientAuth), and writes it
// and its key as name.crt and name.key in the CA's directory. name must
// be a plain file name not used before with this CA.
func (ca *CA) Issue(name string, o CertOptions) (*KeyPair, error) {
	if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
		return nil, fmt.Errorf("valkeytest: CA.Issue: bad name %q", name)
	}
	ca.mu.Lock()
	if ca.issued[name] {
		ca.mu.Unlock()
		return nil, fmt.Errorf("valkeytest: CA.Issue: name %q already used", name)
	}
	ca.issued[name] = true
	ca.mu.Unlock()

	if o.CommonName == "" {
		o.CommonName = "valkeytest"
	}
	if len(o.DNSNames) == 0 && len(o.IPAddresses) == 0 {
		o.DNSNames = []string{"localhost"}
		o.IPAddresses = []net.IP{net.ParseIP(Host)}
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = o.NotBefore.Add(certValidity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("valkeytest: key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: o.CommonName, Organization: []string{"valkeytest"}},
		DNSNames:     o.DNSNames,
		IPAddresses:  o.IPAddresses,
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("valkeytest: certificate %s: %w", name, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("valkeytest: certificate %s: %w", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("valkeytest: key %s: %w", name, err)
	}
	kp := &KeyPair{
		CertFile:    filepath.Join(ca.dir, name+".crt"),
		KeyFile:     filepath.Join(ca.dir, name+".key"),
		Certificate: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		Leaf:        leaf,
	}
	if err := writePEM(kp.CertFile, "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	if err := writePEM(kp.KeyFile, "PRIVATE KEY", keyDER, 0o600); err != nil {
		return nil, err
	}
	return kp, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n.Add(n, big.NewInt(1))
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("valkeytest: %w", err)
	}
	return nil
}

// Certs is a test PKI: a CA, a server certificate for 127.0.0.1 and
// localhost, and a client certificate, both signed by the CA, as PEM
// files. Servers started with [TLSOptions] serve Server (unless told
// otherwise) and accept clients whose certificate the CA signed. Safe for
// concurrent use.
type Certs struct {
	CA     *CA
	Server *KeyPair // for 127.0.0.1 and localhost
	Client *KeyPair // also for 127.0.0.1 and localhost; CommonName "client"

	dir string

	mu    sync.Mutex
	extra int // certificates made by the helpers, for unique names
}

// NewCerts makes a CA and its server and client certificates under dir,
// which must exist.
func NewCerts(dir string) (*Certs, error) {
	ca, err := NewCA(dir)
	if err != nil {
		return nil, err
	}
	srv, err := ca.Issue("server", CertOptions{CommonName: "server"})
	if err != nil {
		return nil, err
	}
	cli, err := ca.Issue("client", CertOptions{CommonName: "client"})
	if err != nil {
		return nil, err
	}
	return &Certs{CA: ca, Server: srv, Client: cli, dir: dir}, nil
}

// NewCertsT is NewCerts in tb.TempDir(), failing the test with tb.Fatal
// when it cannot.
func NewCertsT(tb testing.TB) *Certs {
	tb.Helper()
	c, err := NewCerts(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TLSConfig returns a new client configuration that trusts the CA
// (RootCAs) and presents the client certificate: what a client of a server
// started with these Certs needs, mutual TLS included. ServerName is left
// empty (Go then checks the dialled host, 127.0.0.1, which the server
// certificate names). The caller owns the result.
func (c *Certs) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      c.CA.Pool(),
		Certificates: []tls.Certificate{c.Client.Certificate},
	}
}

// TLSConfigNoCert is TLSConfig without the client certificate: enough for
// a server that does not ask for one (tls-auth-clients no), refused by one
// that requires it.
func (c *Certs) TLSConfigNoCert() *tls.Config {
	t := c.TLSConfig()
	t.Certificates = nil
	return t
}

func (c *Certs) nextName(kind string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.extra++
	return fmt.Sprintf("%s-%d", kind, c.extra)
}

// ExpiredCert returns a certificate from the CA for 127.0.0.1 and
// localhost that expired an hour ago (valid from two days ago): serve it
// (TLSOptions.Cert), or present it as a client certificate.
func (c *Certs) ExpiredCert() (*KeyPair, error) {
	now := time.Now()
	return c.CA.Issue(c.nextName("expired"), CertOptions{
		CommonName: "expired",
		NotBefore:  now.Add(-48 * time.Hour),
		NotAfter:   now.Add(-time.Hour),
	})
}

// WrongNameCert returns a valid certificate from the CA for the name
// "wrong.invalid" only: a client dialling 127.0.0.1 or localhost refuses
// it.
func (c *Certs) WrongNameCert() (*KeyPair, error) {
	return c.CA.Issue(c.nextName("wrongname"), CertOptions{
		CommonName: "wrong.invalid",
		DNSNames:   []string{"wrong.invalid"},
	})
}

// UnknownCACert returns a valid certificate for 127.0.0.1 and localhost
// signed by another CA, made for it and trusted by nobody: as a server
// certificate a client of these Certs refuses it, as a client certificate
// a server of these Certs refuses it.
func (c *Certs) UnknownCACert() (*KeyPair, error) {
	other, err := NewCA(c.dir)
	if err != nil {
		return nil, err
	}
	return other.Issue("unknown-ca", CertOptions{CommonName: "unknown-ca"})
}
