// Package stagger asks several sources the same question in turn,
// staggered, and keeps the first good answer: the cluster's seeds for the
// slot map, the sentinels for the primary.
package stagger

import (
	"context"
	"sync"
	"time"
)

// Outcome is what one source came to.
type Outcome[T any] struct {
	V   T     // ask's value, also when Err is not nil
	Err error // ask's error
	// Asked is false for a source whose turn never came: a winner came
	// or ctx ended first.
	Asked bool
}

// First asks sources 0 to n-1 with ask, in turn: the next one as soon as
// the previous one failed or after gap without an answer, those asked
// before still running. A source that accepts connections and never
// answers thus delays the others by gap, not by its own timeout or the
// whole of ctx, and an answer from an earlier source still counts while a
// later one is asked. The first answer with a nil error wins: First
// returns its index, or -1 when every source failed or ctx ended first.
// It returns only once every source it asked is done: on a winner, or
// when ctx ends, the others are cancelled (ask must then end at once) and
// waited for, so nothing is left behind. out holds every source's
// outcome, in order; those cancelled hold what ask returned then.
func First[T any](ctx context.Context, n int, gap time.Duration, ask func(ctx context.Context, i int) (T, error)) (won int, out []Outcome[T]) {
	out = make([]Outcome[T], n)
	won = -1
	if n == 0 {
		return won, out
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	type done struct {
		i   int
		v   T
		err error
	}
	dones := make(chan done, n)
	var wg sync.WaitGroup
	next, running := 0, 0
	askNext := func() {
		i := next
		next++
		running++
		out[i].Asked = true
		wg.Go(func() {
			v, err := ask(actx, i)
			dones <- done{i, v, err}
		})
	}
	take := func(d done) {
		running--
		out[d.i].V, out[d.i].Err = d.v, d.err
		if d.err == nil && won < 0 {
			won = d.i
		}
	}
	finish := func(stop bool) (int, []Outcome[T]) {
		if stop {
			cancel()
		}
		wg.Wait() // cancelled: each ends at once
		for running > 0 {
			take(<-dones)
		}
		return won, out
	}
	askNext()
	timer := time.NewTimer(gap)
	defer timer.Stop()
	for {
		select {
		case d := <-dones:
			take(d)
			if won >= 0 || (next == n && running == 0) {
				return finish(true)
			}
			if next < n {
				askNext()
				timer.Reset(gap)
			}
		case <-timer.C:
			if next < n {
				askNext()
				timer.Reset(gap)
			}
		case <-ctx.Done():
			// Those still asked end at once: their ctx ends with ctx and
			// says why (not cancelled here first, which could make it
			// say "canceled" for a deadline). Their errors name them,
			// where ctx's error alone does not say which did not answer.
			return finish(false)
		}
	}
}
