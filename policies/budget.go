package policies

import (
	"sync/atomic"
)

// Budget bounds retries so that a failing node is not hit with a multiple
// of its normal load: every command of a round trip that came back earns
// a fraction of a retry token (NewBudget's ratio), up to a burst of
// tokens (its burst), and every retry charged to it spends one. With the
// defaults (10%, 100) the retries charged to it add at most 10% to the
// traffic that succeeds once the burst is spent. The engine charges it
// with the resends of written commands past their first (each node has
// its own; a lost connection's first resend of what was in flight is
// free, so a node that fails every write sees each repeatable command at
// most twice, then 10% more, until its breaker opens). Safe for
// concurrent use; two atomic operations per batch, none per command.
type Budget struct {
	milli atomic.Int64 // tokens × 1000
	ratio int64        // milli-tokens earned per command
	burst int64        // milli-tokens at most
}

// NewBudget returns a Budget earning ratio tokens per command (0 < ratio
// <= 1) with at most burst tokens, starting full.
func NewBudget(ratio float64, burst int) *Budget {
	if ratio <= 0 || ratio > 1 {
		ratio = 0.1
	}
	if burst <= 0 {
		burst = 100
	}
	b := &Budget{ratio: int64(ratio * 1000), burst: int64(burst) * 1000}
	b.milli.Store(b.burst)
	return b
}

// Earn credits n commands sent.
func (b *Budget) Earn(n int) {
	if b == nil {
		return
	}
	add := int64(n) * b.ratio
	for {
		cur := b.milli.Load()
		next := min(cur+add, b.burst)
		if next == cur || b.milli.CompareAndSwap(cur, next) {
			return
		}
	}
}

// Spend takes n retry tokens if there are that many and reports whether it
// did. A nil Budget always allows.
func (b *Budget) Spend(n int) bool {
	if b == nil {
		return true
	}
	cost := int64(n) * 1000
	for {
		cur := b.milli.Load()
		if cur < cost {
			return false
		}
		if b.milli.CompareAndSwap(cur, cur-cost) {
			return true
		}
	}
}

// Tokens returns the whole tokens left.
func (b *Budget) Tokens() int { return int(b.milli.Load() / 1000) }
