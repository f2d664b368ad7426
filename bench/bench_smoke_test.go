package bench

import (
	"context"
	"testing"
)

// The contenders the benchmarks compare really do GET and SET against the
// server, so a broken benchmark fails `make test` instead of rotting.
func TestContendersWork(t *testing.T) {
	ctx := context.Background()
	for _, c := range contenders {
		t.Run(c.name, func(t *testing.T) {
			cl := c.new(t)
			defer cl.close()
			if err := cl.set(ctx, keys[7]); err != nil {
				t.Fatalf("set: %v", err)
			}
			if err := cl.get(ctx, keys[7]); err != nil {
				t.Fatalf("get: %v", err)
			}
		})
	}
}

// The cluster contenders work against a real cluster too.
func TestClusterContendersWork(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster: skipped with -short")
	}
	ctx := context.Background()
	for _, c := range clusterContenders {
		t.Run(c.name, func(t *testing.T) {
			cl := c.new(t)
			defer cl.close()
			for _, k := range keys[:50] {
				if err := cl.set(ctx, k); err != nil {
					t.Fatalf("set %s: %v", k, err)
				}
				if err := cl.get(ctx, k); err != nil {
					t.Fatalf("get %s: %v", k, err)
				}
			}
		})
	}
}

// The TLS contenders work against the TLS server.
func TestTLSContendersWork(t *testing.T) {
	ctx := context.Background()
	for _, c := range tlsContenders {
		t.Run(c.name, func(t *testing.T) {
			cl := c.new(t)
			defer cl.close()
			if err := cl.set(ctx, keys[7]); err != nil {
				t.Fatalf("set: %v", err)
			}
			if err := cl.get(ctx, keys[7]); err != nil {
				t.Fatalf("get: %v", err)
			}
		})
	}
}
