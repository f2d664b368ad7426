package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		in  string
		mod func(*Config)
	}{
		{"valkey://localhost", func(c *Config) { c.Host = "localhost" }},
		{"valkey://localhost:6380", func(c *Config) { c.Host, c.Port = "localhost", 6380 }},
		{"redis://10.0.0.1:7000/", func(c *Config) { c.Host, c.Port = "10.0.0.1", 7000 }},
		{"VALKEY://Cache:1", func(c *Config) { c.Host, c.Port = "Cache", 1 }},
		{"valkeys://h", func(c *Config) { c.Host, c.TLS.Enabled = "h", true }},
		{"rediss://h:6380", func(c *Config) { c.Host, c.Port, c.TLS.Enabled = "h", 6380, true }},
		{"valkey://h/0", func(c *Config) { c.Host = "h" }},
		{"valkey://h/15", func(c *Config) { c.Host, c.DB = "h", 15 }},
		// qa-AX AX-6: 10 digits within the bound, as WithDB and VALKEY_DB take.
		{"valkey://h/2147483647", func(c *Config) { c.Host, c.DB = "h", 2147483647 }},
		{"valkey://h?db=1000000000", func(c *Config) { c.Host, c.DB = "h", 1000000000 }},
		{"valkey://h/0000000000015", func(c *Config) { c.Host, c.DB = "h", 15 }},
		{"valkey://h:1/007", func(c *Config) { c.Host, c.Port, c.DB = "h", 1, 7 }},
		{"valkey://[::1]", func(c *Config) { c.Host = "::1" }},
		{"valkey://[::1]:6380/2", func(c *Config) { c.Host, c.Port, c.DB = "::1", 6380, 2 }},
		{"valkey://[fe80::1%25eth0]:6380", func(c *Config) { c.Host, c.Port = "fe80::1%eth0", 6380 }},
		{"valkey://", func(c *Config) {}},
		{"valkey://:6380", func(c *Config) { c.Port = 6380 }},
		{"valkey:///3", func(c *Config) { c.DB = 3 }},
		{"valkey://alice:" + testSecret + "@h", func(c *Config) { c.Host, c.Username, c.Password = "h", "alice", testSecret }},
		{"valkey://alice@h", func(c *Config) { c.Host, c.Username = "h", "alice" }},
		{"valkey://alice:@h", func(c *Config) { c.Host, c.Username = "h", "alice" }},
		{"redis://:" + testSecret + "@h", func(c *Config) { c.Host, c.Password = "h", testSecret }},
		{"redis://@h", func(c *Config) { c.Host = "h" }},
		{"valkey://a%40b:p%40ss%2Fw%3Fo%23rd%3A@h", func(c *Config) { c.Host, c.Username, c.Password = "h", "a@b", "p@ss/w?o#rd:" }},
		{"valkey://u:p:q@h", func(c *Config) { c.Host, c.Username, c.Password = "h", "u", "p:q" }},
		{"valkey://h?dial_timeout=250ms", func(c *Config) { c.Host, c.DialTimeout = "h", 250*time.Millisecond }},
		{"valkey://h/?read_timeout=0s&write_timeout=1m", func(c *Config) { c.Host, c.ReadTimeout, c.WriteTimeout = "h", 0, time.Minute }},
		{"valkey://h/1?pool_size=8", func(c *Config) { c.Host, c.DB, c.PoolSize = "h", 1, 8 }},
		{"valkey://h?client_name=api-1", func(c *Config) { c.Host, c.ClientName = "h", "api-1" }},
		{"valkey://h?client_name=", func(c *Config) { c.Host, c.ClientName = "h", "" }},
		{"valkey://h?driver=valkey-glide", func(c *Config) { c.Host, c.Driver = "h", "valkey-glide" }},
		{"valkey://h?protocol=3", func(c *Config) { c.Host = "h" }},
		{"valkey://h?protocol=anything", func(c *Config) { c.Host = "h" }},
		{"valkey://h?", func(c *Config) { c.Host = "h" }},
		{"valkey://h?db=3", func(c *Config) { c.Host, c.DB = "h", 3 }},
		{"valkey://h?max_retries=0", func(c *Config) { c.Host, c.MaxRetries = "h", 0 }},
		{"valkeys://h?skip_verify", func(c *Config) { c.Host, c.TLS.Enabled, c.TLS.InsecureSkipVerify = "h", true, true }},
		{"valkeys://h?skip_verify=false", func(c *Config) { c.Host, c.TLS.Enabled = "h", true }},
		{"rediss://h?skip_verify=true", func(c *Config) { c.Host, c.TLS.Enabled, c.TLS.InsecureSkipVerify = "h", true, true }},
		{"rediss://u:" + testSecret + "@[::1]:7000/4?dial_timeout=1s&read_timeout=2s&write_timeout=3s&pool_size=5&client_name=c&driver=d&protocol=3", func(c *Config) {
			c.Host, c.Port, c.Username, c.Password, c.DB, c.TLS.Enabled = "::1", 7000, "u", testSecret, 4, true
			c.DialTimeout, c.ReadTimeout, c.WriteTimeout, c.PoolSize, c.ClientName, c.Driver = time.Second, 2*time.Second, 3*time.Second, 5, "c", "d"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseURL(tt.in)
			if err != nil {
				t.Fatalf("ParseURL(%q) error: %v", tt.in, err)
			}
			want := DefaultConfig()
			tt.mod(&want)
			want.Addrs = []string{want.Addresses()[0]}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("ParseURL(%q) =\n%#v\nwant\n%#v", tt.in, got, want)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("result does not validate: %v", err)
			}
			assertNoSecret(t, "String", got.String(), testSecret)
		})
	}
}

func TestParseURLAddrsAndSentinel(t *testing.T) {
	tests := []struct {
		in   string
		want Config
	}{
		{"valkey://a:7000?addr=b:7001&addr=[::1]:7002&addr=c", DefaultConfig().WithHost("a").WithPort(7000).
			WithAddrs("a:7000", "b:7001", "[::1]:7002", "c:6379")},
		{"valkey://s1:26379?master_set=mymaster", DefaultConfig().WithSentinel("mymaster", "s1:26379")},
		// valkey-go's form: the first sentinel as the host, the others as
		// addr, the data nodes' credentials as user information.
		{"valkeys://app:" + testSecret + "@s1:26379/2?addr=s2:26380&addr=s3&master_set=mymaster&dial_timeout=1s",
			DefaultConfig().WithSentinel("mymaster", "s1:26379", "s2:26380", "s3:6379").
				WithUsername("app").WithPassword(testSecret).WithDB(2).WithDialTimeout(time.Second).
				WithTLS(TLSConfig{Enabled: true})},
		{"redis://?master_set=m", DefaultConfig().WithSentinel("m", "127.0.0.1:6379")},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseURL(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseURL(%q) =\n%#v\nwant\n%#v", tt.in, got, tt.want)
			}
			assertNoSecret(t, "String", got.String(), testSecret)
		})
	}
}

// An IPv6 address without brackets is refused wherever an address is
// given, with an error that says to bracket it: "::1:6380" may be ::1 on
// port 6380 or ::1:6380 on port 6379. The addr parameter took it as the
// latter, dropping the port the user typed.
func TestIPv6AddrNeedsBrackets(t *testing.T) {
	const urlReason = "an IPv6 address must be in brackets, as in addr=[::1]:6380 (or addr=[::1] for port 6379)"
	const addrReason = `must be "host:port" with an IPv6 address in brackets, as in [::1]:6380`
	tests := []struct {
		name                 string
		err                  func() error
		field, value, reason string
	}{
		{"addr with port", urlErr("valkey://h?addr=::1:6380"), "URL addr", "::1:6380", urlReason},
		{"addr link-local with port", urlErr("valkey://h?addr=fe80::1:6380"), "URL addr", "fe80::1:6380", urlReason},
		{"addr without port", urlErr("valkey://h?addr=2001:db8::1"), "URL addr", "2001:db8::1", urlReason},
		{"addr with zone", urlErr("valkey://h?addr=fe80::1%25eth0:6380"), "URL addr", "fe80::1%eth0:6380", urlReason},
		{"addr after a good one", urlErr("valkey://h?addr=[::1]:7000&addr=::2:7001"), "URL addr", "::2:7001", urlReason},
		{"sentinel addr", urlErr("valkey://s1:26379?master_set=m&addr=::1:26379"), "URL addr", "::1:26379", urlReason},
		// Half a pair of brackets is no address either.
		{"addr open bracket", urlErr("valkey://h?addr=[::1"), "URL addr", "[::1", `must be "host:port" or "host"`},
		{"addr close bracket", urlErr("valkey://h?addr=::1]"), "URL addr", "::1]", `must be "host:port" or "host"`},
		// Not IPv6: the usual message.
		{"addr url", urlErr("valkey://h?addr=valkey://h2:1"), "URL addr", "valkey://h2:1", `must be "host:port" or "host"`},
		{"Addrs", func() error { return DefaultConfig().WithAddrs("fe80::1:6379").Validate() }, "Addrs[0]", "fe80::1:6379", addrReason},
		{"SentinelAddrs", func() error { return DefaultConfig().WithSentinel("m", "s:1", "::1").Validate() }, "SentinelAddrs[1]", "::1", addrReason},
		{"VALKEY_ADDR", envErr("VALKEY_ADDR", "::1:6380"), "VALKEY_ADDR", "::1:6380", addrReason},
		{"VALKEY_ADDR without port", envErr("VALKEY_ADDR", "::1"), "VALKEY_ADDR", "::1", addrReason},
		{"VALKEY_ADDRS", envErr("VALKEY_ADDRS", "a:1,::1:6380"), "VALKEY_ADDRS", "a:1,::1:6380", `entry 2 "::1:6380": ` + addrReason},
		{"VALKEY_SENTINEL_ADDRS", func() error {
			_, err := loadFromLookup(lookupMap(map[string]string{"VALKEY_SENTINEL_MASTER": "m", "VALKEY_SENTINEL_ADDRS": "::1:26379"}))
			return err
		}, "VALKEY_SENTINEL_ADDRS", "::1:26379", `entry 1 "::1:26379": ` + addrReason},
		{"VALKEY_URL addr", envErr("VALKEY_URL", "valkey://h?addr=::1:6380"), "VALKEY_URL", "valkey://h?addr=::1:6380", `URL addr "::1:6380": ` + urlReason},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFieldError(t, tt.err(), tt.field, tt.value, tt.reason)
		})
	}
	// Bracketed, with or without a port, they are taken.
	for in, want := range map[string][]string{
		"valkey://h?addr=[::1]:6380":                   {"h:6379", "[::1]:6380"},
		"valkey://h?addr=[::1]":                        {"h:6379", "[::1]:6379"},
		"valkey://h?addr=%5Bfe80::1%25eth0%5D:1":       {"h:6379", "[fe80::1%eth0]:1"},
		"valkey://h?addr=[2001:db8::1]&addr=h2:7":      {"h:6379", "[2001:db8::1]:6379", "h2:7"},
		"valkey://[::1]:26379?addr=[::2]&master_set=m": nil,
	} {
		cfg, err := ParseURL(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if want == nil {
			want, cfg.Addrs = []string{"[::1]:26379", "[::2]:6379"}, cfg.SentinelAddrs
		}
		if !slices.Equal(cfg.Addrs, want) {
			t.Errorf("%s: addresses %q, want %q", in, cfg.Addrs, want)
		}
	}
}

// urlErr returns a function that returns ParseURL's error for s.
func urlErr(s string) func() error {
	return func() error {
		_, err := ParseURL(s)
		return err
	}
}

// envErr returns a function that returns LoadFromEnv's error with only the
// variable name set to value.
func envErr(name, value string) func() error {
	return func() error {
		_, err := loadFromLookup(lookupMap(map[string]string{name: value}))
		return err
	}
}

func TestParseURLErrors(t *testing.T) {
	s := testSecret
	tests := []struct {
		in, field, value, reason string
	}{
		{"", "URL", "", "missing scheme"},
		{"localhost:6379", "URL", "localhost:6379", "missing scheme"},
		{"u:" + s + "@h:1", "URL", "[redacted]@h:1", "missing scheme"},
		{"//u:" + s + "@h", "URL", "[redacted]@h", "missing scheme"},
		{"valkey:/u:" + s + "://x@h", "URL", "[redacted]@h", "missing scheme"},
		{"http://u:" + s + "@h", "URL", "http://[redacted]@h", `unsupported scheme "http"`},
		{"unix:///tmp/valkey.sock", "URL", "unix:///tmp/valkey.sock", `unsupported scheme "unix"`},
		{"valkey+tls://h", "URL", "valkey+tls://h", "unsupported scheme"},
		{"valkey://:" + s + "/x@h", "URL", "valkey://[redacted]@h", "'@' after the user information"},
		{"valkey://u:" + s + "?x@h", "URL", "valkey://[redacted]@h", "'@' after the user information"},
		{"valkey://u:" + s + "#x@h", "URL", "valkey://[redacted]@h", "'@' after the user information"},
		{"valkey://u:12/" + s + "@h", "URL", "valkey://[redacted]@h", "'@' after the user information"},
		{"valkey://h/?client_name=a@b", "URL", "valkey://[redacted]@b", "'@' after the user information"},
		// An unencoded '@' in the user information: url.Parse splits at the
		// last one, so these were accepted with an '@' in the password (or
		// the user name).
		{"valkey://user:p@" + s + "@h:6379", "URL", "valkey://[redacted]@h:6379", "more than one '@' before the host: percent-encode '@' as %40 in the user name and password"},
		{"valkey://:" + s + "@x@h", "URL", "valkey://[redacted]@h", "percent-encode '@' as %40"},
		{"valkey://us@er:" + s + "@h?master_set=m", "URL", "valkey://[redacted]@h?master_set=m", "percent-encode '@' as %40"},
		{"valkey://u:" + s + "%zz@h", "URL", "valkey://[redacted]@h", "malformed URL"},
		{"valkey://u:" + s + " x@h", "URL", "valkey://[redacted]@h", "malformed URL"},
		{"valkey://u:" + s + "\x00@h", "URL", "valkey://[redacted]@h", "malformed URL"},
		{"valkey://h:port", "URL", "valkey://h:port", `malformed URL: invalid port ":port"`},
		{"valkey://h%zz", "URL", "valkey://h%zz", "malformed URL"},
		{"valkey://u:" + s + "@h#frag", "URL", "valkey://[redacted]@h#frag", "fragment not allowed"},
		{"valkey://h/0#", "URL", "valkey://h/0#", "fragment not allowed"},
		{"valkey://u:" + s + "@h:0", "URL port", "0", "between 1 and 65535"},
		{"valkey://u:" + s + "@h:65536", "URL port", "65536", "between 1 and 65535"},
		{"valkey://h:99999999999999999999", "URL port", "99999999999999999999", "between 1 and 65535"},
		{"valkey://u:" + s + "@h:", "URL port", "", "between 1 and 65535"},
		{"valkey://u:" + s + "@[::1", "URL", "valkey://[redacted]@[::1", "malformed URL"},
		{"valkey://u:" + s + "@h/x", "URL db", "x", "non-negative integer"},
		{"valkey://u:" + s + "@h/-1", "URL db", "-1", "non-negative integer"},
		{"valkey://u:" + s + "@h/+1", "URL db", "+1", "non-negative integer"},
		{"valkey://u:" + s + "@h/1/2", "URL db", "1/2", "non-negative integer"},
		{"valkey://u:" + s + "@h/1.5", "URL db", "1.5", "non-negative integer"},
		// qa-AX AX-6: the bound of WithDB and VALKEY_DB, not 9 digits.
		{"valkey://h/99999999999", "URL db", "99999999999", "must be at least 0 and at most 2147483647"},
		{"valkey://h/2147483648", "URL db", "2147483648", "must be at least 0 and at most 2147483647"},
		{"valkey://h?db=2147483648", "URL db", "2147483648", "must be at least 0 and at most 2147483647"},
		{"valkey://h/99999999999999999999999", "URL db", "99999999999999999999999", "must be at least 0 and at most 2147483647"},
		// qa-AX AX-7: characters no host name has.
		{"valkey://h?addr=a,b", "URL addr", "a,b", "one address per addr parameter: repeat it"},
		{"valkey://h?addr=a,b:6379", "URL addr", "a,b:6379", "one address per addr parameter"},
		{"valkey://h?addr=a%25b", "URL addr", "a%b", "'%' is not allowed"},
		{"valkey://h?addr=a/b:1", "URL addr", "a/b:1", "'/' is not allowed"},
		{"valkey://a,b:6379", "URL host", "a,b", "',' is not allowed"},
		{"valkey://u:" + s + "@h?password=" + s, "URL query", "password", "unknown parameter"},
		{"valkey://u:" + s + "@h?tls=1", "URL query", "tls", "unknown parameter; want one of dial_timeout"},
		{"valkey://u:" + s + "@h/1?db=1", "URL db", "1", "given both as the path and as a parameter"},
		{"valkey://u:" + s + "@h?db=x", "URL db", "x", "non-negative integer"},
		{"valkey://u:" + s + "@h?db=-1", "URL db", "-1", "non-negative integer"},
		{"valkey://u:" + s + "@h?db=1&db=2", "URL query", "db", "more than once"},
		{"valkey://u:" + s + "@h?max_retries=x", "URL max_retries", "x", "not an integer"},
		{"valkey://u:" + s + "@h?max_retries=-1", "URL max_retries", "-1", "at least 0"},
		{"valkey://u:" + s + "@h?skip_verify", "URL skip_verify", "", "only with a TLS scheme"},
		{"valkeys://u:" + s + "@h?skip_verify=maybe", "URL skip_verify", "maybe", "not a boolean"},
		{"valkey://u:" + s + "@h?addr=x:0", "URL addr", "x:0", "between 1 and 65535"},
		{"valkey://u:" + s + "@h?addr=a+b", "URL addr", "a b", `"host:port" or "host"`},
		{"valkey://u:" + s + "@h?addr=", "URL addr", "", `"host:port" or "host"`},
		{"valkey://u:" + s + "@h?master_set=", "URL master_set", "", "must not be empty"},
		{"valkey://u:" + s + "@h?master_set=a+b", "URL master_set", "a b", "spaces"},
		{"valkey://u:" + s + "@h?master_set=m&master_set=n", "URL query", "master_set", "more than once"},
		{"valkey://u:" + s + "@h?Dial_Timeout=1s", "URL query", "Dial_Timeout", "unknown parameter"},
		{"valkey://u:" + s + "@h?dial_timeout=1s&dial_timeout=2s", "URL query", "dial_timeout", "more than once"},
		{"valkey://u:" + s + "@h?dial_timeout=5", "URL dial_timeout", "5", "not a duration"},
		{"valkey://u:" + s + "@h?dial_timeout=", "URL dial_timeout", "", "not a duration"},
		{"valkey://u:" + s + "@h?read_timeout=x", "URL read_timeout", "x", "not a duration"},
		{"valkey://u:" + s + "@h?write_timeout=1 s", "URL write_timeout", "1 s", "not a duration"},
		{"valkey://u:" + s + "@h?pool_size=four", "URL pool_size", "four", "not an integer"},
		{"valkey://u:" + s + "@h?pool_size=99999999999999999999999", "URL pool_size", "99999999999999999999999", "out of range"},
		{"valkey://u:" + s + "@h?a=1;b=2", "URL", "valkey://[redacted]@h?a=1;b=2", "malformed query"},
		{"valkey://u:" + s + "@h?a=%zz", "URL", "valkey://[redacted]@h?a=%zz", "malformed query"},
		// Values Validate rejects name the query parameter.
		{"valkey://u:" + s + "@h?pool_size=0", "URL pool_size", "0", "between 1 and 1024"},
		{"valkey://u:" + s + "@h?dial_timeout=0s", "URL dial_timeout", "0s", "greater than 0"},
		{"valkey://u:" + s + "@h?read_timeout=-1s", "URL read_timeout", "-1s", "at least 0"},
		{"valkey://u:" + s + "@h?write_timeout=-1s", "URL write_timeout", "-1s", "at least 0"},
		{"valkey://u:" + s + "@h?client_name=a+b", "URL client_name", "a b", "without spaces"},
		{"valkey://u:" + s + "@h?driver=", "URL driver", "", "must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseURL(tt.in)
			checkFieldError(t, err, tt.field, tt.value, tt.reason)
			if !reflect.DeepEqual(got, Config{}) {
				t.Errorf("ParseURL returned a non-zero Config with an error: %v", got)
			}
			if strings.Contains(tt.in, "@") && strings.Contains(err.Error(), "net/url") {
				t.Errorf("url.Parse's error leaked for input with user info: %v", err)
			}
		})
	}
}

// TestParseURLRoundTrip builds URLs with url.URL and checks ParseURL reads
// back every part, whatever characters the credentials hold.
func TestParseURLRoundTrip(t *testing.T) {
	for _, pass := range []string{testSecret, "p@ss", "a/b?c#d", "with space", "100%", ":colon:", "ünï", "'\"`"} {
		for _, user := range []string{"", "bob", "a@b:c"} {
			u := url.URL{Scheme: "valkeys", Host: "[2001:db8::1]:6390", Path: "/9", RawQuery: "pool_size=3"}
			switch {
			case user != "":
				u.User = url.UserPassword(user, pass)
			default:
				u.User = url.UserPassword("", pass)
			}
			got, err := ParseURL(u.String())
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", u.String(), err)
			}
			if got.Username != user || got.Password != pass || got.Host != "2001:db8::1" || got.Port != 6390 ||
				got.DB != 9 || got.PoolSize != 3 || !got.TLS.Enabled || !slices.Equal(got.Addrs, []string{"[2001:db8::1]:6390"}) {
				t.Errorf("ParseURL(%q) = %v", u.String(), got)
			}
			assertNoSecret(t, "String", got.String(), pass)
		}
	}
}

// fuzzMarker holds a "~", which no URL scheme may contain, so inserting it
// cannot turn text before "://" into a scheme (which ParseURL may echo).
const fuzzMarker = "Qz7~Marker~Qz7"

// FuzzParseURL checks that ParseURL never panics, that what it returns
// validates, and that text before the URL's last '@' (where the password
// lives) never shows up in an error or in the printed result.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"valkey://h", "valkeys://u:p@[::1]:6380/2?dial_timeout=1s&pool_size=2",
		"redis://:p@h/0?client_name=x&driver=d&protocol=3", "rediss://u@h:1",
		"valkey://u:p/q@h", "valkey://u:p@h/x", "http://u:p@h", "u:p@h", "valkey://h:0",
		"valkey://h?x=1", "valkey://[fe80::1%25eth0]:1", "valkey://u:p%zz@h", "valkey:/a@b://c",
		"valkey://h#f@x", "valkey://%41:%42@h", "valkey://h/?read_timeout=-1s",
		"valkeys://u:p@s1:26379/2?addr=s2:1&addr=s3&master_set=m", "valkey://h?db=1&max_retries=0",
		"rediss://h?skip_verify", "valkey://h?addr=[::1]:2&addr=x",
	} {
		f.Add(s, uint(0))
	}
	f.Fuzz(func(t *testing.T, s string, pos uint) {
		if strings.Contains(strings.ToLower(s), strings.ToLower(fuzzMarker)) {
			t.Skip()
		}
		cfg, err := ParseURL(s)
		checkParsed(t, s, cfg, err)

		// Put a marker somewhere before the last '@', after the scheme, so
		// that it lands in the user information: it must not leak.
		m := withMarker(s, pos)
		cfg, err = ParseURL(m)
		checkParsed(t, m, cfg, err)
		if err != nil {
			if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(fuzzMarker)) {
				t.Fatalf("ParseURL(%q) error leaks user info: %v", m, err)
			}
			return
		}
		if strings.Contains(cfg.Username, fuzzMarker) {
			return // the marker landed in the user name, which is not secret
		}
		if !strings.Contains(cfg.Password, fuzzMarker) {
			t.Fatalf("ParseURL(%q) accepted, marker in neither username %q nor password %q", m, cfg.Username, cfg.Password)
		}
		for _, out := range []string{cfg.String(), fmt.Sprintf("%v|%+v|%#v|%s|%q", cfg, cfg, cfg, cfg, cfg), cfg.LogValue().String()} {
			if strings.Contains(out, fuzzMarker) {
				t.Fatalf("printing ParseURL(%q) leaks the password: %s", m, out)
			}
		}
	})
}

// withMarker inserts fuzzMarker between the scheme and the last '@' of s at
// an offset chosen by pos, adding ":" and "@" when s has no '@' after its
// scheme.
func withMarker(s string, pos uint) string {
	start := 0
	if i := strings.Index(s, "://"); i > 0 && isSchemeSyntax(s[:i]) {
		start = i + 3
	}
	at := strings.LastIndexByte(s, '@')
	if at < start {
		return s[:start] + "u:" + fuzzMarker + "@" + s[start:]
	}
	p := start + int(pos%uint(at-start+1))
	return s[:p] + fuzzMarker + s[p:]
}

func checkParsed(t *testing.T, s string, cfg Config, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("ParseURL(%q) error %v does not wrap ErrInvalidConfig", s, err)
		}
		if fieldErr(err) == nil {
			t.Fatalf("ParseURL(%q) error %T is not a *FieldError", s, err)
		}
		if !reflect.DeepEqual(cfg, Config{}) {
			t.Fatalf("ParseURL(%q) returned %v with error %v", s, cfg, err)
		}
		return
	}
	if verr := cfg.Validate(); verr != nil {
		t.Fatalf("ParseURL(%q) = %v, which fails Validate: %v", s, cfg, verr)
	}
	switch {
	case cfg.SentinelMode:
		if len(cfg.Addrs) != 0 || len(cfg.SentinelAddrs) == 0 || cfg.SentinelMasterName == "" {
			t.Fatalf("ParseURL(%q) in sentinel mode: Addrs %q, SentinelAddrs %q, SentinelMasterName %q", s, cfg.Addrs, cfg.SentinelAddrs, cfg.SentinelMasterName)
		}
	case len(cfg.Addrs) == 0 || cfg.Addrs[0] != net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)):
		t.Fatalf("ParseURL(%q) Addrs %q disagree with Host %q Port %d", s, cfg.Addrs, cfg.Host, cfg.Port)
	}
	if cfg.Password != "" {
		other := cfg.WithPassword(cfg.Password + "x")
		if cfg.String() != other.String() || cfg.GoString() != other.GoString() ||
			cfg.LogValue().String() != other.LogValue().String() {
			t.Fatalf("printing ParseURL(%q) depends on the password", s)
		}
	}
}
