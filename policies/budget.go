package policies

import (
	"math"
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
// <= 1; counted in thousandths of a token, rounded, at least one) with
// at most burst tokens (beyond math.MaxInt64/1000 that many), starting
// full.
func NewBudget(ratio float64, burst int) *Budget {
	if !(ratio > 0 && ratio <= 1) {
		ratio = 0.1
	}
	if burst <= 0 {
		burst = 100
	}
	// In milli-tokens, saturated and rounded: a burst above
	// math.MaxInt64/1000 (math.MaxInt, say, for "no bound") overflowed
	// into a negative one, which refused every retry, and a ratio below
	// 1/1000 truncated to 0, which never earned one back.
	b := &Budget{
		ratio: max(int64(math.Round(ratio*1000)), 1),
		burst: int64(min(burst, math.MaxInt64/1000)) * 1000,
	}
	b.milli.Store(b.burst)
	return b
}

// Earn credits n commands sent.
func (b *Budget) Earn(n int) {
	if b == nil {
		return
	}
	// Saturated: with a burst near the largest count (see NewBudget),
	// cur+add overflowed.
	add := b.burst
	if int64(n) < b.burst/b.ratio {
		add = int64(n) * b.ratio
	}
	for {
		cur := b.milli.Load()
		next := b.burst
		if add < b.burst-cur {
			next = cur + add
		}
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
	if int64(n) > b.burst/1000 {
		return false // more than the budget can hold (and n·1000 may overflow)
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
