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
