package config

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vactor-io/vactor/hooks"
)

// BackpressurePolicy says what posting a command to a full connection mailbox
// does.
type BackpressurePolicy int

const (
	// BackpressureBlock makes the caller wait until the mailbox has space or
	// the command's context ends. The default.
	BackpressureBlock BackpressurePolicy = iota
	// BackpressureReject fails the command at once with the mailbox
	// package's ErrBackpressure.
	BackpressureReject
)

// String returns "block" or "reject", the names ParseBackpressurePolicy
// accepts.
func (p BackpressurePolicy) String() string {
	switch p {
	case BackpressureBlock:
		return "block"
	case BackpressureReject:
		return "reject"
	}
	return "BackpressurePolicy(" + strconv.Itoa(int(p)) + ")"
}

// ParseBackpressurePolicy parses "block" or "reject" (case-insensitive,
// surrounding spaces ignored). Any other text is a *FieldError for the field
// "Backpressure".
func ParseBackpressurePolicy(s string) (BackpressurePolicy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "block":
		return BackpressureBlock, nil
	case "reject":
		return BackpressureReject, nil
	}
	return 0, newFieldError("Backpressure", s, `must be "block" or "reject"`)
}

// LogLevel is the least level the engine logs (Config.LogLevel), as text:
// "debug", "info", "warn" (or "warning") or "error", in any case and with
// surrounding spaces ignored, or slog's own form ("DEBUG", "INFO+2",
// slog.Level.String). "" is "info". Typed constants: LogLevelDebug, ...
type LogLevel string

// The levels of Config.LogLevel.
const (
	LogLevelDebug LogLevel = "debug"
	LogLevelInfo  LogLevel = "info"
	LogLevelWarn  LogLevel = "warn"
	LogLevelError LogLevel = "error"
)

// Level returns l as a slog.Level; text that is no level is a *FieldError
// for the field "LogLevel".
func (l LogLevel) Level() (slog.Level, error) {
	if l == "" {
		return slog.LevelInfo, nil
	}
	return ParseLogLevel(string(l))
}

// LogLevelOf returns the LogLevel of a slog.Level ("info", "warn",
// "info+2", ...). (A conversion, LogLevel(slog.LevelWarn), would make a
// one-character string, which Validate refuses.)
func LogLevelOf(l slog.Level) LogLevel { return LogLevel(strings.ToLower(l.String())) }

// String returns the level l stands for in its canonical form ("info"
// for ""; "warn" for " Warning "), or l as it is when it is no level.
func (l LogLevel) String() string {
	if v, err := l.Level(); err == nil {
		return string(LogLevelOf(v))
	}
	return string(l)
}

// ParseLogLevel parses "debug", "info", "warn" (or "warning") or "error"
// (case-insensitive, surrounding spaces ignored), or slog's own text form
// of a level ("INFO+2", slog.Level.UnmarshalText), into a slog.Level. Any
// other text is a *FieldError for the field "LogLevel".
func ParseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err == nil {
		return l, nil
	}
	return 0, newFieldError("LogLevel", s, `must be "debug", "info", "warn" or "error" (or slog's form, e.g. "INFO+2")`)
}

// ReadFrom says which node serves read-only commands: in cluster mode a
// replica of the slot's primary, in sentinel mode a replica the sentinels
// list as healthy (not down, link up). Standalone mode always reads from
// the configured node.
type ReadFrom int

const (
	// ReadFromPrimary reads from the primary. The default.
	ReadFromPrimary ReadFrom = iota
	// ReadFromReplica reads from a replica when one is reachable and from
	// the primary otherwise: the same as ReadFromPreferReplica (the
	// engine does not fail a read for want of a replica).
	ReadFromReplica
	// ReadFromPreferReplica reads from a replica when one is reachable and
	// from the primary otherwise.
	ReadFromPreferReplica
)

// String returns "primary", "replica" or "prefer-replica", the names
// ParseReadFrom accepts.
func (r ReadFrom) String() string {
	switch r {
	case ReadFromPrimary:
		return "primary"
	case ReadFromReplica:
		return "replica"
	case ReadFromPreferReplica:
		return "prefer-replica"
	}
	return "ReadFrom(" + strconv.Itoa(int(r)) + ")"
}

// ParseReadFrom parses "primary", "replica" or "prefer-replica"
// (case-insensitive, surrounding spaces ignored). Any other text is a
// *FieldError for the field "ReadFrom".
func ParseReadFrom(s string) (ReadFrom, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "primary":
		return ReadFromPrimary, nil
	case "replica":
		return ReadFromReplica, nil
	case "prefer-replica":
		return ReadFromPreferReplica, nil
	}
	return 0, newFieldError("ReadFrom", s, `must be "primary", "replica" or "prefer-replica"`)
}

// TLSConfig enables TLS and names the files it uses. Files are read when the
// engine connects, not by Validate. The zero value is plain TCP. Like Config,
// it is a plain value, safe to copy and to read concurrently.
type TLSConfig struct {
	// Enabled turns TLS on. Default false. The other fields are rejected by
	// Validate unless Enabled is true, so a TLS setting is never silently
	// ignored.
	Enabled bool
	// CertFile and KeyFile are the PEM client certificate and its key for
	// mutual TLS. Set both or neither. Default "" (no client certificate).
	CertFile string
	KeyFile  string
	// CAFile is a PEM bundle of the authorities that sign the server's
	// certificate. Default "" (the system roots).
	CAFile string
	// ServerName is the name checked against the server's certificate.
	// Default "" (the host being dialled).
	ServerName string
	// InsecureSkipVerify disables verification of the server's certificate.
	// For tests only. Default false.
	InsecureSkipVerify bool
	// Config, when not nil, is the caller's own TLS configuration, and it
	// wins: the engine uses a clone of it as is, and CertFile, KeyFile,
	// CAFile, ServerName and InsecureSkipVerify are not used (a ServerName
	// left empty in it means the host being dialled, as for every
	// connection of crypto/tls). Enabled must be true (WithTLSConfig sets
	// it). Default nil: a configuration is built from the fields above.
	// The pointer is shared, not copied, by Config's copies and With*
	// methods: do not modify it after handing it over.
	Config *tls.Config `json:"-"`
}

// CredentialsProvider returns the ACL user name and password a new
// connection authenticates with (HELLO AUTH). The engine calls it on every
// connect and reconnect, so that a rotated password is picked up without a
// restart; an empty user name means the default user, an empty password
// no AUTH. ctx ends DialTimeout after the call began: the provider
// should return well within it. An error fails that connection attempt and
// is wrapped in the dial error. The connections that need credentials
// while a call runs share its answer; a call that has not returned by its
// deadline is given up on, and the next dial calls again, with at most 4
// calls of one engine under way: past that (a provider that ignores its
// ctx and never returns), dials fail at once until one returns. Close
// cannot end such a call. It must be safe for concurrent use.
type CredentialsProvider func(ctx context.Context) (username, password string, err error)

// Config holds every setting of a vactor engine.
//
// Config is a plain value: copy it freely. Its methods never modify the
// receiver, and the With* methods return a modified copy that shares no
// slice with the receiver or with their arguments, so a Config may be read
// by any number of goroutines at once. Writing its fields directly while
// other goroutines read it is a data race, as for any struct.
//
// Start from DefaultConfig, ParseURL or LoadFromEnv rather than from the zero
// value: the zero Config does not pass Validate.
//
// The passwords (Password, SentinelPassword) are never printed: String,
// GoString, Format (every fmt verb) and LogValue show "[redacted]" in
// their place, and no error of this package contains them; encoding/json
// prints them: marshal Redacted's copy. Credentials providers and
// TLS.Config are shown only as set or not (left out by encoding/json).
type Config struct {
	// Addrs lists seed addresses as "host:port"; for IPv6 use
	// "[::1]:6379". In cluster mode they are the seeds for topology
	// discovery. In standalone mode (neither ClusterMode nor SentinelMode)
	// the engine dials only the first: the others are not tried when it
	// fails (no failover). Default empty: Host and Port are used.
	Addrs []string
	// Host is the server's host name or IP address (IPv6 without
	// brackets), used when Addrs is empty. Default "127.0.0.1"; not empty;
	// a name has only ASCII letters, digits, '-', '.' and '_', an IPv6
	// address may have a zone ("fe80::1%eth0") (checked even when Addrs
	// is set, as are the hosts of Addrs and SentinelAddrs).
	Host string
	// Port is the server's TCP port, used when Addrs is empty. Default 6379;
	// 1 to 65535 (checked even when Addrs is set).
	Port int
	// Username is the ACL user sent with the password. Default "" (the
	// default user).
	Username string
	// Password authenticates the connection. Default "" (no AUTH). It is
	// never printed or logged.
	Password string
	// CredentialsProvider, when set, supplies the user name and password of
	// every connection to a data node (primary or replica) instead of
	// Username and Password, which must then be empty. Default nil: Username
	// and Password are used.
	CredentialsProvider CredentialsProvider `json:"-"`
	// DB is the logical database selected on connect. Default 0; at least 0,
	// and 0 in cluster mode.
	DB int
	// ClientName is sent with CLIENT SETNAME. Default "vactor"; printable
	// ASCII without spaces ('!' to '~'); "" sends no name.
	ClientName string
	// Driver names the registered driver that talks to the server. Default
	// "valkey-go"; must not be empty.
	Driver string
	// PoolSize is the number of connection actors, each with its own
	// connection, per node. Default 1; 1 to 1024. Each actor has one
	// pipeline in flight: 2 lets callers that fire many commands at once
	// keep two in flight (see docs/performance-profile.md), at the cost
	// of the order across keys: with 1, all the commands of a goroutine
	// keep their order; with more, those routed by the same key do (see
	// the Order section of the engine package).
	PoolSize int
	// DialTimeout bounds connecting, including the TLS handshake; the
	// Valkey handshake that follows (HELLO with authentication, SELECT,
	// CLIENT SETNAME) is bounded by the smaller of DialTimeout and the
	// larger of ReadTimeout and WriteTimeout (the valkey-go driver).
	// Half of it bounds the time a node's connection may be down before
	// the commands that expire behind its re-dial count against its
	// circuit breaker (docs/reliability.md). Default 5s; greater than 0.
	DialTimeout time.Duration
	// ReadTimeout bounds silence on a connection while a pipeline is in
	// flight: a round trip fails once a read has waited this long for a
	// byte of reply (or a write for the server to take a byte), not once
	// the whole pipeline has taken this long, so a pipeline whose replies
	// keep arriving (a burst of big MGETs: tens of MB) runs to its end,
	// and a frozen or unreachable server fails it ReadTimeout after the
	// pipeline was written. Blocking commands (BLPOP, XREAD BLOCK, ...)
	// are not bounded by it. A pipeline whose commands all have deadlines
	// is also bounded by the latest one. Silence is seen from the client:
	// while the server is still receiving the end of a request, the
	// client waits for its reply, so one command of several MB sent to a
	// server that reads it slower than the socket buffers (a few MB) per
	// ReadTimeout fails. Default 3s; at least 0, where 0 leaves the
	// driver's own bound (valkey-go: 10s). The valkey-go driver applies
	// the larger of ReadTimeout and WriteTimeout to both (see
	// drivers.Options).
	ReadTimeout time.Duration
	// WriteTimeout bounds how long writing a pipeline may wait for the
	// server to take a byte (see ReadTimeout). Default 3s; at least 0,
	// where 0 leaves the driver's own bound (valkey-go: 10s).
	WriteTimeout time.Duration
	// MaxRetries is the number of times a failed retryable command is tried
	// again after a transport failure. Default 3; at least 0, where 0
	// disables retries (more than 32,767 counts as 32,767). Cluster
	// redirects do not count against it (see MaxRedirects).
	MaxRetries int
	// MinRetryBackoff is the delay before the first retry; later delays
	// double up to MaxRetryBackoff, with jitter. Default 8ms; at least 0.
	MinRetryBackoff time.Duration
	// MaxRetryBackoff caps the delay between retries. Default 512ms; at
	// least MinRetryBackoff.
	MaxRetryBackoff time.Duration
	// CircuitBreakerThreshold is the number of consecutive failures that
	// open a node's circuit breaker. Default 5; 1 to 100000.
	CircuitBreakerThreshold int
	// CircuitBreakerOpenTimeout is how long a node's breaker stays open
	// before it lets a trial command through (half-open). Default 1s;
	// greater than 0.
	CircuitBreakerOpenTimeout time.Duration
	// CircuitBreakerFailureRate, when above 0, makes the breaker open on a
	// failure rate instead of a count: when, within CircuitBreakerPeriod, at
	// least CircuitBreakerThreshold round trips ran and this fraction of
	// them failed. Default 0 (count of consecutive failures); 0 to 1.
	CircuitBreakerFailureRate float64
	// CircuitBreakerPeriod is the window of the failure-rate breaker.
	// Default 10s; greater than 0, and at least 10ns with a
	// CircuitBreakerFailureRate above 0 (the window is counted in 10
	// buckets of whole nanoseconds).
	CircuitBreakerPeriod time.Duration
	// ClusterMode makes Addrs seeds of a Valkey cluster: commands are routed
	// by hash slot and MOVED/ASK redirects are followed. Default false.
	ClusterMode bool
	// ReadFrom chooses the node for read-only commands. Default
	// ReadFromPrimary.
	ReadFrom ReadFrom
	// MaxRedirects is the number of redirects (MOVED, ASK, TRYAGAIN,
	// CLUSTERDOWN) followed for one command in cluster mode, and of
	// READONLY/MASTERDOWN replies after which a command is sent to the new
	// primary in sentinel mode. Default 5; at least 0. A budget of its own:
	// transport retries (MaxRetries) do not count against it.
	MaxRedirects int
	// ClusterRefreshInterval is how often the cluster slot map is reloaded
	// besides on redirects and node failures. Default 10s; 0, which turns
	// the periodic reload off, or at least 100ms (a shorter interval would
	// reload the map back to back, a CLUSTER SHARDS storm on the seeds).
	ClusterRefreshInterval time.Duration
	// SentinelMode makes the engine find the primary through sentinels:
	// it asks the sentinels of SentinelAddrs in turn for the primary of
	// SentinelMasterName, checks it with ROLE, asks again on every
	// reconnect, and follows failovers. Addrs must then be empty (Host and
	// Port are not used). Default false. The other Sentinel* settings,
	// except SentinelRefreshInterval, are rejected by Validate unless
	// SentinelMode is true, so a sentinel setting is never silently
	// ignored.
	SentinelMode bool
	// SentinelMasterName is the name the sentinels monitor the primary
	// under ("master set", as in "sentinel monitor <name> ..."). Default
	// ""; required in sentinel mode; no spaces or control characters.
	SentinelMasterName string
	// SentinelAddrs lists the sentinels as "host:port" ("[ipv6]:port").
	// Default empty; at least one in sentinel mode.
	SentinelAddrs []string
	// SentinelUsername and SentinelPassword authenticate the connections to
	// the sentinels, which have credentials of their own: Username and
	// Password are for the data nodes only. Default "" (no AUTH to the
	// sentinels). SentinelPassword is never printed or logged.
	SentinelUsername string
	SentinelPassword string
	// SentinelCredentialsProvider, when set, supplies the credentials of
	// every connection to a sentinel instead of SentinelUsername and
	// SentinelPassword, which must then be empty. Default nil.
	SentinelCredentialsProvider CredentialsProvider `json:"-"`
	// SentinelRefreshInterval is how often the engine asks the sentinels
	// for the primary besides following their +switch-master events, so
	// that a missed event cannot bind it to an old primary. Default 5s; 0,
	// which turns the polling off, or at least 100ms (a shorter interval
	// would ask the sentinels back to back).
	SentinelRefreshInterval time.Duration
	// TLS configures transport security. Default: disabled.
	TLS TLSConfig
	// MailboxCapacity is the maximum number of commands queued per
	// connection actor, and per cluster slot actor; beyond it Backpressure
	// applies (to a Pipeline's commands for one actor as a whole). Default
	// 65536; at least 1. See "Bulkhead and backpressure" in
	// docs/reliability.md for the exact bound.
	MailboxCapacity int
	// Backpressure is what posting to a full mailbox does. Default
	// BackpressureBlock.
	Backpressure BackpressurePolicy
	// MaxBatchSize is the maximum number of commands written in one
	// pipeline. Default 1024; 1 to 100000.
	MaxBatchSize int
	// DrainTimeout is how long Close waits for commands already written to
	// be answered before failing them: one deadline for the whole Close,
	// shared by the batch writers and the connections. Default 5s; at
	// least 0, where 0 means no waiting. Whatever its value, every future
	// is complete when Close returns.
	DrainTimeout time.Duration
	// Logger receives the engine's logs (hooks.Logging describes them: the
	// Msg* messages and their attributes) and those of the actor library,
	// filtered by LogLevel. No password, key or value is logged (keys only
	// at debug level). Default nil: nothing is logged, including by the
	// libraries vactor is built on.
	Logger *slog.Logger
	// LogLevel is the least level logged to Logger: "debug", "info",
	// "warn" or "error" (LogLevelDebug, ...; also slog's text form, see
	// LogLevel; VALKEY_LOG_LEVEL). Default "info"; "" is "info". Unused
	// without a Logger, but Validate refuses text that is no level.
	LogLevel LogLevel
	// Hooks observe the engine: each is a value implementing one or more of
	// the hooks package's interfaces (hooks.PreExecution, ...), checked
	// once by engine.New; see hooks.Hook for which goroutine calls what.
	// Several hooks are called in order. Default nil: no hooks, and no
	// cost on the hot path. Validate refuses a nil hook and one that
	// implements none of the interfaces. The hooks are shared, not
	// copied, by Config's copies.
	Hooks []hooks.Hook `json:"-"`
}

// Defaults, as documented on the Config fields and returned by DefaultConfig.
const (
	defaultHost                      = "127.0.0.1"
	defaultPort                      = 6379
	defaultClientName                = "vactor"
	defaultDriver                    = "valkey-go"
	defaultPoolSize                  = 1
	defaultDialTimeout               = 5 * time.Second
	defaultReadTimeout               = 3 * time.Second
	defaultWriteTimeout              = 3 * time.Second
	defaultMaxRetries                = 3
	defaultMinRetryBackoff           = 8 * time.Millisecond
	defaultMaxRetryBackoff           = 512 * time.Millisecond
	defaultCircuitBreakerThreshold   = 5
	defaultCircuitBreakerOpenTimeout = time.Second
	defaultCircuitBreakerPeriod      = 10 * time.Second
	defaultMaxRedirects              = 5
	defaultClusterRefreshInterval    = 10 * time.Second
	defaultSentinelRefreshInterval   = 5 * time.Second
	defaultMailboxCapacity           = 65536
	defaultMaxBatchSize              = 1024
	defaultDrainTimeout              = 5 * time.Second
)

// Limits enforced by Validate.
const (
	maxPoolSize       = 1024
	maxBatchSizeLimit = 100000
	// The breaker keeps one bit per counted round trip: failsafe-go
	// allocates CircuitBreakerThreshold bits per node, and for a count it
	// cannot allocate it silently keeps none, which opens the breaker
	// within the first few round trips.
	maxBreakerThreshold = 100000
	// The failure-rate breaker (failsafe-go's) counts its window in 10
	// buckets of CircuitBreakerPeriod/10 whole nanoseconds: with a
	// shorter period a bucket is 0ns, and every round trip it records
	// divides by zero (the connection actor panicked and restarted after
	// each one, and the breaker never counted anything).
	minBreakerPeriod = 10 * time.Nanosecond
	// The periodic topology reloads (ClusterRefreshInterval,
	// SentinelRefreshInterval) are 0 (off) or at least this: a reload
	// scheduled every few nanoseconds runs back to back (thousands of
	// CLUSTER SHARDS or sentinel queries a second).
	minRefreshInterval = 100 * time.Millisecond
	// maxDB is the largest DB: the server takes a database number as a
	// C int. The same bound holds for WithDB, VALKEY_DB and a URL's db.
	maxDB = math.MaxInt32
)

// reasonDB is why Validate, ParseURL and LoadFromEnv refuse a DB.
const reasonDB = "must be at least 0 and at most 2147483647"

// reasonDBDigits is why ParseURL and LoadFromEnv refuse a DB that is not
// ASCII digits without sign (a negative VALKEY_DB gets reasonDB).
const reasonDBDigits = "must be a non-negative integer"

// reasonRefreshInterval is why Validate refuses a refresh interval.
const reasonRefreshInterval = "must be 0 (off) or at least 100ms"

// badRefreshInterval reports whether d is no valid refresh interval.
func badRefreshInterval(d time.Duration) bool { return d != 0 && d < minRefreshInterval }

// DefaultConfig returns a Config with every field at its documented default:
// a single server at 127.0.0.1:6379, no authentication, no TLS, no logging.
// It passes Validate.
func DefaultConfig() Config {
	return Config{
		Host:                      defaultHost,
		Port:                      defaultPort,
		ClientName:                defaultClientName,
		Driver:                    defaultDriver,
		PoolSize:                  defaultPoolSize,
		DialTimeout:               defaultDialTimeout,
		ReadTimeout:               defaultReadTimeout,
		WriteTimeout:              defaultWriteTimeout,
		MaxRetries:                defaultMaxRetries,
		MinRetryBackoff:           defaultMinRetryBackoff,
		MaxRetryBackoff:           defaultMaxRetryBackoff,
		CircuitBreakerThreshold:   defaultCircuitBreakerThreshold,
		CircuitBreakerOpenTimeout: defaultCircuitBreakerOpenTimeout,
		CircuitBreakerPeriod:      defaultCircuitBreakerPeriod,
		ReadFrom:                  ReadFromPrimary,
		MaxRedirects:              defaultMaxRedirects,
		ClusterRefreshInterval:    defaultClusterRefreshInterval,
		SentinelRefreshInterval:   defaultSentinelRefreshInterval,
		MailboxCapacity:           defaultMailboxCapacity,
		Backpressure:              BackpressureBlock,
		MaxBatchSize:              defaultMaxBatchSize,
		DrainTimeout:              defaultDrainTimeout,
		LogLevel:                  LogLevelInfo,
	}
}

// Addresses returns the addresses to connect to as "host:port": a copy of
// Addrs when it is not empty, else the single address made of Host and Port.
// In sentinel mode these are not used: the sentinels (SentinelAddrs) name
// the primary. The caller owns the returned slice.
func (c Config) Addresses() []string {
	if len(c.Addrs) > 0 {
		return slices.Clone(c.Addrs)
	}
	return []string{net.JoinHostPort(c.Host, strconv.Itoa(c.Port))}
}

// Validate checks every field against the rules documented on Config, in
// field order, and returns a *FieldError (errors.Is(err, ErrInvalidConfig))
// for the first bad one, or nil. It does not touch the network or the file
// system: TLS files are only checked for being set consistently.
func (c Config) Validate() error {
	err := c.validate()
	var fe *FieldError
	if errors.As(err, &fe) && looksLiteral(c, fe.Field) {
		fe.Reason += " (it is zero, as are other settings: a Config not made from config.DefaultConfig() " +
			"leaves them at zero; start from DefaultConfig() and change what you need)"
	}
	return err
}

// looksLiteral reports whether c's field is at its zero value where
// DefaultConfig's is not, and so are at least two other fields: most
// likely c is a struct literal, not a DefaultConfig with one setting
// zeroed (VALKEY_POOL_SIZE=0, say).
func looksLiteral(c Config, field string) bool {
	got, def := reflect.ValueOf(c), reflect.ValueOf(DefaultConfig())
	zeroed := func(i int) bool { return got.Field(i).IsZero() && !def.Field(i).IsZero() }
	f, ok := got.Type().FieldByName(field)
	if !ok || len(f.Index) != 1 || !zeroed(f.Index[0]) {
		return false
	}
	n := 0
	for i := range got.NumField() {
		if zeroed(i) {
			n++
		}
	}
	return n >= 3
}

func (c Config) validate() error {
	for i, a := range c.Addrs {
		if reason := checkAddr(a); reason != "" {
			return newFieldError("Addrs["+strconv.Itoa(i)+"]", a, reason)
		}
	}
	if reason := checkHost(c.Host); reason != "" {
		return newFieldError("Host", c.Host, reason)
	}
	if c.Port < 1 || c.Port > 65535 {
		return newFieldError("Port", strconv.Itoa(c.Port), "must be between 1 and 65535")
	}
	if c.CredentialsProvider != nil {
		if c.Username != "" {
			return newFieldError("Username", c.Username, "must be empty when CredentialsProvider is set")
		}
		if c.Password != "" {
			return newFieldError("Password", c.Password, "must be empty when CredentialsProvider is set")
		}
	}
	if c.DB < 0 || c.DB > maxDB {
		return newFieldError("DB", strconv.Itoa(c.DB), reasonDB)
	}
	if c.ClusterMode && c.DB != 0 {
		return newFieldError("DB", strconv.Itoa(c.DB), "must be 0 in cluster mode")
	}
	for i := 0; i < len(c.ClientName); i++ {
		if ch := c.ClientName[i]; ch < '!' || ch > '~' {
			return newFieldError("ClientName", c.ClientName,
				"must be printable ASCII without spaces")
		}
	}
	if c.Driver == "" {
		return newFieldError("Driver", c.Driver, "must not be empty")
	}
	if c.PoolSize < 1 || c.PoolSize > maxPoolSize {
		return newFieldError("PoolSize", strconv.Itoa(c.PoolSize), "must be between 1 and 1024")
	}
	if c.DialTimeout <= 0 {
		return newFieldError("DialTimeout", c.DialTimeout.String(), "must be greater than 0")
	}
	if c.ReadTimeout < 0 {
		return newFieldError("ReadTimeout", c.ReadTimeout.String(), "must be at least 0")
	}
	if c.WriteTimeout < 0 {
		return newFieldError("WriteTimeout", c.WriteTimeout.String(), "must be at least 0")
	}
	if c.MaxRetries < 0 {
		return newFieldError("MaxRetries", strconv.Itoa(c.MaxRetries), "must be at least 0")
	}
	if c.MinRetryBackoff < 0 {
		return newFieldError("MinRetryBackoff", c.MinRetryBackoff.String(), "must be at least 0")
	}
	if c.MaxRetryBackoff < c.MinRetryBackoff {
		return newFieldError("MaxRetryBackoff", c.MaxRetryBackoff.String(),
			"must be at least MinRetryBackoff ("+c.MinRetryBackoff.String()+")")
	}
	if c.CircuitBreakerThreshold < 1 || c.CircuitBreakerThreshold > maxBreakerThreshold {
		return newFieldError("CircuitBreakerThreshold", strconv.Itoa(c.CircuitBreakerThreshold),
			"must be between 1 and 100000")
	}
	if c.CircuitBreakerOpenTimeout <= 0 {
		return newFieldError("CircuitBreakerOpenTimeout", c.CircuitBreakerOpenTimeout.String(),
			"must be greater than 0")
	}
	if !(c.CircuitBreakerFailureRate >= 0 && c.CircuitBreakerFailureRate <= 1) {
		return newFieldError("CircuitBreakerFailureRate", strconv.FormatFloat(c.CircuitBreakerFailureRate, 'g', -1, 64),
			"must be between 0 and 1")
	}
	if c.CircuitBreakerPeriod <= 0 {
		return newFieldError("CircuitBreakerPeriod", c.CircuitBreakerPeriod.String(),
			"must be greater than 0")
	}
	if c.CircuitBreakerFailureRate > 0 && c.CircuitBreakerPeriod < minBreakerPeriod {
		return newFieldError("CircuitBreakerPeriod", c.CircuitBreakerPeriod.String(),
			"must be at least 10ns with a CircuitBreakerFailureRate above 0 (the breaker counts the window in 10 buckets)")
	}
	switch c.ReadFrom {
	case ReadFromPrimary, ReadFromReplica, ReadFromPreferReplica:
	default:
		return newFieldError("ReadFrom", c.ReadFrom.String(),
			"must be ReadFromPrimary, ReadFromReplica or ReadFromPreferReplica")
	}
	if c.MaxRedirects < 0 {
		return newFieldError("MaxRedirects", strconv.Itoa(c.MaxRedirects), "must be at least 0")
	}
	if badRefreshInterval(c.ClusterRefreshInterval) {
		return newFieldError("ClusterRefreshInterval", c.ClusterRefreshInterval.String(), reasonRefreshInterval)
	}
	if err := c.validateSentinel(); err != nil {
		return err
	}
	if err := c.TLS.validate(); err != nil {
		return err
	}
	if c.MailboxCapacity < 1 {
		return newFieldError("MailboxCapacity", strconv.Itoa(c.MailboxCapacity), "must be at least 1")
	}
	switch c.Backpressure {
	case BackpressureBlock, BackpressureReject:
	default:
		return newFieldError("Backpressure", c.Backpressure.String(),
			"must be BackpressureBlock or BackpressureReject")
	}
	if c.MaxBatchSize < 1 || c.MaxBatchSize > maxBatchSizeLimit {
		return newFieldError("MaxBatchSize", strconv.Itoa(c.MaxBatchSize), "must be between 1 and 100000")
	}
	if c.DrainTimeout < 0 {
		return newFieldError("DrainTimeout", c.DrainTimeout.String(), "must be at least 0")
	}
	if _, err := c.LogLevel.Level(); err != nil {
		return err
	}
	for i, h := range c.Hooks {
		if h == nil {
			return newFieldError("Hooks["+strconv.Itoa(i)+"]", "nil", "must not be nil")
		}
		if !hooks.Implements(h) {
			return newFieldError("Hooks["+strconv.Itoa(i)+"]", fmt.Sprintf("%T", h), "implements no interface of the hooks package")
		}
	}
	return nil
}

// validateSentinel checks the Sentinel* fields, in field order.
func (c Config) validateSentinel() error {
	if !c.SentinelMode {
		if c.SentinelMasterName != "" || len(c.SentinelAddrs) > 0 || c.SentinelUsername != "" ||
			c.SentinelPassword != "" || c.SentinelCredentialsProvider != nil {
			return newFieldError("SentinelMode", "false", "must be true when other sentinel settings are given")
		}
	} else {
		if c.ClusterMode {
			return newFieldError("SentinelMode", "true", "must be false in cluster mode (set only one of ClusterMode and SentinelMode)")
		}
		if len(c.Addrs) > 0 {
			return newFieldError("Addrs", strings.Join(c.Addrs, ","),
				"must be empty in sentinel mode: the sentinels name the primary (list the sentinels in SentinelAddrs)")
		}
		if c.SentinelMasterName == "" {
			return newFieldError("SentinelMasterName", "", "must be set in sentinel mode")
		}
	}
	for _, r := range c.SentinelMasterName {
		if r <= ' ' || r == 0x7f {
			return newFieldError("SentinelMasterName", c.SentinelMasterName, "must not contain spaces or control characters")
		}
	}
	if c.SentinelMode && len(c.SentinelAddrs) == 0 {
		return newFieldError("SentinelAddrs", "", "must list at least one sentinel in sentinel mode")
	}
	for i, a := range c.SentinelAddrs {
		if reason := checkAddr(a); reason != "" {
			return newFieldError("SentinelAddrs["+strconv.Itoa(i)+"]", a, reason)
		}
	}
	if c.SentinelCredentialsProvider != nil {
		if c.SentinelUsername != "" {
			return newFieldError("SentinelUsername", c.SentinelUsername, "must be empty when SentinelCredentialsProvider is set")
		}
		if c.SentinelPassword != "" {
			return newFieldError("SentinelPassword", c.SentinelPassword, "must be empty when SentinelCredentialsProvider is set")
		}
	}
	if badRefreshInterval(c.SentinelRefreshInterval) {
		return newFieldError("SentinelRefreshInterval", c.SentinelRefreshInterval.String(), reasonRefreshInterval)
	}
	return nil
}

func (t TLSConfig) validate() error {
	if !t.Enabled {
		if t.CertFile != "" || t.KeyFile != "" || t.CAFile != "" || t.ServerName != "" || t.InsecureSkipVerify || t.Config != nil {
			return newFieldError("TLS.Enabled", "false",
				"must be true when other TLS settings are given")
		}
		return nil
	}
	if t.CertFile != "" && t.KeyFile == "" {
		return newFieldError("TLS.KeyFile", "", "must be set when TLS.CertFile is set")
	}
	if t.KeyFile != "" && t.CertFile == "" {
		return newFieldError("TLS.CertFile", "", "must be set when TLS.KeyFile is set")
	}
	return nil
}

// checkHost returns why h is not a usable host, or "".
func checkHost(h string) string {
	if looksLikeURL(h) {
		return "must be a host name or IP address: this is a URL (use config.ParseURL or VALKEY_URL for a URL)"
	}
	if h == "" {
		return "must not be empty"
	}
	for _, r := range h {
		if r <= ' ' || r == 0x7f {
			return "must not contain spaces or control characters"
		}
	}
	if got, _, err := net.SplitHostPort(net.JoinHostPort(h, "1")); err != nil || got != h {
		return "must be a host name or IP address without brackets or port"
	}
	if ip, zone, _ := strings.Cut(h, "%"); strings.Contains(h, ":") {
		if net.ParseIP(ip) == nil {
			// "fe80:" (from "fe80::1" split at its last colon) is no address.
			return "must be a host name or IP address without brackets or port"
		}
		// An IPv6 address may have a zone ("fe80::1%eth0"), an interface
		// name or number: only characters no zone has are refused (no
		// interface name has ':' or '/'; "eth0:1" is an IPv4 alias label).
		if i := strings.IndexAny(zone, ",/#%:"); i >= 0 {
			if zone[i] == ',' {
				return hostCharReason(',')
			}
			return "must be a host name or IP address: " + strconv.QuoteRune(rune(zone[i])) +
				" is not allowed in an IPv6 zone (an interface name or number)"
		}
		return ""
	}
	// A host name, or an IPv4 address: ASCII letters and digits, '-',
	// '.' and '_' (which some private names use). Anything else (a
	// comma-separated list, a path, a '%' escape or zone) would fail only
	// at dial time, as a name no resolver finds.
	for _, r := range h {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '.', r == '_':
		default:
			return hostCharReason(r)
		}
	}
	return ""
}

// hostCharReason is why a host with the character r is refused.
func hostCharReason(r rune) string {
	if r == ',' {
		return "must be a host name or IP address: ',' is not allowed (one host per address: give several addresses as separate entries)"
	}
	return "must be a host name or IP address: " + strconv.QuoteRune(r) +
		" is not allowed (a host name has ASCII letters, digits, '-', '.' and '_')"
}

// checkAddr returns why a is not a usable "host:port" address, or "".
func checkAddr(a string) string {
	if looksLikeURL(a) {
		return `must be "host:port": this is a URL (use config.ParseURL or VALKEY_URL for a URL)`
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		if unbracketedIPv6(a) {
			return `must be "host:port" with an IPv6 address in brackets, as in [::1]:6380`
		}
		return `must be "host:port" ("[ipv6]:port" for IPv6)`
	}
	if reason := checkHost(host); reason != "" {
		return "host " + reason
	}
	if n, ok := parseDigits(port); !ok || n < 1 || n > 65535 {
		return "port must be a number between 1 and 65535"
	}
	return ""
}

// looksLikeURL reports whether a, given where an address goes, is a URL
// or carries user information or a query ("redis://:pw@host:6379",
// "user:pw@host", "host:6379?password=pw"):
// a common mistake, WithAddrs(os.Getenv("REDIS_URL")).
func looksLikeURL(a string) bool {
	return strings.Contains(a, "://") || strings.ContainsAny(a, "@?")
}

// safeAddr returns a, an address setting, as it may be printed: a URL or
// user information given there has its secrets replaced with
// "[redacted]" (see redactURL).
func safeAddr(a string) string {
	if looksLikeURL(a) {
		return redactURL(a)
	}
	return a
}

// safeAddrs is safeAddr of each of addrs (nil stays nil).
func safeAddrs(addrs []string) []string {
	if addrs == nil {
		return nil
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = safeAddr(a)
	}
	return out
}

// unbracketedIPv6 reports whether a looks like an IPv6 address without
// brackets, with or without a port: more than one colon, no brackets, and
// only hexadecimal digits, colons and dots before any "%zone" ("::1",
// "::1:6380", "fe80::1%eth0:6379"). Such a value is refused rather than
// split at its last colon or taken whole, since either reading may be the
// one meant; the error then says to bracket it.
func unbracketedIPv6(a string) bool {
	if strings.Count(a, ":") < 2 || strings.ContainsAny(a, "[]") {
		return false
	}
	addr, _, _ := strings.Cut(a, "%")
	for i := 0; i < len(addr); i++ {
		switch c := addr[i]; {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F', c == ':', c == '.':
		default:
			return false
		}
	}
	return true
}

// parseDB parses a database number as ParseURL takes it (the path or the
// db parameter): ASCII digits without sign, at most maxDB. It returns why
// s is refused, or "".
func parseDB(s string) (int, string) {
	if s == "" {
		return 0, reasonDBDigits
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, reasonDBDigits
		}
		if n = n*10 + int(s[i]-'0'); n > maxDB {
			return 0, reasonDB
		}
	}
	return n, ""
}

// parseDigits parses a non-empty string of ASCII digits without sign.
func parseDigits(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// passwordText is what the printers show for a password.
func passwordText(p string) string {
	if p == "" {
		return ""
	}
	return redacted
}

// providerText is what GoString shows for a credentials provider.
func providerText(p CredentialsProvider) string {
	if p == nil {
		return "(config.CredentialsProvider)(nil)"
	}
	return fmt.Sprintf("(config.CredentialsProvider)(%p)", p)
}

// String returns a one-line summary of every setting, for logs and error
// messages. The passwords appear as "[redacted]" when set; credentials
// providers, the TLS Config and the Logger as whether they are set, Hooks
// as their number.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("Config{")
	fmt.Fprintf(&b, "Addrs=%q Host=%q Port=%d Username=%q Password=%q CredentialsProvider=%t DB=%d ClientName=%q Driver=%q PoolSize=%d",
		safeAddrs(c.Addrs), safeAddr(c.Host), c.Port, c.Username, passwordText(c.Password), c.CredentialsProvider != nil, c.DB, c.ClientName, c.Driver, c.PoolSize)
	fmt.Fprintf(&b, " DialTimeout=%s ReadTimeout=%s WriteTimeout=%s MaxRetries=%d MinRetryBackoff=%s MaxRetryBackoff=%s",
		c.DialTimeout, c.ReadTimeout, c.WriteTimeout, c.MaxRetries, c.MinRetryBackoff, c.MaxRetryBackoff)
	fmt.Fprintf(&b, " CircuitBreakerThreshold=%d CircuitBreakerOpenTimeout=%s CircuitBreakerFailureRate=%g CircuitBreakerPeriod=%s ClusterMode=%t ReadFrom=%s MaxRedirects=%d ClusterRefreshInterval=%s",
		c.CircuitBreakerThreshold, c.CircuitBreakerOpenTimeout, c.CircuitBreakerFailureRate, c.CircuitBreakerPeriod, c.ClusterMode, c.ReadFrom, c.MaxRedirects, c.ClusterRefreshInterval)
	fmt.Fprintf(&b, " SentinelMode=%t SentinelMasterName=%q SentinelAddrs=%q SentinelUsername=%q SentinelPassword=%q SentinelCredentialsProvider=%t SentinelRefreshInterval=%s",
		c.SentinelMode, c.SentinelMasterName, safeAddrs(c.SentinelAddrs), c.SentinelUsername, passwordText(c.SentinelPassword), c.SentinelCredentialsProvider != nil, c.SentinelRefreshInterval)
	fmt.Fprintf(&b, " TLS={Enabled=%t CertFile=%q KeyFile=%q CAFile=%q ServerName=%q InsecureSkipVerify=%t Config=%t}",
		c.TLS.Enabled, c.TLS.CertFile, c.TLS.KeyFile, c.TLS.CAFile, c.TLS.ServerName, c.TLS.InsecureSkipVerify, c.TLS.Config != nil)
	fmt.Fprintf(&b, " MailboxCapacity=%d Backpressure=%s MaxBatchSize=%d DrainTimeout=%s Logger=%t LogLevel=%s Hooks=%d}",
		c.MailboxCapacity, c.Backpressure, c.MaxBatchSize, c.DrainTimeout, c.Logger != nil, c.LogLevel, len(c.Hooks))
	return b.String()
}

// GoString implements fmt.GoStringer for %#v: Go syntax for every field,
// with the passwords shown as "[redacted]" when set.
func (c Config) GoString() string {
	var b strings.Builder
	addrs := "[]string(nil)"
	if c.Addrs != nil {
		addrs = fmt.Sprintf("%#v", safeAddrs(c.Addrs))
	}
	logger := "(*slog.Logger)(nil)"
	if c.Logger != nil {
		logger = fmt.Sprintf("(*slog.Logger)(%p)", c.Logger)
	}
	fmt.Fprintf(&b, "config.Config{Addrs:%s, Host:%q, Port:%d, Username:%q, Password:%q, CredentialsProvider:%s, DB:%d, ClientName:%q, Driver:%q, PoolSize:%d, ",
		addrs, safeAddr(c.Host), c.Port, c.Username, passwordText(c.Password), providerText(c.CredentialsProvider), c.DB, c.ClientName, c.Driver, c.PoolSize)
	fmt.Fprintf(&b, "DialTimeout:%d, ReadTimeout:%d, WriteTimeout:%d, MaxRetries:%d, MinRetryBackoff:%d, MaxRetryBackoff:%d, ",
		c.DialTimeout, c.ReadTimeout, c.WriteTimeout, c.MaxRetries, c.MinRetryBackoff, c.MaxRetryBackoff)
	fmt.Fprintf(&b, "CircuitBreakerThreshold:%d, CircuitBreakerOpenTimeout:%d, CircuitBreakerFailureRate:%g, CircuitBreakerPeriod:%d, ClusterMode:%t, ReadFrom:%d, MaxRedirects:%d, ClusterRefreshInterval:%d, ",
		c.CircuitBreakerThreshold, c.CircuitBreakerOpenTimeout, c.CircuitBreakerFailureRate, c.CircuitBreakerPeriod, c.ClusterMode, c.ReadFrom, c.MaxRedirects, c.ClusterRefreshInterval)
	sentinelAddrs := "[]string(nil)"
	if c.SentinelAddrs != nil {
		sentinelAddrs = fmt.Sprintf("%#v", safeAddrs(c.SentinelAddrs))
	}
	fmt.Fprintf(&b, "SentinelMode:%t, SentinelMasterName:%q, SentinelAddrs:%s, SentinelUsername:%q, SentinelPassword:%q, SentinelCredentialsProvider:%s, SentinelRefreshInterval:%d, ",
		c.SentinelMode, c.SentinelMasterName, sentinelAddrs, c.SentinelUsername, passwordText(c.SentinelPassword), providerText(c.SentinelCredentialsProvider), c.SentinelRefreshInterval)
	fmt.Fprintf(&b, "TLS:%#v, MailboxCapacity:%d, Backpressure:%d, MaxBatchSize:%d, DrainTimeout:%d, Logger:%s, LogLevel:%q, Hooks:%s}",
		c.TLS, c.MailboxCapacity, c.Backpressure, c.MaxBatchSize, c.DrainTimeout, logger, c.LogLevel, hooksText(c.Hooks))
	return b.String()
}

// Format implements fmt.Formatter so that no verb can print a password:
// %#v prints GoString, every other verb formats String as a string.
func (c Config) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, c.GoString())
		return
	}
	_, _ = fmt.Fprintf(f, fmt.FormatString(f, verb), c.String())
}

// LogValue implements slog.LogValuer: a group of every setting, keyed by
// field name, with the passwords shown as "[redacted]" when set.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any("Addrs", safeAddrs(c.Addrs)),
		slog.String("Host", safeAddr(c.Host)),
		slog.Int("Port", c.Port),
		slog.String("Username", c.Username),
		slog.String("Password", passwordText(c.Password)),
		slog.Bool("CredentialsProvider", c.CredentialsProvider != nil),
		slog.Int("DB", c.DB),
		slog.String("ClientName", c.ClientName),
		slog.String("Driver", c.Driver),
		slog.Int("PoolSize", c.PoolSize),
		slog.Duration("DialTimeout", c.DialTimeout),
		slog.Duration("ReadTimeout", c.ReadTimeout),
		slog.Duration("WriteTimeout", c.WriteTimeout),
		slog.Int("MaxRetries", c.MaxRetries),
		slog.Duration("MinRetryBackoff", c.MinRetryBackoff),
		slog.Duration("MaxRetryBackoff", c.MaxRetryBackoff),
		slog.Int("CircuitBreakerThreshold", c.CircuitBreakerThreshold),
		slog.Duration("CircuitBreakerOpenTimeout", c.CircuitBreakerOpenTimeout),
		slog.Float64("CircuitBreakerFailureRate", c.CircuitBreakerFailureRate),
		slog.Duration("CircuitBreakerPeriod", c.CircuitBreakerPeriod),
		slog.Bool("ClusterMode", c.ClusterMode),
		slog.String("ReadFrom", c.ReadFrom.String()),
		slog.Int("MaxRedirects", c.MaxRedirects),
		slog.Duration("ClusterRefreshInterval", c.ClusterRefreshInterval),
		slog.Bool("SentinelMode", c.SentinelMode),
		slog.String("SentinelMasterName", c.SentinelMasterName),
		slog.Any("SentinelAddrs", safeAddrs(c.SentinelAddrs)),
		slog.String("SentinelUsername", c.SentinelUsername),
		slog.String("SentinelPassword", passwordText(c.SentinelPassword)),
		slog.Bool("SentinelCredentialsProvider", c.SentinelCredentialsProvider != nil),
		slog.Duration("SentinelRefreshInterval", c.SentinelRefreshInterval),
		slog.Group("TLS",
			slog.Bool("Enabled", c.TLS.Enabled),
			slog.String("CertFile", c.TLS.CertFile),
			slog.String("KeyFile", c.TLS.KeyFile),
			slog.String("CAFile", c.TLS.CAFile),
			slog.String("ServerName", c.TLS.ServerName),
			slog.Bool("InsecureSkipVerify", c.TLS.InsecureSkipVerify),
			slog.Bool("Config", c.TLS.Config != nil),
		),
		slog.Int("MailboxCapacity", c.MailboxCapacity),
		slog.String("Backpressure", c.Backpressure.String()),
		slog.Int("MaxBatchSize", c.MaxBatchSize),
		slog.Duration("DrainTimeout", c.DrainTimeout),
		slog.Bool("Logger", c.Logger != nil),
		slog.String("LogLevel", c.LogLevel.String()),
		slog.Int("Hooks", len(c.Hooks)),
	)
}

// Redacted returns a copy of c whose passwords (Password,
// SentinelPassword) read "[redacted]" when set, and whose URLs given as
// addresses have their user information redacted, as String shows them:
// what to hand to encoding/json, slog.JSONHandler inside a struct of
// yours, or any encoder that reads fields by reflection, which print the
// passwords of a Config as they are. A Config has no MarshalJSON (a
// struct embedding it would marshal as the Config alone, and one
// embedding a nil *Config would panic, review-34b).
func (c Config) Redacted() Config {
	c.Password = passwordText(c.Password)
	c.SentinelPassword = passwordText(c.SentinelPassword)
	c.Addrs = safeAddrs(c.Addrs)
	c.Host = safeAddr(c.Host)
	c.SentinelAddrs = safeAddrs(c.SentinelAddrs)
	return c
}

// hooksText is what GoString shows for Hooks: their types.
func hooksText(hs []hooks.Hook) string {
	if hs == nil {
		return "[]hooks.Hook(nil)"
	}
	var b strings.Builder
	b.WriteString("[]hooks.Hook{")
	for i, h := range hs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(%T)", h)
	}
	b.WriteString("}")
	return b.String()
}
