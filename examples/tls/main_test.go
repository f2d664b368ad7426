package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/valkeytest"
)

// Against a server that requires client certificates, with the files in
// the VALKEY_TLS_* variables, the example connects and runs its commands;
// without the client certificate it fails saying so; with TLS off it
// says how to turn it on.
func TestTLSExampleRuns(t *testing.T) {
	certs := valkeytest.NewCertsT(t)
	srv := valkeytest.Start(t, valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs, AuthClients: valkeytest.AuthClientsYes}})
	for _, v := range config.ServerEnvVars {
		t.Setenv(v, "") // a server named in the shell's environment is not the test's
	}
	t.Setenv("VALKEY_ADDR", srv.Addr())
	t.Setenv("VALKEY_TLS_ENABLED", "true")
	t.Setenv("VALKEY_TLS_CA_FILE", certs.CA.CertFile)

	var out bytes.Buffer
	if err := run(&out); err == nil || !strings.Contains(err.Error(), "client certificate") {
		t.Fatalf("without a client certificate: %v, want an error naming the client certificate", err)
	}
	t.Setenv("VALKEY_TLS_CERT_FILE", certs.Client.CertFile)
	t.Setenv("VALKEY_TLS_KEY_FILE", certs.Client.KeyFile)
	if err := run(&out); err != nil {
		t.Fatalf("tls example: %v", err)
	}
	if !strings.Contains(out.String(), `GET tls:greeting = "hello over TLS"`) || !strings.Contains(out.String(), "client certificate: true") {
		t.Errorf("output:\n%s", out.String())
	}
	t.Setenv("VALKEY_TLS_ENABLED", "")
	t.Setenv("VALKEY_TLS_CA_FILE", "")
	t.Setenv("VALKEY_TLS_CERT_FILE", "")
	t.Setenv("VALKEY_TLS_KEY_FILE", "")
	if err := run(&out); err == nil || !strings.Contains(err.Error(), "VALKEY_TLS_ENABLED") {
		t.Fatalf("with TLS off: %v, want the variable to set", err)
	}
}
