package main

import (
	"errors"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/valkeytest"
)

// Without an address, a subcommand starts a throwaway server and stops it.
func TestThrowawayServerWithoutAddress(t *testing.T) {
	r := vactor(t, nil, "", "info")
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "stderr", r.stderr, "started a throwaway")
	mustContain(t, "stdout", r.stdout, "throwaway server", "role    primary")
}

// The flags override the environment: -addr wins over VALKEY_URL and
// VALKEY_ADDR, which name nothing that answers.
func TestFlagsOverrideEnvironment(t *testing.T) {
	srv := valkeytest.Start(t)
	env := []string{"VALKEY_URL=valkey://127.0.0.1:1/0", "VALKEY_ADDR=127.0.0.1:1", "VALKEY_DIAL_TIMEOUT=2s"}
	r := vactor(t, env, "", "ping", "-count", "2", "-addr", srv.Addr())
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "stdout", r.stdout, "target "+srv.Addr()+" (standalone)", "PING x2")

	// -addr keeps what VALKEY_URL says besides the address: here its
	// password.
	const pw = "env-pw"
	auth := valkeytest.Start(t, valkeytest.Options{Password: pw})
	r = vactor(t, []string{"VALKEY_URL=valkey://:" + pw + "@127.0.0.1:1/0"}, "", "ping", "-count", "1", "-addr", auth.Addr())
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "stdout", r.stdout, "target "+auth.Addr())

	// -url wins over the variables for what it says (qa-AM F2: a stale
	// VALKEY_PASSWORD made -url's password fail with WRONGPASS, VALKEY_DB
	// replaced its database, VALKEY_TLS_ENABLED its scheme); what it
	// leaves out still comes from them.
	stale := []string{"VALKEY_PASSWORD=stale-pw", "VALKEY_USERNAME=someone", "VALKEY_DB=5", "VALKEY_TLS_ENABLED=true", "VALKEY_DIAL_TIMEOUT=bogus"}
	r = vactor(t, stale, "", "info", "-url", "valkey://:"+pw+"@"+auth.Addr()+"/3?dial_timeout=2s")
	if r.code != exitOK {
		t.Fatalf("-url against stale variables: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "stdout", r.stdout, "target "+auth.Addr()+" (standalone, db 3)")
	r = vactor(t, []string{"VALKEY_PASSWORD=" + pw}, "", "ping", "-count", "1", "-url", "valkey://"+auth.Addr())
	if r.code != exitOK {
		t.Fatalf("-url without a password, VALKEY_PASSWORD set: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// And the environment alone is used as the library uses it.
	r = vactor(t, []string{"VALKEY_URL=valkey://" + srv.Addr()}, "", "ping", "-count", "1")
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "stdout", r.stdout, "target "+srv.Addr())
}

// A bad flag value is reported under the flag's name, and the password
// never shows, whether it is right, wrong, in a flag or in a URL.
func TestConfigErrorsNameFlagsAndHidePasswords(t *testing.T) {
	r := vactor(t, nil, "", "ping", "-addr", "no-port")
	if r.code != exitUsage {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
	}
	mustContain(t, "stderr", r.stderr, `invalid -addr (VALKEY_ADDR) "no-port"`)

	const secret = "s3cr3t-pw"
	srv := valkeytest.Start(t, valkeytest.Options{Password: secret})
	r = vactor(t, nil, "", "info", "-addr", srv.Addr(), "-password", secret)
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{
		{"ping", "-addr", srv.Addr(), "-password", secret + "-wrong"},
		{"ping", "-url", "valkey://:" + secret + "-wrong@" + srv.Addr()},
		{"ping", "-url", "valkey://:" + secret + "@" + srv.Addr() + "/x"},
	} {
		r = vactor(t, nil, "", args...)
		if r.code == exitOK {
			t.Fatalf("%q: exit 0 with a wrong password or URL", args)
		}
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Fatalf("%q: the password shows:\n%s%s", args, r.stdout, r.stderr)
		}
	}
	// Cluster mode or TLS without an address is refused, not served by a
	// throwaway standalone server.
	r = vactor(t, nil, "", "ping", "-cluster")
	if r.code != exitFailed || !strings.Contains(r.stderr, "no address configured") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
}

// Unknown commands and bad flags are usage errors.
func TestUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"nope"}, {"ping", "-nope"}, {"bench", "-op", "del"}, {"load", "-format", "xml"}, {"bench", "-concurrency", "0"}} {
		if r := vactor(t, nil, "", args...); r.code != exitUsage {
			t.Errorf("%q: exit %d, want %d\n%s", args, r.code, exitUsage, r.stderr)
		}
	}
	if r := vactor(t, nil, "", "help"); r.code != exitOK || !strings.Contains(r.stdout, "vactor COMMAND") {
		t.Errorf("help: exit %d\n%s", r.code, r.stdout)
	}
}

// docs/cli.md: a bad flag value is a usage error (exit status 2), for
// -url and -addr as for -count; a bad VALKEY_* variable, or a server that
// cannot be reached, is a failure (1). Every subcommand that takes the
// target flags says so, and none of them reaches the server.
func TestBadTargetFlagValueIsUsageError(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{})
	for _, sub := range []string{"ping", "info", "bench", "load"} {
		for _, flags := range [][]string{
			{"-url", "bad"},
			{"-url", "valkey://" + srv.Addr() + "?pool_size=0"},
			{"-addr", "no-port"},
			{"-addr", srv.Addr() + ","},
		} {
			args := append([]string{sub}, flags...)
			r := vactor(t, nil, "", args...)
			if r.code != exitUsage {
				t.Errorf("%q: exit %d, want %d (a bad flag value)\n%s", args, r.code, exitUsage, r.stderr)
			}
			mustContain(t, "stderr", r.stderr, "invalid "+flags[0]+" (")
		}
	}
	// A TLS file without -tls names the flag and says what is missing (it
	// said `invalid TLS.Enabled "false"`, naming neither flag).
	for _, f := range []string{"-tls-ca", "-tls-cert", "-tls-key"} {
		args := []string{"ping", "-addr", srv.Addr(), f, "some.pem"}
		r := vactor(t, nil, "", args...)
		if r.code != exitUsage {
			t.Errorf("%q: exit %d, want %d\n%s", args, r.code, exitUsage, r.stderr)
		}
		mustContain(t, "stderr", r.stderr, "invalid "+f+" (")
		mustContain(t, "stderr", r.stderr, "needs TLS: give -tls")
	}
	r := vactor(t, []string{"VALKEY_POOL_SIZE=0"}, "", "ping", "-addr", srv.Addr())
	if r.code != exitFailed {
		t.Errorf("bad VALKEY_POOL_SIZE: exit %d, want %d\n%s", r.code, exitFailed, r.stderr)
	}
	r = vactor(t, nil, "", "ping", "-addr", srv.Addr(), "-count", "1")
	if r.code != exitOK {
		t.Fatalf("good -addr: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// QA-L 5: -addr overrides sentinel settings of the environment, as -url
// does (docs/cli.md: the flags override the variables): the sentinel
// variables, and a VALKEY_URL's master_set (the URL still gives the
// database). Before, each exited 2: "conflicts with VALKEY_SENTINEL_MASTER".
func TestAddrOverridesSentinelEnvironment(t *testing.T) {
	srv := valkeytest.Start(t)
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"VALKEY_SENTINEL_MASTER=mymaster", "VALKEY_SENTINEL_ADDRS=127.0.0.1:1"}, srv.Addr() + " (standalone)"},
		{[]string{"VALKEY_SENTINEL_ADDRS=127.0.0.1:1,127.0.0.1:2"}, srv.Addr() + " (standalone)"},
		{[]string{"VALKEY_URL=valkey://127.0.0.1:1/2?master_set=mymaster&addr=127.0.0.1:2&dial_timeout=3s"}, srv.Addr() + " (standalone, db 2)"},
	} {
		r := vactor(t, tc.env, "", "ping", "-addr", srv.Addr(), "-count", "1")
		if r.code != exitOK {
			t.Errorf("%q: exit %d\n%s%s", tc.env, r.code, r.stdout, r.stderr)
			continue
		}
		mustContain(t, "ping", r.stdout, tc.want)
	}
}

// resolveIn resolves the target flags args in this process, as
// resolveTarget does but without starting a server, with env as the only
// VALKEY_* variables; the environment is restored when the test ends.
func resolveIn(t *testing.T, env map[string]string, args ...string) (config.Config, error) {
	t.Helper()
	var names []string
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "VALKEY_") {
			names = append(names, name)
		}
	}
	for _, name := range append(names, config.EnvVars...) {
		t.Setenv(name, "") // restored at the end
		if err := os.Unsetenv(name); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	var tf targetFlags
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	tf.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	fv, err := tf.apply(fs)
	if err != nil {
		t.Fatal(err)
	}
	return fv.load()
}

// qa-AX AX-4: -url and -addr name the server, so stale sentinel
// credentials and a bad VALKEY_HOST or VALKEY_PORT in the shell do not
// spoil them (docs/cli.md: the address and sentinel variables are
// ignored). Each of these failed with "needs sentinel mode" or "invalid
// VALKEY_PORT". A -url with master_set keeps the sentinels' credentials.
func TestTargetFlagsIgnoreStaleVariables(t *testing.T) {
	const addr = "127.0.0.1:39985"
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want func(config.Config) bool
	}{
		{"-url, sentinel password", map[string]string{"VALKEY_SENTINEL_PASSWORD": "spw"},
			[]string{"-url", "redis://:pw@" + addr},
			func(c config.Config) bool { return !c.SentinelMode && c.SentinelPassword == "" && c.Password == "pw" }},
		{"-url, sentinel user and refresh interval", map[string]string{"VALKEY_SENTINEL_USERNAME": "su", "VALKEY_SENTINEL_REFRESH_INTERVAL": "bogus"},
			[]string{"-url", "valkey://" + addr},
			func(c config.Config) bool { return !c.SentinelMode && c.SentinelUsername == "" }},
		{"-addr, sentinel user", map[string]string{"VALKEY_SENTINEL_USERNAME": "su"},
			[]string{"-addr", addr, "-password", "pw"},
			func(c config.Config) bool { return !c.SentinelMode && c.SentinelUsername == "" && c.Password == "pw" }},
		{"-addr, sentinel password and a VALKEY_URL with master_set", map[string]string{
			"VALKEY_URL": "valkey://:pw@127.0.0.1:1/2?master_set=m", "VALKEY_SENTINEL_PASSWORD": "spw"},
			[]string{"-addr", addr},
			func(c config.Config) bool {
				return !c.SentinelMode && c.SentinelPassword == "" && c.Password == "pw" && c.DB == 2
			}},
		{"-addr, VALKEY_PORT=0", map[string]string{"VALKEY_PORT": "0"}, []string{"-addr", addr},
			func(c config.Config) bool { return true }},
		{"-addr, bad VALKEY_HOST", map[string]string{"VALKEY_HOST": "bad host"}, []string{"-addr", addr},
			func(c config.Config) bool { return true }},
		{"-url with master_set keeps the sentinels' credentials", map[string]string{
			"VALKEY_SENTINEL_USERNAME": "su", "VALKEY_SENTINEL_PASSWORD": "spw", "VALKEY_SENTINEL_REFRESH_INTERVAL": "2s"},
			[]string{"-url", "valkey://s1:26379?master_set=m"},
			func(c config.Config) bool {
				return c.SentinelMode && c.SentinelUsername == "su" && c.SentinelPassword == "spw" && c.SentinelRefreshInterval.String() == "2s"
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := resolveIn(t, tc.env, tc.args...)
			if err != nil {
				t.Fatalf("%q with %v: %v", tc.args, tc.env, err)
			}
			if !tc.want(cfg) {
				t.Errorf("%q with %v: %v", tc.args, tc.env, cfg)
			}
			if !cfg.SentinelMode && !strings.Contains(strings.Join(cfg.Addresses(), ","), addr) {
				t.Errorf("%q with %v: addresses %q, want %s", tc.args, tc.env, cfg.Addresses(), addr)
			}
		})
	}
}

// qa-AX AX-5: a TLS variable with a plain -url was refused with "set
// VALKEY_TLS_ENABLED=true", which the user had done: -url cleared it,
// since its scheme decides TLS. The error says so now.
func TestPlainURLWithTLSVariableSaysWhy(t *testing.T) {
	for _, env := range []map[string]string{
		{"VALKEY_TLS_ENABLED": "true", "VALKEY_TLS_CA_FILE": "/certs/ca.pem"},
		{"VALKEY_TLS_CA_FILE": "/certs/ca.pem"},
		{"VALKEY_TLS_ENABLED": "true", "VALKEY_TLS_INSECURE_SKIP_VERIFY": "true"},
	} {
		_, err := resolveIn(t, env, "-url", "Redis://127.0.0.1:1")
		var fe *config.FieldError
		if !errors.As(err, &fe) || !errors.Is(err, config.ErrInvalidConfig) {
			t.Fatalf("%v: %v, want a *config.FieldError", env, err)
		}
		if strings.Contains(err.Error(), "set VALKEY_TLS_ENABLED") {
			t.Errorf("%v: %v: still says to set VALKEY_TLS_ENABLED", env, err)
		}
		for _, want := range []string{"needs TLS, which -url turns off: its scheme is redis://", "VALKEY_TLS_ENABLED is ignored",
			"use a valkeys:// or rediss:// URL, give -tls, or unset " + fe.Field} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%v: %v, want it to say %q", env, err, want)
			}
		}
	}
	// A TLS scheme, or -tls, turns TLS on: no error.
	env := map[string]string{"VALKEY_TLS_ENABLED": "true", "VALKEY_TLS_CA_FILE": "/certs/ca.pem"}
	for _, args := range [][]string{{"-url", "rediss://127.0.0.1:1"}, {"-url", "redis://127.0.0.1:1", "-tls"}} {
		if cfg, err := resolveIn(t, env, args...); err != nil || !cfg.TLS.Enabled || cfg.TLS.CAFile != "/certs/ca.pem" {
			t.Errorf("%q: TLS %+v, %v", args, cfg.TLS, err)
		}
	}
	// Without -url the library's hint is right, and kept.
	if _, err := resolveIn(t, map[string]string{"VALKEY_TLS_CA_FILE": "/certs/ca.pem"}, "-addr", "127.0.0.1:1"); err == nil ||
		!strings.Contains(err.Error(), "set VALKEY_TLS_ENABLED=true") {
		t.Errorf("VALKEY_TLS_CA_FILE alone: %v", err)
	}
	// A flag's TLS file with -url names the flag, as before.
	if _, err := resolveIn(t, nil, "-url", "redis://127.0.0.1:1", "-tls-ca", "ca.pem"); err == nil ||
		!strings.Contains(err.Error(), "invalid -tls-ca (VALKEY_TLS_CA_FILE)") || !strings.Contains(err.Error(), "give -tls") {
		t.Errorf("-tls-ca with a plain -url: %v", err)
	}
}

// The commands of qa-AX AX-4, run: each exited 1.
func TestStaleVariablesDoNotSpoilFlagsEndToEnd(t *testing.T) {
	const pw = "defpw"
	srv := valkeytest.Start(t, valkeytest.Options{Password: pw})
	for _, tc := range []struct {
		env  []string
		args []string
	}{
		{[]string{"VALKEY_SENTINEL_PASSWORD=spw"}, []string{"-url", "redis://:" + pw + "@" + srv.Addr()}},
		{[]string{"VALKEY_SENTINEL_USERNAME=su"}, []string{"-addr", srv.Addr(), "-password", pw}},
		{[]string{"VALKEY_PORT=0", "VALKEY_PASSWORD=" + pw}, []string{"-addr", srv.Addr()}},
		{[]string{"VALKEY_HOST=bad host", "VALKEY_PASSWORD=" + pw}, []string{"-addr", srv.Addr()}},
	} {
		args := append([]string{"ping", "-count", "1"}, tc.args...)
		r := vactor(t, tc.env, "", args...)
		if r.code != exitOK {
			t.Errorf("%q %q: exit %d\n%s%s", tc.env, args, r.code, r.stdout, r.stderr)
		}
	}
}
