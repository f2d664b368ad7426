package config

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// lookupMap turns a map into a lookup function for loadFromLookup.
func lookupMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestEnvVarsList(t *testing.T) {
	want := []string{
		"VALKEY_URL", "VALKEY_HOST", "VALKEY_PORT", "VALKEY_ADDR", "VALKEY_ADDRS",
		"VALKEY_USERNAME", "VALKEY_PASSWORD", "VALKEY_DB", "VALKEY_CLIENT_NAME",
		"VALKEY_PROVIDER", "VALKEY_DRIVER", "VALKEY_POOL_SIZE", "VALKEY_DIAL_TIMEOUT",
		"VALKEY_READ_TIMEOUT", "VALKEY_WRITE_TIMEOUT", "VALKEY_MAX_RETRIES",
		"VALKEY_MIN_RETRY_BACKOFF", "VALKEY_MAX_RETRY_BACKOFF", "VALKEY_CIRCUIT_BREAKER_THRESHOLD",
		"VALKEY_CIRCUIT_BREAKER_OPEN_TIMEOUT", "VALKEY_CIRCUIT_BREAKER_FAILURE_RATE", "VALKEY_CIRCUIT_BREAKER_PERIOD", "VALKEY_CLUSTER_MODE", "VALKEY_READ_FROM",
		"VALKEY_MAX_REDIRECTS", "VALKEY_CLUSTER_REFRESH_INTERVAL",
		"VALKEY_SENTINEL_MASTER", "VALKEY_SENTINEL_ADDRS", "VALKEY_SENTINEL_USERNAME", "VALKEY_SENTINEL_PASSWORD",
		"VALKEY_SENTINEL_REFRESH_INTERVAL", "VALKEY_TLS_ENABLED", "VALKEY_TLS_CERT_FILE", "VALKEY_TLS_KEY_FILE",
		"VALKEY_TLS_CA_FILE", "VALKEY_TLS_SERVER_NAME", "VALKEY_TLS_INSECURE_SKIP_VERIFY",
		"VALKEY_MAILBOX_CAPACITY", "VALKEY_BACKPRESSURE", "VALKEY_MAX_BATCH_SIZE", "VALKEY_DRAIN_TIMEOUT",
		"VALKEY_LOG_LEVEL",
	}
	if !slices.Equal(EnvVars, want) {
		t.Fatalf("EnvVars =\n%q\nwant\n%q", EnvVars, want)
	}
	// Every variable read is listed in the EnvVars doc comment and vice
	// versa is checked by TestEnvVar (each one has a case there).
}

func TestEnvEmpty(t *testing.T) {
	got, err := loadFromLookup(lookupMap(nil))
	if err != nil || !reflect.DeepEqual(got, DefaultConfig()) {
		t.Fatalf("no variables: %v, %v", got, err)
	}
	// Empty or blank values count as unset.
	m := map[string]string{}
	for _, name := range EnvVars {
		m[name] = " "
	}
	// Credentials keep their spaces: blank means empty for them.
	for _, name := range []string{"VALKEY_USERNAME", "VALKEY_PASSWORD", "VALKEY_SENTINEL_USERNAME", "VALKEY_SENTINEL_PASSWORD"} {
		m[name] = ""
	}
	got, err = loadFromLookup(lookupMap(m))
	if err != nil || !reflect.DeepEqual(got, DefaultConfig()) {
		t.Fatalf("blank variables: %v, %v", got, err)
	}
}

func TestEnvVar(t *testing.T) {
	tests := []struct {
		name, value string
		mod         func(*Config)
	}{
		{"VALKEY_URL", "valkeys://u:" + testSecret + "@h:7000/2?pool_size=3", func(c *Config) {
			c.Addrs, c.Host, c.Port, c.Username, c.Password, c.DB, c.PoolSize, c.TLS.Enabled =
				[]string{"h:7000"}, "h", 7000, "u", testSecret, 2, 3, true
		}},
		{"VALKEY_HOST", "cache.internal", func(c *Config) { c.Host = "cache.internal" }},
		{"VALKEY_HOST", " ::1 ", func(c *Config) { c.Host = "::1" }},
		{"VALKEY_PORT", "6380", func(c *Config) { c.Port = 6380 }},
		{"VALKEY_ADDR", "a:1", func(c *Config) { c.Addrs = []string{"a:1"} }},
		{"VALKEY_ADDR", " [::1]:2 ", func(c *Config) { c.Addrs = []string{"[::1]:2"} }},
		{"VALKEY_ADDRS", "a:1", func(c *Config) { c.Addrs = []string{"a:1"} }},
		{"VALKEY_ADDRS", "a:1, b:2 ,[::1]:3", func(c *Config) { c.Addrs = []string{"a:1", "b:2", "[::1]:3"} }},
		{"VALKEY_USERNAME", "alice", func(c *Config) { c.Username = "alice" }},
		{"VALKEY_USERNAME", " alice ", func(c *Config) { c.Username = " alice " }},
		{"VALKEY_PASSWORD", testSecret, func(c *Config) { c.Password = testSecret }},
		{"VALKEY_PASSWORD", " " + testSecret + " ", func(c *Config) { c.Password = " " + testSecret + " " }},
		{"VALKEY_DB", "4", func(c *Config) { c.DB = 4 }},
		{"VALKEY_CLIENT_NAME", "api", func(c *Config) { c.ClientName = "api" }},
		{"VALKEY_PROVIDER", "glide", func(c *Config) { c.Driver = "glide" }},
		{"VALKEY_DRIVER", "glide", func(c *Config) { c.Driver = "glide" }},
		{"VALKEY_POOL_SIZE", "8", func(c *Config) { c.PoolSize = 8 }},
		{"VALKEY_DIAL_TIMEOUT", "250ms", func(c *Config) { c.DialTimeout = 250 * time.Millisecond }},
		{"VALKEY_READ_TIMEOUT", "0", func(c *Config) { c.ReadTimeout = 0 }},
		{"VALKEY_READ_TIMEOUT", "1m30s", func(c *Config) { c.ReadTimeout = 90 * time.Second }},
		{"VALKEY_WRITE_TIMEOUT", "2s", func(c *Config) { c.WriteTimeout = 2 * time.Second }},
		{"VALKEY_MAX_RETRIES", "0", func(c *Config) { c.MaxRetries = 0 }},
		{"VALKEY_MIN_RETRY_BACKOFF", "1ms", func(c *Config) { c.MinRetryBackoff = time.Millisecond }},
		{"VALKEY_MAX_RETRY_BACKOFF", "2s", func(c *Config) { c.MaxRetryBackoff = 2 * time.Second }},
		{"VALKEY_CIRCUIT_BREAKER_THRESHOLD", "10", func(c *Config) { c.CircuitBreakerThreshold = 10 }},
		{"VALKEY_CIRCUIT_BREAKER_OPEN_TIMEOUT", "30s", func(c *Config) { c.CircuitBreakerOpenTimeout = 30 * time.Second }},
		{"VALKEY_CIRCUIT_BREAKER_FAILURE_RATE", "0.25", func(c *Config) { c.CircuitBreakerFailureRate = 0.25 }},
		{"VALKEY_CIRCUIT_BREAKER_PERIOD", "1m", func(c *Config) { c.CircuitBreakerPeriod = time.Minute }},
		{"VALKEY_CLUSTER_MODE", "true", func(c *Config) { c.ClusterMode = true }},
		{"VALKEY_CLUSTER_MODE", "1", func(c *Config) { c.ClusterMode = true }},
		{"VALKEY_CLUSTER_MODE", "FALSE", func(c *Config) {}},
		{"VALKEY_READ_FROM", "replica", func(c *Config) { c.ReadFrom = ReadFromReplica }},
		{"VALKEY_READ_FROM", "prefer-replica", func(c *Config) { c.ReadFrom = ReadFromPreferReplica }},
		{"VALKEY_READ_FROM", "primary", func(c *Config) {}},
		{"VALKEY_MAX_REDIRECTS", "0", func(c *Config) { c.MaxRedirects = 0 }},
		{"VALKEY_CLUSTER_REFRESH_INTERVAL", "1m", func(c *Config) { c.ClusterRefreshInterval = time.Minute }},
		{"VALKEY_SENTINEL_REFRESH_INTERVAL", "0", func(c *Config) { c.SentinelRefreshInterval = 0 }},
		{"VALKEY_SENTINEL_REFRESH_INTERVAL", "30s", func(c *Config) { c.SentinelRefreshInterval = 30 * time.Second }},
		{"VALKEY_TLS_ENABLED", "true", func(c *Config) { c.TLS.Enabled = true }},
		{"VALKEY_TLS_ENABLED", "false", func(c *Config) {}},
		{"VALKEY_MAILBOX_CAPACITY", "128", func(c *Config) { c.MailboxCapacity = 128 }},
		{"VALKEY_BACKPRESSURE", "reject", func(c *Config) { c.Backpressure = BackpressureReject }},
		{"VALKEY_BACKPRESSURE", "block", func(c *Config) {}},
		{"VALKEY_MAX_BATCH_SIZE", "100000", func(c *Config) { c.MaxBatchSize = 100000 }},
		{"VALKEY_DRAIN_TIMEOUT", "0s", func(c *Config) { c.DrainTimeout = 0 }},
		{"VALKEY_LOG_LEVEL", " Debug ", func(c *Config) { c.LogLevel = LogLevelDebug }},
		{"VALKEY_LOG_LEVEL", "warning", func(c *Config) { c.LogLevel = LogLevelWarn }},
	}
	// The TLS file variables need TLS enabled.
	tlsTests := []struct {
		name, value string
		mod         func(*Config)
	}{
		{"VALKEY_TLS_CERT_FILE", "c.pem", func(c *Config) { c.TLS.CertFile = "c.pem" }},
		{"VALKEY_TLS_KEY_FILE", "k.pem", func(c *Config) { c.TLS.KeyFile = "k.pem" }},
		{"VALKEY_TLS_CA_FILE", "ca.pem", func(c *Config) { c.TLS.CAFile = "ca.pem" }},
		{"VALKEY_TLS_SERVER_NAME", "sn", func(c *Config) { c.TLS.ServerName = "sn" }},
		{"VALKEY_TLS_INSECURE_SKIP_VERIFY", "true", func(c *Config) { c.TLS.InsecureSkipVerify = true }},
	}
	// The sentinel variables need sentinel mode, which MASTER and ADDRS
	// turn on together.
	sentinelBase := map[string]string{"VALKEY_SENTINEL_MASTER": "mymaster", "VALKEY_SENTINEL_ADDRS": "s1:26379"}
	sentinelTests := []struct {
		name, value string
		mod         func(*Config)
	}{
		{"VALKEY_SENTINEL_MASTER", " master-1 ", func(c *Config) { c.SentinelMasterName = "master-1" }},
		{"VALKEY_SENTINEL_ADDRS", "s1:26379, s2:26380 ,[::1]:3", func(c *Config) { c.SentinelAddrs = []string{"s1:26379", "s2:26380", "[::1]:3"} }},
		{"VALKEY_SENTINEL_USERNAME", " watcher ", func(c *Config) { c.SentinelUsername = " watcher " }},
		{"VALKEY_SENTINEL_PASSWORD", " " + testSecret, func(c *Config) { c.SentinelPassword = " " + testSecret }},
	}
	covered := map[string]bool{}
	for _, tt := range sentinelTests {
		covered[tt.name] = true
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			m := map[string]string{tt.name: tt.value}
			for k, v := range sentinelBase {
				if _, ok := m[k]; !ok {
					m[k] = v
				}
			}
			got, err := loadFromLookup(lookupMap(m))
			if err != nil {
				t.Fatal(err)
			}
			want := DefaultConfig().WithSentinel("mymaster", "s1:26379")
			tt.mod(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got\n%#v\nwant\n%#v", got, want)
			}
		})
	}
	for _, tt := range tests {
		covered[tt.name] = true
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			got, err := loadFromLookup(lookupMap(map[string]string{tt.name: tt.value}))
			if err != nil {
				t.Fatal(err)
			}
			want := DefaultConfig()
			tt.mod(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got\n%#v\nwant\n%#v", got, want)
			}
		})
	}
	for _, tt := range tlsTests {
		covered[tt.name] = true
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			m := map[string]string{"VALKEY_TLS_ENABLED": "true", tt.name: tt.value}
			if tt.name == "VALKEY_TLS_CERT_FILE" {
				m["VALKEY_TLS_KEY_FILE"] = "k.pem"
			}
			if tt.name == "VALKEY_TLS_KEY_FILE" {
				m["VALKEY_TLS_CERT_FILE"] = "c.pem"
			}
			got, err := loadFromLookup(lookupMap(m))
			if err != nil {
				t.Fatal(err)
			}
			want := DefaultConfig()
			want.TLS.Enabled = true
			tt.mod(&want)
			if m["VALKEY_TLS_KEY_FILE"] != "" {
				want.TLS.KeyFile = "k.pem"
			}
			if m["VALKEY_TLS_CERT_FILE"] != "" {
				want.TLS.CertFile = "c.pem"
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got\n%#v\nwant\n%#v", got, want)
			}
		})
		// Without TLS enabled the setting is refused, not ignored.
		t.Run(tt.name+" without TLS", func(t *testing.T) {
			_, err := loadFromLookup(lookupMap(map[string]string{tt.name: tt.value}))
			if fe := fieldErr(err); fe == nil || (fe.Field != tt.name && fe.Field != "TLS.KeyFile" && fe.Field != "TLS.CertFile") {
				t.Fatalf("err = %v", err)
			}
		})
	}
	for _, name := range EnvVars {
		if !covered[name] {
			t.Errorf("no test case for %s", name)
		}
	}
}

func TestEnvVarErrors(t *testing.T) {
	tests := []struct {
		env                  map[string]string
		field, value, reason string
	}{
		{map[string]string{"VALKEY_URL": "http://u:" + testSecret + "@h"}, "VALKEY_URL", "http://[redacted]@h", `unsupported scheme "http"`},
		{map[string]string{"VALKEY_URL": "valkey://u:" + testSecret + "@h:0"}, "VALKEY_URL", "valkey://[redacted]@h:0", `URL port "0": must be between 1 and 65535`},
		{map[string]string{"VALKEY_URL": "valkey://u:" + testSecret + "@h/x"}, "VALKEY_URL", "valkey://[redacted]@h/x", `URL db "x": must be a non-negative integer`},
		{map[string]string{"VALKEY_URL": "valkey://u:" + testSecret + "/x@h"}, "VALKEY_URL", "valkey://[redacted]@h", "'@' after the user information"},
		{map[string]string{"VALKEY_URL": "valkey://u:p@" + testSecret + "@h"}, "VALKEY_URL", "valkey://[redacted]@h", "percent-encode '@' as %40"},
		{map[string]string{"VALKEY_URL": "valkey://u:" + testSecret + "@h?pool_size=0"}, "VALKEY_URL", "valkey://[redacted]@h?pool_size=0", `URL pool_size "0": must be between 1 and 1024`},
		{map[string]string{"VALKEY_HOST": "a b"}, "VALKEY_HOST", "a b", "spaces"},
		{map[string]string{"VALKEY_PORT": "http"}, "VALKEY_PORT", "http", "not an integer"},
		{map[string]string{"VALKEY_PORT": "70000"}, "VALKEY_PORT", "70000", "between 1 and 65535"},
		{map[string]string{"VALKEY_PORT": "99999999999999999999"}, "VALKEY_PORT", "99999999999999999999", "out of range"},
		// qa-AX AX-6: the bound of a URL's db and of WithDB.
		{map[string]string{"VALKEY_DB": "2147483648"}, "VALKEY_DB", "2147483648", "must be at least 0 and at most 2147483647"},
		{map[string]string{"VALKEY_DB": "99999999999999999999"}, "VALKEY_DB", "99999999999999999999", "must be at least 0 and at most 2147483647"},
		// qa-AX AX-7.
		{map[string]string{"VALKEY_HOST": "a,b"}, "VALKEY_HOST", "a,b", "',' is not allowed"},
		{map[string]string{"VALKEY_ADDR": "a/b:6379"}, "VALKEY_ADDR", "a/b:6379", "'/' is not allowed"},
		{map[string]string{"VALKEY_ADDR": "a"}, "VALKEY_ADDR", "a", "host:port"},
		{map[string]string{"VALKEY_ADDR": "a:1,b:2"}, "VALKEY_ADDR", "a:1,b:2", `must be "host:port"`},
		{map[string]string{"VALKEY_ADDR": "a:1", "VALKEY_ADDRS": "b:2"}, "VALKEY_ADDR", "a:1", "conflicts with VALKEY_ADDRS"},
		{map[string]string{"VALKEY_ADDRS": "a:1,,b:2"}, "VALKEY_ADDRS", "a:1,,b:2", "entry 2 is empty"},
		{map[string]string{"VALKEY_ADDRS": "a:1, "}, "VALKEY_ADDRS", "a:1,", "entry 2 is empty"},
		{map[string]string{"VALKEY_ADDRS": ",a:1"}, "VALKEY_ADDRS", ",a:1", "entry 1 is empty"},
		{map[string]string{"VALKEY_ADDRS": "a:1,b"}, "VALKEY_ADDRS", "a:1,b", `entry 2 "b": must be "host:port"`},
		{map[string]string{"VALKEY_ADDRS": "a:1,b:0"}, "VALKEY_ADDRS", "a:1,b:0", `entry 2 "b:0": port must be`},
		{map[string]string{"VALKEY_DB": "one"}, "VALKEY_DB", "one", "not an integer"},
		{map[string]string{"VALKEY_DB": "-1"}, "VALKEY_DB", "-1", "at least 0"},
		// review-34b R34b-6: a sign the URL's db refuses too (fix-36).
		{map[string]string{"VALKEY_DB": "+5"}, "VALKEY_DB", "+5", "must be a non-negative integer"},
		{map[string]string{"VALKEY_DB": "+0"}, "VALKEY_DB", "+0", "must be a non-negative integer"},
		{map[string]string{"VALKEY_DB": "-0"}, "VALKEY_DB", "-0", "must be a non-negative integer"},
		{map[string]string{"VALKEY_CLIENT_NAME": "my app"}, "VALKEY_CLIENT_NAME", "my app", "without spaces"},
		{map[string]string{"VALKEY_POOL_SIZE": "lots"}, "VALKEY_POOL_SIZE", "lots", "not an integer"},
		{map[string]string{"VALKEY_POOL_SIZE": "0"}, "VALKEY_POOL_SIZE", "0", "between 1 and 1024"},
		{map[string]string{"VALKEY_POOL_SIZE": "1.5"}, "VALKEY_POOL_SIZE", "1.5", "not an integer"},
		{map[string]string{"VALKEY_DIAL_TIMEOUT": "5"}, "VALKEY_DIAL_TIMEOUT", "5", "not a duration"},
		{map[string]string{"VALKEY_DIAL_TIMEOUT": "5 s"}, "VALKEY_DIAL_TIMEOUT", "5 s", "not a duration"},
		{map[string]string{"VALKEY_DIAL_TIMEOUT": "0s"}, "VALKEY_DIAL_TIMEOUT", "0s", "greater than 0"},
		{map[string]string{"VALKEY_READ_TIMEOUT": "soon"}, "VALKEY_READ_TIMEOUT", "soon", "not a duration"},
		{map[string]string{"VALKEY_READ_TIMEOUT": "-1s"}, "VALKEY_READ_TIMEOUT", "-1s", "at least 0"},
		{map[string]string{"VALKEY_WRITE_TIMEOUT": "1d"}, "VALKEY_WRITE_TIMEOUT", "1d", "not a duration"},
		{map[string]string{"VALKEY_WRITE_TIMEOUT": "-1ms"}, "VALKEY_WRITE_TIMEOUT", "-1ms", "at least 0"},
		{map[string]string{"VALKEY_MAX_RETRIES": "x"}, "VALKEY_MAX_RETRIES", "x", "not an integer"},
		{map[string]string{"VALKEY_MAX_RETRIES": "-1"}, "VALKEY_MAX_RETRIES", "-1", "at least 0"},
		{map[string]string{"VALKEY_MIN_RETRY_BACKOFF": "x"}, "VALKEY_MIN_RETRY_BACKOFF", "x", "not a duration"},
		{map[string]string{"VALKEY_MIN_RETRY_BACKOFF": "-1ms"}, "VALKEY_MIN_RETRY_BACKOFF", "-1ms", "at least 0"},
		{map[string]string{"VALKEY_MAX_RETRY_BACKOFF": "x"}, "VALKEY_MAX_RETRY_BACKOFF", "x", "not a duration"},
		{map[string]string{"VALKEY_CIRCUIT_BREAKER_THRESHOLD": "x"}, "VALKEY_CIRCUIT_BREAKER_THRESHOLD", "x", "not an integer"},
		{map[string]string{"VALKEY_CIRCUIT_BREAKER_THRESHOLD": "0"}, "VALKEY_CIRCUIT_BREAKER_THRESHOLD", "0", "between 1 and 100000"},
		{map[string]string{"VALKEY_CIRCUIT_BREAKER_OPEN_TIMEOUT": "x"}, "VALKEY_CIRCUIT_BREAKER_OPEN_TIMEOUT", "x", "not a duration"},
		{map[string]string{"VALKEY_CIRCUIT_BREAKER_OPEN_TIMEOUT": "0s"}, "VALKEY_CIRCUIT_BREAKER_OPEN_TIMEOUT", "0s", "greater than 0"},
		{map[string]string{"VALKEY_CIRCUIT_BREAKER_FAILURE_RATE": "half"}, "VALKEY_CIRCUIT_BREAKER_FAILURE_RATE", "half", "not a number"},
		{map[string]string{"VALKEY_CIRCUIT_BREAKER_FAILURE_RATE": "2"}, "VALKEY_CIRCUIT_BREAKER_FAILURE_RATE", "2", "between 0 and 1"},
		{map[string]string{"VALKEY_CIRCUIT_BREAKER_PERIOD": "x"}, "VALKEY_CIRCUIT_BREAKER_PERIOD", "x", "not a duration"},
		{map[string]string{"VALKEY_CLUSTER_MODE": "yes"}, "VALKEY_CLUSTER_MODE", "yes", "not a boolean"},
		{map[string]string{"VALKEY_READ_FROM": "master"}, "VALKEY_READ_FROM", "master", `"primary", "replica" or "prefer-replica"`},
		{map[string]string{"VALKEY_MAX_REDIRECTS": "x"}, "VALKEY_MAX_REDIRECTS", "x", "not an integer"},
		{map[string]string{"VALKEY_MAX_REDIRECTS": "-1"}, "VALKEY_MAX_REDIRECTS", "-1", "at least 0"},
		{map[string]string{"VALKEY_CLUSTER_REFRESH_INTERVAL": "soon"}, "VALKEY_CLUSTER_REFRESH_INTERVAL", "soon", "not a duration"},
		{map[string]string{"VALKEY_CLUSTER_REFRESH_INTERVAL": "-1s"}, "VALKEY_CLUSTER_REFRESH_INTERVAL", "-1s", "must be 0 (off) or at least 100ms"},
		{map[string]string{"VALKEY_CLUSTER_REFRESH_INTERVAL": "1ns"}, "VALKEY_CLUSTER_REFRESH_INTERVAL", "1ns", "must be 0 (off) or at least 100ms"},
		{map[string]string{"VALKEY_SENTINEL_MASTER": "m m", "VALKEY_SENTINEL_ADDRS": "s:1"}, "VALKEY_SENTINEL_MASTER", "m m", "spaces"},
		{map[string]string{"VALKEY_SENTINEL_MASTER": "m", "VALKEY_SENTINEL_ADDRS": "s:1,,t:2"}, "VALKEY_SENTINEL_ADDRS", "s:1,,t:2", "entry 2 is empty"},
		{map[string]string{"VALKEY_SENTINEL_MASTER": "m", "VALKEY_SENTINEL_ADDRS": "s"}, "VALKEY_SENTINEL_ADDRS", "s", `entry 1 "s": must be "host:port"`},
		{map[string]string{"VALKEY_SENTINEL_MASTER": "m", "VALKEY_SENTINEL_ADDRS": "s:1", "VALKEY_ADDRS": "a:1"}, "VALKEY_ADDRS", "a:1", "conflicts with VALKEY_SENTINEL_MASTER"},
		{map[string]string{"VALKEY_SENTINEL_ADDRS": "s:1", "VALKEY_ADDR": "a:1"}, "VALKEY_ADDR", "a:1", "conflicts with VALKEY_SENTINEL_ADDRS"},
		// VALKEY_HOST and VALKEY_PORT in sentinel mode are refused as
		// VALKEY_ADDR and VALKEY_ADDRS are (they were ignored).
		{map[string]string{"VALKEY_SENTINEL_MASTER": "m", "VALKEY_SENTINEL_ADDRS": "s:1", "VALKEY_HOST": "h"}, "VALKEY_HOST", "h",
			"conflicts with VALKEY_SENTINEL_MASTER: in sentinel mode the sentinels name the primary (list the sentinels in VALKEY_SENTINEL_ADDRS)"},
		{map[string]string{"VALKEY_SENTINEL_ADDRS": "s:1", "VALKEY_PORT": "7000"}, "VALKEY_PORT", "7000", "conflicts with VALKEY_SENTINEL_ADDRS"},
		{map[string]string{"VALKEY_URL": "valkey://u:" + testSecret + "@s1:26379?master_set=m", "VALKEY_HOST": "h"}, "VALKEY_HOST", "h",
			"conflicts with VALKEY_URL, whose master_set means sentinel mode: the sentinels name the primary (list the sentinels in the URL's host and addr parameters, or in VALKEY_SENTINEL_ADDRS)"},
		{map[string]string{"VALKEY_URL": "valkey://s1:26379?master_set=m", "VALKEY_PORT": "7000"}, "VALKEY_PORT", "7000", "conflicts with VALKEY_URL, whose master_set"},
		// The error names the variable to list the sentinels in, not the
		// Config field (it said "list the sentinels in SentinelAddrs").
		{map[string]string{"VALKEY_URL": "valkey://u:" + testSecret + "@s1:26379?master_set=m", "VALKEY_ADDRS": "a:1,b:2"}, "VALKEY_ADDRS", "a:1,b:2",
			"(list the sentinels in the URL's host and addr parameters, or in VALKEY_SENTINEL_ADDRS)"},
		{map[string]string{"VALKEY_URL": "valkey://s1:26379?master_set=m", "VALKEY_ADDR": "a:1"}, "VALKEY_ADDR", "a:1", "or in VALKEY_SENTINEL_ADDRS)"},
		{map[string]string{"VALKEY_SENTINEL_PASSWORD": testSecret}, "VALKEY_SENTINEL_PASSWORD", redacted, "needs sentinel mode: set VALKEY_SENTINEL_ADDRS and VALKEY_SENTINEL_MASTER"},
		{map[string]string{"VALKEY_SENTINEL_USERNAME": "w"}, "VALKEY_SENTINEL_USERNAME", "w", "needs sentinel mode"},
		{map[string]string{"VALKEY_SENTINEL_REFRESH_INTERVAL": "often"}, "VALKEY_SENTINEL_REFRESH_INTERVAL", "often", "not a duration"},
		{map[string]string{"VALKEY_SENTINEL_REFRESH_INTERVAL": "-1s"}, "VALKEY_SENTINEL_REFRESH_INTERVAL", "-1s", "must be 0 (off) or at least 100ms"},
		{map[string]string{"VALKEY_SENTINEL_REFRESH_INTERVAL": "10ms"}, "VALKEY_SENTINEL_REFRESH_INTERVAL", "10ms", "must be 0 (off) or at least 100ms"},
		{map[string]string{"VALKEY_TLS_ENABLED": "on"}, "VALKEY_TLS_ENABLED", "on", "not a boolean"},
		{map[string]string{"VALKEY_TLS_ENABLED": "0", "VALKEY_TLS_CA_FILE": "ca.pem"}, "VALKEY_TLS_ENABLED", "0", "must be true when other TLS settings are given"},
		{map[string]string{"VALKEY_TLS_CA_FILE": "ca.pem"}, "VALKEY_TLS_CA_FILE", "ca.pem", "needs TLS: set VALKEY_TLS_ENABLED=true"},
		{map[string]string{"VALKEY_TLS_INSECURE_SKIP_VERIFY": "true"}, "VALKEY_TLS_INSECURE_SKIP_VERIFY", "true", "needs TLS"},
		{map[string]string{"VALKEY_URL": "valkeys://h:1", "VALKEY_TLS_ENABLED": "false", "VALKEY_TLS_CA_FILE": "ca.pem"}, "VALKEY_TLS_ENABLED", "false", "conflicts with VALKEY_URL, which turns TLS on"},
		{map[string]string{"VALKEY_TLS_INSECURE_SKIP_VERIFY": "maybe"}, "VALKEY_TLS_INSECURE_SKIP_VERIFY", "maybe", "not a boolean"},
		{map[string]string{"VALKEY_MAILBOX_CAPACITY": "x"}, "VALKEY_MAILBOX_CAPACITY", "x", "not an integer"},
		{map[string]string{"VALKEY_MAILBOX_CAPACITY": "0"}, "VALKEY_MAILBOX_CAPACITY", "0", "at least 1"},
		{map[string]string{"VALKEY_BACKPRESSURE": "drop"}, "VALKEY_BACKPRESSURE", "drop", `must be "block" or "reject"`},
		{map[string]string{"VALKEY_MAX_BATCH_SIZE": "x"}, "VALKEY_MAX_BATCH_SIZE", "x", "not an integer"},
		{map[string]string{"VALKEY_MAX_BATCH_SIZE": "100001"}, "VALKEY_MAX_BATCH_SIZE", "100001", "between 1 and 100000"},
		{map[string]string{"VALKEY_DRAIN_TIMEOUT": "x"}, "VALKEY_DRAIN_TIMEOUT", "x", "not a duration"},
		{map[string]string{"VALKEY_DRAIN_TIMEOUT": "-5s"}, "VALKEY_DRAIN_TIMEOUT", "-5s", "at least 0"},
		{map[string]string{"VALKEY_LOG_LEVEL": "verbose"}, "VALKEY_LOG_LEVEL", "verbose", `must be "debug", "info", "warn" or "error"`},
		{map[string]string{"VALKEY_PROVIDER": "a", "VALKEY_DRIVER": "a b", "VALKEY_CLIENT_NAME": "x y"}, "VALKEY_CLIENT_NAME", "x y", "without spaces"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.env), func(t *testing.T) {
			// A password is always set: no error may contain it.
			env := map[string]string{"VALKEY_PASSWORD": testSecret}
			for k, v := range tt.env {
				env[k] = v
			}
			got, err := loadFromLookup(lookupMap(env))
			checkFieldError(t, err, tt.field, tt.value, tt.reason)
			if !reflect.DeepEqual(got, Config{}) {
				t.Errorf("returned a non-zero Config with an error: %v", got)
			}
		})
	}
}

// A value Validate rejects because of another setting, or of a default,
// is reported under the variable the user set, with the variable or
// default it conflicts with in the reason; never under a Config field
// (they named MaxRetryBackoff "512ms" for VALKEY_MIN_RETRY_BACKOFF=1s,
// TLS.KeyFile "" for VALKEY_TLS_CERT_FILE, SentinelMode "true" for
// VALKEY_CLUSTER_MODE).
func TestEnvConflictErrors(t *testing.T) {
	tests := []struct {
		env                  map[string]string
		field, value, reason string
	}{
		// The backoffs, against each other or against the other's default.
		{map[string]string{"VALKEY_MIN_RETRY_BACKOFF": "1s"}, "VALKEY_MIN_RETRY_BACKOFF", "1s",
			"must be at most the default MaxRetryBackoff (512ms); set VALKEY_MAX_RETRY_BACKOFF to raise it"},
		{map[string]string{"VALKEY_MAX_RETRY_BACKOFF": "1ms"}, "VALKEY_MAX_RETRY_BACKOFF", "1ms",
			"must be at least the default MinRetryBackoff (8ms); set VALKEY_MIN_RETRY_BACKOFF to lower it"},
		{map[string]string{"VALKEY_MIN_RETRY_BACKOFF": "1s", "VALKEY_MAX_RETRY_BACKOFF": "600ms"}, "VALKEY_MAX_RETRY_BACKOFF", "600ms",
			"must be at least VALKEY_MIN_RETRY_BACKOFF (1s)"},
		// The database in cluster mode, from VALKEY_DB or from the URL.
		{map[string]string{"VALKEY_DB": "1", "VALKEY_CLUSTER_MODE": "true"}, "VALKEY_DB", "1",
			"must be 0 in cluster mode, which VALKEY_CLUSTER_MODE turns on"},
		{map[string]string{"VALKEY_URL": "valkey://u:" + testSecret + "@h/2", "VALKEY_CLUSTER_MODE": "true"}, "VALKEY_URL", "valkey://[redacted]@h/2",
			`URL db "2": must be 0 in cluster mode, which VALKEY_CLUSTER_MODE turns on`},
		{map[string]string{"VALKEY_URL": "valkey://h?db=3", "VALKEY_CLUSTER_MODE": "1"}, "VALKEY_URL", "valkey://h?db=3",
			`URL db "3": must be 0 in cluster mode, which VALKEY_CLUSTER_MODE turns on`},
		// Cluster mode against sentinel mode, whichever variable turned it on.
		{map[string]string{"VALKEY_SENTINEL_MASTER": "m", "VALKEY_SENTINEL_ADDRS": "s:1", "VALKEY_CLUSTER_MODE": "true"}, "VALKEY_CLUSTER_MODE", "true",
			"conflicts with VALKEY_SENTINEL_MASTER, which turns sentinel mode on: set only one of cluster mode and sentinel mode"},
		{map[string]string{"VALKEY_URL": "valkey://s1?master_set=m", "VALKEY_SENTINEL_ADDRS": "s:1", "VALKEY_CLUSTER_MODE": "true"}, "VALKEY_CLUSTER_MODE", "true",
			"conflicts with VALKEY_SENTINEL_ADDRS, which turns sentinel mode on"},
		{map[string]string{"VALKEY_URL": "valkey://u:" + testSecret + "@s:1?master_set=m", "VALKEY_CLUSTER_MODE": "1"}, "VALKEY_CLUSTER_MODE", "1",
			"conflicts with VALKEY_URL, whose master_set means sentinel mode: set only one of cluster mode and sentinel mode"},
		// Half of sentinel mode.
		{map[string]string{"VALKEY_SENTINEL_MASTER": "m"}, "VALKEY_SENTINEL_MASTER", "m",
			"turns sentinel mode on, which needs VALKEY_SENTINEL_ADDRS too"},
		{map[string]string{"VALKEY_SENTINEL_ADDRS": "s:1"}, "VALKEY_SENTINEL_ADDRS", "s:1",
			"turns sentinel mode on, which needs VALKEY_SENTINEL_MASTER too"},
		// Half of a client certificate.
		{map[string]string{"VALKEY_TLS_ENABLED": "1", "VALKEY_TLS_CERT_FILE": "c.pem"}, "VALKEY_TLS_CERT_FILE", "c.pem",
			"needs VALKEY_TLS_KEY_FILE too: set both or neither"},
		{map[string]string{"VALKEY_TLS_KEY_FILE": "k.pem", "VALKEY_TLS_ENABLED": "true"}, "VALKEY_TLS_KEY_FILE", "k.pem",
			"needs VALKEY_TLS_CERT_FILE too: set both or neither"},
		{map[string]string{"VALKEY_URL": "valkeys://h", "VALKEY_TLS_CERT_FILE": "c.pem"}, "VALKEY_TLS_CERT_FILE", "c.pem",
			"needs VALKEY_TLS_KEY_FILE too"},
		// TLS turned off while TLS settings are given: which ones.
		{map[string]string{"VALKEY_TLS_ENABLED": "0", "VALKEY_TLS_CA_FILE": "ca.pem"}, "VALKEY_TLS_ENABLED", "0",
			"must be true when other TLS settings are given (VALKEY_TLS_CA_FILE)"},
		// A URL that turns TLS on is not turned plain by VALKEY_TLS_ENABLED
		// (the password would go out in clear; qa-AD 6).
		{map[string]string{"VALKEY_URL": "valkeys://u:" + testSecret + "@h?skip_verify", "VALKEY_TLS_ENABLED": "false"}, "VALKEY_TLS_ENABLED", "false",
			"conflicts with VALKEY_URL, which turns TLS on (rediss:// or valkeys://)"},
		{map[string]string{"VALKEY_URL": "rediss://u:" + testSecret + "@h:6380", "VALKEY_TLS_ENABLED": "0"}, "VALKEY_TLS_ENABLED", "0",
			"conflicts with VALKEY_URL, which turns TLS on (rediss:// or valkeys://): use a redis:// URL for a plain connection, or drop VALKEY_TLS_ENABLED"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.env), func(t *testing.T) {
			env := map[string]string{"VALKEY_PASSWORD": testSecret}
			for k, v := range tt.env {
				env[k] = v
			}
			got, err := loadFromLookup(lookupMap(env))
			fe := checkFieldError(t, err, tt.field, tt.value, tt.reason)
			if _, ok := tt.env[fe.Field]; !ok {
				t.Errorf("error names %s, which was not set (err %v)", fe.Field, err)
			}
			if !reflect.DeepEqual(got, Config{}) {
				t.Errorf("returned a non-zero Config with an error: %v", got)
			}
		})
	}
}

func TestEnvPrecedence(t *testing.T) {
	url := "valkeys://u:" + testSecret + "@from-url:7000/3?dial_timeout=1s&driver=url-driver"
	tests := []struct {
		name string
		env  map[string]string
		mod  func(*Config)
	}{
		{"url alone", map[string]string{"VALKEY_URL": url}, func(c *Config) {}},
		{"url then host", map[string]string{"VALKEY_URL": url, "VALKEY_HOST": "h2"}, func(c *Config) {
			c.Host, c.Addrs = "h2", nil
		}},
		{"url then port", map[string]string{"VALKEY_URL": url, "VALKEY_PORT": "7001"}, func(c *Config) {
			c.Port, c.Addrs = 7001, nil
		}},
		{"url then addrs", map[string]string{"VALKEY_URL": url, "VALKEY_ADDRS": "a:1,b:2"}, func(c *Config) {
			c.Addrs = []string{"a:1", "b:2"}
		}},
		{"host then addr", map[string]string{"VALKEY_HOST": "h2", "VALKEY_ADDR": "a:1"}, func(c *Config) {
			*c = DefaultConfig()
			c.Host, c.Addrs = "h2", []string{"a:1"}
		}},
		{"url then credentials", map[string]string{"VALKEY_URL": url, "VALKEY_USERNAME": "v", "VALKEY_PASSWORD": "other"}, func(c *Config) {
			c.Username, c.Password = "v", "other"
		}},
		{"url then db, timeout", map[string]string{"VALKEY_URL": url, "VALKEY_DB": "0", "VALKEY_DIAL_TIMEOUT": "2s", "VALKEY_TLS_ENABLED": "true"}, func(c *Config) {
			c.DB, c.DialTimeout = 0, 2*time.Second // (VALKEY_TLS_ENABLED false against a TLS URL: TestEnvConflictErrors)
		}},
		{"provider overrides url", map[string]string{"VALKEY_URL": url, "VALKEY_PROVIDER": "p"}, func(c *Config) { c.Driver = "p" }},
		{"driver wins over provider", map[string]string{"VALKEY_PROVIDER": "p", "VALKEY_DRIVER": "d"}, func(c *Config) {
			*c = DefaultConfig()
			c.Driver = "d"
		}},
		{"sentinel variables clear the url's addrs", map[string]string{"VALKEY_URL": url, "VALKEY_SENTINEL_MASTER": "m", "VALKEY_SENTINEL_ADDRS": "s:1,t:2"}, func(c *Config) {
			c.SentinelMode, c.SentinelMasterName, c.SentinelAddrs, c.Addrs = true, "m", []string{"s:1", "t:2"}, nil
		}},
		{"sentinel url, then sentinel variables", map[string]string{
			"VALKEY_URL":               "valkey://u:" + testSecret + "@s1:26379?addr=s2:26379&master_set=m",
			"VALKEY_SENTINEL_ADDRS":    "s3:26379",
			"VALKEY_SENTINEL_PASSWORD": testSecret,
		}, func(c *Config) {
			*c = DefaultConfig().WithSentinel("m", "s3:26379").WithUsername("u").WithPassword(testSecret).WithSentinelPassword(testSecret)
		}},
		{"url makes a bad value good", map[string]string{"VALKEY_URL": "valkey://h?pool_size=0", "VALKEY_POOL_SIZE": "2"}, func(c *Config) {
			*c = DefaultConfig()
			c.Host, c.Addrs, c.PoolSize = "h", []string{"h:6379"}, 2
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadFromLookup(lookupMap(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			want, err := ParseURL(url)
			if err != nil {
				t.Fatal(err)
			}
			tt.mod(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got\n%#v\nwant\n%#v", got, want)
			}
		})
	}
}

func TestEnvDriverErrorNamesWinningVariable(t *testing.T) {
	_, err := loadFromLookup(lookupMap(map[string]string{"VALKEY_PROVIDER": "p", "VALKEY_DRIVER": " "}))
	if err != nil {
		t.Fatal(err) // blank DRIVER is unset: PROVIDER applies
	}
	// Driver can only be empty via the URL; Validate names it.
	_, err = loadFromLookup(lookupMap(map[string]string{"VALKEY_URL": "valkey://h?driver="}))
	checkFieldError(t, err, "VALKEY_URL", "valkey://h?driver=", `URL driver "": must not be empty`)
}

func TestLoadFromEnv(t *testing.T) {
	for _, name := range EnvVars {
		t.Setenv(name, "") // empty counts as unset
	}
	t.Setenv("VALKEY_ADDRS", "n1:7000, n2:7000")
	t.Setenv("VALKEY_CLUSTER_MODE", "true")
	t.Setenv("VALKEY_PASSWORD", testSecret)
	for _, load := range []func() (Config, error){LoadFromEnv, FromEnv} {
		got, err := load()
		if err != nil {
			t.Fatal(err)
		}
		want := DefaultConfig().WithAddrs("n1:7000", "n2:7000").WithClusterMode(true).WithPassword(testSecret)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	t.Setenv("VALKEY_DIAL_TIMEOUT", "forever")
	_, err := LoadFromEnv()
	checkFieldError(t, err, "VALKEY_DIAL_TIMEOUT", "forever", "not a duration")
	if got := err.Error(); got != `config: invalid VALKEY_DIAL_TIMEOUT "forever": not a duration (for example 5s or 250ms)` {
		t.Errorf("Error() = %q", got)
	}
}

// FuzzLoadFromEnv feeds variables chosen by the fuzzer (one per line: the
// first byte picks the variable, the rest is its value) plus a password, and
// checks that loading never panics, that what it returns validates, and that
// the password never appears in an error or in the printed result.
func FuzzLoadFromEnv(f *testing.F) {
	line := func(name, value string) string {
		return string(rune('A'+slices.Index(EnvVars, name))) + value + "\n"
	}
	f.Add("", "pw")
	f.Add(line("VALKEY_URL", "valkeys://u:p@h:1/2?pool_size=3")+line("VALKEY_PORT", "7"), "pw")
	f.Add(line("VALKEY_ADDRS", "a:1, b:2")+line("VALKEY_CLUSTER_MODE", "1")+line("VALKEY_DB", "1"), "pw")
	f.Add(line("VALKEY_DIAL_TIMEOUT", "5 s")+line("VALKEY_PROVIDER", "x"), " ")
	f.Add(line("VALKEY_TLS_CERT_FILE", "c")+line("VALKEY_TLS_ENABLED", "true"), "pw")
	f.Add(line("VALKEY_MIN_RETRY_BACKOFF", "1s")+line("VALKEY_READ_FROM", "replica"), "pw")
	f.Add(line("VALKEY_URL", "valkey://:p/x@h")+line("VALKEY_ADDR", "h:0"), "pw")
	f.Add(line("VALKEY_URL", "valkeys://u:p@s1?addr=s2:1&master_set=m")+line("VALKEY_SENTINEL_USERNAME", "w"), "pw")
	f.Add(line("VALKEY_SENTINEL_MASTER", "m")+line("VALKEY_SENTINEL_ADDRS", "s:1, t:2")+line("VALKEY_SENTINEL_PASSWORD", "x"), "pw")
	f.Fuzz(func(t *testing.T, data, password string) {
		secret := fuzzMarker + password
		if strings.Contains(strings.ToLower(data), strings.ToLower(fuzzMarker)) {
			t.Skip()
		}
		env := map[string]string{"VALKEY_PASSWORD": secret}
		for l := range strings.SplitSeq(data, "\n") {
			if l == "" {
				continue
			}
			name := EnvVars[int(l[0])%len(EnvVars)]
			if name == "VALKEY_PASSWORD" || name == "VALKEY_SENTINEL_PASSWORD" {
				continue
			}
			env[name] = l[1:]
		}
		checkEnvLoad(t, env, secret)
		// In sentinel mode, with the sentinels' password a secret too.
		senv := maps.Clone(env)
		delete(senv, "VALKEY_ADDR")
		delete(senv, "VALKEY_ADDRS")
		senv["VALKEY_SENTINEL_MASTER"], senv["VALKEY_SENTINEL_ADDRS"] = "m", "s:26379"
		senv["VALKEY_SENTINEL_PASSWORD"] = fuzzMarker + "s" + password
		checkEnvLoad(t, senv, secret)
		// Also put a marker in the user information of VALKEY_URL: it may
		// not leak either (though as a user name it may be printed).
		if u, ok := env["VALKEY_URL"]; ok {
			env["VALKEY_URL"] = withMarker(u, uint(len(password)))
			checkEnvLoad(t, env, secret)
		}
	})
}

func checkEnvLoad(t *testing.T, env map[string]string, secret string) {
	t.Helper()
	cfg, err := loadFromLookup(lookupMap(env))
	if err != nil {
		if !errors.Is(err, ErrInvalidConfig) || fieldErr(err) == nil {
			t.Fatalf("error %T %v is not a *FieldError wrapping ErrInvalidConfig", err, err)
		}
		if strings.Contains(err.Error(), fuzzMarker) || strings.Contains(fmt.Sprintf("%#v", err), fuzzMarker) {
			t.Fatalf("error leaks the password: %v", err)
		}
		if !reflect.DeepEqual(cfg, Config{}) {
			t.Fatalf("returned %v with error %v", cfg, err)
		}
		return
	}
	if verr := cfg.Validate(); verr != nil {
		t.Fatalf("loaded %v, which fails Validate: %v", cfg, verr)
	}
	if cfg.Password != secret {
		t.Fatalf("Password = %q, want %q", cfg.Password, secret)
	}
	if want := env["VALKEY_SENTINEL_PASSWORD"]; cfg.SentinelPassword != want {
		t.Fatalf("SentinelPassword = %q, want %q", cfg.SentinelPassword, want)
	}
	if strings.Contains(cfg.Username, fuzzMarker) {
		return // the marker landed in the URL's user name, which is printed
	}
	for _, out := range []string{cfg.String(), cfg.GoString(), fmt.Sprintf("%v|%+v|%#v|%s|%q|%x", cfg, cfg, cfg, cfg, cfg, cfg), cfg.LogValue().String()} {
		if strings.Contains(out, fuzzMarker) {
			t.Fatalf("printing leaks the password: %s", out)
		}
	}
}

// EnvNamesServer is true with any one of ServerEnvVars set, false with all
// unset or blank, and every variable it lists is one LoadFromEnv reads.
func TestEnvNamesServer(t *testing.T) {
	for _, v := range ServerEnvVars {
		if !slices.Contains(EnvVars, v) {
			t.Errorf("%s is not a variable LoadFromEnv reads", v)
		}
		t.Setenv(v, " ")
	}
	if EnvNamesServer() {
		t.Fatal("blank variables name a server")
	}
	for _, v := range ServerEnvVars {
		t.Run(v, func(t *testing.T) {
			t.Setenv(v, "127.0.0.1:7000")
			if !EnvNamesServer() {
				t.Errorf("%s set: EnvNamesServer false", v)
			}
		})
	}
}
