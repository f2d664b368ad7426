package mailbox

import (
	"context"
	"testing"
)

type seqMsg int

func (seqMsg) Context() context.Context { return context.Background() }
func (seqMsg) Fail(error)               {}

// TestDrainDeepQueueKeepsOrder drains a queue many batches deep while
// more commands arrive between drains: every command comes out once, in
// order, and the drained slots no longer hold them.
func TestDrainDeepQueueKeepsOrder(t *testing.T) {
	m := New(Options{Capacity: 1 << 20, MaxBatch: 64, KeepExpired: true})
	next, want := 0, 0
	post := func(n int) {
		m.mu.Lock()
		for range n {
			m.enqueueLocked([]Message{seqMsg(next)})
			next++
		}
		m.mu.Unlock()
	}
	post(10_000)
	for round := 0; want < next; round++ {
		if round%3 == 0 && next < 20_000 {
			post(100)
		}
		m.mu.Lock()
		before := m.queue
		m.mu.Unlock()
		batch := m.drain()
		if len(batch) == 0 {
			t.Fatalf("empty batch with %d of %d drained", want, next)
		}
		for _, msg := range batch {
			if int(msg.(seqMsg)) != want {
				t.Fatalf("got %d, want %d", msg, want)
			}
			want++
		}
		if len(before) > 64 {
			for i, msg := range before[:64] {
				if msg != nil {
					t.Fatalf("drained slot %d still holds %v", i, msg)
				}
			}
		}
		m.recycle(batch)
	}
	if want != 20_000 || m.Len() != 0 {
		t.Fatalf("drained %d of 20000, %d left", want, m.Len())
	}
}

// BenchmarkDrainDeepQueue empties a mailbox holding 100,000 commands in
// batches of 1,024: the drain's cost per command must not grow with the
// depth of the queue.
func BenchmarkDrainDeepQueue(b *testing.B) {
	msgs := make([]Message, 100_000)
	for i := range msgs {
		msgs[i] = seqMsg(i)
	}
	m := New(Options{Capacity: 1 << 20, KeepExpired: true})
	b.ResetTimer()
	for range b.N {
		m.mu.Lock()
		m.enqueueLocked(msgs)
		m.mu.Unlock()
		for m.Len() > 0 {
			m.recycle(m.drain())
		}
	}
}
