package drivers

import "strings"

// Capabilities says what a driver supports beyond the required interface
// (Driver, Conn). The engine reads it once, in engine.New, and fails with
// an *UnsupportedError naming the driver and the capability when the
// configuration asks for more; capabilities used at run time (PubSub,
// Blocking) fail the call that needs them the same way. The zero value
// is the required interface alone.
type Capabilities struct {
	// TLS: connections over TLS (Options.TLS not nil), verifying the
	// server against the system roots or Options.TLSRootPEM, or not at all
	// when Options.TLS.InsecureSkipVerify is set.
	TLS bool
	// TLSConfig: the driver uses Options.TLS as it is, so that every
	// crypto/tls setting takes effect: client certificates (mutual TLS), a
	// ServerName other than the dialled host, the caller's own
	// *tls.Config. Implies TLS.
	TLSConfig bool
	// Credentials: Options.Credentials is called on every connection the
	// driver opens, its own reconnects included.
	Credentials bool
	// Blocking: Exec runs commands flagged Blocking on a connection of
	// their own, while the Conn goes on serving pipelines from another
	// goroutine, and ends them when ctx ends or the Conn is closed.
	Blocking bool
	// PubSub: Conns implement PubSub (or ValkeyPubSub).
	PubSub bool
	// NoIdlePing: the driver honours Options.NoIdlePing: it then sends no
	// command of its own on the connection, so that connection state such
	// as MULTI spans calls. Transactions (engine Tx, Watch, Dedicated)
	// need it.
	NoIdlePing bool
	// Sentinel: Dial reaches a Valkey sentinel (DB 0, no SELECT; the
	// driver sends nothing a sentinel refuses, such as commands that only
	// data nodes know).
	Sentinel bool
	// LongPipelines: Exec sends a pipeline of any length on the Conn it
	// is called on, so the engine sends a transaction (MULTI, its
	// commands, EXEC) in one call. Without it the engine sends a
	// transaction longer than Options.MaxPipeline in parts of that many
	// commands on its connection (valkey-go moves a longer DoMulti to
	// another connection); a driver that must see MULTI..EXEC whole
	// (glide sends it as its atomic batch) sets it.
	LongPipelines bool
}

// Capable is implemented by drivers that say what they support.
type Capable interface {
	Capabilities() Capabilities
}

// CapabilitiesOf returns what d says it supports, or the zero value (the
// required interface alone) when it does not implement Capable.
func CapabilitiesOf(d Driver) Capabilities {
	if c, ok := d.(Capable); ok {
		caps := c.Capabilities()
		caps.TLS = caps.TLS || caps.TLSConfig
		return caps
	}
	return Capabilities{}
}

// Missing returns the names of the capabilities want has and c lacks, in
// the order of the Capabilities fields ("TLS", "TLSConfig", ...); nil
// when c has them all.
func (c Capabilities) Missing(want Capabilities) []string {
	var out []string
	add := func(w, have bool, name string) {
		if w && !have {
			out = append(out, name)
		}
	}
	add(want.TLS, c.TLS || c.TLSConfig, "TLS")
	add(want.TLSConfig, c.TLSConfig, "TLSConfig")
	add(want.Credentials, c.Credentials, "Credentials")
	add(want.Blocking, c.Blocking, "Blocking")
	add(want.PubSub, c.PubSub, "PubSub")
	add(want.NoIdlePing, c.NoIdlePing, "NoIdlePing")
	add(want.Sentinel, c.Sentinel, "Sentinel")
	add(want.LongPipelines, c.LongPipelines, "LongPipelines")
	return out
}

// String lists the capabilities c has, e.g. "TLS, Blocking"; "none" for
// the zero value.
func (c Capabilities) String() string {
	have := (Capabilities{}).Missing(c)
	if len(have) == 0 {
		return "none"
	}
	return strings.Join(have, ", ")
}
