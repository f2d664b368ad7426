package config

import (
	"crypto/tls"
	"crypto/x509"
	"os"
)

// ClientConfig returns the *tls.Config that t describes, as the engine
// dials with it: nil when TLS is off; a clone of t.Config when the caller
// gave one (it wins over the file settings); else one built from the
// files (client certificate, CA bundle), ServerName and
// InsecureSkipVerify, TLS 1.2 at least. The files are read now; an error
// says which one is wrong. Each call returns a new value, which the
// caller may modify.
func (t TLSConfig) ClientConfig() (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	if t.Config != nil {
		return t.Config.Clone(), nil
	}
	c := &tls.Config{
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // the user's explicit choice
		MinVersion:         tls.VersionTLS12,
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fileError("TLS.CertFile", t.CertFile, "cannot load the client certificate (with TLS.KeyFile)", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fileError("TLS.CAFile", t.CAFile, "cannot be read", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, newFieldError("TLS.CAFile", t.CAFile, "holds no PEM certificate")
		}
		c.RootCAs = pool
	}
	return c, nil
}

// fileError is the *FieldError of a TLS file that cannot be used: reason
// and err's text, and err as its cause (errors.Is(err, fs.ErrNotExist)).
func fileError(field, path, reason string, err error) *FieldError {
	e := newFieldError(field, path, reason+": "+err.Error())
	e.cause = err
	return e
}
