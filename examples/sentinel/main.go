// Command sentinel shows vactor in sentinel mode: the engine asks the
// sentinels for the primary, checks it with ROLE, and follows it through a
// failover: writers keep going while the example has the sentinels fail
// over, commands issued during the failover are held and sent to the new
// primary, and every acknowledged write is found there afterwards.
//
// It connects to the sentinels the VALKEY_* variables name, as
// config.LoadFromEnv reads them: $VALKEY_SENTINEL_ADDRS (comma separated)
// monitoring $VALKEY_SENTINEL_MASTER (default "mymaster"), or a
// $VALKEY_URL with ?master_set=NAME, with the passwords, ACL users and TLS
// settings of the other variables (VALKEY_SENTINEL_PASSWORD,
// VALKEY_PASSWORD, ...); a server named that is not in sentinel mode is
// refused. When no server is named it starts a throwaway setup (1
// primary, 2 replicas, 3 sentinels); only against a throwaway setup does
// it trigger a failover. Its keys are
// unique to the run (vactor-example:<id>:...) and deleted at the end.
// Ctrl-C (SIGINT) or SIGTERM stops it, and its throwaway setup with it.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

func main() {
	// The throwaway servers run in process groups of their own, so a
	// Ctrl-C at the terminal does not reach them: run stops them on its
	// way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if os.Getenv("VALKEY_SENTINEL_ADDRS") != "" && os.Getenv("VALKEY_SENTINEL_MASTER") == "" {
		os.Setenv("VALKEY_SENTINEL_MASTER", "mymaster") // the default named above, for LoadFromEnv
	}
	err := run(ctx)
	stop()
	if err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	var s *valkeytest.Sentinel
	cfg := config.DefaultConfig()
	if config.EnvNamesServer() {
		// Sentinels of one's own, named by any of the VALKEY_* ways
		// (VALKEY_SENTINEL_ADDRS, a VALKEY_URL with master_set), with
		// their and the data nodes' credentials and TLS.
		var err error
		if cfg, err = config.LoadFromEnv(); err != nil {
			return err
		}
		if !cfg.SentinelMode {
			return fmt.Errorf("the server the VALKEY_* variables name is not in sentinel mode: " +
				"set VALKEY_SENTINEL_ADDRS (and VALKEY_SENTINEL_MASTER), or a VALKEY_URL with ?master_set=NAME")
		}
	} else {
		var err error
		if s, err = valkeytest.StartSentinel(valkeytest.SentinelOptions{MasterName: "mymaster"}); err != nil {
			return err
		}
		defer s.Stop()
		fmt.Println("started a throwaway sentinel setup; sentinels:", strings.Join(s.Addrs(), " "))
		cfg = cfg.WithSentinel(s.MasterName(), s.Addrs()...)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	eng, err := engine.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer eng.Close()
	fmt.Println("primary:", eng.Stats().Sentinel.Primary)

	// Keys of this run only: a server's own keys are never touched.
	prefix := "vactor-example:" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"

	// 8 writers of distinct keys, recording what was acknowledged.
	var (
		mu    sync.Mutex
		acked []string
		fails atomic.Int64
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("%s%d:%d", prefix, w, i)
				if _, err := eng.Set(ctx, key, "v", time.Hour).Await(ctx); err != nil {
					if ctx.Err() != nil {
						return // interrupted, or out of time
					}
					fails.Add(1)
					continue
				}
				mu.Lock()
				acked = append(acked, key)
				mu.Unlock()
			}
		})
	}
	pause := func() error {
		select {
		case <-ctx.Done():
			close(stop)
			wg.Wait()
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
			return nil
		}
	}
	if err := pause(); err != nil {
		return err
	}
	if s != nil {
		start := time.Now()
		p, err := s.Failover() // SENTINEL FAILOVER, and wait until it is over
		if err != nil {
			close(stop)
			wg.Wait()
			return err
		}
		fmt.Printf("failover to %s took %v\n", p.Addr(), time.Since(start).Round(time.Millisecond))
	}
	if err := pause(); err != nil {
		return err
	}
	close(stop)
	wg.Wait()

	// Every acknowledged write is on the primary the engine follows now.
	mu.Lock()
	keys := acked
	mu.Unlock()
	missing := 0
	for from := 0; from < len(keys); from += 1000 {
		chunk := keys[from:min(from+1000, len(keys))]
		n, err := eng.Exists(ctx, chunk...).Await(ctx)
		if err != nil {
			return err
		}
		missing += len(chunk) - int(n)
	}
	st := eng.Stats().Sentinel
	fmt.Printf("%d writes acknowledged, %d failed, %d missing; primary now %s (%d switch, %d failover held)\n",
		len(keys), fails.Load(), missing, st.Primary, st.Switches, st.Holds)
	if missing > 0 {
		return fmt.Errorf("%d acknowledged writes missing", missing)
	}
	if n, err := eng.Del(ctx, keys...).Await(ctx); err == nil {
		fmt.Printf("deleted %d keys\n", n)
	}
	return nil
}
