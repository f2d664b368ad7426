package config

import (
	"errors"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// URL query parameters ParseURL accepts, in the order they are documented.
var urlParams = []string{
	"dial_timeout", "read_timeout", "write_timeout", "pool_size",
	"client_name", "driver", "protocol", "db", "max_retries", "skip_verify",
	"addr", "master_set",
}

// urlFields maps the Config field Validate names to the query parameter that
// sets it, so a validation error names what the user wrote.
var urlFields = map[string]string{
	"DialTimeout":        "dial_timeout",
	"ReadTimeout":        "read_timeout",
	"WriteTimeout":       "write_timeout",
	"PoolSize":           "pool_size",
	"ClientName":         "client_name",
	"Driver":             "driver",
	"DB":                 "db",
	"MaxRetries":         "max_retries",
	"SentinelMasterName": "master_set",
}

const urlSchemes = "valkey://, valkeys://, redis:// or rediss://"

// ParseURL returns DefaultConfig with the settings of a server URL applied:
//
//	scheme://[username[:password]@]host[:port][/db][?param=value&...]
//
// The scheme is valkey or redis for plain TCP, valkeys or rediss for TLS
// (TLS.Enabled = true); it is case-insensitive. The port defaults to 6379, an
// IPv6 host goes in brackets ("valkey://[::1]:6380"; "valkey://fe80::1" is
// refused rather than split at its last colon), an empty host means
// 127.0.0.1 and an empty path means DB 0. Username and password are
// percent-decoded and either may be given alone ("redis://:secret@host"). The
// result has Addrs set to the "host:port" (and those of the addr
// parameters) as well as Host and Port.
//
// Query parameters, each at most once unless said otherwise: dial_timeout,
// read_timeout, write_timeout (Go durations such as "250ms"), pool_size
// (integer), client_name, driver, protocol (accepted and ignored: vactor
// always speaks RESP3), and the ones valkey-go's ParseURL also reads:
//
//   - db: the database number, instead of the path (not both);
//   - max_retries: MaxRetries (valkey-go reads only "0", no retries);
//   - skip_verify: TLS.InsecureSkipVerify, a boolean where an empty value
//     means true; only with valkeys:// or rediss://;
//   - addr, any number of times: more addresses ("host:port", or "host"
//     for port 6379), after the URL's own host, in Addrs. As in the host,
//     an IPv6 address goes in brackets ("[::1]:6380", "[::1]"): addr=::1:6380
//     is refused rather than guessed at, and so is a list (addr=a,b: repeat
//     addr instead). Outside cluster and sentinel mode the engine dials
//     only the first address of Addrs (the URL's host): the others are no
//     fallback;
//   - master_set: sentinel mode. The URL's host and the addr parameters
//     are then the sentinels (SentinelAddrs), SentinelMasterName is the
//     value, Addrs is empty and Host and Port keep their defaults. The user
//     information is still the data nodes' Username and Password (set the
//     sentinels' with SentinelUsername and SentinelPassword).
//
// For example, three sentinels watching "mymaster", with TLS:
//
//	valkeys://app:secret@s1:26379?addr=s2:26379&addr=s3:26379&master_set=mymaster
//
// Any other parameter, a fragment, or a path other than one database
// number is an error.
//
// An '@', '/', '?' or '#' in the password must be percent-encoded (%40, %2F,
// %3F, %23): a URL with an '@' in or after its user information is rejected
// rather than guessed at.
//
// The result passes Validate. Errors are *FieldError values
// (errors.Is(err, ErrInvalidConfig)) and never contain the password: apart
// from the scheme, no text that precedes the URL's last '@' is ever quoted.
func ParseURL(s string) (Config, error) {
	cfg, err := parseURL(s)
	if err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, renameURLField(err, s)
	}
	return cfg, nil
}

// parseURL is ParseURL without the final Validate, so that LoadFromEnv can
// override what the URL set before validating.
func parseURL(s string) (Config, error) {
	cfg := DefaultConfig()
	bad := func(reason string) (Config, error) {
		return Config{}, newFieldError("URL", s, reason)
	}

	i := strings.Index(s, "://")
	if i <= 0 || !isSchemeSyntax(s[:i]) {
		return bad("missing scheme; want " + urlSchemes)
	}
	switch scheme := strings.ToLower(s[:i]); scheme {
	case "valkey", "redis":
	case "valkeys", "rediss":
		cfg.TLS.Enabled = true
	default:
		return bad("unsupported scheme " + strconv.Quote(scheme) + "; want " + urlSchemes)
	}

	// Everything before the last '@' is treated as secret. url.Parse ends the
	// authority at the first '/', '?' or '#', so an '@' after that means a
	// password with an unescaped '/', '?' or '#' (or a stray '@' elsewhere):
	// refuse it instead of echoing part of the password as a path or query.
	rest := s[i+3:]
	authEnd := strings.IndexAny(rest, "/?#")
	if authEnd < 0 {
		authEnd = len(rest)
	}
	if strings.LastIndexByte(s, '@') > i+3+authEnd {
		return bad("'@' after the user information; percent-encode '@', '/', '?' and '#' in the password and elsewhere")
	}
	// url.Parse splits the user information from the host at the last
	// '@', so valkey://u:p@ss@h would be user "u", password "p@ss": refuse
	// it as documented rather than guess.
	if strings.Count(rest[:authEnd], "@") > 1 {
		return bad("more than one '@' before the host: percent-encode '@' as %40 in the user name and password")
	}

	u, err := url.Parse(s)
	if err != nil {
		// url.Parse's message quotes the input: never return it when the
		// input may hold a password. Parse the URL again without its user
		// information to tell which part is wrong.
		reason := "malformed URL"
		var ue *url.Error
		if at := strings.LastIndexByte(rest[:authEnd], '@'); at >= 0 {
			if _, err2 := url.Parse(s[:i+3] + rest[at+1:]); err2 == nil {
				reason += ": bad user information (percent-encode characters such as '%', ' ', '@', '/', '?' and '#' in the user name and password)"
			} else if errors.As(err2, &ue) {
				reason += ": " + ue.Err.Error()
			}
		} else if errors.As(err, &ue) {
			reason += ": " + ue.Err.Error()
		}
		return bad(reason)
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return bad("fragment not allowed")
	}

	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
	}

	if hostPort := u.Host; !strings.HasPrefix(hostPort, "[") && strings.Count(hostPort, ":") > 1 {
		// url.Parse splits "fe80::1" into host "fe80:" and port "1":
		// refuse rather than dial a guess.
		return Config{}, newFieldError("URL host", hostPort,
			"an IPv6 address must be in brackets, as in valkey://[::1]:6379")
	}
	host := u.Hostname()
	if host == "" {
		host = defaultHost
	}
	if reason := checkHost(host); reason != "" {
		return Config{}, newFieldError("URL host", host, reason)
	}
	port := defaultPort
	if p := u.Port(); p != "" {
		n, ok := parseDigits(p)
		if !ok || n < 1 || n > 65535 {
			return Config{}, newFieldError("URL port", p, "must be between 1 and 65535")
		}
		port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return Config{}, newFieldError("URL port", "", "must be between 1 and 65535")
	}
	cfg.Host, cfg.Port = host, port
	cfg.Addrs = []string{net.JoinHostPort(host, strconv.Itoa(port))}

	pathDB := strings.TrimPrefix(u.Path, "/")
	if pathDB != "" {
		n, reason := parseDB(pathDB)
		if reason != "" {
			return Config{}, newFieldError("URL db", pathDB, reason)
		}
		cfg.DB = n
	}

	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("malformed query")
	}
	for _, name := range slices.Sorted(maps.Keys(q)) {
		values := q[name]
		if name == "addr" {
			for _, v := range values {
				addr, reason := urlAddr(v)
				if reason != "" {
					return Config{}, newFieldError("URL addr", v, reason)
				}
				cfg.Addrs = append(cfg.Addrs, addr)
			}
			continue
		}
		if name == "db" && pathDB != "" {
			return Config{}, newFieldError("URL db", values[0], "given both as the path and as a parameter; give one")
		}
		if len(values) != 1 {
			return Config{}, newFieldError("URL query", name, "parameter given more than once")
		}
		if reason := applyURLParam(&cfg, name, values[0]); reason != "" {
			if reason == errUnknownParam {
				return Config{}, newFieldError("URL query", name,
					"unknown parameter; want one of "+strings.Join(urlParams, ", "))
			}
			return Config{}, newFieldError("URL "+name, values[0], reason)
		}
	}
	if cfg.SentinelMode {
		cfg.SentinelAddrs, cfg.Addrs = cfg.Addrs, nil
		cfg.Host, cfg.Port = defaultHost, defaultPort
	}
	return cfg, nil
}

// urlAddr checks the value of an addr parameter, "host:port" or "host",
// and returns it as "host:port". An IPv6 address must be in brackets, as in
// the URL's host: "::1:6380" could be the address ::1:6380 on port 6379 or
// ::1 on port 6380, so it is refused rather than guessed at.
func urlAddr(v string) (string, string) {
	if strings.Contains(v, ",") {
		// valkey-go's form is one address per parameter; a list would
		// otherwise be refused as a host name with a ','.
		return "", "one address per addr parameter: repeat it for each (addr=a:6379&addr=b:6379)"
	}
	if _, _, err := net.SplitHostPort(v); err != nil {
		if unbracketedIPv6(v) {
			return "", "an IPv6 address must be in brackets, as in addr=[::1]:6380 (or addr=[::1] for port 6379)"
		}
		host := v
		if len(v) >= 2 && v[0] == '[' && v[len(v)-1] == ']' {
			host = v[1 : len(v)-1]
		}
		if reason := checkHost(host); reason != "" {
			return "", `must be "host:port" or "host": the host ` + reason
		}
		v = net.JoinHostPort(host, strconv.Itoa(defaultPort))
	}
	if reason := checkAddr(v); reason != "" {
		return "", reason
	}
	return v, ""
}

const errUnknownParam = "unknown"

// applyURLParam applies one query parameter and returns why it failed, or "".
func applyURLParam(cfg *Config, name, v string) string {
	dur := func(d *time.Duration) string {
		x, err := time.ParseDuration(v)
		if err != nil {
			return reasonDuration
		}
		*d = x
		return ""
	}
	switch name {
	case "dial_timeout":
		return dur(&cfg.DialTimeout)
	case "read_timeout":
		return dur(&cfg.ReadTimeout)
	case "write_timeout":
		return dur(&cfg.WriteTimeout)
	case "pool_size":
		return parseInt(v, &cfg.PoolSize)
	case "client_name":
		cfg.ClientName = v
	case "driver":
		cfg.Driver = v
	case "protocol":
		// Accepted for compatibility with other clients' URLs; ignored.
	case "db":
		n, reason := parseDB(v)
		if reason != "" {
			return reason
		}
		cfg.DB = n
	case "max_retries":
		return parseInt(v, &cfg.MaxRetries)
	case "skip_verify":
		if !cfg.TLS.Enabled {
			return "only with a TLS scheme (valkeys:// or rediss://)"
		}
		if v == "" {
			cfg.TLS.InsecureSkipVerify = true
			return ""
		}
		return parseBool(v, &cfg.TLS.InsecureSkipVerify)
	case "master_set":
		if v == "" {
			return "must not be empty"
		}
		cfg.SentinelMode, cfg.SentinelMasterName = true, v
	default:
		return errUnknownParam
	}
	return ""
}

// renameURLField rewrites a Validate error about a field set by a query
// parameter so that it names the parameter and the text given for it.
func renameURLField(err error, s string) error {
	fe := fieldErr(err)
	if fe == nil {
		return err
	}
	param, ok := urlFields[fe.Field]
	if !ok {
		return err
	}
	u, perr := url.Parse(s)
	if perr != nil {
		return err
	}
	if v, ok := u.Query()[param]; ok && len(v) == 1 {
		return newFieldError("URL "+param, v[0], fe.Reason)
	}
	return err
}

// isSchemeSyntax reports whether s is a syntactically valid URL scheme.
func isSchemeSyntax(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// redactURL returns s with everything between the scheme and the last '@'
// replaced by "[redacted]", and the value of any query parameter whose name
// mentions a password or secret replaced too. Without a syntactically valid
// "scheme://" prefix, everything before the last '@' is replaced. It is
// idempotent.
func redactURL(s string) string {
	start := 0
	if i := strings.Index(s, "://"); i > 0 && isSchemeSyntax(s[:i]) {
		start = i + 3
	}
	if at := strings.LastIndexByte(s, '@'); at >= start {
		s = s[:start] + redacted + s[at:]
	}
	q := strings.IndexByte(s, '?')
	if q < 0 {
		return s
	}
	query, frag, hasFrag := strings.Cut(s[q+1:], "#")
	parts := strings.Split(query, "&")
	for i, p := range parts {
		name, _, hasValue := strings.Cut(p, "=")
		lower := strings.ToLower(name)
		if hasValue && (strings.Contains(lower, "pass") || strings.Contains(lower, "secret") ||
			strings.Contains(lower, "token") || strings.Contains(lower, "auth")) {
			parts[i] = name + "=" + redacted
		}
	}
	s = s[:q+1] + strings.Join(parts, "&")
	if hasFrag {
		s += "#" + frag
	}
	return s
}
