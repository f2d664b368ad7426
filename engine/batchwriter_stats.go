package engine

// A BatchWriter's counters.

import (
	"strconv"
	"time"
)

// BatchWriterStats is a snapshot of a BatchWriter's counters.
type BatchWriterStats struct {
	// Written counts commands queued by Write and the helpers (not those
	// they rejected). Acknowledged counts those the server answered
	// without an error (a nil reply is not an error); Failed those
	// reported through OnError. Pending = Written - Acknowledged - Failed.
	Written, Acknowledged, Failed uint64
	Pending                       uint64
	// Retries counts commands sent again, Redirects those of them sent to
	// another node after MOVED or ASK (cluster mode); Rejected the Writes
	// that failed with ErrBackpressure; Batches the pipelines sent;
	// Connects the connections opened.
	Retries, Redirects, Rejected, Batches, Connects uint64
	// OnErrorPanics counts the OnError calls that panicked (recovered).
	OnErrorPanics uint64
	// Elapsed is the time since the first Write; Rate the acknowledged
	// commands per second over it. RecentRate is the rate since the
	// previous call of Stats (or the first Write).
	Elapsed          time.Duration
	Rate, RecentRate float64
}

// Stats returns a snapshot of the writer's counters. Safe for concurrent
// use.
func (w *BatchWriter) Stats() BatchWriterStats {
	if w == nil || w.writerState == nil || w.e == nil {
		return BatchWriterStats{}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	s := BatchWriterStats{
		Written: w.written, Acknowledged: w.acked, Failed: w.failed, Pending: w.pendingLocked(),
		Retries: w.retries, Redirects: w.redirects, Rejected: w.rejected, Batches: w.batches, Connects: w.reconnect,
		OnErrorPanics: w.onErrorPanics.Load(),
	}
	if w.written == 0 {
		return s
	}
	now := time.Now()
	s.Elapsed = now.Sub(w.start)
	if sec := s.Elapsed.Seconds(); sec > 0 {
		s.Rate = float64(w.acked) / sec
	}
	if sec := now.Sub(w.lastAt).Seconds(); sec > 0 {
		s.RecentRate = float64(w.acked-w.lastAcked) / sec
	}
	w.lastAt, w.lastAcked = now, w.acked
	return s
}

// String formats the main counters on one line, for logs.
func (s BatchWriterStats) String() string {
	return "written=" + strconv.FormatUint(s.Written, 10) +
		" acked=" + strconv.FormatUint(s.Acknowledged, 10) +
		" failed=" + strconv.FormatUint(s.Failed, 10) +
		" pending=" + strconv.FormatUint(s.Pending, 10) +
		" rate=" + strconv.FormatFloat(s.Rate, 'f', 0, 64) + "/s"
}
