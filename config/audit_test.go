package config_test

// A user-side audit of configuration: URLs, VALKEY_* variables and the
// builder as docs/configuration.md describes them, through the public API
// only. Every error is checked for naming the bad part and for never
// holding the password.

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
)

const auditSecret = "Pa55-W0rd-aud1t" // never to appear in any output

// wantConfigErr checks that err is a *config.FieldError for field whose
// message holds want and never the password.
func wantConfigErr(t *testing.T, err error, field, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one naming %s", field)
	}
	var fe *config.FieldError
	if !errors.As(err, &fe) || !errors.Is(err, config.ErrInvalidConfig) {
		t.Fatalf("error %v (%T) is not a *config.FieldError", err, err)
	}
	if fe.Field != field {
		t.Errorf("error names %q, want %q: %v", fe.Field, field, err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%#v", err), fmt.Sprintf("%+v", err), fe.Value} {
		if strings.Contains(s, auditSecret) {
			t.Errorf("error leaks the password: %s", s)
		}
	}
}

// The four schemes of the docs, in any case; TLS on for the "s" ones.
func TestAuditURLSchemes(t *testing.T) {
	for scheme, tlsOn := range map[string]bool{"redis": false, "rediss": true, "valkey": false, "valkeys": true, "VALKEYS": true, "Redis": false} {
		cfg, err := config.ParseURL(scheme + "://cache:7000")
		if err != nil {
			t.Fatalf("%s: %v", scheme, err)
		}
		if cfg.TLS.Enabled != tlsOn || cfg.Addresses()[0] != "cache:7000" {
			t.Errorf("%s: TLS %v, addresses %v; want TLS %v, cache:7000", scheme, cfg.TLS.Enabled, cfg.Addresses(), tlsOn)
		}
	}
	// Unix sockets are not documented: refused, naming the scheme.
	for _, s := range []string{"unix:///tmp/valkey.sock", "valkey+unix:///tmp/valkey.sock", "http://h"} {
		_, err := config.ParseURL(s)
		wantConfigErr(t, err, "URL", "unsupported scheme")
	}
}

// User names and passwords with every special character, percent-encoded,
// come back exactly. An unencoded '@' in them is refused, as documented
// (url.Parse would take the last '@' for the end of the user information),
// with an error that says to encode it and does not quote the password.
func TestAuditURLCredentials(t *testing.T) {
	for _, tc := range []struct{ url, user, pass string }{
		{"valkey://app%40corp:p%40ss%2Fw%3Fo%23r%25d%3A%20x@h", "app@corp", "p@ss/w?o#r%d: x"},
		{"valkey://:" + auditSecret + "@h", "", auditSecret},
		{"valkey://app@h", "app", ""},
		{"valkey://app:p%40ss@h", "app", "p@ss"},
		{"valkey://app:%C3%BCml%C3%A4ut@h", "app", "ümläut"},
	} {
		cfg, err := config.ParseURL(tc.url)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		if cfg.Username != tc.user || cfg.Password != tc.pass {
			t.Errorf("%s: user %q, password %q; want %q, %q", tc.url, cfg.Username, cfg.Password, tc.user, tc.pass)
		}
	}
	for _, url := range []string{"valkey://app:p@" + auditSecret + "@h", "valkey://app:" + auditSecret + "@@h"} {
		_, err := config.ParseURL(url)
		wantConfigErr(t, err, "URL", "percent-encode '@' as %40")
	}
}

// IPv6 hosts go in brackets; without them url.Parse would take the last
// group for a port ("fe80::1" as host "fe80:", port 1): refused, naming
// the host.
func TestAuditURLIPv6(t *testing.T) {
	for url, want := range map[string]string{
		"valkey://[::1]:6380":                "[::1]:6380",
		"valkey://[::1]":                     "[::1]:6379",
		"valkeys://u:p@[fe80::1%25eth0]:1/2": "[fe80::1%eth0]:1",
	} {
		cfg, err := config.ParseURL(url)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		if got := cfg.Addresses(); len(got) != 1 || got[0] != want {
			t.Errorf("%s: addresses %v, want [%s]", url, got, want)
		}
	}
	for _, url := range []string{"valkey://fe80::1", "valkey://::1", "valkey://u:" + auditSecret + "@2001:db8::5:6380"} {
		cfg, err := config.ParseURL(url)
		if err == nil {
			t.Errorf("%s: parsed as %v, want an error", url, cfg.Addresses())
			continue
		}
		wantConfigErr(t, err, "URL host", "must be in brackets")
	}
	// The same rule for Host set directly: "fe80:" is no address.
	wantConfigErr(t, config.DefaultConfig().WithHost("fe80:").Validate(), "Host", "without brackets or port")
	wantConfigErr(t, config.DefaultConfig().WithHost("cache:6379").Validate(), "Host", "without brackets or port")
	if err := config.DefaultConfig().WithHost("::1").Validate(); err != nil {
		t.Errorf("Host ::1: %v", err)
	}
}

// Port, database and documented query parameters.
func TestAuditURLParts(t *testing.T) {
	cfg, err := config.ParseURL("rediss://u:" + auditSecret + "@cache/3?dial_timeout=250ms&read_timeout=1s&write_timeout=2s" +
		"&pool_size=4&client_name=api&protocol=3&max_retries=0&skip_verify&addr=b:7001&addr=c")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"cache:6379", "b:7001", "c:6379"}
	if fmt.Sprint(cfg.Addrs) != fmt.Sprint(want) || cfg.DB != 3 || cfg.DialTimeout != 250*time.Millisecond ||
		cfg.ReadTimeout != time.Second || cfg.WriteTimeout != 2*time.Second || cfg.PoolSize != 4 ||
		cfg.ClientName != "api" || cfg.MaxRetries != 0 || !cfg.TLS.InsecureSkipVerify {
		t.Errorf("parsed %v", cfg)
	}
	if cfg, err := config.ParseURL("valkey://h?db=5"); err != nil || cfg.DB != 5 {
		t.Errorf("db=5: DB %d, %v", cfg.DB, err)
	}
	if cfg, err := config.ParseURL("valkey://h?master_set=mymaster&addr=s2:26379"); err != nil || !cfg.SentinelMode ||
		cfg.SentinelMasterName != "mymaster" || fmt.Sprint(cfg.SentinelAddrs) != "[h:6379 s2:26379]" || len(cfg.Addrs) != 0 {
		t.Errorf("master_set: %v, %v", cfg, err)
	}
	p := "valkey://u:" + auditSecret + "@h"
	for _, tc := range []struct{ url, field, want string }{
		{p + ":", "URL port", "between 1 and 65535"},
		{p + ":70000", "URL port", "between 1 and 65535"},
		{p + ":+1", "URL", `invalid port ":+1"`},
		{p + "/x", "URL db", "non-negative integer"},
		{p + "/1/2", "URL db", "non-negative integer"},
		{p + "/1?db=2", "URL db", "both as the path and as a parameter"},
		{p + "?tls=true", "URL query", `"tls": unknown parameter`},
		{p + "?password=" + auditSecret, "URL query", `"password": unknown parameter`},
		{p + "?dial_timeout=5", "URL dial_timeout", "not a duration"},
		{p + "?dial_timeout=-1s", "URL dial_timeout", "greater than 0"},
		{p + "?pool_size=0", "URL pool_size", "between 1 and 1024"},
		{p + "?pool_size=1&pool_size=2", "URL query", "more than once"},
		{p + "?skip_verify", "URL skip_verify", "only with a TLS scheme"},
		{p + "#frag", "URL", "fragment not allowed"},
		// The bad part is the user information: say so, without quoting it.
		{"valkey://u:" + auditSecret + "%zz@h", "URL", "bad user information (percent-encode"},
		{"valkey://u:" + auditSecret + " x@h", "URL", "bad user information (percent-encode"},
		{"valkey://u:" + auditSecret + "/x@h", "URL", "percent-encode"},
	} {
		_, err := config.ParseURL(tc.url)
		wantConfigErr(t, err, tc.field, tc.want)
	}
}

// No way of printing or logging a Config shows its passwords.
func TestAuditConfigNeverPrintsPassword(t *testing.T) {
	cfg, err := config.ParseURL("valkeys://app:" + auditSecret + "@cache:6380/1")
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.WithSentinelPassword(auditSecret + "2")
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "cfg", cfg)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "cfg", &cfg)
	outs := []string{cfg.String(), buf.String(), fmt.Sprint(cfg), fmt.Sprintf("%+v %#v %s %q %v", cfg, cfg, &cfg, cfg, []config.Config{cfg}),
		fmt.Sprintf("%+v", struct{ C config.Config }{cfg})}
	for _, s := range outs {
		if strings.Contains(s, auditSecret) {
			t.Errorf("password printed: %s", s)
		}
		if !strings.Contains(s, "[redacted]") {
			t.Errorf("no [redacted] marker: %s", s)
		}
	}
}

// clearEnv unsets (sets to "", which LoadFromEnv treats as unset) every
// variable LoadFromEnv reads, for the test.
func clearEnv(t *testing.T) {
	for _, v := range config.EnvVars {
		t.Setenv(v, "")
	}
}

// Every variable of docs/configuration.md's table parses as documented.
func TestAuditEnvDocumented(t *testing.T) {
	for _, tc := range []struct {
		env   map[string]string
		check func(config.Config) bool
	}{
		{map[string]string{"VALKEY_URL": "rediss://u:" + auditSecret + "@h:7000/2"}, func(c config.Config) bool {
			return c.Addresses()[0] == "h:7000" && c.Password == auditSecret && c.DB == 2 && c.TLS.Enabled
		}},
		{map[string]string{"VALKEY_HOST": "::1", "VALKEY_PORT": "7000"}, func(c config.Config) bool { return c.Addresses()[0] == "[::1]:7000" }},
		{map[string]string{"VALKEY_ADDR": "[::1]:7000"}, func(c config.Config) bool { return c.Addresses()[0] == "[::1]:7000" }},
		{map[string]string{"VALKEY_ADDRS": "a:1, b:2"}, func(c config.Config) bool { return fmt.Sprint(c.Addrs) == "[a:1 b:2]" }},
		{map[string]string{"VALKEY_USERNAME": "app", "VALKEY_PASSWORD": " " + auditSecret + " "}, func(c config.Config) bool {
			return c.Username == "app" && c.Password == " "+auditSecret+" "
		}},
		{map[string]string{"VALKEY_DB": "3", "VALKEY_CLIENT_NAME": "api", "VALKEY_POOL_SIZE": "4"}, func(c config.Config) bool {
			return c.DB == 3 && c.ClientName == "api" && c.PoolSize == 4
		}},
		{map[string]string{"VALKEY_PROVIDER": "a", "VALKEY_DRIVER": "b"}, func(c config.Config) bool { return c.Driver == "b" }},
		{map[string]string{"VALKEY_DIAL_TIMEOUT": "250ms", "VALKEY_READ_TIMEOUT": "0", "VALKEY_WRITE_TIMEOUT": "1m"}, func(c config.Config) bool {
			return c.DialTimeout == 250*time.Millisecond && c.ReadTimeout == 0 && c.WriteTimeout == time.Minute
		}},
		{map[string]string{"VALKEY_MAILBOX_CAPACITY": "10", "VALKEY_BACKPRESSURE": "reject", "VALKEY_MAX_BATCH_SIZE": "7", "VALKEY_DRAIN_TIMEOUT": "0s", "VALKEY_LOG_LEVEL": "debug"}, func(c config.Config) bool {
			return c.MailboxCapacity == 10 && c.Backpressure == config.BackpressureReject && c.MaxBatchSize == 7 && c.DrainTimeout == 0 && c.LogLevel == config.LogLevelDebug
		}},
		{map[string]string{"VALKEY_MAX_RETRIES": "0", "VALKEY_MIN_RETRY_BACKOFF": "1ms", "VALKEY_MAX_RETRY_BACKOFF": "1s"}, func(c config.Config) bool {
			return c.MaxRetries == 0 && c.MinRetryBackoff == time.Millisecond && c.MaxRetryBackoff == time.Second
		}},
		{map[string]string{"VALKEY_CIRCUIT_BREAKER_THRESHOLD": "9", "VALKEY_CIRCUIT_BREAKER_OPEN_TIMEOUT": "2s", "VALKEY_CIRCUIT_BREAKER_FAILURE_RATE": "0.5", "VALKEY_CIRCUIT_BREAKER_PERIOD": "1m"}, func(c config.Config) bool {
			return c.CircuitBreakerThreshold == 9 && c.CircuitBreakerOpenTimeout == 2*time.Second && c.CircuitBreakerFailureRate == 0.5 && c.CircuitBreakerPeriod == time.Minute
		}},
		{map[string]string{"VALKEY_CLUSTER_MODE": "true", "VALKEY_READ_FROM": "prefer-replica", "VALKEY_MAX_REDIRECTS": "0", "VALKEY_CLUSTER_REFRESH_INTERVAL": "0"}, func(c config.Config) bool {
			return c.ClusterMode && c.ReadFrom == config.ReadFromPreferReplica && c.MaxRedirects == 0 && c.ClusterRefreshInterval == 0
		}},
		{map[string]string{"VALKEY_SENTINEL_MASTER": "m", "VALKEY_SENTINEL_ADDRS": "s1:26379,s2:26379", "VALKEY_SENTINEL_USERNAME": "su", "VALKEY_SENTINEL_PASSWORD": auditSecret, "VALKEY_SENTINEL_REFRESH_INTERVAL": "1s"}, func(c config.Config) bool {
			return c.SentinelMode && c.SentinelMasterName == "m" && len(c.SentinelAddrs) == 2 && c.SentinelUsername == "su" && c.SentinelPassword == auditSecret && c.SentinelRefreshInterval == time.Second
		}},
		{map[string]string{"VALKEY_TLS_ENABLED": "1", "VALKEY_TLS_CERT_FILE": "c.pem", "VALKEY_TLS_KEY_FILE": "k.pem", "VALKEY_TLS_CA_FILE": "ca.pem", "VALKEY_TLS_SERVER_NAME": "cache", "VALKEY_TLS_INSECURE_SKIP_VERIFY": "true"}, func(c config.Config) bool {
			return c.TLS == config.TLSConfig{Enabled: true, CertFile: "c.pem", KeyFile: "k.pem", CAFile: "ca.pem", ServerName: "cache", InsecureSkipVerify: true}
		}},
		// VALKEY_URL first, then the other variables override it.
		{map[string]string{"VALKEY_URL": "valkey://u:" + auditSecret + "@h:1/2?pool_size=3", "VALKEY_ADDR": "x:9", "VALKEY_POOL_SIZE": "5"}, func(c config.Config) bool {
			return fmt.Sprint(c.Addresses()) == "[x:9]" && c.DB == 2 && c.PoolSize == 5 && c.Password == auditSecret
		}},
		{map[string]string{"VALKEY_URL": "valkey://h:1", "VALKEY_HOST": "g"}, func(c config.Config) bool { return fmt.Sprint(c.Addresses()) == "[g:1]" }},
	} {
		t.Run(fmt.Sprint(len(tc.env), " ", strings.Join(keys(tc.env), ",")), func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := config.LoadFromEnv()
			if err != nil {
				t.Fatalf("LoadFromEnv: %v", err)
			}
			if !tc.check(cfg) {
				t.Errorf("LoadFromEnv = %v", cfg)
			}
		})
	}
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// A bad value is an error naming the variable; conflicting variables are
// refused as documented, naming one of them.
func TestAuditEnvErrors(t *testing.T) {
	for _, tc := range []struct {
		env         map[string]string
		field, want string
	}{
		{map[string]string{"VALKEY_PORT": "0x10"}, "VALKEY_PORT", "not an integer"},
		{map[string]string{"VALKEY_PORT": "70000"}, "VALKEY_PORT", "between 1 and 65535"},
		{map[string]string{"VALKEY_DB": "-1"}, "VALKEY_DB", "at least 0"},
		{map[string]string{"VALKEY_DIAL_TIMEOUT": "5 seconds"}, "VALKEY_DIAL_TIMEOUT", "not a duration"},
		{map[string]string{"VALKEY_POOL_SIZE": "2000"}, "VALKEY_POOL_SIZE", "between 1 and 1024"},
		{map[string]string{"VALKEY_TLS_ENABLED": "yes please"}, "VALKEY_TLS_ENABLED", "not a boolean"},
		{map[string]string{"VALKEY_URL": "valkey://u:" + auditSecret + "@fe80::1"}, "VALKEY_URL", "must be in brackets"},
		{map[string]string{"VALKEY_URL": "valkey://u:" + auditSecret + "@h?nope=1"}, "VALKEY_URL", `"nope": unknown parameter`},
		{map[string]string{"VALKEY_ADDR": "a:1", "VALKEY_ADDRS": "b:2"}, "VALKEY_ADDR", "conflicts with VALKEY_ADDRS"},
		{map[string]string{"VALKEY_ADDR": "a:1", "VALKEY_SENTINEL_MASTER": "m"}, "VALKEY_ADDR", "conflicts with VALKEY_SENTINEL_MASTER"},
		// A sentinel URL (master_set) and an address: the address is the
		// one refused, by its variable's name.
		{map[string]string{"VALKEY_URL": "valkey://u:" + auditSecret + "@s1:26379?master_set=m", "VALKEY_ADDR": "a:1"}, "VALKEY_ADDR", "conflicts with VALKEY_URL, whose master_set means sentinel mode"},
		{map[string]string{"VALKEY_URL": "valkey://u:" + auditSecret + "@s1:26379?master_set=m", "VALKEY_ADDRS": "a:1,b:2"}, "VALKEY_ADDRS", "conflicts with VALKEY_URL, whose master_set means sentinel mode"},
	} {
		t.Run(strings.Join(keys(tc.env), ","), func(t *testing.T) {
			clearEnv(t)
			t.Setenv("VALKEY_PASSWORD", auditSecret)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := config.LoadFromEnv()
			wantConfigErr(t, err, tc.field, tc.want)
		})
	}
}

// Zero, negative and huge values: Validate refuses the ones outside the
// documented ranges with an error naming the field, accepts the others,
// and never panics.
func TestAuditBuilderLimits(t *testing.T) {
	base := config.DefaultConfig()
	const huge = time.Duration(math.MaxInt64)
	for _, tc := range []struct {
		cfg   config.Config
		field string // "" when valid
	}{
		{base.WithDialTimeout(0), "DialTimeout"},
		{base.WithDialTimeout(-time.Second), "DialTimeout"},
		{base.WithDialTimeout(huge), ""},
		{base.WithReadTimeout(-1), "ReadTimeout"},
		{base.WithReadTimeout(0), ""},
		{base.WithReadTimeout(huge), ""},
		{base.WithWriteTimeout(-1), "WriteTimeout"},
		{base.WithWriteTimeout(huge), ""},
		{base.WithPoolSize(0), "PoolSize"},
		{base.WithPoolSize(-1), "PoolSize"},
		{base.WithPoolSize(1025), "PoolSize"},
		{base.WithPoolSize(math.MaxInt), "PoolSize"},
		{base.WithMaxBatchSize(0), "MaxBatchSize"},
		{base.WithMaxBatchSize(100001), "MaxBatchSize"},
		{base.WithMaxBatchSize(math.MinInt), "MaxBatchSize"},
		{base.WithMailboxCapacity(0), "MailboxCapacity"},
		{base.WithMailboxCapacity(math.MaxInt), ""}, // a bound, not an allocation
		{base.WithMaxRetries(-1), "MaxRetries"},
		{base.WithMaxRetries(math.MaxInt), ""},
		{base.WithMinRetryBackoff(-1), "MinRetryBackoff"},
		{base.WithMaxRetryBackoff(time.Millisecond), "MaxRetryBackoff"},
		{base.WithMinRetryBackoff(0).WithMaxRetryBackoff(0), ""},
		{base.WithCircuitBreakerThreshold(0), "CircuitBreakerThreshold"},
		// The breaker allocates a bit per counted round trip; beyond what
		// it can allocate it opened on the first round trip.
		{base.WithCircuitBreakerThreshold(100000), ""},
		{base.WithCircuitBreakerThreshold(100001), "CircuitBreakerThreshold"},
		{base.WithCircuitBreakerThreshold(math.MaxInt), "CircuitBreakerThreshold"},
		{base.WithCircuitBreakerOpenTimeout(0), "CircuitBreakerOpenTimeout"},
		{base.WithCircuitBreakerFailureRate(math.NaN()), "CircuitBreakerFailureRate"},
		{base.WithCircuitBreakerFailureRate(1.5), "CircuitBreakerFailureRate"},
		{base.WithCircuitBreakerPeriod(0), "CircuitBreakerPeriod"},
		{base.WithMaxRedirects(-1), "MaxRedirects"},
		{base.WithClusterRefreshInterval(-1), "ClusterRefreshInterval"},
		{base.WithDrainTimeout(-1), "DrainTimeout"},
		{base.WithDrainTimeout(huge), ""},
		{base.WithDB(-1), "DB"},
		{base.WithDB(math.MaxInt32 + 1), "DB"},
		{base.WithPort(0), "Port"},
		{base.WithAddrs("h:0"), "Addrs[0]"},
		{base.WithAddrs("fe80::1:6379"), "Addrs[0]"},
		{base.WithClientName("my app"), "ClientName"},
		{base.WithLogLevel("loud"), "LogLevel"},
		{base.WithBackpressure(config.BackpressurePolicy(7)), "Backpressure"},
		{base.WithReadFrom(config.ReadFrom(-1)), "ReadFrom"},
		{base.WithPassword(auditSecret).WithCredentialsProvider(nil), ""},
		{config.Config{}, "Host"},
	} {
		err := tc.cfg.Validate()
		if tc.field == "" {
			if err != nil {
				t.Errorf("Validate(%v) = %v, want nil", tc.cfg, err)
			}
			continue
		}
		wantConfigErr(t, err, tc.field, "")
	}
}
