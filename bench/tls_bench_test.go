package bench

import (
	"crypto/tls"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/valkeytest"
)

// The TLS benchmarks start one TLS-only server (certificates made in the
// process, no client certificate required) on first use; every contender
// talks to it with the same client configuration (TLS 1.3, the CA as
// root).
var (
	tlsOnce sync.Once
	tlsAddr string
	tlsConf *tls.Config
	tlsErr  error
	tlsStop func()
)

func tlsServer(tb testing.TB) (string, *tls.Config) {
	tlsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vactor-bench-tls-")
		if err != nil {
			tlsErr = err
			return
		}
		certs, err := valkeytest.NewCerts(dir)
		if err != nil {
			tlsErr = err
			_ = os.RemoveAll(dir)
			return
		}
		srv, err := valkeytest.StartServer(valkeytest.Options{Name: "bench-tls", TLS: &valkeytest.TLSOptions{Certs: certs}})
		if err != nil {
			tlsErr = err
			_ = os.RemoveAll(dir)
			return
		}
		tlsAddr, tlsConf = srv.Addr(), certs.TLSConfigNoCert()
		tlsStop = func() { _ = srv.Stop(); _ = os.RemoveAll(dir) }
	})
	if tlsErr != nil {
		tb.Fatal(tlsErr)
	}
	return tlsAddr, tlsConf
}

// tlsContenders are the engine and valkey-go (defaults, and MaxFlushDelay
// 20µs) over TLS to the same server.
var tlsContenders = []contender{
	{"engine", func(tb testing.TB) client {
		addr, conf := tlsServer(tb)
		return newEngineClient(tb, config.DefaultConfig().WithAddrs(addr).WithTLSConfig(conf))
	}},
	{"valkeygo", func(tb testing.TB) client {
		addr, conf := tlsServer(tb)
		return newValkeyClientWith(tb, "valkeygo", valkey.ClientOption{InitAddress: []string{addr}, TLSConfig: conf.Clone()})
	}},
	{"valkeygo-fd20", func(tb testing.TB) client {
		addr, conf := tlsServer(tb)
		return newValkeyClientWith(tb, "valkeygo-fd20", valkey.ClientOption{
			InitAddress: []string{addr}, TLSConfig: conf.Clone(), MaxFlushDelay: 20 * time.Microsecond,
		})
	}},
}

var tlsLevels = []int{256}

// BenchmarkTLSGet is GET at 256 goroutines over TLS: the engine against
// plain valkey-go on the same TLS server.
func BenchmarkTLSGet(b *testing.B) {
	bench(b, tlsLevels, tlsContenders, func(c client) op { return c.get })
}
