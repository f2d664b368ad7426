package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/valkeytest"
)

// targetFlags are the connection flags every subcommand takes. They
// override the VALKEY_* environment variables that config.LoadFromEnv
// reads: resolve turns each flag given into the variable it stands for,
// in this process's environment, and then calls config.LoadFromEnv, so the
// configuration is resolved exactly as the library resolves it (and the
// bench workers, which inherit the environment, resolve the same one).
type targetFlags struct {
	url, addr                 string
	cluster, tls, tlsInsecure bool
	tlsCA, tlsCert, tlsKey    string
	user, password            string
}

// register adds the connection flags to fs.
func (t *targetFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.url, "url", "", "server URL, as VALKEY_URL: valkey[s]://[user[:password]@]host[:port][/db][?param=...]")
	fs.StringVar(&t.addr, "addr", "", "server address host:port, or cluster seeds host:port,host:port,... (as VALKEY_ADDR / VALKEY_ADDRS)")
	fs.BoolVar(&t.cluster, "cluster", false, "cluster mode: the addresses are seeds of a Valkey cluster (VALKEY_CLUSTER_MODE)")
	fs.BoolVar(&t.tls, "tls", false, "connect with TLS (VALKEY_TLS_ENABLED)")
	fs.StringVar(&t.tlsCA, "tls-ca", "", "PEM file of the authorities that sign the server's certificate (VALKEY_TLS_CA_FILE)")
	fs.StringVar(&t.tlsCert, "tls-cert", "", "PEM client certificate for mutual TLS (VALKEY_TLS_CERT_FILE)")
	fs.StringVar(&t.tlsKey, "tls-key", "", "PEM key of -tls-cert (VALKEY_TLS_KEY_FILE)")
	fs.BoolVar(&t.tlsInsecure, "tls-insecure", false, "do not verify the server's certificate; for tests only (VALKEY_TLS_INSECURE_SKIP_VERIFY)")
	fs.StringVar(&t.user, "user", "", "ACL user name (VALKEY_USERNAME)")
	fs.StringVar(&t.password, "password", "", "password (VALKEY_PASSWORD; prefer the variable: a flag shows in the process list)")
}

// flagVars says what the flags did to the environment, so that an error
// about a variable names the flag, or the flag that made it fail.
type flagVars struct {
	// byVar maps each variable apply set to the flag that set it.
	byVar map[string]string
	// tlsOffBy is the scheme of -url ("redis", "valkey") when it turned
	// TLS off by clearing VALKEY_TLS_ENABLED, or "".
	tlsOffBy string
}

// sentinelVars are the VALKEY_SENTINEL_* variables: what -url without
// master_set and -addr clear, since they name no sentinel.
var sentinelVars = func() []string {
	var names []string
	for _, v := range config.EnvVars {
		if strings.HasPrefix(v, "VALKEY_SENTINEL_") {
			names = append(names, v)
		}
	}
	return names
}()

// apply sets, in the process environment, the variable each flag given on
// fs stands for: -url is VALKEY_URL, -addr VALKEY_ADDR (VALKEY_ADDRS for
// a list), -cluster VALKEY_CLUSTER_MODE, and so on. So that the flag wins
// over the environment, -url also clears VALKEY_HOST, VALKEY_PORT,
// VALKEY_ADDR and VALKEY_ADDRS (which the library applies after the URL)
// and the sentinel variables (all of them, credentials included, unless
// the URL has a master_set, which keeps the sentinels' credentials and
// refresh interval), and -addr clears VALKEY_HOST, VALKEY_PORT,
// VALKEY_ADDR, VALKEY_ADDRS, every VALKEY_SENTINEL_* variable and a
// VALKEY_URL's master_set (a VALKEY_URL keeps giving its credentials,
// database and TLS).
func (t *targetFlags) apply(fs *flag.FlagSet) (flagVars, error) {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	set := flagVars{byVar: map[string]string{}}
	setenv := func(name, flagName, value string) error {
		set.byVar[name] = "-" + flagName
		return os.Setenv(name, value)
	}
	unset := func(names ...string) error {
		for _, v := range names {
			if err := os.Unsetenv(v); err != nil {
				return err
			}
		}
		return nil
	}
	if given["url"] {
		if err := unset(config.ServerEnvVars...); err != nil {
			return flagVars{}, err
		}
		// What the URL says wins over the variables that would override
		// it in LoadFromEnv (a stale VALKEY_PASSWORD in the shell made
		// -url's password fail with WRONGPASS, VALKEY_DB=5 replaced its
		// /3): its user, password, database and scheme (TLS). What it
		// leaves out still comes from them (VALKEY_PASSWORD is the way to
		// keep a password out of the process list).
		if err := unset(urlGiven(t.url)...); err != nil {
			return flagVars{}, err
		}
		// Without master_set the URL names no sentinel: the sentinels'
		// credentials of the environment would be refused ("needs
		// sentinel mode") although -url says which server to use.
		if !hasSentinel(t.url) {
			if err := unset(sentinelVars...); err != nil {
				return flagVars{}, err
			}
		}
		set.tlsOffBy = plainScheme(t.url)
		if err := setenv("VALKEY_URL", "url", t.url); err != nil {
			return flagVars{}, err
		}
	}
	if given["addr"] {
		// -addr names the server: sentinels named by the environment
		// would name another (and the library refuses both), and
		// VALKEY_HOST and VALKEY_PORT, which -addr overrides, are
		// checked by the library even then (VALKEY_PORT=0 made -addr
		// fail).
		if err := unset("VALKEY_HOST", "VALKEY_PORT", "VALKEY_ADDR", "VALKEY_ADDRS"); err != nil {
			return flagVars{}, err
		}
		if err := unset(sentinelVars...); err != nil {
			return flagVars{}, err
		}
		if u, ok := withoutSentinel(os.Getenv("VALKEY_URL")); ok {
			if err := os.Setenv("VALKEY_URL", u); err != nil {
				return flagVars{}, err
			}
		}
		name := "VALKEY_ADDR"
		if strings.Contains(t.addr, ",") {
			name = "VALKEY_ADDRS"
		}
		if err := setenv(name, "addr", t.addr); err != nil {
			return flagVars{}, err
		}
	}
	bools := []struct {
		flag, env string
		v         bool
	}{
		{"cluster", "VALKEY_CLUSTER_MODE", t.cluster},
		{"tls", "VALKEY_TLS_ENABLED", t.tls},
		{"tls-insecure", "VALKEY_TLS_INSECURE_SKIP_VERIFY", t.tlsInsecure},
	}
	for _, b := range bools {
		if given[b.flag] {
			if err := setenv(b.env, b.flag, strconv.FormatBool(b.v)); err != nil {
				return flagVars{}, err
			}
		}
	}
	strs := []struct {
		flag, env string
		v         string
	}{
		{"tls-ca", "VALKEY_TLS_CA_FILE", t.tlsCA},
		{"tls-cert", "VALKEY_TLS_CERT_FILE", t.tlsCert},
		{"tls-key", "VALKEY_TLS_KEY_FILE", t.tlsKey},
		{"user", "VALKEY_USERNAME", t.user},
		{"password", "VALKEY_PASSWORD", t.password},
	}
	for _, s := range strs {
		if given[s.flag] {
			if err := setenv(s.env, s.flag, s.v); err != nil {
				return flagVars{}, err
			}
		}
	}
	return set, nil
}

// urlGiven returns the variables whose setting the URL u gives itself:
// VALKEY_USERNAME for its userinfo (which names the user, or the default
// one), VALKEY_PASSWORD for a password in it,
// VALKEY_DB for a database in its path, VALKEY_TLS_ENABLED for its
// scheme (valkeys and rediss are TLS, the others not), and those of its
// query parameters (urlParamVars). An unparsable URL gives none (the
// library's error names it).
func urlGiven(u string) []string {
	p, err := url.Parse(u)
	if err != nil {
		return nil
	}
	var vars []string
	if p.Scheme != "" {
		vars = append(vars, "VALKEY_TLS_ENABLED")
	}
	if p.User != nil {
		// Userinfo names the user, "" the default one ("valkey://:pw@").
		vars = append(vars, "VALKEY_USERNAME")
		if _, ok := p.User.Password(); ok {
			vars = append(vars, "VALKEY_PASSWORD")
		}
	}
	if strings.Trim(p.Path, "/") != "" {
		vars = append(vars, "VALKEY_DB")
	}
	for param := range p.Query() {
		if v, ok := urlParamVars[param]; ok {
			vars = append(vars, v)
		}
	}
	return vars
}

// urlParamVars maps a URL query parameter to the variable that would
// override it.
var urlParamVars = map[string]string{
	"dial_timeout":  "VALKEY_DIAL_TIMEOUT",
	"read_timeout":  "VALKEY_READ_TIMEOUT",
	"write_timeout": "VALKEY_WRITE_TIMEOUT",
	"pool_size":     "VALKEY_POOL_SIZE",
	"client_name":   "VALKEY_CLIENT_NAME",
	"driver":        "VALKEY_DRIVER",
	"db":            "VALKEY_DB",
	"max_retries":   "VALKEY_MAX_RETRIES",
	"skip_verify":   "VALKEY_TLS_INSECURE_SKIP_VERIFY",
}

// hasSentinel reports whether the URL u has a master_set (sentinel
// mode). An unparsable URL has none (the library reports it).
func hasSentinel(u string) bool {
	p, err := url.Parse(u)
	return err == nil && p.Query().Has("master_set")
}

// plainScheme returns the scheme of the URL u, in lower case, when it is
// one of plain TCP (valkey, redis), which turns TLS off whatever
// VALKEY_TLS_ENABLED says (urlGiven clears it); "" otherwise, and for an
// unparsable URL (the library reports it).
func plainScheme(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	switch scheme := strings.ToLower(p.Scheme); scheme {
	case "valkey", "redis":
		return scheme
	}
	return ""
}

// withoutSentinel returns the URL u without its sentinel parameters
// (master_set, and the addr of further sentinels), and true, when it has
// a master_set: -addr overrides the sentinels as it overrides the URL's
// host, and the URL keeps giving credentials, database and TLS.
func withoutSentinel(u string) (string, bool) {
	if u == "" {
		return "", false
	}
	p, err := url.Parse(u)
	if err != nil {
		return "", false // the library reports it
	}
	q := p.Query()
	if !q.Has("master_set") {
		return "", false
	}
	q.Del("master_set")
	q.Del("addr")
	p.RawQuery = q.Encode()
	return p.String(), true
}

// tlsNeeded is the end of the library's reason for a TLS setting given
// without TLS (config: "needs TLS: set VALKEY_TLS_ENABLED=true, or use a
// valkeys:// or rediss:// URL"), which load rewords.
const tlsNeeded = "set VALKEY_TLS_ENABLED=true"

// load resolves the configuration with config.LoadFromEnv; an error
// about a variable a flag set names the flag, and one a flag caused says
// so.
func (fv flagVars) load() (config.Config, error) {
	cfg, err := config.LoadFromEnv()
	if err == nil {
		return cfg, nil
	}
	var fe *config.FieldError
	if errors.As(err, &fe) {
		if _, byFlag := fv.byVar[fe.Field]; !byFlag && fv.tlsOffBy != "" && strings.Contains(fe.Reason, tlsNeeded) {
			// A TLS variable (VALKEY_TLS_CA_FILE, ...) with -url
			// redis://...: the user may well have set VALKEY_TLS_ENABLED,
			// which -url cleared since its scheme decides. Say so rather
			// than tell them to set it.
			return config.Config{}, &config.FieldError{Field: fe.Field, Value: fe.Value,
				Reason: "needs TLS, which -url turns off: its scheme is " + fv.tlsOffBy + "://, and with -url the scheme decides " +
					"(VALKEY_TLS_ENABLED is ignored); use a valkeys:// or rediss:// URL, give -tls, or unset " + fe.Field}
		}
		if name, ok := fv.byVar[fe.Field]; ok {
			// The field error redacts passwords and URLs; keep its text.
			msg := strings.Replace(fe.Error(), "invalid "+fe.Field, "invalid "+name+" ("+fe.Field+")", 1)
			// -tls-ca and the like without -tls: the reason names the variable.
			msg = strings.Replace(msg, tlsNeeded, "give -tls", 1)
			// -tls-cert without -tls-key, and the other way round.
			msg = strings.Replace(msg, "needs VALKEY_TLS_KEY_FILE too: set both", "needs -tls-key too: give both", 1)
			msg = strings.Replace(msg, "needs VALKEY_TLS_CERT_FILE too: set both", "needs -tls-cert too: give both", 1)
			return config.Config{}, badFlagValue{fmt.Errorf("%s: %w", strings.TrimPrefix(msg, "config: "), config.ErrInvalidConfig)}
		}
	}
	return config.Config{}, err
}

// badFlagValue is a configuration error about a value a flag gave: a
// usage error (exit status 2), as a bad -count or -timeout is.
type badFlagValue struct{ err error }

func (e badFlagValue) Error() string { return e.err.Error() }
func (e badFlagValue) Unwrap() error { return e.err }

// targetExit is the exit status for an error of resolveTarget: exitUsage
// for a bad flag value, exitFailed otherwise (a bad VALKEY_* variable, no
// throwaway server).
func targetExit(err error) int {
	var bf badFlagValue
	if errors.As(err, &bf) {
		return exitUsage
	}
	return exitFailed
}

// target is the resolved configuration and, when none was configured,
// the throwaway server started for it.
type target struct {
	cfg    config.Config
	server *valkeytest.Server // nil unless started here
}

// resolveTarget applies the flags, loads the configuration and, when no
// address is configured, starts a throwaway server on a free 127.0.0.1
// port (as `make demo` does) and points the configuration at it; the
// caller stops it with close. Progress notes go to stderr.
func resolveTarget(t *targetFlags, fs *flag.FlagSet, stderr io.Writer) (*target, error) {
	fv, err := t.apply(fs)
	if err != nil {
		return nil, err
	}
	if !config.EnvNamesServer() {
		// Check the rest of the configuration first: a bad variable is
		// reported before a server is started.
		cfg, err := fv.load()
		if err != nil {
			return nil, err
		}
		if cfg.ClusterMode || cfg.TLS.Enabled {
			return nil, errors.New("no address configured: cluster mode and TLS need one (-addr, -url, VALKEY_ADDR or VALKEY_URL)")
		}
		srv, err := valkeytest.StartServer(valkeytest.Options{Name: "vactor"})
		if err != nil {
			return nil, fmt.Errorf("no address configured, and no throwaway server could be started: %w", err)
		}
		if err := os.Setenv("VALKEY_ADDR", srv.Addr()); err != nil {
			_ = srv.Stop()
			return nil, err
		}
		fmt.Fprintf(stderr, "vactor: no address configured (-addr, -url, VALKEY_ADDR, VALKEY_URL): started a throwaway %s on %s\n",
			filepath.Base(srv.Binary()), srv.Addr())
		cfg, err = fv.load()
		if err != nil {
			_ = srv.Stop()
			return nil, err
		}
		return &target{cfg: cfg, server: srv}, nil
	}
	cfg, err := fv.load()
	if err != nil {
		return nil, err
	}
	if err := fv.checkTLSFiles(cfg); err != nil {
		return nil, err
	}
	return &target{cfg: cfg}, nil
}

// tlsFileVars maps the TLS file fields of the configuration to their
// variables.
var tlsFileVars = map[string]string{
	"TLS.CAFile":   "VALKEY_TLS_CA_FILE",
	"TLS.CertFile": "VALKEY_TLS_CERT_FILE",
	"TLS.KeyFile":  "VALKEY_TLS_KEY_FILE",
}

// checkTLSFiles reads the TLS files now, as the engine would, so that a
// file a flag named and that cannot be used (-tls-ca /missing) is a bad
// flag value, reported before anything runs. A file a variable named is
// left to the engine (a failure, exit status 1).
func (fv flagVars) checkTLSFiles(cfg config.Config) error {
	_, err := cfg.TLS.ClientConfig()
	var fe *config.FieldError
	if err == nil || !errors.As(err, &fe) {
		return nil
	}
	name, ok := fv.byVar[tlsFileVars[fe.Field]]
	if !ok {
		return nil
	}
	msg := strings.Replace(fe.Error(), "invalid "+fe.Field, "invalid "+name, 1)
	msg = strings.Replace(msg, "(with TLS.KeyFile)", "(with -tls-key)", 1)
	return badFlagValue{fmt.Errorf("%s: %w", strings.TrimPrefix(msg, "config: "), config.ErrInvalidConfig)}
}

// describe names the target for output: its addresses and mode, never
// its credentials.
func (t *target) describe() string {
	mode, addrs := "standalone", t.cfg.Addresses()
	switch {
	case t.cfg.ClusterMode:
		mode = "cluster"
	case t.cfg.SentinelMode:
		mode, addrs = "sentinel, master "+t.cfg.SentinelMasterName, t.cfg.SentinelAddrs
	}
	s := strings.Join(addrs, ",") + " (" + mode
	if t.cfg.TLS.Enabled {
		s += ", TLS"
	}
	if t.cfg.DB != 0 {
		s += ", db " + strconv.Itoa(t.cfg.DB)
	}
	if t.server != nil {
		s += ", throwaway server"
	}
	return s + ")"
}

// close stops the throwaway server, if any.
func (t *target) close() error {
	if t.server == nil {
		return nil
	}
	return t.server.Stop()
}
