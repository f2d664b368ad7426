package config_test

import (
	"errors"
	"fmt"
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
	// With VALKEY_ADDRS=10.0.0.1:6379,10.0.0.2:6379 and
	// VALKEY_CLUSTER_MODE=true in the environment, cfg seeds a cluster.
	cfg, err := config.LoadFromEnv()
	if err != nil {
		fmt.Println(err) // e.g. config: invalid VALKEY_POOL_SIZE "lots": not an integer
		return
	}
	_ = cfg
}
