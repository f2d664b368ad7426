package mailbox

import (
	"math/bits"
	"sync/atomic"
)

// BatchBuckets is the number of batch-size histogram buckets in Stats.
// Bucket i counts batches of size in [2^i, 2^(i+1)); the last bucket counts
// everything larger.
const BatchBuckets = 12

type counters struct {
	expired  atomic.Uint64
	rejected atomic.Uint64
	blocked  atomic.Uint64
	batches  atomic.Uint64
	batched  atomic.Uint64
	maxBatch atomic.Uint64
	assisted atomic.Uint64
	hist     [BatchBuckets]atomic.Uint64
}

func (c *counters) observeBatch(n int) {
	c.batches.Add(1)
	c.batched.Add(uint64(n))
	b := bits.Len(uint(n)) - 1
	if b >= BatchBuckets {
		b = BatchBuckets - 1
	}
	c.hist[b].Add(1)
	if uint64(n) > c.maxBatch.Load() {
		c.maxBatch.Store(uint64(n)) // single writer: the run loop
	}
}

// Stats is a snapshot of a mailbox's counters.
type Stats struct {
	Queued   int    // commands queued now
	Waiting  int    // commands waiting for room now, not queued yet: blocked posters' (Post, PostAll under PolicyBlock) and forwarded groups' (Forward)
	Posted   uint64 // commands accepted into the queue
	Expired  uint64 // commands failed because their context ended before they were handed to the actor (at Post, while blocked, or while queued)
	Rejected uint64 // commands failed with ErrBackpressure
	Blocked  uint64 // times a poster (Post, PostAll) or a forwarded group (Forward) waited for room
	Batches  uint64 // batches handed to the actor
	Batched  uint64 // commands handed to the actor in those batches
	MaxBatch uint64 // the largest batch so far
	Assisted uint64 // batches run on an awaiting caller's goroutine (Assist)
	// BatchSizes is a histogram: BatchSizes[i] counts batches of size in
	// [2^i, 2^(i+1)); the last bucket counts everything larger.
	BatchSizes [BatchBuckets]uint64
}

// MeanBatch returns the mean number of commands per batch, or 0.
func (s Stats) MeanBatch() float64 {
	if s.Batches == 0 {
		return 0
	}
	return float64(s.Batched) / float64(s.Batches)
}

// Add adds o's counters to s (Queued included; MaxBatch takes the larger).
func (s *Stats) Add(o Stats) {
	s.Queued += o.Queued
	s.Waiting += o.Waiting
	s.Posted += o.Posted
	s.Expired += o.Expired
	s.Rejected += o.Rejected
	s.Blocked += o.Blocked
	s.Batches += o.Batches
	s.Batched += o.Batched
	s.MaxBatch = max(s.MaxBatch, o.MaxBatch)
	s.Assisted += o.Assisted
	for i := range s.BatchSizes {
		s.BatchSizes[i] += o.BatchSizes[i]
	}
}

// Stats returns a snapshot of the mailbox's counters. Safe for concurrent use.
func (m *Bounded) Stats() Stats {
	m.mu.Lock()
	queued, posted := len(m.queue), m.posted
	waiting := 0
	for _, w := range m.waiters {
		waiting += len(w.msgs)
	}
	m.mu.Unlock()
	s := Stats{
		Queued:   queued,
		Waiting:  waiting,
		Posted:   posted,
		Expired:  m.stats.expired.Load(),
		Rejected: m.stats.rejected.Load(),
		Blocked:  m.stats.blocked.Load(),
		Batches:  m.stats.batches.Load(),
		Batched:  m.stats.batched.Load(),
		MaxBatch: m.stats.maxBatch.Load(),
		Assisted: m.stats.assisted.Load(),
	}
	for i := range s.BatchSizes {
		s.BatchSizes[i] = m.stats.hist[i].Load()
	}
	return s
}
