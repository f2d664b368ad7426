package engine_test

// qa-BD: explicit pipelines, transactions and the batch writer used as a
// demanding user would, under faults (CLIENT KILL, CLIENT PAUSE, DEBUG
// SLEEP, kill and restart), ctx ends and a concurrent Close; what the
// server holds afterwards is counted against what the callers were told.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/policies"
	"github.com/vactor-io/vactor/valkeytest"
)

// qabdFaults runs faults against srv until stop is closed: CLIENT KILL of
// the normal connections, a short CLIENT PAUSE, a short DEBUG SLEEP.
func qabdFaults(t *testing.T, srv *valkeytest.Server, stop <-chan struct{}, kinds []string) (n int) {
	t.Helper()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return n
		case <-time.After(15 * time.Millisecond):
		}
		var err error
		switch kinds[i%len(kinds)] {
		case "kill":
			_, err = srv.Do("CLIENT", "KILL", "TYPE", "normal")
		case "pause":
			_, err = srv.Do("CLIENT", "PAUSE", "60", "ALL")
		case "sleep":
			_, err = srv.Do("DEBUG", "SLEEP", "0.05")
		}
		if err != nil {
			t.Logf("fault %s: %v", kinds[i%len(kinds)], err)
		}
		n++
	}
}

// qabdList reads the list at key through a tool connection.
func qabdList(t *testing.T, srv *valkeytest.Server, key string) []string {
	t.Helper()
	r, err := srv.Do("LRANGE", key, "0", "-1")
	if err != nil {
		t.Fatalf("LRANGE %s: %v", key, err)
	}
	arr, _ := r.([]any)
	out := make([]string, 0, len(arr))
	for _, v := range arr {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

// The batch writer's RPUSHes of unique ids under CLIENT KILL, CLIENT PAUSE
// and DEBUG SLEEP, then the writer's Close: every id not reported through
// OnError is on the server exactly once, an id reported with an outcome
// unknown at most once, any other failure never; Stats agree with OnError.
func TestQABDWriterFaultsExactAccounting(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults []string
		opts   engine.BatchWriterOptions
	}{
		{"kill-pause-sleep", []string{"kill", "pause", "kill", "sleep"}, engine.BatchWriterOptions{BatchSize: 64}},
		{"kill-idempotent-off-conns1", []string{"kill"}, engine.BatchWriterOptions{ConnsPerNode: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) { qabdWriterFaults(t, tc.faults, tc.opts) })
	}
}

func qabdWriterFaults(t *testing.T, faults []string, opts engine.BatchWriterOptions) {
	srv := valkeytest.Start(t, valkeytest.Options{Args: []string{"--enable-debug-command", "yes"}})
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	defer eng.Close()
	ctx := ctxT(t)

	var mu sync.Mutex
	failed := map[string]error{}
	var onErr atomic.Int64
	opts.OnError = func(cmd []string, err error) {
		onErr.Add(1)
		mu.Lock()
		defer mu.Unlock()
		if len(cmd) != 3 {
			t.Errorf("OnError cmd %q", cmd)
			return
		}
		if prev, dup := failed[cmd[2]]; dup {
			t.Errorf("id %s reported twice: %v, then %v", cmd[2], prev, err)
		}
		failed[cmd[2]] = err
	}
	w, err := eng.NewBatchWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	const lists, perWriter, writers = 8, 20000, 4
	stop := make(chan struct{})
	faultsDone := make(chan int)
	go func() { faultsDone <- qabdFaults(t, srv, stop, faults) }()
	var wg sync.WaitGroup
	var written atomic.Int64
	var counts [writers]int
	end := time.Now().Add(3 * time.Second)
	for g := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if time.Now().After(end) {
					break
				}
				counts[g] = i + 1
				id := fmt.Sprintf("%d-%d", g, i)
				if err := w.RPush(ctx, fmt.Sprintf("qabd:w:%d", i%lists), id); err != nil {
					t.Errorf("RPush: %v", err)
					return
				}
				written.Add(1)
				if i%40 == 0 {
					time.Sleep(2 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	nf := <-faultsDone
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := w.Close(cctx); err != nil {
		t.Fatalf("writer Close: %v", err)
	}
	st := w.Stats()
	seen := map[string]int{}
	for i := range lists {
		for _, id := range qabdList(t, srv, fmt.Sprintf("qabd:w:%d", i)) {
			seen[id]++
		}
	}
	unknown, other, unknownRan := 0, 0, 0
	for g := range writers {
		for i := range counts[g] {
			id := fmt.Sprintf("%d-%d", g, i)
			n := seen[id]
			ferr, bad := failed[id]
			switch {
			case n > 1:
				t.Errorf("id %s on the server %d times (failed: %v)", id, n, ferr)
			case !bad && n != 1:
				t.Errorf("id %s acknowledged (not reported) but on the server %d times", id, n)
			case bad && errors.Is(ferr, engine.ErrOutcomeUnknown):
				unknown++
				unknownRan += n
			case bad:
				other++
				if n != 0 {
					t.Errorf("id %s failed with %v (not an outcome unknown) but ran", id, ferr)
				}
			}
		}
	}
	t.Logf("faults %d; written %d, failed %d (outcome unknown %d, of which ran %d; other %d); stats %+v",
		nf, written.Load(), len(failed), unknown, unknownRan, other, st)
	if int64(len(failed)) != onErr.Load() {
		t.Errorf("OnError called %d times for %d ids", onErr.Load(), len(failed))
	}
	if st.Written != uint64(written.Load()) || st.Acknowledged+st.Failed != st.Written || st.Failed != uint64(len(failed)) {
		t.Errorf("stats %+v against written %d, failed %d", st, written.Load(), len(failed))
	}
}

// qabdClass sorts a failed write's error: "ok", "maybe" (may have run:
// an outcome unknown, or the ctx's end after it was sent), "not" (did not
// run), or "" for an error of no known class.
func qabdClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, engine.ErrOutcomeUnknown):
		return "maybe"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "maybe"
	case errors.Is(err, engine.ErrNotSent), errors.Is(err, engine.ErrCircuitOpen), errors.Is(err, engine.ErrClosed),
		errors.Is(err, engine.ErrBackpressure), policies.NotSent(err):
		return "not"
	}
	return ""
}

// Pipelines and transactions of RPUSHes of unique ids, with deadlines
// from 1 ms to 300 ms and some cancelled, under CLIENT KILL, CLIENT
// PAUSE and DEBUG SLEEP; then the engine's Close while they run. Each id
// a future acknowledged is on the server once; one that failed "not
// sent" (ErrNotSent, ErrCircuitOpen, ErrClosed) never; a transaction's
// ids all or none, none when Exec said it did not run.
func TestQABDPipelineTxFaults(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{Args: []string{"--enable-debug-command", "yes"}})
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	base := measure(t)
	_ = base
	type rec struct {
		id  string
		err error
	}
	type txRec struct {
		ids  []string
		exec error
		errs []error
	}
	var mu sync.Mutex
	var pipeRecs []rec
	var txRecs []txRec
	var unclassified []string
	stop := make(chan struct{})
	faultsDone := make(chan int)
	go func() { faultsDone <- qabdFaults(t, srv, stop, []string{"kill", "pause", "sleep", "kill"}) }()
	end := time.Now().Add(3 * time.Second)
	closeAt := end.Add(-300 * time.Millisecond)
	var wg sync.WaitGroup
	const workers = 8
	for g := range workers {
		wg.Go(func() {
			for i := 0; time.Now().Before(end); i++ {
				d := time.Duration(1+(i*37+g*11)%300) * time.Millisecond
				ctx, cancel := context.WithTimeout(context.Background(), d)
				if i%7 == 3 {
					time.AfterFunc(d/3, cancel)
				}
				if g%2 == 0 {
					p := eng.Pipeline()
					ids := make([]string, 16)
					fs := make([]interface{ Err(context.Context) error }, 16)
					for k := range ids {
						ids[k] = fmt.Sprintf("p%d-%d-%d", g, i, k)
						fs[k] = p.RPush(fmt.Sprintf("qabd:p:%d", k%4), ids[k])
					}
					_ = p.Exec(ctx)
					for k, f := range fs {
						err := f.Err(context.Background())
						mu.Lock()
						pipeRecs = append(pipeRecs, rec{ids[k], err})
						if qabdClass(err) == "" {
							unclassified = append(unclassified, fmt.Sprintf("pipeline %s: %v", ids[k], err))
						}
						mu.Unlock()
					}
				} else {
					tx := eng.Tx()
					ids := []string{fmt.Sprintf("t%d-%d-a", g, i), fmt.Sprintf("t%d-%d-b", g, i)}
					fa := tx.RPush("qabd:t:a", ids[0])
					fb := tx.RPush("qabd:t:b", ids[1])
					err := tx.Exec(ctx)
					r := txRec{ids: ids, exec: err, errs: []error{fa.Err(context.Background()), fb.Err(context.Background())}}
					mu.Lock()
					txRecs = append(txRecs, r)
					if qabdClass(err) == "" {
						unclassified = append(unclassified, fmt.Sprintf("tx %v: %v", ids, err))
					}
					mu.Unlock()
				}
				cancel()
			}
		})
	}
	time.Sleep(time.Until(closeAt))
	close(stop)
	nf := <-faultsDone
	if err := eng.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	seen := map[string]int{}
	for _, k := range []string{"qabd:p:0", "qabd:p:1", "qabd:p:2", "qabd:p:3", "qabd:t:a", "qabd:t:b"} {
		for _, id := range qabdList(t, srv, k) {
			seen[id]++
		}
	}
	classes := map[string]int{}
	for _, r := range pipeRecs {
		c := qabdClass(r.err)
		classes["pipe-"+c]++
		n := seen[r.id]
		switch {
		case n > 1:
			t.Errorf("pipeline id %s ran %d times (%v)", r.id, n, r.err)
		case c == "ok" && n != 1:
			t.Errorf("pipeline id %s acknowledged, on the server %d times", r.id, n)
		case c == "not" && n != 0:
			t.Errorf("pipeline id %s failed as not run (%v) but ran", r.id, r.err)
		}
	}
	for _, r := range txRecs {
		c := qabdClass(r.exec)
		classes["tx-"+c]++
		na, nb := seen[r.ids[0]], seen[r.ids[1]]
		switch {
		case na > 1 || nb > 1 || na != nb:
			t.Errorf("tx %v: on the server %d and %d times (Exec %v)", r.ids, na, nb, r.exec)
		case c == "ok" && na != 1:
			t.Errorf("tx %v: Exec nil, on the server %d times", r.ids, na)
		case c == "not" && na != 0:
			t.Errorf("tx %v: Exec %v (not run) but ran", r.ids, r.exec)
		case c == "maybe" && !errors.Is(r.exec, engine.ErrOutcomeUnknown) && na != 0:
			t.Errorf("tx %v: Exec %v (a bare ctx error, not an outcome unknown) but ran", r.ids, r.exec)
		}
		for k, err := range r.errs {
			if r.exec == nil && err != nil {
				t.Errorf("tx %v: Exec nil, future %d: %v", r.ids, k, err)
			}
			if r.exec != nil && err == nil {
				t.Errorf("tx %v: Exec %v, future %d succeeded", r.ids, r.exec, k)
			}
		}
	}
	for _, u := range unclassified[:min(len(unclassified), 10)] {
		t.Errorf("unclassified: %s", u)
	}
	t.Logf("faults %d; %d pipeline futures, %d transactions: %v", nf, len(pipeRecs), len(txRecs), classes)
	if u := settleTo(t, base, 5*time.Second); u.above(base) {
		t.Errorf("after Close: %s, before %s", u, base)
	}
}

// Stats.OutcomeUnknown against what the callers of pipelines and
// transactions saw: each future that failed with ErrOutcomeUnknown is
// counted once, under CLIENT KILL and deadlines.
func TestQABDStatsOutcomeUnknownAgrees(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{Args: []string{"--enable-debug-command", "yes"}})
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	defer eng.Close()
	var seenUnknown, pipeUnknown, txUnknown, futures atomic.Int64
	stop := make(chan struct{})
	faultsDone := make(chan int)
	go func() { faultsDone <- qabdFaults(t, srv, stop, []string{"kill", "sleep", "kill", "pause"}) }()
	end := time.Now().Add(2500 * time.Millisecond)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; time.Now().Before(end); i++ {
				d := time.Duration(5+(i*37+g*11)%200) * time.Millisecond
				ctx, cancel := context.WithTimeout(context.Background(), d)
				var fs []interface{ Err(context.Context) error }
				if g%2 == 0 {
					p := eng.Pipeline()
					for k := range 16 {
						fs = append(fs, p.Incr(fmt.Sprintf("qabd:s:%d", k%4)))
					}
					_ = p.Exec(ctx)
				} else {
					tx := eng.Tx()
					fs = append(fs, tx.Incr("qabd:s:a"), tx.Incr("qabd:s:b"))
					_ = tx.Exec(ctx)
				}
				for _, f := range fs {
					futures.Add(1)
					if err := f.Err(context.Background()); errors.Is(err, engine.ErrOutcomeUnknown) {
						seenUnknown.Add(1)
						if g%2 == 0 {
							pipeUnknown.Add(1)
						} else {
							txUnknown.Add(1)
						}
					}
				}
				cancel()
			}
		})
	}
	wg.Wait()
	close(stop)
	nf := <-faultsDone
	st := eng.Stats()
	t.Logf("faults %d; futures %d; outcome unknown seen %d (pipelines %d, transactions %d), Stats.OutcomeUnknown %d; tx %d ran, %d failed",
		nf, futures.Load(), seenUnknown.Load(), pipeUnknown.Load(), txUnknown.Load(), st.OutcomeUnknown, st.Transactions, st.TxFailed)
	if st.OutcomeUnknown != uint64(seenUnknown.Load()) {
		t.Errorf("Stats.OutcomeUnknown %d, callers saw %d futures fail with ErrOutcomeUnknown", st.OutcomeUnknown, seenUnknown.Load())
	}
}

// Transactions longer than MaxBatchSize (sent in parts on their
// connection) under CLIENT KILL and deadlines: all of a transaction's
// RPUSHes or none, none when Exec said it did not run, all when nil.
func TestQABDLongTxFaults(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{Args: []string{"--enable-debug-command", "yes"}})
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	defer eng.Close()
	stop := make(chan struct{})
	faultsDone := make(chan int)
	go func() { faultsDone <- qabdFaults(t, srv, stop, []string{"kill", "kill", "sleep"}) }()
	const size = 2500
	type run struct {
		id   int
		err  error
		errs int // futures that failed
	}
	var mu sync.Mutex
	var runs []run
	end := time.Now().Add(2500 * time.Millisecond)
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			for i := 0; time.Now().Before(end); i++ {
				id := g*100000 + i
				d := time.Duration(20+(i*53+g*17)%400) * time.Millisecond
				ctx, cancel := context.WithTimeout(context.Background(), d)
				tx := eng.Tx()
				var fs []interface{ Err(context.Context) error }
				for k := range size {
					fs = append(fs, tx.RPush(fmt.Sprintf("qabd:lt:%d", k%3), fmt.Sprintf("%d-%d", id, k)))
				}
				err := tx.Exec(ctx)
				cancel()
				r := run{id: id, err: err}
				for _, f := range fs {
					if f.Err(context.Background()) != nil {
						r.errs++
					}
				}
				mu.Lock()
				runs = append(runs, r)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(stop)
	nf := <-faultsDone
	count := map[int]int{}
	for k := range 3 {
		for _, v := range qabdList(t, srv, fmt.Sprintf("qabd:lt:%d", k)) {
			var id, n int
			fmt.Sscanf(v, "%d-%d", &id, &n)
			count[id]++
		}
	}
	classes := map[string]int{}
	for _, r := range runs {
		c := qabdClass(r.err)
		classes[c]++
		n := count[r.id]
		switch {
		case n != 0 && n != size:
			t.Errorf("tx %d: %d of its %d RPUSHes ran (Exec %v)", r.id, n, size, r.err)
		case c == "ok" && (n != size || r.errs != 0):
			t.Errorf("tx %d: Exec nil, %d ran, %d futures failed", r.id, n, r.errs)
		case c == "not" && n != 0:
			t.Errorf("tx %d: Exec %v (not run) but ran", r.id, r.err)
		case c == "maybe" && !errors.Is(r.err, engine.ErrOutcomeUnknown) && n != 0:
			t.Errorf("tx %d: Exec %v (a bare ctx error) but ran", r.id, r.err)
		case c == "":
			// qa-BD F4: "transaction not executed: EOF" (a part before
			// EXEC failed: nothing ran) matched no sentinel and was not
			// retryable (policies.IsRetryable).
			t.Errorf("tx %d: Exec %v: unclassified", r.id, r.err)
		}
		// A transaction that ran while ctx ended has some futures
		// completed and the rest failed with ErrOutcomeUnknown, and Exec
		// says ErrOutcomeUnknown (by design, qa-AG 1): only "not run"
		// fails them all.
		if c == "not" && r.errs != size {
			t.Errorf("tx %d: Exec %v but %d futures succeeded", r.id, r.err, size-r.errs)
		}
	}
	t.Logf("faults %d; %d transactions of %d commands: %v", nf, len(runs), size, classes)
}
