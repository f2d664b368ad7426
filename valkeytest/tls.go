package valkeytest

import (
	"crypto/tls"
	"errors"
	"fmt"
)

// AuthClients is the server's tls-auth-clients setting: whether a TLS
// client must present a certificate signed by the CA.
type AuthClients string

const (
	// AuthClientsNo: clients present no certificate (plain TLS). The
	// default of TLSOptions.
	AuthClientsNo AuthClients = "no"
	// AuthClientsYes: mutual TLS; a client without a certificate the CA
	// signed is refused during the handshake.
	AuthClientsYes AuthClients = "yes"
	// AuthClientsOptional: a client may present a certificate; one it
	// presents must be signed by the CA.
	AuthClientsOptional AuthClients = "optional"
)

// TLSOptions makes a server listen with TLS only (--tls-port, --port 0).
// Replication, the cluster bus (for clusters) and sentinel connections use
// TLS as well, presenting Certs.Client.
type TLSOptions struct {
	// Certs is the PKI: its CA is tls-ca-cert-file, its client
	// certificate what the server presents on the connections it opens
	// (tls-client-cert-file) and what valkeytest's own connections
	// present. Required.
	Certs *Certs
	// Cert is the certificate the server serves. Default Certs.Server.
	// Set it to one of the Certs helpers' for a negative test.
	Cert *KeyPair
	// AuthClients is tls-auth-clients. Default AuthClientsNo.
	AuthClients AuthClients
}

func (o *TLSOptions) validate() error {
	if o.Certs == nil || o.Certs.CA == nil || o.Certs.Client == nil || (o.Cert == nil && o.Certs.Server == nil) {
		return errors.New("valkeytest: TLSOptions.Certs must be set (NewCerts)")
	}
	switch o.AuthClients {
	case "", AuthClientsNo, AuthClientsYes, AuthClientsOptional:
		return nil
	}
	return fmt.Errorf("valkeytest: TLSOptions.AuthClients = %q, want yes, no or optional", o.AuthClients)
}

// args returns the server arguments for TLS on port.
func (o *TLSOptions) args(port int) []string {
	cert := o.Cert
	if cert == nil {
		cert = o.Certs.Server
	}
	auth := o.AuthClients
	if auth == "" {
		auth = AuthClientsNo
	}
	return []string{
		"--port", "0",
		"--tls-port", fmt.Sprint(port),
		"--tls-cert-file", cert.CertFile,
		"--tls-key-file", cert.KeyFile,
		"--tls-client-cert-file", o.Certs.Client.CertFile,
		"--tls-client-key-file", o.Certs.Client.KeyFile,
		"--tls-ca-cert-file", o.Certs.CA.CertFile,
		"--tls-auth-clients", string(auth),
		"--tls-replication", "yes",
	}
}

// toolConfig is what valkeytest's own connections use: the client
// certificate, no verification of the server (which may serve a bad
// certificate on purpose).
func (o *TLSOptions) toolConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		Certificates:       []tls.Certificate{o.Certs.Client.Certificate},
		InsecureSkipVerify: true, // test tooling; see the comment above
	}
}
