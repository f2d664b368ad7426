// Command batch-writer bulk-loads keys with engine.BatchWriter and shows a
// live progress bar (on stderr) and the final rate (on stdout).
//
//	go run ./examples/batch-writer -n 1000000 -value-size 64
//
// It connects to $VALKEY_URL or $VALKEY_ADDR (and the other VALKEY_*
// variables, see the README); when none names a server
// (config.EnvNamesServer) it starts a throwaway server on a free loopback port and stops it at
// the end. The keys, <prefix>0 ... (-prefix, default "bulk:"), stay on a
// server of your own. Ctrl-C (SIGINT) or SIGTERM stops the load: the writes queued so
// far are given a few seconds to be acknowledged, the throwaway server is
// stopped, and the command exits with status 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

func main() {
	// The throwaway server runs in a process group of its own, so a
	// Ctrl-C at the terminal does not reach it: the example has to stop
	// it, which it does on the way out of run.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return // -h: the usage was printed
	}
	if err != nil {
		log.Fatal(err)
	}
}

// run loads the keys; ctx ending (an interrupt) stops the load.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("batch-writer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 1_000_000, "number of keys to load")
	size := fs.Int("value-size", 64, "value size in bytes")
	prefix := fs.String("prefix", "bulk:", "key prefix")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *n < 0 || *size < 0 {
		return errors.New("-n and -value-size must be at least 0")
	}

	cfg, err := config.LoadFromEnv()
	if err != nil {
		return err
	}
	if !config.EnvNamesServer() {
		srv, err := valkeytest.StartServer(valkeytest.Options{Name: "batch-writer"})
		if err != nil {
			return err
		}
		defer srv.Stop()
		cfg = cfg.WithAddrs(srv.Addr())
		fmt.Fprintln(stdout, "started a throwaway server on", srv.Addr())
	}
	dialCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	eng, err := engine.New(dialCtx, cfg)
	if err != nil {
		return err
	}
	defer eng.Close()

	// Failures are reported per command; count them and keep the first.
	var failed atomic.Int64
	var first atomic.Value
	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{
		OnError: func(cmd []string, err error) {
			failed.Add(1)
			first.CompareAndSwap(nil, fmt.Sprintf("%s %s: %v", cmd[0], cmd[1], err))
		},
	})
	if err != nil {
		return err
	}

	// The progress bar, redrawn from Stats every 100ms.
	done := make(chan struct{})
	drawn := make(chan struct{})
	go func() {
		defer close(drawn)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fmt.Fprint(stderr, "\r", bar(w.Stats(), *n))
			case <-done:
				fmt.Fprint(stderr, "\r", bar(w.Stats(), *n), "\n")
				return
			}
		}
	}()

	value := strings.Repeat("x", *size)
	start := time.Now()
	for i := range *n {
		// Set only queues: it blocks when MaxPending commands are pending
		// (until there is room or ctx ends).
		err := ctx.Err() // Set notices an ended ctx only while it waits for room
		if err == nil {
			err = w.Set(ctx, *prefix+strconv.Itoa(i), value, 0)
		}
		if err != nil {
			// Interrupted (or refused): give what is queued a few
			// seconds to be acknowledged, then stop.
			closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = w.Close(closeCtx)
			cancel()
			close(done)
			<-drawn
			if ctx.Err() != nil {
				st := w.Stats()
				return fmt.Errorf("interrupted after %d of %d keys acknowledged (%d failed)", st.Acknowledged, *n, st.Failed)
			}
			return err
		}
	}
	// Close waits until every command is acknowledged or reported failed
	// (or ctx ends).
	err = w.Close(ctx)
	elapsed := time.Since(start)
	close(done)
	<-drawn
	if err != nil {
		return err
	}
	st := w.Stats()
	fmt.Fprintf(stdout, "loaded %d keys (%d-byte values) in %s: %.0f ops/s, %d failed, %d pipelines\n",
		st.Acknowledged, *size, elapsed.Round(time.Millisecond), float64(st.Acknowledged)/elapsed.Seconds(), st.Failed, st.Batches)
	if failed.Load() > 0 {
		return fmt.Errorf("%d writes failed, first: %v", failed.Load(), first.Load())
	}
	return nil
}

// bar renders one progress line: a 30-character bar, counts and rates.
func bar(st engine.BatchWriterStats, total int) string {
	const width = 30
	frac := 1.0
	if total > 0 {
		frac = float64(st.Acknowledged+st.Failed) / float64(total)
	}
	full := int(frac * width)
	return fmt.Sprintf("[%s%s] %3.0f%% %d/%d acked, %d failed, %d pending, %.0f ops/s (now %.0f)",
		strings.Repeat("#", full), strings.Repeat(".", width-full), frac*100,
		st.Acknowledged, total, st.Failed, st.Pending, st.Rate, st.RecentRate)
}
