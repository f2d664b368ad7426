package config

import (
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// An envVar is one VALKEY_* variable: how its text is applied to a Config.
type envVar struct {
	name  string
	field string // the Config field it sets, as Validate names it
	raw   bool   // keep surrounding spaces (credentials)
	apply func(c *Config, v string) (reason string)
}

// envVars lists the variables in the order LoadFromEnv applies them: later
// ones override earlier ones.
var envVars = []envVar{
	{name: "VALKEY_URL"}, // applied by loadFromLookup itself
	{name: "VALKEY_HOST", field: "Host", apply: func(c *Config, v string) string {
		c.Host, c.Addrs = v, nil
		return ""
	}},
	{name: "VALKEY_PORT", field: "Port", apply: func(c *Config, v string) string {
		c.Addrs = nil
		return parseInt(v, &c.Port)
	}},
	{name: "VALKEY_ADDR", field: "Addrs", apply: func(c *Config, v string) string {
		if reason := checkAddr(v); reason != "" {
			return reason
		}
		c.Addrs = []string{v}
		return ""
	}},
	{name: "VALKEY_ADDRS", field: "Addrs", apply: func(c *Config, v string) string {
		return parseAddrList(v, &c.Addrs)
	}},
	{name: "VALKEY_USERNAME", field: "Username", raw: true, apply: func(c *Config, v string) string {
		c.Username = v
		return ""
	}},
	{name: "VALKEY_PASSWORD", field: "Password", raw: true, apply: func(c *Config, v string) string {
		c.Password = v
		return ""
	}},
	{name: "VALKEY_DB", field: "DB", apply: func(c *Config, v string) string {
		var n int
		if reason := parseInt(v, &n); reason != "" {
			if reason == reasonRange {
				return reasonDB // the bound Validate and ParseURL give
			}
			return reason
		}
		if n >= 0 && (v[0] == '+' || v[0] == '-') {
			// "+5", "-0": refused as ParseURL refuses them (review-34b
			// R34b-6: VALKEY_DB=+5 was taken); a negative number keeps
			// the bound's message, from Validate.
			return reasonDBDigits
		}
		c.DB = n
		return ""
	}},
	{name: "VALKEY_CLIENT_NAME", field: "ClientName", apply: func(c *Config, v string) string {
		c.ClientName = v
		return ""
	}},
	{name: "VALKEY_PROVIDER", field: "Driver", apply: func(c *Config, v string) string {
		c.Driver = v
		return ""
	}},
	{name: "VALKEY_DRIVER", field: "Driver", apply: func(c *Config, v string) string {
		c.Driver = v
		return ""
	}},
	{name: "VALKEY_POOL_SIZE", field: "PoolSize", apply: func(c *Config, v string) string {
		return parseInt(v, &c.PoolSize)
	}},
	{name: "VALKEY_DIAL_TIMEOUT", field: "DialTimeout", apply: func(c *Config, v string) string {
		return parseDuration(v, &c.DialTimeout)
	}},
	{name: "VALKEY_READ_TIMEOUT", field: "ReadTimeout", apply: func(c *Config, v string) string {
		return parseDuration(v, &c.ReadTimeout)
	}},
	{name: "VALKEY_WRITE_TIMEOUT", field: "WriteTimeout", apply: func(c *Config, v string) string {
		return parseDuration(v, &c.WriteTimeout)
	}},
	{name: "VALKEY_MAX_RETRIES", field: "MaxRetries", apply: func(c *Config, v string) string {
		return parseInt(v, &c.MaxRetries)
	}},
	{name: "VALKEY_MIN_RETRY_BACKOFF", field: "MinRetryBackoff", apply: func(c *Config, v string) string {
		return parseDuration(v, &c.MinRetryBackoff)
	}},
	{name: "VALKEY_MAX_RETRY_BACKOFF", field: "MaxRetryBackoff", apply: func(c *Config, v string) string {
		return parseDuration(v, &c.MaxRetryBackoff)
	}},
	{name: "VALKEY_CIRCUIT_BREAKER_THRESHOLD", field: "CircuitBreakerThreshold", apply: func(c *Config, v string) string {
		return parseInt(v, &c.CircuitBreakerThreshold)
	}},
	{name: "VALKEY_CIRCUIT_BREAKER_OPEN_TIMEOUT", field: "CircuitBreakerOpenTimeout", apply: func(c *Config, v string) string {
		return parseDuration(v, &c.CircuitBreakerOpenTimeout)
	}},
	{name: "VALKEY_CIRCUIT_BREAKER_FAILURE_RATE", field: "CircuitBreakerFailureRate", apply: func(c *Config, v string) string {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return "not a number"
		}
		c.CircuitBreakerFailureRate = f
		return ""
	}},
	{name: "VALKEY_CIRCUIT_BREAKER_PERIOD", field: "CircuitBreakerPeriod", apply: func(c *Config, v string) string {
		return parseDuration(v, &c.CircuitBreakerPeriod)
	}},
	{name: "VALKEY_CLUSTER_MODE", field: "ClusterMode", apply: func(c *Config, v string) string {
		return parseBool(v, &c.ClusterMode)
	}},
	{name: "VALKEY_READ_FROM", field: "ReadFrom", apply: func(c *Config, v string) string {
		r, err := ParseReadFrom(v)
		if err != nil {
			return fieldErr(err).Reason
		}
		c.ReadFrom = r
		return ""
	}},
	{name: "VALKEY_MAX_REDIRECTS", field: "MaxRedirects", apply: func(c *Config, v string) string {
		return parseInt(v, &c.MaxRedirects)
	}},
	{name: "VALKEY_CLUSTER_REFRESH_INTERVAL", field: "ClusterRefreshInterval", apply: func(c *Config, v string) string {
		return parseDuration(v, &c.ClusterRefreshInterval)
	}},
	// The sentinel variables turn sentinel mode on, and clear Addrs set by
	// VALKEY_URL (VALKEY_HOST, VALKEY_PORT, VALKEY_ADDR and VALKEY_ADDRS are
	// refused with them).
	{name: "VALKEY_SENTINEL_MASTER", field: "SentinelMasterName", apply: func(c *Config, v string) string {
		c.SentinelMode, c.SentinelMasterName, c.Addrs = true, v, nil
		return ""
	}},
	{name: "VALKEY_SENTINEL_ADDRS", apply: func(c *Config, v string) string {
		c.SentinelMode, c.Addrs = true, nil
		return parseAddrList(v, &c.SentinelAddrs)
	}},
	{name: "VALKEY_SENTINEL_USERNAME", field: "SentinelUsername", raw: true, apply: func(c *Config, v string) string {
		c.SentinelUsername = v
		return ""
	}},
	{name: "VALKEY_SENTINEL_PASSWORD", field: "SentinelPassword", raw: true, apply: func(c *Config, v string) string {
		c.SentinelPassword = v
		return ""
	}},
	{name: "VALKEY_SENTINEL_REFRESH_INTERVAL", field: "SentinelRefreshInterval", apply: func(c *Config, v string) string {
		return parseDuration(v, &c.SentinelRefreshInterval)
	}},
	{name: "VALKEY_TLS_ENABLED", field: "TLS.Enabled", apply: func(c *Config, v string) string {
		return parseBool(v, &c.TLS.Enabled)
	}},
	{name: "VALKEY_TLS_CERT_FILE", field: "TLS.CertFile", apply: func(c *Config, v string) string {
		c.TLS.CertFile = v
		return ""
	}},
	{name: "VALKEY_TLS_KEY_FILE", field: "TLS.KeyFile", apply: func(c *Config, v string) string {
		c.TLS.KeyFile = v
		return ""
	}},
	{name: "VALKEY_TLS_CA_FILE", field: "TLS.CAFile", apply: func(c *Config, v string) string {
		c.TLS.CAFile = v
		return ""
	}},
	{name: "VALKEY_TLS_SERVER_NAME", field: "TLS.ServerName", apply: func(c *Config, v string) string {
		c.TLS.ServerName = v
		return ""
	}},
	{name: "VALKEY_TLS_INSECURE_SKIP_VERIFY", field: "TLS.InsecureSkipVerify", apply: func(c *Config, v string) string {
		return parseBool(v, &c.TLS.InsecureSkipVerify)
	}},
	{name: "VALKEY_MAILBOX_CAPACITY", field: "MailboxCapacity", apply: func(c *Config, v string) string {
		return parseInt(v, &c.MailboxCapacity)
	}},
	{name: "VALKEY_BACKPRESSURE", field: "Backpressure", apply: func(c *Config, v string) string {
		p, err := ParseBackpressurePolicy(v)
		if err != nil {
			return fieldErr(err).Reason
		}
		c.Backpressure = p
		return ""
	}},
	{name: "VALKEY_MAX_BATCH_SIZE", field: "MaxBatchSize", apply: func(c *Config, v string) string {
		return parseInt(v, &c.MaxBatchSize)
	}},
	{name: "VALKEY_DRAIN_TIMEOUT", field: "DrainTimeout", apply: func(c *Config, v string) string {
		return parseDuration(v, &c.DrainTimeout)
	}},
	{name: "VALKEY_LOG_LEVEL", field: "LogLevel", apply: func(c *Config, v string) string {
		l, err := ParseLogLevel(v)
		if err != nil {
			return fieldErr(err).Reason
		}
		c.LogLevel = LogLevelOf(l)
		return ""
	}},
}

// EnvVars lists every environment variable LoadFromEnv reads, in the order it
// applies them (a later variable overrides an earlier one):
//
//	VALKEY_URL                           a URL as ParseURL takes; applied first
//	VALKEY_HOST, VALKEY_PORT             Host, Port (and clear Addrs set by VALKEY_URL); not in sentinel mode
//	VALKEY_ADDR                          one "host:port": Addrs
//	VALKEY_ADDRS                         "host:port" list, comma separated: Addrs (standalone: only the first is dialled)
//	VALKEY_USERNAME, VALKEY_PASSWORD     Username, Password (spaces kept)
//	VALKEY_DB                            DB (digits without a sign, as in a URL)
//	VALKEY_CLIENT_NAME                   ClientName
//	VALKEY_PROVIDER, VALKEY_DRIVER       Driver (VALKEY_DRIVER wins when both are set)
//	VALKEY_POOL_SIZE                     PoolSize
//	VALKEY_DIAL_TIMEOUT                  DialTimeout (Go duration, e.g. "5s")
//	VALKEY_READ_TIMEOUT                  ReadTimeout (Go duration)
//	VALKEY_WRITE_TIMEOUT                 WriteTimeout (Go duration)
//	VALKEY_MAX_RETRIES                   MaxRetries
//	VALKEY_MIN_RETRY_BACKOFF             MinRetryBackoff (Go duration)
//	VALKEY_MAX_RETRY_BACKOFF             MaxRetryBackoff (Go duration)
//	VALKEY_CIRCUIT_BREAKER_THRESHOLD     CircuitBreakerThreshold
//	VALKEY_CIRCUIT_BREAKER_OPEN_TIMEOUT  CircuitBreakerOpenTimeout (Go duration)
//	VALKEY_CIRCUIT_BREAKER_FAILURE_RATE  CircuitBreakerFailureRate (0 to 1)
//	VALKEY_CIRCUIT_BREAKER_PERIOD        CircuitBreakerPeriod (Go duration)
//	VALKEY_CLUSTER_MODE                  ClusterMode (true/false, 1/0, as strconv.ParseBool)
//	VALKEY_READ_FROM                     ReadFrom: primary, replica or prefer-replica
//	VALKEY_MAX_REDIRECTS                 MaxRedirects
//	VALKEY_CLUSTER_REFRESH_INTERVAL      ClusterRefreshInterval (Go duration; 0 = off, else at least 100ms)
//	VALKEY_SENTINEL_MASTER               SentinelMasterName, and SentinelMode = true
//	VALKEY_SENTINEL_ADDRS                "host:port" list of sentinels, comma separated: SentinelAddrs, and SentinelMode = true
//	VALKEY_SENTINEL_USERNAME             SentinelUsername (spaces kept)
//	VALKEY_SENTINEL_PASSWORD             SentinelPassword (spaces kept)
//	VALKEY_SENTINEL_REFRESH_INTERVAL     SentinelRefreshInterval (Go duration; 0 = off, else at least 100ms)
//	VALKEY_TLS_ENABLED                   TLS.Enabled (bool)
//	VALKEY_TLS_CERT_FILE                 TLS.CertFile
//	VALKEY_TLS_KEY_FILE                  TLS.KeyFile
//	VALKEY_TLS_CA_FILE                   TLS.CAFile
//	VALKEY_TLS_SERVER_NAME               TLS.ServerName
//	VALKEY_TLS_INSECURE_SKIP_VERIFY      TLS.InsecureSkipVerify (bool)
//	VALKEY_MAILBOX_CAPACITY              MailboxCapacity
//	VALKEY_BACKPRESSURE                  Backpressure: block or reject
//	VALKEY_MAX_BATCH_SIZE                MaxBatchSize
//	VALKEY_DRAIN_TIMEOUT                 DrainTimeout (Go duration)
//	VALKEY_LOG_LEVEL                     LogLevel: debug, info, warn or error
//
// The slice is for documentation and checks (config/doc_test.go compares
// it with docs/configuration.md); changing it does not change what
// LoadFromEnv reads.
var EnvVars = envNames()

func envNames() []string {
	names := make([]string, len(envVars))
	for i, v := range envVars {
		names[i] = v.name
	}
	return names
}

// ServerEnvVars are the environment variables that name the server
// LoadFromEnv connects to (or the sentinels that do). With none of them
// set it connects to DefaultConfig's localhost:6379.
var ServerEnvVars = []string{"VALKEY_URL", "VALKEY_ADDR", "VALKEY_ADDRS", "VALKEY_HOST", "VALKEY_PORT",
	"VALKEY_SENTINEL_ADDRS", "VALKEY_SENTINEL_MASTER"}

// EnvNamesServer reports whether one of ServerEnvVars is set to something
// other than blanks, that is, whether LoadFromEnv takes the server from
// the environment. Tools that start a throwaway server when none is
// configured (make demo, the examples, the vactor CLI) ask it, so that a
// server named any of those ways is the one used.
func EnvNamesServer() bool {
	for _, v := range ServerEnvVars {
		if strings.TrimSpace(os.Getenv(v)) != "" {
			return true
		}
	}
	return false
}

// LoadFromEnv returns DefaultConfig with the VALKEY_* environment variables
// listed in EnvVars applied, then validated.
//
// VALKEY_URL is applied first, as ParseURL would; the other variables then
// override what it set. A variable that is unset or empty (after trimming
// spaces, which are kept only in the user names and passwords) leaves the
// setting as it is. Setting both VALKEY_ADDR and VALKEY_ADDRS is an error,
// and so is setting any of VALKEY_HOST, VALKEY_PORT, VALKEY_ADDR and
// VALKEY_ADDRS with VALKEY_SENTINEL_MASTER, VALKEY_SENTINEL_ADDRS or a
// VALKEY_URL with master_set (in sentinel mode the sentinels name the
// primary); the error names the variable.
//
// A value that does not parse is a *FieldError naming the variable, such as
//
//	config: invalid VALKEY_DIAL_TIMEOUT "5 s": not a duration (for example 5s or 250ms)
//
// and so is a parsed value Validate rejects. When Validate rejects a
// value because of another setting, the error names the variable that was
// set and says which other variable, or which default, it conflicts with:
//
//	config: invalid VALKEY_MIN_RETRY_BACKOFF "1s": must be at most the default MaxRetryBackoff (512ms); set VALKEY_MAX_RETRY_BACKOFF to raise it
//	config: invalid VALKEY_TLS_CERT_FILE "client.pem": needs VALKEY_TLS_KEY_FILE too: set both or neither
//
// An error never contains a password, whether it came from
// VALKEY_PASSWORD, VALKEY_SENTINEL_PASSWORD or VALKEY_URL.
//
// LoadFromEnv only reads the environment; it is safe for concurrent use.
func LoadFromEnv() (Config, error) {
	return loadFromLookup(os.LookupEnv)
}

// FromEnv is LoadFromEnv under the name the design documents use.
func FromEnv() (Config, error) {
	return LoadFromEnv()
}

// loadFromLookup is LoadFromEnv reading variables through lookup, so tests
// and fuzzing never touch the process environment.
func loadFromLookup(lookup func(string) (string, bool)) (Config, error) {
	get := func(v envVar) (string, bool) {
		s, ok := lookup(v.name)
		if !v.raw {
			s = strings.TrimSpace(s)
		}
		return s, ok && s != ""
	}

	cfg := DefaultConfig()
	urlText, hasURL := get(envVars[0])
	if hasURL {
		c, err := parseURL(urlText)
		if err != nil {
			return Config{}, wrapURLError("VALKEY_URL", urlText, err)
		}
		cfg = c
	}
	set := func(name string) (string, bool) {
		v, ok := lookup(name)
		v = strings.TrimSpace(v)
		return v, ok && v != ""
	}
	if v, ok := set("VALKEY_TLS_ENABLED"); ok && hasURL && cfg.TLS.Enabled {
		// The URL asks for TLS (rediss://, valkeys://): turning it off
		// would send the password in clear to whatever listens there.
		if on, err := strconv.ParseBool(v); err == nil && !on {
			return Config{}, newFieldError("VALKEY_TLS_ENABLED", v,
				"conflicts with VALKEY_URL, which turns TLS on (rediss:// or valkeys://): use a redis:// URL for a plain connection, or drop VALKEY_TLS_ENABLED")
		}
	}
	if addr, ok := set("VALKEY_ADDR"); ok {
		if _, ok := set("VALKEY_ADDRS"); ok {
			return Config{}, newFieldError("VALKEY_ADDR", addr, "conflicts with VALKEY_ADDRS; set only one")
		}
	}
	// In sentinel mode the sentinels name the primary: the variables that
	// name a server are refused, not ignored.
	for _, sentinel := range []string{"VALKEY_SENTINEL_MASTER", "VALKEY_SENTINEL_ADDRS"} {
		if _, ok := set(sentinel); !ok {
			continue
		}
		for _, name := range []string{"VALKEY_HOST", "VALKEY_PORT", "VALKEY_ADDR", "VALKEY_ADDRS"} {
			if v, ok := set(name); ok {
				return Config{}, newFieldError(name, v, "conflicts with "+sentinel+
					": in sentinel mode the sentinels name the primary (list the sentinels in VALKEY_SENTINEL_ADDRS)")
			}
		}
	}
	if hasURL && cfg.SentinelMode {
		for _, name := range []string{"VALKEY_HOST", "VALKEY_PORT", "VALKEY_ADDR", "VALKEY_ADDRS"} {
			if v, ok := set(name); ok {
				return Config{}, newFieldError(name, v, "conflicts with VALKEY_URL, whose master_set means sentinel mode: "+
					"the sentinels name the primary (list the sentinels in the URL's host and addr parameters, or in VALKEY_SENTINEL_ADDRS)")
			}
		}
	}
	for _, v := range envVars[1:] {
		s, ok := get(v)
		if !ok {
			continue
		}
		if reason := v.apply(&cfg, s); reason != "" {
			return Config{}, newFieldError(v.name, s, reason)
		}
	}

	err := cfg.Validate()
	if err == nil {
		return cfg, nil
	}
	fe := fieldErr(err)
	byName := func(name string) (string, bool) {
		for _, v := range envVars {
			if v.name == name {
				return get(v)
			}
		}
		return "", false
	}
	// A setting refused because of another one, or of a default: name the
	// variable the user set, not a field they may never have heard of.
	if cerr := envConflict(fe, cfg, byName, urlText); cerr != nil {
		return Config{}, cerr
	}
	// Name the variable that set the bad field; when several could have
	// (VALKEY_PROVIDER, VALKEY_DRIVER), the one applied last.
	for i := len(envVars) - 1; i > 0; i-- {
		v := envVars[i]
		if v.field != fe.Field {
			continue
		}
		if s, ok := get(v); ok {
			return Config{}, newFieldError(v.name, s, fe.Reason)
		}
	}
	// TLS or sentinel settings given without TLS or sentinel mode: the
	// error is about the switch (TLS.Enabled, SentinelMode), which no
	// variable set; name the variable that gave a setting instead.
	if group, reason := switchGroup(fe); group != "" {
		for _, v := range envVars[1:] {
			if !strings.HasPrefix(v.field, group) {
				continue
			}
			if s, ok := get(v); ok {
				return Config{}, newFieldError(v.name, s, reason)
			}
		}
	}
	if hasURL {
		if ue := fieldErr(renameURLField(err, urlText)); ue != fe {
			return Config{}, wrapURLError("VALKEY_URL", urlText, ue)
		}
	}
	return Config{}, err
}

// envConflict returns the error LoadFromEnv reports for fe, the error of
// Validate on cfg, when fe is about two settings (a backoff against the
// other, the database in cluster mode, cluster against sentinel mode, half
// of sentinel mode or of a client certificate, TLS turned off while TLS
// settings are given): a *FieldError naming the variable that was set,
// with a reason that names the variable or default it conflicts with. It
// returns nil for any other error. lookup returns the text of a variable
// that is set; urlText is VALKEY_URL's, or "".
func envConflict(fe *FieldError, cfg Config, lookup func(name string) (string, bool), urlText string) error {
	if fe == nil {
		return nil
	}
	switch fe.Field {
	case "MaxRetryBackoff":
		if cfg.MaxRetryBackoff >= cfg.MinRetryBackoff {
			return nil
		}
		minText, minSet := lookup("VALKEY_MIN_RETRY_BACKOFF")
		if maxText, ok := lookup("VALKEY_MAX_RETRY_BACKOFF"); ok {
			if minSet {
				return newFieldError("VALKEY_MAX_RETRY_BACKOFF", maxText,
					"must be at least VALKEY_MIN_RETRY_BACKOFF ("+minText+")")
			}
			return newFieldError("VALKEY_MAX_RETRY_BACKOFF", maxText,
				"must be at least the default MinRetryBackoff ("+cfg.MinRetryBackoff.String()+"); set VALKEY_MIN_RETRY_BACKOFF to lower it")
		}
		if minSet {
			return newFieldError("VALKEY_MIN_RETRY_BACKOFF", minText,
				"must be at most the default MaxRetryBackoff ("+cfg.MaxRetryBackoff.String()+"); set VALKEY_MAX_RETRY_BACKOFF to raise it")
		}
	case "DB":
		if !cfg.ClusterMode || cfg.DB <= 0 || cfg.DB > math.MaxInt32 {
			return nil
		}
		const reason = "must be 0 in cluster mode, which VALKEY_CLUSTER_MODE turns on"
		if db, ok := lookup("VALKEY_DB"); ok {
			return newFieldError("VALKEY_DB", db, reason)
		}
		if urlText != "" {
			return wrapURLError("VALKEY_URL", urlText, newFieldError("URL db", strconv.Itoa(cfg.DB), reason))
		}
	case "SentinelMode":
		if !cfg.SentinelMode || !cfg.ClusterMode {
			return nil
		}
		var sentinel string
		if _, ok := lookup("VALKEY_SENTINEL_MASTER"); ok {
			sentinel = "VALKEY_SENTINEL_MASTER, which turns sentinel mode on"
		} else if _, ok := lookup("VALKEY_SENTINEL_ADDRS"); ok {
			sentinel = "VALKEY_SENTINEL_ADDRS, which turns sentinel mode on"
		} else if urlText != "" {
			sentinel = "VALKEY_URL, whose master_set means sentinel mode"
		}
		if cluster, ok := lookup("VALKEY_CLUSTER_MODE"); ok && sentinel != "" {
			return newFieldError("VALKEY_CLUSTER_MODE", cluster,
				"conflicts with "+sentinel+": set only one of cluster mode and sentinel mode")
		}
	case "SentinelMasterName":
		if !cfg.SentinelMode || cfg.SentinelMasterName != "" {
			return nil
		}
		if addrs, ok := lookup("VALKEY_SENTINEL_ADDRS"); ok {
			return newFieldError("VALKEY_SENTINEL_ADDRS", addrs,
				"turns sentinel mode on, which needs VALKEY_SENTINEL_MASTER too (the name the sentinels monitor the primary under)")
		}
	case "SentinelAddrs":
		if !cfg.SentinelMode || len(cfg.SentinelAddrs) > 0 {
			return nil
		}
		if master, ok := lookup("VALKEY_SENTINEL_MASTER"); ok {
			return newFieldError("VALKEY_SENTINEL_MASTER", master,
				`turns sentinel mode on, which needs VALKEY_SENTINEL_ADDRS too (the sentinels, "host:port" comma separated)`)
		}
	case "TLS.KeyFile", "TLS.CertFile":
		if !cfg.TLS.Enabled {
			return nil
		}
		if cfg.TLS.CertFile != "" && cfg.TLS.KeyFile == "" {
			if cert, ok := lookup("VALKEY_TLS_CERT_FILE"); ok {
				return newFieldError("VALKEY_TLS_CERT_FILE", cert, "needs VALKEY_TLS_KEY_FILE too: set both or neither")
			}
		}
		if cfg.TLS.KeyFile != "" && cfg.TLS.CertFile == "" {
			if key, ok := lookup("VALKEY_TLS_KEY_FILE"); ok {
				return newFieldError("VALKEY_TLS_KEY_FILE", key, "needs VALKEY_TLS_CERT_FILE too: set both or neither")
			}
		}
	case "TLS.Enabled":
		enabled, ok := lookup("VALKEY_TLS_ENABLED")
		if cfg.TLS.Enabled || !ok {
			return nil // TLS settings with TLS never turned on: see switchGroup
		}
		var other string
		for _, v := range envVars {
			if strings.HasPrefix(v.field, "TLS.") && v.field != "TLS.Enabled" {
				if _, ok := lookup(v.name); ok {
					other = v.name
					break
				}
			}
		}
		if other == "" && urlText != "" && cfg.TLS.InsecureSkipVerify {
			other = "skip_verify in VALKEY_URL"
		}
		if other != "" {
			return newFieldError("VALKEY_TLS_ENABLED", enabled, "must be true when other TLS settings are given ("+other+")")
		}
	}
	return nil
}

// switchGroup returns, for the error of Validate about TLS or sentinel
// settings given while TLS or sentinel mode is off, the prefix of the
// Config fields of those settings and the reason to give for one of them;
// "" for any other error.
func switchGroup(fe *FieldError) (fieldPrefix, reason string) {
	if fe == nil || fe.Value != "false" || !strings.HasPrefix(fe.Reason, "must be true when other") {
		return "", ""
	}
	switch fe.Field {
	case "TLS.Enabled":
		return "TLS.", "needs TLS: set VALKEY_TLS_ENABLED=true, or use a valkeys:// or rediss:// URL"
	case "SentinelMode":
		return "Sentinel", "needs sentinel mode: set VALKEY_SENTINEL_ADDRS and VALKEY_SENTINEL_MASTER"
	}
	return "", ""
}

// wrapURLError reports err, from parsing the URL in variable name, as a
// *FieldError naming the variable, with the URL redacted.
func wrapURLError(name, urlText string, err error) error {
	fe := fieldErr(err)
	if fe == nil {
		return newFieldError(name, urlText, err.Error())
	}
	reason := fe.Reason
	if fe.Field != "URL" {
		reason = fe.Field + " " + strconv.Quote(safeValue(fe.Field, fe.Value)) + ": " + fe.Reason
	}
	return newFieldError(name, urlText, reason)
}

// parseAddrList parses a comma-separated "host:port" list into dst.
func parseAddrList(v string, dst *[]string) string {
	parts := strings.Split(v, ",")
	addrs := make([]string, 0, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return "entry " + strconv.Itoa(i+1) + " is empty"
		}
		if reason := checkAddr(p); reason != "" {
			return "entry " + strconv.Itoa(i+1) + " " + strconv.Quote(safeAddr(p)) + ": " + reason
		}
		addrs = append(addrs, p)
	}
	*dst = addrs
	return ""
}

const (
	reasonDuration = "not a duration (for example 5s or 250ms)"
	reasonInt      = "not an integer"
	reasonBool     = "not a boolean (true or false)"
	reasonRange    = "integer out of range"
)

func parseInt(s string, dst *int) string {
	n, err := strconv.Atoi(s)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return reasonRange
		}
		return reasonInt
	}
	*dst = n
	return ""
}

func parseDuration(s string, dst *time.Duration) string {
	d, err := time.ParseDuration(s)
	if err != nil {
		return reasonDuration
	}
	*dst = d
	return ""
}

func parseBool(s string, dst *bool) string {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return reasonBool
	}
	*dst = b
	return ""
}
