package valkeygo_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/valkeytest"
)

// Close of a Conn whose server is stalled (SIGSTOP) is not held up by the
// connections valkey-go pooled for blocking commands and for pipelines of
// BlockingPipeline commands or more: valkey-go's Close closes those idle
// connections one after another, each after waiting up to 1 s for the
// reply to a PING, so that a Conn with three of them took four seconds
// (one for its first connection, one per pooled one), then one second
// (its first connection's) while only the pooled ones' sockets were
// closed first. A blocking call still in flight returns at once too.
func TestCloseWithPooledBlockingConnsStalledServer(t *testing.T) {
	for _, mode := range []string{"plain", "TLS"} {
		t.Run(mode, func(t *testing.T) {
			var srv *valkeytest.Server
			opts := drivers.Options{}
			if mode == "TLS" {
				certs := valkeytest.NewCertsT(t)
				srv = valkeytest.Start(t, valkeytest.Options{TLS: &valkeytest.TLSOptions{Certs: certs, AuthClients: valkeytest.AuthClientsYes}})
				opts.TLS = certs.TLSConfig()
			} else {
				srv = valkeytest.Start(t)
			}
			opts.Addr = srv.Addr()
			// Deferred first, checked last: once the server runs again.
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			conn := dial(t, opts)
			ctx := context.Background()
			b := conn.B()

			// Three blocking calls at once: three pooled connections.
			const blockers = 3
			popped := make(chan valkey.ValkeyResult, blockers)
			for i := range blockers {
				go func() {
					cmd := b.Blpop().Key("list").Timeout(waitTimeout.Seconds()).Build()
					if i%2 == 0 {
						popped <- conn.Do(ctx, cmd)
					} else {
						popped <- conn.DoMulti(ctx, cmd)[0]
					}
				}()
			}
			waitBlockedClients(t, srv, blockers)
			// While they block: a pipeline of BlockingPipeline commands
			// (valkey-go sends it on a pooled connection), with a
			// deadline (valkey-go's synchronous path): a fourth one.
			big := make(valkey.Commands, valkey.DefaultBlockingPipeline)
			for i := range big {
				big[i] = b.Ping().Build()
			}
			dctx, cancel := context.WithTimeout(ctx, waitTimeout)
			for i, r := range conn.DoMulti(dctx, big...) {
				if err := r.Error(); err != nil {
					t.Fatalf("PING %d of the large pipeline: %v", i, err)
				}
			}
			cancel()
			if _, err := srv.Do("RPUSH", "list", "a", "b", "c"); err != nil {
				t.Fatalf("RPUSH: %v", err)
			}
			for range blockers {
				select {
				case r := <-popped:
					if err := r.Error(); err != nil {
						t.Fatalf("BLPOP: %v", err)
					}
				case <-time.After(waitTimeout):
					t.Fatal("BLPOP not served after RPUSH")
				}
			}
			if got, want := serverClients(t, srv), blockers+2; got != want {
				t.Fatalf("%d client connections on the server, want %d (the first, %d pooled for BLPOP, one for the large pipeline)",
					got, want, blockers)
			}

			// One more blocking call, in flight at Close: it takes one of
			// the four pooled connections, three stay idle.
			type result struct {
				res valkey.ValkeyResult
				at  time.Time
			}
			inflight := make(chan result, 1)
			go func() {
				r := conn.Do(ctx, b.Blpop().Key("other").Timeout(waitTimeout.Seconds()).Build())
				inflight <- result{r, time.Now()}
			}()
			waitBlockedClients(t, srv, 1)

			if err := srv.Pause(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = srv.Resume() }()
			start := time.Now()
			if err := conn.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			took := time.Since(start)
			select {
			case r := <-inflight:
				if since := r.at.Sub(start); since >= closeStalledMax {
					t.Errorf("the BLPOP in flight returned %s after Close began, want < %s", since, closeStalledMax)
				}
				if err := r.res.Error(); err == nil || valkey.IsValkeyNil(err) {
					t.Errorf("BLPOP in flight at Close: error %v, want a transport error", err)
				}
			case <-time.After(waitTimeout):
				t.Fatal("the BLPOP in flight did not return after Close")
			}
			if took >= closeStalledMax {
				t.Errorf("Close with %d idle pooled connections took %s against a stalled server, want < %s: "+
					"it waited for a PING reply (valkey-go's close)", blockers, took, closeStalledMax)
			}
			t.Logf("Close in %s", took)
		})
	}
}

// waitBlockedClients waits until srv reports n blocked clients.
func waitBlockedClients(t *testing.T, srv *valkeytest.Server, n int) {
	t.Helper()
	want := fmt.Sprintf("blocked_clients:%d", n)
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		r, err := srv.Do("INFO", "clients")
		if err != nil {
			t.Fatalf("INFO clients: %v", err)
		}
		info, _ := r.(string)
		for _, line := range strings.Split(info, "\n") {
			if strings.TrimSpace(line) == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d blocked clients never reported:\n%s", n, info)
		}
		<-tick.C
	}
}
