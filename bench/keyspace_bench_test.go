package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/valkey-io/valkey-go"
)

// The realistic keyspace: GET and SET at 256 and 2048 goroutines over
// 100,000 keys of 64-byte values (what `vactor bench` and issue 14 use),
// the contenders interleaved at each level. The 1,024-key BenchmarkGet and
// BenchmarkSet keep every key in the server's and the CPU's caches; with
// 100,000 keys both the client and the server pay more per operation, so
// the ratios differ. Names end in "100k" so that benchratio lists them as
// rows of their own.

const (
	bigKeyspace = 100_000
	bigValueLen = 64
)

var (
	bigKeysOnce sync.Once
	bigKeys     []string
	bigValue    = strings.Repeat("v", bigValueLen)
)

// loadBigKeyspace sets the 100,000 keys once per process (DoMulti of
// 1,000), so that GET finds every key.
func loadBigKeyspace(tb testing.TB) []string {
	bigKeysOnce.Do(func() {
		bigKeys = make([]string, bigKeyspace)
		for i := range bigKeys {
			bigKeys[i] = fmt.Sprintf("key:%012d", i)
		}
		c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
		if err != nil {
			tb.Fatal(err)
		}
		defer c.Close()
		for i := 0; i < len(bigKeys); i += 1000 {
			cmds := make(valkey.Commands, 0, 1000)
			for _, k := range bigKeys[i:min(i+1000, len(bigKeys))] {
				cmds = append(cmds, c.B().Set().Key(k).Value(bigValue).Build())
			}
			for _, r := range c.DoMulti(context.Background(), cmds...) {
				if err := r.Error(); err != nil {
					tb.Fatal(err)
				}
			}
		}
	})
	if bigKeys == nil {
		tb.Fatal("keyspace not loaded")
	}
	return bigKeys
}

var bigLevels = []int{256, 2048}

func BenchmarkGet100k(b *testing.B) {
	ks := loadBigKeyspace(b)
	benchKeys(b, bigLevels, contenders, ks, false, func(c client) op { return c.get })
}

func BenchmarkSet100k(b *testing.B) {
	ks := loadBigKeyspace(b)
	benchKeys(b, bigLevels, contenders, ks, false, func(c client) op {
		return func(ctx context.Context, k string) error { return c.setv(ctx, k, bigValue) }
	})
}
