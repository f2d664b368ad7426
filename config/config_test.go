package config

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/hooks"
)

const testSecret = "pa55-w0rd-XYZZY"

// testProvider is a CredentialsProvider for tests.
func testProvider(context.Context) (string, string, error) { return "u", testSecret, nil }

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	want := Config{
		Host: "127.0.0.1", Port: 6379, ClientName: "vactor", Driver: "valkey-go",
		PoolSize: 1, DialTimeout: 5 * time.Second, ReadTimeout: 3 * time.Second,
		WriteTimeout: 3 * time.Second, MaxRetries: 3, MinRetryBackoff: 8 * time.Millisecond,
		MaxRetryBackoff: 512 * time.Millisecond, CircuitBreakerThreshold: 5,
		CircuitBreakerOpenTimeout: time.Second, CircuitBreakerPeriod: 10 * time.Second, ReadFrom: ReadFromPrimary, MaxRedirects: 5, ClusterRefreshInterval: 10 * time.Second,
		SentinelRefreshInterval: 5 * time.Second,
		MailboxCapacity:         65536, Backpressure: BackpressureBlock, MaxBatchSize: 1024,
		DrainTimeout: 5 * time.Second, LogLevel: LogLevelInfo,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("DefaultConfig() =\n%#v\nwant\n%#v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	if got := c.Addresses(); !slices.Equal(got, []string{"127.0.0.1:6379"}) {
		t.Fatalf("Addresses() = %q", got)
	}
}

func TestZeroConfigInvalid(t *testing.T) {
	if err := (Config{}).Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Config{}.Validate() = %v, want ErrInvalidConfig", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(*Config)
		field  string // "" = valid
		value  string
		reason string // substring
	}{
		{"defaults", func(c *Config) {}, "", "", ""},
		{"addrs ok", func(c *Config) { c.Addrs = []string{"a:1", "[::1]:6380", "10.0.0.1:65535"} }, "", "", ""},
		{"addrs no port", func(c *Config) { c.Addrs = []string{"a:1", "b"} }, "Addrs[1]", "b", "host:port"},
		{"addrs empty host", func(c *Config) { c.Addrs = []string{":6379"} }, "Addrs[0]", ":6379", "host must not be empty"},
		{"addrs empty entry", func(c *Config) { c.Addrs = []string{""} }, "Addrs[0]", "", "host:port"},
		{"addrs port 0", func(c *Config) { c.Addrs = []string{"a:0"} }, "Addrs[0]", "a:0", "between 1 and 65535"},
		{"addrs port big", func(c *Config) { c.Addrs = []string{"a:65536"} }, "Addrs[0]", "a:65536", "between 1 and 65535"},
		{"addrs port name", func(c *Config) { c.Addrs = []string{"a:redis"} }, "Addrs[0]", "a:redis", "number"},
		{"addrs port sign", func(c *Config) { c.Addrs = []string{"a:+1"} }, "Addrs[0]", "a:+1", "number"},
		{"addrs space host", func(c *Config) { c.Addrs = []string{"a b:1"} }, "Addrs[0]", "a b:1", "spaces"},
		{"addrs ipv6 unbracketed", func(c *Config) { c.Addrs = []string{"::1:6379"} }, "Addrs[0]", "::1:6379", "host:port"},
		{"host empty", func(c *Config) { c.Host = "" }, "Host", "", "must not be empty"},
		{"host space", func(c *Config) { c.Host = "a host" }, "Host", "a host", "spaces"},
		{"host newline", func(c *Config) { c.Host = "a\nb" }, "Host", "a\nb", "control"},
		{"host brackets", func(c *Config) { c.Host = "[::1]" }, "Host", "[::1]", "without brackets"},
		{"host with port", func(c *Config) { c.Host = "a:1" }, "Host", "a:1", "without brackets or port"},
		{"host ipv6 cut", func(c *Config) { c.Host = "fe80:" }, "Host", "fe80:", "without brackets or port"},
		{"host ipv6 zone", func(c *Config) { c.Host = "fe80::1%eth0" }, "", "", ""},
		{"host ipv6", func(c *Config) { c.Host = "::1" }, "", "", ""},
		// qa-AX AX-7: characters no host name has were let through, to
		// fail only at dial time.
		{"host comma", func(c *Config) { c.Host = "a,b" }, "Host", "a,b", `must be a host name or IP address: ',' is not allowed (one host per address`},
		{"host slash", func(c *Config) { c.Host = "a/b" }, "Host", "a/b", `'/' is not allowed`},
		{"host hash", func(c *Config) { c.Host = "a#b" }, "Host", "a#b", `'#' is not allowed`},
		{"host percent", func(c *Config) { c.Host = "abc%def" }, "Host", "abc%def", `'%' is not allowed`},
		{"host ipv4 zone", func(c *Config) { c.Host = "127.0.0.1%eth0" }, "Host", "127.0.0.1%eth0", `'%' is not allowed`},
		{"host utf8", func(c *Config) { c.Host = "café" }, "Host", "café", `'é' is not allowed`},
		{"host name chars", func(c *Config) { c.Host = "Cache-1.my_zone.example." }, "", "", ""},
		{"addrs comma", func(c *Config) { c.Addrs = []string{"a,b:6379"} }, "Addrs[0]", "a,b:6379", `host must be a host name or IP address: ',' is not allowed`},
		{"addrs slash", func(c *Config) { c.Addrs = []string{"a/b:6379"} }, "Addrs[0]", "a/b:6379", `'/' is not allowed`},
		{"sentinel addrs percent", func(c *Config) { *c = c.WithSentinel("m", "s%1:26379") }, "SentinelAddrs[0]", "s%1:26379", `'%' is not allowed`},
		{"addrs ipv6 zone", func(c *Config) { c.Addrs = []string{"[fe80::1%eth0]:6379"} }, "", "", ""},
		{"host ipv6 zone slash", func(c *Config) { c.Host = "fe80::1%eth0/1" }, "Host", "fe80::1%eth0/1", `'/' is not allowed`},
		{"host ipv6 zone colon", func(c *Config) { c.Host = "fe80::1%eth0:1" }, "Host", "fe80::1%eth0:1", `':' is not allowed in an IPv6 zone`},
		{"addrs ipv6 zone colon", func(c *Config) { c.Addrs = []string{"[fe80::1%eth0:1]:6379"} }, "Addrs[0]", "[fe80::1%eth0:1]:6379", `':' is not allowed in an IPv6 zone`},
		{"port 0", func(c *Config) { c.Port = 0 }, "Port", "0", "must be between 1 and 65535"},
		{"port 70000", func(c *Config) { c.Port = 70000 }, "Port", "70000", "must be between 1 and 65535"},
		{"port checked with addrs", func(c *Config) { c.Addrs = []string{"a:1"}; c.Port = -1 }, "Port", "-1", "between"},
		{"port 65535", func(c *Config) { c.Port = 65535 }, "", "", ""},
		{"db negative", func(c *Config) { c.DB = -1 }, "DB", "-1", "at least 0"},
		{"db too large", func(c *Config) { c.DB = math.MaxInt32 + 1 }, "DB", "2147483648", "at most 2147483647"},
		{"db 15", func(c *Config) { c.DB = 15 }, "", "", ""},
		{"db cluster", func(c *Config) { c.DB = 1; c.ClusterMode = true }, "DB", "1", "must be 0 in cluster mode"},
		{"cluster db 0", func(c *Config) { c.ClusterMode = true }, "", "", ""},
		{"client name space", func(c *Config) { c.ClientName = "my app" }, "ClientName", "my app", "without spaces"},
		{"client name newline", func(c *Config) { c.ClientName = "a\r\nb" }, "ClientName", "a\r\nb", "printable"},
		{"client name utf8", func(c *Config) { c.ClientName = "café" }, "ClientName", "café", "printable ASCII"},
		{"client name empty", func(c *Config) { c.ClientName = "" }, "", "", ""},
		{"client name symbols", func(c *Config) { c.ClientName = "app-1_~!" }, "", "", ""},
		{"driver empty", func(c *Config) { c.Driver = "" }, "Driver", "", "must not be empty"},
		{"pool 0", func(c *Config) { c.PoolSize = 0 }, "PoolSize", "0", "between 1 and 1024"},
		{"pool 1025", func(c *Config) { c.PoolSize = 1025 }, "PoolSize", "1025", "between 1 and 1024"},
		{"pool 1024", func(c *Config) { c.PoolSize = 1024 }, "", "", ""},
		{"dial 0", func(c *Config) { c.DialTimeout = 0 }, "DialTimeout", "0s", "greater than 0"},
		{"dial negative", func(c *Config) { c.DialTimeout = -time.Second }, "DialTimeout", "-1s", "greater than 0"},
		{"read 0", func(c *Config) { c.ReadTimeout = 0 }, "", "", ""},
		{"read negative", func(c *Config) { c.ReadTimeout = -1 }, "ReadTimeout", "-1ns", "at least 0"},
		{"write 0", func(c *Config) { c.WriteTimeout = 0 }, "", "", ""},
		{"write negative", func(c *Config) { c.WriteTimeout = -time.Millisecond }, "WriteTimeout", "-1ms", "at least 0"},
		{"retries 0", func(c *Config) { c.MaxRetries = 0 }, "", "", ""},
		{"retries negative", func(c *Config) { c.MaxRetries = -1 }, "MaxRetries", "-1", "at least 0"},
		{"min backoff negative", func(c *Config) { c.MinRetryBackoff = -1 }, "MinRetryBackoff", "-1ns", "at least 0"},
		{"max < min backoff", func(c *Config) { c.MinRetryBackoff = time.Second }, "MaxRetryBackoff", "512ms", "at least MinRetryBackoff (1s)"},
		{"backoffs equal", func(c *Config) { c.MinRetryBackoff, c.MaxRetryBackoff = time.Second, time.Second }, "", "", ""},
		{"backoffs zero", func(c *Config) { c.MinRetryBackoff, c.MaxRetryBackoff = 0, 0 }, "", "", ""},
		{"breaker threshold 0", func(c *Config) { c.CircuitBreakerThreshold = 0 }, "CircuitBreakerThreshold", "0", "between 1 and 100000"},
		{"breaker timeout 0", func(c *Config) { c.CircuitBreakerOpenTimeout = 0 }, "CircuitBreakerOpenTimeout", "0s", "greater than 0"},
		{"breaker rate > 1", func(c *Config) { c.CircuitBreakerFailureRate = 1.5 }, "CircuitBreakerFailureRate", "1.5", "between 0 and 1"},
		{"breaker rate < 0", func(c *Config) { c.CircuitBreakerFailureRate = -0.1 }, "CircuitBreakerFailureRate", "-0.1", "between 0 and 1"},
		{"breaker period 0", func(c *Config) { c.CircuitBreakerPeriod = 0 }, "CircuitBreakerPeriod", "0s", "greater than 0"},
		// A failure-rate breaker's window below 10ns made each of its 10
		// buckets 0ns: every round trip it recorded divided by zero.
		{"breaker period 9ns with a failure rate", func(c *Config) { c.CircuitBreakerFailureRate, c.CircuitBreakerPeriod = 0.5, 9 }, "CircuitBreakerPeriod", "9ns", "at least 10ns with a CircuitBreakerFailureRate"},
		{"breaker period 10ns with a failure rate", func(c *Config) { c.CircuitBreakerFailureRate, c.CircuitBreakerPeriod = 0.5, 10 }, "", "", ""},
		{"breaker period 1ns without a failure rate", func(c *Config) { c.CircuitBreakerPeriod = 1 }, "", "", ""},
		{"read from replica", func(c *Config) { c.ReadFrom = ReadFromReplica }, "", "", ""},
		{"read from prefer replica", func(c *Config) { c.ReadFrom = ReadFromPreferReplica }, "", "", ""},
		{"read from bad", func(c *Config) { c.ReadFrom = 7 }, "ReadFrom", "ReadFrom(7)", "must be ReadFromPrimary"},
		{"read from negative", func(c *Config) { c.ReadFrom = -1 }, "ReadFrom", "ReadFrom(-1)", "must be"},
		{"redirects 0", func(c *Config) { c.MaxRedirects = 0 }, "", "", ""},
		{"redirects negative", func(c *Config) { c.MaxRedirects = -1 }, "MaxRedirects", "-1", "at least 0"},
		{"cluster refresh 0", func(c *Config) { c.ClusterRefreshInterval = 0 }, "", "", ""},
		{"cluster refresh negative", func(c *Config) { c.ClusterRefreshInterval = -time.Second }, "ClusterRefreshInterval", "-1s", "must be 0 (off) or at least 100ms"},
		// qa-AX AX-1: 1ns made the engine reload the slot map back to back.
		{"cluster refresh 1ns", func(c *Config) { c.ClusterRefreshInterval = 1 }, "ClusterRefreshInterval", "1ns", "must be 0 (off) or at least 100ms"},
		{"cluster refresh 99ms", func(c *Config) { c.ClusterRefreshInterval = 99 * time.Millisecond }, "ClusterRefreshInterval", "99ms", "at least 100ms"},
		{"cluster refresh 100ms", func(c *Config) { c.ClusterRefreshInterval = 100 * time.Millisecond }, "", "", ""},
		{"tls enabled", func(c *Config) { c.TLS = TLSConfig{Enabled: true} }, "", "", ""},
		{"tls full", func(c *Config) {
			c.TLS = TLSConfig{Enabled: true, CertFile: "c", KeyFile: "k", CAFile: "ca", ServerName: "s", InsecureSkipVerify: true}
		}, "", "", ""},
		{"tls cert without key", func(c *Config) { c.TLS = TLSConfig{Enabled: true, CertFile: "c"} }, "TLS.KeyFile", "", "must be set when TLS.CertFile is set"},
		{"tls key without cert", func(c *Config) { c.TLS = TLSConfig{Enabled: true, KeyFile: "k"} }, "TLS.CertFile", "", "must be set when TLS.KeyFile is set"},
		{"tls ca without enabled", func(c *Config) { c.TLS = TLSConfig{CAFile: "ca"} }, "TLS.Enabled", "false", "must be true"},
		{"tls cert without enabled", func(c *Config) { c.TLS = TLSConfig{CertFile: "c", KeyFile: "k"} }, "TLS.Enabled", "false", "must be true"},
		{"tls server name without enabled", func(c *Config) { c.TLS = TLSConfig{ServerName: "s"} }, "TLS.Enabled", "false", "must be true"},
		{"tls insecure without enabled", func(c *Config) { c.TLS = TLSConfig{InsecureSkipVerify: true} }, "TLS.Enabled", "false", "must be true"},
		{"tls own config", func(c *Config) { c.TLS = TLSConfig{Enabled: true, Config: &tls.Config{}} }, "", "", ""},
		{"tls own config wins over files", func(c *Config) {
			c.TLS = TLSConfig{Enabled: true, CAFile: "ca", Config: &tls.Config{}}
		}, "", "", ""},
		{"tls own config without enabled", func(c *Config) { c.TLS = TLSConfig{Config: &tls.Config{}} }, "TLS.Enabled", "false", "must be true"},
		{"credentials provider", func(c *Config) { c.Password = ""; c.CredentialsProvider = testProvider }, "", "", ""},
		{"credentials provider and password", func(c *Config) { c.CredentialsProvider = testProvider }, "Password", redacted, "must be empty when CredentialsProvider is set"},
		{"credentials provider and username", func(c *Config) { c.Password, c.Username = "", "u"; c.CredentialsProvider = testProvider }, "Username", "u", "must be empty when CredentialsProvider is set"},
		{"sentinel", func(c *Config) { *c = c.WithSentinel("mymaster", "s1:26379", "[::1]:26380") }, "", "", ""},
		{"sentinel full", func(c *Config) {
			*c = c.WithSentinel("mymaster", "s1:26379").WithSentinelUsername("w").WithSentinelPassword(testSecret).
				WithReadFrom(ReadFromReplica).WithDB(3).WithSentinelRefreshInterval(0)
		}, "", "", ""},
		{"sentinel and cluster", func(c *Config) { *c = c.WithSentinel("m", "s:1").WithClusterMode(true) }, "SentinelMode", "true", "must be false in cluster mode"},
		{"sentinel with addrs", func(c *Config) { *c = c.WithSentinel("m", "s:1").WithAddrs("a:1", "b:2") }, "Addrs", "a:1,b:2", "must be empty in sentinel mode"},
		{"sentinel without name", func(c *Config) { *c = c.WithSentinel("", "s:1") }, "SentinelMasterName", "", "must be set in sentinel mode"},
		{"sentinel name space", func(c *Config) { *c = c.WithSentinel("my master", "s:1") }, "SentinelMasterName", "my master", "spaces"},
		{"sentinel name newline", func(c *Config) { *c = c.WithSentinel("m\n", "s:1") }, "SentinelMasterName", "m\n", "control"},
		{"sentinel without addrs", func(c *Config) { *c = c.WithSentinel("m") }, "SentinelAddrs", "", "at least one sentinel"},
		{"sentinel bad addr", func(c *Config) { *c = c.WithSentinel("m", "s:1", "s2") }, "SentinelAddrs[1]", "s2", "host:port"},
		{"sentinel bad port", func(c *Config) { *c = c.WithSentinel("m", "s:0") }, "SentinelAddrs[0]", "s:0", "between 1 and 65535"},
		{"sentinel name without mode", func(c *Config) { c.SentinelMasterName = "m" }, "SentinelMode", "false", "must be true when other sentinel settings are given"},
		{"sentinel addrs without mode", func(c *Config) { c.SentinelAddrs = []string{"s:1"} }, "SentinelMode", "false", "must be true"},
		{"sentinel password without mode", func(c *Config) { c.SentinelPassword = "x" }, "SentinelMode", "false", "must be true"},
		{"sentinel username without mode", func(c *Config) { c.SentinelUsername = "x" }, "SentinelMode", "false", "must be true"},
		{"sentinel provider without mode", func(c *Config) { c.SentinelCredentialsProvider = testProvider }, "SentinelMode", "false", "must be true"},
		{"sentinel provider", func(c *Config) { *c = c.WithSentinel("m", "s:1").WithSentinelCredentialsProvider(testProvider) }, "", "", ""},
		{"sentinel provider and password", func(c *Config) {
			*c = c.WithSentinel("m", "s:1").WithSentinelCredentialsProvider(testProvider).WithSentinelPassword(testSecret)
		}, "SentinelPassword", redacted, "must be empty when SentinelCredentialsProvider is set"},
		{"sentinel provider and username", func(c *Config) {
			*c = c.WithSentinel("m", "s:1").WithSentinelCredentialsProvider(testProvider).WithSentinelUsername("w")
		}, "SentinelUsername", "w", "must be empty when SentinelCredentialsProvider is set"},
		{"sentinel refresh negative", func(c *Config) { c.SentinelRefreshInterval = -time.Second }, "SentinelRefreshInterval", "-1s", "must be 0 (off) or at least 100ms"},
		{"sentinel refresh 0", func(c *Config) { c.SentinelRefreshInterval = 0 }, "", "", ""},
		// qa-AX AX-1: 1ns made the engine ask the sentinels back to back.
		{"sentinel refresh 1ns", func(c *Config) { c.SentinelRefreshInterval = 1 }, "SentinelRefreshInterval", "1ns", "must be 0 (off) or at least 100ms"},
		{"sentinel refresh 99ms", func(c *Config) { c.SentinelRefreshInterval = 99 * time.Millisecond }, "SentinelRefreshInterval", "99ms", "at least 100ms"},
		{"sentinel refresh 100ms", func(c *Config) { c.SentinelRefreshInterval = 100 * time.Millisecond }, "", "", ""},
		{"mailbox 0", func(c *Config) { c.MailboxCapacity = 0 }, "MailboxCapacity", "0", "at least 1"},
		{"mailbox 1", func(c *Config) { c.MailboxCapacity = 1 }, "", "", ""},
		{"backpressure reject", func(c *Config) { c.Backpressure = BackpressureReject }, "", "", ""},
		{"backpressure bad", func(c *Config) { c.Backpressure = 2 }, "Backpressure", "BackpressurePolicy(2)", "must be BackpressureBlock or BackpressureReject"},
		{"batch 0", func(c *Config) { c.MaxBatchSize = 0 }, "MaxBatchSize", "0", "between 1 and 100000"},
		{"batch 100001", func(c *Config) { c.MaxBatchSize = 100001 }, "MaxBatchSize", "100001", "between 1 and 100000"},
		{"batch 100000", func(c *Config) { c.MaxBatchSize = 100000 }, "", "", ""},
		{"drain 0", func(c *Config) { c.DrainTimeout = 0 }, "", "", ""},
		{"drain negative", func(c *Config) { c.DrainTimeout = -time.Second }, "DrainTimeout", "-1s", "at least 0"},
		{"logger", func(c *Config) { c.Logger = slog.New(slog.DiscardHandler) }, "", "", ""},
		{"log level", func(c *Config) { c.LogLevel = LogLevelError }, "", "", ""},
		{"log level as in the seed", func(c *Config) { c.LogLevel = "debug" }, "", "", ""},
		{"log level slog text", func(c *Config) { c.LogLevel = "INFO+2" }, "", "", ""},
		{"log level empty", func(c *Config) { c.LogLevel = "" }, "", "", ""},
		{"log level bad", func(c *Config) { c.LogLevel = "verbose" }, "LogLevel", "verbose", `must be "debug", "info", "warn" or "error"`},
		{"hook", func(c *Config) { c.Hooks = []hooks.Hook{testHook{}, hooks.NewLogging(nil)} }, "", "", ""},
		{"nil hook", func(c *Config) { c.Hooks = []hooks.Hook{testHook{}, nil} }, "Hooks[1]", "nil", "must not be nil"},
		{"not a hook", func(c *Config) { c.Hooks = []hooks.Hook{42} }, "Hooks[0]", "int", "implements no interface of the hooks package"},
		{"first bad field wins", func(c *Config) { c.Port = 0; c.DrainTimeout = -1 }, "Port", "0", "between"},
		{"password is not validated", func(c *Config) { c.Password = " \r\n\x00" }, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig().WithPassword(testSecret)
			tt.mod(&c)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			fe := checkFieldError(t, err, tt.field, tt.value, tt.reason)
			want := fmt.Sprintf("config: invalid %s %q: %s", tt.field, tt.value, fe.Reason)
			if err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
		})
	}
}

// checkFieldError asserts err is a *FieldError wrapping ErrInvalidConfig with
// the given field, value and reason substring, and that it does not contain
// testSecret.
func checkFieldError(t *testing.T, err error, field, value, reason string) *FieldError {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %s error", field)
	}
	if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("errors.Is(%v, ErrInvalidConfig) = false", err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("err %T %v is not a *FieldError", err, err)
	}
	if fe.Field != field {
		t.Errorf("Field = %q, want %q (err %v)", fe.Field, field, err)
	}
	if fe.Value != value {
		t.Errorf("Value = %q, want %q (err %v)", fe.Value, value, err)
	}
	if !strings.Contains(fe.Reason, reason) {
		t.Errorf("Reason = %q, want it to contain %q", fe.Reason, reason)
	}
	assertNoSecret(t, "error", err.Error(), testSecret)
	assertNoSecret(t, "%#v of error", fmt.Sprintf("%#v", err), testSecret)
	return fe
}

func assertNoSecret(t *testing.T, what, s, secret string) {
	t.Helper()
	if secret != "" && strings.Contains(s, secret) {
		t.Errorf("%s leaks the password %q: %s", what, secret, s)
	}
}

func TestFieldError(t *testing.T) {
	tests := []struct {
		err  *FieldError
		want string
	}{
		{&FieldError{Field: "Port", Value: "70000", Reason: "must be between 1 and 65535"}, `config: invalid Port "70000": must be between 1 and 65535`},
		{&FieldError{Field: "Password", Value: "hunter2", Reason: "whatever"}, `config: invalid Password "[redacted]": whatever`},
		{&FieldError{Field: "VALKEY_PASSWORD", Value: "hunter2", Reason: "x"}, `config: invalid VALKEY_PASSWORD "[redacted]": x`},
		{&FieldError{Field: "URL", Value: "valkey://u:hunter2@h:1", Reason: "x"}, `config: invalid URL "valkey://[redacted]@h:1": x`},
		{&FieldError{Field: "VALKEY_URL", Value: "redis://:hunter2@h", Reason: "x"}, `config: invalid VALKEY_URL "redis://[redacted]@h": x`},
		{&FieldError{Field: "Host", Value: "a\nb", Reason: ""}, `config: invalid Host "a\nb"`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		if !errors.Is(tt.err, ErrInvalidConfig) {
			t.Errorf("%v does not wrap ErrInvalidConfig", tt.err)
		}
	}
	if fe := newFieldError("Password", "hunter2", "x"); fe.Value != redacted {
		t.Errorf("newFieldError kept the password in Value: %q", fe.Value)
	}
	if fe := newFieldError("URL", "valkey://u:hunter2@h", "x"); strings.Contains(fmt.Sprintf("%#v", fe), "hunter2") {
		t.Errorf("newFieldError kept the URL password: %#v", fe)
	}
	wrapped := fmt.Errorf("engine: %w", newFieldError("Port", "0", "x"))
	if fe := fieldErr(wrapped); fe == nil || fe.Field != "Port" {
		t.Errorf("errors.As through wrapping failed: %v", fe)
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"valkey://h:1", "valkey://h:1"},
		{"valkey://u:p@h:1/0", "valkey://[redacted]@h:1/0"},
		{"valkey://:p@ss@h", "valkey://[redacted]@h"},
		{"valkey://u:p/x@h", "valkey://[redacted]@h"},
		{"u:p@h", "[redacted]@h"},
		{"valkey:/u:p://x@h", "[redacted]@h"},
		{"valkey://h/?password=p&x=1", "valkey://h/?password=[redacted]&x=1"},
		{"valkey://h/?x=1&auth_token=p#frag", "valkey://h/?x=1&auth_token=[redacted]#frag"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := redactURL(redactURL(tt.in)); got != tt.want {
			t.Errorf("redactURL is not idempotent on %q: %q", tt.in, got)
		}
	}
}

func TestAddresses(t *testing.T) {
	c := DefaultConfig().WithHost("::1").WithPort(6380)
	if got := c.Addresses(); !slices.Equal(got, []string{"[::1]:6380"}) {
		t.Fatalf("Addresses() = %q", got)
	}
	c = c.WithAddrs("a:1", "b:2")
	got := c.Addresses()
	if !slices.Equal(got, []string{"a:1", "b:2"}) {
		t.Fatalf("Addresses() = %q", got)
	}
	got[0] = "mutated:1"
	if c.Addrs[0] != "a:1" {
		t.Fatalf("Addresses() aliases Addrs: %q", c.Addrs)
	}
}

func TestEnums(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want BackpressurePolicy
	}{{"block", BackpressureBlock}, {"reject", BackpressureReject}, {" REJECT ", BackpressureReject}, {"Block", BackpressureBlock}} {
		got, err := ParseBackpressurePolicy(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseBackpressurePolicy(%q) = %v, %v", tt.in, got, err)
		}
	}
	for _, in := range []string{"", "drop", "blocking", "1"} {
		_, err := ParseBackpressurePolicy(in)
		checkFieldError(t, err, "Backpressure", in, `"block" or "reject"`)
	}
	for _, p := range []BackpressurePolicy{BackpressureBlock, BackpressureReject} {
		if got, err := ParseBackpressurePolicy(p.String()); err != nil || got != p {
			t.Errorf("round trip %v: %v, %v", p, got, err)
		}
	}
	if s := BackpressurePolicy(9).String(); s != "BackpressurePolicy(9)" {
		t.Errorf("String() = %q", s)
	}

	for _, tt := range []struct {
		in   string
		want ReadFrom
	}{{"primary", ReadFromPrimary}, {"replica", ReadFromReplica}, {"prefer-replica", ReadFromPreferReplica}, {" Prefer-Replica\t", ReadFromPreferReplica}} {
		got, err := ParseReadFrom(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseReadFrom(%q) = %v, %v", tt.in, got, err)
		}
	}
	for _, in := range []string{"", "master", "prefer_replica", "replicas"} {
		_, err := ParseReadFrom(in)
		checkFieldError(t, err, "ReadFrom", in, `"primary", "replica" or "prefer-replica"`)
	}
	for _, r := range []ReadFrom{ReadFromPrimary, ReadFromReplica, ReadFromPreferReplica} {
		if got, err := ParseReadFrom(r.String()); err != nil || got != r {
			t.Errorf("round trip %v: %v, %v", r, got, err)
		}
	}
	if s := ReadFrom(-2).String(); s != "ReadFrom(-2)" {
		t.Errorf("String() = %q", s)
	}
}

// fullConfig sets every field to a non-default value.
func fullConfig() Config {
	return Config{
		Addrs: []string{"a:1", "[::1]:2"}, Host: "h", Port: 7000, Username: "alice",
		Password: testSecret, DB: 3, ClientName: "cn", Driver: "drv", PoolSize: 2,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 3 * time.Second,
		MaxRetries: 4, MinRetryBackoff: time.Millisecond, MaxRetryBackoff: time.Minute,
		CircuitBreakerThreshold: 6, CircuitBreakerOpenTimeout: 7 * time.Second, ClusterMode: true,
		ReadFrom: ReadFromPreferReplica, MaxRedirects: 8,
		CredentialsProvider: testProvider, SentinelMode: true, SentinelMasterName: "mm",
		SentinelAddrs: []string{"s1:26379", "[::1]:26380"}, SentinelUsername: "watcher", SentinelPassword: testSecret,
		SentinelCredentialsProvider: testProvider, SentinelRefreshInterval: 12 * time.Second,
		TLS:             TLSConfig{Enabled: true, CertFile: "cert.pem", KeyFile: "key.pem", CAFile: "ca.pem", ServerName: "sn", InsecureSkipVerify: true, Config: &tls.Config{ServerName: testSecret}},
		MailboxCapacity: 9, Backpressure: BackpressureReject, MaxBatchSize: 10, DrainTimeout: 11 * time.Second,
		Logger: slog.New(slog.DiscardHandler), LogLevel: LogLevelWarn, Hooks: []hooks.Hook{testHook{}},
	}
}

// testHook implements one hook interface.
type testHook struct{}

func (testHook) OnBreakerChanged(hooks.BreakerChange) {}

// printings returns every way a Config can be turned into text.
func printings(t *testing.T, c Config) map[string]string {
	t.Helper()
	out := map[string]string{
		"String":   c.String(),
		"GoString": c.GoString(),
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%t", "%10.3v", "%-v", "%T"} {
		out[verb] = fmt.Sprintf(verb, c)
		out["pointer "+verb] = fmt.Sprintf(verb, &c)
		out["slice "+verb] = fmt.Sprintf(verb, []Config{c})
		out["map "+verb] = fmt.Sprintf(verb, map[string]Config{"k": c})
		out["struct "+verb] = fmt.Sprintf(verb, struct{ Cfg Config }{c})
	}
	out["Println"] = fmt.Sprintln(c)
	out["error wrap"] = fmt.Errorf("cfg %v", c).Error()
	// qa-AX AX-3: encoding/json writes the fields, passwords included:
	// what is marshalled is Redacted's copy.
	r := c.Redacted()
	for name, v := range map[string]any{
		"json": r, "json pointer": &r, "json slice": []Config{r},
		"json struct": struct{ Cfg Config }{r}, "json struct pointer": struct{ Cfg *Config }{&r},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: json.Marshal: %v", name, err)
		}
		out[name] = string(b)
	}
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		l := slog.New(h(&buf))
		l.Info("msg", "cfg", c)
		l.Info("msg", slog.Any("cfgp", &c))
		// A Config in a struct: the JSON handler marshals the struct
		// (qa-AX AX-3: Redacted's copy), the text handler prints it with
		// %+v.
		l.Info("msg", "nested", struct{ Cfg Config }{r})
		out["slog "+name] = buf.String()
	}
	return out
}

func TestPrintingRedactsPassword(t *testing.T) {
	c := fullConfig()
	for name, s := range printings(t, c) {
		assertNoSecret(t, name, s, testSecret)
		if strings.HasSuffix(name, "%T") || strings.HasSuffix(name, "%10.3v") { // no room for it
			continue
		}
		// Hex output of the redaction marker, for %x/%X.
		if !strings.Contains(s, redacted) && !strings.Contains(strings.ToLower(s), fmt.Sprintf("%x", redacted)) {
			t.Errorf("%s does not show %q: %s", name, redacted, s)
		}
	}
	// The output must not depend on the passwords beyond set/unset.
	for _, other := range []Config{c.WithPassword("another password"), c.WithSentinelPassword("another password")} {
		for name, s := range printings(t, other) {
			if name == "slog text" || name == "slog json" { // timestamps differ
				continue
			}
			if s2 := printings(t, c)[name]; s2 != s {
				t.Errorf("%s depends on the password value:\n%s\n%s", name, s, s2)
			}
		}
	}
	// No password: nothing to redact.
	if s := DefaultConfig().String(); !strings.Contains(s, `Password=""`) {
		t.Errorf("String() without password = %s", s)
	}
	if s := fmt.Sprintf("%#v", DefaultConfig()); !strings.Contains(s, `Password:""`) {
		t.Errorf("GoString() without password = %s", s)
	}
}

func TestStringShowsEverySetting(t *testing.T) {
	c := fullConfig()
	s := c.String()
	gs := c.GoString()
	attrs := map[string]bool{}
	for _, a := range c.LogValue().Group() {
		attrs[a.Key] = true
	}
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		if !strings.Contains(s, " "+name+"=") && !strings.Contains(s, "{"+name+"=") {
			t.Errorf("String() lacks %s: %s", name, s)
		}
		if !strings.Contains(gs, name+":") {
			t.Errorf("GoString() lacks %s: %s", name, gs)
		}
		if !attrs[name] {
			t.Errorf("LogValue() lacks %s", name)
		}
	}
	for _, want := range []string{
		`Addrs=["a:1" "[::1]:2"]`, `Host="h"`, "Port=7000", `Username="alice"`, "DB=3",
		`ClientName="cn"`, `Driver="drv"`, "PoolSize=2", "DialTimeout=1s", "ReadTimeout=2s",
		"WriteTimeout=3s", "MaxRetries=4", "MinRetryBackoff=1ms", "MaxRetryBackoff=1m0s",
		"CircuitBreakerThreshold=6", "CircuitBreakerOpenTimeout=7s", "ClusterMode=true",
		"ReadFrom=prefer-replica", "MaxRedirects=8", `CertFile="cert.pem"`, `KeyFile="key.pem"`,
		`CAFile="ca.pem"`, `ServerName="sn"`, "InsecureSkipVerify=true", "MailboxCapacity=9",
		"Backpressure=reject", "MaxBatchSize=10", "DrainTimeout=11s", "Logger=true", "LogLevel=warn", "Hooks=1",
		"CredentialsProvider=true", "SentinelMode=true", `SentinelMasterName="mm"`,
		`SentinelAddrs=["s1:26379" "[::1]:26380"]`, `SentinelUsername="watcher"`, `SentinelPassword="[redacted]"`,
		"SentinelCredentialsProvider=true", "SentinelRefreshInterval=12s", "Config=true",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %s: %s", want, s)
		}
	}
	if strings.ContainsAny(s, "\n\r") {
		t.Errorf("String() is not one line: %q", s)
	}
	if s := (Config{Host: "a\nb"}).String(); strings.ContainsAny(s, "\n") {
		t.Errorf("String() lets a newline through: %q", s)
	}
}

func TestLogValueJSON(t *testing.T) {
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "cfg", fullConfig())
	var rec struct {
		Cfg map[string]any `json:"cfg"`
	}
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Cfg["Password"] != redacted || rec.Cfg["SentinelPassword"] != redacted || rec.Cfg["Port"] != float64(7000) ||
		rec.Cfg["ReadFrom"] != "prefer-replica" || rec.Cfg["SentinelMasterName"] != "mm" || rec.Cfg["CredentialsProvider"] != true {
		t.Errorf("LogValue JSON = %v", rec.Cfg)
	}
	if tls, _ := rec.Cfg["TLS"].(map[string]any); tls["CAFile"] != "ca.pem" {
		t.Errorf("LogValue TLS = %v", rec.Cfg["TLS"])
	}
}

func TestBuilder(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	tlsCfg := TLSConfig{Enabled: true, CAFile: "ca.pem"}
	base := DefaultConfig()
	got := base.
		WithAddrs("a:1", "b:2").
		WithHost("h").
		WithPort(7000).
		WithUsername("alice").
		WithPassword(testSecret).
		WithDB(0).
		WithClientName("cn").
		WithDriver("drv").
		WithPoolSize(2).
		WithDialTimeout(time.Second).
		WithReadTimeout(2 * time.Second).
		WithWriteTimeout(4 * time.Second).
		WithMaxRetries(4).
		WithMinRetryBackoff(time.Millisecond).
		WithMaxRetryBackoff(time.Minute).
		WithCircuitBreakerThreshold(6).
		WithCircuitBreakerOpenTimeout(7 * time.Second).
		WithCircuitBreakerFailureRate(0.5).
		WithCircuitBreakerPeriod(30 * time.Second).
		WithClusterMode(true).
		WithReadFrom(ReadFromReplica).
		WithMaxRedirects(8).
		WithClusterRefreshInterval(2 * time.Second).
		WithTLS(tlsCfg).
		WithMailboxCapacity(9).
		WithBackpressure(BackpressureReject).
		WithMaxBatchSize(10).
		WithDrainTimeout(11 * time.Second).
		WithLogger(logger).
		WithLogLevel(LogLevelDebug).
		WithHooks(testHook{})
	want := Config{
		Addrs: []string{"a:1", "b:2"}, Host: "h", Port: 7000, Username: "alice", Password: testSecret,
		ClientName: "cn", Driver: "drv", PoolSize: 2, DialTimeout: time.Second,
		ReadTimeout: 2 * time.Second, WriteTimeout: 4 * time.Second, MaxRetries: 4,
		MinRetryBackoff: time.Millisecond, MaxRetryBackoff: time.Minute, CircuitBreakerThreshold: 6,
		CircuitBreakerOpenTimeout: 7 * time.Second, CircuitBreakerFailureRate: 0.5, CircuitBreakerPeriod: 30 * time.Second, ClusterMode: true, ReadFrom: ReadFromReplica,
		MaxRedirects: 8, ClusterRefreshInterval: 2 * time.Second, SentinelRefreshInterval: 5 * time.Second, TLS: tlsCfg, MailboxCapacity: 9, Backpressure: BackpressureReject,
		MaxBatchSize: 10, DrainTimeout: 11 * time.Second, Logger: logger, LogLevel: LogLevelDebug, Hooks: []hooks.Hook{testHook{}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("chained builder =\n%#v\nwant\n%#v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	if !reflect.DeepEqual(base, DefaultConfig()) {
		t.Fatalf("builder modified its receiver: %v", base)
	}

	if got.WithDB(2).DB != 2 {
		t.Fatal("WithDB")
	}

	// The sentinel and credentials settings, which the chain above cannot
	// hold with ClusterMode and a Password.
	ownTLS := &tls.Config{MinVersion: tls.VersionTLS13}
	sentinel := base.
		WithSentinel("mymaster", "s1:26379", "s2:26379").
		WithSentinelUsername("watcher").
		WithSentinelPassword(testSecret).
		WithSentinelRefreshInterval(time.Second).
		WithTLSConfig(ownTLS)
	want = DefaultConfig()
	want.SentinelMode, want.SentinelMasterName, want.SentinelAddrs = true, "mymaster", []string{"s1:26379", "s2:26379"}
	want.SentinelUsername, want.SentinelPassword, want.SentinelRefreshInterval = "watcher", testSecret, time.Second
	want.TLS = TLSConfig{Enabled: true, Config: ownTLS}
	if !reflect.DeepEqual(sentinel, want) {
		t.Fatalf("sentinel builder =\n%#v\nwant\n%#v", sentinel, want)
	}
	if err := sentinel.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	if c := base.WithAddrs("a:1").WithSentinel("m", "s:1"); c.Addrs != nil {
		t.Fatalf("WithSentinel kept Addrs %q", c.Addrs)
	}
	if c := base.WithSentinelMode(true).WithSentinelMasterName("m").WithSentinelAddrs("s:1"); !c.SentinelMode ||
		c.SentinelMasterName != "m" || !slices.Equal(c.SentinelAddrs, []string{"s:1"}) {
		t.Fatalf("sentinel field builders = %v", c)
	}
	if c := sentinel.WithSentinelAddrs(); c.SentinelAddrs != nil {
		t.Fatalf("WithSentinelAddrs() = %q, want nil", c.SentinelAddrs)
	}
	if c := sentinel.WithTLSConfig(nil); c.TLS.Config != nil || !c.TLS.Enabled {
		t.Fatalf("WithTLSConfig(nil) = %v", c.TLS)
	}
	providers := base.WithCredentialsProvider(testProvider).WithSentinel("m", "s:1").WithSentinelCredentialsProvider(testProvider)
	if providers.CredentialsProvider == nil || providers.SentinelCredentialsProvider == nil {
		t.Fatal("credentials provider builders")
	}
	if err := providers.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	if c := providers.WithCredentialsProvider(nil).WithSentinelCredentialsProvider(nil); c.CredentialsProvider != nil || c.SentinelCredentialsProvider != nil {
		t.Fatal("With*CredentialsProvider(nil) did not clear")
	}

	// Every With* method changes exactly its field: check by reflection that
	// the chains above set every field.
	typ := reflect.TypeFor[Config]()
	dv := reflect.ValueOf(DefaultConfig())
	for i := range typ.NumField() {
		if typ.Field(i).Name == "DB" {
			continue // set to its default above; checked with WithDB(2)
		}
		changed := false
		for _, c := range []Config{got, sentinel, providers} {
			if !reflect.DeepEqual(dv.Field(i).Interface(), reflect.ValueOf(c).Field(i).Interface()) {
				changed = true
			}
		}
		if !changed {
			t.Errorf("no With* method in the chains changed %s", typ.Field(i).Name)
		}
		if _, ok := reflect.TypeFor[Config]().MethodByName("With" + typ.Field(i).Name); !ok {
			t.Errorf("no method With%s", typ.Field(i).Name)
		}
	}
}

func TestBuilderNoAliasing(t *testing.T) {
	in := []string{"a:1", "b:2"}
	c := DefaultConfig().WithAddrs(in...)
	in[0] = "changed:1"
	if c.Addrs[0] != "a:1" {
		t.Fatalf("WithAddrs kept the caller's slice: %q", c.Addrs)
	}

	// Copies derived from c do not share its backing array.
	d := c.WithHost("x")
	d.Addrs[1] = "changed:2"
	if c.Addrs[1] != "b:2" {
		t.Fatalf("WithHost result shares Addrs with its receiver: %q", c.Addrs)
	}
	e := c.WithAddrs(c.Addrs...)
	e.Addrs[0] = "changed:3"
	if c.Addrs[0] != "a:1" {
		t.Fatalf("WithAddrs(c.Addrs...) shares Addrs: %q", c.Addrs)
	}

	// Appending to a derived copy cannot write into the receiver's array.
	big := make([]string, 1, 8)
	big[0] = "a:1"
	f := DefaultConfig()
	f.Addrs = big
	g := f.WithPort(1)
	g.Addrs = append(g.Addrs, "b:2")
	if got := big[:2][1]; got != "" {
		t.Fatalf("append on a copy wrote into the original array: %q", got)
	}

	// The same for SentinelAddrs.
	sin := []string{"s:1", "s:2"}
	sc := DefaultConfig().WithSentinel("m", sin...)
	sin[0] = "changed:1"
	if sc.SentinelAddrs[0] != "s:1" {
		t.Fatalf("WithSentinel kept the caller's slice: %q", sc.SentinelAddrs)
	}
	for _, derived := range []Config{sc.WithHost("x"), sc.WithAddrs(), sc.WithSentinelAddrs(sc.SentinelAddrs...), sc.WithSentinelPassword("p")} {
		derived.SentinelAddrs[1] = "changed:2"
		if sc.SentinelAddrs[1] != "s:2" {
			t.Fatalf("a derived copy shares SentinelAddrs: %q", sc.SentinelAddrs)
		}
	}

	if got := c.WithAddrs().Addrs; got != nil {
		t.Fatalf("WithAddrs() = %q, want nil", got)
	}
	if got := c.WithAddrs().Addresses(); !slices.Equal(got, []string{"127.0.0.1:6379"}) {
		t.Fatalf("WithAddrs().Addresses() = %q", got)
	}
}

// Redacted's copy marshals as the Config does (the same names and
// types, so that the result still decodes into a Config), with the
// passwords redacted as String shows them (qa-AX AX-3); a Config has no
// MarshalJSON, so that a struct embedding one (or a nil *Config) marshals
// as before (review-34b R34b-1, R34b-2).
func TestRedactedForJSON(t *testing.T) {
	c := fullConfig()
	c.Logger = nil
	c.Addrs = append(c.Addrs, "redis://:"+testSecret+"@cache:6379")
	b, err := json.Marshal(c.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "json.Marshal", string(b), testSecret)
	var got Config
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("json.Unmarshal of Redacted's JSON: %v\n%s", err, b)
	}
	plain, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var want Config
	if err := json.Unmarshal(plain, &want); err != nil {
		t.Fatal(err)
	}
	want.Password, want.SentinelPassword = redacted, redacted
	want.Addrs = safeAddrs(want.Addrs)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded Redacted JSON =\n%#v\nwant\n%#v", got, want)
	}
	// Every string field named for a password is redacted, so that a
	// secret field added later cannot be forgotten here.
	typ := reflect.TypeFor[Config]()
	gotV, fullV := reflect.ValueOf(got), reflect.ValueOf(fullConfig())
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Type.Kind() == reflect.String && strings.Contains(f.Name, "Password") {
			if fullV.Field(i).String() == "" {
				t.Errorf("fullConfig leaves %s empty", f.Name)
			}
			if v := gotV.Field(i).String(); v != redacted {
				t.Errorf("Redacted shows %s as %q, want %q", f.Name, v, redacted)
			}
		}
	}
	// No password: nothing to redact.
	b, err = json.Marshal(DefaultConfig().Redacted())
	if err != nil || !strings.Contains(string(b), `"Password":""`) || !strings.Contains(string(b), `"SentinelPassword":""`) {
		t.Errorf("json.Marshal(DefaultConfig().Redacted()) = %s, %v", b, err)
	}
	// Embedded, a Config is a Config's fields among the struct's own, and
	// a nil *Config is left out.
	type app struct {
		*Config
		Name string
	}
	if b, err := json.Marshal(app{Name: "svc"}); err != nil || string(b) != `{"Name":"svc"}` {
		t.Errorf("json.Marshal of a struct embedding a nil *Config = %s, %v", b, err)
	}
	r := DefaultConfig().Redacted()
	if b, err := json.Marshal(app{Config: &r, Name: "svc"}); err != nil || !strings.Contains(string(b), `"Name":"svc"`) || !strings.Contains(string(b), `"Port":6379`) {
		t.Errorf("json.Marshal of a struct embedding a *Config = %s, %v", b, err)
	}
}

func TestJSONSkipsFuncsAndTLSConfig(t *testing.T) {
	c := fullConfig()
	c.Logger = nil
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	for _, name := range []string{"CredentialsProvider", "SentinelCredentialsProvider", `"Config"`} {
		if strings.Contains(string(b), name+`":`) || strings.Contains(string(b), name+":") {
			t.Errorf("JSON has %s: %s", name, b)
		}
	}
}

// LogLevel takes the seed's text ("debug"), any case, and slog's own form.
func TestLogLevelLevel(t *testing.T) {
	for _, tt := range []struct {
		in   LogLevel
		want slog.Level
	}{
		{"", slog.LevelInfo}, {"debug", slog.LevelDebug}, {" Info ", slog.LevelInfo},
		{"WARNING", slog.LevelWarn}, {LogLevelError, slog.LevelError}, {"INFO+2", slog.LevelInfo + 2},
		{LogLevel(slog.LevelDebug.String()), slog.LevelDebug},
	} {
		got, err := tt.in.Level()
		if err != nil || got != tt.want {
			t.Errorf("LogLevel(%q).Level() = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for in, want := range map[LogLevel]string{"": "info", " Warning ": "warn", "DEBUG": "debug", "INFO+2": "info+2", "loud": "loud"} {
		if got := in.String(); got != want {
			t.Errorf("LogLevel(%q).String() = %q, want %q", in, got, want)
		}
	}
	if got := LogLevelOf(slog.LevelWarn); got != LogLevelWarn {
		t.Errorf("LogLevelOf(slog.LevelWarn) = %q, want %q", got, LogLevelWarn)
	}
	_, err := LogLevel("loud").Level()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "LogLevel" || fe.Value != "loud" {
		t.Errorf("LogLevel(loud).Level() error = %v, want a *FieldError for LogLevel", err)
	}
}

// A struct literal (the seed module's first example) fails Validate on
// its first zero setting; the error says to start from DefaultConfig
// rather than leave the user to fix seven fields one error at a time
// (QA-R 5). A setting wrong in another way gets no such hint.
func TestValidateLiteralNamesDefaultConfig(t *testing.T) {
	err := Config{Host: "localhost", Port: 6379}.Validate()
	var fe *FieldError
	if !errors.As(err, &fe) || !strings.Contains(fe.Reason, "DefaultConfig()") {
		t.Fatalf("Validate of a struct literal: %v, want a *FieldError whose Reason names DefaultConfig()", err)
	}
	c := DefaultConfig()
	c.PoolSize = 2000
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "DefaultConfig()") {
		t.Fatalf("Validate with PoolSize 2000: %v, want an error without the DefaultConfig hint", err)
	}
	// One setting zeroed on a DefaultConfig (VALKEY_POOL_SIZE=0) is not a
	// literal: no hint either.
	c.PoolSize = 0
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "DefaultConfig()") {
		t.Fatalf("Validate with PoolSize 0: %v, want an error without the DefaultConfig hint", err)
	}
	t.Setenv("VALKEY_POOL_SIZE", "0")
	if _, err := LoadFromEnv(); err == nil || strings.Contains(err.Error(), "DefaultConfig()") {
		t.Fatalf("LoadFromEnv with VALKEY_POOL_SIZE=0: %v, want an error without the DefaultConfig hint", err)
	}
}

// Every With* method's copy has its own Hooks slice, as the Config doc
// says ("shares no slice with the receiver"): WithAddrs and
// WithSentinelAddrs copied the addresses but not Hooks, so writing a hook
// into the copy's slice changed the receiver's (qa-BF 3).
func TestBuilderNoHooksAliasing(t *testing.T) {
	type other struct{ testHook }
	base := DefaultConfig().WithHooks(testHook{})
	for name, derive := range map[string]func(Config) Config{
		"WithAddrs":         func(c Config) Config { return c.WithAddrs("a:1") },
		"WithAddrs()":       func(c Config) Config { return c.WithAddrs() },
		"WithSentinelAddrs": func(c Config) Config { return c.WithSentinelAddrs("s:1") },
		"WithHost":          func(c Config) Config { return c.WithHost("h") },
		"WithSentinel":      func(c Config) Config { return c.WithSentinel("m", "s:1") },
	} {
		c := base.WithPort(6379) // a copy of its own, as a caller's would be
		d := derive(c)
		d.Hooks[0] = other{}
		if _, ok := c.Hooks[0].(testHook); !ok {
			t.Errorf("%s: the copy shares Hooks with its receiver: the receiver's hook is now %T", name, c.Hooks[0])
		}
	}
}
