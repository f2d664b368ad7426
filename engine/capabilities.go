package engine

import (
	"fmt"
	"os"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/drivers"
)

// What the configuration asks of the driver, checked once by New against
// the driver's drivers.Capabilities: a driver that lacks one fails New
// with an *drivers.UnsupportedError that names the driver, the capability
// and the setting that needs it (errors.Is(err, drivers.ErrUnsupported)).
// Capabilities that calls need (pub/sub, blocking commands, dedicated
// connections) are checked by those calls (need).

// configNeeds lists what cfg asks of a driver, each with the setting that
// asks for it.
func configNeeds(cfg config.Config) []struct {
	want drivers.Capabilities
	why  string
} {
	type need = struct {
		want drivers.Capabilities
		why  string
	}
	var needs []need
	t := cfg.TLS
	if t.Enabled {
		needs = append(needs, need{drivers.Capabilities{TLS: true}, "TLS.Enabled"})
	}
	if t.Enabled && t.CertFile != "" {
		needs = append(needs, need{drivers.Capabilities{TLSConfig: true}, "TLS.CertFile (a client certificate)"})
	}
	if t.Enabled && t.ServerName != "" {
		needs = append(needs, need{drivers.Capabilities{TLSConfig: true}, "TLS.ServerName"})
	}
	if t.Enabled && t.Config != nil {
		needs = append(needs, need{drivers.Capabilities{TLSConfig: true}, "TLS.Config"})
	}
	if cfg.CredentialsProvider != nil {
		needs = append(needs, need{drivers.Capabilities{Credentials: true}, "CredentialsProvider"})
	}
	if cfg.SentinelMode {
		needs = append(needs, need{drivers.Capabilities{Sentinel: true}, "SentinelMode"})
	}
	return needs
}

// checkDriver returns the first capability cfg needs that the driver
// lacks, as an *drivers.UnsupportedError; nil when it has them all.
func checkDriver(cfg config.Config, caps drivers.Capabilities) error {
	for _, n := range configNeeds(cfg) {
		if missing := caps.Missing(n.want); len(missing) > 0 {
			return &drivers.UnsupportedError{Driver: cfg.Driver, Capability: missing[0], Need: n.why}
		}
	}
	return nil
}

// need fails a call that needs a capability the driver lacks, and first
// one made after Close with ErrClosed, whatever the driver supports: a
// closed engine says so before anything else, as Do does (qa-AZ: over
// glide, Subscribe after Close said "does not support PubSub").
func (e *Engine) need(want drivers.Capabilities, why string) error {
	if e.closed.Load() {
		return ErrClosed
	}
	if missing := e.caps.Missing(want); len(missing) > 0 {
		return fmt.Errorf("vactor: %w", &drivers.UnsupportedError{Driver: e.cfg.Driver, Capability: missing[0], Need: why})
	}
	return nil
}

// rootPEM returns the PEM of cfg's CA file for drivers that cannot take a
// *tls.Config (drivers.Options.TLSRootPEM); nil when they can or no CA
// file is set.
func rootPEM(cfg config.Config, caps drivers.Capabilities) ([]byte, error) {
	if !cfg.TLS.Enabled || cfg.TLS.CAFile == "" || caps.TLSConfig {
		return nil, nil
	}
	pem, err := os.ReadFile(cfg.TLS.CAFile)
	if err != nil {
		return nil, fmt.Errorf("tls: read CA file: %w", err)
	}
	return pem, nil
}
