package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
)

// A client is one contender's connection to the target: GET and SET of
// one key, and Close. A nil reply (a missing key) is not an error.
type client struct {
	get   func(ctx context.Context, key string) error
	set   func(ctx context.Context, key, value string) error
	close func()
}

// A contender is one way of talking to Valkey that vactor bench measures.
type contender struct {
	name string
	// peer is true for the other libraries: the ratio column compares
	// each contender with the best peer.
	peer bool
	desc string
	open func(ctx context.Context, cfg config.Config) (client, error)
}

// contenders lists every contender, in the order vactor bench runs them
// in its first round (later rounds rotate the order).
var contenders = []contender{
	{"vactor", false, "vactor engine futures: Get(ctx, k).Await(ctx)", openVactor},
	{"vactor-sync", false, "vactor's synchronous Client (Engine.Sync)", openVactorSync},
	{"valkey-go", true, "valkey-go v1.0.80, default ClientOption", openValkeyGo(0)},
	{"valkey-go-fd20", true, "valkey-go v1.0.80, MaxFlushDelay 20µs", openValkeyGo(20 * time.Microsecond)},
	{"go-redis", true, "go-redis v9.23.0, connection pool (default Options)", openGoRedis(false)},
	{"go-redis-ap", true, "go-redis v9.23.0, Client.AutoPipeline() (blocking autopipeliner, default options)", openGoRedis(true)},
}

// contenderNames lists the names of every contender.
func contenderNames() []string {
	names := make([]string, len(contenders))
	for i, c := range contenders {
		names[i] = c.name
	}
	return names
}

// findContender returns the contender called name.
func findContender(name string) (contender, bool) {
	for _, c := range contenders {
		if c.name == name {
			return c, true
		}
	}
	return contender{}, false
}

// parseContenders parses a comma-separated list of names ("all" for all).
func parseContenders(s string) ([]contender, error) {
	if strings.TrimSpace(s) == "all" {
		return contenders, nil
	}
	var out []contender
	seen := map[string]bool{}
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		c, ok := findContender(name)
		if !ok {
			return nil, fmt.Errorf("unknown contender %q (known: all, %s)", name, strings.Join(contenderNames(), ", "))
		}
		if !seen[name] {
			seen[name] = true
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no contender")
	}
	return out, nil
}

// nilOK drops the nil-reply error of a GET of a missing key.
func nilOK(err error) error {
	if errors.Is(err, engine.ErrNil) {
		return nil
	}
	return err
}

func openVactor(ctx context.Context, cfg config.Config) (client, error) {
	eng, err := newEngine(ctx, cfg)
	if err != nil {
		return client{}, err
	}
	return client{
		get: func(ctx context.Context, k string) error {
			_, err := eng.Get(ctx, k).Await(ctx)
			return nilOK(err)
		},
		set: func(ctx context.Context, k, v string) error {
			_, err := eng.Set(ctx, k, v, 0).Await(ctx)
			return err
		},
		close: func() { _ = eng.Close() },
	}, nil
}

func openVactorSync(ctx context.Context, cfg config.Config) (client, error) {
	eng, err := newEngine(ctx, cfg)
	if err != nil {
		return client{}, err
	}
	c := eng.Sync()
	return client{
		get: func(ctx context.Context, k string) error {
			_, err := c.Get(ctx, k)
			return nilOK(err)
		},
		set: func(ctx context.Context, k, v string) error {
			return c.Set(ctx, k, v, 0)
		},
		close: func() { _ = eng.Close() },
	}, nil
}

// openValkeyGo opens a valkey-go client with its defaults but
// MaxFlushDelay (0: valkey-go's default, none).
func openValkeyGo(flushDelay time.Duration) func(context.Context, config.Config) (client, error) {
	return func(ctx context.Context, cfg config.Config) (client, error) {
		tlsCfg, err := cfg.TLS.ClientConfig()
		if err != nil {
			return client{}, err
		}
		c, err := valkey.NewClient(valkey.ClientOption{
			InitAddress:   cfg.Addresses(),
			Username:      cfg.Username,
			Password:      cfg.Password,
			SelectDB:      cfg.DB,
			TLSConfig:     tlsCfg,
			MaxFlushDelay: flushDelay,
			// valkey-go guesses cluster or not from the server; say it.
			ForceSingleClient: !cfg.ClusterMode,
		})
		if err != nil {
			return client{}, err
		}
		return client{
			get: func(ctx context.Context, k string) error {
				err := c.Do(ctx, c.B().Get().Key(k).Build()).Error()
				if valkey.IsValkeyNil(err) {
					return nil
				}
				return err
			},
			set: func(ctx context.Context, k, v string) error {
				return c.Do(ctx, c.B().Set().Key(k).Value(v).Build()).Error()
			},
			close: c.Close,
		}, nil
	}
}

// redisCmds is what go-redis's Client, ClusterClient and AutoPipeliner
// have in common that the bench uses.
type redisCmds interface {
	Get(ctx context.Context, key string) *redis.StringCmd
	Set(ctx context.Context, key string, value any, expiration time.Duration) *redis.StatusCmd
}

// openGoRedis opens a go-redis client with its default options: its
// connection pool, or (autoPipeline) its blocking autopipeliner,
// Client.AutoPipeline() (go-redis v9.23 has no AutoPipeline field in
// Options: the autopipeliner is a separate face of the client).
func openGoRedis(autoPipeline bool) func(context.Context, config.Config) (client, error) {
	return func(ctx context.Context, cfg config.Config) (client, error) {
		tlsCfg, err := cfg.TLS.ClientConfig()
		if err != nil {
			return client{}, err
		}
		var cmds redisCmds
		var closers []func() error
		if cfg.ClusterMode {
			c := redis.NewClusterClient(&redis.ClusterOptions{
				Addrs: cfg.Addresses(), Username: cfg.Username, Password: cfg.Password, TLSConfig: tlsCfg,
			})
			closers = append(closers, c.Close)
			cmds = c
			if autoPipeline {
				ap, err := c.AutoPipeline()
				if err != nil {
					_ = c.Close()
					return client{}, err
				}
				closers = append([]func() error{ap.Close}, closers...)
				cmds = ap
			}
		} else {
			c := redis.NewClient(&redis.Options{
				Addr: cfg.Addresses()[0], Username: cfg.Username, Password: cfg.Password, DB: cfg.DB, TLSConfig: tlsCfg,
			})
			closers = append(closers, c.Close)
			cmds = c
			if autoPipeline {
				ap, err := c.AutoPipeline()
				if err != nil {
					_ = c.Close()
					return client{}, err
				}
				closers = append([]func() error{ap.Close}, closers...)
				cmds = ap
			}
		}
		return client{
			get: func(ctx context.Context, k string) error {
				err := cmds.Get(ctx, k).Err()
				if errors.Is(err, redis.Nil) {
					return nil
				}
				return err
			},
			set: func(ctx context.Context, k, v string) error {
				return cmds.Set(ctx, k, v, 0).Err()
			},
			close: func() {
				for _, c := range closers {
					_ = c()
				}
			},
		}, nil
	}
}
