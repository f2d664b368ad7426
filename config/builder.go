package config

import (
	"crypto/tls"
	"log/slog"
	"slices"
	"time"

	"github.com/vactor-io/vactor/hooks"
)

// The With* methods return a copy of c with one setting changed, so calls
// chain:
//
//	cfg := config.DefaultConfig().WithHost("cache").WithPoolSize(4)
//
// They never modify c, and the copy they return shares no slice with c or
// with their arguments. They do not validate: call Validate on the result
// (engine.New does).

// clone returns c with its own copies of Addrs, SentinelAddrs and Hooks.
func (c Config) clone() Config {
	c.Addrs = slices.Clone(c.Addrs)
	c.SentinelAddrs = slices.Clone(c.SentinelAddrs)
	c.Hooks = slices.Clone(c.Hooks)
	return c
}

// WithAddrs returns a copy of c with Addrs set to a copy of addrs ("host:port"
// each). With no arguments Addrs is cleared and Host:Port is used.
func (c Config) WithAddrs(addrs ...string) Config {
	c = c.clone()
	c.Addrs = nil
	if len(addrs) > 0 {
		c.Addrs = slices.Clone(addrs)
	}
	return c
}

// WithHost returns a copy of c with Host set.
func (c Config) WithHost(host string) Config { c = c.clone(); c.Host = host; return c }

// WithPort returns a copy of c with Port set.
func (c Config) WithPort(port int) Config { c = c.clone(); c.Port = port; return c }

// WithUsername returns a copy of c with Username set.
func (c Config) WithUsername(username string) Config {
	c = c.clone()
	c.Username = username
	return c
}

// WithPassword returns a copy of c with Password set.
func (c Config) WithPassword(password string) Config {
	c = c.clone()
	c.Password = password
	return c
}

// WithCredentialsProvider returns a copy of c with CredentialsProvider set
// (nil removes it). Username and Password must be empty when it is set.
func (c Config) WithCredentialsProvider(p CredentialsProvider) Config {
	c = c.clone()
	c.CredentialsProvider = p
	return c
}

// WithDB returns a copy of c with DB set.
func (c Config) WithDB(db int) Config { c = c.clone(); c.DB = db; return c }

// WithClientName returns a copy of c with ClientName set.
func (c Config) WithClientName(name string) Config {
	c = c.clone()
	c.ClientName = name
	return c
}

// WithDriver returns a copy of c with Driver set.
func (c Config) WithDriver(driver string) Config { c = c.clone(); c.Driver = driver; return c }

// WithPoolSize returns a copy of c with PoolSize set.
func (c Config) WithPoolSize(n int) Config { c = c.clone(); c.PoolSize = n; return c }

// WithDialTimeout returns a copy of c with DialTimeout set.
func (c Config) WithDialTimeout(d time.Duration) Config {
	c = c.clone()
	c.DialTimeout = d
	return c
}

// WithReadTimeout returns a copy of c with ReadTimeout set.
func (c Config) WithReadTimeout(d time.Duration) Config {
	c = c.clone()
	c.ReadTimeout = d
	return c
}

// WithWriteTimeout returns a copy of c with WriteTimeout set.
func (c Config) WithWriteTimeout(d time.Duration) Config {
	c = c.clone()
	c.WriteTimeout = d
	return c
}

// WithMaxRetries returns a copy of c with MaxRetries set.
func (c Config) WithMaxRetries(n int) Config { c = c.clone(); c.MaxRetries = n; return c }

// WithMinRetryBackoff returns a copy of c with MinRetryBackoff set.
func (c Config) WithMinRetryBackoff(d time.Duration) Config {
	c = c.clone()
	c.MinRetryBackoff = d
	return c
}

// WithMaxRetryBackoff returns a copy of c with MaxRetryBackoff set.
func (c Config) WithMaxRetryBackoff(d time.Duration) Config {
	c = c.clone()
	c.MaxRetryBackoff = d
	return c
}

// WithCircuitBreakerThreshold returns a copy of c with
// CircuitBreakerThreshold set.
func (c Config) WithCircuitBreakerThreshold(n int) Config {
	c = c.clone()
	c.CircuitBreakerThreshold = n
	return c
}

// WithCircuitBreakerOpenTimeout returns a copy of c with
// CircuitBreakerOpenTimeout set.
func (c Config) WithCircuitBreakerOpenTimeout(d time.Duration) Config {
	c = c.clone()
	c.CircuitBreakerOpenTimeout = d
	return c
}

// WithClusterMode returns a copy of c with ClusterMode set.
func (c Config) WithClusterMode(on bool) Config { c = c.clone(); c.ClusterMode = on; return c }

// WithReadFrom returns a copy of c with ReadFrom set.
func (c Config) WithReadFrom(r ReadFrom) Config { c = c.clone(); c.ReadFrom = r; return c }

// WithMaxRedirects returns a copy of c with MaxRedirects set.
func (c Config) WithMaxRedirects(n int) Config { c = c.clone(); c.MaxRedirects = n; return c }

// WithTLS returns a copy of c with TLS set.
func (c Config) WithTLS(t TLSConfig) Config { c = c.clone(); c.TLS = t; return c }

// WithTLSConfig returns a copy of c that uses the caller's own TLS
// configuration: TLS.Config set to t and TLS.Enabled to true. t wins over
// the file settings of TLS; it is shared, not copied (the engine clones it
// before use), so do not modify it afterwards. A nil t removes TLS.Config
// and leaves TLS.Enabled as it is.
func (c Config) WithTLSConfig(t *tls.Config) Config {
	c = c.clone()
	c.TLS.Config = t
	if t != nil {
		c.TLS.Enabled = true
	}
	return c
}

// WithSentinel returns a copy of c in sentinel mode: SentinelMode true,
// SentinelMasterName set to masterSet (the name the sentinels monitor the
// primary under) and SentinelAddrs to a copy of sentinelAddrs ("host:port"
// each), with Addrs cleared (in sentinel mode the sentinels name the
// primary). For example:
//
//	cfg := config.DefaultConfig().WithSentinel("mymaster",
//		"10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379")
func (c Config) WithSentinel(masterSet string, sentinelAddrs ...string) Config {
	c = c.clone()
	c.SentinelMode = true
	c.SentinelMasterName = masterSet
	c.SentinelAddrs = nil
	if len(sentinelAddrs) > 0 {
		c.SentinelAddrs = slices.Clone(sentinelAddrs)
	}
	c.Addrs = nil
	return c
}

// WithSentinelMode returns a copy of c with SentinelMode set.
func (c Config) WithSentinelMode(on bool) Config { c = c.clone(); c.SentinelMode = on; return c }

// WithSentinelMasterName returns a copy of c with SentinelMasterName set.
func (c Config) WithSentinelMasterName(name string) Config {
	c = c.clone()
	c.SentinelMasterName = name
	return c
}

// WithSentinelAddrs returns a copy of c with SentinelAddrs set to a copy of
// addrs; with no arguments SentinelAddrs is cleared.
func (c Config) WithSentinelAddrs(addrs ...string) Config {
	c = c.clone()
	c.SentinelAddrs = nil
	if len(addrs) > 0 {
		c.SentinelAddrs = slices.Clone(addrs)
	}
	return c
}

// WithSentinelUsername returns a copy of c with SentinelUsername set.
func (c Config) WithSentinelUsername(username string) Config {
	c = c.clone()
	c.SentinelUsername = username
	return c
}

// WithSentinelPassword returns a copy of c with SentinelPassword set.
func (c Config) WithSentinelPassword(password string) Config {
	c = c.clone()
	c.SentinelPassword = password
	return c
}

// WithSentinelCredentialsProvider returns a copy of c with
// SentinelCredentialsProvider set (nil removes it).
func (c Config) WithSentinelCredentialsProvider(p CredentialsProvider) Config {
	c = c.clone()
	c.SentinelCredentialsProvider = p
	return c
}

// WithSentinelRefreshInterval returns a copy of c with
// SentinelRefreshInterval set.
func (c Config) WithSentinelRefreshInterval(d time.Duration) Config {
	c = c.clone()
	c.SentinelRefreshInterval = d
	return c
}

// WithMailboxCapacity returns a copy of c with MailboxCapacity set.
func (c Config) WithMailboxCapacity(n int) Config {
	c = c.clone()
	c.MailboxCapacity = n
	return c
}

// WithBackpressure returns a copy of c with Backpressure set.
func (c Config) WithBackpressure(p BackpressurePolicy) Config {
	c = c.clone()
	c.Backpressure = p
	return c
}

// WithMaxBatchSize returns a copy of c with MaxBatchSize set.
func (c Config) WithMaxBatchSize(n int) Config { c = c.clone(); c.MaxBatchSize = n; return c }

// WithDrainTimeout returns a copy of c with DrainTimeout set.
func (c Config) WithDrainTimeout(d time.Duration) Config {
	c = c.clone()
	c.DrainTimeout = d
	return c
}

// WithLogger returns a copy of c with Logger set; nil silences all logging.
// The logger is shared, not copied.
func (c Config) WithLogger(l *slog.Logger) Config { c = c.clone(); c.Logger = l; return c }

// WithLogLevel returns a copy of c with LogLevel set.
func (c Config) WithLogLevel(l LogLevel) Config { c = c.clone(); c.LogLevel = l; return c }

// WithHooks returns a copy of c with Hooks set to a copy of hs (the hooks
// themselves are shared); with no arguments Hooks is cleared.
func (c Config) WithHooks(hs ...hooks.Hook) Config {
	c = c.clone()
	c.Hooks = nil
	if len(hs) > 0 {
		c.Hooks = slices.Clone(hs)
	}
	return c
}

// WithCircuitBreakerFailureRate returns a copy of c with
// CircuitBreakerFailureRate set (0 keeps the count-based breaker).
func (c Config) WithCircuitBreakerFailureRate(rate float64) Config {
	c = c.clone()
	c.CircuitBreakerFailureRate = rate
	return c
}

// WithCircuitBreakerPeriod returns a copy of c with CircuitBreakerPeriod set.
func (c Config) WithCircuitBreakerPeriod(d time.Duration) Config {
	c = c.clone()
	c.CircuitBreakerPeriod = d
	return c
}

// WithClusterRefreshInterval returns a copy of c with ClusterRefreshInterval
// set.
func (c Config) WithClusterRefreshInterval(d time.Duration) Config {
	c = c.clone()
	c.ClusterRefreshInterval = d
	return c
}
