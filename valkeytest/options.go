package valkeytest

// Options configures a server started by [StartServer] or [Start]. The
// zero value is a plain server without persistence or password on a free
// port in a new temporary directory. Options is copied when the server
// starts; later changes to it (or to its Args slice) have no effect.
type Options struct {
	// Name labels the server in log lines and errors, so that a test
	// running several servers can tell them apart. Default: none.
	Name string

	// Args are extra server arguments, passed after the ones valkeytest
	// sets, as "--name", "value" pairs: []string{"--maxmemory", "10mb"}.
	// A later argument overrides an earlier one. Default: none.
	Args []string

	// Password, when not empty, sets requirepass (the password of the
	// default user). The readiness check and valkeytest's own connections
	// ([Server.Do]) authenticate with it. Default: no password.
	Password string

	// Username, when not empty, makes the server start with an ACL user
	// of that name, password Password and every permission (on ~* &*
	// +@all), and with the default user turned off; the readiness check
	// and valkeytest's own connections then authenticate as that user.
	// Password must be set too. Default: none (the default user).
	Username string

	// TLS, when set, makes the server accept TLS connections only: Port
	// is its TLS port (--tls-port, with --port 0). Default: nil (plain
	// TCP).
	TLS *TLSOptions

	// AppendOnly turns the append-only file on with "appendfsync always",
	// so that every acknowledged write survives Kill and Restart.
	// Default: off (and RDB snapshots are always off).
	AppendOnly bool

	// Dir is the server's working directory: its log, and its data files
	// when AppendOnly is set. Default: a new temporary directory, removed
	// by Stop. A Dir given here is created if missing and never removed.
	Dir string

	// Port is the TCP port on 127.0.0.1. Default 0: a free port, picked
	// again (up to 5 times) when another process takes it first.
	Port int
}
