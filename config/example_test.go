package config_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/vactor-io/vactor/config"
)

func Example() {
	cfg := config.DefaultConfig().
		WithAddrs("10.0.0.1:6379", "10.0.0.2:6379").
		WithPassword("s3cret").
		WithPoolSize(4).
		WithDialTimeout(2 * time.Second)
	if err := cfg.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Addresses(), cfg.PoolSize, cfg.DialTimeout)

	// Mistakes are reported by field, and wrap ErrInvalidConfig.
	err := cfg.WithPort(70000).Validate()
	fmt.Println(err)
	fmt.Println(errors.Is(err, config.ErrInvalidConfig))
	// Output:
	// [10.0.0.1:6379 10.0.0.2:6379] 4 2s
	// config: invalid Port "70000": must be between 1 and 65535
	// true
}

func ExampleParseURL() {
	cfg, err := config.ParseURL("valkeys://app:s3cret@cache.internal:6380/2?dial_timeout=2s")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Addresses(), cfg.Username, cfg.DB, cfg.TLS.Enabled, cfg.DialTimeout)

	// Errors never contain the password.
	_, err = config.ParseURL("valkey://app:s3cret@cache.internal:99999")
	fmt.Println(err)
	_, err = config.ParseURL("http://app:s3cret@cache.internal")
	fmt.Println(err)
	// Output:
	// [cache.internal:6380] app 2 true 2s
	// config: invalid URL port "99999": must be between 1 and 65535
	// config: invalid URL "http://[redacted]@cache.internal": unsupported scheme "http"; want valkey://, valkeys://, redis:// or rediss://
}

func ExampleConfig_String() {
	cfg := config.DefaultConfig().WithPassword("s3cret")
	// String, %v, %+v, %#v and slog all redact the password.
	for _, s := range []string{cfg.String(), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg)} {
		fmt.Println(strings.Contains(s, "s3cret"), strings.Contains(s, `Password:"[redacted]"`) || strings.Contains(s, `Password="[redacted]"`))
	}
	// Output:
	// false true
	// false true
	// false true
}

func ExampleLoadFromEnv() {
	defer isolateEnv()() // the VALKEY_* variables of the shell running the example are set aside

	// As a deployment would set them.
	os.Setenv("VALKEY_ADDRS", "10.0.0.1:6379,10.0.0.2:6379")
	os.Setenv("VALKEY_CLUSTER_MODE", "true")
	os.Setenv("VALKEY_POOL_SIZE", "4")

	// Unset variables keep DefaultConfig's values.
	cfg, err := config.LoadFromEnv()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Addresses(), cfg.ClusterMode, cfg.PoolSize, cfg.DialTimeout)

	// A bad value is reported with its variable, and wraps ErrInvalidConfig.
	os.Setenv("VALKEY_POOL_SIZE", "lots")
	_, err = config.LoadFromEnv()
	fmt.Println(err)
	fmt.Println(errors.Is(err, config.ErrInvalidConfig))
	// Output:
	// [10.0.0.1:6379 10.0.0.2:6379] true 4 5s
	// config: invalid VALKEY_POOL_SIZE "lots": not an integer
	// true
}

func ExampleConfig_WithSentinel() {
	cfg := config.DefaultConfig().
		WithSentinel("mymaster", "10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379").
		WithSentinelPassword("sentinel-secret"). // the sentinels' own password
		WithPassword("data-secret").             // the primary's and the replicas'
		WithReadFrom(config.ReadFromPreferReplica)
	fmt.Println(cfg.Validate(), cfg.SentinelMasterName, cfg.SentinelAddrs)

	// The URL form valkey-go reads: the first sentinel as the host, the
	// others as addr parameters.
	cfg, err := config.ParseURL("valkey://:data-secret@10.0.0.1:26379?addr=10.0.0.2:26379&addr=10.0.0.3:26379&master_set=mymaster")
	fmt.Println(err, cfg.SentinelMode, cfg.SentinelMasterName, cfg.SentinelAddrs)

	// Sentinel and cluster mode do not mix.
	fmt.Println(cfg.WithClusterMode(true).Validate())
	// Output:
	// <nil> mymaster [10.0.0.1:26379 10.0.0.2:26379 10.0.0.3:26379]
	// <nil> true mymaster [10.0.0.1:26379 10.0.0.2:26379 10.0.0.3:26379]
	// config: invalid SentinelMode "true": must be false in cluster mode (set only one of ClusterMode and SentinelMode)
}

func ExampleConfig_WithCredentialsProvider() {
	// A provider is asked on every connect and reconnect: a rotated
	// password is picked up without restarting the engine.
	current := func(ctx context.Context) (string, string, error) {
		return "app", "password-from-a-secret-store", nil
	}
	cfg := config.DefaultConfig().WithCredentialsProvider(current)
	fmt.Println(cfg.Validate())
	fmt.Println(cfg.WithPassword("static").Validate())
	// Output:
	// <nil>
	// config: invalid Password "[redacted]": must be empty when CredentialsProvider is set
}

// isolateEnv unsets every variable LoadFromEnv reads, so that an example
// sees only what it sets itself (a VALKEY_ADDR exported in the shell
// would otherwise clash with its VALKEY_ADDRS), and returns the function
// that puts the environment back as it was.
func isolateEnv() (restore func()) {
	saved := map[string]string{}
	for _, v := range config.EnvVars {
		if val, ok := os.LookupEnv(v); ok {
			saved[v] = val
		}
		os.Unsetenv(v)
	}
	return func() {
		for _, v := range config.EnvVars {
			if val, ok := saved[v]; ok {
				os.Setenv(v, val)
			} else {
				os.Unsetenv(v)
			}
		}
	}
}
