package policies

import (
	"math/rand/v2"
	"time"
)

// Backoff computes exponential delays with jitter: attempt n (from 0)
// waits a random time in [d/2, d], where d = Min·2ⁿ capped at Max
// ("equal jitter": the delay still grows, and clients that failed together
// do not retry together). The zero Backoff waits 0. Safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
}

// Delay returns the delay before attempt n (n >= 0).
func (b Backoff) Delay(n int) time.Duration {
	if b.Min <= 0 {
		return 0
	}
	d := b.Min
	for i := 0; i < n && d < b.Max; i++ {
		if d > b.Max/2 {
			// Doubling would pass Max, and for a Max near time.Duration's
			// largest (a Go idiom for "no cap") overflow: a negative d
			// made rand.Int64N panic, and a d wrapped to 0 waited 0.
			d = b.Max
			break
		}
		d *= 2
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}
