package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
)

// runInfo implements `vactor info`: the target's role and version, or a
// cluster's slot ranges and nodes.
func runInfo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vactor info", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var tf targetFlags
	tf.register(fs)
	timeout := fs.Duration("timeout", 10*time.Second, "bound on the whole command")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: vactor info [flags]\n\nShows the server's version, role and replicas; in cluster mode (-cluster) the slot ranges and every node.\n\n")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "vactor info: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	case *timeout <= 0:
		fmt.Fprintln(stderr, "vactor info: -timeout must be positive")
		return exitUsage
	}
	t, err := resolveTarget(&tf, fs, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "vactor info:", err)
		return targetExit(err)
	}
	defer closeTarget(t, stderr)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	fmt.Fprintf(stdout, "target %s\n", t.describe())
	switch {
	case t.cfg.ClusterMode:
		err = clusterInfo(ctx, t.cfg, stdout)
	case t.cfg.SentinelMode:
		err = sentinelInfo(ctx, t.cfg, stdout)
	default:
		err = standaloneInfo(ctx, t.cfg, stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "vactor info:", err)
		return exitFailed
	}
	return exitOK
}

// standaloneInfo prints the version, mode and role of the configured
// node, with its replicas or its primary.
func standaloneInfo(ctx context.Context, cfg config.Config, stdout io.Writer) error {
	eng, err := newEngine(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = eng.Close() }()
	info, err := serverInfo(ctx, eng)
	if err != nil {
		return err
	}
	mode := info["redis_mode"]
	if mode == "" {
		mode = info["server_mode"]
	}
	fmt.Fprintf(stdout, "server  %s, mode %s\n", serverVersion(info), mode)
	switch {
	case info["cluster_enabled"] == "1":
		fmt.Fprintln(stdout, "note    this node belongs to a cluster: run with -cluster to see its slots and nodes")
	case mode == "sentinel":
		fmt.Fprintln(stdout, "note    this is a sentinel: name the primary it monitors to reach it (-url valkey://host:port?master_set=NAME, or VALKEY_SENTINEL_MASTER and VALKEY_SENTINEL_ADDRS)")
		r, err := eng.Do(ctx, "SENTINEL", "MASTERS").Await(ctx)
		if err != nil {
			return nil
		}
		masters, _ := r.Array()
		for _, m := range masters {
			if f, err := m.Map(); err == nil {
				fmt.Fprintf(stdout, "master  %s at %s:%s, flags %s\n", f["name"], f["ip"], f["port"], f["flags"])
			}
		}
		return nil
	}
	return primaryInfo(ctx, eng, cfg, info, stdout)
}

// sentinelInfo prints the primary the sentinels name, its replicas as the
// sentinels see them, and then what standaloneInfo prints for the primary.
func sentinelInfo(ctx context.Context, cfg config.Config, stdout io.Writer) error {
	eng, err := newEngine(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = eng.Close() }()
	st := eng.Stats().Sentinel
	fmt.Fprintf(stdout, "master  %s: primary %s (%d sentinel(s) followed)\n", cfg.SentinelMasterName, st.Primary, st.Subscribed)
	for _, r := range st.Replicas {
		fmt.Fprintf(stdout, "  replica %s (healthy for the sentinels)\n", r)
	}
	info, err := serverInfo(ctx, eng)
	if err != nil {
		return err
	}
	mode := info["redis_mode"]
	if mode == "" {
		mode = info["server_mode"]
	}
	fmt.Fprintf(stdout, "server  %s, mode %s\n", serverVersion(info), mode)
	return primaryInfo(ctx, eng, cfg, info, stdout)
}

// primaryInfo prints the role, key count and memory of the node eng
// reaches.
func primaryInfo(ctx context.Context, eng *engine.Engine, cfg config.Config, info map[string]string, stdout io.Writer) error {
	printRole(stdout, "", info)
	if n, err := eng.Do(ctx, "DBSIZE").Await(ctx); err == nil {
		if size, err := n.Int64(); err == nil {
			fmt.Fprintf(stdout, "keys    %d (db %d)\n", size, cfg.DB)
		}
	}
	if m := info["used_memory_human"]; m != "" {
		fmt.Fprintf(stdout, "memory  %s\n", m)
	}
	return nil
}

// printRole prints a node's replication role from INFO replication.
func printRole(stdout io.Writer, indent string, info map[string]string) {
	switch info["role"] {
	case "master":
		n, _ := strconv.Atoi(info["connected_slaves"])
		fmt.Fprintf(stdout, "%srole    primary, %d replica(s)\n", indent, n)
		for i := range n {
			fmt.Fprintf(stdout, "%s  replica %s\n", indent, replicaText(info["slave"+strconv.Itoa(i)]))
		}
	case "slave":
		fmt.Fprintf(stdout, "%srole    replica of %s:%s, link %s\n", indent,
			info["master_host"], info["master_port"], info["master_link_status"])
	default:
		fmt.Fprintf(stdout, "%srole    %s\n", indent, info["role"])
	}
}

// replicaText turns "ip=...,port=...,state=online,..." into "ip:port (online)".
func replicaText(s string) string {
	f := map[string]string{}
	for kv := range strings.SplitSeq(s, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			f[k] = v
		}
	}
	return f["ip"] + ":" + f["port"] + " (" + f["state"] + ")"
}

// clusterInfo prints the slot map and, for every node, its version and
// role.
func clusterInfo(ctx context.Context, cfg config.Config, stdout io.Writer) error {
	eng, err := newEngine(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = eng.Close() }()
	nodes, err := clusterTopology(ctx, eng)
	if err != nil {
		return err
	}
	prims := primaries(nodes)
	covered, ranges := 0, 0
	for _, p := range prims {
		for _, r := range p.Slots {
			covered += r[1] - r[0] + 1
			ranges++
		}
	}
	fmt.Fprintf(stdout, "cluster %d slot ranges, %d of 16384 slots served, %d nodes\n", ranges, covered, len(nodes))
	fmt.Fprintln(stdout, "slots")
	for _, p := range prims {
		repl := "no replica"
		if rs := replicasOf(nodes, p.ID); len(rs) > 0 {
			repl = "replicas " + strings.Join(rs, ", ")
		}
		for _, r := range p.Slots {
			fmt.Fprintf(stdout, "  %5d-%-5d  primary %s  %s\n", r[0], r[1], p.Addr, repl)
		}
	}
	fmt.Fprintln(stdout, "nodes")
	var failed []string
	for _, n := range nodes {
		if n.failing() {
			fmt.Fprintf(stdout, "  %s  marked %s by the cluster\n", n.Addr, strings.Join(n.Flags, ","))
		}
		if err := nodeInfo(ctx, cfg, n.Addr, stdout); err != nil {
			fmt.Fprintf(stdout, "  %s  error: %v\n", n.Addr, err)
			failed = append(failed, n.Addr)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("no answer from %s", strings.Join(failed, ", "))
	}
	return nil
}

// nodeInfo prints one cluster node's version, role and key count.
func nodeInfo(ctx context.Context, cfg config.Config, addr string, stdout io.Writer) error {
	eng, err := newEngine(ctx, nodeConfig(cfg, addr))
	if err != nil {
		return err
	}
	defer func() { _ = eng.Close() }()
	info, err := serverInfo(ctx, eng)
	if err != nil {
		return err
	}
	keys := "0"
	if ks := info["db0"]; ks != "" { // keys=N,expires=...
		keys = strings.TrimPrefix(strings.SplitN(ks, ",", 2)[0], "keys=")
	}
	fmt.Fprintf(stdout, "  %s  %s, %s keys\n", addr, serverVersion(info), keys)
	printRole(stdout, "    ", info)
	return nil
}
