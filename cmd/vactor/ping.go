package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/vactor-io/vactor/config"
)

// runPing implements `vactor ping`: connect to the target (every node of
// a cluster) and time PING round trips.
func runPing(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vactor ping", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var tf targetFlags
	tf.register(fs)
	count := fs.Int("count", 10, "round trips per node")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on the whole command")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: vactor ping [flags]\n\nConnects to the server (every node of a cluster) and times -count PING round trips.\n\n")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "vactor ping: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	case *count < 1:
		fmt.Fprintln(stderr, "vactor ping: -count must be at least 1")
		return exitUsage
	case *timeout <= 0:
		fmt.Fprintln(stderr, "vactor ping: -timeout must be positive")
		return exitUsage
	}
	t, err := resolveTarget(&tf, fs, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "vactor ping:", err)
		return targetExit(err)
	}
	defer closeTarget(t, stderr)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	fmt.Fprintf(stdout, "target %s\n", t.describe())

	nodes, err := pingNodes(ctx, t.cfg, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "vactor ping:", err)
		return exitFailed
	}
	failed := false
	for _, addr := range nodes {
		if err := pingNode(ctx, t.cfg, addr, *count, stdout); err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
				// Not the server's error: the command's own bound.
				err = fmt.Errorf("-timeout %s ended the command: raise -timeout or lower -count", *timeout)
			}
			fmt.Fprintf(stdout, "%-21s  error: %v\n", addr, err)
			failed = true
		}
	}
	if failed {
		return exitFailed
	}
	return exitOK
}

// pingNodes connects with cfg as configured (timing engine.New) and
// returns the nodes to ping: the configured one, or every node of the
// cluster.
func pingNodes(ctx context.Context, cfg config.Config, stdout io.Writer) ([]string, error) {
	start := time.Now()
	eng, err := newEngine(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer func() { _ = eng.Close() }()
	fmt.Fprintf(stdout, "connected in %s\n", roundDur(time.Since(start)))
	if cfg.SentinelMode {
		p := eng.Stats().Sentinel.Primary
		fmt.Fprintf(stdout, "primary %s (named by the sentinels)\n", p)
		return []string{p}, nil
	}
	if !cfg.ClusterMode {
		return cfg.Addresses()[:1], nil
	}
	nodes, err := clusterTopology(ctx, eng)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "cluster of %d nodes\n", len(nodes))
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.Addr
	}
	return addrs, nil
}

// pingNode times count PINGs, one at a time, on a connection of its own
// to addr.
func pingNode(ctx context.Context, cfg config.Config, addr string, count int, stdout io.Writer) error {
	start := time.Now()
	eng, err := newEngine(ctx, nodeConfig(cfg, addr))
	if err != nil {
		return err
	}
	defer func() { _ = eng.Close() }()
	connect := time.Since(start)
	rtts := make([]time.Duration, 0, count)
	for range count {
		t0 := time.Now()
		if _, err := eng.PingFuture(ctx).Await(ctx); err != nil {
			if len(rtts) > 0 {
				// The round trips timed until then (a -count that
				// -timeout cut short).
				printRTTs(stdout, addr, connect, rtts, fmt.Sprintf("x%d of %d", len(rtts), count))
			}
			return err
		}
		rtts = append(rtts, time.Since(t0))
	}
	printRTTs(stdout, addr, connect, rtts, fmt.Sprintf("x%d", count))
	return nil
}

// printRTTs prints the line of a node's round trips rtts (at least one).
func printRTTs(stdout io.Writer, addr string, connect time.Duration, rtts []time.Duration, what string) {
	slices.Sort(rtts)
	var sum time.Duration
	for _, d := range rtts {
		sum += d
	}
	fmt.Fprintf(stdout, "%-21s  connect %s  PING %s: min %s  avg %s  max %s\n",
		addr, roundDur(connect), what, roundDur(rtts[0]), roundDur(sum/time.Duration(len(rtts))), roundDur(rtts[len(rtts)-1]))
}

// roundDur rounds d for display: 3 significant digits or so.
func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d >= time.Microsecond:
		return d.Round(100 * time.Nanosecond)
	}
	return d
}

// closeTarget stops the throwaway server, if any, reporting a failure.
func closeTarget(t *target, stderr io.Writer) {
	if err := t.close(); err != nil {
		fmt.Fprintln(stderr, "vactor: stop the throwaway server:", err)
	}
}
