// Package config holds the one Config struct that configures a vactor
// engine: its defaults, its validation, and three ways to fill it.
//
//   - Builder methods on a value: DefaultConfig().WithHost("cache").WithPoolSize(4).
//     Each With* method returns a modified copy, so a base Config can be
//     shared and specialised freely.
//   - A URL: ParseURL("valkeys://user:secret@cache:6380/2?dial_timeout=2s"),
//     in the forms valkey-go reads too (several hosts with addr=, sentinel
//     mode with master_set=).
//   - The environment: LoadFromEnv (also named FromEnv) reads the VALKEY_*
//     variables listed in EnvVars, for twelve-factor deployments.
//
// Every field of Config documents its default, its unit and its valid range.
// Validate checks all of them and reports the first bad one as a *FieldError
// that wraps ErrInvalidConfig:
//
//	config: invalid Port "70000": must be between 1 and 65535
//
// Errors from ParseURL and LoadFromEnv name the URL element or the variable
// the bad value came from.
//
// # Secrets
//
// Passwords (Password, SentinelPassword) are never printed by fmt or
// slog. Config implements fmt.Stringer, fmt.GoStringer, fmt.Formatter (so
// every verb, %v, %+v and %#v included, is safe) and slog.LogValuer, all
// of which show "[redacted]" in their place, and no error of this package
// contains them: errors about a URL replace its user information with
// "[redacted]". Encoders that read the fields by reflection
// (encoding/json, so slog.JSONHandler given a struct that holds a
// Config, YAML, gob and the like) output the passwords: encode
// Config.Redacted's copy. And fmt prints a Config held by value in an
// unexported field of another struct field by field, passwords included:
// hold a *Config there, or print the Config itself.
//
// # Deployments
//
// A single server (Host and Port, or one address in Addrs: with more,
// only the first is dialled, and the others are no fallback), a cluster
// (ClusterMode, Addrs as seeds) or a primary found through sentinels
// (SentinelMode, SentinelMasterName, SentinelAddrs; WithSentinel). TLS is
// configured by files (TLS) or by the caller's own *tls.Config
// (WithTLSConfig); ACL credentials are static (Username, Password) or come
// from a CredentialsProvider called on every connect, with separate ones
// for the sentinels.
//
// # Concurrency
//
// Config is a plain value with no internal state. The functions of this
// package are safe for concurrent use; a Config may be read by any number of
// goroutines, and the With* methods never modify their receiver nor share a
// slice with it or with their arguments.
//
// This package imports only the standard library.
package config
